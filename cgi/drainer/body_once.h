/*
 * body_once.h - how a Graph call's request body is handed to libcurl: each
 * byte once. A reply is not idempotent, so libcurl must never send a body
 * again by itself (its quiet retry on a kept-alive connection that died):
 * the body flows through a read callback that refuses to start over, and a
 * rewind once any byte went out fails the transfer (doc/graph-calls.md).
 *
 * The bench builds tests/bench/body_rewindable.c in place of body_once.c, the
 * same interface with libcurl's own resendable copy, to measure the cost.
 */
#ifndef WAHOOK_BODY_ONCE_H
#define WAHOOK_BODY_ONCE_H

#include <stddef.h>

#include <curl/curl.h>

struct body_once {
	const char	*body;		/* the caller's, alive until the transfer ends */
	size_t		 len;
	size_t		 off;		/* bytes handed to libcurl: never handed again */
	int		 resend_refused; /* libcurl asked to send them again: refused */
};

/*
 * Makes the len bytes at body e's POST body (CURLOPT_POST, the size and the
 * read and seek callbacks), with b counting what went out; b->off and
 * b->resend_refused start at 0. body must stay valid until the transfer ends.
 */
void	body_once_attach(struct body_once *b, CURL *e, const char *body, size_t len);

#endif
