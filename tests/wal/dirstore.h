/* dirstore.h - an object store for the wal tests' cold tier
 * (engine_remote_ops, remote.h): one file per object under a directory
 * (key '/' written as '_'), etags "size-N", get calls counted. Header
 * only: each test includes it once. */
#ifndef CHRONIK_TEST_DIRSTORE_H
#define CHRONIK_TEST_DIRSTORE_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remote.h"

struct dirstore {
	char root[4200];
	unsigned gets; /* calls of get */
};

static void obj_path(const struct dirstore *d, const char *key, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/", d->root);
	for (const char *k = key; *k && (size_t)n + 1 < len; k++)
		buf[n++] = *k == '/' ? '_' : *k;
	buf[n] = 0;
}

static int copy_fd(int from, off_t from_off, int to, off_t *to_off, uint64_t len)
{
	char buf[65536];

	while (len > 0) {
		size_t want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		ssize_t r = pread(from, buf, want, from_off);
		if (r <= 0)
			return -EIO;
		ssize_t w = to_off ? pwrite(to, buf, (size_t)r, *to_off) :
				     write(to, buf, (size_t)r);
		if (w != r)
			return -EIO;
		from_off += r;
		if (to_off)
			*to_off += r;
		len -= (uint64_t)r;
	}
	return 0;
}

static int ds_put(void *arg, const char *key, int fd, uint64_t size, char *etag, size_t etag_len)
{
	char path[4600];
	off_t at = 0;

	obj_path(arg, key, path, sizeof(path));
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return -errno;
	int rc = copy_fd(fd, 0, out, &at, size);
	if (close(out) < 0 && rc == 0)
		rc = -EIO;
	snprintf(etag, etag_len, "\"size-%" PRIu64 "\"", size);
	return rc;
}

static int ds_head(void *arg, const char *key, uint64_t *size, char *etag, size_t etag_len)
{
	char path[4600];
	struct stat st;

	obj_path(arg, key, path, sizeof(path));
	if (stat(path, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	snprintf(etag, etag_len, "\"size-%" PRIu64 "\"", *size);
	return 0;
}

static int ds_get(void *arg, const char *key, uint64_t off, uint64_t len, int fd)
{
	struct dirstore *d = arg;
	char path[4600];

	__atomic_add_fetch(&d->gets, 1, __ATOMIC_RELAXED);
	obj_path(d, key, path, sizeof(path));
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	int rc = copy_fd(in, (off_t)off, fd, NULL, len);
	close(in);
	return rc;
}

static int ds_del(void *arg, const char *key)
{
	char path[4600];

	obj_path(arg, key, path, sizeof(path));
	return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
}

static const struct engine_remote_ops dirstore_ops = {
	.put = ds_put,
	.head = ds_head,
	.get = ds_get,
	.del = ds_del,
	.list = NULL,
};

#endif
