/* fs_writer - append numbered lines to a file, one write(2) per line.
 *
 *   fs_writer FILE TAG COUNT [LOG]
 *
 * Line i is "TAG i <filler>\n" with a filler of (i * 7) % 200 letters, so
 * lines have varied lengths and a torn one is recognisable. FILE is opened
 * O_WRONLY | O_APPEND. With LOG, "i\n" is written to LOG after the write of
 * line i returned, so a crash test knows which lines were acknowledged.
 * Exits 0 after COUNT lines, 1 at the first failed write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char line[512], num[32];
	int fd, log = -1;
	long count;

	if (argc < 4) {
		fprintf(stderr, "usage: fs_writer FILE TAG COUNT [LOG]\n");
		return 2;
	}
	count = strtol(argv[3], NULL, 10);
	fd = open(argv[1], O_WRONLY | O_APPEND);
	if (fd < 0) {
		fprintf(stderr, "fs_writer: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (argc > 4) {
		log = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
		if (log < 0) {
			fprintf(stderr, "fs_writer: %s: %s\n", argv[4], strerror(errno));
			return 1;
		}
	}
	for (long i = 0; i < count; i++) {
		int n = snprintf(line, sizeof(line), "%s %ld ", argv[2], i);
		int fill = (int)((i * 7) % 200);
		for (int k = 0; k < fill; k++)
			line[n++] = (char)('a' + (i + k) % 26);
		line[n++] = '\n';
		ssize_t w = write(fd, line, (size_t)n);
		if (w != n) {
			fprintf(stderr, "fs_writer: line %ld: %s\n", i,
				w < 0 ? strerror(errno) : "short write");
			return 1;
		}
		if (log >= 0) {
			int m = snprintf(num, sizeof(num), "%ld\n", i);
			if (write(log, num, (size_t)m) != m)
				return 1;
		}
	}
	if (close(fd) < 0) {
		fprintf(stderr, "fs_writer: close: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
