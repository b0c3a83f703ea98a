/* test_engine_follow - appends made by the engine directly (as the Kafka
 * listener makes them) reach tail -f and tail -F on the mount, on data and
 * on records.jsonl, and fstat() of a file opened before an append sees the
 * new size at once.
 *
 * The filesystem runs inside this process (chronikfs_mount/run on a thread)
 * next to the engine it serves; tail runs as a child. The contract is that
 * a follower sees each append within 2 seconds (tail polls fstat() about
 * once a second on FUSE): that deadline is asserted per line, measured from
 * the append's return to the line in tail's output; a line later than 10 s
 * counts as missing. The mount uses auto_unmount, so even a crash leaves
 * none.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chronikfs.h"
#include "engine.h"
#include "tap.h"

static char dir[] = "/tmp/chronik-fs-follow.XXXXXX";
static char data_dir[64], mnt[64];

static void *run_main(void *arg)
{
	chronikfs_run(arg);
	return NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read from fd into buf (appending, NUL-terminated) until it contains
 * needle or deadline passes. 1 = found. */
static int read_until(int fd, char *buf, size_t cap, size_t *len, const char *needle,
		      int64_t deadline)
{
	while (!strstr(buf, needle)) {
		int64_t left = deadline - now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (left <= 0 || *len + 1 >= cap)
			return 0;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		ssize_t n = read(fd, buf + *len, cap - *len - 1);
		if (n <= 0)
			return 0;
		*len += (size_t)n;
		buf[*len] = '\0';
	}
	return 1;
}

#define FOLLOW_DEADLINE_MS 2000

/* tail MODE -n 0 PATH as a child; 5 engine appends "TAG-i" to p, each
 * waited for in tail's output. 3 assertions: all seen, each within the
 * deadline, in order. */
static void follow(const char *mode, const char *path, struct partition *p, const char *tag)
{
	char out[16384] = "", line[64], needle[64];
	size_t outlen = 0;
	int64_t base, worst = 0;
	int pipefd[2], seen = 0, late = 0, in_order = 1;
	pid_t tail;

	if (pipe(pipefd) < 0)
		bail("pipe");
	tail = fork();
	if (tail == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		execlp("tail", "tail", mode, "-n", "0", path, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	usleep(1200 * 1000); /* let tail open the file and take its first fstat */
	for (int i = 1; i <= 5; i++) {
		int n = snprintf(line, sizeof(line), "%s-%d\n", tag, i);
		snprintf(needle, sizeof(needle), "%s-%d", tag, i);
		int64_t t0 = now_ms();
		if (engine_append_lines(p, line, (size_t)n, &base) < 0)
			break;
		if (read_until(pipefd[0], out, sizeof(out), &outlen, needle, t0 + 10000)) {
			int64_t d = now_ms() - t0;
			seen++;
			if (d > worst)
				worst = d;
			if (d >= FOLLOW_DEADLINE_MS) {
				late++;
				diag("tail %s %s: %s after %lld ms", mode, path, needle,
				     (long long)d);
			}
		}
	}
	ok(seen == 5, "tail %s %s sees all 5 engine appends (%d)", mode, strrchr(path, '/') + 1,
	   seen);
	ok(seen == 5 && late == 0, "tail %s %s: each within %d ms (slowest %lld ms)", mode,
	   strrchr(path, '/') + 1, FOLLOW_DEADLINE_MS, (long long)worst);
	const char *at = out;
	for (int i = 1; i <= 5 && in_order; i++) {
		snprintf(needle, sizeof(needle), "%s-%d", tag, i);
		const char *f = strstr(at, needle);
		if (!f)
			in_order = 0;
		else
			at = f + strlen(needle);
	}
	ok(in_order, "tail %s %s: in order", mode, strrchr(path, '/') + 1);
	kill(tail, SIGKILL);
	waitpid(tail, NULL, 0);
	close(pipefd[0]);
}

static void rm_rf(const char *path)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		diag("could not remove %s", path);
}

int main(void)
{
	struct engine_options eo;
	struct chronikfs_options fo;
	struct engine *e;
	struct chronikfs *fs;
	struct partition *p;
	pthread_t loop;
	char path[128], line[64], out[8192] = "";
	size_t outlen = 0;
	int64_t base, worst = 0;
	int pipefd[2], seen = 0, late = 0, in_order = 1, err;
	pid_t tail;
	struct stat st;

	if (access("/dev/fuse", R_OK | W_OK) != 0)
		tap_skip_all("no /dev/fuse");
	if (!mkdtemp(dir))
		bail("mkdtemp: %s", strerror(errno));
	snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	if (mkdir(mnt, 0755) < 0)
		bail("mkdir: %s", strerror(errno));
	tap_plan(14);

	engine_options_init(&eo);
	err = engine_open(data_dir, &eo, &e);
	if (err < 0)
		bail("engine_open: %s", chronik_strerror(err));
	ok(engine_topic_create(e, "t", 1, NULL) == 0, "topic created through the engine");
	chronikfs_options_init(&fo);
	fo.mountpoint = mnt;
	fo.data_dir = data_dir;
	err = chronikfs_mount(e, &fo, &fs);
	if (err < 0)
		bail("chronikfs_mount: %s", strerror(-err));
	pthread_create(&loop, NULL, run_main, fs);

	/* fstat on a descriptor opened before the append */
	snprintf(path, sizeof(path), "%s/t/0/data", mnt);
	int fd = open(path, O_RDONLY);
	ok(fd >= 0, "data opened through the mount");
	if (engine_partition_get(e, "t", 0, &p) < 0)
		bail("engine_partition_get");
	engine_append_lines(p, "first\n", 6, &base);
	memset(&st, 0, sizeof(st));
	err = fstat(fd, &st);
	ok(err == 0 && st.st_size == 6,
	   "fstat right after an engine append sees the new size (%lld)", (long long)st.st_size);
	char rb[16] = "";
	ok(pread(fd, rb, sizeof(rb), 0) == 6 && memcmp(rb, "first\n", 6) == 0,
	   "and reads the new bytes");
	close(fd);

	/* tail -f as a child, engine appends from here */
	if (pipe(pipefd) < 0)
		bail("pipe");
	tail = fork();
	if (tail == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		execlp("tail", "tail", "-f", "-n", "+1", path, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	ok(read_until(pipefd[0], out, sizeof(out), &outlen, "first\n", now_ms() + 10000),
	   "tail -f prints the existing line");
	for (int i = 1; i <= 5; i++) {
		int n = snprintf(line, sizeof(line), "engine-%d\n", i);
		usleep(300 * 1000);
		int64_t t0 = now_ms();
		if (engine_append_lines(p, line, (size_t)n, &base) < 0)
			break;
		if (read_until(pipefd[0], out, sizeof(out), &outlen, line, t0 + 10000)) {
			int64_t d = now_ms() - t0;
			seen++;
			if (d > worst)
				worst = d;
			if (d >= FOLLOW_DEADLINE_MS)
				late++;
		}
	}
	ok(seen == 5, "tail -f sees all 5 engine appends (%d)", seen);
	ok(seen == 5 && late == 0, "tail -f data: each within %d ms (slowest %lld ms)",
	   FOLLOW_DEADLINE_MS, (long long)worst);
	const char *want[] = { "first\n",    "engine-1\n", "engine-2\n",
			       "engine-3\n", "engine-4\n", "engine-5\n" };
	const char *at = out;
	for (int i = 0; i < 6; i++) {
		const char *f = strstr(at, want[i]);
		if (!f) {
			in_order = 0;
			break;
		}
		at = f + strlen(want[i]);
	}
	ok(in_order && *at == '\0', "in order, nothing else");

	kill(tail, SIGKILL);
	waitpid(tail, NULL, 0);
	close(pipefd[0]);

	/* tail -F (by name) on data, tail -f on records.jsonl */
	follow("-F", path, p, "engine-F");
	snprintf(path, sizeof(path), "%s/t/0/records.jsonl", mnt);
	follow("-f", path, p, "engine-jf");
	engine_partition_unref(p);
	chronikfs_stop(fs);
	pthread_join(loop, NULL);
	chronikfs_close(fs);
	engine_close(e);
	rm_rf(dir);
	return tap_exit();
}
