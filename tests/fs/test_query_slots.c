/* test_query_slots.c - the table of search/ query files (fs/search_view.c):
 * a slot's id names its query until the slot is reused, and never the
 * query that reuses it (fs-private.h, "search/ query files"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs-private.h"
#include "tap.h"

int main(void)
{
	struct chronikfs *fs = calloc(1, sizeof(*fs));
	char text[32];

	if (!fs)
		return 1;
	fs_queries_init(&fs->queries);
	struct fs_queries *q = &fs->queries;

	uint32_t a = fs_query_slot(fs, 7, -1, "wombat");
	ok(fs_query_slot(fs, 7, -1, "wombat") == a, "the same query names the same slot");
	ok(fs_query_slot(fs, 7, 0, "wombat") != a, "... not a partition's of the same text");
	struct fs_query_slot *e = fs_query_slot_get(q, a);
	ok(e && strcmp(e->text, "wombat") == 0 && e->tid == 7 && e->part == -1,
	   "its id gives the query");

	/* Every slot taken by other queries of the same topic: a's is reused. */
	uint32_t last = a;
	for (unsigned i = 0; i < FS_QUERY_SLOTS; i++) {
		snprintf(text, sizeof(text), "q%u", i);
		last = fs_query_slot(fs, 7, -1, text);
	}
	ok(fs_query_slot_get(q, a) == NULL, "a reused slot's old id answers nothing");
	e = fs_query_slot_get(q, last);
	snprintf(text, sizeof(text), "q%u", FS_QUERY_SLOTS - 1);
	ok(e && strcmp(e->text, text) == 0, "the new id gives the new query");
	uint32_t b = fs_query_slot(fs, 7, -1, "wombat");
	ok(b != a, "the query named again gets a new id");
	e = fs_query_slot_get(q, b);
	ok(e && strcmp(e->text, "wombat") == 0, "... which gives it");
	ok(fs_query_slot_get(q, FS_QUERY_SLOTS * 5u + 3) == NULL, "an id never given answers nothing");

	fs_queries_fini(q);
	free(fs);
	return tap_exit();
}
