/* fuzz_util.c - the helpers of fuzz.h. */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "byteorder.h"
#include "crc32c.h"
#include "frame.h"
#include "log.h"
#include "segment.h"

void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
	abort();
}

static void quiet_sink(void *arg, enum log_level level, const char *module, const char *msg)
{
	(void)arg;
	(void)level;
	(void)module;
	(void)msg;
}

void fuzz_quiet(void)
{
	log_set_sink(quiet_sink, NULL);
	log_set_level(LOG_LVL_ERROR);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level == 0)
		return 0;
	return remove(path);
}

void fuzz_rm_below(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *workdir;

static void workdir_remove(void)
{
	if (!workdir)
		return;
	fuzz_rm_below(workdir);
	rmdir(workdir);
	free(workdir);
	workdir = NULL;
}

const char *fuzz_workdir(void)
{
	if (workdir)
		return workdir;
	const char *base = getenv("CHRONIK_FUZZ_DIR");
	if (!base || !*base)
		base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&workdir, "%s/chronik-fuzz-XXXXXX", base) < 0 || !mkdtemp(workdir)) {
		fprintf(stderr, "cannot create a directory under %s: %s\n", base, strerror(errno));
		abort();
	}
	atexit(workdir_remove);
	return workdir;
}

int fuzz_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t k = write(fd, p, len);
		if (k < 0) {
			int err = -errno;
			close(fd);
			return err;
		}
		p += k;
		len -= (size_t)k;
	}
	return close(fd) < 0 ? -errno : 0;
}

void fuzz_fix_batch_crc(uint8_t *buf, size_t len)
{
	if (len < BATCH_HEADER_SIZE)
		return;
	put_be32(buf + 17, crc32c(0, buf + BATCH_CRC_START, len - BATCH_CRC_START));
}

void fuzz_fix_wal_crcs(uint8_t *buf, size_t len, size_t from)
{
	if (from >= WAL_FILE_HEADER_SIZE && len >= WAL_FILE_HEADER_SIZE)
		put_le32(buf + 28, crc32c(0, buf, 28));
	size_t p = from;
	while (p + FRAME_COMMON_SIZE <= len && memcmp(buf + p, "CHKF", 4) == 0) {
		uint8_t *f = buf + p;
		uint8_t version = f[4];
		uint32_t flen = get_le32(f + 8);
		if (flen < FRAME_COMMON_SIZE || flen > len - p)
			return;
		if (version == 2 && flen >= FRAME_V2_HEADER_SIZE + BATCH_HEADER_SIZE) {
			fuzz_fix_batch_crc(f + FRAME_V2_HEADER_SIZE, flen - FRAME_V2_HEADER_SIZE);
			uint32_t c = crc32c(0, f, 12);
			c = crc32c(c, f + 16, FRAME_V2_HEADER_SIZE - 16);
			c = crc32c(c, f + FRAME_V2_HEADER_SIZE, FRAME_V2_CRC_BATCH_PREFIX);
			put_le32(f + 12, c);
		} else if (version == 1 && flen >= FRAME_V1_HEADER_SIZE) {
			uint32_t c = crc32c(0, f, 12);
			c = crc32c(c, f + 16, flen - 16);
			put_le32(f + 12, c);
		}
		p += flen;
	}
}

void fuzz_fix_segment_crcs(uint8_t *buf, size_t len)
{
	if (len < SEGMENT_HEADER_SIZE + SEGMENT_INDEX_ENTRY_SIZE + SEGMENT_TRAILER_V2_SIZE)
		return;
	put_le32(buf + 60, crc32c(0, buf, 60));
	bool v1 = get_le32(buf + 8) == 1;
	size_t tsize = v1 ? SEGMENT_TRAILER_SIZE : SEGMENT_TRAILER_V2_SIZE;
	uint8_t *t = buf + len - tsize;
	uint64_t data_end = get_le64(t + 8);
	uint32_t entries = get_le32(t + 16);
	uint64_t keys = v1 ? 0 : get_le32(t + 60);
	uint64_t tail = tsize + keys * SEGMENT_KEY_ENTRY_SIZE;
	if (data_end < SEGMENT_HEADER_SIZE || entries == 0 || tail > len ||
	    data_end > len - tail ||
	    (len - tail - data_end) / SEGMENT_INDEX_ENTRY_SIZE != entries ||
	    (len - tail - data_end) % SEGMENT_INDEX_ENTRY_SIZE != 0)
		return;
	for (uint64_t p = SEGMENT_HEADER_SIZE; p + BATCH_HEADER_SIZE <= data_end;) {
		uint64_t blen = (uint64_t)get_be32(buf + p + 8) + 12;
		if (blen > data_end - p)
			break;
		fuzz_fix_batch_crc(buf + p, (size_t)blen);
		p += blen;
	}
	uint8_t *idx = buf + data_end;
	for (uint32_t i = 0; i < entries; i++) {
		uint8_t *e = idx + (size_t)i * SEGMENT_INDEX_ENTRY_SIZE;
		uint64_t from = get_le32(e + 24);
		uint64_t to = i + 1 < entries ? get_le32(e + SEGMENT_INDEX_ENTRY_SIZE + 24) : data_end;
		if (from < to && to <= data_end)
			put_le32(e + 28, crc32c(0, buf + from, (size_t)(to - from)));
	}
	put_le32(t + 56, crc32c(0, idx, (size_t)entries * SEGMENT_INDEX_ENTRY_SIZE));
	if (v1) {
		put_le32(t + 60, crc32c(0, t, 60));
		return;
	}
	uint8_t *kt = idx + (size_t)entries * SEGMENT_INDEX_ENTRY_SIZE;
	put_le64(t + 64, (uint64_t)(kt - buf));
	put_le32(t + 72, keys ? crc32c(0, kt, (size_t)keys * SEGMENT_KEY_ENTRY_SIZE) : 0);
	put_le32(t + 76, crc32c(0, t, 76));
}
