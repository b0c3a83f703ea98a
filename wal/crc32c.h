/* crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of Kafka's RecordBatch v2 and of chronik's WAL frames.
 *
 * crc32c(0, "123456789", 9) == 0xE3069283. Calls chain:
 * crc32c(crc32c(0, a, n), b, m) == crc32c(0, a||b, n+m).
 * Uses the CPU's crc32 instruction (SSE4.2) where present, chosen once at
 * run time; a portable table-driven fallback otherwise.
 */
#ifndef CHRONIK_CRC32C_H
#define CHRONIK_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/* The portable implementation, always available (tests compare the two). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* 1 when crc32c() uses the hardware instruction. */
int crc32c_hw_available(void);

#endif
