/* s3.c - the S3 client of s3.h over libcurl. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "s3.h"

#define POOL_MAX 8

struct s3_client {
	char *bucket, *prefix, *base; /* base: URL up to the key, ending in '/' */
	char *access_key, *secret_key;
	char sigv4[128]; /* "aws:amz:<region>:s3" */
	uint32_t timeout_ms;
	uint64_t multipart_bytes, part_bytes;
	bool s3_service; /* sign x-amz-content-sha256 (S3 wants it) */
	char *date_hdr, *connect_to; /* tests only (s3.h) */
	pthread_mutex_t lock; /* guards pool */
	CURL *pool[POOL_MAX];
	int npool;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- setup ------------------------------------------------------------------- */

static char *trim(char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	char *end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = 0;
	return s;
}

/* The [default] section of an AWS shared-credentials file. */
static int credentials_read(struct s3_client *c, const char *file)
{
	FILE *f = fopen(file, "r");
	char line[1024];
	bool in_default = true; /* keys before any section count as default */

	if (!f) {
		int rc = -errno;
		log_msg(LOG_LVL_ERROR, "s3", "credentials file %s: %s", file, strerror(-rc));
		return rc;
	}
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line), *eq;
		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			in_default = strncmp(l, "[default]", 9) == 0;
			continue;
		}
		if (!in_default || !(eq = strchr(l, '=')))
			continue;
		*eq = 0;
		char *k = trim(l), *v = trim(eq + 1);
		char **slot = strcmp(k, "aws_access_key_id") == 0     ? &c->access_key :
			      strcmp(k, "aws_secret_access_key") == 0 ? &c->secret_key :
									NULL;
		if (slot) {
			free(*slot);
			*slot = strdup(v);
		}
	}
	fclose(f);
	return 0;
}

int s3_client_new(const struct s3_options *o, struct s3_client **out)
{
	struct s3_client *c;
	const char *url = o->url, *slash,
		   *region = o->region && *o->region ? o->region : "us-east-1";
	bool path_style = o->endpoint ? o->path_style : false;
	int rc = -EINVAL;

	pthread_once(&curl_once, curl_init_once);
	if (!url || strncmp(url, "s3://", 5) != 0 || !url[5] || url[5] == '/') {
		log_msg(LOG_LVL_ERROR, "s3", "remote.storage.url must be s3://BUCKET[/PREFIX]");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	url += 5;
	slash = strchr(url, '/');
	c->bucket = slash ? strndup(url, (size_t)(slash - url)) : strdup(url);
	/* The prefix ends in '/' when not empty. */
	const char *pre = slash ? slash + 1 : "";
	size_t plen = strlen(pre);
	c->prefix = malloc(plen + 2);
	if (c->prefix)
		snprintf(c->prefix, plen + 2, "%s%s", pre, plen && pre[plen - 1] != '/' ? "/" : "");
	for (const char *b = c->bucket; b && *b; b++)
		if (!isalnum((unsigned char)*b) && *b != '-' && *b != '.' && *b != '_') {
			log_msg(LOG_LVL_ERROR, "s3", "bad bucket name in remote.storage.url");
			goto fail;
		}
	if (o->endpoint) {
		const char *ep = o->endpoint, *scheme_end = strstr(ep, "://");
		size_t elen = strlen(ep);
		while (elen && ep[elen - 1] == '/')
			elen--;
		if (!scheme_end) {
			log_msg(LOG_LVL_ERROR, "s3",
				"remote.storage.endpoint must be http(s)://HOST[:PORT]");
			goto fail;
		}
		int slen = (int)(scheme_end + 3 - ep);
		int r = path_style ? asprintf(&c->base, "%.*s/%s/", (int)elen, ep, c->bucket) :
				     asprintf(&c->base, "%.*s%s.%.*s/", slen, ep, c->bucket,
					      (int)elen - slen, ep + slen);
		if (r < 0)
			c->base = NULL;
	} else if (path_style) {
		if (asprintf(&c->base, "https://s3.%s.amazonaws.com/%s/", region, c->bucket) < 0)
			c->base = NULL;
	} else {
		if (asprintf(&c->base, "https://%s.s3.%s.amazonaws.com/", c->bucket, region) < 0)
			c->base = NULL;
	}
	const char *service = o->service ? o->service : "s3";
	snprintf(c->sigv4, sizeof(c->sigv4), "aws:amz:%s:%s", region, service);
	c->s3_service = strcmp(service, "s3") == 0;
	if (o->sign_date && asprintf(&c->date_hdr, "X-Amz-Date: %s", o->sign_date) < 0)
		c->date_hdr = NULL;
	if (o->connect_to)
		c->connect_to = strdup(o->connect_to);
	c->timeout_ms = o->timeout_ms ? o->timeout_ms : 10000;
	c->multipart_bytes = o->multipart_bytes ? o->multipart_bytes : S3_MULTIPART_BYTES;
	c->part_bytes = o->part_bytes ? o->part_bytes : S3_PART_BYTES;
	if (!c->bucket || !c->prefix || !c->base) {
		rc = -ENOMEM;
		goto fail;
	}
	if (o->credentials_file) {
		rc = credentials_read(c, o->credentials_file);
		if (rc)
			goto fail;
	} else {
		const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
		c->access_key = ak ? strdup(ak) : NULL;
		c->secret_key = sk ? strdup(sk) : NULL;
	}
	rc = -EINVAL;
	if (!c->access_key || !c->secret_key || !*c->access_key || !*c->secret_key) {
		log_msg(LOG_LVL_ERROR, "s3",
			"no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
			"remote.storage.credentials.file");
		goto fail;
	}
	*out = c;
	return 0;
fail:
	s3_client_free(c);
	return rc;
}

void s3_client_free(struct s3_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	pthread_mutex_destroy(&c->lock);
	free(c->bucket);
	free(c->prefix);
	free(c->base);
	free(c->date_hdr);
	free(c->connect_to);
	if (c->secret_key)
		memset(c->secret_key, 0, strlen(c->secret_key));
	free(c->access_key);
	free(c->secret_key);
	free(c);
}

const char *s3_client_prefix(const struct s3_client *c)
{
	return c->prefix;
}

/* Percent-encode s (RFC 3986 unreserved bytes kept, and '/' when
 * keep_slash) into w, which has room for 3 * strlen(s) + 1 bytes. */
static void pct_encode(const char *s, bool keep_slash, char *w)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
		    (keep_slash && ch == '/')) {
			*w++ = (char)ch;
		} else {
			*w++ = '%';
			*w++ = hex[ch >> 4];
			*w++ = hex[ch & 15];
		}
	}
	*w = 0;
}

char *s3_client_url(const struct s3_client *c, const char *key)
{
	size_t blen = strlen(c->base), klen = strlen(key);
	char *u = malloc(blen + 3 * klen + 1);

	if (!u)
		return NULL;
	memcpy(u, c->base, blen);
	pct_encode(key, true, u + blen);
	return u;
}

/* ---- one request ------------------------------------------------------------- */

struct req {
	/* upload body: bytes [in_pos, in_size) of in_fd, or of in_buf when
	 * that is set */
	int in_fd;
	const char *in_buf;
	uint64_t in_pos, in_size;
	/* download body (out_fd >= 0) or an error body (kept, up to 4 KiB) */
	int out_fd;
	uint64_t out_bytes;
	int out_err;
	char body[4096];
	size_t body_len;
	/* the whole answer body instead, NUL-terminated (grow set; malloc'd,
	 * the caller frees it) */
	bool grow;
	char *big;
	size_t big_len, big_cap;
	char etag[128];
};

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct req *r = arg;
	size_t want = size * nitems;
	if (want > r->in_size - r->in_pos)
		want = (size_t)(r->in_size - r->in_pos);
	if (want == 0)
		return 0;
	if (r->in_buf) {
		memcpy(buf, r->in_buf + r->in_pos, want);
		r->in_pos += want;
		return want;
	}
	ssize_t n;
	do
		n = pread(r->in_fd, buf, want, (off_t)r->in_pos);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return CURL_READFUNC_ABORT;
	r->in_pos += (uint64_t)n;
	return (size_t)n;
}

static size_t on_write(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t len = size * nmemb;
	long code = 0;
	(void)code;
	if (r->out_fd >= 0) {
		for (size_t done = 0; done < len;) {
			ssize_t n = write(r->out_fd, buf + done, len - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				r->out_err = -errno;
				return 0;
			}
			done += (size_t)n;
		}
		r->out_bytes += len;
		return len;
	}
	if (r->grow) {
		if (r->big_len + len + 1 > r->big_cap) {
			size_t cap = (r->big_len + len + 1) * 2;
			char *b = realloc(r->big, cap);
			if (!b)
				return 0;
			r->big = b;
			r->big_cap = cap;
		}
		memcpy(r->big + r->big_len, buf, len);
		r->big_len += len;
		r->big[r->big_len] = 0;
		return len;
	}
	size_t room = sizeof(r->body) - 1 - r->body_len;
	size_t take = len < room ? len : room;
	memcpy(r->body + r->body_len, buf, take);
	r->body_len += take;
	r->body[r->body_len] = 0;
	return len;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct req *r = arg;
	size_t len = size * nitems;
	if (len > 5 && strncasecmp(buf, "etag:", 5) == 0) {
		size_t i = 5, j = len;
		while (i < j && isspace((unsigned char)buf[i]))
			i++;
		while (j > i && isspace((unsigned char)buf[j - 1]))
			j--;
		snprintf(r->etag, sizeof(r->etag), "%.*s", (int)(j - i), buf + i);
	}
	return len;
}

static CURL *handle_get(struct s3_client *c)
{
	CURL *h = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->npool)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->lock);
	if (!h)
		h = curl_easy_init();
	else
		curl_easy_reset(h); /* keeps the connection cache */
	return h;
}

static void handle_put_back(struct s3_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->npool < POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* The text of the first <tag> element of an XML body (at most 255 bytes,
 * printable ASCII only; "" when there is none): the S3 error <Code>, a
 * multipart <UploadId>, <ETag>. */
static void xml_text(const char *body, const char *tag, char *out, size_t len)
{
	char open_tag[40], close_tag[40];
	const char *a, *b;
	size_t n = 0;

	out[0] = 0;
	snprintf(open_tag, sizeof(open_tag), "<%s>", tag);
	snprintf(close_tag, sizeof(close_tag), "</%s>", tag);
	a = strstr(body, open_tag);
	if (!a)
		return;
	a += strlen(open_tag);
	b = strstr(a, close_tag);
	if (!b)
		return;
	for (const char *p = a; p < b && n + 1 < len && n < 255; p++)
		if (isprint((unsigned char)*p))
			out[n++] = *p;
	out[n] = 0;
}

enum method { M_PUT, M_HEAD, M_GET, M_DELETE, M_POST };
static const char *const method_names[] = { "PUT", "HEAD", "GET", "DELETE", "POST" };

/* Run one request on key's URL followed by query ("" or "?..."; its
 * parameters in the sorted order SigV4's canonical query wants); *status
 * gets the HTTP status. 0, or -EIO when no response came (logged). extra:
 * headers to add (NULL-terminated). PUT and POST send r's upload body. */
static int perform(struct s3_client *c, enum method m, const char *key, const char *query,
		   const char *const *extra, struct req *r, long *status, uint64_t *content_length)
{
	CURL *h = handle_get(c);
	struct curl_slist *hdrs = NULL;
	char *kurl = s3_client_url(c, key), *url = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	int rc = 0;

	if (kurl && asprintf(&url, "%s%s", kurl, query) < 0)
		url = NULL;
	free(kurl);
	if (!h || !url) {
		free(url);
		if (h)
			curl_easy_cleanup(h);
		return -ENOMEM;
	}
	/* libcurl signs this header's value into the request (it cannot hash
	 * a streamed body itself). */
	if (c->s3_service)
		hdrs = curl_slist_append(hdrs, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	if (c->date_hdr)
		hdrs = curl_slist_append(hdrs, c->date_hdr);
	struct curl_slist *connect_to = c->connect_to ? curl_slist_append(NULL, c->connect_to) :
							NULL;
	if (connect_to)
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
	for (size_t i = 0; extra && extra[i]; i++)
		hdrs = curl_slist_append(hdrs, extra[i]);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
	curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
	/* A transfer stalled (under 1 byte/s) for the timeout fails. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)((c->timeout_ms + 999) / 1000));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	switch (m) {
	case M_PUT:
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(r->in_size - r->in_pos));
		break;
	case M_POST:
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(r->in_size - r->in_pos));
		break;
	case M_HEAD:
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		break;
	case M_GET:
		break;
	case M_DELETE:
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	}
	CURLcode cc = curl_easy_perform(h);
	*status = 0;
	if (cc != CURLE_OK) {
		log_msg(LOG_LVL_WARN, "s3", "%s %s: %s", method_names[m], key,
			errbuf[0] ? errbuf : curl_easy_strerror(cc));
		rc = r->out_err ? r->out_err : -EIO;
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
		curl_off_t cl = -1;
		curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		if (content_length)
			*content_length = cl < 0 ? 0 : (uint64_t)cl;
	}
	curl_slist_free_all(hdrs);
	curl_slist_free_all(connect_to);
	free(url);
	handle_put_back(c, h);
	return rc;
}

/* An HTTP status that is not success as -errno (logged). */
static int status_rc(const char *what, const char *key, long status, const struct req *r,
		     bool quiet_404)
{
	char code[64];
	if (status >= 200 && status < 300)
		return 0;
	if (status == 404 && quiet_404)
		return -ENOENT;
	xml_text(r->out_fd < 0 ? r->body : "", "Code", code, sizeof(code));
	log_msg(LOG_LVL_WARN, "s3", "%s %s: HTTP %ld%s%s", what, key, status, code[0] ? " " : "",
		code);
	return status == 404 ? -ENOENT : status == 403 ? -EACCES : -EIO;
}

/* ---- the hook table ------------------------------------------------------------ */

/* One request whose answer body (if any) is kept in r->body: perform, then
 * the status as -errno (404 quietly -ENOENT when quiet_404). */
static int request(struct s3_client *c, enum method m, const char *key, const char *query,
		   const char *const *extra, struct req *r, bool quiet_404,
		   uint64_t *content_length)
{
	long status;
	r->out_fd = -1;
	int rc = perform(c, m, key, query, extra, r, &status, content_length);
	return rc ? rc : status_rc(method_names[m], key, status, r, quiet_404);
}

/* MD5 of bytes [off, off + size) of fd. */
static int file_md5(int fd, uint64_t off, uint64_t size, unsigned char md[16])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *buf = malloc(1 << 20);
	uint64_t pos = 0;
	unsigned int mdlen = 0;
	int rc = 0;

	if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	while (pos < size) {
		size_t want = size - pos < (1 << 20) ? (size_t)(size - pos) : (1 << 20);
		ssize_t n = pread(fd, buf, want, (off_t)(off + pos));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			goto out;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		pos += (uint64_t)n;
	}
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 16)
		rc = -EIO;
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	return rc;
}

static void hex16(const unsigned char md[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* An ETag without its quotes ('"' or the XML body's "&quot;"). */
static void etag_bare(const char *e, char *out, size_t len)
{
	size_t n = strlen(e), q = 0;
	if (n >= 2 && e[0] == '"' && e[n - 1] == '"')
		q = 1;
	else if (n >= 12 && !strncmp(e, "&quot;", 6) && !strcmp(e + n - 6, "&quot;"))
		q = 6;
	snprintf(out, len, "%.*s", (int)(n - 2 * q), e + q);
}

/* PUT bytes [off, off + len) of fd to key + query (a whole object, or one
 * part of a multipart upload) with their Content-MD5; the ETag answered
 * must be that MD5 (S3's rule for a single PUT and for each part). md gets
 * it; etag, when not NULL, the ETag header as answered. */
static int put_range(struct s3_client *c, const char *key, const char *query, int fd, uint64_t off,
		     uint64_t len, unsigned char md[16], char *etag, size_t etag_len)
{
	struct req *r = calloc(1, sizeof(*r));
	unsigned char b64[32];
	char md5hdr[64], want[33], got[130];
	int rc;

	if (!r)
		return -ENOMEM;
	rc = file_md5(fd, off, len, md);
	if (rc)
		goto out;
	EVP_EncodeBlock(b64, md, 16);
	snprintf(md5hdr, sizeof(md5hdr), "Content-MD5: %s", b64);
	hex16(md, want);
	const char *extra[] = { md5hdr, "Content-Type: application/octet-stream", "Expect:", NULL };
	r->in_fd = fd;
	r->in_pos = off;
	r->in_size = off + len;
	rc = request(c, M_PUT, key, query, extra, r, false, NULL);
	if (rc)
		goto out;
	etag_bare(r->etag, got, sizeof(got));
	if (strcasecmp(got, want) != 0) {
		log_msg(LOG_LVL_ERROR, "s3", "PUT %s%s: ETag %s is not the body's MD5 %s", key,
			query, r->etag, want);
		rc = -EIO;
	} else if (etag && strlen(r->etag) >= etag_len) {
		rc = -EIO;
	} else if (etag) {
		snprintf(etag, etag_len, "%s", r->etag);
	}
out:
	free(r);
	return rc;
}

/* MULTIPART UPLOAD (an object of multipart_bytes or more):
 *   1. POST key?uploads=  -> <UploadId> in the answer's XML.
 *   2. PUT key?partNumber=N&uploadId=ID for N = 1..parts, part N holding
 *      bytes [(N-1) * part, min(N * part, size)), each with its
 *      Content-MD5 and its ETag checked to be that MD5 (put_range).
 *   3. POST key?uploadId=ID with
 *      <CompleteMultipartUpload><Part><PartNumber>N</PartNumber>
 *      <ETag>"MD5-N"</ETag></Part>...</CompleteMultipartUpload>;
 *      an answer body holding <Error> is a failure even with status 200
 *      (S3 may say so after it began answering).
 *   The object's ETag is then, as S3 computes it, the hex MD5 of the parts'
 *   16-byte MD5s concatenated, "-" and the part count, quoted; put returns
 *   that one (computed here, and compared with the ETag of step 3's answer
 *   when it has one), so that the engine's HEAD, which must answer the same
 *   ETag and the size, checks the whole object. A store that answers the
 *   MD5 of the whole object instead (s3rver does) is checked against that,
 *   computed here too, and put returns it.
 *   Any failure after step 1: DELETE key?uploadId=ID (AbortMultipartUpload,
 *   best effort), and put fails; nothing of the upload is counted, and the
 *   engine redoes it from step 1. A crash leaves an unfinished upload in
 *   the store, which is no object (a GET or list does not see it). Parts:
 *   part_bytes each (at most 10000 parts: bigger when the object needs it);
 *   AWS wants 5 MiB or more for each part but the last. */
static int put_multipart(struct s3_client *c, const char *key, int fd, uint64_t size, char *etag,
			 size_t etag_len)
{
	struct req *r = calloc(1, sizeof(*r));
	uint64_t part = c->part_bytes, nparts;
	char id[256], eid[3 * sizeof(id)], q[900], want[48], got[130];
	unsigned char md[16], all[16];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *xml = NULL;
	size_t xlen = 0, xcap;
	unsigned int mdlen = 0;
	bool started = false;
	int rc;

	if (!r || !ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	if ((size + part - 1) / part > 10000)
		part = (size + 9999) / 10000;
	nparts = (size + part - 1) / part;
	xcap = 64 + 96 * (size_t)nparts;
	xml = malloc(xcap);
	if (!xml) {
		rc = -ENOMEM;
		goto out;
	}
	/* Step 1. */
	const char *xml_hdr[] = { "Content-Type: application/xml", "Expect:", NULL };
	r->in_buf = "";
	rc = request(c, M_POST, key, "?uploads=", xml_hdr, r, false, NULL);
	if (rc)
		goto out;
	xml_text(r->body, "UploadId", id, sizeof(id));
	if (!id[0]) {
		log_msg(LOG_LVL_ERROR, "s3", "POST %s?uploads: no UploadId in the answer", key);
		rc = -EIO;
		goto out;
	}
	started = true;
	pct_encode(id, false, eid);
	/* Step 2. */
	xlen = (size_t)snprintf(xml, xcap, "<CompleteMultipartUpload>");
	for (uint64_t n = 0; n < nparts; n++) {
		uint64_t off = n * part, len = size - off < part ? size - off : part;
		char hx[33];
		snprintf(q, sizeof(q), "?partNumber=%" PRIu64 "&uploadId=%s", n + 1, eid);
		rc = put_range(c, key, q, fd, off, len, md, NULL, 0);
		if (rc)
			goto out;
		EVP_DigestUpdate(ctx, md, 16);
		hex16(md, hx);
		xlen += (size_t)snprintf(xml + xlen, xcap - xlen,
					 "<Part><PartNumber>%" PRIu64
					 "</PartNumber><ETag>\"%s\"</ETag></Part>",
					 n + 1, hx);
	}
	xlen += (size_t)snprintf(xml + xlen, xcap - xlen, "</CompleteMultipartUpload>");
	if (!EVP_DigestFinal_ex(ctx, all, &mdlen) || mdlen != 16) {
		rc = -EIO;
		goto out;
	}
	hex16(all, want);
	snprintf(want + 32, sizeof(want) - 32, "-%" PRIu64, nparts);
	/* Step 3. */
	memset(r, 0, sizeof(*r));
	r->in_buf = xml;
	r->in_size = xlen;
	snprintf(q, sizeof(q), "?uploadId=%s", eid);
	rc = request(c, M_POST, key, q, xml_hdr, r, false, NULL);
	if (rc == 0 && strstr(r->body, "<Error>")) {
		xml_text(r->body, "Code", got, sizeof(got));
		log_msg(LOG_LVL_WARN, "s3", "POST %s?uploadId: %s", key, got);
		rc = -EIO;
	}
	if (rc)
		goto out;
	started = false; /* complete: nothing to abort */
	char tag[130];
	xml_text(r->body, "ETag", tag, sizeof(tag));
	etag_bare(tag, got, sizeof(got));
	if (got[0] && strcasecmp(got, want) != 0) {
		/* s3rver's way: the MD5 of the whole object. */
		rc = file_md5(fd, 0, size, md);
		if (rc)
			goto out;
		hex16(md, want);
		if (strcasecmp(got, want) != 0) {
			log_msg(LOG_LVL_ERROR, "s3",
				"%s: multipart ETag %s is neither the MD5 of the parts' MD5s "
				"nor the object's MD5 %s",
				key, got, want);
			rc = -EIO;
			goto out;
		}
	}
	if (strlen(want) + 3 > etag_len) {
		rc = -EIO;
		goto out;
	}
	snprintf(etag, etag_len, "\"%s\"", want);
	log_msg(LOG_LVL_INFO, "s3", "%s: %" PRIu64 " bytes sent in %" PRIu64 " parts", key, size,
		nparts);
out:
	if (started) {
		memset(r, 0, sizeof(*r));
		snprintf(q, sizeof(q), "?uploadId=%s", eid);
		if (request(c, M_DELETE, key, q, NULL, r, true, NULL) == 0)
			log_msg(LOG_LVL_WARN, "s3", "%s: multipart upload aborted", key);
	}
	free(xml);
	EVP_MD_CTX_free(ctx);
	free(r);
	return rc;
}

static int op_put(void *arg, const char *key, int fd, uint64_t size, char *etag, size_t etag_len)
{
	struct s3_client *c = arg;
	unsigned char md[16];

	if (size >= c->multipart_bytes && size > 0)
		return put_multipart(c, key, fd, size, etag, etag_len);
	return put_range(c, key, "", fd, 0, size, md, etag, etag_len);
}

static int op_head(void *arg, const char *key, uint64_t *size, char *etag, size_t etag_len)
{
	struct s3_client *c = arg;
	struct req *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	rc = request(c, M_HEAD, key, "", NULL, r, true, size);
	if (rc == 0)
		snprintf(etag, etag_len, "%s", r->etag);
	free(r);
	return rc;
}

static int op_get(void *arg, const char *key, uint64_t off, uint64_t len, int fd)
{
	struct s3_client *c = arg;
	struct req *r = calloc(1, sizeof(*r));
	char range[80];
	long status;
	int rc;

	if (!r)
		return -ENOMEM;
	if (len == 0) {
		free(r);
		return 0;
	}
	snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
	const char *extra[] = { range, NULL };
	r->out_fd = fd;
	rc = perform(c, M_GET, key, "", extra, r, &status, NULL);
	if (rc == 0 && (status < 200 || status >= 300)) {
		log_msg(LOG_LVL_WARN, "s3", "GET %s: HTTP %ld", key, status);
		rc = status == 404 ? -ENOENT : -EIO;
	}
	if (rc == 0 && (status == 200 && off != 0))
		rc = -EIO; /* the server ignored the range */
	if (rc == 0 && r->out_bytes != len) {
		log_msg(LOG_LVL_WARN, "s3", "GET %s: %" PRIu64 " bytes, asked %" PRIu64, key,
			r->out_bytes, len);
		rc = -EIO;
	}
	free(r);
	return rc;
}

static int op_del(void *arg, const char *key)
{
	struct s3_client *c = arg;
	struct req *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	rc = request(c, M_DELETE, key, "", NULL, r, true, NULL);
	free(r);
	return rc == -ENOENT ? 0 : rc;
}

/* XML text as it reads: the five predefined entities decoded; false when
 * another '&' sequence is there or it does not fit. */
static bool xml_unescape(const char *a, size_t n, char *out, size_t len)
{
	static const struct {
		const char *ent;
		char ch;
	} ents[] = { { "&amp;", '&' },
		     { "&lt;", '<' },
		     { "&gt;", '>' },
		     { "&quot;", '"' },
		     { "&apos;", '\'' } };
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = a[i];
		if (ch == '&') {
			size_t k, el = 0;
			for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				el = strlen(ents[k].ent);
				if (i + el <= n && !strncmp(a + i, ents[k].ent, el))
					break;
			}
			if (k == sizeof(ents) / sizeof(ents[0]))
				return false;
			ch = ents[k].ch;
			i += el - 1;
		}
		if (w + 1 >= len)
			return false;
		out[w++] = ch;
	}
	out[w] = 0;
	return true;
}

/* Between <tag> and </tag> from p (not past end): the text's bounds. */
static bool xml_span(const char *p, const char *end, const char *tag, const char **a, size_t *n)
{
	char o[40], c[40];
	snprintf(o, sizeof(o), "<%s>", tag);
	snprintf(c, sizeof(c), "</%s>", tag);
	const char *x = strstr(p, o), *y;
	if (!x || x >= end)
		return false;
	x += strlen(o);
	y = strstr(x, c);
	if (!y || y > end)
		return false;
	*a = x;
	*n = (size_t)(y - x);
	return true;
}

/* "2026-12-02T17:00:00.000Z" as ms since the epoch (-1 when not that). */
static int64_t iso8601_ms(const char *a, size_t n)
{
	struct tm tm = { 0 };
	char buf[40];
	int ms = 0;
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, a, n);
	buf[n] = 0;
	const char *rest = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return -1;
	if (*rest == '.')
		ms = atoi(rest + 1) % 1000;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* ListObjectsV2, page by page: GET /?continuation-token=T&list-type=2&
 * prefix=P (the bucket's URL; parameters in SigV4's sorted order); each
 * <Contents> gives its <Key> (XML-unescaped), <Size> and <LastModified>;
 * <IsTruncated>true</IsTruncated> asks for the next page with
 * <NextContinuationToken>. */
static int op_list(void *arg, const char *prefix, engine_remote_list_fn cb, void *cbarg)
{
	struct s3_client *c = arg;
	char *token = NULL, *q = NULL, *eprefix = malloc(3 * strlen(prefix) + 1);
	int rc = 0;

	if (!eprefix)
		return -ENOMEM;
	pct_encode(prefix, false, eprefix);
	do {
		struct req *r = calloc(1, sizeof(*r));
		char *etoken = token ? malloc(3 * strlen(token) + 1) : NULL;
		if (!r || (token && !etoken)) {
			free(r);
			free(etoken);
			rc = -ENOMEM;
			break;
		}
		if (etoken)
			pct_encode(token, false, etoken);
		free(q);
		if (asprintf(&q, "?%s%s%slist-type=2&prefix=%s",
			     etoken ? "continuation-token=" : "", etoken ? etoken : "",
			     etoken ? "&" : "", eprefix) < 0)
			q = NULL;
		free(etoken);
		free(token);
		token = NULL;
		r->grow = true;
		rc = q ? request(c, M_GET, "", q, NULL, r, false, NULL) : -ENOMEM;
		const char *p = r->big ? r->big : "", *end = p + strlen(p), *a;
		size_t n;
		while (rc == 0) {
			const char *cs = strstr(p, "<Contents>"), *ce;
			if (!cs || !(ce = strstr(cs, "</Contents>")))
				break;
			char key[1024], num[32];
			uint64_t size = 0;
			int64_t mtime = -1;
			bool have_key = xml_span(cs, ce, "Key", &a, &n) &&
					xml_unescape(a, n, key, sizeof(key));
			if (xml_span(cs, ce, "Size", &a, &n) && n < sizeof(num)) {
				memcpy(num, a, n);
				num[n] = 0;
				size = strtoull(num, NULL, 10);
			}
			if (xml_span(cs, ce, "LastModified", &a, &n))
				mtime = iso8601_ms(a, n);
			if (have_key && mtime >= 0)
				rc = cb(cbarg, key, size, mtime);
			p = ce + 11;
		}
		if (rc == 0 && xml_span(r->big ? r->big : "", end, "IsTruncated", &a, &n) &&
		    n == 4 && !strncmp(a, "true", 4)) {
			if (xml_span(r->big, end, "NextContinuationToken", &a, &n) && n)
				token = strndup(a, n);
			else
				rc = -EIO;
		}
		free(r->big);
		free(r);
	} while (rc == 0 && token);
	free(token);
	free(q);
	free(eprefix);
	return rc;
}

int s3_client_probe(struct s3_client *c, long *status)
{
	struct req *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	r->out_fd = -1;
	rc = perform(c, M_GET, "", "", NULL, r, status, NULL);
	free(r);
	return rc;
}

static const struct engine_remote_ops s3_ops = {
	.put = op_put,
	.head = op_head,
	.get = op_get,
	.del = op_del,
	.list = op_list,
};

const struct engine_remote_ops *s3_remote_ops(void)
{
	return &s3_ops;
}
