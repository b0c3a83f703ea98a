/* test_retention_disk.c - the disk a partition under retention.bytes holds
 * (retention.c, "DISK"): its segment files never hold more than
 * retention.bytes, the WAL files never more than wal.unindexed.max.bytes
 * (2 x wal.segment.bytes by default), so the data directory stays within
 * their sum plus its metadata and the file system's rounding.
 *
 * One partition, compression none (segments weigh what the WAL does), is
 * fed 16 x its retention.bytes in rounds. The data directory is sampled
 * after every round from here, and from the segment hook, which runs on
 * the indexer thread the moment a segment file is written and before the
 * registry lists it: the peak, when the segments kept, the new one and
 * the WAL file it came from are all on disk beside the active WAL file.
 * Every sample must hold the bound. At the end every record from the log
 * start to the end reads back, in order and dense, the segments kept hold
 * at most retention.bytes and no less than it minus two segment cuts
 * (retention.bytes / 8 each), and verify is clean, also after a reopen.
 * No timing is measured.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "testutil.h"

#define SEG (256u << 10) /* wal.segment.bytes */
#define RET (1u << 20) /* retention.bytes */
#define CUT (RET / 8) /* the segment cut under retention.bytes */
#define LINE 100 /* bytes of a record with its newline */
#define ROUND_LINES 320 /* 32,000 bytes a round */
#define ROUNDS 512 /* 16 MiB in all */

/* What the data directory holds at one moment. */
struct usage {
	uint64_t wal; /* bytes of the *.wal files */
	uint64_t seg; /* bytes of the *.seg files */
	uint64_t blocks; /* st_blocks x 512 of everything, as du counts */
	uint64_t entries; /* files and directories */
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t l = strlen(s), n = strlen(suffix);
	return l >= n && strcmp(s + l - n, suffix) == 0;
}

/* Sum dir into u; a file removed while the walk runs is skipped. */
static void usage_walk(const char *dir, struct usage *u)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[4400];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) < 0)
			continue;
		u->entries++;
		u->blocks += (uint64_t)st.st_blocks * 512u;
		if (S_ISDIR(st.st_mode))
			usage_walk(path, u);
		else if (ends_with(de->d_name, ".wal"))
			u->wal += (uint64_t)st.st_size;
		else if (ends_with(de->d_name, ".seg"))
			u->seg += (uint64_t)st.st_size;
	}
	closedir(d);
}

static const char *g_dir;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_samples, g_bad_data, g_bad_disk, g_max_data, g_max_disk, g_max_seg;

/* One sample: data = segment and WAL files, bound RET + 2 x SEG; disk =
 * du, bound the same plus one block of rounding for every file and
 * directory (the metadata among them). */
static void sample(const char *where)
{
	struct usage u = { 0 };
	usage_walk(g_dir, &u);
	uint64_t data = u.wal + u.seg, limit = RET + 2 * (uint64_t)SEG;
	pthread_mutex_lock(&g_lock);
	g_samples++;
	if (data > g_max_data)
		g_max_data = data;
	if (u.blocks > g_max_disk)
		g_max_disk = u.blocks;
	if (u.seg > g_max_seg)
		g_max_seg = u.seg;
	if (data > limit) {
		if (g_bad_data++ < 5)
			diag("%s: segments %" PRIu64 " + WAL %" PRIu64 " = %" PRIu64
			     " bytes, over %" PRIu64,
			     where, u.seg, u.wal, data, limit);
	}
	if (u.blocks > limit + 4096 * u.entries) {
		if (g_bad_disk++ < 5)
			diag("%s: du %" PRIu64 " bytes (%" PRIu64 " entries), over %" PRIu64, where,
			     u.blocks, u.entries, limit + 4096 * u.entries);
	}
	pthread_mutex_unlock(&g_lock);
}

static void hook(void *arg, struct partition *p, const char *seg_path)
{
	(void)arg;
	(void)p;
	(void)seg_path;
	sample("segment written");
}

static void line_text(char *buf, int64_t i)
{
	/* 99 characters and a newline, the offset first. */
	int n = snprintf(buf, LINE, "%012" PRId64 " ", i);
	for (int k = n; k < LINE - 1; k++)
		buf[k] = (char)('a' + (i + k) % 26);
	buf[LINE - 1] = '\n';
}

int main(void)
{
	char *root = tmpdir_new("retdisk");
	char dir[4200];
	static char buf[ROUND_LINES * LINE];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	int64_t base, next = 0;
	int failed = 0;

	snprintf(dir, sizeof(dir), "%s/d", root);
	g_dir = dir;
	engine_options_init(&o);
	o.wal_segment_bytes = SEG;
	o.fsync = FSYNC_NEVER;
	e = open_or_bail(dir, &o);
	ok(engine_segment_hook_set(e, ".t", hook, NULL) == 0, "segment hook set");
	ok(engine_topic_create(e, "d", 1,
			       "{\"retention.bytes\":\"1048576\",\"compression.type\":\"none\"}") ==
		   0,
	   "topic with retention.bytes 1 MiB, wal.segment.bytes 256 KiB");
	p = part_or_bail(e, "d", 0);

	for (int r = 0; r < ROUNDS; r++) {
		for (int l = 0; l < ROUND_LINES; l++)
			line_text(buf + l * LINE, next + l);
		if (engine_append_lines(p, buf, sizeof(buf), &base) != 0 || base != next) {
			failed++;
			break;
		}
		next += ROUND_LINES;
		sample("after a round");
		engine_partition_info(p, &info);
		if (info.segment_bytes > RET && failed++ < 5)
			diag("round %d: segments register %" PRIu64 " bytes", r,
			     info.segment_bytes);
	}
	ok(failed == 0, "%d rounds appended, the registered segments never over retention.bytes",
	   ROUNDS);
	ok(engine_index_now(e) == 0, "everything indexed");
	sample("indexed");
	diag("%" PRIu64 " samples; at most %" PRIu64 " bytes of segments and WAL (%" PRIu64
	     " of segments), du %" PRIu64,
	     g_samples, g_max_data, g_max_seg, g_max_disk);
	ok(g_samples > ROUNDS && g_bad_data == 0,
	   "segments + WAL within retention.bytes + 2 x wal.segment.bytes at every sample"
	   " (%" PRIu64 " over)",
	   g_bad_data);
	ok(g_bad_disk == 0, "du within the same plus a block a file (%" PRIu64 " over)",
	   g_bad_disk);

	engine_partition_info(p, &info);
	ok(info.next_offset == next && info.log_start_offset > 0 && info.wal_bytes == 0,
	   "log start %" PRId64 ", next offset %" PRId64, info.log_start_offset, info.next_offset);
	ok(info.segment_bytes <= RET && info.segment_bytes + 2 * CUT > RET,
	   "%" PRIu64 " bytes of segments kept in %" PRIu64
	   " segments: at most retention.bytes, more than it minus two cuts",
	   info.segment_bytes, info.segments);

	/* Every record from the log start reads back. */
	struct engine_cursor *c;
	struct engine_record rec;
	int64_t want = info.log_start_offset, bad = 0;
	char line[LINE];
	int rc = engine_cursor_open(p, 0, &c);
	if (rc == 0) {
		while ((rc = engine_cursor_next(c, &rec)) == 1) {
			line_text(line, want);
			if ((rec.offset != want || rec.value_len != LINE - 1 ||
			     memcmp(rec.value, line, LINE - 1) != 0) &&
			    bad++ < 3)
				diag("offset %" PRId64 ": want %" PRId64, rec.offset, want);
			want = rec.offset + 1;
		}
		engine_cursor_close(c);
	}
	ok(rc == 0 && bad == 0 && want == next,
	   "every record from the log start to the end reads back (%" PRId64 " records)",
	   next - info.log_start_offset);
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	engine_partition_unref(p);
	engine_close(e);

	/* The cut segments and the log start are in the registry. */
	struct partition_info again;
	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "d", 0);
	engine_partition_info(p, &again);
	ok(again.log_start_offset == info.log_start_offset && again.next_offset == next &&
		   again.segments == info.segments && again.segment_bytes == info.segment_bytes &&
		   engine_verify(e, NULL, NULL) == 0,
	   "reopened: the same log start, segments and bytes, verify clean");
	engine_partition_unref(p);
	engine_close(e);
	tmpdir_free(root);
	return tap_exit();
}
