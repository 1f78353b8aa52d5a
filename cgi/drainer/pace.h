/*
 * pace.h - how fast and how late: a token bucket per phone_number_id (Meta
 * meters throughput per business number) and the retry delay (exponential
 * backoff with full jitter, bounded, honouring Retry-After).
 *
 * Pure computation on a caller-supplied monotonic clock in seconds: no I/O,
 * so the unit tests drive it with made-up times.
 */
#ifndef WAHOOK_PACE_H
#define WAHOOK_PACE_H

#include <stddef.h>

#define PACE_MAX_NUMBERS 1024	/* buckets kept; the least recently used is recycled */
#define PACE_KEY_MAX	 64

struct pace;

/* A pacer allowing rps calls per second per number, in bursts of up to one
 * second's worth (at least 1). Returns NULL when out of memory. */
struct pace *pace_new(double rps);
void	pace_free(struct pace *);

/*
 * Takes one token from the bucket of number at time now. Returns 0 when the
 * call may start now, or the seconds to wait before asking again (> 0). The
 * number is truncated to PACE_KEY_MAX bytes for keying.
 */
double	pace_take(struct pace *, const char *number, double now);

/* The numbers the pacer knows (up to PACE_MAX_NUMBERS): pace_number(p, i) for
 * i < pace_count(p); valid until the next call that may learn a new number. */
size_t	pace_count(const struct pace *);
const char *pace_number(const struct pace *, size_t i);

/* The calls a number never seen may start at once (its full bucket). */
int	pace_burst(const struct pace *);

/*
 * How many calls number may start at now without waiting: 0 during a hold or
 * with an empty bucket, else the whole tokens in its bucket (a number never
 * seen has a full one). Takes nothing. *held is set to 1 during a hold, else
 * 0; *wait to the seconds until one call may start (0 when room > 0).
 */
int	pace_room(struct pace *, const char *number, double now, int *held, double *wait);

/* Holds every call of number back until now + seconds (a 429 or 130429 for the
 * whole number); never shortens an existing hold. */
void	pace_hold(struct pace *, const char *number, double now, double seconds);

/*
 * The delay before retry number `failures` (1 for the first failure) of a row:
 * uniform in [lo, min(hi, lo * 2^failures)] ("full jitter" above the floor), then
 * raised to floor_s when that is larger (Retry-After, Meta's 4^n s for 131056),
 * and never above hi. u is a uniform random number in [0, 1).
 */
double	pace_backoff(double lo, double hi, int failures, double floor_s, double u);

#endif
