/*
 * store.c - the ingest statement (see store.h). C hands PostgreSQL parallel
 * arrays (text-format array literals, one per column, every webhook of the
 * batch in them) plus the raw bodies once, as one JSON array; each stored
 * jsonb object is taken from it by its path, so nothing is re-serialised and
 * numbers stay as Meta wrote them. A batch the server refuses for its data is
 * halved until the refused webhook stands alone. The statement NOTIFYs once
 * per batch, never per webhook: a notifying commit holds a database-wide lock
 * through its WAL flush (doc/postgresql.md).
 * One caller at a time holds the connection and the arrays (the store's
 * lock); batch.c makes sure that is rarely a wait.
 */
#include "store.h"
#include "db.h"
#include "dynbuf.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#define KEEP_MAX (64 * 1024)	/* an array buffer larger than this is freed after use:
				   every column of it kept warm, at most */
#ifndef ARRAY_MAX	/* -DARRAY_MAX=...: a small cap, for the test that passes it */
#define ARRAY_MAX (256 * 1024 * 1024)	/* the cap on one column's array literal */
#endif

/* Columns sent per message, status and event; the order is the SQL's $n. */
enum {
	P_BODY,
	M_ID, M_PNID, M_DISPLAY, M_WABA, M_FIELD, M_SENDER, M_RECIPIENT, M_TYPE,
	M_TS, M_TEXT, M_PROFILE, M_CONTEXT, M_CLASS, M_REACT_TO, M_EMOJI, M_PATH,
	M_POSITION, M_USER, M_PARENT, M_USERNAME, M_GROUP, M_CONV, M_NEW_ID,
	S_ID, S_PNID, S_RECIPIENT, S_STATUS, S_RANK, S_TS, S_CALLBACK, S_PATH,
	S_USER, S_PARENT,
	E_FIELD, E_WABA, E_PATH,
	Q_PATH, Q_WHERE, Q_REASON,
	NPARAMS,
	LEAN_NPARAMS = S_ID	/* the lean statement takes the body and the messages */
};

/*
 * sql/statements/ingest.sql, made into C strings by the Makefile: the full statement, and
 * the lean one without its reactions, statuses and events part, for webhooks
 * that have none (most of them; the gain: doc/performance.md, the ingest statement).
 */
static const char ingest_sql[] =
#include "ingest_sql.h"
;
static const char ingest_lean_sql[] =
#include "ingest_lean_sql.h"
;

/*
 * A 200 promises durable rows: each statement that earns one turns
 * synchronous_commit on for its own transaction (set_config(..., true), the
 * ingest statement's "durable" column), whatever the server's setting. Not
 * once per session: through a pooler in transaction mode (PgBouncer) the next
 * transaction may run on a server connection that never saw that SET.
 */
static const char quarantine_sql[] =
"INSERT INTO wa_quarantine (reason, body) SELECT $1::text, $2::bytea"
" FROM (SELECT set_config('synchronous_commit', 'on', true)) AS durable";

/* The statement table, in the order of enum stmt. */
enum stmt { ST_INGEST, ST_LEAN, ST_QUARANTINE, NSTMTS };

static const struct db_stmt stmts[NSTMTS] = {
	/* ON CONFLICT DO NOTHING throughout: running it again stores nothing twice */
	{ "wahook_ingest", NPARAMS, ingest_sql, 1 },
	{ "wahook_ingest_lean", LEAN_NPARAMS, ingest_lean_sql, 1 },
	{ "wahook_quarantine", 2, quarantine_sql, 0 },
};

/* array element k of the message columns is message msg of item item */
struct sent {
	size_t	item, msg;
};

#define RETRY_MAX 5	/* runs of one batch refused by a deadlock or serialization failure */

struct store {
	pthread_mutex_t	 lock;		/* the connection and the arrays: one caller at a time */
	double		 timeout;	/* seconds per call, waiting for the lock included */
	struct db	*db;
	struct dynbuf	 arr[NPARAMS];	/* arr[P_BODY]: the bodies as one JSON array;
					   the others text-format array literals */
	struct dynbuf	 sent;		/* struct sent per message array element */
	int		 oom;		/* 0, or DYNBUF_TOOBIG (an array hit its cap: the
				   data's fault) or DYNBUF_NOMEM (memory ran out) */
};

struct store *
store_new(const char *conninfo, double timeout, int prepare)
{
	struct db_opts o = {
		.conninfo = conninfo,
		.app_name = "wahook.fcgi",
		.stmts = stmts,
		.nstmts = NSTMTS,
		.timeout = timeout,
		.prepare = (enum db_prepare)prepare,
	};
	struct store *s;
	int c;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return NULL;
	}
	if ((s->db = db_new(&o)) == NULL) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	s->timeout = timeout;
	for (c = 0; c < NPARAMS; c++)
		dynbuf_init(&s->arr[c], ARRAY_MAX);
	dynbuf_init(&s->sent, ARRAY_MAX);
	return s;
}

static void
put(struct store *s, struct dynbuf *b, const char *p, size_t n)
{
	int rc;

	if (!s->oom && (rc = dynbuf_add(b, p, n)) != DYNBUF_OK)
		s->oom = rc;
}

/* Appends one element to a text[] literal: NULL, or "..." with \ and " escaped. */
static void
add_text(struct store *s, int col, const char *v)
{
	struct dynbuf *b = &s->arr[col];
	const char *q;

	put(s, b, b->len > 1 ? "," : "", b->len > 1 ? 1 : 0);
	if (v == NULL) {
		put(s, b, "NULL", 4);
		return;
	}
	put(s, b, "\"", 1);
	while (*v != '\0') {
		q = v + strcspn(v, "\"\\");
		put(s, b, v, (size_t)(q - v));
		if (*q == '\0')
			break;
		put(s, b, "\\", 1);
		put(s, b, q, 1);
		v = q + 1;
	}
	put(s, b, "\"", 1);
}

static void
add_int(struct store *s, int col, long long v)
{
	char num[24];
	int n;

	n = snprintf(num, sizeof(num), "%s%lld", s->arr[col].len > 1 ? "," : "", v);
	put(s, &s->arr[col], num, (size_t)n);
}

/* Appends a path with the webhook's index k in front: "{entry,0,..}" -> "{k,entry,0,..}". */
static void
add_path(struct store *s, int col, size_t k, const char *path)
{
	char v[PAYLOAD_PATH_MAX + 24];
	int n;

	n = snprintf(v, sizeof(v), "{%zu%s%s", k, path[1] == '}' ? "" : ",", path + 1);
	if (n < 0 || (size_t)n >= sizeof(v) || path[0] != '{') {
		s->oom = DYNBUF_NOMEM;	/* cannot happen: payload.c bounds its paths */
		return;
	}
	add_text(s, col, v);
}

/* Remembers that the next message array element is msgs[msg] of items[item]. */
static void
add_sent(struct store *s, size_t item, size_t msg)
{
	struct sent *se;

	if (s->oom)
		return;
	if ((se = dynbuf_item(&s->sent, sizeof(*se), NULL)) == NULL) {
		s->oom = DYNBUF_NOMEM;
		return;
	}
	se->item = item;
	se->msg = msg;
}

static void
add_webhook(struct store *s, size_t k, const struct store_item *it)
{
	const struct payload *p = it->p;
	const struct payload_msg *m;
	const struct payload_status *st;
	const struct payload_event *ev;
	long long position = 0;
	char why[400];
	size_t i;

	put(s, &s->arr[P_BODY], ",", k > 0 ? 1 : 0);
	put(s, &s->arr[P_BODY], it->body, it->len);
	for (i = 0; i < p->nmsgs; i++) {
		m = &p->msgs[i];
		if (m->dup)
			continue;
		add_text(s, M_ID, m->id);
		add_text(s, M_PNID, m->phone_number_id);
		add_text(s, M_DISPLAY, m->display_phone_number);
		add_text(s, M_WABA, m->waba_id);
		add_text(s, M_FIELD, m->field);
		add_text(s, M_SENDER, m->sender);
		add_text(s, M_RECIPIENT, m->recipient);
		add_text(s, M_TYPE, m->type);
		add_int(s, M_TS, (long long)m->ts);
		add_text(s, M_TEXT, m->text_body);
		add_text(s, M_PROFILE, m->profile_name);
		add_text(s, M_CONTEXT, m->context_id);
		add_text(s, M_CLASS, payload_class_str(m->cls));
		add_text(s, M_REACT_TO, m->react_to);
		add_text(s, M_EMOJI, m->emoji);
		add_path(s, M_PATH, k, m->path);
		add_int(s, M_POSITION, ++position);
		add_text(s, M_USER, m->user_id);
		add_text(s, M_PARENT, m->parent_user_id);
		add_text(s, M_USERNAME, m->username);
		add_text(s, M_GROUP, m->group_id);
		add_text(s, M_CONV, m->conv);
		add_text(s, M_NEW_ID, m->new_id);
		add_sent(s, k, i);
	}
	for (i = 0; i < p->nstatuses; i++) {
		st = &p->statuses[i];
		add_text(s, S_ID, st->id);
		add_text(s, S_PNID, st->phone_number_id);
		add_text(s, S_RECIPIENT, st->recipient_id);
		add_text(s, S_STATUS, st->status);
		add_int(s, S_RANK, st->rank);
		add_int(s, S_TS, (long long)st->ts);
		add_text(s, S_CALLBACK, st->callback_data);
		add_path(s, S_PATH, k, st->path);
		add_text(s, S_USER, st->recipient_user_id);
		add_text(s, S_PARENT, st->recipient_parent_user_id);
	}
	for (i = 0; i < p->nevents; i++) {
		ev = &p->events[i];
		add_text(s, E_FIELD, ev->field);
		add_text(s, E_WABA, ev->waba_id);
		add_path(s, E_PATH, k, ev->path);
	}
	if (p->nbroken_more > 0) {
		/* so many broken items: the body is kept once, whole */
		snprintf(why, sizeof(why), "%zu items broken (first %s: %s)",
		    p->nbroken + p->nbroken_more, p->broken[0].where, p->broken[0].reason);
		add_path(s, Q_PATH, k, "{}");
		add_text(s, Q_WHERE, NULL);
		add_text(s, Q_REASON, why);
	} else
		for (i = 0; i < p->nbroken; i++) {
			add_path(s, Q_PATH, k, p->broken[i].path);
			add_text(s, Q_WHERE, p->broken[i].where);
			add_text(s, Q_REASON, p->broken[i].reason);
		}
}

/* Fills the parameter buffers for items[0..n); s->oom says whether it failed. */
static void
build_arrays(struct store *s, struct store_item *const *items, size_t n)
{
	size_t k;
	int c;

	s->oom = 0;
	dynbuf_reset(&s->sent);
	for (c = 0; c < NPARAMS; c++) {
		dynbuf_reset(&s->arr[c]);
		put(s, &s->arr[c], c == P_BODY ? "[" : "{", 1);
	}
	for (k = 0; k < n; k++)
		add_webhook(s, k, items[k]);
	for (c = 0; c < NPARAMS; c++)
		put(s, &s->arr[c], c == P_BODY ? "]" : "}", 1);
}

static void
trim(struct store *s)
{
	int c;

	for (c = 0; c < NPARAMS; c++)
		dynbuf_trim(&s->arr[c], KEEP_MAX);
	dynbuf_trim(&s->sent, KEEP_MAX);
}

/* seconds on the monotonic clock the log's ms= figures use */
static double
now_s(void)
{
	return log_now_ms() / 1000.0;
}

/*
 * Takes the store for one call that must end within timeout seconds (<= 0:
 * WAHOOK_DB_TIMEOUT), waiting for the lock included, so a caller queued
 * behind a stuck call still answers in time. Returns the absolute deadline
 * (now_s() clock), or -1 when the lock did not come in time.
 */
static double
lock_store(struct store *s, double timeout)
{
	struct timespec abs;
	double end;
	int rc;

	if (timeout <= 0)
		timeout = s->timeout;
	end = now_s() + timeout;
	clock_gettime(CLOCK_REALTIME, &abs);
	abs.tv_sec += (time_t)timeout;
	abs.tv_nsec += (long)((timeout - (double)(time_t)timeout) * 1e9);
	if (abs.tv_nsec >= 1000000000L) {
		abs.tv_sec++;
		abs.tv_nsec -= 1000000000L;
	}
	while ((rc = pthread_mutex_timedlock(&s->lock, &abs)) == EINTR)
		;
	return rc == 0 ? end : -1;
}

/*
 * Runs statement stmt before the deadline end; maps db.c's outcome onto the
 * store's: a refusal of the data itself is STORE_REJECTED (quarantine),
 * anything else that failed is STORE_UNAVAILABLE (503). err gets db.c's
 * reason.
 */
static enum store_result
run(struct store *s, size_t stmt, const char *const *values, const int *lengths,
    const int *formats, double end, PGresult **out, char *err, size_t errlen)
{
	double left = end - now_s();

	*out = NULL;
	if (left < 0.001) {
		snprintf(err, errlen, "store: waited WAHOOK_DB_TIMEOUT (%g s) for the "
		    "database connection", s->timeout);
		return STORE_UNAVAILABLE;
	}
	switch (db_run(s->db, stmt, values, lengths, formats, left, out)) {
	case DB_OK:
		return STORE_OK;
	case DB_FAILED:
		snprintf(err, errlen, "store: %s", db_error(s->db));
		return db_state_is_data(db_sqlstate(s->db)) ? STORE_REJECTED :
		    STORE_UNAVAILABLE;
	case DB_UNAVAILABLE:
		break;
	}
	snprintf(err, errlen, "store: %s", db_error(s->db));
	return STORE_UNAVAILABLE;
}

/* No status, event, reaction, change of identity or broken item: the
 * statement's full part would write nothing. */
static int
lean_enough(struct store_item *const *items, size_t n)
{
	const struct payload *p;
	size_t i, k;

	for (k = 0; k < n; k++) {
		p = items[k]->p;
		if (p->nstatuses > 0 || p->nevents > 0 || p->nbroken > 0)
			return 0;
		for (i = 0; i < p->nmsgs; i++)
			if (p->msgs[i].cls == PAYLOAD_REACTION || p->msgs[i].new_id != NULL)
				return 0;
	}
	return 1;
}

/* 40P01 deadlock_detected, 40001 serialization_failure: nothing was
 * committed, and the same statement again may well go through. */
static int
state_is_retryable(const char *st)
{
	return strcmp(st, "40P01") == 0 || strcmp(st, "40001") == 0;
}

static void
pause_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void
set_all(struct store_item *const *items, size_t n, enum store_result res,
    const char *err)
{
	size_t k;

	for (k = 0; k < n; k++) {
		items[k]->res = res;
		snprintf(items[k]->err, sizeof(items[k]->err), "%s", err);
	}
}

/*
 * Runs the statement once for items[0..n) before end (retrying deadlocks and
 * serialization failures). STORE_OK sets every item's result and fresh
 * flags; otherwise nothing is set and err says why: STORE_REJECTED (the
 * data: the caller halves the batch) or STORE_UNAVAILABLE.
 */
static enum store_result
run_batch(struct store *s, struct store_item *const *items, size_t n, double end,
    char *err, size_t errlen)
{
	const char *values[NPARAMS];
	const struct sent *se;
	PGresult *r = NULL;
	enum store_result res = STORE_UNAVAILABLE;
	size_t nsent;
	char *end_num;
	long k;
	int c, i, nt, attempt, lean;

	lean = lean_enough(items, n);
	build_arrays(s, items, n);
	if (s->oom == DYNBUF_TOOBIG) {
		/*
		 * The bodies fit STORE_BODIES_MAX, yet a column passed ARRAY_MAX: a
		 * webhook whose metadata is repeated for each of its many
		 * messages. Retrying cannot help: the data's fault (the batch is
		 * halved down to that webhook, which is quarantined).
		 */
		res = STORE_REJECTED;
		snprintf(err, errlen, "a column of the statement would pass %g MiB "
		    "(metadata repeated for each of many messages?)",
		    (double)ARRAY_MAX / (1024 * 1024));
		goto out;
	}
	if (s->oom) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (c = 0; c < NPARAMS; c++)
		values[c] = s->arr[c].s;
	for (attempt = 1; ; attempt++) {
		res = run(s, lean ? ST_LEAN : ST_INGEST, values, NULL, NULL, end, &r,
		    err, errlen);
		if (res == STORE_OK || attempt == RETRY_MAX ||
		    !state_is_retryable(db_sqlstate(s->db)))
			break;
		pause_ms(attempt * 5L);
	}
	if (res != STORE_OK)
		goto out;
	set_all(items, n, STORE_OK, "");
	nt = PQntuples(r);
	se = (const struct sent *)(const void *)s->sent.s;
	nsent = s->sent.len / sizeof(*se);
	for (i = 0; i < nt; i++) {
		k = strtol(PQgetvalue(r, i, 0), &end_num, 10);
		if (k < 1 || (size_t)k > nsent)
			continue;
		items[se[k - 1].item]->p->msgs[se[k - 1].msg].fresh = 1;
	}
out:
	PQclear(r);
	return res;
}

/* Stores items[0..n) before end; a batch refused for its data is halved,
 * down to the webhook that carries it. */
static void
store_split(struct store *s, struct store_item *const *items, size_t n, double end)
{
	enum store_result res;
	char err[STORE_ERR_MAX];

	res = run_batch(s, items, n, end, err, sizeof(err));
	if (res == STORE_REJECTED && n > 1) {
		store_split(s, items, n / 2, end);
		store_split(s, items + n / 2, n - n / 2, end);
		return;
	}
	if (res != STORE_OK)
		set_all(items, n, res, err);
}

void
store_batch(struct store *s, struct store_item *const *items, size_t n, double timeout)
{
	struct store_item **live = NULL;
	size_t k, nlive = 0;
	double end;
	char err[STORE_ERR_MAX];

	for (k = 0; k < n; k++) {
		items[k]->res = STORE_UNAVAILABLE;
		items[k]->err[0] = '\0';
		items[k]->batch = 0;
	}
	if ((end = lock_store(s, timeout)) < 0) {
		snprintf(err, sizeof(err), "store: waited WAHOOK_DB_TIMEOUT (%g s) for "
		    "the database connection", s->timeout);
		set_all(items, n, STORE_UNAVAILABLE, err);
		return;
	}
	if ((live = calloc(n ? n : 1, sizeof(struct store_item *))) == NULL) {
		set_all(items, n, STORE_UNAVAILABLE, "out of memory");
		goto out;
	}
	/* the bodies go as C strings: a NUL inside cannot be JSON text anyway */
	for (k = 0; k < n; k++) {
		if (memchr(items[k]->body, '\0', items[k]->len) != NULL) {
			items[k]->res = STORE_REJECTED;
			snprintf(items[k]->err, sizeof(items[k]->err),
			    "body contains a NUL byte");
		} else
			live[nlive++] = items[k];
	}
	if (nlive > 0)
		store_split(s, live, nlive, end);
	for (k = 0; k < n; k++)
		items[k]->batch = nlive;
out:
	free(live);
	trim(s);
	pthread_mutex_unlock(&s->lock);
}

enum store_result
store_quarantine(struct store *s, const char *reason, const char *body, size_t len,
    double timeout, char *err, size_t errlen)
{
	const char *values[2] = { reason, body };
	int lengths[2] = { 0, (int)len };
	int formats[2] = { 0, 1 };	/* the body as binary bytea: any byte goes */
	PGresult *r = NULL;
	enum store_result res;
	double end;

	if (len > (size_t)INT32_MAX) {
		snprintf(err, errlen, "body too large to quarantine");
		return STORE_UNAVAILABLE;
	}
	if ((end = lock_store(s, timeout)) < 0) {
		snprintf(err, errlen, "store: waited WAHOOK_DB_TIMEOUT (%g s) for the "
		    "database connection", s->timeout);
		return STORE_UNAVAILABLE;
	}
	res = run(s, ST_QUARANTINE, values, lengths, formats, end, &r, err, errlen);
	PQclear(r);
	pthread_mutex_unlock(&s->lock);
	/* a refused quarantine insert (not valid UTF-8 reason?) must not be a 200 */
	return res == STORE_OK ? STORE_OK : STORE_UNAVAILABLE;
}

int
store_stale(struct store *s)
{
	return db_shed(s->db);
}

void
store_refresh(struct store *s)
{
	if (pthread_mutex_trylock(&s->lock) != 0)
		return;		/* a call runs: it has a connection */
	(void)db_refresh(s->db, s->timeout);
	pthread_mutex_unlock(&s->lock);
}

int
store_connect(struct store *s, char *err, size_t errlen)
{
	enum db_rc rc;
	double end;

	if ((end = lock_store(s, 0)) < 0) {
		snprintf(err, errlen, "store: waited WAHOOK_DB_TIMEOUT for the connection");
		return -1;
	}
	if ((rc = db_connect(s->db, end - now_s())) != DB_OK)
		snprintf(err, errlen, "store: %s", db_error(s->db));
	pthread_mutex_unlock(&s->lock);
	return rc == DB_OK ? 0 : -1;
}

void
store_free(struct store *s)
{
	int c;

	if (s == NULL)
		return;
	db_free(s->db);
	for (c = 0; c < NPARAMS; c++)
		dynbuf_free(&s->arr[c]);
	dynbuf_free(&s->sent);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
