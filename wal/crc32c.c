/* crc32c.c - CRC-32C (Castagnoli), hardware and portable.
 *
 * The CRC register convention: crc32c(crc, ...) inverts crc on entry and on
 * exit, so 0 starts a new checksum and a returned value chains into the next
 * call (see crc32c.h). Internally every routine works on the raw register
 * ("update" functions below take and return the register, no inversion).
 *
 * Portable path: slicing-by-8 over eight 256-entry tables (little-endian
 * hosts; byte at a time elsewhere).
 *
 * Hardware path (x86-64 with SSE4.2): the crc32 instruction on 8 bytes at a
 * time. The instruction's latency is three times its throughput, so large
 * buffers run three independent streams over three adjacent blocks and join
 * them afterwards: for a register r and a block D of n bytes,
 *
 *     update(r, D) = shift_n(r) ^ update(0, D)
 *
 * where shift_n(r) is the register after feeding n zero bytes from r. shift_n
 * is linear over GF(2), so it is stored as four 256-entry tables (one per byte
 * of r), built once from the 32 images of the single-bit registers.
 *
 * Both the tables and the choice of implementation are made once, under
 * pthread_once, on first use.
 */
#include "crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HAVE_X86 1
#include <nmmintrin.h>
#else
#define CRC32C_HAVE_X86 0
#endif

#define POLY 0x82F63B78u /* reflected Castagnoli polynomial */

/* Block sizes of the three-stream hardware loop: long blocks for big
 * buffers, short ones for the remainder. */
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

_Static_assert(LONG_BLOCK % 8 == 0 && SHORT_BLOCK % 8 == 0, "blocks are whole 8-byte words");

static uint32_t sw_table[8][256];
static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
static bool use_hw;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* ---- portable ---------------------------------------------------------- */

static uint32_t sw_update_bytes(uint32_t r, const uint8_t *p, size_t len)
{
	while (len--)
		r = sw_table[0][(r ^ *p++) & 0xff] ^ (r >> 8);
	return r;
}

static uint32_t sw_update(uint32_t r, const uint8_t *p, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while (len && ((uintptr_t)p & 7)) {
		r = sw_table[0][(r ^ *p++) & 0xff] ^ (r >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= r;
		r = sw_table[7][w & 0xff] ^ sw_table[6][(w >> 8) & 0xff] ^
		    sw_table[5][(w >> 16) & 0xff] ^ sw_table[4][(w >> 24) & 0xff] ^
		    sw_table[3][(w >> 32) & 0xff] ^ sw_table[2][(w >> 40) & 0xff] ^
		    sw_table[1][(w >> 48) & 0xff] ^ sw_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
#endif
	return sw_update_bytes(r, p, len);
}

/* Build the four byte tables of shift_n from the 32 single-bit images. */
static void shift_table_build(uint32_t t[4][256], size_t n)
{
	static const uint8_t zeros[SHORT_BLOCK];
	uint32_t basis[32];

	for (int j = 0; j < 32; j++) {
		uint32_t r = (uint32_t)1 << j;
		for (size_t done = 0; done < n; done += sizeof(zeros))
			r = sw_update(r, zeros, sizeof(zeros));
		basis[j] = r;
	}
	for (int k = 0; k < 4; k++) {
		for (int i = 0; i < 256; i++) {
			uint32_t v = 0;
			for (int b = 0; b < 8; b++)
				if (i & (1 << b))
					v ^= basis[8 * k + b];
			t[k][i] = v;
		}
	}
}

static inline uint32_t shift_apply(uint32_t t[4][256], uint32_t r)
{
	return t[0][r & 0xff] ^ t[1][(r >> 8) & 0xff] ^ t[2][(r >> 16) & 0xff] ^ t[3][r >> 24];
}

/* ---- hardware ---------------------------------------------------------- */

#if CRC32C_HAVE_X86
__attribute__((target("sse4.2"))) static uint32_t hw_update(uint32_t r, const uint8_t *p,
							    size_t len)
{
	uint64_t c0 = r;

	while (len && ((uintptr_t)p & 7)) {
		c0 = _mm_crc32_u8((uint32_t)c0, *p++);
		len--;
	}

	/* Three streams over three adjacent blocks of n bytes each. */
	while (len >= 3 * SHORT_BLOCK) {
		size_t n = len >= 3 * LONG_BLOCK ? LONG_BLOCK : SHORT_BLOCK;
		uint32_t(*t)[256] = n == LONG_BLOCK ? shift_long : shift_short;
		uint64_t c1 = 0, c2 = 0;
		const uint8_t *end = p + n;

		do {
			uint64_t w0, w1, w2;
			memcpy(&w0, p, 8);
			memcpy(&w1, p + n, 8);
			memcpy(&w2, p + 2 * n, 8);
			c0 = _mm_crc32_u64(c0, w0);
			c1 = _mm_crc32_u64(c1, w1);
			c2 = _mm_crc32_u64(c2, w2);
			p += 8;
		} while (p < end);
		c0 = shift_apply(t, (uint32_t)c0) ^ (uint32_t)c1;
		c0 = shift_apply(t, (uint32_t)c0) ^ (uint32_t)c2;
		p += 2 * n;
		len -= 3 * n;
	}

	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c0 = _mm_crc32_u64(c0, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c0 = _mm_crc32_u8((uint32_t)c0, *p++);
	return (uint32_t)c0;
}
#endif

/* ---- set-up and entry points ------------------------------------------ */

static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t r = i;
		for (int b = 0; b < 8; b++)
			r = (r >> 1) ^ (POLY & (0u - (r & 1)));
		sw_table[0][i] = r;
	}
	for (int k = 1; k < 8; k++)
		for (int i = 0; i < 256; i++)
			sw_table[k][i] = sw_table[0][sw_table[k - 1][i] & 0xff] ^
					 (sw_table[k - 1][i] >> 8);

	shift_table_build(shift_long, LONG_BLOCK);
	shift_table_build(shift_short, SHORT_BLOCK);

#if CRC32C_HAVE_X86
	__builtin_cpu_init();
	use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&init_once, crc32c_init);
	return ~sw_update(~crc, buf, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&init_once, crc32c_init);
#if CRC32C_HAVE_X86
	if (use_hw)
		return ~hw_update(~crc, buf, len);
#endif
	return ~sw_update(~crc, buf, len);
}

int crc32c_hw_available(void)
{
	pthread_once(&init_once, crc32c_init);
	return use_hw ? 1 : 0;
}
