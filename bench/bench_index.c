/* bench_index.c - the full-text index builder's side of bench/run: how
 * much CPU building a segment's index (search/index.c) costs per byte of
 * text, against reading and decoding the same segment.
 *
 *   chronik-bench-index [--runs N] SEGMENT...
 *       For each run, first walks every SEGMENT decoding each record (the
 *       baseline: segment_file_walk and batch_iter, as the build reads
 *       it), then builds each SEGMENT's index (search_index_build: the
 *       file SEGMENT.fts is replaced). Prints one line per run:
 *         raw_bytes        the key, value and header bytes of the records
 *         records          their count
 *         read_cpu_seconds the CPU (user + system) of the walk
 *         build_cpu_seconds the CPU of the builds, build_seconds their
 *                          wall time (fsyncs included)
 *         index_bytes      the .fts files' bytes
 *       CPU, not wall time, is the figure to compare on a shared machine;
 *       every build is one thread, so the process's CPU is the build's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "batch.h"
#include "bench_util.h"
#include "search.h"
#include "segment.h"

static void usage(void)
{
	fprintf(stderr, "usage: chronik-bench-index [--runs N] SEGMENT...\n");
	exit(2);
}

struct walk {
	uint64_t raw, records;
};

static int walk_batch(void *arg, uint64_t pos, const uint8_t *batch, size_t len)
{
	struct walk *w = arg;
	struct batch_iter it;
	struct batch_record r;
	int rc;

	(void)pos;
	rc = batch_iter_init(&it, batch, len);
	while (rc == 0 && (rc = batch_iter_next(&it, &r)) == 1) {
		w->raw += (uint64_t)(r.key_len > 0 ? r.key_len : 0) +
			  (uint64_t)(r.value_len > 0 ? r.value_len : 0) + r.headers_len;
		w->records++;
		rc = 0;
	}
	batch_iter_fini(&it);
	return rc < 0 ? rc : 0;
}

int main(int argc, char **argv)
{
	uint64_t runs = 1;
	int first = 1;

	if (argc > 2 && strcmp(argv[1], "--runs") == 0) {
		runs = num_arg(argv[2]);
		first = 3;
	}
	if (first >= argc)
		usage();
	for (uint64_t run = 0; run < runs; run++) {
		struct walk w = { 0, 0 };
		uint64_t index_bytes = 0;
		double c0 = cpu_s();
		for (int i = first; i < argc; i++) {
			int rc = segment_file_walk(argv[i], walk_batch, &w);
			if (rc) {
				fprintf(stderr, "%s: cannot read (%d)\n", argv[i], rc);
				return 1;
			}
		}
		double c1 = cpu_s(), t1 = now_s();
		for (int i = first; i < argc; i++) {
			int rc = search_index_build(argv[i], NULL);
			if (rc) {
				fprintf(stderr, "%s: index not built (%d)\n", argv[i], rc);
				return 1;
			}
		}
		double c2 = cpu_s(), t2 = now_s();
		for (int i = first; i < argc; i++) {
			char path[4200];
			struct stat sb;
			snprintf(path, sizeof(path), "%s" SEARCH_INDEX_SUFFIX, argv[i]);
			if (stat(path, &sb) == 0)
				index_bytes += (uint64_t)sb.st_size;
		}
		printf("raw_bytes=%" PRIu64 " records=%" PRIu64
		       " read_cpu_seconds=%.3f build_cpu_seconds=%.3f build_seconds=%.3f"
		       " index_bytes=%" PRIu64 "\n",
		       w.raw, w.records, c1 - c0, c2 - c1, t2 - t1, index_bytes);
		fflush(stdout);
	}
	return 0;
}
