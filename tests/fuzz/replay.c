/*
 * replay.c - runs a fuzz target's LLVMFuzzerTestOneInput() over files, without
 * libFuzzer, so `make check` replays every input a fuzzer ever crashed on
 * (tests/fuzz/regressions/<target>/) with the ordinary build and sanitizers.
 * Prints TAP, one line per file; a crash ends the binary, which tests/run.py
 * reports as a failure.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef REPLAY_DIR
#define REPLAY_DIR "."
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
replay(const char *path)
{
	FILE *f;
	uint8_t *buf = NULL;
	long n;
	int rc = -1;

	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	if ((buf = malloc(n > 0 ? (size_t)n : 1)) == NULL)
		goto out;
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto out;
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : REPLAY_DIR;
	char **names = NULL, **nn, path[4096];
	struct dirent *de;
	size_t n = 0, i;
	int failed = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		printf("1..0 # no directory %s\n", dir);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((nn = realloc(names, (n + 1) * sizeof(*names))) == NULL)
			return 1;
		names = nn;
		if ((names[n] = strdup(de->d_name)) == NULL)
			return 1;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp);
	printf("1..%zu\n", n);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fflush(stdout);
		if (replay(path) == 0)
			printf("ok %zu - %s\n", i + 1, path);
		else {
			printf("not ok %zu - %s (unreadable)\n", i + 1, path);
			failed = 1;
		}
		free(names[i]);
	}
	free(names);
	return failed;
}
