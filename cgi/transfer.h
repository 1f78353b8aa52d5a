/*
 * transfer.h - a drainer transfer's capped answer: the bytes one libcurl call
 * (a Graph call, the reply URL, a media retrieve call) answers, kept in a
 * dynbuf with a hard cap.
 *
 * One overflow rule: the first max bytes are kept, and the transfer is cut
 * there (the write callback returns a short count, so libcurl ends it with
 * CURLE_WRITE_ERROR) with over set; the caller reports "answer over N bytes"
 * in its own words. The status line has arrived by then: a cut answer still
 * has its HTTP status (CURLINFO_RESPONSE_CODE) and its headers.
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

/*
 * Empties a (its memory is kept for the next answer) and makes it e's write
 * target: sets CURLOPT_WRITEFUNCTION and CURLOPT_WRITEDATA, so call it after
 * any curl_easy_reset(). Out of memory while the answer grows cuts the
 * transfer too (CURLE_WRITE_ERROR) but leaves over at 0.
 */
void	transfer_answer_attach(struct transfer_answer *a, CURL *e);

/* Frees the memory; a is empty and usable again (same cap). */
void	transfer_answer_free(struct transfer_answer *);

#endif
