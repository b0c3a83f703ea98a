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
#include <fnmatch.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
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
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	int f = fault_of(&sync_class, fd, "fdatasync");
	if (f)
		return f == FAULTFS_SKIP ? 0 : -1;
	return real_fdatasync(fd);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	int f = fault_of(&write_class, fd, "write");
	if (f == FAULTFS_SHORT)
		return real_write(fd, buf, len / 2);
	if (f)
		return faulted(f, len);
	return real_write(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	int f = fault_of(&write_class, fd, "pwrite");
	if (f == FAULTFS_SHORT)
		return real_pwrite(fd, buf, len / 2, off);
	if (f)
		return faulted(f, len);
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
	return real_writev(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	int f = fault_of(&write_class, fd, "pwritev");
	if (f == FAULTFS_SHORT)
		return n > 0 ? real_pwrite(fd, iov[0].iov_base, iov[0].iov_len / 2, off) : 0;
	if (f)
		return faulted(f, iov_total(iov, n));
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
