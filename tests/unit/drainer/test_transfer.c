/*
 * test_transfer.c - cgi/drainer/transfer.c: an answer within the cap is kept whole; one
 * byte over keeps the first max bytes, sets over and cuts the transfer
 * (CURLE_WRITE_ERROR); the buffer is emptied for the next transfer. The
 * Authorization header comes first, the extra lines after it, and a token too
 * long for it is refused. Finished transfers are collected from a multi handle
 * with their own results. Real libcurl transfers of temp files (file://), no
 * network.
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

#include "tokens.h"
#include "transfer.h"

#define CAP 1000

/* A temp file of n bytes ('a', 'b', ... 'z' over and over): its path in
 * path (a mkstemp template), its URL in url. */
static void
make_file(char *path, size_t n, char *url, size_t urllen)
{
	size_t i;
	int fd;
	FILE *f;

	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	for (i = 0; i < n; i++)
		fputc('a' + (int)(i % 26), f);
	assert_int_equal(fclose(f), 0);
	assert_true((size_t)snprintf(url, urllen, "file://%s", path) < urllen);
}

/* The write callback of a transfer that fills the answer at arg. */
static size_t
take(char *p, size_t size, size_t n, void *arg)
{
	return transfer_answer_take(arg, p, size * n);
}

/* Makes a, emptied, e's answer. */
static void
attach(struct transfer_answer *a, CURL *e)
{
	transfer_answer_reset(a);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, take);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
}

/* Fetches a file of n bytes into a. */
static CURLcode
fetch(struct transfer_answer *a, size_t n)
{
	char path[] = "/tmp/test_transfer.XXXXXX", url[64];
	CURL *e;
	CURLcode rc;

	make_file(path, n, url, sizeof(url));
	assert_non_null(e = curl_easy_init());
	curl_easy_setopt(e, CURLOPT_URL, url);
	/* small reads: the answer arrives in many pieces, as from a socket */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L);
	attach(a, e);
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

static void
test_auth_headers(void **state)
{
	static const char *const extra[] = { "Content-Type: application/json", "Expect:", NULL };
	struct curl_slist *l;
	static char big[TOKENS_TOKEN_MAX + 100];

	(void)state;
	assert_non_null(l = transfer_auth_headers("T0KEN", extra));
	assert_string_equal(l->data, "Authorization: Bearer T0KEN");
	assert_string_equal(l->next->data, "Content-Type: application/json");
	assert_string_equal(l->next->next->data, "Expect:");
	assert_null(l->next->next->next);
	transfer_headers_free(l);
	assert_non_null(l = transfer_auth_headers("T0KEN", NULL));
	assert_null(l->next);
	transfer_headers_free(l);
	transfer_headers_free(NULL);
	memset(big, 'x', sizeof(big) - 1);
	assert_null(transfer_auth_headers(big, extra));
}

/* Two transfers in one multi handle, one over the cap: each is collected
 * once, with its CURLOPT_PRIVATE and its own result. */
static void
test_next_done(void **state)
{
	char path[2][32] = { "/tmp/test_transfer.XXXXXX", "/tmp/test_transfer.XXXXXX" };
	char url[2][64];
	struct transfer_answer a[2];
	CURL *e[2];
	CURLM *multi;
	CURLcode rc;
	void *priv;
	int i, still = 1, seen[2] = { 0, 0 };

	(void)state;
	assert_non_null(multi = curl_multi_init());
	for (i = 0; i < 2; i++) {
		make_file(path[i], i == 0 ? 10 : CAP + 1, url[i], sizeof(url[i]));
		transfer_answer_init(&a[i], CAP);
		assert_non_null(e[i] = curl_easy_init());
		curl_easy_setopt(e[i], CURLOPT_URL, url[i]);
		curl_easy_setopt(e[i], CURLOPT_PRIVATE, &a[i]);
		attach(&a[i], e[i]);
		assert_int_equal(curl_multi_add_handle(multi, e[i]), CURLM_OK);
	}
	assert_int_equal(transfer_next_done(multi, &priv, &rc), 0);
	while (still > 0) {
		assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
		while (transfer_next_done(multi, &priv, &rc)) {
			i = priv == &a[0] ? 0 : 1;
			assert_ptr_equal(priv, &a[i]);
			assert_int_equal(rc, i == 0 ? CURLE_OK : CURLE_WRITE_ERROR);
			seen[i]++;
		}
		if (still > 0)
			assert_int_equal(curl_multi_poll(multi, NULL, 0, 100, NULL), CURLM_OK);
	}
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[1], 1);
	assert_int_equal(a[1].over, 1);
	for (i = 0; i < 2; i++) {
		curl_multi_remove_handle(multi, e[i]);
		curl_easy_cleanup(e[i]);
		transfer_answer_free(&a[i]);
		unlink(path[i]);
	}
	curl_multi_cleanup(multi);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_within_cap),
		cmocka_unit_test(test_over_cap_cuts),
		cmocka_unit_test(test_auth_headers),
		cmocka_unit_test(test_next_done),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
