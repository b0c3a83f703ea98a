/* frameutil.h - the frames of a WAL file, as the recovery and torn-write
 * tests walk them: collect_frames is a wal_file_walk callback that notes
 * where each valid frame starts and ends (the first 64). Header-only,
 * like testutil.h. */
#ifndef CHRONIK_FRAMEUTIL_H
#define CHRONIK_FRAMEUTIL_H

#include <stdint.h>

#include "frame.h"

struct frames {
	uint64_t pos[64]; /* where valid frame i starts */
	uint64_t end[64]; /* and where it ends */
	int n;
};

static inline int collect_frames(void *arg, uint64_t pos, enum frame_status st,
				 const struct frame_info *fi)
{
	struct frames *f = arg;
	if (st == FRAME_VALID && f->n < 64) {
		f->pos[f->n] = pos;
		f->end[f->n] = pos + fi->frame_len;
		f->n++;
	}
	return 0;
}

#endif
