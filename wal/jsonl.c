/* jsonl.c - one record as one JSON line, and JSON lines back into records.
 *
 * The format, byte by byte, is in jsonl.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "jsonl.h"

/* ---- output ------------------------------------------------------------------ */

static int buf_reserve(struct jsonl_buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap < b->len + extra)
		ncap *= 2;
	char *np = realloc(b->p, ncap);
	if (!np)
		return -ENOMEM;
	b->p = np;
	b->cap = ncap;
	return 0;
}

static void put_lit(struct jsonl_buf *b, const char *s, size_t n)
{
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define PUT_LIT(b, s) put_lit((b), (s), sizeof(s) - 1)

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
bool jsonl_utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		uint32_t min, cp;
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
			cp = c & 0x1F;
			min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			cp = c & 0x0F;
			min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < need)
			return false;
		for (size_t k = 1; k <= need; k++) {
			uint8_t cc = s[i + k];
			if ((cc & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (cc & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += need + 1;
	}
	return true;
}

/* The JSON string body of valid UTF-8 s; room reserved by the caller
 * (6 bytes per input byte at most). */
static void put_escaped(struct jsonl_buf *b, const uint8_t *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *o = b->p + b->len;
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (c >= 0x20 && c != '"' && c != '\\') {
			run++;
			continue;
		}
		memcpy(o, s + i - run, run);
		o += run;
		run = 0;
		*o++ = '\\';
		switch (c) {
		case '"':
			*o++ = '"';
			break;
		case '\\':
			*o++ = '\\';
			break;
		case '\n':
			*o++ = 'n';
			break;
		case '\t':
			*o++ = 't';
			break;
		case '\r':
			*o++ = 'r';
			break;
		case '\b':
			*o++ = 'b';
			break;
		case '\f':
			*o++ = 'f';
			break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
			break;
		}
	}
	memcpy(o, s + n - run, run);
	o += run;
	b->len = (size_t)(o - b->p);
}

/* ,"name":"..." or ,"name_b64":"..." or ,"name":null (lead = "," or "") */
static int put_bytes_field(struct jsonl_buf *b, const char *lead, const char *name,
			   const uint8_t *v, int32_t len)
{
	size_t nl = strlen(name), ll = strlen(lead);
	size_t n = len < 0 ? 0 : (size_t)len;
	int err = buf_reserve(
		b, ll + nl + 16 + (n * 6 > base64_encoded_len(n) ? n * 6 : base64_encoded_len(n)));

	if (err < 0)
		return err;
	put_lit(b, lead, ll);
	b->p[b->len++] = '"';
	put_lit(b, name, nl);
	if (len < 0) {
		PUT_LIT(b, "\":null");
	} else if (jsonl_utf8_valid(v, n)) {
		PUT_LIT(b, "\":\"");
		put_escaped(b, v, n);
		b->p[b->len++] = '"';
	} else {
		PUT_LIT(b, "_b64\":\"");
		base64_encode(v, n, b->p + b->len);
		b->len += base64_encoded_len(n);
		b->p[b->len++] = '"';
	}
	return 0;
}

/* The fields of r into b; on error b->len may have moved. */
static int render_record(struct jsonl_buf *b, const struct engine_record *r)
{
	const uint8_t *pos = r->headers, *end = r->headers ? r->headers + r->headers_len : NULL;
	struct batch_record_header h;
	int err = buf_reserve(b, 80);

	if (err < 0)
		return err;
	b->len += (size_t)snprintf(b->p + b->len, 80,
				   "{\"offset\":%" PRId64 ",\"timestamp\":%" PRId64, r->offset,
				   r->timestamp);
	err = put_bytes_field(b, ",", "key", r->key, r->key_len);
	if (err == 0)
		err = put_bytes_field(b, ",", "value", r->value, r->value_len);
	if (err == 0)
		err = buf_reserve(b, 16);
	if (err < 0)
		return err;
	PUT_LIT(b, ",\"headers\":[");
	for (int32_t i = 0; i < r->header_count; i++) {
		int rc = pos ? batch_record_header_next(&pos, end, &h) : 0;
		if (rc < 0)
			return rc;
		if (rc == 0)
			return CHRONIK_ECORRUPT; /* fewer headers than header_count */
		err = put_bytes_field(b, i == 0 ? "{" : ",{", "key", h.key, h.key_len);
		if (err == 0)
			err = put_bytes_field(b, ",", "value", h.value, h.value_len);
		if (err == 0)
			err = buf_reserve(b, 1);
		if (err < 0)
			return err;
		b->p[b->len++] = '}';
	}
	err = buf_reserve(b, 3);
	if (err < 0)
		return err;
	PUT_LIT(b, "]}\n");
	return 0;
}

int jsonl_render(struct jsonl_buf *b, const struct engine_record *r)
{
	size_t len = b->len;
	int err = render_record(b, r);

	if (err < 0)
		b->len = len;
	return err;
}

/* ---- input ------------------------------------------------------------------- */

/* Memory for one write's records: header arrays and decoded base64 live in
 * chunks that never move, so record_in pointers stay valid. */
struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

struct jsonl_batch {
	json_tokener *tok;
	struct record_in *recs;
	size_t n, cap;
	json_object **objs; /* parsed lines, put on free */
	size_t nobjs, objcap;
	struct arena_chunk *chunks;
	int64_t now_ms;
};

static void *arena_alloc(struct jsonl_batch *b, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (!b->chunks || b->chunks->cap - b->chunks->used < size) {
		size_t cap = size > 65536 ? size : 65536;
		struct arena_chunk *c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = b->chunks;
		c->used = 0;
		c->cap = cap;
		b->chunks = c;
	}
	void *p = b->chunks->data + b->chunks->used;
	b->chunks->used += size;
	return p;
}

int jsonl_batch_new(struct jsonl_batch **out)
{
	struct jsonl_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->tok = json_tokener_new();
	if (!b->tok) {
		free(b);
		return -ENOMEM;
	}
	json_tokener_set_flags(b->tok, JSON_TOKENER_STRICT);
	*out = b;
	return 0;
}

void jsonl_batch_free(struct jsonl_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nobjs; i++)
		json_object_put(b->objs[i]);
	free(b->objs);
	free(b->recs);
	while (b->chunks) {
		struct arena_chunk *c = b->chunks;
		b->chunks = c->next;
		free(c);
	}
	json_tokener_free(b->tok);
	free(b);
}

const struct record_in *jsonl_batch_records(const struct jsonl_batch *b, size_t *n)
{
	*n = b->n;
	return b->recs;
}

/* Bytes of a text field ("value": v) or a base64 one ("value_b64": v). */
static int bytes_from(struct jsonl_batch *b, json_object *v, bool b64, bool any_json,
		      const void **out, int32_t *len)
{
	if (v == NULL || json_object_is_type(v, json_type_null)) {
		*out = NULL;
		*len = -1;
		return 0;
	}
	if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		size_t n = (size_t)json_object_get_string_len(v);
		if (!b64) {
			if (n > INT32_MAX)
				return -EINVAL;
			*out = s;
			*len = (int32_t)n;
			return 0;
		}
		uint8_t *d = arena_alloc(b, n / 4 * 3 + 3);
		if (!d)
			return -ENOMEM;
		ssize_t dn = base64_decode(s, n, d);
		if (dn < 0)
			return -EINVAL;
		*out = d;
		*len = (int32_t)dn;
		return 0;
	}
	if (b64 || !any_json)
		return -EINVAL;
	const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);
	*out = s;
	*len = (int32_t)strlen(s);
	return 0;
}

/* A pair of fields "name" / "name_b64" of object o: at most one may be set. */
static int pair_from(struct jsonl_batch *b, json_object *o, const char *name, const char *name_b64,
		     bool any_json, const void **out, int32_t *len)
{
	json_object *plain = NULL, *enc = NULL;
	bool has_plain = json_object_object_get_ex(o, name, &plain);
	bool has_enc = json_object_object_get_ex(o, name_b64, &enc);

	if (has_plain && has_enc)
		return -EINVAL;
	return bytes_from(b, has_enc ? enc : plain, has_enc, any_json, out, len);
}

static int headers_from(struct jsonl_batch *b, json_object *h, struct record_in *r)
{
	struct record_header_in *hs;
	size_t n;

	r->headers = NULL;
	r->header_count = 0;
	if (h == NULL || json_object_is_type(h, json_type_null))
		return 0;
	if (json_object_is_type(h, json_type_array)) {
		n = json_object_array_length(h);
		if (n == 0)
			return 0;
		hs = arena_alloc(b, n * sizeof(*hs));
		if (!hs)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(h, i);
			if (!json_object_is_type(e, json_type_object))
				return -EINVAL;
			json_object_object_foreach(e, k, v)
			{
				(void)v;
				if (strcmp(k, "key") && strcmp(k, "key_b64") &&
				    strcmp(k, "value") && strcmp(k, "value_b64"))
					return -EINVAL;
			}
			int err = pair_from(b, e, "key", "key_b64", false, &hs[i].key,
					    &hs[i].key_len);
			if (err == 0 && hs[i].key_len < 0)
				err = -EINVAL; /* Kafka header keys are never null */
			if (err == 0)
				err = pair_from(b, e, "value", "value_b64", false, &hs[i].value,
						&hs[i].value_len);
			if (err < 0)
				return err;
		}
	} else if (json_object_is_type(h, json_type_object)) {
		n = (size_t)json_object_object_length(h);
		if (n == 0)
			return 0;
		hs = arena_alloc(b, n * sizeof(*hs));
		if (!hs)
			return -ENOMEM;
		size_t i = 0;
		json_object_object_foreach(h, k, v)
		{
			hs[i].key = k;
			hs[i].key_len = (int32_t)strlen(k);
			int err = bytes_from(b, v, false, false, &hs[i].value, &hs[i].value_len);
			if (err < 0)
				return err;
			i++;
		}
	} else {
		return -EINVAL;
	}
	r->headers = hs;
	r->header_count = (int32_t)n;
	return 0;
}

static int record_from(struct jsonl_batch *b, json_object *o, struct record_in *r)
{
	json_object *ts = NULL, *hdrs = NULL;
	int err;

	if (!json_object_is_type(o, json_type_object))
		return -EINVAL;
	json_object_object_foreach(o, k, v)
	{
		(void)v;
		static const char *const known[] = { "offset",	"timestamp", "key",
						     "key_b64", "value",     "value_b64",
						     "headers", "partition", "topic" };
		size_t i;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(k, known[i]) == 0)
				break;
		if (i == sizeof(known) / sizeof(known[0]))
			return -EINVAL;
	}
	memset(r, 0, sizeof(*r));
	r->timestamp = b->now_ms;
	if (json_object_object_get_ex(o, "timestamp", &ts) &&
	    !json_object_is_type(ts, json_type_null)) {
		if (!json_object_is_type(ts, json_type_int))
			return -EINVAL;
		errno = 0;
		r->timestamp = json_object_get_int64(ts);
		if (errno)
			return -EINVAL;
	}
	err = pair_from(b, o, "key", "key_b64", false, &r->key, &r->key_len);
	if (err == 0)
		err = pair_from(b, o, "value", "value_b64", true, &r->value, &r->value_len);
	if (err == 0) {
		json_object_object_get_ex(o, "headers", &hdrs);
		err = headers_from(b, hdrs, r);
	}
	return err;
}

static bool all_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

static int parse_line(struct jsonl_batch *b, const char *s, size_t n)
{
	json_object *o;
	int err;

	if (all_space(s, n))
		return 0;
	if (n > INT32_MAX)
		return -EINVAL;
	json_tokener_reset(b->tok);
	o = json_tokener_parse_ex(b->tok, s, (int)n);
	if (!o)
		return -EINVAL; /* a syntax error, or a line that ends inside a value */
	if (!all_space(s + json_tokener_get_parse_end(b->tok),
		       n - json_tokener_get_parse_end(b->tok))) {
		json_object_put(o);
		return -EINVAL;
	}
	if (b->nobjs == b->objcap) {
		size_t ncap = b->objcap ? b->objcap * 2 : 16;
		json_object **no = realloc(b->objs, ncap * sizeof(*no));
		if (!no) {
			json_object_put(o);
			return -ENOMEM;
		}
		b->objs = no;
		b->objcap = ncap;
	}
	b->objs[b->nobjs++] = o;
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 16;
		struct record_in *nr = realloc(b->recs, ncap * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		b->recs = nr;
		b->cap = ncap;
	}
	err = record_from(b, o, &b->recs[b->n]);
	if (err < 0)
		return err;
	b->n++;
	return 0;
}

int jsonl_batch_parse(struct jsonl_batch *b, const char *buf, size_t len, size_t *bad_line)
{
	struct timespec now;
	size_t line = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	b->now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) : len;
		line++;
		int err = parse_line(b, buf, n);
		if (err < 0) {
			if (bad_line)
				*bad_line = line;
			return err;
		}
		if (!nl)
			break;
		buf += n + 1;
		len -= n + 1;
	}
	return 0;
}
