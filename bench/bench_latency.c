/* bench_latency.c - the latency of an `echo LINE >> FILE` as its writer
 * sees it, for bench/run's latency rows.
 *
 *   chronik-bench-latency PATH --count N [--line-size B] [--fsync]
 *                         [--interval-us U]
 *
 * N times: open PATH with O_WRONLY | O_APPEND | O_CREAT, write one line of
 * B bytes (default 100, '\n' included), with --fsync fdatasync() it, and
 * close: what a shell's `echo >>` does, plus the fsync a plain file needs
 * to be as durable as an append under chronikd's fsync every. Each
 * iteration is timed from the open to the end of the close; with
 * --interval-us the next one starts U microseconds after the previous one
 * started (an open loop at a fixed rate), otherwise at once.
 *
 * Output: one line of key=value pairs: count, p50_us, p99_us, max_us
 * (nearest-rank percentiles of the N times).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

static void usage(void)
{
	fputs("usage: chronik-bench-latency PATH --count N [--line-size B] [--fsync]\n"
	      "           [--interval-us U]\n",
	      stderr);
	exit(2);
}

static void fail(const char *what, const char *path)
{
	fprintf(stderr, "chronik-bench-latency: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest rank: the smallest time at least q of the times are <= to. */
static double rank(const double *sorted, size_t n, double q)
{
	size_t k = (size_t)(q * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return sorted[k - 1];
}

int main(int argc, char **argv)
{
	const char *path;
	uint64_t count = 0, line_size = 100, interval_us = 0;
	bool do_fsync = false;
	double *t;
	char *line;

	if (argc < 2)
		usage();
	path = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(k, "--fsync")) {
			do_fsync = true;
			continue;
		}
		if (!v)
			usage();
		if (!strcmp(k, "--count"))
			count = num_arg(v);
		else if (!strcmp(k, "--line-size"))
			line_size = num_arg(v);
		else if (!strcmp(k, "--interval-us"))
			interval_us = num_arg(v);
		else
			usage();
		i++;
	}
	if (!count || line_size > 1 << 20)
		usage();
	t = malloc(count * sizeof(*t));
	line = malloc(line_size);
	if (!t || !line)
		fail("malloc for", path);
	memset(line, 'l', line_size - 1);
	line[line_size - 1] = '\n';

	double next = now_s();
	for (uint64_t i = 0; i < count; i++) {
		if (interval_us) {
			double wait = next - now_s();
			if (wait > 0) {
				struct timespec ts = { (time_t)wait,
						       (long)((wait - (double)(time_t)wait) * 1e9) };
				nanosleep(&ts, NULL);
			}
			next += (double)interval_us / 1e6;
		}
		double t0 = now_s();
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
		if (fd < 0)
			fail("open", path);
		ssize_t w = write(fd, line, line_size);
		if (w != (ssize_t)line_size) {
			if (w >= 0)
				errno = EIO;
			fail("write to", path);
		}
		if (do_fsync && fdatasync(fd) < 0)
			fail("fdatasync of", path);
		if (close(fd) < 0)
			fail("close of", path);
		t[i] = (now_s() - t0) * 1e6;
	}
	qsort(t, count, sizeof(*t), cmp_double);
	printf("count=%llu p50_us=%.1f p99_us=%.1f max_us=%.1f\n", (unsigned long long)count,
	       rank(t, count, 0.50), rank(t, count, 0.99), t[count - 1]);
	free(t);
	free(line);
	return 0;
}
