/*
 * pace.c - token buckets and backoff (see pace.h). Buckets live in a small
 * array searched linearly: a business has a handful of numbers, and the cap
 * keeps a flood of distinct ids from growing memory.
 */
#include "pace.h"

#include <stdlib.h>
#include <string.h>

struct bucket {
	char	number[PACE_KEY_MAX + 1];
	double	tokens;
	double	last;		/* when tokens was last brought up to date */
	double	hold_until;
	double	used;		/* last use, for recycling */
};

struct pace {
	double		 rps, burst;
	struct bucket	*b;
	size_t		 n;
};

struct pace *
pace_new(double rps)
{
	struct pace *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if ((p->b = calloc(PACE_MAX_NUMBERS, sizeof(*p->b))) == NULL) {
		free(p);
		return NULL;
	}
	p->rps = rps;
	p->burst = rps < 1 ? 1 : rps;
	return p;
}

void
pace_free(struct pace *p)
{
	if (p == NULL)
		return;
	free(p->b);
	free(p);
}

static struct bucket *
find(struct pace *p, const char *number, double now)
{
	size_t i, oldest = 0;
	struct bucket *b;

	for (i = 0; i < p->n; i++) {
		if (strncmp(p->b[i].number, number, PACE_KEY_MAX) == 0)
			return &p->b[i];
		if (p->b[i].used < p->b[oldest].used)
			oldest = i;
	}
	b = p->n < PACE_MAX_NUMBERS ? &p->b[p->n++] : &p->b[oldest];
	memset(b, 0, sizeof(*b));
	memcpy(b->number, number, strnlen(number, PACE_KEY_MAX));	/* zeroed above */
	b->tokens = p->burst;
	b->last = now;
	return b;
}

/* Brings b's tokens up to now. */
static void
refill(const struct pace *p, struct bucket *b, double now)
{
	if (now > b->last) {
		b->tokens += (now - b->last) * p->rps;
		if (b->tokens > p->burst)
			b->tokens = p->burst;
		b->last = now;
	}
}

size_t
pace_count(const struct pace *p)
{
	return p->n;
}

const char *
pace_number(const struct pace *p, size_t i)
{
	return p->b[i].number;
}

int
pace_burst(const struct pace *p)
{
	return (int)p->burst;
}

int
pace_room(struct pace *p, const char *number, double now, int *held, double *wait)
{
	struct bucket *b = find(p, number, now);

	*held = now < b->hold_until;
	if (*held) {
		*wait = b->hold_until - now;
		return 0;
	}
	refill(p, b, now);
	*wait = b->tokens >= 1 ? 0 : (1 - b->tokens) / p->rps;
	return (int)b->tokens;
}

double
pace_take(struct pace *p, const char *number, double now)
{
	struct bucket *b = find(p, number, now);

	b->used = now;
	if (now < b->hold_until)
		return b->hold_until - now;
	refill(p, b, now);
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return 0;
	}
	return (1 - b->tokens) / p->rps;
}

void
pace_hold(struct pace *p, const char *number, double now, double seconds)
{
	struct bucket *b = find(p, number, now);

	b->used = now;
	if (now + seconds > b->hold_until)
		b->hold_until = now + seconds;
}

double
pace_backoff(double lo, double hi, int failures, double floor_s, double u)
{
	double cap = lo, d;
	int i;

	if (failures < 1)
		failures = 1;
	for (i = 0; i < failures && cap < hi; i++)
		cap *= 2;
	if (cap > hi)
		cap = hi;
	if (cap < lo)
		cap = lo;
	d = lo + u * (cap - lo);
	if (floor_s > d)
		d = floor_s;
	if (d > hi)
		d = hi;
	return d;
}
