/* test_codecs.c - the engine's gzip, snappy (raw and xerial) and zstd
 * decompressors (codecs.h) and the decompression bounds (batch.h), without
 * anything but the engine. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "batch.h"
#include "byteorder.h"
#include "codecs.h"
#include "errors.h"
#include "tap.h"

static uint8_t *make_data(size_t n)
{
	uint8_t *d = malloc(n);
	uint32_t x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245 + 12345;
		d[i] = (uint8_t)("abcdefgh\n"[(x >> 16) % 9]);
	}
	return d;
}

static int gzip_compress(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	size_t cap = deflateBound(&zs, (uLong)n) + 64;
	*out = malloc(cap);
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)n;
	zs.next_out = *out;
	zs.avail_out = (uInt)cap;
	int rc = deflate(&zs, Z_FINISH);
	*out_len = cap - zs.avail_out;
	deflateEnd(&zs);
	return rc == Z_STREAM_END ? 0 : -1;
}

/* A gzip stream of n zero bytes, compressed piecewise (a "bomb"). */
static int gzip_zeros(size_t n, uint8_t **out, size_t *out_len)
{
	static uint8_t zeros[1 << 20];
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	size_t cap = n / 500 + 4096;
	*out = malloc(cap);
	zs.next_out = *out;
	zs.avail_out = (uInt)cap;
	int rc = Z_OK;
	while (n > 0 && rc == Z_OK) {
		size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
		zs.next_in = zeros;
		zs.avail_in = (uInt)k;
		n -= k;
		rc = deflate(&zs, n ? Z_NO_FLUSH : Z_FINISH);
	}
	*out_len = cap - zs.avail_out;
	deflateEnd(&zs);
	return rc == Z_STREAM_END ? 0 : -1;
}

static void test_gzip(void)
{
	size_t n = 300000;
	uint8_t *data = make_data(n), *z = NULL, *out = NULL;
	size_t zlen = 0, olen = 0;

	ok(gzip_compress(data, n, &z, &zlen) == 0, "gzip test data compressed");
	ok(codec_gzip_decompress(z, zlen, &out, &olen) == 0 && olen == n &&
		   memcmp(out, data, n) == 0,
	   "gzip round trip");
	batch_outbuf_release(olen);
	free(out);
	out = NULL;
	ok(codec_gzip_decompress(z, zlen / 2, &out, &olen) == CHRONIK_ECORRUPT,
	   "truncated gzip is corrupt");
	z[zlen / 2] ^= 0x55;
	int rc = codec_gzip_decompress(z, zlen, &out, &olen);
	ok(rc == CHRONIK_ECORRUPT, "damaged gzip is corrupt (got %d)", rc);
	free(z);

	ok(gzip_zeros(BATCH_DECOMPRESSED_MAX + (1 << 20), &z, &zlen) == 0,
	   "gzip bomb built (%zu bytes)", zlen);
	ok(codec_gzip_decompress(z, zlen, &out, &olen) == CHRONIK_ECORRUPT,
	   "gzip output beyond the bound is refused");
	ok(batch_decompress_budget_used() == 0, "a refused bomb gives its budget back");
	free(z);

	/* A smaller bomb inside the cap but past the ratio bound. */
	ok(gzip_zeros(BATCH_DECOMPRESSED_MAX - (1 << 20), &z, &zlen) == 0,
	   "gzip near the cap (%zu bytes)", zlen);
	ok(codec_gzip_decompress(z, zlen, &out, &olen) == 0 &&
		   olen == BATCH_DECOMPRESSED_MAX - (1 << 20),
	   "gzip output under the cap and the ratio is accepted");
	ok(batch_decompress_budget_used() == olen, "its bytes are charged to the budget (%zu)",
	   batch_decompress_budget_used());
	batch_outbuf_release(olen);
	free(out);
	out = NULL;
	ok(batch_decompress_budget_used() == 0, "and given back on release");
	free(z);
	free(data);
}

static void test_snappy(void)
{
	size_t n = 200000;
	uint8_t *data = make_data(n), *out = NULL;
	size_t clen = snappy_max_compressed_length(n), olen = 0;
	uint8_t *c = malloc(clen);

	ok(snappy_compress((const char *)data, n, (char *)c, &clen) == SNAPPY_OK,
	   "snappy test data compressed");
	ok(codec_snappy_decompress(c, clen, &out, &olen) == 0 && olen == n &&
		   memcmp(out, data, n) == 0,
	   "raw snappy round trip");
	batch_outbuf_release(olen);
	free(out);

	/* xerial: header, then two blocks of the two halves. */
	size_t half = n / 2;
	size_t c1 = snappy_max_compressed_length(half), c2 = snappy_max_compressed_length(n - half);
	uint8_t *x = malloc(16 + 8 + c1 + c2);
	static const uint8_t hdr[16] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0,
					 0,    0,   0,	 1,   0,   0,	0,   1 };
	memcpy(x, hdr, 16);
	snappy_compress((const char *)data, half, (char *)x + 20, &c1);
	put_be32(x + 16, (uint32_t)c1);
	snappy_compress((const char *)data + half, n - half, (char *)x + 24 + c1, &c2);
	put_be32(x + 20 + c1, (uint32_t)c2);
	size_t xlen = 24 + c1 + c2;
	ok(codec_snappy_decompress(x, xlen, &out, &olen) == 0 && olen == n &&
		   memcmp(out, data, n) == 0,
	   "xerial-framed snappy round trip");
	batch_outbuf_release(olen);
	free(out);
	ok(codec_snappy_decompress(x, xlen - 3, &out, &olen) == CHRONIK_ECORRUPT,
	   "truncated xerial block is corrupt");
	put_be32(x + 16, 0xffffff00u);
	ok(codec_snappy_decompress(x, xlen, &out, &olen) == CHRONIK_ECORRUPT,
	   "xerial block length past the end is corrupt");

	/* A raw block announcing 300 MiB: refused before allocating. */
	uint8_t bomb[16] = { 0 };
	size_t len300 = (size_t)300 << 20, k = 0;
	while (len300 >= 0x80) {
		bomb[k++] = (uint8_t)(len300 | 0x80);
		len300 >>= 7;
	}
	bomb[k++] = (uint8_t)len300;
	ok(codec_snappy_decompress(bomb, sizeof(bomb), &out, &olen) == CHRONIK_ECORRUPT,
	   "snappy block announcing 300 MiB is refused");
	ok(codec_snappy_decompress((const uint8_t *)"\xff\xff\xff", 3, &out, &olen) ==
		   CHRONIK_ECORRUPT,
	   "garbage is not snappy");
	free(x);
	free(c);
	free(data);
}

static void test_zstd(void)
{
	size_t n = 300000;
	uint8_t *data = make_data(n), *out = NULL;
	size_t olen = 0;
	size_t cap = ZSTD_compressBound(n);
	uint8_t *c = malloc(cap);

	/* Streamed, so the frame does not carry its content size. */
	ZSTD_CStream *cs = ZSTD_createCStream();
	ZSTD_initCStream(cs, 3);
	ZSTD_inBuffer ib = { data, n, 0 };
	ZSTD_outBuffer ob = { c, cap, 0 };
	ZSTD_compressStream(cs, &ob, &ib);
	size_t left = ZSTD_endStream(cs, &ob);
	size_t clen = ob.pos;
	ok(left == 0 && ZSTD_getFrameContentSize(c, clen) == ZSTD_CONTENTSIZE_UNKNOWN,
	   "zstd frame without content size built");
	ok(codec_zstd_decompress(c, clen, &out, &olen) == 0 && olen == n &&
		   memcmp(out, data, n) == 0,
	   "zstd round trip (unknown content size)");
	batch_outbuf_release(olen);
	free(out);
	ok(codec_zstd_decompress(c, clen - 5, &out, &olen) == CHRONIK_ECORRUPT,
	   "truncated zstd is corrupt");
	ok(codec_zstd_decompress((const uint8_t *)"nope", 4, &out, &olen) == CHRONIK_ECORRUPT,
	   "garbage is not zstd");

	/* Bomb: 108 MiB of zeros. */
	size_t bomb_n = BATCH_DECOMPRESSED_MAX + ((size_t)44 << 20);
	uint8_t *zeros = calloc(1, 1 << 20);
	uint8_t *bomb = malloc(1 << 20);
	ZSTD_initCStream(cs, 1);
	ZSTD_outBuffer bo = { bomb, 1 << 20, 0 };
	for (size_t done = 0; done < bomb_n; done += 1 << 20) {
		ZSTD_inBuffer zi = { zeros, 1 << 20, 0 };
		while (zi.pos < zi.size)
			ZSTD_compressStream(cs, &bo, &zi);
	}
	while (ZSTD_endStream(cs, &bo) != 0)
		;
	ok(codec_zstd_decompress(bomb, bo.pos, &out, &olen) == CHRONIK_ECORRUPT,
	   "zstd output beyond the bound is refused (%zu byte input)", bo.pos);
	ok(bo.pos * BATCH_DECOMPRESSED_RATIO < BATCH_DECOMPRESSED_MAX,
	   "(the ratio bound is what refuses it: %zu * %d < the cap)", bo.pos,
	   BATCH_DECOMPRESSED_RATIO);
	ok(batch_decompress_budget_used() == 0, "a refused zstd bomb gives its budget back");
	ZSTD_freeCStream(cs);
	free(zeros);
	free(bomb);
	free(c);
	free(data);
}

/* The process-wide budget: while buffers hold it, a further decompression
 * fails with -ENOMEM instead of allocating. */
static void test_budget(void)
{
	uint8_t *z = NULL, *outs[8];
	size_t zlen = 0, lens[8];
	int n = 0, rc = 0;

	ok(gzip_zeros(BATCH_DECOMPRESSED_MAX / 2, &z, &zlen) == 0, "32 MiB gzip built");
	while (n < 8) {
		rc = codec_gzip_decompress(z, zlen, &outs[n], &lens[n]);
		if (rc)
			break;
		n++;
	}
	ok(rc == -ENOMEM && (size_t)n * (BATCH_DECOMPRESSED_MAX / 2) <= BATCH_DECOMPRESS_BUDGET,
	   "decompressions held at once stop at the budget (%d held, then %d)", n, rc);
	ok(batch_decompress_budget_used() <= BATCH_DECOMPRESS_BUDGET, "budget in use %zu <= %zu",
	   batch_decompress_budget_used(), BATCH_DECOMPRESS_BUDGET);
	for (int i = 0; i < n; i++) {
		batch_outbuf_release(lens[i]);
		free(outs[i]);
	}
	ok(batch_decompress_budget_used() == 0, "released buffers give the budget back");
	uint8_t *out = NULL;
	size_t olen = 0;
	ok(codec_gzip_decompress(z, zlen, &out, &olen) == 0, "and decompression works again");
	batch_outbuf_release(olen);
	free(out);
	free(z);
}

int main(void)
{
	test_gzip();
	test_snappy();
	test_zstd();
	test_budget();
	return tap_exit();
}
