/* chronikd - mount a chronik data directory, and serve Kafka clients on it.
 *
 *   chronikd [options] DATA_DIR MOUNTPOINT
 *
 * Start-up order: parse settings (config file, then flags), bound malloc's
 * arenas (memory, below), check the mount point, fork into the background
 * unless -f (the parent waits for the child to say "mounted" or to fail,
 * and exits with the child's status, so a failed start is never reported
 * as success), block the shutdown signals in every thread, open the engine
 * (takes DATA/LOCK), start the Kafka listener, mount, then serve; the
 * signal thread trims malloc's free memory every 10 s while it waits.
 * SIGINT, SIGTERM, SIGHUP or an unmount end it: the listener stops, partial
 * lines of open files are appended, the mount goes away, and engine_close
 * flushes, fsyncs and releases the lock.
 *
 * This file is the composition root: the settings are settings.c's, the
 * log sink logsink.c's (daemon.h); the filesystem is fs/'s, the listener
 * kafka/'s, and they meet only in the engine this main opens for both.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chronikfs.h"
#include "daemon.h"
#include "search.h"
#include "remote.h"
#include "s3.h"

/* ---- background ---------------------------------------------------------------------- */

static int ready_fd = -1;

/* Fork; the parent waits for the child's word and exits with its status. */
static void daemon_start(void)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p) < 0) {
		daemon_fail("pipe: %s", strerror(errno));
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		daemon_fail("fork: %s", strerror(errno));
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
	logsink_to_syslog();
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

/* ---- memory ---------------------------------------------------------------------------- */

/* chronikd runs a thread per Kafka connection, besides the FUSE workers,
 * the commit thread, the indexer and its workers. glibc's malloc gives
 * threads up to 8 arenas per core by default (16 on 2 cores, 512 on 64),
 * and an arena keeps what is freed into it, pages in the middle of its
 * heap included, until it is trimmed: under a thousand connections the
 * free bytes of 16 arenas grew from 24 to 35 MB in five minutes, more
 * than the bytes in use (21 to 25 MB), and chronikd's RSS with them
 * (README, "Many clients at once"). Two bounds:
 *
 * - at most MALLOC_ARENAS_PER_CORE arenas per online core, set before
 *   any thread exists. Only as many threads as cores run at once, so two
 *   arenas a core leave a running thread's arena free of others most of
 *   the time, and far fewer heaps hold free memory. MALLOC_ARENA_MAX (or
 *   GLIBC_TUNABLES' glibc.malloc.arena_max) in the environment wins.
 * - malloc_trim(0) every MALLOC_TRIM_SECONDS, from the signal thread:
 *   it gives every arena's free pages back to the kernel (madvise), not
 *   only the top of each heap as free(3) does. It holds one arena's lock
 *   at a time, while it walks that arena's free chunks.
 *
 * Elsewhere than glibc both are no-ops. */
#define MALLOC_ARENAS_PER_CORE 2
#define MALLOC_TRIM_SECONDS 10

#ifdef __GLIBC__
static bool arena_max_in_env(void)
{
	const char *t = getenv("GLIBC_TUNABLES");
	return getenv("MALLOC_ARENA_MAX") || (t && strstr(t, "glibc.malloc.arena_max"));
}
#endif

static void malloc_arenas_bound(void)
{
#ifdef __GLIBC__
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int max = MALLOC_ARENAS_PER_CORE * (cores > 0 && cores < 4096 ? (int)cores : 1);

	if (arena_max_in_env())
		return;
	/* A sanitizer's malloc refuses (returns 0): nothing to bound then. */
	if (mallopt(M_ARENA_MAX, max) == 1)
		log_msg(LOG_LVL_DEBUG, "chronikd", "malloc arenas: at most %d", max);
#endif
}

static void malloc_give_back(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

/* ---- signals -------------------------------------------------------------------------- */

static atomic_bool shutting_down;

struct signal_ctx {
	struct chronikfs *fs;
	sigset_t set;
};

/* Waits for a shutdown signal; every MALLOC_TRIM_SECONDS without one it
 * gives malloc's free pages back (memory, above). */
static void *signal_main(void *arg)
{
	struct signal_ctx *c = arg;
	const struct timespec period = { MALLOC_TRIM_SECONDS, 0 };
	int sig;

	for (;;) {
		sig = sigtimedwait(&c->set, NULL, &period);
		if (sig >= 0)
			break;
		if (errno == EAGAIN)
			malloc_give_back();
		else if (errno != EINTR)
			return NULL;
	}
	if (atomic_load(&shutting_down))
		return NULL;
	log_msg(LOG_LVL_INFO, "chronikd", "%s: unmounting", strsignal(sig));
	chronikfs_stop(c->fs);
	return NULL;
}

/* ---- file descriptors ------------------------------------------------------------------ */

/* Raise RLIMIT_NOFILE's soft limit to the hard limit. Every Kafka
 * connection holds a descriptor (and the listener sizes its connection
 * limit from this one, kafka/listener.h), every reader of a segment or WAL
 * file another; Debian's default soft limit of 1024 would cap a thousand
 * clients. Nothing in chronikd uses select(2), so descriptors above
 * FD_SETSIZE are harmless. A failure (a hard limit of infinity that the
 * kernel's nr_open refuses) leaves the limit as it was, logged. */
static void nofile_raise(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_msg(LOG_LVL_WARN, "chronikd", "cannot raise the open file limit from %llu: %s",
			(unsigned long long)was, strerror(errno));
	else
		log_msg(LOG_LVL_INFO, "chronikd", "open file limit raised from %llu to %llu",
			(unsigned long long)was, (unsigned long long)rl.rlim_cur);
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
	struct search_builder *sb = NULL;
	struct signal_ctx sc;
	pthread_t sig_thread;
	char *data_dir = NULL, *mountpoint = NULL;
	struct stat st;
	int err, status = 1;
#ifdef CHRONIK_HAVE_KAFKA
	struct kafka_listener *kl = NULL;
#endif
	struct s3_client *s3 = NULL;

	settings_init(&s);
	logsink_install();
	if (settings_parse_args(&s, argc, argv) < 0) {
		settings_fini(&s);
		return 2;
	}
	log_set_level(s.level);
	malloc_arenas_bound(); /* before any thread */
	nofile_raise();
#ifdef CHRONIK_HAVE_KAFKA
	/* The security files are opened after daemon_start's chdir("/"). */
	char **paths[] = { &s.kafka_users_file, &s.kafka_tls_cert, &s.kafka_tls_key };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (!*paths[i])
			continue;
		char *abs = absolute(*paths[i]);
		if (!abs) {
			daemon_fail("%s: %s", *paths[i], strerror(errno));
			settings_fini(&s);
			return 2;
		}
		free(*paths[i]);
		*paths[i] = abs;
	}
#endif

	data_dir = absolute(s.data_dir);
	mountpoint = realpath(s.mountpoint, NULL);
	if (!mountpoint || stat(mountpoint, &st) < 0) {
		daemon_fail("cannot mount on %s: %s", s.mountpoint, strerror(errno));
		goto free_settings;
	}
	if (!S_ISDIR(st.st_mode)) {
		daemon_fail("cannot mount on %s: %s", s.mountpoint, strerror(ENOTDIR));
		goto free_settings;
	}
	if (!data_dir) {
		daemon_fail("%s: %s", s.data_dir, strerror(errno));
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
		logsink_fuse_flush();
		daemon_fail("bad mount options '%s' (see above)", s.mount_opts ? s.mount_opts : "");
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

	/* Every segment the indexer writes gets its full-text index, built
	 * by the search builder's thread (off the indexer's path). */
	if (s.search_index) {
		err = search_builder_new(&sb);
		if (err < 0) {
			daemon_fail("search builder: %s", chronik_strerror(err));
			goto free_settings;
		}
		search_builder_options(sb, &s.eo);
	}
	err = engine_open(data_dir, &s.eo, &e);
	if (err == CHRONIK_ELOCKED) {
		daemon_fail("%s is in use: another chronikd (or chronik) holds its lock", data_dir);
		goto free_settings;
	}
	if (err < 0) {
		daemon_fail("opening %s: %s", data_dir, chronik_strerror(err));
		goto free_settings;
	}

	if (sb) {
		err = search_builder_start(sb, e);
		if (err < 0) {
			daemon_fail("search builder: %s", chronik_strerror(err));
			goto close_engine;
		}
	}

	if (s.remote_url) {
		struct s3_options so = {
			.url = s.remote_url,
			.endpoint = s.remote_endpoint,
			.region = s.remote_region,
			.path_style = s.remote_path_style,
			.credentials_file = s.remote_credentials_file,
			.timeout_ms = s.remote_timeout_ms,
			.multipart_bytes = s.remote_multipart_bytes,
			.part_bytes = s.remote_part_bytes,
		};
		err = s3_client_new(&so, &s3);
		if (err == 0) {
			struct engine_remote_options ro = {
				.key_prefix = s3_client_prefix(s3),
				.cache_bytes = s.remote_cache_bytes,
				.sweep_ms = (uint32_t)s.remote_sweep_ms,
				.orphan_age_ms = s.remote_orphan_age_ms,
			};
			err = engine_remote_attach(e, s3_remote_ops(), s3, &ro);
		}
		if (err < 0) {
			daemon_fail("remote storage %s: %s", s.remote_url, chronik_strerror(err));
			goto close_engine;
		}
	}

#ifdef CHRONIK_HAVE_KAFKA
	if (s.kafka) {
		s.ko.users_file = s.kafka_users_file;
		s.ko.tls_listen = s.kafka_tls_listen;
		s.ko.tls_cert = s.kafka_tls_cert;
		s.ko.tls_key = s.kafka_tls_key;
		err = kafka_listener_start(e, &s.ko, &kl);
		if (err < 0) {
			daemon_fail("Kafka listener on %s: %s", s.kafka_addr,
				    chronik_strerror(err));
			goto close_engine;
		}
	}
#endif

	err = chronikfs_mount(e, &fo, &fs);
	if (err < 0) {
		logsink_fuse_flush();
		daemon_fail("mounting %s on %s failed: %s", data_dir, mountpoint,
			    err == -EIO ? "the kernel refused (see above)" : strerror(-err));
		goto stop_kafka;
	}

	sc.fs = fs;
	err = pthread_create(&sig_thread, NULL, signal_main, &sc);
	if (err) {
		daemon_fail("signal thread: %s", strerror(err));
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
#endif
close_engine:
	search_builder_stop(sb);
	err = engine_close(e);
	s3_client_free(s3);
	if (err < 0) {
		log_msg(LOG_LVL_ERROR, "chronikd", "closing %s: %s", data_dir,
			chronik_strerror(err));
		status = 1;
	} else if (status == 0) {
		log_msg(LOG_LVL_INFO, "chronikd", "%s closed", data_dir);
	}
free_settings:
	search_builder_free(sb);
	free(data_dir);
	free(mountpoint);
	settings_fini(&s);
	return status;
}
