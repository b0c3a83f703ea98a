/* test_group.c - the group coordinator at the wire level, with two and three
 * members: the initial rebalance delay gathers members that join together,
 * the leader's SyncGroup assignment reaches the follower, Heartbeat answers
 * 22 for an old generation, 25 for an unknown member and 27 during a
 * rebalance, a member silent past its session timeout is evicted, empty
 * groups are freed so that more group ids than the table holds can come and
 * go, and a group whose members all expire while one waits in SyncGroup is
 * not freed under that waiter.
 *
 * Usage: test_kafka_group KAFKA_SERVER_BINARY
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "kclient.h"

static struct kserver srv;
static atomic_int corr = 100;

/* One member's view: its connection and what JoinGroup answered. */
struct member {
	int port;
	int fd;
	const char *group;
	int32_t session_ms;
	char id[256];
	int16_t err;
	int32_t generation;
	char leader[256];
	int32_t nmembers; /* members listed in the answer (leader only) */
};

static void str_copy(char *dst, size_t cap, struct kafka_str s)
{
	size_t n = s.len > 0 ? (size_t)s.len : 0;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s.ptr, n);
	dst[n] = 0;
}

/* JoinGroup v2 with m->id (empty: a new member); fills the answer. */
static void join(struct member *m)
{
	struct kafka_writer w;
	struct kafka_reader r;
	kafka_writer_init(&w, 0);
	kc_begin(&w, 11, 2, ++corr, 0);
	kafka_write_string(&w, false, m->group);
	kafka_write_i32(&w, m->session_ms);
	kafka_write_i32(&w, 10000);
	kafka_write_string(&w, false, m->id);
	kafka_write_string(&w, false, "consumer");
	kafka_write_array(&w, false, 1);
	kafka_write_string(&w, false, "range");
	kafka_write_bytes(&w, false, (const uint8_t *)"meta", 4);
	uint8_t *buf = kc_roundtrip(m->fd, &w, &r);
	kafka_read_i32(&r);
	m->err = kafka_read_i16(&r);
	m->generation = kafka_read_i32(&r);
	kafka_read_string(&r, false, false);
	str_copy(m->leader, sizeof(m->leader), kafka_read_string(&r, false, false));
	str_copy(m->id, sizeof(m->id), kafka_read_string(&r, false, false));
	m->nmembers = kafka_read_array(&r, false, false, 0);
	if (!buf || kafka_reader_failed(&r))
		m->err = -100;
	free(buf);
	kafka_writer_fini(&w);
}

static void *join_main(void *arg)
{
	join(arg);
	return NULL;
}

/* SyncGroup v1; as leader, assigns "for-<member id>" to each of ids.
 * Returns the error, the assignment in out. */
static int16_t sync_group(struct member *m, const char *const *ids, int n, char *out, size_t cap)
{
	struct kafka_writer w;
	struct kafka_reader r;
	char a[300];
	kafka_writer_init(&w, 0);
	kc_begin(&w, 14, 1, ++corr, 0);
	kafka_write_string(&w, false, m->group);
	kafka_write_i32(&w, m->generation);
	kafka_write_string(&w, false, m->id);
	kafka_write_array(&w, false, n);
	for (int i = 0; i < n; i++) {
		kafka_write_string(&w, false, ids[i]);
		snprintf(a, sizeof(a), "for-%s", ids[i]);
		kafka_write_bytes(&w, false, (const uint8_t *)a, (int32_t)strlen(a));
	}
	uint8_t *buf = kc_roundtrip(m->fd, &w, &r);
	kafka_read_i32(&r);
	int16_t err = kafka_read_i16(&r);
	str_copy(out, cap, kafka_read_bytes(&r, false, false));
	if (!buf || kafka_reader_failed(&r))
		err = -100;
	free(buf);
	kafka_writer_fini(&w);
	return err;
}

struct sync_call {
	struct member *m;
	int16_t err;
	char assignment[300];
};

static void *sync_main(void *arg)
{
	struct sync_call *s = arg;
	s->err = sync_group(s->m, NULL, 0, s->assignment, sizeof(s->assignment));
	return NULL;
}

/* Send the request in w (then freed) on m's connection; the error code
 * of an answer that is ThrottleTimeMs and ErrorCode (Heartbeat,
 * LeaveGroup v1), -100 on transport failure. */
static int16_t error_answer(struct member *m, struct kafka_writer *w)
{
	struct kafka_reader r;
	uint8_t *buf = kc_roundtrip(m->fd, w, &r);
	kafka_read_i32(&r);
	int16_t err = kafka_read_i16(&r);
	if (!buf || kafka_reader_failed(&r))
		err = -100;
	free(buf);
	kafka_writer_fini(w);
	return err;
}

static int16_t heartbeat(struct member *m, int32_t generation, const char *id)
{
	struct kafka_writer w;
	kafka_writer_init(&w, 0);
	kc_begin(&w, 12, 1, ++corr, 0);
	kafka_write_string(&w, false, m->group);
	kafka_write_i32(&w, generation);
	kafka_write_string(&w, false, id ? id : m->id);
	return error_answer(m, &w);
}

static int16_t leave(struct member *m)
{
	struct kafka_writer w;
	kafka_writer_init(&w, 0);
	kc_begin(&w, 13, 1, ++corr, 0);
	kafka_write_string(&w, false, m->group);
	kafka_write_string(&w, false, m->id);
	return error_answer(m, &w);
}

static void member_init(struct member *m, const char *group, int32_t session_ms)
{
	memset(m, 0, sizeof(*m));
	m->group = group;
	m->session_ms = session_ms;
	m->fd = kc_connect(srv.port, 30);
	if (m->fd < 0)
		bail("connect");
}

static void test_two_members(void)
{
	struct member a, b, c;
	pthread_t ta, tb, tc;
	char assignment[300];

	member_init(&a, "g2", 10000);
	member_init(&b, "g2", 1000);
	/* B joins 50 ms after A: the initial delay (300 ms) puts both in the
	 * first generation. */
	pthread_create(&ta, NULL, join_main, &a);
	usleep(50 * 1000);
	pthread_create(&tb, NULL, join_main, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ok(a.err == 0 && b.err == 0 && a.generation == b.generation && a.generation > 0,
	   "two members joining together land in one generation (%d %d, gen %d %d)", a.err, b.err,
	   a.generation, b.generation);
	ok(strcmp(a.leader, a.id) == 0 && strcmp(b.leader, a.id) == 0 && a.nmembers == 2 &&
		   b.nmembers == 0,
	   "the first to join leads; only the leader's answer lists the members (%d, %d)",
	   a.nmembers, b.nmembers);

	/* The follower's SyncGroup waits for the leader's assignment. */
	struct sync_call sb = { &b, -1, "" };
	pthread_create(&tb, NULL, sync_main, &sb);
	usleep(100 * 1000);
	const char *ids[2] = { a.id, b.id };
	int16_t ea = sync_group(&a, ids, 2, assignment, sizeof(assignment));
	pthread_join(tb, NULL);
	char want[300];
	snprintf(want, sizeof(want), "for-%s", b.id);
	ok(sb.err == 0 && strcmp(sb.assignment, want) == 0,
	   "the leader's assignment reaches the follower through SyncGroup (%d, '%s')", sb.err,
	   sb.assignment);
	snprintf(want, sizeof(want), "for-%s", a.id);
	ok(ea == 0 && strcmp(assignment, want) == 0, "and the leader gets its own");

	ok(heartbeat(&a, a.generation, NULL) == 0, "Heartbeat in the current generation: 0");
	int16_t e = heartbeat(&a, a.generation - 1, NULL);
	ok(e == 22, "Heartbeat with an old generation: 22 ILLEGAL_GENERATION (got %d)", e);
	e = heartbeat(&a, a.generation, "nobody");
	ok(e == 25, "Heartbeat of an unknown member: 25 UNKNOWN_MEMBER_ID (got %d)", e);

	/* B goes silent; A keeps heartbeating until the group rebalances. */
	int32_t gen1 = a.generation;
	e = 0;
	for (int i = 0; i < 50 && e == 0; i++) {
		usleep(200 * 1000);
		e = heartbeat(&a, gen1, NULL);
	}
	ok(e == 27, "once B is silent past its 1 s session, A's Heartbeat gets 27 (got %d)", e);
	join(&a);
	ok(a.err == 0 && a.generation > gen1 && a.nmembers == 1 && strcmp(a.leader, a.id) == 0,
	   "A rejoins into a new generation alone (gen %d, %d members)", a.generation, a.nmembers);
	e = heartbeat(&b, gen1, NULL);
	ok(e == 25, "the evicted member's Heartbeat gets 25 (got %d)", e);
	ok(sync_group(&a, ids, 1, assignment, sizeof(assignment)) == 0, "A syncs");

	/* A third member joins: A is told to rejoin, then both are in. */
	member_init(&c, "g2", 10000);
	int32_t gen2 = a.generation;
	pthread_create(&tc, NULL, join_main, &c);
	e = 0;
	for (int i = 0; i < 50 && e == 0; i++) {
		usleep(50 * 1000);
		e = heartbeat(&a, gen2, NULL);
	}
	ok(e == 27,
	   "while a new member waits to join, Heartbeat gets 27 REBALANCE_IN_PROGRESS (%d)", e);
	join(&a);
	pthread_join(tc, NULL);
	ok(a.err == 0 && c.err == 0 && a.generation == c.generation && a.generation > gen2 &&
		   a.nmembers == 2,
	   "A rejoins and both are in the next generation (gen %d/%d, %d members)", a.generation,
	   c.generation, a.nmembers);
	ok(leave(&c) == 0 && leave(&a) == 0, "both leave");
	close(a.fd);
	close(b.fd);
	close(c.fd);
}

/* The server runs with --max-groups 4: a fifth group with members is
 * refused, and groups that empty are freed so that many more can come and
 * go. */
static void test_many_groups(void)
{
	struct member held[4], m;
	char name[32];
	pthread_t th[4];

	usleep(300 * 1000); /* the timer frees g2, emptied above */
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "held-%d", i);
		member_init(&held[i], strdup(name), 30000);
		pthread_create(&th[i], NULL, join_main, &held[i]);
	}
	int all = 1;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		all = all && held[i].err == 0;
	}
	ok(all, "four groups with a member each");
	member_init(&m, "one-too-many", 30000);
	join(&m);
	ok(m.err == 15, "a fifth gets 15 COORDINATOR_NOT_AVAILABLE while the table is full (%d)",
	   m.err);
	ok(leave(&held[3]) == 0, "one member leaves its group");
	usleep(300 * 1000); /* the timer frees the empty group */

	int joined = 0, left = 0;
	for (int i = 0; i < 12; i++) {
		m.id[0] = 0;
		snprintf(name, sizeof(name), "churn-%d", i);
		m.group = name;
		join(&m);
		joined += m.err == 0;
		left += m.err == 0 && leave(&m) == 0;
		usleep(120 * 1000);
	}
	ok(joined == 12 && left == 12,
	   "twelve more group ids join and leave one after the other (%d joined, %d left)", joined,
	   left);
	close(m.fd);
	int16_t e = heartbeat(&held[0], held[0].generation, NULL);
	ok(e == 0 || e == 27, "a group that kept its member is still there (heartbeat %d)", e);
	for (int i = 0; i < 3; i++)
		leave(&held[i]);
	for (int i = 0; i < 4; i++) {
		close(held[i].fd);
		free((void *)held[i].group);
	}
}

/* Two members join; the follower waits in SyncGroup, the leader never
 * syncs, and both fall silent at once (the leader's last Heartbeat goes out
 * with the follower's SyncGroup, so both sessions end in the same
 * millisecond, hence in the same tick of the timer). The tick evicts both,
 * which empties the group; the group must outlive the follower's waiting
 * SyncGroup, which then answers 25 UNKNOWN_MEMBER_ID (or 27, should the two
 * sessions have ended in different ticks). Several groups at once, so
 * that the same-tick case is all but certain to happen at least once. */
#define EXPIRE_GROUPS 3
static void test_expire_while_syncing(void)
{
	struct member a[EXPIRE_GROUPS], b[EXPIRE_GROUPS];
	struct sync_call sb[EXPIRE_GROUPS];
	pthread_t ta[EXPIRE_GROUPS], tb[EXPIRE_GROUPS];
	char name[EXPIRE_GROUPS][32];

	/* the timer (a tick every 50 ms) frees the groups emptied above; a
	 * loaded machine's ticks come late, hence a second */
	usleep(1000 * 1000);
	for (int i = 0; i < EXPIRE_GROUPS; i++) {
		snprintf(name[i], sizeof(name[i]), "expire-%d", i);
		member_init(&a[i], name[i], 1000);
		member_init(&b[i], name[i], 1000);
		pthread_create(&ta[i], NULL, join_main, &a[i]);
		usleep(20 * 1000);
		pthread_create(&tb[i], NULL, join_main, &b[i]);
	}
	int joined = 1;
	for (int i = 0; i < EXPIRE_GROUPS; i++) {
		pthread_join(ta[i], NULL);
		pthread_join(tb[i], NULL);
		/* Which of the two leads depends on which join the server saw
		 * first, which a loaded machine may reorder: a names the leader. */
		if (strcmp(b[i].leader, b[i].id) == 0) {
			struct member t = a[i];
			a[i] = b[i];
			b[i] = t;
		}
		if (a[i].err != 0 || b[i].err != 0 || a[i].generation != b[i].generation ||
		    strcmp(a[i].leader, a[i].id) != 0 || strcmp(b[i].leader, a[i].id) != 0) {
			diag("group %s: joins answered %d/%d, generations %d/%d, leader %s/%s",
			     name[i], a[i].err, b[i].err, a[i].generation, b[i].generation,
			     a[i].leader, b[i].leader);
			joined = 0;
		}
	}
	ok(joined, "%d groups of two members each complete their first generation", EXPIRE_GROUPS);
	int beats = 1;
	for (int i = 0; i < EXPIRE_GROUPS; i++) {
		sb[i] = (struct sync_call){ &b[i], -1, "" };
		pthread_create(&tb[i], NULL, sync_main, &sb[i]);
		beats = beats && heartbeat(&a[i], a[i].generation, NULL) == 0;
	}
	ok(beats, "each follower waits in SyncGroup as its leader sends a last Heartbeat");
	int answered = 1;
	for (int i = 0; i < EXPIRE_GROUPS; i++) {
		pthread_join(tb[i], NULL);
		if (sb[i].err != 25 && sb[i].err != 27) {
			diag("group %s: SyncGroup answered %d", name[i], sb[i].err);
			answered = 0;
		}
	}
	ok(answered, "once both sessions end, each waiting SyncGroup is answered 25 or 27, "
		     "not dropped with the group");
	ok(kserver_alive(&srv), "the server survived the groups emptying under their waiters");
	for (int i = 0; i < EXPIRE_GROUPS; i++) {
		close(a[i].fd);
		close(b[i].fd);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2)
		tap_skip_all("no kafka_server binary given");
	static const char *const args[] = { "--max-groups", "4", NULL };
	kserver_start(&srv, argv[1], args);
	test_two_members();
	test_many_groups();
	test_expire_while_syncing();
	ok(kserver_alive(&srv), "the server is still running");
	ok(kserver_stop(&srv) == 0, "it stops cleanly on SIGTERM");
	kserver_cleanup(&srv);
	return tap_exit();
}
