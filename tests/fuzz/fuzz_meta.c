/* fuzz_meta.c - the metadata log (wal/meta.c) replayed by engine_open.
 *
 * Input: one byte of flags, then the bytes of DATA/meta.log (the corpus:
 * metadata logs the engine wrote, with topics, configs, deletions and
 * group offsets). Flags: bit 0 make the CRCs right first (fuzz.h), so the
 * JSON values of the events are what the mutations reach; bit 1 open with
 * repair.
 *
 * Checked, when engine_open succeeds: every topic listed has a valid name,
 * at least one partition, each partition gettable, and a config that is a
 * JSON object; engine_metadata_json answers; a new topic and a group
 * offset commit are accepted, and after close and a second open (no
 * repair) they are there and the topic list is what it was plus the new
 * topic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine.h"
#include "frame.h"
#include "fuzz.h"

static char dir[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	snprintf(dir, sizeof(dir), "%s/data", fuzz_workdir());
	return 0;
}

static void check_topics(struct engine *e, char ***names, size_t *n)
{
	FUZZ_CHECK(engine_topic_list(e, names, n) == 0);
	for (size_t i = 0; i < *n; i++) {
		int32_t parts;
		char *cfg;
		FUZZ_CHECK(engine_topic_name_valid((*names)[i]));
		FUZZ_CHECK(engine_topic_partitions(e, (*names)[i], &parts) == 0 && parts >= 1);
		struct partition *p;
		FUZZ_CHECK(engine_partition_get(e, (*names)[i], parts - 1, &p) == 0);
		engine_partition_unref(p);
		FUZZ_CHECK(engine_topic_config_get(e, (*names)[i], &cfg) == 0);
		FUZZ_CHECK(cfg[0] == '{');
		free(cfg);
	}
	char *json;
	FUZZ_CHECK(engine_metadata_json(e, &json) == 0);
	free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct engine_options o;
	struct engine *e;
	char path[4200];
	char **names, **names2;
	size_t n, n2;

	if (size < 1)
		return 0;
	uint8_t *log = malloc(size);
	FUZZ_CHECK(log != NULL);
	memcpy(log, data + 1, size - 1);
	if (data[0] & 1)
		fuzz_fix_wal_crcs(log, size - 1, WAL_FILE_HEADER_SIZE);
	fuzz_rm_below(dir);
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/meta.log", dir);
	FUZZ_CHECK(fuzz_write_file(path, log, size - 1) == 0);
	free(log);

	engine_options_init(&o);
	o.fsync = FSYNC_NEVER;
	o.repair = (data[0] & 2) != 0;
	if (engine_open(dir, &o, &e) != 0)
		return 0;
	check_topics(e, &names, &n);
	bool had_new = false;
	for (size_t i = 0; i < n; i++)
		had_new |= strcmp(names[i], "fuzz-new") == 0;
	int rc = engine_topic_create(e, "fuzz-new", 1, "{\"retention.ms\":\"1000\"}");
	FUZZ_CHECK(had_new ? rc == CHRONIK_ETOPICEXISTS : rc == 0);
	FUZZ_CHECK(engine_group_offset_commit(e, "g", "fuzz-new", 0, 7, "m") == 0);
	FUZZ_CHECK(engine_close(e) == 0);

	o.repair = false;
	FUZZ_CHECK(engine_open(dir, &o, &e) == 0);
	check_topics(e, &names2, &n2);
	FUZZ_CHECK(n2 == n + (had_new ? 0 : 1));
	int64_t off;
	char *meta;
	FUZZ_CHECK(engine_group_offset_fetch(e, "g", "fuzz-new", 0, &off, &meta) == 0);
	FUZZ_CHECK(off == 7 && meta && strcmp(meta, "m") == 0);
	free(meta);
	FUZZ_CHECK(engine_close(e) == 0);
	engine_strv_free(names, n);
	engine_strv_free(names2, n2);
	return 0;
}
