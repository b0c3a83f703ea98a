/* chronikd - mount a chronik data directory, and serve Kafka clients on it.
 *
 *   chronikd [options] DATA_DIR MOUNTPOINT
 *
 * Start-up order: parse settings (config file, then flags), check the mount
 * point, fork into the background unless -f (the parent waits for the child
 * to say "mounted" or to fail, and exits with the child's status, so a
 * failed start is never reported as success), block the shutdown signals
 * in every thread, open the engine (takes DATA/LOCK), start the Kafka
 * listener, mount, then serve. SIGINT, SIGTERM, SIGHUP or an unmount end
 * it: the listener stops, partial lines of open files are appended, the
 * mount goes away, and engine_close flushes, fsyncs and releases the lock.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#define FUSE_USE_VERSION 35
#include <fuse_log.h>

#include "chronikfs.h"
#include "engine.h"
#include "log.h"
#ifdef CHRONIK_HAVE_KAFKA
#include "listener.h"
#endif

#ifndef CHRONIK_VERSION
#define CHRONIK_VERSION "0.1.0"
#endif

struct settings {
	struct engine_options eo;
	bool foreground;
	bool fuse_debug;
	enum log_level level;
	bool kafka;
	char *kafka_addr;
#ifdef CHRONIK_HAVE_KAFKA
	struct kafka_options ko;
#endif
	char *mount_opts; /* comma-separated, passed to FUSE */
	bool auto_unmount;
	bool default_permissions;
	const char *data_dir;
	const char *mountpoint;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: chronikd [options] DATA_DIR MOUNTPOINT\n"
		   "\n"
		   "Mount the chronik log store in DATA_DIR at MOUNTPOINT (and serve Kafka\n"
		   "clients on it).\n"
		   "\n"
		   "  -f, --foreground         stay in the foreground, log to stderr\n"
		   "  -d, --debug              debug logging and libfuse's request trace\n"
		   "  --fsync every|interval:MS|never\n"
		   "                           when appends are fsynced (default every)\n"
		   "  --config FILE.json       settings from a JSON object (flags win)\n"
		   "  --set KEY=VALUE          one setting; also --KEY=VALUE or --KEY VALUE\n"
		   "  -o OPT[,OPT...]          FUSE mount options (allow_other is opt-in;\n"
		   "                           noauto_unmount, nodefault_permissions turn\n"
		   "                           off the defaults)\n"
		   "  --kafka HOST:PORT        Kafka listener address (default 127.0.0.1:9092)\n"
		   "  --no-kafka               no Kafka listener\n"
		   "  -h, --help               this text\n"
		   "  -V, --version            the version\n"
		   "\n"
		   "Settings: fsync, wal.segment.bytes, default.partitions, max.topics,\n"
		   "max.partitions, kafka,\n"
		   "kafka.max.request.bytes, kafka.auto.create.topics,\n"
		   "kafka.connections.max.idle.ms, kafka.request.receive.timeout.ms,\n"
		   "kafka.max.groups, kafka.max.producer.states,\n"
		   "kafka.producer.state.evict.idle.ms, mount.options, foreground,\n"
		   "log.level (debug|info|warn|error).\n");
#ifndef CHRONIK_HAVE_KAFKA
	fprintf(f, "\nThis chronikd is built without the Kafka listener.\n");
#endif
}

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "chronikd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- settings --------------------------------------------------------------------- */

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static int mount_opts_add(struct settings *s, const char *list)
{
	char *copy = strdup(list), *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "auto_unmount")) {
			s->auto_unmount = true;
		} else if (!strcmp(tok, "noauto_unmount")) {
			s->auto_unmount = false;
		} else if (!strcmp(tok, "default_permissions")) {
			s->default_permissions = true;
		} else if (!strcmp(tok, "nodefault_permissions")) {
			s->default_permissions = false;
		} else {
			size_t have = s->mount_opts ? strlen(s->mount_opts) : 0;
			char *n = realloc(s->mount_opts, have + strlen(tok) + 2);
			if (!n) {
				free(copy);
				return -ENOMEM;
			}
			if (have)
				n[have++] = ',';
			strcpy(n + have, tok);
			s->mount_opts = n;
		}
	}
	free(copy);
	return 0;
}

/* One setting by its configuration name. 0, or -1 after saying why. */
static int setting_set(struct settings *s, const char *key, const char *value)
{
	int err;

	if (!strcmp(key, "kafka")) {
		bool on;
		if (!*value || !strcmp(value, "none") || (parse_bool(value, &on) == 0 && !on)) {
			s->kafka = false;
			return 0;
		}
#ifdef CHRONIK_HAVE_KAFKA
		if (kafka_options_parse_addr(&s->ko, value) < 0) {
			fail("kafka: bad address '%s' (want HOST:PORT)", value);
			return -1;
		}
		free(s->kafka_addr);
		s->kafka_addr = strdup(value);
		s->kafka = true;
		return s->kafka_addr ? 0 : -1;
#else
		fail("kafka: this chronikd is built without the Kafka listener (not built yet)");
		return -1;
#endif
	}
	if (!strncmp(key, "kafka.", 6)) {
#ifdef CHRONIK_HAVE_KAFKA
		if (!strcmp(key, "kafka.max.request.bytes")) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(value, &end, 10);
			if (errno || end == value || *end || v < 1024) {
				fail("%s: bad value '%s'", key, value);
				return -1;
			}
			s->ko.max_request_bytes = (size_t)v;
			return 0;
		}
		if (!strcmp(key, "kafka.auto.create.topics")) {
			if (parse_bool(value, &s->ko.auto_create_topics) < 0) {
				fail("%s: bad value '%s'", key, value);
				return -1;
			}
			return 0;
		}
		/* The listener's limits, each a non-negative int32. */
		static const struct {
			const char *key;
			size_t off;
		} limits[] = {
			{ "kafka.connections.max.idle.ms",
			  offsetof(struct kafka_options, connections_max_idle_ms) },
			{ "kafka.request.receive.timeout.ms",
			  offsetof(struct kafka_options, request_receive_timeout_ms) },
			{ "kafka.max.groups", offsetof(struct kafka_options, max_groups) },
			{ "kafka.max.producer.states",
			  offsetof(struct kafka_options, max_producer_states) },
			{ "kafka.producer.state.evict.idle.ms",
			  offsetof(struct kafka_options, producer_state_evict_idle_ms) },
		};
		for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
			if (strcmp(key, limits[i].key) != 0)
				continue;
			char *end;
			errno = 0;
			long v = strtol(value, &end, 10);
			if (errno || end == value || *end || v < 0 || v > INT32_MAX) {
				fail("%s: bad value '%s'", key, value);
				return -1;
			}
			*(int32_t *)((char *)&s->ko + limits[i].off) = (int32_t)v;
			return 0;
		}
		fail("unknown setting '%s'", key);
#else
		fail("%s: this chronikd is built without the Kafka listener (not built yet)", key);
#endif
		return -1;
	}
	if (!strcmp(key, "mount.options"))
		return mount_opts_add(s, value) < 0 ? -1 : 0;
	if (!strcmp(key, "foreground")) {
		if (parse_bool(value, &s->foreground) < 0) {
			fail("foreground: bad value '%s'", value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "log.level")) {
		static const char *const names[] = { "debug", "info", "warn", "error" };
		for (int i = 0; i < 4; i++) {
			if (!strcmp(value, names[i])) {
				s->level = (enum log_level)i;
				return 0;
			}
		}
		fail("log.level: bad value '%s' (debug, info, warn or error)", value);
		return -1;
	}
	err = engine_options_set(&s->eo, key, value);
	if (err == -ENOENT) {
		fail("unknown setting '%s'", key);
		return -1;
	}
	if (err < 0) {
		fail("%s: bad value '%s'", key, value);
		return -1;
	}
	return 0;
}

/* Apply the members of a JSON object; nested objects name their keys with
 * dots ({"wal": {"segment.bytes": 1}} is "wal.segment.bytes"). */
static int config_apply_object(struct settings *s, json_object *obj, const char *prefix,
			       const char *file)
{
	json_object_object_foreach(obj, k, v)
	{
		char key[256], num[32];
		const char *value;

		if (snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", k) >=
		    (int)sizeof(key)) {
			fail("%s: key too long", file);
			return -1;
		}
		switch (json_object_get_type(v)) {
		case json_type_object:
			if (config_apply_object(s, v, key, file) < 0)
				return -1;
			continue;
		case json_type_string:
			value = json_object_get_string(v);
			break;
		case json_type_int:
			snprintf(num, sizeof(num), "%" PRId64, json_object_get_int64(v));
			value = num;
			break;
		case json_type_boolean:
			value = json_object_get_boolean(v) ? "true" : "false";
			break;
		case json_type_null:
			value = "";
			break;
		default:
			fail("%s: %s: a string, integer, boolean or null is expected", file, key);
			return -1;
		}
		if (setting_set(s, key, value) < 0) {
			fail("(in %s)", file);
			return -1;
		}
	}
	return 0;
}

static int config_load(struct settings *s, const char *file)
{
	json_object *obj = json_object_from_file(file);
	int rc;

	if (!obj) {
		fail("%s: %s", file, json_util_get_last_err());
		return -1;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		fail("%s: a JSON object is expected", file);
		json_object_put(obj);
		return -1;
	}
	rc = config_apply_object(s, obj, "", file);
	json_object_put(obj);
	return rc;
}

/* Exits on --help / --version; 0 or -1 (message printed). */
static int parse_args(struct settings *s, int argc, char **argv)
{
	const char *positional[2];
	int npos = 0;
	bool only_positional = false;

	/* The config file first, whatever its place: flags override it. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--config")) {
			if (i + 1 >= argc) {
				fail("--config needs a file");
				return -1;
			}
			if (config_load(s, argv[++i]) < 0)
				return -1;
		} else if (!strncmp(argv[i], "--config=", 9)) {
			if (config_load(s, argv[i] + 9) < 0)
				return -1;
		}
	}

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *eq;

		if (only_positional || a[0] != '-' || !a[1]) {
			if (npos == 2) {
				fail("too many arguments ('%s')", a);
				return -1;
			}
			positional[npos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_positional = true;
		} else if (!strcmp(a, "-f") || !strcmp(a, "--foreground")) {
			s->foreground = true;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
			s->fuse_debug = true;
			s->level = LOG_LVL_DEBUG;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("chronikd %s\n", CHRONIK_VERSION);
			exit(0);
		} else if (!strcmp(a, "--config")) {
			i++; /* done above */
		} else if (!strncmp(a, "--config=", 9)) {
			/* done above */
		} else if (!strcmp(a, "-o") || !strncmp(a, "-o", 2)) {
			const char *v = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v) {
				fail("-o needs options");
				return -1;
			}
			if (mount_opts_add(s, v) < 0)
				return -1;
		} else if (!strcmp(a, "--no-kafka")) {
			s->kafka = false;
		} else if (!strcmp(a, "--set")) {
			if (i + 1 >= argc || !(eq = strchr(argv[i + 1], '='))) {
				fail("--set needs KEY=VALUE");
				return -1;
			}
			char *kv = strdup(argv[++i]);
			if (!kv)
				return -1;
			kv[eq - argv[i]] = '\0';
			int rc = setting_set(s, kv, kv + (eq - argv[i]) + 1);
			free(kv);
			if (rc < 0)
				return -1;
		} else if (!strncmp(a, "--", 2)) {
			/* --KEY=VALUE or --KEY VALUE for any setting (--fsync, --kafka) */
			char key[128];
			const char *value;
			eq = strchr(a, '=');
			size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			if (klen == 0 || klen >= sizeof(key)) {
				fail("unknown option '%s'", a);
				return -1;
			}
			memcpy(key, a + 2, klen);
			key[klen] = '\0';
			if (eq) {
				value = eq + 1;
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				fail("%s needs a value", a);
				return -1;
			}
			if (setting_set(s, key, value) < 0)
				return -1;
		} else {
			fail("unknown option '%s' (see --help)", a);
			return -1;
		}
	}
	if (npos != 2) {
		usage(stderr);
		return -1;
	}
	s->data_dir = positional[0];
	s->mountpoint = positional[1];
	return 0;
}

/* ---- logging ------------------------------------------------------------------------ */

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
static void fuse_log_flush(void)
{
	fuse_line_emit();
}

/* ---- background ---------------------------------------------------------------------- */

static int ready_fd = -1;

/* Fork; the parent waits for the child's word and exits with its status. */
static void daemon_start(void)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p) < 0) {
		fail("pipe: %s", strerror(errno));
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		int status;
		close(p[1]);
		if (read(p[0], &c, 1) == 1 && c == 0)
			_exit(0);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			_exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	setsid();
}

/* In the background child: tell the parent, leave the terminal. */
static void daemon_ready(void)
{
	int fd;
	char c = 0;

	if (ready_fd < 0)
		return;
	openlog("chronikd", LOG_PID, LOG_DAEMON);
	atomic_store(&log_to_syslog, true);
	if (chdir("/") < 0)
		log_msg(LOG_LVL_WARN, "chronikd", "chdir /: %s", strerror(errno));
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (write(ready_fd, &c, 1) != 1)
		log_msg(LOG_LVL_WARN, "chronikd", "telling the parent: %s", strerror(errno));
	close(ready_fd);
	ready_fd = -1;
}

/* ---- signals -------------------------------------------------------------------------- */

static atomic_bool shutting_down;

struct signal_ctx {
	struct chronikfs *fs;
	sigset_t set;
};

static void *signal_main(void *arg)
{
	struct signal_ctx *c = arg;
	int sig;

	if (sigwait(&c->set, &sig) != 0 || atomic_load(&shutting_down))
		return NULL;
	log_msg(LOG_LVL_INFO, "chronikd", "%s: unmounting", strsignal(sig));
	chronikfs_stop(c->fs);
	return NULL;
}

/* An absolute version of path (which need not exist); malloc'd. */
static char *absolute(const char *path)
{
	char cwd[PATH_MAX];
	char *out;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (asprintf(&out, "%s/%s", cwd, path) < 0)
		return NULL;
	return out;
}

int main(int argc, char **argv)
{
	struct settings s;
	struct chronikfs_options fo;
	struct engine *e = NULL;
	struct chronikfs *fs = NULL;
	struct signal_ctx sc;
	pthread_t sig_thread;
	char *data_dir = NULL, *mountpoint = NULL;
	struct stat st;
	int err, status = 1;
#ifdef CHRONIK_HAVE_KAFKA
	struct kafka_listener *kl = NULL;
#endif

	memset(&s, 0, sizeof(s));
	engine_options_init(&s.eo);
	s.level = LOG_LVL_INFO;
	s.auto_unmount = true;
	s.default_permissions = true;
#ifdef CHRONIK_HAVE_KAFKA
	kafka_options_init(&s.ko);
	s.kafka = true;
	s.kafka_addr = strdup("127.0.0.1:9092");
#endif
	log_set_sink(log_sink, NULL);
	fuse_set_log_func(fuse_log_sink);
	if (parse_args(&s, argc, argv) < 0)
		return 2;
	log_set_level(s.level);

	data_dir = absolute(s.data_dir);
	mountpoint = realpath(s.mountpoint, NULL);
	if (!mountpoint || stat(mountpoint, &st) < 0) {
		fail("cannot mount on %s: %s", s.mountpoint, strerror(errno));
		goto free_settings;
	}
	if (!S_ISDIR(st.st_mode)) {
		fail("cannot mount on %s: %s", s.mountpoint, strerror(ENOTDIR));
		goto free_settings;
	}
	if (!data_dir) {
		fail("%s: %s", s.data_dir, strerror(errno));
		goto free_settings;
	}

	/* Options libfuse does not know are refused before the data
	 * directory is created or opened (an option the kernel refuses at
	 * mount time is only found out later, see README "Mounting"). */
	chronikfs_options_init(&fo);
	fo.mountpoint = mountpoint;
	fo.fsname = data_dir;
	fo.data_dir = data_dir;
	fo.fuse_options = s.mount_opts;
	fo.auto_unmount = s.auto_unmount;
	fo.default_permissions = s.default_permissions;
	fo.debug = s.fuse_debug;
	if (chronikfs_options_check(&fo) < 0) {
		fuse_log_flush();
		fail("bad mount options '%s' (see above)", s.mount_opts ? s.mount_opts : "");
		goto free_settings;
	}

	if (!s.foreground)
		daemon_start();

	/* Shutdown signals go to the signal thread only: block them before
	 * any thread exists so that every thread inherits the mask. */
	sigemptyset(&sc.set);
	sigaddset(&sc.set, SIGINT);
	sigaddset(&sc.set, SIGTERM);
	sigaddset(&sc.set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sc.set, NULL);
	signal(SIGPIPE, SIG_IGN);

	err = engine_open(data_dir, &s.eo, &e);
	if (err == CHRONIK_ELOCKED) {
		fail("%s is in use: another chronikd (or chronik) holds its lock", data_dir);
		goto free_settings;
	}
	if (err < 0) {
		fail("opening %s: %s", data_dir, chronik_strerror(err));
		goto free_settings;
	}

#ifdef CHRONIK_HAVE_KAFKA
	kafka_codecs_register();
	if (s.kafka) {
		err = kafka_listener_start(e, &s.ko, &kl);
		if (err < 0) {
			fail("Kafka listener on %s: %s", s.kafka_addr, chronik_strerror(err));
			goto close_engine;
		}
	}
#endif

	err = chronikfs_mount(e, &fo, &fs);
	if (err < 0) {
		fuse_log_flush();
		fail("mounting %s on %s failed: %s", data_dir, mountpoint,
		     err == -EIO ? "the kernel refused (see above)" : strerror(-err));
		goto stop_kafka;
	}

	sc.fs = fs;
	err = pthread_create(&sig_thread, NULL, signal_main, &sc);
	if (err) {
		fail("signal thread: %s", strerror(err));
		goto unmount;
	}
#ifdef CHRONIK_HAVE_KAFKA
	if (kl)
		log_msg(LOG_LVL_INFO, "chronikd", "%s mounted at %s, Kafka on %s (port %u)",
			data_dir, mountpoint, s.kafka_addr, kafka_listener_port(kl));
	else
#endif
		log_msg(LOG_LVL_INFO, "chronikd", "%s mounted at %s", data_dir, mountpoint);
	daemon_ready();

	err = chronikfs_run(fs);
	if (err < 0)
		log_msg(LOG_LVL_ERROR, "chronikd", "serving the mount: %s", strerror(-err));
	status = err < 0 ? 1 : 0;

	atomic_store(&shutting_down, true);
	pthread_kill(sig_thread, SIGTERM); /* blocked here: wakes its sigwait */
	pthread_join(sig_thread, NULL);
unmount:
	chronikfs_close(fs);
stop_kafka:
#ifdef CHRONIK_HAVE_KAFKA
	if (kl)
		kafka_listener_stop(kl);
close_engine:
#endif
	err = engine_close(e);
	if (err < 0) {
		log_msg(LOG_LVL_ERROR, "chronikd", "closing %s: %s", data_dir,
			chronik_strerror(err));
		status = 1;
	} else if (status == 0) {
		log_msg(LOG_LVL_INFO, "chronikd", "%s closed", data_dir);
	}
free_settings:
	free(data_dir);
	free(mountpoint);
	free(s.mount_opts);
	free(s.kafka_addr);
	return status;
}
