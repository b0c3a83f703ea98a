/* bench_util.h - what the bench programs share: a monotonic clock and the
 * parsing of their positive numeric arguments. Header-only; the including
 * program defines usage(), which prints its usage and exits. */
#ifndef CHRONIK_BENCH_UTIL_H
#define CHRONIK_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static void usage(void);

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The CPU this process has used (every thread: user + system), seconds. */
static inline double cpu_s(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A positive decimal number, or usage(). */
static inline uint64_t num_arg(const char *s)
{
	char *end;
	unsigned long long v;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0)
		usage();
	return v;
}

#endif
