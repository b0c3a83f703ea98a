/* cli.h - shared pieces of the chronik admin CLI (cli/chronik.c and the
 * cmd_*.c files, one per command).
 *
 * Exit statuses: 0 success, 1 failure (the engine said no, data corrupt,
 * I/O error), 2 usage error. Every command function returns one of these.
 */
#ifndef CHRONIK_CLI_H
#define CHRONIK_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

struct cli {
	const char *data_dir; /* --data, or $CHRONIK_DATA; NULL if neither */
	struct engine_options opts; /* defaults, then --fsync / --set */
	bool verbose;
	struct engine *engine; /* set by cli_engine_open */
};

/* Print "chronik: <formatted message>" and a hint to stderr; returns
 * CLI_EXIT_USAGE. */
__attribute__((format(printf, 1, 2))) int cli_usage_error(const char *fmt, ...);

/* Print "chronik: <what>: <chronik_strerror(err)>" to stderr; returns
 * CLI_EXIT_FAIL. */
int cli_fail(const char *what, int err);

/* If argv[*i] is the option name ("--name" followed by a value, or
 * "--name=value"), store the value in *val, advance *i past it and return 1.
 * 0 if argv[*i] is not this option; -1 (usage error printed) if the value
 * is missing. */
int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **val);

/* Handle a global option (--data, --fsync, --set, --verbose) at argv[*i],
 * which commands accept after their name too. 1 consumed, 0 not a global
 * option, -1 usage error (printed). */
int cli_global_opt(struct cli *c, int argc, char **argv, int *i);

/* The rest of a command's argument loop, for the argument argv[*i] that
 * none of the command's own options took: a global option, or else the
 * command's one operand, stored in *operand. With reject_dash, an argument
 * that starts with '-' (other than "-") is "<cmd>: unknown option"; a
 * second operand is "<cmd>: <too_many>". 0 (argv[*i] consumed), or
 * CLI_EXIT_USAGE after printing why. */
int cli_operand(struct cli *c, int argc, char **argv, int *i, const char *cmd, bool reject_dash,
		const char *too_many, const char **operand);

/* The argument loop of a command that takes no operand: global options
 * only, anything else is "<cmd>: unexpected argument". 0, or
 * CLI_EXIT_USAGE after printing why. */
int cli_no_operand(struct cli *c, int argc, char **argv, const char *cmd);

/* Open c->data_dir into c->engine (read_only for inspection commands).
 * Prints the error and returns CLI_EXIT_FAIL / CLI_EXIT_USAGE, or 0. */
int cli_engine_open(struct cli *c, bool read_only);
/* Close c->engine if open; prints and returns CLI_EXIT_FAIL on error. */
int cli_engine_close(struct cli *c);

/* Open the engine (cli_engine_open) and get topic/partition into *p; what
 * names the partition in the error message. 0 with c->engine open, or an
 * exit status after printing why, with the engine closed. */
int cli_partition_open(struct cli *c, bool read_only, const char *topic, int32_t partition,
		       const char *what, struct partition **p);

/* Split "TOPIC/PARTITION" (or "TOPIC", partition 0). *topic is malloc'd;
 * what (what_size bytes) receives "topic/partition" for messages. 0, or
 * CLI_EXIT_USAGE after printing why. */
int cli_parse_topic_partition(const char *arg, char **topic, int32_t *partition, char *what,
			      size_t what_size);

/* Parse a whole decimal int64 (no sign for unsigned use is enforced by the
 * caller). 0 or -EINVAL. */
int cli_parse_i64(const char *s, int64_t *out);

/* Object-store options (remote_opts.c), for the commands that read
 * remote segments: --remote s3://BUCKET[/PREFIX] [--endpoint URL]
 * [--region R] [--path-style true|false] [--credentials-file FILE] are
 * taken out of argv (*argc shrinks) into so (so->url stays NULL without
 * --remote). 0, or CLI_EXIT_USAGE after printing why. */
struct s3_options;
struct s3_client;
int cli_remote_opts(const char *cmd, int *argc, char **argv, struct s3_options *so);
/* Attach the store so describes to c->engine (open): *s3 is the client,
 * to free (s3_client_free) after the engine is closed. 0, or
 * CLI_EXIT_FAIL after printing why. */
int cli_remote_attach(struct cli *c, const struct s3_options *so, struct s3_client **s3);
/* Say that cmd needs the object-store options (a read met a remote
 * segment with no store attached: CHRONIK_ENOSTORE); CLI_EXIT_FAIL. */
int cli_remote_hint(const char *cmd);
/* A new private directory $TMPDIR/chronik-<cmd>-XXXXXX (/tmp without
 * TMPDIR) into buf, for an engine's remote_cache_dir; remove it and what
 * it holds with cli_cache_dir_remove. 0, or CLI_EXIT_FAIL after printing
 * why. */
int cli_cache_dir_new(const char *cmd, char *buf, size_t len);
int cli_cache_dir_remove(const char *path);

int cmd_topic(struct cli *c, int argc, char **argv);
int cmd_produce(struct cli *c, int argc, char **argv);
int cmd_consume(struct cli *c, int argc, char **argv);
int cmd_verify(struct cli *c, int argc, char **argv);
int cmd_info(struct cli *c, int argc, char **argv);
int cmd_dump(struct cli *c, int argc, char **argv);
int cmd_segments(struct cli *c, int argc, char **argv);
int cmd_compact(struct cli *c, int argc, char **argv);
int cmd_groups(struct cli *c, int argc, char **argv);
int cmd_search(struct cli *c, int argc, char **argv);
int cmd_user(struct cli *c, int argc, char **argv);

#endif
