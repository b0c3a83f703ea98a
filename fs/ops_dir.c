/* ops_dir.c - the namespace: lookup, attributes, directories, topics.
 *
 * Choices (also in README.md, "Mounting"):
 *   - mkdir MNT/<name> creates a topic with the default partition count; a
 *     name breaking Kafka's rule is EINVAL. mkdir inside a topic is EPERM:
 *     partitions cannot be added (the engine has no such operation).
 *   - rmdir MNT/<topic> deletes the topic, although the directory is not
 *     empty: its files are views of the topic, not contents.
 *   - rm -r MNT/<topic> works: it unlinks the files and rmdirs the
 *     partition directories first; those calls succeed without doing
 *     anything (the views cannot be removed on their own, and refusing
 *     them would make rm give up before the topic), then the last rmdir
 *     deletes the topic. So `rm MNT/t/0/data` succeeds and the file stays.
 *   - rename, link, symlink, mknod: EPERM. create of a name that does not
 *     exist: EPERM (the tree has a fixed shape).
 *   - chmod, chown, utimes: accepted, changing nothing.
 *   - No xattr operations: libfuse answers ENOSYS, which the kernel turns
 *     into EOPNOTSUPP once and then stops asking (so a write does not cost
 *     a security.capability lookup).
 *   - A name of 250 characters or more (even past NAME_MAX: FUSE passes
 *     up to 1024) is not a topic name: mkdir EINVAL, lookup ENOENT.
 *
 * Timeouts: the root's entries (topics) have entry timeout 0, so every path
 * walk asks whether the topic still exists; names below a topic are fixed
 * for the topic's life (a recreated topic has new inode numbers) and are
 * cached for a second. Attributes of config.json and of partition files
 * have timeout 0: their size is read fresh on every stat (tail -f).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "fs-private.h"
#include "log.h"
#include "search.h"

static const char *const part_files[3] = { "data", "records.jsonl", "info.json" };
static const enum fs_kind part_kinds[3] = { FS_DATA, FS_JSONL, FS_INFO };

int fs_errno(int err)
{
	if (err >= 0)
		return 0;
	int e = chronik_errno(err);
	return e > 0 ? e : EIO;
}

static struct chronikfs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static double attr_timeout(enum fs_kind k)
{
	switch (k) {
	case FS_ROOT:
	case FS_CONFIG:
	case FS_DATA:
	case FS_JSONL:
	case FS_INFO:
		return 0.0;
	case FS_QUERY:
	case FS_GROUP:
	case FS_GROUPSDIR:
		return 0.0;
	case FS_TOPIC:
	case FS_PART:
	case FS_SEARCHDIR:
		return 1.0;
	}
	return 0.0;
}

static void ts_from_ns(struct timespec *ts, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

int fs_info_render(struct fs_part *fp, char **out, size_t *len)
{
	struct partition_info info;
	struct search_partition_stats ss;
	char *s;
	int n;

	engine_partition_info(fp->p, &info);
	if (search_partition_stats(fp->p, &ss) < 0)
		memset(&ss, 0, sizeof(ss));
	n = asprintf(&s,
		     "{\n"
		     "  \"topic\": \"%s\",\n"
		     "  \"partition\": %" PRId32 ",\n"
		     "  \"log_start_offset\": %" PRId64 ",\n"
		     "  \"next_offset\": %" PRId64 ",\n"
		     "  \"records\": %" PRIu64 ",\n"
		     "  \"raw_start\": %" PRIu64 ",\n"
		     "  \"raw_size\": %" PRIu64 ",\n"
		     "  \"wal_bytes\": %" PRIu64 ",\n"
		     "  \"batches\": %" PRIu64 ",\n"
		     "  \"segments\": %" PRIu64 ",\n"
		     "  \"segment_bytes\": %" PRIu64 ",\n"
		     "  \"index_bytes\": %" PRIu64 ",\n"
		     "  \"unindexed_segments\": %" PRIu64 ",\n"
		     "  \"binary_values\": %" PRIu64 ",\n"
		     "  \"local_bytes\": %" PRIu64 ",\n"
		     "  \"remote_segments\": %" PRIu64 ",\n"
		     "  \"remote_bytes\": %" PRIu64 ",\n"
		     "  \"max_timestamp\": %" PRId64 ",\n"
		     "  \"warm_halted\": %s\n"
		     "}\n",
		     fp->topic->name, fp->index, info.log_start_offset, info.next_offset,
		     info.records, info.raw_start, info.raw_size,
		     info.wal_bytes, info.batches, info.segments, info.segment_bytes,
		     ss.index_bytes, ss.unindexed_segments, ss.binary_values,
		     info.segment_bytes - info.remote_bytes + info.wal_bytes, info.remote_segments,
		     info.remote_bytes, info.max_timestamp, info.warm_halted ? "true" : "false");
	if (n < 0)
		return -ENOMEM;
	*out = s;
	*len = (size_t)n;
	return 0;
}

int fs_config_render(struct chronikfs *fs, struct fs_topic *t, char **out, size_t *len)
{
	char *json, *s;
	int err = engine_topic_config_get(fs->e, t->name, &json);

	if (err < 0)
		return err;
	size_t n = strlen(json);
	s = malloc(n + 2);
	if (!s) {
		free(json);
		return -ENOMEM;
	}
	memcpy(s, json, n);
	s[n++] = '\n';
	s[n] = '\0';
	free(json);
	*out = s;
	*len = n;
	return 0;
}

void fs_fill_attr(struct chronikfs *fs, const struct fs_ino *in, struct fs_topic *t,
		  struct stat *st)
{
	struct partition_info info;
	uint64_t size = 0;
	char *text;
	size_t len;

	memset(st, 0, sizeof(*st));
	st->st_ino = fs_ino_number(in);
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = FS_IO_SIZE;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mount_time;
	if (t)
		engine_partition_info(t->parts[in->part >= 0 ? in->part : 0].p, &info);

	switch (in->kind) {
	case FS_ROOT:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		ts_from_ns(&st->st_mtim, atomic_load(&fs->root_mtime_ns));
		st->st_ctim = st->st_mtim;
		return;
	case FS_TOPIC:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2 + (nlink_t)t->nparts;
		ts_from_ns(&st->st_mtim, info.ctime_ns);
		st->st_ctim = st->st_atim = st->st_mtim;
		return;
	case FS_PART:
	case FS_SEARCHDIR:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		ts_from_ns(&st->st_mtim, info.ctime_ns);
		st->st_ctim = st->st_atim = st->st_mtim;
		return;
	case FS_GROUPSDIR:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return;
	case FS_GROUP:
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		if (fs_group_render(fs, in->slot, &text, &len) == 0) {
			size = len;
			free(text);
		}
		break;
	case FS_QUERY:
		/* Its size is unknown until it is read (direct_io reads to EOF). */
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		ts_from_ns(&st->st_mtim, info.mtime_ns);
		st->st_ctim = st->st_atim = st->st_mtim;
		break;
	case FS_CONFIG: {
		int64_t ns = atomic_load(&t->config_mtime_ns);
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		if (fs_config_render(fs, t, &text, &len) == 0) {
			size = len;
			free(text);
		}
		ts_from_ns(&st->st_mtim, ns ? ns : info.ctime_ns);
		st->st_ctim = st->st_atim = st->st_mtim;
		break;
	}
	case FS_DATA:
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		size = info.raw_size;
		ts_from_ns(&st->st_mtim, info.mtime_ns);
		st->st_ctim = st->st_atim = st->st_mtim;
		break;
	case FS_JSONL: {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		int err = jsonl_view_size(&t->parts[in->part], &size);
		if (err < 0)
			log_msg(LOG_LVL_WARN, "fs", "records.jsonl of %s/%d: %s", t->name, in->part,
				chronik_strerror(err));
		ts_from_ns(&st->st_mtim, info.mtime_ns);
		st->st_ctim = st->st_atim = st->st_mtim;
		break;
	}
	case FS_INFO:
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		if (fs_info_render(&t->parts[in->part], &text, &len) == 0) {
			size = len;
			free(text);
		}
		ts_from_ns(&st->st_mtim, info.mtime_ns);
		st->st_ctim = st->st_atim = st->st_mtim;
		break;
	}
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
}

/* A topic was created or deleted here: the root directory changed. */
static void root_touch(struct chronikfs *fs)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	atomic_store(&fs->root_mtime_ns, (long long)now.tv_sec * 1000000000 + now.tv_nsec);
}

/* Resolve ino to its topic (referenced; NULL for the root). -ENOENT when
 * the topic is gone or the partition does not exist. */
static int resolve(struct chronikfs *fs, fuse_ino_t ino, struct fs_ino *in, struct fs_topic **t)
{
	*t = NULL;
	if (fs_ino_decode(ino, in) < 0)
		return -ENOENT;
	if (in->kind == FS_ROOT || in->kind == FS_GROUPSDIR)
		return 0;
	if (in->kind == FS_GROUP) {
		char *text;
		size_t len;
		int err = fs_group_render(fs, in->slot, &text, &len);
		if (err == 0)
			free(text);
		return err == 0 ? 0 : -ENOENT;
	}
	*t = fs_topic_get(fs, in->tid);
	if (!*t)
		return -ENOENT;
	if (in->part >= (*t)->nparts) {
		fs_topic_unref(*t);
		*t = NULL;
		return -ENOENT;
	}
	return 0;
}

/* "0", "1", ... without sign or leading zero; -1 if not such a name. */
static int32_t parse_partition(const char *name)
{
	int64_t v = 0;

	if (!*name || (name[0] == '0' && name[1]))
		return -1;
	for (const char *c = name; *c; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		v = v * 10 + (*c - '0');
		if (v > INT32_MAX)
			return -1;
	}
	return (int32_t)v;
}

/* The child `name` of directory `parent`: fills *child; *t referenced. */
static int child_of(struct chronikfs *fs, const struct fs_ino *parent, struct fs_topic *pt,
		    const char *name, struct fs_ino *child, struct fs_topic **t)
{
	*t = NULL;
	switch (parent->kind) {
	case FS_ROOT: {
		if (strcmp(name, FS_GROUPS_DIR) == 0) {
			child->kind = FS_GROUPSDIR;
			child->tid = 0;
			child->part = -1;
			return 0;
		}
		int err = fs_topic_lookup(fs, name, t);
		if (err < 0)
			return err;
		child->kind = FS_TOPIC;
		child->tid = (*t)->tid;
		child->part = -1;
		return 0;
	}
	case FS_TOPIC: {
		int32_t p = parse_partition(name);
		child->tid = parent->tid;
		if (strcmp(name, "config.json") == 0) {
			child->kind = FS_CONFIG;
			child->part = -1;
		} else if (strcmp(name, "search") == 0) {
			child->kind = FS_SEARCHDIR;
			child->part = -1;
		} else if (p >= 0 && p < pt->nparts) {
			child->kind = FS_PART;
			child->part = p;
		} else {
			return -ENOENT;
		}
		fs_topic_ref(pt);
		*t = pt;
		return 0;
	}
	case FS_GROUPSDIR:
		return fs_group_child(fs, name, child);
	case FS_SEARCHDIR:
		child->kind = FS_QUERY;
		child->tid = parent->tid;
		child->part = -1;
		child->slot = fs_query_slot(fs, parent->tid, parent->part, name);
		fs_topic_ref(pt);
		*t = pt;
		return 0;
	case FS_PART:
		if (strcmp(name, "search") == 0) {
			child->kind = FS_SEARCHDIR;
			child->tid = parent->tid;
			child->part = parent->part;
			fs_topic_ref(pt);
			*t = pt;
			return 0;
		}
		for (int i = 0; i < 3; i++) {
			if (strcmp(name, part_files[i]) == 0) {
				child->kind = part_kinds[i];
				child->tid = parent->tid;
				child->part = parent->part;
				fs_topic_ref(pt);
				*t = pt;
				return 0;
			}
		}
		return -ENOENT;
	default:
		return -ENOTDIR;
	}
}

static void reply_entry(fuse_req_t req, struct chronikfs *fs, const struct fs_ino *in,
			struct fs_topic *t)
{
	struct fuse_entry_param ep;

	memset(&ep, 0, sizeof(ep));
	ep.ino = fs_ino_number(in);
	fs_fill_attr(fs, in, t, &ep.attr);
	ep.attr_timeout = attr_timeout(in->kind);
	ep.entry_timeout =
		in->kind == FS_TOPIC || in->kind == FS_QUERY || in->kind == FS_GROUP ? 0.0 : 1.0;
	fuse_reply_entry(req, &ep);
}

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct chronikfs *fs = req_fs(req);
	struct fs_ino pin, cin;
	struct fs_topic *pt, *ct;
	int err = resolve(fs, parent, &pin, &pt);

	if (err == 0)
		err = child_of(fs, &pin, pt, name, &cin, &ct);
	if (err < 0) {
		fuse_reply_err(req, -err);
	} else {
		reply_entry(req, fs, &cin, ct);
		fs_topic_unref(ct);
	}
	fs_topic_unref(pt);
}

void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct chronikfs *fs = req_fs(req);
	struct fs_ino in;
	struct fs_topic *t;
	struct stat st;
	int err = resolve(fs, ino, &in, &t);

	(void)fi;
	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	fs_fill_attr(fs, &in, t, &st);
	fuse_reply_attr(req, &st, attr_timeout(in.kind));
	fs_topic_unref(t);
}

void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi)
{
	struct chronikfs *fs = req_fs(req);
	struct fs_ino in;
	struct fs_topic *t;
	struct stat st;
	int err = resolve(fs, ino, &in, &t);

	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	fs_fill_attr(fs, &in, t, &st);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (in.kind == FS_CONFIG) {
			/* an open file's buffer is cut (applied on flush); without
			 * an open file (truncate(2) by path) there is nothing to
			 * cut: only the current size is accepted */
			struct fs_handle *h = fi ? (struct fs_handle *)(uintptr_t)fi->fh : NULL;
			if (h) {
				pthread_mutex_lock(&h->lock);
				if ((size_t)attr->st_size > h->text_len) {
					err = -EINVAL;
				} else {
					h->text_len = (size_t)attr->st_size;
					h->dirty = true;
					st.st_size = attr->st_size;
				}
				pthread_mutex_unlock(&h->lock);
			} else if (attr->st_size != st.st_size) {
				err = -EPERM;
			}
		} else if (attr->st_size != st.st_size) {
			/* a log is never truncated nor extended with holes */
			err = -EPERM;
		}
	}
	if (err < 0)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, attr_timeout(in.kind));
	fs_topic_unref(t);
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct chronikfs *fs = req_fs(req);
	struct fs_ino pin, cin;
	struct fs_topic *pt, *ct = NULL;
	int err = resolve(fs, parent, &pin, &pt);

	(void)mode;
	if (err < 0)
		goto reply;
	if (pin.kind != FS_ROOT) {
		/* an existing name says so; a new one cannot be made */
		err = child_of(fs, &pin, pt, name, &cin, &ct);
		err = err == 0 ? -EEXIST : -EPERM;
		goto reply;
	}
	if (strcmp(name, FS_GROUPS_DIR) == 0) {
		err = -EEXIST;
		goto reply;
	}
	if (!engine_topic_name_valid(name)) {
		err = -EINVAL;
		goto reply;
	}
	err = engine_topic_create(fs->e, name, 0, NULL);
	if (err < 0) {
		err = -fs_errno(err);
		goto reply;
	}
	root_touch(fs);
	err = child_of(fs, &pin, pt, name, &cin, &ct);
	if (err == 0)
		log_msg(LOG_LVL_INFO, "fs", "topic %s created (%" PRId32 " partitions)", name,
			ct->nparts);
reply:
	if (err < 0)
		fuse_reply_err(req, -err);
	else
		reply_entry(req, fs, &cin, ct);
	fs_topic_unref(ct);
	fs_topic_unref(pt);
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct chronikfs *fs = req_fs(req);
	struct fs_ino pin, cin;
	struct fs_topic *pt, *ct = NULL;
	int err = resolve(fs, parent, &pin, &pt);

	if (err == 0)
		err = child_of(fs, &pin, pt, name, &cin, &ct);
	if (err < 0)
		goto reply;
	if (cin.kind == FS_TOPIC) {
		err = engine_topic_delete(fs->e, ct->name);
		if (err == 0 || err == CHRONIK_ENOTOPIC) {
			fs_topic_forget(fs, ct);
			root_touch(fs);
		}
		if (err == 0)
			log_msg(LOG_LVL_INFO, "fs", "topic %s deleted", ct->name);
		err = -fs_errno(err);
	} else if (cin.kind == FS_PART || cin.kind == FS_SEARCHDIR) {
		err = 0; /* part of rm -r of the topic: see the top of this file */
	} else if (cin.kind == FS_GROUPSDIR) {
		err = -EPERM;
	} else {
		err = -ENOTDIR;
	}
reply:
	fuse_reply_err(req, -err);
	fs_topic_unref(ct);
	fs_topic_unref(pt);
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct chronikfs *fs = req_fs(req);
	struct fs_ino pin, cin;
	struct fs_topic *pt, *ct = NULL;
	int err = resolve(fs, parent, &pin, &pt);

	if (err == 0)
		err = child_of(fs, &pin, pt, name, &cin, &ct);
	if (err == 0 && (cin.kind == FS_TOPIC || cin.kind == FS_PART || cin.kind == FS_SEARCHDIR ||
			 cin.kind == FS_GROUPSDIR))
		err = -EISDIR;
	/* else: a view file; accepted and kept (see the top of this file) */
	fuse_reply_err(req, -err);
	fs_topic_unref(ct);
	fs_topic_unref(pt);
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	fuse_reply_err(req, EPERM);
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	fuse_reply_err(req, EPERM);
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	fuse_reply_err(req, EPERM);
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	fuse_reply_err(req, EPERM);
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	fuse_reply_err(req, EPERM);
}

/* ---- directory listings ----------------------------------------------------- */

static int dir_add(struct fs_dir *d, size_t *cap, const char *name, fuse_ino_t ino, mode_t type)
{
	if (d->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct fs_dirent *ne = realloc(d->ents, ncap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		d->ents = ne;
		*cap = ncap;
	}
	d->ents[d->n].name = strdup(name);
	if (!d->ents[d->n].name)
		return -ENOMEM;
	d->ents[d->n].ino = ino;
	d->ents[d->n].type = type;
	d->n++;
	return 0;
}

static void dir_free(struct fs_dir *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	free(d);
}

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct chronikfs *fs = req_fs(req);
	struct fs_ino in;
	struct fs_topic *t;
	struct fs_dir *d;
	size_t cap = 0;
	char buf[16];
	int err = resolve(fs, ino, &in, &t);

	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		err = -ENOMEM;
		goto out;
	}
	err = dir_add(d, &cap, ".", ino, S_IFDIR);
	if (err == 0)
		err = dir_add(d, &cap, "..", FUSE_ROOT_ID, S_IFDIR);
	if (err < 0)
		goto out;
	switch (in.kind) {
	case FS_ROOT: {
		char **names;
		size_t n;
		err = engine_topic_list(fs->e, &names, &n);
		if (err < 0) {
			err = -fs_errno(err);
			break;
		}
		err = dir_add(d, &cap, FS_GROUPS_DIR, fs_ino_make(FS_GROUPSDIR, 0, -1), S_IFDIR);
		for (size_t i = 0; i < n && err == 0; i++) {
			struct fs_topic *ct;
			if (strcmp(names[i], FS_GROUPS_DIR) == 0)
				continue; /* shadowed (fs/groups_view.c) */
			if (fs_topic_lookup(fs, names[i], &ct) < 0)
				continue; /* deleted meanwhile */
			err = dir_add(d, &cap, names[i], fs_ino_make(FS_TOPIC, ct->tid, -1),
				      S_IFDIR);
			fs_topic_unref(ct);
		}
		engine_strv_free(names, n);
		break;
	}
	case FS_TOPIC:
		err = dir_add(d, &cap, "config.json", fs_ino_make(FS_CONFIG, in.tid, -1), S_IFREG);
		if (err == 0)
			err = dir_add(d, &cap, "search", fs_ino_make(FS_SEARCHDIR, in.tid, -1),
				      S_IFDIR);
		for (int32_t p = 0; p < t->nparts && err == 0; p++) {
			snprintf(buf, sizeof(buf), "%" PRId32, p);
			err = dir_add(d, &cap, buf, fs_ino_make(FS_PART, in.tid, p), S_IFDIR);
		}
		break;
	case FS_PART:
		for (int i = 0; i < 3 && err == 0; i++)
			err = dir_add(d, &cap, part_files[i],
				      fs_ino_make(part_kinds[i], in.tid, in.part), S_IFREG);
		if (err == 0)
			err = dir_add(d, &cap, "search", fs_ino_make(FS_SEARCHDIR, in.tid, in.part),
				      S_IFDIR);
		break;
	case FS_SEARCHDIR:
		break; /* queries are named, never listed */
	case FS_GROUPSDIR: {
		char **names;
		size_t n;
		err = engine_group_list(fs->e, &names, &n);
		if (err < 0) {
			err = -fs_errno(err);
			break;
		}
		for (size_t i = 0; i < n && err == 0; i++) {
			char file[260];
			if (!fs_group_name_ok(names[i]))
				continue;
			struct fs_ino gin = { .kind = FS_GROUP,
					      .tid = 0,
					      .part = -1,
					      .slot = fs_query_slot(fs, 0, -1, names[i]) };
			snprintf(file, sizeof(file), "%s.json", names[i]);
			err = dir_add(d, &cap, file, fs_ino_number(&gin), S_IFREG);
		}
		engine_strv_free(names, n);
		break;
	}
	default:
		err = -ENOTDIR;
		break;
	}
out:
	if (err < 0) {
		dir_free(d);
		fuse_reply_err(req, -err);
	} else {
		fi->fh = (uint64_t)(uintptr_t)d;
		if (fuse_reply_open(req, fi) == -ENOENT)
			dir_free(d); /* the opener was interrupted: no releasedir will come */
	}
	fs_topic_unref(t);
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat st;
		memset(&st, 0, sizeof(st));
		st.st_ino = d->ents[i].ino;
		st.st_mode = d->ents[i].type;
		size_t n = fuse_add_direntry(req, buf + used, size - used, d->ents[i].name, &st,
					     (off_t)(i + 1));
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	dir_free((struct fs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct chronikfs *fs = req_fs(req);
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	if (!fs->data_dir || statvfs(fs->data_dir, &sv) < 0) {
		memset(&sv, 0, sizeof(sv));
		sv.f_bsize = FS_IO_SIZE;
		sv.f_frsize = 4096;
	}
	sv.f_namemax = 249;
	fuse_reply_statfs(req, &sv);
}
