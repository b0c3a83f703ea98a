/* users.c - the Kafka users file (kafka.users.file): who may log in over
 * SASL, with which SCRAM credentials, and what each user may do (ACLs).
 *
 * Format. A text file, one entry per line, fields separated by spaces or
 * tabs. Blank lines and lines starting with '#' are ignored. Two kinds of
 * entries:
 *
 *   scram NAME MECHANISM ITERATIONS SALT STORED_KEY SERVER_KEY
 *       MECHANISM   SCRAM-SHA-256 or SCRAM-SHA-512
 *       ITERATIONS  decimal, 4096..100000
 *       SALT        base64 (RFC 4648, padded), 1..64 bytes decoded
 *       STORED_KEY  base64 of H(HMAC(SaltedPassword, "Client Key")),
 *                   32 bytes (SHA-256) or 64 (SHA-512) decoded
 *       SERVER_KEY  base64 of HMAC(SaltedPassword, "Server Key"), same size
 *     where SaltedPassword = PBKDF2-HMAC-H(password, SALT, ITERATIONS) as
 *     RFC 5802 section 3 defines it. A user may have one line per
 *     mechanism; a second line for the same user and mechanism is an error.
 *     The password itself is never stored. SASL/PLAIN checks a password by
 *     deriving StoredKey from it with the user's stored salt and iterations
 *     (SHA-256 line first, else SHA-512) and comparing in constant time.
 *
 *   acl NAME OPERATIONS TYPE PATTERN
 *       OPERATIONS  comma-separated: read, write, create, delete, all
 *       TYPE        topic or group
 *       PATTERN     a literal name, or a prefix followed by '*' ("logs-*";
 *                   "*" alone matches every name)
 *     NAME must have a scram line (before or after). ACLs are off when the
 *     file has no acl line: every authenticated user may do everything.
 *     Once the file has one, every user may do only what its acl lines
 *     allow (deny by default, as Kafka's authorizer).
 *
 * NAME is 1..255 bytes of printable ASCII other than space, ',' and '='
 * (so it needs no SCRAM escaping). Any other line is an error naming the
 * file and line; chronikd then refuses to start.
 *
 * Example (`chronik user add alice --mechanism SCRAM-SHA-256 -f FILE` writes
 * the scram line from a password read on stdin):
 *
 *   scram alice SCRAM-SHA-256 4096 c2FsdHNhbHQ= 3bp... Kj2...
 *   acl alice read,write topic logs-*
 *   acl alice read group *
 */
#include "users.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAX_LINE 4096

int kafka_mech_parse(const char *name)
{
	if (!strcmp(name, "SCRAM-SHA-256") || !strcmp(name, "scram-sha-256"))
		return KMECH_SCRAM_SHA_256;
	if (!strcmp(name, "SCRAM-SHA-512") || !strcmp(name, "scram-sha-512"))
		return KMECH_SCRAM_SHA_512;
	return -1;
}

const char *kafka_mech_name(enum kafka_mech m)
{
	return m == KMECH_SCRAM_SHA_512 ? "SCRAM-SHA-512" : "SCRAM-SHA-256";
}

size_t kafka_mech_hash_len(enum kafka_mech m)
{
	return m == KMECH_SCRAM_SHA_512 ? 64 : 32;
}

static const EVP_MD *mech_md(enum kafka_mech m)
{
	return m == KMECH_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
}

size_t kafka_b64_encode(const uint8_t *in, size_t n, char *out)
{
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

int kafka_b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap)
{
	if (n == 0 || n % 4 != 0 || n > 4096)
		return -1;
	unsigned char tmp[3072 + 3];
	int k = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
	if (k < 0)
		return -1;
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	if (in[n - 1] == '=')
		k--;
	if (in[n - 2] == '=')
		k--;
	if ((size_t)k > outcap)
		return -1;
	memcpy(out, tmp, (size_t)k);
	return k;
}

int kafka_scram_derive(enum kafka_mech m, const char *password, size_t plen, const uint8_t *salt,
		       size_t salt_len, int32_t iterations, struct kafka_scram_cred *out)
{
	const EVP_MD *md = mech_md(m);
	size_t hl = kafka_mech_hash_len(m);
	uint8_t salted[KAFKA_SCRAM_MAX_KEY], client_key[KAFKA_SCRAM_MAX_KEY];
	unsigned int len;

	if (salt_len > KAFKA_SCRAM_MAX_SALT || iterations < 1)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!PKCS5_PBKDF2_HMAC(password, (int)plen, salt, (int)salt_len, iterations, md, (int)hl,
			       salted))
		return -EIO;
	if (!HMAC(md, salted, (int)hl, (const unsigned char *)"Client Key", 10, client_key, &len) ||
	    !HMAC(md, salted, (int)hl, (const unsigned char *)"Server Key", 10, out->server_key,
		  &len) ||
	    !EVP_Digest(client_key, hl, out->stored_key, &len, md, NULL)) {
		OPENSSL_cleanse(salted, sizeof(salted));
		return -EIO;
	}
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	memcpy(out->salt, salt, salt_len);
	out->salt_len = salt_len;
	out->iterations = iterations;
	out->set = true;
	return 0;
}

bool kafka_user_check_password(const struct kafka_user *u, const char *password, size_t plen)
{
	for (int m = 0; m < KMECH_COUNT; m++) {
		const struct kafka_scram_cred *c = &u->cred[m];
		struct kafka_scram_cred d;
		if (!c->set)
			continue;
		if (kafka_scram_derive((enum kafka_mech)m, password, plen, c->salt, c->salt_len,
				       c->iterations, &d) != 0)
			return false;
		bool ok = CRYPTO_memcmp(d.stored_key, c->stored_key,
					kafka_mech_hash_len((enum kafka_mech)m)) == 0;
		OPENSSL_cleanse(&d, sizeof(d));
		return ok;
	}
	return false;
}

int kafka_scram_format(const char *name, enum kafka_mech m, const struct kafka_scram_cred *c,
		       char *buf, size_t buflen)
{
	char salt[4 * (KAFKA_SCRAM_MAX_SALT / 3 + 1) + 1];
	char sk[4 * (KAFKA_SCRAM_MAX_KEY / 3 + 1) + 1], svk[sizeof(sk)];
	size_t hl = kafka_mech_hash_len(m);

	kafka_b64_encode(c->salt, c->salt_len, salt);
	kafka_b64_encode(c->stored_key, hl, sk);
	kafka_b64_encode(c->server_key, hl, svk);
	int n = snprintf(buf, buflen, "scram %s %s %d %s %s %s\n", name, kafka_mech_name(m),
			 (int)c->iterations, salt, sk, svk);
	return n < 0 || (size_t)n >= buflen ? -ENOSPC : 0;
}

static bool name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s > '~' || *s == ',' || *s == '=')
			return false;
	return true;
}

const struct kafka_user *kafka_users_find(const struct kafka_users *u, const char *name)
{
	if (!u)
		return NULL;
	for (size_t i = 0; i < u->count; i++)
		if (!strcmp(u->users[i].name, name))
			return &u->users[i];
	return NULL;
}

static struct kafka_user *user_get(struct kafka_users *u, const char *name)
{
	struct kafka_user *f = (struct kafka_user *)kafka_users_find(u, name);
	if (f)
		return f;
	struct kafka_user *n = realloc(u->users, (u->count + 1) * sizeof(*n));
	if (!n)
		return NULL;
	u->users = n;
	f = &n[u->count];
	memset(f, 0, sizeof(*f));
	f->name = strdup(name);
	if (!f->name)
		return NULL;
	u->count++;
	return f;
}

static int parse_ops(const char *s)
{
	int ops = 0;
	char buf[128];
	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "read"))
			ops |= KACL_READ;
		else if (!strcmp(t, "write"))
			ops |= KACL_WRITE;
		else if (!strcmp(t, "create"))
			ops |= KACL_CREATE;
		else if (!strcmp(t, "delete"))
			ops |= KACL_DELETE;
		else if (!strcmp(t, "all"))
			ops |= KACL_ALL;
		else
			return -1;
	}
	return ops ? ops : -1;
}

/* One line's fields (at most 8) split in place. */
static int split(char *line, char **f, int max)
{
	int n = 0;
	for (char *save = NULL, *t = strtok_r(line, " \t\r\n", &save); t;
	     t = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == max)
			return max + 1;
		f[n++] = t;
	}
	return n;
}

static const char *parse_line(struct kafka_users *u, char *line)
{
	char *f[8];
	int n = split(line, f, 7);
	if (n == 0 || f[0][0] == '#')
		return NULL;
	if (!strcmp(f[0], "scram")) {
		if (n != 7)
			return "a scram line has 7 fields: scram NAME MECHANISM ITERATIONS SALT "
			       "STORED_KEY SERVER_KEY";
		if (!name_valid(f[1]))
			return "bad user name (printable ASCII, no space, ',' or '=')";
		int m = kafka_mech_parse(f[2]);
		if (m < 0)
			return "unknown mechanism (SCRAM-SHA-256 or SCRAM-SHA-512)";
		char *end;
		errno = 0;
		long it = strtol(f[3], &end, 10);
		if (errno || *end || it < KAFKA_SCRAM_MIN_ITER || it > KAFKA_SCRAM_MAX_ITER)
			return "iterations must be 4096..100000";
		struct kafka_scram_cred c;
		memset(&c, 0, sizeof(c));
		size_t hl = kafka_mech_hash_len((enum kafka_mech)m);
		int sl = kafka_b64_decode(f[4], strlen(f[4]), c.salt, sizeof(c.salt));
		if (sl <= 0)
			return "bad salt (base64, 1..64 bytes)";
		c.salt_len = (size_t)sl;
		if (kafka_b64_decode(f[5], strlen(f[5]), c.stored_key, sizeof(c.stored_key)) !=
		    (int)hl)
			return "bad stored key (base64 of the hash's size)";
		if (kafka_b64_decode(f[6], strlen(f[6]), c.server_key, sizeof(c.server_key)) !=
		    (int)hl)
			return "bad server key (base64 of the hash's size)";
		c.iterations = (int32_t)it;
		c.set = true;
		struct kafka_user *usr = user_get(u, f[1]);
		if (!usr)
			return "out of memory";
		if (usr->cred[m].set)
			return "a second credential for this user and mechanism";
		usr->cred[m] = c;
		return NULL;
	}
	if (!strcmp(f[0], "acl")) {
		if (n != 5)
			return "an acl line has 5 fields: acl NAME OPERATIONS TYPE PATTERN";
		if (!name_valid(f[1]))
			return "bad user name (printable ASCII, no space, ',' or '=')";
		int ops = parse_ops(f[2]);
		if (ops < 0)
			return "bad operations (comma-separated read, write, create, delete, all)";
		enum kafka_acl_type type;
		if (!strcmp(f[3], "topic"))
			type = KACL_TOPIC;
		else if (!strcmp(f[3], "group"))
			type = KACL_GROUP;
		else
			return "bad resource type (topic or group)";
		size_t pl = strlen(f[4]);
		struct kafka_user *usr = user_get(u, f[1]);
		if (!usr)
			return "out of memory";
		struct kafka_acl_rule *nr = realloc(usr->rules, (usr->nrules + 1) * sizeof(*nr));
		if (!nr)
			return "out of memory";
		usr->rules = nr;
		struct kafka_acl_rule *r = &nr[usr->nrules];
		r->ops = ops;
		r->type = type;
		r->prefix = f[4][pl - 1] == '*';
		r->pattern = strndup(f[4], r->prefix ? pl - 1 : pl);
		if (!r->pattern)
			return "out of memory";
		usr->nrules++;
		u->acls_on = true;
		return NULL;
	}
	return "unknown entry (want scram or acl)";
}

int kafka_users_load(const char *path, struct kafka_users **out, char *err, size_t errlen)
{
	char line[MAX_LINE];
	int lineno = 0;
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	struct kafka_users *u = calloc(1, sizeof(*u));
	if (!u) {
		fclose(f);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			goto err_parse;
		}
		const char *why = parse_line(u, line);
		if (why) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			goto err_parse;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto err_parse;
	}
	for (size_t i = 0; i < u->count; i++) {
		if (!u->users[i].cred[0].set && !u->users[i].cred[1].set) {
			snprintf(err, errlen, "%s: user %s has acl lines but no scram line", path,
				 u->users[i].name);
			goto err_parse;
		}
	}
	fclose(f);
	*out = u;
	return 0;

err_parse:
	fclose(f);
	kafka_users_free(u);
	return -EINVAL;
}

void kafka_users_free(struct kafka_users *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->count; i++) {
		for (size_t k = 0; k < u->users[i].nrules; k++)
			free(u->users[i].rules[k].pattern);
		free(u->users[i].rules);
		free(u->users[i].name);
		OPENSSL_cleanse(u->users[i].cred, sizeof(u->users[i].cred));
	}
	free(u->users);
	free(u);
}

bool kafka_users_allows(const struct kafka_users *users, const struct kafka_user *u, int op,
			enum kafka_acl_type type, const char *name)
{
	if (!users || !users->acls_on || !u)
		return true;
	for (size_t i = 0; i < u->nrules; i++) {
		const struct kafka_acl_rule *r = &u->rules[i];
		if (r->type != type || !(r->ops & op))
			continue;
		size_t pl = strlen(r->pattern);
		if (r->prefix ? strncmp(name, r->pattern, pl) == 0 : strcmp(name, r->pattern) == 0)
			return true;
	}
	return false;
}
