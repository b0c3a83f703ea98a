/* test_sigv4.c - the S3 client's requests are signed as AWS's published
 * SigV4 test suite says (aws-sig-v4-test-suite "get-vanilla"), through the
 * client's own request builder (cold/s3.c, libcurl's CURLOPT_AWS_SIGV4).
 *
 * s3rver, the tests' server, checks the access key of a SigV4 request but
 * not its signature, so signing is proved here: a one-shot HTTP listener
 * on 127.0.0.1 records the request the client sends for
 * GET / Host: example.amazonaws.com, X-Amz-Date 20150830T123600Z, key
 * AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region us-east-1,
 * service "service", and its Authorization header must be the vector's.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "s3.h"
#include "tap.h"

struct listener {
	int fd;
	int port;
	char req[8192];
	size_t len;
};

static void *serve_one(void *arg)
{
	struct listener *l = arg;
	int c = accept(l->fd, NULL, NULL);
	static const char reply[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

	if (c < 0)
		return NULL;
	while (l->len < sizeof(l->req) - 1) {
		ssize_t n = read(c, l->req + l->len, sizeof(l->req) - 1 - l->len);
		if (n <= 0)
			break;
		l->len += (size_t)n;
		l->req[l->len] = 0;
		if (strstr(l->req, "\r\n\r\n"))
			break;
	}
	if (write(c, reply, sizeof(reply) - 1) < 0)
		diag("write: reply not sent");
	close(c);
	return NULL;
}

static int listen_loopback(struct listener *l)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	memset(l, 0, sizeof(*l));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(l->fd, 1) < 0 || getsockname(l->fd, (struct sockaddr *)&a, &alen) < 0)
		return -1;
	l->port = ntohs(a.sin_port);
	return 0;
}

/* The request the client sends for the vector, signed with secret. */
static int signed_request(const char *secret, struct listener *l)
{
	struct s3_client *c = NULL;
	char connect_to[128];
	pthread_t t;
	long status = 0;
	int rc;

	if (listen_loopback(l) < 0)
		bail("cannot listen on 127.0.0.1");
	snprintf(connect_to, sizeof(connect_to), "example.amazonaws.com:80:127.0.0.1:%d", l->port);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
	/* Virtual-hosted bucket "example" on endpoint amazonaws.com: the URL
	 * is http://example.amazonaws.com/, the vector's host and path. */
	struct s3_options o = {
		.url = "s3://example",
		.endpoint = "http://amazonaws.com",
		.region = "us-east-1",
		.path_style = false,
		.service = "service",
		.sign_date = "20150830T123600Z",
		.connect_to = connect_to,
		.timeout_ms = 5000,
	};
	rc = s3_client_new(&o, &c);
	if (rc)
		return rc;
	pthread_create(&t, NULL, serve_one, l);
	rc = s3_client_probe(c, &status);
	pthread_join(t, NULL);
	close(l->fd);
	s3_client_free(c);
	if (rc == 0 && status != 200)
		rc = -1;
	return rc;
}

static const char *header(const char *req, const char *name, char *buf, size_t len)
{
	const char *p = req;
	size_t nl = strlen(name);
	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e = strstr(v, "\r\n");
			while (*v == ' ')
				v++;
			snprintf(buf, len, "%.*s", e ? (int)(e - v) : (int)strlen(v), v);
			return buf;
		}
	}
	buf[0] = 0;
	return buf;
}

int main(void)
{
	static const char want[] =
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		"SignedHeaders=host;x-amz-date, "
		"Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
	struct listener l;
	char buf[1024];

	tap_plan(5);
	ok(signed_request("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &l) == 0,
	   "the client sends the request and reads the answer");
	ok(strncmp(l.req, "GET / HTTP/1.1\r\n", 16) == 0, "GET / (the vector's method and path)");
	ok(strcmp(header(l.req, "Host", buf, sizeof(buf)), "example.amazonaws.com") == 0,
	   "Host: example.amazonaws.com (got '%s')", buf);
	ok(strcmp(header(l.req, "Authorization", buf, sizeof(buf)), want) == 0,
	   "Authorization is get-vanilla's");
	if (strcmp(buf, want) != 0)
		diag("got: %s", buf);
	/* A different secret must give a different signature: the check
	 * above is not satisfied by a constant. */
	signed_request("not-the-secret", &l);
	ok(strcmp(header(l.req, "Authorization", buf, sizeof(buf)), want) != 0 &&
		   strstr(buf, "Signature=") != NULL,
	   "another secret signs differently");
	return tap_exit();
}
