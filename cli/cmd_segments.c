/* cmd_segments.c - chronik segments TOPIC/PARTITION: the partition's
 * segment registry, one line per segment, oldest first, after a line with
 * the partition's log start and what is still in the WAL:
 *
 *   topic_id: 3 log_start_offset: 0 next_offset: 5000 segments: 2
 *   segment_bytes: 9100 wal_bytes: 120 wal_batches: 1
 *   file: 00000000000000000000.seg base_offset: 0 last_offset: 2999
 *   records: 3000 batches: 2 raw_start: 0 raw_end: 36000 bytes: 6100
 *   min_timestamp: ... max_timestamp: ... wal_seq: 0
 *
 * (each entry on one line). The files are in
 * DATA/segments/<topic_id>/<partition>/.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cmd_segments(struct cli *c, int argc, char **argv)
{
	struct engine_segment_info *segs = NULL;
	struct partition_info info;
	struct partition *p;
	const char *tp = NULL;
	char *topic = NULL;
	int32_t partition;
	char what[320];
	size_t n = 0;
	int ret, rc;

	for (int i = 0; i < argc;) {
		ret = cli_operand(c, argc, argv, &i, "segments", true,
				  "one TOPIC/PARTITION expected", &tp);
		if (ret)
			return ret;
	}
	if (!tp)
		return cli_usage_error("segments: missing TOPIC/PARTITION");
	ret = cli_parse_topic_partition(tp, &topic, &partition, what, sizeof(what));
	if (ret)
		return ret;
	ret = cli_partition_open(c, true, topic, partition, what, &p);
	free(topic);
	if (ret)
		return ret;
	engine_partition_info(p, &info);
	uint32_t topic_id = engine_partition_topic_id(p);
	rc = engine_partition_segments(p, &segs, &n);
	engine_partition_unref(p);
	if (rc) {
		cli_engine_close(c);
		return cli_fail(what, rc);
	}
	printf("topic_id: %" PRIu32 " log_start_offset: %" PRId64 " next_offset: %" PRId64
	       " segments: %zu"
	       " segment_bytes: %" PRIu64 " wal_bytes: %" PRIu64 " wal_batches: %" PRIu64 "\n",
	       topic_id, info.log_start_offset, info.next_offset, n, info.segment_bytes,
	       info.wal_bytes, info.batches);
	for (size_t i = 0; i < n; i++)
		printf("file: %s base_offset: %" PRId64 " last_offset: %" PRId64
		       " records: %" PRIu64 " batches: %" PRIu32 " raw_start: %" PRIu64
		       " raw_end: %" PRIu64 " bytes: %" PRIu64 " min_timestamp: %" PRId64
		       " max_timestamp: %" PRId64 " wal_seq: %" PRIu64 " where: %s%s%s\n",
		       segs[i].file, segs[i].base_offset, segs[i].last_offset, segs[i].records,
		       segs[i].batches, segs[i].raw_start, segs[i].raw_end, segs[i].bytes,
		       segs[i].min_timestamp, segs[i].max_timestamp, segs[i].wal_seq,
		       segs[i].remote ? "remote" : "local", segs[i].remote ? " remote_key: " : "",
		       segs[i].remote_key);
	free(segs);
	ret = fflush(stdout) ? cli_fail("stdout", -errno) : CLI_EXIT_OK;
	rc = cli_engine_close(c);
	return ret ? ret : rc;
}
