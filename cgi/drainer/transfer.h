/*
 * transfer.h - what the drainer's libcurl transfers (Graph calls, the reply
 * URL, media retrieve calls and downloads) have in common: the options of a
 * request, the capped answer, the Authorization header that carries a
 * number's token, and collecting the transfers a multi handle has finished.
 * The transfer engine (engine.h) runs them.
 *
 * The answer is kept in a dynbuf with a hard cap, and one overflow rule: the
 * first max bytes are kept, and the transfer is cut there (the write callback
 * returns a short count, so libcurl ends it with CURLE_WRITE_ERROR) with over
 * set; the caller reports "answer over N bytes" in its own words. The status
 * line has arrived by then: a cut answer still has its HTTP status
 * (CURLINFO_RESPONSE_CODE) and its headers.
 */
#ifndef WAHOOK_TRANSFER_H
#define WAHOOK_TRANSFER_H

#include <stddef.h>

#include <curl/curl.h>

#include "dynbuf.h"

struct transfer_answer {
	struct dynbuf	 buf;	/* the bytes kept: buf.s (NULL while empty), buf.len */
	int		 over;	/* more than the cap arrived: the transfer was cut */
};

/* An empty answer that keeps at most max bytes. Allocates nothing. */
void	transfer_answer_init(struct transfer_answer *, size_t max);

/* Empties a for the next transfer (its memory is kept). */
void	transfer_answer_reset(struct transfer_answer *a);

/*
 * Keeps what fits of the len bytes at p in a, under the overflow rule above.
 * Returns len, or less to cut the transfer: the return value of a libcurl
 * write callback that fills a. Out of memory while the answer grows cuts the
 * transfer too, but leaves over at 0.
 */
size_t	transfer_answer_take(struct transfer_answer *a, const char *p, size_t len);

/* Frees the memory; a is empty and usable again (same cap). */
void	transfer_answer_free(struct transfer_answer *);

/*
 * Sets the options every request the drainer makes (a Graph call, a media
 * retrieve call or download, the reply URL's POST) shares on e: url; https
 * only when https, else http and https; no redirect followed (a token or a
 * signed body goes nowhere else); a connect timeout of
 * limit_ms, at most 10 s; HTTP/2 where TLS offers it, waiting for a
 * multiplexable connection over TLS only (over plain http there is no h2, and
 * waiting would hold every transfer behind a first one that hangs); the user
 * agent. No CURLOPT_TIMEOUT_MS: the engine measures the limit on the transfer.
 */
void	transfer_setup(CURL *e, const char *url, int https, long limit_ms);

/*
 * A new header list: "Authorization: Bearer <token>" first, then the lines of
 * extra (NULL-terminated; extra may be NULL). Returns it, or NULL when out of
 * memory or the token is longer than TOKENS_TOKEN_MAX. The token is copied
 * only into the list (the line built on the stack is wiped); the caller frees
 * the list with transfer_headers_free(), never curl_slist_free_all().
 */
struct curl_slist *transfer_auth_headers(const char *token, const char *const *extra);

/* Wipes the token (the first line) and frees the list. NULL is fine. */
void	transfer_headers_free(struct curl_slist *);

/*
 * The next transfer that multi reports finished: returns 1 with *priv set to
 * its CURLOPT_PRIVATE (NULL when it has none) and *rc to its result, or 0
 * when there is none left. Call after curl_multi_perform(); the transfer is
 * still in multi.
 */
int	transfer_next_done(CURLM *multi, void **priv, CURLcode *rc);

#endif
