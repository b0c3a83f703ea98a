/* lines.h - the line splitter of the append views (data, records.jsonl).
 *
 * An append view takes newline-delimited records from write requests that
 * may cut a line anywhere. One fs_lines per open file keeps the trailing
 * partial line ("pending") between requests. The policy (the top of
 * ops_file.c says it from the user's side):
 *
 *   1. A request without a '\n' only grows the pending line.
 *   2. A request with a '\n': its complete lines (the pending line first,
 *      then the request up to and including its last '\n') go to emit as
 *      one buffer, which ends with '\n'; what follows the last '\n' becomes
 *      the new pending line.
 *   3. The pending line may hold at most max bytes, and so may the line it
 *      becomes when a request ends it (its newline not counted; the
 *      complete lines after it in that request are not held to max). The
 *      request that would pass max fails with
 *      -EFBIG; when it is the carried-over line that passes (rule 1, or
 *      rule 2 with a pending line), that line is dropped (*dropped), so
 *      the descriptor recovers.
 *   4. When emit fails, nothing of the request is kept: the pending line
 *      is as it was before it, except when emit says (*bad == 1) that the
 *      first line, the one carried over, is the bad one: it is dropped
 *      (*dropped). The caller returns emit's error.
 *   5. fs_lines_flush (close) emits the pending line with a '\n' added; it
 *      is done with when emit succeeds or answers -EINVAL (invalid for
 *      good), and kept for another try on any other error.
 *
 * Invariants: the pending line never holds a '\n'; 0 <= len <= max; every
 * buffer handed to emit is non-empty and ends with '\n'. With an emit that
 * never fails and writes that never pass max, the emitted buffers followed
 * by the pending line are exactly the bytes written, in order.
 *
 * No locking: the caller serialises calls on one fs_lines (ops_file.c holds
 * the handle's lock). The buffer handed to emit is borrowed for the call.
 */
#ifndef CHRONIK_FS_LINES_H
#define CHRONIK_FS_LINES_H

#include <stdbool.h>
#include <stddef.h>

struct fs_lines {
	char *pending; /* malloc'd, len bytes used of cap */
	size_t len, cap;
	size_t max; /* rule 3 */
};

/* Append buf[0, len) (complete lines, ends with '\n'). 0 or <0; on -EINVAL
 * *bad is the 1-based line that was invalid (0 = unknown). */
typedef int (*fs_lines_emit_fn)(void *arg, const char *buf, size_t len, size_t *bad);

void fs_lines_init(struct fs_lines *l, size_t max);
void fs_lines_fini(struct fs_lines *l);
/* One write request (rules 1-4). 0, -EFBIG, -ENOMEM or emit's error. */
int fs_lines_write(struct fs_lines *l, const char *buf, size_t size, fs_lines_emit_fn emit,
		   void *arg, bool *dropped);
/* Rule 5. 0 when nothing is pending. */
int fs_lines_flush(struct fs_lines *l, fs_lines_emit_fn emit, void *arg);

#endif
