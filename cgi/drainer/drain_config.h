/*
 * drain_config.h - wahook-drain's configuration, read once at start from the
 * environment into one struct that nothing modifies afterwards.
 *
 * Access tokens are needed only by the modes that call the Graph API, so
 * --status, --metrics and --requeue-dead work without one. A business with
 * several numbers may give each its own (WAHOOK_ACCESS_TOKENS_FILE).
 */
#ifndef WAHOOK_DRAIN_CONFIG_H
#define WAHOOK_DRAIN_CONFIG_H

#include <stddef.h>

#include "conf.h"

#define DRAIN_URL_MAX		512
#define DRAIN_REPLY_MAX		4096	/* Meta's limit on a text body, in characters */
/* seconds, beyond a call and a ridden-out outage, for its result to be recorded */
#define DRAIN_LEASE_MARGIN_S	1.0

struct tokens;

/* Who decides each reply (precedence: COMMAND, then URL, then TEXT; REPLY=none). */
enum drain_reply {
	DRAIN_REPLY_TEXT,	/* WAHOOK_REPLY_TEXT, the same for every message */
	DRAIN_REPLY_COMMAND,	/* WAHOOK_REPLY_COMMAND: a program's stdout */
	DRAIN_REPLY_URL,	/* WAHOOK_REPLY_URL: a signed POST's answer */
	DRAIN_REPLY_NONE	/* WAHOOK_REPLY=none: mark read only */
};

struct drain_config {
	const char	*db;		/* WAHOOK_DB: libpq conninfo; "" = PG* defaults
					   (db_storage_: a copy, not the environment) */
	char		*db_storage_;
	char		*token;		/* WAHOOK_ACCESS_TOKEN[_FILE]: the fallback; may be NULL */
	struct tokens	*tokens;	/* WAHOOK_ACCESS_TOKENS_FILE: per number; may be NULL */
	char		 graph_url[DRAIN_URL_MAX];	/* no trailing slash */
	char		 graph_host[DRAIN_URL_MAX];	/* its host[:port], for logs: no
							 * userinfo, path or query */
	enum drain_reply reply;
	const char	*reply_text;	/* WAHOOK_REPLY_TEXT, valid UTF-8, not empty */
	char		 reply_command[4096];	/* WAHOOK_REPLY_COMMAND, made absolute */
	char		 reply_url[DRAIN_URL_MAX];	/* WAHOOK_REPLY_URL */
	char		*reply_secret;	/* WAHOOK_REPLY_URL_SECRET[_FILE] (URL mode) */
	int		 reply_url_insecure; /* http:// to a host not loopback, allowed by
					   WAHOOK_REPLY_URL_INSECURE=1: warn at start */
	double		 reply_timeout;	/* seconds per program run or URL call */
	double		 reply_window;	/* seconds after Meta's timestamp; 0: no window */
	const char	*env_path;	/* PATH, HOME, LANG for the program (may be NULL) */
	const char	*env_home;
	const char	*env_lang;
	int		 typing;	/* WAHOOK_TYPING: add the typing indicator */
	int		 concurrency;	/* conversations in flight */
	double		 max_rps;	/* calls per second per phone_number_id */
	double		 retry_min;	/* backoff bounds, seconds */
	double		 retry_max;
	int		 max_attempts;	/* failed calls before a row goes dead */
	double		 max_age;	/* seconds from arrival (or requeue) to dead */
	double		 lease;		/* seconds a claim hides a row from other drainers */
	double		 http_timeout;	/* seconds per Graph call, <= lease / 2 */
	double		 call_timeout;	/* the longest call a job makes: http_timeout, or
					   reply_timeout when longer and a program or URL
					   replies */
	double		 db_outage_max;	/* seconds to ride out a lost database */
	double		 lease_need;	/* seconds of lease a call starts with at least:
					   call_timeout + db_outage_max + db_timeout +
					   DRAIN_LEASE_MARGIN_S, so its result is recorded
					   before the lease can end (above lease only when
					   it is too short to ride out any outage: then
					   every call renews it first) */
	double		 db_timeout;	/* seconds per database call */
	int		 db_prepare;	/* WAHOOK_DB_PREPARE: enum db_prepare */
};

/*
 * wahook-drain's variables, one entry each (conf.h): name, kind, default,
 * bounds, help and field of struct drain_config or struct media_config,
 * NULL-terminated. The Makefile generates env_names_drain from it; --help
 * prints it; wahook-drain(8) describes each entry.
 */
extern const struct conf_var drain_vars[];

/*
 * Fills *c from the environment as drain_vars says (WAHOOK_DB is
 * checked with PQconninfoParse, not connected to). need_token: 1 when the run will call the Graph
 * API (a missing token is then an error). Returns 0, or -1 with a message that
 * names the variable in err (the caller prints it and exits 2); the message never
 * holds the token. Free with drain_config_free().
 */
int	drain_config_load(struct drain_config *c, int need_token, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* Wipes the tokens and clears *c. */
void	drain_config_free(struct drain_config *c);

#endif
