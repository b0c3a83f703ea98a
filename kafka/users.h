/* users.h - the Kafka users file: SCRAM credentials and ACL rules.
 *
 * The format is documented at the top of users.c. chronikd's listener loads
 * it once at start (kafka.users.file); `chronik user add` writes entries.
 * Passwords are never stored: only salt, iterations, StoredKey, ServerKey.
 */
#ifndef CHRONIK_KAFKA_USERS_H
#define CHRONIK_KAFKA_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kafka_mech {
	KMECH_SCRAM_SHA_256 = 0,
	KMECH_SCRAM_SHA_512 = 1,
	KMECH_COUNT = 2,
};

#define KAFKA_SCRAM_MAX_KEY 64 /* SHA-512 */
#define KAFKA_SCRAM_MAX_SALT 64
#define KAFKA_SCRAM_MIN_ITER 4096 /* RFC 7677's minimum, Kafka's default */
#define KAFKA_SCRAM_MAX_ITER 100000

struct kafka_scram_cred {
	bool set;
	int32_t iterations;
	uint8_t salt[KAFKA_SCRAM_MAX_SALT];
	size_t salt_len;
	uint8_t stored_key[KAFKA_SCRAM_MAX_KEY];
	uint8_t server_key[KAFKA_SCRAM_MAX_KEY];
};

/* ACL operations, a bit set. */
enum kafka_acl_op {
	KACL_READ = 1,
	KACL_WRITE = 2,
	KACL_CREATE = 4,
	KACL_DELETE = 8,
	KACL_ALL = 15,
};
enum kafka_acl_type {
	KACL_TOPIC = 0,
	KACL_GROUP = 1,
};

struct kafka_acl_rule {
	int ops;
	enum kafka_acl_type type;
	bool prefix; /* pattern ended in '*': matches names starting with it */
	char *pattern; /* without the '*' */
};

struct kafka_user {
	char *name;
	struct kafka_scram_cred cred[KMECH_COUNT];
	struct kafka_acl_rule *rules;
	size_t nrules;
};

struct kafka_users {
	struct kafka_user *users;
	size_t count;
	bool acls_on; /* at least one acl line in the file */
};

/* "SCRAM-SHA-256" / "SCRAM-SHA-512" -> mech; -1 if unknown. Case-sensitive
 * as Kafka's mechanism names. Also accepts the file's lowercase forms. */
int kafka_mech_parse(const char *name);
const char *kafka_mech_name(enum kafka_mech m);
/* Digest length of the mechanism's hash (32 or 64). */
size_t kafka_mech_hash_len(enum kafka_mech m);

/* Load path into *out (malloc'd; free with kafka_users_free). 0, or -errno
 * / -EINVAL with a message "PATH:LINE: why" in err (errlen bytes). */
int kafka_users_load(const char *path, struct kafka_users **out, char *err, size_t errlen);
void kafka_users_free(struct kafka_users *u);
/* The user called name, or NULL. Borrowed from u. */
const struct kafka_user *kafka_users_find(const struct kafka_users *u, const char *name);

/* Derive a credential from a password (salt given). 0 or -EIO. */
int kafka_scram_derive(enum kafka_mech m, const char *password, size_t plen, const uint8_t *salt,
		       size_t salt_len, int32_t iterations, struct kafka_scram_cred *out);
/* True when password matches one of the user's stored credentials (PLAIN):
 * derives with the stored salt and iterations, compares StoredKey in
 * constant time. */
bool kafka_user_check_password(const struct kafka_user *u, const char *password, size_t plen);

/* The line for a credential: "scram NAME MECH ITER SALT STOREDKEY SERVERKEY"
 * (base64 fields) into buf; -ENOSPC if it does not fit. */
int kafka_scram_format(const char *name, enum kafka_mech m, const struct kafka_scram_cred *c,
		       char *buf, size_t buflen);

/* Is user u allowed op on the resource? With ACLs off (no acl line in the
 * file) every user is allowed everything; u == NULL (no SASL) likewise. */
bool kafka_users_allows(const struct kafka_users *users, const struct kafka_user *u, int op,
			enum kafka_acl_type type, const char *name);

/* Base64 (RFC 4648, with padding). Encode: NUL-terminated into out (needs
 * 4*ceil(n/3)+1 bytes), returns length. Decode: returns bytes written, or -1
 * on bad input or if it does not fit in outcap. */
size_t kafka_b64_encode(const uint8_t *in, size_t n, char *out);
int kafka_b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap);

#endif
