/*
 * store.h - the responder's PostgreSQL side: one persistent connection, one
 * prepared statement per webhook.
 *
 * The statement is a single data-modifying CTE (sql/001_schema.sql has the
 * tables): messages ON CONFLICT DO NOTHING, an outbox row for each message
 * that was new and answerable, conversations, reactions, statuses, events,
 * all in one implicit transaction and one round trip. When PQexecPrepared
 * returns success the COMMIT has returned: only then may we answer 200.
 */
#ifndef WAHOOK_STORE_H
#define WAHOOK_STORE_H

#include <stddef.h>

#include "payload.h"

enum store_result {
	STORE_OK = 0,
	STORE_UNAVAILABLE,	/* connection or transaction failed: answer 503, nothing kept */
	STORE_REJECTED		/* PostgreSQL refused the data itself (class 22/23/54):
				   retrying cannot help, quarantine the body */
};

struct store;

/* Allocates a store for conninfo (not copied: must outlive the store), whose
 * every database call (connecting included) ends within timeout seconds, with
 * statements sent as prepare (WAHOOK_DB_PREPARE: an enum db_prepare) says.
 * Does not connect: the first call does. Returns NULL only when out of memory. */
struct store *store_new(const char *conninfo, double timeout, int prepare);

/*
 * Stores everything p lists, taking each object from body (the raw request
 * bytes, which PostgreSQL parses as jsonb). Connects or reconnects as needed,
 * and retries once on a fresh connection when a reused one turns out dead
 * (the statement is idempotent); db.h has the rule and the deadline. On
 * STORE_OK sets fresh=1 on each message inserted now (fresh=0: it was stored
 * before). On failure err holds the reason (PostgreSQL's message and SQLSTATE,
 * never data).
 */
enum store_result store_webhook(struct store *, struct payload *p,
	    const char *body, size_t len, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* Inserts body into wa_quarantine with reason. STORE_OK or STORE_UNAVAILABLE
 * (never retried after the statement was sent: it is not idempotent). */
enum store_result store_quarantine(struct store *, const char *reason,
	    const char *body, size_t len, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * Connects now (and prepares the statements) instead of at the first request,
 * so that a database that cannot be reached, a role that may not log in or
 * migrations not applied show in the log at start. Returns 0, or -1 with the
 * reason in err; either way the store stays usable (the next call reconnects).
 */
int	store_connect(struct store *, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* Closes the connection and frees the store (NULL is fine). */
void	store_free(struct store *);

#endif
