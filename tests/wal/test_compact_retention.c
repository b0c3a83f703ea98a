/* test_compact_retention.c - compaction of a "compact,delete" topic under
 * retention.bytes (compact.c "DISK" and "WHEN", retention.c "DISK").
 *
 * 1. At the limit: 50 keys are rewritten round after round (one batch of
 *    50 records a round, each round indexed into a segment of its own)
 *    until retention keeps the partition's segments just under
 *    retention.bytes, too close to it for one round's worth beside them.
 *    Compaction must still run there, within its allowance
 *    (wal.segment.bytes over retention.bytes while it writes): on demand,
 *    and then in the background (engine_compact_now) round after round.
 *    Every sample of the partition's segment files - from the segment
 *    hook (the indexer's new files and compaction's, each the moment it
 *    is written, before the registry lists it) and after every round -
 *    holds at most retention.bytes + wal.segment.bytes; the registered
 *    segments never more than retention.bytes after a round. The newest
 *    record of every key reads back, verify is clean, also after a reopen.
 * 2. The backoff: every record a key of its own, so compaction keeps all
 *    and its output cannot fit its allowance; once the background pass
 *    failed with -ENOSPC, further passes (engine_compact_now, several
 *    wakes of the compaction thread, no new segment) do not try again:
 *    the "would not fit" warnings (one a failed attempt) are counted
 *    through the log sink. engine_partition_compact still tries; a new
 *    segment lets the background try once more.
 * No timing is measured.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "log.h"
#include "warmutil.h"

#define SEG (64u << 10) /* wal.segment.bytes: compaction's allowance */
#define RET (256u << 10) /* retention.bytes */
#define NKEYS 50
#define T0 1700000000000LL
#define VAL 1000 /* value bytes of a record */
#define ROUNDS 40 /* about 8 x retention.bytes */
#define ROUND_BYTES (NKEYS * VAL) /* at least what one round's records weigh */
#define CONFIG_BG                                                                \
	"{\"cleanup.policy\":\"compact,delete\",\"retention.bytes\":\"262144\"," \
	"\"compression.type\":\"none\",\"min.cleanable.dirty.ratio\":\"0.5\"}"
#define CONFIG_OFF                                                               \
	"{\"cleanup.policy\":\"compact,delete\",\"retention.bytes\":\"262144\"," \
	"\"compression.type\":\"none\",\"min.cleanable.dirty.ratio\":\"1\"}"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_segdir[4200];
static uint64_t g_samples, g_bad, g_max;

/* Bytes of the *.seg files in dir; a file removed meanwhile is skipped. */
static uint64_t seg_file_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t n = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[4400];
		struct stat st;
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".seg") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0)
			n += (uint64_t)st.st_size;
	}
	closedir(d);
	return n;
}

static void sample(const char *where)
{
	pthread_mutex_lock(&g_lock);
	if (g_segdir[0]) {
		uint64_t n = seg_file_bytes(g_segdir);
		g_samples++;
		if (n > g_max)
			g_max = n;
		if (n > RET + (uint64_t)SEG && g_bad++ < 5)
			diag("%s: %" PRIu64 " bytes of segment files, over %u", where, n,
			     RET + SEG);
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

static atomic_int g_nofit;

static void sink(void *arg, enum log_level level, const char *module, const char *msg)
{
	(void)arg;
	if (level == LOG_LVL_WARN && strcmp(module, "compact") == 0 && strstr(msg, "would not fit"))
		atomic_fetch_add(&g_nofit, 1);
	if (level >= LOG_LVL_WARN)
		fprintf(stderr, "# chronik[%s]: %s\n", module, msg);
}

static char g_val[VAL + 1];

/* One round: keys key-00..key-49 (or, unique, u<round>-<i>), value the
 * round and key then filler, one batch, indexed. */
static int round_append(struct engine *e, struct partition *p, int round, bool unique)
{
	static struct record_in recs[NKEYS];
	static char keys[NKEYS][32], vals[NKEYS][VAL + 1];
	int64_t base;
	for (int i = 0; i < NKEYS; i++) {
		snprintf(keys[i], sizeof(keys[i]), unique ? "u%04d-%02d" : "key-%02d",
			 unique ? round : i, i);
		memcpy(vals[i], g_val, VAL);
		int n = snprintf(vals[i], 32, "r%04d-k%02d", round, i);
		vals[i][n] = '.';
		recs[i] = (struct record_in){ .timestamp = T0 + round,
					      .key = keys[i],
					      .key_len = (int32_t)strlen(keys[i]),
					      .value = vals[i],
					      .value_len = VAL };
	}
	int rc = engine_append_records(p, recs, NKEYS, &base);
	return rc ? rc : engine_index_now(e);
}

/* Does p hold, for each key, the value of round last as its newest? */
static bool newest_ok(struct partition *p, int last, const char *what)
{
	static int64_t offs[4096];
	static char vals[4096][32];
	int newest[NKEYS];
	int64_t n = read_all(p, offs, NULL, vals, 4096);
	if (n < 0 || n > 4096)
		return diag("%s: %" PRId64 " records", what, n), false;
	for (int i = 0; i < NKEYS; i++)
		newest[i] = -1;
	for (int64_t j = 0; j < n; j++) {
		int r, k;
		if (sscanf(vals[j], "r%4d-k%2d", &r, &k) == 2 && k >= 0 && k < NKEYS)
			newest[k] = r;
	}
	int bad = 0;
	for (int i = 0; i < NKEYS; i++)
		if (newest[i] != last && bad++ < 3)
			diag("%s: key-%02d newest is round %d, want %d", what, i, newest[i], last);
	return bad == 0;
}

static void test_at_limit(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	struct engine_compact_result res;
	int r = 0, err = 0, over = 0;

	e = open_fresh_or_bail(root, "limit", SEG, &o, dir, sizeof(dir));
	ok(engine_segment_hook_set(e, ".t", hook, NULL) == 0, "segment hook set");
	p = topic_or_bail(e, "k", CONFIG_OFF);
	pthread_mutex_lock(&g_lock);
	engine_partition_segment_dir(p, g_segdir, sizeof(g_segdir));
	pthread_mutex_unlock(&g_lock);

	/* Fill to the limit, the background kept out (ratio 1). */
	for (; r < ROUNDS && !err; r++) {
		err = round_append(e, p, r, false);
		sample("after a round");
		engine_partition_info(p, &info);
		if (info.segment_bytes > RET && over++ < 3)
			diag("round %d: %" PRIu64 " bytes of segments registered", r,
			     info.segment_bytes);
	}
	ok(err == 0 && over == 0,
	   "%d rounds of %d keys, the registered segments never over retention.bytes", r, NKEYS);
	engine_partition_info(p, &info);
	ok(info.log_start_offset > 0 && info.segment_bytes <= RET &&
		   info.segment_bytes + ROUND_BYTES > RET,
	   "at the limit: %" PRIu64 " bytes in %" PRIu64
	   " segments, no room for a round's records beside them",
	   info.segment_bytes, info.segments);

	/* On demand. */
	memset(&res, 0, sizeof(res));
	int rc = engine_partition_compact(p, &res);
	ok(rc == 0 && res.segments_in >= 2 && res.records_out == NKEYS,
	   "engine_partition_compact at the limit: %s, %" PRIu64 " segments, %" PRIu64
	   " records -> %" PRIu64 " records",
	   chronik_strerror(rc), res.segments_in, res.records_in, res.records_out);
	sample("compacted");
	ok(newest_ok(p, r - 1, "on demand"), "the newest record of every key is there");

	/* In the background, round after round. */
	ok(engine_topic_config_set(e, "k", CONFIG_BG) == 0,
	   "min.cleanable.dirty.ratio 0.5 on the live topic");
	int bad = 0;
	for (int n = 0; n < 10; n++, r++) {
		err = round_append(e, p, r, false);
		rc = err ? err : engine_compact_now(e);
		sample("after a background pass");
		if (rc && bad++ < 3)
			diag("round %d: %s", r, chronik_strerror(rc));
	}
	ok(bad == 0, "10 more rounds, each compacted in the background");
	ok(newest_ok(p, r - 1, "background"), "the newest record of every key is there");
	engine_partition_info(p, &info);
	ok(info.segment_bytes <= RET && info.segments >= 2,
	   "%" PRIu64 " bytes in %" PRIu64 " segments", info.segment_bytes, info.segments);

	diag("%" PRIu64 " samples, at most %" PRIu64 " bytes of segment files", g_samples, g_max);
	ok(g_samples > (uint64_t)r && g_bad == 0,
	   "segment files within retention.bytes + wal.segment.bytes at every sample (%" PRIu64
	   " over)",
	   g_bad);
	ok(engine_verify(e, verify_problem, NULL) == 0, "verify clean");
	pthread_mutex_lock(&g_lock);
	g_segdir[0] = 0;
	pthread_mutex_unlock(&g_lock);
	engine_partition_unref(p);
	engine_close(e);

	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "k", 0);
	ok(newest_ok(p, r - 1, "reopened") && engine_verify(e, verify_problem, NULL) == 0,
	   "reopened: the newest of every key, verify clean");
	engine_partition_unref(p);
	engine_close(e);
}

static void test_backoff(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	int r = 0, err = 0;

	e = open_fresh_or_bail(root, "backoff", SEG, &o, dir, sizeof(dir));
	p = topic_or_bail(e, "u", CONFIG_OFF);
	for (; r < ROUNDS && !err; r++)
		err = round_append(e, p, r, true);
	engine_partition_info(p, &info);
	ok(err == 0 && info.log_start_offset > 0 && info.segment_bytes <= RET,
	   "%d rounds of unique keys: %" PRIu64 " bytes in %" PRIu64 " segments", r,
	   info.segment_bytes, info.segments);

	/* The background pass takes the partition (all of it dirty). */
	atomic_store(&g_nofit, 0);
	ok(engine_topic_config_set(e, "u", CONFIG_BG) == 0,
	   "min.cleanable.dirty.ratio 0.5 on the live topic");
	int rc = engine_compact_now(e);
	ok(rc == -ENOSPC && atomic_load(&g_nofit) == 1,
	   "the background pass fails: %s, %d attempts", chronik_strerror(rc),
	   atomic_load(&g_nofit));
	int same = 0;
	for (int n = 0; n < 5; n++)
		same += engine_compact_now(e) == -ENOSPC;
	ok(atomic_load(&g_nofit) == 1 && same == 5,
	   "5 more passes, no new segment: not tried again (%d attempts), each reports -ENOSPC",
	   atomic_load(&g_nofit));
	rc = engine_partition_compact(p, NULL);
	ok(rc == -ENOSPC && atomic_load(&g_nofit) == 2,
	   "engine_partition_compact still tries: %s, %d attempts", chronik_strerror(rc),
	   atomic_load(&g_nofit));
	ok(round_append(e, p, r++, true) == 0, "one more round: a new segment");
	rc = engine_compact_now(e);
	int after = atomic_load(&g_nofit);
	ok(rc == -ENOSPC && after == 3, "the background tries again once: %s, %d attempts",
	   chronik_strerror(rc), after);
	ok(engine_compact_now(e) == -ENOSPC && atomic_load(&g_nofit) == 3,
	   "and not after (%d attempts)", atomic_load(&g_nofit));
	ok(engine_verify(e, verify_problem, NULL) == 0, "verify clean");
	engine_partition_unref(p);
	engine_close(e);
}

int main(void)
{
	char *root = tmpdir_new("compret");

	memset(g_val, 'x', VAL);
	log_set_sink(sink, NULL);
	test_at_limit(root);
	test_backoff(root);
	tmpdir_free(root);
	return tap_exit();
}
