/* fuzz_jsonl.c - the JSON Lines parser (wal/jsonl.h), and its promise that
 * rendering and parsing agree.
 *
 * Input: the bytes of one write() to records.jsonl. jsonl_batch_parse
 * reads it; the records it accepted (all of them, or those before the bad
 * line) are encoded into a RecordBatch, decoded again, rendered with
 * jsonl_render, and the rendered lines parsed once more: each must give
 * back the same key, value, timestamp and headers (jsonl.h: "Every line
 * jsonl_render writes parses back into the same key, value, timestamp and
 * headers"), and rendering the second parse must give the same bytes
 * (rendering is deterministic). The input also goes to base64_decode and
 * jsonl_utf8_valid.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "fuzz.h"
#include "jsonl.h"

static int bytes_eq(const void *a, int32_t alen, const void *b, int32_t blen)
{
	if (alen != blen)
		return 0;
	return alen <= 0 || memcmp(a, b, (size_t)alen) == 0;
}

static void same_record(const struct record_in *a, const struct record_in *b)
{
	FUZZ_CHECK(a->timestamp == b->timestamp);
	FUZZ_CHECK(bytes_eq(a->key, a->key_len, b->key, b->key_len));
	FUZZ_CHECK(bytes_eq(a->value, a->value_len, b->value, b->value_len));
	FUZZ_CHECK(a->header_count == b->header_count);
	for (int32_t i = 0; i < a->header_count; i++) {
		const struct record_header_in *x = &a->headers[i], *y = &b->headers[i];
		FUZZ_CHECK(bytes_eq(x->key, x->key_len, y->key, y->key_len));
		FUZZ_CHECK(bytes_eq(x->value, x->value_len, y->value, y->value_len));
	}
}

/* Render recs[0, n) through a batch, as the view does: one line each. */
static int render_all(const struct record_in *recs, size_t n, struct jsonl_buf *out)
{
	struct batch_builder bb;
	struct batch_iter it;
	struct batch_record r;
	uint8_t *batch;
	size_t len;
	int rc;

	batch_builder_init(&bb);
	for (size_t i = 0; i < n; i++) {
		rc = batch_builder_add(&bb, &recs[i]);
		if (rc < 0) {
			batch_builder_fini(&bb);
			return rc;
		}
	}
	rc = batch_builder_finish(&bb, &batch, &len);
	batch_builder_fini(&bb);
	if (rc < 0)
		return rc;
	FUZZ_CHECK(batch_crc_check(batch, len) == 0);
	rc = batch_iter_init(&it, batch, len);
	FUZZ_CHECK(rc == 0);
	int64_t off = 0;
	while ((rc = batch_iter_next(&it, &r)) == 1) {
		struct engine_record er = {
			.offset = off++,
			.timestamp = it.hdr.base_timestamp + r.timestamp_delta,
			.key = r.key,
			.key_len = r.key_len,
			.value = r.value,
			.value_len = r.value_len,
			.header_count = r.header_count,
			.headers = r.headers,
			.headers_len = r.headers_len,
		};
		FUZZ_CHECK(jsonl_render(out, &er) == 0);
	}
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK((size_t)off == n);
	batch_iter_fini(&it);
	free(batch);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsonl_batch *b1 = NULL, *b2 = NULL;
	struct jsonl_buf out1 = { NULL, 0, 0 }, out2 = { NULL, 0, 0 };
	const struct record_in *r1, *r2;
	size_t n1, n2, bad = 0;

	(void)jsonl_utf8_valid(data, size);
	uint8_t *dec = malloc(size + 1);
	if (dec) {
		ssize_t k = base64_decode((const char *)data, size, dec);
		FUZZ_CHECK(k < 0 || (size_t)k <= size * 3 / 4 + 1);
		free(dec);
	}

	if (jsonl_batch_new(&b1) < 0)
		return 0;
	(void)jsonl_batch_parse(b1, (const char *)data, size, &bad);
	r1 = jsonl_batch_records(b1, &n1);
	if (n1 == 0 || render_all(r1, n1, &out1) < 0)
		goto out;

	FUZZ_CHECK(jsonl_batch_new(&b2) == 0);
	FUZZ_CHECK(jsonl_batch_parse(b2, out1.p, out1.len, &bad) == 0);
	r2 = jsonl_batch_records(b2, &n2);
	FUZZ_CHECK(n2 == n1);
	for (size_t i = 0; i < n1; i++)
		same_record(&r1[i], &r2[i]);
	FUZZ_CHECK(render_all(r2, n2, &out2) == 0);
	FUZZ_CHECK(out2.len == out1.len && memcmp(out1.p, out2.p, out1.len) == 0);
out:
	free(out1.p);
	free(out2.p);
	jsonl_batch_free(b2);
	jsonl_batch_free(b1);
	return 0;
}
