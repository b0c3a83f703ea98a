/* test_recovery.c - recovery returns exactly the frames before a cut, at
 * every byte offset inside the last three frames; damage before the tail is
 * reported, not skipped, and repair cuts there. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/stat.h>

#include "frame.h"
#include "frameutil.h"
#include "testutil.h"

#define NBATCH 8


static void copy_file(const char *from, const char *to, off_t len)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	static char buf[1 << 16];
	off_t done = 0;
	if (in < 0 || out < 0)
		bail("copy %s -> %s", from, to);
	while (done < len) {
		ssize_t n = read(in, buf,
				 (size_t)(len - done) < sizeof(buf) ? (size_t)(len - done) :
								      sizeof(buf));
		if (n <= 0 || write(out, buf, (size_t)n) != n)
			bail("copy failed");
		done += n;
	}
	close(in);
	close(out);
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Lay out a data dir with NBATCH batches; batch i holds i+1 records. */
static void build(const char *dir, char *raw, size_t *rawlen, int64_t *counts)
{
	struct engine *e = open_or_bail(dir, NULL);
	struct partition *p;
	int64_t base, total = 0;
	*rawlen = 0;
	engine_topic_create(e, "r", 1, NULL);
	p = part_or_bail(e, "r", 0);
	for (int i = 0; i < NBATCH; i++) {
		char lines[1024];
		size_t n = 0;
		for (int j = 0; j <= i; j++)
			n += (size_t)sprintf(lines + n, "b%d-r%d\n", i, j);
		if (engine_append_lines(p, lines, n, &base) || base != total)
			bail("append");
		memcpy(raw + *rawlen, lines, n);
		*rawlen += n;
		total += i + 1;
		counts[i] = total;
	}
	engine_partition_unref(p);
	engine_close(e);
}

/* Rewrite the header of the V2 frame at pos with new flags (CRC redone). */
static void set_flags(const char *path, uint64_t pos, uint8_t flags)
{
	int fd = open(path, O_RDWR);
	uint8_t buf[4096];
	struct frame_info fi;
	ssize_t n = pread(fd, buf, sizeof(buf), (off_t)pos);
	if (n <= 0 || frame_decode(buf, (size_t)n, &fi) != FRAME_VALID)
		bail("set_flags: no valid frame at %llu", (unsigned long long)pos);
	fi.flags = flags;
	frame_v2_header_encode(buf, &fi, fi.batch, fi.batch_len);
	if (pwrite(fd, buf, FRAME_V2_HEADER_SIZE, (off_t)pos) != FRAME_V2_HEADER_SIZE)
		bail("set_flags: write");
	close(fd);
}

static void zero_range(const char *path, uint64_t pos, size_t len)
{
	int fd = open(path, O_RDWR);
	static const uint8_t zeros[4096];
	if (pwrite(fd, zeros, len, (off_t)pos) != (ssize_t)len)
		bail("zero_range");
	close(fd);
}

/* The kernel may write a group's pages in any order before its fsync: a hole
 * followed by intact frames of the same (last) group is a torn tail; the same
 * hole followed by a later group is damage. */
static void test_group_hole(const char *root, const char *wal_src, const char *meta_src,
			    const struct frames *f, const int64_t *counts)
{
	char dir[4200], wal[4300], meta[4300];
	struct engine *e;
	struct engine_options o;
	struct partition_info info;

	snprintf(dir, sizeof(dir), "%s/hole", root);
	snprintf(wal, sizeof(wal), "%s/wal/%020d.wal", dir, 0);
	snprintf(meta, sizeof(meta), "%s/meta.log", dir);
	mkdir(dir, 0755);
	snprintf(wal + strlen(dir) + 4, 2, "%s", ""); /* wal = DIR/wal */
	mkdir(wal, 0755);
	snprintf(wal, sizeof(wal), "%s/wal/%020d.wal", dir, 0);
	copy_file(meta_src, meta, file_size(meta_src));
	copy_file(wal_src, wal, file_size(wal_src));
	/* The last two frames become one group; a hole in the first of them.
	 * As one group they would have no sync point between them: the one
	 * the file holds there becomes zeros (nothing genuine) too. */
	set_flags(wal, f->pos[NBATCH - 2], 0);
	zero_range(wal, f->end[NBATCH - 2], f->pos[NBATCH - 1] - f->end[NBATCH - 2]);
	zero_range(wal, f->pos[NBATCH - 2] + 70, 16);
	ok(engine_open(dir, NULL, &e) == 0, "a hole followed only by its own group opens");
	struct partition *p = part_or_bail(e, "r", 0);
	engine_partition_info(p, &info);
	ok(info.next_offset == counts[NBATCH - 3] && file_size(wal) == (off_t)f->pos[NBATCH - 2],
	   "the torn group is cut off whole");
	engine_partition_unref(p);
	engine_close(e);

	/* The same hole, but the frame after it is a group of its own, and one
	 * more group follows: damage before the tail. */
	copy_file(wal_src, wal, file_size(wal_src));
	zero_range(wal, f->pos[NBATCH - 3] + 70, 16);
	engine_options_init(&o);
	ok(engine_open(dir, &o, &e) == CHRONIK_ECORRUPT,
	   "a hole followed by later groups fails the open");
	o.read_only = true;
	copy_file(wal_src, wal, (off_t)f->end[NBATCH - 1] - 5);
	ok(engine_open(dir, &o, &e) == 0 && engine_verify(e, NULL, NULL) == 0,
	   "read-only open and verify accept a torn tail (it is not damage)");
	engine_close(e);
	ok(file_size(wal) == (off_t)f->end[NBATCH - 1] - 5,
	   "read-only left the torn tail in place");

	/* Repair cuts at a frame of unknown version. */
	copy_file(wal_src, wal, file_size(wal_src));
	{
		int fd = open(wal, O_RDWR);
		uint8_t v = 7;
		pwrite(fd, &v, 1, (off_t)f->pos[4] + 4);
		close(fd);
	}
	engine_options_init(&o);
	ok(engine_open(dir, &o, &e) == CHRONIK_EVERSION, "an unknown version fails the open");
	o.repair = true;
	ok(engine_open(dir, &o, &e) == 0 && file_size(wal) == (off_t)f->pos[4],
	   "repair cuts the log at the unknown version");
	engine_close(e);
}

/* The metadata log recovers like the WAL: torn tail cut, damage refused. */
static void test_meta_log(const char *root)
{
	char dir[4200], meta[4300];
	struct engine *e;
	struct engine_options o;
	int32_t np;
	off_t full, before_last;

	snprintf(dir, sizeof(dir), "%s/meta", root);
	snprintf(meta, sizeof(meta), "%s/meta.log", dir);
	e = open_or_bail(dir, NULL);
	engine_topic_create(e, "m1", 1, NULL);
	engine_topic_create(e, "m2", 2, NULL);
	before_last = file_size(meta);
	engine_topic_create(e, "m3", 3, NULL);
	engine_close(e);
	full = file_size(meta);

	ok(truncate(meta, full - 7) == 0, "cut the last metadata event");
	e = open_or_bail(dir, NULL);
	ok(engine_topic_partitions(e, "m2", &np) == 0 && np == 2 &&
		   engine_topic_partitions(e, "m3", &np) == CHRONIK_ENOTOPIC &&
		   file_size(meta) == before_last,
	   "the torn metadata event is cut, the ones before it kept");
	engine_topic_create(e, "m3", 3, NULL);
	engine_close(e);

	/* damage inside the second event, with a later event intact */
	{
		int fd = open(meta, O_RDWR);
		uint8_t b = 0xEE;
		pwrite(fd, &b, 1, 32 + 70 + 60);
		close(fd);
	}
	engine_options_init(&o);
	ok(engine_open(dir, &o, &e) == CHRONIK_ECORRUPT,
	   "damage before the last metadata event fails the open");
	o.repair = true;
	ok(engine_open(dir, &o, &e) == 0, "repair opens the metadata log");
	engine_close(e);
}

int main(void)
{
	char *root = tmpdir_new("recovery");
	char src[4096], work[4096], wal_src[4200], wal_work[4200], meta_src[4200], meta_work[4200];
	char raw[65536], got[65536];
	size_t rawlen;
	int64_t counts[NBATCH];
	uint64_t raw_end[NBATCH];
	struct frames f = { 0 };

	snprintf(src, sizeof(src), "%s/src", root);
	snprintf(work, sizeof(work), "%s/work", root);
	build(src, raw, &rawlen, counts);
	snprintf(wal_src, sizeof(wal_src), "%s/wal/%020d.wal", src, 0);
	snprintf(meta_src, sizeof(meta_src), "%s/meta.log", src);
	snprintf(wal_work, sizeof(wal_work), "%s/wal/%020d.wal", work, 0);
	snprintf(meta_work, sizeof(meta_work), "%s/meta.log", work);
	ok(wal_file_walk(wal_src, collect_frames, &f) == 0 && f.n == NBATCH,
	   "the WAL holds the laid-out frames");
	/* raw end of batch i: the lines of batches 0..i */
	for (int i = 0, pos = 0; i < NBATCH; i++) {
		for (int j = 0; j <= i; j++)
			pos += snprintf(NULL, 0, "b%d-r%d\n", i, j);
		raw_end[i] = (uint64_t)pos;
	}

	/* Cut at every byte offset from the start of frame NBATCH-3 to the end. */
	uint64_t from = f.pos[NBATCH - 3], to = f.end[NBATCH - 1];
	int bad = 0, cuts = 0;
	mkdir(work, 0755);
	char wdir[4200];
	snprintf(wdir, sizeof(wdir), "%s/wal", work);
	mkdir(wdir, 0755);
	for (uint64_t cut = from; cut <= to; cut++) {
		struct engine *e;
		struct partition *p;
		struct partition_info info;
		int whole = 0;
		for (int i = 0; i < NBATCH; i++)
			if (f.end[i] <= cut)
				whole = i + 1;
		copy_file(meta_src, meta_work, file_size(meta_src));
		copy_file(wal_src, wal_work, (off_t)cut);
		if (engine_open(work, NULL, &e) != 0) {
			bad++;
			diag("cut %llu: open failed", (unsigned long long)cut);
			continue;
		}
		p = part_or_bail(e, "r", 0);
		engine_partition_info(p, &info);
		int64_t want_next = whole ? counts[whole - 1] : 0;
		uint64_t want_raw = whole ? raw_end[whole - 1] : 0;
		/* the file ends after the last whole frame, or after the whole
		 * sync point that follows it (frame.h, V3) */
		uint64_t want_fsz = whole ? f.end[whole - 1] : 32;
		if (whole && whole < NBATCH && cut >= f.pos[whole])
			want_fsz = f.pos[whole];
		ssize_t n = engine_read_raw(p, 0, got, sizeof(got));
		uint64_t fsz = (uint64_t)file_size(wal_work);
		if (info.next_offset != want_next || info.raw_size != want_raw ||
		    n != (ssize_t)want_raw || memcmp(got, raw, want_raw) != 0 ||
		    fsz != want_fsz) {
			bad++;
			diag("cut %llu: next %lld (want %lld) raw %llu (want %llu) file %llu",
			     (unsigned long long)cut, (long long)info.next_offset,
			     (long long)want_next, (unsigned long long)info.raw_size,
			     (unsigned long long)want_raw, (unsigned long long)fsz);
		}
		int64_t base;
		if (engine_append_lines(p, "again\n", 6, &base) != 0 || base != want_next)
			bad++;
		if (engine_verify(e, NULL, NULL) != 0)
			bad++;
		engine_partition_unref(p);
		engine_close(e);
		cuts++;
	}
	ok(bad == 0 && cuts == (int)(to - from + 1),
	   "%d cuts inside the last three frames: recovery keeps exactly the whole frames before each (%d bad)",
	   cuts, bad);

	/* Flip a byte inside frame 2 of 8: reported, the open fails. */
	copy_file(meta_src, meta_work, file_size(meta_src));
	copy_file(wal_src, wal_work, file_size(wal_src));
	{
		int fd = open(wal_work, O_RDWR);
		uint8_t b;
		off_t at = (off_t)(f.pos[2] + 70);
		pread(fd, &b, 1, at);
		b ^= 0xff;
		pwrite(fd, &b, 1, at);
		close(fd);
	}
	struct engine *e;
	struct engine_options o;
	engine_options_init(&o);
	ok(engine_open(work, &o, &e) == CHRONIK_ECORRUPT, "a corrupt middle frame fails the open");
	ok(file_size(wal_work) == (off_t)f.end[NBATCH - 1], "and nothing was truncated");
	o.read_only = true;
	ok(engine_open(work, &o, &e) == CHRONIK_ECORRUPT, "read-only open reports it too");
	o.read_only = false;
	o.repair = true;
	ok(engine_open(work, &o, &e) == 0, "repair opens");
	{
		struct partition *p = part_or_bail(e, "r", 0);
		struct partition_info info;
		engine_partition_info(p, &info);
		ok(info.next_offset == counts[1] && file_size(wal_work) == (off_t)f.pos[2],
		   "repair cut the log at the corrupt frame (next offset %lld)",
		   (long long)info.next_offset);
		ok(engine_verify(e, NULL, NULL) == 0, "verify clean after repair");
		engine_partition_unref(p);
		engine_close(e);
	}

	/* A sealed file's damage is never a torn tail. */
	{
		char d2[4200];
		struct engine_options o2;
		struct partition *p;
		int64_t base;
		snprintf(d2, sizeof(d2), "%s/sealed", root);
		engine_options_init(&o2);
		o2.wal_segment_bytes = 4096;
		o2.no_index = true; /* keep the sealed files to damage them */
		e = open_or_bail(d2, &o2);
		engine_topic_create(e, "s", 1, NULL);
		p = part_or_bail(e, "s", 0);
		for (int i = 0; i < 100; i++)
			engine_append_lines(
				p,
				"0123456789012345678901234567890123456789012345678901234567890123456789\n",
				71, &base);
		engine_partition_unref(p);
		engine_close(e);
		char first[4300];
		snprintf(first, sizeof(first), "%s/wal/%020d.wal", d2, 0);
		off_t sz = file_size(first);
		ok(truncate(first, sz - 10) == 0, "cut the end of the first, sealed file");
		ok(engine_open(d2, &o2, &e) == CHRONIK_ECORRUPT,
		   "a damaged sealed file fails the open");
	}
	test_group_hole(root, wal_src, meta_src, &f, counts);
	test_meta_log(root);
	tmpdir_free(root);
	return tap_exit();
}
