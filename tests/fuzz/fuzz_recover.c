/* fuzz_recover.c - WAL recovery over whole files, through engine_open.
 *
 * Each input is a data directory: a fixed metadata log (topics "t" with two
 * partitions and "u" with one, written once by a real engine at start-up)
 * and a WAL made of the input. Input: one byte of flags, then the WAL
 * bytes. Flags: bit 0 make the CRCs right first (fuzz.h); bit 1 open with
 * repair; bit 2 split the bytes into two files at the first frame
 * boundary past half (a sealed file and the active one, both given the
 * file header of the corpus file when they lack one); bit 3 open read-only.
 *
 * Checked, when engine_open succeeds (it may refuse, never crash):
 *   - engine_verify runs; when it finds a problem (a frame whose CRCs match
 *     but whose records do not decode: only the CRC fix-up makes one),
 *     reads must fail cleanly (CHRONIK_ECORRUPT, CHRONIK_ECODEC, ...) or
 *     succeed, and that is all; otherwise:
 *   - every partition reads from offset 0 to its next offset with dense
 *     offsets and raw positions that add up to its raw size, and the raw
 *     view reads its raw size in bytes;
 *   - (writable) one more line appends at the next offset, and after
 *     close and a second open the partition ends one record later and
 *     verifies clean.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byteorder.h"
#include "engine.h"
#include "frame.h"
#include "fuzz.h"

static uint8_t *meta_image;
static size_t meta_len;
static char dir[4096];

static void count_problem(void *arg, const char *what)
{
	(void)what;
	(*(int *)arg)++;
}

static void read_whole(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	FUZZ_CHECK(f != NULL);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*out = malloc((size_t)n + 1);
	FUZZ_CHECK(*out && fread(*out, 1, (size_t)n, f) == (size_t)n);
	*len = (size_t)n;
	fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct engine_options o;
	struct engine *e;
	char path[4200];

	(void)argc;
	(void)argv;
	fuzz_quiet();
	snprintf(dir, sizeof(dir), "%s/data", fuzz_workdir());
	engine_options_init(&o);
	o.fsync = FSYNC_NEVER;
	FUZZ_CHECK(engine_open(dir, &o, &e) == 0);
	FUZZ_CHECK(engine_topic_create(e, "t", 2, NULL) == 0);
	FUZZ_CHECK(engine_topic_create(e, "u", 1, NULL) == 0);
	FUZZ_CHECK(engine_close(e) == 0);
	snprintf(path, sizeof(path), "%s/meta.log", dir);
	read_whole(path, &meta_image, &meta_len);
	return 0;
}

/* strict: verify found nothing, so every record must read. Otherwise the
 * reads must only not crash (a frame whose CRCs match but whose records do
 * not decode is what verify reports; readers answer CHRONIK_ECORRUPT). */
static void check_partition(struct engine *e, const char *topic, int32_t idx, bool writable,
			    bool strict)
{
	struct partition *p;
	struct partition_info info;
	struct engine_cursor *c;
	struct engine_record r;
	int rc;

	FUZZ_CHECK(engine_partition_get(e, topic, idx, &p) == 0);
	engine_partition_info(p, &info);
	FUZZ_CHECK(info.log_start_offset == 0 && info.next_offset >= 0);
	FUZZ_CHECK(engine_cursor_open(p, 0, &c) == 0);
	int64_t want = 0;
	uint64_t raw = 0;
	while ((rc = engine_cursor_next(c, &r)) == 1) {
		FUZZ_CHECK(!strict || r.offset == want);
		FUZZ_CHECK(!strict || r.raw_pos == raw);
		want++;
		raw += (uint64_t)(r.value_len > 0 ? r.value_len : 0) + 1;
	}
	engine_cursor_close(c);
	FUZZ_CHECK(strict ? rc == 0 : rc <= 0);
	FUZZ_CHECK(!strict || want == info.next_offset);
	FUZZ_CHECK(!strict || raw == info.raw_size);

	char buf[4096];
	uint64_t pos = 0;
	ssize_t k;
	while ((k = engine_read_raw(p, pos, buf, sizeof(buf))) > 0)
		pos += (uint64_t)k;
	FUZZ_CHECK(!strict || (k == 0 && pos == info.raw_size));

	if (writable) {
		int64_t base;
		FUZZ_CHECK(engine_append_lines(p, "x\n", 2, &base) == 0);
		FUZZ_CHECK(base == info.next_offset);
	}
	engine_partition_unref(p);
}

static void write_wal(const char *name, const uint8_t *b, size_t n, uint64_t seq)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/wal/%s", dir, name);
	/* Give the file the header its name asks for (a mutated sequence
	 * number is not what recovery is about). */
	uint8_t *img = malloc(n + WAL_FILE_HEADER_SIZE);
	FUZZ_CHECK(img != NULL);
	size_t len = n;
	uint64_t hseq;
	uint32_t version = WAL_FILE_VERSION, salt = 0;
	if (n >= WAL_FILE_HEADER_SIZE && memcmp(b, WAL_FILE_MAGIC, 8) == 0) {
		memcpy(img, b, n);
		/* keep the input's version and salt when they parse */
		if (wal_file_header_parse(b, n, &hseq, &version, &salt) != 0) {
			version = WAL_FILE_VERSION;
			salt = 0;
		}
	} else {
		memcpy(img + WAL_FILE_HEADER_SIZE, b, n);
		len += WAL_FILE_HEADER_SIZE;
	}
	wal_file_header_encode(img, seq, version, salt);
	FUZZ_CHECK(fuzz_write_file(path, img, len) == 0);
	free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct engine_options o;
	struct engine *e;
	char path[4200];

	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	size_t len = size - 1;
	uint8_t *wal = malloc(len ? len : 1);
	FUZZ_CHECK(wal != NULL);
	memcpy(wal, data + 1, len);
	if (flags & 1)
		fuzz_fix_wal_crcs(wal, len, WAL_FILE_HEADER_SIZE);

	fuzz_rm_below(dir);
	snprintf(path, sizeof(path), "%s/meta.log", dir);
	FUZZ_CHECK(fuzz_write_file(path, meta_image, meta_len) == 0);
	snprintf(path, sizeof(path), "%s/wal", dir);
	FUZZ_CHECK(mkdir(path, 0755) == 0);
	if ((flags & 4) && len > WAL_FILE_HEADER_SIZE) {
		/* the first frame boundary at or past the middle */
		size_t cut = WAL_FILE_HEADER_SIZE;
		while (cut + FRAME_COMMON_SIZE <= len && cut < len / 2) {
			uint32_t fl = get_le32(wal + cut + 8);
			if (fl < FRAME_COMMON_SIZE || fl > len - cut)
				break;
			cut += fl;
		}
		write_wal("00000000000000000000.wal", wal, cut, 0);
		write_wal("00000000000000000001.wal", wal + cut, len - cut, 1);
	} else {
		write_wal("00000000000000000000.wal", wal, len, 0);
	}
	free(wal);

	bool writable = !(flags & 8);
	engine_options_init(&o);
	o.fsync = FSYNC_NEVER;
	o.repair = (flags & 2) != 0;
	o.read_only = !writable;
	if (engine_open(dir, &o, &e) != 0)
		return 0;
	int problems = 0;
	int vrc = engine_verify(e, count_problem, &problems);
	FUZZ_CHECK(vrc >= 0 && vrc == problems);
	bool strict = problems == 0;
	struct partition_info before[3];
	const char *topics[3] = { "t", "t", "u" };
	const int32_t idx[3] = { 0, 1, 0 };
	for (int i = 0; i < 3; i++) {
		struct partition *p;
		FUZZ_CHECK(engine_partition_get(e, topics[i], idx[i], &p) == 0);
		engine_partition_info(p, &before[i]);
		engine_partition_unref(p);
		check_partition(e, topics[i], idx[i], writable && strict, strict);
	}
	FUZZ_CHECK(engine_close(e) == 0);
	if (!writable || !strict)
		return 0;

	o.repair = false;
	FUZZ_CHECK(engine_open(dir, &o, &e) == 0);
	problems = 0;
	FUZZ_CHECK(engine_verify(e, count_problem, &problems) == 0 && problems == 0);
	for (int i = 0; i < 3; i++) {
		struct partition *p;
		struct partition_info after;
		FUZZ_CHECK(engine_partition_get(e, topics[i], idx[i], &p) == 0);
		engine_partition_info(p, &after);
		FUZZ_CHECK(after.next_offset == before[i].next_offset + 1);
		engine_partition_unref(p);
		check_partition(e, topics[i], idx[i], false, true);
	}
	FUZZ_CHECK(engine_close(e) == 0);
	return 0;
}
