/*
 * outage.c - the rider of a lost database (see outage.h). The backoff is
 * jittered so that drainers on several hosts do not all reconnect in step
 * after a failover.
 */
#include "outage.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"

#define FIRST_DELAY_S	0.05	/* doubled before use: the first wait is 0.1 s */
#define MAX_DELAY_S	2.0

void
outage_init(struct outage *o, double max_s, const char *lane, const char *waits,
    const char *back)
{
	o->max_s = max_s;
	o->lane = lane;
	o->waits = waits;
	o->back = back;
	o->since = 0;
	o->begun = 0;
	o->delay = FIRST_DELAY_S;
	o->err[0] = '\0';
}

void
outage_begin(struct outage *o, double t_ms)
{
	if (o->since == 0)
		o->begun = t_ms;
}

static void
log_outage(const struct outage *o, const char *level, const char *ev, double ms,
    const char *msg)
{
	struct logline l;

	log_begin(&l, level, ev);
	if (o->lane != NULL)
		log_str(&l, "lane", o->lane);
	if (ms >= 0)
		log_ms(&l, "ms", ms);
	if (o->err[0] != '\0')
		log_str(&l, "err", o->err);
	log_str(&l, "msg", msg);
	log_end(&l);
}

double
outage_down(struct outage *o, const char *err)
{
	double waited, pause;

	snprintf(o->err, sizeof(o->err), "%s", err);
	if (o->since == 0) {
		o->since = o->begun > 0 ? o->begun : log_now_ms();
		o->delay = FIRST_DELAY_S;
		log_outage(o, "warn", "db_outage", -1, o->waits);
	}
	waited = (log_now_ms() - o->since) / 1000;
	if (waited >= o->max_s) {
		log_outage(o, "error", "db_outage", waited * 1000,
		    "the database stayed unreachable past WAHOOK_DB_OUTAGE_MAX");
		o->since = o->begun = 0;
		return -1;
	}
	o->delay = o->delay * 2 > MAX_DELAY_S ? MAX_DELAY_S : o->delay * 2;
	pause = o->delay * (0.5 + (double)arc4random() / 4294967296.0 / 2);
	/* no attempt starts past the limit */
	return pause < o->max_s - waited ? pause : o->max_s - waited;
}

void
outage_up(struct outage *o)
{
	o->begun = 0;
	if (o->since == 0)
		return;
	log_outage(o, "info", "db_back", log_now_ms() - o->since, o->back);
	o->since = 0;
}

int
outage_riding(const struct outage *o)
{
	return o->since != 0;
}
