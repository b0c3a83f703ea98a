/* rdtime.h - rd_ts_t and rd_clock() as librdkafka's internal rdtime.h
 * defines them (microseconds on a monotonic clock), for building
 * rdkafka_performance.c; see rd.h beside this file. */
#ifndef CHRONIK_BENCH_RDTIME_H
#define CHRONIK_BENCH_RDTIME_H

#include <stdint.h>
#include <time.h>

typedef int64_t rd_ts_t;

static __inline__ rd_ts_t rd_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (rd_ts_t)ts.tv_sec * 1000000 + (rd_ts_t)ts.tv_nsec / 1000;
}

#endif
