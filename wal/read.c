/* read.c - reading partitions: record cursors (from an offset or a raw-view
 * position), raw-view byte reads, whole-batch reads for Kafka Fetch,
 * waiting for growth, timestamp lookup, and verify.
 *
 * MERGED READS. A partition's records live in its registered segments
 * (warm, offsets < seg_next_offset) and then in the hot index (WAL not yet
 * indexed); engine-private.h states the invariant that makes the two meet
 * exactly. A cursor keeps only the next offset it owes (next) and, while
 * it reads, one source: a segment it holds (segment_ref + read_begin), or
 * a copy of a run of hot-index entries whose frames it has read. When the
 * source runs out it locates next again under the partition lock, so
 * whatever the indexer did meanwhile (a run of entries became a segment)
 * it continues at exactly that offset: no gap, no duplicate, no
 * reordering. A reader that copied hot entries holds wal_retire_lock for
 * reading from before it drops the partition lock until its pread is
 * done, so the file it reads is not closed under it. An offset inside a
 * hole (before the log start, between segments) continues at the next
 * record that exists.
 *
 * SEQUENTIAL READS. A cursor decodes lz4 batches into one buffer it keeps
 * (batch_scratch), and an open file's raw reads go through one
 * engine_raw_reader, whose cursor (its segment pin, read-ahead buffer and
 * decoded batch) stays from one read to the next while the reads follow
 * each other: a cat of lz4 segments then costs one pread per MiB of
 * segment and one decode per batch, not a segment open, an index load, a
 * read-ahead and a decode of the first batch per read(2). The reader lets
 * its cursor go when a read reaches the end, so an idle tail -f holds no
 * segment and no buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "byteorder.h"
#include "engine-private.h"
#include "log.h"

enum cursor_src { SRC_NONE, SRC_HOT, SRC_SEG };

struct engine_cursor {
	struct partition *p;
	uint8_t *hbuf; /* a V1 record's headers in the batch encoding */
	size_t hcap;
	int64_t next; /* the next offset not yet returned or passed */
	uint64_t raw_from; /* skip records whose line ends at or before this */
	size_t ra_limit; /* bytes to read ahead at most; 0 = CURSOR_READ_AHEAD */
	uint8_t *buf; /* frames (hot) or segment bytes (warm) read ahead */
	size_t cap;
	enum cursor_src src;
	/* SRC_HOT: copies of entries [0, nents) whose frames lie back to back
	 * in buf (file position ra_pos at buf[0]); ent_i is the next. */
	struct hot_entry *ents;
	size_t nents, ents_cap, ent_i;
	uint64_t ra_pos;
	/* SRC_SEG: buf holds segment bytes [buf_pos, buf_pos + blen); the next
	 * batch is at seg_pos, expected at offset seg_next_off and raw position
	 * seg_raw (valid once the batch before it was walked whole). */
	struct segment *seg;
	uint64_t buf_pos, seg_pos, seg_raw;
	size_t blen;
	int64_t seg_next_off;
	bool in_batch, batch_from_seg;
	struct batch_iter it;
	struct batch_scratch scratch; /* lz4 batches decode here, batch to batch */
	int64_t batch_base;
	uint64_t raw_pos; /* raw position of the next record in the batch */
};

/* Index of the last entry whose base offset (by_raw: raw position) is <= key,
 * 0 if none; both grow with the index. Lock held. */
static size_t entry_search(const struct partition *p, bool by_raw, uint64_t key)
{
	size_t lo = 0, hi = p->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v = by_raw ? p->idx[mid].raw_pos : (uint64_t)p->idx[mid].base_offset;
		if (v <= key)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static size_t entry_for_offset(const struct partition *p, int64_t off)
{
	return entry_search(p, false, off < 0 ? 0 : (uint64_t)off);
}

static size_t entry_for_raw(const struct partition *p, uint64_t pos)
{
	return entry_search(p, true, pos);
}

/* Read the frame of he into *buf (grown as needed). */
static int frame_read(struct engine *e, const struct hot_entry *he, uint8_t **buf, size_t *cap)
{
	int fd = wal_fd_get(e, he->file_seq);
	size_t got = 0;

	if (fd < 0)
		return fd;
	if (*cap < he->frame_len) {
		uint8_t *b = realloc(*buf, he->frame_len);
		if (!b)
			return -ENOMEM;
		*buf = b;
		*cap = he->frame_len;
	}
	while (got < he->frame_len) {
		ssize_t n = pread(fd, *buf + got, he->frame_len - got,
				  (off_t)he->file_pos + (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return CHRONIK_ECORRUPT;
		got += (size_t)n;
	}
	if (memcmp(*buf, "CHKF", 4) != 0)
		return CHRONIK_ECORRUPT;
	return 0;
}

/* The headers of a V1 frame (u32 key length, key, i32 value length, value;
 * frame_decode has checked they fill the frame) as record_header_in, in a
 * malloc'd array that borrows from the frame. */
static int v1_headers(const struct frame_info *fi, struct record_header_in **out)
{
	const uint8_t *p = fi->headers;
	struct record_header_in *h;

	*out = NULL;
	if (fi->header_count == 0)
		return 0;
	h = calloc(fi->header_count, sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (uint32_t i = 0; i < fi->header_count; i++) {
		h[i].key_len = (int32_t)get_le32(p);
		h[i].key = p + 4;
		p += 4 + h[i].key_len;
		h[i].value_len = (int32_t)get_le32(p);
		h[i].value = h[i].value_len >= 0 ? p + 4 : NULL;
		p += 4 + (h[i].value_len > 0 ? h[i].value_len : 0);
	}
	*out = h;
	return 0;
}

/* V1 headers re-encoded as a batch record's headers (varint lengths), into
 * the cursor's buffer, so engine_record.headers reads the same for both. */
static int v1_headers_encode(struct engine_cursor *c, const struct frame_info *fi,
			     struct engine_record *r)
{
	struct record_header_in *h;
	size_t need = 0, n = 0;
	int rc = v1_headers(fi, &h);

	r->header_count = (int32_t)fi->header_count;
	r->headers = NULL;
	r->headers_len = 0;
	if (rc || !h)
		return rc;
	for (uint32_t i = 0; i < fi->header_count; i++)
		need += 20 + (size_t)h[i].key_len +
			(h[i].value_len > 0 ? (size_t)h[i].value_len : 0);
	if (need > c->hcap) {
		uint8_t *b = realloc(c->hbuf, need);
		if (!b) {
			free(h);
			return -ENOMEM;
		}
		c->hbuf = b;
		c->hcap = need;
	}
	for (uint32_t i = 0; i < fi->header_count; i++) {
		n += varint_put(c->hbuf + n, h[i].key_len);
		memcpy(c->hbuf + n, h[i].key, (size_t)h[i].key_len);
		n += (size_t)h[i].key_len;
		n += varint_put(c->hbuf + n, h[i].value_len);
		if (h[i].value_len > 0) {
			memcpy(c->hbuf + n, h[i].value, (size_t)h[i].value_len);
			n += (size_t)h[i].value_len;
		}
	}
	free(h);
	r->headers = c->hbuf;
	r->headers_len = n;
	return 0;
}

static int cursor_new(struct partition *p, struct engine_cursor **out)
{
	struct engine_cursor *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	engine_partition_ref(p);
	c->p = p;
	*out = c;
	return 0;
}

/* The first segment whose last offset >= off (nsegs if none). Lock held. */
static size_t seg_for_offset(const struct partition *p, int64_t off)
{
	size_t lo = 0, hi = p->nsegs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (segment_meta_get(p->segs[mid])->last_offset < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first segment whose raw end > pos (nsegs if none). Lock held. */
static size_t seg_for_raw(const struct partition *p, uint64_t pos)
{
	size_t lo = 0, hi = p->nsegs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (segment_meta_get(p->segs[mid])->raw_end <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* seg_pin's answer when a read-only engine's segment file was gone and its
 * view was reloaded: look for the position again (at most SEG_RETRIES
 * times in a row). */
#define SEG_AGAIN (-EAGAIN)
#define SEG_RETRIES 8

/* Pin segment k for reading: referenced under the lock (held on entry,
 * released here), opened after it. A writer removes a segment file only
 * after its last reader let go (segment_unref), so a missing file means
 * the topic was deleted, or, beside a writer (read-only engine), that the
 * writer's retention or compaction removed it: then the registries are
 * read again (engine_refresh) and SEG_AGAIN says to locate again, so such
 * a reader continues at the next record, as a writer's reader does. */
static int seg_pin(struct partition *p, size_t k, struct segment **out)
{
	struct segment *s = p->segs[k];
	bool deleted;
	int rc;

	segment_ref(s);
	deleted = p->deleted;
	pthread_mutex_unlock(&p->lock);
	rc = segment_read_begin(s);
	if (rc) {
		segment_unref(s);
		if (rc == -ENOENT && !deleted && p->e->opt.read_only) {
			rc = engine_refresh(p->e);
			pthread_mutex_lock(&p->lock);
			deleted = p->deleted;
			pthread_mutex_unlock(&p->lock);
			if (rc == 0 && !deleted)
				return SEG_AGAIN;
		}
		/* A deleted topic's segments go at once. */
		return deleted || rc == -ENOENT ? CHRONIK_ENOTOPIC : rc;
	}
	*out = s;
	return 0;
}

static void seg_unpin(struct segment *s)
{
	if (!s)
		return;
	segment_read_end(s);
	segment_unref(s);
}

static void cursor_release(struct engine_cursor *c)
{
	if (c->in_batch) {
		batch_iter_fini(&c->it);
		c->in_batch = false;
	}
	seg_unpin(c->seg);
	c->seg = NULL;
	c->src = SRC_NONE;
	c->nents = c->ent_i = 0;
	c->blen = 0;
}

/* Make the cursor read segment s (pinned) from its index entry e. */
static void cursor_use_seg(struct engine_cursor *c, struct segment *s,
			   const struct segment_index_entry *e)
{
	c->seg = s;
	c->src = SRC_SEG;
	c->seg_pos = e->file_pos;
	c->seg_next_off = e->offset;
	c->seg_raw = e->raw_pos;
	c->blen = 0;
}

static int buf_reserve(struct engine_cursor *c, size_t len)
{
	if (c->cap >= len)
		return 0;
	uint8_t *b = realloc(c->buf, len);
	if (!b)
		return -ENOMEM;
	c->buf = b;
	c->cap = len;
	return 0;
}

#define CURSOR_READ_AHEAD (1u << 20)

/* Copy the run of hot entries from the one holding c->next (same file,
 * back to back, up to the read-ahead limit) and read their frames. Lock
 * held on entry, released here. 1 = loaded, <0 error. */
static int hot_fill(struct engine_cursor *c)
{
	struct partition *p = c->p;
	size_t limit = c->ra_limit ? c->ra_limit : CURSOR_READ_AHEAD;
	size_t i = entry_for_offset(p, c->next), end, len;
	struct hot_entry first, last;
	int fd, rc = 0;

	first = last = p->idx[i];
	for (end = i + 1; end < p->n; end++) {
		const struct hot_entry *he = &p->idx[end];
		uint64_t gap = (uint64_t)he->file_pos - ((uint64_t)last.file_pos + last.frame_len);
		/* Frames that follow each other, or a sync point apart. */
		if (he->file_seq != first.file_seq || (gap != 0 && gap != FRAME_SYNC_SIZE) ||
		    (uint64_t)he->file_pos + he->frame_len - first.file_pos > limit)
			break;
		last = *he;
	}
	if (c->ents_cap < end - i) {
		struct hot_entry *v = realloc(c->ents, (end - i) * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&p->lock);
			return -ENOMEM;
		}
		c->ents = v;
		c->ents_cap = end - i;
	}
	memcpy(c->ents, p->idx + i, (end - i) * sizeof(*c->ents));
	c->nents = end - i;
	c->ent_i = 0;
	pthread_rwlock_rdlock(&p->e->wal_retire_lock);
	pthread_mutex_unlock(&p->lock);

	len = (size_t)last.file_pos + last.frame_len - first.file_pos;
	rc = buf_reserve(c, len);
	fd = rc ? rc : wal_fd_get(p->e, first.file_seq);
	if (fd < 0)
		rc = fd;
	for (size_t got = 0; rc == 0 && got < len;) {
		ssize_t n = pread(fd, c->buf + got, len - got, (off_t)first.file_pos + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = n < 0 ? -errno : CHRONIK_ECORRUPT;
		else
			got += (size_t)n;
	}
	pthread_rwlock_unlock(&p->e->wal_retire_lock);
	if (rc) {
		c->nents = 0;
		return rc;
	}
	c->ra_pos = first.file_pos;
	c->src = SRC_HOT;
	return 1;
}

/* Find where c->next lives now and make that the source. 1 = a source,
 * 0 = at the end, <0 error. */
static int cursor_locate(struct engine_cursor *c)
{
	struct partition *p = c->p;
	struct segment *s;
	struct segment_index_entry e;
	int rc, tries = 0;

	cursor_release(c);
again:
	pthread_mutex_lock(&p->lock);
	if (c->next < p->log_start_offset)
		c->next = p->log_start_offset;
	if (c->next >= p->next_offset) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	if (c->next < p->seg_next_offset) {
		size_t k = seg_for_offset(p, c->next);
		if (k < p->nsegs) {
			rc = seg_pin(p, k, &s);
			if (rc == SEG_AGAIN && ++tries < SEG_RETRIES)
				goto again;
			if (rc)
				return rc == SEG_AGAIN ? CHRONIK_ENOTOPIC : rc;
			if (c->next < segment_meta_get(s)->base_offset)
				c->next = segment_meta_get(s)->base_offset;
			segment_find_offset(s, c->next, &e);
			cursor_use_seg(c, s, &e);
			return 1;
		}
		c->next = p->seg_next_offset;
	}
	if (p->n == 0) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	if (c->next < p->idx[0].base_offset)
		c->next = p->idx[0].base_offset;
	return hot_fill(c);
}

/* Read segment bytes [pos, pos + want) (at least; up to the read-ahead
 * limit) into buf. */
static int seg_fill(struct engine_cursor *c, uint64_t pos, size_t want)
{
	size_t limit = c->ra_limit ? c->ra_limit : CURSOR_READ_AHEAD;
	size_t len = want > limit ? want : limit;
	const struct segment_meta *m = segment_meta_get(c->seg);
	ssize_t n;
	int rc;

	if (len > m->data_end - pos)
		len = (size_t)(m->data_end - pos);
	rc = buf_reserve(c, len);
	if (rc)
		return rc;
	n = segment_pread(c->seg, c->buf, len, pos);
	if (n < 0)
		return (int)n;
	if ((size_t)n < want)
		return CHRONIK_ECORRUPT;
	c->buf_pos = pos;
	c->blen = (size_t)n;
	return 0;
}

/* The next batch of the segment into the iterator: 1, 0 at its end, <0. */
static int seg_load(struct engine_cursor *c)
{
	const struct segment_meta *m = segment_meta_get(c->seg);
	const uint8_t *b;
	size_t len;
	int64_t base;
	int rc;

	if (c->seg_pos >= m->data_end)
		return 0;
	if (m->data_end - c->seg_pos < BATCH_HEADER_SIZE)
		return CHRONIK_ECORRUPT;
	if (c->seg_pos < c->buf_pos || c->seg_pos + BATCH_HEADER_SIZE > c->buf_pos + c->blen) {
		rc = seg_fill(c, c->seg_pos, BATCH_HEADER_SIZE);
		if (rc)
			return rc;
	}
	len = (size_t)get_be32(c->buf + (c->seg_pos - c->buf_pos) + 8) + 12;
	if (len < BATCH_HEADER_SIZE || len > m->data_end - c->seg_pos)
		return CHRONIK_ECORRUPT;
	if (c->seg_pos + len > c->buf_pos + c->blen) {
		rc = seg_fill(c, c->seg_pos, len);
		if (rc)
			return rc;
	}
	b = c->buf + (c->seg_pos - c->buf_pos);
	base = (int64_t)get_be64(b);
	if (base != c->seg_next_off) {
		/* A hole: the index has an entry for this batch (segment.h). */
		struct segment_index_entry e;
		segment_find_offset(c->seg, base, &e);
		if (e.offset != base || e.file_pos != c->seg_pos)
			return CHRONIK_ECORRUPT;
		c->seg_raw = e.raw_pos;
	}
	rc = batch_iter_init_with(&c->it, b, len, &c->scratch);
	if (rc)
		return rc;
	c->in_batch = true;
	c->batch_from_seg = true;
	c->batch_base = base;
	c->raw_pos = c->seg_raw;
	c->seg_pos += len;
	c->seg_next_off = base + c->it.hdr.last_offset_delta + 1;
	return 1;
}

/* The next hot entry's frame: 1 = a batch to iterate, 2 = *r holds a V1
 * record, 0 = the run is used up. */
static int hot_load(struct engine_cursor *c, struct engine_record *r)
{
	struct hot_entry he;
	const uint8_t *frame;
	int rc;

	if (c->ent_i >= c->nents)
		return 0;
	he = c->ents[c->ent_i];
	frame = c->buf + (he.file_pos - c->ra_pos);
	if (memcmp(frame, "CHKF", 4) != 0)
		return CHRONIK_ECORRUPT;
	/* ent_i moves on only once the entry is loaded: a failure (such as
	 * -ENOMEM from the decompression budget, batch.h, a normal outcome
	 * under load) leaves the cursor on it, so the next call retries it. */
	if (frame[4] == 2) {
		rc = batch_iter_init_with(&c->it, frame + FRAME_V2_HEADER_SIZE,
					  he.frame_len - FRAME_V2_HEADER_SIZE, &c->scratch);
		if (rc)
			return rc;
		c->ent_i++;
		c->batch_base = he.base_offset;
		c->raw_pos = he.raw_pos;
		c->in_batch = true;
		c->batch_from_seg = false;
		return 1;
	}
	if (frame[4] == 1) {
		struct frame_info fi;
		if (frame_decode(frame, he.frame_len, &fi) != FRAME_VALID)
			return CHRONIK_ECORRUPT;
		rc = v1_headers_encode(c, &fi, r);
		if (rc)
			return rc;
		c->ent_i++;
		c->batch_base = he.base_offset;
		c->raw_pos = he.raw_pos;
		r->offset = fi.base_offset;
		r->timestamp = fi.timestamp;
		r->raw_pos = he.raw_pos;
		r->key = fi.key;
		r->key_len = fi.key_len;
		r->value = fi.value;
		r->value_len = fi.value_len;
		return 2;
	}
	return CHRONIK_EVERSION;
}

/* 1 = a batch to iterate, 2 = *r holds a V1 record, 0 = at the end. */
static int cursor_load(struct engine_cursor *c, struct engine_record *r)
{
	for (;;) {
		int rc = 0;
		if (c->src == SRC_SEG)
			rc = seg_load(c);
		else if (c->src == SRC_HOT)
			rc = hot_load(c, r);
		if (rc)
			return rc;
		rc = cursor_locate(c);
		if (rc <= 0)
			return rc;
	}
}

int engine_cursor_open(struct partition *p, int64_t from_offset, struct engine_cursor **out)
{
	struct engine_cursor *c;
	int rc;

	pthread_mutex_lock(&p->lock);
	if (from_offset > p->next_offset) {
		pthread_mutex_unlock(&p->lock);
		return CHRONIK_ERANGE;
	}
	rc = cursor_new(p, &c);
	if (rc == 0)
		c->next = from_offset < p->log_start_offset ? p->log_start_offset : from_offset;
	pthread_mutex_unlock(&p->lock);
	if (rc == 0)
		*out = c;
	return rc;
}

int engine_cursor_open_raw(struct partition *p, uint64_t raw_pos, struct engine_cursor **out)
{
	struct engine_cursor *c;
	struct segment *s;
	struct segment_index_entry e;
	int rc;

	int tries = 0;

	rc = cursor_new(p, &c);
	if (rc)
		return rc;
again:
	pthread_mutex_lock(&p->lock);
	c->raw_from = raw_pos;
	c->next = p->log_start_offset;
	if (raw_pos >= p->raw_size) {
		c->next = p->next_offset;
	} else if (raw_pos >= p->seg_raw_end) {
		if (p->n)
			c->next = p->idx[entry_for_raw(p, raw_pos)].base_offset;
	} else {
		size_t k = seg_for_raw(p, raw_pos);
		if (k < p->nsegs) {
			rc = seg_pin(p, k, &s);
			if (rc == SEG_AGAIN && ++tries < SEG_RETRIES)
				goto again;
			if (rc) {
				engine_cursor_close(c);
				return rc == SEG_AGAIN ? CHRONIK_ENOTOPIC : rc;
			}
			segment_find_raw(s, raw_pos, &e);
			if (e.offset > c->next)
				c->next = e.offset;
			cursor_use_seg(c, s, &e);
			*out = c;
			return 0;
		}
	}
	pthread_mutex_unlock(&p->lock);
	*out = c;
	return 0;
}

void engine_cursor_close(struct engine_cursor *c)
{
	if (!c)
		return;
	cursor_release(c);
	engine_partition_unref(c->p);
	batch_scratch_fini(&c->scratch);
	free(c->ents);
	free(c->buf);
	free(c->hbuf);
	free(c);
}

int engine_cursor_next(struct engine_cursor *c, struct engine_record *r)
{
	for (;;) {
		if (c->in_batch) {
			struct batch_record br;
			int rc = batch_iter_next(&c->it, &br);
			if (rc < 0)
				return rc;
			if (rc == 0) {
				/* Past the whole batch, whatever its records said:
				 * a batch whose records all lie below next (damage
				 * the CRCs did not catch) must not be found again. */
				int64_t end = c->batch_base + (int64_t)c->it.hdr.last_offset_delta + 1;
				if (end > c->next)
					c->next = end;
				batch_iter_fini(&c->it);
				c->in_batch = false;
				if (c->batch_from_seg)
					c->seg_raw = c->raw_pos;
				continue;
			}
			int64_t off = c->batch_base + br.offset_delta;
			uint64_t raw = c->raw_pos;
			c->raw_pos += (br.value_len > 0 ? (uint64_t)br.value_len : 0) + 1;
			if (off < c->next)
				continue;
			c->next = off + 1;
			if (c->raw_pos <= c->raw_from)
				continue;
			r->offset = off;
			/* Both come from the batch: wrap, do not overflow. */
			r->timestamp = (int64_t)((uint64_t)c->it.hdr.base_timestamp +
						 (uint64_t)br.timestamp_delta);
			r->raw_pos = raw;
			r->key = br.key;
			r->key_len = br.key_len;
			r->value = br.value;
			r->value_len = br.value_len;
			r->header_count = br.header_count;
			r->headers = br.headers;
			r->headers_len = br.headers_len;
			return 1;
		}
		int rc = cursor_load(c, r);
		if (rc <= 0)
			return rc;
		if (rc == 2) {
			uint64_t end =
				r->raw_pos + (r->value_len > 0 ? (uint64_t)r->value_len : 0) + 1;
			if (r->offset < c->next)
				continue;
			c->next = r->offset + 1;
			if (end <= c->raw_from)
				continue;
			return 1;
		}
	}
}

/* A stream of raw-view reads (engine.h). Between reads: c (when not NULL)
 * is positioned just past rec when have_rec, else just past the record
 * whose line ends at end; end is the stable position the last read ended
 * at; have_rec says rec (borrowed from c) holds the record that position
 * lies in or, past a hole, the next one, not yet wholly returned. */
struct engine_raw_reader {
	struct partition *p;
	struct engine_cursor *c;
	size_t ra_limit; /* the cursor's read-ahead; 0 = CURSOR_READ_AHEAD */
	uint64_t end;
	bool have_rec;
	struct engine_record rec;
};

int engine_raw_reader_new(struct partition *p, struct engine_raw_reader **out)
{
	struct engine_raw_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	engine_partition_ref(p);
	r->p = p;
	*out = r;
	return 0;
}

static void raw_reader_drop(struct engine_raw_reader *r)
{
	engine_cursor_close(r->c);
	r->c = NULL;
	r->have_rec = false;
}

void engine_raw_reader_free(struct engine_raw_reader *r)
{
	if (!r)
		return;
	raw_reader_drop(r);
	engine_partition_unref(r->p);
	free(r);
}

ssize_t engine_raw_reader_read(struct engine_raw_reader *rr, uint64_t pos, void *buf, size_t len,
			       uint64_t *from_out)
{
	struct engine_record r;
	uint8_t *out = buf;
	size_t done = 0;
	int rc = 1;

	*from_out = pos;
	if (len == 0)
		return 0;
	if (rr->c) {
		/* A deleted topic's segments go at once: let go of the one held. */
		pthread_mutex_lock(&rr->p->lock);
		bool deleted = rr->p->deleted;
		pthread_mutex_unlock(&rr->p->lock);
		if (pos != rr->end || deleted)
			raw_reader_drop(rr);
	}
	if (!rr->c) {
		rc = engine_cursor_open_raw(rr->p, pos, &rr->c);
		if (rc)
			return rc;
		rr->c->ra_limit = rr->ra_limit;
		rc = 1;
	}
	while (done < len) {
		if (rr->have_rec) {
			r = rr->rec;
			rr->have_rec = false;
		} else if ((rc = engine_cursor_next(rr->c, &r)) != 1) {
			break;
		}
		uint64_t vlen = r.value_len > 0 ? (uint64_t)r.value_len : 0;
		uint64_t line_end = r.raw_pos + vlen + 1;
		uint64_t from = pos + done;
		if (from < r.raw_pos) {
			/* Nothing remains at from (before the log start, or a
			 * record compaction removed): the first bytes come
			 * from the next record; a later hole ends the read. */
			if (done) {
				rr->rec = r;
				rr->have_rec = true;
				break;
			}
			pos = from = *from_out = r.raw_pos;
		}
		if (from >= line_end) {
			rc = CHRONIK_ECORRUPT;
			break;
		}
		uint64_t skip = from - r.raw_pos;
		if (skip < vlen) {
			size_t n = (size_t)(vlen - skip);
			if (n > len - done)
				n = len - done;
			memcpy(out + done, r.value + skip, n);
			done += n;
		}
		if (done < len && pos + done == line_end - 1)
			out[done++] = '\n';
		if (pos + done < line_end) {
			/* The buffer is full inside this record's line. */
			rr->rec = r;
			rr->have_rec = true;
		}
	}
	rr->end = pos + done;
	/* At the end (rc 0) or failed: let the cursor go. */
	if (rc != 1)
		raw_reader_drop(rr);
	if (rc < 0)
		return rc;
	return (ssize_t)done;
}

ssize_t engine_read_raw_at(struct partition *p, uint64_t pos, void *buf, size_t len,
			   uint64_t *from_out)
{
	struct engine_raw_reader rr = { .p = p };
	ssize_t n;

	/* Read ahead about what was asked for (frames hold more than their
	 * raw bytes, hence the margin), not a whole MiB for a short read. */
	rr.ra_limit = len + len / 2 + 4096;
	n = engine_raw_reader_read(&rr, pos, buf, len, from_out);
	raw_reader_drop(&rr);
	return n;
}

ssize_t engine_read_raw(struct partition *p, uint64_t pos, void *buf, size_t len)
{
	uint64_t from;
	return engine_read_raw_at(p, pos, buf, len, &from);
}

/* A V1 frame re-encoded as a one-record batch at its offset. */
int frame_v1_as_batch(const uint8_t *frame, size_t len, uint8_t **out, size_t *out_len)
{
	struct frame_info fi;
	struct batch_builder b;
	struct record_in rec = { 0 };
	int rc;

	if (frame_decode(frame, len, &fi) != FRAME_VALID)
		return CHRONIK_ECORRUPT;
	rec.timestamp = fi.timestamp;
	rec.key = fi.key;
	rec.key_len = fi.key_len;
	rec.value = fi.value;
	rec.value_len = fi.value_len;
	rc = v1_headers(&fi, (struct record_header_in **)&rec.headers);
	if (rc)
		return rc;
	rec.header_count = (int32_t)fi.header_count;
	batch_builder_init(&b);
	rc = batch_builder_add(&b, &rec);
	free((void *)rec.headers);
	if (rc == 0)
		rc = batch_builder_finish(&b, out, out_len);
	batch_builder_fini(&b);
	if (rc == 0)
		batch_set_base_offset(*out, fi.base_offset);
	return rc;
}

/* What a batch weighs against a Fetch's max_bytes (engine.h): its stored
 * bytes, or its records' decoded bytes when an lz4 frame declares more
 * (LZ4 frame: magic 0x184D2204 LE, FLG with bit 3 = content size present,
 * BD, then the content size, u64 LE). */
static size_t batch_fetch_weight(const uint8_t *b, size_t blen)
{
	const uint8_t *f = b + BATCH_HEADER_SIZE;
	uint64_t size;

	if (blen < BATCH_HEADER_SIZE + 14 ||
	    (get_be16(b + 21) & BATCH_ATTR_CODEC_MASK) != BATCH_CODEC_LZ4 ||
	    get_le32(f) != 0x184D2204u || !(f[4] & 0x08))
		return blen;
	size = get_le64(f + 6);
	return size > blen ? (size > SIZE_MAX ? SIZE_MAX : (size_t)size) : blen;
}

/* Make buf hold segment bytes [pos, pos + need) (it holds [pos, pos +
 * *have) now), reading what is missing. */
static int seg_buf_extend(struct segment *s, uint8_t **buf, size_t *have, uint64_t pos, size_t need)
{
	uint8_t *b;

	if (need <= *have)
		return 0;
	b = realloc(*buf, need);
	if (!b)
		return -ENOMEM;
	*buf = b;
	if (segment_pread(s, b + *have, need - *have, pos + *have) != (ssize_t)(need - *have))
		return CHRONIK_ECORRUPT;
	*have = need;
	return 0;
}

/* Whole batches of a pinned segment from the one holding from_offset (or
 * the first after it), at least one, more while the total and the weight
 * stay <= max_bytes: the file's bytes as they are. One pread from the
 * index entry covers the batches before from_offset (less than an index
 * interval, segment.h) and max_bytes more; only a first batch larger than
 * that is read further. */
static int seg_read_batches(struct segment *s, int64_t from_offset, size_t max_bytes, uint8_t **out,
			    size_t *len)
{
	const struct segment_meta *m = segment_meta_get(s);
	struct segment_index_entry e;
	uint64_t pos;
	size_t have = 0, at = 0, start = 0, total = 0, weight = 0;
	uint8_t *buf = NULL;
	bool found = false;
	int rc = 0;

	segment_find_offset(s, from_offset, &e);
	pos = e.file_pos;
	if (pos >= m->data_end)
		return 0;
	{
		uint64_t room = m->data_end - pos;
		size_t first = max_bytes > SIZE_MAX - 2 * SEGMENT_INDEX_INTERVAL ?
				       SIZE_MAX :
				       max_bytes + 2 * SEGMENT_INDEX_INTERVAL;
		rc = seg_buf_extend(s, &buf, &have, pos, room < first ? (size_t)room : first);
	}
	while (rc == 0 && pos + at < m->data_end) {
		if (at + BATCH_HEADER_SIZE > have) {
			if (found)
				break;
			rc = seg_buf_extend(s, &buf, &have, pos, at + BATCH_HEADER_SIZE);
			if (rc)
				break;
		}
		const uint8_t *hdr = buf + at;
		size_t blen = (size_t)get_be32(hdr + 8) + 12;
		int64_t last = (int64_t)get_be64(hdr) + (int32_t)get_be32(hdr + 23);
		if (blen < BATCH_HEADER_SIZE || blen > m->data_end - pos - at) {
			rc = CHRONIK_ECORRUPT;
			break;
		}
		if (!found && last < from_offset) {
			at += blen;
			continue;
		}
		if (at + blen > have) {
			if (found)
				break;
			rc = seg_buf_extend(s, &buf, &have, pos, at + blen);
			if (rc)
				break;
		}
		size_t w = batch_fetch_weight(buf + at, blen);
		if (!found) {
			found = true;
			start = at;
		} else if (total + blen > max_bytes || weight + w > max_bytes) {
			break;
		}
		total += blen;
		weight += w;
		at += blen;
	}
	if (rc || total == 0) {
		free(buf);
		return rc;
	}
	memmove(buf, buf + start, total);
	*out = buf;
	*len = total;
	return 0;
}

int engine_read_batches(struct partition *p, int64_t from_offset, size_t max_bytes, uint8_t **out,
			size_t *len)
{
	struct hot_entry *ents = NULL;
	size_t n = 0, total = 0, weight = 0, cap = 0, i;
	uint8_t *buf = NULL, *frame = NULL;
	bool retire_held = false;
	int rc = 0;

	int tries = 0;

	*out = NULL;
	*len = 0;
again:
	pthread_mutex_lock(&p->lock);
	if (from_offset < p->log_start_offset || from_offset > p->next_offset) {
		pthread_mutex_unlock(&p->lock);
		return CHRONIK_ERANGE;
	}
	if (from_offset < p->seg_next_offset && seg_for_offset(p, from_offset) < p->nsegs) {
		struct segment *s;
		rc = seg_pin(p, seg_for_offset(p, from_offset), &s);
		if (rc == SEG_AGAIN && ++tries < SEG_RETRIES)
			goto again;
		if (rc)
			return rc == SEG_AGAIN ? CHRONIK_ENOTOPIC : rc;
		rc = seg_read_batches(s, from_offset, max_bytes, out, len);
		seg_unpin(s);
		return rc;
	}
	if (from_offset == p->next_offset || p->n == 0) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	for (i = entry_for_offset(p, from_offset); i < p->n; i++) {
		size_t blen = p->idx[i].frame_len;
		/* The weight: the raw-view bytes of its records when more. */
		uint64_t raw_end = i + 1 < p->n ? p->idx[i + 1].raw_pos : p->raw_size;
		size_t w = raw_end - p->idx[i].raw_pos > blen ? (size_t)(raw_end - p->idx[i].raw_pos) :
								 blen;
		if (n > 0 && (total + blen > max_bytes || weight + w > max_bytes))
			break;
		if (n == cap) {
			size_t c2 = cap ? cap * 2 : 16;
			struct hot_entry *v = realloc(ents, c2 * sizeof(*v));
			if (!v) {
				rc = -ENOMEM;
				break;
			}
			ents = v;
			cap = c2;
		}
		ents[n++] = p->idx[i];
		total += blen;
		weight += w;
	}
	if (rc) {
		pthread_mutex_unlock(&p->lock);
		goto out;
	}
	/* The frames are read under wal_retire_lock (see the top). */
	pthread_rwlock_rdlock(&p->e->wal_retire_lock);
	retire_held = true;
	pthread_mutex_unlock(&p->lock);
	/* A V1 frame re-encoded as a batch is at most its frame length plus the
	 * batch header and varints: size for that. */
	buf = malloc(total + n * (FRAME_V2_HEADER_SIZE + 128));
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	total = 0;
	for (i = 0; i < n; i++) {
		size_t fcap = 0;
		rc = frame_read(p->e, &ents[i], &frame, &fcap);
		if (rc)
			goto out;
		if (frame[4] == 2) {
			size_t blen = ents[i].frame_len - FRAME_V2_HEADER_SIZE;
			memcpy(buf + total, frame + FRAME_V2_HEADER_SIZE, blen);
			total += blen;
		} else {
			uint8_t *b;
			size_t blen;
			rc = frame_v1_as_batch(frame, ents[i].frame_len, &b, &blen);
			if (rc)
				goto out;
			if (blen > ents[i].frame_len + 128) {
				free(b);
				rc = CHRONIK_ECORRUPT;
				goto out;
			}
			memcpy(buf + total, b, blen);
			total += blen;
			free(b);
		}
		free(frame);
		frame = NULL;
	}
	*out = buf;
	*len = total;
	buf = NULL;
out:
	if (retire_held)
		pthread_rwlock_unlock(&p->e->wal_retire_lock);
	free(frame);
	free(buf);
	free(ents);
	return rc;
}

/* ---- Fetch as spans (engine.h: engine_read_batch_spans) ------------------ */

void engine_spans_init(struct engine_spans *s)
{
	memset(s, 0, sizeof(*s));
	s->next_offset = -1;
}

void engine_spans_fini(struct engine_spans *s)
{
	for (size_t i = 0; i < s->nfds; i++)
		close(s->fds[i]);
	for (size_t i = 0; i < s->nblocks; i++)
		free(s->blocks[i]);
	free(s->v);
	free(s->fds);
	free(s->blocks);
	engine_spans_init(s);
}

/* Room for n more elements of size sz in *v (cap *cap, used used). */
static int spans_grow(void **v, size_t *cap, size_t used, size_t n, size_t sz)
{
	if (used + n <= *cap)
		return 0;
	size_t c = *cap ? *cap : 8;
	while (c < used + n)
		c *= 2;
	void *nv = realloc(*v, c * sz);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = c;
	return 0;
}

static int spans_add(struct engine_spans *s, const uint8_t *mem, int fd, uint64_t off, size_t len)
{
	if (spans_grow((void **)&s->v, &s->cap, s->n, 1, sizeof(*s->v)))
		return -ENOMEM;
	s->v[s->n++] = (struct engine_span){ .mem = mem, .fd = fd, .off = off, .len = len };
	s->len += len;
	if (mem)
		s->mem_len += len;
	return 0;
}

/* Take ownership of fd (closed on failure). */
static int spans_own_fd(struct engine_spans *s, int fd)
{
	if (spans_grow((void **)&s->fds, &s->fds_cap, s->nfds, 1, sizeof(*s->fds))) {
		close(fd);
		return -ENOMEM;
	}
	s->fds[s->nfds++] = fd;
	return 0;
}

static int spans_own_block(struct engine_spans *s, void *b)
{
	if (spans_grow((void **)&s->blocks, &s->blocks_cap, s->nblocks, 1, sizeof(*s->blocks))) {
		free(b);
		return -ENOMEM;
	}
	s->blocks[s->nblocks++] = b;
	return 0;
}

int engine_spans_add_block(struct engine_spans *s, void *block, size_t len)
{
	int rc = spans_own_block(s, block);
	if (rc)
		return rc;
	return spans_add(s, block, -1, 0, len);
}

int engine_spans_move(struct engine_spans *dst, struct engine_spans *src)
{
	if (spans_grow((void **)&dst->v, &dst->cap, dst->n, src->n, sizeof(*dst->v)) ||
	    spans_grow((void **)&dst->fds, &dst->fds_cap, dst->nfds, src->nfds,
		       sizeof(*dst->fds)) ||
	    spans_grow((void **)&dst->blocks, &dst->blocks_cap, dst->nblocks, src->nblocks,
		       sizeof(*dst->blocks)))
		return -ENOMEM;
	if (src->n)
		memcpy(dst->v + dst->n, src->v, src->n * sizeof(*src->v));
	if (src->nfds)
		memcpy(dst->fds + dst->nfds, src->fds, src->nfds * sizeof(*src->fds));
	if (src->nblocks)
		memcpy(dst->blocks + dst->nblocks, src->blocks,
		       src->nblocks * sizeof(*src->blocks));
	dst->n += src->n;
	dst->nfds += src->nfds;
	dst->nblocks += src->nblocks;
	dst->len += src->len;
	dst->mem_len += src->mem_len;
	if (src->n)
		dst->next_offset = src->next_offset;
	src->n = src->nfds = src->nblocks = 0;
	engine_spans_fini(src);
	return 0;
}

/* The offset after the last record of the whole batches in b[0, len). */
static int64_t batches_next_offset(const uint8_t *b, size_t len)
{
	int64_t next = -1;
	size_t at = 0;
	while (len - at >= BATCH_HEADER_SIZE) {
		size_t blen = (size_t)get_be32(b + at + 8) + 12;
		if (blen < BATCH_HEADER_SIZE || blen > len - at)
			break;
		next = (int64_t)get_be64(b + at) + (int32_t)get_be32(b + at + 23) + 1;
		at += blen;
	}
	return next;
}

/* The batches seg_read_batches would return, as one span of the segment
 * file: the same walk (from the index entry, skipping the batches before
 * from_offset, stopping at the same max_bytes, weight and read-window
 * bounds), reading only each batch's first SPAN_HDR_READ bytes (its header
 * and, for an lz4 batch, the frame header that gives its weight) through
 * a small window instead of the batches themselves. A remote segment, or
 * a descriptor that cannot be duplicated, takes seg_read_batches. */
#define SPAN_HDR_NEED (BATCH_HEADER_SIZE + 14) /* what batch_fetch_weight reads */
#define SPAN_WINDOW 512
static int seg_span_batches(struct segment *s, int64_t from_offset, size_t max_bytes,
			    struct engine_spans *out)
{
	const struct segment_meta *m = segment_meta_get(s);
	struct segment_index_entry e;
	uint8_t win[SPAN_WINDOW];
	uint64_t wpos = 0, pos, at, start = 0, have_end;
	size_t wlen = 0, total = 0, weight = 0;
	int64_t next = -1;
	bool found = false;
	int fd, rc;

	fd = segment_dup_fd(s);
	if (fd < 0) {
		uint8_t *b = NULL;
		size_t len = 0;
		rc = seg_read_batches(s, from_offset, max_bytes, &b, &len);
		if (rc || len == 0) {
			free(b);
			return rc;
		}
		out->next_offset = batches_next_offset(b, len);
		return engine_spans_add_block(out, b, len);
	}
	rc = spans_own_fd(out, fd);
	if (rc)
		return rc;
	segment_find_offset(s, from_offset, &e);
	pos = e.file_pos;
	if (pos >= m->data_end)
		return 0;
	{
		/* seg_read_batches' first read: what it holds without reading
		 * again, past which it stops once it has a batch. */
		uint64_t room = m->data_end - pos;
		size_t first = max_bytes > SIZE_MAX - 2 * SEGMENT_INDEX_INTERVAL ?
				       SIZE_MAX :
				       max_bytes + 2 * SEGMENT_INDEX_INTERVAL;
		have_end = pos + (room < first ? room : (uint64_t)first);
	}
	for (at = pos; at < m->data_end;) {
		if (at + BATCH_HEADER_SIZE > have_end) {
			if (found)
				break;
			have_end = at + BATCH_HEADER_SIZE;
		}
		if (m->data_end - at < BATCH_HEADER_SIZE)
			return CHRONIK_ECORRUPT;
		size_t need = m->data_end - at < SPAN_HDR_NEED ? (size_t)(m->data_end - at) :
								 SPAN_HDR_NEED;
		if (at < wpos || at + need > wpos + wlen) {
			size_t want = m->data_end - at < SPAN_WINDOW ? (size_t)(m->data_end - at) :
								       SPAN_WINDOW;
			ssize_t k = segment_pread(s, win, want, at);
			if (k < 0)
				return (int)k;
			if ((size_t)k < need)
				return CHRONIK_ECORRUPT;
			wpos = at;
			wlen = (size_t)k;
		}
		const uint8_t *hdr = win + (at - wpos);
		size_t blen = (size_t)get_be32(hdr + 8) + 12;
		int64_t last = (int64_t)get_be64(hdr) + (int32_t)get_be32(hdr + 23);
		if (blen < BATCH_HEADER_SIZE || blen > m->data_end - at)
			return CHRONIK_ECORRUPT;
		if (!found && last < from_offset) {
			at += blen;
			continue;
		}
		if (at + blen > have_end) {
			if (found)
				break;
			have_end = at + blen;
		}
		/* batch_fetch_weight reads SPAN_HDR_NEED bytes only when the
		 * batch has them, and the window holds that many of it. */
		size_t w = batch_fetch_weight(hdr, blen);
		if (!found) {
			found = true;
			start = at;
		} else if (total + blen > max_bytes || weight + w > max_bytes) {
			break;
		}
		total += blen;
		weight += w;
		at += blen;
		next = last + 1;
	}
	if (total == 0)
		return 0;
	rc = spans_add(out, NULL, fd, start, total);
	if (rc == 0)
		out->next_offset = next;
	return rc;
}

int engine_read_batch_spans(struct partition *p, int64_t from_offset, size_t max_bytes,
			    struct engine_spans *out)
{
	struct engine_spans add;
	struct hot_entry *ents = NULL;
	size_t n = 0, total = 0, weight = 0, cap = 0, i;
	uint8_t *frame = NULL;
	bool retire_held = false;
	int rc = 0, tries = 0;

	engine_spans_init(&add);
again:
	pthread_mutex_lock(&p->lock);
	if (from_offset < p->log_start_offset || from_offset > p->next_offset) {
		pthread_mutex_unlock(&p->lock);
		return CHRONIK_ERANGE;
	}
	if (from_offset < p->seg_next_offset && seg_for_offset(p, from_offset) < p->nsegs) {
		struct segment *s;
		rc = seg_pin(p, seg_for_offset(p, from_offset), &s);
		if (rc == SEG_AGAIN && ++tries < SEG_RETRIES)
			goto again;
		if (rc)
			return rc == SEG_AGAIN ? CHRONIK_ENOTOPIC : rc;
		rc = seg_span_batches(s, from_offset, max_bytes, &add);
		seg_unpin(s);
		goto out;
	}
	if (from_offset == p->next_offset || p->n == 0) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	/* The entries engine_read_batches takes. */
	for (i = entry_for_offset(p, from_offset); i < p->n; i++) {
		size_t blen = p->idx[i].frame_len;
		uint64_t raw_end = i + 1 < p->n ? p->idx[i + 1].raw_pos : p->raw_size;
		size_t w = raw_end - p->idx[i].raw_pos > blen ?
				   (size_t)(raw_end - p->idx[i].raw_pos) :
				   blen;
		if (n > 0 && (total + blen > max_bytes || weight + w > max_bytes))
			break;
		if (n == cap) {
			size_t c2 = cap ? cap * 2 : 16;
			struct hot_entry *v = realloc(ents, c2 * sizeof(*v));
			if (!v) {
				rc = -ENOMEM;
				break;
			}
			ents = v;
			cap = c2;
		}
		ents[n++] = p->idx[i];
		total += blen;
		weight += w;
	}
	if (rc) {
		pthread_mutex_unlock(&p->lock);
		goto out;
	}
	/* Descriptors are looked up and duplicated under wal_retire_lock (see
	 * the top): once dup'd, the indexer's close no longer matters. */
	pthread_rwlock_rdlock(&p->e->wal_retire_lock);
	retire_held = true;
	pthread_mutex_unlock(&p->lock);
	uint32_t dup_seq = 0;
	int dup_fd = -1;
	for (i = 0; i < n; i++) {
		const struct hot_entry *he = &ents[i];
		uint8_t hdr[FRAME_V2_HEADER_SIZE];
		int fd = wal_fd_get(p->e, he->file_seq);
		if (fd < 0) {
			rc = fd;
			goto out;
		}
		if (he->frame_len >= FRAME_V2_HEADER_SIZE + ENGINE_SPAN_MIN &&
		    (dup_fd < 0 || dup_seq != he->file_seq)) {
			int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
			if (d >= 0) {
				rc = spans_own_fd(&add, d);
				if (rc)
					goto out;
				dup_fd = d;
				dup_seq = he->file_seq;
			}
		}
		if (he->frame_len >= FRAME_V2_HEADER_SIZE + ENGINE_SPAN_MIN && dup_fd >= 0 &&
		    dup_seq == he->file_seq) {
			/* Only the header is read: it must be this entry's V2
			 * frame; the batch after it goes as it is on disk. */
			ssize_t k = pread(fd, hdr, sizeof(hdr), (off_t)he->file_pos);
			if (k != (ssize_t)sizeof(hdr)) {
				rc = k < 0 ? -errno : CHRONIK_ECORRUPT;
				goto out;
			}
			if (memcmp(hdr, "CHKF", 4) != 0 || hdr[4] != 2 ||
			    get_le32(hdr + 8) != he->frame_len ||
			    (int64_t)get_le64(hdr + 24) != he->base_offset) {
				rc = CHRONIK_ECORRUPT;
				goto out;
			}
			rc = spans_add(&add, NULL, dup_fd, he->file_pos + FRAME_V2_HEADER_SIZE,
				       he->frame_len - FRAME_V2_HEADER_SIZE);
			if (rc)
				goto out;
			add.next_offset = (int64_t)get_le64(hdr + 32) + 1;
			continue;
		}
		/* Copied, as engine_read_batches does. */
		size_t fcap = 0;
		uint8_t *b;
		size_t blen;
		rc = frame_read(p->e, he, &frame, &fcap);
		if (rc)
			goto out;
		if (frame[4] == 2) {
			blen = he->frame_len - FRAME_V2_HEADER_SIZE;
			b = malloc(blen ? blen : 1);
			if (!b) {
				rc = -ENOMEM;
				goto out;
			}
			memcpy(b, frame + FRAME_V2_HEADER_SIZE, blen);
		} else {
			rc = frame_v1_as_batch(frame, he->frame_len, &b, &blen);
			if (rc)
				goto out;
			if (blen > he->frame_len + 128) {
				free(b);
				rc = CHRONIK_ECORRUPT;
				goto out;
			}
		}
		free(frame);
		frame = NULL;
		add.next_offset = batches_next_offset(b, blen);
		rc = engine_spans_add_block(&add, b, blen);
		if (rc)
			goto out;
	}
out:
	if (retire_held)
		pthread_rwlock_unlock(&p->e->wal_retire_lock);
	free(frame);
	free(ents);
	if (rc == 0 && add.n)
		rc = engine_spans_move(out, &add);
	engine_spans_fini(&add);
	return rc;
}

int engine_partition_wait(struct partition *p, int64_t offset, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	/* p->grown waits on CLOCK_MONOTONIC (partition_new). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&p->lock);
	while (p->next_offset <= offset && !p->deleted) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&p->grown, &p->lock);
		} else if (pthread_cond_timedwait(&p->grown, &p->lock, &ts) == ETIMEDOUT) {
			break;
		}
	}
	if (p->next_offset > offset)
		rc = 1;
	else if (p->deleted)
		rc = CHRONIK_ENOTOPIC;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int engine_offset_for_timestamp(struct partition *p, int64_t ts, int64_t *offset)
{
	struct engine_cursor *c;
	struct engine_record r;
	int64_t start = -1;
	int rc, tries = 0;

again:
	pthread_mutex_lock(&p->lock);
	*offset = p->next_offset;
	for (size_t k = 0; k < p->nsegs; k++)
		if (segment_meta_get(p->segs[k])->max_timestamp >= ts) {
			/* The segment's time index narrows it down. */
			struct segment *s;
			struct segment_index_entry e;
			rc = seg_pin(p, k, &s);
			if (rc == SEG_AGAIN && ++tries < SEG_RETRIES)
				goto again;
			if (rc)
				return rc == SEG_AGAIN ? CHRONIK_ENOTOPIC : rc;
			start = segment_find_time(s, ts, &e) == 0 ?
					e.offset :
					segment_meta_get(s)->base_offset;
			seg_unpin(s);
			goto scan;
		}
	for (size_t i = 0; i < p->n; i++)
		if (p->idx[i].max_timestamp >= ts) {
			start = p->idx[i].base_offset;
			break;
		}
	pthread_mutex_unlock(&p->lock);
	if (start < 0)
		return 0;
scan:
	rc = engine_cursor_open(p, start, &c);
	if (rc)
		return rc;
	while ((rc = engine_cursor_next(c, &r)) == 1)
		if (r.timestamp >= ts) {
			*offset = r.offset;
			break;
		}
	engine_cursor_close(c);
	return rc < 0 ? rc : 0;
}

/* ---- verify ------------------------------------------------------------------------ */

struct verify_ctx {
	engine_problem_fn problem;
	void *arg;
	const char *path;
	uint64_t torn_pos; /* a torn tail in this file that recovery accepts; 0 = none */
	int problems;
	uint64_t frames;
};

static void report(struct verify_ctx *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void report(struct verify_ctx *v, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->problems++;
	if (v->problem)
		v->problem(v->arg, msg);
}

static int verify_frame(void *arg, uint64_t pos, enum frame_status st, const struct frame_info *fi)
{
	struct verify_ctx *v = arg;
	(void)fi;
	if (st == FRAME_VALID) {
		v->frames++;
		return 0;
	}
	if (v->torn_pos && pos == v->torn_pos) {
		log_msg(LOG_LVL_INFO, "verify",
			"%s position %" PRIu64 ": torn tail (an open for writing truncates it)",
			v->path, pos);
		return 1;
	}
	report(v, "%s position %" PRIu64 ": %s", v->path, pos,
	       st == FRAME_UNKNOWN_VERSION ? "unknown frame version" :
	       st == FRAME_SHORT	   ? "truncated frame" :
					     "invalid frame (bad magic, length or CRC)");
	return 1;
}

static void verify_problem(void *arg, const char *what)
{
	report(arg, "%s", what);
}

/* Every segment of p against its file (segment_verify), and the segments
 * against each other and the registry's end. */
static void verify_segments(struct verify_ctx *v, const char *topic, int32_t pi,
			    struct partition *p)
{
	struct segment **segs = NULL;
	size_t n;
	int64_t next_offset;
	uint64_t raw_end;

	pthread_mutex_lock(&p->lock);
	n = p->nsegs;
	next_offset = p->seg_next_offset;
	raw_end = p->seg_raw_end;
	if (n)
		segs = malloc(n * sizeof(*segs));
	for (size_t i = 0; segs && i < n; i++) {
		segs[i] = p->segs[i];
		segment_ref(segs[i]);
	}
	pthread_mutex_unlock(&p->lock);
	if (n && !segs) {
		report(v, "%s/%d: out of memory", topic, pi);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct segment_meta *m = segment_meta_get(segs[i]);
		int rc = tier_segment_verify(p->e, segs[i], verify_problem, v);
		if (rc < 0)
			report(v, "%s: %s", segment_path(segs[i]), chronik_strerror(rc));
		if (i > 0) {
			const struct segment_meta *prev = segment_meta_get(segs[i - 1]);
			if (m->base_offset <= prev->last_offset || m->raw_start < prev->raw_end)
				report(v, "%s/%d: segment %s overlaps the one before it", topic, pi,
				       segment_path(segs[i]));
		}
		if (i + 1 == n && (m->last_offset + 1 != next_offset || m->raw_end != raw_end))
			report(v, "%s/%d: the registry's end disagrees with its last segment",
			       topic, pi);
		v->frames += m->batches;
		segment_unref(segs[i]);
	}
	free(segs);
}

int engine_verify(struct engine *e, engine_problem_fn problem, void *arg)
{
	struct verify_ctx v = { .problem = problem, .arg = arg };
	char path[4096];
	uint64_t first = 0, last = 0;
	bool any;
	int rc;

	/* By seq: the indexer trims removed files off e->files meanwhile. */
	pthread_mutex_lock(&e->files_lock);
	any = e->nfiles > 0;
	if (any) {
		first = e->files[0].seq;
		last = e->files[e->nfiles - 1].seq;
	}
	pthread_mutex_unlock(&e->files_lock);
	for (uint64_t seq = first; any && seq <= last; seq++) {
		if (wal_fd_get(e, (uint32_t)seq) < 0)
			continue; /* indexed and removed */
		wal_path(e, seq, path, sizeof(path));
		v.path = path;
		v.torn_pos = seq == e->torn_seq ? e->torn_pos : 0;
		rc = wal_file_walk(path, verify_frame, &v);
		/* A sealed file may be indexed and removed meanwhile (by this
		 * engine's indexer, which unlinks it before it closes it, or by
		 * the writer beside a read-only engine): only the indexer
		 * removes a sealed WAL file, after its frames are registered. */
		if (rc == -ENOENT && seq < last)
			continue;
		if (rc && rc != CHRONIK_ECORRUPT && rc != CHRONIK_EVERSION)
			report(&v, "%s: %s", path, chronik_strerror(rc));
	}

	/* Every hot-index entry must point at a valid frame of its partition,
	 * densely and in raw-view order, and every batch's records must decode
	 * (decompressed if need be) to the raw length its frame header gives:
	 * the frame CRCs cover the bytes, this covers what they mean. */
	pthread_rwlock_rdlock(&e->meta_lock);
	for (size_t t = 0; t < e->ntopics; t++) {
		struct topic *tp = e->topics[t];
		for (int32_t pi = 0; pi < tp->nparts; pi++) {
			struct partition *p = tp->parts[pi];
			uint8_t *buf = NULL;
			size_t cap = 0;
			int64_t expect;
			uint64_t raw;
			verify_segments(&v, tp->name, pi, p);
			pthread_mutex_lock(&p->lock);
			expect = p->seg_next_offset;
			raw = p->seg_raw_end;
			for (size_t i = 0; i < p->n; i++) {
				struct hot_entry he = p->idx[i];
				struct frame_info fi;
				if (he.base_offset != expect || he.raw_pos != raw) {
					report(&v,
					       "%s/%d: index entry %zu at offset %" PRId64
					       " (raw %" PRIu64 ") expected %" PRId64
					       " (raw %" PRIu64 ")",
					       tp->name, pi, i, he.base_offset, he.raw_pos, expect,
					       raw);
					break;
				}
				if (frame_read(e, &he, &buf, &cap) != 0 ||
				    frame_decode(buf, he.frame_len, &fi) != FRAME_VALID ||
				    fi.base_offset != he.base_offset ||
				    fi.topic_id != p->topic_id || fi.partition != pi) {
					report(&v,
					       "%s/%d: index entry %zu does not match its frame",
					       tp->name, pi, i);
					break;
				}
				uint64_t records_raw;
				if (fi.version == 2 &&
				    (batch_raw_size(fi.batch, fi.batch_len, &records_raw) != 0 ||
				     records_raw != fi.raw_len)) {
					report(&v,
					       "%s/%d: index entry %zu: the batch's records do not "
					       "decode to its %" PRIu32 " raw bytes",
					       tp->name, pi, i, fi.raw_len);
					break;
				}
				expect = fi.last_offset + 1;
				raw += fi.version == 2 ?
					       fi.raw_len :
					       (uint64_t)(fi.value_len > 0 ? fi.value_len : 0) + 1;
			}
			if (expect != p->next_offset || raw != p->raw_size)
				report(&v,
				       "%s/%d: next offset %" PRId64 " / raw size %" PRIu64
				       " disagree with the index (%" PRId64 " / %" PRIu64 ")",
				       tp->name, pi, p->next_offset, p->raw_size, expect, raw);
			pthread_mutex_unlock(&p->lock);
			free(buf);
		}
	}
	pthread_rwlock_unlock(&e->meta_lock);
	log_msg(LOG_LVL_INFO, "verify", "%" PRIu64 " frames checked, %d problems", v.frames,
		v.problems);
	return v.problems;
}
