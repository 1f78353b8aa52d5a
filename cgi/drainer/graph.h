/*
 * graph.h - the two Graph API calls (mark read, reply) on libcurl's multi
 * interface, and the classification of their answers.
 *
 * A reply is not idempotent (Meta has no idempotency key), so a request body
 * is handed to libcurl once and can never be sent again by libcurl itself:
 * the body comes from a read callback that refuses to rewind, and libcurl's
 * quiet resend on a dead kept-alive connection fails instead (doc/graph-calls.md).
 * The time limit is measured on the transfer, after libcurl has read what
 * arrived, so time the caller spends elsewhere never turns an answer into a
 * timeout.
 *
 * The calls run on the drain loop's transfer engine (engine.h), whose
 * connection cache keeps connections to Meta open between calls and
 * multiplexes them over HTTP/2 where the server offers it; the engine polls,
 * this module builds the requests and judges the answers. Calls occupy
 * numbered slots (one per conversation in flight); the caller starts a call in
 * a free slot and, after engine_wait(), collects its result. The access token
 * lives only in the request headers: no log line, result or error message
 * ever holds it.
 */
#ifndef WAHOOK_GRAPH_H
#define WAHOOK_GRAPH_H

#include <stddef.h>

#include <curl/curl.h>

#include "address.h"
#include "engine.h"
#include "tokens.h"

#define GRAPH_NO_CODE	(-1L)	/* no error.code in the answer (or no answer) */
#define GRAPH_MSG_MAX	256
#define GRAPH_ID_MAX	256
#define GRAPH_ANSWER_MAX (64 * 1024)	/* answer bytes kept; a longer answer is cut */
#define GRAPH_URL_MAX	512	/* a call's URL, base URL included */

/* What the calls take from the configuration. The strings are not copied:
 * they must outlive the graph. */
struct graph_settings {
	const char	*url;		/* WAHOOK_GRAPH_URL, no trailing slash */
	double		 timeout;	/* WAHOOK_HTTP_TIMEOUT, seconds per call */
	const char	*reply_text;	/* WAHOOK_REPLY_TEXT */
	int		 typing;	/* WAHOOK_TYPING: the mark-read shows typing */
	const struct tokens *tokens;	/* WAHOOK_ACCESS_TOKENS_FILE, or NULL */
	const char	*token;		/* WAHOOK_ACCESS_TOKEN, or NULL */
};

enum graph_step {
	GRAPH_READ,		/* mark read (step 1) */
	GRAPH_REPLY		/* send the reply text (step 2) */
};

/* doc/graph-api.md's table: decided on HTTP status and error.code, never on text. */
enum graph_class {
	GRAPH_OK,
	GRAPH_TRANSIENT,	/* retry with backoff */
	GRAPH_PAIR_RATE,	/* 131056: retry this conversation later */
	GRAPH_AUTH,		/* token refused (or none): stop this number */
	GRAPH_PERMANENT,	/* dead-letter */
	GRAPH_CONFIG,		/* 3xx/4xx without a Graph error object: not Meta
				 * answering (a proxy, a wrong WAHOOK_GRAPH_URL): stop */
	GRAPH_UNANSWERED	/* a reply went out and no status came back: it may
				 * have been delivered (resent at most once) */
};

struct graph_result {
	enum graph_class cls;
	enum graph_step	 step;
	long		 http;		/* 0: no HTTP answer (network error, timeout) */
	long		 code;		/* Meta's error.code, or GRAPH_NO_CODE */
	long		 subcode;	/* error.error_subcode, or GRAPH_NO_CODE */
	int		 rate_limited;	/* 429 or 130429: the whole number should slow down */
	double		 retry_after;	/* seconds asked by Retry-After; 0 when absent */
	double		 ms;		/* duration of the call */
	int		 sent;		/* request body bytes were handed to libcurl */
	int		 resend_refused; /* libcurl wanted to send the body again on a
					 * fresh connection and was refused */
	int		 no_wamid;	/* GRAPH_OK reply whose messages[0].id could not
					 * be read: accepted, msg says why */
	char		 reply_id[GRAPH_ID_MAX];	/* messages[0].id of a reply */
	char		 msg[GRAPH_MSG_MAX];	/* error.message or the network error */
};

struct graph;

/*
 * Takes nslots slots of eng (which must outlive the graph; set is copied).
 * Returns NULL with a reason in err on failure.
 */
struct graph *graph_new(const struct graph_settings *set, struct engine *eng, int nslots,
	    char *err, size_t errlen);

/* Aborts calls still running and frees everything but the engine's slots,
 * which engine_free() frees (NULL is fine). */
void	graph_free(struct graph *);

/*
 * Starts step for the message (message_id from to, received on number
 * phone_number_id) in slot, which must be free. Returns 0, or -1 when the call
 * cannot even be built: then r holds a result saying why and the slot stays
 * free (GRAPH_AUTH when no token serves phone_number_id, else GRAPH_PERMANENT:
 * phone_number_id not graph_id_valid(), out of memory). The token is the
 * number's own (WAHOOK_ACCESS_TOKENS_FILE) or the single one.
 */
int	graph_start(struct graph *, int slot, enum graph_step step,
	    const char *phone_number_id, const char *message_id, const struct address *to,
	    struct graph_result *r) __attribute__((warn_unused_result));

/*
 * Starts a reply whose body is already complete (one message of a recorded
 * reply, see reply.h): like graph_start() with GRAPH_REPLY; body is copied.
 */
int	graph_start_body(struct graph *, int slot, const char *phone_number_id,
	    const char *body, struct graph_result *r) __attribute__((warn_unused_result));

/* Collects one finished call (ended in engine_wait(), answered or past
 * WAHOOK_HTTP_TIMEOUT): returns 1 and sets *slot and *r (the slot is free
 * again), or 0 when no call has finished. */
int	graph_next(struct graph *, int *slot, struct graph_result *r);

/* Nonzero when id is a phone_number_id that may go into the URL: 1 to 32
 * ASCII digits (Graph's ids are numeric; "..", "/" or "%2e" never reach a path). */
int	graph_id_valid(const char *id);

/* Number of calls running. */
int	graph_running(const struct graph *);

/*
 * Classifies an HTTP answer to step: status http (> 0) and the body bytes (may be
 * NULL/0, need not be JSON). Fills r (code, subcode, msg, rate_limited,
 * reply_id for a successful reply) and returns r->cls. Known codes decide before
 * the status (131056, then auth, then transient codes or is_transient, then
 * the permanent codes); otherwise 5xx/429/408 are transient, 401 is auth, a
 * 3xx or 4xx without a Graph error object is GRAPH_CONFIG, other 4xx are
 * permanent. A 2xx means accepted: a 2xx reply answer without a readable
 * messages[0].id is GRAPH_OK with no_wamid set and the reason in msg (sending
 * it again would answer twice). truncated: the body was cut at
 * GRAPH_ANSWER_MAX. Pure; exposed for the unit tests.
 */
enum graph_class graph_classify(enum graph_step step, long http, const char *body,
	    size_t len, int truncated, struct graph_result *r);

/*
 * The request bodies, exactly as doc/graph-api.md shows, built with json-c (so every
 * string is escaped). Return a malloc'd NUL-terminated string the caller frees,
 * or NULL when out of memory.
 */
char	*graph_body_read(const char *message_id, int typing);
char	*graph_body_reply(const struct address *to, const char *text, const char *context_id);

/* "transient", "pair_rate", ... for logs. */
const char *graph_class_name(enum graph_class);

#endif
