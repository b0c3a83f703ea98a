/* ops_file.c - open files: data, records.jsonl, info.json, config.json.
 *
 * Every file is opened with direct_io: reads always reach this process (so
 * they see the true end, and 1 MiB requests), and the kernel keeps no pages
 * that could go stale. Files stay seekable (dd skip=, tail -n).
 *
 * Appends (data and records.jsonl), per open file handle:
 *   - The complete lines of one write request are one engine append, one
 *     batch: readers see all of them or none, and two writers never
 *     interleave inside a line.
 *   - Requests are at most 1 MiB (conn->max_write, FS_IO_SIZE) and 256
 *     pages: the kernel cuts a larger write(2) into pieces and sends them
 *     one after the other. From a page-aligned buffer the pieces are 1 MiB
 *     each; otherwise the first ends where the buffer's 256th page does, so
 *     a write(2) of up to 1 MiB - 4 KiB is always one request. Each request
 *     is judged on its own, so for a write(2) of several pieces: each piece
 *     is its own batch (readers may see the first before the last), and an
 *     invalid line fails only its piece: the pieces before it are appended
 *     and write(2) returns their byte count (a short write); when the first
 *     piece fails, write(2) fails with EINVAL. A line cut by a piece
 *     boundary is carried over (below), so no line is ever torn; after a
 *     short write it waits in the handle like any partial line (a writer
 *     that writes the rest again completes it). "One write(2) = one atomic
 *     batch, all or nothing" holds for a write(2) that is one request.
 *   - The kernel serialises direct-I/O writes to one inode (O_APPEND or
 *     not: it holds the inode lock for the whole write), so two writers on
 *     one partition file reach us one request at a time and never share a
 *     group commit; writers on different partitions (or a data and a
 *     records.jsonl of one partition) do. Measured with --fsync every:
 *     1 writer 4,418 lines/s, 2 writers on one data file 4,459, 2 writers
 *     on two partitions 7,098.
 *   - A trailing partial line waits in the handle for its newline, or for
 *     close() (flush), where it is appended as if newline-terminated. It
 *     may grow to 64 MiB (FS_PENDING_MAX); the write that would make it
 *     longer fails with EFBIG. The limit is on the partial line only: a
 *     write whose first newline completes it within 64 MiB is appended
 *     whole (with the lines after that newline, in the same batch), so the
 *     buffer then holds at most 64 MiB plus one request (1 MiB).
 *   - O_APPEND: the kernel's offset may be stale; the write lands at the
 *     partition's true end whatever it says.
 *   - Without O_APPEND a write must land at the current end (counting the
 *     handle's partial line) or right after the handle's previous write;
 *     anything else is EINVAL: a log cannot be overwritten.
 *   - open with O_TRUNC is EPERM unless the file is empty (then it is a
 *     no-op); truncate(2) to another size is EPERM.
 *   - A failed append (invalid JSON line: EINVAL; too long a line: EFBIG)
 *     appends nothing from that write. Which partial line the handle keeps:
 *     if the failing line is the one that began in earlier writes (carried
 *     over), that partial line is dropped with the write, so the descriptor
 *     recovers: the next write starts a new line, and a non-O_APPEND writer
 *     may go on at the offset after the failed write. Otherwise (the bad
 *     line lies wholly in this write, or the engine failed) the partial
 *     line is kept as it was before the write.
 *   - A partial line that cannot be appended at close (invalid JSON) fails
 *     that close() with the error and is dropped; when that happens at the
 *     last close (release), where nobody can be told, it is logged, at most
 *     once every 10 seconds.
 *
 * config.json: each open file has its own copy of the config text; writes
 * change the copy, flush/close applies it if it was written. What is
 * written replaces the whole config: a key left out is removed, not kept. A write that makes the text something that can no longer
 * become a JSON object fails with EINVAL, and so does the close of a file
 * holding an invalid text, or a config the engine refuses (a key it does
 * not know, a value out of range: engine_topic_config_check); the old
 * config stays.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs-private.h"
#include "jsonl.h"
#include "log.h"

/* Longest partial line a handle keeps (a record that big is a mistake). */
#define FS_PENDING_MAX (64u << 20)

static struct chronikfs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs_handle *fi_handle(struct fuse_file_info *fi)
{
	return (struct fs_handle *)(uintptr_t)fi->fh;
}

/* ---- per-thread read buffer -------------------------------------------------- */

struct rbuf {
	char *p;
	size_t cap;
};

static pthread_key_t rbuf_key;
static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;

static void rbuf_free(void *arg)
{
	struct rbuf *b = arg;
	free(b->p);
	free(b);
}

static void rbuf_key_make(void)
{
	pthread_key_create(&rbuf_key, rbuf_free);
}

/* A buffer of at least size bytes owned by the calling thread. */
static char *read_buffer(size_t size)
{
	struct rbuf *b;

	pthread_once(&rbuf_once, rbuf_key_make);
	b = pthread_getspecific(rbuf_key);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return NULL;
		pthread_setspecific(rbuf_key, b);
	}
	if (b->cap < size) {
		size_t ncap = size < FS_IO_SIZE ? FS_IO_SIZE : size;
		char *np = realloc(b->p, ncap);
		if (!np)
			return NULL;
		b->p = np;
		b->cap = ncap;
	}
	return b->p;
}

/* ---- handles ------------------------------------------------------------------- */

static int grow(char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 4096;
	while (ncap < need)
		ncap *= 2;
	char *np = realloc(*p, ncap);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

void fs_handle_free(struct fs_handle *h)
{
	jsonl_view_handle_fini(h);
	engine_raw_reader_free(h->data_rd);
	fs_lines_fini(&h->lines);
	free(h->text);
	fs_topic_unref(h->topic);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* ---- appends --------------------------------------------------------------------- */

/* Append buf[0, len), complete lines, to the handle's partition in the
 * handle's format. On -EINVAL *bad says which line (1-based) is invalid. */
static int append_lines(struct fs_handle *h, const char *buf, size_t len, size_t *bad)
{
	struct jsonl_batch *b;
	const struct record_in *recs;
	size_t n;
	int64_t base;
	int err;

	*bad = 0;
	if (h->kind == FS_DATA)
		return engine_append_lines(h->part->p, buf, len, &base);

	err = jsonl_batch_new(&b);
	if (err < 0)
		return err;
	err = jsonl_batch_parse(b, buf, len, bad);
	if (err < 0) {
		log_msg(LOG_LVL_DEBUG, "fs", "%s/%d/records.jsonl: line %zu of a write is invalid",
			h->topic->name, h->part->index, *bad);
		goto out;
	}
	recs = jsonl_batch_records(b, &n);
	if (n > 0)
		err = engine_append_records(h->part->p, recs, n, &base);
out:
	jsonl_batch_free(b);
	return err;
}

/* fs_lines_emit_fn for a handle: the complete lines go to its partition. */
static int emit_lines(void *arg, const char *buf, size_t len, size_t *bad)
{
	return append_lines(arg, buf, len, bad);
}

/* The write of buf[0, size) to an append view; h->lock held. *dropped is
 * set when the write failed on the line carried over from earlier writes
 * and that partial line was dropped (see the top of this file and lines.h). */
static int view_write(struct fs_handle *h, const char *buf, size_t size, bool *dropped)
{
	return fs_lines_write(&h->lines, buf, size, emit_lines, h, dropped);
}

int fs_handle_flush_pending(struct chronikfs *fs, struct fs_handle *h)
{
	(void)fs;
	if (h->kind != FS_DATA && h->kind != FS_JSONL)
		return 0;
	return fs_lines_flush(&h->lines, emit_lines, h);
}

/* ---- config.json ------------------------------------------------------------------- */

/* 1 = a complete JSON object (and only whitespace after it), 0 = could
 * still become one, -EINVAL = cannot. */
static int config_text_check(const char *s, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;
	int rc;

	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (!o) {
		rc = json_tokener_get_error(tok) == json_tokener_continue ? 0 : -EINVAL;
	} else {
		size_t end = json_tokener_get_parse_end(tok);
		rc = json_object_is_type(o, json_type_object) ? 1 : -EINVAL;
		for (; rc == 1 && end < len; end++)
			if (s[end] != ' ' && s[end] != '\n' && s[end] != '\t' && s[end] != '\r')
				rc = -EINVAL;
		json_object_put(o);
	}
	json_tokener_free(tok);
	return rc;
}

static int config_apply(struct chronikfs *fs, struct fs_handle *h)
{
	struct timespec now;
	int err;

	if (!h->dirty)
		return 0;
	if (h->invalid || config_text_check(h->text, h->text_len) != 1)
		return -EINVAL;
	err = grow(&h->text, &h->text_cap, h->text_len + 1);
	if (err < 0)
		return err;
	h->text[h->text_len] = '\0';
	err = engine_topic_config_set(fs->e, h->topic->name, h->text);
	if (err < 0)
		return err;
	h->dirty = false;
	clock_gettime(CLOCK_REALTIME, &now);
	atomic_store(&h->topic->config_mtime_ns, (long long)now.tv_sec * 1000000000 + now.tv_nsec);
	log_msg(LOG_LVL_INFO, "fs", "topic %s: config changed", h->topic->name);
	return 0;
}

static int config_write(struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	size_t end = (size_t)off + size;
	int err = grow(&h->text, &h->text_cap, end + 1);

	if (err < 0)
		return err;
	if ((size_t)off > h->text_len)
		memset(h->text + h->text_len, ' ', (size_t)off - h->text_len);
	memcpy(h->text + off, buf, size);
	if (end > h->text_len)
		h->text_len = end;
	h->dirty = true;
	err = config_text_check(h->text, h->text_len);
	h->invalid = err < 0;
	return err < 0 ? err : 0;
}

/* ---- requests ------------------------------------------------------------------------ */

void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct chronikfs *fs = req_fs(req);
	struct fs_handle *h = NULL;
	struct fs_topic *t = NULL;
	struct fs_ino in;
	bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
	uint64_t size;
	int err;

	if (fs_ino_decode(ino, &in) < 0 || in.kind == FS_ROOT) {
		err = -ENOENT;
		goto fail;
	}
	if (in.kind == FS_GROUPSDIR) {
		err = -EISDIR;
		goto fail;
	}
	if (in.kind != FS_GROUP && (!(t = fs_topic_get(fs, in.tid)) || in.part >= t->nparts)) {
		err = -ENOENT;
		goto fail;
	}
	if (in.kind == FS_TOPIC || in.kind == FS_PART || in.kind == FS_SEARCHDIR) {
		err = -EISDIR;
		goto fail;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		err = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&h->lock, NULL);
	fs_lines_init(&h->lines, FS_PENDING_MAX);
	h->kind = in.kind;
	h->topic = t;
	t = NULL;
	h->part = in.part >= 0 && h->topic ? &h->topic->parts[in.part] : NULL;
	h->flags = fi->flags;

	switch (in.kind) {
	case FS_DATA:
	case FS_JSONL:
		if (fi->flags & O_TRUNC) {
			if (in.kind == FS_DATA) {
				struct partition_info info;
				engine_partition_info(h->part->p, &info);
				size = info.raw_size;
			} else if ((err = jsonl_view_size(h->part, &size)) < 0) {
				goto fail;
			}
			if (size != 0) {
				err = -EPERM;
				goto fail;
			}
		}
		break;
	case FS_INFO:
		if (writing) {
			err = -EACCES;
			goto fail;
		}
		err = fs_info_render(h->part, &h->text, &h->text_len);
		if (err < 0)
			goto fail;
		h->text_cap = h->text_len;
		break;
	case FS_GROUP:
		if (writing) {
			err = -EACCES;
			goto fail;
		}
		err = fs_group_render(fs, in.slot, &h->text, &h->text_len);
		if (err < 0)
			goto fail;
		h->text_cap = h->text_len;
		break;
	case FS_QUERY:
		if (writing) {
			err = -EACCES;
			goto fail;
		}
		err = fs_query_render(fs, h->topic, in.slot, &h->text, &h->text_len);
		if (err < 0)
			goto fail;
		h->text_cap = h->text_len;
		break;
	case FS_CONFIG:
		if (fi->flags & O_TRUNC) {
			h->dirty = true; /* an empty config.json is invalid until written */
			break;
		}
		err = fs_config_render(fs, h->topic, &h->text, &h->text_len);
		if (err < 0)
			goto fail;
		h->text_cap = h->text_len;
		break;
	default:
		err = -ENOENT;
		goto fail;
	}

	pthread_mutex_lock(&fs->handles_lock);
	h->next = fs->handles.next;
	h->prev = &fs->handles;
	fs->handles.next->prev = h;
	fs->handles.next = h;
	pthread_mutex_unlock(&fs->handles_lock);

	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->nonseekable = 0;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* the opener was interrupted: no release will come */
		pthread_mutex_lock(&fs->handles_lock);
		h->prev->next = h->next;
		h->next->prev = h->prev;
		pthread_mutex_unlock(&fs->handles_lock);
		fs_handle_free(h);
	}
	return;
fail:
	if (h)
		fs_handle_free(h);
	fs_topic_unref(t);
	fuse_reply_err(req, fs_errno(err));
}

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs_handle *h = fi_handle(fi);
	char *buf;
	ssize_t n;

	(void)ino;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	switch (h->kind) {
	case FS_DATA:
		buf = read_buffer(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		pthread_mutex_lock(&h->lock);
		{
			/* A read where the last one ended continues its stream;
			 * any other is at a stable position. */
			uint64_t want = (uint64_t)off, from;
			if (h->data_cont && want == h->data_kend)
				want += h->data_skip;
			n = h->data_rd ? 0 : engine_raw_reader_new(h->part->p, &h->data_rd);
			if (n == 0)
				n = engine_raw_reader_read(h->data_rd, want, buf, size, &from);
			if (n >= 0) {
				h->data_cont = true;
				h->data_kend = (uint64_t)off + (uint64_t)n;
				h->data_skip = from - (uint64_t)off;
			}
		}
		pthread_mutex_unlock(&h->lock);
		if (n < 0)
			fuse_reply_err(req, fs_errno((int)n));
		else
			fuse_reply_buf(req, buf, (size_t)n);
		return;
	case FS_JSONL:
		buf = read_buffer(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		pthread_mutex_lock(&h->lock);
		n = jsonl_view_read(h->part, h, (uint64_t)off, buf, size);
		pthread_mutex_unlock(&h->lock);
		if (n < 0)
			fuse_reply_err(req, fs_errno((int)n));
		else
			fuse_reply_buf(req, buf, (size_t)n);
		return;
	default:
		pthread_mutex_lock(&h->lock);
		if ((uint64_t)off >= h->text_len)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_buf(req, h->text + off,
				       h->text_len - (size_t)off < size ?
					       h->text_len - (size_t)off :
					       size);
		pthread_mutex_unlock(&h->lock);
		return;
	}
}

/* Where a write without O_APPEND may land: the end of the view plus the
 * handle's partial line. */
static int view_end(struct fs_handle *h, uint64_t *end)
{
	if (h->kind == FS_DATA) {
		struct partition_info info;
		engine_partition_info(h->part->p, &info);
		*end = info.raw_size;
	} else {
		int err = jsonl_view_size(h->part, end);
		if (err < 0)
			return err;
	}
	*end += h->lines.len;
	return 0;
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	struct chronikfs *fs = req_fs(req);
	struct fs_handle *h = fi_handle(fi);
	uint64_t end;
	bool dropped = false;
	int err = 0;

	(void)ino;
	(void)fs;
	pthread_mutex_lock(&h->lock);
	switch (h->kind) {
	case FS_DATA:
	case FS_JSONL:
		if (!(h->flags & O_APPEND) && !(h->wrote && (uint64_t)off == h->next_off)) {
			err = view_end(h, &end);
			if (err == 0 && (uint64_t)off != end)
				err = -EINVAL;
		}
		if (err == 0)
			err = view_write(h, buf, size, &dropped);
		if (err == 0 || dropped) {
			/* a dropped partial line leaves the writer after this write */
			h->wrote = true;
			h->next_off = (uint64_t)off + size;
		}
		break;
	case FS_CONFIG:
		err = off < 0 || size > FS_PENDING_MAX || (uint64_t)off > FS_PENDING_MAX ?
			      -EFBIG :
			      config_write(h, buf, size, off);
		break;
	default:
		err = -EBADF;
		break;
	}
	pthread_mutex_unlock(&h->lock);
	if (err < 0)
		fuse_reply_err(req, fs_errno(err));
	else
		fuse_reply_write(req, size);
}

static int handle_close_work(struct chronikfs *fs, struct fs_handle *h)
{
	int err;

	pthread_mutex_lock(&h->lock);
	if (h->kind == FS_CONFIG)
		err = config_apply(fs, h);
	else
		err = fs_handle_flush_pending(fs, h);
	pthread_mutex_unlock(&h->lock);
	return err;
}

void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int err = handle_close_work(req_fs(req), fi_handle(fi));

	(void)ino;
	fuse_reply_err(req, fs_errno(err));
}

/* Whether a failure at release may be logged now: once every 10 s at most,
 * with the number of failures not logged in *suppressed. */
static bool release_log_allowed(unsigned long *suppressed)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct timespec last;
	static unsigned long skipped;
	struct timespec now;
	bool allow;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&lock);
	allow = (last.tv_sec == 0 && last.tv_nsec == 0) || now.tv_sec - last.tv_sec >= 10;
	if (allow) {
		last = now;
		*suppressed = skipped;
		skipped = 0;
	} else {
		skipped++;
	}
	pthread_mutex_unlock(&lock);
	return allow;
}

void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct chronikfs *fs = req_fs(req);
	struct fs_handle *h = fi_handle(fi);
	int err = handle_close_work(fs, h);
	unsigned long suppressed;

	(void)ino;
	if (err < 0 && !(h->kind == FS_CONFIG && err == -EINVAL) &&
	    release_log_allowed(&suppressed)) {
		char more[64] = "";
		if (suppressed)
			snprintf(more, sizeof(more), " (and %lu more not logged)", suppressed);
		log_msg(LOG_LVL_WARN, "fs", "%s: closing a file of topic %s: %s%s",
			h->kind == FS_CONFIG ? "config.json" : "append", h->topic->name,
			chronik_strerror(err), more);
	}
	pthread_mutex_lock(&fs->handles_lock);
	h->prev->next = h->next;
	h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->handles_lock);
	fs_handle_free(h);
	fuse_reply_err(req, 0);
}

void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct chronikfs *fs = req_fs(req);

	(void)ino, (void)datasync, (void)fi;
	fuse_reply_err(req, fs_errno(engine_sync(fs->e)));
}
