/* replay.c - a plain main for a fuzz harness: feeds it every file named on
 * the command line, or found (sorted, not recursively) in a directory named
 * there, one call of LLVMFuzzerTestOneInput per file, and speaks TAP: one
 * test point per directory or file. A directory that does not exist counts
 * as empty (a harness may have no regression inputs yet); a run with no
 * input at all fails, so a corpus that went missing cannot pass.
 *
 * It runs in the gcc ASan/UBSan build of tests/run: a crash, a leak or a
 * sanitizer report in any input fails the test, and the last "# input"
 * line on stdout names the file.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("# %s: %s\n", path, strerror(errno));
		return -1;
	}
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		size_t k = fread(buf + len, 1, cap - len, f);
		if (k == 0)
			break;
		len += k;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return -1;
	}
	printf("# input %s (%zu bytes)\n", path, len);
	fflush(stdout);
	/* A copy of exactly len bytes, so that ASan sees a read past the end. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	if (len)
		memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the number of files run, or -1. */
static long run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn)
				abort();
			names = nn;
		}
		if (asprintf(&names[n++], "%s/%s", dir, de->d_name) < 0)
			abort();
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	long ran = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(names[i]) < 0)
				ran = -1;
			else if (ran >= 0)
				ran++;
		}
		free(names[i]);
	}
	free(names);
	return ran;
}

int main(int argc, char **argv)
{
	long total = 0;
	int failed = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	printf("1..%d\n", argc);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		long ran;
		if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode))
			ran = run_file(argv[i]) < 0 ? -1 : 1;
		else
			ran = run_dir(argv[i]);
		if (ran < 0)
			failed = 1;
		else
			total += ran;
		printf("%sok %d - %s: %ld inputs\n", ran < 0 ? "not " : "", i, argv[i], ran);
	}
	printf("%sok %d - %ld inputs in all\n", total > 0 ? "" : "not ", argc, total);
	return failed || total == 0;
}
