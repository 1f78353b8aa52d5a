/*
 * body_once.c - the request body handed to libcurl once (see body_once.h).
 * What was handed out is never handed out again, so a second pass over the
 * body shows up as a refused read or seek, never as a second request.
 */
#include "body_once.h"

#include <stdio.h>
#include <string.h>

/* Hands out the request body, each byte once. Asked again after the end, it
 * is libcurl starting the request over without a rewind: refused. */
static size_t
on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct body_once *b = arg;
	size_t room = size * n, left = b->len - b->off;

	if (left == 0 && b->off > 0) {
		b->resend_refused = 1;
		return CURL_READFUNC_ABORT;
	}
	if (left > room)
		left = room;
	memcpy(buf, b->body + b->off, left);
	b->off += left;
	return left;
}

/* libcurl rewinds the body only to send it again (its retry of a request on a
 * kept-alive connection that died): refused once any byte went out. */
static int
on_seek(void *arg, curl_off_t offset, int origin)
{
	struct body_once *b = arg;

	if (offset == 0 && origin == SEEK_SET && b->off == 0)
		return CURL_SEEKFUNC_OK;
	b->resend_refused = 1;
	return CURL_SEEKFUNC_FAIL;
}

void
body_once_attach(struct body_once *b, CURL *e, const char *body, size_t len)
{
	b->body = body;
	b->len = len;
	b->off = 0;
	b->resend_refused = 0;
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(e, CURLOPT_READDATA, b);
	curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(e, CURLOPT_SEEKDATA, b);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
}
