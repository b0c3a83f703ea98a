/* fuzz_lines.c - the line splitter of the filesystem's append views
 * (fs/lines.h), which cuts write requests into complete lines.
 *
 * Input: byte 0 sets the splitter's max (the pending-line bound, 1-256
 * here instead of 64 MiB, so that EFBIG is reached); then a sequence of
 * write requests, each a length byte and that many bytes. A line whose
 * first byte is '!' is "invalid": the emit callback fails with -EINVAL and
 * names it, as the JSON parser does. After the last request the splitter
 * is flushed (close).
 *
 * Checked (the invariants of lines.h): every buffer emitted is non-empty
 * and ends with '\n'; the pending line holds no '\n' and at most max
 * bytes between requests; after a successful flush nothing is pending; and
 * when no request and no flush failed, the bytes emitted are exactly the
 * bytes written, in order (with the newline flush adds).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lines.h"

struct sink {
	uint8_t *buf;
	size_t len, cap;
};

static int emit(void *arg, const char *buf, size_t len, size_t *bad)
{
	struct sink *s = arg;
	FUZZ_CHECK(len > 0 && buf[len - 1] == '\n');
	size_t line = 1;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '!' && (i == 0 || buf[i - 1] == '\n')) {
			*bad = line;
			return -EINVAL;
		}
		if (buf[i] == '\n')
			line++;
	}
	if (s->len + len > s->cap) {
		size_t ncap = (s->len + len) * 2;
		uint8_t *nb = realloc(s->buf, ncap);
		FUZZ_CHECK(nb != NULL);
		s->buf = nb;
		s->cap = ncap;
	}
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fs_lines l;
	struct sink s = { NULL, 0, 0 };
	uint8_t *written = malloc(size + 1);
	size_t wlen = 0;
	bool clean = true;

	if (size < 1 || !written) {
		free(written);
		return 0;
	}
	fs_lines_init(&l, (size_t)data[0] + 1);
	size_t p = 1;
	while (p < size) {
		size_t n = data[p++];
		if (n > size - p)
			n = size - p;
		bool dropped = false;
		int rc = fs_lines_write(&l, (const char *)data + p, n, emit, &s, &dropped);
		FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EFBIG);
		if (dropped)
			FUZZ_CHECK(rc < 0);
		if (rc < 0)
			clean = false;
		FUZZ_CHECK(l.len <= l.max);
		FUZZ_CHECK(l.len == 0 || !memchr(l.pending, '\n', l.len));
		memcpy(written + wlen, data + p, n);
		wlen += n;
		p += n;
	}
	bool had_pending = l.len > 0;
	int rc = fs_lines_flush(&l, emit, &s);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	FUZZ_CHECK(l.len == 0);
	if (rc < 0)
		clean = false;
	if (had_pending)
		written[wlen++] = '\n';
	if (clean)
		FUZZ_CHECK(s.len == wlen && (wlen == 0 || memcmp(s.buf, written, wlen) == 0));
	fs_lines_fini(&l);
	free(s.buf);
	free(written);
	return 0;
}
