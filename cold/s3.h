/* s3.h - an S3-protocol object-store client for the cold tier.
 *
 * The engine's hook table (wal/remote.h) over libcurl: requests are signed
 * by libcurl itself (CURLOPT_AWS_SIGV4, "aws:amz:<region>:s3"), and a pool
 * of easy handles keeps connections alive between requests (each handle
 * keeps its connection cache; a request takes an idle handle and gives it
 * back). Only what the cold tier needs: PUT object (with Content-MD5;
 * a multipart upload for an object of multipart_bytes or more, s3.c says
 * how), HEAD object, ranged GET, DELETE object.
 *
 * URLS: with an endpoint (any S3-compatible server, e.g.
 * "http://127.0.0.1:4568") and path-style addressing:
 *   <endpoint>/<bucket>/<key>
 * virtual-hosted (path_style false): <scheme>://<bucket>.<endpoint host>/<key>.
 * Without an endpoint, AWS: https://<bucket>.s3.<region>.amazonaws.com/<key>
 * (or https://s3.<region>.amazonaws.com/<bucket>/<key> path-style). Key
 * bytes other than A-Z a-z 0-9 - . _ ~ / are percent-encoded.
 *
 * CREDENTIALS: from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or from a
 * file in the AWS shared-credentials format (the [default] section's
 * aws_access_key_id and aws_secret_access_key). They are never logged, and
 * they never come from the command line.
 *
 * ERRORS: every operation returns 0 or -errno: -ENOENT for 404, -EACCES for
 * 403, -EIO for everything else the server refused or could not be reached
 * for (logged once per call with the HTTP status and the S3 error <Code>,
 * which is parsed minimally from the XML body: the text between the first
 * "<Code>" and "</Code>", at most 63 bytes, printable ASCII only).
 */
#ifndef CHRONIK_S3_H
#define CHRONIK_S3_H

#include <stdbool.h>
#include <stdint.h>

#include "remote.h"

struct s3_options {
	const char *url; /* "s3://bucket/prefix" (prefix optional) */
	const char *endpoint; /* NULL: AWS */
	const char *region; /* default "us-east-1" */
	bool path_style; /* default true with an endpoint, false without */
	const char *credentials_file; /* NULL: the environment */
	uint32_t timeout_ms; /* connect timeout, and a transfer stalled this
			      * long fails; default 10000 */
	/* Objects of multipart_bytes or more go up in parts of part_bytes
	 * (0: S3_MULTIPART_BYTES, S3_PART_BYTES). */
	uint64_t multipart_bytes, part_bytes;
	/* For checking the signing against AWS's published SigV4 test
	 * vectors (tests/cold/test_sigv4.c); NULL in use. service: the SigV4
	 * service name (default "s3"; only "s3" adds x-amz-content-sha256).
	 * sign_date: sent as X-Amz-Date, which libcurl then signs instead of
	 * the clock. connect_to: CURLOPT_CONNECT_TO's "HOST:PORT:HOST:PORT". */
	const char *service, *sign_date, *connect_to;
};

#define S3_MULTIPART_BYTES (64ull << 20)
#define S3_PART_BYTES (16ull << 20)

struct s3_client;

/* Parse o and read the credentials. -EINVAL (bad url, no credentials; a
 * message says which) or -ENOMEM. *out owned by the caller. */
int s3_client_new(const struct s3_options *o, struct s3_client **out);
void s3_client_free(struct s3_client *c);
/* The hook table and the key prefix (from the url) to attach with. */
const struct engine_remote_ops *s3_remote_ops(void);
const char *s3_client_prefix(const struct s3_client *c);

/* GET / of the bucket (the first page of ListObjects): whether the
 * endpoint answers and takes the credentials. 0 with *status the HTTP
 * status, or -EIO when no answer came. */
int s3_client_probe(struct s3_client *c, long *status);

/* The URL of key (malloc'd), for tests and messages. */
char *s3_client_url(const struct s3_client *c, const char *key);

#endif
