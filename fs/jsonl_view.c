/* jsonl_view.c - byte positions in records.jsonl.
 *
 * records.jsonl is rendered on the fly (jsonl_render, format in wal/jsonl.h),
 * yet it must have a true st_size (tail -f reads st_size - position bytes)
 * and serve reads at any byte position (tail -n, dd skip=). Per partition
 * this file keeps:
 *
 *   - size: the rendered length of every record below `counted`. A counting
 *     cursor renders each record once, the first time the view is stat'ed,
 *     opened or read after the record was appended; nothing is spent while
 *     nobody uses records.jsonl.
 *   - marks: (view position, offset) of the first record, then of the first
 *     record starting at least 64 KiB after the previous mark. A read at
 *     position X opens a cursor at the last mark <= X and renders forward
 *     (at most ~64 KiB of skipped output); a sequential reader keeps its
 *     cursor in its handle and skips nothing.
 *
 * Positions stay valid because rendering is deterministic and records are
 * never rewritten. Limits: the view starts at the log start seen at first
 * use; records removed later by retention or compaction are not accounted
 * for (the view is not yet reset when the log start moves).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs-private.h"
#include "jsonl.h"

#define JSONL_MARK_EVERY (64u * 1024)

void jsonl_view_init(struct jsonl_view *v)
{
	memset(v, 0, sizeof(*v));
	pthread_mutex_init(&v->lock, NULL);
}

void jsonl_view_fini(struct jsonl_view *v)
{
	if (v->cur)
		engine_cursor_close(v->cur);
	free(v->marks);
	free(v->scratch);
	pthread_mutex_destroy(&v->lock);
}

static int view_add_mark(struct jsonl_view *v, uint64_t pos, int64_t offset)
{
	if (v->nmarks == v->cap) {
		size_t ncap = v->cap ? v->cap * 2 : 64;
		struct jsonl_mark *nm = realloc(v->marks, ncap * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		v->marks = nm;
		v->cap = ncap;
	}
	v->marks[v->nmarks].pos = pos;
	v->marks[v->nmarks].offset = offset;
	v->nmarks++;
	return 0;
}

/* Bring the count up to the partition's next offset. v->lock held. */
static int view_count(struct fs_part *fp)
{
	struct jsonl_view *v = &fp->jv;
	struct partition_info info;
	struct engine_record r;
	int err;

	/* A failed engine_cursor_next leaves the cursor where it was, so the
	 * next call retries; a failure after a record was taken from it (its
	 * rendering, its mark) drops the cursor, and the next call opens one
	 * again at the first record not yet counted. */
	if (!v->cur) {
		err = engine_cursor_open(fp->p, v->counted, &v->cur);
		if (err < 0)
			return err;
	}
	engine_partition_info(fp->p, &info);
	while (v->counted < info.next_offset) {
		struct jsonl_buf b = { v->scratch, 0, v->scratch_cap };
		err = engine_cursor_next(v->cur, &r);
		if (err <= 0)
			return err;
		err = jsonl_render(&b, &r);
		v->scratch = b.p;
		v->scratch_cap = b.cap;
		if (err == 0 &&
		    (v->nmarks == 0 || v->size - v->marks[v->nmarks - 1].pos >= JSONL_MARK_EVERY))
			err = view_add_mark(v, v->size, r.offset);
		if (err < 0) {
			engine_cursor_close(v->cur);
			v->cur = NULL;
			return err;
		}
		v->size += b.len;
		v->counted = r.offset + 1;
	}
	return 0;
}

int jsonl_view_size(struct fs_part *fp, uint64_t *size)
{
	struct jsonl_view *v = &fp->jv;
	int err;

	pthread_mutex_lock(&v->lock);
	err = view_count(fp);
	*size = v->size;
	pthread_mutex_unlock(&v->lock);
	return err;
}

void jsonl_view_handle_fini(struct fs_handle *h)
{
	if (h->rcur)
		engine_cursor_close(h->rcur);
	h->rcur = NULL;
	free(h->carry);
	h->carry = NULL;
	h->carry_off = h->carry_len = h->carry_cap = 0;
}

ssize_t jsonl_view_read(struct fs_part *fp, struct fs_handle *h, uint64_t pos, char *buf,
			size_t len)
{
	struct jsonl_view *v = &fp->jv;
	struct jsonl_mark mark = { 0, 0 };
	uint64_t total;
	size_t got = 0;
	int err;

	pthread_mutex_lock(&v->lock);
	err = view_count(fp);
	total = v->size;
	if (err == 0 && pos < total) {
		size_t lo = 0, hi = v->nmarks; /* last mark with mark.pos <= pos */
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;
			if (v->marks[mid].pos <= pos)
				lo = mid;
			else
				hi = mid;
		}
		mark = v->marks[lo];
	}
	pthread_mutex_unlock(&v->lock);
	if (err < 0)
		return err;
	if (pos >= total)
		return 0;
	if (len > total - pos)
		len = (size_t)(total - pos);

	/* Keep the handle's cursor when it is at or before pos and not before
	 * the mark (a sequential reader); otherwise restart at the mark. */
	if (!h->rcur || h->rpos > pos || h->rpos < mark.pos) {
		if (h->rcur)
			engine_cursor_close(h->rcur);
		h->rcur = NULL;
		h->carry_off = h->carry_len = 0;
		err = engine_cursor_open(fp->p, mark.offset, &h->rcur);
		if (err < 0)
			return err;
		h->rpos = mark.pos;
	}
	while (got < len) {
		if (h->carry_off == h->carry_len) {
			struct engine_record r;
			struct jsonl_buf b = { h->carry, 0, h->carry_cap };
			err = engine_cursor_next(h->rcur, &r);
			if (err <= 0)
				break;
			err = jsonl_render(&b, &r);
			h->carry = b.p;
			h->carry_cap = b.cap;
			if (err < 0)
				break;
			h->carry_off = 0;
			h->carry_len = b.len;
		}
		size_t avail = h->carry_len - h->carry_off;
		if (h->rpos < pos) {
			size_t skip = pos - h->rpos < avail ? (size_t)(pos - h->rpos) : avail;
			h->carry_off += skip;
			h->rpos += skip;
			continue;
		}
		size_t n = len - got < avail ? len - got : avail;
		memcpy(buf + got, h->carry + h->carry_off, n);
		h->carry_off += n;
		h->rpos += n;
		got += n;
	}
	if (err < 0) {
		/* the handle's position is unknown now: seek again next time */
		engine_cursor_close(h->rcur);
		h->rcur = NULL;
		h->carry_off = h->carry_len = 0;
		if (got == 0)
			return err;
	}
	return (ssize_t)got;
}
