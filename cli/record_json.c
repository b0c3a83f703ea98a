/* record_json.c - a record as one JSON object (see record_json.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "errors.h"
#include "record_json.h"

bool record_json_utf8_valid(const uint8_t *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = buf[i];
		size_t need;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return false; /* continuation byte, 0xc0/0xc1, or > 0xf4 */
		}
		if (len - i <= need)
			return false;
		for (size_t k = 1; k <= need; k++) {
			uint8_t cc = buf[i + k];

			if ((cc & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (cc & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

char *record_json_base64(const uint8_t *buf, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t out_len = (len + 2) / 3 * 4;
	char *out = malloc(out_len + 1);
	char *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)buf[i] << 16 | (uint32_t)buf[i + 1] << 8 | buf[i + 2];

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
		*o++ = alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)buf[i] << 16;

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)buf[i] << 16 | (uint32_t)buf[i + 1] << 8;

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

int record_json_add_bytes(struct json_object *obj, const char *name, const uint8_t *buf,
			  int32_t len)
{
	struct json_object *v;
	char b64name[64];

	if (len < 0)
		return json_object_object_add(obj, name, NULL) ? -ENOMEM : 0;
	if (record_json_utf8_valid(buf, (size_t)len)) {
		v = json_object_new_string_len((const char *)buf, len);
		if (!v)
			return -ENOMEM;
		if (json_object_object_add(obj, name, v)) {
			json_object_put(v);
			return -ENOMEM;
		}
		return 0;
	}

	char *b64 = record_json_base64(buf, (size_t)len);

	if (!b64)
		return -ENOMEM;
	snprintf(b64name, sizeof(b64name), "%s_b64", name);
	v = json_object_new_string(b64);
	free(b64);
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(obj, b64name, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int add_i64(struct json_object *obj, const char *name, int64_t v)
{
	struct json_object *j = json_object_new_int64(v);

	if (!j)
		return -ENOMEM;
	if (json_object_object_add(obj, name, j)) {
		json_object_put(j);
		return -ENOMEM;
	}
	return 0;
}

static int add_headers(struct json_object *obj, const struct engine_record *r)
{
	struct json_object *arr = json_object_new_array();
	const uint8_t *pos = r->headers;
	const uint8_t *end = r->headers ? r->headers + r->headers_len : NULL;
	struct batch_record_header h;
	int rc;

	if (!arr)
		return -ENOMEM;
	if (json_object_object_add(obj, "headers", arr)) {
		json_object_put(arr);
		return -ENOMEM;
	}
	for (int32_t i = 0; i < r->header_count; i++) {
		struct json_object *ho;

		rc = pos ? batch_record_header_next(&pos, end, &h) : 0;
		if (rc < 0)
			return rc;
		if (rc == 0)
			return CHRONIK_ECORRUPT; /* fewer headers than header_count */
		ho = json_object_new_object();
		if (!ho)
			return -ENOMEM;
		if (json_object_array_add(arr, ho)) {
			json_object_put(ho);
			return -ENOMEM;
		}
		rc = record_json_add_bytes(ho, "key", h.key, h.key_len);
		if (rc)
			return rc;
		rc = record_json_add_bytes(ho, "value", h.value, h.value_len);
		if (rc)
			return rc;
	}
	return 0;
}

struct json_object *record_json_new(const struct engine_record *r, int *err)
{
	struct json_object *obj = json_object_new_object();
	int rc;

	if (!obj) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = add_i64(obj, "offset", r->offset);
	if (rc)
		goto put_obj;
	rc = add_i64(obj, "timestamp", r->timestamp);
	if (rc)
		goto put_obj;
	rc = record_json_add_bytes(obj, "key", r->key, r->key_len);
	if (rc)
		goto put_obj;
	rc = record_json_add_bytes(obj, "value", r->value, r->value_len);
	if (rc)
		goto put_obj;
	rc = add_headers(obj, r);
	if (rc)
		goto put_obj;
	if (err)
		*err = 0;
	return obj;

put_obj:
	json_object_put(obj);
fail:
	if (err)
		*err = rc;
	return NULL;
}
