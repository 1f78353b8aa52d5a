/*
 * test_transfer.c - cgi/transfer.c: an answer within the cap is kept whole; one
 * byte over keeps the first max bytes, sets over and cuts the transfer
 * (CURLE_WRITE_ERROR); the buffer is emptied for the next transfer. Real
 * libcurl transfers of a temp file (file://), no network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "transfer.h"

#define CAP 1000

/* Fetches a file of n bytes ('a', 'b', ... 'z' over and over) into a. */
static CURLcode
fetch(struct transfer_answer *a, size_t n)
{
	char path[] = "/tmp/test_transfer.XXXXXX", url[64];
	CURL *e;
	CURLcode rc;
	size_t i;
	int fd;
	FILE *f;

	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	for (i = 0; i < n; i++)
		fputc('a' + (int)(i % 26), f);
	assert_int_equal(fclose(f), 0);
	assert_true((size_t)snprintf(url, sizeof(url), "file://%s", path) < sizeof(url));
	assert_non_null(e = curl_easy_init());
	curl_easy_setopt(e, CURLOPT_URL, url);
	/* small reads: the answer arrives in many pieces, as from a socket */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L);
	transfer_answer_attach(a, e);
	rc = curl_easy_perform(e);
	curl_easy_cleanup(e);
	unlink(path);
	return rc;
}

static void
check_bytes(const struct transfer_answer *a, size_t n)
{
	size_t i;

	assert_int_equal(a->buf.len, n);
	for (i = 0; i < n; i++)
		assert_int_equal(a->buf.s[i], 'a' + (int)(i % 26));
	assert_int_equal(a->buf.s[n], '\0');
}

static void
test_within_cap(void **state)
{
	struct transfer_answer a;
	size_t sizes[] = { 1, 26, CAP - 1, CAP }, i;

	(void)state;
	transfer_answer_init(&a, CAP);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(fetch(&a, sizes[i]), CURLE_OK);
		assert_int_equal(a.over, 0);
		check_bytes(&a, sizes[i]);
	}
	transfer_answer_free(&a);
}

static void
test_over_cap_cuts(void **state)
{
	struct transfer_answer a;
	size_t sizes[] = { CAP + 1, 5000 }, i;

	(void)state;
	transfer_answer_init(&a, CAP);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(fetch(&a, sizes[i]), CURLE_WRITE_ERROR);
		assert_int_equal(a.over, 1);
		check_bytes(&a, CAP);
	}
	/* the next transfer starts empty, over cleared */
	assert_int_equal(fetch(&a, 3), CURLE_OK);
	assert_int_equal(a.over, 0);
	check_bytes(&a, 3);
	transfer_answer_free(&a);
	assert_null(a.buf.s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_within_cap),
		cmocka_unit_test(test_over_cap_cuts),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
