/*
 * config.h - the responder's configuration, read once at start into one
 * struct that nothing modifies afterwards (FCGI_Accept would replace environ
 * per request; we read before the first accept and never call getenv again).
 */
#ifndef WAHOOK_CONFIG_H
#define WAHOOK_CONFIG_H

#include <stddef.h>

#define CONFIG_MAX_SECRETS 8

#include "conf.h"
#include "verify.h"

struct config {
	struct secret	 secrets[CONFIG_MAX_SECRETS];	/* app secrets, any verifies */
	size_t		 nsecrets;			/* 0: every POST is refused */
	const char	*verify_token;			/* NULL: every GET is 403 */
	const char	*db;				/* libpq conninfo; "" = PG* defaults */
	size_t		 max_body;			/* bytes */
	double		 db_timeout;			/* seconds per database call */
	int		 db_prepare;			/* WAHOOK_DB_PREPARE: enum db_prepare */
	double		 body_timeout;			/* seconds to read a whole body */
	long long	 body_min_rate;			/* bytes/s a body must keep up */
	int		 threads;			/* FastCGI worker threads */
	size_t		 batch_max;			/* webhooks per transaction */
	size_t		 batch_bytes;			/* body bytes per transaction */
	char		*storage_;			/* owns the secret strings */
	size_t		 storage_len_;
	char		*token_storage_;
};

/*
 * The responder's variables, one entry each (conf.h): name, kind, default,
 * bounds, help and field of struct config, NULL-terminated. The Makefile
 * generates env_names_fcgi from it; wahook.fcgi(8) describes each entry.
 */
extern const struct conf_var config_vars[];

/*
 * Fills *c from the environment as config_vars says (WAHOOK_DB is checked
 * with PQconninfoParse, not connected to). Returns 0, or -1 with a message
 * naming the variable in err (the caller prints it and exits 2). Free with
 * config_free().
 */
int	config_load(struct config *c, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * Splits a comma-separated secret list into c->secrets (spaces around commas are
 * ignored). Takes ownership of list. Returns 0, or -1 (empty item, too many).
 * Exposed for the unit tests.
 */
int	config_split_secrets(struct config *c, char *list, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

void	config_free(struct config *c);

#endif
