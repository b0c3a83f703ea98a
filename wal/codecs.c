/* codecs.c - gzip, snappy (raw and xerial), lz4 frame and zstd
 * decompressors for the engine's batch codec table (formats and bounds:
 * codecs.h). */
#include "codecs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "batch.h"
#include "errors.h"

int codec_gzip_decompress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	struct batch_outbuf o;
	z_stream zs;
	int err = 0;

	memset(&zs, 0, sizeof(zs));
	if (in_len > UINT32_MAX)
		return CHRONIK_ECORRUPT;
	batch_outbuf_init(&o, in_len);
	/* 15 + 32: a 32 KiB window, gzip or zlib header detected. */
	if (inflateInit2(&zs, 15 + 32) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)in_len;
	for (;;) {
		err = batch_outbuf_reserve(&o, 1, in_len * 4);
		if (err)
			break;
		zs.next_out = o.buf + o.len;
		zs.avail_out = (uInt)(o.cap - o.len);
		int rc = inflate(&zs, Z_NO_FLUSH);
		o.len = o.cap - zs.avail_out;
		if (rc == Z_STREAM_END) {
			/* Concatenated gzip members: keep going. */
			if (zs.avail_in > 0 && inflateReset(&zs) == Z_OK)
				continue;
			break;
		}
		if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
			err = CHRONIK_ECORRUPT; /* truncated */
			break;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			err = rc == Z_MEM_ERROR ? -ENOMEM : CHRONIK_ECORRUPT;
			break;
		}
	}
	inflateEnd(&zs);
	return batch_outbuf_finish(&o, err, out, out_len);
}

static const uint8_t xerial_magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };

/* Append one raw snappy block to o. */
static int snappy_block(struct batch_outbuf *o, const uint8_t *in, size_t in_len)
{
	size_t n;
	if (snappy_uncompressed_length((const char *)in, in_len, &n) != SNAPPY_OK)
		return CHRONIK_ECORRUPT;
	int err = batch_outbuf_reserve(o, n, n);
	if (err)
		return err;
	size_t got = n;
	if (snappy_uncompress((const char *)in, in_len, (char *)o->buf + o->len, &got) !=
		    SNAPPY_OK ||
	    got != n)
		return CHRONIK_ECORRUPT;
	o->len += n;
	return 0;
}

int codec_snappy_decompress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	struct batch_outbuf o;
	int err = 0;

	batch_outbuf_init(&o, in_len);
	if (in_len >= 16 && memcmp(in, xerial_magic, sizeof(xerial_magic)) == 0) {
		size_t pos = 16;
		while (!err && pos < in_len) {
			if (in_len - pos < 4) {
				err = CHRONIK_ECORRUPT;
				break;
			}
			uint32_t n = (uint32_t)in[pos] << 24 | (uint32_t)in[pos + 1] << 16 |
				     (uint32_t)in[pos + 2] << 8 | in[pos + 3];
			pos += 4;
			if (n > in_len - pos) {
				err = CHRONIK_ECORRUPT;
				break;
			}
			err = snappy_block(&o, in + pos, n);
			pos += n;
		}
	} else {
		err = snappy_block(&o, in, in_len);
	}
	return batch_outbuf_finish(&o, err, out, out_len);
}

/* LZ4 frame format (Kafka's lz4 codec since message format v1 is the
 * standard frame). Output grows by doubling within the bounds of batch.h.
 * Concatenated frames are decoded one after the other. */
int codec_lz4_decompress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	LZ4F_dctx *dctx = NULL;
	struct batch_outbuf o;
	size_t pos = 0, hint = 1;
	int ret = 0;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		return -ENOMEM;
	batch_outbuf_init(&o, in_len);
	while (pos < in_len) {
		size_t dst_size, src_size = in_len - pos;
		ret = batch_outbuf_reserve(&o, 1, in_len < 16384 ? 65536 : in_len * 4);
		if (ret)
			break;
		dst_size = o.cap - o.len;
		hint = LZ4F_decompress(dctx, o.buf + o.len, &dst_size, in + pos, &src_size, NULL);
		if (LZ4F_isError(hint)) {
			ret = CHRONIK_ECORRUPT;
			break;
		}
		o.len += dst_size;
		pos += src_size;
		/* No progress with output space left: the input is stuck. */
		if (src_size == 0 && dst_size == 0 && o.len < o.cap) {
			ret = CHRONIK_ECORRUPT;
			break;
		}
	}
	/* hint == 0: the last frame ended exactly at the end of the input. */
	if (!ret && (hint != 0 || in_len == 0))
		ret = CHRONIK_ECORRUPT;
	LZ4F_freeDecompressionContext(dctx);
	return batch_outbuf_finish(&o, ret, out, out_len);
}

int codec_lz4_frame_size(void **dctx, const uint8_t *in, size_t in_len, size_t *size)
{
	LZ4F_frameInfo_t fi;
	size_t hlen = in_len;

	if (!*dctx) {
		LZ4F_dctx *d;
		if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
			return -ENOMEM;
		*dctx = d;
	}
	LZ4F_resetDecompressionContext(*dctx);
	if (LZ4F_isError(LZ4F_getFrameInfo(*dctx, &fi, in, &hlen)) || fi.contentSize == 0 ||
	    fi.contentSize > SIZE_MAX)
		return 1;
	/* The header is parsed: start the frame again from its first byte. */
	LZ4F_resetDecompressionContext(*dctx);
	*size = (size_t)fi.contentSize;
	return 0;
}

int codec_lz4_frame_decode(void *dctx, const uint8_t *in, size_t in_len, uint8_t *dst,
			   size_t dst_cap, size_t size)
{
	size_t pos = 0, len = 0, hint = 1;

	while (pos < in_len && hint != 0) {
		size_t dst_size = dst_cap - len, src_size = in_len - pos;
		hint = LZ4F_decompress(dctx, dst + len, &dst_size, in + pos, &src_size, NULL);
		if (LZ4F_isError(hint))
			return CHRONIK_ECORRUPT;
		len += dst_size;
		pos += src_size;
		if (src_size == 0 && dst_size == 0)
			return CHRONIK_ECORRUPT;
	}
	/* LZ4F checks the declared content size itself; check the rest. */
	if (hint != 0 || pos != in_len || len != size)
		return CHRONIK_ECORRUPT;
	return 0;
}

void codec_lz4_ctx_free(void *dctx)
{
	if (dctx)
		LZ4F_freeDecompressionContext(dctx);
}

int codec_zstd_decompress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	struct batch_outbuf o;
	int err = 0;
	ZSTD_DStream *ds = ZSTD_createDStream();
	if (!ds)
		return -ENOMEM;
	batch_outbuf_init(&o, in_len);
	ZSTD_initDStream(ds);
	/* Refuse frames that ask for a huge window (memory, not output). */
	ZSTD_DCtx_setParameter(ds, ZSTD_d_windowLogMax, 27);
	ZSTD_inBuffer ib = { in, in_len, 0 };
	size_t last = 1;
	while (ib.pos < ib.size || last != 0) {
		err = batch_outbuf_reserve(&o, 1, in_len * 4);
		if (err)
			break;
		ZSTD_outBuffer ob = { o.buf, o.cap, o.len };
		last = ZSTD_decompressStream(ds, &ob, &ib);
		o.len = ob.pos;
		if (ZSTD_isError(last)) {
			err = CHRONIK_ECORRUPT;
			break;
		}
		if (ib.pos == ib.size && last != 0 && ob.pos < ob.size) {
			/* All input consumed, room left, frame unfinished. */
			err = CHRONIK_ECORRUPT;
			break;
		}
	}
	ZSTD_freeDStream(ds);
	return batch_outbuf_finish(&o, err, out, out_len);
}
