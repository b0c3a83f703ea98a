/* log.c - log_msg() and its replaceable sink.
 *
 * State: the sink, its argument and the threshold live in statics guarded
 * by log_lock; the threshold is also read without the lock (an atomic int)
 * so that dropped messages cost no lock and no formatting. The first call
 * of any function here reads CHRONIK_LOG_LEVEL (debug, info, warn, error)
 * for the initial threshold; the default is info. log_set_level() wins over
 * the environment from then on.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static atomic_int log_threshold = LOG_LVL_INFO;
static log_sink_fn log_sink; /* NULL = the default sink; guarded by log_lock */
static void *log_sink_arg; /* guarded by log_lock */

static const char *level_name(enum log_level level)
{
	switch (level) {
	case LOG_LVL_DEBUG:
		return "debug";
	case LOG_LVL_INFO:
		return "info";
	case LOG_LVL_WARN:
		return "warn";
	case LOG_LVL_ERROR:
		return "error";
	}
	return "?";
}

static void log_init_from_env(void)
{
	const char *s = getenv("CHRONIK_LOG_LEVEL");

	if (!s || !*s)
		return;
	if (!strcasecmp(s, "debug"))
		atomic_store(&log_threshold, LOG_LVL_DEBUG);
	else if (!strcasecmp(s, "info"))
		atomic_store(&log_threshold, LOG_LVL_INFO);
	else if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
		atomic_store(&log_threshold, LOG_LVL_WARN);
	else if (!strcasecmp(s, "error"))
		atomic_store(&log_threshold, LOG_LVL_ERROR);
}

/* The default sink: one line to stderr, written with a single fprintf so
 * that lines from concurrent processes sharing stderr do not interleave. */
static void log_sink_stderr(void *arg, enum log_level level, const char *module, const char *msg)
{
	(void)arg;
	fprintf(stderr, "chronik[%s] %s: %s\n", module ? module : "-", level_name(level), msg);
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
	char stackbuf[512];
	const char *msg = stackbuf;
	char *heap = NULL;
	va_list ap;
	int n;

	pthread_once(&log_once, log_init_from_env);
	if ((int)level < atomic_load_explicit(&log_threshold, memory_order_relaxed))
		return;

	va_start(ap, fmt);
	n = vsnprintf(stackbuf, sizeof(stackbuf), fmt, ap);
	va_end(ap);
	if (n < 0) {
		msg = "(unformattable log message)";
	} else if ((size_t)n >= sizeof(stackbuf)) {
		heap = malloc((size_t)n + 1);
		if (heap) {
			va_start(ap, fmt);
			vsnprintf(heap, (size_t)n + 1, fmt, ap);
			va_end(ap);
			msg = heap;
		}
		/* else: the truncated stack copy is logged */
	}

	pthread_mutex_lock(&log_lock);
	if (log_sink)
		log_sink(log_sink_arg, level, module, msg);
	else
		log_sink_stderr(NULL, level, module, msg);
	pthread_mutex_unlock(&log_lock);

	free(heap);
}

void log_set_sink(log_sink_fn fn, void *arg)
{
	pthread_once(&log_once, log_init_from_env);
	pthread_mutex_lock(&log_lock);
	log_sink = fn;
	log_sink_arg = arg;
	pthread_mutex_unlock(&log_lock);
}

void log_set_level(enum log_level level)
{
	pthread_once(&log_once, log_init_from_env);
	atomic_store(&log_threshold, (int)level);
}
