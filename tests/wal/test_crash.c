/* test_crash.c - kill -9 an appending process at random moments; every
 * acknowledged record survives, offsets stay dense, verify stays clean.
 *
 * The child opens the engine (fsync every), and two threads append
 * single-record batches "p<P>-<offset>" to partitions 0 and 1, writing
 * "<P> <offset>\n" to a pipe after each append returns. The parent kills it
 * after a random delay, reopens the engine and checks every partition:
 * records 0..next-1, each value naming its own offset, and every
 * acknowledged offset below next. Twenty-five rounds on one directory. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "testutil.h"

#define ROUNDS 25

static int ack_fd;
static struct engine *child_engine;

static void *child_appender(void *arg)
{
	int32_t idx = (int32_t)(intptr_t)arg;
	struct partition *p = part_or_bail(child_engine, "crash", idx);
	struct partition_info info;
	engine_partition_info(p, &info);
	for (int64_t next = info.next_offset;; next++) {
		char line[64], ack[64];
		int64_t base;
		int n = sprintf(line, "p%d-%lld\n", idx, (long long)next);
		if (engine_append_lines(p, line, (size_t)n, &base) != 0 || base != next)
			_exit(3);
		n = sprintf(ack, "%d %lld\n", idx, (long long)base);
		if (write(ack_fd, ack, (size_t)n) != n)
			_exit(4);
	}
	return NULL;
}

static void child(const char *dir, int fd)
{
	pthread_t t[2];
	int rc;
	ack_fd = fd;
	rc = engine_open(dir, NULL, &child_engine);
	if (rc)
		_exit(2);
	for (intptr_t i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, child_appender, (void *)i);
	pthread_join(t[0], NULL);
	_exit(0);
}

int main(void)
{
	char *dir = tmpdir_new("crash");
	struct engine *e = open_or_bail(dir, NULL);
	int64_t max_ack[2] = { -1, -1 };
	int round_bad = 0, total_acks = 0;

	ok(engine_topic_create(e, "crash", 2, NULL) == 0, "topic with two partitions");
	engine_close(e);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());

	for (int round = 0; round < ROUNDS; round++) {
		int pfd[2];
		pid_t pid;
		if (pipe(pfd) < 0)
			bail("pipe");
		pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			child(dir, pfd[1]);
		}
		close(pfd[1]);
		usleep(20000 + (useconds_t)(rand() % 200000));
		kill(pid, SIGKILL);
		/* read every acknowledgement the child managed to write */
		FILE *in = fdopen(pfd[0], "r");
		int part;
		long long off;
		while (fscanf(in, "%d %lld", &part, &off) == 2) {
			if (part >= 0 && part < 2 && off > max_ack[part])
				max_ack[part] = off;
			total_acks++;
		}
		fclose(in);
		int status;
		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status)) {
			diag("round %d: child exited with %d before the kill", round,
			     WEXITSTATUS(status));
			round_bad++;
			continue;
		}

		if (engine_open(dir, NULL, &e) != 0) {
			diag("round %d: reopen failed", round);
			round_bad++;
			continue;
		}
		for (int32_t i = 0; i < 2; i++) {
			struct partition *p = part_or_bail(e, "crash", i);
			struct partition_info info;
			struct engine_cursor *c;
			struct engine_record r;
			int64_t want = 0;
			int rc;
			engine_partition_info(p, &info);
			if (info.next_offset <= max_ack[i]) {
				diag("round %d: partition %d next %lld but offset %lld was acknowledged",
				     round, i, (long long)info.next_offset, (long long)max_ack[i]);
				round_bad++;
			}
			engine_cursor_open(p, 0, &c);
			while ((rc = engine_cursor_next(c, &r)) == 1) {
				char exp[64];
				int n = sprintf(exp, "p%d-%lld", i, (long long)want);
				if (r.offset != want || r.value_len != n ||
				    memcmp(r.value, exp, (size_t)n)) {
					diag("round %d: partition %d offset %lld holds the wrong record",
					     round, i, (long long)r.offset);
					round_bad++;
					break;
				}
				want++;
			}
			if (rc < 0 || want != info.next_offset) {
				diag("round %d: partition %d read %lld of %lld records", round, i,
				     (long long)want, (long long)info.next_offset);
				round_bad++;
			}
			engine_cursor_close(c);
			engine_partition_unref(p);
		}
		if (engine_verify(e, NULL, NULL) != 0)
			round_bad++;
		engine_close(e);
	}
	ok(total_acks > ROUNDS, "the child acknowledged %d appends over %d kills", total_acks,
	   ROUNDS);
	ok(round_bad == 0,
	   "every acknowledged record survived %d kill -9s, dense and verified (%d problems)",
	   ROUNDS, round_bad);
	tmpdir_free(dir);
	return tap_exit();
}
