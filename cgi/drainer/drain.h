/*
 * drain.h - the drain loop: claims head rows, runs each message's two steps
 * through the Graph API, records every outcome, paces and backs off.
 *
 * Single-threaded: libcurl's multi interface carries up to
 * WAHOOK_CONCURRENCY calls at once (one per conversation), and the short
 * PostgreSQL statements run between polls. One conversation is held by at
 * most one job, so its messages go strictly in order. A statement that waits
 * (a lock, a slow server) delays the recording of answers but never turns
 * one into a timeout: the engine (engine.h) measures the limit on the transfer.
 */
#ifndef WAHOOK_DRAIN_H
#define WAHOOK_DRAIN_H

#include <signal.h>

#include "drain_config.h"
#include "drain_exit.h"
#include "media_config.h"
#include "ops.h"
#include "outbox.h"

/*
 * Drains ob with configuration c; with mc->on, the media lane (media.h) runs
 * beside the conversations in the same loop (mc NULL: no media lane).
 * for_seconds == 0: every row callable now and those that become callable
 * while it runs, then return (rows of a paused number, or waiting for a
 * retry, are left: exit 1); > 0: keep working until that many seconds have
 * passed, woken by NOTIFY wahook when ob listens (outbox_open()), else
 * polling every 50 ms when idle. When *stop
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
