/*
 * db.c - one PostgreSQL connection under deadlines (see db.h). The
 * connection is non-blocking: a send that the kernel cannot take (a 4 MB
 * body to a host that stopped answering) waits in poll(2) under the deadline
 * like the answer does. The cancel request on expiry runs in a detached
 * thread, because PQcancel() itself blocks until the server answers it.
 */
#include "db.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const db_prepare_names[] = { "auto", "on", "off", NULL };
/* libpq grows its send and receive buffers to the largest message and never
 * shrinks them: after a call that sent more than this, the connection is
 * closed, which frees them, and db_refresh() opens a new one once the caller
 * has answered (a new backend, statements prepared: tens of ms on a loaded
 * machine, kept off the next request's path). */
#define DB_BIG_CALL (4 * 1024 * 1024)

struct db {
	struct db_opts	 o;
	int		 unnamed;	/* statements go unprepared (see enum db_prepare) */
	PGconn		*conn;
	atomic_int	 shed;		/* closed after a big call, not lost */
	char		 err[DB_ERR_MAX];
	char		 state[6];
};

enum wait_rc { W_DONE, W_TIMEOUT };

/* seconds on the monotonic clock the log's ms= figures use */
static double
now_s(void)
{
	return log_now_ms() / 1000.0;
}

/* Milliseconds left until deadline, for poll(2); 0 when it has passed. */
static int
ms_left(double deadline)
{
	double ms = (deadline - now_s()) * 1000.0;

	if (ms <= 0)
		return 0;
	return ms > 3600000.0 ? 3600000 : (int)ms + 1;
}

struct db *
db_new(const struct db_opts *opts)
{
	struct db *db;

	if ((db = calloc(1, sizeof(*db))) == NULL)
		return NULL;
	db->o = *opts;
	if (db->o.timeout <= 0)
		db->o.timeout = 15;
	if (db->o.connect_timeout <= 0)
		db->o.connect_timeout = 5;
	if (db->o.app_name == NULL)
		db->o.app_name = "wahook";
	db->unnamed = db->o.prepare == DB_PREPARE_OFF;
	return db;
}

void
db_disconnect(struct db *db)
{
	if (db->conn != NULL)
		PQfinish(db->conn);
	db->conn = NULL;
}

void
db_free(struct db *db)
{
	if (db == NULL)
		return;
	db_disconnect(db);
	free(db);
}

const char *
db_error(const struct db *db)
{
	return db->err;
}

const char *
db_sqlstate(const struct db *db)
{
	return db->state;
}

int
db_state_is_data(const char *s)
{
	return strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0 ||
	    strncmp(s, "54", 2) == 0;
}

/*
 * The connection died under the statement. No SQLSTATE (a client-side
 * failure: "server closed the connection unexpectedly"), class 08
 * (connection exception) and 57P0x (the server is shutting down, or not yet
 * up) all mean: a new connection might work.
 */
static int
state_is_lost(const char *s)
{
	return *s == '\0' || strncmp(s, "08", 2) == 0 || strncmp(s, "57P", 3) == 0 ||
	    strcmp(s, "25006") == 0;
}

/*
 * WAHOOK_DB_PREPARE=auto met a server that does not keep this connection's
 * prepared statements: 26000 (one prepared earlier "does not exist") or 42P05
 * (another client's "already exists"). That is a pooler handing each
 * transaction to any server connection (PgBouncer before 1.21 in transaction
 * mode). Switches to unnamed statements for good; 1 when it did.
 */
static int
lost_prepared(struct db *db)
{
	struct logline l;

	if (db->o.prepare != DB_PREPARE_AUTO || db->unnamed ||
	    (strcmp(db->state, "26000") != 0 && strcmp(db->state, "42P05") != 0))
		return 0;
	db->unnamed = 1;
	log_begin(&l, "warn", "db_prepare");
	log_str(&l, "sqlstate", db->state);
	log_str(&l, "msg", "the server does not keep our prepared statements (a pooler "
	    "in transaction mode?): sending them unprepared from now on; "
	    "WAHOOK_DB_PREPARE=off says so from the start");
	log_end(&l);
	return 1;
}

void
db_describe(char *buf, size_t len, char *state, size_t statelen, const char *what,
    PGconn *conn, const PGresult *r)
{
	/* the primary field: PQresultErrorMessage() starts "ERROR:  " */
	const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *colon;
	size_t n;

	if ((m == NULL || *m == '\0') && r != NULL)
		m = PQresultErrorMessage(r);
	if (m == NULL || *m == '\0')
		m = conn ? PQerrorMessage(conn) : "no connection";
	if (*m == '\0')
		m = "unknown error";
	if (st == NULL)
		st = "";
	if (state != NULL)
		snprintf(state, statelen, "%s", st);
	n = strcspn(m, "\n");
	/* class 22 may quote the offending value after a colon: never logged */
	if (strncmp(st, "22", 2) == 0 && (colon = strstr(m, ": ")) != NULL &&
	    (size_t)(colon - m) < n)
		n = (size_t)(colon - m);
	snprintf(buf, len, "%s: %.*s%s%s%s", what, (int)(n > 300 ? 300 : n), m,
	    *st ? " (SQLSTATE " : "", st, *st ? ")" : "");
}

static void
set_err(struct db *db, const char *what, const PGresult *r)
{
	db_describe(db->err, sizeof(db->err), db->state, sizeof(db->state), what, db->conn, r);
}

/* libpq's default prints server notices raw on stderr ("WARNING:  terminating
 * connection due to immediate shutdown command"): make them logfmt lines. */
static void
notice(void *arg, const char *msg)
{
	struct logline l;

	(void)arg;
	log_begin(&l, "warn", "db_notice");
	log_strn(&l, "msg", msg, strcspn(msg, "\n"));
	log_end(&l);
}

/* One cancel request in flight per process, at most: a server that does not
 * answer it would otherwise collect a thread per expired call. */
static atomic_int cancelling;

static void *
cancel_main(void *arg)
{
	PGcancel *c = arg;
	char buf[256];

	(void)PQcancel(c, buf, (int)sizeof(buf));
	PQfreeCancel(c);
	atomic_store(&cancelling, 0);
	return NULL;
}

/* Asks the server to cancel what conn runs, without waiting for it. */
static void
cancel_async(PGconn *conn)
{
	pthread_attr_t attr;
	pthread_t t;
	PGcancel *c;

	if (atomic_exchange(&cancelling, 1) != 0)
		return;
	if ((c = PQgetCancel(conn)) == NULL)
		goto fail;
	if (pthread_attr_init(&attr) != 0)
		goto fail;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, cancel_main, c) != 0) {
		pthread_attr_destroy(&attr);
		goto fail;
	}
	pthread_attr_destroy(&attr);
	return;
fail:
	PQfreeCancel(c);
	atomic_store(&cancelling, 0);
}

/*
 * Sends what libpq has buffered, then waits for the whole answer (every
 * result up to the NULL), all before deadline. W_DONE with *res the first
 * error result, else the last result (NULL if there was none; the caller
 * looks at the connection). W_TIMEOUT: the deadline passed, *res NULL.
 */
static enum wait_rc
wait_result(struct db *db, double deadline, PGresult **res)
{
	struct pollfd pfd;
	PGresult *r;
	int rc;

	*res = NULL;
	while (PQflush(db->conn) == 1) {
		pfd.fd = PQsocket(db->conn);
		pfd.events = POLLIN | POLLOUT;
		if ((rc = poll(&pfd, 1, ms_left(deadline))) == 0)
			return W_TIMEOUT;
		if (rc < 0 && errno != EINTR)
			break;
		/* the server may answer (an error) before taking all of it */
		if (rc > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
		    !PQconsumeInput(db->conn))
			break;
	}
	for (;;) {
		while (PQstatus(db->conn) == CONNECTION_OK && PQisBusy(db->conn)) {
			pfd.fd = PQsocket(db->conn);
			pfd.events = POLLIN;
			if ((rc = poll(&pfd, 1, ms_left(deadline))) == 0) {
				PQclear(*res);
				*res = NULL;
				return W_TIMEOUT;
			}
			if (rc < 0 && errno != EINTR)
				break;
			if (rc > 0 && !PQconsumeInput(db->conn))
				break;	/* the connection is bad: PQgetResult() won't block */
		}
		if ((r = PQgetResult(db->conn)) == NULL)
			break;
		if (*res == NULL || (PQresultStatus(*res) != PGRES_FATAL_ERROR &&
		    PQresultStatus(r) == PGRES_FATAL_ERROR)) {
			PQclear(*res);
			*res = r;
		} else
			PQclear(r);
		if (PQstatus(db->conn) != CONNECTION_OK)
			break;
	}
	return W_DONE;
}

/* Runs one step of the connection's setup; 0, or -1 with err set and the
 * connection dropped. */
static int
setup_step(struct db *db, double deadline, const char *what, int sent)
{
	PGresult *r = NULL;
	ExecStatusType st;

	if (!sent) {
		set_err(db, what, NULL);
		goto fail;
	}
	if (wait_result(db, deadline, &r) == W_TIMEOUT) {
		snprintf(db->err, sizeof(db->err), "%s: no answer within the deadline",
		    what);
		db->state[0] = '\0';
		cancel_async(db->conn);
		goto fail;
	}
	st = PQresultStatus(r);
	if (r == NULL || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)) {
		set_err(db, what, r);
		goto fail;
	}
	PQclear(r);
	return 0;
fail:
	PQclear(r);
	db_disconnect(db);
	return -1;
}

/*
 * Connects (libpq's connect_timeout bounds each host, and never past the
 * deadline), then sets the session up and prepares the table, each step
 * under the deadline. 0, or -1 with err set.
 */
static int
connect_db(struct db *db, double deadline)
{
	static const char *const keys[] = {
		"connect_timeout", "application_name", "keepalives",
		"keepalives_idle", "keepalives_interval", "keepalives_count",
		"tcp_user_timeout", "dbname", NULL
	};
	char ct[16], tut[24], setup[64];
	const char *vals[9];
	double left = deadline - now_s();
	long ms = (long)(db->o.timeout * 1000.0);
	size_t i;
	int sec;

	db_disconnect(db);
	atomic_store(&db->shed, 0);
	db->state[0] = '\0';
	/*
	 * libpq's connect_timeout is whole seconds, at least 2: with less than
	 * that left, a host that does not answer can take up to 2 s (the only
	 * way past the deadline). So a connect starts with any time left:
	 * refusing with under a second left would leave WAHOOK_DB_TIMEOUT=1
	 * unable to connect at all.
	 */
	if (left < 0.05) {
		snprintf(db->err, sizeof(db->err), "connect: the deadline of %g s passed",
		    db->o.timeout);
		return -1;
	}
	sec = (int)left < db->o.connect_timeout ? (int)left : db->o.connect_timeout;
	snprintf(ct, sizeof(ct), "%d", sec < 2 ? 2 : sec);	/* libpq's least */
	snprintf(tut, sizeof(tut), "%ld", ms);
	vals[0] = ct;
	vals[1] = db->o.app_name;
	vals[2] = "1";
	vals[3] = "10";
	vals[4] = "5";
	vals[5] = "3";
	vals[6] = tut;
	vals[7] = db->o.conninfo ? db->o.conninfo : "";
	vals[8] = NULL;
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		set_err(db, "connect", NULL);
		db_disconnect(db);
		return -1;
	}
	PQsetNoticeProcessor(db->conn, notice, NULL);
	if (PQsetnonblocking(db->conn, 1) != 0) {
		set_err(db, "connect", NULL);
		db_disconnect(db);
		return -1;
	}
	/* the server's own bound agrees with ours; session_sql may change it */
	snprintf(setup, sizeof(setup), "SET statement_timeout = %ld", ms);
	if (setup_step(db, deadline, "session setup",
	    PQsendQuery(db->conn, setup)) == -1)
		return -1;
	if (db->o.session_sql != NULL && setup_step(db, deadline, "session setup",
	    PQsendQuery(db->conn, db->o.session_sql)) == -1)
		return -1;
	for (i = 0; !db->unnamed && i < db->o.nstmts; i++)
		if (setup_step(db, deadline, "prepare (are the migrations applied?)",
		    PQsendPrepare(db->conn, db->o.stmts[i].name, db->o.stmts[i].sql,
		    db->o.stmts[i].nparams, NULL)) == -1)
			return lost_prepared(db) ? connect_db(db, deadline) : -1;
	return 0;
}

/*
 * Notices a connection the server closed while it sat idle: after a restart
 * libpq still says CONNECTION_OK until it reads the EOF, which would cost the
 * next statement. Reads what is pending (a few times: the server's last
 * message and the EOF may come in separate reads) and drops a dead one.
 */
static void
probe(struct db *db)
{
	struct pollfd pfd;
	int i;

	if (db->conn == NULL)
		return;
	for (i = 0; i < 4 && PQstatus(db->conn) == CONNECTION_OK; i++) {
		pfd.fd = PQsocket(db->conn);
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 0) <= 0)
			break;
		if (!PQconsumeInput(db->conn))
			break;
	}
	if (PQstatus(db->conn) != CONNECTION_OK)
		db_disconnect(db);
}

enum db_rc
db_connect(struct db *db, double timeout)
{
	probe(db);
	if (db->conn != NULL)
		return DB_OK;
	if (connect_db(db, now_s() + (timeout > 0 ? timeout : db->o.timeout)) == -1)
		return DB_UNAVAILABLE;
	return DB_OK;
}

PGconn *
db_conn(struct db *db, double timeout)
{
	return db_connect(db, timeout) == DB_OK ? db->conn : NULL;
}

int
db_socket(const struct db *db)
{
	return db->conn != NULL ? PQsocket(db->conn) : -1;
}

int
db_notifications(struct db *db)
{
	PGnotify *n;
	int count = 0;

	if (db->conn == NULL)
		return 0;
	if (!PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK) {
		db_disconnect(db);
		return 0;
	}
	while ((n = PQnotifies(db->conn)) != NULL) {
		PQfreemem(n);
		count++;
	}
	return count;
}

int
db_shed(struct db *db)
{
	return atomic_load(&db->shed);
}

enum db_rc
db_refresh(struct db *db, double timeout)
{
	if (!db_shed(db) || db->conn != NULL)
		return DB_OK;
	return db_connect(db, timeout);
}

static int
send_stmt(struct db *db, const struct db_stmt *s, const char *const *values,
    const int *lengths, const int *formats)
{
	if (db->unnamed)
		return PQsendQueryParams(db->conn, s->sql, s->nparams, NULL, values,
		    lengths, formats, 0);
	return PQsendQueryPrepared(db->conn, s->name, s->nparams, values, lengths,
	    formats, 0);
}

/* Bytes of the parameters of one call (text ones by strlen). */
static size_t
sent_bytes(const struct db_stmt *s, const char *const *values, const int *lengths,
    const int *formats)
{
	size_t n = 0;
	int i;

	for (i = 0; i < s->nparams; i++) {
		if (values == NULL || values[i] == NULL)
			continue;
		if (formats != NULL && formats[i] == 1 && lengths != NULL)
			n += (size_t)lengths[i];
		else
			n += strlen(values[i]);
	}
	return n;
}

enum db_rc
db_run(struct db *db, size_t stmt, const char *const *values, const int *lengths,
    const int *formats, double timeout, PGresult **out)
{
	const struct db_stmt *s;
	PGresult *r = NULL;
	ExecStatusType st;
	double deadline = now_s() + (timeout > 0 ? timeout : db->o.timeout);
	int attempt, fresh, lost;

	*out = NULL;
	db->err[0] = db->state[0] = '\0';
	if (stmt >= db->o.nstmts) {
		snprintf(db->err, sizeof(db->err), "no statement %zu", stmt);
		return DB_FAILED;
	}
	s = &db->o.stmts[stmt];
	for (attempt = 0; attempt < 2; attempt++) {
		probe(db);
		fresh = db->conn == NULL;
		if (fresh && connect_db(db, deadline) == -1)
			return DB_UNAVAILABLE;
		if (!send_stmt(db, s, values, lengths, formats)) {
			/* nothing reached the server: safe to run again */
			set_err(db, s->name, NULL);
			db_disconnect(db);
			if (fresh)
				break;
			continue;
		}
		if (wait_result(db, deadline, &r) == W_TIMEOUT) {
			snprintf(db->err, sizeof(db->err), "%s: no answer within the "
			    "deadline of %.1f s", s->name, timeout > 0 ? timeout : db->o.timeout);
			db->state[0] = '\0';
			cancel_async(db->conn);
			db_disconnect(db);
			return DB_UNAVAILABLE;
		}
		st = PQresultStatus(r);
		if (r != NULL && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
			*out = r;
			if (sent_bytes(s, values, lengths, formats) > DB_BIG_CALL) {
				db_disconnect(db);	/* the result outlives it */
				atomic_store(&db->shed, 1);
			}
			return DB_OK;
		}
		set_err(db, s->name, r);
		lost = r == NULL || PQstatus(db->conn) != CONNECTION_OK ||
		    state_is_lost(db->state);
		PQclear(r);
		r = NULL;
		if (!lost && lost_prepared(db)) {
			attempt--;	/* it never ran; happens once per process */
			continue;
		}
		if (!lost)
			return DB_FAILED;
		db_disconnect(db);
		if (fresh || !s->idempotent)
			break;
	}
	return DB_UNAVAILABLE;
}
