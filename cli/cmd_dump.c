/* cmd_dump.c - chronik dump [--records] [--keys] FILE: the frames of a WAL file, one
 * line each, in the spirit of kafka-dump-log:
 *
 *   position: 32 version: 2 topic_id: 1 partition: 0 base_offset: 0
 *   last_offset: 9 count: 10 max_timestamp: ... raw_pos: 0 length: 210
 *   crc: 0x1c291ca3 status: valid
 *
 * (one line per frame). With --records, each record follows its frame as
 * "| " and its JSON line (jsonl_render, wal/jsonl.h). The walk
 * (wal_file_walk) stops at the first frame that is not valid; its status is
 * printed and the exit status is 1 then.
 *
 * A segment file (name ending in .seg, wal/segment.h) prints one line per
 * batch:
 *
 *   position: 64 base_offset: 0 last_offset: 999 count: 1000 codec: lz4
 *   max_timestamp: ... length: 4242 crc: 0x... status: valid
 *
 * and then "batches: N records: M", then "version: V keys: K" (K the key
 * table's entries; "version: 1 keys: none" for a version 1 segment), with
 * --keys followed by one line per key table entry:
 *
 *   key: 0 offset: 17 digest: 3f2a...(32 hex digits, word 0 then word 1)
 *
 * and the problems segment_verify finds (exit status 1 when there are
 * any). --keys on a WAL file is ignored (it has no key table).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cli.h"
#include "frame.h"
#include "byteorder.h"
#include "jsonl.h"
#include "segment.h"

struct dump_state {
	bool records;
	bool keys;
	uint64_t frames;
	uint64_t nrecords;
	int err; /* first error while printing records */
	struct jsonl_buf line; /* one record's JSON line, reused */
};

static const char *status_name(enum frame_status st)
{
	switch (st) {
	case FRAME_VALID:
		return "valid";
	case FRAME_SHORT:
		return "short (torn write)";
	case FRAME_INVALID:
		return "invalid (magic, length or CRC)";
	case FRAME_UNKNOWN_VERSION:
		return "unknown version";
	}
	return "?";
}

static void print_json_record(const struct engine_record *r, struct dump_state *s)
{
	int err;

	s->line.len = 0;
	err = jsonl_render(&s->line, r);
	if (err < 0) {
		if (!s->err)
			s->err = err;
		printf("| (record at offset %" PRId64 ": %s)\n", r->offset, chronik_strerror(err));
		return;
	}
	fputs("| ", stdout);
	fwrite(s->line.p, 1, s->line.len, stdout);
}

static void dump_batch_records(const struct frame_info *fi, struct dump_state *s)
{
	struct batch_iter it;
	struct batch_record br;
	int rc;

	rc = batch_iter_init(&it, fi->batch, fi->batch_len);
	if (rc < 0) {
		printf("| (records not decoded: %s)\n", chronik_strerror(rc));
		if (!s->err && rc != CHRONIK_ECODEC)
			s->err = rc;
		return;
	}
	while ((rc = batch_iter_next(&it, &br)) > 0) {
		struct engine_record r = {
			.offset = fi->base_offset + br.offset_delta,
			/* both from the batch: wrap, do not overflow */
			.timestamp = (int64_t)((uint64_t)it.hdr.base_timestamp +
					       (uint64_t)br.timestamp_delta),
			.key = br.key,
			.key_len = br.key_len,
			.value = br.value,
			.value_len = br.value_len,
			.header_count = br.header_count,
			.headers = br.headers,
			.headers_len = br.headers_len,
		};

		print_json_record(&r, s);
		s->nrecords++;
	}
	if (rc < 0) {
		printf("| (malformed record: %s)\n", chronik_strerror(rc));
		if (!s->err)
			s->err = rc;
	}
	batch_iter_fini(&it);
}

static int dump_frame(void *arg, uint64_t pos, enum frame_status st, const struct frame_info *fi)
{
	struct dump_state *s = arg;

	if (st != FRAME_VALID || !fi) {
		printf("position: %" PRIu64 " status: %s\n", pos, status_name(st));
		return 0;
	}
	s->frames++;
	if (fi->version == 2) {
		printf("position: %" PRIu64 " version: 2 topic_id: %" PRIu32 " partition: %" PRId32
		       " base_offset: %" PRId64 " last_offset: %" PRId64 " count: %" PRIu32
		       " max_timestamp: %" PRId64 " raw_pos: %" PRIu64 " length: %" PRIu32
		       " crc: 0x%08" PRIx32 " status: valid\n",
		       pos, fi->topic_id, fi->partition, fi->base_offset, fi->last_offset,
		       fi->record_count, fi->max_timestamp, fi->raw_pos, fi->frame_len, fi->crc);
		if (s->records)
			dump_batch_records(fi, s);
		else
			s->nrecords += fi->record_count;
	} else {
		printf("position: %" PRIu64 " version: %u topic_id: %" PRIu32 " partition: %" PRId32
		       " offset: %" PRId64 " timestamp: %" PRId64 " key_len: %" PRId32
		       " value_len: %" PRId32 " headers: %" PRIu32 " length: %" PRIu32
		       " crc: 0x%08" PRIx32 " status: valid\n",
		       pos, fi->version, fi->topic_id, fi->partition, fi->base_offset,
		       fi->timestamp, fi->key_len, fi->value_len, fi->header_count, fi->frame_len,
		       fi->crc);
		s->nrecords++;
		if (s->records) {
			/* V1 headers use their own encoding (frame.h); the JSON
			 * shows key and value, and the header count above. */
			struct engine_record r = {
				.offset = fi->base_offset,
				.timestamp = fi->timestamp,
				.key = fi->key,
				.key_len = fi->key_len,
				.value = fi->value,
				.value_len = fi->value_len,
			};

			print_json_record(&r, s);
		}
	}
	return 0;
}

static const char *codec_name(int codec)
{
	static const char *const names[] = { "none", "gzip", "snappy", "lz4", "zstd" };
	return codec >= 0 && codec <= 4 ? names[codec] : "unknown";
}

static int dump_seg_batch(void *arg, uint64_t pos, const uint8_t *batch, size_t len)
{
	struct dump_state *s = arg;
	struct batch_header bh;
	struct frame_info fi = { 0 };
	bool valid = batch_header_parse(batch, len, &bh) == 0 && batch_crc_check(batch, len) == 0;

	s->frames++;
	if (!valid) {
		printf("position: %" PRIu64 " length: %zu status: invalid (length or CRC)\n", pos,
		       len);
		if (!s->err)
			s->err = CHRONIK_ECORRUPT;
		return 1;
	}
	printf("position: %" PRIu64 " base_offset: %" PRId64 " last_offset: %" PRId64
	       " count: %" PRId32 " codec: %s max_timestamp: %" PRId64 " length: %zu"
	       " crc: 0x%08" PRIx32 " status: valid\n",
	       pos, bh.base_offset, bh.base_offset + bh.last_offset_delta, bh.record_count,
	       codec_name(bh.attributes & BATCH_ATTR_CODEC_MASK), bh.max_timestamp, len, bh.crc);
	if (s->records) {
		fi.batch = batch;
		fi.batch_len = len;
		fi.base_offset = bh.base_offset;
		dump_batch_records(&fi, s);
	} else {
		s->nrecords += (uint64_t)bh.record_count;
	}
	return 0;
}

static void dump_seg_problem(void *arg, const char *what)
{
	(void)arg;
	printf("problem: %s\n", what);
}

static int dump_segment(const char *path, struct dump_state *s)
{
	int rc = segment_file_walk(path, dump_seg_batch, s);
	printf("batches: %" PRIu64 " records: %" PRIu64 "\n", s->frames, s->nrecords);
	if (rc == 0) {
		struct segment_key *keys = NULL;
		uint32_t version = 0;
		size_t n = 0;
		int krc = segment_file_keys(path, &version, &keys, &n);
		if (krc == 0 && version < 2)
			printf("version: %" PRIu32 " keys: none\n", version);
		else if (krc == 0)
			printf("version: %" PRIu32 " keys: %zu\n", version, n);
		else
			printf("key table: unreadable (%s)\n", chronik_strerror(krc));
		for (size_t i = 0; s->keys && i < n; i++)
			printf("key: %zu offset: %" PRId64 " digest: %016" PRIx64 "%016" PRIx64
			       "\n",
			       i, keys[i].offset, keys[i].digest[0], keys[i].digest[1]);
		free(keys);
	}
	if (rc == 0) {
		int problems = segment_verify(path, NULL, dump_seg_problem, NULL);
		if (problems > 0)
			rc = CHRONIK_ECORRUPT;
		else if (problems < 0)
			rc = problems;
	}
	return rc;
}

int cmd_dump(struct cli *c, int argc, char **argv)
{
	struct dump_state s = { 0 };
	const char *path = NULL;
	int rc;

	for (int i = 0; i < argc;) {
		if (!strcmp(argv[i], "--records") || !strcmp(argv[i], "--print-data-log")) {
			s.records = true;
			i++;
			continue;
		}
		if (!strcmp(argv[i], "--keys")) {
			s.keys = true;
			i++;
			continue;
		}
		rc = cli_operand(c, argc, argv, &i, "dump", true, "one FILE expected", &path);
		if (rc)
			return rc;
	}
	if (!path)
		return cli_usage_error("dump: missing FILE");

	setvbuf(stdout, NULL, _IOFBF, 1u << 20);
	printf("Dumping %s\n", path);
	size_t plen = strlen(path);
	if (plen > 4 && strcmp(path + plen - 4, ".seg") == 0) {
		rc = dump_segment(path, &s);
	} else {
		rc = wal_file_walk(path, dump_frame, &s);
		printf("frames: %" PRIu64 " records: %" PRIu64 "\n", s.frames, s.nrecords);
	}
	free(s.line.p);
	if (fflush(stdout))
		return cli_fail("stdout", -errno);
	if (rc < 0)
		return cli_fail(path, rc);
	if (s.err)
		return cli_fail(path, s.err);
	return CLI_EXIT_OK;
}
