/* recover.c - open the WAL files of a data directory and rebuild the engine's
 * state from them: the hot index and each partition's next offset and
 * raw size. The algorithm and the validity rules are in frame.h
 * ("RECOVERY"); in short: sealed files must be valid to their end, the
 * active file may end in a torn tail, which is truncated and logged once,
 * and damage before the tail fails the open unless repair is asked for.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byteorder.h"
#include "engine-private.h"
#include "log.h"

void wal_path(const struct engine *e, uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "%s/wal/%020" PRIu64 ".wal", e->dir, seq);
}

/* Create WAL file seq with its header, durably (file and directory
 * fsynced). On failure no file is left behind: a stray file would take
 * the next groups' place in the sequence, and the file before it, which
 * would go on taking groups, would be read as a sealed file (where a torn
 * tail is damage). The unlink is made durable too when it can be; when the
 * unlink fails, the engine enters FAILED (commit.c) so that no group goes
 * into the file before it. If only the unlink's directory fsync fails,
 * recovery finds at most an empty or header-only file after the active
 * one, which it accepts. */
int wal_file_create(struct engine *e, uint64_t seq, int *fd_out)
{
	char path[4096];
	uint32_t salt;
	int fd, rc;

	wal_path(e, seq, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = wal_file_header_write_salted(fd, seq, &salt);
	if (rc == 0)
		rc = fsync_dir(e->dir_fd);
	if (rc) {
		close(fd);
		if (unlink(path) == 0)
			(void)fsync_dir(e->dir_fd);
		else
			engine_fail(e, rc, "a failed new WAL file cannot be removed");
		log_msg(LOG_LVL_ERROR, "wal", "cannot create %s: %s", path, chronik_strerror(rc));
		return rc;
	}
	e->active_salt = salt;
	*fd_out = fd;
	return 0;
}

int wal_fd_get(struct engine *e, uint32_t seq)
{
	int fd = -ENOENT;
	pthread_mutex_lock(&e->files_lock);
	if (e->nfiles && seq >= e->files[0].seq && seq - e->files[0].seq < e->nfiles)
		fd = e->files[seq - e->files[0].seq].fd;
	pthread_mutex_unlock(&e->files_lock);
	return fd < 0 ? -ENOENT : fd;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The sequence numbers of DATA/wal/NNNNNNNNNNNNNNNNNNNN.wal, sorted. */
static int list_files(struct engine *e, uint64_t **out, size_t *count)
{
	char path[4096];
	struct dirent *de;
	uint64_t *seqs = NULL;
	size_t n = 0, cap = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/wal", e->dir);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *end;
		unsigned long long v;
		if (strlen(de->d_name) != 24 || strcmp(de->d_name + 20, ".wal") != 0)
			continue;
		errno = 0;
		v = strtoull(de->d_name, &end, 10);
		if (errno || end != de->d_name + 20)
			continue;
		if (n == cap) {
			uint64_t *s = realloc(seqs, (cap = cap ? cap * 2 : 16) * sizeof(*s));
			if (!s) {
				free(seqs);
				closedir(d);
				return -ENOMEM;
			}
			seqs = s;
		}
		seqs[n++] = v;
	}
	closedir(d);
	if (n)
		qsort(seqs, n, sizeof(*seqs), cmp_u64);
	*out = seqs;
	*count = n;
	return 0;
}

/* Add a valid frame to its partition. Frames of deleted topics are skipped.
 * CHRONIK_ECORRUPT when it does not continue its partition densely. */
static int apply_frame(struct engine *e, const struct frame_info *fi, uint64_t seq, uint64_t pos)
{
	struct topic *t = meta_topic_find_id(e, fi->topic_id);
	struct partition *p;
	struct hot_entry he;
	uint64_t raw_len;

	if (!t)
		return 0;
	if (fi->partition < 0 || fi->partition >= t->nparts)
		return CHRONIK_ECORRUPT;
	p = t->parts[fi->partition];
	if (fi->version == 2)
		raw_len = fi->raw_len;
	else
		raw_len = (fi->value_len > 0 ? (uint64_t)fi->value_len : 0) + 1;
	/* Locked: a live read-only engine (engine_refresh) has readers. */
	pthread_mutex_lock(&p->lock);
	/* Already in a registered segment (indexed, WAL file not yet removed). */
	if (fi->base_offset < p->seg_next_offset && fi->last_offset < p->seg_next_offset) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	if (fi->base_offset != p->next_offset || (fi->version == 2 && fi->raw_pos != p->raw_size)) {
		pthread_mutex_unlock(&p->lock);
		return CHRONIK_ECORRUPT;
	}
	he.base_offset = fi->base_offset;
	he.raw_pos = p->raw_size;
	he.max_timestamp = fi->max_timestamp;
	he.file_seq = (uint32_t)seq;
	he.file_pos = (uint32_t)pos;
	he.frame_len = fi->frame_len;
	he.reserved = 0;
	if (partition_index_push(p, &he)) {
		pthread_mutex_unlock(&p->lock);
		return -ENOMEM;
	}
	p->next_offset = fi->last_offset + 1;
	p->raw_size += raw_len;
	p->wal_bytes += fi->frame_len;
	if (fi->max_timestamp > p->max_timestamp)
		p->max_timestamp = fi->max_timestamp;
	pthread_cond_broadcast(&p->grown);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* After an invalid frame at pos of a version 2 file: is it a torn tail? It
 * is unless a genuine sync point lies after pos (frame.h, RECOVERY). Every
 * occurrence of the magic is looked at, none is trusted for a length, and
 * each costs one 32-byte check: linear in the file whatever the values
 * hold. */
static bool torn_tail_v2(const uint8_t *map, size_t size, size_t pos, uint32_t salt)
{
	for (size_t q = pos + 1; q + FRAME_SYNC_SIZE <= size;) {
		const uint8_t *m = memmem(map + q, size - q, "CHKF", 4);
		if (!m)
			break;
		q = (size_t)(m - map);
		if (frame_sync_genuine(m, size - q, q, salt))
			return false;
		q++;
	}
	return true;
}

/* The same for a version 1 file, by the rule of that version: a torn tail
 * when no valid frame follows, or the valid frames that follow end with
 * the first GROUP_END frame after pos. The bytes hashed are bounded by
 * four times the file's size; past that the tail is called damage. */
static bool torn_tail_v1(const uint8_t *map, size_t size, size_t pos)
{
	bool group_end_seen = false;
	uint64_t budget = 4 * (uint64_t)size;

	for (size_t q = pos + 1; q + FRAME_COMMON_SIZE <= size;) {
		const uint8_t *m = memmem(map + q, size - q, "CHKF", 4);
		struct frame_info fi;
		uint32_t len;
		if (!m)
			break;
		q = (size_t)(m - map);
		len = size - q >= 12 ? get_le32(m + 8) : 0;
		if (len > size - q)
			len = (uint32_t)(size - q);
		if (budget < (uint64_t)len + FRAME_V2_HEADER_SIZE)
			return false;
		budget -= (uint64_t)len + FRAME_V2_HEADER_SIZE;
		if (frame_decode(m, size - q, &fi) != FRAME_VALID || fi.version == 3) {
			q++;
			continue;
		}
		if (group_end_seen)
			return false;
		if (fi.flags & FRAME_FLAG_GROUP_END)
			group_end_seen = true;
		q += fi.frame_len;
	}
	return true;
}

static int file_truncate(int fd, uint64_t pos)
{
	if (ftruncate(fd, (off_t)pos) < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/* Scan one file. *end_out: where its valid frames end. *cut: set when the
 * file was cut at corruption (repair), so later files must go. */
static int scan_file(struct engine *e, uint64_t seq, int fd, bool last, uint64_t *end_out,
		     bool *cut)
{
	char path[4096];
	struct stat st;
	uint8_t *map = NULL;
	uint64_t hseq, pos = WAL_FILE_HEADER_SIZE;
	uint32_t version = 0, salt = 0;
	size_t size, copied = 0;
	int rc = 0;

	wal_path(e, seq, path, sizeof(path));
	if (fstat(fd, &st) < 0)
		return -errno;
	size = (size_t)st.st_size;
	if (e->ro_capped && seq == e->ro_cap_seq && size > e->ro_cap_pos)
		size = (size_t)e->ro_cap_pos; /* a writable open will cut it there */
	if (size > UINT32_MAX) {
		log_msg(LOG_LVL_ERROR, "recover", "%s: %zu bytes, more than a WAL file may hold",
			path, size);
		return CHRONIK_ECORRUPT;
	}
	if (size > 0 && e->opt.read_only) {
		/* Beside a live writer that may cut the file at any moment: a
		 * copy read with pread, not a mapping (SIGBUS, refresh_file). */
		ssize_t n;
		map = malloc(size);
		if (!map)
			return -ENOMEM;
		n = frame_reader_pread(fd, map, size, 0);
		if (n < 0) {
			free(map);
			return (int)n;
		}
		copied = size;
		size = (size_t)n;
	} else if (size > 0) {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED)
			return -errno;
		madvise(map, size, MADV_SEQUENTIAL);
	}
	rc = wal_file_header_parse(map, size, &hseq, &version, &salt);
	if (rc == 0 && hseq != seq)
		rc = CHRONIK_ECORRUPT;
	if (rc) {
		if (last && size <= WAL_FILE_HEADER_SIZE && !e->opt.read_only) {
			/* Created but its header never made it to disk: start it anew. */
			log_msg(LOG_LVL_WARN, "recover", "%s: incomplete file header rewritten",
				path);
			rc = wal_file_header_write_salted(fd, seq, &salt);
			version = WAL_FILE_VERSION;
			*end_out = WAL_FILE_HEADER_SIZE;
		} else if (e->opt.repair && !e->opt.read_only) {
			/* Repair: keep the file, empty, and set aside every later one. */
			log_msg(LOG_LVL_ERROR, "recover",
				"%s: invalid file header; repair empties the file (%zu bytes dropped)",
				path, size);
			rc = wal_file_header_write_salted(fd, seq, &salt);
			version = WAL_FILE_VERSION;
			*end_out = WAL_FILE_HEADER_SIZE;
			*cut = true;
		} else {
			log_msg(LOG_LVL_ERROR, "recover", "%s: invalid file header: %s", path,
				chronik_strerror(rc));
		}
		goto out;
	}

	while (pos < size) {
		struct frame_info fi;
		enum frame_status st2 = frame_decode(map + pos, size - pos, &fi);
		if (st2 == FRAME_VALID && fi.version == 3) {
			if (version == WAL_FILE_VERSION && fi.sync_pos == pos &&
			    fi.sync_salt == salt) {
				pos += FRAME_SYNC_SIZE;
				continue;
			}
			log_msg(LOG_LVL_ERROR, "recover",
				"%s position %" PRIu64 ": sync point that is not this file's", path,
				pos);
			st2 = FRAME_INVALID;
		} else if (st2 == FRAME_VALID) {
			rc = apply_frame(e, &fi, seq, pos);
			if (rc == 0) {
				pos += fi.frame_len;
				continue;
			}
			if (rc != CHRONIK_ECORRUPT)
				goto out;
			log_msg(LOG_LVL_ERROR, "recover",
				"%s position %" PRIu64
				": frame of topic %u partition %d at offset %" PRId64
				" does not follow its partition",
				path, pos, fi.topic_id, fi.partition, fi.base_offset);
		}
		/* An invalid (or short) frame at pos: a torn tail, or damage. */
		int damage = CHRONIK_ECORRUPT;
		if (st2 == FRAME_UNKNOWN_VERSION) {
			damage = CHRONIK_EVERSION;
			log_msg(LOG_LVL_ERROR, "recover",
				"%s position %" PRIu64 ": unknown frame version %u", path, pos,
				map[pos + 4]);
		} else if (last &&
			   (version == WAL_FILE_VERSION ? torn_tail_v2(map, size, pos, salt) :
							  torn_tail_v1(map, size, pos))) {
			if (e->opt.read_only) {
				e->torn_seq = seq;
				e->torn_pos = pos;
				/* Beside a live writer this is its frame in progress. */
				log_msg(LOG_LVL_INFO, "recover",
					"%s: torn tail at position %" PRIu64
					" (%zu bytes) left as is (read-only)",
					path, pos, size - (size_t)pos);
			} else {
				log_msg(LOG_LVL_WARN, "recover",
					"%s: torn tail at position %" PRIu64
					" (%zu bytes) truncated",
					path, pos, size - (size_t)pos);
				rc = file_truncate(fd, pos);
			}
			goto out;
		} else {
			log_msg(LOG_LVL_ERROR, "recover",
				"%s position %" PRIu64 ": corrupt frame before the end of the log",
				path, pos);
		}
		if (!e->opt.repair || e->opt.read_only) {
			rc = damage;
			goto out;
		}
		log_msg(LOG_LVL_ERROR, "recover",
			"%s position %" PRIu64 ": repair cuts the log here (%zu bytes dropped)",
			path, pos, size - (size_t)pos);
		rc = file_truncate(fd, pos);
		*cut = true;
		goto out;
	}
out:
	if (rc == 0 && *end_out == 0)
		*end_out = pos;
	if (rc == 0) {
		/* The last file scanned is the active one (after a repair cut
		 * too: the files after it are set aside). */
		e->active_salt = salt;
		e->active_version = version;
	}
	if (map && copied)
		free(map);
	else if (map)
		munmap(map, size);
	return rc;
}

int wal_files_push(struct engine *e, uint64_t seq, int fd)
{
	if (e->nfiles == e->files_cap) {
		size_t cap = e->files_cap ? e->files_cap * 2 : 16;
		struct wal_file *f = realloc(e->files, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		e->files = f;
		e->files_cap = cap;
	}
	e->files[e->nfiles].seq = seq;
	e->files[e->nfiles].fd = fd;
	e->files[e->nfiles].bytes = 0;
	e->files[e->nfiles].kept = false;
	e->nfiles++;
	return 0;
}

void wal_files_trim(struct engine *e)
{
	size_t k = 0;
	while (k + 1 < e->nfiles && e->files[k].fd < 0)
		k++;
	if (k == 0)
		return;
	memmove(e->files, e->files + k, (e->nfiles - k) * sizeof(*e->files));
	e->nfiles -= k;
	/* Give back what a long backlog of sealed files once needed. */
	if (e->files_cap > 64 && e->nfiles < e->files_cap / 4) {
		size_t cap = e->files_cap / 2;
		struct wal_file *f = realloc(e->files, cap * sizeof(*f));
		if (f) {
			e->files = f;
			e->files_cap = cap;
		}
	}
}

/* Make the active file ready for the commit thread (writable opens): a
 * version 1 file is sealed and a version 2 one started after it, so that
 * sync points only ever go into version 2 files; then the active file is
 * fdatasynced, since what recovery read may have been in the page cache
 * only, and only a completed sync lets the first group carry a sync point
 * (frame.h). A failed fdatasync fails the open (commit.c, "FAILED WRITES
 * AND SYNCS"): what recovery counted may not be durable, and no later sync
 * could be trusted to say otherwise. */
static int active_prepare(struct engine *e)
{
	struct wal_file *active = &e->files[e->nfiles - 1];
	int fd, rc;

	if (e->active_version != WAL_FILE_VERSION) {
		uint64_t seq = active->seq + 1;
		if (ftruncate(active->fd, (off_t)e->active_size) < 0 || fdatasync(active->fd) < 0)
			return -errno;
		rc = wal_file_create(e, seq, &fd);
		if (rc)
			return rc;
		rc = wal_files_push(e, seq, fd);
		if (rc) {
			close(fd);
			return rc;
		}
		log_msg(LOG_LVL_INFO, "recover",
			"WAL file %" PRIu64
			" (format version 1) sealed; appends go to file %" PRIu64,
			seq - 1, seq);
		e->active_version = WAL_FILE_VERSION;
		e->active_size = WAL_FILE_HEADER_SIZE;
		e->unsynced = 0;
		return 0;
	}
	if (fdatasync(active->fd) < 0) {
		rc = -errno;
		log_msg(LOG_LVL_ERROR, "recover", "fdatasync of the active WAL file failed: %s",
			chronik_strerror(rc));
		return rc;
	}
	e->unsynced = 0;
	return 0;
}

/* Apply the failed-sync marker, if there is one (syncmark.c, "APPLYING
 * IT"): remove the files after its seq, cut file seq to its pos, then
 * remove the marker. seqs[0..*n) is sorted; *n shrinks by the files
 * removed. */
static int syncmark_apply(struct engine *e, const uint64_t *seqs, size_t *n)
{
	uint64_t seq, pos, dropped = 0;
	size_t keep = 0;
	bool found;
	int rc;

	rc = wal_syncmark_read(e, &found, &seq, &pos);
	if (rc || !found)
		return rc;
	for (size_t i = 0; i < *n; i++) {
		char path[4096];
		struct stat st;
		int fd;

		wal_path(e, seqs[i], path, sizeof(path));
		if (seqs[i] < seq) {
			keep = i + 1;
			continue;
		}
		if (seqs[i] > seq) {
			if (stat(path, &st) == 0)
				dropped += (uint64_t)st.st_size;
			if (unlink(path) < 0)
				return -errno;
			log_msg(LOG_LVL_WARN, "recover",
				"%s removed: created after the last good sync point", path);
			continue;
		}
		keep = i + 1;
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		rc = fstat(fd, &st) < 0 ? -errno : 0;
		if (rc == 0 && (uint64_t)st.st_size > pos) {
			dropped += (uint64_t)st.st_size - pos;
			if (ftruncate(fd, (off_t)pos) < 0 || fdatasync(fd) < 0)
				rc = -errno;
		}
		close(fd);
		if (rc)
			return rc;
	}
	*n = keep;
	rc = fsync_dir(e->dir_fd);
	if (rc)
		return rc;
	log_msg(LOG_LVL_WARN, "recover",
		"the engine failed a sync in its last run: WAL cut at its last good sync point, "
		"file %" PRIu64 " position %" PRIu64 " (%" PRIu64
		" bytes written after it dropped)",
		seq, pos, dropped);
	return wal_syncmark_remove(e);
}

int wal_recover(struct engine *e)
{
	uint64_t *seqs = NULL;
	int *fds = NULL;
	size_t n = 0;
	uint64_t end = 0;
	bool cut = false;
	int rc;

	rc = list_files(e, &seqs, &n);
	if (rc)
		return rc;
	if (!e->opt.read_only) {
		rc = syncmark_apply(e, seqs, &n);
		if (rc)
			goto out;
	} else {
		bool found;
		rc = wal_syncmark_read(e, &found, &e->ro_cap_seq, &e->ro_cap_pos);
		if (rc)
			goto out;
		e->ro_capped = found;
		while (found && n > 0 && seqs[n - 1] > e->ro_cap_seq)
			n--;
	}
	fds = malloc((n ? n : 1) * sizeof(*fds));
	if (!fds) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		fds[i] = -1;
	/* Open every WAL file before the registries are read: a writer beside a
	 * read-only engine may index and remove a file meanwhile, and then its
	 * frames are in the registry read after (registry.h). */
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		wal_path(e, seqs[i], path, sizeof(path));
		if (i > 0 && seqs[i] != seqs[i - 1] + 1) {
			log_msg(LOG_LVL_ERROR, "recover", "%s: WAL file %" PRIu64 " is missing",
				path, seqs[i - 1] + 1);
			rc = CHRONIK_ECORRUPT;
			goto out;
		}
		fds[i] = open(path, (e->opt.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		/* Beside a live writer: indexed and removed since the listing. */
		if (fds[i] < 0 && !(errno == ENOENT && e->opt.read_only && i + 1 < n)) {
			rc = -errno;
			goto out;
		}
	}
	rc = warm_load(e);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char path[4096];

		wal_path(e, seqs[i], path, sizeof(path));
		if (cut) {
			/* Repair cut the log before this file: set it aside. */
			char aside[4200];
			snprintf(aside, sizeof(aside), "%s.corrupt", path);
			log_msg(LOG_LVL_ERROR, "recover", "%s set aside as %s after repair", path,
				aside);
			close(fds[i]);
			fds[i] = -1;
			if (rename(path, aside) < 0) {
				rc = -errno;
				goto out;
			}
			continue;
		}
		end = 0;
		if (fds[i] < 0) {
			rc = wal_files_push(e, seqs[i], -1);
			if (rc)
				goto out;
			continue;
		}
		rc = scan_file(e, seqs[i], fds[i], i == n - 1, &end, &cut);
		if (rc == 0)
			rc = wal_files_push(e, seqs[i], fds[i]);
		if (rc)
			goto out;
		fds[i] = -1;
	}
	if (cut && fsync_dir(e->dir_fd) < 0)
		log_msg(LOG_LVL_ERROR, "recover", "fsync of the WAL directory failed");
	if (e->nfiles == 0) {
		int fd;
		if (e->opt.read_only)
			goto out;
		rc = wal_file_create(e, 0, &fd);
		if (rc)
			goto out;
		rc = wal_files_push(e, 0, fd);
		if (rc) {
			close(fd);
			goto out;
		}
		e->active_version = WAL_FILE_VERSION;
		end = WAL_FILE_HEADER_SIZE;
	}
	e->active_size = end;
	if (!e->opt.read_only) {
		rc = active_prepare(e);
		if (rc)
			goto out;
		/* Everything recovery kept is durable now (rule 4's start). */
		e->written_seq = e->durable_seq = e->files[e->nfiles - 1].seq;
		e->written_pos = e->durable_pos = e->active_size;
		/* The sealed files found are the indexer's backlog
		 * (back-pressure, commit.c). */
		for (size_t i = 0; i + 1 < e->nfiles; i++) {
			struct stat st;
			if (e->files[i].fd < 0 || fstat(e->files[i].fd, &st) < 0)
				continue;
			e->files[i].bytes = (uint64_t)st.st_size;
			atomic_fetch_add(&e->wal_sealed_bytes, e->files[i].bytes);
		}
	}
	/* The hot indexes grew by doubling while the WAL was read: give the
	 * slack and the abandoned smaller arrays back. */
	for (size_t i = 0; i < e->ntopics; i++)
		for (int32_t j = 0; j < e->topics[i]->nparts; j++) {
			struct partition *p = e->topics[i]->parts[j];
			p->c_next_offset = p->next_offset;
			p->c_raw_size = p->raw_size;
			if (p->n && p->n < p->cap) {
				struct hot_entry *v = realloc(p->idx, p->n * sizeof(*v));
				if (v) {
					p->idx = v;
					p->cap = p->n;
				}
			}
		}
	malloc_trim(0);
out:
	for (size_t i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	free(seqs);
	return rc;
}

/* Read the valid frames of one file from position from on, stopping quietly
 * at the first frame that is not (yet) valid: the writer may be in the
 * middle of it. *end: where the scan stopped. The file is read with pread
 * (frame_reader), never mapped: the writer may truncate it at any moment
 * (a failed group, the torn-tail cut of its open), and a mapping past the
 * new end would kill this process with SIGBUS. */
static int refresh_file(struct engine *e, uint64_t seq, int fd, uint64_t from, uint64_t *end)
{
	struct frame_reader fr;
	struct stat st;
	uint8_t hdr[WAL_FILE_HEADER_SIZE];
	uint64_t hseq, pos = from;
	uint32_t version, salt;
	int rc = 0;

	*end = from;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size <= from)
		return 0;
	if (pos < WAL_FILE_HEADER_SIZE) {
		ssize_t n = frame_reader_pread(fd, hdr, sizeof(hdr), 0);
		if (n < 0)
			return (int)n;
		if (wal_file_header_parse(hdr, (size_t)n, &hseq, &version, &salt) != 0 ||
		    hseq != seq)
			return 0;
		pos = WAL_FILE_HEADER_SIZE;
	}
	frame_reader_init(&fr, fd);
	pthread_rwlock_rdlock(&e->meta_lock);
	for (;;) {
		struct frame_info fi;
		rc = frame_reader_decode(&fr, pos, &fi);
		if (rc != FRAME_VALID) {
			rc = rc < 0 ? rc : 0;
			break;
		}
		if (fi.version == 3) {
			pos += FRAME_SYNC_SIZE;
			continue;
		}
		rc = apply_frame(e, &fi, seq, pos);
		if (rc)
			break;
		pos += fi.frame_len;
	}
	pthread_rwlock_unlock(&e->meta_lock);
	frame_reader_fini(&fr);
	*end = pos;
	return rc == CHRONIK_ECORRUPT ? 0 : rc;
}

int engine_refresh(struct engine *e)
{
	uint64_t *seqs = NULL, end, last;
	size_t n = 0, old_n;
	int rc;

	if (!e->opt.read_only)
		return 0;
	pthread_mutex_lock(&e->refresh_lock);
	rc = meta_refresh(e);
	if (rc == 0 && !e->ro_capped)
		rc = list_files(e, &seqs, &n);
	old_n = e->nfiles;
	last = old_n ? e->files[old_n - 1].seq : 0;
	/* Open the newer files first, then read the registries: a file the
	 * writer indexed and removed meanwhile is in them (registry.h). Missing
	 * files keep their place in e->files with fd -1. */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char path[4096];
		int fd;
		if (e->nfiles && seqs[i] <= last)
			continue;
		pthread_mutex_lock(&e->files_lock);
		while (rc == 0 && e->nfiles && e->files[e->nfiles - 1].seq + 1 < seqs[i])
			rc = wal_files_push(e, e->files[e->nfiles - 1].seq + 1, -1);
		pthread_mutex_unlock(&e->files_lock);
		if (rc)
			break;
		wal_path(e, seqs[i], path, sizeof(path));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno != ENOENT) {
			rc = -errno;
			break;
		}
		pthread_mutex_lock(&e->files_lock);
		rc = wal_files_push(e, seqs[i], fd);
		pthread_mutex_unlock(&e->files_lock);
		if (rc && fd >= 0)
			close(fd);
	}
	if (rc == 0)
		rc = warm_refresh(e);
	if (rc == 0 && old_n && e->files[old_n - 1].fd >= 0) {
		rc = refresh_file(e, last, e->files[old_n - 1].fd, e->active_size, &end);
		e->active_size = end;
	}
	for (size_t i = old_n; rc == 0 && i < e->nfiles; i++) {
		if (e->files[i].fd < 0)
			continue;
		rc = refresh_file(e, e->files[i].seq, e->files[i].fd, 0, &end);
		e->active_size = end;
	}
	pthread_mutex_lock(&e->files_lock);
	wal_files_trim(e);
	pthread_mutex_unlock(&e->files_lock);
	pthread_mutex_unlock(&e->refresh_lock);
	free(seqs);
	return rc;
}
