/* test_meta.c - consumer-group offsets in the metadata log (meta.c):
 *   - one engine_group_offsets_commit of many partitions costs one
 *     fdatasync of meta.log (counted by this test's own fdatasync, which
 *     the engine linked into it calls);
 *   - offsets committed over and over keep meta.log bounded (it is
 *     compacted while running) and survive a restart;
 *   - one commit of many partitions is one event (one frame): damage in
 *     the last frame is a torn tail, damage followed by one intact event
 *     is damage and fails the open. */
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "frame.h"
#include "testutil.h"

#define NPART 100
#define ROUNDS 200

static int meta_syncs;

static bool is_meta_log(int fd)
{
	char link[64], path[4096];
	ssize_t n;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 9)
		return false;
	path[n] = 0;
	return strcmp(path + n - 9, "/meta.log") == 0;
}

int fdatasync(int fd)
{
	static int (*real)(int);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "fdatasync");
	if (is_meta_log(fd))
		__atomic_fetch_add(&meta_syncs, 1, __ATOMIC_RELAXED);
	return real(fd);
}

struct frames {
	uint64_t pos[8192];
	uint64_t end[8192];
	int n;
};

static int collect(void *arg, uint64_t pos, enum frame_status st, const struct frame_info *fi)
{
	struct frames *f = arg;
	if (st == FRAME_VALID && f->n < 8192) {
		f->pos[f->n] = pos;
		f->end[f->n] = pos + fi->frame_len;
		f->n++;
	}
	return f->n >= 8192;
}

static int commit_round(struct engine *e, int64_t base)
{
	struct engine_offset_commit c[NPART];
	for (int i = 0; i < NPART; i++) {
		c[i] = (struct engine_offset_commit){
			.topic = "t", .partition = i, .offset = base + i, .metadata = "m"
		};
	}
	return engine_group_offsets_commit(e, "g", c, NPART);
}

static int offsets_are(struct engine *e, int64_t base)
{
	int bad = 0;
	for (int i = 0; i < NPART; i++) {
		int64_t off;
		char *md = NULL;
		if (engine_group_offset_fetch(e, "g", "t", i, &off, &md) != 0 || off != base + i ||
		    !md || strcmp(md, "m") != 0)
			bad++;
		free(md);
	}
	return bad;
}

static void zero_range(const char *path, uint64_t pos, size_t len)
{
	int fd = open(path, O_RDWR);
	uint8_t zeros[64] = { 0 };
	if (fd < 0 || len > sizeof(zeros) || pwrite(fd, zeros, len, (off_t)pos) != (ssize_t)len)
		bail("zero_range");
	close(fd);
}

int main(void)
{
	char *dir = tmpdir_new("meta");
	char meta[4200];
	struct engine *e;
	struct frames *f = calloc(1, sizeof(*f));
	int rc, bad = 0;

	snprintf(meta, sizeof(meta), "%s/meta.log", dir);
	e = open_or_bail(dir, NULL);
	meta_syncs = 0;
	rc = commit_round(e, 0);
	ok(rc == 0 && meta_syncs == 1, "%d partitions committed with %d fdatasync of meta.log",
	   NPART, meta_syncs);
	ok(offsets_are(e, 0) == 0, "and each partition's offset is there");

	for (int r = 1; r < ROUNDS; r++)
		if (commit_round(e, (int64_t)r * 1000) != 0)
			bad++;
	ok(bad == 0, "%d commits of %d partitions", ROUNDS, NPART);
	if (wal_file_walk(meta, collect, f) != 0)
		bail("walk meta.log");
	/* Uncompacted it would hold ROUNDS events; compacted, a snapshot's
	 * NPART single-offset events and the rounds since. */
	ok(f->n < ROUNDS,
	   "meta.log stays bounded while running: %d frames for %d rounds of %d offsets", f->n,
	   ROUNDS, NPART);
	engine_close(e);

	e = open_or_bail(dir, NULL);
	ok(offsets_are(e, (int64_t)(ROUNDS - 1) * 1000) == 0,
	   "after a restart every partition has its last offset");

	engine_close(e);
	tmpdir_free(dir);

	/* A fresh log (no compaction in the way): two commits, two events;
	 * the last one loses bytes. */
	dir = tmpdir_new("meta");
	snprintf(meta, sizeof(meta), "%s/meta.log", dir);
	e = open_or_bail(dir, NULL);
	if (commit_round(e, (int64_t)(ROUNDS - 1) * 1000) != 0 || commit_round(e, 7000000) != 0)
		bail("commit");
	engine_close(e);
	f->n = 0;
	if (wal_file_walk(meta, collect, f) != 0 || f->n != 2)
		bail("walk meta.log: %d frames, want 2 (one per commit)", f->n);
	zero_range(meta, f->pos[1] + 30, 20);
	rc = engine_open(dir, NULL, &e);
	ok(rc == 0, "a commit whose event is damaged at the end of the log is a torn tail (%s)",
	   chronik_strerror(rc));
	if (rc == 0) {
		ok(offsets_are(e, (int64_t)(ROUNDS - 1) * 1000) == 0,
		   "the offsets before it are kept, the torn commit's are not");
		/* Damage followed by one intact event is damage. */
		if (commit_round(e, 8000000) != 0 || commit_round(e, 9000000) != 0)
			bail("commit");
		engine_close(e);
		f->n = 0;
		if (wal_file_walk(meta, collect, f) != 0 || f->n != 3)
			bail("walk meta.log: %d frames, want 3", f->n);
		zero_range(meta, f->pos[1] + 30, 20);
		rc = engine_open(dir, NULL, &e);
		ok(rc == CHRONIK_ECORRUPT,
		   "damage followed by one intact commit fails the open (%s)",
		   chronik_strerror(rc));
		if (rc == 0)
			engine_close(e);
	} else {
		ok(0, "the offsets before it are kept, the torn commit's are not");
		ok(0, "damage followed by one intact commit fails the open");
	}
	free(f);
	tmpdir_free(dir);
	return tap_exit();
}
