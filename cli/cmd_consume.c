/* cmd_consume.c - chronik consume TOPIC/PARTITION [--from OFFSET|end]
 * [--jsonl] [--follow].
 *
 * Prints each record's value followed by '\n' (a null value prints an empty
 * line), or with --jsonl one JSON line per record (jsonl_render: byte for
 * byte what records.jsonl shows, wal/jsonl.h). stdout is fully buffered
 * with a large buffer; --follow flushes whenever it reaches the end and
 * then waits (engine_partition_wait) for more, until SIGINT or
 * SIGTERM, or until stdout is closed.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jsonl.h"

#define CONSUME_STDOUT_BUF (1u << 20)
/* How long one wait may block before the stop flag is looked at again. */
#define CONSUME_WAIT_MS 200

static volatile sig_atomic_t consume_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	consume_stop = 1;
}

static void install_signals(void)
{
	struct sigaction sa = { 0 };

	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* 0, or -errno when stdout failed (EPIPE: the reader went away), or
 * CHRONIK_ECORRUPT / -ENOMEM from rendering. jb is the --jsonl line buffer,
 * reused from record to record. */
static int print_record(const struct engine_record *r, struct jsonl_buf *jb)
{
	if (jb) {
		int err;

		jb->len = 0;
		err = jsonl_render(jb, r);
		if (err < 0)
			return err;
		fwrite(jb->p, 1, jb->len, stdout);
	} else {
		if (r->value_len > 0)
			fwrite(r->value, 1, (size_t)r->value_len, stdout);
		putchar('\n');
	}
	return ferror(stdout) ? -(errno ? errno : EIO) : 0;
}

int cmd_consume(struct cli *c, int argc, char **argv)
{
	struct engine_cursor *cur = NULL;
	struct partition *p = NULL;
	struct partition_info info;
	struct engine_record r;
	struct jsonl_buf jb = { NULL, 0, 0 };
	const char *tp = NULL, *from_s = NULL;
	bool jsonl = false, follow = false;
	char *topic = NULL;
	int32_t partition = 0;
	int64_t from = 0, next;
	char what[320];
	int ret, rc;

	for (int i = 0; i < argc;) {
		rc = cli_opt_value(argc, argv, &i, "--from", &from_s);
		if (rc < 0)
			return CLI_EXIT_USAGE;
		if (rc > 0)
			continue;
		if (!strcmp(argv[i], "--jsonl")) {
			jsonl = true;
			i++;
			continue;
		}
		if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f")) {
			follow = true;
			i++;
			continue;
		}
		ret = cli_operand(c, argc, argv, &i, "consume", true,
				  "one TOPIC/PARTITION expected", &tp);
		if (ret)
			return ret;
	}
	if (!tp)
		return cli_usage_error("consume: missing TOPIC/PARTITION");
	if (from_s && strcmp(from_s, "end") != 0 && (cli_parse_i64(from_s, &from) < 0 || from < 0))
		return cli_usage_error("--from %s: expected an offset >= 0 or 'end'", from_s);
	ret = cli_parse_topic_partition(tp, &topic, &partition, what, sizeof(what));
	if (ret)
		return ret;

	install_signals();
	setvbuf(stdout, NULL, _IOFBF, CONSUME_STDOUT_BUF);

	/* Read-only: no lock, so consume (and --follow) works beside a running
	 * chronikd or a chronik produce. */
	ret = cli_partition_open(c, true, topic, partition, what, &p);
	if (ret)
		goto free_topic;
	engine_partition_info(p, &info);
	if (from_s && !strcmp(from_s, "end"))
		from = info.next_offset;
	rc = engine_cursor_open(p, from, &cur);
	if (rc < 0) {
		char msg[400];

		snprintf(msg, sizeof(msg),
			 "%s: offset %" PRId64 " (log is %" PRId64 "..%" PRId64 ")", what, from,
			 info.log_start_offset, info.next_offset);
		ret = cli_fail(msg, rc);
		goto unref;
	}
	/* The offset we wait for: the cursor clamps up to the log start. */
	next = from > info.log_start_offset ? from : info.log_start_offset;

	while (!consume_stop) {
		rc = engine_cursor_next(cur, &r);
		if (rc < 0) {
			ret = cli_fail(what, rc);
			break;
		}
		if (rc > 0) {
			rc = print_record(&r, jsonl ? &jb : NULL);
			if (rc == -EPIPE)
				break;
			if (rc < 0) {
				ret = cli_fail(rc == CHRONIK_ECORRUPT ? what : "stdout", rc);
				break;
			}
			next = r.offset + 1;
			continue;
		}
		if (!follow)
			break;
		if (fflush(stdout)) {
			if (errno != EPIPE)
				ret = cli_fail("stdout", -errno);
			break;
		}
		/* Another process writes: look for what it wrote, then wait a
		 * little before looking again. */
		rc = engine_refresh(c->engine);
		if (rc == 0)
			rc = engine_partition_wait(p, next, CONSUME_WAIT_MS);
		if (rc < 0) {
			ret = cli_fail(what, rc);
			break;
		}
	}
	if (fflush(stdout) && errno != EPIPE && !ret)
		ret = cli_fail("stdout", -errno);

	engine_cursor_close(cur);
unref:
	engine_partition_unref(p);
	rc = cli_engine_close(c);
	if (!ret)
		ret = rc;
free_topic:
	free(jb.p);
	free(topic);
	return ret;
}
