/* sasl.c - SASL authentication: SaslHandshake (17) and SaslAuthenticate
 * (36), mechanisms PLAIN (RFC 4616), SCRAM-SHA-256 and SCRAM-SHA-512
 * (RFC 5802, RFC 7677), against the users file (users.c).
 *
 * When it is on. SASL is on when kafka.users.file is set; it then applies
 * to every listener (plaintext and TLS). Until a connection has
 * authenticated, only ApiVersions, SaslHandshake and SaslAuthenticate are
 * served; any other request closes the connection, as Kafka's broker does.
 *
 * Wire formats (apache/kafka clients/src/main/resources/common/message/):
 *   SaslHandshakeRequest v0-1:  Mechanism string
 *   SaslHandshakeResponse v0-1: ErrorCode int16, Mechanisms [string]
 *   SaslAuthenticateRequest v0-2:  AuthBytes bytes
 *   SaslAuthenticateResponse v0-2: ErrorCode int16, ErrorMessage nullable
 *       string, AuthBytes bytes, SessionLifetimeMs int64 (v1+)
 *   SaslAuthenticate v2 is flexible (request header v2, response header
 *   v1, compact bytes and strings, tagged fields closing each body); v1 =
 *   v0 plus SessionLifetimeMs. SaslHandshake has no flexible version.
 * v1 of SaslHandshake means "SaslAuthenticate requests follow" (what
 * librdkafka >= 1.0, confluent-kafka-python and kafkajs send once the
 * broker advertises API 36). After a v0 handshake the client sends the raw
 * SASL tokens instead, each framed only by an int32 length, and gets raw
 * tokens back with the same framing (kafka_sasl_serve_raw); a failure then
 * just closes the connection, since the raw framing has no error field.
 *
 * Errors. An unknown mechanism gets 33 UNSUPPORTED_SASL_MECHANISM with the
 * list of enabled ones; a handshake when SASL is off, a second handshake,
 * or SaslAuthenticate without a handshake gets 34 ILLEGAL_SASL_STATE. A
 * wrong password, an unknown user or a malformed SASL message gets 58
 * SASL_AUTHENTICATION_FAILED, and the connection is closed right after the
 * response is sent (Kafka's broker does the same).
 *
 * SCRAM exchange (server side):
 *   client-first  = gs2-header client-first-bare
 *       gs2-header = ("n" / "y") "," [ "a=" authzid ] ","
 *       client-first-bare = "n=" user ",r=" cnonce [ "," extensions ]
 *   server-first  = "r=" cnonce snonce ",s=" base64(salt) ",i=" iterations
 *       snonce: 24 random bytes, base64
 *   client-final  = "c=" base64(gs2-header) ",r=" cnonce snonce
 *                   [ "," extensions ] ",p=" base64(ClientProof)
 *   AuthMessage   = client-first-bare "," server-first ","
 *                   client-final-without-proof
 *   check: H(ClientProof XOR HMAC(StoredKey, AuthMessage)) == StoredKey
 *   server-final  = "v=" base64(HMAC(ServerKey, AuthMessage))
 * The nonce of client-final must end with the server's combined nonce
 * (not equal it): librdkafka sends cnonce again in front of it, and
 * Kafka's broker accepts that. Channel binding ("p=") is refused, and so
 * is an authorization id ("a=") other than the user itself. User names
 * need no SASLprep or "=2C" unescaping: users.c allows no ',' or '=' in
 * them.
 */
#include "kafka-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "log.h"
#include "users.h"

enum { MECH_NONE = -1, MECH_PLAIN = 100 };

struct kafka_sasl {
	int mech; /* MECH_PLAIN, KMECH_SCRAM_SHA_256/512, or MECH_NONE */
	bool raw; /* v0 handshake: raw tokens follow */
	int step; /* SCRAM: 0 expects client-first, 1 client-final */
	const struct kafka_user *user;
	char gs2[300];
	char *client_first_bare;
	char *server_first;
	char nonce[512];
};

static const char mechs_enabled[][16] = { "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" };

void kafka_sasl_free(struct kafka_sasl *s)
{
	if (!s)
		return;
	free(s->client_first_bare);
	free(s->server_first);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

bool kafka_sasl_allowed(const struct kafka_conn *c, int16_t api_key)
{
	if (!c->l->users || c->user)
		return true;
	return api_key == KAPI_API_VERSIONS || api_key == KAPI_SASL_HANDSHAKE ||
	       api_key == KAPI_SASL_AUTHENTICATE;
}

bool kafka_conn_allows(const struct kafka_conn *c, int op, enum kafka_acl_type type,
		       const char *name)
{
	return kafka_users_allows(c->l->users, c->user, op, type, name);
}

bool kafka_conn_allows_group(const struct kafka_conn *c, int op, struct kafka_str group_id)
{
	if (!c->l->users || !c->l->users->acls_on)
		return true;
	char *name = kafka_str_dup(group_id);
	bool ok = name && kafka_users_allows(c->l->users, c->user, op, KACL_GROUP, name);
	free(name);
	return ok;
}

int kafka_handle_sasl_handshake(struct kafka_request *req)
{
	struct kafka_conn *c = req->c;
	struct kafka_str mech = kafka_read_string(req->r, false, false);
	int16_t err = KERR_NONE;
	int m = MECH_NONE;

	if (kafka_reader_failed(req->r))
		return -1;
	if (kafka_str_eq(mech, "PLAIN"))
		m = MECH_PLAIN;
	else if (kafka_str_eq(mech, "SCRAM-SHA-256"))
		m = KMECH_SCRAM_SHA_256;
	else if (kafka_str_eq(mech, "SCRAM-SHA-512"))
		m = KMECH_SCRAM_SHA_512;

	if (!c->l->users || c->user || c->sasl)
		err = KERR_ILLEGAL_SASL_STATE;
	else if (m == MECH_NONE)
		err = KERR_UNSUPPORTED_SASL_MECHANISM;
	else {
		c->sasl = calloc(1, sizeof(*c->sasl));
		if (!c->sasl)
			return -1;
		c->sasl->mech = m;
		c->sasl->raw = req->api_version == 0;
	}
	kafka_write_i16(req->w, err);
	int32_t n = c->l->users ? (int32_t)(sizeof(mechs_enabled) / sizeof(mechs_enabled[0])) : 0;
	kafka_write_array(req->w, false, n);
	for (int32_t i = 0; i < n; i++)
		kafka_write_string(req->w, false, mechs_enabled[i]);
	return 0;
}

/* ---- mechanisms -------------------------------------------------------- */

/* PLAIN: authzid NUL authcid NUL passwd. 0 = authenticated. */
static int plain_step(struct kafka_conn *c, const uint8_t *in, size_t n)
{
	const uint8_t *z1 = memchr(in, 0, n);
	if (!z1)
		return -1;
	const uint8_t *user = z1 + 1;
	const uint8_t *z2 = memchr(user, 0, n - (size_t)(user - in));
	if (!z2)
		return -1;
	const uint8_t *pass = z2 + 1;
	size_t ulen = (size_t)(z2 - user), plen = n - (size_t)(pass - in);
	size_t alen = (size_t)(z1 - in);
	char name[256];
	if (ulen == 0 || ulen >= sizeof(name) || memchr(pass, 0, plen))
		return -1;
	memcpy(name, user, ulen);
	name[ulen] = 0;
	/* An authorization id other than the user itself is refused. */
	if (alen && (alen != ulen || memcmp(in, user, ulen) != 0))
		return -1;
	const struct kafka_user *u = kafka_users_find(c->l->users, name);
	if (!u || !kafka_user_check_password(u, (const char *)pass, plen))
		return -1;
	c->user = u;
	return 0;
}

/* The value of attribute "k=" at the start of s (up to ',' or end): a
 * pointer to it and its length, or NULL. */
static const char *attr(const char *s, const char *end, char k, size_t *len)
{
	if (end - s < 2 || s[0] != k || s[1] != '=')
		return NULL;
	const char *v = s + 2, *comma = memchr(v, ',', (size_t)(end - v));
	*len = (size_t)((comma ? comma : end) - v);
	return v;
}

static int scram_first(struct kafka_conn *c, const char *in, size_t n, struct kafka_writer *out)
{
	struct kafka_sasl *s = c->sasl;
	const char *end = in + n;
	if (n < 3 || (in[0] != 'n' && in[0] != 'y') || in[1] != ',')
		return -1;
	const char *c2 = memchr(in + 2, ',', n - 2);
	if (!c2 || (size_t)(c2 + 1 - in) >= sizeof(s->gs2))
		return -1;
	memcpy(s->gs2, in, (size_t)(c2 + 1 - in));
	s->gs2[c2 + 1 - in] = 0;
	const char *bare = c2 + 1;
	size_t ulen, nlen;
	const char *user = attr(bare, end, 'n', &ulen);
	if (!user || ulen == 0 || ulen > 255 || user + ulen >= end)
		return -1;
	const char *nonce = attr(user + ulen + 1, end, 'r', &nlen);
	if (!nonce || nlen == 0 || nlen > 200 || memchr(nonce, 0, nlen))
		return -1;
	char name[256];
	memcpy(name, user, ulen);
	name[ulen] = 0;
	/* An authorization id ("n,a=NAME,") other than the user is refused. */
	size_t gl = strlen(s->gs2);
	if (gl > 3 && (s->gs2[2] != 'a' || s->gs2[3] != '=' || gl - 5 != ulen ||
		       memcmp(s->gs2 + 4, name, ulen) != 0))
		return -1;
	const struct kafka_user *u = kafka_users_find(c->l->users, name);
	if (!u || !u->cred[s->mech].set)
		return -1;
	s->user = u;
	s->client_first_bare = strndup(bare, (size_t)(end - bare));
	if (!s->client_first_bare || memchr(bare, 0, (size_t)(end - bare)))
		return -1;

	uint8_t rnd[24];
	char rnd64[33], salt64[4 * (KAFKA_SCRAM_MAX_SALT / 3 + 1) + 1];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	kafka_b64_encode(rnd, sizeof(rnd), rnd64);
	snprintf(s->nonce, sizeof(s->nonce), "%.*s%s", (int)nlen, nonce, rnd64);
	const struct kafka_scram_cred *cr = &u->cred[s->mech];
	kafka_b64_encode(cr->salt, cr->salt_len, salt64);
	if (asprintf(&s->server_first, "r=%s,s=%s,i=%d", s->nonce, salt64, (int)cr->iterations) <
	    0) {
		s->server_first = NULL;
		return -1;
	}
	kafka_write_raw(out, s->server_first, strlen(s->server_first));
	s->step = 1;
	return 1; /* continue */
}

static int scram_final(struct kafka_conn *c, const char *in, size_t n, struct kafka_writer *out)
{
	struct kafka_sasl *s = c->sasl;
	enum kafka_mech m = (enum kafka_mech)s->mech;
	const EVP_MD *md = m == KMECH_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
	size_t hl = kafka_mech_hash_len(m);
	const char *end = in + n;
	const struct kafka_scram_cred *cr = &s->user->cred[m];

	if (memchr(in, 0, n))
		return -1;
	/* c= base64(gs2-header) */
	size_t len;
	const char *cb = attr(in, end, 'c', &len);
	char gs2_64[sizeof(s->gs2) * 2];
	kafka_b64_encode((const uint8_t *)s->gs2, strlen(s->gs2), gs2_64);
	if (!cb || len != strlen(gs2_64) || memcmp(cb, gs2_64, len) != 0 || cb + len >= end)
		return -1;
	const char *r = attr(cb + len + 1, end, 'r', &len);
	size_t nl = strlen(s->nonce);
	if (!r || len < nl || memcmp(r + len - nl, s->nonce, nl) != 0)
		return -1;
	/* The proof is the last attribute. */
	const char *p = NULL;
	for (const char *q = r + len; q + 3 <= end; q++)
		if (q[0] == ',' && q[1] == 'p' && q[2] == '=')
			p = q;
	if (!p)
		return -1;
	uint8_t proof[KAFKA_SCRAM_MAX_KEY], sig[KAFKA_SCRAM_MAX_KEY], key[KAFKA_SCRAM_MAX_KEY];
	if (kafka_b64_decode(p + 3, (size_t)(end - p - 3), proof, sizeof(proof)) != (int)hl)
		return -1;

	char *auth_msg = NULL;
	int amlen = asprintf(&auth_msg, "%s,%s,%.*s", s->client_first_bare, s->server_first,
			     (int)(p - in), in);
	if (amlen < 0)
		return -1;
	unsigned int ol;
	int rc = -1;
	if (!HMAC(md, cr->stored_key, (int)hl, (uint8_t *)auth_msg, (size_t)amlen, sig, &ol))
		goto out;
	for (size_t i = 0; i < hl; i++)
		key[i] = proof[i] ^ sig[i]; /* ClientKey */
	if (!EVP_Digest(key, hl, key, &ol, md, NULL))
		goto out;
	if (CRYPTO_memcmp(key, cr->stored_key, hl) != 0)
		goto out;
	if (!HMAC(md, cr->server_key, (int)hl, (uint8_t *)auth_msg, (size_t)amlen, sig, &ol))
		goto out;
	char v64[4 * (KAFKA_SCRAM_MAX_KEY / 3 + 1) + 1];
	kafka_b64_encode(sig, hl, v64);
	kafka_write_raw(out, "v=", 2);
	kafka_write_raw(out, v64, strlen(v64));
	c->user = s->user;
	rc = 0;
out:
	free(auth_msg);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* One SASL token in; the answer token written to out. 0 = authenticated,
 * 1 = another token is expected, -1 = authentication failed. */
static int sasl_step(struct kafka_conn *c, const uint8_t *in, size_t n, struct kafka_writer *out)
{
	struct kafka_sasl *s = c->sasl;
	if (s->mech == MECH_PLAIN)
		return plain_step(c, in, n);
	if (s->step == 0)
		return scram_first(c, (const char *)in, n, out);
	return scram_final(c, (const char *)in, n, out);
}

static const char *mech_label(int m)
{
	return m == MECH_PLAIN ? "PLAIN" : kafka_mech_name((enum kafka_mech)m);
}

int kafka_handle_sasl_authenticate(struct kafka_request *req)
{
	struct kafka_conn *c = req->c;
	bool f = req->flexible;
	struct kafka_str tok = kafka_read_bytes(req->r, f, false);
	struct kafka_writer out;
	int16_t err = KERR_NONE;
	char msg[160];
	int rc = 1;

	if (f)
		kafka_read_tags(req->r);
	if (kafka_reader_failed(req->r))
		return -1;
	kafka_writer_init(&out, 4096);
	msg[0] = 0;
	if (!c->sasl || c->sasl->raw || c->user) {
		err = KERR_ILLEGAL_SASL_STATE;
		snprintf(msg, sizeof(msg), "SaslAuthenticate without a SaslHandshake v1 first");
	} else {
		rc = sasl_step(c, (const uint8_t *)tok.ptr, (size_t)tok.len, &out);
		if (rc < 0 || out.failed) {
			err = KERR_SASL_AUTHENTICATION_FAILED;
			snprintf(
				msg, sizeof(msg),
				"Authentication failed: invalid credentials with SASL mechanism %s",
				mech_label(c->sasl->mech));
			log_msg(LOG_LVL_INFO, "kafka", "%s: SASL %s authentication failed", c->peer,
				mech_label(c->sasl->mech));
			out.len = 0;
		} else if (rc == 0) {
			log_msg(LOG_LVL_DEBUG, "kafka", "%s: authenticated as %s (%s)", c->peer,
				c->user->name, mech_label(c->sasl->mech));
		}
	}
	kafka_write_i16(req->w, err);
	kafka_write_string(req->w, f, err ? msg : NULL);
	kafka_write_bytes(req->w, f, out.buf ? out.buf : (const uint8_t *)"", (int32_t)out.len);
	if (req->api_version >= 1)
		kafka_write_i64(req->w, 0); /* SessionLifetimeMs: no re-authentication */
	if (f)
		kafka_write_tags(req->w);
	kafka_writer_fini(&out);
	if (err)
		req->close_after = true;
	return 0;
}

bool kafka_sasl_raw_pending(const struct kafka_conn *c)
{
	return c->sasl && c->sasl->raw && !c->user;
}

int kafka_sasl_serve_raw(struct kafka_conn *c, const uint8_t *buf, size_t len,
			 struct kafka_writer *w)
{
	kafka_writer_reset(w);
	(void)kafka_write_i32_later(w);
	int rc = sasl_step(c, buf, len, w);
	if (rc < 0 || w->failed) {
		log_msg(LOG_LVL_INFO, "kafka", "%s: SASL %s authentication failed", c->peer,
			mech_label(c->sasl->mech));
		return -1;
	}
	/* PLAIN's answer is an empty token, still framed (as Kafka's). */
	kafka_write_i32_at(w, 0, (int32_t)(w->len - 4));
	return kafka_conn_write(c, w->buf, w->len);
}
