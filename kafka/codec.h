/* codec.h - the Kafka wire primitives: a bounded reader and a growable writer.
 *
 * Encodings (all integers big-endian, as Kafka's protocol guide and the
 * message JSON files in clients/src/main/resources/common/message/):
 *
 *   int8/int16/int32/int64   fixed width, two's complement
 *   varint / varlong         zig-zag, 7 bits per byte, low group first
 *   uvarint                  unsigned, 7 bits per byte (compact lengths)
 *   string                   int16 length N >= 0, then N bytes
 *   nullable string          int16 length, -1 = null
 *   bytes / nullable bytes   int32 length (-1 = null), then the bytes
 *   array                    int32 count (-1 = null), then the elements
 *   compact string           uvarint N+1 (0 = null), then N bytes
 *   compact bytes            uvarint N+1 (0 = null), then N bytes
 *   compact array            uvarint N+1 (0 = null), then the elements
 *   tagged fields            uvarint count, then per field: uvarint tag,
 *                            uvarint size, size bytes (flexible versions only)
 *
 * The reader never reads past its end. The first failure (truncation, a
 * negative length where none is allowed, an element count that cannot fit
 * in the bytes left) sets a sticky error flag; from then on every read
 * returns zero/empty values, so a handler reads a whole request and checks
 * kafka_reader_failed() once. A failed reader means "malformed request":
 * the listener closes the connection.
 *
 * The writer grows its buffer as needed; an allocation failure or a size
 * beyond its limit sets its own sticky flag and the response is dropped.
 */
#ifndef CHRONIK_KAFKA_CODEC_H
#define CHRONIK_KAFKA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A borrowed byte range inside the request buffer; len -1 = null. */
struct kafka_str {
	const char *ptr;
	int32_t len;
};

struct kafka_reader {
	const uint8_t *p, *end;
	bool failed;
};

void kafka_reader_init(struct kafka_reader *r, const void *buf, size_t len);
static inline bool kafka_reader_failed(const struct kafka_reader *r)
{
	return r->failed;
}
static inline size_t kafka_reader_left(const struct kafka_reader *r)
{
	return (size_t)(r->end - r->p);
}
/* Set the error flag (a handler found a field it cannot accept). */
void kafka_reader_fail(struct kafka_reader *r);

int8_t kafka_read_i8(struct kafka_reader *r);
int16_t kafka_read_i16(struct kafka_reader *r);
int32_t kafka_read_i32(struct kafka_reader *r);
int64_t kafka_read_i64(struct kafka_reader *r);
bool kafka_read_bool(struct kafka_reader *r);
uint64_t kafka_read_uvarint(struct kafka_reader *r);
int64_t kafka_read_varint(struct kafka_reader *r);

/* Strings and bytes borrow from the reader's buffer. With compact set they
 * use the compact (flexible-version) form. A null where nullable is false
 * fails the reader. */
struct kafka_str kafka_read_string(struct kafka_reader *r, bool compact, bool nullable);
struct kafka_str kafka_read_bytes(struct kafka_reader *r, bool compact, bool nullable);

/* An array count: -1 = null (only when nullable), else 0..N where
 * N * min_elem_size <= bytes left (else the reader fails). */
int32_t kafka_read_array(struct kafka_reader *r, bool compact, bool nullable, size_t min_elem_size);
/* Skip a tagged-fields section (flexible versions). */
void kafka_read_tags(struct kafka_reader *r);
/* Skip n bytes. */
void kafka_read_skip(struct kafka_reader *r, size_t n);

/* Copy s into a NUL-terminated malloc'd string; NULL for null or on ENOMEM.
 * Strings holding a NUL byte are refused (NULL). */
char *kafka_str_dup(struct kafka_str s);
/* s equals the C string c. */
bool kafka_str_eq(struct kafka_str s, const char *c);

/* File pieces. A response may carry ranges of files beside its buffer: a
 * piece is [off, off + len) of fd, sent where the buffer's byte at stands
 * (before buf[at]), so the response is buf[0, at1) piece1 buf[at1, at2)
 * piece2 ... buf[atN, len). Pieces are in buffer order. The descriptors the
 * writer owns (kafka_writer_own_fd) are closed by _reset and _fini, once
 * the response is sent. file_bytes is the sum of the pieces' lengths: the
 * response's size is len + file_bytes. */
struct kafka_file_piece {
	size_t at;
	int fd;
	uint64_t off;
	size_t len;
};

struct kafka_writer {
	uint8_t *buf;
	size_t len, cap;
	size_t limit; /* maximum len; 0 = no limit */
	bool failed;
	struct kafka_file_piece *pieces;
	size_t npieces, pieces_cap;
	size_t file_bytes;
	int *fds;
	size_t nfds, fds_cap;
};

void kafka_writer_init(struct kafka_writer *w, size_t limit);
void kafka_writer_fini(struct kafka_writer *w);
/* Forget the content, keep the buffer. */
void kafka_writer_reset(struct kafka_writer *w);
/* Make room for n more bytes (at most up to limit) in one allocation, so a
 * response whose size is known is not built by doubling. Only a hint: a
 * failed allocation is not an error (the writes grow the buffer as usual). */
void kafka_writer_reserve(struct kafka_writer *w, size_t n);

void kafka_write_raw(struct kafka_writer *w, const void *p, size_t n);
void kafka_write_i8(struct kafka_writer *w, int8_t v);
void kafka_write_i16(struct kafka_writer *w, int16_t v);
void kafka_write_i32(struct kafka_writer *w, int32_t v);
void kafka_write_i64(struct kafka_writer *w, int64_t v);
void kafka_write_bool(struct kafka_writer *w, bool v);
void kafka_write_uvarint(struct kafka_writer *w, uint64_t v);
void kafka_write_varint(struct kafka_writer *w, int64_t v);
/* s == NULL writes a null string (nullable fields only). */
void kafka_write_string(struct kafka_writer *w, bool compact, const char *s);
void kafka_write_str(struct kafka_writer *w, bool compact, struct kafka_str s);
/* p == NULL writes null bytes. */
void kafka_write_bytes(struct kafka_writer *w, bool compact, const void *p, int32_t len);
/* Only the length of non-null bytes; the caller writes the len bytes
 * (kafka_write_raw, kafka_write_file). */
void kafka_write_bytes_len(struct kafka_writer *w, bool compact, int32_t len);
/* A file piece here: [off, off + len) of fd, which must stay open until
 * the writer is reset (kafka_writer_own_fd). */
void kafka_write_file(struct kafka_writer *w, int fd, uint64_t off, size_t len);
/* The writer closes fd at its next _reset or _fini (at once, and fails,
 * when it cannot keep it). */
void kafka_writer_own_fd(struct kafka_writer *w, int fd);
/* Forget the pieces and close the owned descriptors (once sent). */
void kafka_writer_release_files(struct kafka_writer *w);
/* count -1 writes a null array. */
void kafka_write_array(struct kafka_writer *w, bool compact, int32_t count);
/* An empty tagged-fields section. */
void kafka_write_tags(struct kafka_writer *w);

/* Reserve an int32 to fill in later (sizes, counts); returns its position. */
size_t kafka_write_i32_later(struct kafka_writer *w);
void kafka_write_i32_at(struct kafka_writer *w, size_t pos, int32_t v);

/* Big-endian helpers for the rest of the listener. */
static inline uint32_t kafka_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void kafka_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif
