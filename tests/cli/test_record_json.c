/* test_record_json.c - the JSON rendering of records (cli/record_json.c):
 * UTF-8 validation, base64, and the lossless key/value/header rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "record_json.h"
#include "tap.h"

static void check_utf8(const char *bytes, size_t len, bool want, const char *name)
{
	ok(record_json_utf8_valid((const uint8_t *)bytes, len) == want, "utf8 %s: %s", name,
	   want ? "valid" : "invalid");
}

static void check_b64(const char *in, const char *want)
{
	char *got = record_json_base64((const uint8_t *)in, strlen(in));

	ok(got && !strcmp(got, want), "base64(\"%s\") = \"%s\" (got \"%s\")", in, want,
	   got ? got : "NULL");
	free(got);
}

static const char *render(const struct engine_record *r, char *buf, size_t size)
{
	int err = 0;
	struct json_object *o = record_json_new(r, &err);

	if (!o) {
		snprintf(buf, size, "(error %d)", err);
		return buf;
	}
	snprintf(buf, size, "%s",
		 json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return buf;
}

/* Encode one record header in the batch encoding (zig-zag varints). */
static size_t put_header(uint8_t *p, const char *key, const void *value, int32_t value_len)
{
	size_t n = 0;
	int32_t klen = (int32_t)strlen(key);

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

int main(void)
{
	char out[1024];
	uint8_t hdrs[128];
	size_t hlen;

	tap_plan(24);

	check_utf8("", 0, true, "empty");
	check_utf8("plain ascii", 11, true, "ascii");
	check_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, true,
		   "2-, 3- and 4-byte forms");
	check_utf8("a\0b", 3, true, "embedded NUL");
	check_utf8("\xc0\xaf", 2, false, "overlong 2-byte");
	check_utf8("\xe0\x80\xaf", 3, false, "overlong 3-byte");
	check_utf8("\xed\xa0\x80", 3, false, "surrogate");
	check_utf8("\xf4\x90\x80\x80", 4, false, "above U+10FFFF");
	check_utf8("\xe2\x82", 2, false, "truncated sequence");
	check_utf8("\x80", 1, false, "lone continuation byte");
	check_utf8("\xff", 1, false, "0xff");

	/* RFC 4648 section 10 test vectors. */
	check_b64("", "");
	check_b64("f", "Zg==");
	check_b64("fo", "Zm8=");
	check_b64("foo", "Zm9v");
	check_b64("foob", "Zm9vYg==");
	check_b64("fooba", "Zm9vYmE=");
	check_b64("foobar", "Zm9vYmFy");

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
	   "plain record: %s", out);

	r.key = (const uint8_t *)"k";
	r.key_len = 1;
	r.value = NULL;
	r.value_len = -1;
	render(&r, out, sizeof(out));
	ok(strstr(out, "\"key\":\"k\"") && strstr(out, "\"value\":null"),
	   "null value is JSON null: %s", out);

	r.key = (const uint8_t *)"\xff";
	r.value = (const uint8_t *)"a\0\xfe";
	r.value_len = 3;
	render(&r, out, sizeof(out));
	ok(strstr(out, "\"key_b64\":\"/w==\"") && strstr(out, "\"value_b64\":\"YQD+\"") &&
		   !strstr(out, "\"value\":"),
	   "binary key and value go to key_b64/value_b64: %s", out);

	r.value = (const uint8_t *)"a\0b";
	render(&r, out, sizeof(out));
	ok(strstr(out, "\"value\":\"a\\u0000b\"") != NULL,
	   "valid UTF-8 with NUL stays a string: %s", out);

	hlen = put_header(hdrs, "trace", "abc", 3);
	hlen += put_header(hdrs + hlen, "bin", "\x80\x81", 2);
	hlen += put_header(hdrs + hlen, "none", NULL, -1);
	r.key = NULL;
	r.key_len = -1;
	r.value = (const uint8_t *)"v";
	r.value_len = 1;
	r.header_count = 3;
	r.headers = hdrs;
	r.headers_len = hlen;
	render(&r, out, sizeof(out));
	ok(strstr(out, "\"headers\":[{\"key\":\"trace\",\"value\":\"abc\"},"
		       "{\"key\":\"bin\",\"value_b64\":\"gIE=\"},"
		       "{\"key\":\"none\",\"value\":null}]") != NULL,
	   "headers in order, binary as base64, null as null: %s", out);

	r.header_count = 4; /* one more than encoded */
	render(&r, out, sizeof(out));
	ok(!strncmp(out, "(error", 6), "a header count beyond the encoded headers is an error: %s",
	   out);

	return tap_exit();
}
