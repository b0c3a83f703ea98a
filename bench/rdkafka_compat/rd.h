/* rd.h - the few helpers of librdkafka's internal rd.h that its example
 * program rdkafka_performance.c uses, so that bench/run can build that
 * example from librdkafka-dev's documentation directory against the public
 * librdkafka headers. Only what the example needs is here. */
#ifndef CHRONIK_BENCH_RD_H
#define CHRONIK_BENCH_RD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define rd_snprintf(...) snprintf(__VA_ARGS__)
#define RD_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RD_MIN(a, b) ((a) < (b) ? (a) : (b))

#endif
