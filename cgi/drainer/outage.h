/*
 * outage.h - riding out a lost database, one rule for both drainer lanes (the
 * conversations' outbox and the media lane). The first failure starts the
 * clock and logs db_outage (warn); every failure is given a jittered backoff,
 * 0.1 s doubling to 2 s (never past the limit), until WAHOOK_DB_OUTAGE_MAX
 * has passed since the first (or since the statement began: outage_begin()),
 * when db_outage (error) is logged and the caller gives up; the first success
 * after a failure logs db_back.
 *
 * The rider decides and logs, and never waits: each caller waits in its own
 * loop (outbox.c through the wait its caller handed it, the media lane in its
 * poll), so no module calls up into another's loop for it.
 */
#ifndef WAHOOK_OUTAGE_H
#define WAHOOK_OUTAGE_H

#define OUTAGE_ERR_MAX	512

struct outage {
	double		 max_s;		/* give up this long after the first failure */
	const char	*lane;		/* logged as lane=, or NULL */
	const char	*waits;		/* the db_outage warning's msg: who waits, how */
	const char	*back;		/* the db_back msg */
	double		 since;		/* log_now_ms() the outage is counted from; 0: up */
	double		 begun;		/* outage_begin()'s time, or 0 */
	double		 delay;		/* the last backoff (s) */
	char		 err[OUTAGE_ERR_MAX];	/* the last failure's reason */
};

/*
 * A rider with nothing to ride: gives up max_s seconds after a first failure
 * (0: at the first). lane, waits and back are logged as they are (not
 * copied: string constants).
 */
void	outage_init(struct outage *, double max_s, const char *lane, const char *waits,
	    const char *back);

/*
 * The database was found gone; err says why (copied, cut to fit). Logs the
 * first failure of an outage. Returns the seconds to wait before trying again,
 * or -1 when max_s has passed since the first failure: then the give-up is
 * logged and the rider is up again (a later failure starts a new outage).
 */
double	outage_down(struct outage *, const char *err) __attribute__((warn_unused_result));

/*
 * Counts the next outage from t_ms (log_now_ms() when a statement began)
 * instead of from its first failure, so a statement ends within max_s (plus
 * its last attempt's deadline) however long its first attempt took to fail.
 * Cleared by outage_up() and by a give-up.
 */
void	outage_begin(struct outage *, double t_ms);

/* The database answered: logs db_back when it was away. */
void	outage_up(struct outage *);

/* Nonzero while an outage is being ridden (a failure not yet followed by a
 * success or a give-up). */
int	outage_riding(const struct outage *);

#endif
