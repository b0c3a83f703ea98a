/* test_cursor.c - a cursor that fails to load a batch stays on it.
 *
 * A compressed batch is decompressed when a cursor reaches it, and the
 * decompression may fail with -ENOMEM (the process-wide budget of
 * batch.h, a normal outcome under load). The next call must retry that
 * batch, not go on with the one after it. The codec here is a test one
 * registered for gzip: "compressed" records are the records themselves,
 * and it fails with -ENOMEM while fail_left > 0. Also: a batch whose
 * baseTimestamp + timestampDelta overflows is read without undefined
 * behaviour (the sanitizer build traps it). */
#include <errno.h>
#include <stdint.h>

#include "batch.h"
#include "byteorder.h"
#include "crc32c.h"
#include "testutil.h"

static int fail_left;

static int identity_codec(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	if (fail_left > 0) {
		fail_left--;
		return -ENOMEM;
	}
	*out = malloc(in_len ? in_len : 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, in, in_len);
	*out_len = in_len;
	return 0;
}

/* A batch of n records "<tag><i>"; codec: attributes' codec bits. */
static uint8_t *make_batch(const char *tag, int n, int codec, int64_t ts, size_t *len)
{
	struct batch_builder b;
	uint8_t *out;
	char vals[16][32];

	batch_builder_init(&b);
	for (int i = 0; i < n; i++) {
		struct record_in r = { .timestamp = ts, .key_len = -1, .value = vals[i] };
		r.value_len = sprintf(vals[i], "%s%d", tag, i);
		if (batch_builder_add(&b, &r))
			bail("builder");
	}
	if (batch_builder_finish(&b, &out, len))
		bail("finish");
	batch_builder_fini(&b);
	if (codec) {
		put_be16(out + 21, (uint16_t)(get_be16(out + 21) | codec));
		put_be32(out + 17, crc32c(0, out + BATCH_CRC_START, *len - BATCH_CRC_START));
	}
	return out;
}

static void append(struct partition *p, const char *tag, int n, int codec, int64_t ts, int64_t want)
{
	size_t len;
	uint8_t *b = make_batch(tag, n, codec, ts, &len);
	int64_t base;
	int rc = engine_append_batch(p, b, len, true, &base);
	if (rc || base != want)
		bail("append %s: %s", tag, chronik_strerror(rc));
	free(b);
}

int main(void)
{
	char *dir = tmpdir_new("cursor");
	struct engine *e;
	struct partition *p;
	struct engine_cursor *c;
	struct engine_record r;
	int rc;

	batch_codec_register(BATCH_CODEC_GZIP, identity_codec);
	e = open_or_bail(dir, NULL);
	engine_topic_create(e, "c", 1, NULL);
	p = part_or_bail(e, "c", 0);
	append(p, "a", 2, 0, 1000, 0);
	append(p, "z", 3, BATCH_CODEC_GZIP, 1000, 2);
	append(p, "c", 1, 0, 1000, 5);

	if (engine_cursor_open(p, 0, &c))
		bail("cursor");
	ok(engine_cursor_next(c, &r) == 1 && r.offset == 0 && engine_cursor_next(c, &r) == 1 &&
		   r.offset == 1,
	   "the first batch reads");
	fail_left = 1;
	rc = engine_cursor_next(c, &r);
	ok(rc == -ENOMEM, "the compressed batch fails to load with -ENOMEM (%s)",
	   chronik_strerror(rc));
	rc = engine_cursor_next(c, &r);
	ok(rc == 1 && r.offset == 2 && r.value_len == 2 && memcmp(r.value, "z0", 2) == 0,
	   "the next call retries it: offset %lld", rc == 1 ? (long long)r.offset : -1LL);
	ok(engine_cursor_next(c, &r) == 1 && r.offset == 3 && engine_cursor_next(c, &r) == 1 &&
		   r.offset == 4 && engine_cursor_next(c, &r) == 1 && r.offset == 5 &&
		   engine_cursor_next(c, &r) == 0,
	   "and every record after it follows, once");
	engine_cursor_close(c);

	/* The raw view goes through the same cursor. */
	char raw[64];
	fail_left = 1;
	ssize_t n = engine_read_raw(p, 0, raw, sizeof(raw));
	if (n < 0)
		n = engine_read_raw(p, 0, raw, sizeof(raw));
	ok(n == 18 && memcmp(raw, "a0\na1\nz0\nz1\nz2\nc0\n", 18) == 0,
	   "the raw view is whole after a failed load (%zd bytes)", n);

	/* Records at 0 and INT64_MAX - 1 (deltas 0 and INT64_MAX - 1), then
	 * baseTimestamp patched to 10: the second sum overflows int64. */
	{
		struct batch_builder bb;
		struct record_in r1 = {
			.timestamp = 0, .key_len = -1, .value = "t0", .value_len = 2
		};
		struct record_in r2 = {
			.timestamp = INT64_MAX - 1, .key_len = -1, .value = "t1", .value_len = 2
		};
		uint8_t *b;
		size_t len;
		int64_t base = -1;
		batch_builder_init(&bb);
		if (batch_builder_add(&bb, &r1) || batch_builder_add(&bb, &r2) ||
		    batch_builder_finish(&bb, &b, &len))
			bail("builder");
		batch_builder_fini(&bb);
		put_be64(b + 27, 10);
		put_be32(b + 17, crc32c(0, b + BATCH_CRC_START, len - BATCH_CRC_START));
		rc = engine_append_batch(p, b, len, true, &base);
		free(b);
		ok(rc == 0 && base == 6, "a batch whose timestamps wrap is stored");
		if (rc == 0 && engine_cursor_open(p, 7, &c) == 0) {
			rc = engine_cursor_next(c, &r);
			ok(rc == 1 && r.offset == 7 &&
				   r.timestamp == (int64_t)(10 + (uint64_t)(INT64_MAX - 1)),
			   "and read back, its timestamp wrapped (%lld)", (long long)r.timestamp);
			engine_cursor_close(c);
		} else {
			ok(0, "and read back, its timestamp wrapped");
		}
	}
	engine_partition_unref(p);
	engine_close(e);
	tmpdir_free(dir);
	return tap_exit();
}
