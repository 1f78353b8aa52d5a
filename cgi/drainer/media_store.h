/*
 * media_store.h - wa_media in PostgreSQL: discovery of media messages, claims,
 * outcomes, the operator's counts, and the upload of a fetched item's bytes.
 *
 * Two connections of its own, apart from the outbox's: one for the short
 * autocommit statements (keyed by a claim token, as for wa_outbox), and one
 * for uploads, driven with libpq's asynchronous calls so a 100 MB item never
 * stalls the drain loop: an item of up to 1 MiB is one UPDATE; a larger one goes
 * into a large object chunk by chunk, then
 * `data = lo_get(...)`, state 'done' and lo_unlink in the same transaction. A
 * crash anywhere rolls all of it back; nothing half-stored is ever visible.
 * Both connect by db.c's rules (deadline, keepalives, tcp_user_timeout), and
 * each upload command has a deadline of its own: a database that stops
 * answering fails the upload (the item is retried), it never hangs the lane.
 */
#ifndef WAHOOK_MEDIA_STORE_H
#define WAHOOK_MEDIA_STORE_H

#include <stddef.h>

#include "media_file.h"

enum media_rc {
	MEDIA_OK = 0,
	MEDIA_LOST = 1,		/* the claim is no longer ours */
	MEDIA_FAIL = -1		/* the database failed */
};

/* A claimed row; strings owned by the row, freed by media_row_clear(). */
struct media_row {
	char	*media_id;
	char	*message_id;
	char	*phone_number_id;
	char	*token;		/* claim token */
	int	 attempts;
	int	 expired;	/* 7 days after the message: Meta has forgotten it */
};

struct media_stats {
	long long	pending;	/* state pending */
	long long	failed;		/* pending after at least one failed attempt */
	long long	leased;		/* pending and being fetched now */
	long long	dead;
	long long	too_large;
	long long	done_hour;	/* stored in the last hour */
	double		oldest_age;	/* seconds since the oldest pending item's message */
};

struct media_store;

/*
 * A store on conninfo (db.c: connected by the first statement, each call
 * bounded by timeout seconds, statements sent as prepare, an enum db_prepare,
 * says). NULL with the reason in err (out of memory only).
 */
struct media_store *media_store_open(const char *conninfo, double timeout, int prepare,
	    char *err, size_t errlen);
void	media_store_close(struct media_store *);

/* 1 when the last failure was a lost or unreachable database (db.c's
 * DB_UNAVAILABLE: worth waiting for), 0 when PostgreSQL refused a statement. */
int	media_store_down(const struct media_store *);

/* The last failure's reason (first line and SQLSTATE), for logs. */
const char *media_store_error(const struct media_store *);

/*
 * Inserts a pending row for every media message received in the last window
 * seconds (message_id NULL) or for that one message, unless it has one.
 * *n = rows inserted. MEDIA_OK or MEDIA_FAIL.
 */
int	media_store_discover(struct media_store *, double window, const char *message_id,
	    long long *n) __attribute__((warn_unused_result));

/* Claims up to max due rows for lease seconds into rows[], none of the numbers
 * in skip (a JSON array of strings); *n claimed. */
int	media_store_claim(struct media_store *, int max, double lease, const char *skip,
	    struct media_row *rows, int *n) __attribute__((warn_unused_result));

/* The outcomes, each keyed by the claim (MEDIA_LOST when it is gone). */
int	media_store_renew(struct media_store *, const struct media_row *, double lease)
	    __attribute__((warn_unused_result));
int	media_store_retry(struct media_store *, const struct media_row *, double delay,
	    const char *last_error) __attribute__((warn_unused_result));
int	media_store_dead(struct media_store *, const struct media_row *, const char *last_error)
	    __attribute__((warn_unused_result));
int	media_store_release(struct media_store *, const struct media_row *)
	    __attribute__((warn_unused_result));
int	media_store_too_large(struct media_store *, const struct media_row *, const char *mime,
	    long long size, const char *why) __attribute__((warn_unused_result));
int	media_store_done_path(struct media_store *, const struct media_row *, const char *path,
	    const char *mime, const char *hex, long long size) __attribute__((warn_unused_result));

/* Counts for --status and --metrics. */
int	media_store_stats(struct media_store *, struct media_stats *)
	    __attribute__((warn_unused_result));

/* Dead rows back to pending (all, or those whose media_id or message_id is
 * named); *n = rows requeued. */
int	media_store_requeue(struct media_store *, char *const *ids, int nids, long long *n)
	    __attribute__((warn_unused_result));

/*
 * Whether every media item of message_id has had its first attempt (stored,
 * dead, too large, or failed once and waiting for a retry): *settled = 1, or 0
 * while one has not. MEDIA_OK or MEDIA_FAIL.
 */
int	media_store_settled(struct media_store *, const char *message_id, int *settled)
	    __attribute__((warn_unused_result));

/*
 * A JSON array describing message_id's media for a reply program: media_id,
 * type, mime_type, sha256, file_size, state, path (directory mode),
 * in_database, error. *json is malloc'd (caller frees). MEDIA_OK or MEDIA_FAIL.
 */
int	media_store_describe(struct media_store *, const char *message_id, char **json)
	    __attribute__((warn_unused_result));

/*
 * Starts storing the bytes of f (size bytes, its temp file still open) as
 * row's data, with mime and hex. One upload at a time: returns -1 when one is
 * running or the upload connection cannot be made (reason in the error).
 * f must stay open until media_store_upload_poll() reports the end.
 */
int	media_store_upload_begin(struct media_store *, const struct media_row *,
	    struct media_file *f, const char *mime, const char *hex, long long size)
	    __attribute__((warn_unused_result));

/*
 * Advances the running upload without blocking. Returns 0 while it runs, 1
 * when it ended, with *rc MEDIA_OK (stored, row done), MEDIA_LOST or
 * MEDIA_FAIL (rolled back; reason in media_store_error()).
 */
int	media_store_upload_poll(struct media_store *, int *rc);

/* 1 while an upload runs. */
int	media_store_uploading(const struct media_store *);

/* The upload connection's socket while an upload runs (to wait on), else -1. */
int	media_store_upload_fd(const struct media_store *);

/* 1 when the upload has bytes the socket did not take yet: wait for it to be
 * writable too, then poll. */
int	media_store_upload_writing(const struct media_store *);

/* Abandons a running upload (its transaction rolls back). */
void	media_store_upload_abort(struct media_store *);

void	media_row_clear(struct media_row *);

#endif
