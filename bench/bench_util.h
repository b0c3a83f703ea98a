/* bench_util.h - what the bench programs share: a monotonic clock and the
 * parsing of their positive numeric arguments. Header-only; the including
 * program defines usage(), which prints its usage and exits. */
#ifndef CHRONIK_BENCH_UTIL_H
#define CHRONIK_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static void usage(void);

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
