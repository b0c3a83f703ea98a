/* cmd_user.c - chronik user add: write a SCRAM credential to a Kafka users
 * file (format: kafka/users.c).
 *
 *   chronik user add NAME --file FILE [--mechanism MECH]... [--iterations N]
 *
 * The password is the first line of standard input (its newline removed).
 * MECH is SCRAM-SHA-256 or SCRAM-SHA-512, may be given twice; without it
 * both are written. Iterations default to 8192 (4096..100000). The salt is
 * 24 random bytes. An existing line for the same user and mechanism is
 * replaced; every other line is kept as it is. The file is rewritten by
 * rename (mode 0600, fsync of the file and its directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cli.h"
#include "users.h"

#define DEFAULT_ITERATIONS 8192

/* Is line the scram line of name and mechanism m? */
static bool is_line_of(const char *line, const char *name, enum kafka_mech m)
{
	char kw[8], n[256], mech[32];
	if (sscanf(line, "%7s %255s %31s", kw, n, mech) != 3)
		return false;
	return !strcmp(kw, "scram") && !strcmp(n, name) && kafka_mech_parse(mech) == (int)m;
}

static int write_file(const char *path, const char *content, size_t len)
{
	char tmp[4096], dirbuf[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off < len) {
		ssize_t k = write(fd, content + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int e = k < 0 ? -errno : -EIO;
			close(fd);
			unlink(tmp);
			return e;
		}
		off += (size_t)k;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	if (rename(tmp, path) < 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int rc = fsync(dfd) < 0 ? -errno : 0;
	if (close(dfd) < 0 && !rc)
		rc = -errno;
	return rc;
}

static int user_add(const char *name, const char *file, bool mech[KMECH_COUNT], long iterations)
{
	char pw[1024];
	if (!fgets(pw, sizeof(pw), stdin)) {
		fprintf(stderr, "chronik: user add: no password on standard input\n");
		return CLI_EXIT_USAGE;
	}
	size_t plen = strcspn(pw, "\n");
	pw[plen] = 0;
	if (plen == 0) {
		fprintf(stderr, "chronik: user add: empty password\n");
		return CLI_EXIT_USAGE;
	}

	/* The existing file, minus the lines this replaces. */
	char *out = NULL;
	size_t outlen = 0;
	FILE *mem = open_memstream(&out, &outlen);
	if (!mem)
		return cli_fail("user add", -ENOMEM);
	FILE *f = fopen(file, "re");
	if (f) {
		char line[4096];
		while (fgets(line, sizeof(line), f)) {
			bool drop = false;
			for (int m = 0; m < KMECH_COUNT; m++)
				drop |= mech[m] && is_line_of(line, name, (enum kafka_mech)m);
			if (!drop)
				fputs(line, mem);
		}
		fclose(f);
	} else if (errno != ENOENT) {
		fclose(mem);
		free(out);
		return cli_fail(file, -errno);
	}
	int rc = 0;
	for (int m = 0; m < KMECH_COUNT && !rc; m++) {
		if (!mech[m])
			continue;
		uint8_t salt[24];
		struct kafka_scram_cred c;
		char line[1024];
		if (RAND_bytes(salt, sizeof(salt)) != 1)
			rc = -EIO;
		else
			rc = kafka_scram_derive((enum kafka_mech)m, pw, plen, salt, sizeof(salt),
						(int32_t)iterations, &c);
		if (!rc)
			rc = kafka_scram_format(name, (enum kafka_mech)m, &c, line, sizeof(line));
		if (!rc)
			fputs(line, mem);
		OPENSSL_cleanse(&c, sizeof(c));
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	if (fclose(mem) != 0 && !rc)
		rc = -ENOMEM;
	if (!rc)
		rc = write_file(file, out, outlen);
	free(out);
	if (rc)
		return cli_fail(file, rc);
	return CLI_EXIT_OK;
}

int cmd_user(struct cli *c, int argc, char **argv)
{
	(void)c;
	if (argc < 2 || strcmp(argv[0], "add") != 0)
		return cli_usage_error("user: expected 'user add NAME --file FILE'");
	const char *name = argv[1], *file = NULL, *v;
	bool mech[KMECH_COUNT] = { false, false }, any = false;
	long iterations = DEFAULT_ITERATIONS;

	for (size_t i = 0; name[i]; i++)
		if (name[i] <= ' ' || name[i] > '~' || name[i] == ',' || name[i] == '=')
			return cli_usage_error("user add: bad name '%s' (printable ASCII, no "
					       "space, ',' or '=')",
					       name);
	if (!*name || strlen(name) > 255)
		return cli_usage_error("user add: bad name");
	for (int i = 2; i < argc;) {
		int rc;
		if ((rc = cli_opt_value(argc, argv, &i, "--file", &v)) != 0) {
			if (rc < 0)
				return CLI_EXIT_USAGE;
			file = v;
		} else if ((rc = cli_opt_value(argc, argv, &i, "--mechanism", &v)) != 0) {
			if (rc < 0)
				return CLI_EXIT_USAGE;
			int m = kafka_mech_parse(v);
			if (m < 0)
				return cli_usage_error("user add: unknown mechanism '%s' "
						       "(SCRAM-SHA-256 or SCRAM-SHA-512)",
						       v);
			mech[m] = any = true;
		} else if ((rc = cli_opt_value(argc, argv, &i, "--iterations", &v)) != 0) {
			char *end;
			if (rc < 0)
				return CLI_EXIT_USAGE;
			iterations = strtol(v, &end, 10);
			if (*end || iterations < KAFKA_SCRAM_MIN_ITER ||
			    iterations > KAFKA_SCRAM_MAX_ITER)
				return cli_usage_error("user add: iterations must be 4096..100000");
		} else {
			return cli_usage_error("user add: unexpected argument '%s'", argv[i]);
		}
	}
	if (!file)
		return cli_usage_error("user add: --file FILE is required");
	if (!any)
		mech[KMECH_SCRAM_SHA_256] = mech[KMECH_SCRAM_SHA_512] = true;
	return user_add(name, file, mech, iterations);
}
