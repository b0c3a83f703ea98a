/* fuzz.h - what the fuzz harnesses share.
 *
 * Every harness (tests/fuzz/fuzz_<name>.c) defines LLVMFuzzerTestOneInput
 * and is linked two ways (tests/fuzz/meson.build):
 *   - with libFuzzer (-Dfuzz=true, clang): bench/fuzz runs it for a while;
 *   - with replay.c, a plain main that feeds it every file of the corpus
 *     and regression directories given on its command line: the meson
 *     tests fuzz-<name> (suite fuzz), in the ordinary sanitizer build.
 * A harness aborts (FUZZ_CHECK) when a property it checks does not hold,
 * so a wrong answer is a crash like any other.
 */
#ifndef CHRONIK_FUZZ_H
#define CHRONIK_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Abort with file and line when cond is false. */
#define FUZZ_CHECK(cond)                                      \
	do {                                                  \
		if (!(cond))                                  \
			fuzz_fail(__FILE__, __LINE__, #cond); \
	} while (0)
__attribute__((noreturn)) void fuzz_fail(const char *file, int line, const char *what);

/* Silence the engine's log (a fuzzer's input makes it complain a lot). */
void fuzz_quiet(void);

/* A fresh directory for this process under $CHRONIK_FUZZ_DIR, $TMPDIR or
 * /tmp, removed at exit; the same path on every call. */
const char *fuzz_workdir(void);
/* Remove everything below path (not path itself). */
void fuzz_rm_below(const char *path);
/* Write buf[0, len) to path (created or truncated). 0 or -errno. */
int fuzz_write_file(const char *path, const void *buf, size_t len);

/* Make the CRCs of a WAL file image right where they can be (the file
 * header's, and every frame's whose lengths fit the buffer: the batch
 * CRC of a V2 frame, then the frame CRC), so that mutations reach what lies
 * behind the checks. buf[0, len) is changed in place. from is where frames
 * begin (WAL_FILE_HEADER_SIZE for a file image, 0 for bare frames). */
void fuzz_fix_wal_crcs(uint8_t *buf, size_t len, size_t from);
/* The same for one Kafka RecordBatch v2 at buf[0, len). */
void fuzz_fix_batch_crc(uint8_t *buf, size_t len);
/* The same for a segment file image (wal/segment.h): the header CRC, then,
 * when the trailer's sizes fit len, every batch CRC in [64, data_end), every
 * index entry's span CRC, the index CRC and the trailer CRC. */
void fuzz_fix_segment_crcs(uint8_t *buf, size_t len);

#endif
