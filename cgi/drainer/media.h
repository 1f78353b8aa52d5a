/*
 * media.h - the media lane of wahook-drain: fetches every inbound photo,
 * voice note, video, document and sticker and stores it (media_store.h).
 *
 * The design choice a reader must know: the lane is a thread of its own, with
 * its own transfer engine (engine.h: the drainer's one engine, a second
 * instance) and its own database connections, so nothing it
 * does (a 100 MB download, a slow large-object write, a database stall) can
 * hold up a conversation's mark-read or reply. The drain loop talks to it only
 * through the calls below (a mutex guards the lists both sides touch). Each
 * fetch: GET /{media_id} for a fresh URL, then GET that URL with the bearer
 * token, streamed to a temp file while hashed, then checked (size, sha256) and
 * stored. Time limits are measured on the transfer, right after libcurl read
 * what had arrived.
 */
#ifndef WAHOOK_MEDIA_H
#define WAHOOK_MEDIA_H

#include "media_config.h"
#include "tokens.h"

/* What the lane takes from the drainer's configuration beside media_config.
 * The strings are not copied: they must outlive the lane. */
struct media_settings {
	const char	*url;		/* WAHOOK_GRAPH_URL, no trailing slash */
	double		 timeout;	/* WAHOOK_HTTP_TIMEOUT: a retrieve call in all, a
					   download between two bytes */
	const struct tokens *tokens;	/* WAHOOK_ACCESS_TOKENS_FILE, or NULL */
	const char	*token;		/* WAHOOK_ACCESS_TOKEN, or NULL */
	double		 lease;		/* WAHOOK_LEASE, seconds */
	double		 retry_min;	/* backoff bounds, seconds */
	double		 retry_max;
	double		 db_outage_max;	/* WAHOOK_DB_OUTAGE_MAX, seconds */
	const char	*db;		/* WAHOOK_DB: libpq conninfo */
	double		 db_timeout;	/* seconds per database call */
	int		 db_prepare;	/* WAHOOK_DB_PREPARE: enum db_prepare */
};

struct media;

/*
 * Prepares the lane (no thread, no connection yet). set is copied; mc must
 * outlive the lane.
 * In directory mode, removes the temp files a killed drainer left (not
 * modified for 2 x WAHOOK_LEASE). Returns NULL with the reason in err.
 */
struct media *media_new(const struct media_settings *set, const struct media_config *mc,
	    char *err, size_t errlen);

/* Starts the lane's thread: 0, or -1 with the reason in err. */
int	media_start(struct media *, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * Asks the lane to stop (returns at once): its transfers are aborted, its
 * upload rolled back, its claimed rows released. media_join() waits for it.
 */
void	media_stop(struct media *);
void	media_join(struct media *);

/* Stops, joins and frees (NULL is fine). */
void	media_free(struct media *);

/* 1 when nothing is in flight and the last claim found nothing more to do
 * (also once the lane has ended). */
int	media_idle(const struct media *);

/* 0, or the drainer's exit code that must end the run: DRAIN_DB once the
 * database stayed away past WAHOOK_DB_OUTAGE_MAX. */
int	media_fatal(const struct media *);

/* 1 when WAHOOK_GRAPH_URL answered a retrieve call like no Graph API (a 3xx
 * or 4xx without a Graph error object): the lane stopped claiming. */
int	media_graph_refused(const struct media *);

/*
 * Numbers whose token was refused, shared by both lanes for the rest of the
 * run: media_refuse() tells the lane about a refusal the conversations met;
 * media_refused_number() copies the lane's i-th (0-based) refused number
 * into buf and returns 1, or returns 0 when there are not that many.
 */
void	media_refuse(struct media *, const char *number);
int	media_refused_number(struct media *, int i, char *buf, size_t len);

/* The number is paused by the pacer until the monotonic second until (a 429
 * or 130429 met by the conversations): the lane claims none of its media
 * before then. */
void	media_hold(struct media *, const char *number, double until);

/* Items pending in wa_media (for the exit code; call after media_join());
 * -1 when the query failed. */
long long media_pending(struct media *);

/*
 * For the reply program (the drain loop's thread, its own connection): makes
 * sure message_id's media rows exist and tells whether each has had its first
 * attempt (stored, dead, too large, or failed once): 1 yes, 0 not yet (the
 * lane fetches them; ask again later), -1 database failure. A reply never
 * waits for retries.
 */
int	media_ready(struct media *, const char *message_id);

/* A JSON array describing message_id's media (media_store_describe()), malloc'd,
 * or NULL on failure. */
char	*media_describe(struct media *, const char *message_id);

#endif
