/* chronik.c - the admin CLI: option parsing, dispatch, shared helpers.
 *
 * chronik opens a data directory directly through the engine (wal/engine.h),
 * so it works only when no other process (chronikd) holds the directory.
 * Each command lives in its own cmd_*.c file.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "search.h"
#include "errors.h"
#include "log.h"

#ifndef CHRONIK_VERSION
#define CHRONIK_VERSION "unknown"
#endif

static const char usage_text[] =
	"Usage: chronik [OPTIONS] COMMAND [ARGS]\n"
	"\n"
	"Commands (all but dump need --data DIR, or $CHRONIK_DATA):\n"
	"  topic create NAME [--partitions N] [--config KEY=VALUE]...\n"
	"  topic list\n"
	"  topic delete NAME\n"
	"  topic alter NAME --config KEY=VALUE...\n"
	"                                 change config keys (an empty VALUE removes\n"
	"                                 the key); retention applies them at once\n"
	"  produce TOPIC/PARTITION        append each line of stdin as one record;\n"
	"                                 exits 0 once every record is durable\n"
	"  consume TOPIC/PARTITION [--from OFFSET|end] [--jsonl] [--follow]\n"
	"                                 print each value on its own line, or one\n"
	"                                 JSON object per record with --jsonl\n"
	"  search TOPIC[/PARTITION] QUERY [--since MS] [--until MS] [--limit N] [--jsonl]\n"
	"         [--remote s3://BUCKET[/PREFIX] ...as verify]\n"
	"                                 full-text search (FTS5 syntax) over the\n"
	"                                 records; values or JSON lines, by timestamp;\n"
	"                                 --remote reads segments in the object store\n"
	"  verify [--remote s3://BUCKET[/PREFIX] [--endpoint URL] [--region R]\n"
	"         [--path-style true|false] [--credentials-file FILE]]\n"
	"                                 check every frame and index entry;\n"
	"                                 exit 0 clean, 1 problems found\n"
	"  info [TOPIC/PARTITION]         metadata, or one partition's info, as JSON\n"
	"  groups [GROUP] [--json]        consumer-group lag: committed offset,\n"
	"                                 high watermark and lag per partition\n"
	"  segments TOPIC/PARTITION       list the partition's segment registry\n"
	"  compact TOPIC[/PARTITION]      compact now by the topic's cleanup.policy\n"
	"  user add NAME --file FILE [--mechanism M]... [--iterations N]\n"
	"                                 add a Kafka SASL user (password on stdin)\n"
	"                                 (every partition when none is given)\n"
	"  dump [--records] [--keys] FILE print the frames of a WAL file, or the\n"
	"                                 batches of a segment file (.seg); --keys\n"
	"                                 lists a segment's key table\n"
	"\n"
	"Options:\n"
	"  --data DIR                     the data directory\n"
	"  --fsync every|interval:MS|never  the fsync policy (default every)\n"
	"  --set KEY=VALUE                an engine setting (wal.segment.bytes, ...)\n"
	"  --repair                       open a WAL damaged before its tail by\n"
	"                                 cutting it at the damage (data after it is lost)\n"
	"  --verbose                      log engine messages down to debug\n"
	"  --version                      print the version and exit\n"
	"  --help                         print this help and exit\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 usage error.\n";

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("chronik: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'chronik --help' for more information.\n", stderr);
	return CLI_EXIT_USAGE;
}

/* The engine's last error message, held back so that a failure prints one
 * line: "chronik: WHAT: REASON (the engine's detail)". With --verbose every
 * engine message is printed as it comes instead. */
static char engine_detail[512];
static bool verbose_log;

static void cli_log_sink(void *arg, enum log_level level, const char *module, const char *msg)
{
	(void)arg;
	if (level >= LOG_LVL_ERROR && !verbose_log) {
		snprintf(engine_detail, sizeof(engine_detail), "%s", msg);
		return;
	}
	fprintf(stderr, "chronik[%s] %s: %s\n", module,
		level == LOG_LVL_DEBUG ? "debug" :
		level == LOG_LVL_INFO  ? "info" :
		level == LOG_LVL_WARN  ? "warn" :
					 "error",
		msg);
}

int cli_fail(const char *what, int err)
{
	if (engine_detail[0])
		fprintf(stderr, "chronik: %s: %s (%s)\n", what, chronik_strerror(err),
			engine_detail);
	else
		fprintf(stderr, "chronik: %s: %s\n", what, chronik_strerror(err));
	engine_detail[0] = 0;
	return CLI_EXIT_FAIL;
}

int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		*i += 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		cli_usage_error("option '%s' needs a value", name);
		return -1;
	}
	*val = argv[*i + 1];
	*i += 2;
	return 1;
}

int cli_global_opt(struct cli *c, int argc, char **argv, int *i)
{
	const char *v;
	int rc;

	if (!strcmp(argv[*i], "--repair")) {
		c->opts.repair = true;
		*i += 1;
		return 1;
	}
	if (!strcmp(argv[*i], "--verbose") || !strcmp(argv[*i], "-v")) {
		c->verbose = true;
		verbose_log = true;
		log_set_level(LOG_LVL_DEBUG);
		*i += 1;
		return 1;
	}
	rc = cli_opt_value(argc, argv, i, "--data", &v);
	if (rc) {
		if (rc > 0)
			c->data_dir = v;
		return rc;
	}
	rc = cli_opt_value(argc, argv, i, "--fsync", &v);
	if (rc) {
		if (rc > 0 && engine_options_parse_fsync(&c->opts, v) < 0) {
			cli_usage_error("--fsync %s: expected every, never or interval:MS", v);
			return -1;
		}
		return rc;
	}
	rc = cli_opt_value(argc, argv, i, "--set", &v);
	if (rc) {
		if (rc > 0) {
			const char *eq = strchr(v, '=');
			char *key;
			int err;

			if (!eq || eq == v) {
				cli_usage_error("--set %s: expected KEY=VALUE", v);
				return -1;
			}
			key = strndup(v, (size_t)(eq - v));
			if (!key) {
				cli_fail("--set", -ENOMEM);
				return -1;
			}
			err = engine_options_set(&c->opts, key, eq + 1);
			if (err == -ENOENT)
				cli_usage_error("--set %s: unknown setting '%s'", v, key);
			else if (err < 0)
				cli_usage_error("--set %s: invalid value for '%s'", v, key);
			free(key);
			if (err < 0)
				return -1;
		}
		return rc;
	}
	return 0;
}

int cli_engine_open(struct cli *c, bool read_only)
{
	struct engine_options o = c->opts;
	int rc;

	if (!c->data_dir || !*c->data_dir)
		return cli_usage_error("no data directory: use --data DIR or set CHRONIK_DATA");
	o.read_only = read_only;
	/* A writer's indexer builds each new segment's full-text index. */
	if (!read_only)
		search_engine_options(&o);
	rc = engine_open(c->data_dir, &o, &c->engine);
	if (rc < 0) {
		c->engine = NULL;
		return cli_fail(c->data_dir, rc);
	}
	return 0;
}

int cli_operand(struct cli *c, int argc, char **argv, int *i, const char *cmd, bool reject_dash,
		const char *too_many, const char **operand)
{
	int rc = cli_global_opt(c, argc, argv, i);

	if (rc < 0)
		return CLI_EXIT_USAGE;
	if (rc > 0)
		return 0;
	if (reject_dash && argv[*i][0] == '-' && argv[*i][1] != '\0')
		return cli_usage_error("%s: unknown option '%s'", cmd, argv[*i]);
	if (*operand)
		return cli_usage_error("%s: %s", cmd, too_many);
	*operand = argv[(*i)++];
	return 0;
}

int cli_no_operand(struct cli *c, int argc, char **argv, const char *cmd)
{
	for (int i = 0; i < argc;) {
		int rc = cli_global_opt(c, argc, argv, &i);

		if (rc < 0)
			return CLI_EXIT_USAGE;
		if (rc == 0)
			return cli_usage_error("%s: unexpected argument '%s'", cmd, argv[i]);
	}
	return 0;
}

int cli_partition_open(struct cli *c, bool read_only, const char *topic, int32_t partition,
		       const char *what, struct partition **p)
{
	int ret, rc;

	ret = cli_engine_open(c, read_only);
	if (ret)
		return ret;
	rc = engine_partition_get(c->engine, topic, partition, p);
	if (rc < 0) {
		ret = cli_fail(what, rc);
		cli_engine_close(c);
		return ret;
	}
	return 0;
}

int cli_engine_close(struct cli *c)
{
	int rc;

	if (!c->engine)
		return 0;
	rc = engine_close(c->engine);
	c->engine = NULL;
	if (rc < 0)
		return cli_fail(c->data_dir, rc);
	return 0;
}

int cli_parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_topic_partition(const char *arg, char **topic, int32_t *partition, char *what,
			      size_t what_size)
{
	const char *slash = strrchr(arg, '/');
	int64_t p = 0;

	if (slash) {
		if (cli_parse_i64(slash + 1, &p) < 0 || p < 0 || p > INT32_MAX)
			return cli_usage_error(
				"%s: expected TOPIC/PARTITION with a partition number", arg);
		*topic = strndup(arg, (size_t)(slash - arg));
	} else {
		*topic = strdup(arg);
	}
	if (!*topic)
		return cli_fail(arg, -ENOMEM);
	*partition = (int32_t)p;
	snprintf(what, what_size, "%.250s/%" PRId32, *topic, *partition);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = { 0 };
	const char *cmd;
	int i = 1;

	engine_options_init(&c.opts);
	c.data_dir = getenv("CHRONIK_DATA");
	/* The engine logs recovery notes at info; a CLI shows warnings and
	 * errors only, unless CHRONIK_LOG_LEVEL or --verbose says otherwise. */
	if (!getenv("CHRONIK_LOG_LEVEL"))
		log_set_level(LOG_LVL_WARN);
	log_set_sink(cli_log_sink, NULL);

	while (i < argc && argv[i][0] == '-') {
		int rc;

		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return fflush(stdout) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
		}
		if (!strcmp(argv[i], "--version")) {
			printf("chronik %s\n", CHRONIK_VERSION);
			return fflush(stdout) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
		}
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		rc = cli_global_opt(&c, argc, argv, &i);
		if (rc < 0)
			return CLI_EXIT_USAGE;
		if (rc == 0)
			return cli_usage_error("unknown option '%s'", argv[i]);
	}
	if (i >= argc)
		return cli_usage_error("no command given");

	cmd = argv[i];
	argc -= i + 1;
	argv += i + 1;
	if (!strcmp(cmd, "topic"))
		return cmd_topic(&c, argc, argv);
	if (!strcmp(cmd, "produce"))
		return cmd_produce(&c, argc, argv);
	if (!strcmp(cmd, "search"))
		return cmd_search(&c, argc, argv);
	if (!strcmp(cmd, "consume"))
		return cmd_consume(&c, argc, argv);
	if (!strcmp(cmd, "verify"))
		return cmd_verify(&c, argc, argv);
	if (!strcmp(cmd, "info"))
		return cmd_info(&c, argc, argv);
	if (!strcmp(cmd, "dump"))
		return cmd_dump(&c, argc, argv);
	if (!strcmp(cmd, "segments"))
		return cmd_segments(&c, argc, argv);
	if (!strcmp(cmd, "compact"))
		return cmd_compact(&c, argc, argv);
	if (!strcmp(cmd, "groups"))
		return cmd_groups(&c, argc, argv);
	if (!strcmp(cmd, "user"))
		return cmd_user(&c, argc, argv);
	if (!strcmp(cmd, "help")) {
		fputs(usage_text, stdout);
		return fflush(stdout) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	}
	return cli_usage_error("unknown command '%s'", cmd);
}
