/* remote_opts.c - the object-store options of the commands that read
 * remote segments (verify, search):
 *
 *   --remote s3://BUCKET[/PREFIX] [--endpoint URL] [--region R]
 *   [--path-style true|false] [--credentials-file FILE]
 *
 * the same store as chronikd's remote.storage.* settings (cold/s3.h;
 * credentials as chronikd reads them: the file, else AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY).
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "remote.h"
#include "s3.h"

int cli_remote_opts(const char *cmd, int *argc, char **argv, struct s3_options *so)
{
	int out = 0;

	for (int i = 0; i < *argc; i++) {
		const char **slot = !strcmp(argv[i], "--remote")	   ? &so->url :
				    !strcmp(argv[i], "--endpoint")	   ? &so->endpoint :
				    !strcmp(argv[i], "--region")	   ? &so->region :
				    !strcmp(argv[i], "--credentials-file") ? &so->credentials_file :
									     NULL;
		if (!strcmp(argv[i], "--path-style")) {
			if (i + 1 >= *argc)
				return cli_usage_error("%s: --path-style needs true or false", cmd);
			so->path_style = !strcmp(argv[++i], "true");
			continue;
		}
		if (!slot) {
			argv[out++] = argv[i];
			continue;
		}
		if (i + 1 >= *argc)
			return cli_usage_error("%s: %s needs a value", cmd, argv[i]);
		*slot = argv[++i];
	}
	*argc = out;
	return 0;
}

int cli_remote_attach(struct cli *c, const struct s3_options *so, struct s3_client **s3)
{
	int rc = s3_client_new(so, s3);

	if (rc == 0) {
		struct engine_remote_options ro = { .key_prefix = s3_client_prefix(*s3) };
		rc = engine_remote_attach(c->engine, s3_remote_ops(), *s3, &ro);
	}
	if (rc < 0) {
		s3_client_free(*s3);
		*s3 = NULL;
		return cli_fail(so->url, rc);
	}
	return 0;
}

int cli_remote_hint(const char *cmd)
{
	fprintf(stderr,
		"chronik: %s: a segment it needs is in the object store: give --remote "
		"s3://BUCKET[/PREFIX] [--endpoint URL] [--region R] [--path-style true|false] "
		"[--credentials-file FILE] (the daemon's remote.storage.* settings)\n",
		cmd);
	return CLI_EXIT_FAIL;
}

/* ---- a private cache ------------------------------------------------------- */

int cli_cache_dir_new(const char *cmd, char *buf, size_t len)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp)
		tmp = "/tmp";
	if ((size_t)snprintf(buf, len, "%s/chronik-%s-XXXXXX", tmp, cmd) >= len)
		return cli_fail(tmp, -ENAMETOOLONG);
	if (!mkdtemp(buf))
		return cli_fail(buf, -errno);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -errno : 0;
}

int cli_cache_dir_remove(const char *path)
{
	int rc = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);

	if (rc < 0)
		rc = -errno;
	return rc ? cli_fail(path, rc) : 0;
}
