/* listener.c - the Kafka listener: accept loop, connections, framing,
 * dispatch through the request table.
 *
 * Protocol notes (held against apache/kafka's message JSON files,
 * clients/src/main/resources/common/message/, one JSON file per message):
 *
 * Framing. Every request and response is an int32 size (big-endian, bytes
 * after the size field) followed by that many bytes. A request whose size is
 * below the smallest header (10 bytes: api_key, api_version, correlation_id,
 * client_id length) or above max_request_bytes closes the connection before
 * its body is read; nothing is allocated for it.
 *
 * Request header (RequestHeader.json):
 *   v1: api_key int16, api_version int16, correlation_id int32,
 *       client_id nullable string (int16 length, even in flexible versions)
 *   v2: v1 followed by tagged fields (flexible request versions)
 * Response header (ResponseHeader.json):
 *   v0: correlation_id int32
 *   v1: v0 followed by tagged fields (flexible response versions)
 * ApiVersions always answers with response header v0, even in its flexible
 * v3, so that a client can parse the answer whatever version it asked for.
 * Every other flexible version (the request table's first_flexible, from
 * each message's "flexibleVersions") reads request header v2 and answers
 * with response header v1; the codec's compact forms and tagged fields are
 * described in codec.h.
 *
 * Version negotiation. The request table (handlers_meta.c) lists for each
 * API key its versions; ApiVersions answers with exactly that table. An
 * ApiVersions request of a version above ours is answered, as Kafka does,
 * with error 35 (UNSUPPORTED_VERSION) and a v0 body listing what we support,
 * so the client retries with a version we know. Any other unknown API key or
 * unsupported version is a malformed request: the connection is closed.
 *
 * Versions beyond design.md's table: the request table (handlers_meta.c)
 * serves each API up to the version its handler's comment documents, the
 * flexible ones included; README's Kafka section lists them.
 *
 * Malformed vs failed. A request that cannot be parsed (truncated, a length
 * or count that does not fit the bytes left, a null where the schema has no
 * null) closes the connection and affects nothing else. A well-formed
 * request that fails (unknown topic, bad CRC, ...) is answered with Kafka's
 * error code in the response (kafka_error_from is the one translation
 * table from the engine's errors).
 *
 * Ordering and concurrency. Each connection has its own thread and serves
 * its requests in arrival order, and responses leave in request order
 * (Kafka's protocol guarantee on one TCP connection). A fetch long-polls
 * on that connection's thread only; other connections keep being served,
 * and concurrent produces from several connections share the engine's
 * group commits. Produce with acks=0 gets no response.
 *
 * PIPELINING. A producer writes its next Produce requests before the
 * answer to the first (librdkafka: up to max.in.flight). Served one at a
 * time, each would wait for the fsync of the one before; so consecutive
 * Produce requests of a connection overlap:
 *   1. A Produce is parsed, checked and its batches queued in the engine
 *      (engine_append_start, handlers_produce.c) in request order, so
 *      offsets follow request order, and the producer state's sequence
 *      checks run in that order too. Its response header is written, its
 *      body left for later: the request is now in flight, in a slot that
 *      owns its bytes (the engine writes the batches from them) and its
 *      response writer.
 *   2. While fewer than KAFKA_PIPELINE_MAX (16) are in flight, holding
 *      less than KAFKA_PIPELINE_BYTES (4 MiB) of request bytes, and the
 *      next request's bytes are already readable, it is read into the
 *      next slot. Otherwise the oldest in flight is finished
 *      (kafka_produce_finish: wait for its group, or lead it, then the
 *      body) and its response sent. So responses leave in request order,
 *      and a client that sends more is no longer read until the oldest is
 *      answered (back-pressure through TCP). A connection holds at most
 *      KAFKA_PIPELINE_BYTES plus one request (max_request_bytes) in
 *      flight, and keeps at most 4 MiB of buffers between requests (each
 *      slot's above a sixteenth of that is freed once it is answered).
 *   3. Any other request read while Produces are in flight waits until
 *      every one of them is finished and answered, then is served as
 *      usual: a Fetch, ListOffsets or anything after a Produce sees its
 *      effects (or its failure).
 *   4. Queued appends are written by whichever group comes next: the
 *      commit thread's, another connection's leader, or the finish of
 *      step 2. Before the thread blocks on its socket with appends queued
 *      it kicks the engine (engine_append_kick), so they never wait on a
 *      slow client's next bytes.
 *   5. When the connection ends (EOF, error, a malformed request, stop)
 *      with requests in flight, every one is still finished: its appends
 *      complete or fail in the engine as they would have, and the
 *      responses are still sent, in order, while the socket takes them
 *      (a client that half-closed after writing gets them all). Nothing is
 *      freed while the engine may still read it; nothing is acknowledged
 *      before its group is durable (under fsync every); a failed append
 *      is answered with its error, the ones after it with their own.
 * A TLS connection serves one request at a time (bytes the TLS session
 * holds are not visible to poll), as does the fuzz harness's
 * kafka_conn_serve.
 *
 * Connection limits. Each connection has one descriptor and one thread;
 * how many are served at once is max_connections (kafka.max.connections),
 * by default what RLIMIT_NOFILE leaves once KAFKA_FD_RESERVE descriptors
 * are kept for the engine and the mount (chronikd raises the soft limit to
 * the hard one at start, daemon/main.c), at most KAFKA_MAX_CONNS. When
 * accept fails for want of descriptors (EMFILE, ENFILE) the accept thread
 * says so (once a second) and waits 100 ms instead of spinning on the
 * pending connection. A connection waiting for a request longer than
 * connections_max_idle_ms (kafka.connections.max.idle.ms, 10 minutes as in
 * Kafka) is closed; once the first byte of a request has arrived the rest
 * must arrive within request_receive_timeout_ms (30 s). The body buffer
 * grows as bytes arrive (doubling from 64 KiB), so a size field announcing
 * max_request_bytes costs nothing until the bytes are really sent. At most
 * max_connections connections are served; a new connection beyond that takes
 * the place of an existing one that is doing nothing: first the oldest that
 * has never been answered a request (a silent socket, or one still sending
 * its first), else the one idle the longest between requests. Only when
 * every connection has a request in progress is the new one closed. So
 * silent sockets cannot lock clients out, and a client that has been served
 * keeps its connection while silent newcomers come and go.
 *
 * Security. With kafka.users.file set, a connection is served only
 * ApiVersions and the SASL APIs until it has authenticated (sasl.c);
 * anything else closes it. A connection accepted on the TLS listener does
 * its handshake on its own thread before the first request, and all its
 * reads and writes go through tls.c (kafka_conn_write, recv_by). The users
 * file, the TLS context and the remote-bind rule are set up at start by
 * security.c; per-user ACLs are checked by the handlers
 * (kafka_conn_allows).
 *
 * Stop. kafka_listener_stop sets `stopping`, shuts every socket down (which
 * wakes blocked reads), wakes group waiters; handler waits are sliced into
 * KAFKA_WAIT_SLICE_MS pieces that re-check `stopping`; then every thread is
 * joined.
 */
#include "kafka-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define MIN_REQUEST_HEADER 10

int64_t kafka_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kafka_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool kafka_conn_peer_closed(const struct kafka_conn *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLRDHUP };
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

bool kafka_topic_name_copy(struct kafka_str s, char name[static 250])
{
	if (s.len <= 0 || s.len > 249)
		return false;
	memcpy(name, s.ptr, (size_t)s.len);
	name[s.len] = 0;
	return engine_topic_name_valid(name);
}

int16_t kafka_error_from(int err)
{
	static const struct {
		int err;
		int16_t code;
	} table[] = {
		{ 0, KERR_NONE },
		{ CHRONIK_ENOTOPIC, KERR_UNKNOWN_TOPIC_OR_PARTITION },
		{ CHRONIK_ERANGE, KERR_OFFSET_OUT_OF_RANGE },
		{ CHRONIK_EBADCRC, KERR_CORRUPT_MESSAGE },
		{ CHRONIK_ECORRUPT, KERR_CORRUPT_MESSAGE },
		{ CHRONIK_EVERSION, KERR_CORRUPT_MESSAGE },
		{ CHRONIK_ECODEC, KERR_UNSUPPORTED_COMPRESSION_TYPE },
		{ CHRONIK_EBADNAME, KERR_INVALID_TOPIC_EXCEPTION },
		{ CHRONIK_ETOPICEXISTS, KERR_TOPIC_ALREADY_EXISTS },
		/* max.topics / max.partitions, a configured limit as Kafka's
		 * create policies refuse: 44 POLICY_VIOLATION (not retriable). */
		{ CHRONIK_ELIMIT, KERR_POLICY_VIOLATION },
		{ -EINVAL, KERR_INVALID_REQUEST },
		{ -ENOSPC, KERR_KAFKA_STORAGE_ERROR },
		{ -EIO, KERR_KAFKA_STORAGE_ERROR },
		{ CHRONIK_ENOSTORE, KERR_KAFKA_STORAGE_ERROR },
		{ -EDQUOT, KERR_KAFKA_STORAGE_ERROR },
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].err == err)
			return table[i].code;
	return KERR_UNKNOWN_SERVER_ERROR;
}

void kafka_options_init(struct kafka_options *o)
{
	o->host = "127.0.0.1";
	o->port = 9092;
	o->max_request_bytes = (size_t)100 << 20;
	o->auto_create_topics = true;
	o->fetch_sendfile = true;
	o->connections_max_idle_ms = 600000;
	o->request_receive_timeout_ms = 30000;
	o->max_connections = 0;
	o->max_groups = 0;
	o->max_producer_states = 0;
	o->producer_state_evict_idle_ms = 300000;
	o->users_file = NULL;
	o->tls_listen = o->tls_cert = o->tls_key = NULL;
	o->allow_plaintext_remote = false;
}

int kafka_addr_split(const char *addr, char *host, size_t cap, uint16_t *port)
{
	const char *colon = strrchr(addr, ':');
	const char *port_s = colon ? colon + 1 : addr;
	char *end;

	if (!*port_s)
		return -EINVAL;
	errno = 0;
	unsigned long p = strtoul(port_s, &end, 10);
	if (errno || *end || p > 65535)
		return -EINVAL;
	size_t n = colon ? (size_t)(colon - addr) : 0;
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') { /* [v6]:port */
		addr++;
		n -= 2;
	}
	if (n >= cap)
		return -EINVAL;
	memcpy(host, addr, n);
	host[n] = 0;
	*port = (uint16_t)p;
	return 0;
}

int kafka_options_parse_addr(struct kafka_options *o, const char *addr)
{
	/* The options keep a pointer: one static copy (set at start-up). */
	static char hostbuf[256];
	char host[256];
	uint16_t port;

	if (kafka_addr_split(addr, host, sizeof(host), &port) < 0)
		return -EINVAL;
	if (*host) {
		memcpy(hostbuf, host, sizeof(hostbuf));
		o->host = hostbuf;
	}
	o->port = port;
	return 0;
}

/* ---- socket I/O ----------------------------------------------------- */

/* Receive up to n (>= 1) bytes into buf, waiting until deadline (a
 * kafka_now_ms() value; <= 0: no deadline). Returns the bytes received (>= 1),
 * or -1 on EOF, error, timeout or stop. */
int kafka_conn_poll(struct kafka_conn *c, short events, int64_t deadline)
{
	for (;;) {
		int wait = -1;
		if (deadline > 0) {
			int64_t left = deadline - kafka_now_ms();
			if (left <= 0)
				return -1;
			wait = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		struct pollfd pfd = { .fd = c->fd, .events = events };
		int pr = poll(&pfd, 1, wait);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0 || atomic_load(&c->l->stopping))
			return -1;
		if (pr > 0)
			return 0;
		/* pr == 0: the deadline check above ends it */
	}
}

/* Whether bytes (or EOF) can be read from a plaintext socket now. */
static bool conn_readable_now(struct kafka_conn *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	return !c->ssl && poll(&pfd, 1, 0) > 0;
}

static ssize_t recv_by(struct kafka_conn *c, void *buf, size_t n, int64_t deadline)
{
	if (c->ssl)
		return kafka_tls_conn_recv(c, buf, n, deadline);
	if (c->appends_queued && !conn_readable_now(c)) { /* PIPELINING, rule 4 */
		c->appends_queued = false;
		engine_append_kick(c->l->e);
	}
	for (;;) {
		if (kafka_conn_poll(c, POLLIN, deadline) < 0)
			return -1;
		ssize_t k = recv(c->fd, buf, n, 0);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		return k <= 0 ? -1 : k;
	}
}

/* Receive exactly n bytes by deadline: 0 or -1. */
static int recv_full_by(struct kafka_conn *c, void *buf, size_t n, int64_t deadline)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t k = recv_by(c, p, n, deadline);
		if (k < 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int kafka_conn_write(struct kafka_conn *c, const void *buf, size_t n)
{
	if (c->ssl)
		return kafka_tls_conn_send(c, buf, n);
	int fd = c->fd;
	const uint8_t *p = buf;
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* A response with file pieces (codec.h): the buffer's bytes between them
 * by send(2), with MSG_MORE when a piece follows, each piece by
 * sendfile(2). Not corked: TCP_CORK around the response cost the broker
 * about twice the CPU of a Fetch over loopback (bench/run's consume rows),
 * and MSG_MORE already keeps the small headers from going out alone
 * before their piece. Partial sends continue where they
 * stopped; a file shorter than its piece (which the engine's lifetime rules
 * exclude, engine.h) fails the send: the response's sizes are already on
 * the wire, so the connection is closed. A TLS connection reads each piece
 * with pread into a buffer and sends it through the session instead. */
static int send_all_flags(struct kafka_conn *c, const uint8_t *p, size_t n, int flags)
{
	while (n > 0) {
		ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL | flags);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			if (kafka_conn_poll(c, POLLOUT, 0) < 0)
				return -1;
			continue;
		}
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int send_piece(struct kafka_conn *c, const struct kafka_file_piece *pc)
{
	off_t off = (off_t)pc->off;
	size_t left = pc->len;
	if (c->ssl) {
		uint8_t buf[64 << 10];
		while (left > 0) {
			size_t want = left < sizeof(buf) ? left : sizeof(buf);
			ssize_t k = pread(pc->fd, buf, want, off);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0 || kafka_tls_conn_send(c, buf, (size_t)k) < 0)
				return -1;
			off += k;
			left -= (size_t)k;
		}
		return 0;
	}
	while (left > 0) {
		ssize_t k = sendfile(c->fd, pc->fd, &off, left);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			if (kafka_conn_poll(c, POLLOUT, 0) < 0)
				return -1;
			continue;
		}
		if (k <= 0)
			return -1;
		left -= (size_t)k;
	}
	return 0;
}

static int conn_write_pieces(struct kafka_conn *c, const struct kafka_writer *w)
{
	int rc = 0;
	size_t at = 0;

	for (size_t i = 0; i < w->npieces && rc == 0; i++) {
		const struct kafka_file_piece *pc = &w->pieces[i];
		if (pc->at > at)
			rc = c->ssl ? kafka_tls_conn_send(c, w->buf + at, pc->at - at) :
				      send_all_flags(c, w->buf + at, pc->at - at, MSG_MORE);
		at = pc->at;
		if (rc == 0)
			rc = send_piece(c, pc);
	}
	if (rc == 0 && w->len > at)
		rc = c->ssl ? kafka_tls_conn_send(c, w->buf + at, w->len - at) :
			      send_all_flags(c, w->buf + at, w->len - at, 0);
	return rc < 0 ? -1 : 0;
}

static void addr_to_str(const struct sockaddr_storage *ss, char *host, size_t hostlen,
			int32_t *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, (socklen_t)hostlen);
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, (socklen_t)hostlen);
		*port = ntohs(s4->sin_port);
	}
}

/* ---- one request ---------------------------------------------------- */

/* What serving a request left to do. */
struct served {
	bool no_response; /* nothing to send (acks=0) */
	bool close_after; /* close once the response is sent */
	struct kafka_produce *deferred; /* a Produce in flight (PIPELINING) */
};

/* Parse and dispatch one request; its response is then in w (unless
 * sv->no_response), or, when defer is allowed and the request is a
 * Produce, the response header is and sv->deferred holds the rest.
 * 0, or -1 for a malformed request (close the connection). */
static int conn_dispatch(struct kafka_conn *c, const uint8_t *buf, size_t len,
			 struct kafka_writer *w, bool defer, struct served *sv)
{
	struct kafka_reader r;
	struct kafka_request req;
	const struct kafka_api *api;

	memset(sv, 0, sizeof(*sv));
	if (kafka_sasl_raw_pending(c)) { /* after SaslHandshake v0: it answers itself */
		sv->no_response = true;
		return kafka_sasl_serve_raw(c, buf, len, w) < 0 ? -1 : 0;
	}

	memset(&req, 0, sizeof(req));
	kafka_reader_init(&r, buf, len);
	req.l = c->l;
	req.c = c;
	req.r = &r;
	req.w = w;
	req.api_key = kafka_read_i16(&r);
	req.api_version = kafka_read_i16(&r);
	req.correlation_id = kafka_read_i32(&r);
	req.client_id = kafka_read_string(&r, false, true);
	if (kafka_reader_failed(&r))
		return -1;

	api = kafka_api_find(req.api_key);
	if (!api) {
		log_msg(LOG_LVL_DEBUG, "kafka", "%s: unknown api key %d, closing", c->peer,
			req.api_key);
		return -1;
	}
	if (!kafka_sasl_allowed(c, req.api_key)) {
		log_msg(LOG_LVL_INFO, "kafka", "%s: %s before SASL authentication, closing",
			c->peer, api->name);
		return -1;
	}

	kafka_writer_reset(w);
	(void)kafka_write_i32_later(w); /* size, filled below */
	kafka_write_i32(w, req.correlation_id);

	if (req.api_version < api->min_version || req.api_version > api->max_version) {
		if (req.api_key != KAPI_API_VERSIONS || req.api_version < 0) {
			log_msg(LOG_LVL_DEBUG, "kafka", "%s: %s v%d unsupported, closing", c->peer,
				api->name, req.api_version);
			return -1;
		}
		/* A newer ApiVersions: header v2, body unread; answer with
		 * error 35 and the v0 body. */
		kafka_api_versions_write(w, 0, KERR_UNSUPPORTED_VERSION);
		return 0;
	}
	req.flexible = api->first_flexible >= 0 && req.api_version >= api->first_flexible;
	if (req.flexible)
		kafka_read_tags(&r); /* request header v2 */
	if (req.flexible && req.api_key != KAPI_API_VERSIONS)
		kafka_write_tags(w); /* response header v1 */
	if (kafka_reader_failed(&r))
		return -1;
	req.defer = defer && req.api_key == KAPI_PRODUCE;
	if (api->handler(&req) < 0 || kafka_reader_failed(&r)) {
		log_msg(LOG_LVL_DEBUG, "kafka", "%s: malformed %s v%d, closing", c->peer, api->name,
			req.api_version);
		if (req.deferred) /* its appends are started: see them through */
			kafka_produce_finish(req.deferred, NULL);
		return -1;
	}
	sv->no_response = req.no_response;
	sv->close_after = req.close_after;
	sv->deferred = req.deferred;
	return 0;
}

/* Send the response in w (its size field filled here): 0 or -1. */
static int conn_respond(struct kafka_conn *c, struct kafka_writer *w)
{
	if (w->failed || w->len - 4 + w->file_bytes > INT32_MAX) {
		kafka_writer_release_files(w);
		return -1;
	}
	kafka_write_i32_at(w, 0, (int32_t)(w->len - 4 + w->file_bytes));
	int sent = w->npieces ? conn_write_pieces(c, w) : kafka_conn_write(c, w->buf, w->len);
	/* The files go now, not at the next request: an idle connection
	 * must not keep an unlinked WAL file or segment on disk. */
	kafka_writer_release_files(w);
	return sent < 0 ? -1 : 0;
}

int kafka_conn_serve(struct kafka_conn *c, const uint8_t *buf, size_t len, struct kafka_writer *w)
{
	struct served sv;

	if (conn_dispatch(c, buf, len, w, false, &sv) < 0)
		return -1;
	if (sv.no_response)
		return 0;
	if (conn_respond(c, w) < 0)
		return -1;
	return sv.close_after ? -1 : 0;
}

#define BODY_BUF_START ((size_t)64 << 10)
/* Produce requests in flight on one connection at most, and the request
 * bytes past which no more is read (PIPELINING). */
#define KAFKA_PIPELINE_MAX 16
#define KAFKA_PIPELINE_BYTES ((size_t)4 << 20)
/* What a slot keeps of its buffers once answered: all slots together keep
 * what one connection kept before (4 MiB). */
#define SLOT_KEEP_BYTES (((size_t)4 << 20) / KAFKA_PIPELINE_MAX)

/* One request of a connection: its bytes and its response. A slot whose
 * produce is set is in flight: buf must not change until it is finished. */
struct conn_slot {
	uint8_t *buf;
	size_t cap;
	size_t len; /* the request's bytes, while in flight */
	struct kafka_writer w;
	struct kafka_produce *produce;
	bool no_response;
};

/* The connection's slots, a ring: n in flight from head. Connection
 * thread only. */
struct conn_pipe {
	struct conn_slot slot[KAFKA_PIPELINE_MAX];
	unsigned head, n;
	size_t bytes; /* sum of the len of those in flight */
};

/* Do not keep a big buffer around after a big request. */
static void slot_trim(struct conn_slot *s)
{
	if (s->cap > SLOT_KEEP_BYTES) {
		free(s->buf);
		s->buf = NULL;
		s->cap = 0;
	}
	if (s->w.cap > SLOT_KEEP_BYTES)
		kafka_writer_fini(&s->w);
}

/* No more is read while so much is in flight (rule 2). */
static bool pipe_full(const struct conn_pipe *pp)
{
	return pp->n == KAFKA_PIPELINE_MAX || pp->bytes >= KAFKA_PIPELINE_BYTES;
}

/* Finish the oldest request in flight and, when send is set, send its
 * response: 0, or -1 when the send failed. */
static int pipe_finish_oldest(struct kafka_conn *c, struct conn_pipe *pp, bool send)
{
	struct conn_slot *s = &pp->slot[pp->head];
	bool answer = send && !s->no_response;
	int rc = 0;

	kafka_produce_finish(s->produce, answer ? &s->w : NULL);
	s->produce = NULL;
	if (answer)
		rc = conn_respond(c, &s->w);
	pp->head = (pp->head + 1) % KAFKA_PIPELINE_MAX;
	pp->n--;
	pp->bytes -= s->len;
	s->len = 0;
	slot_trim(s);
	atomic_store(&c->served, true);
	return rc;
}

/* Finish every request in flight, in order; once a send failed the rest
 * are only finished. 0, or -1 when a send failed. */
static int pipe_drain(struct kafka_conn *c, struct conn_pipe *pp, bool send)
{
	int rc = 0;
	while (pp->n > 0)
		if (pipe_finish_oldest(c, pp, send && rc == 0) < 0)
			rc = -1;
	return rc;
}

/* Read one request into s: its size (bytes after the size field), or -1
 * on EOF, error, timeout, a refused size or the listener stopping. The
 * first byte is awaited until idle_deadline, the rest until the receive
 * timeout. */
static int32_t conn_read_request(struct kafka_conn *c, struct conn_slot *s, int64_t idle_deadline)
{
	struct kafka_listener *l = c->l;
	uint8_t szb[4];

	if (recv_by(c, szb, 1, idle_deadline) < 0)
		return -1;
	atomic_store(&c->idle_since_ms, 0);
	int64_t deadline = l->o.request_receive_timeout_ms > 0 ?
				   kafka_now_ms() + l->o.request_receive_timeout_ms :
				   0;
	if (recv_full_by(c, szb + 1, 3, deadline) < 0)
		return -1;
	int32_t size = (int32_t)kafka_get_be32(szb);
	if (size < MIN_REQUEST_HEADER || (size_t)size > l->o.max_request_bytes) {
		log_msg(LOG_LVL_DEBUG, "kafka", "%s: request size %d refused, closing", c->peer,
			size);
		return -1;
	}
	/* Grow the buffer as the bytes arrive, not to the announced size. */
	size_t got = 0;
	while (got < (size_t)size) {
		if (got == s->cap) {
			size_t ncap = s->cap ? s->cap * 2 : BODY_BUF_START;
			if (ncap > (size_t)size)
				ncap = (size_t)size;
			uint8_t *nb = realloc(s->buf, ncap);
			if (!nb)
				break;
			s->buf = nb;
			s->cap = ncap;
		}
		size_t want = (s->cap < (size_t)size ? s->cap : (size_t)size) - got;
		ssize_t k = recv_by(c, s->buf + got, want, deadline);
		if (k < 0)
			break;
		got += (size_t)k;
	}
	if (got < (size_t)size) {
		if (atomic_load(&l->stopping) == false)
			log_msg(LOG_LVL_DEBUG, "kafka", "%s: request not received in time, closing",
				c->peer);
		return -1;
	}
	return size;
}

/* The api_key of a request (its first two bytes; a request has at least
 * MIN_REQUEST_HEADER). */
static int16_t request_api_key(const uint8_t *buf)
{
	return (int16_t)(((unsigned)buf[0] << 8) | buf[1]);
}

/* Read and serve requests until the connection ends (PIPELINING). */
static void conn_loop(struct kafka_conn *c, struct conn_pipe *pp)
{
	struct kafka_listener *l = c->l;
	bool pipelined = !c->ssl;

	while (!atomic_load(&l->stopping)) {
		/* Rule 2: answer the oldest unless the next request is here. */
		if (pp->n > 0 && (pipe_full(pp) || !conn_readable_now(c))) {
			if (pipe_finish_oldest(c, pp, true) < 0)
				return;
			continue;
		}
		struct conn_slot *s = &pp->slot[(pp->head + pp->n) % KAFKA_PIPELINE_MAX];
		int64_t idle_deadline = 0;
		if (pp->n == 0) {
			int64_t now = kafka_now_ms();
			atomic_store(&c->idle_since_ms, now);
			atomic_store(&c->serving, false);
			if (l->o.connections_max_idle_ms > 0)
				idle_deadline = now + l->o.connections_max_idle_ms;
		}
		int32_t size = conn_read_request(c, s, idle_deadline);
		if (size < 0)
			return;
		atomic_store(&c->serving, true);
		/* Rule 3: anything but a Produce waits for those in flight. */
		if (pp->n > 0 && request_api_key(s->buf) != KAPI_PRODUCE &&
		    pipe_drain(c, pp, true) < 0)
			return;
		/* The slot of a request served at once is the ring's next,
		 * free again when it returns. */
		struct served sv;
		if (conn_dispatch(c, s->buf, (size_t)size, &s->w, pipelined, &sv) < 0)
			return;
		if (sv.deferred) {
			s->produce = sv.deferred;
			s->no_response = sv.no_response;
			s->len = (size_t)size;
			pp->bytes += s->len;
			pp->n++;
			c->appends_queued = true;
			continue;
		}
		int rc = sv.no_response ? 0 : conn_respond(c, &s->w);
		atomic_store(&c->served, true);
		slot_trim(s);
		if (rc < 0 || sv.close_after)
			return;
	}
}

static void *conn_main(void *arg)
{
	struct kafka_conn *c = arg;
	struct kafka_listener *l = c->l;
	struct conn_pipe *pp = calloc(1, sizeof(*pp));

	bool ok = pp != NULL;
	if (ok && c->tls) { /* the handshake must end within the receive timeout */
		int64_t deadline = l->o.request_receive_timeout_ms > 0 ?
					   kafka_now_ms() + l->o.request_receive_timeout_ms :
					   0;
		ok = kafka_tls_conn_accept(l->tls, c, deadline) == 0;
	}
	if (ok) {
		for (unsigned i = 0; i < KAFKA_PIPELINE_MAX; i++)
			kafka_writer_init(&pp->slot[i].w, 0);
		conn_loop(c, pp);
		/* Rule 5: what is in flight is finished, and answered while the
		 * socket takes it (not once the listener stops). */
		(void)pipe_drain(c, pp, !atomic_load(&l->stopping));
		for (unsigned i = 0; i < KAFKA_PIPELINE_MAX; i++) {
			free(pp->slot[i].buf);
			kafka_writer_fini(&pp->slot[i].w);
		}
	}
	free(pp);
	kafka_tls_conn_close(c);
	kafka_sasl_free(c->sasl);
	c->sasl = NULL;
	shutdown(c->fd, SHUT_RDWR);
	atomic_store(&c->done, true);
	return NULL;
}

/* ---- accept loop and connection list ------------------------------------ */

/* Join and free finished connections (all of them when all is set). */
static void conns_reap(struct kafka_listener *l, bool all)
{
	struct kafka_conn *done = NULL;

	pthread_mutex_lock(&l->lock);
	struct kafka_conn **pp = &l->conns;
	while (*pp) {
		struct kafka_conn *c = *pp;
		if (all || atomic_load(&c->done)) {
			*pp = c->next;
			c->next = done;
			done = c;
			l->nconns--;
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&l->lock);
	while (done) {
		struct kafka_conn *c = done;
		done = c->next;
		pthread_join(c->thread, NULL);
		close(c->fd);
		free(c);
	}
}

/* Warn that a connection was refused, at most once a second. */
static void warn_refused(struct kafka_listener *l)
{
	int64_t now = kafka_now_ms();
	if (now - l->last_warn_ms < 1000)
		return;
	l->last_warn_ms = now;
	log_msg(LOG_LVL_WARN, "kafka", "too many connections (%d), all busy: refusing one",
		l->max_conns);
}

/* The connection limit of o under the file descriptor limit (listener.h). */
static int max_conns_for(const struct kafka_options *o)
{
	struct rlimit rl;
	int64_t room = KAFKA_MAX_CONNS;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		room = (int64_t)rl.rlim_cur - KAFKA_FD_RESERVE;
	if (room > KAFKA_MAX_CONNS)
		room = KAFKA_MAX_CONNS;
	if (room < 16)
		room = 16;
	if (o->max_connections <= 0)
		return (int)room;
	if (o->max_connections > room) {
		log_msg(LOG_LVL_WARN, "kafka",
			"kafka.max.connections %d lowered to %d (the open file limit)",
			(int)o->max_connections, (int)room);
		return (int)room;
	}
	return (int)o->max_connections;
}

/* Room for one more connection: true when fewer than max_conns are
 * live, or after evicting one that does nothing (see the header comment for
 * which); false when all are busy. Accept thread only. */
static bool conns_make_room(struct kafka_listener *l)
{
	struct kafka_conn *silent = NULL, *idle = NULL;
	int live = 0;

	pthread_mutex_lock(&l->lock);
	for (struct kafka_conn *c = l->conns; c; c = c->next) {
		if (atomic_load(&c->done) || atomic_load(&c->evicted))
			continue;
		live++;
		if (atomic_load(&c->serving))
			continue;
		int64_t since = atomic_load(&c->idle_since_ms);
		if (!atomic_load(&c->served)) {
			if (!silent || c->accepted_ms < silent->accepted_ms)
				silent = c;
		} else if (since > 0) {
			if (!idle || since < atomic_load(&idle->idle_since_ms))
				idle = c;
		}
	}
	struct kafka_conn *victim = live < l->max_conns ? NULL : silent ? silent : idle;
	if (victim) {
		atomic_store(&victim->evicted, true);
		shutdown(victim->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&l->lock);
	if (victim)
		log_msg(LOG_LVL_DEBUG, "kafka", "%s: closed to make room for a new connection",
			victim->peer);
	return live < KAFKA_MAX_CONNS || victim;
}

static void accept_one(struct kafka_listener *l, int listen_fd, bool tls)
{
	struct sockaddr_storage peer, local;
	socklen_t plen = sizeof(peer), llen = sizeof(local);
	int fd = accept4(listen_fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE) {
			int64_t now = kafka_now_ms();
			if (now - l->last_warn_ms >= 1000) {
				l->last_warn_ms = now;
				log_msg(LOG_LVL_WARN, "kafka",
					"cannot accept a connection: %s", strerror(errno));
			}
			struct timespec ts = { 0, 100 * 1000000 };
			nanosleep(&ts, NULL);
		}
		return;
	}

	if (!conns_make_room(l)) {
		warn_refused(l);
		close(fd);
		return;
	}

	struct kafka_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->l = l;
	c->fd = fd;
	c->tls = tls;
	c->accepted_ms = kafka_now_ms();
	atomic_init(&c->done, false);
	atomic_init(&c->idle_since_ms, c->accepted_ms);
	atomic_init(&c->served, false);
	atomic_init(&c->serving, false);
	atomic_init(&c->evicted, false);
	int32_t pport = 0;
	addr_to_str(&peer, c->peer, sizeof(c->peer), &pport);
	size_t pl = strlen(c->peer);
	snprintf(c->peer + pl, sizeof(c->peer) - pl, ":%d", (int)pport);
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0) {
		addr_to_str(&local, c->host, sizeof(c->host), &c->port);
	} else {
		snprintf(c->host, sizeof(c->host), "%s", l->o.host);
		c->port = l->port;
	}

	pthread_mutex_lock(&l->lock);
	if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
		pthread_mutex_unlock(&l->lock);
		close(fd);
		free(c);
		return;
	}
	c->next = l->conns;
	l->conns = c;
	l->nconns++;
	pthread_mutex_unlock(&l->lock);
}

static void *accept_main(void *arg)
{
	struct kafka_listener *l = arg;
	while (!atomic_load(&l->stopping)) {
		struct pollfd pfd[2] = { { .fd = l->listen_fd, .events = POLLIN },
					 { .fd = l->tls_fd, .events = POLLIN } };
		int n = poll(pfd, l->tls_fd >= 0 ? 2 : 1, 200);
		if (n > 0 && (pfd[0].revents & POLLIN))
			accept_one(l, l->listen_fd, false);
		if (n > 0 && l->tls_fd >= 0 && (pfd[1].revents & POLLIN))
			accept_one(l, l->tls_fd, true);
		conns_reap(l, false);
	}
	return NULL;
}

static void *timer_main(void *arg)
{
	struct kafka_listener *l = arg;
	while (!atomic_load(&l->stopping)) {
		struct timespec ts = { 0, 50 * 1000000 };
		nanosleep(&ts, NULL);
		kafka_groups_tick(l);
	}
	return NULL;
}

static int listen_on(const struct kafka_options *o, int *fd_out, uint16_t *port_out)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port_s[8];
	int err = -EADDRNOTAVAIL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port_s, sizeof(port_s), "%u", (unsigned)o->port);
	int rc = getaddrinfo(o->host && *o->host ? o->host : NULL, port_s, &hints, &res);
	if (rc != 0)
		return -EINVAL;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
			err = -errno;
			close(fd);
			continue;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char host[64];
		int32_t port = 0;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			addr_to_str(&ss, host, sizeof(host), &port);
		*fd_out = fd;
		*port_out = (uint16_t)port;
		err = 0;
		break;
	}
	freeaddrinfo(res);
	return err;
}

int kafka_listener_start(struct engine *e, const struct kafka_options *o,
			 struct kafka_listener **out)
{
	struct kafka_listener *l;
	int err;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->e = e;
	l->o = *o;
	if (l->o.max_request_bytes < 1024)
		l->o.max_request_bytes = 1024;
	if (l->o.max_request_bytes > INT32_MAX)
		l->o.max_request_bytes = INT32_MAX;
	l->max_conns = max_conns_for(o);
	atomic_init(&l->stopping, false);
	pthread_mutex_init(&l->lock, NULL);
	l->tls_fd = -1;

	err = kafka_security_setup(l);
	if (err)
		goto err_free;
	err = kafka_groups_new(o->max_groups, &l->groups);
	if (err)
		goto err_security;
	err = kafka_producers_new(o, &l->producers);
	if (err)
		goto err_groups;
	err = listen_on(o, &l->listen_fd, &l->port);
	if (err) {
		log_msg(LOG_LVL_ERROR, "kafka", "cannot listen on %s:%u: %s",
			o->host ? o->host : "*", (unsigned)o->port, chronik_strerror(err));
		goto err_producers;
	}
	if (l->tls) {
		struct kafka_options to = *o;
		to.host = l->tls_host;
		to.port = l->tls_port;
		err = listen_on(&to, &l->tls_fd, &l->tls_port);
		if (err) {
			log_msg(LOG_LVL_ERROR, "kafka", "cannot listen (TLS) on %s: %s",
				o->tls_listen, chronik_strerror(err));
			goto err_close;
		}
	}
	if (pthread_create(&l->timer_thread, NULL, timer_main, l) != 0) {
		err = -EAGAIN;
		goto err_close;
	}
	if (pthread_create(&l->accept_thread, NULL, accept_main, l) != 0) {
		err = -EAGAIN;
		goto err_timer;
	}
	log_msg(LOG_LVL_INFO, "kafka", "listening on %s:%u%s, up to %d connections",
		o->host ? o->host : "*", (unsigned)l->port, l->users ? " (SASL)" : "",
		l->max_conns);
	if (l->tls)
		log_msg(LOG_LVL_INFO, "kafka", "listening (TLS%s) on %s, port %u",
			l->users ? ", SASL" : "", o->tls_listen, (unsigned)l->tls_port);
	*out = l;
	return 0;

err_timer:
	atomic_store(&l->stopping, true);
	pthread_join(l->timer_thread, NULL);
err_close:
	if (l->tls_fd >= 0)
		close(l->tls_fd);
	close(l->listen_fd);
err_producers:
	kafka_producers_free(l->producers);
err_groups:
	kafka_groups_free(l->groups);
err_security:
	kafka_tls_free(l->tls);
	kafka_users_free(l->users);
err_free:
	pthread_mutex_destroy(&l->lock);
	free(l);
	return err;
}

uint16_t kafka_listener_port(const struct kafka_listener *l)
{
	return l->port;
}

uint16_t kafka_listener_tls_port(const struct kafka_listener *l)
{
	return l->tls_port;
}

void kafka_listener_stop(struct kafka_listener *l)
{
	if (!l)
		return;
	atomic_store(&l->stopping, true);
	pthread_join(l->accept_thread, NULL);
	close(l->listen_fd);
	if (l->tls_fd >= 0)
		close(l->tls_fd);

	pthread_mutex_lock(&l->lock);
	for (struct kafka_conn *c = l->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&l->lock);
	kafka_groups_wake_all(l->groups);
	conns_reap(l, true);
	pthread_join(l->timer_thread, NULL);

	kafka_producers_free(l->producers);
	kafka_groups_free(l->groups);
	kafka_tls_free(l->tls);
	kafka_users_free(l->users);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
