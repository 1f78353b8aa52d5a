/*
 * ask.h - asking the business for a message's reply: its program
 * (WAHOOK_REPLY_COMMAND, through child.c) or its URL (WAHOOK_REPLY_URL, a
 * signed POST on a libcurl multi handle of its own). One interface over both,
 * driven by the drain loop's single poll: ask_fds() lists what to wait on,
 * ask_work() acts on the answers, ask_next() hands over finished questions.
 * Nothing here blocks.
 */
#ifndef WAHOOK_ASK_H
#define WAHOOK_ASK_H

#include <stddef.h>

#include <curl/curl.h>

#include "drain_config.h"

#define ASK_WHY_MAX 320

struct ask_result {
	int	 ok;		/* an answer to parse with reply_parse() */
	char	*out;		/* the answer (malloc'd, may be NULL when empty): free with
				 * ask_result_clear() */
	size_t	 outlen;
	char	 why[ASK_WHY_MAX];	/* when !ok: for last_error and the log */
	double	 ms;
};

/* What a question is about: the program's environment, the URL's nothing. */
struct ask_about {
	const char	*message_id;
	const char	*sender;	/* the phone number when known, else the BSUID */
	const char	*user_id;	/* the BSUID, or NULL */
	const char	*username;	/* or NULL */
	const char	*group_id;	/* a group message's group, or NULL */
	const char	*phone_number_id;
	const char	*type;
};

struct ask;

/*
 * For c's reply mode (DRAIN_REPLY_COMMAND or DRAIN_REPLY_URL; c must outlive
 * it), nslots questions at once. Returns NULL with the reason in err.
 */
struct ask *ask_new(const struct drain_config *c, int nslots, char *err, size_t errlen);

/* Ends what still runs (programs killed) and frees everything; NULL is fine. */
void	ask_free(struct ask *);

/*
 * Asks in free slot with input (the reply_input_json() text, len bytes,
 * copied). Returns 0, or -1 with r set to a failed result saying why (the
 * slot stays free).
 */
int	ask_start(struct ask *, int slot, const char *input, size_t len,
	    const struct ask_about *about, struct ask_result *r)
	    __attribute__((warn_unused_result));

/* Fills fds (room for ask_fds_max()) with what to poll; returns how many. */
int	ask_fds(struct ask *, struct curl_waitfd *fds, int max);
int	ask_fds_max(const struct ask *);

/* Milliseconds until ask_work() must run even without events, or -1. */
int	ask_wait_ms(struct ask *);

/* After the poll (fds as ask_fds() filled them, revents set): moves everything on. */
void	ask_work(struct ask *, struct curl_waitfd *fds, int n);

/* Collects one finished question: 1 with *slot and *r (clear it), or 0. */
int	ask_next(struct ask *, int *slot, struct ask_result *r);

/* Questions running. */
int	ask_running(const struct ask *);

void	ask_result_clear(struct ask_result *);

#endif
