/* fs-private.h - what the files of fs/ share. Not installed, not used by
 * anything outside fs/ (tests use chronikfs.h).
 */
#ifndef CHRONIK_FS_PRIVATE_H
#define CHRONIK_FS_PRIVATE_H

/* 3.12 or later: below it, fuse_session_loop_mt() is the 3.2 entry point,
 * which reads the opaque fuse_loop_config of fuse_loop_cfg_create() as the
 * old public struct (its version tag as clone_fd, its clone_fd as
 * max_idle_threads = 0): every worker then clones /dev/fuse and exits after
 * one request, so each request cost a thread. */
#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "chronikfs.h"
#include "engine.h"
#include "lines.h"

/* Reads and writes go up to 1 MiB per request; st_blksize says so too. */
#define FS_IO_SIZE (1u << 20)

/* ---- inode numbers (fs/inode.c) ---------------------------------------------
 *
 *   1                          the root
 *   2                          the .groups directory (fs/groups_view.c)
 *   1 << 63 | S                a group file .groups/<group>.json: slot S
 *                              of the query table (topic id 0), which
 *                              names the group
 *   tid << 32 | 0              a topic directory
 *   tid << 32 | 1              its config.json
 *   tid << 32 | 2              its search/ directory (fs/search_view.c)
 *   tid << 32 | (N + 1) << 3   partition directory N
 *            ... | 1           .../N/data
 *            ... | 2           .../N/records.jsonl
 *            ... | 3           .../N/info.json
 *            ... | 4           .../N/search/
 *   1 << 63 | tid << 32 | S    a query file search/<query> (of the topic or
 *                              of a partition): slot S of the mount's
 *                              query table, which names the query
 *
 * tid is a topic id this mount assigns when it first sees a topic (1, 2, ...,
 * never reused), so a topic deleted and created again gets new inode numbers
 * and stale handles on the old one answer ENOENT.
 */
enum fs_kind {
	FS_ROOT,
	FS_TOPIC,
	FS_CONFIG,
	FS_PART,
	FS_DATA,
	FS_JSONL,
	FS_INFO,
	FS_SEARCHDIR, /* part -1: the topic's */
	FS_QUERY, /* slot: its query table entry */
	FS_GROUPSDIR, /* .groups at the root */
	FS_GROUP, /* .groups/<group>.json; slot: its query table entry (tid 0) */
};

struct fs_ino {
	enum fs_kind kind;
	uint32_t tid;
	int32_t part; /* -1 unless FS_PART and below */
	uint32_t slot; /* FS_QUERY only */
};

fuse_ino_t fs_ino_make(enum fs_kind kind, uint32_t tid, int32_t part);
/* The number of in (fs_ino_make, or a query file's). */
fuse_ino_t fs_ino_number(const struct fs_ino *in);
/* 0 or -ENOENT for a number this scheme never hands out. */
int fs_ino_decode(fuse_ino_t ino, struct fs_ino *out);

/* ---- the JSON Lines view of one partition (fs/jsonl_view.c) --------------- */

/* A mark: the record at `offset` starts at byte `pos` of records.jsonl. */
struct jsonl_mark {
	uint64_t pos;
	int64_t offset;
};

/* Counting state: records.jsonl's size is the rendered length of every
 * record counted so far; it is brought up to the partition's next offset
 * whenever someone stats, opens or reads the file (nothing is spent on it
 * while nobody uses the view). Guarded by lock. */
struct jsonl_view {
	pthread_mutex_t lock;
	struct engine_cursor *cur; /* counting cursor; NULL until first use */
	int64_t counted; /* records below this offset are counted */
	uint64_t size; /* rendered bytes of the counted records */
	struct jsonl_mark *marks; /* ascending pos; one per >= 64 KiB of view */
	size_t nmarks, cap;
	char *scratch; /* render buffer for counting */
	size_t scratch_cap;
};

/* ---- topics known to this mount (fs/inode.c) ------------------------------ */

struct fs_part {
	struct fs_topic *topic;
	int32_t index;
	struct partition *p; /* engine reference, held for the topic's life */
	struct jsonl_view jv;
};

/* A topic as this mount knows it: shared by the table and open handles,
 * freed on the last fs_topic_unref. name, tid, nparts and parts[].p never
 * change. */
struct fs_topic {
	atomic_int refs;
	uint32_t tid;
	char *name;
	atomic_llong config_mtime_ns; /* last config.json change made here, 0 = none */
	int32_t nparts;
	struct fs_part parts[];
};

struct fs_table {
	pthread_mutex_t lock;
	struct fs_topic **slots; /* indexed by tid; NULL = gone */
	size_t cap;
	uint32_t next_tid;
};

/* ---- open files (fs/ops_file.c) ------------------------------------------- */

struct fs_handle {
	struct fs_handle *prev, *next; /* chronikfs.handles, under handles_lock */
	pthread_mutex_t lock; /* one request at a time on this handle */
	enum fs_kind kind;
	struct fs_topic *topic; /* referenced */
	struct fs_part *part; /* in topic, or NULL for config.json */
	int flags; /* open(2) flags */
	/* data / records.jsonl: a trailing line without its newline yet */
	struct fs_lines lines;
	uint64_t next_off; /* where a non-O_APPEND writer's next write lands */
	bool wrote;
	/* data reads: the last read ended at kernel offset data_kend, and the
	 * bytes it returned ran data_skip bytes ahead of their stable raw
	 * positions (bytes before the log start or removed by compaction were
	 * passed over); a read at data_kend continues that stream (design.md,
	 * the data contract). data_cont is false before the first read. */
	uint64_t data_kend, data_skip;
	bool data_cont;
	/* data reads: the stream's reader (created by the first read), so a
	 * sequential read goes on where the last one stopped */
	struct engine_raw_reader *data_rd;
	/* records.jsonl reads: a cursor positioned at view byte rpos, with the
	 * unread rest of the last rendered record in carry[carry_off, carry_len) */
	struct engine_cursor *rcur;
	uint64_t rpos;
	char *carry;
	size_t carry_off, carry_len, carry_cap;
	/* info.json and config.json: the file's content for this handle */
	char *text;
	size_t text_len, text_cap;
	bool dirty; /* config.json written: apply on flush */
	bool invalid; /* config.json holds something that is not a JSON object */
};

/* ---- directory handles (fs/ops_dir.c) ------------------------------------- */

struct fs_dirent {
	char *name;
	fuse_ino_t ino;
	mode_t type;
};

struct fs_dir {
	struct fs_dirent *ents;
	size_t n;
};

/* ---- search/ query files (fs/search_view.c) ------------------------------- */

/* Query files named so far: a lookup of search/<query> takes a slot (the
 * same one again for the same topic, partition and query text), the
 * oldest slot being reused when all are taken. A slot's id, the low 32
 * bits of its inode number, is its index (low FS_QUERY_SLOT_BITS bits)
 * and its generation above them, which each reuse advances: an inode of
 * a reused slot then answers ENOENT, never the slot's new query
 * (fs_query_slot_get). Guarded by lock. */
#define FS_QUERY_SLOT_BITS 10
#define FS_QUERY_SLOTS (1u << FS_QUERY_SLOT_BITS)
struct fs_query_slot {
	uint32_t tid; /* 0 = a group file's (fs/groups_view.c), or free (text NULL) */
	int32_t part; /* -1 = the whole topic */
	uint32_t gen; /* < 2^(32 - FS_QUERY_SLOT_BITS) */
	char *text;
};
struct fs_queries {
	pthread_mutex_t lock;
	struct fs_query_slot slots[FS_QUERY_SLOTS];
	uint32_t next;
};
void fs_queries_init(struct fs_queries *q);
void fs_queries_fini(struct fs_queries *q);
/* The slot of (tid, part, text), taken if need be. */
uint32_t fs_query_slot(struct chronikfs *fs, uint32_t tid, int32_t part, const char *text);
/* The slot of an id fs_query_slot returned, NULL when it has been reused
 * since or is free. lock held. */
struct fs_query_slot *fs_query_slot_get(struct fs_queries *q, uint32_t id);
/* Run the query of slot (which must still be tid's) and render every
 * matching record as a records.jsonl line: *out malloc'd. -ENOENT (slot
 * reused), -EINVAL (bad query, logged), or another error. */
int fs_query_render(struct chronikfs *fs, struct fs_topic *t, uint32_t slot, char **out,
		    size_t *len);

/* ---- .groups/ (fs/groups_view.c) ------------------------------------------ */

#define FS_GROUPS_DIR ".groups"
/* May group be listed as .groups/<group>.json? */
bool fs_group_name_ok(const char *group);
/* The file `name` in .groups: *child filled, or -ENOENT (not
 * <group>.json of a group with committed offsets). */
int fs_group_child(struct chronikfs *fs, const char *name, struct fs_ino *child);
/* The content of the group file of slot: *out malloc'd. -ENOENT when the
 * slot was reused or the group has no committed offset left. */
int fs_group_render(struct chronikfs *fs, uint32_t slot, char **out, size_t *len);

/* ---- the filesystem -------------------------------------------------------- */

/* Partitions that grew, handed from the engine's commit thread (the append
 * listener) to the notifier thread. Guarded by lock. */
struct fs_notify {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct chronikfs *fs; /* NULL once the mount is closing */
	struct partition **queue; /* referenced, no duplicates */
	size_t len, cap;
	bool stop;
};

struct chronikfs {
	struct engine *e;
	struct fuse_session *se;
	char *mountpoint;
	char *data_dir; /* for statfs; may be NULL */
	uid_t uid;
	gid_t gid;
	struct timespec mount_time;
	/* the root's mtime and ctime: the last topic mkdir/rmdir made through
	 * this mount, or mount_time until then */
	atomic_llong root_mtime_ns;
	struct fs_table table;
	struct fs_queries queries;
	unsigned max_read; /* -o max_read=N, 0 if not given; init repeats it */

	pthread_mutex_t handles_lock;
	struct fs_handle handles; /* list head of open files */

	struct fs_notify *notify; /* see fs/mount.c */
	bool notifier_started;
	pthread_t notifier;

	/* chronikfs_run / chronikfs_stop */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond; /* running went false */
	bool running;
	bool stop_requested;
	pthread_t run_thread;
};

/* fs/inode.c */
void fs_table_init(struct fs_table *t);
void fs_table_fini(struct fs_table *t);
/* The topic called name, checked against the engine (a topic deleted and
 * recreated behind this mount's back gets a new tid). Referenced.
 * -ENOENT if the engine has no such topic. */
int fs_topic_lookup(struct chronikfs *fs, const char *name, struct fs_topic **out);
/* The topic with id tid if this mount still has it, referenced; or NULL. */
struct fs_topic *fs_topic_get(struct chronikfs *fs, uint32_t tid);
void fs_topic_ref(struct fs_topic *t);
void fs_topic_unref(struct fs_topic *t);
/* Drop t from the table (after the topic was deleted). */
void fs_topic_forget(struct chronikfs *fs, struct fs_topic *t);
/* The inode numbers of the files of engine partition p if this mount knows
 * it: 1 and fills ino[3] (data, records.jsonl, info.json), else 0. */
int fs_partition_inodes(struct chronikfs *fs, struct partition *p, fuse_ino_t ino[3]);

/* fs/jsonl_view.c */
void jsonl_view_init(struct jsonl_view *v);
void jsonl_view_fini(struct jsonl_view *v);
/* Count up to the partition's current end; *size = the view's size. */
int jsonl_view_size(struct fs_part *fp, uint64_t *size);
/* Fill buf with up to len view bytes from pos through handle h's cursor.
 * Returns bytes (0 at or past the end) or <0. */
ssize_t jsonl_view_read(struct fs_part *fp, struct fs_handle *h, uint64_t pos, char *buf,
			size_t len);
void jsonl_view_handle_fini(struct fs_handle *h);

/* fs/ops_dir.c and fs/ops_file.c: the request handlers */
void fs_fill_attr(struct chronikfs *fs, const struct fs_ino *in, struct fs_topic *t,
		  struct stat *st);
int fs_info_render(struct fs_part *fp, char **out, size_t *len);
int fs_config_render(struct chronikfs *fs, struct fs_topic *t, char **out, size_t *len);
/* A handle's pending partial line, appended as if newline-terminated. */
int fs_handle_flush_pending(struct chronikfs *fs, struct fs_handle *h);
/* Free a handle already taken off the list. */
void fs_handle_free(struct fs_handle *h);

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi);
void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags);
void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi);
void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_statfs(fuse_req_t req, fuse_ino_t ino);

void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi);
void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* A positive errno for a chronik error (fs/ops_dir.c). */
int fs_errno(int err);

#endif
