/* jsonl.h - one record as one JSON line, and JSON lines back into records.
 *
 * The one rendering of a record as JSON: the filesystem's records.jsonl view
 * (fs/jsonl_view.c), `chronik consume --jsonl` and `chronik dump --records`
 * all print it, so the same record gives the same bytes everywhere.
 *
 * ---- Output (jsonl_render) ---------------------------------------------------
 *
 * One line per record, no whitespace, fields always in this order:
 *
 *   {"offset":O,"timestamp":T,"key":K,"value":V,"headers":[H,...]}\n
 *
 *   O, T   the record's offset and timestamp (milliseconds) as signed
 *          decimal integers: an optional '-', then digits without leading
 *          zeros ("0" for zero).
 *   K, V   null for a null key/value (length -1). Otherwise, when the bytes
 *          are valid UTF-8 (below), a JSON string holding them; when they
 *          are not, the field is named "key_b64" / "value_b64" instead and
 *          holds the bytes in base64 (below) as a JSON string. An empty
 *          key/value is "".
 *   H      {"key":K,"value":V}, the same rule for each ("key_b64",
 *          "value_b64"). An array, so repeated header keys and their order
 *          survive. No header: "headers":[].
 *
 * Valid UTF-8 is strict (RFC 3629): no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence. NUL and
 * other control characters are valid.
 *
 * In a JSON string, bytes are written as they are except:
 *
 *   0x22 '"'  as \"          0x08  as \b
 *   0x5C '\'  as \\          0x0C  as \f
 *   0x0A      as \n          0x0D  as \r
 *   0x09      as \t          any other byte < 0x20 as \u00XY, lowercase hex
 *
 * so '/', 0x7F and multi-byte UTF-8 sequences appear verbatim.
 *
 * Base64 is RFC 4648 section 4: alphabet A-Z a-z 0-9 + /, '=' padding to a
 * multiple of 4 characters, no line breaks.
 *
 * Rendering is deterministic: the same record always gives the same bytes,
 * which is what lets the view keep byte positions (fs/jsonl_view.c).
 *
 * ---- Input (jsonl_batch_parse) -----------------------------------------------
 *
 * One JSON object per line (whitespace-only lines are skipped):
 *
 *   "value" | "value_b64"   string, or null; any other JSON value is stored
 *                           as its compact JSON text. Absent = null.
 *   "key" | "key_b64"       string or null. Absent = null.
 *   "timestamp"             integer milliseconds, or null / absent = now.
 *   "headers"               [{"key"|"key_b64", "value"|"value_b64"}, ...]
 *                           or {"k": "v" | null, ...}, or null. A header
 *                           key is never null.
 *   "offset", "partition", "topic"   ignored (so a view's own lines can be
 *                           appended elsewhere).
 *   anything else           invalid (a misspelt field is not silently lost).
 *
 * A field and its "_b64" twin may not both be present. Base64 input may omit
 * the padding; any character outside the alphabet is invalid. Every line
 * jsonl_render writes parses back into the same key, value, timestamp and
 * headers.
 */
#ifndef CHRONIK_JSONL_H
#define CHRONIK_JSONL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "batch.h"
#include "engine.h"

/* ---- rendering (wal/jsonl.c) --------------------------------------------- */

/* A growing output buffer in the caller's storage: start it as
 * { NULL, 0, 0 } (or with a buffer of cap bytes from malloc); jsonl_render
 * reallocs p as needed; the caller frees p. */
struct jsonl_buf {
	char *p;
	size_t len, cap;
};

/* Append the JSON line of r (with its '\n') to b. 0, -ENOMEM, or
 * CHRONIK_ECORRUPT when r's headers hold fewer than header_count valid
 * headers; on error b->len is as it was. */
int jsonl_render(struct jsonl_buf *b, const struct engine_record *r);

/* true if s[0, n) is valid UTF-8 as defined above. */
bool jsonl_utf8_valid(const uint8_t *s, size_t n);

/* ---- parsing (wal/jsonl.c) ----------------------------------------------- */

struct jsonl_batch; /* parsed records of one write() */
int jsonl_batch_new(struct jsonl_batch **out);
/* Parse buf[0, len): '\n'-separated lines (the last may lack its '\n').
 * Whitespace-only lines are skipped. -EINVAL at the first invalid line;
 * *bad_line (may be NULL) then says which (1-based). Records parsed before
 * it stay in the batch. */
int jsonl_batch_parse(struct jsonl_batch *b, const char *buf, size_t len, size_t *bad_line);
/* The records parsed so far, *n of them. They and the bytes they point to
 * belong to b and live until jsonl_batch_free (not across another parse:
 * the array may move). */
const struct record_in *jsonl_batch_records(const struct jsonl_batch *b, size_t *n);
void jsonl_batch_free(struct jsonl_batch *b);

/* ---- base64 (wal/base64.c): RFC 4648 section 4, with padding ------------- */

size_t base64_encoded_len(size_t n);
/* Writes base64_encoded_len(n) bytes to out (no NUL). */
void base64_encode(const uint8_t *in, size_t n, char *out);
/* Decodes into out (at least len * 3 / 4 bytes); padding optional.
 * Returns the decoded length or -EINVAL. */
ssize_t base64_decode(const char *in, size_t len, uint8_t *out);

#endif
