/* faultfs.c - an LD_PRELOAD shim that makes chosen file-system calls fail,
 * so that tests can see what the store does with a failed fsync, a failed
 * write or a full disk.
 *
 * It wraps fsync, fdatasync, write, pwrite, writev and pwritev (and their
 * 64-bit aliases), and clock_gettime (below). Each wrapped call is counted in one of two classes,
 * "sync" (fsync, fdatasync) and "write" (the others), and only when the
 * file it acts on matches the class's path pattern. The Nth counted call of
 * a class, and the COUNT-1 counted calls after it, fail with the chosen
 * errno without doing anything; every other call goes to the C library.
 *
 * Environment (read once, at the first wrapped call):
 *
 *   FAULTFS_SYNC_NTH=N      the Nth counted fsync/fdatasync fails (1 = the
 *                           first); unset or 0 = no sync fault
 *   FAULTFS_SYNC_COUNT=K    how many consecutive counted calls fail from
 *                           the Nth on (default 1; 0 = every one from then)
 *   FAULTFS_SYNC_ERRNO=E    EIO (default), ENOSPC, EROFS, EDQUOT, EFBIG, a
 *                           number, or SKIP: the call does nothing and
 *                           reports success (a device that lies, or a
 *                           test that needs many syncs fast)
 *   FAULTFS_SYNC_PATH=PAT   count only files whose path (readlink of
 *                           /proc/self/fd/FD) matches the fnmatch(3) pattern
 *                           PAT, e.g. "*.wal" or "*meta.log"; unset = all
 *                           files, including directories
 *
 *   FAULTFS_WRITE_NTH, FAULTFS_WRITE_COUNT, FAULTFS_WRITE_ERRNO,
 *   FAULTFS_WRITE_PATH      the same for write, pwrite, writev, pwritev
 *                           (default errno EIO; besides SKIP, SHORT: the
 *                           call writes only the first half of its bytes,
 *                           rounded down (writev, pwritev: of their first
 *                           buffer), and returns that count with errno
 *                           untouched). Writes to fds that are not
 *                           regular files (pipes, sockets, ttys: the TAP
 *                           output itself) are never counted.
 *
 *   FAULTFS_REALTIME_SHIFT_NS=N  add N nanoseconds (may be negative) to every
 *                           clock_gettime(CLOCK_REALTIME) reading: a wall
 *                           clock stepped back or forward, for code that
 *                           must time its intervals on CLOCK_MONOTONIC
 *                           (the kernel's own waits, such as a timed
 *                           pthread_cond_timedwait on CLOCK_REALTIME, keep
 *                           the true time: a deadline computed from a
 *                           shifted reading is off by N for them)
 *
 *   FAULTFS_LOG=1           print one line to stderr for every injected
 *                           fault ("faultfs: fdatasync(…/1.wal) call 3 -> errno 5")
 *
 * A test program that runs under the shim can also arm a fault at run time,
 * relative to the calls counted so far, through
 *
 *   void faultfs_arm(const char *cls, unsigned long nth, unsigned long count,
 *                    int err);
 *
 * cls "sync" or "write"; nth 1 = the next counted call, 0 = disarm; count
 * and err as above (err 0 = EIO, FAULTFS_SHORT -1, FAULTFS_SKIP -2). The path pattern stays the environment's.
 * Likewise void faultfs_clock_shift(long long ns) sets the realtime shift.
 * Look them up with dlsym(RTLD_DEFAULT, "faultfs_arm"): NULL means the shim
 * is not loaded.
 *
 * RECORDING (power-loss simulation). A test under the shim may also have
 * every successful write, ftruncate, fsync/fdatasync, rename and unlink of
 * the files under one directory recorded, in the order the calls
 * completed, so that it can rebuild what a power cut at any moment could
 * have left on the disk (tests/wal/test_powercut.c):
 *
 *   int faultfs_record_start(const char *log_path, const char *dir);
 *   void faultfs_record_stop(void);
 *   unsigned long faultfs_record_count(void);
 *
 * start truncates log_path and records, from then on, the calls on paths
 * that begin with dir + "/" (absolute, as readlink of /proc/self/fd gives
 * them; 0 or -errno). count is the number of records written so far: an
 * operation that returned before count() was called is in the first
 * count() records. While recording, every recorded call and its record
 * happen under one lock, so the record's order is the order the calls
 * took effect in. The log is a sequence of records in host byte order:
 *
 *   offset  size  field
 *   0       1     op: 'W' write, 'T' ftruncate, 'S' fsync or fdatasync,
 *                 'R' rename, 'U' unlink
 *   1       4     n1, length of path 1
 *   5       4     n2, length of path 2 (rename's new path; else 0)
 *   9       8     pos: W the file offset written at, T the new length
 *   17      8     len: W the number of bytes written (the data follows)
 *   25      n1    path 1, relative to dir (no NUL)
 *   25+n1   n2    path 2
 *   ..      len   W only: the bytes written
 *
 * write and writev record at the file position they wrote at (the end of
 * the file under O_APPEND); a short write records what was written. A
 * fsync of a directory is recorded like any other ('S' with the
 * directory's path); the rebuilder may ignore it.
 *
 * A failing call returns -1 with errno set and changes nothing (a write
 * writes no byte). Counting is atomic, so concurrent threads see each
 * counted call exactly once; which thread's call is the Nth is then up to
 * the scheduler, so tests that need one exact call should make it from a
 * single thread.
 *
 * Use: LD_PRELOAD=build/tests/lib/libfaultfs.so. In a sanitizer build the
 * sanitizer's runtime must be the first library loaded, so preload it
 * before the shim: tests/lib/meson.build defines faultfs_preload, the
 * LD_PRELOAD value for the current build ("/…/libasan.so /…/libfaultfs.so"
 * under ASan), for tests to put into their env.
 */
/* Both names, pwrite and pwrite64, are defined below: the large-file
 * renaming would make them one symbol. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FAULTFS_SHORT (-1)
#define FAULTFS_SKIP (-2)

struct fault_class {
	const char *name; /* "SYNC" or "WRITE" */
	atomic_ulong nth, count; /* nth: the absolute call number, 0 = none */
	atomic_int err;
	char pattern[1024];
	bool has_pattern;
	atomic_ulong seen;
};

static struct fault_class sync_class = { .name = "SYNC" };
static struct fault_class write_class = { .name = "WRITE" };
static bool log_faults;
static atomic_llong realtime_shift;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_clock_gettime)(clockid_t, struct timespec *);
static int (*real_ftruncate)(int, off_t);
static int (*real_rename)(const char *, const char *);
static int (*real_unlink)(const char *);

static int parse_errno(const char *s, int dflt)
{
	static const struct {
		const char *name;
		int value;
	} names[] = { { "EIO", EIO },	    { "ENOSPC", ENOSPC }, { "EROFS", EROFS },
		      { "EDQUOT", EDQUOT }, { "EFBIG", EFBIG },	  { "EINTR", EINTR } };
	if (!s || !*s)
		return dflt;
	if (strcmp(s, "SHORT") == 0)
		return FAULTFS_SHORT;
	if (strcmp(s, "SKIP") == 0)
		return FAULTFS_SKIP;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].value;
	return atoi(s) > 0 ? atoi(s) : dflt;
}

static void class_init(struct fault_class *c)
{
	char var[64];
	const char *s;

	snprintf(var, sizeof(var), "FAULTFS_%s_NTH", c->name);
	s = getenv(var);
	atomic_init(&c->nth, s ? strtoul(s, NULL, 10) : 0);
	snprintf(var, sizeof(var), "FAULTFS_%s_COUNT", c->name);
	s = getenv(var);
	atomic_init(&c->count, s ? strtoul(s, NULL, 10) : 1);
	snprintf(var, sizeof(var), "FAULTFS_%s_ERRNO", c->name);
	atomic_init(&c->err, parse_errno(getenv(var), EIO));
	snprintf(var, sizeof(var), "FAULTFS_%s_PATH", c->name);
	s = getenv(var);
	if (s && *s) {
		snprintf(c->pattern, sizeof(c->pattern), "%s", s);
		c->has_pattern = true;
	}
	atomic_init(&c->seen, 0);
}

static void init(void)
{
	const char *s;
	/* POSIX's way to turn dlsym's void * into a function pointer. */
	*(void **)&real_fsync = dlsym(RTLD_NEXT, "fsync");
	*(void **)&real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
	*(void **)&real_write = dlsym(RTLD_NEXT, "write");
	*(void **)&real_pwrite = dlsym(RTLD_NEXT, "pwrite");
	*(void **)&real_writev = dlsym(RTLD_NEXT, "writev");
	*(void **)&real_pwritev = dlsym(RTLD_NEXT, "pwritev");
	*(void **)&real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
	*(void **)&real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
	*(void **)&real_rename = dlsym(RTLD_NEXT, "rename");
	*(void **)&real_unlink = dlsym(RTLD_NEXT, "unlink");
	s = getenv("FAULTFS_REALTIME_SHIFT_NS");
	atomic_init(&realtime_shift, s ? strtoll(s, NULL, 10) : 0);
	s = getenv("FAULTFS_LOG");
	class_init(&sync_class);
	class_init(&write_class);
	log_faults = s && *s && strcmp(s, "0") != 0;
}

static void fd_path(int fd, char *buf, size_t len)
{
	char link[64];
	ssize_t n;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
}

/* 0 when this call goes to the C library; else the fault: an errno
 * (errno is then set), FAULTFS_SHORT or FAULTFS_SKIP. */
static int fault_of(struct fault_class *c, int fd, const char *call)
{
	char path[4096];
	unsigned long k, nth, count;
	int err;

	pthread_once(&once, init);
	if (atomic_load(&c->nth) == 0)
		return 0;
	if (c == &write_class) {
		struct stat st;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
			return 0;
	}
	path[0] = 0;
	if (c->has_pattern || log_faults)
		fd_path(fd, path, sizeof(path));
	if (c->has_pattern && fnmatch(c->pattern, path, 0) != 0)
		return 0;
	k = atomic_fetch_add(&c->seen, 1) + 1;
	nth = atomic_load(&c->nth);
	count = atomic_load(&c->count);
	err = atomic_load(&c->err);
	if (nth == 0 || k < nth || (count && k >= nth + count))
		return 0;
	if (log_faults) {
		char line[4300];
		int n = snprintf(line, sizeof(line), "faultfs: %s(%s) call %lu -> errno %d\n", call,
				 path, k, err);
		if (n > 0 && real_write)
			(void)!real_write(2, line,
					  (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
	if (err > 0)
		errno = err;
	return err;
}

void faultfs_arm(const char *cls, unsigned long nth, unsigned long count, int err);
void faultfs_arm(const char *cls, unsigned long nth, unsigned long count, int err)
{
	struct fault_class *c = strcmp(cls, "write") == 0 ? &write_class : &sync_class;

	pthread_once(&once, init);
	atomic_store(&c->nth, 0);
	atomic_store(&c->count, count);
	atomic_store(&c->err, err ? err : EIO);
	if (nth)
		atomic_store(&c->nth, atomic_load(&c->seen) + nth);
}

/* ---- recording ---------------------------------------------------------- */

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool rec_on;
static int rec_fd = -1;
static char rec_dir[4096];
static size_t rec_dir_len;
static atomic_ulong rec_count;

/* The path of fd relative to rec_dir into rel, or false when it is not
 * under it. */
static bool rec_rel_fd(int fd, char *rel, size_t len)
{
	char path[4096];
	fd_path(fd, path, sizeof(path));
	if (strncmp(path, rec_dir, rec_dir_len) != 0 || path[rec_dir_len] != '/')
		return false;
	snprintf(rel, len, "%s", path + rec_dir_len + 1);
	return true;
}

/* The same for a path given to rename or unlink (absolute, or relative to
 * the working directory). */
static bool rec_rel_path(const char *p, char *rel, size_t len)
{
	char abs[4096];
	if (p[0] == '/') {
		snprintf(abs, sizeof(abs), "%s", p);
	} else {
		char cwd[2048];
		if (!getcwd(cwd, sizeof(cwd)))
			return false;
		snprintf(abs, sizeof(abs), "%s/%s", cwd, p);
	}
	if (strncmp(abs, rec_dir, rec_dir_len) != 0 || abs[rec_dir_len] != '/')
		return false;
	snprintf(rel, len, "%s", abs + rec_dir_len + 1);
	return true;
}

static void rec_out(const void *buf, size_t len)
{
	const char *b = buf;
	while (len > 0) {
		ssize_t n = real_write(rec_fd, b, len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			abort(); /* a record that cannot be written makes the test meaningless */
		}
		b += n;
		len -= (size_t)n;
	}
}

/* One record (the format above); caller holds rec_lock. data: iov of W. */
static void rec_emit(char op, const char *p1, const char *p2, uint64_t pos, uint64_t len,
		     const struct iovec *iov, int iovcnt)
{
	unsigned char h[25];
	uint32_t n1 = (uint32_t)strlen(p1), n2 = p2 ? (uint32_t)strlen(p2) : 0;
	h[0] = (unsigned char)op;
	memcpy(h + 1, &n1, 4);
	memcpy(h + 5, &n2, 4);
	memcpy(h + 9, &pos, 8);
	memcpy(h + 17, &len, 8);
	rec_out(h, sizeof(h));
	rec_out(p1, n1);
	if (n2)
		rec_out(p2, n2);
	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t k = iov[i].iov_len < len ? iov[i].iov_len : (size_t)len;
		rec_out(iov[i].iov_base, k);
		len -= k;
	}
	atomic_fetch_add(&rec_count, 1);
}

int faultfs_record_start(const char *log_path, const char *dir);
int faultfs_record_start(const char *log_path, const char *dir)
{
	int fd;
	pthread_once(&once, init);
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&rec_lock);
	if (rec_fd >= 0)
		close(rec_fd);
	rec_fd = fd;
	snprintf(rec_dir, sizeof(rec_dir), "%s", dir);
	rec_dir_len = strlen(rec_dir);
	while (rec_dir_len > 1 && rec_dir[rec_dir_len - 1] == '/')
		rec_dir[--rec_dir_len] = 0;
	atomic_store(&rec_count, 0);
	atomic_store(&rec_on, true);
	pthread_mutex_unlock(&rec_lock);
	return 0;
}

void faultfs_record_stop(void);
void faultfs_record_stop(void)
{
	pthread_mutex_lock(&rec_lock);
	atomic_store(&rec_on, false);
	if (rec_fd >= 0)
		close(rec_fd);
	rec_fd = -1;
	pthread_mutex_unlock(&rec_lock);
}

unsigned long faultfs_record_count(void);
unsigned long faultfs_record_count(void)
{
	return atomic_load(&rec_count);
}

/* A recorded write: the real call (pos < 0: at the file position, or the
 * end under O_APPEND) under rec_lock, then its record. */
static ssize_t rec_write(int fd, const struct iovec *iov, int iovcnt, off_t pos)
{
	char rel[4096];
	ssize_t n;
	bool want;
	off_t at = pos;

	pthread_mutex_lock(&rec_lock);
	want = atomic_load(&rec_on) && rec_rel_fd(fd, rel, sizeof(rel));
	if (want && pos < 0) {
		int fl = fcntl(fd, F_GETFL);
		struct stat st;
		if (fl >= 0 && (fl & O_APPEND) && fstat(fd, &st) == 0)
			at = st.st_size;
		else
			at = lseek(fd, 0, SEEK_CUR);
	}
	if (pos >= 0)
		n = real_pwritev(fd, iov, iovcnt, pos);
	else
		n = real_writev(fd, iov, iovcnt);
	if (want && n > 0 && at >= 0)
		rec_emit('W', rel, NULL, (uint64_t)at, (uint64_t)n, iov, iovcnt);
	pthread_mutex_unlock(&rec_lock);
	return n;
}

static int rec_sync(int fd, int (*real)(int))
{
	char rel[4096];
	int rc;
	if (!atomic_load(&rec_on))
		return real(fd);
	pthread_mutex_lock(&rec_lock);
	rc = real(fd);
	if (rc == 0 && atomic_load(&rec_on) && rec_rel_fd(fd, rel, sizeof(rel)))
		rec_emit('S', rel, NULL, 0, 0, NULL, 0);
	pthread_mutex_unlock(&rec_lock);
	return rc;
}

int ftruncate(int fd, off_t len)
{
	char rel[4096];
	int rc;
	pthread_once(&once, init);
	if (!atomic_load(&rec_on))
		return real_ftruncate(fd, len);
	pthread_mutex_lock(&rec_lock);
	rc = real_ftruncate(fd, len);
	if (rc == 0 && atomic_load(&rec_on) && rec_rel_fd(fd, rel, sizeof(rel)))
		rec_emit('T', rel, NULL, (uint64_t)len, 0, NULL, 0);
	pthread_mutex_unlock(&rec_lock);
	return rc;
}

int ftruncate64(int fd, off64_t len)
{
	return ftruncate(fd, (off_t)len);
}

int rename(const char *from, const char *to)
{
	char r1[4096], r2[4096];
	int rc;
	pthread_once(&once, init);
	if (!atomic_load(&rec_on))
		return real_rename(from, to);
	pthread_mutex_lock(&rec_lock);
	rc = real_rename(from, to);
	if (rc == 0 && atomic_load(&rec_on) && rec_rel_path(from, r1, sizeof(r1)) &&
	    rec_rel_path(to, r2, sizeof(r2)))
		rec_emit('R', r1, r2, 0, 0, NULL, 0);
	pthread_mutex_unlock(&rec_lock);
	return rc;
}

int unlink(const char *path)
{
	char rel[4096];
	int rc;
	pthread_once(&once, init);
	if (!atomic_load(&rec_on))
		return real_unlink(path);
	pthread_mutex_lock(&rec_lock);
	rc = real_unlink(path);
	if (rc == 0 && atomic_load(&rec_on) && rec_rel_path(path, rel, sizeof(rel)))
		rec_emit('U', rel, NULL, 0, 0, NULL, 0);
	pthread_mutex_unlock(&rec_lock);
	return rc;
}

/* The result of a faulted call (f = fault_of's answer) of len bytes. */
static ssize_t faulted(int f, size_t len)
{
	if (f == FAULTFS_SKIP)
		return (ssize_t)len;
	return -1;
}

int fsync(int fd)
{
	int f = fault_of(&sync_class, fd, "fsync");
	if (f)
		return f == FAULTFS_SKIP ? 0 : -1;
	return rec_sync(fd, real_fsync);
}

int fdatasync(int fd)
{
	int f = fault_of(&sync_class, fd, "fdatasync");
	if (f)
		return f == FAULTFS_SKIP ? 0 : -1;
	return rec_sync(fd, real_fdatasync);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	int f = fault_of(&write_class, fd, "write");
	if (f == FAULTFS_SHORT)
		return real_write(fd, buf, len / 2);
	if (f)
		return faulted(f, len);
	if (atomic_load(&rec_on)) {
		struct iovec v = { (void *)buf, len };
		return rec_write(fd, &v, 1, -1);
	}
	return real_write(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	int f = fault_of(&write_class, fd, "pwrite");
	if (f == FAULTFS_SHORT)
		return real_pwrite(fd, buf, len / 2, off);
	if (f)
		return faulted(f, len);
	if (atomic_load(&rec_on)) {
		struct iovec v = { (void *)buf, len };
		return rec_write(fd, &v, 1, off);
	}
	return real_pwrite(fd, buf, len, off);
}

static size_t iov_total(const struct iovec *iov, int n)
{
	size_t t = 0;
	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	int f = fault_of(&write_class, fd, "writev");
	if (f == FAULTFS_SHORT)
		return n > 0 ? real_write(fd, iov[0].iov_base, iov[0].iov_len / 2) : 0;
	if (f)
		return faulted(f, iov_total(iov, n));
	if (atomic_load(&rec_on))
		return rec_write(fd, iov, n, -1);
	return real_writev(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	int f = fault_of(&write_class, fd, "pwritev");
	if (f == FAULTFS_SHORT)
		return n > 0 ? real_pwrite(fd, iov[0].iov_base, iov[0].iov_len / 2, off) : 0;
	if (f)
		return faulted(f, iov_total(iov, n));
	if (atomic_load(&rec_on))
		return rec_write(fd, iov, n, off);
	return real_pwritev(fd, iov, n, off);
}

/* glibc's large-file aliases: the same calls where off_t is 64 bits. */
ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	return pwrite(fd, buf, len, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int n, off64_t off)
{
	return pwritev(fd, iov, n, off);
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	long long shift, ns;
	int rc;

	pthread_once(&once, init);
	rc = real_clock_gettime(clk, ts);
	shift = atomic_load(&realtime_shift);
	if (rc == 0 && shift && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE)) {
		ns = (long long)ts->tv_sec * 1000000000 + ts->tv_nsec + shift;
		ts->tv_sec = (time_t)(ns / 1000000000);
		ts->tv_nsec = (long)(ns % 1000000000);
		if (ts->tv_nsec < 0) {
			ts->tv_sec--;
			ts->tv_nsec += 1000000000;
		}
	}
	return rc;
}

void faultfs_clock_shift(long long ns);
void faultfs_clock_shift(long long ns)
{
	pthread_once(&once, init);
	atomic_store(&realtime_shift, ns);
}
