/* test_fsync_fault.c - a failed fsync is never followed by a reported
 * success for the same data (commit.c, "FAILED WRITES AND SYNCS"), and a
 * failed rotation leaves no stray WAL file. Runs under the faultfs shim
 * (tests/lib/faultfs.c), which it arms call by call with faultfs_arm; the
 * appends are made from this one thread, so "the next sync" is exactly the
 * one the step means.
 *
 *   test_wal_fsync_fault every|interval|timer|never|rotate|meta
 */
#include <dlfcn.h>
#include <errno.h>
#include <sys/stat.h>

#include "testutil.h"

typedef void (*arm_fn)(const char *cls, unsigned long nth, unsigned long count, int err);
static arm_fn arm;

static int append(struct partition *p, const char *line, int64_t *base)
{
	int64_t b = -1;
	int rc = engine_append_lines(p, line, strlen(line), &b);
	if (base)
		*base = b;
	return rc;
}

/* The values of partition t/0 joined by ',' into buf, each as its first
 * byte, followed by '*' when it is longer. */
static void values(struct partition *p, char *buf, size_t len)
{
	struct engine_cursor *c;
	struct engine_record r;
	size_t n = 0;

	buf[0] = 0;
	if (engine_cursor_open(p, 0, &c))
		return;
	while (engine_cursor_next(c, &r) == 1 && n + 4 < len) {
		if (n)
			buf[n++] = ',';
		buf[n++] = r.value_len > 0 ? (char)r.value[0] : '-';
		if (r.value_len > 1)
			buf[n++] = '*';
		buf[n] = 0;
	}
	engine_cursor_close(c);
}

static void problem(void *arg, const char *what)
{
	(void)arg;
	diag("verify: %s", what);
}

/* Reopen without faults: exactly want is there and verify is clean. */
static void check_reopen(const char *dir, const char *policy, const char *want)
{
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	char got[256];

	engine_options_init(&o);
	engine_options_parse_fsync(&o, policy);
	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "t", 0);
	values(p, got, sizeof(got));
	ok(strcmp(got, want) == 0, "after reopen the records are exactly %s (got %s)", want, got);
	ok(engine_verify(e, problem, NULL) == 0, "verify is clean after reopen");
	engine_partition_unref(p);
	ok(engine_close(e) == 0, "a clean close after reopen");
}

static bool file_exists(const char *dir, int seq)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/wal/%020d.wal", dir, seq);
	return stat(path, &st) == 0;
}

static bool mark_exists(const char *dir)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/wal/failed.syncpoint", dir);
	return stat(path, &st) == 0;
}

static struct engine *open_mode(const char *dir, const char *policy, uint64_t segment)
{
	struct engine_options o;
	struct engine *e;
	engine_options_init(&o);
	if (engine_options_parse_fsync(&o, policy))
		bail("bad policy %s", policy);
	if (segment)
		o.wal_segment_bytes = segment;
	/* The faults are armed call by call from this thread: the indexer
	 * thread's own writes and syncs must not take them. */
	o.no_index = true;
	e = open_or_bail(dir, &o);
	if (engine_topic_create(e, "t", 1, NULL))
		bail("cannot create topic t");
	return e;
}

/* fsync every: a failed group sync fails the group, the cut back is made
 * durable and the engine carries on; when the cut cannot be made durable
 * either, nothing more succeeds. */
static void test_every(const char *dir)
{
	struct engine *e = open_mode(dir, "every", 0);
	struct partition *p = part_or_bail(e, "t", 0);
	int64_t base;

	ok(append(p, "a\n", &base) == 0 && base == 0, "[every] a is acknowledged");
	arm("sync", 1, 1, EIO);
	ok(append(p, "b\n", NULL) == -EIO, "[every] b, whose fsync failed, is not acknowledged");
	ok(engine_sync(e) == 0, "[every] engine_sync: every acknowledged record is durable");
	ok(append(p, "c\n", &base) == 0 && base == 1,
	   "[every] after the durable cut c is acknowledged at offset 1 (got %lld)",
	   (long long)base);
	arm("sync", 1, 2, EIO); /* the group's sync and the cut's */
	ok(append(p, "d\n", NULL) == -EIO, "[every] d fails; its cut cannot be made durable");
	ok(engine_sync(e) == -EIO, "[every] engine_sync reports the failure");
	ok(append(p, "e\n", NULL) == -EIO, "[every] a later append fails too");
	ok(engine_sync(e) == -EIO, "[every] and so does a later engine_sync");
	engine_partition_unref(p);
	ok(engine_close(e) == -EIO, "[every] close reports the failure");
	ok(mark_exists(dir), "[every] FAILED left the failed-sync marker");
	check_reopen(dir, "every", "a,c");
}

/* fsync interval/never: data already reported written that a failed sync
 * covered can no longer be promised, so engine_sync and every later append
 * fail until reopen. (The interval is an hour: the only syncs are the ones
 * the test makes.) */
static void test_lazy(const char *dir, const char *policy)
{
	struct engine *e = open_mode(dir, policy, 0);
	struct partition *p = part_or_bail(e, "t", 0);
	int64_t base;

	ok(append(p, "a\n", &base) == 0 && base == 0, "[%s] a is written", policy);
	ok(engine_sync(e) == 0, "[%s] engine_sync makes a durable", policy);
	ok(append(p, "b\n", &base) == 0 && base == 1, "[%s] b is written", policy);
	arm("sync", 1, 1, EIO);
	ok(engine_sync(e) == -EIO, "[%s] engine_sync whose fdatasync failed reports it", policy);
	ok(engine_sync(e) == -EIO, "[%s] a retried engine_sync (fdatasync would say 0) fails",
	   policy);
	ok(append(p, "c\n", NULL) == -EIO, "[%s] a later append is not acknowledged", policy);
	engine_partition_unref(p);
	ok(engine_close(e) == -EIO, "[%s] close reports the failure", policy);
	ok(mark_exists(dir), "[%s] the failed sync left the failed-sync marker", policy);
	/* The shim only pretended: b is still in the page cache, where
	 * recovery would find it valid (and its own fdatasync would succeed).
	 * The marker cuts the WAL at the last good sync point, after a. */
	check_reopen(dir, policy, "a");
	ok(!mark_exists(dir), "[%s] the writable reopen applied and removed the marker", policy);

	/* A damaged marker is damage: the open fails and names it. */
	{
		char path[4096];
		struct engine_options o;
		struct engine *e2 = NULL;
		FILE *f;
		snprintf(path, sizeof(path), "%s/wal/failed.syncpoint", dir);
		f = fopen(path, "w");
		if (!f || fputs("CHRONIKF garbage", f) < 0 || fclose(f) != 0)
			bail("cannot write %s", path);
		engine_options_init(&o);
		ok(engine_open(dir, &o, &e2) == CHRONIK_ECORRUPT,
		   "[%s] a damaged marker fails the open with CHRONIK_ECORRUPT", policy);
		unlink(path);
		check_reopen(dir, policy, "a");
	}
}

/* fsync interval with a short interval: the syncs are the commit thread's
 * own, either its timer's (data already reported written, rule 3) or the
 * one a group makes when the interval has passed (rule 2 when nothing
 * earlier is unsynced, else rule 3). Which of them meets the injected
 * failure depends on timing; what must hold does not: once it failed, no
 * later success is reported for data it covered. */
static void test_timer(const char *dir)
{
	struct engine *e = open_mode(dir, "interval:100", 0);
	struct partition *p = part_or_bail(e, "t", 0);
	struct engine_stats st0, st;
	int64_t base;
	int b_rc, i;

	ok(append(p, "a\n", &base) == 0 && base == 0, "[timer] a is written");
	engine_stats_get(e, &st0);
	for (i = 0; i < 500; i++) { /* the timer's sync makes a durable */
		engine_stats_get(e, &st);
		if (st.fsyncs > st0.fsyncs)
			break;
		usleep(10000);
	}
	ok(st.fsyncs > st0.fsyncs, "[timer] the commit thread syncs a by itself");

	arm("sync", 1, 1, EIO); /* the next WAL sync, whoever makes it */
	b_rc = append(p, "b\n", &base);
	if (b_rc == 0) {
		/* b was reported written; the sync that covers it fails. Wait
		 * past the interval: the timer's sync (or c's own) meets it. */
		usleep(300000);
		ok(append(p, "c\n", NULL) == -EIO,
		   "[timer] after the failed sync that covered b, c is not acknowledged");
		ok(engine_sync(e) == -EIO, "[timer] and engine_sync reports the failure");
	} else {
		/* b's own group sync failed with nothing earlier unsynced: the
		 * group failed and was cut off durably. */
		ok(b_rc == -EIO, "[timer] b, whose group sync failed, is not acknowledged");
		ok(append(p, "c\n", &base) == 0 && base == 1,
		   "[timer] after the durable cut c is written at offset 1");
	}
	engine_partition_unref(p);
	engine_close(e);
	ok(mark_exists(dir) == (b_rc == 0), "[timer] a marker exactly when FAILED was entered");
	/* FAILED: cut at the sync that covered a (rule 4). */
	check_reopen(dir, "interval:100", b_rc == 0 ? "a" : "a,c");
}

/* A failed rotation: the new file's header write or its directory fsync
 * fails the group, leaves no stray file, and the next group rotates; a
 * failed seal of the full file (its fsync covered data reported written)
 * is FAILED. */
static void test_rotate(const char *dir)
{
	char big[3000];
	struct engine *e = open_mode(dir, "never", 4096);
	struct partition *p = part_or_bail(e, "t", 0);

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	ok(append(p, "a\n", NULL) == 0, "[rotate] a is written");
	ok(engine_append_lines(p, big, sizeof(big), NULL) == 0 && !file_exists(dir, 1),
	   "[rotate] x fits into the first file");

	memset(big, 'y', sizeof(big) - 1);
	arm("write", 1, 1, ENOSPC); /* the new file's header */
	ok(engine_append_lines(p, big, sizeof(big), NULL) == -ENOSPC,
	   "[rotate] a failed header write fails the group");
	ok(!file_exists(dir, 1), "[rotate] and leaves no stray file");
	ok(engine_append_lines(p, big, sizeof(big), NULL) == 0 && file_exists(dir, 1),
	   "[rotate] the next group rotates and is written (y)");

	memset(big, 'z', sizeof(big) - 1);
	arm("sync", 3, 1, EIO); /* 1 the seal, 2 the new header, 3 the directory */
	ok(engine_append_lines(p, big, sizeof(big), NULL) == -EIO,
	   "[rotate] a failed directory fsync of the new file fails the group");
	ok(!file_exists(dir, 2), "[rotate] and leaves no stray file");
	ok(engine_append_lines(p, big, sizeof(big), NULL) == 0 && file_exists(dir, 2),
	   "[rotate] the next group rotates and is written (z)");
	ok(engine_sync(e) == 0, "[rotate] engine_sync: nothing was lost so far");

	memset(big, 'w', sizeof(big) - 1);
	arm("sync", 1, 1, EIO); /* the seal */
	ok(engine_append_lines(p, big, sizeof(big), NULL) == -EIO,
	   "[rotate] a failed seal fails the group");
	ok(!file_exists(dir, 3), "[rotate] no new file after a failed seal");
	ok(engine_sync(e) == -EIO, "[rotate] a failed seal fails engine_sync");
	ok(append(p, "b\n", NULL) == -EIO, "[rotate] and every later append");
	engine_partition_unref(p);
	ok(engine_close(e) == -EIO, "[rotate] close reports the failure");
	check_reopen(dir, "never", "a,x*,y*,z*");
}

/* The metadata log and the data directory: a new DATA directory is
 * fsynced in its parent; a short write of an event reports ENOSPC, not a
 * stale errno; a failed directory fsync after the metadata snapshot (its
 * rename may not be durable) fails the open. */
static void test_meta(const char *dir)
{
	char sub[4200];
	struct engine *e;
	struct engine_options o;
	char *meta = NULL;
	int64_t off = -1;
	int32_t np;
	int rc;

	engine_options_init(&o);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	arm("sync", 1, 1, EIO); /* the first sync of the open: DATA's parent */
	rc = engine_open(sub, &o, &e);
	ok(rc == -EIO, "[meta] a new DATA whose parent's fsync fails is not opened (rc %d)", rc);
	if (rc == 0)
		engine_close(e);
	arm("sync", 0, 0, 0);

	e = open_or_bail(sub, &o);
	errno = ENOENT; /* stale */
	arm("write", 1, 1, -1); /* the event's pwrite writes half of it */
	rc = engine_topic_create(e, "t", 1, NULL);
	ok(rc == -ENOSPC, "[meta] a short write of an event reports ENOSPC (rc %d)", rc);
	ok(engine_topic_create(e, "t", 1, NULL) == 0, "[meta] the next event is written");
	arm("sync", 1, 1, EIO); /* the event's fdatasync; its cut's succeeds */
	ok(engine_topic_create(e, "m1", 1, NULL) == -EIO,
	   "[meta] an event whose sync failed fails");
	ok(engine_topic_create(e, "m2", 1, NULL) == 0,
	   "[meta] after a durable cut the next is written");
	/* Enough events for the next open to snapshot the log; the syncs are
	 * skipped so that this takes no time. Offset commits compact the log
	 * while running, so the many events are topics created and deleted,
	 * after a few commits. */
	arm("sync", 1, 0, -2);
	for (int i = 0; i < 200; i++)
		if (engine_group_offset_commit(e, "g", "t", 0, 4000 + i, NULL))
			bail("offset commit %d failed", i);
	for (int i = 0; i < 2100; i++)
		if (engine_topic_create(e, "churn", 1, NULL) || engine_topic_delete(e, "churn"))
			bail("topic churn %d failed", i);
	arm("sync", 0, 0, 0);
	ok(engine_close(e) == 0, "[meta] close after 4200 topic events");

	/* The snapshot's syncs: its header, its events, then the directory. */
	arm("sync", 3, 1, EIO);
	rc = engine_open(sub, &o, &e);
	ok(rc == -EIO, "[meta] a failed directory fsync after the snapshot fails the open (rc %d)",
	   rc);
	if (rc == 0)
		engine_close(e);
	arm("sync", 0, 0, 0);
	e = open_or_bail(sub, &o);
	ok(engine_group_offset_fetch(e, "g", "t", 0, &off, &meta) == 0 && off == 4199,
	   "[meta] the next open has every offset commit (offset %lld)", (long long)off);
	free(meta);
	ok(engine_verify(e, problem, NULL) == 0, "[meta] verify is clean");
	ok(engine_topic_partitions(e, "m1", &np) == CHRONIK_ENOTOPIC &&
		   engine_topic_partitions(e, "m2", &np) != CHRONIK_ENOTOPIC,
	   "[meta] the failed event is gone, the next one is there");
	arm("sync", 1, 2, EIO); /* the event's fdatasync and its cut's */
	ok(engine_topic_create(e, "m3", 1, NULL) == -EIO, "[meta] an event fails, its cut too");
	ok(engine_topic_create(e, "m4", 1, NULL) == -EIO &&
		   engine_topic_create(e, "m4", 1, NULL) == -EIO,
	   "[meta] no later metadata change succeeds (the cut may not be durable)");
	ok(engine_close(e) == 0, "[meta] close");
	e = open_or_bail(sub, &o);
	ok(engine_topic_partitions(e, "m3", &np) == CHRONIK_ENOTOPIC &&
		   engine_topic_partitions(e, "m4", &np) == CHRONIK_ENOTOPIC,
	   "[meta] after reopen neither m3 nor m4 exists");
	ok(engine_topic_create(e, "m5", 1, NULL) == 0, "[meta] after reopen events are written");
	ok(engine_close(e) == 0, "[meta] close after reopen");
}

int main(int argc, char **argv)
{
	char *dir;

	if (argc != 2)
		bail("usage: test_wal_fsync_fault every|interval|timer|never|rotate|meta");
	*(void **)&arm = dlsym(RTLD_DEFAULT, "faultfs_arm");
	if (!arm)
		bail("the faultfs shim is not loaded (LD_PRELOAD)");
	dir = tmpdir_new("fsync");
	if (strcmp(argv[1], "every") == 0)
		test_every(dir);
	else if (strcmp(argv[1], "interval") == 0)
		test_lazy(dir, "interval:3600000");
	else if (strcmp(argv[1], "never") == 0)
		test_lazy(dir, "never");
	else if (strcmp(argv[1], "timer") == 0)
		test_timer(dir);
	else if (strcmp(argv[1], "rotate") == 0)
		test_rotate(dir);
	else if (strcmp(argv[1], "meta") == 0)
		test_meta(dir);
	else
		bail("unknown case %s", argv[1]);
	tmpdir_free(dir);
	return tap_exit();
}
