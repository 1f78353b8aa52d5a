/*
 * test_media_file.c - cgi/drainer/media_file.c on a real directory: the digest of what
 * was written, the atomic commit under the sha256 name, a database-mode spool
 * that leaves no name behind, and the cleaning of stale temp files only.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "media_file.h"

/* sha256("hello world") */
#define HW "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"

static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void
test_commit(void **state)
{
	char dir[] = "/tmp/wahook-media-test-XXXXXX", path[MEDIA_PATH_MAX], err[256];
	char hex[MEDIA_HEX_LEN], buf[32];
	unsigned char d[MEDIA_SHA_LEN];
	struct media_file f;
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(media_file_open(&f, dir, 1, err, sizeof(err)), 0);
	assert_int_equal(count_entries(dir), 1);	/* the named temp file */
	assert_int_equal(media_file_write(&f, "hello ", 6), 0);
	assert_int_equal(media_file_write(&f, "world", 5), 0);
	assert_int_equal(f.size, 11);
	media_file_digest(&f, d);
	media_sha256_hex(d, hex);
	assert_string_equal(hex, HW);
	assert_int_equal(media_file_read(&f, 6, buf, 5), 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(media_file_commit(&f, dir, hex, path, sizeof(path), err,
	    sizeof(err)), 0);
	assert_int_equal(f.fd, -1);
	assert_non_null(strstr(path, HW));
	assert_non_null(fp = fopen(path, "r"));
	assert_int_equal(fread(buf, 1, sizeof(buf), fp), 11);
	fclose(fp);
	assert_memory_equal(buf, "hello world", 11);
	assert_int_equal(count_entries(dir), 1);	/* no temp file left */
	unlink(path);
	rmdir(dir);
}

static void
test_spool_leaves_nothing(void **state)
{
	char dir[] = "/tmp/wahook-media-test-XXXXXX", err[256];
	struct media_file f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(media_file_open(&f, dir, 0, err, sizeof(err)), 0);
	assert_int_equal(media_file_write(&f, "abc", 3), 0);
	assert_int_equal(count_entries(dir), 0);	/* unlinked at once */
	media_file_close(&f);
	media_file_close(&f);				/* twice is fine */
	assert_int_equal(media_file_open(&f, "/nonexistent-dir", 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent-dir"));
	rmdir(dir);
}

static void
test_clean_only_stale_temp_files(void **state)
{
	char dir[] = "/tmp/wahook-media-test-XXXXXX", p[600], err[256];
	struct timeval old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	struct media_file live;
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/%sstale1", dir, MEDIA_TMP_PREFIX);
	assert_non_null(fp = fopen(p, "w"));
	fclose(fp);
	assert_int_equal(utimes(p, old), 0);
	snprintf(p, sizeof(p), "%s/%s", dir, HW);	/* a stored item, however old */
	assert_non_null(fp = fopen(p, "w"));
	fclose(fp);
	assert_int_equal(utimes(p, old), 0);
	assert_int_equal(media_file_open(&live, dir, 1, err, sizeof(err)), 0);
	assert_int_equal(media_file_clean(dir, 120), 1);
	assert_int_equal(count_entries(dir), 2);	/* the stored item and the live one */
	assert_int_equal(access(live.tmp, F_OK), 0);
	media_file_close(&live);
	assert_int_equal(access(p, F_OK), 0);
	unlink(p);
	rmdir(dir);
	assert_int_equal(media_file_clean("/nonexistent-dir", 1), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit),
		cmocka_unit_test(test_spool_leaves_nothing),
		cmocka_unit_test(test_clean_only_stale_temp_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
