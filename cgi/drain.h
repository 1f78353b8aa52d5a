/*
 * drain.h - the drain loop: claims head rows, runs each message's two steps
 * through the Graph API, records every outcome, paces and backs off.
 *
 * Single-threaded: libcurl's multi interface carries up to
 * WAHOOK_CONCURRENCY calls at once (one per conversation), and the short
 * PostgreSQL statements run between polls. One conversation is held by at
 * most one job, so its messages go strictly in order. A statement that waits
 * (a lock, a slow server) delays the recording of answers but never turns
 * one into a timeout: graph_wait() measures the limit on the transfer.
 */
#ifndef WAHOOK_DRAIN_H
#define WAHOOK_DRAIN_H

#include <signal.h>

#include "drain_config.h"
#include "media_config.h"
#include "ops.h"
#include "outbox.h"

/* wahook-drain's exit status; wahook-drain(8), EXIT STATUS, is the reference. */
enum {
	DRAIN_DONE = 0,		/* no row left pending */
	DRAIN_LEFT = 1,		/* rows left for a later run (retry, lease, new) */
	DRAIN_CONFIG = 2,	/* bad configuration (decided by the caller) */
	DRAIN_AUTH = 3,		/* the Graph API refused a number's token: its rows wait */
	DRAIN_DB = 4,		/* the database failed */
	DRAIN_GRAPH = 5		/* WAHOOK_GRAPH_URL answered like no Graph API (a
				 * 3xx/4xx without a Graph error object) */
};

/*
 * Drains ob with configuration c; with mc->on, the media lane (media.h) runs
 * beside the conversations in the same loop (mc NULL: no media lane).
 * for_seconds == 0: every row callable now and those that become callable
 * while it runs, then return (rows of a paused number, or waiting for a
 * retry, are left: exit 1); > 0: keep polling
 * (every 50 ms when idle) until that many seconds have passed. When *stop
 * becomes nonzero (SIGTERM/SIGINT), no new call starts: the calls in flight
 * finish and are recorded, claimed rows not yet called are released. Returns
 * one of the codes above.
 *
 * ops (NULL: none) gets the run noted for alerting (ops.h): at its start,
 * every minute of a long run, and at its end with its exit code and the
 * numbers whose token was refused. A failed note is logged, never fatal.
 */
int	drain_run(const struct drain_config *c, const struct media_config *mc,
	    struct outbox *ob, struct ops *ops, double for_seconds,
	    volatile sig_atomic_t *stop);

#endif
