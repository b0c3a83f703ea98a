/* cmd_groups.c - chronik groups [GROUP] [--json]: consumer-group lag.
 *
 * For every group with committed offsets (or only GROUP), every partition
 * it has committed an offset for: the committed offset, the partition's
 * high watermark and the lag (engine_group_lag_json, wal/group_lag.c; the
 * mount's .groups/<group>.json is the same JSON). Text output, one line
 * per partition, columns separated by single spaces:
 *
 *   GROUP TOPIC PARTITION COMMITTED HIGH_WATERMARK LAG
 *
 * --json prints one object per group instead, one per line, as
 * wal/group_lag.c states it.
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
	char **groups = NULL;
	size_t ngroups = 0;
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
	if (rc) {
		status = cli_fail("groups", rc);
		goto out;
	}
	bool found = false;
	for (size_t i = 0; i < ngroups; i++) {
		if (only && strcmp(only, groups[i]) != 0)
			continue;
		found = true;
		char *text = NULL;
		rc = engine_group_lag_json(c->engine, groups[i], &text);
		if (rc == -ENOENT)
			continue; /* deleted meanwhile */
		if (rc) {
			status = cli_fail("groups", rc);
			goto out;
		}
		if (json) {
			puts(text);
		} else {
			struct json_object *g = json_tokener_parse(text);
			if (!g) {
				free(text);
				status = cli_fail("groups", -ENOMEM);
				goto out;
			}
			print_text(g);
			json_object_put(g);
		}
		free(text);
	}
	if (only && !found) {
		fprintf(stderr, "chronik: groups: %s: no committed offsets\n", only);
		status = CLI_EXIT_FAIL;
	}
	if (fflush(stdout))
		status = cli_fail("stdout", -errno);
out:
	engine_strv_free(groups, ngroups);
	rc = cli_engine_close(c);
	return status ? status : rc;
}
