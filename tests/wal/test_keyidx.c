/* test_keyidx.c - the segments' key tables (wal/segment.h, format version
 * 2) and compaction's use of them (wal/compact.c, pass 1):
 *   - every segment the indexer writes, and every one compaction writes,
 *     has a key table holding exactly its keyed records' offsets and key
 *     digests, in record order (read from the files, checked against the
 *     records decoded from the same files), and `chronik dump --keys`
 *     (the binary's path is argv[1]) prints that table;
 *   - compaction over version 1 segments only, over a mix of version 1 and
 *     version 2, and over version 2 only keeps the same records; the
 *     offset map is built from the key tables (no record decoded) where
 *     there are some, and by decoding the version 1 segments;
 *   - a key table entry patched with its CRCs fixed is found by verify
 *     (only the check against the records can find it), one with a wrong
 *     CRC too; and compaction goes by the table: a patched digest makes
 *     it keep the wrong version of that key (so a compaction that decoded
 *     the batches instead would fail this test);
 *   - remote segments (cold tier): verify finds the fetched copies whole,
 *     key table included; compaction decodes them and keeps the same. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "batch.h"
#include "byteorder.h"
#include "crc32c.h"
#include "dirstore.h"
#include "segment.h"
#include "warmutil.h"

#define NKEYS 50
#define NVERS 40
#define T0 1700000000000LL
#define MAXREC 4096

/* ---- files ----------------------------------------------------------------- */

struct seg_list {
	char path[64][4400];
	size_t n;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The .seg files of the partition's directory, by name. */
static void seg_files(const char *dir, struct partition *p, struct seg_list *l)
{
	char sub[4300];
	struct dirent *de;
	DIR *d;

	snprintf(sub, sizeof(sub), "%s/segments/%u/0", dir, engine_partition_topic_id(p));
	l->n = 0;
	if (!(d = opendir(sub)))
		return;
	while ((de = readdir(d)) && l->n < 64) {
		size_t len = strlen(de->d_name);
		if (len > 4 && strcmp(de->d_name + len - 4, ".seg") == 0)
			snprintf(l->path[l->n++], sizeof(l->path[0]), "%s/%s", sub, de->d_name);
	}
	closedir(d);
	qsort(l->path, l->n, sizeof(l->path[0]), name_cmp);
}

/* The keyed records of a segment file, decoded from its batches. */
struct keyed {
	struct segment_key k[MAXREC];
	size_t n;
	int err;
};

static int keyed_batch(void *arg, uint64_t pos, const uint8_t *batch, size_t len)
{
	struct keyed *kd = arg;
	struct batch_iter it;
	struct batch_record r;
	int rc = batch_iter_init(&it, batch, len);

	(void)pos;
	while (rc == 0 && (rc = batch_iter_next(&it, &r)) == 1) {
		rc = 0;
		if (r.key_len < 0)
			continue;
		if (kd->n == MAXREC) {
			rc = -ENOSPC;
			break;
		}
		segment_key_digest(r.key, (size_t)r.key_len, kd->k[kd->n].digest);
		kd->k[kd->n++].offset = it.hdr.base_offset + r.offset_delta;
	}
	batch_iter_fini(&it);
	if (rc < 0)
		kd->err = rc;
	return rc < 0;
}

static struct keyed decoded;

static int key_order(const void *a, const void *b)
{
	const struct segment_key *x = a, *y = b;
	if (x->digest[0] != y->digest[0])
		return x->digest[0] < y->digest[0] ? -1 : 1;
	if (x->digest[1] != y->digest[1])
		return x->digest[1] < y->digest[1] ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The table the records make (segment.h): each key once, with its last
 * offset, by digest. */
static void table_of(struct keyed *kd)
{
	size_t n = 0;
	qsort(kd->k, kd->n, sizeof(kd->k[0]), key_order);
	for (size_t i = 0; i < kd->n; i++)
		if (i + 1 == kd->n || kd->k[i + 1].digest[0] != kd->k[i].digest[0] ||
		    kd->k[i + 1].digest[1] != kd->k[i].digest[1])
			kd->k[n++] = kd->k[i];
	kd->n = n;
}

/* Whether the file's key table is exactly the one its keyed records make
 * (each key once, its newest offset, by digest; computed here from the
 * decoded records); *nkeys gets its entry count, *version its version. */
static int table_matches(const char *path, uint32_t *version, size_t *nkeys)
{
	struct segment_key *keys = NULL;
	size_t n = 0;
	int rc = segment_file_keys(path, version, &keys, &n);

	*nkeys = n;
	if (rc) {
		diag("%s: segment_file_keys: %s", path, chronik_strerror(rc));
		return 0;
	}
	decoded.n = 0;
	decoded.err = 0;
	if (segment_file_walk(path, keyed_batch, &decoded) != 0 || decoded.err) {
		free(keys);
		diag("%s: walk failed", path);
		return 0;
	}
	table_of(&decoded);
	int same = *version == 2 ? n == decoded.n : n == 0;
	for (size_t i = 0; same && *version == 2 && i < n; i++)
		same = keys[i].offset == decoded.k[i].offset &&
		       keys[i].digest[0] == decoded.k[i].digest[0] &&
		       keys[i].digest[1] == decoded.k[i].digest[1];
	if (!same)
		diag("%s: version %" PRIu32 ", %zu entries, %zu keyed records", path, *version, n,
		     decoded.n);
	free(keys);
	return same;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	uint8_t *b = NULL;

	if (fd < 0 || fstat(fd, &st) < 0)
		bail("%s: %s", path, strerror(errno));
	b = malloc((size_t)st.st_size);
	if (!b || read(fd, b, (size_t)st.st_size) != st.st_size)
		bail("%s: short read", path);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0 || write(fd, b, len) != (ssize_t)len || close(fd) < 0)
		bail("%s: %s", path, strerror(errno));
}

/* A version 2 file in memory: its key table and trailer. */
static uint8_t *key_entry(uint8_t *b, size_t len, uint32_t i, uint32_t *count)
{
	uint8_t *t = b + len - SEGMENT_TRAILER_V2_SIZE;
	*count = get_le32(t + 60);
	return b + get_le64(t + 64) + (size_t)i * SEGMENT_KEY_ENTRY_SIZE;
}

/* Make the key table's CRC and the trailer's CRC right again. */
static void fix_crcs(uint8_t *b, size_t len)
{
	uint8_t *t = b + len - SEGMENT_TRAILER_V2_SIZE;
	uint32_t n = get_le32(t + 60);
	put_le32(t + 72, crc32c(0, b + get_le64(t + 64), (size_t)n * SEGMENT_KEY_ENTRY_SIZE));
	put_le32(t + 76, crc32c(0, t, 76));
}

struct problems {
	int n;
	int key_entry; /* problems naming a key table entry */
	int key_crc;
};

static void count_problem(void *arg, const char *what)
{
	struct problems *pr = arg;
	pr->n++;
	if (strstr(what, "key table entry"))
		pr->key_entry++;
	if (strstr(what, "key table: CRC"))
		pr->key_crc++;
	diag("(expected) %s", what);
}

/* ---- the workload -------------------------------------------------------- */

static int append_one(struct partition *p, const char *key, const char *val, int64_t ts)
{
	struct record_in r = { .timestamp = ts,
			       .key = key,
			       .key_len = key ? (int32_t)strlen(key) : -1,
			       .value = val,
			       .value_len = val ? (int32_t)strlen(val) : -1 };
	int64_t base;
	return engine_append_records(p, &r, 1, &base);
}

/* Version v of every key, with a keyless record every seventh append and
 * an empty key among the keys. */
static int append_version(struct partition *p, int v)
{
	int err = 0;
	for (int i = 0; i < NKEYS; i++) {
		char key[16], val[32];
		if (i == 0)
			key[0] = 0; /* the empty key: a key, not a null one */
		else
			snprintf(key, sizeof(key), "key-%03d", i);
		snprintf(val, sizeof(val), "v%03d-k%03d", v, i);
		err |= append_one(p, key, val, T0 + v * NKEYS + i);
		if ((v * NKEYS + i) % 7 == 0)
			err |= append_one(p, NULL, "nokey", T0 + v * NKEYS + i);
	}
	return err;
}

#define CONFIG "{\"cleanup.policy\":\"compact\",\"min.cleanable.dirty.ratio\":\"1\"}"

/* A data directory root/sub with a compact topic "k": NVERS versions of
 * NKEYS keys, the first v1_versions of them indexed into version 1
 * segments, the rest into version 2 ones, then one record in a newest
 * segment of its own (never cleaned). */
static struct engine *build(const char *root, const char *sub, int v1_versions,
			    struct engine_options *o, char *dir, size_t dirlen,
			    struct partition **pp)
{
	struct engine *e = open_fresh_or_bail(root, sub, 32 << 10, o, dir, dirlen);
	struct partition *p = topic_or_bail(e, "k", CONFIG);
	int err = 0;

	segment_write_version(1);
	for (int v = 0; v < v1_versions; v++)
		err |= append_version(p, v);
	err |= engine_index_now(e);
	segment_write_version(SEGMENT_VERSION);
	for (int v = v1_versions; v < NVERS; v++)
		err |= append_version(p, v);
	err |= engine_index_now(e);
	err |= append_one(p, "filler", "filler", T0 + NKEYS * NVERS);
	err |= engine_index_now(e);
	if (err)
		bail("%s: appending failed", sub);
	*pp = p;
	return e;
}

/* ---- tests --------------------------------------------------------------- */

static const char *chronik_bin; /* argv[1] */

/* Whether `chronik dump --keys path` prints the file's key table: its
 * count line and one line per entry, offset and digest. */
static int dump_matches(const char *path)
{
	struct segment_key *keys = NULL;
	uint32_t version;
	size_t n, lines = 0, good = 0;
	int count_ok = 0;
	char cmd[9000], line[512], want[128];
	FILE *f;

	if (!chronik_bin || segment_file_keys(path, &version, &keys, &n) != 0)
		return 0;
	snprintf(cmd, sizeof(cmd), "'%s' dump --keys '%s'", chronik_bin, path);
	if (!(f = popen(cmd, "r"))) {
		free(keys);
		return 0;
	}
	snprintf(want, sizeof(want), "version: 2 keys: %zu\n", n);
	while (fgets(line, sizeof(line), f)) {
		count_ok += strcmp(line, want) == 0;
		if (strncmp(line, "key: ", 5) != 0)
			continue;
		if (lines < n) {
			snprintf(want, sizeof(want),
				 "key: %zu offset: %" PRId64 " digest: %016" PRIx64 "%016" PRIx64
				 "\n",
				 lines, keys[lines].offset, keys[lines].digest[0],
				 keys[lines].digest[1]);
			good += strcmp(line, want) == 0;
			snprintf(want, sizeof(want), "version: 2 keys: %zu\n", n);
		}
		lines++;
	}
	int st = pclose(f);
	free(keys);
	if (st != 0 || count_ok != 1 || lines != n || good != n || n == 0)
		diag("dump: exit %d, count line %d, %zu key lines (%zu right) of %zu", st, count_ok,
		     lines, good, n);
	return st == 0 && count_ok == 1 && lines == n && good == n && n > 0;
}

static int64_t offs[3][MAXREC];
static uint64_t raws[3][MAXREC];
static char vals[3][MAXREC][32];
static int64_t nread[3];

static void test_tables(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct partition *p;
	struct engine *e = build(root, "tables", 0, &o, dir, sizeof(dir), &p);
	struct seg_list l;
	struct engine_compact_result res;
	uint32_t version;
	size_t nkeys, total = 0;
	int good = 0;

	size_t cleanable = 0; /* entries of all but the newest segment */
	seg_files(dir, p, &l);
	for (size_t i = 0; i < l.n; i++) {
		good += table_matches(l.path[i], &version, &nkeys) && version == 2;
		total += nkeys;
		if (i + 1 < l.n)
			cleanable += nkeys;
	}
	ok(l.n > 3 && good == (int)l.n && total > NKEYS && total < NKEYS * NVERS,
	   "the indexer's %zu segments: version 2, key tables match their keyed records (%zu "
	   "entries)",
	   l.n, total);

	ok(dump_matches(l.path[l.n / 2]), "chronik dump --keys lists %s's key table",
	   l.path[l.n / 2]);

	ok(engine_partition_compact(p, &res) == 0 && res.records_out > 0, "compacted");
	ok(res.map_records_decoded == 0 && res.map_keys_read == cleanable,
	   "the offset map came from the key tables alone: %" PRIu64 " entries read, %" PRIu64
	   " records decoded",
	   res.map_keys_read, res.map_records_decoded);
	seg_files(dir, p, &l);
	good = 0;
	total = 0;
	size_t rewritten = 0;
	for (size_t i = 0; i < l.n; i++) {
		rewritten += strstr(l.path[i], ".g1.seg") != NULL;
		good += table_matches(l.path[i], &version, &nkeys) && version == 2;
		total += nkeys;
	}
	ok(rewritten >= 1 && good == (int)l.n && total == NKEYS + 1,
	   "compaction's segments too: %zu files, %zu entries (a key each, and the filler)", l.n,
	   total);
	ok(engine_verify(e, verify_problem, NULL) == 0, "verify clean");
	engine_partition_unref(p);
	engine_close(e);
}

static void test_mixed(const char *root)
{
	static const char *const subs[3] = { "all-v1", "mixed", "all-v2" };
	static const int v1_versions[3] = { NVERS, NVERS / 2, 0 };
	struct engine_compact_result res[3];
	size_t cleanable[3] = { 0 };

	for (int m = 0; m < 3; m++) {
		char dir[4200];
		struct engine_options o;
		struct partition *p;
		struct engine *e = build(root, subs[m], v1_versions[m], &o, dir, sizeof(dir), &p);
		struct seg_list l;
		uint32_t version;
		size_t nkeys, v1 = 0, v2 = 0;
		int good = 0;

		seg_files(dir, p, &l);
		for (size_t i = 0; i < l.n; i++) {
			good += table_matches(l.path[i], &version, &nkeys);
			v1 += version == 1;
			v2 += version == 2;
			if (i + 1 < l.n)
				cleanable[m] += nkeys;
		}
		ok(good == (int)l.n && (m == 0 ? v2 == 1 :
					m == 2 ? v1 == 0 :
						 v1 > 1 && v2 > 1),
		   "%s: %zu version 1 and %zu version 2 segments, tables as their records", subs[m],
		   v1, v2);
		ok(engine_partition_compact(p, &res[m]) == 0, "%s: compacted", subs[m]);
		nread[m] = read_all(p, offs[m], raws[m], vals[m], MAXREC);
		ok(engine_verify(e, verify_problem, NULL) == 0, "%s: verify clean", subs[m]);
		engine_partition_unref(p);
		engine_close(e);
	}
	/* all-v1: every record of the cleanable segments decoded; mixed: the
	 * version 1 half decoded, the version 2 half's keys read; all-v2:
	 * nothing decoded. */
	ok(res[0].map_keys_read == 0 && res[0].map_records_decoded == res[0].records_in,
	   "all-v1: the map decoded all %" PRIu64 " records", res[0].records_in);
	ok(res[1].map_keys_read > 0 && res[1].map_records_decoded > 0 &&
		   res[1].map_records_decoded < res[1].records_in &&
		   res[1].map_keys_read == cleanable[1],
	   "mixed: %" PRIu64 " records decoded, %" PRIu64 " key table entries read",
	   res[1].map_records_decoded, res[1].map_keys_read);
	ok(res[2].map_records_decoded == 0 && res[2].map_keys_read == cleanable[2],
	   "all-v2: nothing decoded, %" PRIu64 " entries read", res[2].map_keys_read);
	int same = nread[0] > NKEYS && nread[0] == nread[1] && nread[1] == nread[2];
	for (int64_t i = 0; same && i < nread[0]; i++)
		for (int m = 1; m < 3; m++)
			same = same && offs[m][i] == offs[0][i] && raws[m][i] == raws[0][i] &&
			       strcmp(vals[m][i], vals[0][i]) == 0;
	ok(same && res[0].records_out == res[1].records_out &&
		   res[1].records_out == res[2].records_out,
	   "the three keep the same %" PRId64 " records (offsets, raw positions, values)",
	   nread[0]);
	/* And the newest version of each key is what they keep. */
	int newest = 0;
	for (int64_t i = 0; i < nread[2]; i++) {
		char want[32];
		int k;
		if (sscanf(vals[2][i], "v%*3d-k%3d", &k) == 1) {
			snprintf(want, sizeof(want), "v%03d-k%03d", NVERS - 1, k);
			newest += strcmp(vals[2][i], want) == 0;
		}
	}
	ok(newest == NKEYS, "%d keys kept at their newest version", newest);
}

/* The key table entry of the newest record of key in the files of l that
 * have a table, file skip left out: the file index, entry index and its
 * offset; -1 if none. */
static int find_newest(struct seg_list *l, const char *key, int skip, uint32_t *entry,
		       int64_t *offset)
{
	uint64_t d[2];
	int64_t best = -1;
	int file = -1;

	segment_key_digest(key, strlen(key), d);
	for (size_t i = 0; i < l->n; i++) {
		struct segment_key *keys;
		if ((int)i == skip)
			continue;
		uint32_t version;
		size_t n;
		if (segment_file_keys(l->path[i], &version, &keys, &n))
			continue;
		for (size_t j = 0; j < n; j++)
			if (keys[j].digest[0] == d[0] && keys[j].digest[1] == d[1] &&
			    keys[j].offset > best) {
				best = keys[j].offset;
				file = (int)i;
				*entry = (uint32_t)j;
			}
		free(keys);
	}
	*offset = best;
	return file;
}

static void test_corrupt(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct partition *p;
	struct engine *e = build(root, "corrupt", 0, &o, dir, sizeof(dir), &p);
	struct seg_list l;
	struct problems pr = { 0 };
	struct engine_compact_result res;
	uint32_t entry = 0, count;
	size_t len;

	seg_files(dir, p, &l);
	/* The newest version of key-007 sits in a cleanable segment (the
	 * filler's is the newest). */
	int64_t newest_off, before_off;
	int f = find_newest(&l, "key-007", -1, &entry, &newest_off);
	ok(f >= 0 && (size_t)f + 1 < l.n, "key-007's newest record: entry %" PRIu32 " of %s", entry,
	   f >= 0 ? l.path[f] : "?");
	if (f < 0)
		bail("no key table entry for key-007");
	uint8_t *orig = slurp(l.path[f], &len), *b = malloc(len);
	if (!b)
		bail("malloc");

	/* A digest bit flipped (word 1: the order by word 0 stays), the CRCs
	 * fixed: only the check against the records sees it. */
	memcpy(b, orig, len);
	uint8_t *ke = key_entry(b, len, entry, &count);
	put_le64(ke + 8, get_le64(ke + 8) ^ 1);
	fix_crcs(b, len);
	spit(l.path[f], b, len);
	ok(segment_verify(l.path[f], NULL, count_problem, &pr) >= 1 && pr.key_entry == 1 &&
		   pr.key_crc == 0,
	   "a patched digest (CRCs fixed): verify names the key table entry");
	ok(engine_verify(e, NULL, NULL) > 0, "engine_verify finds it too");

	/* Entry 0's offset moved to the record before (after, at the
	 * segment's first), still inside the segment; the CRCs fixed. */
	memcpy(b, orig, len);
	ke = key_entry(b, len, 0, &count);
	int64_t o0 = (int64_t)get_le64(ke + 16), base = (int64_t)get_le64(b + 24);
	put_le64(ke + 16, (uint64_t)(o0 > base ? o0 - 1 : o0 + 1));
	fix_crcs(b, len);
	spit(l.path[f], b, len);
	pr = (struct problems){ 0 };
	ok(segment_verify(l.path[f], NULL, count_problem, &pr) >= 1 && pr.key_entry == 1,
	   "a patched offset in entry 0 (CRCs fixed): verify names the entry");

	/* A byte of the table changed, CRCs left: the CRC check. */
	memcpy(b, orig, len);
	ke = key_entry(b, len, entry, &count);
	ke[3] ^= 0x10;
	spit(l.path[f], b, len);
	pr = (struct problems){ 0 };
	ok(segment_verify(l.path[f], NULL, count_problem, &pr) >= 1 && pr.key_crc == 1,
	   "a changed byte with the CRC left: verify reports the key table's CRC");

	/* Compaction goes by the tables: with key-007's entry in the newest
	 * segment holding it given another digest (CRCs fixed), the map's
	 * newest record of key-007 is the one the table of an older segment
	 * names, so that is the one kept. Decoding the batches would keep
	 * the newest. */
	int older = find_newest(&l, "key-007", f, &count, &before_off);
	ok(older >= 0 && before_off < newest_off,
	   "an older segment's table has key-007 at %" PRId64 " (newest %" PRId64 ")", before_off,
	   newest_off);
	memcpy(b, orig, len);
	ke = key_entry(b, len, entry, &count);
	put_le64(ke + 8, get_le64(ke + 8) ^ 1);
	fix_crcs(b, len);
	spit(l.path[f], b, len);
	ok(engine_partition_compact(p, &res) == 0, "compacted over the patched table");
	int64_t n = read_all(p, offs[0], raws[0], vals[0], MAXREC);
	int found = 0, k007 = 0, newest_ok = 0;
	for (int64_t i = 0; i < n && i < MAXREC; i++) {
		k007 += strstr(vals[0][i], "-k007") != NULL;
		found += offs[0][i] == before_off && strstr(vals[0][i], "-k007") != NULL;
		newest_ok += strncmp(vals[0][i], "v039-", 5) == 0;
	}
	ok(found == 1 && k007 == 1 && newest_ok == NKEYS - 1,
	   "key-007 kept once, at %" PRId64 " as the older table says; the other %d keys at their "
	   "newest",
	   before_off, newest_off > 0 ? newest_ok : -1);
	free(b);
	free(orig);
	engine_partition_unref(p);
	engine_close(e);
}

/* Remote segments: opening one fetches header, index and trailer, not its
 * key table; verify (which fetches the whole object and checks its
 * CRC32C) still finds the copy whole; compaction decodes them instead of
 * reading a table the cache file may not hold, and keeps the same
 * records. */
static void test_remote(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine_remote_options rop = { .key_prefix = "",
					     .cache_bytes = 64 << 20,
					     .scan_ms = 100 };
	static struct dirstore store;
	struct partition_info info;
	struct engine_compact_result res;

	snprintf(store.root, sizeof(store.root), "%s/bucket", root);
	if (mkdir(store.root, 0755) < 0)
		bail("mkdir %s", store.root);
	struct engine *e = open_fresh_or_bail(root, "remote", 32 << 10, &o, dir, sizeof(dir));
	struct partition *p = topic_or_bail(
		e, "k",
		"{\"cleanup.policy\":\"compact\",\"min.cleanable.dirty.ratio\":\"1\","
		"\"remote.storage.enable\":\"true\",\"local.retention.bytes\":\"1\"}");
	int err = 0;
	for (int v = 0; v < NVERS; v++)
		err |= append_version(p, v);
	err |= engine_index_now(e);
	err |= append_one(p, "filler", "filler", T0 + NKEYS * NVERS);
	err |= engine_index_now(e);
	ok(err == 0 && engine_remote_attach(e, &dirstore_ops, &store, &rop) == 0 &&
		   engine_remote_drain(e) == 0,
	   "keyed segments uploaded");
	engine_partition_info(p, &info);
	ok(info.remote_segments >= 2 && info.remote_segments + 1 == info.segments,
	   "%" PRIu64 " of %" PRIu64 " segments remote", info.remote_segments, info.segments);
	ok(read_all(p, NULL, NULL, NULL, 0) > NKEYS * NVERS, "read back from the store");
	ok(engine_verify(e, verify_problem, NULL) == 0,
	   "verify clean: the fetched copies are whole (key tables included)");
	int crc = engine_partition_compact(p, &res);
	ok(crc == 0 && res.map_keys_read == 0 && res.map_records_decoded == res.records_in,
	   "compaction decoded the remote segments for its map (%" PRIu64 " records)",
	   res.map_records_decoded);
	int64_t n = read_all(p, offs[0], raws[0], vals[0], MAXREC);
	int newest = 0;
	for (int64_t i = 0; i < n && i < MAXREC; i++)
		newest += strncmp(vals[0][i], "v039-", 5) == 0;
	ok(newest == NKEYS, "%d keys kept at their newest version", newest);
	engine_partition_unref(p);
	engine_close(e);
}

/* One append larger than SEGMENT_SPLIT_BYTES: the indexer splits it into
 * lz4 pieces and takes the key table's keys from the uncompressed batch
 * (segment_writer_add_from); the tables still match the records. */
static void test_split(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e = open_fresh_or_bail(root, "split", 0, &o, dir, sizeof(dir));
	struct partition *p = topic_or_bail(e, "k", CONFIG);
	static struct record_in r[4000];
	static char keys[4000][16], bigvals[4000][128];
	struct seg_list l;
	uint32_t version;
	size_t nkeys, total = 0;
	int good = 0;
	int64_t base;

	for (int i = 0; i < 4000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "big-%d", i % 700);
		snprintf(bigvals[i], sizeof(bigvals[i]), "%04d-%0100d", i, i);
		r[i] = (struct record_in){ .timestamp = T0 + i,
					   .key = keys[i],
					   .key_len = i % 9 == 0 ? -1 : (int32_t)strlen(keys[i]),
					   .value = bigvals[i],
					   .value_len = (int32_t)strlen(bigvals[i]) };
	}
	ok(engine_append_records(p, r, 4000, &base) == 0 && engine_index_now(e) == 0,
	   "4000 keyed records (%d KiB) in one append, indexed", 4000 * 106 / 1024);
	seg_files(dir, p, &l);
	for (size_t i = 0; i < l.n; i++) {
		good += table_matches(l.path[i], &version, &nkeys) && version == 2;
		total += nkeys;
	}
	ok(l.n >= 1 && good == (int)l.n && total == 700,
	   "split into lz4 pieces, the key table matches: %zu entries in %zu segments", total, l.n);
	ok(engine_verify(e, verify_problem, NULL) == 0, "verify clean");
	engine_partition_unref(p);
	engine_close(e);
}

int main(int argc, char **argv)
{
	char *root = tmpdir_new("keyidx");
	chronik_bin = argc > 1 ? argv[1] : NULL;
	test_tables(root);
	test_mixed(root);
	test_corrupt(root);
	test_remote(root);
	test_split(root);
	tmpdir_free(root);
	return tap_exit();
}
