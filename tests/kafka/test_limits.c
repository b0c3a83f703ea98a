/* test_limits.c - the listener's resource bounds, measured on the server
 * process (/proc/PID): compressed bombs with valid CRCs on several
 * connections at once keep its peak RSS bounded; a long-polling Fetch that
 * has some data but less than MinBytes does not spin; idle connections and
 * half-sent requests are closed; a Produce or Fetch naming a million
 * partitions is answered in linear time and memory.
 *
 * The bounds are resource bounds (bytes, CPU seconds), far from what a
 * correct server uses and far below what the faults they catch cost.
 *
 * Usage: test_kafka_limits KAFKA_SERVER_BINARY
 */
#include <pthread.h>
#include <time.h>

#include <lz4frame.h>
#include <zlib.h>
#include <zstd.h>

#include "batch.h"
#include "crc32c.h"
#include "kclient.h"

static struct kserver srv;
/* Correlation ids, shared by the test threads. */
static _Atomic int32_t corr = 100;

/* Peak resident set of the server (VmHWM), in KiB; -1 if unknown. */
static long server_hwm_kib(void)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)srv.pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Peak resident set of process pid (VmHWM), in KiB; -1 if unknown. */
static long hwm_kib_of(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* utime + stime of the server, in clock ticks; -1 if unknown. */
static long server_cpu_ticks(void)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)srv.pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Fields after the parenthesised command name: state is field 3,
	 * utime 14, stime 15. */
	char *p = strrchr(buf, ')');
	unsigned long ut, st;
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Metadata v4 with auto-create: the topic exists afterwards. */
static void topic_create(int fd, struct kafka_writer *w, const char *topic)
{
	struct kafka_reader r;
	kc_begin(w, 3, 4, ++corr, 0);
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, topic);
	kafka_write_bool(w, true);
	free(kc_roundtrip(fd, w, &r));
}

/* Produce v7 acks=-1 of one batch to topic/partition: the partition's error
 * code, or -100 on transport failure. */
static int produce(int fd, struct kafka_writer *w, const char *topic, int32_t partition,
		   const uint8_t *batch, size_t len)
{
	return kc_produce(fd, w, ++corr, 7, -1, 30000, topic, partition, batch, len, NULL);
}

/* Fetch v11 of topic/0 from offset with min_bytes and max_wait, up to
 * 4 MiB: the partition's error code (-100 on transport failure); *records
 * malloc'd. */
static int fetch(int fd, struct kafka_writer *w, const char *topic, int64_t offset,
		 int32_t min_bytes, int32_t max_wait, uint8_t **records, int32_t *rlen)
{
	return kc_fetch(fd, w, ++corr, topic, offset, min_bytes, max_wait, 4 << 20, records, rlen,
			NULL);
}

/* An uncompressed batch of n records "<prefix>-<i>"; malloc'd. */
static uint8_t *plain_batch(const char *prefix, int n, size_t *len)
{
	struct batch_builder bb;
	uint8_t *out = NULL;
	batch_builder_init(&bb);
	for (int i = 0; i < n; i++) {
		char val[64];
		snprintf(val, sizeof(val), "%s-%d", prefix, i);
		struct record_in rec = { 1700000000000 + i,    NULL, -1, val,
					 (int32_t)strlen(val), NULL, 0 };
		batch_builder_add(&bb, &rec);
	}
	if (batch_builder_finish(&bb, &out, len) != 0)
		bail("batch_builder_finish");
	batch_builder_fini(&bb);
	return out;
}

/* A batch header for a compressed records area: n records announced,
 * codec in the attributes, valid CRC. malloc'd, *len set. */
static uint8_t *batch_wrap(const uint8_t *area, size_t area_len, int codec, int32_t n, size_t *len)
{
	*len = BATCH_HEADER_SIZE + area_len;
	uint8_t *b = calloc(1, *len);
	kafka_put_be32(b + 8, (uint32_t)(*len - 12));
	kafka_put_be32(b + 12, 0xffffffffu);
	b[16] = 2;
	b[22] = (uint8_t)codec;
	kafka_put_be32(b + 23, (uint32_t)(n - 1));
	for (int i = 43; i < 57; i++)
		b[i] = 0xff; /* producer id, epoch, sequence: -1 */
	kafka_put_be32(b + 57, (uint32_t)n);
	memcpy(b + BATCH_HEADER_SIZE, area, area_len);
	kafka_put_be32(b + 17, crc32c(0, b + 21, *len - 21));
	return b;
}

#define BOMB_ZEROS ((size_t)1 << 30) /* what each bomb expands to */

static uint8_t *lz4_bomb(size_t *len)
{
	static uint8_t zeros[1 << 20];
	LZ4F_preferences_t prefs;
	memset(&prefs, 0, sizeof(prefs));
	prefs.frameInfo.blockSizeID = LZ4F_max4MB;
	size_t cap = LZ4F_compressBound(sizeof(zeros), &prefs) * 2 + BOMB_ZEROS / 200;
	uint8_t *out = malloc(cap);
	size_t pos;
	LZ4F_cctx *cctx;
	if (LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION)))
		bail("lz4 context");
	pos = LZ4F_compressBegin(cctx, out, cap, &prefs);
	for (size_t done = 0; done < BOMB_ZEROS; done += sizeof(zeros)) {
		size_t k =
			LZ4F_compressUpdate(cctx, out + pos, cap - pos, zeros, sizeof(zeros), NULL);
		if (LZ4F_isError(k))
			bail("lz4 compress: %s", LZ4F_getErrorName(k));
		pos += k;
	}
	pos += LZ4F_compressEnd(cctx, out + pos, cap - pos, NULL);
	LZ4F_freeCompressionContext(cctx);
	uint8_t *b = batch_wrap(out, pos, BATCH_CODEC_LZ4, 1000, len);
	free(out);
	return b;
}

static uint8_t *gzip_bomb(size_t *len)
{
	static uint8_t zeros[1 << 20];
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		bail("deflateInit2");
	size_t cap = BOMB_ZEROS / 900 + 65536;
	uint8_t *out = malloc(cap);
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	size_t n = BOMB_ZEROS;
	int rc = Z_OK;
	while (n > 0 && rc == Z_OK) {
		zs.next_in = zeros;
		zs.avail_in = sizeof(zeros);
		n -= sizeof(zeros);
		rc = deflate(&zs, n ? Z_NO_FLUSH : Z_FINISH);
	}
	if (rc != Z_STREAM_END)
		bail("gzip bomb");
	size_t olen = cap - zs.avail_out;
	deflateEnd(&zs);
	uint8_t *b = batch_wrap(out, olen, BATCH_CODEC_GZIP, 1000, len);
	free(out);
	return b;
}

static uint8_t *zstd_bomb(size_t *len)
{
	static uint8_t zeros[1 << 20];
	size_t cap = 1 << 20;
	uint8_t *out = malloc(cap);
	ZSTD_CStream *cs = ZSTD_createCStream();
	ZSTD_initCStream(cs, 3);
	ZSTD_outBuffer ob = { out, cap, 0 };
	for (size_t done = 0; done < BOMB_ZEROS; done += sizeof(zeros)) {
		ZSTD_inBuffer ib = { zeros, sizeof(zeros), 0 };
		while (ib.pos < ib.size)
			ZSTD_compressStream(cs, &ob, &ib);
	}
	while (ZSTD_endStream(cs, &ob) != 0)
		;
	ZSTD_freeCStream(cs);
	uint8_t *b = batch_wrap(out, ob.pos, BATCH_CODEC_ZSTD, 1000, len);
	free(out);
	return b;
}

struct bomber {
	const uint8_t *bombs[3];
	size_t lens[3];
	int errs[3];
	int rounds;
};

static void *bomber_main(void *arg)
{
	struct bomber *b = arg;
	struct kafka_writer w;
	kafka_writer_init(&w, 0);
	int fd = kc_connect(srv.port, 60);
	for (int i = 0; i < 3; i++)
		b->errs[i] = 0;
	for (int round = 0; round < b->rounds; round++)
		for (int i = 0; i < 3; i++) {
			int e = fd < 0 ? -100 :
					 produce(fd, &w, "bombs", 0, b->bombs[i], b->lens[i]);
			if (e == 0 || e == -100 || b->errs[i] == 0)
				b->errs[i] = e;
		}
	if (fd >= 0)
		close(fd);
	kafka_writer_fini(&w);
	return NULL;
}

static void test_bombs(int fd, struct kafka_writer *w)
{
	struct bomber b;
	pthread_t th[4];
	struct bomber each[4];

	b.bombs[0] = lz4_bomb(&b.lens[0]);
	b.bombs[1] = gzip_bomb(&b.lens[1]);
	b.bombs[2] = zstd_bomb(&b.lens[2]);
	b.rounds = 2;
	diag("bombs of 1 GiB of zeros: lz4 %zu, gzip %zu, zstd %zu bytes", b.lens[0], b.lens[1],
	     b.lens[2]);
	topic_create(fd, w, "bombs");

	long before = server_hwm_kib();
	for (int i = 0; i < 4; i++) {
		each[i] = b;
		pthread_create(&th[i], NULL, bomber_main, &each[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	long after = server_hwm_kib();

	static const char *const names[3] = { "lz4", "gzip", "zstd" };
	for (int c = 0; c < 3; c++) {
		int all_refused = 1;
		for (int i = 0; i < 4; i++)
			if (each[i].errs[c] == 0 || each[i].errs[c] == -100)
				all_refused = 0;
		ok(all_refused,
		   "a %s bomb with a valid CRC gets an error code on every connection "
		   "(%d %d %d %d)",
		   names[c], each[0].errs[c], each[1].errs[c], each[2].errs[c], each[3].errs[c]);
	}
	ok(after > 0 && after < (1L << 20),
	   "peak RSS of the server stays under 1 GiB with 4 connections sending bombs "
	   "(VmHWM %ld KiB, %ld before)",
	   after, before);
	ok(kserver_alive(&srv), "the server survives the bombs");

	/* A well-formed compressed batch still goes through afterwards. */
	struct batch_builder bb;
	uint8_t *plain = NULL;
	size_t plen = 0;
	batch_builder_init(&bb);
	for (int i = 0; i < 100; i++) {
		char val[32];
		snprintf(val, sizeof(val), "value-%d", i);
		struct record_in rec = { 1700000000000 + i,    NULL, -1, val,
					 (int32_t)strlen(val), NULL, 0 };
		batch_builder_add(&bb, &rec);
	}
	batch_builder_finish(&bb, &plain, &plen);
	batch_builder_fini(&bb);
	size_t zcap = ZSTD_compressBound(plen - BATCH_HEADER_SIZE), blen;
	uint8_t *z = malloc(zcap);
	size_t zlen =
		ZSTD_compress(z, zcap, plain + BATCH_HEADER_SIZE, plen - BATCH_HEADER_SIZE, 3);
	uint8_t *good = batch_wrap(z, zlen, BATCH_CODEC_ZSTD, 100, &blen);
	memcpy(good + 27, plain + 27, 16); /* timestamps */
	kafka_put_be32(good + 17, crc32c(0, good + 21, blen - 21));
	ok(produce(fd, w, "bombs", 0, good, blen) == 0,
	   "a well-formed zstd batch is accepted after the bombs");
	free(good);
	free(z);
	free(plain);
	for (int i = 0; i < 3; i++)
		free((void *)b.bombs[i]);
}

struct late_producer {
	const uint8_t *batch;
	size_t len;
	int err;
};

static void *late_producer_main(void *arg)
{
	struct late_producer *lp = arg;
	struct kafka_writer w;
	kafka_writer_init(&w, 0);
	usleep(500 * 1000);
	int fd = kc_connect(srv.port, 30);
	lp->err = fd < 0 ? -100 : produce(fd, &w, "poll", 0, lp->batch, lp->len);
	if (fd >= 0)
		close(fd);
	kafka_writer_fini(&w);
	return NULL;
}

/* A Fetch with some data but less than MinBytes waits its MaxWaitMs without
 * spinning, and what arrives meanwhile is appended to what it read. */
static void test_long_poll(int fd, struct kafka_writer *w)
{
	size_t l1, l2;
	uint8_t *b1 = plain_batch("first", 5, &l1);
	uint8_t *b2 = plain_batch("second", 5, &l2);
	uint8_t *rec;
	int32_t rlen;

	topic_create(fd, w, "poll");
	ok(produce(fd, w, "poll", 0, b1, l1) == 0, "a small batch is produced");
	long hz = sysconf(_SC_CLK_TCK);
	long t0 = server_cpu_ticks();
	int rc = fetch(fd, w, "poll", 0, 1 << 20, 2000, &rec, &rlen);
	long t1 = server_cpu_ticks();
	ok(rc == 0 && rlen == (int32_t)l1,
	   "Fetch with MinBytes above what is there answers with it "
	   "after MaxWaitMs (%d, %d bytes)",
	   rc, rlen);
	ok(t0 >= 0 && t1 >= 0 && t1 - t0 < hz / 2,
	   "the server used under 0.5 s of CPU during the 2 s long poll (%ld ticks of %ld/s)",
	   t1 - t0, hz);
	free(rec);

	pthread_t th;
	struct late_producer lp = { b2, l2, -1 };
	pthread_create(&th, NULL, late_producer_main, &lp);
	t0 = server_cpu_ticks();
	rc = fetch(fd, w, "poll", 0, 1 << 20, 2000, &rec, &rlen);
	t1 = server_cpu_ticks();
	pthread_join(th, NULL);
	ok(lp.err == 0 && rc == 0 && rlen == (int32_t)(l1 + l2),
	   "a batch produced during the long poll is added to the answer (%d bytes)", rlen);
	ok(rec && rlen == (int32_t)(l1 + l2) && memcmp(rec + 8, b1 + 8, l1 - 8) == 0 &&
		   memcmp(rec + l1 + 8, b2 + 8, l2 - 8) == 0 && kafka_get_be32(rec + l1 + 4) == 5,
	   "both batches, once each, in order (the second at offset 5)");
	ok(t1 - t0 < hz / 2, "and that poll used under 0.5 s of CPU too (%ld ticks)", t1 - t0);
	free(rec);
	free(b1);
	free(b2);
}

/* A second server with short connection timeouts: a silent connection
 * and one that never finishes its frame are closed; one whose size field
 * announces the maximum and then sends nothing costs no memory. */
static void test_idle(const char *bin)
{
	struct kserver s2;
	memset(&s2, 0, sizeof(s2));
	static const char *const args[] = {
		"--idle-ms", "1500", "--request-timeout-ms", "1000", "--max-request-bytes",
		"104857600", NULL
	};
	kserver_start(&s2, bin, args);

	int silent = kc_connect(s2.port, 10);
	int partial = kc_connect(s2.port, 10);
	uint8_t hdr[8];
	kafka_put_be32(hdr, 104857600);
	memcpy(hdr + 4, "\0\x12\0\0", 4);
	ok(partial >= 0 && kc_send_all(partial, hdr, sizeof(hdr)) == 0,
	   "a connection announces a 100 MiB request and sends 4 bytes of it");
	int64_t t0 = now_ms();
	ok(kc_closed(partial), "it is closed once the request receive timeout passes");
	int64_t t1 = now_ms();
	ok(kc_closed(silent), "a connection that sends nothing is closed once idle too long");
	int64_t t2 = now_ms();
	diag("closed after %lld and %lld ms", (long long)(t1 - t0), (long long)(t2 - t0));

	/* 200 connections announce 100 MiB each and send one byte more. */
	int fds[200], n = 0;
	for (int i = 0; i < 200; i++) {
		fds[n] = kc_connect(s2.port, 10);
		if (fds[n] >= 0 && kc_send_all(fds[n], hdr, 5) == 0)
			n++;
	}
	usleep(300 * 1000);
	char path[64], line[256];
	long vm = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)s2.pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &vm) == 1)
			break;
	if (f)
		fclose(f);
	int fd = kc_connect(s2.port, 10);
	struct kafka_writer w;
	struct kafka_reader r;
	kafka_writer_init(&w, 0);
	kc_begin(&w, 18, 0, ++corr, 0);
	uint8_t *buf = kc_roundtrip(fd, &w, &r);
	ok(n == 200 && buf && kafka_read_i16(&r) == 0,
	   "with 200 such connections open a new client is served (RSS %ld KiB)", vm);
	free(buf);
	close(fd);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	kafka_writer_fini(&w);
	ok(kserver_stop(&s2) == 0, "the second server stops cleanly");
	kserver_cleanup(&s2);
}

/* A fresh server gets a Produce and a Fetch, each naming WIDE_PARTS tiny
 * partition entries (a Produce entry with null records is 8 bytes, a Fetch
 * v4 entry 16): both are answered, entry by entry in request order, within
 * the client's generous receive timeout (a cost quadratic in the entries
 * would take hours), and the server's peak RSS grows by at most
 * WIDE_RSS_MULT times the request (the response alone is about 4 times a
 * Produce request of such entries). */
#define WIDE_PARTS (1 << 20)
#define WIDE_RSS_MULT 12
static void test_wide(const char *bin)
{
	struct kserver s2;
	memset(&s2, 0, sizeof(s2));
	static const char *const args[] = { "--partitions", "1", NULL };
	kserver_start(&s2, bin, args);
	int fd = kc_connect(s2.port, 120);
	struct kafka_writer w;
	struct kafka_reader r;
	kafka_writer_init(&w, 0);
	topic_create(fd, &w, "wide");

	long before = hwm_kib_of(s2.pid);
	kc_begin(&w, 0, 7, ++corr, 0);
	kafka_write_string(&w, false, NULL);
	kafka_write_i16(&w, 1);
	kafka_write_i32(&w, 30000);
	kafka_write_array(&w, false, 1);
	kafka_write_string(&w, false, "wide");
	kafka_write_array(&w, false, WIDE_PARTS);
	for (int32_t i = 0; i < WIDE_PARTS; i++) {
		kafka_write_i32(&w, i);
		kafka_write_bytes(&w, false, NULL, -1);
	}
	size_t req_len = w.len;
	uint8_t *buf = kc_roundtrip(fd, &w, &r);
	int good = buf && kafka_read_array(&r, false, false, 0) == 1 &&
		   kafka_str_eq(kafka_read_string(&r, false, false), "wide") &&
		   kafka_read_array(&r, false, false, 0) == WIDE_PARTS;
	for (int32_t i = 0; i < WIDE_PARTS && good; i++) {
		int32_t idx = kafka_read_i32(&r);
		int16_t e = kafka_read_i16(&r);
		int64_t off = kafka_read_i64(&r);
		kafka_read_i64(&r);
		kafka_read_i64(&r);
		good = idx == i && e == 2 && off == -1;
	}
	good = good && !kafka_reader_failed(&r);
	free(buf);
	long after = hwm_kib_of(s2.pid);
	ok(good, "a Produce of %d null-records entries (%zu bytes) is answered, each with 2",
	   WIDE_PARTS, req_len);
	ok(before > 0 && after > 0 && (after - before) * 1024 < (long)(WIDE_RSS_MULT * req_len),
	   "and the server's peak RSS grew by %ld KiB, under %d times the request", after - before,
	   WIDE_RSS_MULT);

	before = after;
	kc_begin(&w, 1, 4, ++corr, 0);
	kafka_write_i32(&w, -1); /* ReplicaId */
	kafka_write_i32(&w, 0); /* MaxWaitMs */
	kafka_write_i32(&w, 0); /* MinBytes */
	kafka_write_i32(&w, 1 << 20);
	kafka_write_i8(&w, 0);
	kafka_write_array(&w, false, 1);
	kafka_write_string(&w, false, "wide");
	kafka_write_array(&w, false, WIDE_PARTS);
	for (int32_t i = 0; i < WIDE_PARTS; i++) {
		kafka_write_i32(&w, i + 1); /* only partition 0 exists */
		kafka_write_i64(&w, 0);
		kafka_write_i32(&w, 1024);
	}
	req_len = w.len;
	buf = kc_roundtrip(fd, &w, &r);
	kafka_read_i32(&r);
	good = buf && kafka_read_array(&r, false, false, 0) == 1 &&
	       kafka_str_eq(kafka_read_string(&r, false, false), "wide") &&
	       kafka_read_array(&r, false, false, 0) == WIDE_PARTS;
	for (int32_t i = 0; i < WIDE_PARTS && good; i++) {
		int32_t idx = kafka_read_i32(&r);
		int16_t e = kafka_read_i16(&r);
		kafka_read_i64(&r);
		kafka_read_i64(&r);
		int32_t na = kafka_read_array(&r, false, true, 0);
		struct kafka_str rec = kafka_read_bytes(&r, false, true);
		good = idx == i + 1 && e == 3 && na <= 0 && rec.len <= 0;
	}
	good = good && !kafka_reader_failed(&r);
	free(buf);
	after = hwm_kib_of(s2.pid);
	ok(good, "a Fetch of %d unknown partitions (%zu bytes) is answered, each with 3",
	   WIDE_PARTS, req_len);
	ok(before > 0 && after > 0 && (after - before) * 1024 < (long)(WIDE_RSS_MULT * req_len),
	   "and the server's peak RSS grew by %ld KiB, under %d times the request", after - before,
	   WIDE_RSS_MULT);
	close(fd);
	kafka_writer_fini(&w);
	ok(kserver_stop(&s2) == 0, "the server stops cleanly");
	kserver_cleanup(&s2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		tap_skip_all("no kafka_server binary given");
	static const char *const args[] = { "--partitions", "1", NULL };
	kserver_start(&srv, argv[1], args);

	struct kafka_writer w;
	kafka_writer_init(&w, 0);
	int fd = kc_connect(srv.port, 60);
	if (fd < 0)
		bail("connect");
	test_long_poll(fd, &w);
	test_bombs(fd, &w);
	close(fd);
	test_idle(argv[1]);
	test_wide(argv[1]);
	ok(kserver_alive(&srv), "the server is still running");
	ok(kserver_stop(&srv) == 0, "it stops cleanly on SIGTERM");
	kafka_writer_fini(&w);
	kserver_cleanup(&srv);
	return tap_exit();
}
