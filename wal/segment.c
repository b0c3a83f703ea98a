/* segment.c - write, open, search and verify segment files (format in
 * segment.h).
 *
 * A segment's in-memory object is cheap until a reader opens it: the index
 * is loaded and the file descriptor opened by the first segment_read_begin
 * and both are dropped by the last segment_read_end, so a partition with
 * thousands of segments holds descriptors only for those being read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "byteorder.h"
#include "crc32c.h"
#include "errors.h"
#include "log.h"
#include "segment.h"

/* ---- encoding helpers ------------------------------------------------------ */

/* ---- the key digest (segment.h, "Key digest") ------------------------------ */

static inline uint64_t fmix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

#define LANE_A_SEED 0x9e3779b97f4a7c15ull
#define LANE_A_MUL 0xbf58476d1ce4e5b9ull
#define LANE_B_SEED 0xd6e8feb86659fd93ull
#define LANE_B_MUL 0x94d049bb133111ebull

void segment_key_digest(const void *key, size_t len, uint64_t digest[2])
{
	const uint8_t *k = key;
	uint64_t a = LANE_A_SEED, b = LANE_B_SEED;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w = get_le64(k + i);
		a = rotl((a ^ fmix(w ^ LANE_A_SEED)) * LANE_A_MUL, 29);
		b = rotl((b ^ fmix(w ^ LANE_B_SEED)) * LANE_B_MUL, 29);
	}
	if (i < len) {
		uint8_t tail[8] = { 0 };
		memcpy(tail, k + i, len - i);
		uint64_t w = get_le64(tail);
		a = rotl((a ^ fmix(w ^ LANE_A_SEED)) * LANE_A_MUL, 29);
		b = rotl((b ^ fmix(w ^ LANE_B_SEED)) * LANE_B_MUL, 29);
	}
	digest[0] = fmix(a ^ (uint64_t)len);
	digest[1] = fmix(b ^ (uint64_t)len);
}

static void key_encode(uint8_t *p, const struct segment_key *k)
{
	put_le64(p, k->digest[0]);
	put_le64(p + 8, k->digest[1]);
	put_le64(p + 16, (uint64_t)k->offset);
}

static void key_decode(const uint8_t *p, struct segment_key *k)
{
	k->digest[0] = get_le64(p);
	k->digest[1] = get_le64(p + 8);
	k->offset = (int64_t)get_le64(p + 16);
}

/* Key table order: by digest word 0, then word 1. */
static int key_cmp(const void *a, const void *b)
{
	const struct segment_key *x = a, *y = b;
	if (x->digest[0] != y->digest[0])
		return x->digest[0] < y->digest[0] ? -1 : 1;
	if (x->digest[1] != y->digest[1])
		return x->digest[1] < y->digest[1] ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static _Atomic uint32_t write_version = SEGMENT_VERSION;

int segment_write_version(uint32_t version)
{
	if (version != 1 && version != SEGMENT_VERSION)
		return -EINVAL;
	return (int)atomic_exchange(&write_version, version);
}

static void header_encode(uint8_t h[SEGMENT_HEADER_SIZE], uint32_t version, uint32_t topic_id,
			  int32_t partition, int64_t base_offset, uint64_t wal_seq)
{
	memset(h, 0, SEGMENT_HEADER_SIZE);
	memcpy(h, SEGMENT_MAGIC, 8);
	put_le32(h + 8, version);
	put_le32(h + 12, topic_id);
	put_le32(h + 16, (uint32_t)partition);
	put_le64(h + 24, (uint64_t)base_offset);
	put_le64(h + 32, wal_seq);
	put_le32(h + 60, crc32c(0, h, 60));
}

static int header_check(const uint8_t h[SEGMENT_HEADER_SIZE])
{
	if (memcmp(h, SEGMENT_MAGIC, 8) != 0 || get_le32(h + 60) != crc32c(0, h, 60))
		return CHRONIK_ECORRUPT;
	if (get_le32(h + 8) != 1 && get_le32(h + 8) != 2)
		return CHRONIK_EVERSION;
	return 0;
}

static size_t trailer_size(uint32_t version)
{
	return version == 1 ? SEGMENT_TRAILER_SIZE : SEGMENT_TRAILER_V2_SIZE;
}

struct trailer {
	uint32_t version; /* from the header */
	uint64_t data_end;
	uint32_t entries;
	uint32_t batches;
	int64_t last_offset;
	uint64_t raw_end;
	int64_t min_timestamp;
	int64_t max_timestamp;
	uint32_t index_crc;
	uint32_t keys; /* version 2 */
	uint64_t key_pos;
	uint32_t key_crc;
};

/* t holds trailer_size(tr->version) bytes. */
static void trailer_encode(uint8_t *t, const struct trailer *tr)
{
	memset(t, 0, trailer_size(tr->version));
	memcpy(t, SEGMENT_TRAILER_MAGIC, 8);
	put_le64(t + 8, tr->data_end);
	put_le32(t + 16, tr->entries);
	put_le32(t + 20, tr->batches);
	put_le64(t + 24, (uint64_t)tr->last_offset);
	put_le64(t + 32, tr->raw_end);
	put_le64(t + 40, (uint64_t)tr->min_timestamp);
	put_le64(t + 48, (uint64_t)tr->max_timestamp);
	put_le32(t + 56, tr->index_crc);
	if (tr->version == 1) {
		put_le32(t + 60, crc32c(0, t, 60));
		return;
	}
	put_le32(t + 60, tr->keys);
	put_le64(t + 64, tr->key_pos);
	put_le32(t + 72, tr->key_crc);
	put_le32(t + 76, crc32c(0, t, 76));
}

/* t holds trailer_size(version) bytes, the end of a file of file_size. */
static int trailer_decode(const uint8_t *t, uint32_t version, uint64_t file_size,
			  struct trailer *tr)
{
	size_t tsize = trailer_size(version);

	if (memcmp(t, SEGMENT_TRAILER_MAGIC, 8) != 0 ||
	    get_le32(t + tsize - 4) != crc32c(0, t, tsize - 4))
		return CHRONIK_ECORRUPT;
	tr->version = version;
	tr->data_end = get_le64(t + 8);
	tr->entries = get_le32(t + 16);
	tr->batches = get_le32(t + 20);
	tr->last_offset = (int64_t)get_le64(t + 24);
	tr->raw_end = get_le64(t + 32);
	tr->min_timestamp = (int64_t)get_le64(t + 40);
	tr->max_timestamp = (int64_t)get_le64(t + 48);
	tr->index_crc = get_le32(t + 56);
	tr->keys = 0;
	tr->key_pos = tr->data_end + (uint64_t)tr->entries * SEGMENT_INDEX_ENTRY_SIZE;
	tr->key_crc = 0;
	if (version == 2) {
		tr->keys = get_le32(t + 60);
		tr->key_crc = get_le32(t + 72);
		if (get_le64(t + 64) != tr->key_pos)
			return CHRONIK_ECORRUPT;
	}
	if (tr->data_end < SEGMENT_HEADER_SIZE || tr->data_end >= file_size || tr->entries == 0 ||
	    tr->key_pos + (uint64_t)tr->keys * SEGMENT_KEY_ENTRY_SIZE + tsize != file_size)
		return CHRONIK_ECORRUPT;
	return 0;
}

static void entry_encode(uint8_t *p, const struct segment_index_entry *e)
{
	put_le64(p, (uint64_t)e->offset);
	put_le64(p + 8, e->raw_pos);
	put_le64(p + 16, (uint64_t)e->max_timestamp);
	put_le32(p + 24, e->file_pos);
	put_le32(p + 28, e->span_crc);
}

static void entry_decode(const uint8_t *p, struct segment_index_entry *e)
{
	e->offset = (int64_t)get_le64(p);
	e->raw_pos = get_le64(p + 8);
	e->max_timestamp = (int64_t)get_le64(p + 16);
	e->file_pos = get_le32(p + 24);
	e->span_crc = get_le32(p + 28);
}

static int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t pos)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, (off_t)(pos + got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* ---- writer ---------------------------------------------------------------- */

struct segment_writer {
	char *path;
	int fd;
	struct segment_index_entry *idx;
	size_t n, cap;
	struct segment_meta m;
	uint64_t pos; /* file position of the next batch */
	uint64_t entry_pos; /* file position of the last entry's batch */
	int64_t next_offset; /* last batch's last offset + 1 */
	uint64_t raw_next; /* last batch's raw end */
	uint8_t *buf; /* batches not yet written */
	size_t blen, bcap;
	uint32_t version;
	struct segment_key *keys; /* the key table (version 2): one a key */
	size_t nkeys, keys_cap;
	uint32_t *kslot; /* open addressing on digest word 0: index + 1 into keys, 0 empty */
	size_t kcap; /* a power of two */
	struct batch_scratch scratch; /* decoding batches for their keys */
};

#define WRITER_BUF (1u << 20)

int segment_writer_open(const char *path, uint32_t topic_id, int32_t partition, int64_t base_offset,
			uint64_t wal_seq, struct segment_writer **out)
{
	struct segment_writer *w = calloc(1, sizeof(*w));
	uint8_t h[SEGMENT_HEADER_SIZE];
	int rc;

	if (!w)
		return -ENOMEM;
	w->path = strdup(path);
	w->buf = malloc(WRITER_BUF);
	if (!w->path || !w->buf) {
		free(w->path);
		free(w->buf);
		free(w);
		return -ENOMEM;
	}
	w->bcap = WRITER_BUF;
	w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		rc = -errno;
		free(w->path);
		free(w->buf);
		free(w);
		return rc;
	}
	w->version = atomic_load(&write_version);
	header_encode(h, w->version, topic_id, partition, base_offset, wal_seq);
	memcpy(w->buf, h, sizeof(h));
	w->blen = sizeof(h);
	w->pos = SEGMENT_HEADER_SIZE;
	w->m.base_offset = base_offset;
	w->m.last_offset = base_offset - 1;
	w->m.min_timestamp = INT64_MAX;
	w->m.max_timestamp = -1;
	w->m.wal_seq = wal_seq;
	w->next_offset = base_offset;
	*out = w;
	return 0;
}

static int writer_flush(struct segment_writer *w)
{
	int rc = write_full(w->fd, w->buf, w->blen);
	w->blen = 0;
	return rc;
}

/* Key d seen at offset off: its entry (new, or the one it has, whose
 * offset off, being later, replaces). */
static int writer_key_put(struct segment_writer *w, const uint64_t d[2], int64_t off)
{
	if ((w->nkeys + 1) * 2 > w->kcap) {
		size_t cap = w->kcap ? w->kcap * 2 : 1024;
		uint32_t *v = calloc(cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < w->nkeys; i++) {
			size_t j = w->keys[i].digest[0] & (cap - 1);
			while (v[j])
				j = (j + 1) & (cap - 1);
			v[j] = (uint32_t)(i + 1);
		}
		free(w->kslot);
		w->kslot = v;
		w->kcap = cap;
	}
	size_t i = d[0] & (w->kcap - 1);
	for (; w->kslot[i]; i = (i + 1) & (w->kcap - 1)) {
		struct segment_key *k = &w->keys[w->kslot[i] - 1];
		if (k->digest[0] == d[0] && k->digest[1] == d[1]) {
			k->offset = off;
			return 0;
		}
	}
	if (w->nkeys == UINT32_MAX - 1)
		return -EINVAL;
	if (w->nkeys == w->keys_cap) {
		size_t cap = w->keys_cap ? w->keys_cap * 2 : 256;
		struct segment_key *v = realloc(w->keys, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		w->keys = v;
		w->keys_cap = cap;
	}
	w->keys[w->nkeys].digest[0] = d[0];
	w->keys[w->nkeys].digest[1] = d[1];
	w->keys[w->nkeys].offset = off;
	w->kslot[i] = (uint32_t)++w->nkeys;
	return 0;
}

/* The keys of the batch's keyed records into the key table. */
static int writer_keys(struct segment_writer *w, const uint8_t *batch, size_t len)
{
	struct batch_iter it;
	struct batch_record r;
	int rc = batch_iter_init_with(&it, batch, len, &w->scratch);

	while (rc == 0 && (rc = batch_iter_next(&it, &r)) == 1) {
		int64_t off = it.hdr.base_offset + r.offset_delta;
		rc = 0;
		if (r.key_len < 0)
			continue;
		uint64_t d[2];
		segment_key_digest(r.key, (size_t)r.key_len, d);
		rc = writer_key_put(w, d, off);
	}
	batch_iter_fini(&it);
	return rc;
}

int segment_writer_add(struct segment_writer *w, const uint8_t *batch, size_t len, uint64_t raw_pos,
		       uint64_t raw_len, uint32_t records)
{
	return segment_writer_add_from(w, batch, len, raw_pos, raw_len, records, &batch, &len, 1);
}

int segment_writer_add_from(struct segment_writer *w, const uint8_t *batch, size_t len,
			    uint64_t raw_pos, uint64_t raw_len, uint32_t records,
			    const uint8_t *const *src, const size_t *src_lens, size_t nsrc)
{
	struct batch_header bh;
	int rc = batch_header_parse(batch, len, &bh);

	if (rc)
		return rc;
	if (bh.base_offset < w->next_offset || w->pos + len > SEGMENT_MAX_BYTES / 2)
		return -EINVAL;
	for (size_t i = 0; w->version >= 2 && i < nsrc; i++) {
		rc = writer_keys(w, src[i], src_lens[i]);
		if (rc)
			return rc;
	}
	bool first = w->n == 0;
	bool cont = bh.base_offset == w->next_offset && raw_pos == w->raw_next;
	if (first || !cont || w->pos - w->entry_pos >= SEGMENT_INDEX_INTERVAL) {
		if (w->n == w->cap) {
			size_t cap = w->cap ? w->cap * 2 : 64;
			struct segment_index_entry *v = realloc(w->idx, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			w->idx = v;
			w->cap = cap;
		}
		w->idx[w->n].offset = bh.base_offset;
		w->idx[w->n].raw_pos = raw_pos;
		w->idx[w->n].max_timestamp = w->n ? w->idx[w->n - 1].max_timestamp : -1;
		w->idx[w->n].file_pos = (uint32_t)w->pos;
		w->idx[w->n].span_crc = 0;
		w->n++;
		w->entry_pos = w->pos;
		if (first)
			w->m.raw_start = raw_pos;
	}
	if (bh.max_timestamp > w->idx[w->n - 1].max_timestamp)
		w->idx[w->n - 1].max_timestamp = bh.max_timestamp;
	if (bh.base_timestamp < w->m.min_timestamp)
		w->m.min_timestamp = bh.base_timestamp;
	if (bh.max_timestamp > w->m.max_timestamp)
		w->m.max_timestamp = bh.max_timestamp;
	w->idx[w->n - 1].span_crc = crc32c(w->idx[w->n - 1].span_crc, batch, len);
	if (w->blen + len > w->bcap) {
		rc = writer_flush(w);
		if (rc)
			return rc;
	}
	if (len > w->bcap) {
		rc = write_full(w->fd, batch, len);
		if (rc)
			return rc;
	} else {
		memcpy(w->buf + w->blen, batch, len);
		w->blen += len;
	}
	w->pos += len;
	w->next_offset = bh.base_offset + bh.last_offset_delta + 1;
	w->raw_next = raw_pos + raw_len;
	w->m.last_offset = w->next_offset - 1;
	w->m.raw_end = w->raw_next;
	w->m.records += records;
	w->m.batches++;
	return 0;
}

static void writer_free(struct segment_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->idx);
	free(w->keys);
	free(w->kslot);
	batch_scratch_fini(&w->scratch);
	free(w->buf);
	free(w->path);
	free(w);
}

void segment_writer_abort(struct segment_writer *w)
{
	if (!w)
		return;
	unlink(w->path);
	writer_free(w);
}

int segment_writer_finish(struct segment_writer *w, struct segment_meta *meta)
{
	uint8_t t[SEGMENT_TRAILER_V2_SIZE];
	struct trailer tr = { .version = w->version };
	uint8_t *ib = NULL, *kb = NULL;
	size_t klen = w->nkeys * SEGMENT_KEY_ENTRY_SIZE;
	int rc;

	if (w->n == 0) {
		rc = -EINVAL;
		goto fail;
	}
	rc = writer_flush(w);
	if (rc)
		goto fail;
	ib = malloc(w->n * SEGMENT_INDEX_ENTRY_SIZE);
	if (!ib) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < w->n; i++)
		entry_encode(ib + i * SEGMENT_INDEX_ENTRY_SIZE, &w->idx[i]);
	tr.data_end = w->pos;
	tr.entries = (uint32_t)w->n;
	tr.batches = w->m.batches;
	tr.last_offset = w->m.last_offset;
	tr.raw_end = w->m.raw_end;
	tr.min_timestamp = w->m.min_timestamp;
	tr.max_timestamp = w->m.max_timestamp;
	tr.index_crc = crc32c(0, ib, w->n * SEGMENT_INDEX_ENTRY_SIZE);
	if (w->nkeys > UINT32_MAX) {
		rc = -EINVAL;
		goto fail;
	}
	if (klen && !(kb = malloc(klen))) {
		rc = -ENOMEM;
		goto fail;
	}
	if (w->nkeys > 1)
		qsort(w->keys, w->nkeys, sizeof(*w->keys), key_cmp);
	for (size_t i = 0; i < w->nkeys; i++)
		key_encode(kb + i * SEGMENT_KEY_ENTRY_SIZE, &w->keys[i]);
	tr.keys = (uint32_t)w->nkeys;
	tr.key_pos = w->pos + w->n * SEGMENT_INDEX_ENTRY_SIZE;
	tr.key_crc = klen ? crc32c(0, kb, klen) : 0;
	trailer_encode(t, &tr);
	rc = write_full(w->fd, ib, w->n * SEGMENT_INDEX_ENTRY_SIZE);
	if (rc == 0 && klen)
		rc = write_full(w->fd, kb, klen);
	if (rc == 0)
		rc = write_full(w->fd, t, trailer_size(w->version));
	if (rc == 0 && fsync(w->fd) < 0)
		rc = -errno;
	if (rc == 0 && close(w->fd) < 0)
		rc = -errno;
	w->fd = -1;
	if (rc)
		goto fail;
	w->m.data_end = w->pos;
	w->m.bytes = tr.key_pos + klen + trailer_size(w->version);
	*meta = w->m;
	free(ib);
	free(kb);
	writer_free(w);
	return 0;
fail:
	free(ib);
	free(kb);
	segment_writer_abort(w);
	return rc;
}

/* ---- reader ---------------------------------------------------------------- */

/* Invariants (lock): fd >= 0 and idx loaded exactly while readers > 0;
 * for a remote segment have[] too (n bytes, 1 = span i's bytes are in the
 * cache file and matched its span CRC), changed only under fetch_lock,
 * which a reader holds while it checks or fetches spans (lock order:
 * fetch_lock, then lock). */
struct segment {
	atomic_int refcnt;
	atomic_bool doomed;
	char *path;
	struct segment_meta m;
	pthread_mutex_t lock;
	pthread_mutex_t fetch_lock;
	int readers;
	int fd;
	struct segment_index_entry *idx;
	size_t n;
	struct trailer tr; /* while readers > 0 */
	uint8_t *have;
	const struct segment_remote_ops *rops; /* remote segments */
	void *rops_arg;
};

void segment_set_remote(struct segment *s, const struct segment_remote_ops *ops, void *arg)
{
	s->rops = ops;
	s->rops_arg = arg;
}

int segment_new(const char *path, const struct segment_meta *m, struct segment **out)
{
	struct segment *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->path = strdup(path);
	if (!s->path) {
		free(s);
		return -ENOMEM;
	}
	atomic_init(&s->refcnt, 1);
	atomic_init(&s->doomed, false);
	s->m = *m;
	s->fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->fetch_lock, NULL);
	*out = s;
	return 0;
}

void segment_ref(struct segment *s)
{
	atomic_fetch_add(&s->refcnt, 1);
}

static pthread_mutex_t sidecar_lock = PTHREAD_MUTEX_INITIALIZER;
static char sidecars[SEGMENT_SIDECARS_MAX][16];
static size_t nsidecars;

int segment_sidecar_register(const char *suffix)
{
	int rc = 0;

	if (!suffix || !*suffix || strlen(suffix) >= sizeof(sidecars[0]))
		return -EINVAL;
	pthread_mutex_lock(&sidecar_lock);
	for (size_t i = 0; i < nsidecars; i++)
		if (strcmp(sidecars[i], suffix) == 0)
			goto out;
	if (nsidecars == SEGMENT_SIDECARS_MAX)
		rc = -EINVAL;
	else
		strcpy(sidecars[nsidecars++], suffix);
out:
	pthread_mutex_unlock(&sidecar_lock);
	return rc;
}

static void sidecars_remove(const char *path)
{
	char buf[4200];

	pthread_mutex_lock(&sidecar_lock);
	for (size_t i = 0; i < nsidecars; i++) {
		snprintf(buf, sizeof(buf), "%s%s", path, sidecars[i]);
		unlink(buf);
	}
	pthread_mutex_unlock(&sidecar_lock);
}

void segment_file_remove(const char *path)
{
	unlink(path);
	sidecars_remove(path);
}

void segment_doom(struct segment *s)
{
	atomic_store(&s->doomed, true);
}

void segment_unref(struct segment *s)
{
	if (!s || atomic_fetch_sub(&s->refcnt, 1) != 1)
		return;
	if (atomic_load(&s->doomed))
		segment_file_remove(s->path);
	if (s->fd >= 0)
		close(s->fd);
	free(s->idx);
	free(s->have);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->fetch_lock);
	free(s->path);
	free(s);
}

const struct segment_meta *segment_meta_get(const struct segment *s)
{
	return &s->m;
}

const char *segment_path(const struct segment *s)
{
	return s->path;
}

/* Check rules 1-3 on the open file fd (left open); *idx (malloc'd) and
 * *n get the index. */
static int fd_checked(int fd, struct trailer *tr, struct segment_index_entry **idx, size_t *n)
{
	uint8_t h[SEGMENT_HEADER_SIZE], t[SEGMENT_TRAILER_V2_SIZE];
	struct stat st;
	size_t tsize;
	uint8_t *ib = NULL;
	struct segment_index_entry *v = NULL;
	size_t ilen;
	int rc;

	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = CHRONIK_ECORRUPT;
	if ((uint64_t)st.st_size < SEGMENT_HEADER_SIZE ||
	    pread_full(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
		goto fail;
	rc = header_check(h);
	if (rc)
		goto fail;
	rc = CHRONIK_ECORRUPT;
	tsize = trailer_size(get_le32(h + 8));
	if ((uint64_t)st.st_size < SEGMENT_HEADER_SIZE + SEGMENT_INDEX_ENTRY_SIZE + tsize ||
	    pread_full(fd, t, tsize, (uint64_t)st.st_size - tsize) != (ssize_t)tsize)
		goto fail;
	rc = trailer_decode(t, get_le32(h + 8), (uint64_t)st.st_size, tr);
	if (rc)
		goto fail;
	ilen = (size_t)tr->entries * SEGMENT_INDEX_ENTRY_SIZE;
	ib = malloc(ilen);
	v = calloc(tr->entries, sizeof(*v));
	if (!ib || !v) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = CHRONIK_ECORRUPT;
	if (pread_full(fd, ib, ilen, tr->data_end) != (ssize_t)ilen ||
	    crc32c(0, ib, ilen) != tr->index_crc)
		goto fail;
	for (size_t i = 0; i < tr->entries; i++) {
		entry_decode(ib + i * SEGMENT_INDEX_ENTRY_SIZE, &v[i]);
		if (i == 0 ? v[i].file_pos != SEGMENT_HEADER_SIZE :
			     (v[i].offset <= v[i - 1].offset || v[i].raw_pos < v[i - 1].raw_pos ||
			      v[i].file_pos <= v[i - 1].file_pos ||
			      v[i].max_timestamp < v[i - 1].max_timestamp))
			goto fail;
		if (v[i].file_pos >= tr->data_end || v[i].offset > tr->last_offset ||
		    v[i].raw_pos >= tr->raw_end)
			goto fail;
	}
	free(ib);
	*idx = v;
	*n = tr->entries;
	return 0;
fail:
	free(ib);
	free(v);
	return rc;
}

/* Open path and check rules 1-3. */
static int file_open_checked(const char *path, int *fd_out, struct trailer *tr,
			     struct segment_index_entry **idx, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -errno;
	rc = fd_checked(fd, tr, idx, n);
	if (rc)
		close(fd);
	else
		*fd_out = fd;
	return rc;
}

static size_t search(const struct segment *s, int field, uint64_t key);

/* A remote segment's cache file, opened by the hook, its header, index
 * and trailer fetched unless a copy already there passes rules 1-3
 * (their own CRCs say whether the bytes are there). */
static int remote_open_checked(struct segment *s, struct trailer *tr)
{
	int fd = s->rops->open(s->rops_arg, s), rc;

	if (fd < 0)
		return fd;
	rc = fd_checked(fd, tr, &s->idx, &s->n);
	if (rc == CHRONIK_ECORRUPT) {
		uint8_t h[SEGMENT_HEADER_SIZE], t[SEGMENT_TRAILER_V2_SIZE];
		rc = s->rops->fetch(s->rops_arg, s, fd, 0, SEGMENT_HEADER_SIZE);
		if (rc == 0 && pread_full(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
			rc = CHRONIK_ECORRUPT;
		if (rc == 0)
			rc = header_check(h);
		if (rc == 0 && get_le32(h + 8) == 1) {
			/* index and trailer, one range */
			rc = s->rops->fetch(s->rops_arg, s, fd, s->m.data_end,
					    s->m.bytes - s->m.data_end);
		} else if (rc == 0) {
			/* the trailer, then the index it counts: not the key
			 * table between them, which no remote read needs */
			if (s->m.bytes < SEGMENT_TRAILER_V2_SIZE)
				rc = CHRONIK_ECORRUPT;
			if (rc == 0)
				rc = s->rops->fetch(s->rops_arg, s, fd,
						    s->m.bytes - SEGMENT_TRAILER_V2_SIZE,
						    SEGMENT_TRAILER_V2_SIZE);
			if (rc == 0 &&
			    pread_full(fd, t, sizeof(t), s->m.bytes - SEGMENT_TRAILER_V2_SIZE) !=
				    (ssize_t)sizeof(t))
				rc = CHRONIK_ECORRUPT;
			if (rc == 0)
				rc = trailer_decode(t, 2, s->m.bytes, tr);
			if (rc == 0)
				rc = s->rops->fetch(s->rops_arg, s, fd, tr->data_end,
						    (uint64_t)tr->entries *
							    SEGMENT_INDEX_ENTRY_SIZE);
		}
		if (rc == 0)
			rc = fd_checked(fd, tr, &s->idx, &s->n);
	}
	if (rc == 0 && !(s->have = calloc(s->n, 1))) {
		free(s->idx);
		s->idx = NULL;
		rc = -ENOMEM;
	}
	if (rc) {
		close(fd);
		return rc;
	}
	s->fd = fd;
	return 0;
}

/* Span i of the index: [idx[i].file_pos, the next entry's or data_end). */
static uint64_t span_end(const struct segment *s, size_t i)
{
	return i + 1 < s->n ? s->idx[i + 1].file_pos : s->m.data_end;
}

/* Whether span i's bytes in the cache file match its CRC (a copy fetched
 * before, by this process or an earlier one). */
static bool span_ok(struct segment *s, size_t i, uint8_t *buf)
{
	uint64_t a = s->idx[i].file_pos, len = span_end(s, i) - a;
	off_t d = lseek(s->fd, (off_t)a, SEEK_DATA);

	if (d != (off_t)a) /* a hole: never fetched */
		return false;
	return pread_full(s->fd, buf, (size_t)len, a) == (ssize_t)len &&
	       crc32c(0, buf, (size_t)len) == s->idx[i].span_crc;
}

/* Make the batch bytes [pos, end) of a remote segment present in its
 * cache file: the spans that hold them and are not there yet are fetched
 * (one ranged GET for each run of missing spans, grown with the spans
 * that follow up to SEGMENT_FETCH_BYTES, as read-ahead), and each span's
 * CRC checked. */
static int remote_ensure(struct segment *s, uint64_t pos, uint64_t end)
{
	size_t i, j, first = search(s, 2, pos);
	uint8_t *buf = NULL;
	int rc = 0;

	pthread_mutex_lock(&s->fetch_lock);
	for (i = first; i < s->n && s->idx[i].file_pos < end && rc == 0; i = j) {
		j = i + 1;
		if (s->have[i])
			continue;
		if (!buf && !(buf = malloc(SEGMENT_MAX_SPAN))) {
			rc = -ENOMEM;
			break;
		}
		if (span_end(s, i) - s->idx[i].file_pos <= SEGMENT_MAX_SPAN && span_ok(s, i, buf)) {
			s->have[i] = 1;
			continue;
		}
		uint64_t a = s->idx[i].file_pos;
		while (j < s->n && !s->have[j] &&
		       (s->idx[j].file_pos < end || span_end(s, j) - a <= SEGMENT_FETCH_BYTES))
			j++;
		uint64_t b = span_end(s, j - 1);
		rc = s->rops->fetch(s->rops_arg, s, s->fd, a, b - a);
		for (size_t k = i; k < j && rc == 0; k++) {
			uint64_t ka = s->idx[k].file_pos, kl = span_end(s, k) - ka;
			uint8_t *kb = kl <= SEGMENT_MAX_SPAN ? buf : malloc(kl);
			if (!kb) {
				rc = -ENOMEM;
				break;
			}
			if (pread_full(s->fd, kb, (size_t)kl, ka) != (ssize_t)kl ||
			    crc32c(0, kb, (size_t)kl) != s->idx[k].span_crc) {
				log_msg(LOG_LVL_ERROR, "segment",
					"%s: fetched bytes [%" PRIu64 ", %" PRIu64
					") do not match their span CRC",
					s->m.remote_key, ka, ka + kl);
				rc = CHRONIK_ECORRUPT;
			} else {
				s->have[k] = 1;
			}
			if (kb != buf)
				free(kb);
		}
	}
	pthread_mutex_unlock(&s->fetch_lock);
	free(buf);
	return rc;
}

int segment_fetch_all(struct segment *s)
{
	if (s->m.state != SEGMENT_REMOTE)
		return 0;
	int rc = remote_ensure(s, SEGMENT_HEADER_SIZE, s->m.data_end);
	if (rc == 0 && s->tr.keys) {
		/* the key table, which opening left out (checked by its CRC
		 * where it is read: segment_verify) */
		pthread_mutex_lock(&s->fetch_lock);
		rc = s->rops->fetch(s->rops_arg, s, s->fd, s->tr.key_pos,
				    (uint64_t)s->tr.keys * SEGMENT_KEY_ENTRY_SIZE);
		pthread_mutex_unlock(&s->fetch_lock);
	}
	return rc;
}

int segment_dup_fd(struct segment *s)
{
	int fd;

	pthread_mutex_lock(&s->lock);
	if (s->readers <= 0 || s->fd < 0 || s->m.state != SEGMENT_LOCAL)
		fd = -EINVAL;
	else if ((fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0)) < 0)
		fd = -errno;
	pthread_mutex_unlock(&s->lock);
	return fd;
}

int segment_read_begin(struct segment *s)
{
	struct trailer tr;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (s->readers == 0) {
		if (s->m.state == SEGMENT_REMOTE)
			rc = s->rops ? remote_open_checked(s, &tr) : -EIO;
		else
			rc = file_open_checked(s->path, &s->fd, &tr, &s->idx, &s->n);
		if (rc == 0 &&
		    (tr.data_end != s->m.data_end || tr.last_offset != s->m.last_offset ||
		     tr.raw_end != s->m.raw_end || s->idx[0].offset != s->m.base_offset ||
		     s->idx[0].raw_pos != s->m.raw_start)) {
			close(s->fd);
			free(s->idx);
			free(s->have);
			s->fd = -1;
			s->idx = NULL;
			s->have = NULL;
			rc = CHRONIK_ECORRUPT;
		}
		if (rc == 0)
			s->tr = tr;
	}
	if (rc == 0)
		s->readers++;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void segment_read_end(struct segment *s)
{
	pthread_mutex_lock(&s->lock);
	if (--s->readers == 0) {
		close(s->fd);
		s->fd = -1;
		free(s->idx);
		free(s->have);
		s->idx = NULL;
		s->have = NULL;
		s->n = 0;
	}
	pthread_mutex_unlock(&s->lock);
}

ssize_t segment_pread(struct segment *s, void *buf, size_t len, uint64_t pos)
{
	/* fd is stable while this reader holds it open (readers > 0). */
	pthread_mutex_lock(&s->lock);
	int fd = s->fd;
	pthread_mutex_unlock(&s->lock);
	if (pos >= s->m.data_end)
		return 0;
	if (len > s->m.data_end - pos)
		len = (size_t)(s->m.data_end - pos);
	if (s->m.state == SEGMENT_REMOTE) {
		int rc = remote_ensure(s, pos, pos + len);
		if (rc)
			return rc;
	}
	return pread_full(fd, buf, len, pos);
}

uint32_t segment_version(const struct segment *s)
{
	return s->tr.version;
}

/* Read and check the key table of tr from fd. */
static int keys_read(int fd, const struct trailer *tr, struct segment_key **keys, size_t *n)
{
	size_t klen = (size_t)tr->keys * SEGMENT_KEY_ENTRY_SIZE;
	struct segment_key *v = NULL;
	uint8_t *kb;

	*keys = NULL;
	*n = 0;
	if (klen == 0)
		return tr->key_crc == 0 ? 0 : CHRONIK_ECORRUPT;
	kb = malloc(klen);
	v = malloc((size_t)tr->keys * sizeof(*v));
	if (!kb || !v) {
		free(kb);
		free(v);
		return -ENOMEM;
	}
	ssize_t got = pread_full(fd, kb, klen, tr->key_pos);
	int rc = got < 0 ? (int)got : CHRONIK_ECORRUPT;
	if (got == (ssize_t)klen && crc32c(0, kb, klen) == tr->key_crc) {
		rc = 0;
		for (size_t i = 0; i < tr->keys && rc == 0; i++) {
			key_decode(kb + i * SEGMENT_KEY_ENTRY_SIZE, &v[i]);
			if (v[i].offset > tr->last_offset ||
			    (i && (v[i].digest[0] < v[i - 1].digest[0] ||
				   (v[i].digest[0] == v[i - 1].digest[0] &&
				    v[i].digest[1] <= v[i - 1].digest[1]))))
				rc = CHRONIK_ECORRUPT;
		}
	}
	free(kb);
	if (rc) {
		free(v);
		return rc;
	}
	*keys = v;
	*n = tr->keys;
	return 0;
}

int segment_read_keys(struct segment *s, struct segment_key **keys, size_t *n)
{
	pthread_mutex_lock(&s->lock);
	int fd = s->fd;
	pthread_mutex_unlock(&s->lock);
	if (s->tr.version < 2 || s->m.state == SEGMENT_REMOTE)
		return 1;
	int rc = keys_read(fd, &s->tr, keys, n);
	for (size_t i = 0; rc == 0 && i < *n; i++)
		if ((*keys)[i].offset < s->m.base_offset)
			rc = CHRONIK_ECORRUPT;
	if (rc && *keys) {
		free(*keys);
		*keys = NULL;
		*n = 0;
	}
	return rc;
}

/* The index is immutable while readers > 0; the caller is one. */
static size_t search(const struct segment *s, int field, uint64_t key)
{
	size_t lo = 0, hi = s->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v = field == 0 ? (uint64_t)s->idx[mid].offset :
			     field == 1 ? s->idx[mid].raw_pos :
					  s->idx[mid].file_pos;
		if (v <= key)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

void segment_find_offset(struct segment *s, int64_t offset, struct segment_index_entry *out)
{
	*out = s->idx[search(s, 0, offset < 0 ? 0 : (uint64_t)offset)];
}

void segment_find_raw(struct segment *s, uint64_t raw_pos, struct segment_index_entry *out)
{
	*out = s->idx[search(s, 1, raw_pos)];
}

int segment_find_time(struct segment *s, int64_t ts, struct segment_index_entry *out)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->idx[mid].max_timestamp >= ts)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo == s->n)
		return 1;
	*out = s->idx[lo];
	return 0;
}

int segment_count_from(struct segment *s, int64_t from, uint64_t *out)
{
	uint8_t h[BATCH_HEADER_SIZE];
	struct segment_index_entry e;
	uint64_t n = 0, pos;
	int rc = segment_read_begin(s);

	if (rc)
		return rc;
	/* The batches before the entry at or below from hold nothing >= from. */
	segment_find_offset(s, from, &e);
	pos = e.file_pos;
	while (pos < s->m.data_end) {
		/* RecordBatch v2 (batch.h): baseOffset at 0, batchLength at 8,
		 * magic at 16, lastOffsetDelta at 23; the rest is not needed. */
		ssize_t got = segment_pread(s, h, sizeof(h), pos);
		if (got < 0) {
			rc = (int)got;
			break;
		}
		int64_t base = (int64_t)get_be64(h);
		uint32_t blen = get_be32(h + 8);
		int32_t delta = (int32_t)get_be32(h + 23);
		if (got != (ssize_t)sizeof(h) || h[16] != 2 || blen < BATCH_HEADER_SIZE - 12 ||
		    delta < 0) {
			rc = CHRONIK_ECORRUPT;
			break;
		}
		int64_t last = base + delta;
		if (last >= from)
			n += (uint64_t)(last - (base > from ? base : from) + 1);
		pos += (uint64_t)blen + 12;
	}
	segment_read_end(s);
	if (rc == 0)
		*out = n;
	return rc;
}

/* ---- verify and walk -------------------------------------------------------- */

struct vctx {
	segment_problem_fn problem;
	void *arg;
	const char *path;
	int problems;
};

static void vreport(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vreport(struct vctx *v, const char *fmt, ...)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "%s: ", v->path);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	v->problems++;
	if (v->problem)
		v->problem(v->arg, msg);
}

/* What verify's walk of the batches found, for verify_meta. */
struct vfacts {
	uint64_t file_size;
	uint64_t records;
	int64_t min_timestamp, max_timestamp;
	uint64_t raw_end;
	int64_t last_offset;
	uint32_t batches;
};

/* An index entry's raw position against the batches (rule 4): raw is the
 * raw end of the batches before it, next the offset after them. An entry
 * that continues them in offsets must start exactly at raw; one after a
 * hole of k offsets at least k bytes further (every record, dropped or
 * not, took value bytes + '\n' >= 1 raw byte when it was appended). */
static bool verify_entry_raw(struct vctx *v, size_t ei, const struct segment_index_entry *e,
			     int64_t next, uint64_t raw)
{
	if (e->offset == next ? e->raw_pos == raw :
				e->raw_pos >= raw + (uint64_t)(e->offset - next))
		return true;
	vreport(v,
		"index entry %zu: raw position %" PRIu64
		" but the batches before it end at %" PRIu64 " (offset %" PRId64
		", entry's offset %" PRId64 ")",
		ei, e->raw_pos, raw, next, e->offset);
	return false;
}

/* The registry's entry m against what the file holds: every field it
 * records, each reported by name. */
static void verify_meta(struct vctx *v, const struct segment_meta *m, const struct trailer *tr,
			const struct segment_index_entry *first, const struct vfacts *f)
{
	struct {
		const char *name;
		int64_t reg, file;
	} chk[] = {
		{ "base_offset", m->base_offset, first->offset },
		{ "last_offset", m->last_offset, f->last_offset },
		{ "min_timestamp", m->min_timestamp, f->min_timestamp },
		{ "max_timestamp", m->max_timestamp, f->max_timestamp },
		{ "raw_start", (int64_t)m->raw_start, (int64_t)first->raw_pos },
		{ "raw_end", (int64_t)m->raw_end, (int64_t)f->raw_end },
		{ "bytes", (int64_t)m->bytes, (int64_t)f->file_size },
		{ "data_end", (int64_t)m->data_end, (int64_t)tr->data_end },
		{ "records", (int64_t)m->records, (int64_t)f->records },
		{ "batches", (int64_t)m->batches, (int64_t)f->batches },
	};
	for (size_t i = 0; i < sizeof(chk) / sizeof(chk[0]); i++)
		if (chk[i].reg != chk[i].file)
			vreport(v, "registry says %s %" PRId64 ", the file %" PRId64, chk[i].name,
				chk[i].reg, chk[i].file);
}

/* Rule 4's key table part: the keys of one batch's keyed records, with
 * their offsets, appended to *recs (the table that should be is made of
 * them at the end: keys_compare). 0, -ENOMEM, or 1 after a problem
 * reported. */
struct keyrecs {
	struct segment_key *v;
	size_t n, cap;
};

static int keys_collect(struct vctx *v, const uint8_t *batch, size_t len, struct keyrecs *recs)
{
	struct batch_iter it;
	struct batch_record r;
	int rc = batch_iter_init(&it, batch, len);

	while (rc == 0 && (rc = batch_iter_next(&it, &r)) == 1) {
		rc = 0;
		if (r.key_len < 0)
			continue;
		if (recs->n == recs->cap) {
			size_t cap = recs->cap ? recs->cap * 2 : 1024;
			struct segment_key *nv = realloc(recs->v, cap * sizeof(*nv));
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			recs->v = nv;
			recs->cap = cap;
		}
		struct segment_key *k = &recs->v[recs->n++];
		segment_key_digest(r.key, (size_t)r.key_len, k->digest);
		k->offset = it.hdr.base_offset + r.offset_delta;
	}
	batch_iter_fini(&it);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		vreport(v, "key table: records do not decode (%s)", chronik_strerror(rc));
	return rc ? 1 : 0;
}

/* The table the records make (each key once, at its last offset, by
 * digest) against the file's. */
static void keys_compare(struct vctx *v, struct keyrecs *recs, const struct segment_key *keys,
			 size_t nkeys)
{
	size_t n = 0;

	if (recs->n > 1)
		qsort(recs->v, recs->n, sizeof(*recs->v), key_cmp);
	for (size_t i = 0; i < recs->n; i++) {
		/* sorted by digest, then offset: the last of a run is newest */
		if (i + 1 < recs->n && recs->v[i + 1].digest[0] == recs->v[i].digest[0] &&
		    recs->v[i + 1].digest[1] == recs->v[i].digest[1])
			continue;
		recs->v[n++] = recs->v[i];
	}
	for (size_t i = 0; i < n && i < nkeys; i++) {
		if (keys[i].digest[0] != recs->v[i].digest[0] ||
		    keys[i].digest[1] != recs->v[i].digest[1]) {
			vreport(v, "key table entry %zu: digest is not the records' key's there",
				i);
			return;
		}
		if (keys[i].offset != recs->v[i].offset) {
			vreport(v,
				"key table entry %zu: offset %" PRId64
				", the newest record of its key is at %" PRId64,
				i, keys[i].offset, recs->v[i].offset);
			return;
		}
	}
	if (n != nkeys)
		vreport(v, "key table: %zu entries, the records hold %zu keys", nkeys, n);
}

int segment_verify(const char *path, const struct segment_meta *m, segment_problem_fn problem,
		   void *arg)
{
	struct vctx v = { .problem = problem, .arg = arg, .path = path };
	struct segment_index_entry *idx = NULL;
	struct segment_key *keys = NULL;
	struct trailer tr;
	size_t n = 0, ei = 0, nkeys = 0;
	struct keyrecs recs = { 0 };
	bool check_keys = false;
	uint8_t *data = NULL;
	int fd = -1, rc;

	rc = file_open_checked(path, &fd, &tr, &idx, &n);
	if (rc == -ENOENT) {
		vreport(&v, "missing");
		return v.problems;
	}
	if (rc) {
		vreport(&v, "invalid header, trailer or index (%s)", chronik_strerror(rc));
		return v.problems;
	}
	if (tr.version >= 2) {
		rc = keys_read(fd, &tr, &keys, &nkeys);
		if (rc == -ENOMEM)
			goto out;
		if (rc)
			vreport(&v, "key table: CRC mismatch or entries out of order (%s)",
				chronik_strerror(rc));
		check_keys = rc == 0;
		rc = 0;
	}
	data = malloc(tr.data_end);
	if (!data) {
		rc = -ENOMEM;
		goto out;
	}
	if (pread_full(fd, data, tr.data_end, 0) != (ssize_t)tr.data_end) {
		vreport(&v, "short read");
		goto out;
	}
	uint64_t pos = SEGMENT_HEADER_SIZE, raw = idx[0].raw_pos, entry_pos = 0, records = 0;
	int64_t next = idx[0].offset, maxts = -1, min_base_ts = INT64_MAX;
	uint32_t batches = 0;
	while (pos < tr.data_end) {
		struct batch_header bh;
		size_t len;
		uint64_t rawlen;
		if (tr.data_end - pos < BATCH_HEADER_SIZE) {
			vreport(&v, "position %" PRIu64 ": truncated batch", pos);
			break;
		}
		len = (size_t)get_be32(data + pos + 8) + 12;
		if (len > tr.data_end - pos || batch_header_parse(data + pos, len, &bh) != 0 ||
		    batch_crc_check(data + pos, len) != 0) {
			vreport(&v, "position %" PRIu64 ": invalid batch (length or CRC)", pos);
			break;
		}
		rc = batch_raw_size(data + pos, len, &rawlen);
		if (rc) {
			vreport(&v, "position %" PRIu64 ": records do not decode (%s)", pos,
				chronik_strerror(rc));
			rc = 0;
			break;
		}
		if (check_keys) {
			rc = keys_collect(&v, data + pos, len, &recs);
			if (rc == -ENOMEM)
				goto out;
			check_keys = rc == 0;
			rc = 0;
		}
		if (ei < n && idx[ei].file_pos == pos) {
			if (idx[ei].offset != bh.base_offset || bh.base_offset < next) {
				vreport(&v, "index entry %zu disagrees with its batch", ei);
				break;
			}
			if (ei > 0 && idx[ei - 1].max_timestamp != maxts) {
				vreport(&v, "index entry %zu: wrong max timestamp", ei - 1);
				break;
			}
			uint64_t span_end = ei + 1 < n ? idx[ei + 1].file_pos : tr.data_end;
			if (span_end > tr.data_end ||
			    crc32c(0, data + pos, span_end - pos) != idx[ei].span_crc) {
				vreport(&v, "index entry %zu: span CRC mismatch", ei);
				break;
			}
			if (ei > 0 && !verify_entry_raw(&v, ei, &idx[ei], next, raw))
				break;
			raw = idx[ei].raw_pos;
			entry_pos = pos;
			ei++;
		} else if (bh.base_offset != next || pos - entry_pos >= SEGMENT_INDEX_INTERVAL) {
			vreport(&v, "position %" PRIu64 ": batch without its index entry", pos);
			break;
		}
		if (bh.max_timestamp > maxts)
			maxts = bh.max_timestamp;
		if (bh.base_timestamp < min_base_ts)
			min_base_ts = bh.base_timestamp;
		records += (uint64_t)(bh.record_count > 0 ? bh.record_count : 0);
		next = bh.base_offset + bh.last_offset_delta + 1;
		raw += rawlen;
		pos += len;
		batches++;
	}
	if (pos == tr.data_end) {
		if (ei != n)
			vreport(&v, "%zu index entries point past the batches", n - ei);
		else if (idx[n - 1].max_timestamp != maxts)
			vreport(&v, "last index entry: wrong max timestamp");
		if (batches != tr.batches || next - 1 != tr.last_offset || raw != tr.raw_end ||
		    min_base_ts != tr.min_timestamp || maxts != tr.max_timestamp)
			vreport(&v, "trailer disagrees with the batches");
		if (check_keys)
			keys_compare(&v, &recs, keys, nkeys);
		struct vfacts f = {
			.file_size = tr.key_pos + (uint64_t)tr.keys * SEGMENT_KEY_ENTRY_SIZE +
				     trailer_size(tr.version),
			.records = records,
			.min_timestamp = min_base_ts,
			.max_timestamp = maxts,
			.raw_end = raw,
			.last_offset = next - 1,
			.batches = batches,
		};
		if (m)
			verify_meta(&v, m, &tr, &idx[0], &f);
	}
out:
	free(recs.v);
	free(keys);
	free(data);
	free(idx);
	close(fd);
	return rc < 0 ? rc : v.problems;
}

int segment_file_keys(const char *path, uint32_t *version, struct segment_key **keys, size_t *n)
{
	struct segment_index_entry *idx = NULL;
	struct trailer tr;
	size_t ni;
	int fd = -1, rc;

	rc = file_open_checked(path, &fd, &tr, &idx, &ni);
	if (rc)
		return rc;
	free(idx);
	*version = tr.version;
	*keys = NULL;
	*n = 0;
	if (tr.version >= 2)
		rc = keys_read(fd, &tr, keys, n);
	close(fd);
	return rc;
}

int segment_file_walk(const char *path, segment_batch_fn cb, void *arg)
{
	struct segment_index_entry *idx = NULL;
	struct trailer tr;
	size_t n;
	uint8_t *data;
	int fd = -1, rc;

	rc = file_open_checked(path, &fd, &tr, &idx, &n);
	if (rc)
		return rc;
	free(idx);
	data = malloc(tr.data_end);
	if (!data) {
		close(fd);
		return -ENOMEM;
	}
	rc = CHRONIK_ECORRUPT;
	if (pread_full(fd, data, tr.data_end, 0) == (ssize_t)tr.data_end) {
		uint64_t pos = SEGMENT_HEADER_SIZE;
		rc = 0;
		while (pos + BATCH_HEADER_SIZE <= tr.data_end) {
			size_t len = (size_t)get_be32(data + pos + 8) + 12;
			if (len > tr.data_end - pos) {
				rc = CHRONIK_ECORRUPT;
				break;
			}
			if (cb(arg, pos, data + pos, len))
				break;
			pos += len;
		}
		if (rc == 0 && pos < tr.data_end && pos + BATCH_HEADER_SIZE > tr.data_end)
			rc = CHRONIK_ECORRUPT;
	}
	free(data);
	close(fd);
	return rc;
}
