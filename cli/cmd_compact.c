/* cmd_compact.c - chronik compact TOPIC[/PARTITION]: compact now.
 *
 * Opens the data directory as its writer (refused while chronikd or
 * another writer holds it), indexes what the WAL holds (engine_index_now),
 * then compacts the partition, or every partition of the topic when no
 * partition is given, by the topic's cleanup.policy (wal/compact.c). One
 * line per partition:
 *
 *   orders/0: segments 12 -> 1, records 120000 -> 1000, bytes 912345 -> 7600
 *
 * Exit status 0 once every partition is compacted (or had nothing to do).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_compact(struct cli *c, int argc, char **argv)
{
	const char *tp = NULL;
	char *topic = NULL;
	int32_t partition, from, to;
	char what[320];
	int ret, rc;

	for (int i = 0; i < argc;) {
		ret = cli_operand(c, argc, argv, &i, "compact", true,
				  "one TOPIC[/PARTITION] expected", &tp);
		if (ret)
			return ret;
	}
	if (!tp)
		return cli_usage_error("compact: missing TOPIC[/PARTITION]");
	ret = cli_parse_topic_partition(tp, &topic, &partition, what, sizeof(what));
	if (ret)
		return ret;
	ret = cli_engine_open(c, false);
	if (ret) {
		free(topic);
		return ret;
	}
	from = to = partition;
	if (!strchr(tp, '/')) {
		rc = engine_topic_partitions(c->engine, topic, &to);
		if (rc) {
			ret = cli_fail(topic, rc);
			goto out;
		}
		from = 0;
		to--;
	}
	rc = engine_index_now(c->engine);
	if (rc) {
		ret = cli_fail("indexing", rc);
		goto out;
	}
	for (int32_t i = from; i <= to; i++) {
		struct engine_compact_result res;
		struct partition *p;
		snprintf(what, sizeof(what), "%s/%d", topic, i);
		rc = engine_partition_get(c->engine, topic, i, &p);
		if (rc == 0) {
			rc = engine_partition_compact(p, &res);
			engine_partition_unref(p);
		}
		if (rc) {
			ret = cli_fail(what, rc);
			goto out;
		}
		printf("%s: segments %" PRIu64 " -> %" PRIu64 ", records %" PRIu64 " -> %" PRIu64
		       ", bytes %" PRIu64 " -> %" PRIu64 "\n",
		       what, res.segments_in, res.segments_out, res.records_in, res.records_out,
		       res.bytes_in, res.bytes_out);
	}
	if (fflush(stdout))
		ret = cli_fail("stdout", -errno);
out:
	free(topic);
	rc = cli_engine_close(c);
	return ret ? ret : rc;
}
