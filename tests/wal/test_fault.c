/* test_fault.c - a failed group write fails every append of the group,
 * consumes no offsets and leaves nothing behind; the engine carries on once
 * the fault is gone. The fault: RLIMIT_FSIZE set just above the WAL file's
 * size, so the commit thread's write fails with EFBIG part-way. */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "testutil.h"

#define THREADS 3

static struct partition *part;
static int results[THREADS];

static void *appender(void *arg)
{
	int i = (int)(intptr_t)arg;
	static char big[THREADS][8192];
	memset(big[i], 'a' + i, sizeof(big[i]) - 1);
	big[i][sizeof(big[i]) - 1] = '\n';
	int64_t base;
	results[i] = engine_append_lines(part, big[i], sizeof(big[i]), &base);
	return NULL;
}

static off_t wal_size(const char *dir)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/wal/%020d.wal", dir, 0);
	return stat(path, &st) == 0 ? st.st_size : -1;
}

int main(void)
{
	char *dir = tmpdir_new("fault");
	struct engine *e;
	struct partition_info before, after;
	struct rlimit rl, saved;
	int64_t base;

	signal(SIGXFSZ, SIG_IGN);
	for (int policy = 0; policy < 2; policy++) {
		struct engine_options o;
		engine_options_init(&o);
		engine_options_parse_fsync(&o, policy ? "never" : "every");
		e = open_or_bail(dir, &o);
		if (policy == 0)
			engine_topic_create(e, "f", 1, NULL);
		part = part_or_bail(e, "f", 0);
		ok(engine_append_lines(part, "first\n", 6, &base) == 0,
		   "[%s] an append before the fault", policy ? "never" : "every");
		engine_partition_info(part, &before);
		off_t size = wal_size(dir);

		getrlimit(RLIMIT_FSIZE, &saved);
		rl = saved;
		rl.rlim_cur = (rlim_t)size + 100;
		setrlimit(RLIMIT_FSIZE, &rl);
		pthread_t t[THREADS];
		for (intptr_t i = 0; i < THREADS; i++)
			pthread_create(&t[i], NULL, appender, (void *)i);
		for (int i = 0; i < THREADS; i++)
			pthread_join(t[i], NULL);
		setrlimit(RLIMIT_FSIZE, &saved);

		int failed = 0;
		for (int i = 0; i < THREADS; i++)
			failed += results[i] != 0;
		ok(failed == THREADS, "every append made during the fault failed (%d of %d)",
		   failed, THREADS);
		engine_partition_info(part, &after);
		ok(after.next_offset == before.next_offset && after.raw_size == before.raw_size,
		   "no offsets consumed, raw size unchanged");
		ok(wal_size(dir) == size, "the partial write was cut off the WAL file");
		ok(engine_append_lines(part, "after\n", 6, &base) == 0 &&
			   base == before.next_offset,
		   "the next append takes the offset the failed group did not consume");
		engine_partition_unref(part);
		engine_close(e);

		e = open_or_bail(dir, &o);
		part = part_or_bail(e, "f", 0);
		engine_partition_info(part, &after);
		ok(after.next_offset == before.next_offset + 1 && engine_verify(e, NULL, NULL) == 0,
		   "after reopen: dense, verified");
		engine_partition_unref(part);
		engine_close(e);
	}

	/* every fsync policy keeps what it acknowledged across a clean close */
	const char *policies[] = { "every", "interval:20", "never" };
	for (int i = 0; i < 3; i++) {
		struct engine_options o;
		char sub[4200];
		snprintf(sub, sizeof(sub), "%s/p%d", dir, i);
		engine_options_init(&o);
		ok(engine_options_parse_fsync(&o, policies[i]) == 0, "fsync policy %s parses",
		   policies[i]);
		e = open_or_bail(sub, &o);
		engine_topic_create(e, "t", 1, NULL);
		part = part_or_bail(e, "t", 0);
		for (int j = 0; j < 20; j++)
			engine_append_lines(part, "x\n", 2, &base);
		if (i == 1)
			usleep(60000); /* let the interval fsync run */
		engine_partition_unref(part);
		engine_close(e);
		e = open_or_bail(sub, &o);
		part = part_or_bail(e, "t", 0);
		engine_partition_info(part, &after);
		ok(after.next_offset == 20, "%s: 20 records after reopen", policies[i]);
		engine_partition_unref(part);
		engine_close(e);
	}
	struct engine_options o;
	engine_options_init(&o);
	ok(engine_options_parse_fsync(&o, "sometimes") == -EINVAL &&
		   engine_options_parse_fsync(&o, "interval:") == -EINVAL &&
		   engine_options_parse_fsync(&o, "interval:0") == -EINVAL,
	   "bad fsync policies are refused");
	tmpdir_free(dir);
	return tap_exit();
}
