/*
 * outbox.h - wahook-drain's PostgreSQL side: claim rows of wa_outbox, record
 * each step the moment it succeeded, and the operator queries.
 *
 * Every statement is a single autocommit statement: no transaction is ever
 * open while a Graph API call runs. A claim hands out a lease and a claim
 * token; every later write names both the message id and that token, so a
 * drainer whose lease expired (and whose row someone else claimed) updates
 * nothing and learns it lost the row (OUTBOX_LOST).
 */
#ifndef WAHOOK_OUTBOX_H
#define WAHOOK_OUTBOX_H

#include <stddef.h>

enum outbox_rc {
	OUTBOX_OK = 0,
	OUTBOX_LOST = 1,	/* the claim is no longer ours: drop the row, call nothing */
	OUTBOX_FAIL = -1,	/* the database failed: stop (exit 4) */
	OUTBOX_REFUSED = 2	/* the database refused the value written (SQLSTATE
				   class 22): the data's fault, not the database's;
				   the row is as it was (outbox_reply_record() only) */
};

/* A claimed row. Strings are owned by the row; free with outbox_row_clear(). */
struct outbox_row {
	char	*message_id;
	char	*phone_number_id;
	char	*sender;	/* the conversation (wa_outbox.sender): order key only */
	char	*person;	/* wa_messages.sender: the phone number when known,
				   else the BSUID */
	char	*user_id;	/* the BSUID, or NULL */
	char	*username;	/* or NULL */
	char	*group_id;	/* a group message's group, or NULL */
	char	*token;		/* claim token (uuid text) */
	char	*last_error;	/* "" when none */
	int	 read_done;	/* step 1 recorded earlier */
	int	 reply_done;	/* step 2 recorded earlier */
	int	 attempts;	/* failed calls so far */
	int	 reply_unanswered; /* reply POSTs that went out and got no answer */
	double	 age;		/* seconds since arrival, or since the last requeue */
	double	 msg_age;	/* seconds since Meta's timestamp (the reply window) */
	char	*reply;		/* the recorded reply (JSON array text), "" when none */
	int	 reply_recorded; /* reply_state 'recorded': send reply, never decide again */
	int	 reply_sent;	/* messages of reply already sent */
};

/* What a reply program is told about a message. Strings owned; NULL when SQL NULL. */
struct outbox_input {
	char	*message_json;	/* wa_messages.payload */
	char	*type;
	char	*display_phone_number;
	char	*profile_name;
};

/* last_error of a row given back because its number's token was refused */
#define OUTBOX_AUTH_PREFIX	"auth:"
#define OUTBOX_REFUSED_SHOWN	32	/* refused numbers listed by outbox_stats() */

struct outbox_refused {
	char		number[65];	/* phone_number_id (cut to 64 bytes) */
	long long	pending;	/* its pending rows */
};

struct outbox_stats {
	/* pending = due + queued + retrying + leased */
	long long	pending;	/* state 'pending' */
	long long	due;		/* what a drainer would claim now: not leased,
					   next_attempt_at <= now, head of its conversation */
	long long	queued;		/* not leased, behind an earlier pending row of
					   its conversation (whatever its next_attempt_at:
					   rows behind a retrying head carry its time) */
	long long	retrying;	/* not leased, head of its conversation, waiting
					   for a retry (next_attempt_at > now) */
	long long	leased;		/* held by a drainer now */
	long long	dead;
	long long	done_hour;	/* done in the last hour */
	double		oldest_age;	/* seconds since the oldest pending row arrived; 0 if none */
	/* numbers whose token was refused: a pending row of theirs was given back
	 * with OUTBOX_AUTH_PREFIX (the first OUTBOX_REFUSED_SHOWN, by number) */
	long long	refused_numbers;
	int		nrefused;
	struct outbox_refused refused[OUTBOX_REFUSED_SHOWN];
};

struct outbox;

/*
 * Connects to conninfo ("" = PG* defaults; not copied: must outlive the
 * outbox) through db.c, every call bounded by timeout seconds, statements sent
 * as prepare (WAHOOK_DB_PREPARE, an enum db_prepare) says. listen 1: the
 * connection runs LISTEN wahook (again after each reconnect), for
 * outbox_notified(). Returns NULL with the reason in err.
 */
struct outbox *outbox_open(const char *conninfo, double timeout, int prepare, int listen,
	    char *err, size_t errlen);

/* 1 when opened to listen. */
int	outbox_listening(const struct outbox *);

/* The connection's socket (poll it for notifications), or -1. */
int	outbox_socket(const struct outbox *);

/* NOTIFY wahook received since the last call (the ingest statement sends one
 * per committed batch that stored a new message), without waiting. */
int	outbox_notified(struct outbox *);

/* Seconds until the earliest pending, unleased row is due, in *s (<= 0: due
 * now; OUTBOX_NEVER when there is none). */
#define OUTBOX_NEVER	1e9
int	outbox_next_due(struct outbox *, double *s) __attribute__((warn_unused_result));
void	outbox_close(struct outbox *);

/*
 * Rides through outages: when the connection is lost (a restart, a failover)
 * every statement reconnects with backoff (0.1 s doubling to 2 s, jittered),
 * no attempt starting later than max_s seconds after the statement did (so it
 * ends within max_s + the db timeout), calling wait(arg, seconds)
 * instead of sleeping, so the caller keeps its HTTP calls moving. wait returns
 * nonzero to give up at once (a stop was asked). Without this (max_s 0, the
 * default) a lost connection is reopened once and then the statement fails.
 * Every write is keyed by its claim token, so repeating one is harmless.
 */
void	outbox_ride_outages(struct outbox *, double max_s, int (*wait)(void *arg,
	    double seconds), void *arg);

/* The last failure's reason (PostgreSQL's first line and SQLSTATE), for logs. */
const char *outbox_error(const struct outbox *);

/* What the caller allows one phone_number_id in a claim. */
struct outbox_limit {
	const char	*number;
	int		 load;	/* rows of it the caller holds now: the least loaded
				 * numbers get the free slots first */
	int		 room;	/* at most this many new rows of it (0: none) */
};

/*
 * Claims up to max head rows (see sql/002_drain.sql), each leased for lease
 * seconds, at most room_default of any number not in lim (nlim entries, the
 * strings not kept). rows must hold max entries; *n is set to the number
 * claimed. Returns OUTBOX_OK or OUTBOX_FAIL (then *n = 0 and nothing is owned).
 */
int	outbox_claim(struct outbox *, int max, double lease, int room_default,
	    const struct outbox_limit *lim, int nlim, struct outbox_row *rows, int *n)
	    __attribute__((warn_unused_result));

/* Extends the lease of row to lease seconds from now. */
int	outbox_renew(struct outbox *, const struct outbox_row *, double lease)
	    __attribute__((warn_unused_result));

/* Step 1 done: read_at = now, the lease renewed, and the conversation's
 * unread_count brought down to its pending rows still unread. */
int	outbox_read_done(struct outbox *, const struct outbox_row *, double lease)
	    __attribute__((warn_unused_result));

/* Step 2 done: reply_message_id = wamid, state 'done', the claim released.
 * wamid NULL: Meta accepted the reply but its id could not be read; note (not
 * NULL then) goes to last_error to say why. */
int	outbox_reply_done(struct outbox *, const struct outbox_row *, const char *wamid,
	    const char *note) __attribute__((warn_unused_result));

/* The message behind row, for its reply program. OUTBOX_LOST: no such message.
 * Free in with outbox_input_clear() on every outcome. */
int	outbox_reply_input(struct outbox *, const struct outbox_row *, struct outbox_input *in)
	    __attribute__((warn_unused_result));
void	outbox_input_clear(struct outbox_input *);

/* Records the decided reply (a non-empty JSON array of bodies) before the first
 * send: reply_state 'recorded', reply_sent 0, the lease renewed. OUTBOX_REFUSED
 * when the database would not take the reply as jsonb (outbox_error() says
 * why): an invalid reply, to be retried or dead-lettered like one. */
int	outbox_reply_record(struct outbox *, const struct outbox_row *, const char *reply,
	    double lease) __attribute__((warn_unused_result));

/* Done without a reply: reply_state = state ("none" or "window"), reply_reason
 * = reason, reply = recorded when not NULL (e.g. "[]"), the claim released. */
int	outbox_reply_skip(struct outbox *, const struct outbox_row *, const char *state,
	    const char *reason, const char *recorded) __attribute__((warn_unused_result));

/* Message index (0-based, = reply_sent) of the recorded reply went out as
 * wamid: counted, its wamid kept (the first also in reply_message_id); the
 * last one makes the row done ('sent', *done = 1), else the lease is renewed.
 * wamid NULL: Meta accepted it but the wamid could not be read; note (then
 * not NULL) goes to last_error. */
int	outbox_reply_sent(struct outbox *, const struct outbox_row *, int index,
	    const char *wamid, const char *note, double lease, int *done)
	    __attribute__((warn_unused_result));

/* A failed call to retry: attempts + 1, next_attempt_at = now + delay seconds,
 * last_error, the claim released; unanswered 1 also counts a reply that went
 * out without an answer (reply_unanswered + 1). The later pending rows of its
 * conversation get the same next_attempt_at when theirs is earlier (they
 * cannot go before it anyway), so the claim does not meet them meanwhile. */
int	outbox_retry(struct outbox *, const struct outbox_row *, double delay,
	    const char *last_error, int unanswered) __attribute__((warn_unused_result));

/* Dead-letter: state 'dead', last_error, attempts + 1 when counted is 1. */
int	outbox_dead(struct outbox *, const struct outbox_row *, const char *last_error,
	    int counted) __attribute__((warn_unused_result));

/* Gives the row back unchanged (last_error set when not NULL), due at once. */
int	outbox_release(struct outbox *, const struct outbox_row *, const char *last_error)
	    __attribute__((warn_unused_result));

/* Counts for --status / --metrics and the exit code. */
int	outbox_stats(struct outbox *, struct outbox_stats *) __attribute__((warn_unused_result));

/* Dead rows back to pending (attempts 0, due now, requeued_at now): all of them
 * when nids is 0, else those named. *n = rows requeued. */
int	outbox_requeue(struct outbox *, char *const *ids, int nids, long long *n)
	    __attribute__((warn_unused_result));

/* Frees the row's strings and zeroes it (a zeroed row is fine). */
void	outbox_row_clear(struct outbox_row *);

#endif
