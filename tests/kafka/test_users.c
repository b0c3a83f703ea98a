/* test_users.c - the users file and SCRAM credentials (kafka/users.c),
 * without a server: RFC 7677's SCRAM-SHA-256 example worked through the
 * credential chronik stores, PLAIN checks, the file parser's refusals and
 * the ACL matcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tap.h"
#include "users.h"

/* RFC 7677 section 3. */
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_BARE "n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SFIRST                                                                         \
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==," \
	"i=4096"
#define RFC_FINAL_WO "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_VERIFIER "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void test_rfc7677(void)
{
	uint8_t salt[32], proof[32], sig[32], key[32];
	int sl = kafka_b64_decode(RFC_SALT, strlen(RFC_SALT), salt, sizeof(salt));
	struct kafka_scram_cred c;
	unsigned int n;

	ok(sl == 16, "base64 decodes the RFC's salt (16 bytes)");
	ok(kafka_scram_derive(KMECH_SCRAM_SHA_256, "pencil", 6, salt, (size_t)sl, 4096, &c) == 0,
	   "derive the credential of 'pencil'");
	const char *am = RFC_BARE "," RFC_SFIRST "," RFC_FINAL_WO;
	ok(kafka_b64_decode(RFC_PROOF, strlen(RFC_PROOF), proof, sizeof(proof)) == 32,
	   "decode the RFC's ClientProof");
	HMAC(EVP_sha256(), c.stored_key, 32, (const uint8_t *)am, strlen(am), sig, &n);
	for (int i = 0; i < 32; i++)
		key[i] = proof[i] ^ sig[i];
	EVP_Digest(key, 32, key, &n, EVP_sha256(), NULL);
	ok(memcmp(key, c.stored_key, 32) == 0, "the RFC's ClientProof verifies against StoredKey");
	HMAC(EVP_sha256(), c.server_key, 32, (const uint8_t *)am, strlen(am), sig, &n);
	char v64[64];
	kafka_b64_encode(sig, 32, v64);
	ok(strcmp(v64, RFC_VERIFIER) == 0, "ServerSignature is the RFC's verifier");

	char line[512];
	ok(kafka_scram_format("user", KMECH_SCRAM_SHA_256, &c, line, sizeof(line)) == 0 &&
		   strncmp(line, "scram user SCRAM-SHA-256 4096 " RFC_SALT " ", 47) == 0 &&
		   !strstr(line, "pencil"),
	   "the stored line holds salt and keys, not the password");

	/* Load it back and check PLAIN passwords against it. */
	char path[] = "/tmp/chronik-users.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fprintf(f, "# comment\n\n%sacl user read,write topic logs-*\nacl user read group g\n",
		line);
	fclose(f);
	struct kafka_users *u = NULL;
	char err[256];
	ok(kafka_users_load(path, &u, err, sizeof(err)) == 0, "the written file loads");
	const struct kafka_user *usr = u ? kafka_users_find(u, "user") : NULL;
	ok(usr && kafka_user_check_password(usr, "pencil", 6), "PLAIN: the right password");
	ok(usr && !kafka_user_check_password(usr, "pencil!", 7) &&
		   !kafka_user_check_password(usr, "", 0),
	   "PLAIN: wrong passwords are refused");
	ok(u && !kafka_users_find(u, "nobody"), "an unknown user is not found");
	ok(u && u->acls_on, "acl lines turn ACLs on");
	ok(usr && kafka_users_allows(u, usr, KACL_WRITE, KACL_TOPIC, "logs-a") &&
		   kafka_users_allows(u, usr, KACL_READ, KACL_TOPIC, "logs-") &&
		   !kafka_users_allows(u, usr, KACL_CREATE, KACL_TOPIC, "logs-a") &&
		   !kafka_users_allows(u, usr, KACL_READ, KACL_TOPIC, "log") &&
		   !kafka_users_allows(u, usr, KACL_READ, KACL_TOPIC, "other"),
	   "a prefix rule allows its operations on its prefix only");
	ok(usr && kafka_users_allows(u, usr, KACL_READ, KACL_GROUP, "g") &&
		   !kafka_users_allows(u, usr, KACL_READ, KACL_GROUP, "g2") &&
		   !kafka_users_allows(u, usr, KACL_READ, KACL_TOPIC, "g"),
	   "a literal group rule matches that group only, and not a topic");
	kafka_users_free(u);
	unlink(path);
}

static void test_refusals(void)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "scram a SCRAM-SHA-256 4096 c2FsdA==\n", "7 fields" },
		{ "scram a MD5 4096 c2FsdA== AAAA AAAA\n", "unknown mechanism" },
		{ "scram a SCRAM-SHA-256 100 c2FsdA== AAAA AAAA\n", "iterations" },
		{ "scram a SCRAM-SHA-256 4096 !!!! AAAA AAAA\n", "bad salt" },
		{ "scram a SCRAM-SHA-256 4096 c2FsdA== AAAA AAAA\n", "bad stored key" },
		{ "scram a=b SCRAM-SHA-256 4096 c2FsdA== AAAA AAAA\n", "bad user name" },
		{ "acl a read topic x\n", "no scram line" },
		{ "acl a fly topic x\n", "bad operations" },
		{ "acl a read cluster x\n", "bad resource type" },
		{ "user a\n", "unknown entry" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char path[] = "/tmp/chronik-users.XXXXXX";
		int fd = mkstemp(path);
		FILE *f = fdopen(fd, "w");
		fputs(bad[i].text, f);
		fclose(f);
		struct kafka_users *u = NULL;
		char err[256] = "";
		int rc = kafka_users_load(path, &u, err, sizeof(err));
		ok(rc < 0 && !u && strstr(err, bad[i].why), "refused: %s", bad[i].why);
		if (!strstr(err, bad[i].why))
			diag("got: %s", err);
		unlink(path);
	}
	struct kafka_users *u = NULL;
	char err[256];
	ok(kafka_users_load("/nonexistent/users", &u, err, sizeof(err)) < 0 &&
		   strstr(err, "/nonexistent/users"),
	   "a missing file is an error naming it");
}

int main(void)
{
	test_rfc7677();
	test_refusals();
	return tap_exit();
}
