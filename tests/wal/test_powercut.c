/* test_powercut.c - what a power cut leaves, recovered under fsync every.
 *
 * The engine runs under the faultfs shim with recording on (faultfs.c,
 * "RECORDING"): every write, ftruncate, fsync/fdatasync, rename and unlink
 * of the data directory's files is logged in the order it took effect.
 * Three threads append numbered records ("T-i", each waiting for its ack
 * before the next) to a topic of two partitions, in WAL files of 8 KiB so
 * that rotation happens, and one of them creates a second topic half-way.
 * After each acknowledged operation the test notes how many records the
 * log held: that operation's fsync is among them.
 *
 * Then, for a cut after each record k (every k, or a stride when there are
 * many) and several subsets, it builds into a fresh directory what the disk
 * could hold after a power cut there. The model, per file:
 *   - what a completed fsync/fdatasync of the file covered is on disk (the
 *     file's image as of its last sync before the cut);
 *   - of the writes and truncations after that sync (before the cut), any
 *     subset may be on disk, in any combination, and an included write may
 *     be torn (only a prefix of it is there): subset 0 keeps none of them
 *     (only the fsynced prefix), subset 1 all of them (a process crash),
 *     the others a random seeded choice;
 *   - creating, renaming and unlinking a file take effect when they
 *     happen (the engine fsyncs the directory right after each, so the
 *     model trusts the directory; it tests the file contents).
 * The engine then opens the directory (fsync every) and must:
 *   - succeed;
 *   - hold every append acknowledged before the cut, and the second topic
 *     if its creation returned before the cut;
 *   - hold, per partition, dense offsets from 0, and per thread exactly the
 *     records 0..m-1 for some m: nothing after a hole is counted (records
 *     of one thread are in WAL order, so a hole would show as a gap);
 *   - verify clean and close cleanly.
 * The seed is fixed (CHRONIK_POWERCUT_SEED overrides it) so a failure can
 * be replayed.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

#include "log.h"
#include "testutil.h"

#define THREADS 3
#define PER_THREAD 200
#define SUBSETS 4
#define MAX_CUTS 400

typedef int (*rec_start_fn)(const char *log_path, const char *dir);
typedef void (*rec_stop_fn)(void);
typedef unsigned long (*rec_count_fn)(void);
static rec_start_fn rec_start;
static rec_stop_fn rec_stop;
static rec_count_fn rec_count;

/* ---- the workload ---- */

static struct engine *eng;
static unsigned long ack[THREADS][PER_THREAD]; /* record count at the ack; 0 = failed */
static unsigned long ack_topic_t, ack_topic_u;
static int append_failures;

struct worker {
	int tid;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct partition *p = part_or_bail(eng, "t", w->tid % 2);
	char line[64];

	for (int i = 0; i < PER_THREAD; i++) {
		/* a few longer values, so groups and files fill unevenly */
		int pad = (i * 7 + w->tid * 13) % 5 == 0 ? 300 : 0;
		int n = snprintf(line, sizeof(line) - 1, "%d-%d", w->tid, i);
		char buf[512];
		int64_t base;
		memcpy(buf, line, (size_t)n);
		memset(buf + n, 'x', (size_t)pad);
		buf[n + pad] = '\n';
		if (engine_append_lines(p, buf, (size_t)(n + pad + 1), &base) == 0)
			ack[w->tid][i] = rec_count();
		else
			__atomic_add_fetch(&append_failures, 1, __ATOMIC_SEQ_CST);
		if (w->tid == 0 && i == PER_THREAD / 2 &&
		    engine_topic_create(eng, "u", 1, NULL) == 0)
			ack_topic_u = rec_count();
	}
	engine_partition_unref(p);
	return NULL;
}

/* ---- the record ---- */

struct op {
	char type;
	char *p1, *p2;
	uint64_t pos, len;
	const uint8_t *data;
};

static struct op *ops;
static size_t nops;
static uint8_t *rec_buf;

static void record_load(const char *path)
{
	FILE *f = fopen(path, "rb");
	size_t size, at = 0, cap = 0;
	if (!f || fseek(f, 0, SEEK_END) != 0)
		bail("cannot read the record %s", path);
	size = (size_t)ftell(f);
	rewind(f);
	rec_buf = malloc(size ? size : 1);
	if (!rec_buf || fread(rec_buf, 1, size, f) != size)
		bail("cannot read the record");
	fclose(f);
	while (at + 25 <= size) {
		struct op o;
		uint32_t n1, n2;
		o.type = (char)rec_buf[at];
		memcpy(&n1, rec_buf + at + 1, 4);
		memcpy(&n2, rec_buf + at + 5, 4);
		memcpy(&o.pos, rec_buf + at + 9, 8);
		memcpy(&o.len, rec_buf + at + 17, 8);
		at += 25;
		if (at + n1 + n2 > size)
			bail("a truncated record");
		o.p1 = strndup((char *)rec_buf + at, n1);
		o.p2 = n2 ? strndup((char *)rec_buf + at + n1, n2) : NULL;
		at += n1 + n2;
		o.data = rec_buf + at;
		if (o.type == 'W')
			at += o.len;
		if (at > size)
			bail("a truncated write record");
		if (nops == cap) {
			cap = cap ? cap * 2 : 256;
			ops = realloc(ops, cap * sizeof(*ops));
			if (!ops)
				bail("out of memory");
		}
		ops[nops++] = o;
	}
	if (at != size)
		bail("trailing bytes in the record");
}

/* ---- the state after a cut ---- */

struct mfile {
	char *path;
	uint8_t *img; /* durable image */
	size_t len, cap;
	size_t *pend; /* indices into ops of the W and T after the last sync */
	size_t npend, pcap;
};

static struct mfile files[256];
static size_t nfiles;

static struct mfile *mfile_find(const char *path)
{
	for (size_t i = 0; i < nfiles; i++)
		if (strcmp(files[i].path, path) == 0)
			return &files[i];
	return NULL;
}

static void mfile_drop(struct mfile *f)
{
	free(f->path);
	free(f->img);
	free(f->pend);
	*f = files[--nfiles];
}

static void img_resize(uint8_t **img, size_t *len, size_t *cap, size_t n)
{
	if (n > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (c < n)
			c *= 2;
		*img = realloc(*img, c);
		if (!*img)
			bail("out of memory");
		*cap = c;
	}
	if (n > *len)
		memset(*img + *len, 0, n - *len);
	*len = n;
}

/* Apply op o (W: its first wlen bytes) to an image. */
static void img_apply(uint8_t **img, size_t *len, size_t *cap, const struct op *o, uint64_t wlen)
{
	if (o->type == 'T') {
		img_resize(img, len, cap, (size_t)o->pos);
		return;
	}
	if (o->pos + wlen > *len)
		img_resize(img, len, cap, (size_t)(o->pos + wlen));
	memcpy(*img + o->pos, o->data, (size_t)wlen);
}

static uint64_t rng;
static uint32_t rnd(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng >> 33);
}

static void mkdirs_for(const char *path)
{
	char buf[8448];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			bail("mkdir %s: %s", buf, strerror(errno));
		*s = '/';
	}
}

/* Build in dir the state after the first k records under subset s. *lost
 * is set when some write after a sync was left out or torn. */
static void build_cut(const char *dir, size_t k, int s, bool *lost)
{
	*lost = false;
	while (nfiles)
		mfile_drop(&files[0]);
	for (size_t j = 0; j < k; j++) {
		const struct op *o = &ops[j];
		struct mfile *f = mfile_find(o->p1);
		switch (o->type) {
		case 'W':
		case 'T':
			if (!f) {
				if (nfiles == sizeof(files) / sizeof(files[0]))
					bail("too many files");
				f = &files[nfiles++];
				memset(f, 0, sizeof(*f));
				f->path = strdup(o->p1);
			}
			if (f->npend == f->pcap) {
				f->pcap = f->pcap ? f->pcap * 2 : 16;
				f->pend = realloc(f->pend, f->pcap * sizeof(size_t));
				if (!f->pend)
					bail("out of memory");
			}
			f->pend[f->npend++] = j;
			break;
		case 'S':
			if (!f)
				break; /* a directory, or a file never written */
			for (size_t i = 0; i < f->npend; i++)
				img_apply(&f->img, &f->len, &f->cap, &ops[f->pend[i]],
					  ops[f->pend[i]].len);
			f->npend = 0;
			break;
		case 'R': {
			struct mfile *t = o->p2 ? mfile_find(o->p2) : NULL;
			if (!f || !o->p2)
				break;
			if (t) {
				mfile_drop(t);
				f = mfile_find(o->p1);
			}
			free(f->path);
			f->path = strdup(o->p2);
			break;
		}
		case 'U':
			if (f)
				mfile_drop(f);
			break;
		default:
			bail("unknown record type %c", o->type);
		}
	}
	for (size_t i = 0; i < nfiles; i++) {
		struct mfile *f = &files[i];
		uint8_t *img = NULL;
		size_t len = 0, cap = 0;
		char path[8448];
		int fd;

		img_resize(&img, &len, &cap, f->len);
		if (f->len)
			memcpy(img, f->img, f->len);
		for (size_t q = 0; q < f->npend; q++) {
			const struct op *o = &ops[f->pend[q]];
			uint64_t wlen = o->len;
			bool keep = s == 1 || (s >= 2 && rnd() % 2 == 0);
			if (keep && o->type == 'W' && s >= 2 && o->len > 1 && rnd() % 8 == 0)
				wlen = 1 + rnd() % (o->len - 1); /* torn */
			if (!keep || wlen != o->len)
				*lost = true;
			if (keep)
				img_apply(&img, &len, &cap, o, wlen);
		}
		snprintf(path, sizeof(path), "%s/%s", dir, f->path);
		mkdirs_for(path);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || (len && write(fd, img, len) != (ssize_t)len) || close(fd) < 0)
			bail("cannot write %s", path);
		free(img);
	}
}

/* ---- the checks ---- */

static void quiet(void *arg, enum log_level level, const char *module, const char *msg)
{
	(void)arg;
	(void)level;
	(void)module;
	(void)msg;
}

static void problem(void *arg, const char *what)
{
	int *n = arg;
	if ((*n)++ == 0)
		diag("verify: %s", what);
}

static int fails;
#define CUT_FAIL(...)                      \
	do {                               \
		if (fails++ < 10)          \
			diag(__VA_ARGS__); \
	} while (0)

/* Open the state after cut k / subset s and check it; the records present
 * go into *present. */
static void check_cut(const char *dir, size_t k, int s, long *present)
{
	struct engine_options o;
	struct engine *e;
	int seen[THREADS];
	int rc, nprob = 0;

	engine_options_init(&o);
	o.wal_segment_bytes = 8192;
	rc = engine_open(dir, &o, &e);
	if (rc) {
		CUT_FAIL("cut %zu subset %d: engine_open: %s", k, s, chronik_strerror(rc));
		return;
	}
	for (int t = 0; t < THREADS; t++)
		seen[t] = 0;
	for (int pi = 0; pi < 2; pi++) {
		struct partition *p;
		struct engine_cursor *c;
		struct engine_record r;
		int64_t want = 0;

		if (engine_partition_get(e, "t", pi, &p) != 0) {
			if (ack_topic_t && ack_topic_t <= k)
				CUT_FAIL("cut %zu subset %d: topic t is gone", k, s);
			continue;
		}
		if (engine_cursor_open(p, 0, &c) != 0) {
			CUT_FAIL("cut %zu subset %d: no cursor on t/%d", k, s, pi);
			engine_partition_unref(p);
			continue;
		}
		while ((rc = engine_cursor_next(c, &r)) == 1) {
			int tid, i;
			if (r.offset != want)
				CUT_FAIL("cut %zu subset %d: t/%d offset %lld where %lld was next",
					 k, s, pi, (long long)r.offset, (long long)want);
			want = r.offset + 1;
			if (sscanf((const char *)r.value, "%d-%d", &tid, &i) != 2 || tid < 0 ||
			    tid >= THREADS || tid % 2 != pi) {
				CUT_FAIL(
					"cut %zu subset %d: a record not appended at t/%d offset %lld",
					k, s, pi, (long long)r.offset);
				continue;
			}
			if (i != seen[tid])
				CUT_FAIL(
					"cut %zu subset %d: thread %d's record %d follows %d (a hole "
					"was counted, or a record repeated)",
					k, s, tid, i, seen[tid] - 1);
			seen[tid] = i + 1;
			(*present)++;
		}
		if (rc < 0)
			CUT_FAIL("cut %zu subset %d: reading t/%d: %s", k, s, pi,
				 chronik_strerror(rc));
		engine_cursor_close(c);
		engine_partition_unref(p);
	}
	for (int t = 0; t < THREADS; t++)
		for (int i = seen[t]; i < PER_THREAD; i++)
			if (ack[t][i] && ack[t][i] <= k) {
				CUT_FAIL(
					"cut %zu subset %d: thread %d's record %d, acknowledged at "
					"record %lu, is lost",
					k, s, t, i, ack[t][i]);
				break;
			}
	if (ack_topic_u && ack_topic_u <= k) {
		struct partition *p;
		if (engine_partition_get(e, "u", 0, &p) != 0)
			CUT_FAIL("cut %zu subset %d: topic u, created at record %lu, is gone", k, s,
				 ack_topic_u);
		else
			engine_partition_unref(p);
	}
	if (engine_verify(e, problem, &nprob) != 0 || nprob)
		CUT_FAIL("cut %zu subset %d: verify found %d problems", k, s, nprob);
	rc = engine_close(e);
	if (rc)
		CUT_FAIL("cut %zu subset %d: engine_close: %s", k, s, chronik_strerror(rc));
}

int main(void)
{
	char *base = tmpdir_new("powercut");
	char real[4096], data[4200], logp[4200], cut[4200];
	struct engine_options o;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	size_t stride, ncuts = 0, lossy = 0;
	long present = 0, acked_total = 0;
	const char *seed = getenv("CHRONIK_POWERCUT_SEED");

	*(void **)&rec_start = dlsym(RTLD_DEFAULT, "faultfs_record_start");
	*(void **)&rec_stop = dlsym(RTLD_DEFAULT, "faultfs_record_stop");
	*(void **)&rec_count = dlsym(RTLD_DEFAULT, "faultfs_record_count");
	if (!rec_start || !rec_stop || !rec_count) {
		printf("1..0 # SKIP the faultfs shim is not preloaded\n");
		tmpdir_free(base);
		return 0;
	}
	tap_plan(6);
	log_set_sink(quiet, NULL);
	rng = seed ? strtoull(seed, NULL, 0) : 0x5eed;
	if (!realpath(base, real))
		bail("realpath %s", base);
	snprintf(data, sizeof(data), "%s/data", real);
	snprintf(logp, sizeof(logp), "%s/record", real);
	snprintf(cut, sizeof(cut), "%s/cut", real);

	/* 1. the workload, recorded */
	if (rec_start(logp, data) != 0)
		bail("faultfs_record_start");
	engine_options_init(&o);
	o.wal_segment_bytes = 8192;
	eng = open_or_bail(data, &o);
	if (engine_topic_create(eng, "t", 2, NULL) != 0)
		bail("cannot create topic t");
	ack_topic_t = rec_count();
	for (int t = 0; t < THREADS; t++) {
		w[t].tid = t;
		if (pthread_create(&th[t], NULL, worker_main, &w[t]))
			bail("pthread_create");
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	ok(append_failures == 0 && ack_topic_u != 0,
	   "every append and the second topic are acknowledged while recording (%d failures)",
	   append_failures);
	ok(engine_close(eng) == 0, "a clean close");
	rec_stop();
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < PER_THREAD; i++)
			acked_total += ack[t][i] != 0;

	/* 2. every cut point (or a stride of them), several subsets each */
	record_load(logp);
	{
		size_t nsync = 0, nwal = 0;
		for (size_t j = 0; j < nops; j++) {
			nsync += ops[j].type == 'S';
			nwal += ops[j].type == 'W' && strncmp(ops[j].p1, "wal/", 4) == 0;
		}
		ok(nsync > 50 && nwal > 50,
		   "the record holds %zu operations, %zu syncs, %zu WAL writes", nops, nsync, nwal);
	}
	stride = nops / MAX_CUTS + 1;
	for (size_t k = 0; k <= nops; k += (k + stride <= nops || k == nops) ? stride : nops - k) {
		for (int s = 0; s < SUBSETS; s++) {
			bool lost;
			mkdir(cut, 0755);
			build_cut(cut, k, s, &lost);
			lossy += lost;
			check_cut(cut, k, s, &present);
			ncuts++;
			tmpdir_free(strdup(cut));
		}
		if (k == nops)
			break;
	}
	ok(fails == 0,
	   "%zu power-cut states (every %zu records, %d subsets) recover with every "
	   "acknowledged append, dense offsets, no record after a hole, verify clean (%d failures)",
	   ncuts, stride, SUBSETS, fails);
	ok(lossy > ncuts / 4, "%zu of the states lost or tore unsynced writes", lossy);
	ok(present > 0 && (size_t)present < ncuts * (size_t)acked_total,
	   "%ld records found over all states: some states hold fewer than all %ld", present,
	   acked_total);

	while (nfiles)
		mfile_drop(&files[0]);
	for (size_t j = 0; j < nops; j++) {
		free(ops[j].p1);
		free(ops[j].p2);
	}
	free(ops);
	free(rec_buf);
	tmpdir_free(base);
	return tap_exit();
}
