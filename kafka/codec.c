/* codec.c - bounded reader and growable writer for Kafka's wire encodings
 * (see codec.h for every encoding, byte by byte). */
#include "codec.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void kafka_reader_init(struct kafka_reader *r, const void *buf, size_t len)
{
	r->p = buf;
	r->end = r->p + len;
	r->failed = false;
}

void kafka_reader_fail(struct kafka_reader *r)
{
	r->failed = true;
	r->p = r->end;
}

/* n bytes available, else fail. */
static bool need(struct kafka_reader *r, size_t n)
{
	if (r->failed)
		return false;
	if ((size_t)(r->end - r->p) < n) {
		kafka_reader_fail(r);
		return false;
	}
	return true;
}

static uint64_t get_be(struct kafka_reader *r, size_t n)
{
	uint64_t v = 0;
	if (!need(r, n))
		return 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | r->p[i];
	r->p += n;
	return v;
}

int8_t kafka_read_i8(struct kafka_reader *r)
{
	return (int8_t)(uint8_t)get_be(r, 1);
}

int16_t kafka_read_i16(struct kafka_reader *r)
{
	return (int16_t)(uint16_t)get_be(r, 2);
}

int32_t kafka_read_i32(struct kafka_reader *r)
{
	return (int32_t)(uint32_t)get_be(r, 4);
}

int64_t kafka_read_i64(struct kafka_reader *r)
{
	return (int64_t)get_be(r, 8);
}

bool kafka_read_bool(struct kafka_reader *r)
{
	return get_be(r, 1) != 0;
}

uint64_t kafka_read_uvarint(struct kafka_reader *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (!need(r, 1))
			return 0;
		uint8_t b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	kafka_reader_fail(r); /* more than 10 bytes */
	return 0;
}

int64_t kafka_read_varint(struct kafka_reader *r)
{
	uint64_t u = kafka_read_uvarint(r);
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* A length: compact = uvarint N+1 (0 = null), else int16 or int32. */
static int64_t read_len(struct kafka_reader *r, bool compact, bool wide)
{
	if (compact) {
		uint64_t u = kafka_read_uvarint(r);
		if (u > INT32_MAX)
			kafka_reader_fail(r);
		return r->failed ? 0 : (int64_t)u - 1;
	}
	return wide ? kafka_read_i32(r) : kafka_read_i16(r);
}

static struct kafka_str read_blob(struct kafka_reader *r, bool compact, bool nullable, bool wide)
{
	struct kafka_str s = { "", 0 };
	int64_t n = read_len(r, compact, wide);
	if (r->failed)
		return s;
	if (n < 0) {
		if (n != -1 || !nullable)
			kafka_reader_fail(r);
		else
			s.len = -1, s.ptr = NULL;
		return s;
	}
	if (!need(r, (size_t)n))
		return s;
	s.ptr = (const char *)r->p;
	s.len = (int32_t)n;
	r->p += n;
	return s;
}

struct kafka_str kafka_read_string(struct kafka_reader *r, bool compact, bool nullable)
{
	return read_blob(r, compact, nullable, false);
}

struct kafka_str kafka_read_bytes(struct kafka_reader *r, bool compact, bool nullable)
{
	return read_blob(r, compact, nullable, true);
}

int32_t kafka_read_array(struct kafka_reader *r, bool compact, bool nullable, size_t min_elem_size)
{
	int64_t n = read_len(r, compact, true);
	if (r->failed)
		return 0;
	if (n < 0) {
		if (n != -1 || !nullable) {
			kafka_reader_fail(r);
			return 0;
		}
		return -1;
	}
	if (min_elem_size == 0)
		min_elem_size = 1;
	if ((uint64_t)n > kafka_reader_left(r) / min_elem_size) {
		kafka_reader_fail(r);
		return 0;
	}
	return (int32_t)n;
}

void kafka_read_skip(struct kafka_reader *r, size_t n)
{
	if (need(r, n))
		r->p += n;
}

void kafka_read_tags(struct kafka_reader *r)
{
	uint64_t count = kafka_read_uvarint(r);
	if (count > kafka_reader_left(r) / 2) { /* each field: >= 2 bytes */
		kafka_reader_fail(r);
		return;
	}
	for (uint64_t i = 0; i < count && !r->failed; i++) {
		(void)kafka_read_uvarint(r); /* tag */
		uint64_t size = kafka_read_uvarint(r);
		if (size > kafka_reader_left(r)) {
			kafka_reader_fail(r);
			return;
		}
		kafka_read_skip(r, (size_t)size);
	}
}

char *kafka_str_dup(struct kafka_str s)
{
	if (s.len < 0 || memchr(s.ptr, 0, (size_t)s.len))
		return NULL;
	char *c = malloc((size_t)s.len + 1);
	if (!c)
		return NULL;
	memcpy(c, s.ptr, (size_t)s.len);
	c[s.len] = 0;
	return c;
}

bool kafka_str_eq(struct kafka_str s, const char *c)
{
	size_t n = strlen(c);
	return s.len >= 0 && (size_t)s.len == n && memcmp(s.ptr, c, n) == 0;
}

/* ---- writer ---------------------------------------------------------- */

void kafka_writer_init(struct kafka_writer *w, size_t limit)
{
	memset(w, 0, sizeof(*w));
	w->limit = limit;
}

void kafka_writer_release_files(struct kafka_writer *w)
{
	for (size_t i = 0; i < w->nfds; i++)
		close(w->fds[i]);
	w->nfds = 0;
	w->npieces = 0;
	w->file_bytes = 0;
}

void kafka_writer_fini(struct kafka_writer *w)
{
	kafka_writer_release_files(w);
	free(w->buf);
	free(w->pieces);
	free(w->fds);
	w->buf = NULL;
	w->pieces = NULL;
	w->fds = NULL;
	w->len = w->cap = w->pieces_cap = w->fds_cap = 0;
}

void kafka_writer_reset(struct kafka_writer *w)
{
	kafka_writer_release_files(w);
	w->len = 0;
	w->failed = false;
}

void kafka_write_file(struct kafka_writer *w, int fd, uint64_t off, size_t len)
{
	if (w->failed || len == 0)
		return;
	if (w->npieces == w->pieces_cap) {
		size_t c = w->pieces_cap ? 2 * w->pieces_cap : 16;
		struct kafka_file_piece *v = realloc(w->pieces, c * sizeof(*v));
		if (!v) {
			w->failed = true;
			return;
		}
		w->pieces = v;
		w->pieces_cap = c;
	}
	w->pieces[w->npieces++] = (struct kafka_file_piece){ w->len, fd, off, len };
	w->file_bytes += len;
}

void kafka_writer_own_fd(struct kafka_writer *w, int fd)
{
	if (w->nfds == w->fds_cap) {
		size_t c = w->fds_cap ? 2 * w->fds_cap : 16;
		int *v = realloc(w->fds, c * sizeof(*v));
		if (!v) {
			close(fd);
			w->failed = true;
			return;
		}
		w->fds = v;
		w->fds_cap = c;
	}
	w->fds[w->nfds++] = fd;
}

void kafka_writer_reserve(struct kafka_writer *w, size_t n)
{
	if (w->failed || n > SIZE_MAX / 2 - w->len)
		return;
	size_t want = w->len + n;
	if (w->limit && want > w->limit)
		want = w->limit;
	if (want <= w->cap)
		return;
	uint8_t *b = realloc(w->buf, want);
	if (!b)
		return;
	w->buf = b;
	w->cap = want;
}

static uint8_t *grow(struct kafka_writer *w, size_t n)
{
	if (w->failed)
		return NULL;
	if (n > SIZE_MAX / 2 - w->len || (w->limit && w->len + n > w->limit)) {
		w->failed = true;
		return NULL;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *b = realloc(w->buf, cap);
		if (!b) {
			w->failed = true;
			return NULL;
		}
		w->buf = b;
		w->cap = cap;
	}
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

void kafka_write_raw(struct kafka_writer *w, const void *p, size_t n)
{
	uint8_t *d = grow(w, n);
	if (d && n)
		memcpy(d, p, n);
}

static void put_be(struct kafka_writer *w, uint64_t v, size_t n)
{
	uint8_t *d = grow(w, n);
	if (!d)
		return;
	for (size_t i = 0; i < n; i++)
		d[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

void kafka_write_i8(struct kafka_writer *w, int8_t v)
{
	put_be(w, (uint8_t)v, 1);
}

void kafka_write_i16(struct kafka_writer *w, int16_t v)
{
	put_be(w, (uint16_t)v, 2);
}

void kafka_write_i32(struct kafka_writer *w, int32_t v)
{
	put_be(w, (uint32_t)v, 4);
}

void kafka_write_i64(struct kafka_writer *w, int64_t v)
{
	put_be(w, (uint64_t)v, 8);
}

void kafka_write_bool(struct kafka_writer *w, bool v)
{
	put_be(w, v ? 1 : 0, 1);
}

void kafka_write_uvarint(struct kafka_writer *w, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	kafka_write_raw(w, tmp, n);
}

void kafka_write_varint(struct kafka_writer *w, int64_t v)
{
	kafka_write_uvarint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void write_len(struct kafka_writer *w, bool compact, bool wide, int64_t n)
{
	if (compact)
		kafka_write_uvarint(w, (uint64_t)(n + 1));
	else if (wide)
		kafka_write_i32(w, (int32_t)n);
	else
		kafka_write_i16(w, (int16_t)n);
}

void kafka_write_str(struct kafka_writer *w, bool compact, struct kafka_str s)
{
	if (!s.ptr || s.len < 0) {
		write_len(w, compact, false, -1);
		return;
	}
	if (s.len > INT16_MAX) {
		w->failed = true;
		return;
	}
	write_len(w, compact, false, s.len);
	kafka_write_raw(w, s.ptr, (size_t)s.len);
}

void kafka_write_string(struct kafka_writer *w, bool compact, const char *s)
{
	struct kafka_str k = { s, s ? (int32_t)strlen(s) : -1 };
	kafka_write_str(w, compact, k);
}

void kafka_write_bytes(struct kafka_writer *w, bool compact, const void *p, int32_t len)
{
	if (!p || len < 0) {
		write_len(w, compact, true, -1);
		return;
	}
	write_len(w, compact, true, len);
	kafka_write_raw(w, p, (size_t)len);
}

void kafka_write_bytes_len(struct kafka_writer *w, bool compact, int32_t len)
{
	write_len(w, compact, true, len < 0 ? 0 : len);
}

void kafka_write_array(struct kafka_writer *w, bool compact, int32_t count)
{
	write_len(w, compact, true, count < 0 ? -1 : count);
}

void kafka_write_tags(struct kafka_writer *w)
{
	kafka_write_uvarint(w, 0);
}

size_t kafka_write_i32_later(struct kafka_writer *w)
{
	size_t pos = w->len;
	kafka_write_i32(w, 0);
	return pos;
}

void kafka_write_i32_at(struct kafka_writer *w, size_t pos, int32_t v)
{
	if (w->failed || pos + 4 > w->len)
		return;
	kafka_put_be32(w->buf + pos, (uint32_t)v);
}
