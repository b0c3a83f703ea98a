/* record_json.h - one record as a JSON Lines object, the rendering shared by
 * `chronik consume --jsonl`, `chronik dump --records` and (the same
 * convention) the filesystem's records.jsonl view:
 *
 *   {"offset":N,"timestamp":N,"key":K,"value":V,"headers":[H...]}
 *
 * K and V are JSON strings when the bytes are valid UTF-8, null when the
 * key/value is null; otherwise the member is named "key_b64"/"value_b64"
 * and holds the bytes in standard base64 (RFC 4648, padded). Each header H
 * is {"key":...,"value":...} with the same rules ("key_b64"/"value_b64").
 * The rendering is lossless: every byte of every record can be recovered.
 */
#ifndef CHRONIK_RECORD_JSON_H
#define CHRONIK_RECORD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "engine.h"

/* true if buf[0, len) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
bool record_json_utf8_valid(const uint8_t *buf, size_t len);

/* Base64 of buf[0, len) into a malloc'd NUL-terminated string, or NULL. */
char *record_json_base64(const uint8_t *buf, size_t len);

/* Add member name (or name_b64) for the bytes buf[0, len), len -1 = null,
 * to obj. 0 or -ENOMEM. */
int record_json_add_bytes(struct json_object *obj, const char *name, const uint8_t *buf,
			  int32_t len);

/* The object for r; NULL on allocation failure or malformed headers
 * (*err says which: -ENOMEM or CHRONIK_ECORRUPT). Release with
 * json_object_put. */
struct json_object *record_json_new(const struct engine_record *r, int *err);

#endif
