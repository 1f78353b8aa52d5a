/*
 * transfer.c - what the drainer's transfers share (see transfer.h). The bytes
 * of an answer that fit are kept before the cut, so a caller that still reads
 * the start of a cut answer (Graph's error classification) sees what it saw.
 */
#include "transfer.h"

#include <stdio.h>
#include <string.h>

#include "tokens.h"

size_t
transfer_answer_take(struct transfer_answer *a, const char *p, size_t len)
{
	size_t keep = a->buf.max - a->buf.len;

	if (keep > len)
		keep = len;
	if (keep > 0 && dynbuf_add(&a->buf, p, keep) != DYNBUF_OK)
		return 0;	/* out of memory: cut (CURLE_WRITE_ERROR) */
	if (keep < len) {
		a->over = 1;
		return 0;	/* a short count: libcurl fails the transfer */
	}
	return len;
}

void
transfer_answer_init(struct transfer_answer *a, size_t max)
{
	dynbuf_init(&a->buf, max);
	a->over = 0;
}

void
transfer_answer_reset(struct transfer_answer *a)
{
	dynbuf_reset(&a->buf);
	a->over = 0;
}

void
transfer_answer_free(struct transfer_answer *a)
{
	dynbuf_free(&a->buf);
	a->over = 0;
}

void
transfer_setup(CURL *e, const char *url, int https, long limit_ms)
{
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, https ? "https" : "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, limit_ms < 10000 ? limit_ms : 10000L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, https ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "wahook-drain/1");
}

struct curl_slist *
transfer_auth_headers(const char *token, const char *const *extra)
{
	char auth[TOKENS_TOKEN_MAX + 64];
	struct curl_slist *l = NULL;
	int n;

	n = snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	if (n > 0 && (size_t)n < sizeof(auth))
		l = curl_slist_append(NULL, auth);
	explicit_bzero(auth, sizeof(auth));
	for (; l != NULL && extra != NULL && *extra != NULL; extra++) {
		/* appending to a non-empty list returns that list, or NULL */
		if (curl_slist_append(l, *extra) == NULL) {
			transfer_headers_free(l);
			l = NULL;
		}
	}
	return l;
}

void
transfer_headers_free(struct curl_slist *l)
{
	if (l != NULL && l->data != NULL)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(l);
}

int
transfer_next_done(CURLM *multi, void **priv, CURLcode *rc)
{
	CURLMsg *m;
	char *p;
	int left;

	while ((m = curl_multi_info_read(multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		p = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
		*priv = p;
		*rc = m->data.result;
		return 1;
	}
	return 0;
}
