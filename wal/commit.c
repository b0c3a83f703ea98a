/* commit.c - group commit: one write and one fsync for every appender that
 * joined the group.
 *
 * Appenders (any thread) prepare their batch outside every lock (header
 * parsed, CRC checked, raw size computed), then queue an append_req.
 *
 * LEADERS. One thread at a time holds the writer's token (e->writing,
 * under commit_lock) and only it writes the active file. An appender that
 * queues its request and finds the token free takes it and leads: it
 * writes the group itself, with no hand-off to another thread and no
 * sleep, which is what one appender alone pays for (two context switches
 * per append, otherwise). Appenders that arrive while a group is being
 * written queue behind it and sleep on commit_done; when the token is
 * given back (token_release) with requests queued, the commit thread takes
 * the token and writes them as the next group, so under load the groups
 * are as large as before. A leader leads until its own request is done
 * (several groups only when the queue held more than a file's worth) and,
 * under fsync interval or never, also writes the group that queued behind
 * it (waking the commit thread for it costs more than that write; under
 * every the leader's return would wait for a second fsync).
 * The commit thread also takes the token to seal the active file by age
 * and for the interval sync; token_release wakes it when such a duty came
 * due earlier than it sleeps until.
 *
 * The token holder takes the queue as one group (as much of it as fits in
 * wal.segment.bytes, at least one request: the rest is the next group)
 * and, for each request in queue order:
 *   - assigns offsets from the partition's c_next_offset and raw positions
 *     from its c_raw_size (so offsets follow WAL order, and a group that
 *     fails consumes none: the counters are reset to the published values);
 *   - patches the batch's baseOffset in place and encodes the 64-byte V2
 *     frame header;
 * then writes the group with pwritev at the end of the active WAL file
 * (rotating first if the group would take the file past wal.segment.bytes;
 * the group's last frame carries FRAME_FLAG_GROUP_END; when every byte
 * before the group is durable, a sync point goes in front of it, frame.h),
 * and fsyncs
 * under FSYNC_EVERY (or when the interval elapsed under FSYNC_INTERVAL).
 * Only then are the hot-index entries published, waiting readers woken,
 * appenders released, and the append listener called (by the token
 * holder, before it gives the token back). When idle, the commit thread
 * also seals the active file once it is non-empty and wal.seal.ms
 * old (or when engine_index_now asks); every rotation kicks the indexer
 * (indexer.c).
 *
 * Room in the hot index is reserved before the write, so a group that is
 * on disk is always published.
 *
 * BACK-PRESSURE. The WAL not yet indexed is the sealed files waiting for
 * the indexer (wal_sealed_bytes: each file's size, added when it is
 * sealed, taken off when the indexer removes it) plus the active file
 * (active_size). Before it takes a group, the commit thread checks that
 * sum plus the group (its frames, a sync point, a new file's header)
 * against wal.unindexed.max.bytes (default 2 x wal.segment.bytes): past
 * it, it leaves the queue as it is and waits on commit_wake, which the
 * indexer signals after every WAL file it removes. So the sum never
 * exceeds the bound, except by a group larger than the bound by itself,
 * which goes once nothing is left to index. When the group does not fit
 * and no sealed file is left (a bound below wal.segment.bytes), the
 * active file is sealed so that the indexer has something to free.
 * Meanwhile the appenders sleep on commit_done as they always do, holding
 * no engine lock: reads, the indexer, retention, metadata changes and
 * engine_sync go on; engine_index_now's seal and wal.seal.ms seals are
 * still served; a FUSE write() blocks and a Kafka produce takes longer,
 * neither fails. engine_stats: appends_waiting, backpressure_waits,
 * wal_unindexed_bytes / _max.
 * Appends are not held back when nothing would free the WAL: an engine
 * with no indexer thread (no_index, read_only), an indexer that stopped
 * (engine_close, which drains the queue last), or one whose last WAL file
 * failed to index (in backoff, or halted until the next open; indexer.c):
 * then the WAL grows as it would without the bound, as disk allows (a full
 * disk fails appends with ENOSPC, rule 1 below), and the failure is
 * logged by the indexer. Holding appends back forever behind a damaged
 * file or a failing segment disk would turn an indexing problem into a
 * log that stops accepting writes. Once a file indexes again the bound
 * applies again.
 *
 * FAILED WRITES AND SYNCS. A failed fsync cannot be retried and trusted:
 * the kernel may have dropped the dirty pages it could not write and
 * report the next fsync clean. So the rule is: no success is ever reported
 * for data a failed sync may have covered. "The sync point" below is the
 * end of the data the last successful fdatasync of the active file made
 * durable.
 *   1. A failed write (pwritev: EIO, ENOSPC, EFBIG...) fails every request
 *      of its group; the file is cut back (ftruncate) to where the group
 *      began. Data before it is untouched, so the engine carries on. So
 *      does a failed creation of the next file at rotation (its header
 *      write or the directory fsync): wal_file_create unlinks it.
 *   2. A failed fdatasync of a group's own data fails every request of the
 *      group. When the group was the only data past the sync point (always
 *      so under fsync `every`), the file is cut back to the sync point and
 *      the cut made durable (ftruncate + fdatasync: the pages before the
 *      cut were durable already, so that fdatasync has only the new size to
 *      persist); once it succeeded, later groups are acknowledged as usual.
 *   3. Otherwise - the fsync failed while data already reported written
 *      was past the sync point (fsync interval/never: the interval sync, a
 *      group's sync, engine_sync), the seal of a full file before rotation
 *      failed (in any mode: ftruncate to the published end + fdatasync),
 *      or a cut of rule 1 or 2 failed - the engine enters the sticky FAILED
 *      state, logged once: every later append and every engine_sync return the
 *      error (-EIO in the usual case) until the engine is closed and opened
 *      again, whose recovery re-verifies every frame. Under `every`,
 *      engine_sync issues no fdatasync of its own (every acknowledged group
 *      is durable already) and reports only the FAILED state.
 *   4. Entering FAILED also writes down, durably, the last good sync point
 *      (the active file's seq and the end of what its last successful
 *      fdatasync covered) in the marker DATA/wal/failed.syncpoint
 *      (syncmark.c). The next writable open cuts the WAL there before
 *      recovery reads it, logs the cut, and removes the marker: reopened
 *      in the same boot, recovery would otherwise read the page cache,
 *      whose pages the kernel may have failed to write and marked clean,
 *      and its own fdatasync would succeed. Under `every` what is cut was
 *      never acknowledged; under interval/never it is lost as after a
 *      power cut (every fsync() that returned 0 is before the point). When
 *      the marker itself cannot be written (logged), the reopen is as
 *      before: the page cache is trusted.
 * Every fdatasync of the active file, and the check and change of the
 * FAILED state that goes with it, happens under sync_lock, so a sync from
 * engine_sync cannot take the error of a sync by the token holder and
 * leave that one reporting success.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "engine-private.h"
#include "log.h"

struct append_req {
	struct partition *p;
	uint8_t *batch;
	size_t len;
	int32_t last_delta;
	uint32_t count;
	int64_t max_timestamp;
	uint64_t raw_len;
	/* filled by the commit thread */
	int64_t base_offset;
	uint64_t raw_pos;
	uint8_t hdr[FRAME_V2_HEADER_SIZE];
	int status;
	bool done;
	struct append_req *next;
};

/* Requests per writev: each needs two iovecs. */
#define GROUP_IOV_MAX 1024

static int write_all(int fd, struct iovec *iov, int iovcnt, off_t off)
{
	while (iovcnt > 0) {
		ssize_t n = pwritev(fd, iov, iovcnt > GROUP_IOV_MAX ? GROUP_IOV_MAX : iovcnt, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += n;
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0 && n > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Make room in each partition's hot index for this group's entries before
 * anything is written, so publishing after the fsync cannot fail. */
static int reserve_index(struct append_req *head)
{
	for (struct append_req *r = head; r; r = r->next)
		if (r->status == 0)
			r->p->c_group_entries++;
	for (struct append_req *r = head; r; r = r->next) {
		struct partition *p = r->p;
		size_t need;
		int rc;
		if (r->status || p->c_group_entries == 0)
			continue;
		pthread_mutex_lock(&p->lock);
		need = p->n + p->c_group_entries;
		rc = partition_index_reserve(p, need);
		if (rc == 0)
			p->reserved = p->c_group_entries;
		pthread_mutex_unlock(&p->lock);
		p->c_group_entries = 0;
		if (rc) {
			for (struct append_req *q = head; q; q = q->next)
				q->p->c_group_entries = 0;
			return rc;
		}
	}
	return 0;
}

void engine_fail(struct engine *e, int rc, const char *why)
{
	int expected = 0, mrc;
	uint64_t seq, pos;

	if (rc >= 0)
		rc = -EIO;
	if (!atomic_compare_exchange_strong(&e->failed_rc, &expected, rc))
		return;
	log_msg(LOG_LVL_ERROR, "wal",
		"%s (%s): data reported written may not be durable; every append and "
		"sync now fails until the data directory is opened again",
		why, chronik_strerror(rc));
	/* Rule 4. durable_pos is 0 until recovery set it (a failure during
	 * the open, which fails anyway). */
	pthread_mutex_lock(&e->durable_lock);
	seq = e->durable_seq;
	pos = e->durable_pos;
	mrc = pos ? wal_syncmark_write(e, seq, pos) : 0;
	pthread_mutex_unlock(&e->durable_lock);
	if (!pos)
		return;
	if (mrc)
		log_msg(LOG_LVL_ERROR, "wal",
			"cannot write the failed-sync marker (%s): the next open trusts the "
			"WAL as the page cache has it",
			chronik_strerror(mrc));
	else
		log_msg(LOG_LVL_ERROR, "wal",
			"last good sync point recorded: WAL file %llu at %llu; the next open cuts "
			"the WAL there",
			(unsigned long long)seq, (unsigned long long)pos);
}

void engine_synced(struct engine *e)
{
	pthread_mutex_lock(&e->durable_lock);
	if (atomic_load(&e->failed_rc) == 0) {
		e->durable_seq = e->written_seq;
		e->durable_pos = e->written_pos;
	}
	pthread_mutex_unlock(&e->durable_lock);
}

static int rotate(struct engine *e)
{
	struct wal_file active;
	uint64_t seq;
	int fd, rc;

	/* A copy: the indexer may trim e->files (wal_files_trim) meanwhile. */
	pthread_mutex_lock(&e->files_lock);
	active = e->files[e->nfiles - 1];
	pthread_mutex_unlock(&e->files_lock);
	seq = active.seq + 1;

	/* Seal exactly what was published: a failed group whose truncation
	 * failed too must not end up inside a sealed file. A failed seal is
	 * rule 3 (FAILED): it may have covered data reported written. */
	pthread_mutex_lock(&e->sync_lock);
	rc = atomic_load(&e->failed_rc);
	if (rc == 0 &&
	    (ftruncate(active.fd, (off_t)e->active_size) < 0 || fdatasync(active.fd) < 0)) {
		rc = -errno;
		engine_fail(e, rc, "sealing a full WAL file failed");
	}
	if (rc == 0)
		engine_synced(e);
	pthread_mutex_unlock(&e->sync_lock);
	if (rc)
		return rc;
	atomic_fetch_add(&e->st_fsyncs, 1);
	e->last_sync_ns = mono_ns();
	e->unsynced = 0;
	rc = wal_file_create(e, seq, &fd);
	if (rc)
		return rc;
	pthread_mutex_lock(&e->files_lock);
	rc = wal_files_push(e, seq, fd);
	if (rc == 0) {
		/* The sealed file joins the indexer's backlog (the indexer may
		 * have trimmed e->files, never its last entry). */
		e->files[e->nfiles - 2].bytes = e->active_size;
		atomic_fetch_add(&e->wal_sealed_bytes, e->active_size);
	}
	pthread_mutex_unlock(&e->files_lock);
	if (rc) {
		close(fd);
		return rc;
	}
	e->active_size = WAL_FILE_HEADER_SIZE;
	e->active_birth_ns = 0;
	e->unsynced = 0;
	/* wal_file_create made the new file's header durable. */
	pthread_mutex_lock(&e->sync_lock);
	e->written_seq = seq;
	e->written_pos = WAL_FILE_HEADER_SIZE;
	engine_synced(e);
	pthread_mutex_unlock(&e->sync_lock);
	log_msg(LOG_LVL_DEBUG, "wal", "rotated to file %llu", (unsigned long long)seq);
	indexer_kick(e);
	return 0;
}

/* The interval sync of data already reported written: a failure is rule 3. */
static int sync_active(struct engine *e)
{
	int fd, rc;
	pthread_mutex_lock(&e->files_lock);
	fd = e->files[e->nfiles - 1].fd;
	pthread_mutex_unlock(&e->files_lock);
	pthread_mutex_lock(&e->sync_lock);
	rc = atomic_load(&e->failed_rc);
	if (rc == 0 && fdatasync(fd) < 0) {
		rc = -errno;
		engine_fail(e, rc, "interval fsync failed");
	} else if (rc == 0) {
		engine_synced(e);
	}
	pthread_mutex_unlock(&e->sync_lock);
	e->last_sync_ns = mono_ns();
	/* Nothing can be made durable after a failure either: stop trying. */
	e->unsynced = 0;
	if (rc == 0)
		atomic_fetch_add(&e->st_fsyncs, 1);
	return rc;
}

/* The sync of a group just written at start..: rules 2 and 3. prior: the
 * bytes already reported written past the sync point before this group.
 * Returns 0, or the error that fails the group (the caller cuts the file
 * back to start, as it does for a failed write). */
static int group_sync(struct engine *e, int fd, off_t start, uint64_t prior)
{
	int rc;

	pthread_mutex_lock(&e->sync_lock);
	rc = atomic_load(&e->failed_rc);
	if (rc)
		goto unlock;
	if (fdatasync(fd) == 0) {
		atomic_fetch_add(&e->st_fsyncs, 1);
		e->last_sync_ns = mono_ns();
		e->unsynced = 0;
		engine_synced(e);
		goto unlock;
	}
	rc = -errno;
	e->written_pos = (uint64_t)start; /* the group is taken back */
	if (prior == 0 && ftruncate(fd, start) == 0 && fdatasync(fd) == 0) {
		engine_synced(e);
		atomic_fetch_add(&e->st_fsyncs, 1);
		e->last_sync_ns = mono_ns();
		e->unsynced = 0;
		log_msg(LOG_LVL_ERROR, "wal",
			"fsync of a group failed (%s); the group failed and the WAL file was "
			"cut back to its last sync point",
			chronik_strerror(rc));
	} else {
		engine_fail(e, rc,
			    prior ? "fsync failed with data reported written not yet durable" :
				    "fsync of a group failed and so did the cut back");
	}
unlock:
	pthread_mutex_unlock(&e->sync_lock);
	return rc;
}

/* The WAL not yet indexed (BACK-PRESSURE); commit thread. */
static uint64_t unindexed_bytes(struct engine *e)
{
	return atomic_load(&e->wal_sealed_bytes) + e->active_size;
}

/* Publish it for engine_stats_get, and the most it ever was. */
static void unindexed_note(struct engine *e)
{
	uint64_t u = unindexed_bytes(e), max = atomic_load(&e->st_unindexed_max);
	atomic_store(&e->st_unindexed, u);
	while (u > max && !atomic_compare_exchange_weak(&e->st_unindexed_max, &max, u))
		;
}

/* The most the next group (take_group's) adds to the WAL: its frames, a
 * sync point in front of it and, when it rotates, the new file's header.
 * Caller holds commit_lock. */
static uint64_t next_group_bytes(const struct engine *e)
{
	uint64_t frames = 0;
	for (const struct append_req *r = e->queue_head; r; r = r->next) {
		uint64_t f = FRAME_V2_HEADER_SIZE + r->len;
		if (frames && frames + f > e->opt.wal_segment_bytes)
			break;
		frames += f;
	}
	return frames + FRAME_SYNC_SIZE + WAL_FILE_HEADER_SIZE;
}

/* Whether the queued requests must wait for the indexer; commit thread,
 * commit_lock held. Not when nothing is left to index (no sealed file, an
 * empty active file): a group larger than the bound by itself goes. */
static bool backpressure_hold(struct engine *e)
{
	if (!e->queue_head || atomic_load(&e->backpressure_off))
		return false;
	if (atomic_load(&e->wal_sealed_bytes) == 0 && e->active_size <= WAL_FILE_HEADER_SIZE)
		return false;
	return unindexed_bytes(e) + next_group_bytes(e) > e->opt.wal_unindexed_max_bytes;
}

void commit_wake_up(struct engine *e)
{
	pthread_mutex_lock(&e->commit_lock);
	pthread_cond_broadcast(&e->commit_wake);
	pthread_mutex_unlock(&e->commit_lock);
}

/* Write one group; returns 0 or the error that fails all of it. */
static int group_write(struct engine *e, struct append_req *head)
{
	struct iovec *iov;
	uint8_t sync_point[FRAME_SYNC_SIZE];
	size_t n = 0, total = 0, sp_len;
	struct wal_file active;
	uint32_t seq;
	off_t start;
	int rc, fd;

	for (struct append_req *r = head; r; r = r->next)
		if (r->status == 0) {
			n++;
			total += FRAME_V2_HEADER_SIZE + r->len;
		}
	if (n == 0)
		return 0;
	rc = atomic_load(&e->failed_rc);
	if (rc)
		return rc;
	/* Everything before the group is durable: say so in front of it. */
	sp_len = e->unsynced == 0 && e->active_size > WAL_FILE_HEADER_SIZE ? FRAME_SYNC_SIZE : 0;
	if (e->active_size > WAL_FILE_HEADER_SIZE &&
	    e->active_size + sp_len + total > e->opt.wal_segment_bytes) {
		rc = rotate(e);
		if (rc)
			return rc;
		sp_len = 0;
	}
	if (e->active_size + sp_len + total > UINT32_MAX)
		return -EFBIG;
	rc = reserve_index(head);
	if (rc)
		return rc;
	iov = malloc((2 * n + 1) * sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	pthread_mutex_lock(&e->files_lock);
	active = e->files[e->nfiles - 1];
	pthread_mutex_unlock(&e->files_lock);
	seq = (uint32_t)active.seq;
	fd = active.fd;
	start = (off_t)e->active_size;
	n = 0;
	if (sp_len) {
		frame_sync_encode(sync_point, (uint64_t)start, e->active_salt);
		iov[n].iov_base = sync_point;
		iov[n].iov_len = sp_len;
		n++;
	}
	total += sp_len;

	struct append_req *last = NULL;
	for (struct append_req *r = head; r; r = r->next)
		if (r->status == 0)
			last = r;
	for (struct append_req *r = head; r; r = r->next) {
		struct partition *p = r->p;
		struct frame_info fi = { 0 };
		if (r->status)
			continue;
		fi.flags = r == last ? FRAME_FLAG_GROUP_END : 0;
		r->base_offset = p->c_next_offset;
		r->raw_pos = p->c_raw_size;
		/* last_delta is in [0, INT32_MAX] (commit_submit): no overflow. */
		p->c_next_offset += (int64_t)r->last_delta + 1;
		p->c_raw_size += r->raw_len;
		batch_set_base_offset(r->batch, r->base_offset);
		fi.topic_id = p->topic_id;
		fi.partition = p->index;
		fi.base_offset = r->base_offset;
		fi.last_offset = r->base_offset + r->last_delta;
		fi.record_count = r->count;
		fi.max_timestamp = r->max_timestamp;
		fi.raw_pos = r->raw_pos;
		fi.raw_len = (uint32_t)r->raw_len;
		frame_v2_header_encode(r->hdr, &fi, r->batch, r->len);
		iov[n].iov_base = r->hdr;
		iov[n].iov_len = FRAME_V2_HEADER_SIZE;
		iov[n + 1].iov_base = r->batch;
		iov[n + 1].iov_len = r->len;
		n += 2;
	}
	rc = write_all(fd, iov, (int)n, start);
	free(iov);
	if (rc == 0) {
		uint64_t prior = e->unsynced;
		pthread_mutex_lock(&e->sync_lock);
		e->written_seq = seq;
		e->written_pos = (uint64_t)start + total;
		pthread_mutex_unlock(&e->sync_lock);
		e->unsynced += total;
		if (e->opt.fsync == FSYNC_EVERY ||
		    (e->opt.fsync == FSYNC_INTERVAL &&
		     mono_ns() - e->last_sync_ns >= (int64_t)e->opt.fsync_interval_ms * 1000000))
			rc = group_sync(e, fd, start, prior);
		else
			rc = atomic_load(&e->failed_rc); /* an engine_sync failed meanwhile */
		if (rc)
			e->unsynced = prior;
	}
	if (rc) {
		log_msg(LOG_LVL_ERROR, "wal", "group write of %zu bytes failed: %s", total,
			chronik_strerror(rc));
		/* No later sync may count the failed group as durable. */
		pthread_mutex_lock(&e->sync_lock);
		e->written_pos = (uint64_t)start;
		pthread_mutex_unlock(&e->sync_lock);
		if (ftruncate(fd, start) < 0)
			engine_fail(e, -errno, "cannot cut a failed group off the WAL file");
		atomic_fetch_add(&e->st_failed, 1);
		for (struct append_req *r = head; r; r = r->next) {
			pthread_mutex_lock(&r->p->lock);
			r->p->c_next_offset = r->p->next_offset;
			r->p->c_raw_size = r->p->raw_size;
			r->p->reserved = 0;
			pthread_mutex_unlock(&r->p->lock);
		}
		return rc;
	}

	/* Publish. mtime is wall clock: it is shown as the files' mtime. */
	int64_t mtime = now_ns();
	uint64_t pos = (uint64_t)start + sp_len;
	for (struct append_req *r = head; r; r = r->next) {
		struct partition *p = r->p;
		struct hot_entry he;
		if (r->status)
			continue;
		he.base_offset = r->base_offset;
		he.raw_pos = r->raw_pos;
		he.max_timestamp = r->max_timestamp;
		he.file_seq = seq;
		he.file_pos = (uint32_t)pos;
		he.frame_len = (uint32_t)(FRAME_V2_HEADER_SIZE + r->len);
		he.reserved = 0;
		pos += he.frame_len;
		pthread_mutex_lock(&p->lock);
		r->status = partition_index_push(p, &he);
		if (p->reserved)
			p->reserved--;
		if (r->status == 0) {
			p->next_offset = r->base_offset + r->last_delta + 1;
			p->raw_size = r->raw_pos + r->raw_len;
			p->wal_bytes += he.frame_len;
			if (r->max_timestamp > p->max_timestamp)
				p->max_timestamp = r->max_timestamp;
			p->mtime_ns = mtime;
			pthread_cond_broadcast(&p->grown);
		}
		pthread_mutex_unlock(&p->lock);
	}
	if (e->active_birth_ns == 0)
		e->active_birth_ns = mono_ns();
	e->active_size = pos;
	unindexed_note(e);
	atomic_fetch_add(&e->st_groups, 1);
	atomic_fetch_add(&e->st_appends, (n - (sp_len ? 1 : 0)) / 2);
	atomic_fetch_add(&e->st_bytes, total - sp_len);
	return 0;
}

/* Take the next group off the queue (caller holds commit_lock): requests
 * in queue order while their frames add up to at most wal.segment.bytes,
 * and at least one. So a group always fits in one WAL file (rotation
 * happens before a group), file positions stay below 4 GiB, and a queue
 * holding more than a file's worth becomes several groups instead of one
 * that fails every appender in it. */
static struct append_req *take_group(struct engine *e)
{
	struct append_req *head = e->queue_head, *last = head;
	uint64_t total = FRAME_V2_HEADER_SIZE + head->len;

	while (last->next &&
	       total + FRAME_V2_HEADER_SIZE + last->next->len <= e->opt.wal_segment_bytes) {
		last = last->next;
		total += FRAME_V2_HEADER_SIZE + last->len;
	}
	e->queue_head = last->next;
	if (!e->queue_head)
		e->queue_tail = NULL;
	last->next = NULL;
	for (struct append_req *r = head; r; r = r->next)
		e->queue_len--;
	return head;
}

/* When the active file is due to be sealed by age (wal.seal.ms after its
 * first frame), in mono_ns() time; 0 = not due (empty, or sealing by age
 * off). Commit thread. */
static int64_t seal_due(const struct engine *e)
{
	if (!e->opt.wal_seal_ms || !e->active_birth_ns || e->active_size <= WAL_FILE_HEADER_SIZE)
		return 0;
	return e->active_birth_ns + (int64_t)e->opt.wal_seal_ms * 1000000;
}

/* *ts = CLOCK_MONOTONIC now + wait_ns (commit_wake waits on it). */
static void timespec_at(struct timespec *ts, int64_t wait_ns)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	if (wait_ns < 0)
		wait_ns = 0;
	ts->tv_sec += wait_ns / 1000000000;
	ts->tv_nsec += wait_ns % 1000000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* The commit thread's next duty (seal by age, interval sync) in mono_ns()
 * time; INT64_MAX = none. Token holder or commit_lock with the token free. */
static int64_t duty_due(const struct engine *e)
{
	int64_t due = seal_due(e);
	if (!due)
		due = INT64_MAX;
	if (e->opt.fsync == FSYNC_INTERVAL && e->unsynced) {
		int64_t sync = e->last_sync_ns + (int64_t)e->opt.fsync_interval_ms * 1000000;
		if (sync < due)
			due = sync;
	}
	return due;
}

/* Give the writer's token back (caller holds commit_lock): wake the commit
 * thread when requests are queued, when it is stopping, or when a duty is
 * due before the time it sleeps until (a first frame in the active file
 * starts its seal clock, a first unsynced byte the interval sync's). */
static void token_release(struct engine *e)
{
	e->writing = false;
	if (e->queue_head || e->stopping || e->seal_now || duty_due(e) < e->commit_sleep_until)
		pthread_cond_signal(&e->commit_wake);
}

/* Write one group taken off the queue and release its appenders; the
 * caller holds the writer's token, not commit_lock. */
static void group_run(struct engine *e, struct append_req *head)
{
	int rc;

	/* Requests for deleted partitions fail here, outside the group. */
	for (struct append_req *r = head; r; r = r->next) {
		pthread_mutex_lock(&r->p->lock);
		if (r->p->deleted)
			r->status = CHRONIK_ENOTOPIC;
		pthread_mutex_unlock(&r->p->lock);
	}
	rc = group_write(e, head);

	/* Collect the partitions that grew before releasing the appenders
	 * (their requests die with them); each is referenced once. The
	 * listener is read under commit_lock and counted busy until its
	 * calls are over, so engine_set_append_listener can wait them out. */
	struct partition **grown = NULL;
	size_t ngrown = 0, nreq = 0;
	engine_append_fn fn;
	void *fn_arg;
	for (struct append_req *r = head; r; r = r->next)
		nreq++;
	pthread_mutex_lock(&e->commit_lock);
	fn = e->listener;
	fn_arg = e->listener_arg;
	if (fn)
		e->listener_busy = true;
	pthread_mutex_unlock(&e->commit_lock);
	if (rc == 0 && fn)
		grown = malloc(nreq * sizeof(*grown));
	for (struct append_req *r = head; grown && r; r = r->next) {
		size_t i;
		if (r->status)
			continue;
		for (i = 0; i < ngrown && grown[i] != r->p; i++)
			;
		if (i == ngrown) {
			engine_partition_ref(r->p);
			grown[ngrown++] = r->p;
		}
	}
	pthread_mutex_lock(&e->commit_lock);
	for (struct append_req *r = head, *next; r; r = next) {
		next = r->next;
		if (rc && r->status == 0)
			r->status = rc;
		r->done = true;
	}
	pthread_cond_broadcast(&e->commit_done);
	pthread_mutex_unlock(&e->commit_lock);

	for (size_t i = 0; i < ngrown; i++) {
		fn(fn_arg, grown[i]);
		engine_partition_unref(grown[i]);
	}
	free(grown);
	if (fn) {
		pthread_mutex_lock(&e->commit_lock);
		e->listener_busy = false;
		pthread_cond_broadcast(&e->commit_done);
		pthread_mutex_unlock(&e->commit_lock);
	}
}

/* Sleep on commit_wake until the mono_ns() time due (INT64_MAX: until
 * woken); commit_lock held. commit_sleep_until tells token_release when a
 * new duty needs the thread earlier. */
static void commit_sleep(struct engine *e, int64_t due)
{
	e->commit_sleep_until = due;
	if (due == INT64_MAX) {
		pthread_cond_wait(&e->commit_wake, &e->commit_lock);
	} else {
		/* commit_wake waits on CLOCK_MONOTONIC (engine_open). */
		struct timespec ts;
		timespec_at(&ts, due - mono_ns());
		pthread_cond_timedwait(&e->commit_wake, &e->commit_lock, &ts);
	}
	e->commit_sleep_until = 0;
}

static void *commit_main(void *arg)
{
	struct engine *e = arg;

	pthread_mutex_lock(&e->commit_lock);
	for (;;) {
		struct append_req *head;
		bool bypass = false; /* a seal for back-pressure failed: write on */
		int rc;

		while ((e->writing || !e->queue_head || (!bypass && backpressure_hold(e))) &&
		       !e->stopping) {
			if (e->writing) {
				/* An appender leads a group: wait for the token
				 * (token_release wakes us when there is work). */
				commit_sleep(e, INT64_MAX);
				continue;
			}
			int64_t seal = seal_due(e);
			bool hold = e->queue_head != NULL;
			bool any = e->active_size > WAL_FILE_HEADER_SIZE;
			if (hold && !e->bp_holding) {
				e->bp_holding = true;
				atomic_fetch_add(&e->st_bp_waits, 1);
				log_msg(LOG_LVL_DEBUG, "wal",
					"%" PRIu64 " bytes of WAL not yet indexed: appends wait "
					"for the indexer",
					unindexed_bytes(e));
			}
			/* Held back with nothing sealed: seal, or the indexer has
			 * nothing to free. */
			bool bp_seal = hold && any && atomic_load(&e->wal_sealed_bytes) == 0;
			if (e->seal_now || bp_seal || (seal && mono_ns() >= seal)) {
				/* Seal what there is (wal.seal.ms, engine_index_now,
				 * back-pressure). */
				bool asked = e->seal_now;
				e->writing = true;
				pthread_mutex_unlock(&e->commit_lock);
				rc = any ? rotate(e) : 0;
				if (rc)
					log_msg(LOG_LVL_ERROR, "wal",
						"sealing the WAL file failed: %s",
						chronik_strerror(rc));
				pthread_mutex_lock(&e->commit_lock);
				e->writing = false;
				if (rc && bp_seal)
					bypass = true; /* the group meets the error itself */
				if (rc)
					e->active_birth_ns = mono_ns(); /* again a period later */
				if (asked) {
					e->seal_now = false;
					pthread_cond_broadcast(&e->commit_done);
				}
				continue;
			}
			if (e->opt.fsync == FSYNC_INTERVAL && e->unsynced &&
			    mono_ns() >= e->last_sync_ns + (int64_t)e->opt.fsync_interval_ms * 1000000) {
				e->writing = true;
				pthread_mutex_unlock(&e->commit_lock);
				(void)sync_active(e); /* a failure is logged, sticky */
				pthread_mutex_lock(&e->commit_lock);
				e->writing = false;
				continue;
			}
			commit_sleep(e, duty_due(e));
		}
		e->bp_holding = false;
		if (e->stopping && (e->writing || !e->queue_head)) {
			if (!e->writing)
				break;
			commit_sleep(e, INT64_MAX);
			continue;
		}
		head = take_group(e);
		e->writing = true;
		pthread_mutex_unlock(&e->commit_lock);
		group_run(e, head);
		pthread_mutex_lock(&e->commit_lock);
		e->writing = false;
	}
	pthread_mutex_unlock(&e->commit_lock);
	return NULL;
}

int commit_start(struct engine *e)
{
	int rc;
	e->last_sync_ns = mono_ns();
	rc = pthread_create(&e->commit_thread, NULL, commit_main, e);
	if (rc)
		return -rc;
	e->commit_running = true;
	return 0;
}

void commit_stop(struct engine *e)
{
	if (!e->commit_running)
		return;
	pthread_mutex_lock(&e->commit_lock);
	e->stopping = true;
	pthread_cond_broadcast(&e->commit_wake);
	pthread_mutex_unlock(&e->commit_lock);
	pthread_join(e->commit_thread, NULL);
	e->commit_running = false;
}

/* Check a batch and queue it as r (caller's storage, untouched by the
 * caller until it is done): 0, or why it cannot be appended (nothing is
 * queued then). Nobody is woken: commit_wait leads or waits for the group,
 * commit_kick hands the queue to the commit thread. */
static int commit_enqueue(struct partition *p, uint8_t *batch, size_t len, int64_t raw_len,
			  struct append_req *r)
{
	struct engine *e = p->e;
	struct batch_header bh;
	bool deleted;
	int rc;

	memset(r, 0, sizeof(*r));
	/* A deleted topic's partition (or one that outlived engine_close) must
	 * not touch the engine. */
	pthread_mutex_lock(&p->lock);
	deleted = p->deleted;
	pthread_mutex_unlock(&p->lock);
	if (deleted)
		return CHRONIK_ENOTOPIC;
	if (e->opt.read_only)
		return -EROFS;
	rc = atomic_load(&e->failed_rc);
	if (rc)
		return rc;
	if (len > FRAME_MAX_LEN - FRAME_V2_HEADER_SIZE)
		return -EMSGSIZE;
	rc = batch_header_parse(batch, len, &bh);
	if (rc)
		return rc;
	if (bh.record_count <= 0 || bh.last_offset_delta < 0)
		return CHRONIK_ECORRUPT;
	if (bh.record_count != (int64_t)bh.last_offset_delta + 1)
		return CHRONIK_ECORRUPT;
	if (raw_len >= 0) {
		r->raw_len = (uint64_t)raw_len;
	} else {
		/* A batch from outside: one walk of its records checks them
		 * and sums their raw-view size. */
		rc = batch_raw_size(batch, len, &r->raw_len);
		if (rc)
			return rc;
	}
	if (r->raw_len > UINT32_MAX)
		return -EMSGSIZE;
	r->p = p;
	r->batch = batch;
	r->len = len;
	r->last_delta = bh.last_offset_delta;
	r->count = (uint32_t)bh.record_count;
	r->max_timestamp = bh.max_timestamp;

	pthread_mutex_lock(&e->commit_lock);
	if (e->stopping) {
		pthread_mutex_unlock(&e->commit_lock);
		return -ESHUTDOWN;
	}
	if (e->queue_tail)
		e->queue_tail->next = r;
	else
		e->queue_head = r;
	e->queue_tail = r;
	e->queue_len++;
	pthread_mutex_unlock(&e->commit_lock);
	return 0;
}

/* Wait until the queued r is done: 0 with *base_offset, or its error.
 * When no group is in progress, lead one: it takes what is queued, r
 * included (a queue longer than a file's worth takes several groups);
 * later arrivals queue for the next. A leader stops leading where the
 * queue must wait for the indexer (BACK-PRESSURE): the commit thread holds
 * it then. Without fsync every, the leader also writes the group that
 * queued behind it: waking the commit thread for it costs more than that
 * write (under every, the leader's return would wait a second fsync, so
 * the commit thread takes it). A group in progress has taken r, or will
 * leave it queued for the commit thread, which token_release wakes. */
static int commit_wait(struct engine *e, struct append_req *r, int64_t *base_offset)
{
	pthread_mutex_lock(&e->commit_lock);
	if (!r->done && !e->writing && !backpressure_hold(e)) {
		e->writing = true;
		int extra = e->opt.fsync == FSYNC_EVERY ? 0 : 1;
		while ((!r->done || (e->queue_head && extra-- > 0)) && !backpressure_hold(e)) {
			struct append_req *head = take_group(e);
			pthread_mutex_unlock(&e->commit_lock);
			group_run(e, head);
			pthread_mutex_lock(&e->commit_lock);
		}
		token_release(e);
	} else if (!r->done && !e->writing) {
		pthread_cond_signal(&e->commit_wake); /* held: the commit thread's */
	}
	while (!r->done)
		pthread_cond_wait(&e->commit_done, &e->commit_lock);
	pthread_mutex_unlock(&e->commit_lock);
	if (r->status == 0 && base_offset)
		*base_offset = r->base_offset;
	return r->status;
}

int commit_submit(struct partition *p, uint8_t *batch, size_t len, int64_t raw_len,
		  int64_t *base_offset)
{
	struct append_req r;
	int rc = commit_enqueue(p, batch, len, raw_len, &r);
	if (rc)
		return rc;
	return commit_wait(p->e, &r, base_offset);
}

/* An append started and not yet finished (engine.h). */
struct engine_append {
	struct append_req r;
	struct engine *e;
};

int engine_append_start(struct partition *p, uint8_t *batch, size_t len, bool verify_crc,
			struct engine_append **out)
{
	struct engine_append *a;
	int rc;

	*out = NULL;
	if (len < BATCH_HEADER_SIZE)
		return CHRONIK_ECORRUPT;
	if (verify_crc) {
		rc = batch_crc_check(batch, len);
		if (rc)
			return rc;
	}
	a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->e = p->e;
	rc = commit_enqueue(p, batch, len, -1, &a->r);
	if (rc) {
		free(a);
		return rc;
	}
	*out = a;
	return 0;
}

int engine_append_finish(struct engine_append *a, int64_t *base_offset)
{
	int rc = commit_wait(a->e, &a->r, base_offset);
	free(a);
	return rc;
}

void engine_append_kick(struct engine *e)
{
	pthread_mutex_lock(&e->commit_lock);
	if (!e->writing && e->queue_head)
		pthread_cond_signal(&e->commit_wake);
	pthread_mutex_unlock(&e->commit_lock);
}
