/* security.c - what the listener checks and loads at start for security:
 * the users file (users.c), the TLS context (tls.c), and the remote-bind
 * rule.
 *
 * Remote-bind rule. A plaintext listener whose host is not loopback
 * (127.0.0.0/8, ::1, or a name resolving only to those; an empty host or
 * 0.0.0.0 / :: is "every address", so not loopback) refuses to start unless
 * SASL is on (kafka.users.file) or kafka.allow.plaintext.remote=true. The
 * TLS listener (kafka.tls.listen) is held to the same rule: TLS encrypts
 * but, without SASL, still lets in anyone who can reach it, so a
 * non-loopback TLS listener needs kafka.users.file or the same setting.
 */
#include "kafka-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

/* Every address host resolves to is a loopback one. */
static bool host_is_loopback(const char *host)
{
	struct addrinfo hints, *res = NULL;
	bool all = true;

	if (!host || !*host)
		return false;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return false;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			const struct sockaddr_in *s4 = (const void *)ai->ai_addr;
			if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127)
				all = false;
		} else if (ai->ai_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const void *)ai->ai_addr;
			if (!IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
				all = false;
		} else {
			all = false;
		}
	}
	freeaddrinfo(res);
	return all && res;
}

/* kafka_addr_split, an empty host meaning loopback. */
static int addr_split(const char *addr, char *host, size_t cap, uint16_t *port)
{
	if (kafka_addr_split(addr, host, cap, port) < 0)
		return -EINVAL;
	if (!*host)
		snprintf(host, cap, "127.0.0.1");
	return 0;
}

int kafka_security_setup(struct kafka_listener *l)
{
	const struct kafka_options *o = &l->o;
	int err;

	if (o->users_file) {
		char why[512];
		err = kafka_users_load(o->users_file, &l->users, why, sizeof(why));
		if (err) {
			log_msg(LOG_LVL_ERROR, "kafka", "kafka.users.file: %s", why);
			return err;
		}
		if (l->users->count == 0)
			log_msg(LOG_LVL_WARN, "kafka",
				"kafka.users.file %s has no users: no client can authenticate",
				o->users_file);
	}
	if (!l->users && !o->allow_plaintext_remote && !host_is_loopback(o->host)) {
		log_msg(LOG_LVL_ERROR, "kafka",
			"refusing to listen on %s:%u without authentication: set "
			"kafka.users.file (SASL), bind to loopback, or set "
			"kafka.allow.plaintext.remote=true",
			o->host && *o->host ? o->host : "*", (unsigned)o->port);
		err = -EPERM;
		goto err_users;
	}
	if (o->tls_listen) {
		if (!o->tls_cert || !o->tls_key) {
			log_msg(LOG_LVL_ERROR, "kafka",
				"kafka.tls.listen needs kafka.tls.cert and kafka.tls.key");
			err = -EINVAL;
			goto err_users;
		}
		if (addr_split(o->tls_listen, l->tls_host, sizeof(l->tls_host), &l->tls_port) < 0) {
			log_msg(LOG_LVL_ERROR, "kafka", "kafka.tls.listen: bad address '%s'",
				o->tls_listen);
			err = -EINVAL;
			goto err_users;
		}
		/* addr_split made an empty host 127.0.0.1; "every address" was
		 * asked for then only by 0.0.0.0 or :: themselves. */
		if (!l->users && !o->allow_plaintext_remote && !host_is_loopback(l->tls_host)) {
			log_msg(LOG_LVL_ERROR, "kafka",
				"refusing to listen on %s (TLS) without authentication: set "
				"kafka.users.file (SASL), bind to loopback, or set "
				"kafka.allow.plaintext.remote=true",
				o->tls_listen);
			err = -EPERM;
			goto err_users;
		}
		err = kafka_tls_new(o->tls_cert, o->tls_key, &l->tls);
		if (err)
			goto err_users;
	}
	return 0;

err_users:
	kafka_users_free(l->users);
	l->users = NULL;
	return err;
}
