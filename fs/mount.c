/* mount.c - the FUSE session: mount, serve, notify, stop, close.
 *
 * Session settings (measured on Debian 12, libfuse 3.14, kernel 6.x; see
 * docs in /work/shared/design.md section 2):
 *   - conn->max_write = 1 MiB, set in init (not a session option in 3.14).
 *   - conn->max_read = the max_read=N of the mount options, if any: init
 *     must repeat it or libfuse 3.14 ends the session (EPROTO).
 *   - no writeback_cache: it turns appends into read-modify-write of pages.
 *   - no async_dio: it would send the 1 MiB pieces of one big write(2) as
 *     parallel requests, which the multi-threaded loop could append out of
 *     order.
 *   - atomic_o_trunc: open sees O_TRUNC, so `>` on a log is refused there.
 *   - every file is direct_io (fs/ops_file.c), attributes of growing files
 *     have timeout 0 (fs/ops_dir.c).
 *
 * Growth notification: tail -f polls fstat() about once a second. With a
 * zero attribute timeout the kernel already asks us each time; in addition,
 * every time the engine publishes a group the partitions that grew are
 * handed (engine append listener, on the commit thread) to a notifier
 * thread that calls fuse_lowlevel_notify_inval_inode() for their data,
 * records.jsonl and info.json inodes. The notifier is not a request thread,
 * so the kernel's invalidation cannot deadlock against a request we serve.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs-private.h"
#include "log.h"

void chronikfs_options_init(struct chronikfs_options *o)
{
	memset(o, 0, sizeof(*o));
	o->auto_unmount = true;
	o->default_permissions = true;
}

/* ---- growth notification ------------------------------------------------------ */

static void on_append(void *arg, struct partition *p)
{
	struct fs_notify *n = arg;
	size_t i;

	pthread_mutex_lock(&n->lock);
	if (n->stop)
		goto out;
	for (i = 0; i < n->len && n->queue[i] != p; i++)
		;
	if (i < n->len)
		goto out; /* already queued */
	if (n->len == n->cap) {
		size_t ncap = n->cap ? n->cap * 2 : 64;
		struct partition **nq = realloc(n->queue, ncap * sizeof(*nq));
		if (!nq)
			goto out; /* a missed notification only delays tail -f */
		n->queue = nq;
		n->cap = ncap;
	}
	engine_partition_ref(p);
	n->queue[n->len++] = p;
	pthread_cond_signal(&n->cond);
out:
	pthread_mutex_unlock(&n->lock);
}

static void *notifier_main(void *arg)
{
	struct chronikfs *fs = arg;
	struct fs_notify *n = fs->notify;
	fuse_ino_t ino[3];

	pthread_mutex_lock(&n->lock);
	while (!n->stop) {
		if (n->len == 0) {
			pthread_cond_wait(&n->cond, &n->lock);
			continue;
		}
		struct partition *p = n->queue[--n->len];
		pthread_mutex_unlock(&n->lock);
		if (fs_partition_inodes(fs, p, ino))
			for (int i = 0; i < 3; i++)
				/* -ENOENT: the kernel does not hold that inode */
				fuse_lowlevel_notify_inval_inode(fs->se, ino[i], 0, 0);
		engine_partition_unref(p);
		pthread_mutex_lock(&n->lock);
	}
	while (n->len > 0)
		engine_partition_unref(n->queue[--n->len]);
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

/* ---- the session ---------------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct chronikfs *fs = userdata;

	conn->max_write = FS_IO_SIZE;
	/* libfuse 3.14 ends the session (EPROTO) unless init asks for the
	 * max_read the mount options gave */
	conn->max_read = fs->max_read;
	conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ASYNC_DIO);
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->time_gran = 1;
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = fs_op_lookup,
	.getattr = fs_op_getattr,
	.setattr = fs_op_setattr,
	.mkdir = fs_op_mkdir,
	.rmdir = fs_op_rmdir,
	.unlink = fs_op_unlink,
	.rename = fs_op_rename,
	.mknod = fs_op_mknod,
	.link = fs_op_link,
	.symlink = fs_op_symlink,
	.create = fs_op_create,
	.open = fs_op_open,
	.read = fs_op_read,
	.write = fs_op_write,
	.flush = fs_op_flush,
	.release = fs_op_release,
	.fsync = fs_op_fsync,
	.opendir = fs_op_opendir,
	.readdir = fs_op_readdir,
	.releasedir = fs_op_releasedir,
	.statfs = fs_op_statfs,
};

/* Append s to the option string *o (comma-separated), escaping commas and
 * backslashes as libfuse's option parser expects when escape is set. */
static int opt_add(char **o, size_t *len, const char *s, bool escape)
{
	size_t n = strlen(s);
	char *no = realloc(*o, *len + 2 * n + 2);

	if (!no)
		return -ENOMEM;
	*o = no;
	if (*len)
		no[(*len)++] = ',';
	for (size_t i = 0; i < n; i++) {
		if (escape && (s[i] == ',' || s[i] == '\\'))
			no[(*len)++] = '\\';
		no[(*len)++] = s[i];
	}
	no[*len] = '\0';
	return 0;
}

/* The -o string for libfuse: ours, then the caller's. *out malloc'd. */
static int session_opts(const struct chronikfs_options *o, char **out)
{
	char *opts = NULL, *name = NULL;
	size_t olen = 0;
	int err;

	if (asprintf(&name, "fsname=%s", o->fsname ? o->fsname : "chronik") < 0)
		return -ENOMEM;
	err = opt_add(&opts, &olen, name, true);
	if (err == 0)
		err = opt_add(&opts, &olen, "subtype=chronik", false);
	if (err == 0 && o->auto_unmount)
		err = opt_add(&opts, &olen, "auto_unmount", false);
	if (err == 0 && o->default_permissions)
		err = opt_add(&opts, &olen, "default_permissions", false);
	if (err == 0 && o->fuse_options && *o->fuse_options)
		err = opt_add(&opts, &olen, o->fuse_options, false);
	free(name);
	if (err < 0) {
		free(opts);
		return err;
	}
	*out = opts;
	return 0;
}

/* The value of the last max_read=N in a -o string, 0 if none. */
static unsigned opt_max_read(const char *opts)
{
	unsigned v = 0;

	for (const char *at = opts; at && *at; at = strchr(at, ',') ? strchr(at, ',') + 1 : NULL)
		if (!strncmp(at, "max_read=", 9))
			v = (unsigned)strtoul(at + 9, NULL, 10);
	return v;
}

int chronikfs_options_check(const struct chronikfs_options *o)
{
	static const struct fuse_lowlevel_ops no_ops;
	struct fuse_session *se;
	char *opts;
	int err = session_opts(o, &opts);

	if (err < 0)
		return err;
	char *argv[] = { "chronikd", "-o", opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	se = fuse_session_new(&args, &no_ops, sizeof(no_ops), NULL);
	fuse_opt_free_args(&args);
	free(opts);
	if (!se)
		return -EINVAL;
	fuse_session_destroy(se);
	return 0;
}

static void chronikfs_free(struct chronikfs *fs)
{
	/* The listener was cleared (engine_set_append_listener waits out a
	 * running call) and the notifier joined before we get here. */
	if (fs->notify) {
		for (size_t i = 0; i < fs->notify->len; i++)
			engine_partition_unref(fs->notify->queue[i]);
		free(fs->notify->queue);
		pthread_mutex_destroy(&fs->notify->lock);
		pthread_cond_destroy(&fs->notify->cond);
		free(fs->notify);
	}
	fs_table_fini(&fs->table);
	fs_queries_fini(&fs->queries);
	pthread_mutex_destroy(&fs->handles_lock);
	pthread_mutex_destroy(&fs->run_lock);
	pthread_cond_destroy(&fs->run_cond);
	free(fs->mountpoint);
	free(fs->data_dir);
	free(fs);
}

int chronikfs_mount(struct engine *e, const struct chronikfs_options *o, struct chronikfs **out)
{
	struct chronikfs *fs;
	struct stat st;
	char *opts = NULL;
	int err;

	if (stat(o->mountpoint, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->e = e;
	fs->uid = getuid();
	fs->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs->mount_time);
	atomic_init(&fs->root_mtime_ns,
		    (long long)fs->mount_time.tv_sec * 1000000000 + fs->mount_time.tv_nsec);
	fs_table_init(&fs->table);
	fs_queries_init(&fs->queries);
	pthread_mutex_init(&fs->handles_lock, NULL);
	fs->handles.next = fs->handles.prev = &fs->handles;
	pthread_mutex_init(&fs->run_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the stop wait's deadline */
	pthread_cond_init(&fs->run_cond, &ca);
	pthread_condattr_destroy(&ca);
	fs->mountpoint = strdup(o->mountpoint);
	fs->data_dir = o->data_dir ? strdup(o->data_dir) : NULL;
	fs->notify = calloc(1, sizeof(*fs->notify));
	if (!fs->mountpoint || (o->data_dir && !fs->data_dir) || !fs->notify) {
		err = -ENOMEM;
		goto free_fs;
	}
	pthread_mutex_init(&fs->notify->lock, NULL);
	pthread_cond_init(&fs->notify->cond, NULL);
	fs->notify->fs = fs;

	err = session_opts(o, &opts);
	if (err < 0)
		goto free_fs;
	fs->max_read = opt_max_read(opts);

	char *argv[] = { "chronikd", "-o", opts, o->debug ? "-d" : NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(o->debug ? 4 : 3, argv);
	fs->se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), fs);
	fuse_opt_free_args(&args);
	if (!fs->se) {
		err = -EINVAL; /* libfuse said which option */
		goto free_opts;
	}
	if (fuse_session_mount(fs->se, o->mountpoint) != 0) {
		err = -EIO;
		goto destroy_session;
	}
	err = -pthread_create(&fs->notifier, NULL, notifier_main, fs);
	if (err < 0)
		goto unmount;
	fs->notifier_started = true;
	engine_set_append_listener(e, on_append, fs->notify);
	free(opts);
	*out = fs;
	return 0;

unmount:
	fuse_session_unmount(fs->se);
destroy_session:
	fuse_session_destroy(fs->se);
free_opts:
	free(opts);
free_fs:
	chronikfs_free(fs);
	return err;
}

static void sigusr1_noop(int sig)
{
	(void)sig;
}

int chronikfs_run(struct chronikfs *fs)
{
	struct sigaction sa;
	sigset_t usr1, old;
	int err;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sigusr1_noop; /* no SA_RESTART: interrupt the loop's wait */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	pthread_mutex_lock(&fs->run_lock);
	if (fs->stop_requested) {
		pthread_mutex_unlock(&fs->run_lock);
		return 0;
	}
	fs->running = true;
	fs->run_thread = pthread_self();
	pthread_mutex_unlock(&fs->run_lock);

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, &old);

	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	if (!cfg) {
		err = -ENOMEM;
	} else {
		/* Workers stay (up to 8 idle) and share the session's fd;
		 * FUSE_USE_VERSION 312 (fs-private.h) is what makes libfuse
		 * read this config as what it is. */
		fuse_loop_cfg_set_clone_fd(cfg, 0);
		fuse_loop_cfg_set_idle_threads(cfg, 8);
		fuse_loop_cfg_set_max_threads(cfg, 64);
		err = fuse_session_loop_mt(fs->se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}

	pthread_mutex_lock(&fs->run_lock);
	fs->running = false;
	pthread_cond_broadcast(&fs->run_cond);
	pthread_mutex_unlock(&fs->run_lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* ENODEV: the filesystem was unmounted, which is how it ends */
	return err > 0 ? -err : (err == -ENODEV ? 0 : err);
}

void chronikfs_stop(struct chronikfs *fs)
{
	pthread_mutex_lock(&fs->run_lock);
	fs->stop_requested = true;
	fuse_session_exit(fs->se);
	while (fs->running) {
		/* the loop thread sleeps in sem_wait(); a signal wakes it to
		 * see the exit flag. Repeat in case it was not asleep yet. */
		struct timespec ts;
		pthread_kill(fs->run_thread, SIGUSR1);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&fs->run_cond, &fs->run_lock, &ts);
		fuse_session_exit(fs->se);
	}
	pthread_mutex_unlock(&fs->run_lock);
}

void chronikfs_close(struct chronikfs *fs)
{
	struct fs_handle *h;
	int err;

	/* What open files still hold is appended, as if they were closed. */
	pthread_mutex_lock(&fs->handles_lock);
	for (h = fs->handles.next; h != &fs->handles; h = h->next) {
		pthread_mutex_lock(&h->lock);
		err = fs_handle_flush_pending(fs, h);
		pthread_mutex_unlock(&h->lock);
		if (err < 0)
			log_msg(LOG_LVL_WARN, "fs", "topic %s: a partial line of an open file: %s",
				h->topic->name, chronik_strerror(err));
	}
	pthread_mutex_unlock(&fs->handles_lock);

	engine_set_append_listener(fs->e, NULL, NULL);
	if (fs->notifier_started) {
		pthread_mutex_lock(&fs->notify->lock);
		fs->notify->stop = true;
		fs->notify->fs = NULL;
		pthread_cond_signal(&fs->notify->cond);
		pthread_mutex_unlock(&fs->notify->lock);
		pthread_join(fs->notifier, NULL);
	}

	fuse_session_unmount(fs->se);
	fuse_session_destroy(fs->se);

	/* The kernel sends no more releases: free what is left. */
	while ((h = fs->handles.next) != &fs->handles) {
		h->prev->next = h->next;
		h->next->prev = h->prev;
		fs_handle_free(h);
	}
	chronikfs_free(fs);
}
