/*
 * ops.h - the drainer's record for alerting (sql/008_ops.sql): when each
 * business number last received a message and last had its token refused,
 * when each host's drainer last ran, and the quarantine's count. A connection
 * of its own, opened for each call and closed after it: a drain run writes
 * here once a minute at most, so it never holds a backend idle for it.
 */
#ifndef WAHOOK_OPS_H
#define WAHOOK_OPS_H

#include <stddef.h>

#define OPS_NUMBERS_MAX	10000	/* numbers --metrics lists (the rest are counted) */
#define OPS_HOSTS_MAX	64	/* drainer hosts --metrics lists */
#define OPS_NAME_MAX	64	/* bytes of a number or host name kept */

struct ops_number {
	char	number[OPS_NAME_MAX + 1];	/* phone_number_id */
	double	last_inbound;	/* Unix seconds of its newest message; 0 if none */
	double	refused_at;	/* Unix seconds of the last refusal of its token; 0 if none */
};

struct ops_host {
	char	host[OPS_NAME_MAX + 1];
	double	started, alive, finished;	/* Unix seconds; finished 0: never */
	int	exit_code;			/* of the finished run; -1: none yet */
};

struct ops_stats {
	struct ops_number *numbers;	/* nnumbers of them, by number; owned (ops_stats_free) */
	int		 nnumbers;
	long long	 numbers_total;	/* numbers on record, listed or not */
	struct ops_host	 hosts[OPS_HOSTS_MAX];
	int		 nhosts;
	long long	 quarantined;	/* rows in wa_quarantine */
	double		 quarantine_newest;	/* Unix seconds of the newest; 0 if none */
};

struct ops;

/* An ops record on conninfo (not copied: must outlive it), each call bounded
 * by timeout seconds, statements sent as prepare (an enum db_prepare) says.
 * Does not connect. NULL when out of memory. */
struct ops *ops_open(const char *conninfo, double timeout, int prepare);
void	ops_close(struct ops *);

/* The last failure's reason, for logs. */
const char *ops_error(const struct ops *);

/*
 * Records that the drainer on host is running (exit_code -1; a new run when
 * starting is 1) or finished with exit_code, and stamps token_refused_at of
 * the nrefused numbers in refused; folds the messages received since the last
 * record into wa_ops_number. Returns 0, or -1 with ops_error() set (the
 * caller logs it and carries on: a missing record never stops a drain).
 */
int	ops_note(struct ops *, const char *host, int starting, int exit_code,
	    char *const *refused, int nrefused) __attribute__((warn_unused_result));

/* Fills st (free with ops_stats_free() on every outcome). Returns 0 or -1. */
int	ops_stats(struct ops *, struct ops_stats *st) __attribute__((warn_unused_result));
void	ops_stats_free(struct ops_stats *st);

#endif
