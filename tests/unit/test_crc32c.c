/* test_crc32c.c - CRC-32C: published vectors, hardware == portable on every
 * length and alignment, and the chaining property of crc32c.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "tap.h"

/* Bit at a time, straight from the definition: the reference both
 * implementations are held against. */
static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return ~crc;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int check_vector(const char *name, const void *buf, size_t len, uint32_t want)
{
	uint32_t hw = crc32c(0, buf, len), sw = crc32c_sw(0, buf, len);
	uint32_t bit = crc32c_bitwise(0, buf, len);
	return ok(hw == want && sw == want && bit == want,
		  "%s: crc32c %08x sw %08x bitwise %08x want %08x", name, hw, sw, bit, want);
}

int main(void)
{
	uint8_t v[48];
	/* RFC 3720 B.4, "iSCSI Read (10) Command PDU". */
	static const uint8_t iscsi_read[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};

	tap_plan(13);
	diag("hardware crc32c: %s", crc32c_hw_available() ? "yes" : "no");

	/* Vectors: the catalogue's check value and RFC 3720 appendix B.4. */
	check_vector("\"123456789\"", "123456789", 9, 0xE3069283u);
	memset(v, 0, 32);
	check_vector("32 x 0x00", v, 32, 0x8A9136AAu);
	memset(v, 0xff, 32);
	check_vector("32 x 0xff", v, 32, 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		v[i] = (uint8_t)i;
	check_vector("0x00..0x1f", v, 32, 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		v[i] = (uint8_t)(31 - i);
	check_vector("0x1f..0x00", v, 32, 0x113FDB5Cu);
	check_vector("iSCSI read PDU", iscsi_read, sizeof(iscsi_read), 0xD9963A56u);
	ok(crc32c(0, NULL, 0) == 0 && crc32c(0x12345678u, NULL, 0) == 0x12345678u,
	   "empty input leaves the crc unchanged");

	/* Hardware and portable agree with the bitwise reference on every
	 * length up to 1100 at every alignment 0..7, and on the large sizes
	 * that take the three-stream paths (with odd tails). */
	{
		size_t big = 3 * 8192 * 2 + 3 * 256 + 77 + 8;
		uint8_t *buf = malloc(big);
		int bad = 0, checked = 0;
		if (!buf)
			bail("out of memory");
		for (size_t i = 0; i < big; i++)
			buf[i] = (uint8_t)rng();
		for (size_t align = 0; align < 8; align++) {
			for (size_t len = 0; len <= 1100; len++) {
				uint32_t seed = (uint32_t)rng();
				uint32_t want = crc32c_bitwise(seed, buf + align, len);
				checked++;
				if (crc32c(seed, buf + align, len) != want ||
				    crc32c_sw(seed, buf + align, len) != want) {
					if (bad++ < 5)
						diag("mismatch at align %zu len %zu", align, len);
				}
			}
		}
		ok(bad == 0, "hw and sw equal the reference on %d (alignment, length) pairs",
		   checked);

		bad = 0;
		checked = 0;
		static const size_t sizes[] = { 3 * 256,
						3 * 256 + 1,
						3 * 8192 - 1,
						3 * 8192,
						3 * 8192 + 13,
						3 * 8192 * 2,
						3 * 8192 * 2 + 3 * 256 + 77 };
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			for (size_t align = 0; align < 8; align += 3) {
				uint32_t want = crc32c_bitwise(0, buf + align, sizes[s]);
				checked++;
				if (crc32c(0, buf + align, sizes[s]) != want ||
				    crc32c_sw(0, buf + align, sizes[s]) != want) {
					if (bad++ < 5)
						diag("mismatch at align %zu len %zu", align,
						     sizes[s]);
				}
			}
		}
		ok(bad == 0, "hw and sw equal the reference on %d large buffers", checked);

		/* Chaining: any split point gives the one-shot crc. */
		uint32_t whole = crc32c(0, buf, big), whole_sw = crc32c_sw(0, buf, big);
		bad = 0;
		for (int t = 0; t < 300; t++) {
			size_t a = rng() % (big + 1);
			size_t b = a + rng() % (big - a + 1);
			uint32_t c = crc32c(0, buf, a);
			c = crc32c(c, buf + a, b - a);
			c = crc32c(c, buf + b, big - b);
			uint32_t d = crc32c_sw(crc32c_sw(0, buf, a), buf + a, big - a);
			if (c != whole || d != whole_sw)
				bad++;
		}
		ok(whole == whole_sw, "hw and sw agree on the whole buffer");
		ok(bad == 0, "crc32c(crc32c(0,a),b) == crc32c(0,a||b) at 300 random split points");
		uint32_t c = 0;
		for (size_t i = 0; i < 1000; i++)
			c = crc32c(c, buf + i, 1);
		ok(c == crc32c(0, buf, 1000), "byte-by-byte chaining equals one call");
		free(buf);
	}

	/* The hardware flag matches what the CPU reports (x86-64). */
#if defined(__x86_64__)
	__builtin_cpu_init();
	ok(crc32c_hw_available() == (__builtin_cpu_supports("sse4.2") ? 1 : 0),
	   "crc32c_hw_available() matches the CPU's sse4.2 flag");
#else
	ok(crc32c_hw_available() == 0, "no hardware path off x86-64");
#endif
	return tap_exit();
}
