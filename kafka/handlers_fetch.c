/* handlers_fetch.c - Fetch (with long poll) and ListOffsets.
 *
 * FetchRequest v4-11: ReplicaId int32, MaxWaitMs int32, MinBytes int32,
 * MaxBytes int32 (v3+), IsolationLevel int8 (v4+), SessionId int32 (v7+),
 * SessionEpoch int32 (v7+), Topics [Topic string, Partitions [Partition
 * int32, CurrentLeaderEpoch int32 (v9+), FetchOffset int64, LogStartOffset
 * int64 (v5+), PartitionMaxBytes int32]], ForgottenTopicsData (v7+) [Topic,
 * Partitions [int32]], RackId string (v11+).
 * FetchResponse v4-11: ThrottleTimeMs int32, ErrorCode int16 (v7+),
 * SessionId int32 (v7+), Responses [Topic, Partitions [PartitionIndex,
 * ErrorCode, HighWatermark int64, LastStableOffset int64, LogStartOffset
 * int64 (v5+), AbortedTransactions nullable [ProducerId, FirstOffset],
 * PreferredReadReplica int32 (v11+), Records nullable bytes]].
 *
 * Fetch sessions (KIP-227) are not kept: every fetch is a full fetch and the
 * response's SessionId is 0, which tells the client so. The records are the
 * stored batches byte for byte (engine_read_batches), from the batch holding
 * FetchOffset; clients skip the records before it. High watermark = last
 * stable offset = next_offset (no transactions). An offset outside
 * [log start, next offset] gets 1 OFFSET_OUT_OF_RANGE.
 *
 * Long poll: while the response holds fewer than MinBytes and MaxWaitMs has
 * not passed, the connection's thread waits for an append past the high
 * watermark its last read saw (engine_partition_wait on that offset, not on
 * FetchOffset, which would return at once while some data is there), in
 * KAFKA_WAIT_SLICE_MS slices (shorter when several partitions are watched,
 * taking turns), then reads only the batches that arrived meanwhile and
 * appends them to what it holds. The wait is capped at FETCH_MAX_WAIT_MS and
 * ends when the client disconnects.
 */
#include "kafka-private.h"

#include "batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_RESPONSE_MAX ((size_t)64 << 20)
#define MULTI_WAIT_SLICE_MS 10
/* Longest long poll; a client gone meanwhile ends it at once. */
#define FETCH_MAX_WAIT_MS 60000

struct fetch_part {
	int32_t topic_index; /* into the request's topics */
	int32_t partition;
	int64_t fetch_offset;
	int32_t max_bytes;
	struct partition *p;
	int16_t error;
	struct partition_info info;
	/* Whole batches read so far, from the one holding fetch_offset up to
	 * (not including) next_read. A long poll appends to them; it never
	 * reads the same bytes twice. */
	uint8_t *data;
	size_t len;
	int64_t next_read;
	/* next_offset when this partition was last read; the long poll waits
	 * for it to move. -1 before the first read. */
	int64_t hw_seen;
	bool full; /* max bytes reached: no more reads */
};

struct fetch_topic {
	struct kafka_str name;
	int32_t first, count; /* range in the parts array */
};

/* The offset after the last record of the whole batches in buf[0, len). */
static int64_t batches_end(const uint8_t *buf, size_t len, int64_t dflt)
{
	int64_t end = dflt;
	size_t pos = 0;
	while (len - pos >= BATCH_HEADER_SIZE) {
		int64_t base = (int64_t)((uint64_t)kafka_get_be32(buf + pos) << 32 |
					 kafka_get_be32(buf + pos + 4));
		int32_t blen = (int32_t)kafka_get_be32(buf + pos + 8);
		int32_t last = (int32_t)kafka_get_be32(buf + pos + 23);
		if (blen < BATCH_HEADER_SIZE - 12 || (size_t)blen + 12 > len - pos)
			break;
		end = base + last + 1;
		pos += (size_t)blen + 12;
	}
	return end;
}

/* Read what is new in every partition since the last call (all of it the
 * first time), within the request's and each partition's max bytes. */
static void fetch_read_all(struct fetch_part *parts, int32_t n, size_t max_bytes, size_t *total,
			   bool *any_error)
{
	*total = 0;
	*any_error = false;
	for (int32_t i = 0; i < n; i++) {
		struct fetch_part *fp = &parts[i];
		if (!fp->p) {
			*any_error = true;
			continue;
		}
		engine_partition_info(fp->p, &fp->info);
		if (fp->fetch_offset < fp->info.log_start_offset ||
		    fp->fetch_offset > fp->info.next_offset) {
			fp->error = KERR_OFFSET_OUT_OF_RANGE;
			*any_error = true;
			continue;
		}
		fp->error = KERR_NONE;
		if (fp->info.next_offset == fp->hw_seen || fp->full || fp->max_bytes <= 0 ||
		    fp->next_read >= fp->info.next_offset) {
			fp->hw_seen = fp->info.next_offset;
			*total += fp->len;
			continue;
		}
		fp->hw_seen = fp->info.next_offset;
		size_t left = max_bytes > *total + fp->len ? max_bytes - *total - fp->len : 0;
		size_t pleft = (size_t)fp->max_bytes > fp->len ? (size_t)fp->max_bytes - fp->len :
								 0;
		size_t want = pleft < left ? pleft : left;
		if (want == 0) {
			/* The response (or this partition) is full. */
			*total += fp->len;
			continue;
		}
		uint8_t *more = NULL;
		size_t mlen = 0;
		int rc = engine_read_batches(fp->p, fp->next_read, want, &more, &mlen);
		if (rc) {
			fp->error = kafka_error_from(rc);
			free(fp->data);
			fp->data = NULL;
			fp->len = 0;
			*any_error = true;
			continue;
		}
		if (fp->len > 0 && mlen > want) {
			/* The first batch read is always whole; a later one that
			 * does not fit waits for the next fetch. */
			free(more);
			fp->full = true;
		} else if (mlen > 0) {
			uint8_t *nd = fp->data ? realloc(fp->data, fp->len + mlen) : more;
			if (!nd) {
				free(more);
				fp->full = true;
			} else {
				if (nd != more) {
					memcpy(nd + fp->len, more, mlen);
					free(more);
				}
				fp->data = nd;
				fp->next_read = batches_end(nd + fp->len, mlen, fp->next_read);
				fp->len += mlen;
			}
		} else {
			free(more);
		}
		*total += fp->len;
	}
}

int kafka_handle_fetch(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	struct fetch_topic *topics = NULL;
	struct fetch_part *parts = NULL;
	int32_t ntopics, nparts = 0;
	int rc = -1;

	(void)kafka_read_i32(r); /* ReplicaId */
	int32_t max_wait = kafka_read_i32(r);
	int32_t min_bytes = kafka_read_i32(r);
	int32_t max_bytes = kafka_read_i32(r);
	(void)kafka_read_i8(r); /* IsolationLevel: no transactions, same data */
	if (v >= 7) {
		(void)kafka_read_i32(r); /* SessionId */
		(void)kafka_read_i32(r); /* SessionEpoch */
	}
	/* Smallest topic: name 2 + count 4. Smallest partition: 4 + 8 + 4. */
	ntopics = kafka_read_array(r, false, false, 6);
	if (kafka_reader_failed(r))
		return -1;
	topics = calloc((size_t)ntopics + 1, sizeof(*topics));
	/* Every partition takes >= 16 request bytes: bounded by the request. */
	size_t cap_parts = kafka_reader_left(r) / 16 + 1;
	parts = calloc(cap_parts, sizeof(*parts));
	if (!topics || !parts)
		goto out;
	for (int32_t t = 0; t < ntopics; t++) {
		topics[t].name = kafka_read_string(r, false, false);
		int32_t np = kafka_read_array(r, false, false, 16);
		topics[t].first = nparts;
		topics[t].count = np;
		for (int32_t i = 0; i < np && !kafka_reader_failed(r); i++) {
			if ((size_t)nparts >= cap_parts) {
				kafka_reader_fail(r);
				break;
			}
			struct fetch_part *fp = &parts[nparts++];
			fp->topic_index = t;
			fp->partition = kafka_read_i32(r);
			if (v >= 9)
				(void)kafka_read_i32(r); /* CurrentLeaderEpoch */
			fp->fetch_offset = kafka_read_i64(r);
			fp->next_read = fp->fetch_offset;
			fp->hw_seen = -1;
			if (v >= 5)
				(void)kafka_read_i64(r); /* LogStartOffset */
			fp->max_bytes = kafka_read_i32(r);
		}
		if (kafka_reader_failed(r))
			goto out;
	}
	if (v >= 7) {
		int32_t nf = kafka_read_array(r, false, false, 6);
		for (int32_t i = 0; i < nf && !kafka_reader_failed(r); i++) {
			(void)kafka_read_string(r, false, false);
			int32_t ni = kafka_read_array(r, false, false, 4);
			kafka_read_skip(r, (size_t)ni * 4);
		}
	}
	if (v >= 11)
		(void)kafka_read_string(r, false, false); /* RackId */
	if (kafka_reader_failed(r))
		goto out;

	/* Resolve partitions. */
	for (int32_t i = 0; i < nparts; i++) {
		struct fetch_part *fp = &parts[i];
		char name[250];
		fp->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		if (!kafka_topic_name_copy(topics[fp->topic_index].name, name))
			continue;
		int prc = engine_partition_get(req->l->e, name, fp->partition, &fp->p);
		if (prc) {
			fp->p = NULL;
			fp->error = kafka_error_from(prc);
		}
	}

	size_t limit = max_bytes > 0 ? (size_t)max_bytes : 0;
	if (limit > FETCH_RESPONSE_MAX)
		limit = FETCH_RESPONSE_MAX;
	size_t total;
	bool any_error;
	if (max_wait > FETCH_MAX_WAIT_MS)
		max_wait = FETCH_MAX_WAIT_MS;
	int64_t deadline = kafka_now_ms() + (max_wait > 0 ? max_wait : 0);
	int turn = 0;
	for (;;) {
		fetch_read_all(parts, nparts, limit, &total, &any_error);
		int64_t now = kafka_now_ms();
		if (any_error || min_bytes <= 0 || total >= (size_t)min_bytes || now >= deadline ||
		    nparts == 0 || atomic_load(&req->l->stopping) || kafka_conn_peer_closed(req->c))
			break;
		/* Wait for one of the partitions to grow past what its last
		 * read saw, taking turns. */
		int64_t left = deadline - now;
		int slice = nparts == 1 ? KAFKA_WAIT_SLICE_MS : MULTI_WAIT_SLICE_MS;
		if (left < slice)
			slice = (int)left;
		struct fetch_part *fp = &parts[turn++ % nparts];
		if (engine_partition_wait(fp->p, fp->hw_seen, slice) < 0)
			break;
	}

	kafka_write_i32(w, 0); /* ThrottleTimeMs */
	if (v >= 7) {
		kafka_write_i16(w, KERR_NONE);
		kafka_write_i32(w, 0); /* SessionId: no session */
	}
	kafka_write_array(w, false, ntopics);
	for (int32_t t = 0; t < ntopics; t++) {
		kafka_write_str(w, false, topics[t].name);
		kafka_write_array(w, false, topics[t].count);
		for (int32_t i = topics[t].first; i < topics[t].first + topics[t].count; i++) {
			struct fetch_part *fp = &parts[i];
			bool ok = fp->p && fp->error == KERR_NONE;
			kafka_write_i32(w, fp->partition);
			kafka_write_i16(w, fp->error);
			kafka_write_i64(w, fp->p ? fp->info.next_offset : -1); /* HighWatermark */
			kafka_write_i64(w,
					fp->p ? fp->info.next_offset : -1); /* LastStableOffset */
			if (v >= 5)
				kafka_write_i64(w, fp->p ? fp->info.log_start_offset : -1);
			kafka_write_array(w, false, 0); /* AbortedTransactions */
			if (v >= 11)
				kafka_write_i32(w, -1); /* PreferredReadReplica */
			kafka_write_bytes(w, false, ok && fp->data ? fp->data : (const uint8_t *)"",
					  ok ? (int32_t)fp->len : 0);
		}
	}
	rc = 0;
out:
	if (parts) {
		for (int32_t i = 0; i < nparts; i++) {
			free(parts[i].data);
			if (parts[i].p)
				engine_partition_unref(parts[i].p);
		}
	}
	free(parts);
	free(topics);
	return rc;
}

/* The first record with timestamp >= ts: *offset and *found_ts, both -1
 * when there is none. */
static int offset_for_timestamp(struct partition *p, int64_t ts, int64_t *offset, int64_t *found_ts)
{
	struct engine_cursor *c;
	struct engine_record rec;
	int64_t off;
	int rc;

	*offset = *found_ts = -1;
	rc = engine_offset_for_timestamp(p, ts, &off);
	if (rc)
		return rc;
	/* next_offset when none matches: the cursor then finds no record. */
	rc = engine_cursor_open(p, off, &c);
	if (rc == CHRONIK_ERANGE)
		return 0;
	if (rc)
		return rc;
	while ((rc = engine_cursor_next(c, &rec)) == 1) {
		if (rec.offset < off)
			continue;
		if (rec.timestamp >= ts) {
			*offset = rec.offset;
			*found_ts = rec.timestamp;
		}
		break;
	}
	engine_cursor_close(c);
	return rc < 0 ? rc : 0;
}

/* ListOffsetsRequest v1-5: ReplicaId int32, IsolationLevel int8 (v2+),
 * Topics [Name, Partitions [PartitionIndex, CurrentLeaderEpoch int32 (v4+),
 * Timestamp int64]].
 * ListOffsetsResponse v1-5: ThrottleTimeMs (v2+), Topics [Name, Partitions
 * [PartitionIndex, ErrorCode, Timestamp int64, Offset int64, LeaderEpoch
 * int32 (v4+)]].
 * Timestamp -1 = latest (next offset), -2 = earliest (log start), both
 * answered with Timestamp -1 as Kafka does; else the first record whose
 * timestamp >= Timestamp, answered with that record's offset and timestamp,
 * or Offset -1 and Timestamp -1 when no record matches (Kafka's
 * UNKNOWN_OFFSET / UNKNOWN_TIMESTAMP). */
int kafka_handle_list_offsets(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;

	(void)kafka_read_i32(r);
	if (v >= 2)
		(void)kafka_read_i8(r);
	int32_t ntopics = kafka_read_array(r, false, false, 6);
	if (kafka_reader_failed(r))
		return -1;
	if (v >= 2)
		kafka_write_i32(w, 0);
	kafka_write_array(w, false, ntopics);
	for (int32_t t = 0; t < ntopics; t++) {
		char name[250];
		struct kafka_str s = kafka_read_string(r, false, false);
		bool name_ok = kafka_topic_name_copy(s, name);
		int32_t np = kafka_read_array(r, false, false, 12);
		if (kafka_reader_failed(r))
			return -1;
		kafka_write_str(w, false, s);
		kafka_write_array(w, false, np);
		for (int32_t i = 0; i < np; i++) {
			int32_t index = kafka_read_i32(r);
			if (v >= 4)
				(void)kafka_read_i32(r);
			int64_t ts = kafka_read_i64(r);
			if (kafka_reader_failed(r))
				return -1;
			struct partition *p = NULL;
			int16_t err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			int64_t offset = -1, found_ts = -1;
			if (name_ok) {
				int rc = engine_partition_get(req->l->e, name, index, &p);
				err = kafka_error_from(rc);
				if (rc)
					p = NULL;
			}
			if (p) {
				struct partition_info info;
				engine_partition_info(p, &info);
				if (ts == -1) {
					offset = info.next_offset;
				} else if (ts == -2) {
					offset = info.log_start_offset;
				} else {
					int rc = offset_for_timestamp(p, ts, &offset, &found_ts);
					err = kafka_error_from(rc);
					if (rc)
						offset = found_ts = -1;
				}
				engine_partition_unref(p);
			}
			kafka_write_i32(w, index);
			kafka_write_i16(w, err);
			kafka_write_i64(w, found_ts);
			kafka_write_i64(w, offset);
			if (v >= 4)
				kafka_write_i32(w, -1); /* LeaderEpoch */
		}
	}
	return 0;
}
