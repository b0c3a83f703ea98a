/* tls.c - TLS for the Kafka listener (OpenSSL).
 *
 * A TLS listener has a port of its own (kafka.tls.listen), a certificate
 * chain (kafka.tls.cert, PEM) and its private key (kafka.tls.key, PEM).
 * TLS 1.2 is the minimum. No client certificates are asked for: clients
 * authenticate with SASL over TLS (SASL_SSL) when kafka.users.file is set,
 * else the TLS listener is SSL without authentication.
 *
 * I/O. Every connection has its own thread (listener.c). A TLS
 * connection's socket is non-blocking: the handshake, reads and writes run
 * SSL_accept / SSL_read / SSL_write and, on SSL_ERROR_WANT_READ/WRITE,
 * poll the socket with the same deadlines as plaintext reads, so a slow or
 * silent TLS peer holds only its own thread, and stop() (which shuts the
 * socket down) and the idle and receive timeouts work as on plaintext.
 * SSL_read is always tried before polling, so bytes OpenSSL has already
 * decrypted are served without waiting for the socket.
 */
#include "kafka-private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"

struct kafka_tls {
	SSL_CTX *ctx;
};

static void ssl_err_text(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown TLS error");
	ERR_clear_error();
}

int kafka_tls_new(const char *cert, const char *key, struct kafka_tls **out)
{
	char why[256];
	struct kafka_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ctx = SSL_CTX_new(TLS_server_method());
	if (!t->ctx)
		goto err;
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(t->ctx,
			 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1) {
		ssl_err_text(why, sizeof(why));
		log_msg(LOG_LVL_ERROR, "kafka", "kafka.tls.cert %s: %s", cert, why);
		goto err;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1) {
		ssl_err_text(why, sizeof(why));
		log_msg(LOG_LVL_ERROR, "kafka", "kafka.tls.key %s: %s", key, why);
		goto err;
	}
	if (SSL_CTX_check_private_key(t->ctx) != 1) {
		log_msg(LOG_LVL_ERROR, "kafka", "kafka.tls.key %s does not match kafka.tls.cert %s",
			key, cert);
		goto err;
	}
	*out = t;
	return 0;
err:
	if (t->ctx)
		SSL_CTX_free(t->ctx);
	free(t);
	return -EINVAL;
}

void kafka_tls_free(struct kafka_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* Wait for the socket as OpenSSL asked (err = SSL_get_error). 0 = retry,
 * -1 = fatal, deadline passed or stopping. */
static int tls_wait(struct kafka_conn *c, int err, int64_t deadline)
{
	short ev;
	if (err == SSL_ERROR_WANT_READ)
		ev = POLLIN;
	else if (err == SSL_ERROR_WANT_WRITE)
		ev = POLLOUT;
	else
		return -1;
	return kafka_conn_poll(c, ev, deadline);
}

int kafka_tls_conn_accept(struct kafka_tls *t, struct kafka_conn *c, int64_t deadline)
{
	int fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	SSL *ssl = SSL_new(t->ctx);
	if (!ssl)
		return -1;
	SSL_set_fd(ssl, c->fd);
	c->ssl = ssl;
	for (;;) {
		int rc = SSL_accept(ssl);
		if (rc == 1)
			return 0;
		int err = SSL_get_error(ssl, rc);
		if (tls_wait(c, err, deadline) < 0) {
			char why[256];
			ssl_err_text(why, sizeof(why));
			log_msg(LOG_LVL_DEBUG, "kafka", "%s: TLS handshake failed: %s", c->peer,
				why);
			SSL_free(ssl);
			c->ssl = NULL;
			return -1;
		}
	}
}

ssize_t kafka_tls_conn_recv(struct kafka_conn *c, void *buf, size_t n, int64_t deadline)
{
	SSL *ssl = c->ssl;
	for (;;) {
		size_t got = 0;
		int rc = SSL_read_ex(ssl, buf, n, &got);
		if (rc == 1)
			return (ssize_t)got;
		int err = SSL_get_error(ssl, rc);
		if (tls_wait(c, err, deadline) < 0) {
			ERR_clear_error();
			return -1;
		}
	}
}

int kafka_tls_conn_send(struct kafka_conn *c, const void *buf, size_t n)
{
	SSL *ssl = c->ssl;
	const uint8_t *p = buf;
	/* A client that stops reading is cut off after the receive timeout. */
	int64_t deadline = c->l->o.request_receive_timeout_ms > 0 ?
				   kafka_now_ms() + c->l->o.request_receive_timeout_ms :
				   0;
	while (n > 0) {
		size_t done = 0;
		int rc = SSL_write_ex(ssl, p, n, &done);
		if (rc == 1) {
			p += done;
			n -= done;
			continue;
		}
		int err = SSL_get_error(ssl, rc);
		if (tls_wait(c, err, deadline) < 0) {
			ERR_clear_error();
			return -1;
		}
	}
	return 0;
}

void kafka_tls_conn_close(struct kafka_conn *c)
{
	if (!c->ssl)
		return;
	SSL_shutdown(c->ssl); /* best effort close_notify; non-blocking */
	SSL_free(c->ssl);
	c->ssl = NULL;
	ERR_clear_error();
}
