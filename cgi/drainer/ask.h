/*
 * ask.h - asking the business for a message's reply: its program
 * (WAHOOK_REPLY_COMMAND, through child.c) or its URL (WAHOOK_REPLY_URL, a
 * signed POST on the drain loop's transfer engine, engine.h). One interface
 * over both, driven by the drain loop's single poll (engine_wait()): ask_fds()
 * lists the programs' descriptors to wait on, ask_work() acts on the answers,
 * ask_next() hands over finished questions. Nothing here blocks.
 */
#ifndef WAHOOK_ASK_H
#define WAHOOK_ASK_H

#include <stddef.h>

#include <curl/curl.h>

#include "engine.h"

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

/* What asking takes from the configuration: a program, or a URL. The strings
 * are not copied: they must outlive the ask. */
struct ask_settings {
	const char	*command;	/* WAHOOK_REPLY_COMMAND (absolute), or NULL: the URL */
	const char	*env_path;	/* PATH, HOME, LANG for the program (each may be NULL) */
	const char	*env_home;
	const char	*env_lang;
	const char	*url;		/* WAHOOK_REPLY_URL */
	const char	*secret;	/* WAHOOK_REPLY_URL_SECRET: signs the body */
	double		 timeout;	/* WAHOOK_REPLY_TIMEOUT, seconds per run or call */
};

struct ask;

/*
 * nslots questions at once, to set's program, else its URL (set is copied;
 * the URL's calls take nslots slots of eng, which must outlive the ask).
 * Returns NULL with the reason in err.
 */
struct ask *ask_new(const struct ask_settings *set, struct engine *eng, int nslots,
	    char *err, size_t errlen);

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

/* Fills fds (room for ask_fds_max()) with what to poll beside the engine's
 * transfers; returns how many. */
int	ask_fds(struct ask *, struct curl_waitfd *fds, int max);
int	ask_fds_max(const struct ask *);

/* Milliseconds until ask_work() must run even without events, or -1. */
int	ask_wait_ms(struct ask *);

/* After the poll (fds as ask_fds() filled them, revents set): moves the
 * programs on (the URL's calls moved in the poll). */
void	ask_work(struct ask *, struct curl_waitfd *fds, int n);

/* Collects one finished question: 1 with *slot and *r (clear it), or 0. */
int	ask_next(struct ask *, int *slot, struct ask_result *r);

/* Questions running. */
int	ask_running(const struct ask *);

void	ask_result_clear(struct ask_result *);

#endif
