/*
 * store.h - the responder's PostgreSQL side: one persistent connection, one
 * prepared statement per batch of webhooks (group commit: batch.h decides
 * what goes together).
 *
 * The statement is a single data-modifying CTE (sql/001_schema.sql has the
 * tables): messages ON CONFLICT DO NOTHING, an outbox row for each message
 * that was new and answerable, conversations, reactions, statuses, events,
 * for every webhook of the batch, in one implicit transaction and one round
 * trip. When it returns success the COMMIT has returned: only then may any
 * webhook of the batch be answered 200.
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

#define STORE_ERR_MAX 512

/*
 * The most bytes of bodies one statement is given: WAHOOK_MAX_BODY and
 * WAHOOK_BATCH_BYTES are capped at it (a batch holds at most the larger of
 * the two). The bodies' column then stays within half of store.c's 256 MiB
 * cap on one array literal, leaving room for the text columns' escapes, and
 * the statement far from PostgreSQL's 1 GB message. Past the cap a body
 * would get 503 on every one of Meta's retries.
 */
#define STORE_BODIES_MAX (128L * 1024 * 1024)

/* One webhook of a batch. */
struct store_item {
	struct payload	*p;		/* in: the parsed webhook; out: msgs[].fresh */
	const char	*body;		/* in: the raw request bytes p was parsed from */
	size_t		 len;
	enum store_result res;		/* out */
	char		 err[STORE_ERR_MAX]; /* out, when res != STORE_OK: PostgreSQL's
					   message and SQLSTATE, never data */
	size_t		 batch;		/* out: webhooks in the statement that stored it */
};

struct store;

/* Allocates a store for conninfo (not copied: must outlive the store), whose
 * every database call (connecting included) ends within timeout seconds, with
 * statements sent as prepare (WAHOOK_DB_PREPARE: an enum db_prepare) says.
 * Does not connect: the first call does. Returns NULL only when out of memory. */
struct store *store_new(const char *conninfo, double timeout, int prepare);

/*
 * Stores every webhook of items[0..n) (each whole or not at all), taking each
 * object from its body (PostgreSQL parses them as jsonb). One statement, one
 * transaction for all of them; a deadlock or serialization failure is retried
 * (a few times, briefly); when the server refuses the batch for its data
 * (SQLSTATE class 22, 23, 54) it is halved and each half stored on its own,
 * down to the one webhook that carries the data: only that one ends
 * STORE_REJECTED. A body holding a NUL byte is STORE_REJECTED without being
 * sent. Connects or reconnects as needed under db.h's rule. Everything,
 * waiting for the connection, retries and halving included, ends within
 * timeout seconds (<= 0: the store's WAHOOK_DB_TIMEOUT). Sets every item's res
 * (and err); on STORE_OK sets fresh=1 on each message inserted now (fresh=0:
 * it was stored before, or an earlier copy in the same batch was). Never
 * fails otherwise.
 */
void	store_batch(struct store *, struct store_item *const *items, size_t n,
	    double timeout);

/* Inserts body into wa_quarantine with reason within timeout seconds (<= 0:
 * WAHOOK_DB_TIMEOUT). STORE_OK or STORE_UNAVAILABLE (never retried after the
 * statement was sent: it is not idempotent). */
enum store_result store_quarantine(struct store *, const char *reason,
	    const char *body, size_t len, double timeout, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * Connects now (and prepares the statements) instead of at the first request,
 * so that a database that cannot be reached, a role that may not log in or
 * migrations not applied show in the log at start. Returns 0, or -1 with the
 * reason in err; either way the store stays usable (the next call reconnects).
 */
int	store_connect(struct store *, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * When the last statement sent so much that its connection was closed (see
 * db.h: libpq keeps its buffers at their largest), opens the next one now:
 * for a thread whose webhook has been answered. Returns at once when another
 * call holds the store. A failure is left for the next call to meet and
 * report.
 */
void	store_refresh(struct store *);

/* 1 when store_refresh() has a connection to open: a check without locks, for
 * the path every request takes. */
int	store_stale(struct store *);

/* Closes the connection and frees the store (NULL is fine). */
void	store_free(struct store *);

#endif
