/* recode.c - uncompressed batches re-encoded as one compressed batch
 * (recode.h). */
#include <errno.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "byteorder.h"
#include "crc32c.h"
#include "errors.h"
#include "recode.h"

bool recode_mergeable(const struct batch_header *h)
{
	return (h->attributes & (BATCH_ATTR_CODEC_MASK | 0x08 | BATCH_ATTR_TRANSACTIONAL |
				 BATCH_ATTR_CONTROL)) == 0 &&
	       h->producer_id == -1;
}

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *v = realloc(b->p, cap);
	if (!v)
		return -ENOMEM;
	b->p = v;
	b->cap = cap;
	return 0;
}

/* One record in the batch encoding (batch.h), headers copied as encoded. */
static int record_put(struct buf *b, int64_t ts_delta, int32_t off_delta,
		      const struct batch_record *r)
{
	uint8_t body_hdr[32], tail[10];
	size_t h = 0, t, body;
	size_t klen = r->key_len > 0 ? (size_t)r->key_len : 0;
	size_t vlen = r->value_len > 0 ? (size_t)r->value_len : 0;
	uint8_t len_buf[10];
	uint8_t kl[10], vl[10];
	size_t kn, vn, ln;

	body_hdr[h++] = 0; /* attributes */
	h += varint_put(body_hdr + h, ts_delta);
	h += varint_put(body_hdr + h, off_delta);
	kn = varint_put(kl, r->key_len);
	vn = varint_put(vl, r->value_len);
	t = varint_put(tail, r->header_count);
	body = h + kn + klen + vn + vlen + t + r->headers_len;
	ln = varint_put(len_buf, (int64_t)body);
	int rc = buf_reserve(b, ln + body);
	if (rc)
		return rc;
	uint8_t *p = b->p + b->len;
	memcpy(p, len_buf, ln);
	p += ln;
	memcpy(p, body_hdr, h);
	p += h;
	memcpy(p, kl, kn);
	p += kn;
	if (klen)
		memcpy(p, r->key, klen);
	p += klen;
	memcpy(p, vl, vn);
	p += vn;
	if (vlen)
		memcpy(p, r->value, vlen);
	p += vlen;
	memcpy(p, tail, t);
	p += t;
	if (r->headers_len)
		memcpy(p, r->headers, r->headers_len);
	p += r->headers_len;
	b->len = (size_t)(p - b->p);
	return 0;
}

/* Compress in[0, len) for codec into a malloc'd buffer with room for a
 * batch header in front: *out + BATCH_HEADER_SIZE holds *clen bytes. */
static int compress_records(enum batch_codec codec, const uint8_t *in, size_t len, uint8_t **out,
			    size_t *clen)
{
	size_t bound;
	uint8_t *o;

	switch (codec) {
	case BATCH_CODEC_LZ4: {
		LZ4F_preferences_t prefs;
		memset(&prefs, 0, sizeof(prefs));
		prefs.frameInfo.blockSizeID = LZ4F_max64KB;
		prefs.frameInfo.blockMode = LZ4F_blockIndependent;
		prefs.frameInfo.contentSize = len;
		bound = LZ4F_compressFrameBound(len, &prefs);
		o = malloc(BATCH_HEADER_SIZE + bound);
		if (!o)
			return -ENOMEM;
		*clen = LZ4F_compressFrame(o + BATCH_HEADER_SIZE, bound, in, len, &prefs);
		if (LZ4F_isError(*clen)) {
			free(o);
			return -EIO;
		}
		break;
	}
	case BATCH_CODEC_ZSTD:
		bound = ZSTD_compressBound(len);
		o = malloc(BATCH_HEADER_SIZE + bound);
		if (!o)
			return -ENOMEM;
		*clen = ZSTD_compress(o + BATCH_HEADER_SIZE, bound, in, len, 3);
		if (ZSTD_isError(*clen)) {
			free(o);
			return -EIO;
		}
		break;
	case BATCH_CODEC_SNAPPY:
		/* One raw snappy block, as librdkafka writes it. */
		bound = snappy_max_compressed_length(len);
		o = malloc(BATCH_HEADER_SIZE + bound);
		if (!o)
			return -ENOMEM;
		*clen = bound;
		if (snappy_compress((const char *)in, len, (char *)o + BATCH_HEADER_SIZE, clen) !=
		    SNAPPY_OK) {
			free(o);
			return -EIO;
		}
		break;
	case BATCH_CODEC_GZIP: {
		z_stream zs;
		memset(&zs, 0, sizeof(zs));
		if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		bound = deflateBound(&zs, len);
		o = malloc(BATCH_HEADER_SIZE + bound);
		if (!o) {
			deflateEnd(&zs);
			return -ENOMEM;
		}
		zs.next_in = (Bytef *)in;
		zs.avail_in = (uInt)len;
		zs.next_out = o + BATCH_HEADER_SIZE;
		zs.avail_out = (uInt)bound;
		int zr = deflate(&zs, Z_FINISH);
		*clen = zs.total_out;
		deflateEnd(&zs);
		if (zr != Z_STREAM_END) {
			free(o);
			return -EIO;
		}
		break;
	}
	default:
		return -ENOTSUP;
	}
	*out = o;
	return 0;
}

/* The header of a recoded batch in o[0, BATCH_HEADER_SIZE), for total
 * bytes holding count records (recode.h), CRC last. */
static int header_put(uint8_t *o, size_t total, enum batch_codec codec, int64_t base_offset,
		      int32_t count, int64_t base_ts, int64_t max_ts)
{
	if (total - 12 > INT32_MAX)
		return -EMSGSIZE;
	put_be64(o, (uint64_t)base_offset);
	put_be32(o + 8, (uint32_t)(total - 12));
	put_be32(o + 12, 0xffffffffu);
	o[16] = BATCH_MAGIC;
	put_be16(o + 21, (uint16_t)codec);
	put_be32(o + 23, (uint32_t)(count - 1));
	put_be64(o + 27, (uint64_t)base_ts);
	put_be64(o + 35, (uint64_t)max_ts);
	put_be64(o + 43, UINT64_MAX);
	put_be16(o + 51, 0xffff);
	put_be32(o + 53, 0xffffffffu);
	put_be32(o + 57, (uint32_t)count);
	put_be32(o + 17, crc32c(0, o + BATCH_CRC_START, total - BATCH_CRC_START));
	return 0;
}

int recode_one(const uint8_t *batch, size_t len, enum batch_codec codec, uint8_t **out,
	       size_t *out_len)
{
	struct batch_iter it;
	struct batch_record r;
	uint8_t *o = NULL;
	size_t clen;
	int rc;

	if (codec == BATCH_CODEC_NONE || (unsigned)codec > BATCH_CODEC_ZSTD)
		return -ENOTSUP;
	rc = batch_iter_init(&it, batch, len);
	if (rc == 0 && !recode_mergeable(&it.hdr))
		rc = -EINVAL;
	/* Only the first record is read: is the batch's baseTimestamp its
	 * timestamp already? Otherwise the deltas need rewriting. */
	if (rc == 0 && it.hdr.record_count > 0 && batch_iter_next(&it, &r) == 1 &&
	    r.offset_delta == 0 && r.timestamp_delta == 0) {
		rc = compress_records(codec, batch + BATCH_HEADER_SIZE, len - BATCH_HEADER_SIZE, &o,
				      &clen);
		if (rc == 0)
			rc = header_put(o, BATCH_HEADER_SIZE + clen, codec, it.hdr.base_offset,
					it.hdr.record_count, it.hdr.base_timestamp,
					it.hdr.max_timestamp);
		batch_iter_fini(&it);
		if (rc) {
			free(o);
			return rc;
		}
		*out = o;
		*out_len = BATCH_HEADER_SIZE + clen;
		return 0;
	}
	batch_iter_fini(&it);
	if (rc)
		return rc;
	return recode_merge(&batch, &len, 1, codec, out, out_len);
}

int recode_merge(const uint8_t *const *batches, const size_t *lens, size_t n,
		 enum batch_codec codec, uint8_t **out, size_t *out_len)
{
	struct buf rec = { 0 };
	int64_t base_offset = 0, next = 0, base_ts = 0, max_ts = -1;
	int32_t count = 0;
	uint8_t *o = NULL;
	int rc = 0;

	if (codec == BATCH_CODEC_NONE || (unsigned)codec > BATCH_CODEC_ZSTD)
		return -ENOTSUP;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct batch_iter it;
		struct batch_record r;
		rc = batch_iter_init(&it, batches[i], lens[i]);
		if (rc == 0 && !recode_mergeable(&it.hdr))
			rc = -EINVAL;
		if (rc == 0 && i == 0)
			base_offset = next = it.hdr.base_offset;
		if (rc == 0 && it.hdr.base_offset != next)
			rc = CHRONIK_ECORRUPT;
		while (rc == 0 && (rc = batch_iter_next(&it, &r)) == 1) {
			int64_t ts = it.hdr.base_timestamp + r.timestamp_delta;
			int64_t off = it.hdr.base_offset + r.offset_delta;
			if (off != next || count == INT32_MAX) {
				rc = CHRONIK_ECORRUPT;
				break;
			}
			if (count == 0)
				base_ts = ts; /* Kafka's baseTimestamp: the first record's */
			rc = record_put(&rec, ts - base_ts, (int32_t)(off - base_offset), &r);
			next++;
			count++;
		}
		if (rc == 0 && it.hdr.max_timestamp > max_ts)
			max_ts = it.hdr.max_timestamp;
		batch_iter_fini(&it);
	}
	if (rc)
		goto out;

	size_t clen;
	rc = compress_records(codec, rec.p, rec.len, &o, &clen);
	if (rc)
		goto out;
	size_t total = BATCH_HEADER_SIZE + clen;
	rc = header_put(o, total, codec, base_offset, count, base_ts, max_ts);
	if (rc)
		goto out;
	*out = o;
	*out_len = total;
	o = NULL;
out:
	free(o);
	free(rec.p);
	return rc;
}

/* Compress the records of one piece, rec[0, len), as a batch into *pc. */
static int piece_finish(struct recode_piece *pc, enum batch_codec codec, const struct buf *rec,
			int64_t base_offset, int32_t count, int64_t base_ts, int64_t max_ts)
{
	uint8_t *o;
	size_t clen;
	int rc = compress_records(codec, rec->p, rec->len, &o, &clen);

	if (rc)
		return rc;
	rc = header_put(o, BATCH_HEADER_SIZE + clen, codec, base_offset, count, base_ts, max_ts);
	if (rc) {
		free(o);
		return rc;
	}
	pc->b = o;
	pc->len = BATCH_HEADER_SIZE + clen;
	pc->records = (uint32_t)count;
	return 0;
}

void recode_pieces_free(struct recode_piece *pieces, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(pieces[i].b);
	free(pieces);
}

int recode_split(const uint8_t *batch, size_t len, enum batch_codec codec, size_t piece_bytes,
		 struct recode_piece **pieces, size_t *n)
{
	struct batch_iter it;
	struct batch_record r;
	struct buf rec = { 0 };
	struct recode_piece *v = NULL, cur = { 0 };
	size_t nv = 0, cap = 0;
	int64_t base_offset = 0, base_ts = 0, max_ts = INT64_MIN;
	int32_t count = 0, want = 0;
	int rc;

	if (codec == BATCH_CODEC_NONE || (unsigned)codec > BATCH_CODEC_ZSTD)
		return -ENOTSUP;
	rc = batch_iter_init(&it, batch, len);
	if (rc)
		return rc;
	if (!recode_mergeable(&it.hdr))
		rc = -EINVAL;
	while (rc == 0 && (rc = batch_iter_next(&it, &r)) == 1) {
		int64_t ts = it.hdr.base_timestamp + r.timestamp_delta;
		rc = 0;
		if (r.offset_delta != want++) {
			rc = CHRONIK_ECORRUPT;
			break;
		}
		if (count == 0) {
			base_offset = it.hdr.base_offset + r.offset_delta;
			base_ts = ts;
			max_ts = INT64_MIN;
			cur.raw_len = 0;
		}
		rc = record_put(&rec, ts - base_ts, count, &r);
		if (rc)
			break;
		count++;
		if (ts > max_ts)
			max_ts = ts;
		cur.raw_len += (uint64_t)(r.value_len > 0 ? r.value_len : 0) + 1;
		bool last = want == it.hdr.record_count;
		if (rec.len < piece_bytes && !last)
			continue;
		if (last && it.hdr.max_timestamp > max_ts)
			max_ts = it.hdr.max_timestamp;
		if (nv == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct recode_piece *nvp = realloc(v, nc * sizeof(*nvp));
			if (!nvp) {
				rc = -ENOMEM;
				break;
			}
			v = nvp;
			cap = nc;
		}
		rc = piece_finish(&cur, codec, &rec, base_offset, count, base_ts, max_ts);
		if (rc)
			break;
		v[nv++] = cur;
		rec.len = 0;
		count = 0;
	}
	if (rc == 0 && (want != it.hdr.record_count || nv == 0))
		rc = CHRONIK_ECORRUPT;
	batch_iter_fini(&it);
	free(rec.p);
	if (rc) {
		recode_pieces_free(v, nv);
		return rc;
	}
	*pieces = v;
	*n = nv;
	return 0;
}
