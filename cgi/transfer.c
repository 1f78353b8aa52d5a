/*
 * transfer.c - the capped answer of a drainer transfer (see transfer.h). The
 * bytes that fit are kept before the cut, so a caller that still reads the
 * start of a cut answer (Graph's error classification) sees what it saw.
 */
#include "transfer.h"

static size_t
on_answer(char *p, size_t size, size_t n, void *arg)
{
	struct transfer_answer *a = arg;
	size_t len = size * n, keep = a->buf.max - a->buf.len;

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
transfer_answer_attach(struct transfer_answer *a, CURL *e)
{
	dynbuf_reset(&a->buf);
	a->over = 0;
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
}

void
transfer_answer_free(struct transfer_answer *a)
{
	dynbuf_free(&a->buf);
	a->over = 0;
}
