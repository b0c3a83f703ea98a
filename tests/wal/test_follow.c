/* test_follow.c - a read-only engine (what `chronik consume --follow`
 * runs) survives a writer that truncates the files it follows.
 *
 * The writer truncates the active WAL file and the metadata log when a
 * group or an event fails, and at its open when it cuts a torn tail. A
 * follower that looked at the size just before such a cut and then
 * touched a mapping of the file past the new end would die of SIGBUS.
 * This test makes that moment certain instead of waiting for the race:
 * its fstat() (which the engine linked into it calls) reports, for the
 * chosen file, the size from before the cut (1 MiB more than is there),
 * while the file holds a torn frame that claims more bytes than remain.
 * Each follower refresh runs in a child process, so that a SIGBUS is a
 * failed test, not a crashed one; afterwards the writer reopens (cutting
 * the torn tails), appends, and the follower picks the new data up. */
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testutil.h"

static const char *inflate_suffix; /* fstat of a file whose path ends so lies */

int fstat(int fd, struct stat *st)
{
	static int (*real)(int, struct stat *);
	char link[64], path[4096];
	ssize_t n;
	int rc;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "fstat64");
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "fstat");
	rc = real(fd, st);
	if (rc != 0 || !inflate_suffix || !S_ISREG(st->st_mode))
		return rc;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n > 0) {
		size_t sl = strlen(inflate_suffix);
		path[n] = 0;
		if ((size_t)n >= sl && strcmp(path + n - sl, inflate_suffix) == 0)
			st->st_size += 1 << 20;
	}
	return rc;
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

static int64_t next_offset(struct engine *e)
{
	struct partition *p = part_or_bail(e, "f", 0);
	struct partition_info info;
	engine_partition_info(p, &info);
	engine_partition_unref(p);
	return info.next_offset;
}

static void append_big(struct engine *e, char fill, size_t len, int64_t want)
{
	struct partition *p = part_or_bail(e, "f", 0);
	char *v = malloc(len);
	struct record_in r = {
		.timestamp = 1, .key_len = -1, .value = v, .value_len = (int32_t)len
	};
	int64_t base;
	memset(v, fill, len);
	if (engine_append_records(p, &r, 1, &base) || base != want)
		bail("append");
	free(v);
	engine_partition_unref(p);
}

/* Refresh the follower in a child with fstat lying about suffix's file;
 * the child's status: 0 when it lived and still saw want_next. */
static int refresh_in_child(struct engine *follower, const char *suffix, int64_t want_next)
{
	int status;
	pid_t pid = fork();
	if (pid < 0)
		bail("fork");
	if (pid == 0) {
		inflate_suffix = suffix;
		int rc = engine_refresh(follower);
		_exit(rc == 0 && next_offset(follower) == want_next ? 0 : 1);
	}
	if (waitpid(pid, &status, 0) != pid)
		bail("waitpid");
	if (WIFSIGNALED(status))
		diag("the follower died of signal %d (%s)", WTERMSIG(status),
		     strsignal(WTERMSIG(status)));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A read-only open (recovery's scan) in a child, fstat lying likewise. */
static int open_in_child(const char *dir, const char *suffix)
{
	int status;
	pid_t pid = fork();
	if (pid < 0)
		bail("fork");
	if (pid == 0) {
		struct engine_options o;
		struct engine *e;
		engine_options_init(&o);
		o.read_only = true;
		inflate_suffix = suffix;
		_exit(engine_open(dir, &o, &e) == 0 && next_offset(e) == 1 ? 0 : 1);
	}
	if (waitpid(pid, &status, 0) != pid)
		bail("waitpid");
	if (WIFSIGNALED(status))
		diag("the read-only open died of signal %d", WTERMSIG(status));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(void)
{
	char *dir = tmpdir_new("follow");
	char wal[4200], meta[4200];
	struct engine_options ro;
	struct engine *w, *f;
	off_t meta_before, wal_before;
	char *md;

	snprintf(wal, sizeof(wal), "%s/wal/%020d.wal", dir, 0);
	snprintf(meta, sizeof(meta), "%s/meta.log", dir);
	w = open_or_bail(dir, NULL);
	engine_topic_create(w, "f", 1, NULL);
	append_big(w, 'a', 10, 0);
	engine_close(w);

	engine_options_init(&ro);
	ro.read_only = true;
	f = open_or_bail(dir, &ro);
	ok(next_offset(f) == 1, "the follower sees the first batch");

	/* The writer commits a big offset metadata and appends a big batch;
	 * then both files lose their ends, as a failed event and a failed
	 * group would leave them. */
	w = open_or_bail(dir, NULL);
	meta_before = file_size(meta);
	wal_before = file_size(wal);
	md = malloc(300000);
	memset(md, 'm', 299999);
	md[299999] = 0;
	if (engine_group_offset_commit(w, "g", "f", 0, 1, md))
		bail("offset commit");
	free(md);
	append_big(w, 'b', 300000, 1);
	engine_close(w);
	if (truncate(meta, meta_before + 8192) || truncate(wal, wal_before + 8192))
		bail("truncate");

	ok(refresh_in_child(f, "/meta.log", 1) == 0,
	   "a follower survives a metadata log cut after it looked at its size");
	ok(refresh_in_child(f, ".wal", 1) == 0,
	   "a follower survives a WAL file cut after it looked at its size");

	ok(open_in_child(dir, ".wal") == 0,
	   "a read-only open survives a WAL file cut after it looked at its size");
	ok(open_in_child(dir, "/meta.log") == 0,
	   "a read-only open survives a metadata log cut after it looked at its size");

	/* The writer's open cuts both torn tails; it appends; the follower
	 * goes on from where it stopped. */
	ok(engine_refresh(f) == 0 && next_offset(f) == 1, "the follower stops at the torn frame");
	w = open_or_bail(dir, NULL);
	append_big(w, 'c', 10, 1);
	engine_close(w);
	ok(engine_refresh(f) == 0 && next_offset(f) == 2,
	   "after the writer cut the tail and appended, the follower sees the new batch");
	{
		int64_t off = -1;
		char *m = NULL;
		ok(engine_group_offset_fetch(f, "g", "f", 0, &off, &m) == 0 && off == -1,
		   "and not the offset commit that was cut off");
		free(m);
	}
	engine_close(f);
	tmpdir_free(dir);
	return tap_exit();
}
