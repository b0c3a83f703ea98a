/* fuzz_registry.c - the segment registry parser (wal/registry.c).
 *
 * Input: the topic id (u32, little-endian) and partition (i32,
 * little-endian) the loader is told to expect, then the bytes of
 * registry.json (the corpus: registries the indexer, compaction and
 * retention wrote, make_corpus.sh, plus hand-made version 2 ones with
 * remote segments).
 *
 * Checked, when registry_load accepts the file: every rule registry.h
 * states holds of what it returns (each segment's ranges non-empty and
 * data_end < bytes; segments in offset order with disjoint offset and raw
 * ranges; next_offset and raw_end follow the last segment; log_start_offset
 * <= the first base offset and <= next_offset; raw_start <= raw_end; a
 * remote segment has a key and an etag); registry_save of it succeeds and
 * registry_load of what was saved returns the very same registry, field by
 * field (the format round-trips); and loading it as another partition is
 * refused. A refused file leaves the registry empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "byteorder.h"
#include "errors.h"
#include "fuzz.h"
#include "registry.h"

static char dir[4096], dir2[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	snprintf(dir, sizeof(dir), "%s/in", fuzz_workdir());
	snprintf(dir2, sizeof(dir2), "%s/out", fuzz_workdir());
	mkdir(dir, 0755);
	mkdir(dir2, 0755);
	return 0;
}

static void check_rules(const struct registry *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct segment_meta *m = &r->segs[i];
		FUZZ_CHECK(m->last_offset >= m->base_offset && m->raw_end > m->raw_start);
		FUZZ_CHECK(m->data_end < m->bytes && m->batches > 0);
		FUZZ_CHECK(m->state == SEGMENT_LOCAL || m->state == SEGMENT_REMOTE);
		if (m->state == SEGMENT_REMOTE)
			FUZZ_CHECK(m->remote_key[0] != '\0');
		if (i > 0)
			FUZZ_CHECK(m->base_offset > r->segs[i - 1].last_offset &&
				   m->raw_start >= r->segs[i - 1].raw_end);
	}
	if (r->n) {
		FUZZ_CHECK(r->segs[r->n - 1].last_offset < INT64_MAX &&
			   r->segs[r->n - 1].last_offset + 1 == r->next_offset);
		FUZZ_CHECK(r->segs[r->n - 1].raw_end == r->raw_end);
	}
	FUZZ_CHECK(r->log_start_offset <= r->next_offset && r->raw_start <= r->raw_end);
}

static void check_same(const struct registry *a, const struct registry *b)
{
	FUZZ_CHECK(a->log_start_offset == b->log_start_offset && a->raw_start == b->raw_start);
	FUZZ_CHECK(a->next_offset == b->next_offset && a->raw_end == b->raw_end);
	FUZZ_CHECK(a->n == b->n);
	for (size_t i = 0; i < a->n; i++) {
		const struct segment_meta *x = &a->segs[i], *y = &b->segs[i];
		FUZZ_CHECK(x->base_offset == y->base_offset && x->last_offset == y->last_offset);
		FUZZ_CHECK(x->min_timestamp == y->min_timestamp &&
			   x->max_timestamp == y->max_timestamp);
		FUZZ_CHECK(x->raw_start == y->raw_start && x->raw_end == y->raw_end);
		FUZZ_CHECK(x->bytes == y->bytes && x->data_end == y->data_end);
		FUZZ_CHECK(x->records == y->records && x->batches == y->batches);
		FUZZ_CHECK(x->wal_seq == y->wal_seq && x->gen == y->gen);
		FUZZ_CHECK(x->state == y->state && x->crc32c == y->crc32c);
		FUZZ_CHECK(strcmp(x->etag, y->etag) == 0 &&
			   strcmp(x->remote_key, y->remote_key) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[4200];
	struct registry r, r2;

	if (size < 8)
		return 0;
	uint32_t topic_id = get_le32(data);
	int32_t partition = (int32_t)get_le32(data + 4);
	snprintf(path, sizeof(path), "%s/%s", dir, REGISTRY_FILE);
	FUZZ_CHECK(fuzz_write_file(path, data + 8, size - 8) == 0);

	int rc = registry_load(dir, topic_id, partition, &r);
	if (rc != 0) {
		FUZZ_CHECK(rc < 0 && r.n == 0 && r.segs == NULL);
		return 0;
	}
	check_rules(&r);
	FUZZ_CHECK(registry_save(dir2, topic_id, partition, &r) == 0);
	FUZZ_CHECK(registry_load(dir2, topic_id, partition, &r2) == 0);
	check_same(&r, &r2);
	registry_fini(&r2);
	int32_t other = partition == INT32_MAX ? 0 : partition + 1;
	FUZZ_CHECK(registry_load(dir2, topic_id, other, &r2) == CHRONIK_ECORRUPT);
	FUZZ_CHECK(r2.n == 0);
	registry_fini(&r);
	return 0;
}
