/* syncmark.c - the failed-sync marker: where the WAL was last known durable
 * when the engine entered its FAILED state (commit.c, "FAILED WRITES AND
 * SYNCS", rule 4).
 *
 * Why: after a failed fdatasync the kernel may have dropped the dirty pages
 * it could not write and marked them clean. Reopened in the same boot, the
 * recovery reads those pages from the page cache, they look valid, and its
 * own fdatasync succeeds (the error was reported once already): it would
 * vouch for bytes that never reached the disk. So the engine writes down,
 * when it enters FAILED, the last point that a successful sync covered,
 * and the next writable open cuts the WAL there before it reads it.
 *
 * FILE DATA/wal/failed.syncpoint, 36 bytes, little-endian:
 *   offset  size  field
 *   0       8     magic "CHRONIKF"
 *   8       4     version, 1
 *   12      4     reserved, 0
 *   16      8     seq: the WAL file that was active at the last good sync
 *   24      8     pos: the end of the bytes of that file the sync covered
 *                 (a frame boundary, >= the 32-byte file header)
 *   32      4     CRC32C of bytes [0, 32)
 * It is written as failed.syncpoint.tmp, fdatasynced, renamed over
 * failed.syncpoint and the directory fsynced, so it is either absent or
 * whole; a marker that is not valid (wrong size, magic, version or CRC) is
 * damage and fails a writable open with CHRONIK_ECORRUPT naming the file.
 *
 * A read-only open leaves the marker alone and reads the WAL only up to
 * it (file seq up to pos, no later file), so that it shows what a
 * writable open will keep; it then refreshes no more frames.
 *
 * APPLYING IT (wal_recover, writable opens only): every WAL file with a
 * sequence number above seq is removed (it was created after the last good
 * sync), file seq is cut to pos when it is longer (ftruncate + fdatasync),
 * the directory is fsynced, the cut is logged (file, position, bytes
 * dropped), and only then is the marker removed (unlink + directory fsync).
 * A crash in between applies the same cut again. Then recovery proceeds as
 * usual on what is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byteorder.h"
#include "crc32c.h"
#include "engine-private.h"
#include "log.h"

#define SYNCMARK_NAME "failed.syncpoint"
#define SYNCMARK_MAGIC "CHRONIKF"
#define SYNCMARK_VERSION 1
#define SYNCMARK_SIZE 36
_Static_assert(sizeof(SYNCMARK_MAGIC) - 1 == 8, "the marker's magic is 8 bytes");

static void mark_path(const struct engine *e, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "%s/wal/" SYNCMARK_NAME "%s", e->dir, suffix);
}

int wal_syncmark_write(struct engine *e, uint64_t seq, uint64_t pos)
{
	uint8_t b[SYNCMARK_SIZE];
	char tmp[4200], path[4200];
	int fd, rc = 0;

	memcpy(b, SYNCMARK_MAGIC, 8);
	put_le32(b + 8, SYNCMARK_VERSION);
	put_le32(b + 12, 0);
	put_le64(b + 16, seq);
	put_le64(b + 24, pos);
	put_le32(b + 32, crc32c(0, b, 32));
	mark_path(e, ".tmp", tmp, sizeof(tmp));
	mark_path(e, "", path, sizeof(path));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (pwrite(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b))
		rc = errno ? -errno : -ENOSPC;
	else if (fdatasync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(e->dir_fd);
	if (rc)
		(void)unlink(tmp);
	return rc;
}

int wal_syncmark_read(struct engine *e, bool *found, uint64_t *seq, uint64_t *pos)
{
	uint8_t b[SYNCMARK_SIZE + 1];
	char path[4200];
	ssize_t n;
	int fd;

	*found = false;
	mark_path(e, "", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = pread(fd, b, sizeof(b), 0);
	close(fd);
	if (n < 0)
		return -errno;
	if (n != SYNCMARK_SIZE || memcmp(b, SYNCMARK_MAGIC, 8) != 0 ||
	    get_le32(b + 8) != SYNCMARK_VERSION || get_le32(b + 32) != crc32c(0, b, 32) ||
	    get_le64(b + 24) < WAL_FILE_HEADER_SIZE) {
		log_msg(LOG_LVL_ERROR, "recover", "%s is not a valid failed-sync marker", path);
		return CHRONIK_ECORRUPT;
	}
	*seq = get_le64(b + 16);
	*pos = get_le64(b + 24);
	*found = true;
	return 0;
}

int wal_syncmark_remove(struct engine *e)
{
	char path[4200];
	mark_path(e, "", path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return fsync_dir(e->dir_fd);
}
