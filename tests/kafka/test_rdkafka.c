/* test_rdkafka.c - librdkafka against the listener: an idempotent producer
 * with acks=all, then a consumer in a subscribed group; every record and
 * every offset is checked against the delivery reports.
 *
 * Usage: test_kafka_rdkafka KAFKA_SERVER_BINARY
 */
#include <librdkafka/rdkafka.h>

#include "kclient.h"

#define N_MSGS 3000
#define N_PARTS 3

static struct kserver srv;

struct delivered {
	int32_t partition;
	int64_t offset;
	int seen; /* consumed count */
};
static struct delivered dr[N_MSGS];
static int dr_ok, dr_failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	intptr_t i = (intptr_t)m->_private;
	if (m->err || i < 0 || i >= N_MSGS) {
		if (dr_failed++ < 5)
			diag("delivery failed: %s", rd_kafka_err2str(m->err));
		return;
	}
	dr[i].partition = m->partition;
	dr[i].offset = m->offset;
	dr_ok++;
}

static rd_kafka_conf_t *base_conf(const char *broker)
{
	char err[256];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_conf_set(c, "bootstrap.servers", broker, err, sizeof(err));
	rd_kafka_conf_set(c, "broker.address.family", "v4", err, sizeof(err));
	return c;
}

static void test_produce(const char *broker)
{
	char err[256];
	rd_kafka_conf_t *c = base_conf(broker);
	int ok_conf = rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err)) ==
			      RD_KAFKA_CONF_OK &&
		      rd_kafka_conf_set(c, "acks", "all", err, sizeof(err)) == RD_KAFKA_CONF_OK &&
		      rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof(err)) ==
			      RD_KAFKA_CONF_OK &&
		      rd_kafka_conf_set(c, "compression.codec", "lz4", err, sizeof(err)) ==
			      RD_KAFKA_CONF_OK;
	ok(ok_conf, "producer configured: idempotence, acks=all, lz4");
	rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
	rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
	if (!p)
		bail("rd_kafka_new: %s", err);

	int produce_errors = 0;
	for (int i = 0; i < N_MSGS; i++) {
		char key[32], val[64];
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "value-%d", i);
		dr[i].offset = -1;
		rd_kafka_resp_err_t e;
		while ((e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC("rdk"),
					      RD_KAFKA_V_KEY(key, strlen(key)),
					      RD_KAFKA_V_VALUE(val, strlen(val)),
					      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					      RD_KAFKA_V_OPAQUE((void *)(intptr_t)i),
					      RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(p, 10);
		if (e)
			produce_errors++;
	}
	ok(produce_errors == 0, "%d records queued", N_MSGS);
	rd_kafka_resp_err_t fe = rd_kafka_flush(p, 60000);
	ok(fe == 0 && dr_ok == N_MSGS && dr_failed == 0,
	   "every record delivered (%d ok, %d failed)", dr_ok, dr_failed);

	/* Per partition, the delivered offsets are exactly 0..n-1. */
	int count[N_PARTS] = { 0 };
	int64_t sum[N_PARTS] = { 0 };
	int bad_part = 0;
	for (int i = 0; i < N_MSGS; i++) {
		if (dr[i].partition < 0 || dr[i].partition >= N_PARTS) {
			bad_part++;
			continue;
		}
		count[dr[i].partition]++;
		sum[dr[i].partition] += dr[i].offset;
	}
	int dense = !bad_part;
	for (int k = 0; k < N_PARTS; k++)
		dense = dense && sum[k] == (int64_t)count[k] * (count[k] - 1) / 2;
	ok(dense, "delivered offsets are dense per partition (%d/%d/%d)", count[0], count[1],
	   count[2]);
	ok(count[0] > 0 && count[1] > 0 && count[2] > 0, "keys spread over the 3 partitions");
	rd_kafka_destroy(p);
}

static void test_consume(const char *broker)
{
	char err[256];
	rd_kafka_conf_t *c = base_conf(broker);
	rd_kafka_conf_set(c, "group.id", "rdk-group", err, sizeof(err));
	rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof(err));
	rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err));
	rd_kafka_conf_set(c, "session.timeout.ms", "6000", err, sizeof(err));
	rd_kafka_t *k = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
	if (!k)
		bail("rd_kafka_new consumer: %s", err);
	rd_kafka_poll_set_consumer(k);
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, "rdk", RD_KAFKA_PARTITION_UA);
	ok(rd_kafka_subscribe(k, sub) == 0, "consumer subscribed to rdk in group rdk-group");
	rd_kafka_topic_partition_list_destroy(sub);

	int got = 0, mismatched = 0, dup = 0, errors = 0;
	time_t until = time(NULL) + 60;
	while (got < N_MSGS && time(NULL) < until) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(k, 500);
		if (!m)
			continue;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && errors++ < 5)
				diag("consume error: %s", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		int i = -1;
		char key[32], want[64];
		if (m->key_len > 1 && m->key_len < sizeof(key)) {
			memcpy(key, m->key, m->key_len);
			key[m->key_len] = 0;
			i = atoi(key + 1);
		}
		if (i < 0 || i >= N_MSGS) {
			mismatched++;
		} else {
			snprintf(want, sizeof(want), "value-%d", i);
			if (m->len != strlen(want) || memcmp(m->payload, want, m->len) != 0 ||
			    m->partition != dr[i].partition || m->offset != dr[i].offset)
				mismatched++;
			if (dr[i].seen++)
				dup++;
		}
		got++;
		rd_kafka_message_destroy(m);
	}
	ok(got == N_MSGS, "consumed %d of %d records", got, N_MSGS);
	ok(mismatched == 0 && dup == 0,
	   "every record has its value, partition and offset (%d mismatched, %d duplicates)",
	   mismatched, dup);
	ok(errors == 0, "no consume errors");

	rd_kafka_resp_err_t ce = rd_kafka_commit(k, NULL, 0);
	ok(ce == 0, "synchronous commit: %s", rd_kafka_err2str(ce));
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(N_PARTS);
	for (int p = 0; p < N_PARTS; p++)
		rd_kafka_topic_partition_list_add(parts, "rdk", p);
	rd_kafka_resp_err_t cf = rd_kafka_committed(k, parts, 10000);
	int64_t total = 0;
	for (int p = 0; p < parts->cnt; p++)
		total += parts->elems[p].offset > 0 ? parts->elems[p].offset : 0;
	ok(cf == 0 && total == N_MSGS, "committed offsets add up to %lld", (long long)total);
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(k);
	rd_kafka_destroy(k);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		tap_skip_all("no kafka_server binary given");
	static const char *const args[] = { "--partitions", "3", NULL };
	kserver_start(&srv, argv[1], args);
	char broker[64];
	snprintf(broker, sizeof(broker), "127.0.0.1:%d", srv.port);
	diag("librdkafka %s", rd_kafka_version_str());

	test_produce(broker);
	test_consume(broker);
	ok(kserver_stop(&srv) == 0, "server stops cleanly");
	kserver_cleanup(&srv);
	return tap_exit();
}
