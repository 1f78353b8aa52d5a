/*
 * body_rewindable.c - make bench only: cgi/drainer/body_once.h's interface with the
 * body as libcurl's own copy (CURLOPT_POSTFIELDS), which libcurl may send
 * again on a fresh connection. Linked into build/rewind/wahook-drain in place
 * of cgi/drainer/body_once.c, so the bench can show what refusing that resend costs.
 */
#include "body_once.h"

void
body_once_attach(struct body_once *b, CURL *e, const char *body, size_t len)
{
	b->body = body;
	b->len = len;
	b->off = len;	/* all of it is libcurl's from the start */
	b->resend_refused = 0;
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
}
