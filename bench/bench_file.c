/* bench_file.c - the plain-file side of bench/run: write the same bytes in
 * the same chunks as the system under test, with the same fsync cadence.
 *
 *   chronik-bench-file PATH --chunk BYTES --bytes TOTAL [--fsync every|end|never]
 *                      [--lines LEN] [--append]
 *
 * Writes ceil(TOTAL / BYTES) chunks of BYTES bytes to PATH (created,
 * truncated unless --append; O_APPEND with --append). With --fsync every,
 * fdatasync() after every chunk; with end, one fsync() after the last one
 * (inside the timing); with never, none. With --lines LEN the chunk is made
 * of LEN-byte lines ending in '\n' (the chunk is rounded down to whole
 * lines), otherwise of letters.
 *
 * Output: one line of key=value pairs (seconds, chunks, bytes, lines).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

static void usage(void)
{
	fputs("usage: chronik-bench-file PATH --chunk BYTES --bytes TOTAL\n"
	      "           [--fsync every|end|never] [--lines LEN] [--append]\n",
	      stderr);
	exit(2);
}

static void fail(const char *what, const char *path)
{
	fprintf(stderr, "chronik-bench-file: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	const char *path, *fsync_mode = "never";
	uint64_t chunk = 0, total = 0, nchunks, lines = 0;
	size_t line_len = 0;
	bool append = false;
	char *buf;
	double t0, t1, c0, c1;
	int fd;

	if (argc < 2)
		usage();
	path = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(k, "--append")) {
			append = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(k, "--chunk"))
			chunk = num_arg(v);
		else if (!strcmp(k, "--bytes"))
			total = num_arg(v);
		else if (!strcmp(k, "--lines"))
			line_len = (size_t)num_arg(v);
		else if (!strcmp(k, "--fsync"))
			fsync_mode = v;
		else
			usage();
	}
	if (!chunk || !total ||
	    (strcmp(fsync_mode, "every") && strcmp(fsync_mode, "end") &&
	     strcmp(fsync_mode, "never")))
		usage();
	if (line_len) {
		if (line_len > chunk)
			usage();
		chunk -= chunk % line_len;
	}
	buf = malloc(chunk);
	if (!buf)
		fail("malloc", "");
	for (uint64_t i = 0; i < chunk; i++)
		buf[i] = line_len && (i + 1) % line_len == 0 ? '\n' : (char)('a' + i % 26);
	nchunks = (total + chunk - 1) / chunk;

	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
	if (fd < 0)
		fail("open", path);
	t0 = now_s();
	c0 = cpu_s();
	for (uint64_t c = 0; c < nchunks; c++) {
		size_t done = 0;
		while (done < chunk) {
			ssize_t n = write(fd, buf + done, chunk - done);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				fail("write", path);
			}
			done += (size_t)n;
		}
		if (!strcmp(fsync_mode, "every") && fdatasync(fd) < 0)
			fail("fdatasync", path);
	}
	if (!strcmp(fsync_mode, "end") && fsync(fd) < 0)
		fail("fsync", path);
	t1 = now_s();
	c1 = cpu_s();
	if (close(fd) < 0)
		fail("close", path);
	if (line_len)
		lines = nchunks * (chunk / line_len);
	printf("seconds=%.6f chunks=%" PRIu64 " bytes=%" PRIu64 " lines=%" PRIu64
	       " cpu_seconds=%.6f\n",
	       t1 - t0, nchunks, nchunks * chunk, lines, c1 - c0);
	free(buf);
	return 0;
}
