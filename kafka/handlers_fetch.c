/* handlers_fetch.c - Fetch (with long poll) and ListOffsets.
 *
 * FetchRequest v4-17: ReplicaId int32, MaxWaitMs int32, MinBytes int32,
 * MaxBytes int32 (v3+), IsolationLevel int8 (v4+), SessionId int32 (v7+),
 * SessionEpoch int32 (v7+), Topics [Topic string, Partitions [Partition
 * int32, CurrentLeaderEpoch int32 (v9+), FetchOffset int64, LogStartOffset
 * int64 (v5+), PartitionMaxBytes int32]], ForgottenTopicsData (v7+) [Topic,
 * Partitions [int32]], RackId string (v11+); v12 adds LastFetchedEpoch
 * int32 after FetchOffset and a tagged ClusterId (tag 0, skipped).
 * FetchResponse v4-17: ThrottleTimeMs int32, ErrorCode int16 (v7+),
 * SessionId int32 (v7+), Responses [Topic, Partitions [PartitionIndex,
 * ErrorCode, HighWatermark int64, LastStableOffset int64, LogStartOffset
 * int64 (v5+), AbortedTransactions nullable [ProducerId, FirstOffset],
 * PreferredReadReplica int32 (v11+), Records nullable bytes]].
 * v12 is flexible (FetchRequest.json "flexibleVersions": "12+"): compact
 * strings, arrays and bytes, a tagged-fields section closing every struct
 * and the body; the response's tagged DivergingEpoch / CurrentLeader /
 * SnapshotId are never written.
 * v13+ names each topic by its TopicId uuid (kafka_topic_uuid), in the
 * request's Topics and ForgottenTopicsData and in the response, instead of
 * its name; an unknown id gets 100 UNKNOWN_TOPIC_ID on its partitions
 * (finding the name walks the topics: linear in the topics, per topic
 * asked for). v14 only adds an error that never applies (tiered storage);
 * v15 drops ReplicaId (replaced by a tagged ReplicaState, skipped); v16's
 * tagged NodeEndpoints and v17's tagged ReplicaDirectoryId are never
 * written / skipped.
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
 *
 * ZERO COPY. A Fetch response is, byte by byte (v4-17 as above):
 *
 *   ours, in memory   size int32, correlation id, [header tags v12+],
 *                     ThrottleTimeMs, [ErrorCode, SessionId v7+],
 *                     Responses count; per topic its name (v13+: TopicId)
 *                     and partition count; per partition PartitionIndex,
 *                     ErrorCode, HighWatermark, LastStableOffset,
 *                     [LogStartOffset v5+], AbortedTransactions (empty),
 *                     [PreferredReadReplica v11+], and the Records length
 *                     (int32, v12+ uvarint length + 1), then
 *   the records       the partition's stored batches: spans, each either a
 *                     range of a WAL file or segment file (fd, offset,
 *                     length: the batches as they lie on disk) or bytes in
 *                     memory (what must be transformed or copied,
 *                     engine.h: engine_read_batch_spans), in offset order;
 *   ours again        [partition tags v12+], then the next partition, the
 *                     topic's tags, ..., the body's tags.
 *
 * The length prefix counts the spans' bytes; the size field counts the
 * buffer and every file span (codec.h: file pieces). On a plaintext
 * connection with kafka.fetch.sendfile on (the default), the handler reads
 * the spans (engine_read_batch_spans, the same batches as
 * engine_read_batches for the same offset and max bytes, so the response
 * is byte for byte the one the copy path builds), copies the memory spans
 * into the response buffer, puts each file span into the writer as a file
 * piece and hands the writer the spans' descriptors (dup'd by the engine
 * under its locks). The listener sends the buffer's bytes with send(2)
 * and each file piece with sendfile(2) (listener.c), then closes the
 * descriptors. What keeps a file there while it is sent is that
 * descriptor: the indexer, retention and compaction only unlink files and
 * close their own descriptors, and no file's bytes change at a position
 * once a reader could see them, so the bytes sent are the ones the
 * lengths promised. A long poll holds the descriptors of what it has read
 * while it waits (at most FETCH_MAX_WAIT_MS); the listener closes them as
 * soon as the response is sent, so an idle connection holds none. A
 * descriptor the engine cannot duplicate (EMFILE) turns its span into a
 * copy. On a TLS connection, or with the setting off, the
 * batches are read into memory (engine_read_batches) and copied into the
 * response buffer as before.
 *
 * Cost. The Topics array is walked once to count the partition entries,
 * once to resolve them, and once more to write the response (names,
 * counts and partition indexes are read again from the request, not kept);
 * the response is sized in advance. An entry costs 4 bytes (its slot:
 * a state, or the error it is answered with); only an entry that names a
 * partition that exists has a state (struct fetch_part). Time and memory
 * are linear in the request.
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
	struct partition *p; /* NULL: error says why */
	/* Whole batches read so far, from the one holding fetch_offset up to
	 * (not including) next_read. A long poll appends to them; it never
	 * reads the same bytes twice. len <= FETCH_RESPONSE_MAX. */
	uint8_t *data;
	/* With sendfile: the same batches as spans (data stays NULL). */
	struct engine_spans sp;
	int64_t fetch_offset;
	int64_t next_read;
	/* next_offset when this partition was last read; the long poll waits
	 * for it to move. -1 before the first read. */
	int64_t hw_seen;
	int64_t log_start_offset, next_offset; /* as last read */
	uint32_t len;
	int32_t max_bytes;
	int16_t error;
	bool full; /* max bytes reached: no more reads */
};
_Static_assert(FETCH_RESPONSE_MAX <= UINT32_MAX, "fetch_part.len holds a response");

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

/* Read up to want more bytes of fp as spans (fetch_read_all's rules). */
static void fetch_read_spans(struct fetch_part *fp, size_t want, bool *any_error)
{
	struct engine_spans more;
	engine_spans_init(&more);
	int rc = engine_read_batch_spans(fp->p, fp->next_read, want, &more);
	if (rc) {
		fp->error = kafka_error_from(rc);
		engine_spans_fini(&fp->sp);
		fp->len = 0;
		*any_error = true;
		return;
	}
	if (fp->len > 0 && more.len > want) {
		fp->full = true; /* as below: waits for the next fetch */
	} else if (more.len > 0) {
		int64_t next = more.next_offset;
		size_t mlen = more.len;
		if (engine_spans_move(&fp->sp, &more)) {
			fp->full = true;
		} else {
			fp->next_read = next;
			fp->len += (uint32_t)mlen;
		}
	}
	engine_spans_fini(&more);
}

/* Read what is new in every partition since the last call (all of it the
 * first time), within the request's and each partition's max bytes: as
 * spans (spans set), else into fp->data. */
static void fetch_read_all(struct fetch_part *parts, int32_t n, size_t max_bytes, bool spans,
			   size_t *total, bool *any_error)
{
	*total = 0;
	*any_error = false;
	for (int32_t i = 0; i < n; i++) {
		struct fetch_part *fp = &parts[i];
		if (!fp->p) {
			*any_error = true;
			continue;
		}
		struct partition_info info;
		engine_partition_info(fp->p, &info);
		fp->log_start_offset = info.log_start_offset;
		fp->next_offset = info.next_offset;
		if (fp->fetch_offset < fp->log_start_offset || fp->fetch_offset > fp->next_offset) {
			fp->error = KERR_OFFSET_OUT_OF_RANGE;
			*any_error = true;
			continue;
		}
		fp->error = KERR_NONE;
		if (fp->next_offset == fp->hw_seen || fp->full || fp->max_bytes <= 0 ||
		    fp->next_read >= fp->next_offset) {
			fp->hw_seen = fp->next_offset;
			*total += fp->len;
			continue;
		}
		fp->hw_seen = fp->next_offset;
		size_t left = max_bytes > *total + fp->len ? max_bytes - *total - fp->len : 0;
		size_t pleft = (size_t)fp->max_bytes > fp->len ? (size_t)fp->max_bytes - fp->len :
								 0;
		size_t want = pleft < left ? pleft : left;
		if (want == 0) {
			/* The response (or this partition) is full. */
			*total += fp->len;
			continue;
		}
		if (spans) {
			fetch_read_spans(fp, want, any_error);
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
				fp->len += (uint32_t)mlen;
			}
		} else {
			free(more);
		}
		*total += fp->len;
	}
}

/* The Records field from spans: the length, then each span, memory into
 * the buffer and files as pieces; the writer takes the descriptors. */
static void fetch_write_spans(struct kafka_writer *w, bool f, struct engine_spans *sp)
{
	kafka_write_bytes_len(w, f, (int32_t)sp->len);
	for (size_t i = 0; i < sp->n; i++) {
		const struct engine_span *s = &sp->v[i];
		if (s->mem)
			kafka_write_raw(w, s->mem, s->len);
		else
			kafka_write_file(w, s->fd, s->off, s->len);
	}
	for (size_t i = 0; i < sp->nfds; i++)
		kafka_writer_own_fd(w, sp->fds[i]);
	sp->nfds = 0;
}

/* The partition states of one request, and each entry's slot: >= 0 the
 * index of its state, < 0 -1 - the error code it is answered with. */
struct fetch_set {
	struct fetch_part *parts; /* nparts used, cap allocated */
	int32_t nparts, cap;
	int32_t *slot; /* one per entry */
	int32_t nentries;
	bool unresolved; /* some entry has no state */
	size_t name_bytes; /* topic names and counts, as the response repeats them */
};

/* Walk the Topics array of a FetchRequest. Without fs, count the entries;
 * with fs and no w, resolve each entry in the engine (fill fs); with w,
 * write the Responses array from fs. Returns the number of entries, or -1
 * for a malformed request or ENOMEM. */
static int32_t fetch_walk(struct kafka_request *req, struct kafka_reader r, int32_t ntopics,
			  struct fetch_set *fs, struct kafka_writer *w, struct kafka_reader *after)
{
	int16_t v = req->api_version;
	bool f = req->flexible;
	int32_t n = 0;
	if (w)
		kafka_write_array(w, f, ntopics);
	for (int32_t t = 0; t < ntopics; t++) {
		struct kafka_str name = { "", 0 };
		const uint8_t *id = NULL;
		char topic[250];
		bool name_ok = false;
		int16_t topic_err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		if (v >= 13) { /* TopicId instead of the name */
			id = r.p;
			kafka_read_skip(&r, 16);
			if (fs && !w && !kafka_reader_failed(&r)) {
				name_ok = kafka_topic_name_by_uuid(req->l->e, id, topic);
				topic_err = KERR_UNKNOWN_TOPIC_ID;
			}
		} else {
			name = kafka_read_string(&r, f, false);
			name_ok = fs && !w && kafka_topic_name_copy(name, topic);
		}
		int32_t np = kafka_read_array(&r, f, false, 16);
		if (kafka_reader_failed(&r))
			return -1;
		if (w) {
			if (id)
				kafka_write_raw(w, id, 16);
			else
				kafka_write_str(w, f, name);
			kafka_write_array(w, f, np);
		} else if (fs) {
			fs->name_bytes +=
				2 + (size_t)(name.len > 0 ? name.len : 0) + 4 + (id ? 16 : 0);
		}
		for (int32_t i = 0; i < np; i++) {
			int32_t partition = kafka_read_i32(&r);
			if (v >= 9)
				(void)kafka_read_i32(&r); /* CurrentLeaderEpoch */
			int64_t fetch_offset = kafka_read_i64(&r);
			if (v >= 12)
				(void)kafka_read_i32(&r); /* LastFetchedEpoch */
			if (v >= 5)
				(void)kafka_read_i64(&r); /* LogStartOffset */
			int32_t max_bytes = kafka_read_i32(&r);
			if (f)
				kafka_read_tags(&r);
			if (kafka_reader_failed(&r) || (fs && n >= fs->nentries))
				return -1;
			int32_t k = n++;
			if (!fs)
				continue;
			if (w) {
				int32_t sl = fs->slot[k];
				struct fetch_part *fp = sl >= 0 ? &fs->parts[sl] : NULL;
				int16_t error = fp ? fp->error : (int16_t)(-1 - sl);
				bool ok = fp && error == KERR_NONE;
				kafka_write_i32(w, partition);
				kafka_write_i16(w, error);
				kafka_write_i64(w, fp ? fp->next_offset : -1); /* HighWatermark */
				kafka_write_i64(w,
						fp ? fp->next_offset : -1); /* LastStableOffset */
				if (v >= 5)
					kafka_write_i64(w, fp ? fp->log_start_offset : -1);
				kafka_write_array(w, f, 0); /* AbortedTransactions */
				if (v >= 11)
					kafka_write_i32(w, -1); /* PreferredReadReplica */
				if (ok && fp->sp.n) {
					fetch_write_spans(w, f, &fp->sp);
				} else {
					kafka_write_bytes(w, f,
							  ok && fp->data ? fp->data :
									   (const uint8_t *)"",
							  ok ? (int32_t)fp->len : 0);
				}
				if (f)
					kafka_write_tags(w);
				continue;
			}
			struct partition *p = NULL;
			bool allowed = name_ok &&
				       kafka_conn_allows(req->c, KACL_READ, KACL_TOPIC, topic);
			int prc = allowed ? engine_partition_get(req->l->e, topic, partition, &p) :
					    -ENOENT;
			if (prc) {
				int16_t err = allowed ? kafka_error_from(prc) :
					      name_ok ? KERR_TOPIC_AUTHORIZATION_FAILED :
							topic_err;
				fs->slot[k] = -1 - err;
				fs->unresolved = true;
				continue;
			}
			if (fs->nparts == fs->cap) {
				int32_t cap = fs->cap ? 2 * fs->cap : 16;
				struct fetch_part *np2 =
					realloc(fs->parts, (size_t)cap * sizeof(*np2));
				if (!np2) {
					engine_partition_unref(p);
					return -1;
				}
				fs->parts = np2;
				fs->cap = cap;
			}
			struct fetch_part *fp = &fs->parts[fs->nparts];
			*fp = (struct fetch_part){
				.p = p,
				.fetch_offset = fetch_offset,
				.next_read = fetch_offset,
				.hw_seen = -1,
				.max_bytes = max_bytes,
				.error = KERR_NONE,
			};
			engine_spans_init(&fp->sp);
			fs->slot[k] = fs->nparts++;
		}
		if (f) {
			kafka_read_tags(&r);
			if (kafka_reader_failed(&r))
				return -1;
			if (w)
				kafka_write_tags(w);
		}
	}
	if (after)
		*after = r;
	return n;
}

int kafka_handle_fetch(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	struct fetch_set fs = { 0 };
	int32_t ntopics;
	int rc = -1;

	if (v <= 14)
		(void)kafka_read_i32(r); /* ReplicaId (v15+: tagged ReplicaState) */
	int32_t max_wait = kafka_read_i32(r);
	int32_t min_bytes = kafka_read_i32(r);
	int32_t max_bytes = kafka_read_i32(r);
	(void)kafka_read_i8(r); /* IsolationLevel: no transactions, same data */
	if (v >= 7) {
		(void)kafka_read_i32(r); /* SessionId */
		(void)kafka_read_i32(r); /* SessionEpoch */
	}
	/* Smallest topic: name 2 + count 4 (flexible: 1 + 1 + tags 1).
	 * Smallest partition: 4 + 8 + 4. */
	bool f = req->flexible;
	ntopics = kafka_read_array(r, f, false, f ? 3 : 6);
	if (kafka_reader_failed(r))
		return -1;
	struct kafka_reader topics_at = *r;
	/* Count the entries; the reader goes on after the Topics array. */
	int32_t count = fetch_walk(req, topics_at, ntopics, NULL, NULL, r);
	if (count < 0)
		return -1;
	if (v >= 7) {
		int32_t nf = kafka_read_array(r, f, false, f ? 3 : 6);
		for (int32_t i = 0; i < nf && !kafka_reader_failed(r); i++) {
			if (v >= 13)
				kafka_read_skip(r, 16); /* TopicId */
			else
				(void)kafka_read_string(r, f, false);
			int32_t ni = kafka_read_array(r, f, false, 4);
			kafka_read_skip(r, (size_t)ni * 4);
			if (f)
				kafka_read_tags(r);
		}
	}
	if (v >= 11)
		(void)kafka_read_string(r, f, false); /* RackId */
	if (f)
		kafka_read_tags(r); /* ClusterId (tag 0) and any other: skipped */
	if (kafka_reader_failed(r))
		return -1;

	fs.nentries = count;
	fs.slot = malloc(((size_t)count + 1) * sizeof(*fs.slot));
	if (!fs.slot)
		return -1;
	if (fetch_walk(req, topics_at, ntopics, &fs, NULL, NULL) != count)
		goto out;
	struct fetch_part *parts = fs.parts;
	int32_t nparts = fs.nparts;

	size_t limit = max_bytes > 0 ? (size_t)max_bytes : 0;
	if (limit > FETCH_RESPONSE_MAX)
		limit = FETCH_RESPONSE_MAX;
	size_t total;
	bool any_error;
	if (max_wait > FETCH_MAX_WAIT_MS)
		max_wait = FETCH_MAX_WAIT_MS;
	int64_t deadline = kafka_now_ms() + (max_wait > 0 ? max_wait : 0);
	int turn = 0;
	bool spans = req->l->o.fetch_sendfile && !req->c->ssl;
	for (;;) {
		fetch_read_all(parts, nparts, limit, spans, &total, &any_error);
		any_error = any_error || fs.unresolved;
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

	/* The response's size is known: reserve it, one allocation. */
	size_t per_entry = 4 + 2 + 8 + 8 + (v >= 5 ? 8 : 0) + 4 + (v >= 11 ? 4 : 0) + 4 + 1;
	size_t want = 4 + 6 + 4 + fs.name_bytes + (size_t)count * per_entry;
	for (int32_t i = 0; i < nparts; i++)
		want += parts[i].sp.n ? parts[i].sp.mem_len : parts[i].len;
	kafka_writer_reserve(w, want);
	kafka_write_i32(w, 0); /* ThrottleTimeMs */
	if (v >= 7) {
		kafka_write_i16(w, KERR_NONE);
		kafka_write_i32(w, 0); /* SessionId: no session */
	}
	fetch_walk(req, topics_at, ntopics, &fs, w, NULL);
	if (f)
		kafka_write_tags(w);
	rc = 0;
out:
	for (int32_t i = 0; i < fs.nparts; i++) {
		free(fs.parts[i].data);
		engine_spans_fini(&fs.parts[i].sp);
		engine_partition_unref(fs.parts[i].p);
	}
	free(fs.parts);
	free(fs.slot);
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

/* The record with the largest timestamp (the first of them, in offset
 * order): *offset and *found_ts, both -1 when the partition holds none.
 * A scan from the log start: linear in the partition. */
static int offset_of_max_timestamp(struct partition *p, int64_t from, int64_t *offset,
				   int64_t *found_ts)
{
	struct engine_cursor *c;
	struct engine_record rec;
	int rc;

	*offset = *found_ts = -1;
	rc = engine_cursor_open(p, from, &c);
	if (rc == CHRONIK_ERANGE)
		return 0;
	if (rc)
		return rc;
	while ((rc = engine_cursor_next(c, &rec)) == 1) {
		if (rec.offset < from)
			continue;
		if (*offset < 0 || rec.timestamp > *found_ts) {
			*offset = rec.offset;
			*found_ts = rec.timestamp;
		}
	}
	engine_cursor_close(c);
	return rc < 0 ? rc : 0;
}

/* ListOffsetsRequest v1-7: ReplicaId int32, IsolationLevel int8 (v2+),
 * Topics [Name, Partitions [PartitionIndex, CurrentLeaderEpoch int32 (v4+),
 * Timestamp int64]].
 * ListOffsetsResponse v1-7: ThrottleTimeMs (v2+), Topics [Name, Partitions
 * [PartitionIndex, ErrorCode, Timestamp int64, Offset int64, LeaderEpoch
 * int32 (v4+)]].
 * v6+ is flexible (compact forms, tagged fields closing every struct); v7
 * adds Timestamp -3 (KIP-734, MAX_TIMESTAMP): the record with the largest
 * timestamp, answered with its offset and timestamp (-1 / -1 when empty).
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

	bool f = req->flexible;

	(void)kafka_read_i32(r);
	if (v >= 2)
		(void)kafka_read_i8(r);
	int32_t ntopics = kafka_read_array(r, f, false, f ? 3 : 6);
	if (kafka_reader_failed(r))
		return -1;
	if (v >= 2)
		kafka_write_i32(w, 0);
	kafka_write_array(w, f, ntopics);
	for (int32_t t = 0; t < ntopics; t++) {
		char name[250];
		struct kafka_str s = kafka_read_string(r, f, false);
		bool name_ok = kafka_topic_name_copy(s, name);
		int32_t np = kafka_read_array(r, f, false, 12);
		if (kafka_reader_failed(r))
			return -1;
		kafka_write_str(w, f, s);
		kafka_write_array(w, f, np);
		for (int32_t i = 0; i < np; i++) {
			int32_t index = kafka_read_i32(r);
			if (v >= 4)
				(void)kafka_read_i32(r);
			int64_t ts = kafka_read_i64(r);
			if (f)
				kafka_read_tags(r);
			if (kafka_reader_failed(r))
				return -1;
			struct partition *p = NULL;
			int16_t err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			int64_t offset = -1, found_ts = -1;
			if (name_ok && !kafka_conn_allows(req->c, KACL_ALL, KACL_TOPIC, name)) {
				err = KERR_TOPIC_AUTHORIZATION_FAILED; /* no Describe */
			} else if (name_ok) {
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
				} else if (ts == -3 && v >= 7) {
					int rc = offset_of_max_timestamp(p, info.log_start_offset,
									 &offset, &found_ts);
					err = kafka_error_from(rc);
					if (rc)
						offset = found_ts = -1;
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
			if (f)
				kafka_write_tags(w);
		}
		if (f) {
			kafka_read_tags(r);
			kafka_write_tags(w);
		}
	}
	if (f)
		kafka_write_tags(w);
	return 0;
}
