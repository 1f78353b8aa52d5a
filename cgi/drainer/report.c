/*
 * report.c - --status and --metrics (see report.h). The figure to alert on is
 * wahook_outbox_oldest_pending_age_seconds: it grows when the drainer stops
 * (cron broken, token expired, Graph down) whatever the traffic.
 */
#include "report.h"

#include <math.h>

int
report_status(FILE *f, const struct outbox_stats *st)
{
	int i;

	fprintf(f, "pending              %lld\n", st->pending);
	fprintf(f, "  due now            %lld\n", st->due);
	fprintf(f, "  queued behind head %lld\n", st->queued);
	fprintf(f, "  waiting for retry  %lld\n", st->retrying);
	fprintf(f, "  claimed (leased)   %lld\n", st->leased);
	fprintf(f, "dead                 %lld\n", st->dead);
	fprintf(f, "done in last hour    %lld\n", st->done_hour);
	fprintf(f, "oldest pending age   %.1f s\n", st->oldest_age);
	fprintf(f, "numbers whose token was refused  %lld\n", st->refused_numbers);
	for (i = 0; i < st->nrefused; i++)
		fprintf(f, "  %-30s %lld pending\n", st->refused[i].number,
		    st->refused[i].pending);
	if (st->refused_numbers > st->nrefused)
		fprintf(f, "  (and %lld more)\n", st->refused_numbers - st->nrefused);
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

int
report_number(char *buf, size_t len, double v)
{
	int n;

	if (isnan(v))
		n = snprintf(buf, len, "NaN");
	else if (isinf(v))
		n = snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)	/* 2^53: exact */
		n = snprintf(buf, len, "%.0f", v);
	else
		n = snprintf(buf, len, "%.3f", v);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

static void
gauge(FILE *f, const char *name, const char *help, double v)
{
	char num[64];

	if (report_number(num, sizeof(num), v) == -1)
		snprintf(num, sizeof(num), "NaN");
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", name, help, name, name, num);
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void
label(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

int
report_metrics(FILE *f, const struct outbox_stats *st)
{
	int i;

	gauge(f, "wahook_outbox_pending", "Outbox rows still owed a mark-read or a reply.",
	    (double)st->pending);
	gauge(f, "wahook_outbox_due", "Pending rows a drainer would claim now (due, not "
	    "claimed, first in their conversation).", (double)st->due);
	gauge(f, "wahook_outbox_queued", "Pending rows waiting behind an earlier row of "
	    "their conversation.", (double)st->queued);
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
	gauge(f, "wahook_outbox_token_refused_numbers", "Business numbers whose access "
	    "token the Graph API refused: their rows wait for a new token.",
	    (double)st->refused_numbers);
	fprintf(f, "# HELP wahook_outbox_token_refused_pending Pending rows of a number "
	    "whose access token was refused.\n"
	    "# TYPE wahook_outbox_token_refused_pending gauge\n");
	/* the numbers are [A-Za-z0-9_.-] when Meta sent them; anything else is
	 * escaped as a label value must be */
	for (i = 0; i < st->nrefused; i++) {
		fputs("wahook_outbox_token_refused_pending{phone_number_id=\"", f);
		label(f, st->refused[i].number);
		fprintf(f, "\"} %lld\n", st->refused[i].pending);
	}
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

#define STATUS_NUMBERS	32	/* numbers --status lists; the rest are counted */

/* seconds from t to now, never below 0 (the database's clock may be ahead) */
static double
ago(double now, double t)
{
	return now > t ? now - t : 0;
}

int
report_ops_status(FILE *f, const struct ops_stats *st, double now)
{
	const struct ops_number *n;
	const struct ops_host *h;
	int i;

	fprintf(f, "business numbers     %lld\n", st->numbers_total);
	for (i = 0; i < st->nnumbers && i < STATUS_NUMBERS; i++) {
		n = &st->numbers[i];
		fprintf(f, "  %-30s ", n->number);
		if (n->last_inbound > 0)
			fprintf(f, "last message %.0f s ago", ago(now, n->last_inbound));
		else
			fputs("no message on record", f);
		if (n->refused_at > 0)
			fprintf(f, ", token refused %.0f s ago", ago(now, n->refused_at));
		fputc('\n', f);
	}
	if (st->numbers_total > i)
		fprintf(f, "  (and %lld more)\n", st->numbers_total - i);
	fprintf(f, "drainer hosts        %d\n", st->nhosts);
	for (i = 0; i < st->nhosts; i++) {
		h = &st->hosts[i];
		fprintf(f, "  %-30s alive %.0f s ago", h->host, ago(now, h->alive));
		if (h->exit_code >= 0)
			fprintf(f, ", last run ended %.0f s ago, exit %d", ago(now, h->finished),
			    h->exit_code);
		fputc('\n', f);
	}
	fprintf(f, "quarantined          %lld", st->quarantined);
	if (st->quarantine_newest > 0)
		fprintf(f, ", newest %.0f s ago", ago(now, st->quarantine_newest));
	fputc('\n', f);
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

/* # HELP and # TYPE of a labelled gauge, before its samples */
static void
head(FILE *f, const char *name, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* name{key="value"} v */
static void
sample(FILE *f, const char *name, const char *key, const char *value, double v)
{
	char num[64];

	if (report_number(num, sizeof(num), v) == -1)
		snprintf(num, sizeof(num), "NaN");
	fprintf(f, "%s{%s=\"", name, key);
	label(f, value);
	fprintf(f, "\"} %s\n", num);
}

int
report_ops_metrics(FILE *f, const struct ops_stats *st)
{
	int i;

	head(f, "wahook_number_last_inbound_timestamp_seconds", "Unix time of the newest "
	    "message received for this business number: a number that had traffic and "
	    "has none since is deaf (subscription, certificate, DNS).");
	for (i = 0; i < st->nnumbers; i++)
		if (st->numbers[i].last_inbound > 0)
			sample(f, "wahook_number_last_inbound_timestamp_seconds",
			    "phone_number_id", st->numbers[i].number,
			    st->numbers[i].last_inbound);
	head(f, "wahook_number_token_refused_timestamp_seconds", "Unix time at which a "
	    "drainer run last ended with this number's access token refused by the Graph "
	    "API (each run tries it again: a fixed token stops the stamps).");
	for (i = 0; i < st->nnumbers; i++)
		if (st->numbers[i].refused_at > 0)
			sample(f, "wahook_number_token_refused_timestamp_seconds",
			    "phone_number_id", st->numbers[i].number,
			    st->numbers[i].refused_at);
	gauge(f, "wahook_numbers", "Business numbers on record (those over the listing "
	    "cap are counted here, not listed).", (double)st->numbers_total);
	head(f, "wahook_drain_alive_timestamp_seconds", "Unix time at which this host's "
	    "drainer was last heard from (start, each minute of a long --for, end).");
	for (i = 0; i < st->nhosts; i++)
		sample(f, "wahook_drain_alive_timestamp_seconds", "host", st->hosts[i].host,
		    st->hosts[i].alive);
	head(f, "wahook_drain_last_run_timestamp_seconds", "Unix time at which this "
	    "host's newest completed drainer run ended (0: none yet).");
	for (i = 0; i < st->nhosts; i++)
		sample(f, "wahook_drain_last_run_timestamp_seconds", "host",
		    st->hosts[i].host, st->hosts[i].finished);
	head(f, "wahook_drain_last_run_exit_code", "Exit status of that run: 0 nothing "
	    "left, 1 rows wait for a retry, 3 a token refused, 4 database, 5 no Graph API.");
	for (i = 0; i < st->nhosts; i++)
		if (st->hosts[i].exit_code >= 0)
			sample(f, "wahook_drain_last_run_exit_code", "host",
			    st->hosts[i].host, st->hosts[i].exit_code);
	gauge(f, "wahook_quarantine_rows", "Correctly signed bodies kept in wa_quarantine "
	    "because they could not be stored (see scripts/replay).",
	    (double)st->quarantined);
	gauge(f, "wahook_quarantine_newest_timestamp_seconds", "Unix time of the newest "
	    "quarantined body (0 when none).", st->quarantine_newest);
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

int
report_media_status(FILE *f, const struct media_stats *st)
{
	fprintf(f, "media pending        %lld\n", st->pending);
	fprintf(f, "  failed, retrying   %lld\n", st->failed);
	fprintf(f, "  being fetched      %lld\n", st->leased);
	fprintf(f, "media dead           %lld\n", st->dead);
	fprintf(f, "media too large      %lld\n", st->too_large);
	fprintf(f, "media stored in last hour %lld\n", st->done_hour);
	fprintf(f, "oldest pending media %.1f s\n", st->oldest_age);
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

int
report_media_metrics(FILE *f, const struct media_stats *st)
{
	gauge(f, "wahook_media_pending", "Media items not yet stored.", (double)st->pending);
	gauge(f, "wahook_media_failed", "Pending media items waiting for a retry after a "
	    "failed fetch.", (double)st->failed);
	gauge(f, "wahook_media_leased", "Pending media items being fetched now.",
	    (double)st->leased);
	gauge(f, "wahook_media_dead", "Media items given up on (see wa_media.last_error; "
	    "wahook-drain --requeue-dead).", (double)st->dead);
	gauge(f, "wahook_media_too_large", "Media items over WAHOOK_MEDIA_MAX, not fetched.",
	    (double)st->too_large);
	gauge(f, "wahook_media_done_last_hour", "Media items stored in the last hour.",
	    (double)st->done_hour);
	gauge(f, "wahook_media_oldest_pending_age_seconds", "Seconds since the message of the "
	    "oldest pending media item (0 when none); Meta forgets media after 7 days.",
	    st->oldest_age);
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}
