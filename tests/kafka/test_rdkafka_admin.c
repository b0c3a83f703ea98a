/* test_rdkafka_admin.c - librdkafka's Admin API against the listener: the
 * C library confluent-kafka-python's AdminClient wraps, whose calls
 * Debian's binding (1.7) does not all expose yet. Topics created with
 * configs, configs described and altered, partitions added, groups listed,
 * described, their offsets listed and deleted, the groups deleted, and
 * records deleted; each result is checked against what the broker then
 * serves (metadata, watermarks) and what `chronik info` / `chronik groups`
 * read from the data directory beside it.
 *
 * Usage: test_kafka_rdkafka_admin KAFKA_SERVER_BINARY CHRONIK_BINARY
 */
#include <librdkafka/rdkafka.h>

#include <json-c/json.h>

#include "kclient.h"

static struct kserver srv;
static const char *chronik_bin;
static char broker[64];

static rd_kafka_t *new_client(rd_kafka_type_t type, const char *group)
{
	char err[256];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_conf_set(c, "bootstrap.servers", broker, err, sizeof(err));
	rd_kafka_conf_set(c, "broker.address.family", "v4", err, sizeof(err));
	if (group) {
		rd_kafka_conf_set(c, "group.id", group, err, sizeof(err));
		rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err));
	}
	rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof(err));
	if (!rk)
		bail("rd_kafka_new: %s", err);
	return rk;
}

/* The result event of one admin call made on q, or NULL after 20 s. */
static rd_kafka_event_t *wait_result(rd_kafka_queue_t *q, rd_kafka_event_type_t type)
{
	for (int i = 0; i < 40; i++) {
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 500);
		if (!ev)
			continue;
		if (rd_kafka_event_type(ev) == type) {
			if (rd_kafka_event_error(ev))
				diag("admin call: %s", rd_kafka_event_error_string(ev));
			return ev;
		}
		rd_kafka_event_destroy(ev);
	}
	diag("no admin result of type %d", (int)type);
	return NULL;
}

/* The output of `chronik --data DIR ARGS...` parsed as JSON, or NULL. */
static json_object *chronik_json(const char *args)
{
	char cmd[1024], buf[65536];
	snprintf(cmd, sizeof(cmd), "'%s' --data '%s/data' %s", chronik_bin, srv.dir, args);
	FILE *f = popen(cmd, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	pclose(f);
	buf[n] = 0;
	json_object *o = json_tokener_parse(buf);
	if (!o)
		diag("%s printed: %.200s", cmd, buf);
	return o;
}

static int64_t json_int_at(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -99;
}

/* The value of config NAME of topic T as DescribeConfigs returns it, into
 * out (empty when absent or null). Returns the resource's error. */
static rd_kafka_resp_err_t describe(rd_kafka_t *rk, const char *t, const char *name, char *out,
				    size_t cap)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_ConfigResource_t *r = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t);
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
	out[0] = 0;
	rd_kafka_DescribeConfigs(rk, &r, 1, NULL, q);
	rd_kafka_event_t *ev = wait_result(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT);
	if (ev) {
		size_t nr = 0, nc = 0;
		const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(
			rd_kafka_event_DescribeConfigs_result(ev), &nr);
		err = nr == 1 ? rd_kafka_ConfigResource_error(rs[0]) : rd_kafka_event_error(ev);
		const rd_kafka_ConfigEntry_t **cs =
			nr == 1 ? rd_kafka_ConfigResource_configs(rs[0], &nc) : NULL;
		for (size_t i = 0; i < nc; i++)
			if (!strcmp(rd_kafka_ConfigEntry_name(cs[i]), name) &&
			    rd_kafka_ConfigEntry_value(cs[i]))
				snprintf(out, cap, "%s", rd_kafka_ConfigEntry_value(cs[i]));
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_ConfigResource_destroy(r);
	rd_kafka_queue_destroy(q);
	return err;
}

/* AlterConfigs (legacy: it replaces the topic's settable keys) of topic
 * "adm" with the NULL-terminated KEY, VALUE pairs kv. Returns the
 * resource's error. */
static rd_kafka_resp_err_t alter(rd_kafka_t *rk, const char *const *kv)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_ConfigResource_t *r = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, "adm");
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
	for (int i = 0; kv[i]; i += 2)
		rd_kafka_ConfigResource_set_config(r, kv[i], kv[i + 1]);
	rd_kafka_AlterConfigs(rk, &r, 1, NULL, q);
	rd_kafka_event_t *ev = wait_result(q, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT);
	if (ev) {
		size_t n = 0;
		const rd_kafka_ConfigResource_t **rs = rd_kafka_AlterConfigs_result_resources(
			rd_kafka_event_AlterConfigs_result(ev), &n);
		err = n == 1 ? rd_kafka_ConfigResource_error(rs[0]) : rd_kafka_event_error(ev);
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_ConfigResource_destroy(r);
	rd_kafka_queue_destroy(q);
	return err;
}

/* CreatePartitions of "adm" to count; the topic's error. */
static rd_kafka_resp_err_t create_partitions(rd_kafka_t *rk, int count)
{
	char err[256];
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new("adm", count, err, sizeof(err));
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
	rd_kafka_CreatePartitions(rk, &np, 1, NULL, q);
	rd_kafka_event_t *ev = wait_result(q, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT);
	if (ev) {
		size_t n = 0;
		const rd_kafka_topic_result_t **tr = rd_kafka_CreatePartitions_result_topics(
			rd_kafka_event_CreatePartitions_result(ev), &n);
		e = n == 1 ? rd_kafka_topic_result_error(tr[0]) : rd_kafka_event_error(ev);
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_NewPartitions_destroy(np);
	rd_kafka_queue_destroy(q);
	return e;
}

static void test_topics_and_configs(rd_kafka_t *rk)
{
	char err[256], v[128];
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);

	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new("adm", 2, -1, err, sizeof(err));
	if (!nt)
		bail("NewTopic: %s", err);
	rd_kafka_NewTopic_set_config(nt, "retention.ms", "3600000");
	rd_kafka_NewTopic_set_config(nt, "compression.type", "zstd");
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = wait_result(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT);
	size_t n = 0;
	const rd_kafka_topic_result_t **tr =
		ev ? rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n)
		   : NULL;
	ok(n == 1 && rd_kafka_topic_result_error(tr[0]) == 0,
	   "CreateTopics adm (2 partitions, retention.ms, compression.type): %s",
	   n == 1 ? rd_kafka_err2str(rd_kafka_topic_result_error(tr[0])) : "no result");
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);

	ok(describe(rk, "adm", "retention.ms", v, sizeof(v)) == 0 && !strcmp(v, "3600000"),
	   "DescribeConfigs: retention.ms is the created 3600000 (%s)", v);
	describe(rk, "adm", "compression.type", v, sizeof(v));
	ok(!strcmp(v, "zstd"), "DescribeConfigs: compression.type zstd (%s)", v);
	describe(rk, "adm", "cleanup.policy", v, sizeof(v));
	ok(!strcmp(v, "delete"), "DescribeConfigs: cleanup.policy defaults to delete (%s)", v);

	static const char *const compact[] = { "cleanup.policy", "compact", "retention.bytes",
					       "1048576", NULL };
	rd_kafka_resp_err_t e = alter(rk, compact);
	ok(e == 0, "AlterConfigs adm: %s", rd_kafka_err2str(e));
	describe(rk, "adm", "cleanup.policy", v, sizeof(v));
	ok(!strcmp(v, "compact"), "after AlterConfigs cleanup.policy is compact (%s)", v);
	describe(rk, "adm", "retention.bytes", v, sizeof(v));
	ok(!strcmp(v, "1048576"), "after AlterConfigs retention.bytes is 1048576 (%s)", v);
	describe(rk, "adm", "retention.ms", v, sizeof(v));
	ok(!strcmp(v, "-1"), "a key AlterConfigs did not name returns to its default (%s)", v);

	/* An unknown key: INVALID_CONFIG, nothing changed. */
	static const char *const unknown[] = { "no.such.key", "1", NULL };
	e = alter(rk, unknown);
	ok(e == RD_KAFKA_RESP_ERR_INVALID_CONFIG,
	   "AlterConfigs of an unknown key gets INVALID_CONFIG: %s", rd_kafka_err2str(e));
	describe(rk, "adm", "cleanup.policy", v, sizeof(v));
	ok(!strcmp(v, "compact"), "and changed nothing (%s)", v);

	/* Back to delete, so DeleteRecords below acts on a plain log. */
	static const char *const del[] = { "cleanup.policy", "delete", NULL };
	if (alter(rk, del))
		diag("AlterConfigs back to delete failed");

	/* CreatePartitions raises the count; lowering it is refused. */
	e = create_partitions(rk, 3);
	ok(e == 0, "CreatePartitions adm to 3: %s", rd_kafka_err2str(e));
	json_object *info = chronik_json("info adm/2");
	ok(json_int_at(info, "partition") == 2, "chronik info shows partition adm/2");
	json_object_put(info);
	e = create_partitions(rk, 2);
	ok(e == RD_KAFKA_RESP_ERR_INVALID_PARTITIONS,
	   "CreatePartitions to fewer gets INVALID_PARTITIONS: %s", rd_kafka_err2str(e));
}

static void produce(int n)
{
	rd_kafka_t *p = new_client(RD_KAFKA_PRODUCER, NULL);
	int errors = 0;
	for (int i = 0; i < n; i++) {
		char val[32];
		snprintf(val, sizeof(val), "rec-%d", i);
		if (rd_kafka_producev(p, RD_KAFKA_V_TOPIC("adm"), RD_KAFKA_V_PARTITION(0),
				      RD_KAFKA_V_VALUE(val, strlen(val)),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
			errors++;
	}
	ok(errors == 0 && rd_kafka_flush(p, 20000) == 0, "%d records produced to adm/0", n);
	rd_kafka_destroy(p);
}

/* Commit OFFSET for adm/0 and adm/1 in GROUP, as a consumer outside any
 * generation (the way an admin tool or a standalone consumer commits). */
static void commit(const char *group, int64_t offset)
{
	rd_kafka_t *k = new_client(RD_KAFKA_CONSUMER, group);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
	rd_kafka_topic_partition_list_add(l, "adm", 0)->offset = offset;
	rd_kafka_topic_partition_list_add(l, "adm", 1)->offset = 0;
	rd_kafka_resp_err_t e = rd_kafka_commit(k, l, 0);
	ok(e == 0, "group %s commits adm/0 at %lld: %s", group, (long long)offset,
	   rd_kafka_err2str(e));
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_consumer_close(k);
	rd_kafka_destroy(k);
}

static int listed(rd_kafka_t *rk, const char *group)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	int found = -1;
	rd_kafka_ListConsumerGroups(rk, NULL, q);
	rd_kafka_event_t *ev = wait_result(q, RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT);
	if (ev) {
		size_t n = 0;
		const rd_kafka_ConsumerGroupListing_t **gs = rd_kafka_ListConsumerGroups_result_valid(
			rd_kafka_event_ListConsumerGroups_result(ev), &n);
		found = 0;
		for (size_t i = 0; i < n; i++)
			if (!strcmp(rd_kafka_ConsumerGroupListing_group_id(gs[i]), group))
				found = 1;
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_queue_destroy(q);
	return found;
}

static void test_groups(rd_kafka_t *rk)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	commit("admg", 7);
	ok(listed(rk, "admg") == 1, "ListConsumerGroups lists admg");

	const char *names[] = { "admg" };
	rd_kafka_DescribeConsumerGroups(rk, names, 1, NULL, q);
	rd_kafka_event_t *ev = wait_result(q, RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT);
	size_t n = 0;
	const rd_kafka_ConsumerGroupDescription_t **ds =
		ev ? rd_kafka_DescribeConsumerGroups_result_groups(
			     rd_kafka_event_DescribeConsumerGroups_result(ev), &n)
		   : NULL;
	ok(n == 1 && !rd_kafka_ConsumerGroupDescription_error(ds[0]) &&
		   rd_kafka_ConsumerGroupDescription_state(ds[0]) ==
			   RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY &&
		   rd_kafka_ConsumerGroupDescription_member_count(ds[0]) == 0,
	   "DescribeConsumerGroups admg: Empty, no members (state %s)",
	   n == 1 ? rd_kafka_consumer_group_state_name(
			    rd_kafka_ConsumerGroupDescription_state(ds[0]))
		  : "no result");
	if (ev)
		rd_kafka_event_destroy(ev);

	/* Its committed offsets, as the Admin API and `chronik groups` see them. */
	rd_kafka_ListConsumerGroupOffsets_t *lo = rd_kafka_ListConsumerGroupOffsets_new("admg", NULL);
	rd_kafka_ListConsumerGroupOffsets(rk, &lo, 1, NULL, q);
	ev = wait_result(q, RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT);
	n = 0;
	const rd_kafka_group_result_t **gr =
		ev ? rd_kafka_ListConsumerGroupOffsets_result_groups(
			     rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n)
		   : NULL;
	int64_t at0 = -99;
	const rd_kafka_topic_partition_list_t *pl = n == 1 ? rd_kafka_group_result_partitions(gr[0])
							   : NULL;
	for (int i = 0; pl && i < pl->cnt; i++)
		if (!strcmp(pl->elems[i].topic, "adm") && pl->elems[i].partition == 0)
			at0 = pl->elems[i].offset;
	ok(at0 == 7, "ListConsumerGroupOffsets admg: adm/0 at 7 (%lld)", (long long)at0);
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_ListConsumerGroupOffsets_destroy(lo);
	json_object *g = chronik_json("groups admg --json");
	ok(json_int_at(g, "lag") == 50 - 7, "chronik groups admg: lag %lld = 50 - 7",
	   (long long)json_int_at(g, "lag"));
	json_object_put(g);

	/* OffsetDelete of adm/1 leaves adm/0's. */
	rd_kafka_topic_partition_list_t *dl = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(dl, "adm", 1);
	rd_kafka_DeleteConsumerGroupOffsets_t *dco =
		rd_kafka_DeleteConsumerGroupOffsets_new("admg", dl);
	rd_kafka_DeleteConsumerGroupOffsets(rk, &dco, 1, NULL, q);
	ev = wait_result(q, RD_KAFKA_EVENT_DELETECONSUMERGROUPOFFSETS_RESULT);
	n = 0;
	gr = ev ? rd_kafka_DeleteConsumerGroupOffsets_result_groups(
			  rd_kafka_event_DeleteConsumerGroupOffsets_result(ev), &n)
		: NULL;
	pl = n == 1 ? rd_kafka_group_result_partitions(gr[0]) : NULL;
	ok(n == 1 && !rd_kafka_group_result_error(gr[0]) && pl && pl->cnt == 1 &&
		   pl->elems[0].err == 0,
	   "DeleteConsumerGroupOffsets admg adm/1");
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_DeleteConsumerGroupOffsets_destroy(dco);
	rd_kafka_topic_partition_list_destroy(dl);
	g = chronik_json("groups admg --json");
	json_object *parts = NULL;
	int with_offset = 0;
	if (g && json_object_object_get_ex(g, "partitions", &parts))
		for (size_t i = 0; i < json_object_array_length(parts); i++)
			if (json_int_at(json_object_array_get_idx(parts, i), "committed_offset") >= 0)
				with_offset++;
	ok(with_offset == 1, "chronik groups admg shows one committed partition left (%d)",
	   with_offset);
	json_object_put(g);

	/* DeleteGroups: gone from the list; an unknown group gets its error. */
	rd_kafka_DeleteGroup_t *dg[2] = { rd_kafka_DeleteGroup_new("admg"),
					  rd_kafka_DeleteGroup_new("admghost") };
	rd_kafka_DeleteGroups(rk, dg, 2, NULL, q);
	ev = wait_result(q, RD_KAFKA_EVENT_DELETEGROUPS_RESULT);
	n = 0;
	gr = ev ? rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n)
		: NULL;
	int deleted = 0, ghost = 0;
	for (size_t i = 0; i < n; i++) {
		const rd_kafka_error_t *e = rd_kafka_group_result_error(gr[i]);
		if (!strcmp(rd_kafka_group_result_name(gr[i]), "admg"))
			deleted = e == NULL;
		else
			ghost = e && rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND;
	}
	ok(deleted, "DeleteGroups admg");
	ok(ghost, "DeleteGroups of an unknown group gets GROUP_ID_NOT_FOUND");
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_DeleteGroup_destroy_array(dg, 2);
	ok(listed(rk, "admg") == 0, "ListConsumerGroups no longer lists admg");
	rd_kafka_queue_destroy(q);
}

/* DeleteRecords of adm/0 before OFFSET: the error and the new low
 * watermark the result gives. */
static rd_kafka_resp_err_t delete_records(rd_kafka_t *rk, int64_t offset, int64_t *low)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, "adm", 0)->offset = offset;
	rd_kafka_DeleteRecords_t *d = rd_kafka_DeleteRecords_new(l);
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
	*low = -99;
	rd_kafka_DeleteRecords(rk, &d, 1, NULL, q);
	rd_kafka_event_t *ev = wait_result(q, RD_KAFKA_EVENT_DELETERECORDS_RESULT);
	if (ev) {
		const rd_kafka_topic_partition_list_t *r =
			rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
		err = rd_kafka_event_error(ev);
		if (r && r->cnt == 1) {
			err = r->elems[0].err;
			*low = r->elems[0].offset;
		}
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_DeleteRecords_destroy(d);
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_queue_destroy(q);
	return err;
}

static void test_delete_records(rd_kafka_t *rk)
{
	int64_t low, lo = -1, hi = -1;
	rd_kafka_resp_err_t e = delete_records(rk, 20, &low);
	ok(e == 0 && low == 20, "DeleteRecords adm/0 before 20: low watermark %lld (%s)",
	   (long long)low, rd_kafka_err2str(e));
	e = rd_kafka_query_watermark_offsets(rk, "adm", 0, &lo, &hi, 10000);
	ok(e == 0 && lo == 20 && hi == 50, "the broker's watermarks are then 20..50 (%lld..%lld)",
	   (long long)lo, (long long)hi);
	json_object *info = chronik_json("info adm/0");
	ok(json_int_at(info, "log_start_offset") == 20, "chronik info: log_start_offset 20 (%lld)",
	   (long long)json_int_at(info, "log_start_offset"));
	json_object_put(info);

	e = delete_records(rk, 51, &low);
	ok(e == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE,
	   "DeleteRecords above the high watermark gets OFFSET_OUT_OF_RANGE (%s)",
	   rd_kafka_err2str(e));
	e = delete_records(rk, 10, &low);
	ok(e == 0 && low == 20, "DeleteRecords below the log start changes nothing (%lld, %s)",
	   (long long)low, rd_kafka_err2str(e));
	e = delete_records(rk, RD_KAFKA_OFFSET_END, &low);
	ok(e == 0 && low == 50, "DeleteRecords to the high watermark (-1): low %lld (%s)",
	   (long long)low, rd_kafka_err2str(e));

	/* Survives a restart. */
	ok(kserver_stop(&srv) == 0, "server stopped cleanly");
	const char *args[] = { "--partitions", "1", NULL };
	kserver_start(&srv, srv.bin, args);
	snprintf(broker, sizeof(broker), "127.0.0.1:%d", srv.port);
	rd_kafka_t *again = new_client(RD_KAFKA_PRODUCER, NULL);
	e = rd_kafka_query_watermark_offsets(again, "adm", 0, &lo, &hi, 10000);
	ok(e == 0 && lo == 50 && hi == 50, "after a restart the watermarks are 50..50 (%lld..%lld)",
	   (long long)lo, (long long)hi);
	rd_kafka_destroy(again);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		bail("usage: %s KAFKA_SERVER_BINARY CHRONIK_BINARY", argv[0]);
	chronik_bin = argv[2];
	tap_plan(33);
	const char *args[] = { "--partitions", "1", NULL };
	kserver_start(&srv, argv[1], args);
	snprintf(broker, sizeof(broker), "127.0.0.1:%d", srv.port);

	rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, NULL);
	test_topics_and_configs(rk);
	produce(50);
	test_groups(rk);
	test_delete_records(rk);
	rd_kafka_destroy(rk);
	ok(kserver_alive(&srv), "server alive");
	kserver_cleanup(&srv);
	return tap_exit();
}
