/* handlers_produce.c - Produce and InitProducerId, with the idempotent
 * producer's sequence checks.
 *
 * ProduceRequest v0-9: TransactionalId nullable string (v3+), Acks int16,
 * TimeoutMs int32, Topics [Name, Partitions [PartitionIndex int32, Records
 * nullable bytes]].
 * ProduceResponse v0-9: Responses [Name, Partitions [PartitionIndex,
 * ErrorCode, BaseOffset int64, LogAppendTimeMs int64 (v2+), LogStartOffset
 * int64 (v5+), RecordErrors [BatchIndex int32, BatchIndexErrorMessage
 * nullable string] (v8+, always empty here), ErrorMessage nullable string
 * (v8+, null)]], ThrottleTimeMs int32 (v1+).
 * v9 is flexible (ProduceRequest.json "flexibleVersions": "9+"): every
 * string, bytes and array above takes its compact form and every struct,
 * the whole body included, ends with a tagged-fields section (codec.h).
 * Unknown tags are skipped; none are written. v10 adds tagged leader
 * hints for KRaft leader changes and is not served.
 *
 * Only v3+ (RecordBatch v2) is served; v0-2 are parsed and every partition
 * answered with 43 UNSUPPORTED_FOR_MESSAGE_FORMAT (advertising Produce from
 * v0 keeps librdkafka's compression enabled). As in Kafka, a v3+ Records
 * field holds exactly one batch; its CRC32C is checked by the engine, which
 * patches the base offset in place and stores the rest byte for byte.
 *
 * Idempotence. A batch with producerId >= 0 is checked against the state
 * of (producerId, topic, partition): the last sequence appended, and the
 * sequence ranges and base offsets of the last 5 batches (a producer has
 * at most 5 requests in flight). A batch equal to one of those is a retry:
 * it is answered with the original base offset and not appended again. A
 * batch whose base sequence is not last + 1 (mod 2^31) gets 45
 * OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch gets 47 INVALID_PRODUCER_EPOCH.
 * Unknown producers (e.g. after a restart: the state is in memory) start
 * from whatever sequence they send. The state's lock is held across the
 * check and the append, so two retries of one batch cannot both append.
 *
 * Pipelined batches. The appends of a request are started (queued in the
 * engine, engine_append_start) before any of them is finished, and the
 * connection may start the next Produce before this one's group is
 * written (listener.c, PIPELINING). So the state counts a started append
 * as if stored: its sequence range enters the recent batches marked
 * pending and last_seq moves past it, under the state's lock, so the
 * checks run in the order the batches go to the engine, which is also
 * the order of their offsets. When the append is finished the entry gets
 * its base offset; when it failed the entry is dropped and, if no later
 * batch was started since, last_seq goes back before it, so the
 * producer's retry of it is accepted. If later batches were started, they
 * may be stored (a failed write or fsync fails one group, commit.c rule 1
 * and 2, and the next group can succeed): the retry then gets 45
 * OUT_OF_ORDER_SEQUENCE_NUMBER, as Kafka answers a sequence gap, and
 * nothing acknowledged is lost or stored twice. A retry of a batch whose
 * append is still pending is answered when it is finished: with the
 * original's offset once that is stored (on one connection the original
 * is finished first), else 7 REQUEST_TIMED_OUT (retriable: the original
 * failed, or is still pending on another connection; the next retry finds
 * the outcome). The first batch of a state and a batch of a
 * newer epoch restart the sequences: those are appended synchronously
 * (engine_append_batch, the state's lock held), so a restart that fails
 * leaves the older epoch's state as it was.
 *
 * The order of the checks: the batch CRC first (a bad one gets 2
 * CORRUPT_MESSAGE before any producer field is looked at, since those
 * fields are inside the CRC), then the epoch and sequence checks, then the
 * append. The state changes only after a successful append: a batch of a
 * newer epoch restarts the sequences once it is stored, so a newer epoch
 * that fails (bad CRC, full disk) leaves the older epoch's retries
 * recognised.
 *
 * The states live in a table of at most max_producer_states (default
 * PSTATE_MAX) entries kept in least-recently-used order. When it is full, a
 * new (producer, partition) takes the place of the least recently used
 * state that has been idle for producer_state_evict_idle_ms (default 5
 * minutes, past the delivery timeouts of the common clients, so no retry of
 * the evicted producer can still be in flight); a producer that comes back
 * after that starts afresh, as after a restart. When no state is that idle
 * the batch is refused with 7 REQUEST_TIMED_OUT (retriable) rather than
 * appended without the duplicate check.
 *
 * Several partitions. Every batch of a request is started in request
 * order and then finished, so they share a group commit rather than
 * waiting for one each, and a partition named twice keeps its order. The
 * response is written after all of them, in request order.
 *
 * Two steps. kafka_handle_produce starts the appends; when the request
 * may be deferred (req->defer, set by the connection loop) it leaves the
 * response to kafka_produce_finish, which the connection calls later, in
 * request order; else it finishes them at once.
 *
 * Cost. Every step is linear in the request: the Topics array is walked to
 * count the batches, to fill their jobs and to write the response; repeats
 * are found with a hash table. Only a batch (at least BATCH_HEADER_SIZE
 * request bytes) takes a job (under 64 bytes); an entry answered without
 * the engine (bad name, no batch) takes nothing but its response.
 */
#include "kafka-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "log.h"

#define RECENT_BATCHES 5
#define PSTATE_BUCKETS 1024
#define PSTATE_MAX 65536
#define PSTATE_EVICT_IDLE_MS 300000

enum recent_state { RECENT_EMPTY, RECENT_PENDING, RECENT_STORED };

struct recent_batch {
	int32_t first_seq, last_seq;
	int64_t base_offset; /* RECENT_STORED only */
	enum recent_state state;
	uint64_t id; /* finds a pending entry again (pstate.next_id) */
};

struct pstate {
	int64_t producer_id;
	int32_t partition;
	char topic[250];
	pthread_mutex_t lock; /* held across sequence check + append */
	/* Under kafka_producers.lock: */
	int users; /* batches being checked or pending (never evicted then) */
	int64_t last_used_ms;
	struct pstate *lru_prev, *lru_next; /* most recent first */
	/* Under lock: */
	bool known; /* the fields below are valid */
	int16_t epoch;
	int32_t last_seq;
	struct recent_batch recent[RECENT_BATCHES];
	int nrecent, next_recent;
	uint64_t next_id; /* ids of pending entries */
	struct pstate *next;
};

struct kafka_producers {
	pthread_mutex_t lock; /* guards buckets, count, the LRU list, next_id */
	struct pstate *buckets[PSTATE_BUCKETS];
	struct pstate *lru_head, *lru_tail;
	size_t count, max;
	int64_t evict_idle_ms;
	int64_t next_id;
};

int kafka_producers_new(const struct kafka_options *o, struct kafka_producers **out)
{
	struct kafka_producers *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->max = o->max_producer_states > 0 ? (size_t)o->max_producer_states : PSTATE_MAX;
	p->evict_idle_ms = o->producer_state_evict_idle_ms >= 0 ? o->producer_state_evict_idle_ms :
								  PSTATE_EVICT_IDLE_MS;
	/* Ids unique across restarts: seconds since the epoch in the high
	 * bits, a counter below. */
	p->next_id = (kafka_wall_ms() / 1000) << 20;
	*out = p;
	return 0;
}

void kafka_producers_free(struct kafka_producers *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < PSTATE_BUCKETS; i++) {
		struct pstate *s = p->buckets[i];
		while (s) {
			struct pstate *n = s->next;
			pthread_mutex_destroy(&s->lock);
			free(s);
			s = n;
		}
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static size_t pstate_hash(int64_t pid, const char *topic, int32_t partition)
{
	uint64_t h = (uint64_t)pid * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uint32_t)partition;
	for (const char *c = topic; *c; c++)
		h = (h ^ (unsigned char)*c) * 0x100000001B3ull;
	return (size_t)(h % PSTATE_BUCKETS);
}

static void lru_unlink(struct kafka_producers *p, struct pstate *s)
{
	if (s->lru_prev)
		s->lru_prev->lru_next = s->lru_next;
	else
		p->lru_head = s->lru_next;
	if (s->lru_next)
		s->lru_next->lru_prev = s->lru_prev;
	else
		p->lru_tail = s->lru_prev;
	s->lru_prev = s->lru_next = NULL;
}

static void lru_push_front(struct kafka_producers *p, struct pstate *s)
{
	s->lru_prev = NULL;
	s->lru_next = p->lru_head;
	if (p->lru_head)
		p->lru_head->lru_prev = s;
	p->lru_head = s;
	if (!p->lru_tail)
		p->lru_tail = s;
}

/* Make room in a full table: free the least recently used state if nobody
 * holds it and it has been idle for evict_idle_ms. Under p->lock. */
static bool pstate_evict_one(struct kafka_producers *p, int64_t now)
{
	struct pstate *s = p->lru_tail;
	while (s && s->users > 0)
		s = s->lru_prev;
	if (!s || now - s->last_used_ms < p->evict_idle_ms)
		return false;
	struct pstate **pp = &p->buckets[pstate_hash(s->producer_id, s->topic, s->partition)];
	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	lru_unlink(p, s);
	p->count--;
	pthread_mutex_destroy(&s->lock);
	free(s);
	return true;
}

/* The state of (pid, topic, partition), created if needed, held until
 * pstate_put. NULL when it cannot be tracked: the table is full of states
 * used within evict_idle_ms (or memory is short). */
static struct pstate *pstate_get(struct kafka_producers *p, int64_t pid, const char *topic,
				 int32_t partition)
{
	size_t h = pstate_hash(pid, topic, partition);
	int64_t now = kafka_now_ms();
	struct pstate *s;

	pthread_mutex_lock(&p->lock);
	for (s = p->buckets[h]; s; s = s->next)
		if (s->producer_id == pid && s->partition == partition &&
		    strcmp(s->topic, topic) == 0)
			break;
	if (!s && (p->count < p->max || pstate_evict_one(p, now))) {
		s = calloc(1, sizeof(*s));
		if (s) {
			s->producer_id = pid;
			s->partition = partition;
			snprintf(s->topic, sizeof(s->topic), "%s", topic);
			pthread_mutex_init(&s->lock, NULL);
			s->next = p->buckets[h];
			p->buckets[h] = s;
			p->count++;
			lru_push_front(p, s);
		}
	} else if (s) {
		lru_unlink(p, s);
		lru_push_front(p, s);
	}
	if (s) {
		s->users++;
		s->last_used_ms = now;
	}
	pthread_mutex_unlock(&p->lock);
	return s;
}

static void pstate_put(struct kafka_producers *p, struct pstate *s)
{
	pthread_mutex_lock(&p->lock);
	s->users--;
	s->last_used_ms = kafka_now_ms();
	pthread_mutex_unlock(&p->lock);
}

static int32_t seq_add(int32_t seq, int32_t n)
{
	int64_t v = (int64_t)seq + n;
	if (v > INT32_MAX)
		v -= (int64_t)INT32_MAX + 1;
	return (int32_t)v;
}

static int32_t seq_prev(int32_t seq)
{
	return seq == 0 ? INT32_MAX : seq - 1;
}

/* One partition of a Produce request that goes to the engine: a valid
 * topic name and a Records field of at least a batch header. The other
 * entries (a bad name, null or short records, v0-2, bad acks) are answered
 * from the request itself and take no memory. */
struct produce_job {
	struct kafka_str topic; /* in the request buffer; a valid name */
	uint8_t *rec; /* in the request buffer (writable: the base offset is patched) */
	int32_t rec_len;
	int32_t index;
	int64_t base_offset, log_start;
	int16_t err;
	/* Between produce_start and produce_finish: */
	struct partition *p; /* referenced, or NULL when answered at start */
	struct engine_append *append; /* started, not finished; or NULL */
	struct pstate *ps; /* held (pstate_get) while append is pending */
	uint64_t recent_id; /* ps's pending entry: append's, or (no append) a retry's original */
};

/* Record a started batch in ps as pending (under ps->lock). */
static void pstate_note_pending(struct pstate *ps, const struct batch_header *h, int32_t last_seq,
				struct produce_job *j)
{
	j->recent_id = ++ps->next_id;
	ps->last_seq = last_seq;
	ps->recent[ps->next_recent] = (struct recent_batch){
		.first_seq = h->base_sequence,
		.last_seq = last_seq,
		.base_offset = -1,
		.state = RECENT_PENDING,
		.id = j->recent_id,
	};
	ps->next_recent = (ps->next_recent + 1) % RECENT_BATCHES;
	if (ps->nrecent < RECENT_BATCHES)
		ps->nrecent++;
}

/* The outcome of a pending batch (under ps->lock): stored at base_offset,
 * or dropped (rc != 0), last_seq going back before it when no later batch
 * was started since. An entry that a restart cleared is gone: nothing to
 * do. */
static void pstate_note_done(struct pstate *ps, uint64_t id, int rc, int64_t base_offset)
{
	for (int i = 0; i < ps->nrecent; i++) {
		struct recent_batch *b = &ps->recent[i];
		if (b->state != RECENT_PENDING || b->id != id)
			continue;
		if (rc == 0) {
			b->state = RECENT_STORED;
			b->base_offset = base_offset;
		} else {
			b->state = RECENT_EMPTY;
			if (ps->last_seq == b->last_seq)
				ps->last_seq = seq_prev(b->first_seq);
		}
		return;
	}
}

/* Start the append of one batch to topic/partition (j->rec). Returns a
 * Kafka error code; on KERR_NONE either j->append is started (finish it
 * with produce_finish) or the answer is already in j (a retry, or a
 * restart appended synchronously). */
static int16_t produce_start(struct kafka_request *req, const char *topic, struct produce_job *j)
{
	struct batch_header h;
	struct partition *p = NULL;
	struct pstate *ps = NULL;
	uint8_t *batch = j->rec;
	size_t len = (size_t)j->rec_len;
	int32_t partition = j->index;
	int64_t *base_offset = &j->base_offset;
	int16_t err = KERR_NONE;
	int rc;

	if (len < BATCH_HEADER_SIZE)
		return KERR_CORRUPT_MESSAGE;
	/* Exactly one batch: batchLength + 12 must cover the whole field. */
	uint32_t blen = kafka_get_be32(batch + 8);
	if ((uint64_t)blen + 12 != len)
		return (uint64_t)blen + 12 < len ? KERR_INVALID_RECORD : KERR_CORRUPT_MESSAGE;
	rc = batch_header_parse(batch, len, &h);
	if (rc)
		return kafka_error_from(rc);
	/* The producer fields are trusted only once the CRC covers them. */
	rc = batch_crc_check(batch, len);
	if (rc)
		return kafka_error_from(rc);

	rc = engine_partition_get(req->l->e, topic, partition, &p);
	if (rc)
		return kafka_error_from(rc);

	if (h.producer_id >= 0) {
		ps = pstate_get(req->l->producers, h.producer_id, topic, partition);
		if (!ps) {
			/* Appending without the duplicate check could store a
			 * retry twice: refuse, retriably. */
			log_msg(LOG_LVL_WARN, "kafka",
				"producer state table full (%zu): batch of producer %lld refused",
				req->l->producers->max, (long long)h.producer_id);
			engine_partition_unref(p);
			return KERR_REQUEST_TIMED_OUT;
		}
		pthread_mutex_lock(&ps->lock);
	}
	int32_t last_seq = seq_add(h.base_sequence, h.last_offset_delta);
	/* A new epoch restarts the sequences, but only once its batch is
	 * stored (below): until then the old epoch's state stays. */
	bool restart = ps && (!ps->known || h.producer_epoch > ps->epoch);
	if (ps && ps->known) {
		if (h.producer_epoch < ps->epoch) {
			err = KERR_INVALID_PRODUCER_EPOCH;
			goto out;
		}
		if (h.producer_epoch == ps->epoch) {
			for (int i = 0; i < ps->nrecent; i++) {
				const struct recent_batch *b = &ps->recent[i];
				if (b->state == RECENT_EMPTY || b->first_seq != h.base_sequence ||
				    b->last_seq != last_seq)
					continue;
				if (b->state == RECENT_PENDING) {
					/* Answered at produce_finish. */
					j->recent_id = b->id;
					pthread_mutex_unlock(&ps->lock);
					j->ps = ps;
					j->p = p;
					return KERR_NONE;
				}
				*base_offset = b->base_offset;
				goto info; /* a retry: already stored */
			}
			if (h.base_sequence != seq_add(ps->last_seq, 1)) {
				err = KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
				goto out;
			}
		}
	}

	/* The CRC is checked above. A restart is stored before the state
	 * changes (below); every other batch is only started. */
	if (restart)
		rc = engine_append_batch(p, batch, len, false, base_offset);
	else
		rc = engine_append_start(p, batch, len, false, &j->append);
	if (rc) {
		err = kafka_error_from(rc);
		goto out;
	}
	if (j->append) {
		if (ps) {
			pstate_note_pending(ps, &h, last_seq, j);
			pthread_mutex_unlock(&ps->lock);
			j->ps = ps; /* held until produce_finish */
		}
		j->p = p;
		return KERR_NONE;
	}
	/* ps && restart: stored. */
	ps->nrecent = 0;
	ps->next_recent = 0;
	ps->known = true;
	ps->epoch = h.producer_epoch;
	pstate_note_pending(ps, &h, last_seq, j);
	pstate_note_done(ps, j->recent_id, 0, *base_offset);
info:
	j->p = p;
	p = NULL;
out:
	if (ps) {
		pthread_mutex_unlock(&ps->lock);
		pstate_put(req->l->producers, ps);
	}
	engine_partition_unref(p);
	return err;
}

static void produce_job_start(struct kafka_request *req, struct produce_job *j)
{
	char topic[250];
	j->base_offset = -1;
	j->log_start = -1;
	if (!kafka_topic_name_copy(j->topic, topic))
		j->err = KERR_UNKNOWN_TOPIC_OR_PARTITION; /* checked when parsed */
	else if (!kafka_conn_allows(req->c, KACL_WRITE, KACL_TOPIC, topic))
		j->err = KERR_TOPIC_AUTHORIZATION_FAILED;
	else
		j->err = produce_start(req, topic, j);
	if (j->err)
		j->base_offset = -1;
}

/* Wait for j's append if it was started, note its outcome in the
 * producer state, and fill the answer (base offset, log start). */
static void produce_job_finish(struct kafka_producers *producers, struct produce_job *j)
{
	if (j->append) {
		int rc = engine_append_finish(j->append, &j->base_offset);
		j->append = NULL;
		if (j->ps) {
			pthread_mutex_lock(&j->ps->lock);
			pstate_note_done(j->ps, j->recent_id, rc, j->base_offset);
			pthread_mutex_unlock(&j->ps->lock);
			pstate_put(producers, j->ps);
			j->ps = NULL;
		}
		if (rc) {
			j->err = kafka_error_from(rc);
			j->base_offset = -1;
		}
	} else if (j->ps) { /* a retry of a batch that was pending */
		pthread_mutex_lock(&j->ps->lock);
		j->err = KERR_REQUEST_TIMED_OUT;
		for (int i = 0; i < j->ps->nrecent; i++) {
			const struct recent_batch *b = &j->ps->recent[i];
			if (b->id == j->recent_id && b->state == RECENT_STORED) {
				j->err = KERR_NONE;
				j->base_offset = b->base_offset;
			}
		}
		pthread_mutex_unlock(&j->ps->lock);
		pstate_put(producers, j->ps);
		j->ps = NULL;
		if (j->err)
			j->base_offset = -1;
	}
	if (j->p) {
		if (j->err == KERR_NONE) {
			struct partition_info info;
			engine_partition_info(j->p, &info);
			j->log_start = info.log_start_offset;
		}
		engine_partition_unref(j->p);
		j->p = NULL;
	}
}

/* The Topics array is read three times from the same request bytes: to
 * count the entries that need the engine, to fill their jobs, and to write
 * the response in request order. Nothing is allocated per entry that does
 * not go to the engine, so the memory a request costs is the response plus
 * a job per batch (each batch is at least BATCH_HEADER_SIZE request bytes),
 * and every pass is linear in the request. */
struct produce_pass {
	struct kafka_reader r; /* at the first topic */
	int32_t ntopics;
	bool serve; /* v3+ and valid acks: entries may go to the engine */
	bool flexible; /* v9+: compact encodings and tagged fields */
	size_t nentries; /* partition entries, counted by a walk without w */
	size_t name_bytes; /* topic names and counts, as the response repeats them */
};

/* One partition entry of the Topics array, as read (borrowed from the
 * request buffer). */
struct produce_entry {
	struct kafka_str topic;
	bool name_ok;
	int32_t index;
	struct kafka_str rec;
};

static bool entry_is_job(const struct produce_pass *pp, const struct produce_entry *e)
{
	return pp->serve && e->name_ok && e->rec.len >= BATCH_HEADER_SIZE;
}

/* The answer to an entry that does not go to the engine. */
static int16_t entry_error(int16_t v, int16_t acks, const struct produce_entry *e)
{
	if (v < 3)
		return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
	if (acks != 0 && acks != 1 && acks != -1)
		return KERR_INVALID_REQUIRED_ACKS;
	if (!e->name_ok)
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	return KERR_CORRUPT_MESSAGE; /* null, empty or shorter than a batch header */
}

/* Walk the Topics array; with jobs, fill them; with w, write the response
 * array (results from jobs, in order). Returns the number of jobs, or -1
 * for a malformed request. */
static int32_t produce_walk(struct produce_pass *pp, int16_t v, int16_t acks,
			    struct produce_job *jobs, struct kafka_writer *w)
{
	struct kafka_reader r = pp->r;
	int32_t njobs = 0;
	bool f = pp->flexible;
	if (!w)
		pp->nentries = pp->name_bytes = 0;
	if (w)
		kafka_write_array(w, f, pp->ntopics);
	for (int32_t t = 0; t < pp->ntopics; t++) {
		struct produce_entry e;
		char topic[250];
		e.topic = kafka_read_string(&r, f, false);
		e.name_ok = kafka_topic_name_copy(e.topic, topic);
		int32_t nparts = kafka_read_array(&r, f, false, f ? 3 : 8);
		if (kafka_reader_failed(&r))
			return -1;
		if (w) {
			kafka_write_str(w, f, e.topic);
			kafka_write_array(w, f, nparts);
		} else {
			pp->nentries += (size_t)nparts;
			pp->name_bytes += 2 + (size_t)(e.topic.len > 0 ? e.topic.len : 0) + 4;
		}
		for (int32_t i = 0; i < nparts; i++) {
			e.index = kafka_read_i32(&r);
			e.rec = kafka_read_bytes(&r, f, true);
			if (f)
				kafka_read_tags(&r);
			if (kafka_reader_failed(&r))
				return -1;
			int16_t err;
			int64_t base_offset = -1, log_start = -1;
			if (entry_is_job(pp, &e)) {
				struct produce_job *j = jobs ? &jobs[njobs] : NULL;
				if (j && !w)
					*j = (struct produce_job){
						.topic = e.topic,
						.rec = (uint8_t *)(uintptr_t)e.rec.ptr,
						.rec_len = e.rec.len,
						.index = e.index,
					};
				njobs++;
				if (!w)
					continue;
				err = j->err;
				base_offset = j->base_offset;
				log_start = j->log_start;
			} else {
				if (!w)
					continue;
				err = entry_error(v, acks, &e);
			}
			kafka_write_i32(w, e.index);
			kafka_write_i16(w, err);
			kafka_write_i64(w, base_offset);
			if (v >= 2)
				kafka_write_i64(w, -1); /* LogAppendTimeMs: CreateTime */
			if (v >= 5)
				kafka_write_i64(w, log_start);
			if (v >= 8) {
				kafka_write_array(w, f, 0); /* RecordErrors */
				kafka_write_string(w, f, NULL); /* ErrorMessage */
			}
			if (f)
				kafka_write_tags(w);
		}
		if (f) {
			kafka_read_tags(&r);
			if (kafka_reader_failed(&r))
				return -1;
			if (w)
				kafka_write_tags(w);
		}
	}
	return njobs;
}

/* A Produce whose appends are started: what its response needs. */
struct kafka_produce {
	struct kafka_producers *producers;
	struct produce_pass pp;
	int16_t v, acks;
	struct produce_job *jobs; /* njobs, in request order */
	int32_t njobs;
	size_t want; /* the response's size, reserved before it is written */
};

int kafka_handle_produce(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	int16_t v = req->api_version;
	struct kafka_produce *pr;

	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return -1;
	pr->producers = req->l->producers;
	pr->v = v;
	pr->pp.flexible = req->flexible;
	if (v >= 3) {
		struct kafka_str txn = kafka_read_string(r, pr->pp.flexible, true);
		(void)txn;
	}
	pr->acks = kafka_read_i16(r);
	(void)kafka_read_i32(r); /* TimeoutMs */
	pr->pp.ntopics = kafka_read_array(r, pr->pp.flexible, false, pr->pp.flexible ? 2 : 6);
	if (kafka_reader_failed(r))
		goto malformed;
	if (pr->acks == 0)
		req->no_response = true;
	pr->pp.r = *r;
	pr->pp.serve = v >= 3 && (pr->acks == 0 || pr->acks == 1 || pr->acks == -1);

	/* Count, then fill: one job per batch, allocated once. */
	pr->njobs = produce_walk(&pr->pp, v, pr->acks, NULL, NULL);
	if (pr->njobs < 0)
		goto malformed;
	/* The response repeats the topic names and has a fixed size per
	 * entry: reserve it, one allocation. */
	size_t per_entry = 4 + 2 + 8 + (v >= 2 ? 8 : 0) + (v >= 5 ? 8 : 0) + (v >= 8 ? 6 : 0) + 1;
	pr->want = 4 + pr->pp.name_bytes + pr->pp.nentries * per_entry + 4;
	if (pr->njobs > 0) {
		pr->jobs = calloc((size_t)pr->njobs, sizeof(*pr->jobs));
		if (!pr->jobs)
			goto malformed;
		produce_walk(&pr->pp, v, pr->acks, pr->jobs, NULL);
		for (int32_t i = 0; i < pr->njobs; i++)
			produce_job_start(req, &pr->jobs[i]);
	}
	if (req->defer) {
		req->deferred = pr;
		return 0;
	}
	kafka_produce_finish(pr, req->no_response ? NULL : req->w);
	return 0;

malformed:
	free(pr);
	return -1;
}

void kafka_produce_finish(struct kafka_produce *pr, struct kafka_writer *w)
{
	for (int32_t i = 0; i < pr->njobs; i++)
		produce_job_finish(pr->producers, &pr->jobs[i]);
	if (w && pr->acks != 0) {
		kafka_writer_reserve(w, pr->want);
		produce_walk(&pr->pp, pr->v, pr->acks, pr->jobs, w);
		if (pr->v >= 1)
			kafka_write_i32(w, 0);
		if (pr->pp.flexible)
			kafka_write_tags(w);
	}
	free(pr->jobs);
	free(pr);
}

/* InitProducerIdRequest v0-2: TransactionalId nullable string,
 * TransactionTimeoutMs int32.
 * InitProducerIdResponse v0-2: ThrottleTimeMs, ErrorCode, ProducerId int64,
 * ProducerEpoch int16. v2 is flexible; v3 (re-initialising a given
 * producer id and epoch, KIP-360) is not served. Transactions are not supported: a transactional id
 * gets 15 COORDINATOR_NOT_AVAILABLE, the answer FindCoordinator already
 * gives for KeyType 1 (transaction), so a transactional client sees one
 * consistent "no transaction coordinator here" and fails its
 * init_transactions / initTransactions at its timeout. 35
 * UNSUPPORTED_VERSION would claim the request version is the problem, and
 * 53 TRANSACTIONAL_ID_AUTHORIZATION_FAILED an ACL that does not exist. */
int kafka_handle_init_producer_id(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	struct kafka_producers *p = req->l->producers;

	bool f = req->flexible;
	struct kafka_str txn = kafka_read_string(r, f, true);
	(void)kafka_read_i32(r);
	if (kafka_reader_failed(r))
		return -1;
	kafka_write_i32(w, 0);
	if (txn.len >= 0) {
		kafka_write_i16(w, KERR_COORDINATOR_NOT_AVAILABLE);
		kafka_write_i64(w, -1);
		kafka_write_i16(w, -1);
		if (f)
			kafka_write_tags(w);
		return 0;
	}
	pthread_mutex_lock(&p->lock);
	int64_t id = p->next_id++;
	pthread_mutex_unlock(&p->lock);
	kafka_write_i16(w, KERR_NONE);
	kafka_write_i64(w, id);
	kafka_write_i16(w, 0);
	if (f)
		kafka_write_tags(w);
	return 0;
}
