/* log.h - the one logging entry point.
 *
 * The engine never writes to stderr itself: it calls log_msg(), whose sink the
 * program may replace (the default sink writes "chronik[module] level: msg"
 * lines to stderr). Messages below the threshold (log_set_level) are dropped.
 * log_msg is thread-safe; a sink is called with a lock held, one at a time.
 */
#ifndef CHRONIK_LOG_H
#define CHRONIK_LOG_H

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

typedef void (*log_sink_fn)(void *arg, enum log_level level, const char *module, const char *msg);

__attribute__((format(printf, 3, 4))) void log_msg(enum log_level level, const char *module,
						   const char *fmt, ...);
void log_set_sink(log_sink_fn fn, void *arg);
void log_set_level(enum log_level level);

#endif
