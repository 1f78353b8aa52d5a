/*
 * drain_exit.h - wahook-drain's exit statuses, apart from the loop so that
 * the lanes that decide one (the media lane's database failure) need not
 * include the loop's header.
 */
#ifndef WAHOOK_DRAIN_EXIT_H
#define WAHOOK_DRAIN_EXIT_H

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

#endif
