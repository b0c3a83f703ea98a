/* frame.c - encode and decode WAL frames and WAL file headers.
 * The formats and the validity rules are documented in frame.h. */
#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "crc32c.h"
#include "byteorder.h"
#include "errors.h"

static const uint8_t frame_magic[4] = { 'C', 'H', 'K', 'F' };

_Static_assert(FRAME_V2_HEADER_SIZE == 64, "V2 header is 64 bytes");
_Static_assert(FRAME_V1_HEADER_SIZE == 56, "V1 header is 56 bytes");
_Static_assert(WAL_FILE_HEADER_SIZE == 32, "file header is 32 bytes");
_Static_assert(FRAME_V2_CRC_BATCH_PREFIX == BATCH_CRC_START, "batch prefix ends at the batch crc");

/* CRC of a frame: header bytes [0, 12) then [16, hdr_len), then the
 * version's tail: V2 the batch's first 21 bytes, V1 the payload. */
static uint32_t frame_crc(const uint8_t *frame, size_t hdr_len, const uint8_t *tail,
			  size_t tail_len)
{
	uint32_t crc = crc32c(0, frame, 12);
	crc = crc32c(crc, frame + 16, hdr_len - 16);
	return crc32c(crc, tail, tail_len);
}

static void put_common(uint8_t *h, uint8_t version, uint8_t flags, uint16_t hdr_len,
		       uint32_t frame_len)
{
	memcpy(h, frame_magic, 4);
	h[4] = version;
	h[5] = flags;
	put_le16(h + 6, hdr_len);
	put_le32(h + 8, frame_len);
}

void frame_v2_header_encode(uint8_t hdr[FRAME_V2_HEADER_SIZE], const struct frame_info *fi,
			    const uint8_t *batch, size_t len)
{
	put_common(hdr, 2, fi->flags, FRAME_V2_HEADER_SIZE, (uint32_t)(FRAME_V2_HEADER_SIZE + len));
	put_le32(hdr + 16, fi->topic_id);
	put_le32(hdr + 20, (uint32_t)fi->partition);
	put_le64(hdr + 24, (uint64_t)fi->base_offset);
	put_le64(hdr + 32, (uint64_t)fi->last_offset);
	put_le32(hdr + 40, fi->record_count);
	put_le32(hdr + 44, fi->raw_len);
	put_le64(hdr + 48, (uint64_t)fi->max_timestamp);
	put_le64(hdr + 56, fi->raw_pos);
	put_le32(hdr + 12, frame_crc(hdr, FRAME_V2_HEADER_SIZE, batch, FRAME_V2_CRC_BATCH_PREFIX));
}

int frame_v1_encode(const struct frame_info *fi, uint8_t **out, size_t *out_len)
{
	size_t klen = fi->key_len > 0 ? (size_t)fi->key_len : 0;
	size_t vlen = fi->value_len > 0 ? (size_t)fi->value_len : 0;
	size_t len = FRAME_V1_HEADER_SIZE + klen + vlen + fi->headers_len;
	uint8_t *f;

	if (len > FRAME_MAX_LEN || fi->key_len < -1 || fi->value_len < -1)
		return -EINVAL;
	f = malloc(len);
	if (!f)
		return -ENOMEM;
	put_common(f, 1, fi->flags, FRAME_V1_HEADER_SIZE, (uint32_t)len);
	put_le32(f + 16, fi->topic_id);
	put_le32(f + 20, (uint32_t)fi->partition);
	put_le64(f + 24, (uint64_t)fi->base_offset);
	put_le64(f + 32, (uint64_t)fi->timestamp);
	put_le32(f + 40, (uint32_t)fi->key_len);
	put_le32(f + 44, (uint32_t)fi->value_len);
	put_le32(f + 48, fi->header_count);
	put_le32(f + 52, 0);
	if (klen)
		memcpy(f + FRAME_V1_HEADER_SIZE, fi->key, klen);
	if (vlen)
		memcpy(f + FRAME_V1_HEADER_SIZE + klen, fi->value, vlen);
	if (fi->headers_len)
		memcpy(f + FRAME_V1_HEADER_SIZE + klen + vlen, fi->headers, fi->headers_len);
	put_le32(f + 12, frame_crc(f, FRAME_V1_HEADER_SIZE, f + FRAME_V1_HEADER_SIZE,
				   len - FRAME_V1_HEADER_SIZE));
	*out = f;
	*out_len = len;
	return 0;
}

/* V1 payload: key, value, then header_count headers filling it exactly. */
static int v1_payload_decode(const uint8_t *f, size_t len, struct frame_info *fi)
{
	const uint8_t *p = f + FRAME_V1_HEADER_SIZE, *end = f + len;
	int32_t klen = (int32_t)get_le32(f + 40), vlen = (int32_t)get_le32(f + 44);

	if (klen < -1 || vlen < -1)
		return -1;
	if (klen > end - p)
		return -1;
	fi->key = klen >= 0 ? p : NULL;
	fi->key_len = klen;
	p += klen > 0 ? klen : 0;
	if (vlen > end - p)
		return -1;
	fi->value = vlen >= 0 ? p : NULL;
	fi->value_len = vlen;
	p += vlen > 0 ? vlen : 0;
	fi->headers = p;
	for (uint32_t i = 0; i < fi->header_count; i++) {
		uint32_t hk;
		int32_t hv;
		if (end - p < 4)
			return -1;
		hk = get_le32(p);
		p += 4;
		if (hk > (size_t)(end - p))
			return -1;
		p += hk;
		if (end - p < 4)
			return -1;
		hv = (int32_t)get_le32(p);
		p += 4;
		if (hv < -1 || (hv > 0 && hv > end - p))
			return -1;
		p += hv > 0 ? hv : 0;
	}
	if (p != end)
		return -1;
	fi->headers_len = (size_t)(p - fi->headers);
	return 0;
}

static enum frame_status decode(const uint8_t *buf, size_t avail, struct frame_info *fi,
				bool batch_crc)
{
	uint16_t hdr_len;
	uint32_t len;

	memset(fi, 0, sizeof(*fi));
	if (avail < FRAME_COMMON_SIZE)
		return FRAME_SHORT;
	if (memcmp(buf, frame_magic, 4) != 0)
		return FRAME_INVALID;
	fi->version = buf[4];
	fi->flags = buf[5];
	if (fi->version < 1 || fi->version > 3)
		return FRAME_UNKNOWN_VERSION;
	hdr_len = get_le16(buf + 6);
	len = get_le32(buf + 8);
	fi->frame_len = len;
	fi->crc = get_le32(buf + 12);
	if (fi->version == 3) {
		if (hdr_len != FRAME_SYNC_SIZE || len != FRAME_SYNC_SIZE)
			return FRAME_INVALID;
		if (avail < FRAME_SYNC_SIZE)
			return FRAME_SHORT;
		if (frame_crc(buf, FRAME_SYNC_SIZE, buf, 0) != fi->crc)
			return FRAME_INVALID;
		fi->sync_pos = get_le64(buf + 16);
		fi->sync_salt = get_le32(buf + 24);
		return FRAME_VALID;
	}
	if (hdr_len != (fi->version == 2 ? FRAME_V2_HEADER_SIZE : FRAME_V1_HEADER_SIZE))
		return FRAME_INVALID;
	if (len > FRAME_MAX_LEN ||
	    len < (uint32_t)hdr_len + (fi->version == 2 ? BATCH_HEADER_SIZE : 0u))
		return FRAME_INVALID;
	if (avail < len)
		return FRAME_SHORT;
	fi->topic_id = get_le32(buf + 16);
	fi->partition = (int32_t)get_le32(buf + 20);
	fi->base_offset = (int64_t)get_le64(buf + 24);

	if (fi->version == 2) {
		struct batch_header bh;
		fi->last_offset = (int64_t)get_le64(buf + 32);
		fi->record_count = get_le32(buf + 40);
		fi->raw_len = get_le32(buf + 44);
		fi->max_timestamp = (int64_t)get_le64(buf + 48);
		fi->raw_pos = get_le64(buf + 56);
		fi->batch = buf + FRAME_V2_HEADER_SIZE;
		fi->batch_len = len - FRAME_V2_HEADER_SIZE;
		if (frame_crc(buf, FRAME_V2_HEADER_SIZE, fi->batch, FRAME_V2_CRC_BATCH_PREFIX) !=
		    fi->crc)
			return FRAME_INVALID;
		if (batch_header_parse(fi->batch, fi->batch_len, &bh) != 0)
			return FRAME_INVALID;
		if (bh.base_offset != fi->base_offset ||
		    fi->last_offset != fi->base_offset + bh.last_offset_delta ||
		    (uint32_t)bh.record_count != fi->record_count)
			return FRAME_INVALID;
		if (batch_crc && batch_crc_check(fi->batch, fi->batch_len) != 0)
			return FRAME_INVALID;
		return FRAME_VALID;
	}

	fi->last_offset = fi->base_offset;
	fi->record_count = 1;
	fi->timestamp = (int64_t)get_le64(buf + 32);
	fi->max_timestamp = fi->timestamp;
	fi->header_count = get_le32(buf + 48);
	if (frame_crc(buf, FRAME_V1_HEADER_SIZE, buf + FRAME_V1_HEADER_SIZE,
		      len - FRAME_V1_HEADER_SIZE) != fi->crc)
		return FRAME_INVALID;
	if (v1_payload_decode(buf, len, fi) != 0)
		return FRAME_INVALID;
	return FRAME_VALID;
}

enum frame_status frame_decode(const uint8_t *buf, size_t avail, struct frame_info *fi)
{
	return decode(buf, avail, fi, true);
}

enum frame_status frame_decode_no_batch_crc(const uint8_t *buf, size_t avail,
					    struct frame_info *fi)
{
	return decode(buf, avail, fi, false);
}

void frame_sync_encode(uint8_t f[FRAME_SYNC_SIZE], uint64_t pos, uint32_t salt)
{
	put_common(f, 3, 0, FRAME_SYNC_SIZE, FRAME_SYNC_SIZE);
	put_le64(f + 16, pos);
	put_le32(f + 24, salt);
	put_le32(f + 28, 0);
	put_le32(f + 12, frame_crc(f, FRAME_SYNC_SIZE, f, 0));
}

bool frame_sync_genuine(const uint8_t *buf, size_t avail, uint64_t pos, uint32_t salt)
{
	struct frame_info fi;

	if (avail < FRAME_SYNC_SIZE || buf[4] != 3)
		return false;
	return frame_decode(buf, FRAME_SYNC_SIZE, &fi) == FRAME_VALID && fi.sync_pos == pos &&
	       fi.sync_salt == salt;
}

void wal_file_header_encode(uint8_t hdr[WAL_FILE_HEADER_SIZE], uint64_t seq, uint32_t version,
			    uint32_t salt)
{
	memset(hdr, 0, WAL_FILE_HEADER_SIZE);
	memcpy(hdr, WAL_FILE_MAGIC, 8);
	put_le32(hdr + 8, version);
	put_le64(hdr + 16, seq);
	put_le32(hdr + 24, salt);
	put_le32(hdr + 28, crc32c(0, hdr, 28));
}

static int header_write(int fd, uint64_t seq, uint32_t version, uint32_t salt)
{
	uint8_t hdr[WAL_FILE_HEADER_SIZE];

	wal_file_header_encode(hdr, seq, version, salt);
	errno = 0;
	if (ftruncate(fd, 0) < 0 || pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    fsync(fd) < 0)
		return errno ? -errno : -EIO;
	return 0;
}

int wal_file_header_write(int fd, uint64_t seq)
{
	return header_write(fd, seq, WAL_FILE_VERSION_UNSALTED, 0);
}

int wal_file_header_write_salted(int fd, uint64_t seq, uint32_t *salt)
{
	uint32_t s;

	/* The salt only has to be unknown to whoever writes record values, so
	 * a short read falls back on a mix of time and address rather than
	 * failing the file's creation. */
	if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = (uint32_t)ts.tv_nsec ^ (uint32_t)((uintptr_t)&ts >> 4) ^ (uint32_t)seq;
	}
	*salt = s;
	return header_write(fd, seq, WAL_FILE_VERSION, s);
}

int wal_file_header_parse(const uint8_t *hdr, size_t avail, uint64_t *seq, uint32_t *version,
			  uint32_t *salt)
{
	uint32_t v;

	if (avail < WAL_FILE_HEADER_SIZE || memcmp(hdr, WAL_FILE_MAGIC, 8) != 0 ||
	    get_le32(hdr + 28) != crc32c(0, hdr, 28))
		return CHRONIK_ECORRUPT;
	v = get_le32(hdr + 8);
	if (v != WAL_FILE_VERSION && v != WAL_FILE_VERSION_UNSALTED)
		return CHRONIK_EVERSION;
	*seq = get_le64(hdr + 16);
	*version = v;
	*salt = v == WAL_FILE_VERSION ? get_le32(hdr + 24) : 0;
	return 0;
}

int wal_file_header_decode(const uint8_t *hdr, size_t avail, uint64_t *seq)
{
	uint32_t version, salt;
	return wal_file_header_parse(hdr, avail, seq, &version, &salt);
}

/* What one read of frame_reader takes at least, once the file has shown
 * it is large: most frames then cost no read of their own. The first read
 * takes FRAME_READER_FIRST, and each read that fills the whole buffer
 * (the file goes on) doubles it up to FRAME_READER_CHUNK, so a small file
 * (a metadata log, a WAL file just rotated, every file recovery opens)
 * costs a small buffer, not a fresh 256 KiB mapping of the allocator. */
#define FRAME_READER_CHUNK ((size_t)256 << 10)
#define FRAME_READER_FIRST ((size_t)16 << 10)

void frame_reader_init(struct frame_reader *r, int fd)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
}

void frame_reader_fini(struct frame_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = r->len = 0;
}

ssize_t frame_reader_pread(int fd, void *buf, size_t len, uint64_t pos)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, (off_t)(pos + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Make buf hold [pos, pos + need) if the file has it; 0 or -errno. */
static int reader_fill(struct frame_reader *r, uint64_t pos, size_t need)
{
	size_t chunk, want;
	ssize_t n;

	if (pos >= r->start && pos + need <= r->start + r->len)
		return 0;
	if (r->cap == 0)
		chunk = FRAME_READER_FIRST;
	else if (r->len == r->cap)
		chunk = r->cap < FRAME_READER_CHUNK / 2 ? r->cap * 2 : FRAME_READER_CHUNK;
	else
		chunk = r->cap < FRAME_READER_CHUNK ? r->cap : FRAME_READER_CHUNK;
	want = need > chunk ? need : chunk;
	if (r->cap < want) {
		uint8_t *b = realloc(r->buf, want);
		if (!b)
			return -ENOMEM;
		r->buf = b;
		r->cap = want;
	}
	r->start = pos;
	r->len = 0;
	n = frame_reader_pread(r->fd, r->buf, want, pos);
	if (n < 0)
		return (int)n;
	r->len = (size_t)n;
	r->eof = (size_t)n < want;
	return 0;
}

int frame_reader_decode(struct frame_reader *r, uint64_t pos, struct frame_info *fi)
{
	const uint8_t *f;
	size_t avail;
	int rc;

	rc = reader_fill(r, pos, FRAME_COMMON_SIZE);
	if (rc)
		return rc;
	avail = pos >= r->start && pos < r->start + r->len ? (size_t)(r->start + r->len - pos) : 0;
	if (avail >= FRAME_COMMON_SIZE) {
		uint32_t len = get_le32(r->buf + (pos - r->start) + 8);
		if (len > avail && len <= FRAME_MAX_LEN && !r->eof) {
			rc = reader_fill(r, pos, len);
			if (rc)
				return rc;
			avail = pos >= r->start && pos < r->start + r->len ?
					(size_t)(r->start + r->len - pos) :
					0;
		}
	}
	f = avail ? r->buf + (pos - r->start) : (const uint8_t *)"";
	return (int)frame_decode(f, avail, fi);
}

int wal_file_walk(const char *path, frame_walk_fn cb, void *arg)
{
	struct frame_reader fr;
	struct stat st;
	uint8_t hdr[WAL_FILE_HEADER_SIZE];
	uint64_t seq, pos;
	uint32_t version, salt;
	ssize_t n;
	int fd, rc = 0;

	/* pread, not a mapping: `chronik verify` and a read-only open may walk
	 * a file that a live writer cuts meanwhile (frame_reader). */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	n = frame_reader_pread(fd, hdr, sizeof(hdr), 0);
	if (n < 0) {
		rc = (int)n;
		goto out_close;
	}
	rc = wal_file_header_parse(hdr, (size_t)n, &seq, &version, &salt);
	if (rc)
		goto out_close;
	frame_reader_init(&fr, fd);
	for (pos = WAL_FILE_HEADER_SIZE; pos < (uint64_t)st.st_size;) {
		struct frame_info fi;
		int d = frame_reader_decode(&fr, pos, &fi);
		if (d < 0) {
			rc = d;
			break;
		}
		enum frame_status fs = (enum frame_status)d;
		if (fs == FRAME_VALID && fi.version == 3) {
			/* A sync point: no record, but it must be genuine. */
			if (version == WAL_FILE_VERSION && fi.sync_pos == pos &&
			    fi.sync_salt == salt) {
				pos += FRAME_SYNC_SIZE;
				continue;
			}
			fs = FRAME_INVALID;
		}
		int stop = cb(arg, pos, fs, fs == FRAME_VALID ? &fi : NULL);
		if (fs != FRAME_VALID) {
			rc = fs == FRAME_UNKNOWN_VERSION ? CHRONIK_EVERSION : CHRONIK_ECORRUPT;
			break;
		}
		if (stop)
			break;
		pos += fi.frame_len;
	}
	frame_reader_fini(&fr);
out_close:
	close(fd);
	return rc;
}
