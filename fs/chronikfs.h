/* chronikfs.h - the FUSE filesystem over a chronik engine.
 *
 * The tree (inode numbers are computed, see fs/inode.c):
 *
 *   MNT/<topic>/                 mkdir creates a topic, rmdir / rm -r deletes it
 *   MNT/<topic>/config.json      the topic's config; write a changed JSON object
 *   MNT/<topic>/<N>/data         raw view: each record's value and '\n'
 *   MNT/<topic>/<N>/records.jsonl  JSON Lines view, one object per record
 *   MNT/<topic>/<N>/info.json    offsets and sizes of the partition
 *
 * The user-visible contract of every file is in README.md ("Mounting").
 *
 * Lifetime: chronikfs_mount() mounts and returns; chronikfs_run() serves
 * requests with libfuse's multi-threaded loop until the filesystem is
 * unmounted (fusermount3 -u, umount) or chronikfs_stop() is called;
 * chronikfs_close() appends what open files still hold (a trailing line
 * without its newline), unmounts and frees. The engine stays open: the
 * caller closes it after chronikfs_close().
 *
 * Threads: chronikfs_stop() may be called from any thread other than the one
 * inside chronikfs_run(), any number of times, also after run returned. It
 * wakes the loop by sending SIGUSR1 to the running thread: chronikfs_run()
 * installs a handler for SIGUSR1 that does nothing.
 */
#ifndef CHRONIK_CHRONIKFS_H
#define CHRONIK_CHRONIKFS_H

#include <stdbool.h>

#include "engine.h"

struct chronikfs;

struct chronikfs_options {
	const char *mountpoint; /* an existing directory */
	const char *fsname; /* first field of /proc/mounts; NULL = "chronik" */
	const char *data_dir; /* statfs reports its filesystem; may be NULL */
	const char *fuse_options; /* extra comma-separated -o options, or NULL */
	bool auto_unmount; /* -o auto_unmount: a dead daemon leaves no mount */
	bool default_permissions; /* the kernel checks mode bits (default true) */
	bool debug; /* libfuse's request trace on stderr */
};

void chronikfs_options_init(struct chronikfs_options *o);
/* Whether libfuse accepts o's options, without mounting anything: 0 or
 * -EINVAL (libfuse logged which option). The kernel may still refuse a
 * mount option's value at mount time. */
int chronikfs_options_check(const struct chronikfs_options *o);

/* Mount the engine e at o->mountpoint. 0, -ENOENT / -ENOTDIR (mount point),
 * -EINVAL (bad FUSE option) or -EIO (mount refused; libfuse logged why).
 * *out owned by the caller, released by chronikfs_close. */
int chronikfs_mount(struct engine *e, const struct chronikfs_options *o, struct chronikfs **out);
/* Serve until unmounted or stopped. 0 or a negative errno from libfuse. */
int chronikfs_run(struct chronikfs *fs);
void chronikfs_stop(struct chronikfs *fs);
/* Append pending partial lines of open files, unmount, free. */
void chronikfs_close(struct chronikfs *fs);

#endif
