/* cmd_produce.c - chronik produce TOPIC/PARTITION: stdin lines -> records.
 *
 * stdin is read in chunks of up to PRODUCE_CHUNK bytes; the complete lines
 * of each chunk become one batch (engine_append_lines), and the bytes after
 * the last newline carry over to the next chunk. A line longer than the
 * buffer grows it. At end of input a final line without a newline is one
 * record too. engine_sync() then makes everything durable before exit 0,
 * whatever the fsync policy.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define PRODUCE_CHUNK (1u << 20)

struct produce_state {
	struct partition *p;
	const char *what;
	uint64_t records;
	uint64_t batches;
	int64_t first_offset; /* -1 until the first append */
};

static int append_lines(struct produce_state *s, const char *buf, size_t len)
{
	int64_t base = -1;
	int rc;

	rc = engine_append_lines(s->p, buf, len, &base);
	if (rc < 0)
		return cli_fail(s->what, rc);
	if (s->first_offset < 0)
		s->first_offset = base;
	s->batches++;
	for (size_t k = 0; k < len; k++) {
		const char *nl = memchr(buf + k, '\n', len - k);

		if (!nl)
			break;
		s->records++;
		k = (size_t)(nl - buf);
	}
	return 0;
}

/* Read until buf is full, stdin ends (*eof set), or stdin has complete
 * lines and nothing more to read right now: a bulk input makes large
 * batches, a slow stream (`tail -f x | chronik produce`) is appended as it
 * comes rather than when a megabyte has gathered. */
static int fill(char *buf, size_t cap, size_t *have, bool *eof)
{
	while (*have < cap) {
		ssize_t n = read(STDIN_FILENO, buf + *have, cap - *have);
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return cli_fail("stdin", -errno);
		}
		if (n == 0) {
			*eof = true;
			break;
		}
		*have += (size_t)n;
		if (memchr(buf + *have - (size_t)n, '\n', (size_t)n) && poll(&pfd, 1, 0) == 0)
			break;
	}
	return 0;
}

int cmd_produce(struct cli *c, int argc, char **argv)
{
	struct produce_state s = { .first_offset = -1 };
	const char *tp = NULL;
	char *topic = NULL, *buf = NULL;
	int32_t partition = 0;
	size_t cap = PRODUCE_CHUNK, have = 0;
	bool eof = false;
	char what[320];
	int ret, rc;

	for (int i = 0; i < argc;) {
		ret = cli_operand(c, argc, argv, &i, "produce", false,
				  "one TOPIC/PARTITION expected", &tp);
		if (ret)
			return ret;
	}
	if (!tp)
		return cli_usage_error("produce: missing TOPIC/PARTITION");
	ret = cli_parse_topic_partition(tp, &topic, &partition, what, sizeof(what));
	if (ret)
		return ret;
	s.what = what;

	buf = malloc(cap + 1);
	if (!buf) {
		ret = cli_fail("produce", -ENOMEM);
		goto free_topic;
	}
	ret = cli_partition_open(c, false, topic, partition, what, &s.p);
	if (ret)
		goto free_buf;

	while (!eof) {
		size_t scanned = have; /* buf[0, have) holds no newline */
		const char *nl;

		ret = fill(buf, cap, &have, &eof);
		if (ret)
			goto unref;
		nl = have > scanned ? memrchr(buf + scanned, '\n', have - scanned) : NULL;
		if (!nl) {
			if (!eof && have == cap) {
				/* One line longer than the buffer: grow it. */
				char *bigger = realloc(buf, cap * 2 + 1);

				if (!bigger) {
					ret = cli_fail("produce", -ENOMEM);
					goto unref;
				}
				buf = bigger;
				cap *= 2;
			}
			continue;
		}
		size_t len = (size_t)(nl - buf) + 1;

		ret = append_lines(&s, buf, len);
		if (ret)
			goto unref;
		memmove(buf, buf + len, have - len);
		have -= len;
	}
	if (have > 0) {
		/* The final line had no newline: it is one record too. cap + 1
		 * bytes are allocated, so there is room for the newline. */
		buf[have++] = '\n';
		ret = append_lines(&s, buf, have);
		if (ret)
			goto unref;
	}
	rc = engine_sync(c->engine);
	if (rc < 0) {
		ret = cli_fail(what, rc);
		goto unref;
	}
	if (c->verbose) {
		if (s.records)
			fprintf(stderr,
				"chronik: %s: %" PRIu64 " records in %" PRIu64
				" batches, offsets %" PRId64 "-%" PRId64 "\n",
				what, s.records, s.batches, s.first_offset,
				s.first_offset + (int64_t)s.records - 1);
		else
			fprintf(stderr, "chronik: %s: no records\n", what);
	}

unref:
	engine_partition_unref(s.p);
	rc = cli_engine_close(c);
	if (!ret)
		ret = rc;
free_buf:
	free(buf);
free_topic:
	free(topic);
	return ret;
}
