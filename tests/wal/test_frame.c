/* test_frame.c - WAL frame codec, V2 and V1, and one reader for both. */
#include <fcntl.h>
#include <sys/stat.h>

#include "byteorder.h"
#include "frame.h"
#include "testutil.h"

static uint8_t *make_batch(int n, size_t *len)
{
	struct batch_builder b;
	uint8_t *out;
	batch_builder_init(&b);
	for (int i = 0; i < n; i++) {
		char v[32];
		struct record_in r = { .timestamp = 1000 + i, .key_len = -1, .value = v };
		r.value_len = sprintf(v, "value-%d", i);
		batch_builder_add(&b, &r);
	}
	if (batch_builder_finish(&b, &out, len))
		bail("batch_builder_finish");
	batch_builder_fini(&b);
	return out;
}

static void test_v2(void)
{
	size_t blen;
	uint8_t *batch = make_batch(3, &blen);
	uint8_t *frame = malloc(FRAME_V2_HEADER_SIZE + blen);
	struct frame_info in = { 0 }, out;
	size_t flen = FRAME_V2_HEADER_SIZE + blen;
	int bad = 0;

	batch_set_base_offset(batch, 77);
	in.topic_id = 9;
	in.partition = 4;
	in.base_offset = 77;
	in.last_offset = 79;
	in.record_count = 3;
	in.raw_len = 24;
	in.max_timestamp = 1002;
	in.raw_pos = 12345;
	frame_v2_header_encode(frame, &in, batch, blen);
	memcpy(frame + FRAME_V2_HEADER_SIZE, batch, blen);
	ok(frame_decode(frame, flen, &out) == FRAME_VALID, "V2 frame decodes");
	ok(out.version == 2 && out.topic_id == 9 && out.partition == 4 && out.base_offset == 77 &&
		   out.last_offset == 79 && out.record_count == 3 && out.raw_len == 24 &&
		   out.max_timestamp == 1002 && out.raw_pos == 12345 && out.batch_len == blen &&
		   out.frame_len == flen,
	   "V2 fields round trip");
	ok(get_le32(frame + 8) == flen && frame[4] == 2 && get_le16(frame + 6) == 64,
	   "length, version and header length at their documented offsets");
	for (size_t i = 0; i < flen; i++) {
		frame[i] ^= 0x40;
		if (frame_decode(frame, flen, &out) == FRAME_VALID)
			bad++;
		frame[i] ^= 0x40;
	}
	ok(bad == 0, "a flipped bit anywhere in the V2 frame is caught (%d missed)", bad);
	bad = 0;
	for (size_t i = 0; i < flen; i++)
		if (frame_decode(frame, i, &out) != FRAME_SHORT)
			bad++;
	ok(bad == 0, "every truncation is SHORT");
	/* 3 is the sync point (frame.h); 4 and up are unknown */
	frame[4] = 4;
	ok(frame_decode(frame, flen, &out) == FRAME_UNKNOWN_VERSION, "version 4 is unknown");
	free(frame);
	free(batch);
}

static void test_v1(void)
{
	uint8_t hdrs[64], *f;
	size_t hl = 0, flen;
	struct frame_info in = { 0 }, out;
	int bad = 0;

	put_le32(hdrs, 2);
	memcpy(hdrs + 4, "hk", 2);
	put_le32(hdrs + 6, 3);
	memcpy(hdrs + 10, "hv1", 3);
	hl = 13;
	in.topic_id = 0;
	in.partition = 2;
	in.base_offset = 5;
	in.timestamp = 99;
	in.key = (const uint8_t *)"key";
	in.key_len = 3;
	in.value = (const uint8_t *)"some value";
	in.value_len = 10;
	in.header_count = 1;
	in.headers = hdrs;
	in.headers_len = hl;
	ok(frame_v1_encode(&in, &f, &flen) == 0 && flen == 56 + 3 + 10 + 13,
	   "V1 encodes to 56 + key + value + headers bytes");
	ok(frame_decode(f, flen, &out) == FRAME_VALID && out.version == 1 && out.base_offset == 5 &&
		   out.timestamp == 99 && out.key_len == 3 && memcmp(out.key, "key", 3) == 0 &&
		   out.value_len == 10 && memcmp(out.value, "some value", 10) == 0 &&
		   out.header_count == 1 && out.headers_len == hl,
	   "V1 fields round trip");
	for (size_t i = 0; i < flen; i++) {
		f[i] ^= 1;
		if (frame_decode(f, flen, &out) == FRAME_VALID)
			bad++;
		f[i] ^= 1;
	}
	ok(bad == 0, "a flipped bit anywhere in the V1 frame is caught");
	free(f);
	in.key_len = -1;
	in.value_len = -1;
	in.header_count = 0;
	in.headers_len = 0;
	ok(frame_v1_encode(&in, &f, &flen) == 0 && frame_decode(f, flen, &out) == FRAME_VALID &&
		   out.key_len == -1 && out.value_len == -1 && out.key == NULL,
	   "V1 null key and value");
	free(f);
}

struct walk {
	char versions[64];
	int n;
};

static int walk_cb(void *arg, uint64_t pos, enum frame_status st, const struct frame_info *fi)
{
	struct walk *w = arg;
	(void)pos;
	if (st == FRAME_VALID && w->n < 63)
		w->versions[w->n++] = (char)('0' + fi->version);
	return 0;
}

/* A V1 frame written into the data WAL between V2 frames is read back by the
 * same reader: walk, recovery, cursor, raw view and batch reads. */
static void test_mixed(void)
{
	char *dir = tmpdir_new("frame");
	char path[4096];
	struct engine *e = open_or_bail(dir, NULL);
	struct partition *p;
	struct frame_info fi = { 0 };
	uint8_t *f;
	size_t flen;
	int64_t base;
	int fd;

	engine_topic_create(e, "mix", 1, NULL);
	p = part_or_bail(e, "mix", 0);
	engine_append_lines(p, "a\nb\n", 4, &base);
	engine_partition_unref(p);
	engine_close(e);

	/* topic ids start at 1: "mix" is 1 */
	fi.topic_id = 1;
	fi.partition = 0;
	fi.base_offset = 2;
	fi.timestamp = 4242;
	fi.key = (const uint8_t *)"k";
	fi.key_len = 1;
	fi.value = (const uint8_t *)"from-v1";
	fi.value_len = 7;
	uint8_t hv1[32];
	put_le32(hv1, 3);
	memcpy(hv1 + 4, "src", 3);
	put_le32(hv1 + 7, 2);
	memcpy(hv1 + 11, "v1", 2);
	fi.header_count = 1;
	fi.headers = hv1;
	fi.headers_len = 13;
	frame_v1_encode(&fi, &f, &flen);
	snprintf(path, sizeof(path), "%s/wal/%020d.wal", dir, 0);
	fd = open(path, O_WRONLY | O_APPEND);
	ok(fd >= 0 && write(fd, f, flen) == (ssize_t)flen, "V1 frame appended to the WAL file");
	close(fd);
	free(f);

	e = open_or_bail(dir, NULL);
	p = part_or_bail(e, "mix", 0);
	ok(engine_append_lines(p, "c\n", 2, &base) == 0 && base == 3,
	   "next V2 append follows the V1 record");
	char raw[64];
	ssize_t n = engine_read_raw(p, 0, raw, sizeof(raw));
	ok(n == 14 && memcmp(raw, "a\nb\nfrom-v1\nc\n", 14) == 0,
	   "raw view shows the V1 record in order");
	struct engine_cursor *c;
	struct engine_record r;
	engine_cursor_open(p, 2, &c);
	ok(engine_cursor_next(c, &r) == 1 && r.offset == 2 && r.timestamp == 4242 &&
		   r.key_len == 1 && r.value_len == 7,
	   "cursor returns the V1 record with key and timestamp");
	{
		const uint8_t *hp = r.headers;
		struct batch_record_header h;
		ok(r.header_count == 1 &&
			   batch_record_header_next(&hp, r.headers + r.headers_len, &h) == 1 &&
			   h.key_len == 3 && memcmp(h.key, "src", 3) == 0 && h.value_len == 2 &&
			   memcmp(h.value, "v1", 2) == 0,
		   "and its header, in the batch encoding");
	}
	engine_cursor_close(c);
	uint8_t *bb;
	size_t blen;
	struct batch_header bh;
	ok(engine_read_batches(p, 2, 1, &bb, &blen) == 0 &&
		   batch_header_parse(bb, blen, &bh) == 0 && bh.base_offset == 2 &&
		   bh.record_count == 1 && batch_crc_check(bb, blen) == 0,
	   "read_batches turns the V1 record into a valid batch at offset 2");
	{
		struct batch_iter it;
		struct batch_record br;
		ok(batch_iter_init(&it, bb, blen) == 0 && batch_iter_next(&it, &br) == 1 &&
			   br.header_count == 1 && br.value_len == 7,
		   "with its header");
		batch_iter_fini(&it);
	}
	free(bb);
	ok(engine_verify(e, NULL, NULL) == 0, "verify accepts V1 among V2");
	engine_partition_unref(p);
	engine_close(e);

	struct walk w = { 0 };
	ok(wal_file_walk(path, walk_cb, &w) == 0 && strcmp(w.versions, "212") == 0,
	   "one walk reads versions %s", w.versions);

	/* an unknown version is an error naming the position, never skipped */
	fd = open(path, O_RDWR);
	struct stat st;
	fstat(fd, &st);
	uint8_t v = 9;
	/* the first frame starts right after the 32-byte file header */
	pwrite(fd, &v, 1, 32 + 4);
	close(fd);
	ok(engine_open(dir, NULL, &e) == CHRONIK_EVERSION, "unknown frame version fails the open");
	tmpdir_free(dir);
}

/* frame_reader (frame.h): a frame longer than the first read is read
 * whole, and a length field that runs past the file's end is FRAME_SHORT
 * without a buffer of that length. */
static void test_reader(void)
{
	char *dir = tmpdir_new("reader");
	char path[4096];
	struct frame_info in = { 0 }, fi;
	uint8_t hdr[WAL_FILE_HEADER_SIZE], *big, *small;
	size_t big_len, small_len;
	static char value[100000];

	memset(value, 'v', sizeof(value));
	in.topic_id = 1;
	in.key_len = -1;
	in.value = (const uint8_t *)value;
	in.value_len = (int32_t)sizeof(value);
	if (frame_v1_encode(&in, &big, &big_len))
		bail("frame_v1_encode");
	in.base_offset = 1;
	in.value_len = 5;
	if (frame_v1_encode(&in, &small, &small_len))
		bail("frame_v1_encode");
	snprintf(path, sizeof(path), "%s/%020d.wal", dir, 0);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		bail("open %s", path);
	wal_file_header_encode(hdr, 0, WAL_FILE_VERSION, 0);
	ok(write(fd, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr) &&
		   write(fd, small, small_len) == (ssize_t)small_len &&
		   write(fd, big, big_len) == (ssize_t)big_len,
	   "a small and a %zu-byte frame written", big_len);
	/* a damaged frame: the small one claiming 200 MiB */
	put_le32(small + 8, 200u << 20);
	ok(write(fd, small, small_len) == (ssize_t)small_len, "and a frame whose length says 200 MiB");

	struct frame_reader r;
	frame_reader_init(&r, fd);
	uint64_t pos = WAL_FILE_HEADER_SIZE;
	ok(frame_reader_decode(&r, pos, &fi) == FRAME_VALID && fi.value_len == 5,
	   "the small frame reads");
	pos += fi.frame_len;
	ok(frame_reader_decode(&r, pos, &fi) == FRAME_VALID &&
		   fi.value_len == (int32_t)sizeof(value) && memcmp(fi.value, value, sizeof(value)) == 0,
	   "the frame longer than the first read reads whole");
	pos += fi.frame_len;
	ok(frame_reader_decode(&r, pos, &fi) == FRAME_SHORT, "the damaged length is FRAME_SHORT");
	ok(r.cap < ((size_t)1 << 20), "without a buffer of its length (%zu bytes)", r.cap);
	frame_reader_fini(&r);
	close(fd);
	free(big);
	free(small);
	tmpdir_free(dir);
}

int main(void)
{
	test_v2();
	test_v1();
	test_mixed();
	test_reader();
	return tap_exit();
}
