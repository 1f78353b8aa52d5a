/*
 * config.h - the responder's configuration, read once at start into one
 * struct that nothing modifies afterwards (FCGI_Accept would replace environ
 * per request; we read before the first accept and never call getenv again).
 */
#ifndef WAHOOK_CONFIG_H
#define WAHOOK_CONFIG_H

#include <stddef.h>

#define CONFIG_MAX_SECRETS 8
#define CONFIG_DEFAULT_MAX_BODY (4L * 1024 * 1024)
#define CONFIG_DEFAULT_DB_TIMEOUT 15		/* seconds, every database call */
#define CONFIG_DEFAULT_BODY_TIMEOUT 10		/* seconds, the whole body */
#define CONFIG_DEFAULT_BODY_MIN_RATE 16384	/* bytes per second after the first */
#define CONFIG_DEFAULT_THREADS 16		/* requests in hand per process */
#define CONFIG_DEFAULT_BATCH_MAX 64		/* webhooks per transaction */
#define CONFIG_DEFAULT_BATCH_BYTES (8L * 1024 * 1024)	/* bodies per transaction */

struct secret {
	const char	*key;
	size_t		 len;
};

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
 * Fills *c from WAHOOK_APP_SECRET[_FILE], WAHOOK_VERIFY_TOKEN[_FILE], WAHOOK_DB
 * (checked with PQconninfoParse, not connected to), WAHOOK_MAX_BODY,
 * WAHOOK_DB_TIMEOUT, WAHOOK_DB_PREPARE, WAHOOK_BODY_TIMEOUT, WAHOOK_BODY_MIN_RATE,
 * WAHOOK_THREADS, WAHOOK_BATCH_MAX and WAHOOK_BATCH_BYTES (the names of
 * env_names_fcgi). Returns 0, or -1 with a message naming the variable in err
 * (the caller prints it and exits 2). Free with config_free().
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
