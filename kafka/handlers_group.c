/* handlers_group.c - the group coordinator: Kafka's classic (eager)
 * consumer-group protocol, and the group offsets kept in the metadata log.
 *
 * Group states and transitions (one mutex, groups->lock, guards every
 * group and member; one condition variable wakes every waiter):
 *
 *   EMPTY --JoinGroup--> PREPARING --all joined, or deadline--> AWAITING_SYNC
 *   AWAITING_SYNC --leader's SyncGroup--> STABLE
 *   STABLE/AWAITING_SYNC --JoinGroup, LeaveGroup, session expiry--> PREPARING
 *   PREPARING --completes with no member--> EMPTY
 *
 * PREPARING waits for every known member to (re)join, at most the largest
 * rebalance timeout of its members; members that have not rejoined by then
 * are removed. A group that starts from EMPTY also waits INITIAL_DELAY_MS
 * (extended, up to the deadline, while new members keep arriving), so that
 * consumers started together land in one generation. Completing bumps the
 * generation, keeps the leader if it is still a member (else the first
 * member to have joined), picks the first protocol of the leader's list
 * that every member supports, and answers every pending JoinGroup; only the
 * leader's answer lists the members and their metadata.
 *
 * Heartbeat answers 27 REBALANCE_IN_PROGRESS during PREPARING (the member
 * must rejoin), 22 ILLEGAL_GENERATION for an old generation, 25
 * UNKNOWN_MEMBER_ID for a member the group does not know. A member not heard
 * from (JoinGroup, SyncGroup, Heartbeat, OffsetCommit) within its session
 * timeout is evicted by kafka_groups_tick (the listener's timer thread),
 * which starts a rebalance; a member waiting for a JoinGroup answer is not.
 *
 * Membership lives in memory. Committed offsets go to the engine's metadata
 * log (engine_group_offset_commit), so they survive a restart. A group left
 * EMPTY is freed by the next tick (at most 50 ms later), so the table
 * (at most max_groups, default MAX_GROUPS) holds only groups with members;
 * JoinGroup for a new group id while it is full gets 15
 * COORDINATOR_NOT_AVAILABLE, which clients retry.
 *
 * The admin APIs see a group as Kafka does: one with members is in the
 * table; one without members but with committed offsets in the engine is
 * "Empty" (its protocol type "consumer": only consumers commit offsets
 * here); one with neither is "Dead" (DescribeGroups) or unknown (69
 * GROUP_ID_NOT_FOUND for DeleteGroups and OffsetDelete). DeleteGroups
 * refuses a group with members (68 NON_EMPTY_GROUP); OffsetDelete refuses a
 * partition of a topic that a member of a "consumer" group subscribes to
 * (86 GROUP_SUBSCRIBED_TO_TOPIC), and a group of another protocol type that
 * has members (68). Both forget offsets through the engine while holding
 * groups->lock, so no member joins between the check and the write.
 *
 * A waiting handler (JoinGroup, SyncGroup) holds a reference on its member
 * and on its group (both counted in waiters, under groups->lock); a member
 * removed while waited on is unlinked and marked removed, and the last
 * waiter frees it. A group emptied while waited on (every member evicted in
 * one tick, the follower still in SyncGroup) stays in the table until its
 * last waiter is gone; the next tick after that frees it.
 */
#include "kafka-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define INITIAL_DELAY_MS 300
#define MIN_SESSION_TIMEOUT_MS 1000
#define MAX_SESSION_TIMEOUT_MS 3600000
#define MAX_GROUPS 4096
#define MAX_MEMBERS 1024
/* Longest OffsetCommit metadata kept (Kafka's offset.metadata.max.bytes). */
#define OFFSET_METADATA_MAX 4096

enum group_state { G_EMPTY, G_PREPARING, G_AWAITING_SYNC, G_STABLE };

struct protocol {
	char *name;
	uint8_t *meta;
	int32_t meta_len;
};

struct member {
	char *id;
	char *instance_id;
	char *client_id; /* of its last JoinGroup (DescribeGroups) */
	char *client_host;
	int32_t session_timeout_ms, rebalance_timeout_ms;
	struct protocol *protocols;
	int32_t nprotocols;
	uint8_t *assignment;
	int32_t assignment_len;
	int64_t last_seen;
	bool joined; /* joined the rebalance in progress */
	bool join_pending; /* a JoinGroup waits for the rebalance to complete */
	bool removed; /* unlinked; freed by the last waiter */
	int waiters;
	struct member *next;
};

struct group {
	char *id;
	enum group_state state;
	int32_t generation;
	char *protocol_type;
	char *protocol; /* chosen protocol name */
	char *leader; /* member id */
	struct member *members;
	int nmembers;
	int64_t deadline, initial_until;
	int waiters; /* handlers waiting on a member of it; freed only at 0 */
	struct group *next;
};

struct kafka_groups {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast on every state change */
	struct group *groups;
	int ngroups, max_groups;
	uint64_t seq;
	bool stopping;
};

int kafka_groups_new(int max_groups, struct kafka_groups **out)
{
	struct kafka_groups *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->max_groups = max_groups > 0 ? max_groups : MAX_GROUPS;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = g;
	return 0;
}

static void protocols_free(struct protocol *p, int32_t n)
{
	for (int32_t i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].meta);
	}
	free(p);
}

static void member_free(struct member *m)
{
	protocols_free(m->protocols, m->nprotocols);
	free(m->assignment);
	free(m->instance_id);
	free(m->client_id);
	free(m->client_host);
	free(m->id);
	free(m);
}

static void group_free(struct group *gr)
{
	while (gr->members) {
		struct member *m = gr->members;
		gr->members = m->next;
		member_free(m);
	}
	free(gr->id);
	free(gr->protocol_type);
	free(gr->protocol);
	free(gr->leader);
	free(gr);
}

void kafka_groups_free(struct kafka_groups *g)
{
	if (!g)
		return;
	while (g->groups) {
		struct group *gr = g->groups;
		g->groups = gr->next;
		group_free(gr);
	}
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

void kafka_groups_wake_all(struct kafka_groups *g)
{
	pthread_mutex_lock(&g->lock);
	g->stopping = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void cond_wait_ms(struct kafka_groups *g, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += (long)ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_cond_timedwait(&g->cond, &g->lock, &ts);
}

static struct group *group_find(struct kafka_groups *g, struct kafka_str id)
{
	for (struct group *gr = g->groups; gr; gr = gr->next)
		if (kafka_str_eq(id, gr->id))
			return gr;
	return NULL;
}

static struct group *group_get(struct kafka_groups *g, struct kafka_str id)
{
	struct group *gr = group_find(g, id);
	if (gr || g->ngroups >= g->max_groups)
		return gr;
	gr = calloc(1, sizeof(*gr));
	if (!gr)
		return NULL;
	gr->id = kafka_str_dup(id);
	if (!gr->id) {
		free(gr);
		return NULL;
	}
	gr->state = G_EMPTY;
	gr->next = g->groups;
	g->groups = gr;
	g->ngroups++;
	return gr;
}

static struct member *member_find(struct group *gr, struct kafka_str id)
{
	for (struct member *m = gr->members; m; m = m->next)
		if (kafka_str_eq(id, m->id))
			return m;
	return NULL;
}

/* The member member_id of group group_id (*grp its group), or NULL. */
static struct member *group_member_find(struct kafka_groups *g, struct kafka_str group_id,
					struct kafka_str member_id, struct group **grp)
{
	struct group *gr = group_find(g, group_id);
	*grp = gr;
	return gr ? member_find(gr, member_id) : NULL;
}

/* A malloc'd copy of len bytes (one more allocated, so that an empty copy
 * is not NULL); NULL on ENOMEM. */
static uint8_t *bytes_dup(const void *p, int32_t len)
{
	uint8_t *copy = malloc((size_t)len + 1);
	if (copy)
		memcpy(copy, p, (size_t)len);
	return copy;
}

/* Unlink m from gr; free it unless a handler waits on it. */
static void member_remove(struct group *gr, struct member *m)
{
	for (struct member **pp = &gr->members; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			gr->nmembers--;
			break;
		}
	}
	if (gr->leader && strcmp(gr->leader, m->id) == 0) {
		free(gr->leader);
		gr->leader = NULL;
	}
	m->removed = true;
	m->next = NULL;
	if (m->waiters == 0)
		member_free(m);
}

static int32_t max_rebalance_timeout(const struct group *gr)
{
	int32_t t = 0;
	for (const struct member *m = gr->members; m; m = m->next)
		if (m->rebalance_timeout_ms > t)
			t = m->rebalance_timeout_ms;
	return t;
}

/* Enter PREPARING (members must rejoin). */
static void group_rebalance_begin(struct kafka_groups *g, struct group *gr, int64_t now,
				  bool from_empty)
{
	if (gr->state != G_PREPARING) {
		for (struct member *m = gr->members; m; m = m->next)
			m->joined = false;
		gr->state = G_PREPARING;
		gr->deadline = now + max_rebalance_timeout(gr);
		gr->initial_until = from_empty ? now + INITIAL_DELAY_MS : now;
	}
	pthread_cond_broadcast(&g->cond);
}

static bool member_supports(const struct member *m, const char *protocol)
{
	for (int32_t i = 0; i < m->nprotocols; i++)
		if (strcmp(m->protocols[i].name, protocol) == 0)
			return true;
	return false;
}

/* After members left or were evicted: the others must rejoin, or, with no
 * member left, the group is EMPTY (unless a rebalance is under way, which
 * its completion settles). */
static void group_members_lost(struct kafka_groups *g, struct group *gr, int64_t now)
{
	if (gr->members) {
		group_rebalance_begin(g, gr, now, false);
	} else if (gr->state != G_PREPARING) {
		gr->state = G_EMPTY;
		gr->generation++;
		free(gr->protocol_type);
		gr->protocol_type = NULL;
		pthread_cond_broadcast(&g->cond);
	}
}

/* Complete the rebalance when its wait is over. */
static void group_try_complete(struct kafka_groups *g, struct group *gr, int64_t now)
{
	if (gr->state != G_PREPARING)
		return;
	bool all = true;
	for (struct member *m = gr->members; m; m = m->next)
		all = all && m->joined;
	if (!((all && now >= gr->initial_until) || now >= gr->deadline))
		return;

	struct member *m = gr->members;
	while (m) {
		struct member *n = m->next;
		if (!m->joined)
			member_remove(gr, m);
		m = n;
	}
	gr->generation++;
	free(gr->protocol);
	gr->protocol = NULL;
	if (!gr->members) {
		gr->state = G_EMPTY;
		free(gr->leader);
		gr->leader = NULL;
		free(gr->protocol_type);
		gr->protocol_type = NULL;
		pthread_cond_broadcast(&g->cond);
		return;
	}
	if (!gr->leader)
		gr->leader = strdup(gr->members->id);
	struct member *leader = gr->members;
	for (m = gr->members; m; m = m->next)
		if (gr->leader && strcmp(m->id, gr->leader) == 0)
			leader = m;
	for (int32_t i = 0; i < leader->nprotocols && !gr->protocol; i++) {
		bool everyone = true;
		for (m = gr->members; m; m = m->next)
			everyone = everyone && member_supports(m, leader->protocols[i].name);
		if (everyone)
			gr->protocol = strdup(leader->protocols[i].name);
	}
	if (!gr->protocol && leader->nprotocols > 0)
		gr->protocol = strdup(leader->protocols[0].name);
	for (m = gr->members; m; m = m->next) {
		m->join_pending = false;
		m->last_seen = now;
		free(m->assignment);
		m->assignment = NULL;
		m->assignment_len = 0;
	}
	gr->state = G_AWAITING_SYNC;
	pthread_cond_broadcast(&g->cond);
}

void kafka_groups_tick(struct kafka_listener *l)
{
	struct kafka_groups *g = l->groups;
	int64_t now = kafka_now_ms();

	pthread_mutex_lock(&g->lock);
	for (struct group **gp = &g->groups; *gp;) {
		struct group *gr = *gp;
		struct member *m = gr->members;
		bool evicted = false;
		while (m) {
			struct member *n = m->next;
			if (!m->join_pending && now - m->last_seen > m->session_timeout_ms) {
				member_remove(gr, m);
				evicted = true;
			}
			m = n;
		}
		if (evicted)
			group_members_lost(g, gr, now);
		group_try_complete(g, gr, now);
		/* An empty group holds nothing worth keeping (its offsets live
		 * in the engine): free it once nobody waits on it, so that the
		 * table holds only groups with members or waiters. */
		if (gr->state == G_EMPTY && !gr->members && gr->waiters == 0) {
			*gp = gr->next;
			g->ngroups--;
			group_free(gr);
		} else {
			gp = &gr->next;
		}
	}
	pthread_mutex_unlock(&g->lock);
}

/* A JoinGroup answer with an error: no generation, protocol, leader or
 * members; the member id as the request gave it. */
static void join_group_error(struct kafka_writer *w, int16_t v, int16_t err,
			     struct kafka_str member_id)
{
	bool f = v >= 6;
	if (v >= 2)
		kafka_write_i32(w, 0);
	kafka_write_i16(w, err);
	kafka_write_i32(w, -1);
	if (v >= 7)
		kafka_write_string(w, f, NULL); /* ProtocolType */
	kafka_write_string(w, f, v >= 7 ? NULL : ""); /* ProtocolName */
	kafka_write_string(w, f, "");
	if (v >= 9)
		kafka_write_bool(w, false); /* SkipAssignment */
	kafka_write_str(w, f, member_id);
	kafka_write_array(w, f, 0);
	if (f)
		kafka_write_tags(w);
}

/* JoinGroupRequest v0-9: GroupId, SessionTimeoutMs int32, RebalanceTimeoutMs
 * int32 (v1+), MemberId, GroupInstanceId nullable (v5+), ProtocolType,
 * Protocols [Name, Metadata bytes], Reason nullable (v8+, ignored).
 * JoinGroupResponse v0-9: ThrottleTimeMs (v2+), ErrorCode, GenerationId,
 * ProtocolType nullable (v7+), ProtocolName (nullable v7+), Leader,
 * SkipAssignment bool (v9+, always false: the leader always assigns),
 * MemberId, Members [MemberId, GroupInstanceId nullable (v5+), Metadata
 * bytes].
 * v6+ is flexible (compact forms, tagged fields closing every struct).
 * The member id is given on the first join at every version (Kafka's v4+
 * may first answer 79 MEMBER_ID_REQUIRED; a client accepts either). */
/* The member's host as Kafka reports it: "/" and the peer's address
 * (c->peer without its ":port"). Malloc'd, NULL on ENOMEM. */
static char *client_host(const struct kafka_conn *c)
{
	const char *colon = strrchr(c->peer, ':');
	int n = colon ? (int)(colon - c->peer) : (int)strlen(c->peer);
	char *s = malloc((size_t)n + 2);
	if (s)
		snprintf(s, (size_t)n + 2, "/%.*s", n, c->peer);
	return s;
}

int kafka_handle_join_group(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	struct kafka_groups *g = req->l->groups;
	int16_t v = req->api_version;
	struct protocol *protos = NULL;
	int32_t nprotos = 0;
	bool f = req->flexible;

	struct kafka_str group_id = kafka_read_string(r, f, false);
	int32_t session_timeout = kafka_read_i32(r);
	int32_t rebalance_timeout = v >= 1 ? kafka_read_i32(r) : session_timeout;
	struct kafka_str member_id = kafka_read_string(r, f, false);
	struct kafka_str instance_id = { NULL, -1 };
	if (v >= 5)
		instance_id = kafka_read_string(r, f, true);
	struct kafka_str protocol_type = kafka_read_string(r, f, false);
	int32_t n = kafka_read_array(r, f, false, f ? 2 : 6);
	if (kafka_reader_failed(r))
		return -1;
	protos = calloc((size_t)n + 1, sizeof(*protos));
	if (!protos)
		return -1;
	for (int32_t i = 0; i < n; i++) {
		struct kafka_str name = kafka_read_string(r, f, false);
		struct kafka_str meta = kafka_read_bytes(r, f, false);
		if (f)
			kafka_read_tags(r);
		if (kafka_reader_failed(r))
			break;
		protos[i].name = kafka_str_dup(name);
		protos[i].meta = bytes_dup(meta.ptr, meta.len);
		protos[i].meta_len = meta.len;
		nprotos = i + 1;
		if (!protos[i].name || !protos[i].meta) {
			kafka_reader_fail(r);
			break;
		}
	}
	if (v >= 8)
		(void)kafka_read_string(r, f, true); /* Reason */
	if (kafka_reader_failed(r)) {
		protocols_free(protos, nprotos);
		return -1;
	}
	if (rebalance_timeout <= 0)
		rebalance_timeout = session_timeout;

	int16_t err = KERR_NONE;
	struct group *gr = NULL;
	struct member *m = NULL;
	int64_t now = kafka_now_ms();

	pthread_mutex_lock(&g->lock);
	if (group_id.len <= 0) {
		err = KERR_INVALID_GROUP_ID;
	} else if (!kafka_conn_allows_group(req->c, KACL_READ, group_id)) {
		err = KERR_GROUP_AUTHORIZATION_FAILED;
	} else if (session_timeout < MIN_SESSION_TIMEOUT_MS ||
		   session_timeout > MAX_SESSION_TIMEOUT_MS) {
		err = KERR_INVALID_SESSION_TIMEOUT;
	} else if (nprotos == 0) {
		err = KERR_INCONSISTENT_GROUP_PROTOCOL;
	} else if (!(gr = group_get(g, group_id))) {
		err = KERR_COORDINATOR_NOT_AVAILABLE;
	} else if (gr->members && gr->protocol_type &&
		   !kafka_str_eq(protocol_type, gr->protocol_type)) {
		err = KERR_INCONSISTENT_GROUP_PROTOCOL;
	} else if (member_id.len > 0) {
		m = member_find(gr, member_id);
		if (!m)
			err = KERR_UNKNOWN_MEMBER_ID;
	} else if (gr->nmembers >= MAX_MEMBERS) {
		err = KERR_COORDINATOR_NOT_AVAILABLE;
	} else {
		char id[300];
		m = calloc(1, sizeof(*m));
		int cl = req->client_id.len > 0 && req->client_id.len < 200 ? req->client_id.len :
									      0;
		snprintf(id, sizeof(id), "%.*s-%llu-%08x", cl, cl ? req->client_id.ptr : "",
			 (unsigned long long)++g->seq,
			 (unsigned)((uint64_t)kafka_wall_ms() * 2654435761u));
		if (m)
			m->id = strdup(id);
		if (!m || !m->id) {
			free(m);
			m = NULL;
			err = KERR_COORDINATOR_NOT_AVAILABLE;
		} else {
			bool from_empty = gr->members == NULL;
			/* Append: the first member to join leads. */
			struct member **pp = &gr->members;
			while (*pp)
				pp = &(*pp)->next;
			*pp = m;
			gr->nmembers++;
			if (from_empty) {
				free(gr->protocol_type);
				gr->protocol_type = kafka_str_dup(protocol_type);
			}
			if (gr->state == G_PREPARING && gr->initial_until > now) {
				int64_t until = now + INITIAL_DELAY_MS;
				gr->initial_until = until < gr->deadline ? until : gr->deadline;
			}
		}
	}
	if (err) {
		pthread_mutex_unlock(&g->lock);
		protocols_free(protos, nprotos);
		join_group_error(w, v, err, member_id);
		return 0;
	}

	protocols_free(m->protocols, m->nprotocols);
	m->protocols = protos;
	m->nprotocols = nprotos;
	free(m->instance_id);
	m->instance_id = kafka_str_dup(instance_id);
	free(m->client_id);
	m->client_id = req->client_id.len > 0 ? kafka_str_dup(req->client_id) : NULL;
	free(m->client_host);
	m->client_host = client_host(req->c);
	m->session_timeout_ms = session_timeout;
	m->rebalance_timeout_ms = rebalance_timeout;
	m->last_seen = now;
	group_rebalance_begin(g, gr, now, gr->state == G_EMPTY);
	m->joined = true;
	m->join_pending = true;
	if (gr->deadline < now + rebalance_timeout)
		gr->deadline = now + rebalance_timeout;

	m->waiters++;
	gr->waiters++;
	while (m->join_pending && !m->removed && !g->stopping && !kafka_conn_peer_closed(req->c)) {
		group_try_complete(g, gr, kafka_now_ms());
		if (!m->join_pending)
			break;
		cond_wait_ms(g, 50);
	}
	m->waiters--;
	gr->waiters--;

	if (m->removed || g->stopping || m->join_pending) {
		bool gone = m->removed;
		if (gone && m->waiters == 0)
			member_free(m);
		else if (!gone)
			m->join_pending = false; /* session expiry applies again */
		pthread_mutex_unlock(&g->lock);
		if (!gone)
			return -1; /* stopping, or the client left: close */
		join_group_error(w, v, KERR_UNKNOWN_MEMBER_ID, member_id);
		return 0;
	}

	bool is_leader = gr->leader && strcmp(gr->leader, m->id) == 0;
	if (v >= 2)
		kafka_write_i32(w, 0);
	kafka_write_i16(w, KERR_NONE);
	kafka_write_i32(w, gr->generation);
	if (v >= 7)
		kafka_write_string(w, f, gr->protocol_type);
	kafka_write_string(w, f, gr->protocol ? gr->protocol : "");
	kafka_write_string(w, f, gr->leader ? gr->leader : "");
	if (v >= 9)
		kafka_write_bool(w, false); /* SkipAssignment */
	kafka_write_string(w, f, m->id);
	if (is_leader) {
		kafka_write_array(w, f, gr->nmembers);
		for (struct member *x = gr->members; x; x = x->next) {
			kafka_write_string(w, f, x->id);
			if (v >= 5)
				kafka_write_string(w, f, x->instance_id);
			const struct protocol *p = NULL;
			for (int32_t i = 0; i < x->nprotocols; i++)
				if (gr->protocol && strcmp(x->protocols[i].name, gr->protocol) == 0)
					p = &x->protocols[i];
			kafka_write_bytes(w, f, p ? p->meta : (const uint8_t *)"",
					  p ? p->meta_len : 0);
			if (f)
				kafka_write_tags(w);
		}
	} else {
		kafka_write_array(w, f, 0);
	}
	if (f)
		kafka_write_tags(w);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/* The fields SyncGroup and Heartbeat (v0-3) begin with: GroupId,
 * GenerationId, MemberId, GroupInstanceId nullable (v3+; not used). */
struct member_ref {
	struct kafka_str group_id;
	int32_t generation;
	struct kafka_str member_id;
};

static void member_ref_read(struct kafka_reader *r, int16_t v, struct member_ref *ref)
{
	bool f = v >= 4; /* SyncGroup and Heartbeat: flexible from v4 */
	ref->group_id = kafka_read_string(r, f, false);
	ref->generation = kafka_read_i32(r);
	ref->member_id = kafka_read_string(r, f, false);
	if (v >= 3)
		(void)kafka_read_string(r, f, true);
}

/* SyncGroupRequest v0-5: GroupId, GenerationId, MemberId, GroupInstanceId
 * nullable (v3+), ProtocolType nullable (v5+), ProtocolName nullable (v5+),
 * Assignments [MemberId, Assignment bytes].
 * SyncGroupResponse v0-5: ThrottleTimeMs (v1+), ErrorCode, ProtocolType
 * nullable (v5+), ProtocolName nullable (v5+), Assignment bytes.
 * v4+ is flexible. */
int kafka_handle_sync_group(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	struct kafka_groups *g = req->l->groups;
	int16_t v = req->api_version;
	struct member_ref ref;
	bool f = req->flexible;

	member_ref_read(r, v, &ref);
	if (v >= 5) {
		(void)kafka_read_string(r, f, true); /* ProtocolType */
		(void)kafka_read_string(r, f, true); /* ProtocolName */
	}
	int32_t generation = ref.generation;
	int32_t n = kafka_read_array(r, f, false, f ? 2 : 6);
	const uint8_t *assign_at = r->p;
	for (int32_t i = 0; i < n && !kafka_reader_failed(r); i++) {
		(void)kafka_read_string(r, f, false);
		(void)kafka_read_bytes(r, f, false);
		if (f)
			kafka_read_tags(r);
	}
	if (kafka_reader_failed(r))
		return -1;

	int16_t err = KERR_NONE;
	const uint8_t *assignment = NULL;
	int32_t assignment_len = 0;
	uint8_t *copy = NULL;
	char *gr_protocol_type = NULL, *gr_protocol = NULL;

	pthread_mutex_lock(&g->lock);
	struct group *gr;
	struct member *m = group_member_find(g, ref.group_id, ref.member_id, &gr);
	if (!kafka_conn_allows_group(req->c, KACL_READ, ref.group_id)) {
		err = KERR_GROUP_AUTHORIZATION_FAILED;
	} else if (!m) {
		err = KERR_UNKNOWN_MEMBER_ID;
	} else if (generation != gr->generation) {
		err = KERR_ILLEGAL_GENERATION;
	} else if (gr->state == G_PREPARING) {
		err = KERR_REBALANCE_IN_PROGRESS;
	} else {
		m->last_seen = kafka_now_ms();
		if (gr->state == G_AWAITING_SYNC && gr->leader && strcmp(gr->leader, m->id) == 0) {
			struct kafka_reader ar;
			kafka_reader_init(&ar, assign_at, (size_t)(r->end - assign_at));
			for (int32_t i = 0; i < n; i++) {
				struct kafka_str mid = kafka_read_string(&ar, f, false);
				struct kafka_str a = kafka_read_bytes(&ar, f, false);
				if (f)
					kafka_read_tags(&ar);
				struct member *x = member_find(gr, mid);
				if (!x)
					continue;
				free(x->assignment);
				x->assignment = bytes_dup(a.ptr, a.len);
				x->assignment_len = x->assignment ? a.len : 0;
			}
			gr->state = G_STABLE;
			pthread_cond_broadcast(&g->cond);
		}
		m->waiters++;
		gr->waiters++;
		while (!m->removed && gr->state == G_AWAITING_SYNC &&
		       gr->generation == generation && !g->stopping &&
		       !kafka_conn_peer_closed(req->c))
			cond_wait_ms(g, KAFKA_WAIT_SLICE_MS);
		m->waiters--;
		gr->waiters--;
		if (m->removed) {
			if (m->waiters == 0)
				member_free(m);
			err = KERR_UNKNOWN_MEMBER_ID;
		} else if (gr->state == G_AWAITING_SYNC && gr->generation == generation) {
			/* stopping, or the client left */
			pthread_mutex_unlock(&g->lock);
			return -1;
		} else if (gr->state != G_STABLE || gr->generation != generation) {
			err = KERR_REBALANCE_IN_PROGRESS;
		} else if (m->assignment) {
			copy = bytes_dup(m->assignment, m->assignment_len);
			if (copy) {
				assignment = copy;
				assignment_len = m->assignment_len;
			}
		}
		if (err == KERR_NONE && v >= 5) {
			gr_protocol_type = gr->protocol_type ? strdup(gr->protocol_type) : NULL;
			gr_protocol = gr->protocol ? strdup(gr->protocol) : NULL;
		}
	}
	pthread_mutex_unlock(&g->lock);

	if (v >= 1)
		kafka_write_i32(w, 0);
	kafka_write_i16(w, err);
	if (v >= 5) {
		/* ProtocolType, ProtocolName: the group's, when it has them */
		bool known = err == KERR_NONE;
		kafka_write_string(w, f, known ? gr_protocol_type : NULL);
		kafka_write_string(w, f, known ? gr_protocol : NULL);
	}
	kafka_write_bytes(w, f, assignment ? assignment : (const uint8_t *)"", assignment_len);
	if (f)
		kafka_write_tags(w);
	free(gr_protocol_type);
	free(gr_protocol);
	free(copy);
	return 0;
}

/* HeartbeatRequest v0-4: GroupId, GenerationId, MemberId, GroupInstanceId
 * nullable (v3+). HeartbeatResponse v0-4: ThrottleTimeMs (v1+), ErrorCode.
 * v4 is flexible. */
int kafka_handle_heartbeat(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_groups *g = req->l->groups;
	int16_t v = req->api_version;
	struct member_ref ref;

	member_ref_read(r, v, &ref);
	if (kafka_reader_failed(r))
		return -1;

	int16_t err = KERR_NONE;
	pthread_mutex_lock(&g->lock);
	struct group *gr;
	struct member *m = group_member_find(g, ref.group_id, ref.member_id, &gr);
	if (!kafka_conn_allows_group(req->c, KACL_READ, ref.group_id)) {
		err = KERR_GROUP_AUTHORIZATION_FAILED;
	} else if (!m) {
		err = KERR_UNKNOWN_MEMBER_ID;
	} else {
		m->last_seen = kafka_now_ms();
		if (gr->state == G_PREPARING)
			err = KERR_REBALANCE_IN_PROGRESS;
		else if (ref.generation != gr->generation)
			err = KERR_ILLEGAL_GENERATION;
	}
	pthread_mutex_unlock(&g->lock);
	if (v >= 1)
		kafka_write_i32(req->w, 0);
	kafka_write_i16(req->w, err);
	if (req->flexible)
		kafka_write_tags(req->w);
	return 0;
}

/* Remove member_id from the group; a Kafka error code. Lock held. */
static int16_t group_leave(struct kafka_groups *g, struct group *gr, struct kafka_str member_id)
{
	struct member *m = gr ? member_find(gr, member_id) : NULL;
	if (!m)
		return KERR_UNKNOWN_MEMBER_ID;
	member_remove(gr, m);
	int64_t now = kafka_now_ms();
	group_members_lost(g, gr, now);
	group_try_complete(g, gr, now); /* nothing to do when left EMPTY */
	return KERR_NONE;
}

/* LeaveGroupRequest v0-2: GroupId, MemberId; v3-5: GroupId, Members
 * [MemberId, GroupInstanceId nullable, Reason nullable (v5+, ignored)].
 * LeaveGroupResponse v0-5: ThrottleTimeMs (v1+), ErrorCode, Members (v3+)
 * [MemberId, GroupInstanceId nullable, ErrorCode]. v4+ is flexible. */
int kafka_handle_leave_group(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	struct kafka_groups *g = req->l->groups;
	int16_t v = req->api_version;
	bool f = req->flexible;

	struct kafka_str group_id = kafka_read_string(r, f, false);
	if (v < 3) {
		struct kafka_str member_id = kafka_read_string(r, f, false);
		if (kafka_reader_failed(r))
			return -1;
		pthread_mutex_lock(&g->lock);
		int16_t err = group_leave(g, group_find(g, group_id), member_id);
		pthread_mutex_unlock(&g->lock);
		if (v >= 1)
			kafka_write_i32(w, 0);
		kafka_write_i16(w, err);
		return 0;
	}
	int32_t n = kafka_read_array(r, f, false, f ? 3 : 4);
	if (kafka_reader_failed(r))
		return -1;
	kafka_write_i32(w, 0);
	kafka_write_i16(w, KERR_NONE);
	kafka_write_array(w, f, n);
	for (int32_t i = 0; i < n; i++) {
		struct kafka_str member_id = kafka_read_string(r, f, false);
		struct kafka_str instance_id = kafka_read_string(r, f, true);
		if (v >= 5)
			(void)kafka_read_string(r, f, true); /* Reason */
		if (f)
			kafka_read_tags(r);
		if (kafka_reader_failed(r))
			return -1;
		pthread_mutex_lock(&g->lock);
		int16_t err = group_leave(g, group_find(g, group_id), member_id);
		pthread_mutex_unlock(&g->lock);
		kafka_write_str(w, f, member_id);
		kafka_write_str(w, f, instance_id);
		kafka_write_i16(w, err);
		if (f)
			kafka_write_tags(w);
	}
	if (f)
		kafka_write_tags(w);
	return 0;
}

/* A partition of an OffsetCommit request to store, and where its error
 * code sits in the response. */
struct offset_pending {
	struct engine_offset_commit c; /* topic and metadata owned */
	size_t err_pos;
};

static void offsets_pending_free(struct offset_pending *pend, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)pend[i].c.topic);
		free((char *)pend[i].c.metadata);
	}
	free(pend);
}

/* Commit the gathered partitions with one engine call (a commit's
 * partitions all have one group) and patch their error codes. */
static void offsets_commit_pending(struct kafka_request *req, const char *group,
				   struct offset_pending *pend, size_t n)
{
	struct engine_offset_commit *c;
	struct kafka_writer *w = req->w;

	if (n == 0) {
		free(pend);
		return;
	}
	c = malloc(n * sizeof(*c));
	for (size_t i = 0; c && i < n; i++)
		c[i] = pend[i].c;
	if (c)
		engine_group_offsets_commit(req->l->e, group, c, n);
	for (size_t i = 0; i < n; i++) {
		int16_t err = c ? kafka_error_from(c[i].rc) : KERR_UNKNOWN_SERVER_ERROR;
		if (!w->failed && pend[i].err_pos + 2 <= w->len) {
			w->buf[pend[i].err_pos] = (uint8_t)((uint16_t)err >> 8);
			w->buf[pend[i].err_pos + 1] = (uint8_t)err;
		}
	}
	free(c);
	offsets_pending_free(pend, n);
}

/* OffsetCommitRequest v0-8: GroupId, GenerationId int32 (v1+), MemberId
 * (v1+), GroupInstanceId nullable (v7+, not used), RetentionTimeMs int64
 * (v2-4), Topics [Name, Partitions [PartitionIndex, CommittedOffset int64,
 * CommittedLeaderEpoch int32 (v6+, not kept), CommitTimestamp int64 (v1
 * only), CommittedMetadata nullable]].
 * OffsetCommitResponse v0-8: ThrottleTimeMs (v3+), Topics [Name, Partitions
 * [PartitionIndex, ErrorCode]]. v8 is flexible (v9 is for the new consumer
 * protocol of KIP-848 and is not served).
 * Metadata longer than OFFSET_METADATA_MAX (4096 bytes, Kafka's default
 * offset.metadata.max.bytes) gets 12 OFFSET_METADATA_TOO_LARGE for that
 * partition and is not stored.
 * A commit with generation -1 and no member id is a plain (standalone)
 * commit; otherwise the member and generation must be current. */
int kafka_handle_offset_commit(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	struct kafka_groups *g = req->l->groups;
	int16_t v = req->api_version;
	bool f = req->flexible;

	struct kafka_str group_id = kafka_read_string(r, f, false);
	int32_t generation = -1;
	struct kafka_str member_id = { "", 0 };
	if (v >= 1) {
		generation = kafka_read_i32(r);
		member_id = kafka_read_string(r, f, false);
	}
	if (v >= 7)
		(void)kafka_read_string(r, f, true); /* GroupInstanceId */
	if (v >= 2 && v <= 4)
		(void)kafka_read_i64(r);
	int32_t ntopics = kafka_read_array(r, f, false, f ? 3 : 6);
	if (kafka_reader_failed(r))
		return -1;

	char *group = kafka_str_dup(group_id);
	int16_t group_err = KERR_NONE;
	if (!group || group_id.len == 0) {
		group_err = KERR_INVALID_GROUP_ID;
	} else if (!kafka_conn_allows_group(req->c, KACL_READ, group_id)) {
		group_err = KERR_GROUP_AUTHORIZATION_FAILED;
	} else if (generation >= 0 || member_id.len > 0) {
		pthread_mutex_lock(&g->lock);
		struct group *gr;
		struct member *m = group_member_find(g, group_id, member_id, &gr);
		if (!m)
			group_err = KERR_UNKNOWN_MEMBER_ID;
		else if (gr->state == G_PREPARING)
			group_err = KERR_REBALANCE_IN_PROGRESS;
		else if (generation != gr->generation)
			group_err = KERR_ILLEGAL_GENERATION;
		else
			m->last_seen = kafka_now_ms();
		pthread_mutex_unlock(&g->lock);
	}

	/* The partitions to store are gathered while the response is written
	 * (their error codes as placeholders, patched afterwards), then
	 * committed with one engine call: one metadata-log write and one
	 * fdatasync for the whole request, not one per partition. */
	struct offset_pending *pend = NULL;
	size_t npend = 0, cap = 0;
	if (v >= 3)
		kafka_write_i32(w, 0);
	kafka_write_array(w, f, ntopics);
	for (int32_t t = 0; t < ntopics; t++) {
		char topic[250];
		struct kafka_str s = kafka_read_string(r, f, false);
		bool name_ok = kafka_topic_name_copy(s, topic);
		int32_t np = kafka_read_array(r, f, false, 14);
		if (kafka_reader_failed(r))
			goto malformed;
		int32_t nparts = 0;
		if (name_ok && engine_topic_partitions(req->l->e, topic, &nparts) != 0)
			name_ok = false;
		kafka_write_str(w, f, s);
		kafka_write_array(w, f, np);
		for (int32_t i = 0; i < np; i++) {
			int32_t index = kafka_read_i32(r);
			int64_t offset = kafka_read_i64(r);
			if (v >= 6)
				(void)kafka_read_i32(r); /* CommittedLeaderEpoch */
			if (v == 1)
				(void)kafka_read_i64(r);
			struct kafka_str meta = kafka_read_string(r, f, true);
			if (f)
				kafka_read_tags(r);
			if (kafka_reader_failed(r))
				goto malformed;
			int16_t err = group_err;
			if (!err && (!name_ok || index < 0 || index >= nparts))
				err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			if (!err && meta.len > OFFSET_METADATA_MAX)
				err = KERR_OFFSET_METADATA_TOO_LARGE;
			kafka_write_i32(w, index);
			if (!err && npend == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct offset_pending *np2 = realloc(pend, ncap * sizeof(*np2));
				if (np2) {
					pend = np2;
					cap = ncap;
				} else {
					err = KERR_UNKNOWN_SERVER_ERROR;
				}
			}
			if (!err) {
				struct offset_pending *op = &pend[npend];
				op->c.topic = strdup(topic);
				op->c.partition = index;
				op->c.offset = offset;
				op->c.metadata = meta.len >= 0 ? kafka_str_dup(meta) : NULL;
				op->c.rc = 0;
				op->err_pos = w->len;
				if (!op->c.topic || (meta.len >= 0 && !op->c.metadata)) {
					free((char *)op->c.topic);
					free((char *)op->c.metadata);
					err = KERR_UNKNOWN_SERVER_ERROR;
				} else {
					npend++;
				}
			}
			kafka_write_i16(w, err);
			if (f)
				kafka_write_tags(w);
		}
		if (f) {
			kafka_read_tags(r);
			kafka_write_tags(w);
		}
	}
	if (f)
		kafka_write_tags(w);
	offsets_commit_pending(req, group, pend, npend);
	free(group);
	return 0;
malformed:
	offsets_pending_free(pend, npend);
	free(group);
	return -1;
}

/* One partition of an OffsetFetch answer (v0-7). */
static void offset_fetch_partition_write(struct kafka_writer *w, int16_t v, int32_t index,
					 int64_t offset, const char *meta, int16_t err)
{
	bool f = v >= 6;
	kafka_write_i32(w, index);
	kafka_write_i64(w, offset);
	if (v >= 5)
		kafka_write_i32(w, -1); /* CommittedLeaderEpoch */
	kafka_write_string(w, f, meta ? meta : "");
	kafka_write_i16(w, err);
	if (f)
		kafka_write_tags(w);
}

static void offset_fetch_partition(struct kafka_request *req, const char *group, const char *topic,
				   int32_t index, bool exists)
{
	int64_t offset = -1;
	char *meta = NULL;
	int16_t err = KERR_NONE;
	if (exists) {
		int rc = engine_group_offset_fetch(req->l->e, group, topic, index, &offset, &meta);
		if (rc && rc != CHRONIK_ENOTOPIC)
			err = kafka_error_from(rc);
		if (rc)
			offset = -1;
	}
	offset_fetch_partition_write(req->w, req->api_version, index, offset, meta, err);
	free(meta);
}

/* OffsetFetchRequest v0-7: GroupId, Topics [Name, PartitionIndexes [int32]]
 * (nullable v2+: null = every committed partition), RequireStable bool
 * (v7+; offsets here are always stable: no transactions).
 * OffsetFetchResponse v0-7: ThrottleTimeMs (v3+), Topics [Name, Partitions
 * [PartitionIndex, CommittedOffset int64, CommittedLeaderEpoch int32 (v5+),
 * Metadata nullable, ErrorCode]], ErrorCode (v2+). No commit = offset -1.
 * v6+ is flexible. v8 batches several groups in one request and is not
 * served (clients fall back to v7, one group per request). */
int kafka_handle_offset_fetch(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	bool f = req->flexible;

	struct kafka_str group_id = kafka_read_string(r, f, false);
	int32_t ntopics = kafka_read_array(r, f, v >= 2, f ? 3 : 6);
	if (kafka_reader_failed(r))
		return -1;
	char *group = kafka_str_dup(group_id);
	if (!group)
		return -1;

	if (v >= 3)
		kafka_write_i32(w, 0);
	if (ntopics < 0) {
		/* Every topic and partition with a committed offset: the
		 * topics are gathered in tw first (a compact count cannot be
		 * patched in place), each topic's partitions in pw_w. */
		char **names = NULL;
		size_t count = 0;
		struct kafka_writer tw, pw_w;
		kafka_writer_init(&tw, 0);
		kafka_writer_init(&pw_w, 0);
		if (engine_topic_list(req->l->e, &names, &count) != 0)
			count = 0;
		int32_t written = 0;
		for (size_t t = 0; t < count; t++) {
			int32_t nparts = 0;
			if (engine_topic_partitions(req->l->e, names[t], &nparts) != 0)
				continue;
			kafka_writer_reset(&pw_w);
			int32_t pw = 0;
			for (int32_t i = 0; i < nparts; i++) {
				int64_t off = -1;
				char *md = NULL;
				if (engine_group_offset_fetch(req->l->e, group, names[t], i, &off,
							      &md) == 0 &&
				    off >= 0) {
					offset_fetch_partition_write(&pw_w, v, i, off, md,
								     KERR_NONE);
					pw++;
				}
				free(md);
			}
			if (pw == 0)
				continue; /* nothing committed: leave the topic out */
			kafka_write_string(&tw, f, names[t]);
			kafka_write_array(&tw, f, pw);
			kafka_write_raw(&tw, pw_w.buf, pw_w.len);
			if (pw_w.failed)
				tw.failed = true;
			if (f)
				kafka_write_tags(&tw);
			written++;
		}
		kafka_write_array(w, f, written);
		kafka_write_raw(w, tw.buf, tw.len);
		if (tw.failed)
			w->failed = true;
		kafka_writer_fini(&pw_w);
		kafka_writer_fini(&tw);
		engine_strv_free(names, count);
	} else {
		kafka_write_array(w, f, ntopics);
		for (int32_t t = 0; t < ntopics; t++) {
			char topic[250];
			struct kafka_str s = kafka_read_string(r, f, false);
			bool name_ok = kafka_topic_name_copy(s, topic);
			int32_t np = kafka_read_array(r, f, false, 4);
			if (kafka_reader_failed(r)) {
				free(group);
				return -1;
			}
			kafka_write_str(w, f, s);
			kafka_write_array(w, f, np);
			for (int32_t i = 0; i < np; i++)
				offset_fetch_partition(req, group, name_ok ? topic : "",
						       kafka_read_i32(r), name_ok);
			if (f) {
				kafka_read_tags(r);
				kafka_write_tags(w);
			}
		}
	}
	if (v >= 7)
		(void)kafka_read_bool(r); /* RequireStable */
	if (v >= 2)
		kafka_write_i16(w, KERR_NONE);
	if (f)
		kafka_write_tags(w);
	free(group);
	return kafka_reader_failed(r) ? -1 : 0;
}

/* ---- admin: DescribeGroups, ListGroups, DeleteGroups, OffsetDelete ------- */

static const char *group_state_name(enum group_state st)
{
	switch (st) {
	case G_EMPTY:
		return "Empty";
	case G_PREPARING:
		return "PreparingRebalance";
	case G_AWAITING_SYNC:
		return "CompletingRebalance";
	case G_STABLE:
		return "Stable";
	}
	return "Dead";
}

/* The group's committed offsets exist in the engine. */
static bool group_has_offsets(struct engine *e, const char *group)
{
	char **v = NULL;
	size_t n = 0;
	bool found = false;
	if (engine_group_list(e, &v, &n) != 0)
		return false;
	for (size_t i = 0; i < n && !found; i++)
		found = strcmp(v[i], group) == 0;
	engine_strv_free(v, n);
	return found;
}

static const struct protocol *member_protocol(const struct member *m, const char *name)
{
	for (int32_t i = 0; name && i < m->nprotocols; i++)
		if (strcmp(m->protocols[i].name, name) == 0)
			return &m->protocols[i];
	return NULL;
}

/* DescribeGroupsRequest v0-5: Groups [string], IncludeAuthorizedOperations
 * bool (v3+). v5 is flexible.
 * DescribeGroupsResponse v0-5: ThrottleTimeMs (v1+), Groups [ErrorCode,
 * GroupId, GroupState, ProtocolType, ProtocolData, Members [MemberId,
 * GroupInstanceId nullable (v4+), ClientId, ClientHost, MemberMetadata
 * bytes, MemberAssignment bytes], AuthorizedOperations int32 (v3+)].
 * As Kafka: the protocol, each member's metadata and assignment only when
 * Stable; an unknown group is "Dead" with error 0; authorized operations
 * are not tracked (INT32_MIN, "not provided"). */
int kafka_handle_describe_groups(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	struct kafka_groups *g = req->l->groups;
	int16_t v = req->api_version;
	bool f = req->flexible;

	int32_t n = kafka_read_array(r, f, false, 1);
	if (kafka_reader_failed(r))
		return -1;
	if (v >= 1)
		kafka_write_i32(w, 0);
	kafka_write_array(w, f, n);
	for (int32_t i = 0; i < n; i++) {
		struct kafka_str id = kafka_read_string(r, f, false);
		if (kafka_reader_failed(r))
			return -1;
		char *name = kafka_str_dup(id);
		pthread_mutex_lock(&g->lock);
		struct group *gr = group_find(g, id);
		if (!name || id.len == 0) {
			kafka_write_i16(w, KERR_INVALID_GROUP_ID);
			kafka_write_str(w, f, id);
			kafka_write_string(w, f, "");
			kafka_write_string(w, f, "");
			kafka_write_string(w, f, "");
			kafka_write_array(w, f, 0);
		} else if (gr && gr->members) {
			bool stable = gr->state == G_STABLE;
			kafka_write_i16(w, KERR_NONE);
			kafka_write_str(w, f, id);
			kafka_write_string(w, f, group_state_name(gr->state));
			kafka_write_string(w, f, gr->protocol_type ? gr->protocol_type : "");
			kafka_write_string(w, f, stable && gr->protocol ? gr->protocol : "");
			kafka_write_array(w, f, gr->nmembers);
			for (struct member *m = gr->members; m; m = m->next) {
				const struct protocol *p =
					stable ? member_protocol(m, gr->protocol) : NULL;
				kafka_write_string(w, f, m->id);
				if (v >= 4)
					kafka_write_string(w, f, m->instance_id);
				kafka_write_string(w, f, m->client_id ? m->client_id : "");
				kafka_write_string(w, f, m->client_host ? m->client_host : "");
				kafka_write_bytes(w, f, p ? p->meta : (const uint8_t *)"",
						  p ? p->meta_len : 0);
				kafka_write_bytes(w, f,
						  stable && m->assignment ? m->assignment :
									    (const uint8_t *)"",
						  stable && m->assignment ? m->assignment_len : 0);
				if (f)
					kafka_write_tags(w);
			}
		} else {
			bool empty = group_has_offsets(req->l->e, name);
			kafka_write_i16(w, KERR_NONE);
			kafka_write_str(w, f, id);
			kafka_write_string(w, f, empty ? "Empty" : "Dead");
			kafka_write_string(w, f, empty ? "consumer" : "");
			kafka_write_string(w, f, "");
			kafka_write_array(w, f, 0);
		}
		pthread_mutex_unlock(&g->lock);
		if (v >= 3)
			kafka_write_i32(w, INT32_MIN);
		if (f)
			kafka_write_tags(w);
		free(name);
	}
	if (v >= 3)
		(void)kafka_read_bool(r);
	if (f)
		kafka_write_tags(w);
	return kafka_reader_failed(r) ? -1 : 0;
}

/* ListGroupsRequest v0-4: StatesFilter [string] (v4+; empty = every state).
 * ListGroupsResponse v0-4: ThrottleTimeMs (v1+), ErrorCode, Groups
 * [GroupId, ProtocolType, GroupState (v4+)]: the groups with members, then
 * those with only committed offsets ("Empty"). A state filter is matched
 * ignoring case, as Kafka does. v3+ is flexible; v5 (group types, KIP-848)
 * is not served. */
static bool state_wanted(struct kafka_reader filter, int32_t n, bool f, const char *state)
{
	if (n <= 0)
		return true;
	for (int32_t i = 0; i < n; i++) {
		struct kafka_str s = kafka_read_string(&filter, f, false);
		if (s.len >= 0 && (size_t)s.len == strlen(state) &&
		    strncasecmp(s.ptr, state, (size_t)s.len) == 0)
			return true;
	}
	return false;
}

static void list_groups_entry(struct kafka_writer *w, int16_t v, bool f, const char *id,
			      const char *type, const char *state)
{
	kafka_write_string(w, f, id);
	kafka_write_string(w, f, type);
	if (v >= 4)
		kafka_write_string(w, f, state);
	if (f)
		kafka_write_tags(w);
}

int kafka_handle_list_groups(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	struct kafka_groups *g = req->l->groups;
	int16_t v = req->api_version;
	bool f = req->flexible;
	char **names = NULL;
	size_t count = 0;
	int rc;

	int32_t nfilter = 0;
	struct kafka_reader filter = *r;
	if (v >= 4) {
		nfilter = kafka_read_array(r, f, false, 1);
		filter = *r;
		for (int32_t i = 0; i < nfilter && !kafka_reader_failed(r); i++)
			(void)kafka_read_string(r, f, false);
	}
	if (kafka_reader_failed(r))
		return -1;

	rc = engine_group_list(req->l->e, &names, &count);
	if (v >= 1)
		kafka_write_i32(w, 0);
	kafka_write_i16(w, kafka_error_from(rc));
	/* Entries gathered in e first: a compact count cannot be patched. */
	struct kafka_writer e;
	kafka_writer_init(&e, 0);
	int32_t written = 0;
	pthread_mutex_lock(&g->lock);
	for (struct group *gr = g->groups; gr; gr = gr->next) {
		if (!gr->members)
			continue;
		const char *st = group_state_name(gr->state);
		if (!state_wanted(filter, nfilter, f, st))
			continue;
		list_groups_entry(&e, v, f, gr->id, gr->protocol_type ? gr->protocol_type : "", st);
		written++;
	}
	for (size_t i = 0; i < count; i++) {
		struct kafka_str s = { names[i], (int32_t)strlen(names[i]) };
		struct group *gr = group_find(g, s);
		if (gr && gr->members)
			continue;
		if (!state_wanted(filter, nfilter, f, "Empty"))
			continue;
		list_groups_entry(&e, v, f, names[i], "consumer", "Empty");
		written++;
	}
	pthread_mutex_unlock(&g->lock);
	kafka_write_array(w, f, written);
	kafka_write_raw(w, e.buf, e.len);
	if (e.failed)
		w->failed = true;
	kafka_writer_fini(&e);
	if (f)
		kafka_write_tags(w);
	engine_strv_free(names, count);
	return 0;
}

/* DeleteGroupsRequest v0-2: GroupsNames [string]. v2 is flexible.
 * DeleteGroupsResponse v0-2: ThrottleTimeMs, Results [GroupId, ErrorCode]:
 * 68 NON_EMPTY_GROUP while it has members, 69 GROUP_ID_NOT_FOUND when it
 * has neither members nor offsets, 24 INVALID_GROUP_ID for "", 30
 * GROUP_AUTHORIZATION_FAILED without the delete ACL on the group. */
int kafka_handle_delete_groups(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	struct kafka_groups *g = req->l->groups;
	bool f = req->flexible;

	int32_t n = kafka_read_array(r, f, false, 1);
	if (kafka_reader_failed(r))
		return -1;
	kafka_write_i32(w, 0);
	kafka_write_array(w, f, n);
	for (int32_t i = 0; i < n; i++) {
		struct kafka_str id = kafka_read_string(r, f, false);
		if (kafka_reader_failed(r))
			return -1;
		char *name = kafka_str_dup(id);
		int16_t err;
		pthread_mutex_lock(&g->lock);
		struct group *gr = group_find(g, id);
		if (!name || id.len == 0) {
			err = KERR_INVALID_GROUP_ID;
		} else if (!kafka_conn_allows_group(req->c, KACL_DELETE, id)) {
			err = KERR_GROUP_AUTHORIZATION_FAILED;
		} else if (gr && gr->members) {
			err = KERR_NON_EMPTY_GROUP;
		} else {
			int rc = engine_group_delete(req->l->e, name);
			err = rc == -ENOENT ? KERR_GROUP_ID_NOT_FOUND : kafka_error_from(rc);
		}
		pthread_mutex_unlock(&g->lock);
		free(name);
		kafka_write_str(w, f, id);
		kafka_write_i16(w, err);
		if (f)
			kafka_write_tags(w);
	}
	if (f)
		kafka_write_tags(w);
	return 0;
}

/* Does a member of gr subscribe to topic? The consumer protocol's
 * subscription (the member's metadata of the chosen protocol, else of its
 * first): Version int16, Topics [string], then fields not read here. */
static bool group_subscribes(const struct group *gr, const char *topic)
{
	for (const struct member *m = gr->members; m; m = m->next) {
		const struct protocol *p = member_protocol(m, gr->protocol);
		if (!p && m->nprotocols > 0)
			p = &m->protocols[0];
		if (!p)
			continue;
		struct kafka_reader sr;
		kafka_reader_init(&sr, p->meta, (size_t)p->meta_len);
		(void)kafka_read_i16(&sr);
		int32_t nt = kafka_read_array(&sr, false, false, 2);
		for (int32_t t = 0; t < nt && !kafka_reader_failed(&sr); t++)
			if (kafka_str_eq(kafka_read_string(&sr, false, false), topic))
				return true;
	}
	return false;
}

/* One partition of an OffsetDelete request. */
struct offset_delete_part {
	struct kafka_str topic;
	int32_t index;
	int16_t err;
};

/* OffsetDeleteRequest v0: GroupId, Topics [Name, Partitions
 * [PartitionIndex]].
 * OffsetDeleteResponse v0: ErrorCode, ThrottleTimeMs, Topics [Name,
 * Partitions [PartitionIndex, ErrorCode]]. Top-level 30
 * GROUP_AUTHORIZATION_FAILED without the delete ACL on the group (and
 * nothing forgotten), 69 GROUP_ID_NOT_FOUND
 * (neither members nor offsets), 68 NON_EMPTY_GROUP (members, not a
 * consumer group); per partition 86 GROUP_SUBSCRIBED_TO_TOPIC, 3 for an
 * unknown topic or partition. The rest are forgotten in one engine call
 * (one metadata-log write); a partition with nothing committed is 0. */
int kafka_handle_offset_delete(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	struct kafka_groups *g = req->l->groups;
	struct offset_delete_part *parts = NULL;
	struct engine_offset_commit *c = NULL;
	size_t nparts = 0, cap = 0, nc = 0;
	int16_t top = KERR_NONE;
	int ret = -1;

	struct kafka_str group_id = kafka_read_string(r, false, false);
	int32_t ntopics = kafka_read_array(r, false, false, 6);
	if (kafka_reader_failed(r))
		return -1;
	struct offset_delete_part *tops = calloc((size_t)ntopics + 1, sizeof(*tops));
	if (!tops)
		return -1;
	for (int32_t t = 0; t < ntopics; t++) {
		struct kafka_str name = kafka_read_string(r, false, false);
		int32_t np = kafka_read_array(r, false, false, 4);
		if (kafka_reader_failed(r))
			goto out;
		tops[t].topic = name;
		tops[t].index = np; /* the topic's partition count */
		for (int32_t i = 0; i < np; i++) {
			if (nparts == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct offset_delete_part *v = realloc(parts, ncap * sizeof(*v));
				if (!v)
					goto out;
				parts = v;
				cap = ncap;
			}
			parts[nparts].topic = name;
			parts[nparts].index = kafka_read_i32(r);
			parts[nparts].err = KERR_NONE;
			nparts++;
		}
		if (kafka_reader_failed(r))
			goto out;
	}
	c = calloc(nparts + 1, sizeof(*c));
	char *group = kafka_str_dup(group_id);
	if (!c || !group) {
		free(group);
		goto out;
	}

	pthread_mutex_lock(&g->lock);
	struct group *gr = group_find(g, group_id);
	bool members = gr && gr->members;
	bool consumer = !members || !gr->protocol_type || !gr->protocol_type[0] ||
			strcmp(gr->protocol_type, "consumer") == 0;
	if (group_id.len == 0)
		top = KERR_INVALID_GROUP_ID;
	else if (!kafka_conn_allows_group(req->c, KACL_DELETE, group_id))
		top = KERR_GROUP_AUTHORIZATION_FAILED;
	else if (members && !consumer)
		top = KERR_NON_EMPTY_GROUP;
	else if (!members && !group_has_offsets(req->l->e, group))
		top = KERR_GROUP_ID_NOT_FOUND;
	for (size_t i = 0; i < nparts && !top; i++) {
		char topic[250];
		int32_t count = 0;
		if (!kafka_topic_name_copy(parts[i].topic, topic) ||
		    engine_topic_partitions(req->l->e, topic, &count) != 0 || parts[i].index < 0 ||
		    parts[i].index >= count) {
			parts[i].err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		} else if (members && group_subscribes(gr, topic)) {
			parts[i].err = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
		} else {
			c[nc].topic = strdup(topic);
			c[nc].partition = parts[i].index;
			c[nc].offset = (int64_t)i; /* back to parts[] below */
			if (!c[nc].topic)
				parts[i].err = KERR_UNKNOWN_SERVER_ERROR;
			else
				nc++;
		}
	}
	if (!top && nc) {
		int rc = engine_group_offsets_delete(req->l->e, group, c, nc);
		for (size_t i = 0; i < nc; i++) {
			int prc = c[i].rc == -ENOENT ? 0 : c[i].rc; /* members, no offsets */
			parts[c[i].offset].err = c[i].rc == 0 ? KERR_NONE : kafka_error_from(prc);
		}
		(void)rc;
	}
	pthread_mutex_unlock(&g->lock);
	free(group);

	kafka_write_i16(w, top);
	kafka_write_i32(w, 0);
	if (top) {
		kafka_write_array(w, false, 0);
	} else {
		kafka_write_array(w, false, ntopics);
		size_t k = 0;
		for (int32_t t = 0; t < ntopics; t++) {
			kafka_write_str(w, false, tops[t].topic);
			kafka_write_array(w, false, tops[t].index);
			for (int32_t i = 0; i < tops[t].index; i++, k++) {
				kafka_write_i32(w, parts[k].index);
				kafka_write_i16(w, parts[k].err);
			}
		}
	}
	ret = 0;
out:
	for (size_t i = 0; c && i < nc; i++)
		free((char *)c[i].topic);
	free(c);
	free(parts);
	free(tops);
	return ret;
}
