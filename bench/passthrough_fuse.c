/* passthrough_fuse.c - the baseline for reading through FUSE: a minimal
 * read-only filesystem that mirrors one directory, written against libfuse's
 * high-level API (fuse.h). bench/run cats a file through it and through
 * chronikd, so both pay the same kernel round trips.
 *
 *   chronik-bench-passthrough SRC MNT [-f] [-o OPTIONS]
 *
 * Every path under MNT is looked up under SRC (openat/fstatat relative to a
 * descriptor of SRC). Reads are pread() on the descriptor opened at open().
 * Its session settings are chronikd's (fs/mount.c, fs/ops_file.c), so that
 * the comparison is of the filesystems and not of their FUSE settings:
 * every file direct_io, max_write 1 MiB (which also lets the kernel send
 * 1 MiB reads), st_blksize 1 MiB (cat reads 1 MiB at a time); no writeback
 * cache, no async_dio. Extra -o options go to libfuse.
 */
#define FUSE_USE_VERSION 31

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_SIZE (1u << 20)

static int src_fd = -1;

/* "/a/b" -> "a/b", "/" -> "." */
static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

static int pt_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	int rc = fi ? fstat((int)fi->fh, st) : fstatat(src_fd, rel(path), st, AT_SYMLINK_NOFOLLOW);
	if (rc < 0)
		return -errno;
	st->st_mode &= ~(mode_t)0222;
	st->st_blksize = IO_SIZE;
	return 0;
}

static int pt_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(src_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		int err = -errno;
		close(fd);
		return err;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st = { 0 };
		st.st_ino = de->d_ino;
		st.st_mode = (mode_t)de->d_type << 12;
		if (fill(buf, de->d_name, &st, 0, 0))
			break;
	}
	closedir(d);
	return 0;
}

static int pt_open(const char *path, struct fuse_file_info *fi)
{
	int fd;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	fd = openat(src_fd, rel(path), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	fi->direct_io = 1;
	return 0;
}

static int pt_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	ssize_t n = pread((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int pt_release(const char *path, struct fuse_file_info *fi)
{
	close((int)fi->fh);
	return 0;
}

static void *pt_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->use_ino = 1;
	cfg->direct_io = 1;
	conn->max_write = IO_SIZE;
	conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ASYNC_DIO);
	return NULL;
}

static const struct fuse_operations pt_ops = {
	.init = pt_init,
	.getattr = pt_getattr,
	.readdir = pt_readdir,
	.open = pt_open,
	.read = pt_read,
	.release = pt_release,
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fputs("usage: chronik-bench-passthrough SRC MNT [fuse options]\n", stderr);
		return 2;
	}
	src_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src_fd < 0) {
		fprintf(stderr, "chronik-bench-passthrough: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	/* fuse_main sees: MNT [options...] */
	argv[1] = argv[0];
	return fuse_main(argc - 1, argv + 1, &pt_ops, NULL);
}
