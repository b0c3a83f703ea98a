/* test_index_fault.c - a failed fsync anywhere in sealing and indexing
 * (the seal, the new WAL file, the segment, its directory, the registry's
 * temp file, its rename's directory fsync) loses no acknowledged record
 * and counts none twice: after a reopen without faults every record
 * acknowledged under fsync every reads back once, in order, and verify is
 * clean, also when every write fails for a while after the failed sync.
 * The case that made this test: a registry whose directory fsync
 * failed after its rename lists the segment on disk while memory does
 * not, and a retry removed the listed file as a stale one (indexer.c,
 * indexer_halt_rc). Runs under the faultfs shim (tests/lib/faultfs.c).
 */
#include <dlfcn.h>
#include <errno.h>

#include "testutil.h"

typedef void (*arm_fn)(const char *cls, unsigned long nth, unsigned long count, int err);
static arm_fn arm;

#define ROUND 20

static void problem(void *arg, const char *what)
{
	(void)arg;
	diag("verify: %s", what);
}

/* Append ROUND lines "tag-i"; each acknowledged one goes into acked. */
static void append_round(struct partition *p, char tag, char acked[][16], int *nacked)
{
	for (int i = 0; i < ROUND; i++) {
		char line[16];
		int n = snprintf(line, sizeof(line), "%c-%d\n", tag, i);
		if (engine_append_lines(p, line, (size_t)n, NULL) == 0) {
			memcpy(acked[*nacked], line, (size_t)n - 1);
			acked[*nacked][n - 1] = 0;
			(*nacked)++;
		}
	}
}

/* One run with the nth sync after the first round failing. 0 = passed. */
static int run(unsigned long nth)
{
	char *dir = tmpdir_new("idxfault");
	char acked[2 * ROUND][16];
	int nacked = 0, bad = 0, got = 0;
	struct engine_options o;
	struct engine *e;
	struct partition *p;

	engine_options_init(&o);
	e = open_or_bail(dir, &o);
	if (engine_topic_create(e, "t", 1, NULL))
		bail("topic");
	p = part_or_bail(e, "t", 0);
	append_round(p, 'a', acked, &nacked);
	arm("sync", nth, 1, EIO);
	(void)engine_index_now(e); /* may fail: that is the point */
	/* Then every write fails for a while (a full disk, say): a retry of
	 * the indexing must not have removed what the disk's registry lists. */
	arm("write", 1, 1000000, EIO);
	(void)engine_index_now(e);
	append_round(p, 'b', acked, &nacked);
	engine_partition_unref(p);
	engine_close(e); /* still failing: what the disk holds now is what counts */
	arm("write", 0, 0, 0);
	arm("sync", 0, 0, 0);

	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "t", 0);
	(void)engine_index_now(e); /* and what the reopen indexes */
	struct engine_cursor *c;
	struct engine_record r;
	if (engine_cursor_open(p, 0, &c) == 0) {
		while (engine_cursor_next(c, &r) == 1) {
			if (got >= nacked || r.value_len != (int32_t)strlen(acked[got]) ||
			    memcmp(r.value, acked[got], (size_t)r.value_len) != 0)
				bad++;
			got++;
		}
		engine_cursor_close(c);
	} else {
		bad++;
	}
	if (got != nacked || bad)
		diag("sync %lu failed: %d records read, %d acknowledged, %d wrong", nth, got,
		     nacked, bad);
	if (engine_verify(e, problem, NULL) != 0)
		bad++;
	engine_partition_unref(p);
	engine_close(e);
	tmpdir_free(dir);
	return got != nacked || bad;
}

int main(void)
{
	int failed = 0;
	unsigned long nth;

	*(void **)&arm = dlsym(RTLD_DEFAULT, "faultfs_arm");
	if (!arm)
		bail("the faultfs shim is not loaded (LD_PRELOAD)");
	for (nth = 1; nth <= 40; nth++)
		failed += run(nth);
	ok(failed == 0,
	   "a failed sync at each of the first 40 syncs of sealing, indexing and "
	   "the appends around them loses no acknowledged record (%d runs failed)",
	   failed);
	return tap_exit();
}
