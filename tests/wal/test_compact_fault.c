/* test_compact_fault.c - a registry save that fails during compaction
 * (wal/compact.c, "HALT"). Under the faultfs shim (tests/lib/faultfs.c),
 * one fsync of compaction's registry save fails:
 *   tmp      the temp file's (FAULTFS_SYNC_PATH=*registry.json.tmp): the
 *            rename never happens, the disk lists the old set;
 *   renamed  the directory's after the rename (FAULTFS_SYNC_PATH matching
 *            the partition's directory; the second such sync after arming,
 *            the first being compaction's own before the save): the disk
 *            lists the new set.
 * Either way memory cannot know which set the disk lists, so the
 * partition's warm tier halts: info says so, no registry of it is saved
 * again (the file stays byte for byte the same while more records are
 * appended and indexed, and compaction and DeleteRecords are refused),
 * and reads go on, every record once. After a reopen without faults the
 * partition holds the set its registry lists (the old one or the new
 * one, as the mode says), every record appended, verify clean, no stray
 * segment file; indexing then takes the WAL files kept meanwhile.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>

#include "warmutil.h"

typedef void (*arm_fn)(const char *cls, unsigned long nth, unsigned long count, int err);
static arm_fn arm;

#define NKEYS 50
#define NVERS 20
#define NMORE 100
#define T0 1700000000000LL

static int append_one(struct partition *p, const char *key, const char *val, int64_t ts)
{
	struct record_in r = { .timestamp = ts,
			       .key = key,
			       .key_len = (int32_t)strlen(key),
			       .value = val,
			       .value_len = val ? (int32_t)strlen(val) : -1 };
	int64_t base;
	return engine_append_records(p, &r, 1, &base);
}

/* The registry file's bytes (malloc'd, NUL-terminated), NULL if none. */
static char *registry_text(const char *root, uint32_t topic_id)
{
	char path[4400];
	snprintf(path, sizeof(path), "%s/segments/%u/0/registry.json", root, topic_id);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 1 << 20);
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	(void)n;
	fclose(f);
	return buf;
}

static bool same_text(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static int64_t offs[20000];
static uint64_t raws[20000];
static char vals[20000][32];

/* Every record as appended (old set) or compacted (new set), then the
 * NMORE more ones when more. */
static bool check_records(struct partition *p, bool compacted, bool more, const char *what)
{
	int64_t n = read_all(p, offs, raws, vals, 20000), j = 0;
	int64_t want = (compacted ? NKEYS : NKEYS * NVERS) + 1 + (more ? NMORE : 0);
	int bad = 0;
	if (n != want)
		return diag("%s: %" PRId64 " records, %" PRId64 " expected", what, n, want), false;
	for (int v = compacted ? NVERS - 1 : 0; v < NVERS; v++)
		for (int i = 0; i < NKEYS; i++, j++) {
			char s[32];
			snprintf(s, sizeof(s), "v%03d-k%03d", v, i);
			if (offs[j] != (int64_t)v * NKEYS + i || strcmp(vals[j], s))
				bad++;
		}
	if (offs[j] != (int64_t)NKEYS * NVERS || strcmp(vals[j], "filler"))
		bad++;
	j++;
	for (int k = 0; more && k < NMORE; k++, j++) {
		char s[32];
		snprintf(s, sizeof(s), "more-%d", k);
		if (offs[j] != (int64_t)NKEYS * NVERS + 1 + k || strcmp(vals[j], s))
			bad++;
	}
	if (bad)
		diag("%s: %d records wrong", what, bad);
	return bad == 0;
}

int main(int argc, char **argv)
{
	bool renamed = argc > 1 && strcmp(argv[1], "renamed") == 0;
	char *root = tmpdir_new("compact-fault");
	char dir[4200], sub[64];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	struct engine_compact_result res;
	int err = 0;

	*(void **)&arm = dlsym(RTLD_DEFAULT, "faultfs_arm");
	if (!arm)
		bail("the faultfs shim is not loaded (LD_PRELOAD)");
	e = open_fresh_or_bail(root, "d", 16 << 10, &o, dir, sizeof(dir));
	/* Ratio 1: no background pass, only the one this test starts. */
	p = topic_or_bail(e, "c",
			  "{\"cleanup.policy\":\"compact\",\"min.cleanable.dirty.ratio\":\"1\"}");
	for (int v = 0; v < NVERS; v++)
		for (int i = 0; i < NKEYS; i++) {
			char key[16], val[16];
			snprintf(key, sizeof(key), "key-%03d", i);
			snprintf(val, sizeof(val), "v%03d-k%03d", v, i);
			err |= append_one(p, key, val, T0);
		}
	err |= engine_index_now(e);
	err |= append_one(p, "filler", "filler", T0);
	err |= engine_index_now(e);
	engine_partition_info(p, &info);
	ok(err == 0 && info.segments > 3 && !info.warm_halted,
	   "%d keys x %d versions and a filler in %" PRIu64 " segments", NKEYS, NVERS,
	   info.segments);

	uint32_t tid = engine_partition_topic_id(p);
	arm("sync", renamed ? 2 : 1, 1, EIO);
	int rc = engine_partition_compact(p, &res);
	arm("sync", 0, 0, 0);
	engine_partition_info(p, &info);
	ok(rc == -EIO && info.warm_halted,
	   "the registry save fails (%s): compaction returns it, the partition is halted",
	   renamed ? "after the rename" : "before the rename");
	char *reg = registry_text(dir, tid);
	ok(reg != NULL, "the registry is there");
	ok(check_records(p, false, false, "halted"), "reads go on: every record, from the old set");

	/* Nothing saves the registry again. */
	for (int k = 0; k < NMORE; k++) {
		char val[16];
		snprintf(val, sizeof(val), "more-%d", k);
		err |= append_one(p, "more", val, T0);
	}
	ok(err == 0 && engine_index_now(e) == 0, "more records appended, engine_index_now returns");
	engine_partition_info(p, &info);
	ok(info.wal_bytes > 0 && info.warm_halted, "they stay in the WAL (%" PRIu64 " bytes)",
	   info.wal_bytes);
	ok(engine_partition_compact(p, &res) == -EIO, "compaction is refused");
	ok(engine_partition_delete_records(p, 10, NULL) == -EIO, "DeleteRecords is refused");
	char *reg2 = registry_text(dir, tid);
	ok(same_text(reg, reg2), "the registry file did not change");
	free(reg2);
	ok(check_records(p, false, true, "halted, more"), "every record reads once, in order");
	engine_partition_unref(p);
	engine_close(e);
	reg2 = registry_text(dir, tid);
	ok(same_text(reg, reg2), "nor at close");
	free(reg2);
	free(reg);

	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "c", 0);
	engine_partition_info(p, &info);
	ok(!info.warm_halted, "reopened: not halted");
	ok(check_records(p, renamed, true, "reopened"), "the %s set and every record after it",
	   renamed ? "new" : "old");
	ok(engine_verify(e, verify_problem, NULL) == 0, "verify clean");
	ok(engine_index_now(e) == 0, "indexed");
	engine_partition_info(p, &info);
	ok(info.wal_bytes == 0 && check_records(p, renamed, true, "indexed") &&
		   engine_verify(e, verify_problem, NULL) == 0,
	   "the WAL kept meanwhile is indexed: the same records, verify clean");
	snprintf(sub, sizeof(sub), "segments/%u/0", engine_partition_topic_id(p));
	ok(count_seg_files(dir, sub) == info.segments, "no stray segment file (%zu files)",
	   count_seg_files(dir, sub));
	ok(engine_partition_compact(p, &res) == 0 && engine_verify(e, verify_problem, NULL) == 0,
	   "compaction works again, verify clean");
	engine_partition_unref(p);
	engine_close(e);
	tmpdir_free(root);
	return tap_exit();
}
