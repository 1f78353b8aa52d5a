/*
 * report.c - --status and --metrics (see report.h). The figure to alert on is
 * wahook_outbox_oldest_pending_age_seconds: it grows when the drainer stops
 * (cron broken, token expired, Graph down) whatever the traffic.
 */
#include "report.h"

int
report_status(FILE *f, const struct outbox_stats *st)
{
	fprintf(f, "pending              %lld\n", st->pending);
	fprintf(f, "  due now            %lld\n", st->due);
	fprintf(f, "  waiting for retry  %lld\n", st->retrying);
	fprintf(f, "  claimed (leased)   %lld\n", st->leased);
	fprintf(f, "dead                 %lld\n", st->dead);
	fprintf(f, "done in last hour    %lld\n", st->done_hour);
	fprintf(f, "oldest pending age   %.1f s\n", st->oldest_age);
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

static void
gauge(FILE *f, const char *name, const char *help, double v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

int
report_metrics(FILE *f, const struct outbox_stats *st)
{
	gauge(f, "wahook_outbox_pending", "Outbox rows still owed a mark-read or a reply.",
	    (double)st->pending);
	gauge(f, "wahook_outbox_due", "Pending rows whose next attempt is due now.",
	    (double)st->due);
	gauge(f, "wahook_outbox_retrying", "Pending rows waiting for a retry after a "
	    "failed Graph API call.", (double)st->retrying);
	gauge(f, "wahook_outbox_leased", "Pending rows claimed by a running drainer.",
	    (double)st->leased);
	gauge(f, "wahook_outbox_dead", "Rows given up on (see last_error; "
	    "wahook-drain --requeue-dead).", (double)st->dead);
	gauge(f, "wahook_outbox_done_last_hour", "Rows marked read and answered in the "
	    "last hour.", (double)st->done_hour);
	gauge(f, "wahook_outbox_oldest_pending_age_seconds", "Seconds since the oldest "
	    "pending row arrived (0 when none): alert on this.", st->oldest_age);
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}
