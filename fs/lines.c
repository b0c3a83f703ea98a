/* lines.c - the line splitter of the append views; the policy is in
 * lines.h. It knows neither FUSE nor the engine, so the fuzz harness
 * (tests/fuzz/fuzz_lines.c) drives it directly.
 */
#include "lines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void fs_lines_init(struct fs_lines *l, size_t max)
{
	l->pending = NULL;
	l->len = l->cap = 0;
	l->max = max;
}

void fs_lines_fini(struct fs_lines *l)
{
	free(l->pending);
	l->pending = NULL;
	l->len = l->cap = 0;
}

/* Make room for need bytes (need may be max + 1: the flush's newline). */
static int reserve(struct fs_lines *l, size_t need)
{
	if (need <= l->cap)
		return 0;
	size_t ncap = l->cap ? l->cap : 4096;
	while (ncap < need)
		ncap *= 2;
	char *np = realloc(l->pending, ncap);
	if (!np)
		return -ENOMEM;
	l->pending = np;
	l->cap = ncap;
	return 0;
}

/* Append buf[0, n) to the pending bytes; -EFBIG past limit. */
static int add_upto(struct fs_lines *l, const char *buf, size_t n, size_t limit)
{
	if (n == 0)
		return 0;
	if (n > limit || l->len > limit - n)
		return -EFBIG;
	int err = reserve(l, l->len + n);
	if (err < 0)
		return err;
	memcpy(l->pending + l->len, buf, n);
	l->len += n;
	return 0;
}

static int add(struct fs_lines *l, const char *buf, size_t n)
{
	return add_upto(l, buf, n, l->max);
}

int fs_lines_write(struct fs_lines *l, const char *buf, size_t size, fs_lines_emit_fn emit,
		   void *arg, bool *dropped)
{
	const char *nl = size ? memrchr(buf, '\n', size) : NULL;
	size_t head, bad = 0, keep = l->len;
	int err;

	*dropped = false;
	if (!nl) {
		err = add(l, buf, size);
		if (err == -EFBIG) {
			l->len = 0; /* the carried-over line is what is too long */
			*dropped = true;
		}
		return err;
	}
	head = (size_t)(nl - buf) + 1;
	if (l->len == 0) {
		err = emit(arg, buf, head, &bad); /* straight from the request */
	} else {
		/* Only the carried-over line is held to max (its bytes before
		 * the newline that ends it); the complete lines after it are
		 * this request's and go in the same buffer. */
		size_t line_end = (size_t)((const char *)memchr(buf, '\n', size) - buf) + 1;
		err = line_end - 1 > l->max || l->len > l->max - (line_end - 1) ?
			      -EFBIG :
			      add_upto(l, buf, head, l->len + head);
		if (err == -EFBIG) {
			l->len = 0;
			*dropped = true;
		}
		if (err < 0)
			return err;
		err = emit(arg, l->pending, l->len, &bad);
		if (err == -EINVAL && bad == 1) {
			l->len = 0; /* the carried-over line is the bad one */
			*dropped = true;
		} else {
			l->len = err < 0 ? keep : 0;
		}
	}
	if (err < 0)
		return err;
	/* the lines are in; a tail too long to keep fails the write anyway */
	return add(l, nl + 1, size - head);
}

int fs_lines_flush(struct fs_lines *l, fs_lines_emit_fn emit, void *arg)
{
	size_t bad = 0;
	int err;

	if (l->len == 0)
		return 0;
	err = reserve(l, l->len + 1);
	if (err < 0)
		return err;
	l->pending[l->len] = '\n';
	err = emit(arg, l->pending, l->len + 1, &bad);
	/* appended, or invalid for good: either way the line is done with */
	if (err == 0 || err == -EINVAL)
		l->len = 0;
	return err;
}
