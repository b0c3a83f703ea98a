/* daemon.h - what the files of chronikd share (daemon/ only, not
 * installed): the settings (settings.c), the start-up error messages, and
 * the log sink (logsink.c). main.c puts them together with the engine, the
 * FUSE mount and the Kafka listener.
 */
#ifndef CHRONIK_DAEMON_H
#define CHRONIK_DAEMON_H

#include <stdbool.h>

#include "engine.h"
#include "log.h"
#ifdef CHRONIK_HAVE_KAFKA
#include "listener.h"
#endif

/* Every setting of one chronikd, from the config file and the flags. The
 * strings are malloc'd and freed by settings_fini; data_dir and mountpoint
 * borrow from argv. */
struct settings {
	struct engine_options eo;
	bool foreground;
	bool search_index; /* search.index: build segments' full-text indexes (default true) */
	bool fuse_debug;
	enum log_level level;
	bool kafka;
	char *kafka_addr;
	/* kafka.users.file, kafka.tls.*: malloc'd; the listener options
	 * point at them. */
	char *kafka_users_file;
	char *kafka_tls_listen, *kafka_tls_cert, *kafka_tls_key;
#ifdef CHRONIK_HAVE_KAFKA
	struct kafka_options ko;
#endif
	char *mount_opts; /* comma-separated, passed to FUSE */
	bool auto_unmount;
	bool default_permissions;
	const char *data_dir;
	const char *mountpoint;
	/* The cold tier (cold/s3.h): on when remote.storage.url is set. The
	 * strings are malloc'd; credentials are not settings (s3.h). */
	char *remote_url, *remote_endpoint, *remote_region, *remote_credentials_file;
	bool remote_path_style;
	uint32_t remote_timeout_ms;
	uint64_t remote_cache_bytes;
	uint64_t remote_multipart_bytes, remote_part_bytes; /* 0: s3.h's defaults */
	uint64_t remote_sweep_ms, remote_orphan_age_ms; /* 0: remote.h's defaults */
};

/* The defaults: engine defaults, log level info, auto_unmount and
 * default_permissions on, Kafka on 127.0.0.1:9092 when built with it. */
void settings_init(struct settings *s);
/* Settings from argv: the --config file first (wherever it is), then the
 * flags in order, so flags win. Exits 0 on --help and --version. 0, or -1
 * after saying why on stderr. */
int settings_parse_args(struct settings *s, int argc, char **argv);
void settings_fini(struct settings *s);

/* "chronikd: " and the message on stderr: what went wrong while starting
 * (settings, mount point, engine, listener, mount). */
__attribute__((format(printf, 1, 2))) void daemon_fail(const char *fmt, ...);

/* The engine's and libfuse's log go to stderr ("chronikd[module] level:
 * msg") until logsink_to_syslog, then to syslog. Install once at start. */
void logsink_install(void);
/* openlog("chronikd") and send every later message to syslog. */
void logsink_to_syslog(void);
/* Log what libfuse left without its newline (before reporting a failure). */
void logsink_fuse_flush(void);

#endif
