/* test_torn.c - what recovery calls a torn tail and what damage (frame.h,
 * RECOVERY):
 *   - under fsync interval and never, many groups may be unsynced: a page
 *     missing in the first of them, with whole groups after it, is a torn
 *     tail (cut there), not corruption;
 *   - what an fsync "every" acknowledged stays protected: damage in front
 *     of a completed sync still fails the open;
 *   - record values holding frame-like bytes (valid frames of another
 *     file, copies of this file's sync points, thousands of fake frame
 *     headers claiming long frames) neither fool the decision nor make
 *     the scan quadratic: each occurrence of the magic is looked at once,
 *     for 32 bytes (a scan that hashed each fake's claimed frame would
 *     hash about 64 GiB for these 4 MiB). */
#include <fcntl.h>
#include <sys/stat.h>

#include "batch.h"
#include "byteorder.h"
#include "frame.h"
#include "frameutil.h"
#include "testutil.h"

#define BIG 10000 /* bytes of value per batch: frames span pages */


static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void zero_range(const char *path, uint64_t pos, size_t len)
{
	int fd = open(path, O_RDWR);
	uint8_t *zeros = calloc(1, len);
	if (fd < 0 || !zeros || pwrite(fd, zeros, len, (off_t)pos) != (ssize_t)len)
		bail("zero_range");
	free(zeros);
	close(fd);
}

static uint8_t *file_read(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	off_t n = file_size(path);
	uint8_t *b = malloc((size_t)n);
	if (fd < 0 || !b || pread(fd, b, (size_t)n, 0) != n)
		bail("file_read %s", path);
	close(fd);
	*len = (size_t)n;
	return b;
}

/* One batch of one record holding value[0, len). */
static void append_value(struct partition *p, const void *value, size_t len, int64_t want)
{
	struct record_in r = {
		.timestamp = 1000, .key_len = -1, .value = value, .value_len = (int32_t)len
	};
	int64_t base;
	int rc = engine_append_records(p, &r, 1, &base);
	if (rc || base != want)
		bail("append at %lld: %s", (long long)want, chronik_strerror(rc));
}

/* DIR with topic t: `synced` batches appended under fsync every, then
 * `loose` more under policy (each batch its own group), closed. */
static void build(const char *dir, const char *policy, int synced, int loose)
{
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	char value[BIG];
	int64_t next = 0;

	e = open_or_bail(dir, NULL);
	if (engine_topic_create(e, "t", 1, NULL))
		bail("topic");
	p = part_or_bail(e, "t", 0);
	for (int i = 0; i < synced; i++) {
		memset(value, 'a' + i, sizeof(value));
		append_value(p, value, sizeof(value), next++);
	}
	engine_partition_unref(p);
	engine_close(e);
	engine_options_init(&o);
	if (engine_options_parse_fsync(&o, policy))
		bail("policy %s", policy);
	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "t", 0);
	for (int i = 0; i < loose; i++) {
		memset(value, 'A' + i, sizeof(value));
		append_value(p, value, sizeof(value), next++);
	}
	engine_partition_unref(p);
	engine_close(e);
}

static int64_t next_offset(struct engine *e)
{
	struct partition *p = part_or_bail(e, "t", 0);
	struct partition_info info;
	engine_partition_info(p, &info);
	engine_partition_unref(p);
	return info.next_offset;
}

/* Several unsynced groups, a page missing in the first: a torn tail. */
static void test_loose_groups(const char *policy)
{
	char *dir = tmpdir_new("torn");
	char wal[4200];
	struct frames f = { 0 };
	struct engine_options o;
	struct engine *e;
	int rc;

	build(dir, policy, 3, 5);
	snprintf(wal, sizeof(wal), "%s/wal/%020d.wal", dir, 0);
	if (wal_file_walk(wal, collect_frames, &f) != 0 || f.n != 8)
		bail("walk: %d frames", f.n);
	uint64_t page = (f.pos[3] / 4096 + 1) * 4096;
	if (page + 4096 > f.end[3])
		bail("frame 3 does not span a whole page");
	zero_range(wal, page, 4096);

	engine_options_init(&o);
	o.read_only = true;
	rc = engine_open(dir, &o, &e);
	ok(rc == 0, "%s: read-only open accepts a missing page before 5 unsynced groups (%s)",
	   policy, chronik_strerror(rc));
	if (rc == 0) {
		ok(next_offset(e) == 3 && engine_verify(e, NULL, NULL) == 0,
		   "%s: it serves the 3 synced batches, verify is clean", policy);
		engine_close(e);
	} else {
		ok(0, "%s: it serves the 3 synced batches, verify is clean", policy);
	}
	ok(file_size(wal) == (off_t)f.end[7], "%s: read-only left the file as is", policy);

	rc = engine_open(dir, NULL, &e);
	ok(rc == 0, "%s: a missing page in the first of 5 unsynced groups is a torn tail (%s)",
	   policy, chronik_strerror(rc));
	if (rc == 0) {
		ok(next_offset(e) == 3 && file_size(wal) == (off_t)f.pos[3],
		   "%s: the log is cut where the damage starts", policy);
		struct partition *p = part_or_bail(e, "t", 0);
		append_value(p, "again", 5, 3);
		engine_partition_unref(p);
		ok(engine_verify(e, NULL, NULL) == 0, "%s: appends go on at offset 3, verify clean",
		   policy);
		engine_close(e);
	} else {
		ok(0, "%s: the log is cut where the damage starts", policy);
		ok(0, "%s: appends go on at offset 3, verify clean", policy);
	}
	tmpdir_free(dir);
}

/* Damage in batches whose fsync completed (under every) stays an error,
 * whatever policy wrote the groups after them. */
static void test_synced_damage(const char *policy)
{
	char *dir = tmpdir_new("torn");
	char wal[4200];
	struct frames f = { 0 };
	struct engine_options o;
	struct engine *e;
	int rc;

	build(dir, policy, 3, 2);
	snprintf(wal, sizeof(wal), "%s/wal/%020d.wal", dir, 0);
	if (wal_file_walk(wal, collect_frames, &f) != 0 || f.n != 5)
		bail("walk: %d frames", f.n);
	/* the last batch fsync every acknowledged */
	zero_range(wal, f.pos[2] + 100, 16);
	rc = engine_open(dir, NULL, &e);
	ok(rc == CHRONIK_ECORRUPT,
	   "%s: damage in the last batch acknowledged under every fails the open (%s)", policy,
	   chronik_strerror(rc));
	if (rc == 0)
		engine_close(e);
	zero_range(wal, f.pos[0] + 100, 16);
	engine_options_init(&o);
	o.repair = true;
	rc = engine_open(dir, &o, &e);
	ok(rc == 0 && next_offset(e) == 0 && file_size(wal) == (off_t)f.pos[0],
	   "%s: repair cuts at the first damage", policy);
	if (rc == 0)
		engine_close(e);
	tmpdir_free(dir);
}

/* Fake frame headers every 128 bytes of buf[0, len), each claiming a frame
 * to the end of buf, with a right frame CRC and a wrong batch CRC. */
static void fill_fake_headers(uint8_t *buf, size_t len)
{
	memset(buf, 0x5a, len);
	for (size_t o = 0; o + 256 <= len; o += 128) {
		uint8_t *h = buf + o, *b = h + FRAME_V2_HEADER_SIZE;
		size_t flen = len - o;
		struct frame_info fi = { 0 };
		memset(b, 0, BATCH_HEADER_SIZE);
		put_be32(b + 8, (uint32_t)(flen - FRAME_V2_HEADER_SIZE - 12));
		b[16] = 2; /* magic */
		put_be32(b + 57, 1); /* recordCount */
		fi.flags = FRAME_FLAG_GROUP_END;
		fi.topic_id = 1;
		fi.record_count = 1;
		frame_v2_header_encode(h, &fi, b, flen - FRAME_V2_HEADER_SIZE);
	}
}

static void test_fake_frames(void)
{
	char *donor = tmpdir_new("torn"), *dir = tmpdir_new("torn");
	char wal[4200], dwal[4200];
	struct frames f = { 0 };
	struct engine *e;
	struct partition *p;
	uint8_t *dbytes, *own, *value;
	size_t dlen, olen, vlen = 0;
	int rc;

	/* A donor WAL: valid frames (with GROUP_END) and sync points, of
	 * another salt. */
	build(donor, "every", 4, 0);
	snprintf(dwal, sizeof(dwal), "%s/wal/%020d.wal", donor, 0);
	dbytes = file_read(dwal, &dlen);

	e = open_or_bail(dir, NULL);
	engine_topic_create(e, "t", 1, NULL);
	p = part_or_bail(e, "t", 0);
	append_value(p, "first", 5, 0);
	append_value(p, "second", 6, 1);
	snprintf(wal, sizeof(wal), "%s/wal/%020d.wal", dir, 0);
	own = file_read(wal, &olen); /* holds this file's genuine sync point */

	size_t fakes = 4u << 20;
	value = malloc(4096 + 3 * dlen + 64 * olen + fakes);
	memset(value, 0, 4096); /* the page the damage takes */
	vlen = 4096;
	fill_fake_headers(value + vlen, fakes);
	vlen += fakes;
	for (int i = 0; i < 64; i++, vlen += olen - WAL_FILE_HEADER_SIZE)
		memcpy(value + vlen, own + WAL_FILE_HEADER_SIZE, olen - WAL_FILE_HEADER_SIZE);
	for (int i = 0; i < 3; i++, vlen += dlen - WAL_FILE_HEADER_SIZE)
		memcpy(value + vlen, dbytes + WAL_FILE_HEADER_SIZE, dlen - WAL_FILE_HEADER_SIZE);
	append_value(p, value, vlen, 2);
	engine_partition_unref(p);
	engine_close(e);
	if (wal_file_walk(wal, collect_frames, &f) != 0 || f.n != 3)
		bail("walk: %d frames", f.n);

	/* The frame holding the value loses its first page: every frame-like
	 * byte of the value is now after the damage. */
	zero_range(wal, f.pos[2], 4096);
	rc = engine_open(dir, NULL, &e);
	ok(rc == 0, "values full of frames, sync points and fake headers: still a torn tail (%s)",
	   chronik_strerror(rc));
	if (rc == 0) {
		ok(next_offset(e) == 2 && file_size(wal) == (off_t)f.pos[2],
		   "cut at the damaged frame");
		engine_close(e);
	} else {
		ok(0, "cut at the damaged frame");
	}
	free(value);
	free(own);
	free(dbytes);
	tmpdir_free(dir);
	tmpdir_free(donor);
}

/* A WAL file of format version 1 (no salt, no sync points) is read by the
 * rule of that version, and a writable open seals it and appends to a new
 * version 2 file. */
static void test_version1(void)
{
	char *dir = tmpdir_new("torn");
	char wal[4200], wal1[4200];
	uint8_t hdr[WAL_FILE_HEADER_SIZE], got[WAL_FILE_HEADER_SIZE];
	struct frames f = { 0 };
	struct engine *e;
	uint64_t seq;
	uint32_t version = 0, salt;
	int fd, rc;

	/* Under never nothing is synced after the open, so the file holds no
	 * sync point: with a version 1 header it is such a file. */
	build(dir, "never", 0, 4);
	snprintf(wal, sizeof(wal), "%s/wal/%020d.wal", dir, 0);
	snprintf(wal1, sizeof(wal1), "%s/wal/%020d.wal", dir, 1);
	if (wal_file_walk(wal, collect_frames, &f) != 0 || f.n != 4 || f.end[0] != f.pos[1])
		bail("walk: %d frames", f.n);
	wal_file_header_encode(hdr, 0, 1, 0);
	fd = open(wal, O_RDWR);
	if (fd < 0 || pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		bail("rewrite header");
	close(fd);

	/* The version 1 rule: a hole followed by later groups is damage. */
	uint8_t keep[16];
	fd = open(wal, O_RDWR);
	if (pread(fd, keep, sizeof(keep), (off_t)f.pos[1] + 100) != (ssize_t)sizeof(keep))
		bail("pread");
	close(fd);
	zero_range(wal, f.pos[1] + 100, 16);
	rc = engine_open(dir, NULL, &e);
	ok(rc == CHRONIK_ECORRUPT, "version 1 file: a hole before two later groups is damage (%s)",
	   chronik_strerror(rc));
	if (rc == 0)
		engine_close(e);
	fd = open(wal, O_RDWR);
	if (pwrite(fd, keep, sizeof(keep), (off_t)f.pos[1] + 100) != (ssize_t)sizeof(keep))
		bail("pwrite");
	close(fd);

	/* The sealed version 1 file stays in the WAL (not indexed) to be
	 * looked at. */
	struct engine_options keep_wal;
	engine_options_init(&keep_wal);
	keep_wal.no_index = true;
	rc = engine_open(dir, &keep_wal, &e);
	ok(rc == 0 && next_offset(e) == 4, "a version 1 file opens with its 4 batches (%s)",
	   chronik_strerror(rc));
	if (rc)
		bail("open");
	struct partition *p = part_or_bail(e, "t", 0);
	append_value(p, "new", 3, 4);
	engine_partition_unref(p);
	engine_close(e);
	fd = open(wal1, O_RDONLY);
	bool v2 = fd >= 0 && pread(fd, got, sizeof(got), 0) == (ssize_t)sizeof(got) &&
		  wal_file_header_parse(got, sizeof(got), &seq, &version, &salt) == 0 && seq == 1 &&
		  version == WAL_FILE_VERSION;
	ok(v2 && file_size(wal) == (off_t)f.end[3],
	   "the open sealed it and appended to a new version %u file", version);
	if (fd >= 0)
		close(fd);
	e = open_or_bail(dir, NULL);
	ok(next_offset(e) == 5 && engine_verify(e, NULL, NULL) == 0,
	   "both files reopen and verify clean");
	engine_close(e);
	tmpdir_free(dir);
}

int main(void)
{
	test_loose_groups("never");
	test_loose_groups("interval:3600000");
	test_synced_damage("never");
	test_synced_damage("interval:3600000");
	test_fake_frames();
	test_version1();
	return tap_exit();
}
