/* test_codec.c - the Kafka wire reader/writer, without a server. (The
 * decompressors are the engine's: tests/unit/test_codecs.c.) */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "tap.h"

static void test_reader(void)
{
	struct kafka_writer w;
	struct kafka_reader r;

	kafka_writer_init(&w, 0);
	kafka_write_i8(&w, -3);
	kafka_write_i16(&w, -2);
	kafka_write_i32(&w, 0x12345678);
	kafka_write_i64(&w, -1234567890123ll);
	kafka_write_varint(&w, -300);
	kafka_write_uvarint(&w, 300);
	kafka_write_string(&w, false, "abc");
	kafka_write_string(&w, false, NULL);
	kafka_write_string(&w, true, "compact");
	kafka_write_string(&w, true, NULL);
	kafka_write_bytes(&w, false, "xy", 2);
	kafka_write_bytes(&w, true, NULL, -1);
	kafka_write_array(&w, false, 2);
	kafka_write_i32(&w, 7);
	kafka_write_i32(&w, 8);
	kafka_write_tags(&w);
	ok(!w.failed, "writer wrote every type");

	kafka_reader_init(&r, w.buf, w.len);
	ok(kafka_read_i8(&r) == -3, "int8");
	ok(kafka_read_i16(&r) == -2, "int16");
	ok(kafka_read_i32(&r) == 0x12345678, "int32 big-endian");
	ok(kafka_read_i64(&r) == -1234567890123ll, "int64");
	ok(kafka_read_varint(&r) == -300, "zig-zag varint");
	ok(kafka_read_uvarint(&r) == 300, "unsigned varint");
	ok(kafka_str_eq(kafka_read_string(&r, false, false), "abc"), "string");
	ok(kafka_read_string(&r, false, true).len == -1, "nullable string null");
	ok(kafka_str_eq(kafka_read_string(&r, true, false), "compact"), "compact string");
	ok(kafka_read_string(&r, true, true).len == -1, "compact null string");
	struct kafka_str b = kafka_read_bytes(&r, false, false);
	ok(b.len == 2 && memcmp(b.ptr, "xy", 2) == 0, "bytes");
	ok(kafka_read_bytes(&r, true, true).len == -1, "compact null bytes");
	int32_t n = kafka_read_array(&r, false, false, 4);
	ok(n == 2 && kafka_read_i32(&r) == 7 && kafka_read_i32(&r) == 8, "array of int32");
	kafka_read_tags(&r);
	ok(!kafka_reader_failed(&r) && kafka_reader_left(&r) == 0, "read exactly what was written");
	ok(kafka_read_i32(&r) == 0 && kafka_reader_failed(&r), "reading past the end fails");
	ok(kafka_read_i64(&r) == 0 && kafka_reader_failed(&r), "and the failure is sticky");

	/* A null where the schema has none is malformed. */
	kafka_writer_reset(&w);
	kafka_write_string(&w, false, NULL);
	kafka_reader_init(&r, w.buf, w.len);
	(void)kafka_read_string(&r, false, false);
	ok(kafka_reader_failed(&r), "null in a non-nullable string fails");

	/* A string longer than the bytes left. */
	uint8_t shortstr[] = { 0x00, 0x10, 'a', 'b' };
	kafka_reader_init(&r, shortstr, sizeof(shortstr));
	(void)kafka_read_string(&r, false, false);
	ok(kafka_reader_failed(&r), "truncated string fails");

	/* An array count that cannot fit in the bytes left. */
	uint8_t bigarr[] = { 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
	kafka_reader_init(&r, bigarr, sizeof(bigarr));
	(void)kafka_read_array(&r, false, false, 4);
	ok(kafka_reader_failed(&r), "array count * element size > bytes left fails");
	uint8_t negarr[] = { 0xff, 0xff, 0xff, 0xfe };
	kafka_reader_init(&r, negarr, sizeof(negarr));
	(void)kafka_read_array(&r, false, true, 4);
	ok(kafka_reader_failed(&r), "array count -2 fails");
	uint8_t nullarr[] = { 0xff, 0xff, 0xff, 0xff };
	kafka_reader_init(&r, nullarr, sizeof(nullarr));
	ok(kafka_read_array(&r, false, true, 4) == -1 && !kafka_reader_failed(&r),
	   "array count -1 is null when nullable");
	kafka_reader_init(&r, nullarr, sizeof(nullarr));
	(void)kafka_read_array(&r, false, false, 4);
	ok(kafka_reader_failed(&r), "array count -1 fails when not nullable");

	/* An overlong varint (more than 10 bytes). */
	uint8_t longv[12];
	memset(longv, 0xff, sizeof(longv));
	kafka_reader_init(&r, longv, sizeof(longv));
	(void)kafka_read_uvarint(&r);
	ok(kafka_reader_failed(&r), "an 11-byte varint fails");

	/* Tagged fields whose size runs past the end. */
	uint8_t tags[] = { 0x01, 0x00, 0x7f, 'x' };
	kafka_reader_init(&r, tags, sizeof(tags));
	kafka_read_tags(&r);
	ok(kafka_reader_failed(&r), "a tagged field larger than the request fails");

	/* Writer limit. */
	struct kafka_writer lw;
	kafka_writer_init(&lw, 8);
	kafka_write_i64(&lw, 1);
	ok(!lw.failed, "writer accepts up to its limit");
	kafka_write_i8(&lw, 1);
	ok(lw.failed, "writer fails past its limit");
	kafka_writer_fini(&lw);
	kafka_writer_fini(&w);
}

int main(void)
{
	test_reader();
	return tap_exit();
}
