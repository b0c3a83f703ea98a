/* test_protocol.c - the listener at the wire level: version negotiation,
 * produce (CRC, errors, idempotent retries, sequence gaps), fetch (byte for
 * byte, out of range, long poll woken by another connection), list offsets,
 * topic admin (and its limits), standalone offset commits, the group
 * admin APIs (ListGroups, DescribeGroups, OffsetDelete, DeleteGroups),
 * configs (IncrementalAlterConfigs, DescribeConfigs), CreatePartitions, ordering,
 * acks=0, malformed frames closing only their own connection, and Fetch
 * from an indexed segment returning the producer's compressed batch.
 *
 * Usage: test_kafka_protocol KAFKA_SERVER_BINARY
 */
#include <dirent.h>
#include <pthread.h>

#include "batch.h"
#include "crc32c.h"
#include "kclient.h"
#include "recode.h"

static struct kserver srv;
static int create_partitions(int fd, struct kafka_writer *w, const char *const *topics,
			     const int32_t *counts, int n, bool validate_only, int16_t *errs);
/* Correlation ids, shared by the test threads. */
static _Atomic int32_t corr = 100;
static int64_t last_list_ts; /* Timestamp of the last list_offset answer */

/* A batch of n records "rec-<i>" with producer fields set; malloc'd. */
static uint8_t *make_batch(int n, int64_t pid, int16_t epoch, int32_t seq, size_t *len)
{
	struct batch_builder b;
	uint8_t *out = NULL;
	char val[32];
	batch_builder_init(&b);
	for (int i = 0; i < n; i++) {
		snprintf(val, sizeof(val), "rec-%d", i);
		struct record_in r = { 1700000000000 + i,    NULL, -1, val,
				       (int32_t)strlen(val), NULL, 0 };
		batch_builder_add(&b, &r);
	}
	if (batch_builder_finish(&b, &out, len) != 0)
		bail("batch_builder_finish");
	batch_builder_fini(&b);
	for (int i = 0; i < 8; i++)
		out[43 + i] = (uint8_t)((uint64_t)pid >> (56 - 8 * i));
	out[51] = (uint8_t)((uint16_t)epoch >> 8);
	out[52] = (uint8_t)epoch;
	kafka_put_be32(out + 53, (uint32_t)seq);
	kafka_put_be32(out + 17, crc32c(0, out + 21, *len - 21));
	return out;
}

/* Produce one batch to topic/0; returns the partition error code, *offset
 * the base offset. -100 on transport failure. */
static int produce(int fd, struct kafka_writer *w, int16_t version, int16_t acks, const char *topic,
		   const uint8_t *batch, size_t len, int64_t *offset)
{
	return kc_produce(fd, w, ++corr, version, acks, 5000, topic, 0, batch, len, offset);
}

/* ListOffsets v1 for topic/0 at ts: the offset, or -100. */
static int64_t list_offset(int fd, struct kafka_writer *w, const char *topic, int64_t ts,
			   int16_t *err)
{
	struct kafka_reader r;
	kc_begin(w, 2, 1, ++corr, 0);
	kafka_write_i32(w, -1);
	kc_write_one_partition(w, topic, 0);
	kafka_write_i64(w, ts);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	if (!buf)
		return -100;
	*err = kc_read_one_partition(&r);
	last_list_ts = kafka_read_i64(&r);
	int64_t off = kafka_read_i64(&r);
	int bad = kafka_reader_failed(&r);
	free(buf);
	return bad ? -100 : off;
}

/* Fetch v11 topic/0 from offset (min_bytes 1, up to 1 MiB). Returns the
 * error code, copies the records into *records (malloc'd) / *rlen, *hw the
 * high watermark. */
static int fetch(int fd, struct kafka_writer *w, const char *topic, int64_t offset,
		 int32_t max_wait, uint8_t **records, int32_t *rlen, int64_t *hw)
{
	return kc_fetch(fd, w, ++corr, topic, offset, 1, max_wait, 1 << 20, records, rlen, hw);
}

static void test_api_versions(int fd, struct kafka_writer *w)
{
	struct kafka_reader r;
	uint8_t *buf;

	kc_begin(w, 18, 0, ++corr, 0);
	buf = kc_roundtrip(fd, w, &r);
	int16_t err = kafka_read_i16(&r);
	int32_t n = kafka_read_array(&r, false, false, 6);
	int produce_max = -1, fetch_min = -1, av_max = -1;
	for (int32_t i = 0; i < n; i++) {
		int16_t k = kafka_read_i16(&r), mn = kafka_read_i16(&r), mx = kafka_read_i16(&r);
		if (k == 0)
			produce_max = mx;
		if (k == 1)
			fetch_min = mn;
		if (k == 18)
			av_max = mx;
	}
	ok(buf && !kafka_reader_failed(&r) && kafka_reader_left(&r) == 0 && err == 0,
	   "ApiVersions v0 answers with the v0 body");
	ok(produce_max >= 7 && fetch_min == 4 && av_max == 3,
	   "it lists Produce up to v%d, Fetch from v%d, ApiVersions up to v%d", produce_max,
	   fetch_min, av_max);
	free(buf);

	/* v3: request header v2, compact body; response header v0. */
	kc_begin(w, 18, 3, ++corr, 1);
	kafka_write_string(w, true, "kclient");
	kafka_write_string(w, true, "1.0");
	kafka_write_tags(w);
	buf = kc_roundtrip(fd, w, &r);
	err = kafka_read_i16(&r);
	n = kafka_read_array(&r, true, false, 4);
	for (int32_t i = 0; i < n; i++) {
		kafka_read_i16(&r);
		kafka_read_i16(&r);
		kafka_read_i16(&r);
		kafka_read_tags(&r);
	}
	kafka_read_i32(&r);
	kafka_read_tags(&r);
	ok(buf && !kafka_reader_failed(&r) && kafka_reader_left(&r) == 0 && err == 0 && n >= 15,
	   "ApiVersions v3 (flexible) answers %d APIs", n);
	free(buf);

	/* An ApiVersions version above ours: error 35 and the v0 body. */
	kc_begin(w, 18, 9, ++corr, 1);
	kafka_write_string(w, true, "kclient");
	kafka_write_string(w, true, "1.0");
	kafka_write_tags(w);
	buf = kc_roundtrip(fd, w, &r);
	err = kafka_read_i16(&r);
	n = kafka_read_array(&r, false, false, 6);
	kafka_read_skip(&r, (size_t)n * 6);
	ok(buf && !kafka_reader_failed(&r) && kafka_reader_left(&r) == 0 && err == 35 && n >= 15,
	   "ApiVersions v9 gets error 35 with the v0 list");
	free(buf);
}

static void test_metadata_admin(int fd, struct kafka_writer *w)
{
	struct kafka_reader r;
	uint8_t *buf;

	/* Metadata v4 with auto-create for "proto". */
	kc_begin(w, 3, 4, ++corr, 0);
	kafka_write_array(w, false, 2);
	kafka_write_string(w, false, "proto");
	kafka_write_string(w, false, "bad/name");
	kafka_write_bool(w, true);
	buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	int32_t nb = kafka_read_array(&r, false, false, 0);
	int32_t node = kafka_read_i32(&r);
	struct kafka_str host = kafka_read_string(&r, false, false);
	int32_t port = kafka_read_i32(&r);
	kafka_read_string(&r, false, true);
	kafka_read_string(&r, false, true);
	int32_t controller = kafka_read_i32(&r);
	int32_t nt = kafka_read_array(&r, false, false, 0);
	int16_t e1 = kafka_read_i16(&r);
	int n1 = kafka_str_eq(kafka_read_string(&r, false, false), "proto");
	kafka_read_bool(&r);
	int32_t np = kafka_read_array(&r, false, false, 0);
	for (int32_t i = 0; i < np; i++) {
		kafka_read_i16(&r);
		kafka_read_i32(&r);
		kafka_read_i32(&r);
		int32_t a = kafka_read_array(&r, false, false, 4);
		kafka_read_skip(&r, (size_t)a * 4);
		a = kafka_read_array(&r, false, false, 4);
		kafka_read_skip(&r, (size_t)a * 4);
	}
	int16_t e2 = kafka_read_i16(&r);
	ok(buf && !kafka_reader_failed(&r) && nb == 1 && node == 1 && controller == 1 &&
		   kafka_str_eq(host, "127.0.0.1") && port == srv.port,
	   "Metadata v4 advertises broker 1 at 127.0.0.1:%d", srv.port);
	ok(nt == 2 && e1 == 0 && n1 && np == 2, "unknown topic auto-created with 2 partitions");
	ok(e2 == 17, "an invalid topic name gets 17 (got %d)", e2);
	free(buf);

	/* CreateTopics v4 / DeleteTopics v3. */
	for (int round = 0; round < 2; round++) {
		kc_begin(w, 19, 4, ++corr, 0);
		kafka_write_array(w, false, 2);
		kafka_write_string(w, false, "ct");
		kafka_write_i32(w, 3);
		kafka_write_i16(w, -1);
		kafka_write_array(w, false, 0);
		kafka_write_array(w, false, 1);
		kafka_write_string(w, false, "retention.ms");
		kafka_write_string(w, false, "1000");
		kafka_write_string(w, false, "..");
		kafka_write_i32(w, 1);
		kafka_write_i16(w, 1);
		kafka_write_array(w, false, 0);
		kafka_write_array(w, false, 0);
		kafka_write_i32(w, 1000);
		kafka_write_bool(w, false);
		buf = kc_roundtrip(fd, w, &r);
		kafka_read_i32(&r);
		kafka_read_array(&r, false, false, 0);
		kafka_read_string(&r, false, false);
		int16_t c1 = kafka_read_i16(&r);
		kafka_read_string(&r, false, true);
		kafka_read_string(&r, false, false);
		int16_t c2 = kafka_read_i16(&r);
		kafka_read_string(&r, false, true);
		if (round == 0)
			ok(buf && !kafka_reader_failed(&r) && c1 == 0 && c2 == 17,
			   "CreateTopics creates ct (%d) and refuses '..' (%d)", c1, c2);
		else
			ok(buf && !kafka_reader_failed(&r) && c1 == 36,
			   "creating ct again gets 36 (got %d)", c1);
		free(buf);
	}
	int16_t err;
	int64_t off = list_offset(fd, w, "ct", -1, &err);
	ok(off == 0 && err == 0, "ct is empty");
	for (int round = 0; round < 2; round++) {
		kc_begin(w, 20, 3, ++corr, 0);
		kafka_write_array(w, false, 1);
		kafka_write_string(w, false, "ct");
		kafka_write_i32(w, 1000);
		buf = kc_roundtrip(fd, w, &r);
		kafka_read_i32(&r);
		kafka_read_array(&r, false, false, 0);
		kafka_read_string(&r, false, false);
		int16_t d = kafka_read_i16(&r);
		ok(buf && !kafka_reader_failed(&r) && d == (round == 0 ? 0 : 3),
		   "DeleteTopics ct: %d", d);
		free(buf);
	}

	/* A name twice in one CreateTopics: 42 for both, nothing created. */
	kc_begin(w, 19, 4, ++corr, 0);
	kafka_write_array(w, false, 3);
	static const char *const names[3] = { "dup", "single", "dup" };
	for (int i = 0; i < 3; i++) {
		kafka_write_string(w, false, names[i]);
		kafka_write_i32(w, 1);
		kafka_write_i16(w, -1);
		kafka_write_array(w, false, 0);
		kafka_write_array(w, false, 0);
	}
	kafka_write_i32(w, 1000);
	kafka_write_bool(w, false);
	buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	int16_t codes[3] = { -100, -100, -100 };
	int32_t nr = kafka_read_array(&r, false, false, 0);
	for (int i = 0; i < 3 && i < nr; i++) {
		kafka_read_string(&r, false, false);
		codes[i] = kafka_read_i16(&r);
		kafka_read_string(&r, false, true);
	}
	ok(buf && !kafka_reader_failed(&r) && codes[0] == 42 && codes[2] == 42 && codes[1] == 0,
	   "CreateTopics naming a topic twice: 42 INVALID_REQUEST for both, the other created "
	   "(%d %d %d)",
	   codes[0], codes[1], codes[2]);
	free(buf);
	list_offset(fd, w, "dup", -1, &err);
	ok(err == 3, "and the duplicated topic does not exist (%d)", err);
}

struct delayed_produce {
	int port;
};

static void *delayed_producer(void *arg)
{
	struct delayed_produce *d = arg;
	struct kafka_writer w;
	size_t len;
	int64_t off;
	usleep(300000);
	int fd = kc_connect(d->port, 10);
	kafka_writer_init(&w, 0);
	uint8_t *b = make_batch(2, -1, -1, -1, &len);
	produce(fd, &w, 7, 1, "proto", b, len, &off);
	free(b);
	kafka_writer_fini(&w);
	close(fd);
	return NULL;
}

static void test_produce_fetch(int fd, struct kafka_writer *w)
{
	size_t len;
	int64_t off, hw;
	int16_t err;
	uint8_t *rec;
	int32_t rlen;

	uint8_t *b = make_batch(5, -1, -1, -1, &len);
	uint8_t *orig = malloc(len);
	memcpy(orig, b, len);
	ok(produce(fd, w, 7, -1, "proto", b, len, &off) == 0 && off == 0,
	   "Produce v7 acks=-1 appends at offset 0");
	ok(produce(fd, w, 3, 1, "proto", b, len, &off) == 0 && off == 5,
	   "Produce v3 appends the next batch at offset 5");

	int rc = fetch(fd, w, "proto", 0, 0, &rec, &rlen, &hw);
	ok(rc == 0 && hw == 10 && rlen == (int32_t)(2 * len),
	   "Fetch v11 returns both batches (hw %lld)", (long long)hw);
	ok(rec && memcmp(rec + 8, orig + 8, len - 8) == 0 &&
		   memcmp(rec + len + 8, orig + 8, len - 8) == 0,
	   "fetched batches are the produced bytes (after the base offset)");
	ok(rec && kafka_get_be32(rec + 4) == 0 && kafka_get_be32(rec + len + 4) == 5,
	   "their base offsets are 0 and 5");
	free(rec);

	rc = fetch(fd, w, "proto", 11, 0, &rec, &rlen, &hw);
	ok(rc == 1, "Fetch past the high watermark gets 1 OFFSET_OUT_OF_RANGE (got %d)", rc);
	free(rec);
	rc = fetch(fd, w, "nosuch", 0, 0, &rec, &rlen, &hw);
	ok(rc == 3, "Fetch of an unknown topic gets 3 (got %d)", rc);
	free(rec);

	/* Bad CRC: refused, nothing appended. */
	b[len - 1] ^= 1;
	ok(produce(fd, w, 7, -1, "proto", b, len, &off) == 2, "a batch with a bad CRC gets 2");
	b[len - 1] ^= 1;
	ok(list_offset(fd, w, "proto", -1, &err) == 10 && err == 0, "and nothing was appended");
	ok(produce(fd, w, 2, 1, "proto", b, len, &off) == 43, "Produce v2 gets 43");
	ok(produce(fd, w, 7, 1, "nosuch", b, len, &off) == 3, "Produce to an unknown topic gets 3");
	ok(produce(fd, w, 7, 1, "proto", b, len - 1, &off) == 2, "a truncated batch gets 2");
	{
		/* lastOffsetDelta that does not match recordCount (valid CRC). */
		uint8_t *m = make_batch(5, -1, -1, -1, &len);
		kafka_put_be32(m + 23, 5);
		kafka_put_be32(m + 17, crc32c(0, m + 21, len - 21));
		ok(produce(fd, w, 7, 1, "proto", m, len, &off) == 2,
		   "a batch whose lastOffsetDelta + 1 != recordCount gets 2 CORRUPT_MESSAGE");
		free(m);
		ok(list_offset(fd, w, "proto", -1, &err) == 10, "and nothing was appended");
	}
	ok(list_offset(fd, w, "proto", -2, &err) == 0 && err == 0, "ListOffsets earliest = 0");
	ok(last_list_ts == -1, "with Timestamp -1 (got %lld)", (long long)last_list_ts);
	off = list_offset(fd, w, "proto", 1700000000003, &err);
	/* Kafka answers the first record with timestamp >= ts, and its
	 * timestamp. */
	ok(off == 3 && err == 0 && last_list_ts == 1700000000003,
	   "ListOffsets by timestamp finds the first record at or after it (got %lld, ts %lld, %d)",
	   (long long)off, (long long)last_list_ts, err);
	off = list_offset(fd, w, "proto", 4000000000000, &err);
	ok(off == -1 && last_list_ts == -1 && err == 0,
	   "ListOffsets past every timestamp: offset -1, timestamp -1, as Kafka (got %lld, %lld)",
	   (long long)off, (long long)last_list_ts);

	/* Long poll woken by a produce on another connection. */
	pthread_t th;
	struct delayed_produce d = { srv.port };
	pthread_create(&th, NULL, delayed_producer, &d);
	rc = fetch(fd, w, "proto", 10, 20000, &rec, &rlen, &hw);
	pthread_join(th, NULL);
	ok(rc == 0 && rlen > 0 && hw == 12, "a long-polling Fetch returns data produced meanwhile");
	free(rec);
	rc = fetch(fd, w, "proto", 12, 200, &rec, &rlen, &hw);
	ok(rc == 0 && rlen == 0, "a Fetch at the end times out empty");
	free(rec);
	free(b);
	free(orig);
}

static int64_t init_producer_id(int fd, struct kafka_writer *w)
{
	struct kafka_reader r;
	kc_begin(w, 22, 1, ++corr, 0);
	kafka_write_string(w, false, NULL);
	kafka_write_i32(w, 60000);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	int16_t err = kafka_read_i16(&r);
	int64_t pid = kafka_read_i64(&r);
	int16_t epoch = kafka_read_i16(&r);
	int bad = !buf || kafka_reader_failed(&r) || err || epoch != 0;
	free(buf);
	return bad ? -1 : pid;
}

static void test_idempotence(int fd, struct kafka_writer *w)
{
	size_t len;
	int64_t off, off2;
	int16_t err;
	int64_t pid = init_producer_id(fd, w);
	int64_t pid2 = init_producer_id(fd, w);
	ok(pid >= 0 && pid2 >= 0 && pid != pid2, "InitProducerId hands out distinct ids");
	{
		struct kafka_reader r;
		kc_begin(w, 22, 1, ++corr, 0);
		kafka_write_string(w, false, "txn-1");
		kafka_write_i32(w, 60000);
		uint8_t *buf = kc_roundtrip(fd, w, &r);
		kafka_read_i32(&r);
		int16_t e = kafka_read_i16(&r);
		int64_t tpid = kafka_read_i64(&r);
		ok(buf && e == 15 && tpid == -1,
		   "InitProducerId with a transactional id gets 15 COORDINATOR_NOT_AVAILABLE (%d)",
		   e);
		free(buf);
	}

	int64_t start = list_offset(fd, w, "proto", -1, &err);
	uint8_t *b0 = make_batch(3, pid, 0, 0, &len);
	int rc = produce(fd, w, 7, -1, "proto", b0, len, &off);
	ok(rc == 0 && off == start, "idempotent batch seq 0 appended at %lld", (long long)off);
	size_t len0 = len;
	uint8_t *b0r = make_batch(3, pid, 0, 0, &len);
	ok(produce(fd, w, 7, -1, "proto", b0r, len, &off2) == 0 && off2 == off,
	   "its retry is answered with the original offset");
	ok(list_offset(fd, w, "proto", -1, &err) == start + 3, "and not appended twice");
	uint8_t *gap = make_batch(1, pid, 0, 7, &len);
	ok(produce(fd, w, 7, -1, "proto", gap, len, &off) == 45,
	   "a sequence gap gets 45 OUT_OF_ORDER_SEQUENCE_NUMBER");
	uint8_t *b1 = make_batch(2, pid, 0, 3, &len);
	size_t len1 = len;
	ok(produce(fd, w, 7, -1, "proto", b1, len, &off) == 0 && off == start + 3,
	   "the next sequence is appended");
	ok(produce(fd, w, 7, -1, "proto", b0r, len0, &off2) == 0 && off2 == start,
	   "an older in-flight batch retried is still answered with its offset");
	ok(list_offset(fd, w, "proto", -1, &err) == start + 5, "log end is right after both");

	/* A corrupt batch changes no producer state: a newer epoch with a bad
	 * CRC does not make the table forget epoch 0, so b0's retry is still
	 * recognised and not stored twice. */
	uint8_t *e1 = make_batch(1, pid, 1, 0, &len);
	e1[len - 1] ^= 1;
	ok(produce(fd, w, 7, -1, "proto", e1, len, &off) == 2,
	   "an epoch+1 batch with a bad CRC gets 2 CORRUPT_MESSAGE");
	ok(produce(fd, w, 7, -1, "proto", b0r, len0, &off2) == 0 && off2 == start,
	   "the epoch-0 retry after it is still answered with its offset (%lld)", (long long)off2);
	ok(list_offset(fd, w, "proto", -1, &err) == start + 5,
	   "and stored once (log end %lld, want %lld)",
	   (long long)list_offset(fd, w, "proto", -1, &err), (long long)(start + 5));
	/* A retry whose bytes were damaged is not taken for the stored batch
	 * by its (unchecked) header. */
	b0r[len0 - 1] ^= 1;
	ok(produce(fd, w, 7, -1, "proto", b0r, len0, &off2) == 2,
	   "a retry with a bad CRC gets 2, not the stored batch's offset");
	b0r[len0 - 1] ^= 1;
	/* The newer epoch, intact, is taken and fences epoch 0. */
	e1[len - 1] ^= 1;
	ok(produce(fd, w, 7, -1, "proto", e1, len, &off) == 0 && off == start + 5,
	   "the epoch+1 batch intact is appended");
	ok(produce(fd, w, 7, -1, "proto", b1, len1, &off) == 47,
	   "after it epoch 0 gets 47 INVALID_PRODUCER_EPOCH");
	ok(list_offset(fd, w, "proto", -1, &err) == start + 6, "log end is right after it");
	free(e1);
	free(b0);
	free(b0r);
	free(gap);
	free(b1);
}

static void test_offsets(int fd, struct kafka_writer *w)
{
	struct kafka_reader r;
	uint8_t *buf;

	kc_begin(w, 8, 2, ++corr, 0);
	kafka_write_string(w, false, "standalone");
	kafka_write_i32(w, -1);
	kafka_write_string(w, false, "");
	kafka_write_i64(w, -1);
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, "proto");
	kafka_write_array(w, false, 2);
	kafka_write_i32(w, 1);
	kafka_write_i64(w, 42);
	kafka_write_string(w, false, "meta");
	kafka_write_i32(w, 9);
	kafka_write_i64(w, 1);
	kafka_write_string(w, false, NULL);
	buf = kc_roundtrip(fd, w, &r);
	kafka_read_array(&r, false, false, 0);
	kafka_read_string(&r, false, false);
	kafka_read_array(&r, false, false, 0);
	kafka_read_i32(&r);
	int16_t e1 = kafka_read_i16(&r);
	kafka_read_i32(&r);
	int16_t e2 = kafka_read_i16(&r);
	ok(buf && !kafka_reader_failed(&r) && e1 == 0 && e2 == 3,
	   "OffsetCommit v2 standalone: ok for partition 1, 3 for partition 9");
	free(buf);

	kc_begin(w, 9, 5, ++corr, 0);
	kafka_write_string(w, false, "standalone");
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, "proto");
	kafka_write_array(w, false, 2);
	kafka_write_i32(w, 1);
	kafka_write_i32(w, 0);
	buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	kafka_read_array(&r, false, false, 0);
	kafka_read_string(&r, false, false);
	kafka_read_array(&r, false, false, 0);
	kafka_read_i32(&r);
	int64_t o1 = kafka_read_i64(&r);
	kafka_read_i32(&r);
	struct kafka_str m1 = kafka_read_string(&r, false, true);
	kafka_read_i16(&r);
	kafka_read_i32(&r);
	int64_t o2 = kafka_read_i64(&r);
	kafka_read_i32(&r);
	kafka_read_string(&r, false, true);
	kafka_read_i16(&r);
	int16_t top = kafka_read_i16(&r);
	ok(buf && !kafka_reader_failed(&r) && kafka_reader_left(&r) == 0 && o1 == 42 &&
		   kafka_str_eq(m1, "meta") && o2 == -1 && top == 0,
	   "OffsetFetch v5 returns 42/meta and -1 for an uncommitted partition");
	free(buf);

	/* Metadata: 4096 bytes are kept, 4097 get 12. */
	static char big[4098];
	memset(big, 'm', sizeof(big) - 1);
	int16_t me[2];
	for (int k = 0; k < 2; k++) {
		big[4096 + k] = 0;
		kc_begin(w, 8, 2, ++corr, 0);
		kafka_write_string(w, false, "standalone");
		kafka_write_i32(w, -1);
		kafka_write_string(w, false, "");
		kafka_write_i64(w, -1);
		kafka_write_array(w, false, 1);
		kafka_write_string(w, false, "proto");
		kafka_write_array(w, false, 1);
		kafka_write_i32(w, 0);
		kafka_write_i64(w, 7 + k);
		kafka_write_string(w, false, big);
		buf = kc_roundtrip(fd, w, &r);
		kafka_read_array(&r, false, false, 0);
		kafka_read_string(&r, false, false);
		kafka_read_array(&r, false, false, 0);
		kafka_read_i32(&r);
		me[k] = buf && !kafka_reader_failed(&r) ? kafka_read_i16(&r) : -100;
		free(buf);
		big[4096 + k] = 'm';
	}
	ok(me[0] == 0 && me[1] == 12,
	   "OffsetCommit metadata of 4096 bytes is kept, 4097 gets 12 OFFSET_METADATA_TOO_LARGE "
	   "(%d, %d)",
	   me[0], me[1]);

	/* Heartbeat for a group nobody joined. */
	kc_begin(w, 12, 3, ++corr, 0);
	kafka_write_string(w, false, "nogroup");
	kafka_write_i32(w, 1);
	kafka_write_string(w, false, "nobody");
	kafka_write_string(w, false, NULL);
	buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	ok(buf && kafka_read_i16(&r) == 25, "Heartbeat from an unknown member gets 25");
	free(buf);
}

static void test_ordering(int fd, struct kafka_writer *w)
{
	size_t len;
	/* acks=0 produce (no response), then ApiVersions twice, pipelined. */
	uint8_t *b = make_batch(1, -1, -1, -1, &len);
	struct kafka_writer all;
	kafka_writer_init(&all, 0);
	kc_begin(w, 0, 7, 500, 0);
	kafka_write_string(w, false, NULL);
	kafka_write_i16(w, 0);
	kafka_write_i32(w, 5000);
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, "proto");
	kafka_write_array(w, false, 1);
	kafka_write_i32(w, 0);
	kafka_write_bytes(w, false, b, (int32_t)len);
	kafka_write_i32_at(w, 0, (int32_t)(w->len - 4));
	kafka_write_raw(&all, w->buf, w->len);
	for (int i = 0; i < 3; i++) {
		kc_begin(w, i == 1 ? 3 : 18, i == 1 ? 1 : 0, 501 + i, 0);
		if (i == 1)
			kafka_write_array(w, false, 0);
		kafka_write_i32_at(w, 0, (int32_t)(w->len - 4));
		kafka_write_raw(&all, w->buf, w->len);
	}
	kc_send_all(fd, all.buf, all.len);
	int order_ok = 1;
	for (int i = 0; i < 3; i++) {
		uint8_t *buf;
		size_t n;
		if (kc_recv(fd, &buf, &n) < 0) {
			order_ok = 0;
			break;
		}
		if (kafka_get_be32(buf) != (uint32_t)(501 + i))
			order_ok = 0;
		free(buf);
	}
	ok(order_ok, "pipelined requests are answered in order, acks=0 produce not at all");
	kafka_writer_fini(&all);
	free(b);
}

/* A malformed request closes its connection; others go on. */
static void test_malformed(struct kafka_writer *w)
{
	static const struct {
		const char *what;
		uint8_t bytes[16];
		size_t len;
	} cases[] = {
		{ "a size below the header", { 0, 0, 0, 4, 0, 18, 0, 0 }, 8 },
		{ "a negative size", { 0xff, 0xff, 0xff, 0xf0 }, 4 },
		{ "a size above max_request_bytes", { 0x7f, 0xff, 0xff, 0xff, 0, 18 }, 6 },
		{ "an unknown api key", { 0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0, 0 }, 14 },
		{ "an unsupported Metadata version",
		  { 0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 1, 0, 0 },
		  14 },
		{ "a truncated Metadata body",
		  { 0, 0, 0, 12, 0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9 },
		  16 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = kc_connect(srv.port, 10);
		kc_send_all(fd, cases[i].bytes, cases[i].len);
		ok(kc_closed(fd), "%s closes the connection", cases[i].what);
		close(fd);
	}
	int fd = kc_connect(srv.port, 10);
	struct kafka_reader r;
	kc_begin(w, 18, 0, ++corr, 0);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	ok(buf && kafka_read_i16(&r) == 0, "a new connection is served afterwards");
	free(buf);
	close(fd);
}

/* A second server whose producer-state table holds 4 entries evicted
 * after 500 ms idle: a fifth producer is refused (never appended without
 * the duplicate check) until one is idle long enough. */
static void test_producer_table(const char *bin, struct kafka_writer *w)
{
	struct kserver s2;
	memset(&s2, 0, sizeof(s2));
	static const char *const args[] = {
		"--partitions", "4", "--max-producer-states", "4", "--producer-evict-ms",
		"500",		NULL
	};
	kserver_start(&s2, bin, args);
	int fd = kc_connect(s2.port, 30);
	struct kafka_reader r;
	kc_begin(w, 3, 4, ++corr, 0);
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, "pt");
	kafka_write_bool(w, true);
	free(kc_roundtrip(fd, w, &r));

	size_t len;
	int64_t off, off2, pids[5];
	int16_t err;
	uint8_t *b[5];
	int all = 1;
	for (int i = 0; i < 5; i++) {
		pids[i] = init_producer_id(fd, w);
		b[i] = make_batch(2, pids[i], 0, 0, &len);
	}
	for (int i = 0; i < 4; i++)
		all = all && produce(fd, w, 7, -1, "pt", b[i], len, &off) == 0;
	ok(all, "four idempotent producers append");
	int rc = produce(fd, w, 7, -1, "pt", b[4], len, &off);
	ok(rc == 7, "a fifth, with the table full of fresh states, gets 7 REQUEST_TIMED_OUT (%d)",
	   rc);
	ok(list_offset(fd, w, "pt", -1, &err) == 8, "and is not appended");
	ok(produce(fd, w, 7, -1, "pt", b[0], len, &off) == 0 && off == 0,
	   "a tracked producer's retry is still answered with its offset");
	usleep(700 * 1000);
	ok(produce(fd, w, 7, -1, "pt", b[4], len, &off) == 0 && off == 8,
	   "once states are idle past the eviction time the fifth gets in (offset %lld)",
	   (long long)off);
	ok(produce(fd, w, 7, -1, "pt", b[4], len, &off2) == 0 && off2 == 8 &&
		   list_offset(fd, w, "pt", -1, &err) == 10,
	   "and its retry is recognised");
	for (int i = 0; i < 5; i++)
		free(b[i]);

	/* One Produce for partitions 3, 2, 1, 0 of "pt", partition 1 again,
	 * and an unknown topic: answered in request order. */
	uint8_t *plain = make_batch(3, -1, -1, -1, &len);
	kc_begin(w, 0, 7, ++corr, 0);
	kafka_write_string(w, false, NULL);
	kafka_write_i16(w, -1);
	kafka_write_i32(w, 5000);
	kafka_write_array(w, false, 2);
	kafka_write_string(w, false, "pt");
	static const int32_t order[5] = { 3, 2, 1, 0, 1 };
	kafka_write_array(w, false, 5);
	for (int i = 0; i < 5; i++) {
		kafka_write_i32(w, order[i]);
		kafka_write_bytes(w, false, plain, (int32_t)len);
	}
	kafka_write_string(w, false, "nosuch-topic");
	kafka_write_array(w, false, 1);
	kafka_write_i32(w, 0);
	kafka_write_bytes(w, false, plain, (int32_t)len);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	int good = kafka_read_array(&r, false, false, 0) == 2 &&
		   kafka_str_eq(kafka_read_string(&r, false, false), "pt") &&
		   kafka_read_array(&r, false, false, 0) == 5;
	static const int64_t want[5] = { 0, 0, 0, 10, 3 };
	for (int i = 0; i < 5; i++) {
		int32_t idx = kafka_read_i32(&r);
		int16_t e = kafka_read_i16(&r);
		int64_t o = kafka_read_i64(&r);
		kafka_read_i64(&r);
		kafka_read_i64(&r);
		if (idx != order[i] || e != 0 || o != want[i]) {
			diag("partition %d: error %d offset %lld", idx, e, (long long)o);
			good = 0;
		}
	}
	good = good && kafka_str_eq(kafka_read_string(&r, false, false), "nosuch-topic") &&
	       kafka_read_array(&r, false, false, 0) == 1 && kafka_read_i32(&r) == 0 &&
	       kafka_read_i16(&r) == 3;
	ok(buf && good && !kafka_reader_failed(&r),
	   "a Produce to four partitions (one twice) and an unknown topic is answered in order");
	free(buf);
	ok(list_offset(fd, w, "pt", -1, &err) == 13, "every batch landed");

	/* Four distinct partitions: appended at once. */
	kc_begin(w, 0, 7, ++corr, 0);
	kafka_write_string(w, false, NULL);
	kafka_write_i16(w, -1);
	kafka_write_i32(w, 5000);
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, "pt");
	kafka_write_array(w, false, 4);
	for (int i = 0; i < 4; i++) {
		kafka_write_i32(w, i);
		kafka_write_bytes(w, false, plain, (int32_t)len);
	}
	buf = kc_roundtrip(fd, w, &r);
	good = kafka_read_array(&r, false, false, 0) == 1 &&
	       kafka_str_eq(kafka_read_string(&r, false, false), "pt") &&
	       kafka_read_array(&r, false, false, 0) == 4;
	static const int64_t want4[4] = { 13, 6, 3, 3 };
	for (int i = 0; i < 4; i++) {
		int32_t idx = kafka_read_i32(&r);
		int16_t e = kafka_read_i16(&r);
		int64_t o = kafka_read_i64(&r);
		kafka_read_i64(&r);
		kafka_read_i64(&r);
		if (idx != i || e != 0 || o != want4[i]) {
			diag("partition %d: error %d offset %lld", idx, e, (long long)o);
			good = 0;
		}
	}
	ok(buf && good && !kafka_reader_failed(&r),
	   "a Produce to four distinct partitions appends to each, answered in order");
	free(buf);
	free(plain);
	close(fd);
	ok(kserver_stop(&s2) == 0, "the second server stops cleanly");
	kserver_cleanup(&s2);
}

/* CreateTopics v4 of one topic with n partitions: its error code (-100 on
 * transport failure), the error message into msg. */
static int create_topic(int fd, struct kafka_writer *w, const char *name, int32_t n, char *msg,
			size_t cap)
{
	struct kafka_reader r;
	kc_begin(w, 19, 4, ++corr, 0);
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, name);
	kafka_write_i32(w, n);
	kafka_write_i16(w, -1);
	kafka_write_array(w, false, 0);
	kafka_write_array(w, false, 0);
	kafka_write_i32(w, 1000);
	kafka_write_bool(w, false);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	kafka_read_array(&r, false, false, 0);
	kafka_read_string(&r, false, false);
	int16_t err = kafka_read_i16(&r);
	struct kafka_str m = kafka_read_string(&r, false, true);
	size_t ml = m.len > 0 ? (size_t)m.len : 0;
	if (ml >= cap)
		ml = cap - 1;
	memcpy(msg, m.ptr ? m.ptr : "", ml);
	msg[ml] = 0;
	int bad = !buf || kafka_reader_failed(&r);
	free(buf);
	return bad ? -100 : err;
}

/* Metadata v4 of one topic with auto-create: the topic's error code. */
static int metadata_autocreate(int fd, struct kafka_writer *w, const char *name)
{
	struct kafka_reader r;
	kc_begin(w, 3, 4, ++corr, 0);
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, name);
	kafka_write_bool(w, true);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	int32_t nb = kafka_read_array(&r, false, false, 0);
	for (int32_t i = 0; i < nb; i++) {
		kafka_read_i32(&r);
		kafka_read_string(&r, false, false);
		kafka_read_i32(&r);
		kafka_read_string(&r, false, true);
	}
	kafka_read_string(&r, false, true);
	kafka_read_i32(&r);
	kafka_read_array(&r, false, false, 0);
	int16_t err = kafka_read_i16(&r);
	int bad = !buf || kafka_reader_failed(&r);
	free(buf);
	return bad ? -100 : err;
}

/* A server with max.topics=2 and max.partitions=10 (2 partitions by
 * default): creations past either limit, by CreateTopics or by Metadata's
 * auto-create, get 44 POLICY_VIOLATION and create nothing. */
static void test_topic_limits(const char *bin, struct kafka_writer *w)
{
	struct kserver s3;
	memset(&s3, 0, sizeof(s3));
	static const char *const args[] = {
		"--partitions", "2", "--set", "max.topics=2", "--set", "max.partitions=10", NULL
	};
	kserver_start(&s3, bin, args);
	int fd = kc_connect(s3.port, 30);
	char msg[256];
	int16_t err;
	ok(metadata_autocreate(fd, w, "lim-a") == 0, "Metadata auto-creates a topic of 2");
	int rc = create_topic(fd, w, "lim-b", 9, msg, sizeof(msg));
	ok(rc == 44 && strstr(msg, "max.partitions"),
	   "CreateTopics of 9 more partitions (11 > 10) gets 44 POLICY_VIOLATION (%d, '%s')", rc,
	   msg);
	list_offset(fd, w, "lim-b", -1, &err);
	ok(err == 3, "and creates nothing (%d)", err);
	ok(create_topic(fd, w, "lim-b", 8, msg, sizeof(msg)) == 0,
	   "8 partitions (exactly 10) are created");
	const char *const limb[1] = { "lim-b" };
	const int32_t nine[1] = { 9 };
	int16_t perr = -1;
	rc = create_partitions(fd, w, limb, nine, 1, false, &perr);
	ok(rc == 0 && perr == 44, "CreatePartitions past max.partitions gets 44 (%d)", perr);
	rc = metadata_autocreate(fd, w, "lim-c");
	ok(rc == 44, "a third topic by Metadata auto-create gets 44 (%d)", rc);
	rc = create_topic(fd, w, "lim-c", -1, msg, sizeof(msg));
	ok(rc == 44, "and by CreateTopics too (%d)", rc);
	list_offset(fd, w, "lim-c", -1, &err);
	ok(err == 3, "it does not exist (%d)", err);
	close(fd);
	ok(kserver_stop(&s3) == 0, "the limited server stops cleanly");
	kserver_cleanup(&s3);
}

/* Files in dir ending in suffix. */
static int count_suffix(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	size_t sl = strlen(suffix);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		n += l > sl && strcmp(de->d_name + l - sl, suffix) == 0;
	}
	closedir(d);
	return n;
}

/* Fetch from segments returns the producer's bytes: a server whose WAL is
 * sealed when quiet for 100 ms indexes a producer's zstd batch and an
 * uncompressed one into a segment (the WAL file they were in removed);
 * Fetch then returns the zstd batch byte for byte after its base offset,
 * and the uncompressed one re-encoded (lz4) with the same offsets and
 * records. */
static void test_warm_fetch(const char *bin, struct kafka_writer *w)
{
	struct kserver s4;
	memset(&s4, 0, sizeof(s4));
	static const char *const args[] = { "--partitions", "1", "--set", "wal.seal.ms=100", NULL };
	kserver_start(&s4, bin, args);
	int fd = kc_connect(s4.port, 30);
	size_t plen, zlen;
	uint8_t *plain = make_batch(20, -1, -1, -1, &plen), *z = NULL, *rec = NULL;
	const uint8_t *in[1] = { plain };
	int64_t off, hw;
	int32_t rlen = 0;
	char segdir[400], waldir[400];

	char msg[256];
	ok(create_topic(fd, w, "warm", 1, msg, sizeof(msg)) == 0 &&
		   recode_merge(in, &plen, 1, BATCH_CODEC_ZSTD, &z, &zlen) == 0,
	   "topic warm; a zstd batch of 20");
	ok(produce(fd, w, 7, -1, "warm", z, zlen, &off) == 0 && off == 0 &&
		   produce(fd, w, 7, -1, "warm", plain, plen, &off) == 0 && off == 20,
	   "produced at offsets 0 (zstd) and 20 (uncompressed)");
	snprintf(segdir, sizeof(segdir), "%s/data/segments/1/0", s4.dir);
	snprintf(waldir, sizeof(waldir), "%s/data/wal", s4.dir);
	int indexed = 0;
	for (int i = 0; i < 300 && !indexed; i++) {
		/* Sealed, indexed, its WAL file removed: only the (new) active
		 * one is left, so Fetch reads the segment. */
		indexed = count_suffix(segdir, ".seg") > 0 && count_suffix(waldir, ".wal") == 1;
		if (!indexed)
			usleep(100 * 1000);
	}
	ok(indexed, "indexed into a segment, its WAL file removed");
	int rc = fetch(fd, w, "warm", 0, 0, &rec, &rlen, &hw);
	ok(rc == 0 && hw == 40 && rlen >= (int32_t)zlen && rec &&
		   memcmp(rec + 8, z + 8, zlen - 8) == 0 && kafka_get_be32(rec) == 0 &&
		   kafka_get_be32(rec + 4) == 0,
	   "Fetch from the segment returns the zstd batch byte for byte (%d, %d bytes)", rc,
	   (int)rlen);
	struct batch_header bh;
	ok(rec && (size_t)rlen > zlen &&
		   batch_header_parse(rec + zlen, (size_t)rlen - zlen, &bh) == 0 &&
		   bh.base_offset == 20 && bh.last_offset_delta == 19 &&
		   (bh.attributes & BATCH_ATTR_CODEC_MASK) == BATCH_CODEC_LZ4,
	   "and the uncompressed one re-encoded as lz4 at offsets 20-39");
	free(rec);
	free(z);
	free(plain);
	close(fd);
	ok(kserver_stop(&s4) == 0, "the warm server stops cleanly");
	kserver_cleanup(&s4);
}

/* OffsetCommit v2 of one partition of "proto" for a standalone group. */
static int16_t commit_one(int fd, struct kafka_writer *w, const char *group, int32_t part,
			  int64_t offset)
{
	struct kafka_reader r;
	kc_begin(w, 8, 2, ++corr, 0);
	kafka_write_string(w, false, group);
	kafka_write_i32(w, -1);
	kafka_write_string(w, false, "");
	kafka_write_i64(w, -1);
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, "proto");
	kafka_write_array(w, false, 1);
	kafka_write_i32(w, part);
	kafka_write_i64(w, offset);
	kafka_write_string(w, false, NULL);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_array(&r, false, false, 0);
	kafka_read_string(&r, false, false);
	kafka_read_array(&r, false, false, 0);
	kafka_read_i32(&r);
	int16_t err = buf && !kafka_reader_failed(&r) ? kafka_read_i16(&r) : -100;
	free(buf);
	return err;
}

/* ListGroups v2: "group:protocol_type," for each group into out; the
 * error code, -100 when malformed. */
static int list_groups(int fd, struct kafka_writer *w, char *out, size_t cap)
{
	struct kafka_reader r;
	out[0] = 0;
	kc_begin(w, 16, 2, ++corr, 0);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	int16_t err = kafka_read_i16(&r);
	int32_t n = kafka_read_array(&r, false, false, 4);
	for (int32_t i = 0; i < n; i++) {
		struct kafka_str id = kafka_read_string(&r, false, false);
		struct kafka_str pt = kafka_read_string(&r, false, false);
		if (kafka_reader_failed(&r))
			break;
		snprintf(out + strlen(out), cap - strlen(out), "%.*s:%.*s,", id.len, id.ptr, pt.len,
			 pt.ptr);
	}
	int bad = !buf || kafka_reader_failed(&r) || kafka_reader_left(&r) != 0;
	free(buf);
	return bad ? -100 : err;
}

/* DescribeGroups v4 of one group: "state/protocol_type/protocol/members"
 * into out (each member "client_id@host"); the group's error code. */
static int describe_group(int fd, struct kafka_writer *w, const char *group, char *out, size_t cap)
{
	struct kafka_reader r;
	out[0] = 0;
	kc_begin(w, 15, 4, ++corr, 0);
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, group);
	kafka_write_bool(w, false);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	int32_t n = kafka_read_array(&r, false, false, 4);
	int16_t err = kafka_read_i16(&r);
	struct kafka_str id = kafka_read_string(&r, false, false);
	struct kafka_str st = kafka_read_string(&r, false, false);
	struct kafka_str pt = kafka_read_string(&r, false, false);
	struct kafka_str pd = kafka_read_string(&r, false, false);
	snprintf(out, cap, "%.*s/%.*s/%.*s/", st.len, st.ptr, pt.len, pt.ptr, pd.len, pd.ptr);
	int32_t nm = kafka_read_array(&r, false, false, 4);
	for (int32_t i = 0; i < nm && !kafka_reader_failed(&r); i++) {
		kafka_read_string(&r, false, false);
		kafka_read_string(&r, false, true);
		struct kafka_str cid = kafka_read_string(&r, false, false);
		struct kafka_str host = kafka_read_string(&r, false, false);
		kafka_read_bytes(&r, false, false);
		kafka_read_bytes(&r, false, false);
		snprintf(out + strlen(out), cap - strlen(out), "%.*s@%.*s", cid.len, cid.ptr,
			 host.len, host.ptr);
	}
	int32_t ops = kafka_read_i32(&r);
	int bad = !buf || kafka_reader_failed(&r) || kafka_reader_left(&r) != 0 || n != 1 ||
		  !kafka_str_eq(id, group) || ops != INT32_MIN;
	free(buf);
	return bad ? -100 : err;
}

/* OffsetDelete v0 of group: proto [parts...], "nope" [0]. The top-level
 * error code; errs[] the partitions' (proto's, then nope's). */
static int offset_delete(int fd, struct kafka_writer *w, const char *group, const int32_t *parts,
			 int n, int16_t *errs)
{
	struct kafka_reader r;
	kc_begin(w, 47, 0, ++corr, 0);
	kafka_write_string(w, false, group);
	kafka_write_array(w, false, 2);
	kafka_write_string(w, false, "proto");
	kafka_write_array(w, false, n);
	for (int i = 0; i < n; i++)
		kafka_write_i32(w, parts[i]);
	kafka_write_string(w, false, "nope");
	kafka_write_array(w, false, 1);
	kafka_write_i32(w, 0);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	int16_t top = kafka_read_i16(&r);
	kafka_read_i32(&r);
	int32_t nt = kafka_read_array(&r, false, false, 6);
	int k = 0;
	for (int32_t t = 0; t < nt && !kafka_reader_failed(&r); t++) {
		kafka_read_string(&r, false, false);
		int32_t np = kafka_read_array(&r, false, false, 6);
		for (int32_t i = 0; i < np && !kafka_reader_failed(&r); i++) {
			kafka_read_i32(&r);
			int16_t e = kafka_read_i16(&r);
			if (k <= n)
				errs[k++] = e;
		}
	}
	int bad = !buf || kafka_reader_failed(&r) || kafka_reader_left(&r) != 0 ||
		  (top == 0 && k != n + 1);
	free(buf);
	return bad ? -100 : top;
}

/* DeleteGroups v1 of n groups: their error codes into errs; 0 or -100. */
static int delete_groups(int fd, struct kafka_writer *w, const char *const *groups, int n,
			 int16_t *errs)
{
	struct kafka_reader r;
	kc_begin(w, 42, 1, ++corr, 0);
	kafka_write_array(w, false, n);
	for (int i = 0; i < n; i++)
		kafka_write_string(w, false, groups[i]);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	int32_t nr = kafka_read_array(&r, false, false, 4);
	for (int32_t i = 0; i < nr && i < n; i++) {
		struct kafka_str id = kafka_read_string(&r, false, false);
		errs[i] = kafka_read_i16(&r);
		if (!kafka_str_eq(id, groups[i]))
			errs[i] = -100;
	}
	int bad = !buf || kafka_reader_failed(&r) || kafka_reader_left(&r) != 0 || nr != n;
	free(buf);
	return bad ? -100 : 0;
}

/* OffsetFetch v1 of proto/part for group: the offset (-1 none, -100 bad). */
static int64_t fetch_one(int fd, struct kafka_writer *w, const char *group, int32_t part)
{
	struct kafka_reader r;
	kc_begin(w, 9, 1, ++corr, 0);
	kafka_write_string(w, false, group);
	kc_write_one_partition(w, "proto", part);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_array(&r, false, false, 0);
	kafka_read_string(&r, false, false);
	kafka_read_array(&r, false, false, 0);
	kafka_read_i32(&r);
	int64_t off = kafka_read_i64(&r);
	kafka_read_string(&r, false, true);
	int16_t err = kafka_read_i16(&r);
	int bad = !buf || kafka_reader_failed(&r) || err != 0;
	free(buf);
	return bad ? -100 : off;
}

/* The group admin APIs: ListGroups, DescribeGroups, OffsetDelete and
 * DeleteGroups on a standalone group (offsets only) and on one with a
 * member, with Kafka's error codes. */
static void test_group_admin(int fd, struct kafka_writer *w)
{
	char text[512];
	int16_t errs[4] = { -1, -1, -1, -1 };
	int rc;

	if (commit_one(fd, w, "adm", 0, 10) != 0 || commit_one(fd, w, "adm", 1, 11) != 0)
		bail("commit for adm");
	rc = list_groups(fd, w, text, sizeof(text));
	ok(rc == 0 && strstr(text, "adm:consumer,") != NULL,
	   "ListGroups v2 lists the group with committed offsets: %s", text);
	rc = describe_group(fd, w, "adm", text, sizeof(text));
	ok(rc == 0 && strcmp(text, "Empty/consumer//") == 0,
	   "DescribeGroups v4: a group with offsets and no member is %s", text);
	rc = describe_group(fd, w, "ghost", text, sizeof(text));
	ok(rc == 0 && strcmp(text, "Dead///") == 0, "DescribeGroups v4: an unknown group is %s",
	   text);

	int32_t parts[2] = { 0, 7 };
	rc = offset_delete(fd, w, "adm", parts, 2, errs);
	ok(rc == 0 && errs[0] == 0 && errs[1] == 3 && errs[2] == 3,
	   "OffsetDelete v0: 0 for proto/0, 3 for proto/7 and nope/0 (%d: %d %d %d)", rc, errs[0],
	   errs[1], errs[2]);
	ok(fetch_one(fd, w, "adm", 0) == -1 && fetch_one(fd, w, "adm", 1) == 11,
	   "proto/0's offset is forgotten, proto/1's kept");
	rc = offset_delete(fd, w, "ghost", parts, 1, errs);
	ok(rc == 69, "OffsetDelete of an unknown group: %d (69 GROUP_ID_NOT_FOUND)", rc);

	/* A group with a member subscribed to proto. */
	static const uint8_t sub[] = { 0, 0, 0, 0, 0, 1, 0, 5, 'p', 'r', 'o', 't', 'o' };
	struct kafka_reader r;
	kc_begin(w, 11, 1, ++corr, 0);
	kafka_write_string(w, false, "live");
	kafka_write_i32(w, 30000);
	kafka_write_i32(w, 30000);
	kafka_write_string(w, false, "");
	kafka_write_string(w, false, "consumer");
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, "range");
	kafka_write_bytes(w, false, sub, (int32_t)sizeof(sub));
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	int16_t jerr = kafka_read_i16(&r);
	kafka_read_i32(&r);
	kafka_read_string(&r, false, false);
	kafka_read_string(&r, false, false);
	struct kafka_str mid = kafka_read_string(&r, false, false);
	char member[256];
	snprintf(member, sizeof(member), "%.*s", mid.len > 0 ? mid.len : 0, mid.ptr ? mid.ptr : "");
	free(buf);
	if (jerr != 0 || !member[0])
		bail("JoinGroup live: %d", jerr);
	rc = describe_group(fd, w, "live", text, sizeof(text));
	ok(rc == 0 && strcmp(text, "CompletingRebalance/consumer//kclient@/127.0.0.1") == 0,
	   "DescribeGroups v4 of a joined group: %s", text);
	rc = list_groups(fd, w, text, sizeof(text));
	ok(rc == 0 && strstr(text, "live:consumer,") != NULL, "ListGroups lists it: %s", text);
	parts[0] = 1;
	rc = offset_delete(fd, w, "live", parts, 1, errs);
	ok(rc == 0 && errs[0] == 86 && errs[1] == 3,
	   "OffsetDelete of a subscribed topic: %d (86 GROUP_SUBSCRIBED_TO_TOPIC)", errs[0]);

	const char *const groups[4] = { "adm", "ghost", "", "live" };
	rc = delete_groups(fd, w, groups, 4, errs);
	ok(rc == 0 && errs[0] == 0 && errs[1] == 69 && errs[2] == 24 && errs[3] == 68,
	   "DeleteGroups v1: 0 for adm, 69 for ghost, 24 for \"\", 68 for live (%d %d %d %d)",
	   errs[0], errs[1], errs[2], errs[3]);
	rc = list_groups(fd, w, text, sizeof(text));
	ok(rc == 0 && strstr(text, "adm:") == NULL && fetch_one(fd, w, "adm", 1) == -1,
	   "adm is gone with its offsets: %s", text);

	kc_begin(w, 13, 0, ++corr, 0);
	kafka_write_string(w, false, "live");
	kafka_write_string(w, false, member);
	buf = kc_roundtrip(fd, w, &r);
	ok(buf && kafka_read_i16(&r) == 0, "the member leaves");
	free(buf);
}

/* IncrementalAlterConfigs v0 of one resource: n (name, op, value)
 * triples. The resource's error code, -100 when malformed. */
static int incremental_alter(int fd, struct kafka_writer *w, int8_t type, const char *name,
			     const char *const *cfg, const int8_t *ops, int n)
{
	struct kafka_reader r;
	kc_begin(w, 44, 0, ++corr, 0);
	kafka_write_array(w, false, 1);
	kafka_write_i8(w, type);
	kafka_write_string(w, false, name);
	kafka_write_array(w, false, n);
	for (int i = 0; i < n; i++) {
		kafka_write_string(w, false, cfg[2 * i]);
		kafka_write_i8(w, ops[i]);
		kafka_write_string(w, false, cfg[2 * i + 1]);
	}
	kafka_write_bool(w, false);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	int32_t nr = kafka_read_array(&r, false, false, 4);
	int16_t err = kafka_read_i16(&r);
	kafka_read_string(&r, false, true);
	int8_t rt = kafka_read_i8(&r);
	struct kafka_str rn = kafka_read_string(&r, false, false);
	int bad = !buf || kafka_reader_failed(&r) || kafka_reader_left(&r) != 0 || nr != 1 ||
		  rt != type || !kafka_str_eq(rn, name);
	free(buf);
	return bad ? -100 : err;
}

/* DescribeConfigs (v0 or v1 with synonyms) of topic proto's keys k1, k2:
 * "name=value:default-or-source:synonyms" for each into out; the
 * resource's error code, -100 when malformed. */
static int describe_proto(int fd, struct kafka_writer *w, int16_t v, const char *k1, const char *k2,
			  char *out, size_t cap)
{
	struct kafka_reader r;
	out[0] = 0;
	kc_begin(w, 32, v, ++corr, 0);
	kafka_write_array(w, false, 1);
	kafka_write_i8(w, 2);
	kafka_write_string(w, false, "proto");
	kafka_write_array(w, false, 2);
	kafka_write_string(w, false, k1);
	kafka_write_string(w, false, k2);
	if (v >= 1)
		kafka_write_bool(w, true);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	kafka_read_array(&r, false, false, 4);
	int16_t err = kafka_read_i16(&r);
	kafka_read_string(&r, false, true);
	kafka_read_i8(&r);
	kafka_read_string(&r, false, false);
	int32_t nc = kafka_read_array(&r, false, false, 4);
	for (int32_t i = 0; i < nc && !kafka_reader_failed(&r); i++) {
		struct kafka_str name = kafka_read_string(&r, false, false);
		struct kafka_str val = kafka_read_string(&r, false, true);
		kafka_read_bool(&r);
		int src = v == 0 ? kafka_read_bool(&r) : kafka_read_i8(&r);
		kafka_read_bool(&r);
		int32_t ns = 0;
		if (v >= 1) {
			ns = kafka_read_array(&r, false, false, 5);
			for (int32_t k = 0; k < ns && !kafka_reader_failed(&r); k++) {
				kafka_read_string(&r, false, false);
				kafka_read_string(&r, false, true);
				kafka_read_i8(&r);
			}
		}
		snprintf(out + strlen(out), cap - strlen(out), "%.*s=%.*s:%d:%d,", name.len,
			 name.ptr, val.len > 0 ? val.len : 0, val.ptr ? val.ptr : "", src, ns);
	}
	int bad = !buf || kafka_reader_failed(&r) || kafka_reader_left(&r) != 0;
	free(buf);
	return bad ? -100 : err;
}

/* CreatePartitions v1: n (topic, count) pairs; their error codes. */
static int create_partitions(int fd, struct kafka_writer *w, const char *const *topics,
			     const int32_t *counts, int n, bool validate_only, int16_t *errs)
{
	struct kafka_reader r;
	kc_begin(w, 37, 1, ++corr, 0);
	kafka_write_array(w, false, n);
	for (int i = 0; i < n; i++) {
		kafka_write_string(w, false, topics[i]);
		kafka_write_i32(w, counts[i]);
		kafka_write_array(w, false, -1);
	}
	kafka_write_i32(w, 5000);
	kafka_write_bool(w, validate_only);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	int32_t nr = kafka_read_array(&r, false, false, 4);
	for (int32_t i = 0; i < nr && i < n; i++) {
		kafka_read_string(&r, false, false);
		errs[i] = kafka_read_i16(&r);
		struct kafka_str msg = kafka_read_string(&r, false, true);
		if ((errs[i] == 0) != (msg.len < 0))
			errs[i] = -101; /* a message exactly when there is an error */
	}
	int bad = !buf || kafka_reader_failed(&r) || kafka_reader_left(&r) != 0 || nr != n;
	free(buf);
	return bad ? -100 : 0;
}

/* Configs at the wire level: IncrementalAlterConfigs' operations and
 * error codes, DescribeConfigs v0 and v1 layouts, CreatePartitions' error
 * codes. */
static void test_config_admin(int fd, struct kafka_writer *w)
{
	char text[512];
	int rc;

	static const char *const set1[] = { "retention.ms", "2000", "cleanup.policy", "compact" };
	static const int8_t ops1[] = { 0, 2 };
	rc = incremental_alter(fd, w, 2, "proto", set1, ops1, 2);
	ok(rc == 0, "IncrementalAlterConfigs v0: SET retention.ms, APPEND cleanup.policy (%d)", rc);
	rc = describe_proto(fd, w, 0, "cleanup.policy", "retention.ms", text, sizeof(text));
	ok(rc == 0 && strcmp(text, "cleanup.policy=delete,compact:0:0,retention.ms=2000:0:0,") == 0,
	   "DescribeConfigs v0: %s", text);
	rc = describe_proto(fd, w, 1, "retention.ms", "segment.bytes", text, sizeof(text));
	ok(rc == 0 && strcmp(text, "retention.ms=2000:1:2,segment.bytes=1073741824:5:1,") == 0,
	   "DescribeConfigs v1 with synonyms (source 1 topic, 5 default): %s", text);

	static const char *const bad1[] = { "retention.ms", "5" };
	static const int8_t append[] = { 2 };
	rc = incremental_alter(fd, w, 2, "proto", bad1, append, 1);
	ok(rc == 40, "APPEND to retention.ms (not a list) gets 40 INVALID_CONFIG (%d)", rc);
	static const char *const bad2[] = { "retention.ms", "3000", "no.such.key", "1" };
	static const int8_t sets[] = { 0, 0 };
	rc = incremental_alter(fd, w, 2, "proto", bad2, sets, 2);
	int rc2 = describe_proto(fd, w, 0, "retention.ms", "x", text, sizeof(text));
	ok(rc == 40 && rc2 == 0 && strcmp(text, "retention.ms=2000:0:0,") == 0,
	   "an unknown key gets 40 and nothing of its resource changes (%d: %s)", rc, text);
	/* The values as engine_topic_config_check takes them. */
	static const char *const bad3[] = { "retention.ms", "3000", "compression.type", "brotli" };
	rc = incremental_alter(fd, w, 2, "proto", bad3, sets, 2);
	rc2 = describe_proto(fd, w, 0, "retention.ms", "compression.type", text, sizeof(text));
	ok(rc == 40 && rc2 == 0 &&
		   strcmp(text, "compression.type=lz4:1:0,retention.ms=2000:0:0,") == 0,
	   "compression.type brotli gets 40 and nothing changes (%d: %s)", rc, text);
	static const char *const bad4[] = { "cleanup.policy", "compact,compact" };
	rc = incremental_alter(fd, w, 2, "proto", bad4, sets, 1);
	ok(rc == 40, "SET cleanup.policy compact,compact gets 40 (%d)", rc);
	static const char *const none1[] = { "compression.type", "none" };
	rc = incremental_alter(fd, w, 2, "proto", none1, sets, 1);
	rc2 = describe_proto(fd, w, 0, "compression.type", "x", text, sizeof(text));
	ok(rc == 0 && rc2 == 0 && strcmp(text, "compression.type=none:0:0,") == 0,
	   "SET compression.type none (the same as uncompressed) is taken (%d: %s)", rc, text);
	static const char *const del1[] = { "retention.ms", NULL };
	static const int8_t dels[] = { 1 };
	rc = incremental_alter(fd, w, 2, "proto", del1, dels, 1);
	rc2 = describe_proto(fd, w, 0, "retention.ms", "x", text, sizeof(text));
	ok(rc == 0 && rc2 == 0 && strcmp(text, "retention.ms=-1:1:0,") == 0,
	   "DELETE returns retention.ms to its default (%s)", text);
	rc = incremental_alter(fd, w, 4, "1", set1, sets, 1);
	rc2 = incremental_alter(fd, w, 3, "g", set1, sets, 1);
	ok(rc == 42 && rc2 == 42, "the broker (4) is read-only, a group (3) has no configs: %d %d",
	   rc, rc2);
	rc = incremental_alter(fd, w, 2, "nope", set1, sets, 1);
	ok(rc == 3, "an unknown topic gets 3 (%d)", rc);

	const char *const topics[4] = { "proto", "nope", "dup", "dup" };
	const int32_t counts[4] = { 2, 5, 4, 4 };
	int16_t errs[4] = { -1, -1, -1, -1 };
	rc = create_partitions(fd, w, topics, counts, 4, false, errs);
	ok(rc == 0 && errs[0] == 37 && errs[1] == 3 && errs[2] == 42 && errs[3] == 42,
	   "CreatePartitions v1: 37 for no growth, 3 unknown, 42 twice named (%d %d %d %d)",
	   errs[0], errs[1], errs[2], errs[3]);
	const int32_t three[1] = { 3 };
	rc = create_partitions(fd, w, topics, three, 1, true, errs);
	int16_t e2 = -1;
	rc2 = create_partitions(fd, w, topics, three, 1, false, &e2);
	ok(rc == 0 && errs[0] == 0 && rc2 == 0 && e2 == 0,
	   "validate-only changes nothing: the real request to 3 succeeds after it (%d, %d)",
	   errs[0], e2);
	int16_t e3 = -1;
	rc = create_partitions(fd, w, topics, three, 1, false, &e3);
	ok(rc == 0 && e3 == 37, "and proto has 3 now: asking 3 again gets 37 (%d)", e3);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		tap_skip_all("no kafka_server binary given");
	static const char *const args[] = { "--partitions", "2", "--max-request-bytes", "1048576",
					    NULL };
	kserver_start(&srv, argv[1], args);

	struct kafka_writer w;
	kafka_writer_init(&w, 0);
	int fd = kc_connect(srv.port, 30);
	if (fd < 0)
		bail("connect");
	test_api_versions(fd, &w);
	test_metadata_admin(fd, &w);
	test_produce_fetch(fd, &w);
	test_idempotence(fd, &w);
	test_offsets(fd, &w);
	test_group_admin(fd, &w);
	test_config_admin(fd, &w);
	test_ordering(fd, &w);
	close(fd);
	test_malformed(&w);
	test_producer_table(argv[1], &w);
	test_topic_limits(argv[1], &w);
	test_warm_fetch(argv[1], &w);
	ok(kserver_alive(&srv), "the server is still running");
	ok(kserver_stop(&srv) == 0, "it stops cleanly on SIGTERM");
	kafka_writer_fini(&w);
	kserver_cleanup(&srv);
	return tap_exit();
}
