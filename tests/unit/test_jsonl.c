/* test_jsonl.c - a record as one JSON line (wal/jsonl.c, wal/base64.c):
 * UTF-8 validation, base64, the exact rendering of null, binary and header
 * fields, and render-then-parse round trips. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "errors.h"
#include "jsonl.h"
#include "tap.h"

static void check_utf8(const char *bytes, size_t len, bool want, const char *name)
{
	ok(jsonl_utf8_valid((const uint8_t *)bytes, len) == want, "utf8 %s: %s", name,
	   want ? "valid" : "invalid");
}

static void check_b64(const char *in, const char *want)
{
	size_t n = strlen(in), wn = strlen(want);
	char enc[64] = { 0 };
	uint8_t dec[64];
	ssize_t dn;

	base64_encode((const uint8_t *)in, n, enc);
	ok(base64_encoded_len(n) == wn && !memcmp(enc, want, wn),
	   "base64(\"%s\") = \"%s\" (got \"%.*s\")", in, want, (int)base64_encoded_len(n), enc);
	dn = base64_decode(want, wn, dec);
	ok(dn == (ssize_t)n && !memcmp(dec, in, n), "base64 decode \"%s\" = \"%s\"", want, in);
}

static void check_b64_invalid(const char *in, const char *why)
{
	uint8_t dec[64];

	ok(base64_decode(in, strlen(in), dec) == -EINVAL, "base64 decode rejects %s", why);
}

/* The rendered line of r, NUL-terminated, without its '\n' (whose presence
 * is checked); "(error N)" when rendering fails. */
static const char *render(const struct engine_record *r, char *out, size_t size)
{
	struct jsonl_buf b = { NULL, 0, 0 };
	int err = jsonl_render(&b, r);

	if (err < 0)
		snprintf(out, size, "(error %d, len %zu)", err, b.len);
	else if (b.len == 0 || b.p[b.len - 1] != '\n' || memchr(b.p, '\n', b.len - 1))
		snprintf(out, size, "(not one line)");
	else
		snprintf(out, size, "%.*s", (int)(b.len - 1), b.p);
	free(b.p);
	return out;
}

/* Encode one record header in the batch encoding (zig-zag varints). */
static size_t put_header(uint8_t *p, const void *key, int32_t klen, const void *value,
			 int32_t value_len)
{
	size_t n = 0;

	n += varint_put(p + n, klen);
	memcpy(p + n, key, (size_t)klen);
	n += (size_t)klen;
	n += varint_put(p + n, value_len);
	if (value_len > 0) {
		memcpy(p + n, value, (size_t)value_len);
		n += (size_t)value_len;
	}
	return n;
}

static bool same_bytes(const void *a, int32_t alen, const void *b, int32_t blen)
{
	if (alen != blen)
		return false;
	return alen <= 0 || !memcmp(a, b, (size_t)alen);
}

/* Render r, parse the line back: the same timestamp, key, value and headers. */
static void check_round_trip(const struct engine_record *r, const char *name)
{
	struct jsonl_buf b = { NULL, 0, 0 };
	struct jsonl_batch *jb = NULL;
	const struct record_in *in;
	const uint8_t *pos = r->headers;
	const uint8_t *end = r->headers ? r->headers + r->headers_len : NULL;
	size_t n = 0, bad = 0;
	bool same;
	int err;

	err = jsonl_render(&b, r);
	if (err == 0)
		err = jsonl_batch_new(&jb);
	if (err == 0)
		err = jsonl_batch_parse(jb, b.p, b.len, &bad);
	if (err < 0) {
		ok(0, "round trip %s: error %d (line %zu)", name, err, bad);
		goto out;
	}
	in = jsonl_batch_records(jb, &n);
	same = n == 1 && in[0].timestamp == r->timestamp &&
	       same_bytes(in[0].key, in[0].key_len, r->key, r->key_len) &&
	       same_bytes(in[0].value, in[0].value_len, r->value, r->value_len) &&
	       in[0].header_count == r->header_count;
	for (int32_t i = 0; same && i < r->header_count; i++) {
		struct batch_record_header h;

		same = batch_record_header_next(&pos, end, &h) == 1 &&
		       same_bytes(in[0].headers[i].key, in[0].headers[i].key_len, h.key,
				  h.key_len) &&
		       same_bytes(in[0].headers[i].value, in[0].headers[i].value_len, h.value,
				  h.value_len);
	}
	ok(same, "round trip %s: %.*s", name, (int)(b.len ? b.len - 1 : 0), b.p);
out:
	jsonl_batch_free(jb);
	free(b.p);
}

int main(void)
{
	char out[1024];
	uint8_t hdrs[256];
	size_t hlen;

	tap_plan(51);

	check_utf8("", 0, true, "empty");
	check_utf8("plain ascii", 11, true, "ascii");
	check_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, true,
		   "2-, 3- and 4-byte forms");
	check_utf8("a\0b", 3, true, "embedded NUL");
	check_utf8("\xf4\x8f\xbf\xbf", 4, true, "U+10FFFF");
	check_utf8("\xc0\xaf", 2, false, "overlong 2-byte");
	check_utf8("\xe0\x80\xaf", 3, false, "overlong 3-byte");
	check_utf8("\xf0\x80\x80\xaf", 4, false, "overlong 4-byte");
	check_utf8("\xed\xa0\x80", 3, false, "surrogate");
	check_utf8("\xf4\x90\x80\x80", 4, false, "above U+10FFFF");
	check_utf8("\xe2\x82", 2, false, "truncated sequence");
	check_utf8("\x80", 1, false, "lone continuation byte");
	check_utf8("\xff", 1, false, "0xff");

	/* RFC 4648 section 10 test vectors, both ways. */
	check_b64("", "");
	check_b64("f", "Zg==");
	check_b64("fo", "Zm8=");
	check_b64("foo", "Zm9v");
	check_b64("foob", "Zm9vYg==");
	check_b64("fooba", "Zm9vYmE=");
	check_b64("foobar", "Zm9vYmFy");
	check_b64_invalid("Zm9v!", "a character outside the alphabet");
	check_b64_invalid("Z", "a lone character");
	check_b64_invalid("Zh==", "non-zero bits after the last byte");

	struct engine_record r = {
		.offset = 7,
		.timestamp = 1700000000000,
		.key = NULL,
		.key_len = -1,
		.value = (const uint8_t *)"hello \"world\"/",
		.value_len = 14,
	};
	render(&r, out, sizeof(out));
	ok(!strcmp(out, "{\"offset\":7,\"timestamp\":1700000000000,\"key\":null,"
			"\"value\":\"hello \\\"world\\\"/\",\"headers\":[]}"),
	   "plain record, '/' not escaped: %s", out);
	check_round_trip(&r, "plain record, null key");

	r.key = (const uint8_t *)"k";
	r.key_len = 1;
	r.value = NULL;
	r.value_len = -1;
	render(&r, out, sizeof(out));
	ok(!strcmp(out, "{\"offset\":7,\"timestamp\":1700000000000,\"key\":\"k\","
			"\"value\":null,\"headers\":[]}"),
	   "null value is JSON null: %s", out);
	check_round_trip(&r, "null value");

	r.offset = -1;
	r.timestamp = -5;
	r.key = (const uint8_t *)"";
	r.key_len = 0;
	r.value = (const uint8_t *)"";
	r.value_len = 0;
	render(&r, out, sizeof(out));
	ok(!strcmp(out, "{\"offset\":-1,\"timestamp\":-5,\"key\":\"\",\"value\":\"\","
			"\"headers\":[]}"),
	   "empty key and value are \"\", negative numbers: %s", out);
	check_round_trip(&r, "empty key and value");

	r.offset = 7;
	r.timestamp = 1700000000000;
	r.key = (const uint8_t *)"\xff";
	r.key_len = 1;
	r.value = (const uint8_t *)"a\0\xfe";
	r.value_len = 3;
	render(&r, out, sizeof(out));
	ok(!strcmp(out, "{\"offset\":7,\"timestamp\":1700000000000,\"key_b64\":\"/w==\","
			"\"value_b64\":\"YQD+\",\"headers\":[]}"),
	   "binary key and value go to key_b64/value_b64: %s", out);
	check_round_trip(&r, "binary key and value");

	r.value = (const uint8_t *)"a\0b";
	render(&r, out, sizeof(out));
	ok(strstr(out, "\"value\":\"a\\u0000b\"") != NULL,
	   "valid UTF-8 with NUL stays a string: %s", out);
	check_round_trip(&r, "value with NUL");

	r.key = (const uint8_t *)"caf\xc3\xa9";
	r.key_len = 5;
	r.value = (const uint8_t *)"\"\\\n\t\r\b\f\x01\x1f\x7f/\xe2\x82\xac";
	r.value_len = 14;
	render(&r, out, sizeof(out));
	ok(!strcmp(out, "{\"offset\":7,\"timestamp\":1700000000000,\"key\":\"caf\xc3\xa9\","
			"\"value\":\"\\\"\\\\\\n\\t\\r\\b\\f\\u0001\\u001f\x7f/\xe2\x82\xac\","
			"\"headers\":[]}"),
	   "escapes: the short forms, \\u00xx below 0x20, the rest verbatim: %s", out);
	check_round_trip(&r, "every escape");

	hlen = put_header(hdrs, "trace", 5, "abc", 3);
	hlen += put_header(hdrs + hlen, "bin", 3, "\x80\x81", 2);
	hlen += put_header(hdrs + hlen, "none", 4, NULL, -1);
	hlen += put_header(hdrs + hlen, "trace", 5, "", 0);
	r.key = NULL;
	r.key_len = -1;
	r.value = (const uint8_t *)"v";
	r.value_len = 1;
	r.header_count = 4;
	r.headers = hdrs;
	r.headers_len = hlen;
	render(&r, out, sizeof(out));
	ok(!strcmp(out, "{\"offset\":7,\"timestamp\":1700000000000,\"key\":null,\"value\":\"v\","
			"\"headers\":[{\"key\":\"trace\",\"value\":\"abc\"},"
			"{\"key\":\"bin\",\"value_b64\":\"gIE=\"},"
			"{\"key\":\"none\",\"value\":null},"
			"{\"key\":\"trace\",\"value\":\"\"}]}"),
	   "headers in order, repeated keys kept, binary as base64, null as null: %s", out);
	check_round_trip(&r, "headers");

	hlen = put_header(hdrs, "\xfe\xff", 2, "\x00\x01\x02", 3);
	hlen += put_header(hdrs + hlen, "k\"\\", 3, "\xc3", 1);
	r.key = (const uint8_t *)"\x00\x80";
	r.key_len = 2;
	r.value = (const uint8_t *)"\xde\xad\xbe\xef";
	r.value_len = 4;
	r.header_count = 2;
	r.headers_len = hlen;
	render(&r, out, sizeof(out));
	ok(!strcmp(out, "{\"offset\":7,\"timestamp\":1700000000000,\"key_b64\":\"AIA=\","
			"\"value_b64\":\"3q2+7w==\",\"headers\":[{\"key_b64\":\"/v8=\","
			"\"value\":\"\\u0000\\u0001\\u0002\"},"
			"{\"key\":\"k\\\"\\\\\",\"value_b64\":\"ww==\"}]}"),
	   "binary header keys and values: %s", out);
	check_round_trip(&r, "binary key, value and headers");

	/* every byte value once, as key, value and header value */
	uint8_t all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	hlen = put_header(hdrs, "all", 3, all, 128);
	r.key = all + 128;
	r.key_len = 128;
	r.value = all;
	r.value_len = 256;
	r.header_count = 1;
	r.headers_len = hlen;
	check_round_trip(&r, "every byte value");
	r.value_len = 128; /* 0x00..0x7f: valid UTF-8, every control escaped */
	check_round_trip(&r, "every ASCII byte as a string");

	{
		struct jsonl_buf b = { NULL, 0, 0 };
		int e1 = jsonl_render(&b, &r);
		size_t first = b.len;
		int e2 = jsonl_render(&b, &r);

		ok(e1 == 0 && e2 == 0 && b.len == 2 * first && !memcmp(b.p, b.p + first, first),
		   "rendering is deterministic and appends to the buffer");
		free(b.p);
	}

	r.header_count = 2; /* one more than encoded */
	render(&r, out, sizeof(out));
	ok(!strncmp(out, "(error", 6), "a header count beyond the encoded headers is an error: %s",
	   out);
	{
		struct jsonl_buf b = { NULL, 0, 0 };
		int e1 =
			jsonl_render(&b, &(struct engine_record){ .key_len = -1, .value_len = -1 });
		size_t before = b.len;
		int e2 = jsonl_render(&b, &r);

		ok(e1 == 0 && e2 == CHRONIK_ECORRUPT && b.len == before,
		   "the error is CHRONIK_ECORRUPT and leaves the buffer as it was");
		free(b.p);
	}

	return tap_exit();
}
