/*
 * drain.c - the drain loop (see drain.h). A job holds one claimed row (the head
 * of its conversation) from claim to done/dead/retry; its slot number is its
 * libcurl slot. Every outcome is written by its own short statement before the
 * job moves on, so a crash repeats at most the calls that were in flight.
 * Claims ask the pacer first: a number that may not be called now gets no
 * slot, so it never holds up the others. The loop owns the transfer engine
 * (engine.h) that carries the Graph calls and the reply URL's, and hands each
 * module only the settings it uses.
 */
#include "drain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ask.h"
#include "engine.h"
#include "graph.h"
#include "log.h"
#include "media.h"
#include "pace.h"
#include "refused.h"
#include "reply.h"

#define POLL_S		0.05	/* claim poll when idle: bounds a new message's wait for its mark-read */
#define LISTEN_IDLE_S	2.0	/* a listening run's claim when idle and nothing is due
				   sooner (a requeue, an expired lease, a missed NOTIFY) */
#define MEDIA_WAIT_S	0.1	/* a reply program's message waits for its media */
#define HOLD_DEFAULT_S	1.0	/* a 429/130429 without Retry-After pauses the number this long */
#define SHORT_WAIT_S	1.0	/* a one-pass run waits for a bucket refilling this soon */
#define OPS_EVERY_S	60.0	/* a long run tells the ops record it is alive */
#define LASTERR_MAX	512
#define LIM_MAX(njobs)	((size_t)(njobs) + PACE_MAX_NUMBERS + REFUSED_MAX)

_Static_assert(GRAPH_URL_MAX >= DRAIN_URL_MAX, "a Graph call's URL holds WAHOOK_GRAPH_URL");

struct job {
	struct outbox_row row;
	int		 used;
	int		 calling;	/* its slot is busy: a Graph call, or asking */
	int		 asking;	/* the reply program or URL is deciding */
	double		 claimed_at;	/* monotonic seconds */
	double		 lease_end;	/* our lower bound of the lease's end */
	double		 not_before;	/* waiting for the number's token bucket */
};

struct work {
	const struct drain_config *c;
	struct outbox		*ob;
	struct engine		*eng;		/* the Graph calls and the reply URL's */
	struct graph		*g;
	struct ask		*ask;		/* NULL unless a program or URL replies */
	struct curl_waitfd	*fds;		/* the ask's descriptors for the poll */
	struct pace		*pace;
	struct media		*media;		/* the media lane, or NULL (WAHOOK_MEDIA=off) */
	struct job		*jobs;
	struct outbox_row	*claimed;
	struct outbox_limit	*lim;		/* njobs + PACE_MAX_NUMBERS + REFUSED_MAX */
	int			*idle;		/* per lim entry: its jobs not calling */
	int			 njobs;
	int			 active;
	volatile sig_atomic_t	*stop;
	int			 fatal;		/* 0, DRAIN_AUTH (too many refused), DRAIN_DB, DRAIN_GRAPH */
	struct refused		 refused;	/* numbers stopped by their token */
	int			 soon;		/* a number waits for its bucket only */
	int			 paused;	/* numbers on hold at the last claim */
	int			 media_refused;	/* the media lane's refusals taken in */
	double			 next_claim;
	int			 listen;	/* NOTIFY wahook wakes the claim */
	struct ops		*ops;		/* the alerting record, or NULL */
	char			 host[OPS_NAME_MAX + 1];
	double			 ops_next;	/* when the next alive note is due */
	long long		 calls, done, dead, retries, lost, asked, unanswered, no_wamid;
};

/* (libm stays out of the link: these are all the drainer needs) */
static double
dmin(double a, double b)
{
	return a < b ? a : b;
}

static double
dmax(double a, double b)
{
	return a > b ? a : b;
}

static double
now_s(void)
{
	return log_now_ms() / 1000.0;
}

/* Uniform in [0, 1). */
static double
uniform(void)
{
	return (double)arc4random() / 4294967296.0;
}

static void
db_fail(struct work *w)
{
	struct logline l;

	log_begin(&l, "error", "db");
	log_str(&l, "msg", outbox_error(w->ob));
	log_str(&l, "action", "stopping: leases of unfinished rows expire by themselves");
	log_end(&l);
	w->fatal = DRAIN_DB;
}

static void
job_free(struct work *w, struct job *j)
{
	outbox_row_clear(&j->row);
	j->used = 0;
	j->calling = 0;
	j->asking = 0;
	w->active--;
	/* the conversation's next row (or another one) may be claimable now */
	w->next_claim = 0;
}

static void
lost(struct work *w, struct job *j, const char *where)
{
	struct logline l;

	log_begin(&l, "warn", "lost_claim");
	log_str(&l, "id", j->row.message_id);
	log_str(&l, "at", where);
	log_str(&l, "msg", "lease expired and the row was claimed again: left to its new owner");
	log_end(&l);
	w->lost++;
	job_free(w, j);
}

/* Applies rc of a write that ends the job's hold on its row. */
static void
ended(struct work *w, struct job *j, int rc, const char *where)
{
	if (rc == OUTBOX_FAIL) {
		db_fail(w);
		job_free(w, j);
	} else if (rc == OUTBOX_LOST)
		lost(w, j, where);
	else
		job_free(w, j);
}

static void
fmt_code(char *buf, size_t len, long code)
{
	if (code == GRAPH_NO_CODE)
		snprintf(buf, len, "none");
	else
		snprintf(buf, len, "%ld", code);
}

static void
log_call(const struct job *j, const struct graph_result *r, const char *outcome,
    double retry_in)
{
	struct logline l;
	char code[24];
	const char *level = "info";

	if (r->cls == GRAPH_AUTH || r->cls == GRAPH_PERMANENT || r->cls == GRAPH_CONFIG ||
	    strcmp(outcome, "dead") == 0)
		level = "error";
	else if (r->cls != GRAPH_OK || r->no_wamid || j->row.reply_unanswered > 0)
		level = "warn";
	fmt_code(code, sizeof(code), r->code);
	log_begin(&l, level, "graph");
	log_str(&l, "id", j->row.message_id);
	log_str(&l, "step", r->step == GRAPH_READ ? "read" : "reply");
	log_str(&l, "number", j->row.phone_number_id);
	log_int(&l, "http", r->http);
	log_str(&l, "code", code);
	log_ms(&l, "ms", r->ms);
	log_str(&l, "outcome", outcome);
	if (r->step == GRAPH_REPLY && j->row.reply_unanswered > 0)
		log_str(&l, "may_duplicate", "yes");	/* an earlier POST got no answer */
	if (r->resend_refused)
		log_str(&l, "resend_refused", "yes");
	if (r->cls != GRAPH_OK) {
		log_str(&l, "class", graph_class_name(r->cls));
		log_int(&l, "attempts", j->row.attempts + (r->cls == GRAPH_AUTH ||
		    r->cls == GRAPH_CONFIG ? 0 : 1));
		if (retry_in > 0)
			log_ms(&l, "retry_in_ms", retry_in * 1000);
		log_str(&l, "err", r->msg);
	} else if (r->step == GRAPH_REPLY && r->no_wamid) {
		log_str(&l, "reply_id", "unknown");
		log_str(&l, "note", r->msg);
	} else if (r->step == GRAPH_REPLY)
		log_str(&l, "reply_id", r->reply_id);
	log_end(&l);
}

/* Gives back the rows of number that wait for a call (not j): a paused number
 * holds no slots. Their steps done stay done; nothing is counted. */
static void
release_number(struct work *w, const char *number, const struct job *except)
{
	struct job *k;
	int i;

	for (i = 0; i < w->njobs && !w->fatal; i++) {
		k = &w->jobs[i];
		/* k points into w->jobs, never NULL: except may be (cppcheck
		 * takes the comparison for a NULL check on k) */
		/* cppcheck-suppress nullPointerRedundantCheck */
		if (!k->used || k->calling || k == except ||
		    strcmp(k->row.phone_number_id, number) != 0)
			continue;
		ended(w, k, outbox_release(w->ob, &k->row, NULL), "release");
	}
}

/* A failed call that will be tried again, unless the limits say dead. */
static void
failed_transient(struct work *w, struct job *j, const struct graph_result *r,
    const char *lasterr, double t)
{
	const struct drain_config *c = w->c;
	int failures = j->row.attempts + 1, i, unanswered = r->cls == GRAPH_UNANSWERED;
	double floor_s = r->retry_after, delay, age = j->row.age + (t - j->claimed_at), hold;
	char why[LASTERR_MAX + 96], number[128];

	if (r->rate_limited) {	/* the whole number is over its throughput */
		hold = dmin(r->retry_after > 0 ? r->retry_after : HOLD_DEFAULT_S, c->retry_max);
		pace_hold(w->pace, j->row.phone_number_id, t, hold);
		if (w->media != NULL)	/* its media wait as well */
			media_hold(w->media, j->row.phone_number_id, t + hold);
	}
	snprintf(number, sizeof(number), "%s", j->row.phone_number_id);
	if (unanswered && j->row.reply_unanswered > 0) {
		snprintf(why, sizeof(why), "%s (a reply went out twice without an answer: "
		    "not sent again, it may have been delivered)", lasterr);
		log_call(j, r, "dead", 0);
		w->dead++;
		ended(w, j, outbox_dead(w->ob, &j->row, why, 1), "dead");
	} else if (failures >= c->max_attempts || age > c->max_age) {
		snprintf(why, sizeof(why), "%s (%s)", lasterr, failures >= c->max_attempts ?
		    "WAHOOK_MAX_ATTEMPTS reached" : "WAHOOK_MAX_AGE passed");
		log_call(j, r, "dead", 0);
		w->dead++;
		ended(w, j, outbox_dead(w->ob, &j->row, why, 1), "dead");
	} else {
		/* 131056: Meta asks for 4^n seconds between retries to one user */
		if (r->cls == GRAPH_PAIR_RATE) {
			double four_n = 1;

			for (i = 0; i < failures && four_n < c->retry_max; i++)
				four_n *= 4;
			floor_s = dmax(floor_s, four_n);
		}
		delay = pace_backoff(c->retry_min, c->retry_max, failures, floor_s, uniform());
		log_call(j, r, unanswered ? "resend_once" : "retry", delay);
		w->retries++;
		ended(w, j, outbox_retry(w->ob, &j->row, delay, lasterr, unanswered), "retry");
	}
	if (r->rate_limited)
		release_number(w, number, NULL);
}

/* Stops claiming number's rows for the rest of the run. Past REFUSED_MAX
 * numbers (or out of memory) the whole run stops instead: the list is bounded,
 * and stopping every number is the safe side of a refused token. */
static void
refuse(struct work *w, const char *number)
{
	if (refused_add(&w->refused, number) == -1)
		w->fatal = DRAIN_AUTH;
	if (w->media != NULL)		/* its media wait too */
		media_refuse(w->media, number);
}

/*
 * What the media lane has to tell the loop: numbers whose token it saw
 * refused (the conversations of those numbers stop too: one rule for both
 * lanes), and a database that stayed away past WAHOOK_DB_OUTAGE_MAX.
 */
static void
media_news(struct work *w)
{
	char number[128];
	int rc;

	while (media_refused_number(w->media, w->media_refused, number, sizeof(number))) {
		w->media_refused++;
		if (!refused_has(&w->refused, number))
			refuse(w, number);
	}
	if ((rc = media_fatal(w->media)) != 0 && !w->fatal)
		w->fatal = rc;
}

/* One message of a recorded reply went out (wamid NULL: accepted, unreadable,
 * note says why): count it; the last one ends the row. */
static void
reply_sent(struct work *w, struct job *j, const char *wamid, const char *note, double t)
{
	int done = 0, rc;

	rc = outbox_reply_sent(w->ob, &j->row, j->row.reply_sent, wamid, note, w->c->lease,
	    &done);
	if (rc != OUTBOX_OK || done) {
		if (rc == OUTBOX_OK)
			w->done++;
		ended(w, j, rc, "reply_sent");
		return;
	}
	j->row.reply_sent++;
	j->lease_end = t + w->c->lease;
}

/*
 * Whom row's reply goes to: its group, else the person by phone number when
 * Meta told us it (wa_messages.sender differs from the BSUID), else by BSUID.
 */
static void
address_of(const struct outbox_row *row, struct address *a)
{
	a->group_id = row->group_id;
	a->user_id = row->user_id;
	a->phone = row->user_id != NULL && strcmp(row->person, row->user_id) == 0 ?
	    NULL : row->person;
}

/* Done without a reply: state "none" or "window". */
static void
skip_reply(struct work *w, struct job *j, const char *state, const char *reason,
    const char *recorded)
{
	struct logline l;

	log_begin(&l, "info", "no_reply");
	log_str(&l, "id", j->row.message_id);
	log_str(&l, "why", state);
	log_str(&l, "msg", reason);
	log_end(&l);
	w->done++;
	ended(w, j, outbox_reply_skip(w->ob, &j->row, state, reason, recorded), "no_reply");
}

static const char *
ask_source(const struct work *w)
{
	return w->c->reply == DRAIN_REPLY_URL ? "url" : "command";
}

/* The program or URL failed (or answered nonsense): a failed attempt, retried
 * with the same backoff and limits as a Graph error, or dead. */
static void
ask_failed(struct work *w, struct job *j, const char *why, double ms, double t)
{
	const struct drain_config *c = w->c;
	int failures = j->row.attempts + 1, dead;
	double delay = 0, age = j->row.age + (t - j->claimed_at);
	char lasterr[LASTERR_MAX + 64];
	struct logline l;

	dead = failures >= c->max_attempts || age > c->max_age;
	if (dead)
		snprintf(lasterr, sizeof(lasterr), "%s (%s)", why,
		    failures >= c->max_attempts ? "WAHOOK_MAX_ATTEMPTS reached" :
		    "WAHOOK_MAX_AGE passed");
	else {
		snprintf(lasterr, sizeof(lasterr), "%s", why);
		delay = pace_backoff(c->retry_min, c->retry_max, failures, 0, uniform());
	}
	log_begin(&l, dead ? "error" : "warn", "reply_source");
	log_str(&l, "id", j->row.message_id);
	log_str(&l, "source", ask_source(w));
	log_ms(&l, "ms", ms);
	log_str(&l, "outcome", dead ? "dead" : "retry");
	log_int(&l, "attempts", failures);
	if (!dead)
		log_ms(&l, "retry_in_ms", delay * 1000);
	log_str(&l, "err", why);
	log_end(&l);
	if (dead) {
		w->dead++;
		ended(w, j, outbox_dead(w->ob, &j->row, lasterr, 1), "dead");
	} else {
		w->retries++;
		ended(w, j, outbox_retry(w->ob, &j->row, delay, lasterr, 0), "retry");
	}
}

/* The program or URL answered: record its reply before anything is sent. */
static void
answered(struct work *w, struct job *j, struct ask_result *ar)
{
	char err[256], why[640];	/* "invalid reply: ...": err, or a db_error() */
	char *recorded = NULL;
	int n = 0, rc;
	double t = now_s();
	struct logline l;
	struct address to;

	address_of(&j->row, &to);
	j->calling = j->asking = 0;
	w->asked++;
	if (!ar->ok) {
		ask_failed(w, j, ar->why, ar->ms, t);
		return;
	}
	if (reply_parse(ar->out, ar->outlen, &to, j->row.message_id, &recorded, &n,
	    err, sizeof(err)) == -1) {
		snprintf(why, sizeof(why), "invalid reply: %s", err);
		ask_failed(w, j, why, ar->ms, t);
		return;
	}
	log_begin(&l, "info", "reply_source");
	log_str(&l, "id", j->row.message_id);
	log_str(&l, "source", ask_source(w));
	log_ms(&l, "ms", ar->ms);
	log_str(&l, "outcome", n > 0 ? "recorded" : "none");
	log_int(&l, "messages", n);
	log_end(&l);
	if (n == 0) {
		free(recorded);
		skip_reply(w, j, "none", w->c->reply == DRAIN_REPLY_URL ?
		    "the reply URL answered no reply" : "the reply program printed nothing",
		    "[]");
		return;
	}
	rc = outbox_reply_record(w->ob, &j->row, recorded, w->c->lease);
	if (rc == OUTBOX_REFUSED) {
		/* what the strict parse let through and jsonb did not: the reply's fault */
		free(recorded);
		snprintf(why, sizeof(why), "invalid reply: the database refused it: %s",
		    outbox_error(w->ob));
		ask_failed(w, j, why, ar->ms, t);
		return;
	}
	if (rc != OUTBOX_OK) {
		free(recorded);
		ended(w, j, rc, "reply_record");
		return;
	}
	free(j->row.reply);
	j->row.reply = recorded;
	j->row.reply_recorded = 1;
	j->row.reply_sent = 0;
	j->lease_end = t + w->c->lease;
}

/* Puts the reply program or URL to work for j: nothing is sent before it answers. */
static void
ask_for(struct work *w, struct job *j, int slot, const char *media_json)
{
	struct outbox_input in;
	struct reply_input ri;
	struct ask_about about;
	struct ask_result ar;
	char *input = NULL;
	size_t len = 0;
	int rc;

	memset(&ar, 0, sizeof(ar));
	if ((rc = outbox_reply_input(w->ob, &j->row, &in)) != OUTBOX_OK) {
		outbox_input_clear(&in);
		if (rc == OUTBOX_FAIL)
			db_fail(w);
		job_free(w, j);
		return;
	}
	ri.message_json = in.message_json;
	ri.message_id = j->row.message_id;
	ri.sender = j->row.person;
	ri.user_id = j->row.user_id;
	ri.username = j->row.username;
	ri.group_id = j->row.group_id;
	ri.phone_number_id = j->row.phone_number_id;
	ri.display_phone_number = in.display_phone_number;
	ri.profile_name = in.profile_name;
	ri.media_json = media_json;
	about.message_id = j->row.message_id;
	about.sender = j->row.person;
	about.user_id = j->row.user_id;
	about.username = j->row.username;
	about.group_id = j->row.group_id;
	about.phone_number_id = j->row.phone_number_id;
	about.type = in.type != NULL ? in.type : "";
	if ((input = reply_input_json(&ri, &len)) == NULL) {
		snprintf(ar.why, sizeof(ar.why), "cannot build the program's input "
		    "(stored message is not a JSON object, or out of memory)");
		answered(w, j, &ar);
	} else if (ask_start(w->ask, slot, input, len, &about, &ar) == -1)
		answered(w, j, &ar);
	else
		j->calling = j->asking = 1;
	free(input);
	outbox_input_clear(&in);
}

/*
 * After the mark-read: whether j needs a Graph call now (1), or was settled
 * here without one (0: no reply, a window passed, a question started).
 */
static int
next_is_call(struct work *w, struct job *j, int slot, double t)
{
	char why[160];

	if (!j->row.read_done || j->row.reply_recorded)
		return 1;
	if (w->c->reply == DRAIN_REPLY_NONE) {
		skip_reply(w, j, "none", "WAHOOK_REPLY=none", NULL);
		return 0;
	}
	/* the message's age at this moment, by Meta's clock */
	if (w->c->reply_window > 0 &&
	    j->row.msg_age + (t - j->claimed_at) > w->c->reply_window) {
		snprintf(why, sizeof(why), "window: %.0f s after the message, more than "
		    "WAHOOK_REPLY_WINDOW (%.0f s)", j->row.msg_age + (t - j->claimed_at),
		    w->c->reply_window);
		skip_reply(w, j, "window", why, NULL);
		return 0;
	}
	if (w->c->reply == DRAIN_REPLY_TEXT) {
		if (j->row.group_id != NULL) {
			/* a fixed text after every message said in a group is spam */
			skip_reply(w, j, "none", "a group message: the fixed text "
			    "(WAHOOK_REPLY_TEXT) answers no group", NULL);
			return 0;
		}
		return 1;
	}
	if (w->media != NULL) {
		/* the program sees the message's media: fetched (first attempt) first */
		int ready = media_ready(w->media, j->row.message_id);
		char *media_json;

		if (ready <= 0) {
			if (ready < 0)
				w->fatal = DRAIN_DB;
			j->not_before = t + MEDIA_WAIT_S;
			return 0;
		}
		if ((media_json = media_describe(w->media, j->row.message_id)) == NULL) {
			w->fatal = DRAIN_DB;
			return 0;
		}
		/* a message without media gets no "media" member at all */
		ask_for(w, j, slot, strcmp(media_json, "[]") != 0 ? media_json : NULL);
		free(media_json);
		return 0;
	}
	ask_for(w, j, slot, NULL);
	return 0;
}

/* Starts j's next Graph call in slot: mark-read, a recorded reply's next
 * message, or the fixed text. */
static int
call_start(struct work *w, struct job *j, int slot, struct graph_result *r)
{
	struct address to;
	char *body;
	int rc;

	address_of(&j->row, &to);
	if (!j->row.read_done)
		return graph_start(w->g, slot, GRAPH_READ, j->row.phone_number_id,
		    j->row.message_id, &to, r);
	if (!j->row.reply_recorded)
		return graph_start(w->g, slot, GRAPH_REPLY, j->row.phone_number_id,
		    j->row.message_id, &to, r);
	body = reply_body_at(j->row.reply, j->row.reply_sent, NULL);
	if (body == NULL) {
		memset(r, 0, sizeof(*r));
		r->cls = GRAPH_PERMANENT;
		r->step = GRAPH_REPLY;
		r->code = r->subcode = GRAPH_NO_CODE;
		snprintf(r->msg, sizeof(r->msg), "recorded reply has no message %d",
		    j->row.reply_sent + 1);
		return -1;
	}
	rc = graph_start_body(w->g, slot, j->row.phone_number_id, body, r);
	free(body);
	return rc;
}

/* The Graph URL answered like no Graph API (exit 5): the run stops. The row
 * goes back untouched but for last_error; nothing is marked dead. */
static void
stop_run(struct work *w, struct job *j, const struct graph_result *r,
    const char *lasterr)
{
	struct logline l;

	log_call(j, r, "stop", 0);
	log_begin(&l, "error", "graph_url");
	log_str(&l, "host", w->c->graph_host);
	log_int(&l, "http", r->http);
	log_str(&l, "msg", "answered without a Graph API error object: a proxy or a "
	    "wrong WAHOOK_GRAPH_URL, not Meta judging the message; stopping the run "
	    "(exit 5), no row is marked dead");
	log_end(&l);
	if (w->fatal == 0)
		w->fatal = DRAIN_GRAPH;
	ended(w, j, outbox_release(w->ob, &j->row, lasterr), "release");
}

/* Records the outcome of a finished call (or one that could not start). */
static void
finish(struct work *w, struct job *j, const struct graph_result *r)
{
	char lasterr[LASTERR_MAX], code[24];
	double t = now_s();
	int rc;
	struct logline l;

	j->calling = 0;
	w->calls++;
	fmt_code(code, sizeof(code), r->code);
	snprintf(lasterr, sizeof(lasterr), "code=%s http=%ld msg=%s", code, r->http, r->msg);
	switch (r->cls) {
	case GRAPH_OK:
		log_call(j, r, "ok", 0);
		if (r->step == GRAPH_READ) {
			rc = outbox_read_done(w->ob, &j->row, w->c->lease);
			if (rc == OUTBOX_OK) {
				j->row.read_done = 1;
				j->lease_end = t + w->c->lease;
			} else
				ended(w, j, rc, "read_done");
		} else {
			/* a 2xx is an acceptance: sent, with or without its wamid */
			if (r->no_wamid)
				w->no_wamid++;
			if (j->row.reply_recorded) {
				reply_sent(w, j, r->no_wamid ? NULL : r->reply_id,
				    r->no_wamid ? r->msg : NULL, t);
				break;
			}
			w->done++;
			ended(w, j, outbox_reply_done(w->ob, &j->row, r->no_wamid ? NULL :
			    r->reply_id, r->no_wamid ? r->msg : NULL), "reply_done");
		}
		break;
	case GRAPH_UNANSWERED:
		w->unanswered++;
		/* FALLTHROUGH */
	case GRAPH_TRANSIENT:
	case GRAPH_PAIR_RATE:
		failed_transient(w, j, r, lasterr, t);
		break;
	case GRAPH_PERMANENT:
		log_call(j, r, "dead", 0);
		w->dead++;
		ended(w, j, outbox_dead(w->ob, &j->row, lasterr, 1), "dead");
		break;
	case GRAPH_AUTH:
		log_call(j, r, "stop", 0);
		if (!refused_has(&w->refused, j->row.phone_number_id)) {
			log_begin(&l, "error", "credentials");
			log_str(&l, "number", j->row.phone_number_id);
			log_int(&l, "http", r->http);
			log_str(&l, "code", code);
			log_str(&l, "msg", "the Graph API refused this number's access token "
			    "(or it has none): its rows wait untouched for a new token, "
			    "every other number goes on; the run exits 3");
			log_end(&l);
			refuse(w, j->row.phone_number_id);
		}
		snprintf(lasterr, sizeof(lasterr), "%s code=%s http=%ld msg=%s",
		    OUTBOX_AUTH_PREFIX, code, r->http, r->msg);
		ended(w, j, outbox_release(w->ob, &j->row, lasterr), "release");
		break;
	case GRAPH_CONFIG:
		stop_run(w, j, r, lasterr);
		break;
	}
}

/*
 * Fills w->lim with what each number may have in this claim: numbers that hold
 * jobs (their load), numbers the pacer limits (paused, or a bucket short of
 * full) and numbers whose token was refused (no room). Sets w->soon when a
 * number waits only for its bucket, w->paused to the numbers on hold. Returns
 * the entries filled.
 */
static int
limits(struct work *w, double t, double *wake)
{
	struct outbox_limit *e;
	const char *num;
	int n = 0, i, k, held, room, burst = pace_burst(w->pace);
	size_t b;
	double wait;

	w->soon = 0;
	w->paused = 0;
	for (i = 0; i < w->njobs; i++) {
		if (!w->jobs[i].used)
			continue;
		num = w->jobs[i].row.phone_number_id;
		for (k = 0; k < n && strcmp(w->lim[k].number, num) != 0; k++)
			;
		if (k == n) {
			w->lim[n].number = num;
			w->lim[n].load = 0;
			w->idle[n++] = 0;
		}
		w->lim[k].load++;
		if (!w->jobs[i].calling)
			w->idle[k]++;
	}
	for (k = 0; k < n; k++)	/* may teach the pacer a number: before the walk below */
		w->lim[k].room = pace_room(w->pace, w->lim[k].number, t, &held, &wait);
	for (b = 0; b < pace_count(w->pace); b++) {
		num = pace_number(w->pace, b);
		for (k = 0; k < n && strcmp(w->lim[k].number, num) != 0; k++)
			;
		if (k < n)
			continue;
		room = pace_room(w->pace, num, t, &held, &wait);
		if (room >= burst)
			continue;	/* as for a number never seen */
		w->lim[n].number = num;
		w->lim[n].load = 0;
		w->lim[n].room = room;
		w->idle[n++] = 0;
	}
	for (i = 0; (num = refused_at(&w->refused, i)) != NULL; i++) {	/* refused: none */
		for (k = 0; k < n && strcmp(w->lim[k].number, num) != 0; k++)
			;
		if (k == n) {
			w->lim[n].number = num;
			w->lim[n].load = 0;
			w->idle[n++] = 0;
		}
		w->lim[k].room = 0;
		w->idle[k] = 0;
	}
	for (k = 0; k < n; k++) {
		e = &w->lim[k];
		if (refused_has(&w->refused, e->number))
			continue;
		/* jobs waiting to call will take tokens first */
		e->room = e->room > w->idle[k] ? e->room - w->idle[k] : 0;
		pace_room(w->pace, e->number, t, &held, &wait);
		if (held)
			w->paused++;
		else if (e->room == 0 && wait <= SHORT_WAIT_S) {
			w->soon = 1;
			*wake = dmin(*wake, dmax(wait, POLL_S));
		}
	}
	return n;
}

/* Claims head rows into free jobs; returns how many were claimed (0 on failure). */
static int
claim(struct work *w, double t)
{
	int want = w->njobs - w->active, n = 0, i, k, nlim;
	struct job *j;
	char why[LASTERR_MAX + 128];
	double wake = w->listen ? LISTEN_IDLE_S : POLL_S, due;

	nlim = limits(w, t, &wake);
	if (outbox_claim(w->ob, want, w->c->lease, pace_burst(w->pace), w->lim, nlim,
	    w->claimed, &n) != OUTBOX_OK) {
		db_fail(w);
		return 0;
	}
	/* listening, a new row wakes us: otherwise sleep until the next retry */
	if (n < want && w->listen && wake > POLL_S) {
		if (outbox_next_due(w->ob, &due) != OUTBOX_OK) {
			db_fail(w);
			return 0;
		}
		wake = dmin(wake, dmax(due, POLL_S));
	}
	w->next_claim = n < want ? t + wake : 0;
	for (i = 0, k = 0; i < n; i++) {
		while (w->jobs[k].used)
			k++;
		j = &w->jobs[k];
		memset(j, 0, sizeof(*j));
		j->row = w->claimed[i];
		memset(&w->claimed[i], 0, sizeof(w->claimed[i]));
		j->used = 1;
		j->claimed_at = t;
		j->lease_end = t + w->c->lease;
		w->active++;
		if (j->row.age > w->c->max_age) {
			/* too late to be useful (Meta's 24 h window closes): no call */
			snprintf(why, sizeof(why), "expired: waited %.0f s > WAHOOK_MAX_AGE%s%s",
			    j->row.age, j->row.last_error[0] ? "; last: " : "",
			    j->row.last_error);
			{
				struct logline l;

				log_begin(&l, "error", "expired");
				log_str(&l, "id", j->row.message_id);
				log_ms(&l, "age_s", j->row.age);
				log_str(&l, "outcome", "dead");
				log_end(&l);
			}
			w->dead++;
			ended(w, j, outbox_dead(w->ob, &j->row, why, 0), "expired");
		}
	}
	return n;
}

/* Starts every job that may call now; returns the seconds until one may (cap
 * POLL_S, or LISTEN_IDLE_S when listening: a notification wakes the poll). */
static double
start_calls(struct work *w, double t)
{
	double wake = w->listen ? LISTEN_IDLE_S : POLL_S, wait, t0;
	struct graph_result r;
	struct job *j;
	struct logline l;
	int i, rc, held;

	for (i = 0; i < w->njobs && !w->fatal; i++) {
		j = &w->jobs[i];
		if (!j->used || j->calling)
			continue;
		/* claimed before the refusal */
		if (refused_has(&w->refused, j->row.phone_number_id)) {
			ended(w, j, outbox_release(w->ob, &j->row, NULL), "release");
			continue;
		}
		if (j->not_before > t) {
			wake = dmin(wake, j->not_before - t);
			continue;
		}
		/*
		 * The result must be recorded before the lease can end, through the
		 * longest outage ridden out (lease_need: see drain_config.h). Now,
		 * not t: a statement above may have ridden out an outage.
		 */
		t0 = now_s();
		if (t0 + w->c->lease_need > j->lease_end) {
			if ((rc = outbox_renew(w->ob, &j->row, w->c->lease)) != OUTBOX_OK) {
				ended(w, j, rc, "renew");
				continue;
			}
			j->lease_end = t0 + w->c->lease;
		}
		if (!next_is_call(w, j, i, t))
			continue;
		if (pace_room(w->pace, j->row.phone_number_id, t, &held, &wait) == 0) {
			if (held) {	/* paused: the slot goes to someone else */
				ended(w, j, outbox_release(w->ob, &j->row, NULL), "release");
				continue;
			}
			j->not_before = t + wait;
			wake = dmin(wake, wait);
			continue;
		}
		(void)pace_take(w->pace, j->row.phone_number_id, t);
		if (call_start(w, j, i, &r) == -1) {
			finish(w, j, &r);
			continue;
		}
		j->calling = 1;
		if (j->row.read_done && j->row.reply_unanswered > 0) {
			log_begin(&l, "warn", "resend");
			log_str(&l, "id", j->row.message_id);
			log_str(&l, "number", j->row.phone_number_id);
			log_str(&l, "may_duplicate", "yes");
			log_str(&l, "msg", "the last reply POST got no answer and may have been "
			    "delivered: sending it once more, the user may see it twice");
			log_end(&l);
		}
	}
	return wake;
}

/* Gives back every claimed row that has no call in flight; with keep_read,
 * not the ones already marked read (see drain_run()'s finishing). */
static void
release_idle(struct work *w, int keep_read)
{
	struct job *j;
	int i, rc;

	for (i = 0; i < w->njobs; i++) {
		j = &w->jobs[i];
		if (!j->used || j->calling || (keep_read && j->row.read_done))
			continue;
		if (w->fatal == DRAIN_DB) {	/* no point: the lease runs out */
			job_free(w, j);
			continue;
		}
		rc = outbox_release(w->ob, &j->row, NULL);
		if (rc == OUTBOX_FAIL)
			db_fail(w);
		job_free(w, j);
	}
}

/* The claimed rows already marked read. */
static int
marked_read(const struct work *w)
{
	int i, n = 0;

	for (i = 0; i < w->njobs; i++)
		n += w->jobs[i].used && w->jobs[i].row.read_done;
	return n;
}

/* One poll for everything: the engine's transfers (the Graph calls, the reply
 * URL's), the programs' pipes and exits; then the programs move on. */
static int
wait_all(struct work *w, double wake)
{
	int n = 0, nask = 0, ms, rc, fd;

	if (w->ask != NULL) {
		n = nask = ask_fds(w->ask, w->fds, ask_fds_max(w->ask));
		ms = ask_wait_ms(w->ask);
		if (ms >= 0)
			wake = dmin(wake, ms / 1000.0);
	}
	/* the database's socket: a NOTIFY wahook makes it readable */
	if (w->listen && (fd = outbox_socket(w->ob)) >= 0) {
		w->fds[n].fd = fd;
		w->fds[n].events = CURL_WAIT_POLLIN;
		w->fds[n].revents = 0;
		n++;
	}
	rc = engine_wait(w->eng, w->fds, (unsigned)n, (int)(wake * 1000) + 1);
	if (w->ask != NULL)
		ask_work(w->ask, w->fds, nask);
	return rc;
}

/* While the database is away: keep the calls and programs in flight moving
 * (their results wait until the loop collects them), unless a stop was asked. */
static int
pump(void *arg, double seconds)
{
	struct work *w = arg;

	if (*w->stop)
		return -1;
	return wait_all(w, seconds);
}

/* Notes the run in the ops record (exit_code -1: still running). */
static void
note(struct work *w, int starting, int exit_code, double t)
{
	struct logline l;

	w->ops_next = t + OPS_EVERY_S;
	if (w->ops == NULL || ops_note(w->ops, w->host, starting, exit_code,
	    w->refused.number, w->refused.n) == 0)
		return;
	log_begin(&l, "warn", "ops_note");
	log_str(&l, "msg", "could not record the run for --metrics (is sql/008_ops.sql "
	    "applied?): draining goes on");
	log_str(&l, "error", ops_error(w->ops));
	log_end(&l);
}

static int
exit_code(struct work *w, long long *pending)
{
	struct outbox_stats st;

	*pending = -1;
	if (w->fatal)
		return w->fatal;
	if (outbox_stats(w->ob, &st) != OUTBOX_OK) {
		db_fail(w);
		return DRAIN_DB;
	}
	*pending = st.pending;
	if (w->refused.n > 0)		/* either lane's refusals */
		return DRAIN_AUTH;
	if (w->media != NULL && media_graph_refused(w->media))
		return DRAIN_GRAPH;
	if (st.pending == 0 && w->media != NULL && (st.pending = media_pending(w->media)) < 0)
		return DRAIN_DB;
	return st.pending > 0 ? DRAIN_LEFT : DRAIN_DONE;
}

/* The settings of each module, from c (the strings stay c's). */
static void
graph_settings_of(const struct drain_config *c, struct graph_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->url = c->graph_url;
	s->timeout = c->http_timeout;
	s->reply_text = c->reply_text;
	s->typing = c->typing;
	s->tokens = c->tokens;
	s->token = c->token;
}

static void
ask_settings_of(const struct drain_config *c, struct ask_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->command = c->reply == DRAIN_REPLY_COMMAND ? c->reply_command : NULL;
	s->env_path = c->env_path;
	s->env_home = c->env_home;
	s->env_lang = c->env_lang;
	s->url = c->reply_url;
	s->secret = c->reply_secret;
	s->timeout = c->reply_timeout;
}

static void
media_settings_of(const struct drain_config *c, struct media_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->url = c->graph_url;
	s->timeout = c->http_timeout;
	s->tokens = c->tokens;
	s->token = c->token;
	s->lease = c->lease;
	s->retry_min = c->retry_min;
	s->retry_max = c->retry_max;
	s->db_outage_max = c->db_outage_max;
	s->db = c->db;
	s->db_timeout = c->db_timeout;
	s->db_prepare = c->db_prepare;
}

int
drain_run(const struct drain_config *c, const struct media_config *mc, struct outbox *ob,
    struct ops *ops, double for_seconds, volatile sig_atomic_t *stop)
{
	struct work w;
	struct graph_settings gs;
	struct ask_settings as;
	struct media_settings ms;
	struct graph_result r;
	struct ask_result ar;
	struct logline l;
	char err[256];
	double t, t_start = now_s(), t_end, wake;
	long long pending = -1;
	int slot, stopping, finishing, rc = DRAIN_DB, i, asking;

	memset(&w, 0, sizeof(w));
	w.c = c;
	w.ob = ob;
	w.ops = ops;
	w.listen = for_seconds > 0 && outbox_listening(ob);
	if (gethostname(w.host, sizeof(w.host)) == -1 || w.host[0] == '\0')
		snprintf(w.host, sizeof(w.host), "unknown");
	w.host[sizeof(w.host) - 1] = '\0';
	w.stop = stop;
	w.njobs = c->concurrency;
	t_end = for_seconds > 0 ? t_start + for_seconds : 0;
	if ((w.jobs = calloc((size_t)w.njobs, sizeof(*w.jobs))) == NULL ||
	    (w.claimed = calloc((size_t)w.njobs, sizeof(*w.claimed))) == NULL ||
	    (w.lim = calloc(LIM_MAX(w.njobs), sizeof(*w.lim))) == NULL ||
	    (w.idle = calloc(LIM_MAX(w.njobs), sizeof(*w.idle))) == NULL ||
	    (w.pace = pace_new(c->max_rps)) == NULL) {
		log_msg("error", "start", "out of memory");
		rc = DRAIN_LEFT;
		goto done;
	}
	graph_settings_of(c, &gs);
	ask_settings_of(c, &as);
	media_settings_of(c, &ms);
	asking = c->reply == DRAIN_REPLY_COMMAND || c->reply == DRAIN_REPLY_URL;
	/* a slot per job for its Graph call, another for its reply URL call; the
	 * connections kept: one per job to Meta (and 4 spare), one per job to the URL */
	i = c->reply == DRAIN_REPLY_URL ? 2 : 1;
	if ((w.eng = engine_new(i * w.njobs, (long)(i * w.njobs) + 4, err,
	    sizeof(err))) == NULL ||
	    (w.g = graph_new(&gs, w.eng, w.njobs, err, sizeof(err))) == NULL) {
		log_msg("error", "start", err);
		rc = DRAIN_LEFT;
		goto done;
	}
	if (asking && (w.ask = ask_new(&as, w.eng, w.njobs, err, sizeof(err))) == NULL) {
		log_msg("error", "start", err);
		rc = DRAIN_LEFT;
		goto done;
	}
	/* the ask's descriptors and the database's */
	if ((w.fds = calloc((size_t)(w.ask != NULL ? ask_fds_max(w.ask) : 0) + 1,
	    sizeof(*w.fds))) == NULL) {
		log_msg("error", "start", "out of memory");
		rc = DRAIN_LEFT;
		goto done;
	}
	/* the media lane: a thread of its own, so it never holds up a reply */
	if (mc != NULL && mc->on && ((w.media = media_new(&ms, mc, err, sizeof(err))) == NULL ||
	    media_start(w.media, err, sizeof(err)) == -1)) {
		log_msg("error", "media", err);
		rc = DRAIN_LEFT;
		goto done;
	}
	outbox_ride_outages(ob, c->db_outage_max, pump, &w);
	note(&w, 1, -1, t_start);
	for (;;) {
		t = now_s();
		if (w.media != NULL)
			media_news(&w);
		if (t >= w.ops_next)
			note(&w, 0, -1, t);
		if (w.listen && outbox_notified(w.ob) > 0)
			w.next_claim = 0;	/* a batch was stored: claim now */
		stopping = *stop || w.fatal || (t_end > 0 && t >= t_end);
		/*
		 * --for's time is up, but a message already marked read gets its
		 * reply in this run: its sender saw the blue ticks. Bounded: one
		 * program run or URL call and one Graph call past the end (a
		 * signal or a fatal error ends at once, as before).
		 */
		finishing = stopping && !*stop && !w.fatal && t < t_end + c->reply_timeout +
		    c->http_timeout && marked_read(&w) > 0;
		if (!stopping && w.active < w.njobs && t >= w.next_claim) {
			if (claim(&w, t) == 0 && w.active == 0 && t_end == 0 && !w.fatal &&
			    !w.soon && (w.media == NULL || media_idle(w.media)))
				break;		/* one pass: nothing callable now, nothing running */
			continue;		/* start the new jobs at once */
		}
		if (stopping) {
			release_idle(&w, finishing);
			media_stop(w.media);
			if (finishing)
				wake = start_calls(&w, t);	/* only theirs are left */
			else if (graph_running(w.g) == 0 && (w.ask == NULL ||
			    ask_running(w.ask) == 0))
				break;
			else
				wake = POLL_S;
		} else {
			wake = start_calls(&w, t);
			if (w.active < w.njobs)
				wake = dmin(wake, dmax(0, w.next_claim - t));
			if (t_end > 0)
				wake = dmin(wake, dmax(0, t_end - t));
		}
		if (wait_all(&w, wake) == -1) {
			log_msg("error", "curl", "curl_multi_poll failed: stopping");
			*stop = 1;
		}
		while (graph_next(w.g, &slot, &r))
			finish(&w, &w.jobs[slot], &r);
		while (w.ask != NULL && ask_next(w.ask, &slot, &ar)) {
			answered(&w, &w.jobs[slot], &ar);
			ask_result_clear(&ar);
		}
	}
	release_idle(&w, 0);
	media_join(w.media);
	if (w.media != NULL)
		media_news(&w);
	rc = exit_code(&w, &pending);
	note(&w, 0, rc, now_s());
done:
	log_begin(&l, rc == DRAIN_DONE || rc == DRAIN_LEFT ? "info" : "error", "drain_end");
	log_int(&l, "calls", w.calls);
	log_int(&l, "done", w.done);
	log_int(&l, "dead", w.dead);
	log_int(&l, "retries", w.retries);
	log_int(&l, "lost", w.lost);
	if (w.refused.n > 0)
		log_int(&l, "numbers_refused", w.refused.n);
	if (w.ask != NULL)
		log_int(&l, "asked", w.asked);
	log_int(&l, "unanswered", w.unanswered);
	log_int(&l, "no_wamid", w.no_wamid);
	log_int(&l, "paused_numbers", w.paused);
	if (pending >= 0)
		log_int(&l, "pending", pending);
	log_int(&l, "exit", rc);
	log_ms(&l, "ms", (now_s() - t_start) * 1000);
	log_end(&l);
	outbox_ride_outages(ob, 0, NULL, NULL);
	ask_free(w.ask);
	free(w.fds);
	media_free(w.media);
	graph_free(w.g);
	engine_free(w.eng);	/* after its clients */
	for (i = 0; w.jobs != NULL && i < w.njobs; i++)
		outbox_row_clear(&w.jobs[i].row);
	free(w.jobs);
	free(w.claimed);
	refused_free(&w.refused);
	free(w.lim);
	free(w.idle);
	pace_free(w.pace);
	return rc;
}
