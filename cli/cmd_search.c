/* cmd_search.c - chronik search TOPIC[/PARTITION] QUERY [--since TS]
 * [--until TS] [--limit N] [--jsonl].
 *
 * Runs QUERY (search/search.h: FTS5 syntax over key, value and headers)
 * over one partition, or over every partition of the topic merged by
 * timestamp, and prints each matching record's value followed by '\n',
 * or with --jsonl its JSON line (jsonl_render, as records.jsonl). The
 * engine is opened read-only, so this works beside a running chronikd.
 * --since / --until are milliseconds (since <= timestamp < until).
 * A bad query is a usage error (exit 2) with the parser's message.
 *
 * Remote segments (the cold tier, wal/tier.c): with --remote
 * s3://BUCKET[/PREFIX] [--endpoint URL] [--region R] [--path-style
 * true|false] [--credentials-file FILE] (remote_opts.c) the object store
 * is attached and what the query reads of a remote segment is fetched
 * into a private cache, a new directory $TMPDIR/chronik-search-XXXXXX
 * (never DATA/cold-cache: a running chronikd owns that one), removed
 * before exit (a kill by a signal leaves it behind). Without --remote, a
 * query that needs a remote segment fails (CHRONIK_ENOSTORE) with a line
 * naming the option.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jsonl.h"
#include "s3.h"
#include "search.h"

struct out {
	bool jsonl;
	struct jsonl_buf jb;
};

static int print_hit(void *arg, struct partition *p, const struct engine_record *r)
{
	struct out *o = arg;

	(void)p;
	if (o->jsonl) {
		int err;

		o->jb.len = 0;
		err = jsonl_render(&o->jb, r);
		if (err < 0)
			return err;
		fwrite(o->jb.p, 1, o->jb.len, stdout);
	} else {
		if (r->value_len > 0)
			fwrite(r->value, 1, (size_t)r->value_len, stdout);
		putchar('\n');
	}
	return ferror(stdout) ? -(errno ? errno : EIO) : 0;
}

int cmd_search(struct cli *c, int argc, char **argv)
{
	const char *tp = NULL, *text = NULL, *since_s = NULL, *until_s = NULL, *limit_s = NULL;
	struct search_query *q = NULL;
	struct out o = { false, { NULL, 0, 0 } };
	struct s3_options so = { .path_style = true };
	struct s3_client *s3 = NULL;
	int64_t since = 0, until = 0, limit = 0;
	char *topic = NULL, err[512], what[320], cache[4096] = "";
	int32_t partition = -1;
	int ret = 0, rc;

	ret = cli_remote_opts("search", &argc, argv, &so);
	if (ret)
		return ret;
	for (int i = 0; i < argc;) {
		const char **slot = NULL;
		if ((rc = cli_opt_value(argc, argv, &i, "--since", &since_s)) ||
		    (rc = cli_opt_value(argc, argv, &i, "--until", &until_s)) ||
		    (rc = cli_opt_value(argc, argv, &i, "--limit", &limit_s))) {
			if (rc < 0)
				return CLI_EXIT_USAGE;
			continue;
		}
		if (!strcmp(argv[i], "--jsonl")) {
			o.jsonl = true;
			i++;
			continue;
		}
		slot = tp ? &text : &tp;
		ret = cli_operand(c, argc, argv, &i, "search", !tp, "TOPIC[/PARTITION] QUERY expected",
				  slot);
		if (ret)
			return ret;
	}
	if (!tp || !text)
		return cli_usage_error("search: usage: search TOPIC[/PARTITION] QUERY");
	if (since_s && cli_parse_i64(since_s, &since) < 0)
		return cli_usage_error("--since %s: expected milliseconds", since_s);
	if (until_s && cli_parse_i64(until_s, &until) < 0)
		return cli_usage_error("--until %s: expected milliseconds", until_s);
	if (limit_s && (cli_parse_i64(limit_s, &limit) < 0 || limit < 0))
		return cli_usage_error("--limit %s: expected a count >= 0", limit_s);
	rc = search_query_new(text, &q, err, sizeof(err));
	if (rc == -EINVAL)
		return cli_usage_error("search: %s", err);
	if (rc)
		return cli_fail("search", rc);
	if (since_s)
		search_query_since(q, since);
	if (until_s)
		search_query_until(q, until);
	if (limit_s)
		search_query_limit(q, limit);
	if (strchr(tp, '/')) {
		ret = cli_parse_topic_partition(tp, &topic, &partition, what, sizeof(what));
		if (ret)
			goto free_q;
	} else {
		topic = strdup(tp);
		snprintf(what, sizeof(what), "%s", tp);
		if (!topic) {
			ret = cli_fail("search", -ENOMEM);
			goto free_q;
		}
	}
	if (so.url) {
		ret = cli_cache_dir_new("search", cache, sizeof(cache));
		if (ret)
			goto free_topic;
		c->opts.remote_cache_dir = cache;
	}
	ret = cli_engine_open(c, true);
	if (ret)
		goto remove_cache;
	if (so.url && (ret = cli_remote_attach(c, &so, &s3)))
		goto close_engine;
	setvbuf(stdout, NULL, _IOFBF, 1u << 20);
	rc = search_run(c->engine, topic, partition, q, print_hit, &o);
	if (rc < 0 && rc != -EPIPE)
		ret = cli_fail(what, rc);
	if (rc == CHRONIK_ENOSTORE)
		cli_remote_hint("search");
	if (fflush(stdout) && errno != EPIPE && !ret)
		ret = cli_fail("stdout", -errno);
close_engine:
	rc = cli_engine_close(c);
	if (!ret)
		ret = rc;
	s3_client_free(s3);
remove_cache:
	if (cache[0]) {
		c->opts.remote_cache_dir = NULL;
		rc = cli_cache_dir_remove(cache);
		if (!ret)
			ret = rc;
	}
free_topic:
	free(topic);
free_q:
	search_query_free(q);
	free(o.jb.p);
	return ret;
}
