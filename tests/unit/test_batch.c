/* test_batch.c - RecordBatch v2: builder and line encoder round trips, header
 * validation, CRC coverage, malformed and truncated input, varints, codecs. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>

#include "batch.h"
#include "crc32c.h"
#include "errors.h"
#include "tap.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Make batchLength and the CRC agree with a batch of len bytes. */
static void batch_fix(uint8_t *b, size_t len)
{
	wr32(b + 8, (uint32_t)(len - 12));
	wr32(b + 17, crc32c(0, b + 21, len - 21));
}

static uint8_t *dup_exact(const uint8_t *b, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	if (!c)
		bail("out of memory");
	if (len)
		memcpy(c, b, len);
	return c;
}

static int bytes_eq(const void *a, int32_t alen, const void *b, int32_t blen)
{
	if (alen != blen)
		return 0;
	return alen <= 0 || memcmp(a, b, (size_t)alen) == 0;
}

/* Every record of batch equals recs[i] (headers included) and the header
 * fields are what the builder promises. */
static int check_records(const uint8_t *batch, size_t len, const struct record_in *recs, int n)
{
	struct batch_iter it;
	struct batch_record r;
	int i = 0, ret, good = 1;
	int64_t max_ts = recs[0].timestamp;

	for (int k = 1; k < n; k++)
		if (recs[k].timestamp > max_ts)
			max_ts = recs[k].timestamp;
	if (batch_iter_init(&it, batch, len))
		return 0;
	if (it.hdr.record_count != n || it.hdr.last_offset_delta != n - 1 ||
	    it.hdr.producer_id != -1 || it.hdr.producer_epoch != -1 || it.hdr.base_sequence != -1 ||
	    it.hdr.partition_leader_epoch != -1 || it.hdr.base_timestamp != recs[0].timestamp ||
	    it.hdr.max_timestamp != max_ts)
		good = 0;
	while ((ret = batch_iter_next(&it, &r)) == 1) {
		const struct record_in *w = &recs[i];
		const uint8_t *hp = r.headers;
		struct batch_record_header h;
		int hn = 0, hr;
		if (i >= n || r.offset_delta != i ||
		    it.hdr.base_timestamp + r.timestamp_delta != w->timestamp ||
		    !bytes_eq(r.key, r.key_len, w->key, w->key_len) ||
		    !bytes_eq(r.value, r.value_len, w->value, w->value_len) ||
		    r.header_count != w->header_count) {
			diag("record %d differs", i);
			good = 0;
			break;
		}
		while ((hr = batch_record_header_next(&hp, r.headers + r.headers_len, &h)) == 1) {
			const struct record_header_in *wh = &w->headers[hn++];
			if (!bytes_eq(h.key, h.key_len, wh->key, wh->key_len) ||
			    !bytes_eq(h.value, h.value_len, wh->value, wh->value_len))
				good = 0;
		}
		if (hr != 0 || hn != w->header_count)
			good = 0;
		i++;
	}
	batch_iter_fini(&it);
	return good && ret == 0 && i == n;
}

static int build(const struct record_in *recs, int n, uint8_t **out, size_t *out_len)
{
	struct batch_builder b;
	int ret = 0;
	batch_builder_init(&b);
	for (int i = 0; i < n && !ret; i++)
		ret = batch_builder_add(&b, &recs[i]);
	if (!ret)
		ret = batch_builder_finish(&b, out, out_len);
	batch_builder_fini(&b);
	return ret;
}

/* Walk every record; 0 when the whole batch decodes, else the error. */
static int walk(const uint8_t *b, size_t len, int *nrec)
{
	struct batch_iter it;
	struct batch_record r;
	int ret;
	*nrec = 0;
	ret = batch_iter_init(&it, b, len);
	if (ret) {
		batch_iter_fini(&it);
		return ret;
	}
	while ((ret = batch_iter_next(&it, &r)) == 1) {
		const uint8_t *hp = r.headers;
		struct batch_record_header h;
		int hr;
		/* Touch every byte handed out so ASan sees any overrun. */
		volatile uint8_t sink = 0;
		for (int32_t k = 0; k < r.key_len; k++)
			sink ^= r.key[k];
		for (int32_t k = 0; k < r.value_len; k++)
			sink ^= r.value[k];
		while ((hr = batch_record_header_next(&hp, r.headers + r.headers_len, &h)) == 1) {
			for (int32_t k = 0; k < h.key_len; k++)
				sink ^= h.key[k];
			for (int32_t k = 0; k < h.value_len; k++)
				sink ^= h.value[k];
		}
		(void)sink;
		if (hr < 0) {
			ret = hr;
			break;
		}
		(*nrec)++;
	}
	batch_iter_fini(&it);
	return ret;
}

/* ---- varints ----------------------------------------------------------- */

static void test_varints(void)
{
	static const struct {
		int64_t v;
		const char *enc;
		size_t n;
	} cases[] = {
		{ 0, "\x00", 1 },
		{ -1, "\x01", 1 },
		{ 1, "\x02", 1 },
		{ 63, "\x7e", 1 },
		{ -64, "\x7f", 1 },
		{ 64, "\x80\x01", 2 },
		{ -65, "\x81\x01", 2 },
		{ INT32_MAX, "\xfe\xff\xff\xff\x0f", 5 },
		{ INT32_MIN, "\xff\xff\xff\xff\x0f", 5 },
		{ INT64_MAX, "\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10 },
		{ INT64_MIN, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10 },
	};
	int good = 1;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[10];
		int64_t back = 12345;
		size_t n = varint_put(buf, cases[i].v);
		size_t m = varint_get(buf, buf + n, &back);
		if (n != cases[i].n || memcmp(buf, cases[i].enc, n) || m != n ||
		    back != cases[i].v) {
			diag("varint %lld: %zu bytes, decoded %lld", (long long)cases[i].v, n,
			     (long long)back);
			good = 0;
		}
		/* One byte short never decodes. */
		if (varint_get(buf, buf + n - 1, &back) != 0)
			good = 0;
	}
	ok(good, "zig-zag varints of edge values encode as Kafka's and round trip");

	good = 1;
	for (int i = 0; i < 100000; i++) {
		uint8_t buf[10];
		int64_t v = (int64_t)(rng() >> (rng() % 64)), back;
		if (rng() & 1)
			v = -v;
		size_t n = varint_put(buf, v);
		if (varint_get(buf, buf + n, &back) != n || back != v)
			good = 0;
	}
	ok(good, "100000 random varints round trip");

	{
		uint8_t buf[10];
		uint64_t back;
		size_t n = uvarint_put(buf, 300);
		int a = n == 2 && buf[0] == 0xac && buf[1] == 0x02 &&
			uvarint_get(buf, buf + n, &back) == 2 && back == 300;
		n = uvarint_put(buf, UINT64_MAX);
		int b = n == 10 && uvarint_get(buf, buf + n, &back) == 10 && back == UINT64_MAX;
		n = uvarint_put(buf, 0);
		int c = n == 1 && buf[0] == 0 && uvarint_get(buf, buf + 1, &back) == 1 && back == 0;
		ok(a && b && c, "unsigned varints: 300 = ac 02, 0 and UINT64_MAX round trip");
	}

	{
		static const uint8_t eleven[11] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
						    0x80, 0x80, 0x80, 0x80, 0x00 };
		static const uint8_t tenth_big[10] = { 0xff, 0xff, 0xff, 0xff, 0xff,
						       0xff, 0xff, 0xff, 0xff, 0x02 };
		static const uint8_t cont[1] = { 0x80 };
		int64_t v;
		uint64_t u;
		ok(varint_get(eleven, eleven + 11, &v) == 0 &&
			   varint_get(tenth_big, tenth_big + 10, &v) == 0 &&
			   varint_get(cont, cont + 1, &v) == 0 && varint_get(cont, cont, &v) == 0 &&
			   uvarint_get(eleven, eleven + 11, &u) == 0 &&
			   uvarint_get(tenth_big, tenth_big + 10, &u) == 0,
		   "malformed varints (11 bytes, overflowing 10th byte, cut, empty) are rejected");
	}
}

/* ---- builder ----------------------------------------------------------- */

static void test_builder(void)
{
	static const uint8_t bin[] = { 0x00, 0xff, 0x0a, 0x00, 0x80, 0x7f, 0x0d };
	static const struct record_header_in hdrs[] = {
		{ "trace", 5, "abc", 3 },
		{ "nullv", 5, NULL, -1 },
		{ "", 0, "", 0 },
		{ "bin", 3, bin, (int32_t)sizeof(bin) },
	};
	const struct record_in recs[] = {
		{ .timestamp = 1700000000000,
		  .key = NULL,
		  .key_len = -1,
		  .value = "hello",
		  .value_len = 5 },
		{ .timestamp = 1700000000500,
		  .key = "k",
		  .key_len = 1,
		  .value = NULL,
		  .value_len = -1 },
		{ .timestamp = 1699999999000, .key = "", .key_len = 0, .value = "", .value_len = 0 },
		{ .timestamp = 1700000000100,
		  .key = bin,
		  .key_len = 7,
		  .value = bin,
		  .value_len = 7,
		  .headers = hdrs,
		  .header_count = 4 },
		{ .timestamp = 1700000000100,
		  .key = NULL,
		  .key_len = -1,
		  .value = "x",
		  .value_len = 1,
		  .headers = hdrs + 1,
		  .header_count = 1 },
	};
	uint8_t *b = NULL;
	size_t len = 0;
	struct batch_header h;

	ok(build(recs, 5, &b, &len) == 0, "builder accepts nulls, empties, binary and headers");
	ok(b && batch_header_parse(b, len, &h) == 0 && h.magic == 2 && h.attributes == 0 &&
		   h.base_offset == 0 && h.batch_length == (int32_t)len - 12 &&
		   h.record_count == 5 && h.last_offset_delta == 4,
	   "built header parses: magic 2, attributes 0, length, count");
	ok(b && batch_crc_check(b, len) == 0, "built batch has a valid CRC");
	ok(b && h.base_timestamp == 1700000000000 && h.max_timestamp == 1700000000500,
	   "base timestamp is the first record's, max the largest");
	ok(b && check_records(b, len, recs, 5), "records and headers decode as built");
	{
		uint64_t raw = 0;
		int rr = b ? batch_raw_size(b, len, &raw) : -1;
		ok(rr == 0 && raw == 5 + 0 + 0 + 7 + 1 + 5,
		   "raw size: values (null = 0) plus one newline each (%llu)",
		   (unsigned long long)raw);
	}
	if (b) {
		batch_set_base_offset(b, 0x0102030405060708);
		ok(batch_header_parse(b, len, &h) == 0 && h.base_offset == 0x0102030405060708 &&
			   b[0] == 1 && b[7] == 8 && batch_crc_check(b, len) == 0,
		   "base offset patched big-endian in place; CRC unaffected");
	} else {
		ok(0, "base offset patch");
	}
	free(b);

	/* Many records of many sizes, so varint widths of every field vary. */
	{
		int n = 20000;
		struct record_in *many = calloc((size_t)n, sizeof(*many));
		uint8_t *pool = malloc(70000);
		if (!many || !pool)
			bail("out of memory");
		for (size_t i = 0; i < 70000; i++)
			pool[i] = (uint8_t)rng();
		for (int i = 0; i < n; i++) {
			int32_t vlen = i % 97 == 0 ? 20000 + i % 50000 : (int32_t)(rng() % 300);
			many[i].timestamp = 1000000 + (int64_t)(rng() % 100000) - 50000;
			many[i].value = pool;
			many[i].value_len = i % 13 == 0 ? -1 : vlen;
			many[i].key = pool + 5;
			many[i].key_len = i % 3 == 0 ? -1 : (int32_t)(rng() % 200);
		}
		b = NULL;
		ok(build(many, n, &b, &len) == 0 && batch_crc_check(b, len) == 0 &&
			   check_records(b, len, many, n),
		   "%d records of varied sizes and timestamps round trip (%zu bytes)", n, len);
		free(b);
		free(many);
		free(pool);
	}

	/* Misuse. */
	{
		struct batch_builder bb;
		struct record_in bad = { .timestamp = 1, .key_len = -2, .value_len = -1 };
		struct record_header_in nullkey = { NULL, -1, "v", 1 };
		struct record_in badh = { .timestamp = 1,
					  .key_len = -1,
					  .value = "v",
					  .value_len = 1,
					  .headers = &nullkey,
					  .header_count = 1 };
		uint8_t *o = NULL;
		size_t ol = 0;
		batch_builder_init(&bb);
		ok(batch_builder_finish(&bb, &o, &ol) == -EINVAL, "finish with no record: -EINVAL");
		ok(batch_builder_add(&bb, &bad) == -EINVAL, "key length -2: -EINVAL");
		bad.key_len = -1;
		bad.value_len = -5;
		ok(batch_builder_add(&bb, &bad) == -EINVAL, "value length -5: -EINVAL");
		ok(batch_builder_add(&bb, &badh) == -EINVAL, "null header key: -EINVAL");
		ok(bb.count == 0, "rejected records leave the builder empty");
		bad.value_len = 0;
		ok(batch_builder_add(&bb, &bad) == 0 && batch_builder_finish(&bb, &o, &ol) == 0 &&
			   bb.count == 0 && bb.buf == NULL && batch_crc_check(o, ol) == 0,
		   "after finish the builder is reset and empty");
		free(o);
		batch_builder_fini(&bb);
	}
}

/* ---- line encoder ------------------------------------------------------ */

static void test_encode_lines(void)
{
	static const char text[] = "alpha\n\nthird line\n";
	uint8_t *b = NULL;
	size_t len = 0;
	int32_t count = 0;

	ok(batch_encode_lines(text, sizeof(text) - 1, 42, &b, &len, &count) == 0 && count == 3,
	   "encode_lines: 3 lines, one an empty line");
	if (b) {
		struct batch_iter it;
		struct batch_record r;
		const char *want[] = { "alpha", "", "third line" };
		int i = 0, good = batch_crc_check(b, len) == 0;
		uint64_t raw = 0;
		good &= batch_iter_init(&it, b, len) == 0 && it.hdr.base_timestamp == 42 &&
			it.hdr.max_timestamp == 42;
		while (good && batch_iter_next(&it, &r) == 1) {
			good &= i < 3 && r.key_len == -1 && r.key == NULL && r.offset_delta == i &&
				r.timestamp_delta == 0 && r.header_count == 0 &&
				bytes_eq(r.value, r.value_len, want[i], (int32_t)strlen(want[i]));
			i++;
		}
		batch_iter_fini(&it);
		ok(good && i == 3, "lines decode: values, null keys, offset deltas, timestamp 42");
		ok(batch_raw_size(b, len, &raw) == 0 && raw == sizeof(text) - 1,
		   "raw size equals the input length");
		free(b);
	} else {
		ok(0, "lines decode");
		ok(0, "raw size");
	}

	b = NULL;
	ok(batch_encode_lines("no newline", 10, 0, &b, &len, &count) == -EINVAL && b == NULL,
	   "input not ending in a newline: -EINVAL");
	ok(batch_encode_lines("", 0, 0, &b, &len, &count) == -EINVAL, "empty input: -EINVAL");

	/* Same bytes as the builder given the same records: line lengths and
	 * offset deltas that need 1, 2 and 3 varint bytes. */
	{
		size_t n = 30000, cap = 0, pos = 0;
		char *buf;
		struct record_in *recs = calloc(n, sizeof(*recs));
		size_t *lens = calloc(n, sizeof(*lens));
		for (size_t i = 0; i < n; i++) {
			lens[i] = i % 1000 == 0 ? 20000 : rng() % 200;
			cap += lens[i] + 1;
		}
		buf = malloc(cap);
		if (!buf || !recs || !lens)
			bail("out of memory");
		for (size_t i = 0; i < n; i++) {
			for (size_t k = 0; k < lens[i]; k++)
				buf[pos + k] = (char)(' ' + rng() % 90);
			recs[i] = (struct record_in){ .timestamp = 777,
						      .key_len = -1,
						      .value = buf + pos,
						      .value_len = (int32_t)lens[i] };
			pos += lens[i];
			buf[pos++] = '\n';
		}
		uint8_t *a = NULL, *c = NULL;
		size_t alen = 0, clen = 0;
		int ra = batch_encode_lines(buf, cap, 777, &a, &alen, &count);
		int rc = build(recs, (int)n, &c, &clen);
		ok(ra == 0 && rc == 0 && count == (int32_t)n && alen == clen &&
			   memcmp(a, c, alen) == 0,
		   "encode_lines gives the builder's bytes for %zu lines (%zu bytes)", n, alen);
		free(a);
		free(c);
		free(buf);
		free(recs);
		free(lens);
	}
}

/* ---- header validation and CRC ----------------------------------------- */

static void test_header_and_crc(void)
{
	static const char text[] = "one\ntwo\nthree\n";
	uint8_t *b = NULL, *c;
	size_t len = 0;
	int32_t count;
	struct batch_header h;
	int good;

	if (batch_encode_lines(text, sizeof(text) - 1, 5, &b, &len, &count))
		bail("encode_lines failed");

	good = 1;
	for (size_t l = 0; l < BATCH_HEADER_SIZE; l++) {
		c = dup_exact(b, l);
		if (batch_header_parse(c, l, &h) != CHRONIK_ECORRUPT)
			good = 0;
		free(c);
	}
	ok(good, "every length below 61 bytes: CHRONIK_ECORRUPT");

	c = dup_exact(b, len);
	good = 1;
	for (int m = 0; m < 256; m++) {
		c[16] = (uint8_t)m;
		int want = m == 2 ? 0 : CHRONIK_EVERSION;
		if (batch_header_parse(c, len, &h) != want)
			good = 0;
	}
	c[16] = 2;
	ok(good, "magic other than 2: CHRONIK_EVERSION");
	{
		uint8_t old[26] = { 0 };
		old[16] = 1; /* a v1 message set is shorter than 61 bytes */
		ok(batch_header_parse(old, sizeof(old), &h) == CHRONIK_EVERSION,
		   "short v1 message: CHRONIK_EVERSION");
	}

	wr32(c + 8, (uint32_t)(len - 12 + 1));
	good = batch_header_parse(c, len, &h) == CHRONIK_ECORRUPT;
	wr32(c + 8, (uint32_t)(len - 12 - 1));
	good &= batch_header_parse(c, len, &h) == CHRONIK_ECORRUPT;
	wr32(c + 8, 0x80000000u);
	good &= batch_header_parse(c, len, &h) == CHRONIK_ECORRUPT;
	wr32(c + 8, (uint32_t)(len - 12));
	good &= batch_header_parse(c, len, &h) == 0;
	ok(good, "batchLength + 12 != buffer length: CHRONIK_ECORRUPT");
	wr32(c + 57, 0xffffffffu);
	ok(batch_header_parse(c, len, &h) == CHRONIK_ECORRUPT,
	   "negative record count: CHRONIK_ECORRUPT");
	free(c);

	/* Flip one bit at every byte of [17, end): the CRC catches each. */
	good = 1;
	for (size_t i = 17; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			c = dup_exact(b, len);
			c[i] ^= (uint8_t)(1 << bit);
			if (batch_crc_check(c, len) != CHRONIK_EBADCRC) {
				diag("flip at byte %zu bit %d not detected", i, bit);
				good = 0;
			}
			free(c);
		}
	}
	ok(good, "a flipped bit anywhere in [17, %zu) gives CHRONIK_EBADCRC", len);
	good = 1;
	for (size_t i = 0; i < 17; i++) {
		c = dup_exact(b, len);
		c[i] ^= 0x40;
		if (batch_crc_check(c, len) != 0)
			good = 0;
		free(c);
	}
	ok(good, "bytes [0, 17) are outside the CRC");
	free(b);
}

/* ---- malformed and truncated records ----------------------------------- */

static void test_malformed(void)
{
	static const struct record_header_in hdrs[] = { { "h1", 2, "v1", 2 },
							{ "h2", 2, NULL, -1 } };
	struct record_in recs[6];
	uint8_t *b = NULL, *c;
	size_t len = 0;
	int good, n, ret;

	for (int i = 0; i < 6; i++)
		recs[i] = (struct record_in){ .timestamp = 100 + i,
					      .key = "key",
					      .key_len = i % 2 ? 3 : -1,
					      .value = "some value bytes",
					      .value_len = 3 + i,
					      .headers = hdrs,
					      .header_count = i % 3 };
	if (build(recs, 6, &b, &len))
		bail("build failed");

	/* Cut at every length; once with the header left as is, once with
	 * batchLength and CRC fixed to the cut so the record walk itself meets
	 * the end. Never all six records, never a crash. */
	good = 1;
	for (size_t l = 0; l < len; l++) {
		c = dup_exact(b, l);
		ret = walk(c, l, &n);
		if (ret >= 0)
			good = 0;
		if (l >= BATCH_HEADER_SIZE) {
			batch_fix(c, l);
			ret = walk(c, l, &n);
			if (ret != CHRONIK_ECORRUPT || n == 6) {
				diag("cut at %zu: ret %d, %d records", l, ret, n);
				good = 0;
			}
		}
		free(c);
	}
	ok(good, "batch cut at each of %zu lengths: an error, never a crash", len);

	/* Extra bytes after the last record. */
	c = malloc(len + 1);
	memcpy(c, b, len);
	c[len] = 0;
	batch_fix(c, len + 1);
	ok(walk(c, len + 1, &n) == CHRONIK_ECORRUPT && n == 6,
	   "a byte after the last record: CHRONIK_ECORRUPT");
	free(c);

	/* recordCount larger / smaller than the records present. */
	c = dup_exact(b, len);
	wr32(c + 57, 7);
	ok(walk(c, len, &n) == CHRONIK_ECORRUPT,
	   "recordCount above the records present: CHRONIK_ECORRUPT");
	wr32(c + 57, 5);
	ok(walk(c, len, &n) == CHRONIK_ECORRUPT && n == 5,
	   "recordCount below the records present: CHRONIK_ECORRUPT");
	wr32(c + 57, 6);
	ok(walk(c, len, &n) == 0 && n == 6, "restored count walks all 6");
	free(c);

	/* Hand-made single-record batches. */
	{
		static const struct {
			const char *what;
			uint8_t rec[24];
			size_t n;
			int want;
		} cases[] = {
			/* length (zig-zag), attributes, timestampDelta, offsetDelta,
			 * keyLength, valueLength, value, headerCount, headers */
			{ "valid", { 14, 0, 0, 0, 1, 2, 'a', 0 }, 8, 0 },
			{ "record length past the end",
			  { 16, 0, 0, 0, 1, 2, 'a', 0 },
			  8,
			  CHRONIK_ECORRUPT },
			{ "negative record length",
			  { 1, 0, 0, 0, 1, 2, 'a', 0 },
			  8,
			  CHRONIK_ECORRUPT },
			{ "record longer than its fields",
			  { 16, 0, 0, 0, 1, 2, 'a', 0, 0 },
			  9,
			  CHRONIK_ECORRUPT },
			{ "key length -2", { 14, 0, 0, 0, 3, 2, 'a', 0 }, 8, CHRONIK_ECORRUPT },
			{ "value length past the record",
			  { 14, 0, 0, 0, 1, 8, 'a', 0 },
			  8,
			  CHRONIK_ECORRUPT },
			{ "negative header count",
			  { 14, 0, 0, 0, 1, 2, 'a', 1 },
			  8,
			  CHRONIK_ECORRUPT },
			{ "header count past the record",
			  { 14, 0, 0, 0, 1, 2, 'a', 2 },
			  8,
			  CHRONIK_ECORRUPT },
			{ "null header key",
			  { 20, 0, 0, 0, 1, 2, 'a', 2, 1, 2, 'b' },
			  11,
			  CHRONIK_ECORRUPT },
			{ "valid header", { 22, 0, 0, 0, 1, 2, 'a', 2, 2, 'k', 2, 'b' }, 12, 0 },
			{ "offset delta over int32",
			  { 22, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x1f, 1, 2, 'a', 0 },
			  12,
			  CHRONIK_ECORRUPT },
			{ "overlong varint",
			  { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0 },
			  12,
			  CHRONIK_ECORRUPT },
			{ "empty record", { 0 }, 1, CHRONIK_ECORRUPT },
		};
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			size_t blen = BATCH_HEADER_SIZE + cases[i].n;
			c = calloc(1, blen);
			memcpy(c, b, BATCH_HEADER_SIZE);
			memcpy(c + BATCH_HEADER_SIZE, cases[i].rec, cases[i].n);
			wr32(c + 57, 1);
			batch_fix(c, blen);
			ret = walk(c, blen, &n);
			ok(ret == cases[i].want, "%s: %d (want %d)", cases[i].what, ret,
			   cases[i].want);
			free(c);
		}
	}

	/* The header walker on its own. */
	{
		static const uint8_t bad_hdr[] = { 2, 'k', 9, 'v' };
		static const uint8_t good_hdr[] = { 2, 'k', 1, 0, 2, 'v' };
		const uint8_t *p = bad_hdr;
		struct batch_record_header h;
		int a = batch_record_header_next(&p, bad_hdr + sizeof(bad_hdr), &h) ==
			CHRONIK_ECORRUPT;
		p = good_hdr;
		int b1 = batch_record_header_next(&p, good_hdr + sizeof(good_hdr), &h) == 1 &&
			 h.key_len == 1 && h.key[0] == 'k' && h.value_len == -1 && h.value == NULL;
		int b2 = batch_record_header_next(&p, good_hdr + sizeof(good_hdr), &h) == 1 &&
			 h.key_len == 0 && h.value_len == 1 && h.value[0] == 'v';
		int b3 = batch_record_header_next(&p, good_hdr + sizeof(good_hdr), &h) == 0;
		ok(a && b1 && b2 && b3,
		   "header walker: two headers then end; value past the end is corrupt");
	}

	/* Random damage to the record bytes (header kept consistent): the walk
	 * ends in a result, never a crash. */
	{
		int results[3] = { 0, 0, 0 };
		for (int t = 0; t < 20000; t++) {
			c = dup_exact(b, len);
			int flips = 1 + (int)(rng() % 4);
			for (int f = 0; f < flips; f++)
				c[BATCH_HEADER_SIZE + rng() % (len - BATCH_HEADER_SIZE)] =
					(uint8_t)rng();
			ret = walk(c, len, &n);
			results[ret == 0 ? 0 : ret == CHRONIK_ECORRUPT ? 1 : 2]++;
			free(c);
		}
		diag("random damage: %d decoded, %d corrupt, %d other", results[0], results[1],
		     results[2]);
		ok(results[2] == 0 && results[1] > 0,
		   "20000 randomly damaged batches: decoded or CHRONIK_ECORRUPT");
	}
	free(b);
}

/* ---- codecs ------------------------------------------------------------ */

/* A stand-in decompressor: records are stored reversed byte for byte. */
static int reverse_codec(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	uint8_t *o = malloc(in_len ? in_len : 1);
	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < in_len; i++)
		o[i] = in[in_len - 1 - i];
	*out = o;
	*out_len = in_len;
	return 0;
}

/* The batch b with its records replaced by rec[0, rlen) and the codec set. */
static uint8_t *recode(const uint8_t *b, const uint8_t *rec, size_t rlen, int codec,
		       size_t *out_len)
{
	size_t len = BATCH_HEADER_SIZE + rlen;
	uint8_t *c = malloc(len);
	if (!c)
		bail("out of memory");
	memcpy(c, b, BATCH_HEADER_SIZE);
	memcpy(c + BATCH_HEADER_SIZE, rec, rlen);
	c[22] = (uint8_t)((c[22] & ~BATCH_ATTR_CODEC_MASK) | codec);
	batch_fix(c, len);
	*out_len = len;
	return c;
}

static void test_codecs(void)
{
	struct record_in recs[50];
	char vals[50][16];
	uint8_t *b = NULL, *c, *z;
	size_t len = 0, clen, zcap, zlen;
	int n;

	for (int i = 0; i < 50; i++) {
		int l = snprintf(vals[i], sizeof(vals[i]), "msg-%d", i);
		recs[i] = (struct record_in){
			.timestamp = 1000 + i, .key_len = -1, .value = vals[i], .value_len = l
		};
	}
	if (build(recs, 50, &b, &len))
		bail("build failed");

	const uint8_t *rec = b + BATCH_HEADER_SIZE;
	size_t rlen = len - BATCH_HEADER_SIZE;
	zcap = LZ4F_compressFrameBound(rlen, NULL);
	z = malloc(zcap);
	zlen = LZ4F_compressFrame(z, zcap, rec, rlen, NULL);
	if (LZ4F_isError(zlen))
		bail("lz4 compression failed");

	c = recode(b, z, zlen, BATCH_CODEC_LZ4, &clen);
	{
		uint64_t raw = 0;
		ok(batch_crc_check(c, clen) == 0 && check_records(c, clen, recs, 50),
		   "lz4 frame batch decodes through the built-in codec");
		int rr = batch_raw_size(c, clen, &raw);
		/* "msg-0".."msg-9" are 5 bytes, "msg-10".."msg-49" 6, plus newlines. */
		ok(rr == 0 && raw == 10 * 5 + 40 * 6 + 50, "raw size of the lz4 batch (%llu)",
		   (unsigned long long)raw);
	}
	free(c);

	/* Damaged lz4 frames. */
	{
		int good = 1;
		for (size_t l = 0; l < zlen; l++) {
			c = recode(b, z, l, BATCH_CODEC_LZ4, &clen);
			if (walk(c, clen, &n) != CHRONIK_ECORRUPT)
				good = 0;
			free(c);
		}
		ok(good, "lz4 frame cut at each of %zu lengths: CHRONIK_ECORRUPT", zlen);
		uint8_t *zz = dup_exact(z, zlen);
		zz[4] ^= 0xff; /* frame descriptor flags */
		c = recode(b, zz, zlen, BATCH_CODEC_LZ4, &clen);
		ok(walk(c, clen, &n) == CHRONIK_ECORRUPT,
		   "bad lz4 frame descriptor: CHRONIK_ECORRUPT");
		free(c);
		free(zz);
		uint8_t *two = malloc(2 * zlen);
		memcpy(two, z, zlen);
		memcpy(two + zlen, z, zlen);
		c = recode(b, two, 2 * zlen, BATCH_CODEC_LZ4, &clen);
		ok(walk(c, clen, &n) == CHRONIK_ECORRUPT && n == 50,
		   "two concatenated frames decode, then the extra records are corrupt");
		free(c);
		free(two);
	}

	/* Codecs without a decompressor: only the numbers Kafka does not
	 * define (gzip, snappy and zstd are the engine's own, and records that
	 * are not really compressed with them are corrupt to them). */
	{
		int good = 1;
		for (int codec = 5; codec < 8; codec++) {
			c = recode(b, z, zlen, codec, &clen);
			if (walk(c, clen, &n) != CHRONIK_ECODEC)
				good = 0;
			uint64_t raw;
			if (batch_raw_size(c, clen, &raw) != CHRONIK_ECODEC)
				good = 0;
			free(c);
		}
		ok(good, "codecs 5-7 have no decompressor: CHRONIK_ECODEC");
		good = 1;
		static const int own[] = { BATCH_CODEC_GZIP, BATCH_CODEC_SNAPPY, BATCH_CODEC_ZSTD };
		for (int i = 0; i < 3; i++) {
			c = recode(b, z, zlen, own[i], &clen);
			if (walk(c, clen, &n) != CHRONIK_ECORRUPT)
				good = 0;
			free(c);
		}
		ok(good && batch_decompress_budget_used() == 0,
		   "gzip, snappy and zstd are the engine's own: lz4 bytes are corrupt to them");
	}

	/* A registered decompressor is used. */
	{
		uint8_t *rev = malloc(rlen);
		for (size_t i = 0; i < rlen; i++)
			rev[i] = rec[rlen - 1 - i];
		batch_codec_register((enum batch_codec)5, reverse_codec);
		c = recode(b, rev, rlen, 5, &clen);
		ok(check_records(c, clen, recs, 50), "a registered codec decodes its batches");
		free(c);
		free(rev);
	}
	free(z);
	free(b);
}

int main(void)
{
	test_varints();
	test_builder();
	test_encode_lines();
	test_header_and_crc();
	test_malformed();
	test_codecs();
	return tap_exit();
}
