/*
 * http.h - the responder's HTTP contract, independent of FastCGI or CGI.
 *
 * The front end (wahook_fcgi.c) fills a struct http_req from FastCGI params or
 * the CGI environment and writes the struct http_resp back; everything between
 * (method dispatch, body cap, signature, parse, store, the log line) is here.
 */
#ifndef WAHOOK_HTTP_H
#define WAHOOK_HTTP_H

#include <stddef.h>

#include "batch.h"
#include "config.h"
#include "dynbuf.h"
#include "payload.h"
#include "store.h"

struct http_req {
	const char	*method;		/* REQUEST_METHOD */
	const char	*query;			/* QUERY_STRING, may be NULL */
	const char	*content_length;	/* CONTENT_LENGTH, may be NULL (chunked) */
	const char	*signature;		/* HTTP_X_HUB_SIGNATURE_256, may be NULL */
	/*
	 * Reads up to n bytes of the body, waiting until deadline at most (ms on
	 * log_now_ms()'s clock): >0 bytes read, 0 at its end, -1 error,
	 * HTTP_READ_TIMEOUT when no byte came by the deadline.
	 */
	long		(*read)(void *ctx, char *buf, size_t n, double deadline);
	void		*ctx;
};

#define HTTP_READ_TIMEOUT (-2)

struct http_resp {
	int		 status;
	const char	*reason;		/* "OK", "Unauthorized", ... */
	const char	*extra_header;		/* one "Name: value" line without CRLF, or NULL */
	const char	*body;			/* text/plain */
	size_t		 body_len;
	int		 close;			/* the body was not read to its end: close
						   the connection instead of draining it */
};

/* Per-thread state reused across requests. */
struct http_state {
	const struct config	*cfg;
	struct batch		*batch;		/* shared by the process's threads */
	struct payload		 payload;
	struct dynbuf		 body;		/* the request body (capped at max_body + 1) */
	size_t			 big;		/* the last request was large: trim the heap */
	char			 challenge[512];
};

/*
 * Answers one request into *resp (whose strings stay valid until the next
 * call) and writes the request's log line. Never fails: every outcome is an
 * HTTP answer. Contract: no 200 to a POST unless every row is committed or the
 * signed body is in wa_quarantine.
 */
void	http_handle(struct http_state *, const struct http_req *, struct http_resp *);

/*
 * Drops what the last request left behind: its parse tree, lists and a body
 * buffer past their keep sizes, and after a large request hands freed heap
 * back to the system (malloc_trim), so memory returns to its floor. Call it
 * once the answer is on its way: freeing a 1000-message tree costs a third of
 * parsing it, and the client need not wait for that.
 * http_handle() calls it first, so a caller that never does wastes memory
 * between requests, nothing else.
 */
void	http_release(struct http_state *);

/* Releases what http_handle() kept between requests (not cfg or batch). */
void	http_state_free(struct http_state *);

/*
 * Finds name in a query string and URL-decodes its value (%XX, '+') into out.
 * Returns the decoded length, or -1 when absent, malformed, or longer than
 * outlen - 1. out is NUL-terminated on success. Exposed for the unit tests.
 */
long	http_query_param(const char *query, const char *name, char *out, size_t outlen);

#endif
