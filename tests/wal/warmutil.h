/* warmutil.h - helpers shared by the warm-tier tests (test_warm.c,
 * test_compact.c and their kill -9 variants): counting files by suffix,
 * a verify callback that prints each problem, and one kill -9 round
 * against a child that appends and reports what was acknowledged.
 * Header-only, like testutil.h. */
#ifndef CHRONIK_WARMUTIL_H
#define CHRONIK_WARMUTIL_H

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

#include "testutil.h"

/* Files in dir whose names end in suffix (and are longer than it); 0 when
 * dir cannot be opened. */
static inline size_t count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0, s = strlen(suffix);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > s && strcmp(de->d_name + l - s, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* The segment files of root/sub (sub: "segments/<topic-id>/<partition>"). */
static inline size_t count_seg_files(const char *root, const char *sub)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/%s", root, sub);
	return count_files(dir, ".seg");
}

/* engine_verify's problem callback: each problem as a TAP diagnostic. */
static inline void verify_problem(void *arg, const char *what)
{
	(void)arg;
	diag("verify: %s", what);
}

/* Every record of p by a cursor from offset 0: returns how many (all of
 * them, also past max), or -1 when the cursor fails to open or to read.
 * The first max records' offsets, raw positions and values ("(null)" for
 * a null value, cut at 31 bytes) go to offs, raws and vals, each of which
 * may be NULL. */
static inline int64_t read_all(struct partition *p, int64_t *offs, uint64_t *raws, char (*vals)[32],
			       int64_t max)
{
	struct engine_cursor *c;
	struct engine_record r;
	int64_t n = 0;
	int rc;
	if (engine_cursor_open(p, 0, &c))
		return -1;
	while ((rc = engine_cursor_next(c, &r)) == 1) {
		if (n < max) {
			if (offs)
				offs[n] = r.offset;
			if (raws)
				raws[n] = r.raw_pos;
			if (vals && r.value_len < 0)
				snprintf(vals[n], 32, "(null)");
			else if (vals)
				snprintf(vals[n], 32, "%.*s", r.value_len, (const char *)r.value);
		}
		n++;
	}
	engine_cursor_close(c);
	return rc < 0 ? -1 : n;
}

/* The child of a kill round: appends to the data directory dir for ever
 * and writes, after each acknowledged append, the partition's next offset
 * as an int64_t to wfd. It never returns (the round kills it). */
typedef void (*kill_child_fn)(const char *dir, int wfd);

/* One kill -9 round: fork child(dir, pipe), let it run for target
 * acknowledged appends, SIGKILL it, and read what it reported before it
 * died: *acked becomes the last offset it reported (unchanged if none). */
static inline void kill_round(const char *dir, kill_child_fn child, int64_t target, int64_t *acked)
{
	int fds[2];
	int64_t got = 0, v;
	pid_t pid;

	if (pipe(fds) < 0)
		bail("pipe");
	pid = fork();
	if (pid < 0)
		bail("fork");
	if (pid == 0) {
		close(fds[0]);
		child(dir, fds[1]);
		_exit(1);
	}
	close(fds[1]);
	while (got < target && read(fds[0], &v, sizeof(v)) == sizeof(v)) {
		*acked = v;
		got++;
	}
	kill(pid, SIGKILL);
	/* What it acknowledged between the last read and the kill. */
	while (read(fds[0], &v, sizeof(v)) == sizeof(v))
		*acked = v;
	close(fds[0]);
	waitpid(pid, NULL, 0);
}

#endif
