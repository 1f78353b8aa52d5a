/*
 * batch.h - group commit: the webhooks a process has in hand share one
 * statement and one COMMIT.
 *
 * A request thread that has read, verified and parsed its webhook hands it
 * here and waits. Whoever finds the database idle becomes the committer: it
 * takes every webhook queued so far (bounded in count and bytes), stores
 * them in one transaction (store_batch()), wakes their threads with their
 * outcomes and leaves; a webhook that arrived meanwhile goes with the next
 * committer. Nothing waits on a timer: a lone webhook commits at once. The
 * process's one database connection is used by one committer at a time.
 */
#ifndef WAHOOK_BATCH_H
#define WAHOOK_BATCH_H

#include <stddef.h>

#include "payload.h"
#include "store.h"

struct batch;

/*
 * A queue in front of store (not owned: it must outlive the batch). A batch
 * holds at most max_webhooks webhooks and, past its first, max_bytes bytes of
 * bodies. Every call returns within timeout seconds (WAHOOK_DB_TIMEOUT) of
 * being made, the wait in the queue included. Returns NULL when out of memory.
 */
struct batch *batch_new(struct store *store, size_t max_webhooks, size_t max_bytes,
	    double timeout);

/*
 * Stores p (parsed from body) with whatever else is queued, and returns once
 * the transaction that held it has ended: STORE_OK (committed: fresh flags
 * set), STORE_REJECTED (the database refused this webhook's data; the others
 * of its batch are not affected) or STORE_UNAVAILABLE. err holds the reason
 * on failure; *batched (may be NULL) the number of webhooks in the statement
 * that stored it. Safe to call from any number of threads.
 */
enum store_result batch_store(struct batch *, struct payload *p, const char *body,
	    size_t len, char *err, size_t errlen, size_t *batched)
	    __attribute__((warn_unused_result));

/* store_quarantine() through the same queue (run alone, in its turn). */
enum store_result batch_quarantine(struct batch *, const char *reason,
	    const char *body, size_t len, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * For a thread whose webhook has been answered: when nothing is queued or
 * committing, reopens the connection a big statement closed (store_refresh()),
 * so that the next webhook does not wait for a new backend. Webhooks that
 * arrive meanwhile wait for it as they would for a commit.
 */
void	batch_idle(struct batch *);

/* Frees the queue (NULL is fine). No call may be in progress. */
void	batch_free(struct batch *);

#endif
