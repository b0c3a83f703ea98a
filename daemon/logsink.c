/* logsink.c - where chronikd's log goes (daemon.h): the engine's log_msg
 * and libfuse's messages, to stderr in the foreground (and until the
 * background child is ready), to syslog after logsink_to_syslog.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#define FUSE_USE_VERSION 35
#include <fuse_log.h>

#include "daemon.h"

/* Set by the main thread once in the background (daemon_ready), read by
 * every thread that logs: atomic. */
static atomic_bool log_to_syslog;

static void log_sink(void *arg, enum log_level level, const char *module, const char *msg)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };

	(void)arg;
	if (atomic_load(&log_to_syslog))
		syslog(prio[level], "[%s] %s", module, msg);
	else
		fprintf(stderr, "chronikd[%s] %s: %s\n", module, names[level], msg);
}

/* libfuse logs one message in pieces at times ("fuse: ", the text, "\n"):
 * keep them per thread until a newline, then log the line once, at the
 * most severe level among its pieces. */
static _Thread_local char fuse_line[1024];
static _Thread_local size_t fuse_line_len;
static _Thread_local enum fuse_log_level fuse_line_level = FUSE_LOG_DEBUG;

static void fuse_line_emit(void)
{
	enum fuse_log_level level = fuse_line_level;
	enum log_level l = level <= FUSE_LOG_ERR     ? LOG_LVL_ERROR :
			   level <= FUSE_LOG_WARNING ? LOG_LVL_WARN :
			   level <= FUSE_LOG_INFO    ? LOG_LVL_INFO :
						       LOG_LVL_DEBUG;

	fuse_line[fuse_line_len] = '\0';
	if (fuse_line_len)
		log_msg(l, "fuse", "%s", fuse_line);
	fuse_line_len = 0;
	fuse_line_level = FUSE_LOG_DEBUG;
}

static void fuse_log_sink(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char piece[1024];
	const char *at = piece;
	int n = vsnprintf(piece, sizeof(piece), fmt, ap);

	if (n < 0)
		return;
	if (level < fuse_line_level)
		fuse_line_level = level;
	while (*at) {
		const char *nl = strchr(at, '\n');
		size_t len = nl ? (size_t)(nl - at) : strlen(at);
		size_t room = sizeof(fuse_line) - 1 - fuse_line_len;
		memcpy(fuse_line + fuse_line_len, at, len < room ? len : room);
		fuse_line_len += len < room ? len : room;
		if (nl || fuse_line_len == sizeof(fuse_line) - 1)
			fuse_line_emit();
		at += len + (nl ? 1 : 0);
	}
}

/* Whatever libfuse left without its newline (before exiting). */
void logsink_fuse_flush(void)
{
	fuse_line_emit();
}

void logsink_install(void)
{
	log_set_sink(log_sink, NULL);
	fuse_set_log_func(fuse_log_sink);
}

void logsink_to_syslog(void)
{
	openlog("chronikd", LOG_PID, LOG_DAEMON);
	atomic_store(&log_to_syslog, true);
}
