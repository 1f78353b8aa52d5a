/*
 * store.c - the ingest statement (see store.h). C hands PostgreSQL parallel
 * arrays (text-format array literals, one per column) plus the raw body once;
 * each stored jsonb object is taken from the body by its path, so nothing is
 * re-serialised and numbers stay as Meta wrote them. No NOTIFY here: it
 * serialises every commit (doc/postgresql.md); the drainer polls instead. The
 * store is shared by the worker threads: one caller at a time holds the
 * connection and the arrays (lock_store()).
 */
#include "store.h"
#include "db.h"
#include "dynbuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#define KEEP_MAX (64 * 1024)	/* an array buffer larger than this is freed after use:
				   27 columns of it kept warm, at most */
#define ARRAY_MAX (256 * 1024 * 1024)	/* the cap on one column's array literal */

/* Columns sent per message, status and event; the order is the SQL's $n. */
enum {
	P_BODY,
	M_ID, M_PNID, M_DISPLAY, M_WABA, M_FIELD, M_SENDER, M_RECIPIENT, M_TYPE,
	M_TS, M_TEXT, M_PROFILE, M_CONTEXT, M_CLASS, M_REACT_TO, M_EMOJI, M_PATH,
	S_ID, S_PNID, S_RECIPIENT, S_STATUS, S_RANK, S_TS, S_CALLBACK, S_PATH,
	E_FIELD, E_WABA, E_PATH,
	NPARAMS,
	LEAN_NPARAMS = S_ID	/* the lean statement takes the body and the messages */
};

/*
 * sql/statements/ingest.sql, made into C strings by the Makefile: the full statement, and
 * the lean one without its reactions, statuses and events part, for webhooks
 * that have none (most of them: measured 16-60 % more commits per second).
 */
static const char ingest_sql[] =
#include "ingest_sql.h"
;
static const char ingest_lean_sql[] =
#include "ingest_lean_sql.h"
;

static const char quarantine_sql[] =
"INSERT INTO wa_quarantine (reason, body) VALUES ($1, $2)";

/* The statement table, in the order of enum stmt. */
enum stmt { ST_INGEST, ST_LEAN, ST_QUARANTINE, NSTMTS };

static const struct db_stmt stmts[NSTMTS] = {
	/* ON CONFLICT DO NOTHING throughout: running it again stores nothing twice */
	{ "wahook_ingest", NPARAMS, ingest_sql, 1 },
	{ "wahook_ingest_lean", LEAN_NPARAMS, ingest_lean_sql, 1 },
	{ "wahook_quarantine", 2, quarantine_sql, 0 },
};

/* A 200 promises durable rows: synchronous_commit goes back on if the server
 * has it off. */
static const char session_sql[] =
"SELECT CASE WHEN current_setting('synchronous_commit') = 'off' THEN "
"set_config('synchronous_commit', 'on', false) END";

struct buf {
	char	*s;
	size_t	 len, cap;
};

struct store {
	pthread_mutex_t	 lock;		/* the connection and the arrays: one caller at a time */
	double		 timeout;	/* seconds per call, waiting for the lock included */
	struct db	*db;
	struct dynbuf	 arr[NPARAMS];	/* text-format array literals, one per column */
	struct dynbuf	 sent;		/* size_t sent[k] = index in p->msgs of element k */
	int		 oom;		/* an array hit its cap or memory ran out */
	int		 lean;		/* this webhook needs only the lean statement */
};

struct store *
store_new(const char *conninfo, double timeout, int prepare)
{
	struct db_opts o = {
		.conninfo = conninfo,
		.app_name = "wahook.fcgi",
		.stmts = stmts,
		.nstmts = NSTMTS,
		.session_sql = session_sql,
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
	if (!s->oom && dynbuf_add(b, p, n) != DYNBUF_OK)
		s->oom = 1;
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

static void
build_arrays(struct store *s, const struct payload *p)
{
	const struct payload_msg *m;
	const struct payload_status *st;
	const struct payload_event *ev;
	size_t i;
	int c;

	for (c = M_ID; c < NPARAMS; c++) {
		dynbuf_reset(&s->arr[c]);
		put(s, &s->arr[c], "{", 1);
	}
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
		add_text(s, M_PATH, m->path);
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
		add_text(s, S_PATH, st->path);
	}
	for (i = 0; i < p->nevents; i++) {
		ev = &p->events[i];
		add_text(s, E_FIELD, ev->field);
		add_text(s, E_WABA, ev->waba_id);
		add_text(s, E_PATH, ev->path);
	}
	for (c = M_ID; c < NPARAMS; c++)
		put(s, &s->arr[c], "}", 1);
}

/* Maps the k-th array element back to its p->msgs index (in-body dups are not sent). */
static int
map_sent(struct store *s, const struct payload *p)
{
	size_t i, *slot;

	dynbuf_reset(&s->sent);
	for (i = 0; i < p->nmsgs; i++)
		if (!p->msgs[i].dup) {
			if ((slot = dynbuf_item(&s->sent, sizeof(*slot), NULL)) == NULL)
				return -1;
			*slot = i;
		}
	return 0;
}

static void
trim(struct store *s)
{
	int c;

	for (c = 0; c < NPARAMS; c++)
		dynbuf_trim(&s->arr[c], KEEP_MAX);
	dynbuf_trim(&s->sent, KEEP_MAX);
}

/*
 * Takes the store for one call: the deadline (WAHOOK_DB_TIMEOUT) starts now,
 * so a thread queued behind a stuck call still answers within it. Returns the
 * seconds left for the call, or -1 when the lock did not come in time.
 */
static double
lock_store(struct store *s)
{
	struct timespec mono, abs;
	double start;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	start = (double)mono.tv_sec + (double)mono.tv_nsec / 1e9;
	clock_gettime(CLOCK_REALTIME, &abs);
	abs.tv_sec += (time_t)s->timeout;
	abs.tv_nsec += (long)((s->timeout - (double)(time_t)s->timeout) * 1e9);
	if (abs.tv_nsec >= 1000000000L) {
		abs.tv_sec++;
		abs.tv_nsec -= 1000000000L;
	}
	while ((rc = pthread_mutex_timedlock(&s->lock, &abs)) == EINTR)
		;
	if (rc != 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	return s->timeout - ((double)mono.tv_sec + (double)mono.tv_nsec / 1e9 - start);
}

/*
 * Runs statement stmt; maps db.c's outcome onto the store's: a refusal of
 * the data itself is STORE_REJECTED (quarantine), anything else that failed
 * is STORE_UNAVAILABLE (503). err gets db.c's reason.
 */
static enum store_result
run(struct store *s, size_t stmt, const char *const *values, const int *lengths,
    const int *formats, double left, PGresult **out, char *err, size_t errlen)
{
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

/* No status, no event, no reaction: the statement's full part would write nothing. */
static int
lean_enough(const struct payload *p)
{
	size_t i;

	if (p->nstatuses > 0 || p->nevents > 0)
		return 0;
	for (i = 0; i < p->nmsgs; i++)
		if (p->msgs[i].cls == PAYLOAD_REACTION)
			return 0;
	return 1;
}

enum store_result
store_webhook(struct store *s, struct payload *p, const char *body, size_t len,
    char *err, size_t errlen)
{
	const char *values[NPARAMS];
	const size_t *sent;
	PGresult *r = NULL;
	enum store_result res;
	double left;
	char *end;
	long k;
	int c, i, n;

	/* the body goes as a C string: a NUL inside cannot be JSON text anyway */
	if (memchr(body, '\0', len) != NULL) {
		snprintf(err, errlen, "body contains a NUL byte");
		return STORE_REJECTED;
	}
	if ((left = lock_store(s)) < 0) {
		snprintf(err, errlen, "store: waited WAHOOK_DB_TIMEOUT (%g s) for the "
		    "database connection", s->timeout);
		return STORE_UNAVAILABLE;
	}
	s->oom = 0;
	s->lean = lean_enough(p);
	build_arrays(s, p);
	if (s->oom || map_sent(s, p) == -1) {
		/* the arrays are capped at ARRAY_MAX: retrying cannot help */
		snprintf(err, errlen, "out of memory, or a column past %d MiB",
		    ARRAY_MAX >> 20);
		res = STORE_UNAVAILABLE;
		goto out;
	}
	values[P_BODY] = body;
	for (c = M_ID; c < NPARAMS; c++)
		values[c] = s->arr[c].s;
	res = run(s, s->lean ? ST_LEAN : ST_INGEST, values, NULL, NULL, left, &r, err,
	    errlen);
	if (res != STORE_OK)
		goto out;
	n = PQntuples(r);
	sent = (const size_t *)(void *)s->sent.s;
	for (i = 0; i < n; i++) {
		k = strtol(PQgetvalue(r, i, 0), &end, 10);
		if (k >= 1 && (size_t)k <= s->sent.len / sizeof(*sent))
			p->msgs[sent[k - 1]].fresh = 1;
	}
out:
	PQclear(r);
	trim(s);
	pthread_mutex_unlock(&s->lock);
	return res;
}

enum store_result
store_quarantine(struct store *s, const char *reason, const char *body, size_t len,
    char *err, size_t errlen)
{
	const char *values[2] = { reason, body };
	int lengths[2] = { 0, (int)len };
	int formats[2] = { 0, 1 };	/* the body as binary bytea: any byte goes */
	PGresult *r = NULL;
	enum store_result res;
	double left;

	if (len > (size_t)INT32_MAX) {
		snprintf(err, errlen, "body too large to quarantine");
		return STORE_UNAVAILABLE;
	}
	if ((left = lock_store(s)) < 0) {
		snprintf(err, errlen, "store: waited WAHOOK_DB_TIMEOUT (%g s) for the "
		    "database connection", s->timeout);
		return STORE_UNAVAILABLE;
	}
	res = run(s, ST_QUARANTINE, values, lengths, formats, left, &r, err, errlen);
	PQclear(r);
	pthread_mutex_unlock(&s->lock);
	/* a refused quarantine insert (not valid UTF-8 reason?) must not be a 200 */
	return res == STORE_OK ? STORE_OK : STORE_UNAVAILABLE;
}

int
store_connect(struct store *s, char *err, size_t errlen)
{
	enum db_rc rc;
	double left;

	if ((left = lock_store(s)) < 0) {
		snprintf(err, errlen, "store: waited WAHOOK_DB_TIMEOUT for the connection");
		return -1;
	}
	if ((rc = db_connect(s->db, left)) != DB_OK)
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
