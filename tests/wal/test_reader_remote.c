/* test_reader_remote.c - a read-only engine beside a writer whose cold
 * tier moves a segment the reader already knows to the object store.
 *
 * The reader opens while every segment is local and reads them. The
 * writer then uploads all but the newest (remote.storage.enable,
 * local.retention.bytes 1, engine_remote_drain): each registry says
 * "remote" for the same offsets and gen, and the local files are gone. The reader's next read
 * finds its local file missing, reloads the registries (engine_refresh,
 * indexer.c partition_resync) and must read the segment from the store
 * into its own cache (remote_cache_dir), record for record what the
 * writer reads. The store is a directory, so no S3 is needed and nothing
 * here depends on timing: the upload is drained before the reader reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirstore.h"
#include "warmutil.h"

#define NREC 3000

/* ---- the test ----------------------------------------------------------------- */

static int64_t wv[NREC + 1], rv[NREC + 1];
static char wvals[NREC + 1][32], rvals[NREC + 1][32];

static void append_n(struct partition *p, int n)
{
	for (int i = 0; i < n; i++) {
		char v[32];
		struct record_in r = { 0 };
		r.value_len = snprintf(v, sizeof(v), "value %d", i);
		r.value = v;
		r.key_len = -1;
		if (engine_append_records(p, &r, 1, NULL))
			bail("append");
	}
}

int main(void)
{
	char *root = tmpdir_new("reader-remote");
	char dir[4200], cache[4300];
	struct engine_options wo, ro;
	struct engine_remote_options rop = { .key_prefix = "", .cache_bytes = 64 << 20,
					     .scan_ms = 100 };
	static struct dirstore store;
	struct partition_info wi;

	snprintf(store.root, sizeof(store.root), "%s/bucket", root);
	snprintf(cache, sizeof(cache), "%s/reader-cache", root);
	if (mkdir(store.root, 0755) < 0)
		bail("mkdir %s", store.root);

	/* The writer: local segments of a topic that goes remote once a
	 * store is attached. */
	struct engine *w = open_fresh_or_bail(root, "data", 16384, &wo, dir, sizeof(dir));
	struct partition *wp = topic_or_bail(
		w, "c", "{\"remote.storage.enable\":\"true\",\"local.retention.bytes\":\"1\"}");
	append_n(wp, NREC);
	ok(engine_index_now(w) == 0, "the writer indexed %d records", NREC);
	engine_partition_info(wp, &wi);
	ok(wi.segments >= 2 && wi.remote_segments == 0, "%" PRIu64 " local segments",
	   wi.segments);

	/* The reader, with a store and a cache of its own. */
	engine_options_init(&ro);
	ro.read_only = true;
	ro.remote_cache_dir = cache;
	struct engine *r = open_or_bail(dir, &ro);
	ok(engine_remote_attach(r, &dirstore_ops, &store, &rop) == 0,
	   "the reader attaches the store (reads only)");
	struct partition *rp = part_or_bail(r, "c", 0);
	int64_t nr = read_all(rp, rv, NULL, rvals, NREC + 1);
	ok(nr == NREC && store.gets == 0, "the reader reads the local segments (%" PRId64 ")", nr);

	/* The writer's cold tier moves every segment to the store. */
	ok(engine_remote_attach(w, &dirstore_ops, &store, &rop) == 0 &&
		   engine_remote_drain(w) == 0,
	   "the writer uploads all but its newest segment");
	engine_partition_info(wp, &wi);
	char segdir[4400];
	snprintf(segdir, sizeof(segdir), "%s/segments/%" PRIu32 "/0", dir,
		 engine_partition_topic_id(wp));
	ok(wi.remote_segments + 1 == wi.segments && wi.remote_segments >= 1 &&
		   count_files(segdir, ".seg") == 1,
	   "all segments but the newest remote (%" PRIu64 " of %" PRIu64 "), one left local",
	   wi.remote_segments, wi.segments);

	/* The reader reads them again: from the store, into its cache. */
	int64_t nw = read_all(wp, wv, NULL, wvals, NREC + 1);
	nr = read_all(rp, rv, NULL, rvals, NREC + 1);
	ok(nw == NREC && nr == nw && memcmp(wv, rv, (size_t)nr * sizeof(*rv)) == 0 &&
		   memcmp(wvals, rvals, (size_t)nr * sizeof(*rvals)) == 0,
	   "the reader reads every record the writer reads (read %" PRId64 ", writer %" PRId64 ")",
	   nr, nw);
	struct engine_remote_stats rs;
	engine_remote_stats_get(r, &rs);
	snprintf(segdir, sizeof(segdir), "%s/%" PRIu32 "/0", cache, engine_partition_topic_id(wp));
	ok(rs.fetches > 0 && count_files(segdir, ".seg") > 0,
	   "fetched from the store (%" PRIu64 " fetches) into the reader's cache", rs.fetches);
	struct partition_info ri;
	engine_partition_info(rp, &ri);
	ok(ri.remote_segments == wi.remote_segments, "the reader counts %" PRIu64 " remote segments",
	   ri.remote_segments);
	ok(engine_verify(r, verify_problem, NULL) == 0, "verify of the reader clean");

	engine_partition_unref(rp);
	engine_partition_unref(wp);
	ok(engine_close(r) == 0 && engine_close(w) == 0, "engines closed");
	tmpdir_free(root);
	return tap_exit();
}
