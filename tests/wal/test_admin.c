/* test_admin.c - the engine calls behind Kafka's admin APIs (meta.c):
 *   - engine_topic_partitions_add raises a topic's partition count: the new
 *     partitions take appends at once, a count not above the current one
 *     and one past max.partitions are refused, and the count and the data
 *     survive a restart (the "topic.partitions" event is replayed);
 *   - engine_group_offsets_delete and engine_group_delete forget committed
 *     offsets durably; engine_group_list lists the groups with an offset,
 *     and a group whose last offset is forgotten is gone;
 *   - replay checks a "topic.partitions" event as the live call would: one
 *     raising the count is applied, one lowering it is corruption. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "frame.h"

#include "testutil.h"

static int fetch(struct engine *e, const char *g, const char *t, int32_t p)
{
	int64_t off = -2;
	char *md = NULL;
	if (engine_group_offset_fetch(e, g, t, p, &off, &md) != 0)
		return -100;
	free(md);
	return (int)off;
}

/* The groups listed, joined by ','. */
static void groups_text(struct engine *e, char *out, size_t cap)
{
	char **v = NULL;
	size_t n = 0;
	out[0] = 0;
	if (engine_group_list(e, &v, &n) != 0) {
		snprintf(out, cap, "(error)");
		return;
	}
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", v[i]);
	engine_strv_free(v, n);
}

/* Append the event key/value to DIR/meta.log as the next frame. */
static void meta_append(const char *dir, const char *key, const char *value)
{
	char path[4200];
	struct stat st;
	struct frame_info fi = { 0 };
	uint8_t *f;
	size_t len;
	snprintf(path, sizeof(path), "%s/meta.log", dir);
	int fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0 || fstat(fd, &st) < 0)
		bail("open %s", path);
	fi.flags = FRAME_FLAG_GROUP_END;
	fi.base_offset = 1000;
	fi.timestamp = 1;
	fi.key = (const uint8_t *)key;
	fi.key_len = (int32_t)strlen(key);
	fi.value = (const uint8_t *)value;
	fi.value_len = (int32_t)strlen(value);
	if (frame_v1_encode(&fi, &f, &len) != 0 || write(fd, f, len) != (ssize_t)len)
		bail("append to %s", path);
	free(f);
	close(fd);
}

int main(void)
{
	char *dir = tmpdir_new("admin");
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	int32_t np = 0;
	int64_t base = -1;
	char text[256];
	int rc;

	engine_options_init(&o);
	o.max_partitions = 6;
	e = open_or_bail(dir, &o);
	if (engine_topic_create(e, "t", 2, NULL) != 0)
		bail("create");
	p = part_or_bail(e, "t", 0);
	if (engine_append_lines(p, "a\nb\n", 4, &base) != 0)
		bail("append");
	engine_partition_unref(p);

	rc = engine_topic_partitions_add(e, "t", 4);
	ok(rc == 0 && engine_topic_partitions(e, "t", &np) == 0 && np == 4,
	   "partitions raised from 2 to 4 (%s, count %d)", chronik_strerror(rc), np);
	rc = engine_partition_get(e, "t", 3, &p);
	ok(rc == 0, "partition 3 exists at once");
	if (rc == 0) {
		rc = engine_append_lines(p, "x\ny\nz\n", 6, &base);
		ok(rc == 0 && base == 0, "and takes an append from offset 0 (%s)",
		   chronik_strerror(rc));
		engine_partition_unref(p);
	} else {
		ok(0, "and takes an append from offset 0");
	}
	ok(engine_topic_partitions_add(e, "t", 4) == -EINVAL, "the same count is refused");
	ok(engine_topic_partitions_add(e, "t", 3) == -EINVAL, "a lower count is refused");
	rc = engine_topic_partitions_add(e, "t", 7);
	ok(rc == CHRONIK_ELIMIT, "7 partitions past max.partitions 6: %s", chronik_strerror(rc));
	ok(engine_topic_partitions_add(e, "nope", 9) == CHRONIK_ENOTOPIC, "unknown topic");

	struct engine_offset_commit c[2] = {
		{ .topic = "t", .partition = 0, .offset = 5 },
		{ .topic = "t", .partition = 3, .offset = 7 },
	};
	if (engine_group_offsets_commit(e, "g1", c, 2) != 0 ||
	    engine_group_offset_commit(e, "g2", "t", 1, 9, NULL) != 0)
		bail("commit");
	groups_text(e, text, sizeof(text));
	ok(strcmp(text, "g1,g2") == 0, "groups listed: %s", text);

	struct engine_offset_commit d[1] = { { .topic = "t", .partition = 0 } };
	rc = engine_group_offsets_delete(e, "g1", d, 1);
	ok(rc == 0 && d[0].rc == 0 && fetch(e, "g1", "t", 0) == -1 && fetch(e, "g1", "t", 3) == 7,
	   "g1's offset of t/0 forgotten, t/3's kept (%s)", chronik_strerror(rc));
	rc = engine_group_offsets_delete(e, "nogroup", d, 1);
	ok(rc == -ENOENT && d[0].rc == -ENOENT, "offsets of an unknown group: %s",
	   chronik_strerror(rc));
	ok(engine_group_delete(e, "nogroup") == -ENOENT, "an unknown group is not deleted");
	engine_close(e);

	e = open_or_bail(dir, &o);
	p = NULL;
	rc = engine_topic_partitions(e, "t", &np);
	if (engine_partition_get(e, "t", 3, &p) == 0)
		engine_partition_info(p, &info);
	ok(rc == 0 && np == 4 && p && info.next_offset == 3,
	   "after a restart: 4 partitions, partition 3 holds its 3 records");
	if (p)
		engine_partition_unref(p);
	ok(fetch(e, "g1", "t", 0) == -1 && fetch(e, "g1", "t", 3) == 7 &&
		   fetch(e, "g2", "t", 1) == 9,
	   "and the offsets forgotten stay forgotten, the others stay");

	rc = engine_group_delete(e, "g2");
	groups_text(e, text, sizeof(text));
	ok(rc == 0 && fetch(e, "g2", "t", 1) == -1 && strcmp(text, "g1") == 0,
	   "g2 deleted: groups %s", text);
	d[0].partition = 3;
	rc = engine_group_offsets_delete(e, "g1", d, 1);
	groups_text(e, text, sizeof(text));
	ok(rc == 0 && strcmp(text, "") == 0, "g1's last offset forgotten: no group left (%s)",
	   text);
	engine_close(e);

	e = open_or_bail(dir, &o);
	groups_text(e, text, sizeof(text));
	ok(strcmp(text, "") == 0 && fetch(e, "g2", "t", 1) == -1,
	   "after a restart no group is back (%s)", text);
	engine_close(e);
	tmpdir_free(dir);

	dir = tmpdir_new("admin");
	e = open_or_bail(dir, NULL);
	if (engine_topic_create(e, "r", 2, NULL) != 0)
		bail("create r");
	engine_close(e);
	meta_append(dir, "topic.partitions", "{\"id\":1,\"partitions\":3}");
	e = open_or_bail(dir, NULL);
	np = 0;
	rc = engine_topic_partitions(e, "r", &np);
	ok(rc == 0 && np == 3, "a replayed topic.partitions event raises the count to %d", np);
	engine_close(e);
	meta_append(dir, "topic.partitions", "{\"id\":1,\"partitions\":2}");
	rc = engine_open(dir, NULL, &e);
	ok(rc == CHRONIK_ECORRUPT, "one lowering it is corruption: %s", chronik_strerror(rc));
	if (rc == 0)
		engine_close(e);
	tmpdir_free(dir);
	return tap_exit();
}
