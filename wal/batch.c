/* batch.c - Kafka RecordBatch v2: header, CRC, record walk, codec table and
 * decompression bounds, builder.
 *
 * The byte layout is documented in batch.h (it is Kafka's, from
 * DefaultRecordBatch.java and DefaultRecord.java). This file adds the
 * validity rules the decoder enforces. A batch's records are valid if and
 * only if, walking them from byte 61 (or from the start of the decompressed
 * records):
 *
 *   1. every varint ends within the bytes left and within 10 bytes; int32
 *      fields (length, offsetDelta, key/value lengths, header count) fit in
 *      an int32;
 *   2. each record's length is >= 0 and no more than the bytes left, and its
 *      fields end exactly at that length;
 *   3. key and value lengths are -1 (null) or 0..bytes left in the record;
 *      a header key length is 0..bytes left (a header key is never null);
 *      a header count is >= 0;
 *   4. exactly recordCount records are present and no byte follows the last.
 *
 * Anything else is CHRONIK_ECORRUPT. The decoder never reads outside the
 * buffer it was given, whatever the input.
 *
 * Records built here (batch_builder_*, batch_encode_lines) are uncompressed,
 * with baseOffset 0, partitionLeaderEpoch -1, attributes 0 (CreateTime),
 * producerId -1, producerEpoch -1, baseSequence -1, offset deltas 0..n-1 and
 * timestamp deltas relative to the first record's timestamp.
 */
#include "batch.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "codecs.h"
#include "crc32c.h"
#include "byteorder.h"
#include "errors.h"

_Static_assert(BATCH_HEADER_SIZE == 61, "RecordBatch v2 header is 61 bytes");
_Static_assert(BATCH_CRC_START == 21, "the CRC covers [21, end)");

/* Header field offsets (batch.h). */
enum {
	OFF_BASE_OFFSET = 0,
	OFF_BATCH_LENGTH = 8,
	OFF_LEADER_EPOCH = 12,
	OFF_MAGIC = 16,
	OFF_CRC = 17,
	OFF_ATTRIBUTES = 21,
	OFF_LAST_OFFSET_DELTA = 23,
	OFF_BASE_TIMESTAMP = 27,
	OFF_MAX_TIMESTAMP = 35,
	OFF_PRODUCER_ID = 43,
	OFF_PRODUCER_EPOCH = 51,
	OFF_BASE_SEQUENCE = 53,
	OFF_RECORD_COUNT = 57,
	/* Bytes counted by batchLength start after it. */
	LENGTH_FIELD_END = 12,
};
_Static_assert(OFF_RECORD_COUNT + 4 == BATCH_HEADER_SIZE, "header offsets add up");

/* Worst-case bytes of one batch_encode_lines record besides its value:
 * length varint (5) + attributes (1) + timestampDelta (1) + offsetDelta (5) +
 * keyLength (1) + valueLength (5) + headerCount (1). */
#define LINE_RECORD_OVERHEAD 19

/* ---- varints ----------------------------------------------------------- */

static uint64_t zigzag_encode(int64_t v)
{
	return ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
}

static int64_t zigzag_decode(uint64_t z)
{
	return (int64_t)((z >> 1) ^ (0 - (z & 1)));
}

size_t uvarint_put(uint8_t *buf, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		buf[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	buf[n++] = (uint8_t)v;
	return n;
}

size_t uvarint_get(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	/* Most fields of a record are one byte (attributes, small deltas and
	 * lengths): that case first, without the loop. */
	if (p < end && !(*p & 0x80)) {
		*v = *p;
		return 1;
	}
	for (size_t i = 0; i < 10; i++) {
		if (p + i >= end)
			return 0;
		uint8_t b = p[i];
		/* The tenth byte holds bit 63 only. */
		if (i == 9 && b > 1)
			return 0;
		r |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = r;
			return i + 1;
		}
	}
	return 0;
}

size_t varint_put(uint8_t *buf, int64_t v)
{
	return uvarint_put(buf, zigzag_encode(v));
}

size_t varint_get(const uint8_t *p, const uint8_t *end, int64_t *v)
{
	uint64_t z;
	size_t n = uvarint_get(p, end, &z);
	if (n)
		*v = zigzag_decode(z);
	return n;
}

static size_t uvarint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t varint_size(int64_t v)
{
	return uvarint_size(zigzag_encode(v));
}

/* Bounded reader over [p, end) with a sticky error: after any failure every
 * read fails, so a parser checks once at the end of a unit. */
struct rd {
	const uint8_t *p, *end;
	bool bad;
};

static int64_t rd_varlong(struct rd *r)
{
	int64_t v = 0;
	size_t n;
	if (r->bad)
		return 0;
	/* A record's fields are one or two bytes (lengths below 8 KiB):
	 * those cases here, inline; a record walk reads seven a record. */
	if (r->p < r->end && !(r->p[0] & 0x80))
		return zigzag_decode(*r->p++);
	if (r->end - r->p >= 2 && !(r->p[1] & 0x80)) {
		uint64_t z = (uint64_t)(r->p[0] & 0x7f) | (uint64_t)r->p[1] << 7;
		r->p += 2;
		return zigzag_decode(z);
	}
	n = varint_get(r->p, r->end, &v);
	if (!n) {
		r->bad = true;
		return 0;
	}
	r->p += n;
	return v;
}

static int32_t rd_varint(struct rd *r)
{
	int64_t v = rd_varlong(r);
	if (v < INT32_MIN || v > INT32_MAX) {
		r->bad = true;
		return 0;
	}
	return (int32_t)v;
}

/* A length-prefixed field: -1 = null (when allowed), else 0..bytes left. */
static const uint8_t *rd_bytes(struct rd *r, bool nullable, int32_t *len)
{
	const uint8_t *at;
	int32_t n = rd_varint(r);
	*len = -1;
	if (r->bad)
		return NULL;
	if (n == -1 && nullable)
		return NULL;
	if (n < 0 || (size_t)n > (size_t)(r->end - r->p)) {
		r->bad = true;
		return NULL;
	}
	at = r->p;
	r->p += n;
	*len = n;
	return at;
}

/* ---- header and CRC ---------------------------------------------------- */

int batch_header_parse(const uint8_t *buf, size_t len, struct batch_header *h)
{
	if (len <= OFF_MAGIC)
		return CHRONIK_ECORRUPT;
	/* Magic sits at byte 16 in every message format version. */
	if (buf[OFF_MAGIC] != BATCH_MAGIC)
		return CHRONIK_EVERSION;
	if (len < BATCH_HEADER_SIZE)
		return CHRONIK_ECORRUPT;

	h->base_offset = (int64_t)get_be64(buf + OFF_BASE_OFFSET);
	h->batch_length = (int32_t)get_be32(buf + OFF_BATCH_LENGTH);
	h->partition_leader_epoch = (int32_t)get_be32(buf + OFF_LEADER_EPOCH);
	h->magic = (int8_t)buf[OFF_MAGIC];
	h->crc = get_be32(buf + OFF_CRC);
	h->attributes = (int16_t)get_be16(buf + OFF_ATTRIBUTES);
	h->last_offset_delta = (int32_t)get_be32(buf + OFF_LAST_OFFSET_DELTA);
	h->base_timestamp = (int64_t)get_be64(buf + OFF_BASE_TIMESTAMP);
	h->max_timestamp = (int64_t)get_be64(buf + OFF_MAX_TIMESTAMP);
	h->producer_id = (int64_t)get_be64(buf + OFF_PRODUCER_ID);
	h->producer_epoch = (int16_t)get_be16(buf + OFF_PRODUCER_EPOCH);
	h->base_sequence = (int32_t)get_be32(buf + OFF_BASE_SEQUENCE);
	h->record_count = (int32_t)get_be32(buf + OFF_RECORD_COUNT);

	if (h->batch_length < 0 || (uint64_t)h->batch_length + LENGTH_FIELD_END != len)
		return CHRONIK_ECORRUPT;
	if (h->record_count < 0)
		return CHRONIK_ECORRUPT;
	return 0;
}

int batch_crc_check(const uint8_t *buf, size_t len)
{
	uint32_t stored = get_be32(buf + OFF_CRC);
	uint32_t actual = crc32c(0, buf + BATCH_CRC_START, len - BATCH_CRC_START);
	return stored == actual ? 0 : CHRONIK_EBADCRC;
}

void batch_set_base_offset(uint8_t *buf, int64_t base_offset)
{
	put_be64(buf + OFF_BASE_OFFSET, (uint64_t)base_offset);
}

/* ---- codecs ------------------------------------------------------------ */

/* Bytes of BATCH_DECOMPRESS_BUDGET held by codec output buffers now. */
static atomic_size_t budget_used;
/* Net bytes charged on this thread since batch_iter_init started its codec
 * call: what the buffer it gets back holds (0 for a codec that does not use
 * batch_outbuf). */
static _Thread_local size_t call_charge;

size_t batch_decompressed_limit(size_t in_len)
{
	size_t lim = BATCH_DECOMPRESSED_FLOOR;
	if (in_len > lim / BATCH_DECOMPRESSED_RATIO)
		lim = in_len > BATCH_DECOMPRESSED_MAX / BATCH_DECOMPRESSED_RATIO ?
			      BATCH_DECOMPRESSED_MAX :
			      in_len * BATCH_DECOMPRESSED_RATIO;
	return lim < BATCH_DECOMPRESSED_MAX ? lim : BATCH_DECOMPRESSED_MAX;
}

size_t batch_decompress_budget_used(void)
{
	return atomic_load(&budget_used);
}

static bool budget_take(size_t n)
{
	size_t cur = atomic_load(&budget_used);
	do {
		if (n > BATCH_DECOMPRESS_BUDGET - cur)
			return false;
	} while (!atomic_compare_exchange_weak(&budget_used, &cur, cur + n));
	call_charge += n;
	return true;
}

static void budget_give(size_t n)
{
	atomic_fetch_sub(&budget_used, n);
	call_charge -= n;
}

void batch_outbuf_init(struct batch_outbuf *o, size_t in_len)
{
	o->buf = NULL;
	o->len = o->cap = 0;
	o->limit = batch_decompressed_limit(in_len);
}

int batch_outbuf_reserve(struct batch_outbuf *o, size_t more, size_t hint)
{
	if (more == 0)
		more = 1;
	if (o->cap - o->len >= more)
		return 0;
	if (more > o->limit - o->len)
		return CHRONIK_ECORRUPT;
	size_t need = o->len + more;
	size_t cap = o->cap ? o->cap : (hint < 4096 ? 4096 : hint);
	while (cap < need && cap < o->limit)
		cap = cap > o->limit / 2 ? o->limit : cap * 2;
	if (cap < need)
		cap = need;
	if (cap > o->limit)
		cap = o->limit;
	if (!budget_take(cap - o->cap))
		return -ENOMEM;
	uint8_t *b = realloc(o->buf, cap);
	if (!b) {
		budget_give(cap - o->cap);
		return -ENOMEM;
	}
	o->buf = b;
	o->cap = cap;
	return 0;
}

int batch_outbuf_finish(struct batch_outbuf *o, int err, uint8_t **out, size_t *out_len)
{
	if (!err) {
		size_t keep = o->len ? o->len : 1;
		if (!o->buf)
			err = batch_outbuf_reserve(o, 1, 1);
		if (!err && o->cap > keep) {
			uint8_t *b = realloc(o->buf, keep);
			if (b)
				o->buf = b;
			budget_give(o->cap - keep);
			o->cap = keep;
		}
	}
	if (err) {
		free(o->buf);
		budget_give(o->cap);
		o->buf = NULL;
		o->len = o->cap = 0;
		return err;
	}
	*out = o->buf;
	*out_len = o->len;
	return 0;
}

void batch_outbuf_release(size_t len)
{
	budget_give(len ? len : 1);
}

/* Indexed by the 3-bit codec field; slot 0 (none) is never called. */
static batch_codec_fn codecs[BATCH_ATTR_CODEC_MASK + 1] = {
	[BATCH_CODEC_GZIP] = codec_gzip_decompress,
	[BATCH_CODEC_SNAPPY] = codec_snappy_decompress,
	[BATCH_CODEC_LZ4] = codec_lz4_decompress,
	[BATCH_CODEC_ZSTD] = codec_zstd_decompress,
};

void batch_codec_register(enum batch_codec codec, batch_codec_fn fn)
{
	if ((unsigned)codec > BATCH_ATTR_CODEC_MASK || codec == BATCH_CODEC_NONE)
		return;
	codecs[codec] = fn;
}

/* ---- record iterator --------------------------------------------------- */

int batch_iter_init(struct batch_iter *it, const uint8_t *batch, size_t len)
{
	int codec, ret;

	memset(it, 0, sizeof(*it));
	ret = batch_header_parse(batch, len, &it->hdr);
	if (ret)
		return ret;
	it->remaining = it->hdr.record_count;
	codec = it->hdr.attributes & BATCH_ATTR_CODEC_MASK;
	if (codec == BATCH_CODEC_NONE) {
		it->p = batch + BATCH_HEADER_SIZE;
		it->end = batch + len;
		return 0;
	}
	if (!codecs[codec])
		return CHRONIK_ECODEC;

	uint8_t *out = NULL;
	size_t out_len = 0, outer_charge = call_charge;
	call_charge = 0;
	ret = codecs[codec](batch + BATCH_HEADER_SIZE, len - BATCH_HEADER_SIZE, &out, &out_len);
	size_t charged = call_charge;
	call_charge = outer_charge;
	if (ret) {
		/* A codec's failure path gives its bytes back; make sure. */
		atomic_fetch_sub(&budget_used, charged);
		return ret < 0 ? ret : CHRONIK_ECORRUPT;
	}
	it->owned = out;
	it->owned_charge = charged;
	it->p = out;
	it->end = out + out_len;
	return 0;
}

void batch_scratch_fini(struct batch_scratch *s)
{
	if (s->cap)
		atomic_fetch_sub(&budget_used, s->cap);
	free(s->buf);
	codec_lz4_ctx_free(s->lz4);
	memset(s, 0, sizeof(*s));
}

/* Room for the last lz4 block to decode in place (codecs.h). */
#define SCRATCH_SLACK ((size_t)64 << 10)

/* Decode an lz4 batch's records into s: 0, 1 = not a frame of known size
 * (the caller decodes it the usual way), <0. */
static int scratch_lz4(struct batch_scratch *s, const uint8_t *in, size_t in_len, size_t *out_len)
{
	size_t size, need;
	int rc = codec_lz4_frame_size(&s->lz4, in, in_len, &size);

	if (rc)
		return rc;
	if (size > batch_decompressed_limit(in_len))
		return CHRONIK_ECORRUPT;
	need = size + SCRATCH_SLACK;
	if (s->cap < need) {
		size_t cur = atomic_load(&budget_used);
		do {
			if (need - s->cap > BATCH_DECOMPRESS_BUDGET - cur)
				return -ENOMEM;
		} while (!atomic_compare_exchange_weak(&budget_used, &cur, cur + need - s->cap));
		/* No realloc: the old bytes are not needed. */
		uint8_t *b = malloc(need);
		if (!b) {
			atomic_fetch_sub(&budget_used, need - s->cap);
			return -ENOMEM;
		}
		free(s->buf);
		s->buf = b;
		s->cap = need;
	}
	rc = codec_lz4_frame_decode(s->lz4, in, in_len, s->buf, s->cap, size);
	if (rc)
		return rc;
	*out_len = size;
	return 0;
}

int batch_iter_init_with(struct batch_iter *it, const uint8_t *batch, size_t len,
			 struct batch_scratch *s)
{
	size_t out_len;
	int rc;

	/* Only the engine's own lz4 codec: a registered replacement (tests)
	 * is called as batch_iter_init calls it. */
	if (!s || len < BATCH_HEADER_SIZE ||
	    (get_be16(batch + OFF_ATTRIBUTES) & BATCH_ATTR_CODEC_MASK) != BATCH_CODEC_LZ4 ||
	    codecs[BATCH_CODEC_LZ4] != codec_lz4_decompress)
		return batch_iter_init(it, batch, len);
	memset(it, 0, sizeof(*it));
	rc = batch_header_parse(batch, len, &it->hdr);
	if (rc)
		return rc;
	rc = scratch_lz4(s, batch + BATCH_HEADER_SIZE, len - BATCH_HEADER_SIZE, &out_len);
	if (rc == 1)
		return batch_iter_init(it, batch, len);
	if (rc)
		return rc < 0 ? rc : CHRONIK_ECORRUPT;
	it->remaining = it->hdr.record_count;
	it->p = s->buf;
	it->end = s->buf + out_len;
	return 0;
}

/* Step over the headers of one record, checking rule 3. */
static void headers_skip(struct rd *r, int32_t count)
{
	for (int32_t i = 0; i < count && !r->bad; i++) {
		int32_t klen, vlen;
		rd_bytes(r, false, &klen);
		rd_bytes(r, true, &vlen);
	}
}

int batch_iter_next(struct batch_iter *it, struct batch_record *out)
{
	struct rd outer, rec;
	struct batch_record r;
	int32_t len;

	if (it->remaining <= 0) {
		if (it->p != it->end)
			goto corrupt;
		return 0;
	}

	outer = (struct rd){ .p = it->p, .end = it->end };
	len = rd_varint(&outer);
	if (outer.bad || len < 0 || (size_t)len > (size_t)(outer.end - outer.p))
		goto corrupt;

	rec = (struct rd){ .p = outer.p, .end = outer.p + len };
	if (rec.p >= rec.end)
		goto corrupt;
	r.attributes = (int8_t)*rec.p++;
	r.timestamp_delta = rd_varlong(&rec);
	r.offset_delta = rd_varint(&rec);
	r.key = rd_bytes(&rec, true, &r.key_len);
	r.value = rd_bytes(&rec, true, &r.value_len);
	r.header_count = rd_varint(&rec);
	if (rec.bad || r.header_count < 0)
		goto corrupt;
	r.headers = rec.p;
	headers_skip(&rec, r.header_count);
	if (rec.bad || rec.p != rec.end)
		goto corrupt;
	r.headers_len = (size_t)(rec.p - r.headers);

	it->p = rec.end;
	it->remaining--;
	*out = r;
	return 1;

corrupt:
	/* Stop here: later calls see no more records. */
	it->remaining = 0;
	it->p = it->end;
	return CHRONIK_ECORRUPT;
}

void batch_iter_fini(struct batch_iter *it)
{
	free(it->owned);
	it->owned = NULL;
	if (it->owned_charge)
		atomic_fetch_sub(&budget_used, it->owned_charge);
	it->owned_charge = 0;
	it->p = it->end = NULL;
	it->remaining = 0;
}

int batch_record_header_next(const uint8_t **pos, const uint8_t *end, struct batch_record_header *h)
{
	struct rd r = { .p = *pos, .end = end };

	if (r.p >= r.end)
		return 0;
	h->key = rd_bytes(&r, false, &h->key_len);
	h->value = rd_bytes(&r, true, &h->value_len);
	if (r.bad)
		return CHRONIK_ECORRUPT;
	*pos = r.p;
	return 1;
}

int batch_raw_size(const uint8_t *batch, size_t len, uint64_t *raw_size)
{
	struct batch_iter it;
	struct batch_record r;
	uint64_t total = 0;
	int32_t n = 0;
	int ret;

	ret = batch_iter_init(&it, batch, len);
	if (ret)
		goto fini;
	while ((ret = batch_iter_next(&it, &r)) == 1) {
		/* Offsets are the batch's base + delta: deltas must run 0, 1, 2,
		 * ... or a record would be unreachable or collide. */
		if (r.offset_delta != n++) {
			ret = CHRONIK_ECORRUPT;
			break;
		}
		total += (uint64_t)(r.value_len > 0 ? r.value_len : 0) + 1;
	}
	if (ret == 0 && n != it.hdr.record_count)
		ret = CHRONIK_ECORRUPT;
	if (ret == 0)
		*raw_size = total;
fini:
	batch_iter_fini(&it);
	return ret;
}

/* ---- builder ----------------------------------------------------------- */

/* Header fields of a built batch, then its CRC. b[0, len) holds the header
 * space followed by the records. */
static void header_fill(uint8_t *b, size_t len, int32_t count, int64_t base_ts, int64_t max_ts)
{
	put_be64(b + OFF_BASE_OFFSET, 0);
	put_be32(b + OFF_BATCH_LENGTH, (uint32_t)(len - LENGTH_FIELD_END));
	put_be32(b + OFF_LEADER_EPOCH, UINT32_MAX); /* -1 */
	b[OFF_MAGIC] = BATCH_MAGIC;
	put_be16(b + OFF_ATTRIBUTES, 0);
	put_be32(b + OFF_LAST_OFFSET_DELTA, (uint32_t)(count - 1));
	put_be64(b + OFF_BASE_TIMESTAMP, (uint64_t)base_ts);
	put_be64(b + OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
	put_be64(b + OFF_PRODUCER_ID, UINT64_MAX); /* -1 */
	put_be16(b + OFF_PRODUCER_EPOCH, UINT16_MAX); /* -1 */
	put_be32(b + OFF_BASE_SEQUENCE, UINT32_MAX); /* -1 */
	put_be32(b + OFF_RECORD_COUNT, (uint32_t)count);
	put_be32(b + OFF_CRC, crc32c(0, b + BATCH_CRC_START, len - BATCH_CRC_START));
}

void batch_builder_init(struct batch_builder *b)
{
	memset(b, 0, sizeof(*b));
}

/* Bytes of a length-prefixed field of len bytes (-1 = null). */
static size_t field_size(int32_t len)
{
	return varint_size(len) + (len > 0 ? (size_t)len : 0);
}

static uint8_t *field_put(uint8_t *p, const void *data, int32_t len)
{
	p += varint_put(p, len);
	if (len > 0) {
		memcpy(p, data, (size_t)len);
		p += len;
	}
	return p;
}

int batch_builder_add(struct batch_builder *b, const struct record_in *r)
{
	/* The largest batch whose batchLength still fits in an int32. */
	const uint64_t max_batch = (uint64_t)INT32_MAX + LENGTH_FIELD_END;
	int64_t base_ts = b->count ? b->base_timestamp : r->timestamp;
	int64_t ts_delta;
	uint64_t body;
	size_t need;
	uint8_t *p;

	if (r->key_len < -1 || r->value_len < -1 || r->header_count < 0 ||
	    (r->key_len > 0 && !r->key) || (r->value_len > 0 && !r->value) ||
	    (r->header_count > 0 && !r->headers) || b->count == INT32_MAX)
		return -EINVAL;
	/* Kafka keeps timestamp deltas in a varlong: any int64 difference that
	 * does not overflow is fine. */
	if (__builtin_sub_overflow(r->timestamp, base_ts, &ts_delta))
		return -EINVAL;

	body = 1 + varint_size(ts_delta) + varint_size(b->count) + field_size(r->key_len) +
	       field_size(r->value_len) + varint_size(r->header_count);
	for (int32_t i = 0; i < r->header_count; i++) {
		const struct record_header_in *h = &r->headers[i];
		if (h->key_len < 0 || h->value_len < -1 || (h->key_len > 0 && !h->key) ||
		    (h->value_len > 0 && !h->value))
			return -EINVAL;
		body += field_size(h->key_len) + field_size(h->value_len);
		if (body > INT32_MAX)
			return -EINVAL;
	}
	if (body > INT32_MAX)
		return -EINVAL;

	need = varint_size((int64_t)body) + (size_t)body;
	if (b->len == 0)
		b->len = BATCH_HEADER_SIZE;
	if ((uint64_t)b->len + need > max_batch)
		return -EINVAL;
	if (b->len + need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + need)
			cap *= 2;
		uint8_t *nbuf = realloc(b->buf, cap);
		if (!nbuf)
			return -ENOMEM;
		b->buf = nbuf;
		b->cap = cap;
	}

	p = b->buf + b->len;
	p += varint_put(p, (int64_t)body);
	*p++ = 0; /* record attributes: unused */
	p += varint_put(p, ts_delta);
	p += varint_put(p, b->count);
	p = field_put(p, r->key, r->key_len);
	p = field_put(p, r->value, r->value_len);
	p += varint_put(p, r->header_count);
	for (int32_t i = 0; i < r->header_count; i++) {
		p = field_put(p, r->headers[i].key, r->headers[i].key_len);
		p = field_put(p, r->headers[i].value, r->headers[i].value_len);
	}
	b->len = (size_t)(p - b->buf);

	if (b->count == 0) {
		b->base_timestamp = r->timestamp;
		b->max_timestamp = r->timestamp;
	} else if (r->timestamp > b->max_timestamp) {
		b->max_timestamp = r->timestamp;
	}
	b->count++;
	return 0;
}

int batch_builder_finish(struct batch_builder *b, uint8_t **out, size_t *out_len)
{
	if (b->count == 0)
		return -EINVAL;
	header_fill(b->buf, b->len, b->count, b->base_timestamp, b->max_timestamp);
	*out = b->buf;
	*out_len = b->len;
	batch_builder_init(b);
	return 0;
}

void batch_builder_fini(struct batch_builder *b)
{
	free(b->buf);
	batch_builder_init(b);
}

/* ---- raw-view fast path ------------------------------------------------ */

int batch_encode_lines(const char *buf, size_t len, int64_t ts, uint8_t **out, size_t *out_len,
		       int32_t *count)
{
	const char *s = buf, *end = buf + len;
	size_t lines = 0, cap;
	uint8_t *batch, *p;
	int32_t i;

	if (len == 0 || buf[len - 1] != '\n')
		return -EINVAL;
	for (const char *q = buf; q < end; q++) {
		q = memchr(q, '\n', (size_t)(end - q));
		lines++;
	}
	/* Each line gives its value plus at most LINE_RECORD_OVERHEAD bytes,
	 * and drops its newline. */
	if (lines > INT32_MAX || len > (size_t)INT32_MAX ||
	    (uint64_t)BATCH_HEADER_SIZE + len + (uint64_t)lines * LINE_RECORD_OVERHEAD > SIZE_MAX)
		return -EINVAL;
	cap = BATCH_HEADER_SIZE + len + lines * LINE_RECORD_OVERHEAD;
	batch = malloc(cap);
	if (!batch)
		return -ENOMEM;

	p = batch + BATCH_HEADER_SIZE;
	for (i = 0; s < end; i++) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		int32_t vlen = (int32_t)(nl - s);
		int64_t body =
			1 + 1 + (int64_t)varint_size(i) + 1 + (int64_t)varint_size(vlen) + vlen + 1;

		p += varint_put(p, body);
		*p++ = 0; /* attributes */
		*p++ = 0; /* timestampDelta 0 */
		p += varint_put(p, i);
		*p++ = 1; /* keyLength -1, zig-zag */
		p += varint_put(p, vlen);
		memcpy(p, s, (size_t)vlen);
		p += vlen;
		*p++ = 0; /* headerCount */
		s = nl + 1;
	}

	if ((uint64_t)(p - batch) - LENGTH_FIELD_END > INT32_MAX) {
		free(batch);
		return -EINVAL;
	}
	header_fill(batch, (size_t)(p - batch), i, ts, ts);
	*out = batch;
	*out_len = (size_t)(p - batch);
	*count = i;
	return 0;
}
