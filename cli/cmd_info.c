/* cmd_info.c - chronik info [TOPIC/PARTITION] and chronik verify. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "frame.h"
#include "search.h"
#include "s3.h"

static int print_json_text(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	/* Pretty-print when the text parses; otherwise print it as given. */
	if (o) {
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_SPACED |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		puts(text);
	}
	return fflush(stdout) ? cli_fail("stdout", -errno) : 0;
}

static int partition_info_json(struct partition *p, char **out)
{
	struct partition_info in;
	struct json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	engine_partition_info(p, &in);
	json_object_object_add(o, "topic", json_object_new_string(engine_partition_topic(p)));
	json_object_object_add(o, "partition", json_object_new_int(engine_partition_index(p)));
	json_object_object_add(o, "log_start_offset", json_object_new_int64(in.log_start_offset));
	json_object_object_add(o, "next_offset", json_object_new_int64(in.next_offset));
	json_object_object_add(o, "records", json_object_new_uint64(in.records));
	json_object_object_add(o, "raw_start", json_object_new_uint64(in.raw_start));
	json_object_object_add(o, "raw_size", json_object_new_uint64(in.raw_size));
	json_object_object_add(o, "wal_bytes", json_object_new_uint64(in.wal_bytes));
	json_object_object_add(o, "batches", json_object_new_uint64(in.batches));
	json_object_object_add(o, "segments", json_object_new_uint64(in.segments));
	json_object_object_add(o, "segment_bytes", json_object_new_uint64(in.segment_bytes));
	{
		struct search_partition_stats ss;
		if (search_partition_stats(p, &ss) == 0) {
			json_object_object_add(o, "index_bytes",
					       json_object_new_uint64(ss.index_bytes));
			json_object_object_add(o, "unindexed_segments",
					       json_object_new_uint64(ss.unindexed_segments));
			json_object_object_add(o, "binary_values",
					       json_object_new_uint64(ss.binary_values));
		}
	}
	json_object_object_add(o, "max_timestamp", json_object_new_int64(in.max_timestamp));
	json_object_object_add(o, "mtime_ns", json_object_new_int64(in.mtime_ns));
	json_object_object_add(o, "ctime_ns", json_object_new_int64(in.ctime_ns));
	*out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return *out ? 0 : -ENOMEM;
}

int cmd_info(struct cli *c, int argc, char **argv)
{
	struct partition *p = NULL;
	const char *tp = NULL;
	char *topic = NULL, *json = NULL;
	int32_t partition = 0;
	char what[320];
	int ret, rc;

	for (int i = 0; i < argc;) {
		ret = cli_operand(c, argc, argv, &i, "info", false,
				  "at most one TOPIC/PARTITION expected", &tp);
		if (ret)
			return ret;
	}
	if (tp) {
		ret = cli_parse_topic_partition(tp, &topic, &partition, what, sizeof(what));
		if (ret)
			return ret;
	} else {
		snprintf(what, sizeof(what), "metadata");
	}
	ret = cli_engine_open(c, true);
	if (ret)
		goto free_topic;
	if (topic) {
		rc = engine_partition_get(c->engine, topic, partition, &p);
		if (rc == 0) {
			rc = partition_info_json(p, &json);
			engine_partition_unref(p);
		}
	} else {
		rc = engine_metadata_json(c->engine, &json);
	}
	if (rc < 0)
		ret = cli_fail(what, rc);
	else
		ret = print_json_text(json);
	free(json);
	rc = cli_engine_close(c);
	if (!ret)
		ret = rc;
free_topic:
	free(topic);
	return ret;
}

/* ---- verify ----------------------------------------------------------------- */

struct verify_walk {
	const char *path;
	unsigned problems;
};

static int verify_walk_frame(void *arg, uint64_t pos, enum frame_status st,
			     const struct frame_info *fi)
{
	struct verify_walk *w = arg;
	static const char *const names[] = {
		[FRAME_VALID] = "valid",
		[FRAME_SHORT] = "short frame (torn write)",
		[FRAME_INVALID] = "invalid frame (magic, length or CRC)",
		[FRAME_UNKNOWN_VERSION] = "unknown frame version",
	};

	(void)fi;
	if (st != FRAME_VALID) {
		fprintf(stderr, "chronik: verify: %s: position %" PRIu64 ": %s\n", w->path, pos,
			(unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?");
		w->problems++;
	}
	return 0;
}

static int wal_name_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 4 && !strcmp(d->d_name + n - 4, ".wal");
}

/* When the engine refuses to open a corrupt directory, walk its WAL files
 * to say where the damage is. Returns the number of problems found. */
static unsigned verify_walk_files(const char *data_dir)
{
	struct dirent **ents = NULL;
	unsigned problems = 0;
	char dir[4096];
	int n;

	snprintf(dir, sizeof(dir), "%s/wal", data_dir);
	n = scandir(dir, &ents, wal_name_filter, alphasort);
	if (n < 0)
		return 0;
	for (int k = 0; k < n; k++) {
		char path[4096 + 256];
		struct verify_walk w = { .path = path };
		int rc;

		snprintf(path, sizeof(path), "%s/%s", dir, ents[k]->d_name);
		rc = wal_file_walk(path, verify_walk_frame, &w);
		if (rc < 0 && !w.problems) {
			fprintf(stderr, "chronik: verify: %s: %s\n", path, chronik_strerror(rc));
			w.problems++;
		}
		problems += w.problems;
		free(ents[k]);
	}
	free(ents);
	return problems;
}

static void verify_problem(void *arg, const char *what)
{
	unsigned *count = arg;

	(*count)++;
	fprintf(stderr, "chronik: verify: %s\n", what);
}

/* Every registered segment's full-text index (search_index_verify): the
 * number of problems, or <0. A local segment with no index file is no
 * problem (queries scan it; chronikd's builder builds it): *unindexed
 * counts them. */
static int verify_indexes(struct engine *e, unsigned *reported, uint64_t *unindexed)
{
	char **topics = NULL, dir[4200], path[4400];
	size_t nt = 0;
	int problems = 0, rc = engine_topic_list(e, &topics, &nt);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < nt && rc >= 0; i++) {
		int32_t np = 0;
		if (engine_topic_partitions(e, topics[i], &np) < 0)
			continue; /* deleted meanwhile */
		for (int32_t k = 0; k < np && rc >= 0; k++) {
			struct engine_segment_info *segs = NULL;
			struct partition *p;
			size_t n = 0;
			if (engine_partition_get(e, topics[i], k, &p) < 0)
				continue;
			engine_partition_segment_dir(p, dir, sizeof(dir));
			rc = engine_partition_segments(p, &segs, &n);
			for (size_t j = 0; rc >= 0 && j < n; j++) {
				if (segs[j].remote)
					continue; /* no local file, no local index */
				snprintf(path, sizeof(path), "%s/%s", dir, segs[j].file);
				int r = search_index_verify(path, verify_problem, reported);
				if (r == -ENOENT) {
					(*unindexed)++;
					continue;
				}
				if (r < 0) {
					fprintf(stderr, "chronik: verify: %s: %s\n", path,
						chronik_strerror(r));
					r = 1;
				}
				problems += r;
			}
			free(segs);
			engine_partition_unref(p);
		}
	}
	engine_strv_free(topics, nt);
	return rc < 0 ? rc : problems;
}

int cmd_verify(struct cli *c, int argc, char **argv)
{
	uint64_t unindexed = 0;
	unsigned reported = 0;
	struct s3_options so = { .path_style = true };
	struct s3_client *s3 = NULL;
	int ret, rc;

	/* --remote ...: remote segments are checked too. */
	ret = cli_remote_opts("verify", &argc, argv, &so);
	if (ret)
		return ret;
	ret = cli_no_operand(c, argc, argv, "verify");
	if (ret)
		return ret;
	if (!c->data_dir || !*c->data_dir)
		return cli_usage_error("no data directory: use --data DIR or set CHRONIK_DATA");
	{
		struct engine_options o = c->opts;

		/* Read-only (beside a running chronikd, touching nothing) unless
		 * --repair asks to cut a damaged log first. */
		o.read_only = !o.repair;
		if (o.repair)
			search_engine_options(&o);
		rc = engine_open(c->data_dir, &o, &c->engine);
	}
	if (rc < 0) {
		c->engine = NULL;
		cli_fail(c->data_dir, rc);
		if (rc == CHRONIK_ECORRUPT || rc == CHRONIK_EVERSION) {
			verify_walk_files(c->data_dir);
			printf("verify: %s: corrupt\n", c->data_dir);
			fflush(stdout);
		}
		return CLI_EXIT_FAIL;
	}
	if (so.url && (ret = cli_remote_attach(c, &so, &s3))) {
		cli_engine_close(c);
		return ret;
	}
	rc = engine_verify(c->engine, verify_problem, &reported);
	if (rc >= 0) {
		int ri = verify_indexes(c->engine, &reported, &unindexed);
		rc = ri < 0 ? ri : rc + ri;
	}
	if (unindexed)
		printf("verify: note: %" PRIu64 " segment%s not indexed yet (searched by scanning; "
		       "chronikd's index builder builds %s)\n",
		       unindexed, unindexed == 1 ? "" : "s", unindexed == 1 ? "it" : "them");
	if (rc < 0) {
		ret = cli_fail("verify", rc);
	} else if (rc > 0) {
		printf("verify: %s: %d problem%s\n", c->data_dir, rc, rc == 1 ? "" : "s");
		ret = CLI_EXIT_FAIL;
	} else {
		printf("verify: %s: ok\n", c->data_dir);
		ret = CLI_EXIT_OK;
	}
	if (fflush(stdout) && !ret)
		ret = cli_fail("stdout", -errno);
	rc = cli_engine_close(c);
	s3_client_free(s3);
	return ret ? ret : rc;
}
