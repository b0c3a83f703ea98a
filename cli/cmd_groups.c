/* cmd_groups.c - chronik groups [GROUP] [--json]: consumer-group lag.
 *
 * For every group with committed offsets (or only GROUP), every partition
 * it has committed an offset for: the committed offset, the partition's
 * high watermark (its next offset, as Kafka's ListOffsets latest answers)
 * and the lag, as Kafka's consumer-group tooling computes it: high
 * watermark minus committed offset, never below 0. Text output, one line
 * per partition, columns separated by single spaces:
 *
 *   GROUP TOPIC PARTITION COMMITTED HIGH_WATERMARK LAG
 *
 * --json prints one object per group instead, one per line:
 *   {"group": G, "lag": total, "partitions": [{"topic", "partition",
 *    "committed_offset", "high_watermark", "lag"}, ...]}
 * A GROUP with no committed offset is an error (exit 1). Membership lives
 * in the running daemon's memory and is not shown here.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"

/* The group's lag as a JSON object (caller puts it). NULL on ENOMEM. */
static struct json_object *group_lag(struct engine *e, const char *group, char **topics,
				     size_t ntopics)
{
	struct json_object *o = json_object_new_object(), *parts = json_object_new_array();
	int64_t total = 0;

	if (!o || !parts) {
		json_object_put(o);
		json_object_put(parts);
		return NULL;
	}
	for (size_t t = 0; t < ntopics; t++) {
		int32_t n = 0;
		if (engine_topic_partitions(e, topics[t], &n) != 0)
			continue;
		for (int32_t i = 0; i < n; i++) {
			int64_t committed = -1;
			char *md = NULL;
			struct partition *p = NULL;
			if (engine_group_offset_fetch(e, group, topics[t], i, &committed, &md) !=
				    0 ||
			    committed < 0) {
				free(md);
				continue;
			}
			free(md);
			if (engine_partition_get(e, topics[t], i, &p) != 0)
				continue;
			struct partition_info in;
			engine_partition_info(p, &in);
			engine_partition_unref(p);
			int64_t lag = in.next_offset > committed ? in.next_offset - committed : 0;
			total += lag;
			struct json_object *x = json_object_new_object();
			json_object_object_add(x, "topic", json_object_new_string(topics[t]));
			json_object_object_add(x, "partition", json_object_new_int(i));
			json_object_object_add(x, "committed_offset",
					       json_object_new_int64(committed));
			json_object_object_add(x, "high_watermark",
					       json_object_new_int64(in.next_offset));
			json_object_object_add(x, "lag", json_object_new_int64(lag));
			json_object_array_add(parts, x);
		}
	}
	json_object_object_add(o, "group", json_object_new_string(group));
	json_object_object_add(o, "lag", json_object_new_int64(total));
	json_object_object_add(o, "partitions", parts);
	return o;
}

static void print_text(struct json_object *g)
{
	struct json_object *parts = json_object_object_get(g, "partitions");
	const char *group = json_object_get_string(json_object_object_get(g, "group"));
	for (size_t i = 0; i < json_object_array_length(parts); i++) {
		struct json_object *x = json_object_array_get_idx(parts, i);
		printf("%s %s %d %" PRId64 " %" PRId64 " %" PRId64 "\n", group,
		       json_object_get_string(json_object_object_get(x, "topic")),
		       json_object_get_int(json_object_object_get(x, "partition")),
		       json_object_get_int64(json_object_object_get(x, "committed_offset")),
		       json_object_get_int64(json_object_object_get(x, "high_watermark")),
		       json_object_get_int64(json_object_object_get(x, "lag")));
	}
}

int cmd_groups(struct cli *c, int argc, char **argv)
{
	const char *only = NULL;
	bool json = false;
	char **groups = NULL, **topics = NULL;
	size_t ngroups = 0, ntopics = 0;
	int rc, status = CLI_EXIT_OK;

	for (int i = 0; i < argc;) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
			i++;
			continue;
		}
		rc = cli_operand(c, argc, argv, &i, "groups", true, "one group at most", &only);
		if (rc)
			return rc;
	}
	rc = cli_engine_open(c, true);
	if (rc)
		return rc;
	rc = engine_group_list(c->engine, &groups, &ngroups);
	if (rc == 0)
		rc = engine_topic_list(c->engine, &topics, &ntopics);
	if (rc) {
		status = cli_fail("groups", rc);
		goto out;
	}
	bool found = false;
	for (size_t i = 0; i < ngroups; i++) {
		if (only && strcmp(only, groups[i]) != 0)
			continue;
		found = true;
		struct json_object *g = group_lag(c->engine, groups[i], topics, ntopics);
		if (!g) {
			status = cli_fail("groups", -ENOMEM);
			goto out;
		}
		if (json)
			puts(json_object_to_json_string_ext(
				g, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		else
			print_text(g);
		json_object_put(g);
	}
	if (only && !found) {
		fprintf(stderr, "chronik: groups: %s: no committed offsets\n", only);
		status = CLI_EXIT_FAIL;
	}
	if (fflush(stdout))
		status = cli_fail("stdout", -errno);
out:
	engine_strv_free(groups, ngroups);
	engine_strv_free(topics, ntopics);
	rc = cli_engine_close(c);
	return status ? status : rc;
}
