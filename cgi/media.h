/*
 * media.h - the media lane of the drain loop: fetches every inbound photo,
 * voice note, video, document and sticker and stores it (media_store.h).
 *
 * A lane of its own: its transfers run in the Graph calls' libcurl multi
 * handle (one wait, one connection cache) but in slots of their own
 * (WAHOOK_MEDIA_CONCURRENCY), and its database work runs on connections of its
 * own, the big writes asynchronously. So a 100 MB download never holds up a
 * conversation's mark-read or reply. Each fetch: GET /{media_id} for a fresh
 * URL, then GET that URL with the bearer token, streamed to a temp file while
 * hashed, then checked (size, sha256) and stored.
 */
#ifndef WAHOOK_MEDIA_H
#define WAHOOK_MEDIA_H

#include "drain_config.h"
#include "graph.h"
#include "media_config.h"

struct media;

/*
 * Starts the lane on graph g's multi handle (registers itself with
 * graph_on_other). c, mc and g must outlive it. In directory mode, removes the
 * temp files a killed drainer left (not modified for 2 x WAHOOK_LEASE).
 * Returns NULL with the reason in err.
 */
struct media *media_new(const struct drain_config *c, const struct media_config *mc,
	    struct graph *g, char *err, size_t errlen);

/* Aborts what runs (rows released, temp files removed) and frees (NULL is fine). */
void	media_free(struct media *);

/*
 * One turn at time t (monotonic seconds): collects finished transfers, advances
 * the upload, renews leases, discovers new media messages (at most every
 * second), claims due rows into free slots and starts them; claim 0 skips the
 * claim (the loop is stopping). Returns 0, or the drainer's exit code that
 * must end the run (4: the database failed); a refused token only stops its
 * number's media (media_refused()); *wake is
 * lowered to the seconds until the lane wants its next turn.
 */
int	media_step(struct media *, double t, int claim, double *wake)
	    __attribute__((warn_unused_result));

/* Numbers whose token the Graph API refused in this run (their media wait). */
int	media_refused(const struct media *);

/* The socket to wait on besides the transfers (an upload's), or -1. */
int	media_fd(const struct media *);

/* 1 when nothing is in flight and the last claim found nothing more to do. */
int	media_idle(const struct media *);

/* Stops at once: transfers aborted, the upload rolled back, rows released. */
void	media_stop(struct media *);

/* Items pending in wa_media (for the exit code); -1 when the query failed. */
long long media_pending(struct media *);

/*
 * For the reply program: makes sure message_id's media rows exist and tells
 * whether each has had its first attempt (stored, dead, too large, or failed
 * once): 1 yes, 0 not yet (the lane fetches them; ask again later), -1
 * database failure. A reply never waits for retries.
 */
int	media_ready(struct media *, const char *message_id);

/* A JSON array describing message_id's media (media_store_describe()), malloc'd,
 * or NULL on failure. */
char	*media_describe(struct media *, const char *message_id);

#endif
