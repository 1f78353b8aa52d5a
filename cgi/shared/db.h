/*
 * db.h - the one PostgreSQL module both programs use: connect, prepare a
 * table of statements, run one of them under a client-side deadline, and the
 * reconnect rule.
 *
 * The design choice a reader must know: every call is bounded by a deadline
 * the program keeps itself (libpq's asynchronous API, poll(2) on the socket),
 * because a server-side statement_timeout cannot fire in a stopped server and
 * TCP gives up on a vanished host only after hours. On expiry the statement is
 * cancelled and the connection dropped; the next call reconnects.
 *
 * A struct db is one connection, used by one thread at a time.
 */
#ifndef WAHOOK_DB_H
#define WAHOOK_DB_H

#include <stddef.h>

#include <libpq-fe.h>

#define DB_ERR_MAX 512

/* One statement of a program's table; the caller names them by index. */
struct db_stmt {
	const char	*name;		/* prepared statement name */
	int		 nparams;
	const char	*sql;
	/*
	 * 1 when running it twice does what running it once does (ON CONFLICT DO
	 * NOTHING, writes keyed by a claim token). Only such a statement is run
	 * again on a new connection when the old one died after the statement
	 * was sent: the server may have committed it before dying.
	 */
	int		 idempotent;
};

/* WAHOOK_DB_PREPARE: how statements reach the server. */
enum db_prepare {
	DB_PREPARE_AUTO = 0,	/* prepare at connect; when the server turns out to
				   have lost them (SQLSTATE 26000 or 42P05: a pooler
				   in transaction mode), send them unprepared from
				   then on, for the life of the process */
	DB_PREPARE_ON,		/* always prepared */
	DB_PREPARE_OFF		/* always the statement's text with its parameters
				   (unnamed statements), for poolers that keep no
				   prepared statements across transactions */
};

/* The names WAHOOK_DB_PREPARE takes, in enum order, NULL-terminated. */
extern const char *const db_prepare_names[];

struct db_opts {
	const char		*conninfo;	/* the user's WAHOOK_DB ("" = PG* defaults);
						   not copied: must outlive the db */
	const char		*app_name;	/* application_name, unless conninfo sets one */
	const struct db_stmt	*stmts;		/* not copied: must outlive the db */
	size_t			 nstmts;
	/*
	 * SQL run once on every new connection (session settings), or NULL.
	 * Runs after db.c's own statement_timeout, so it may override it.
	 */
	const char		*session_sql;
	double			 timeout;	/* seconds: the deadline of one call */
	int			 connect_timeout; /* seconds per host, libpq's connect_timeout */
	enum db_prepare		 prepare;
};

enum db_rc {
	DB_OK = 0,
	DB_FAILED,	/* the server refused the statement on a live connection:
			   db_sqlstate() says why; the connection stays */
	DB_UNAVAILABLE	/* no connection, connection lost, or the deadline passed:
			   the connection is dropped, the next call reconnects */
};

struct db;

/*
 * Allocates a db for opts (copied; the strings and the table it points to are
 * not). Does not connect: the first db_run() does. Returns NULL only when out
 * of memory.
 *
 * The connection string handed to libpq is, in this order: connect_timeout,
 * application_name, keepalives=1, keepalives_idle=10, keepalives_interval=5,
 * keepalives_count=3, tcp_user_timeout (the deadline), then the user's
 * conninfo, expanded: whatever the user set there wins.
 */
struct db *db_new(const struct db_opts *opts);

/*
 * Runs statement number stmt of the table with values (nparams of them;
 * lengths and formats as for PQexecPrepared, NULL for all-text), waiting at
 * most timeout seconds (<= 0: opts.timeout) in all, connecting included.
 *
 * The reconnect rule: a connection the server has closed while idle is
 * noticed before sending (libpq may still say CONNECTION_OK after a server
 * restart) and replaced. When the connection dies under the statement, it is
 * reconnected and the statement run once more only if that cannot repeat a
 * commit: the send itself failed, or the statement is idempotent. A fresh
 * connection that fails is not retried. An expired deadline is never retried.
 *
 * DB_OK: *out is the result (PGRES_TUPLES_OK or PGRES_COMMAND_OK); the caller
 * PQclears it. After a call whose parameters passed 4 MiB the connection is
 * closed (libpq never shrinks its buffers; closing frees them) and
 * db_refresh() or the next call reconnects. Otherwise *out is NULL and
 * db_error() / db_sqlstate() say why.
 */
enum db_rc db_run(struct db *, size_t stmt, const char *const *values,
	    const int *lengths, const int *formats, double timeout, PGresult **out)
	    __attribute__((warn_unused_result));

/*
 * Connects now if not connected (e.g. to fail early at start). DB_OK or
 * DB_UNAVAILABLE, under the same deadline rule as db_run().
 */
enum db_rc db_connect(struct db *, double timeout) __attribute__((warn_unused_result));

/*
 * The connection itself, connected now if it is not (db_connect()'s rules:
 * keepalives, tcp_user_timeout, statement_timeout, the table prepared), for a
 * caller that drives libpq's asynchronous calls on it under deadlines of its
 * own (media_store.c's upload). NULL with db_error() set. It is nonblocking:
 * the caller flushes (PQflush) what it sends. While the caller uses it, no
 * db_run() on this db; after a failure, the caller drops it with
 * db_disconnect().
 */
PGconn	*db_conn(struct db *, double timeout);

/*
 * Connects again when the last call closed the connection for its size (see
 * db_run()), and only then: a lost database is the next call's to find, under
 * its own deadline. For a caller with nothing else to do, so that the next
 * statement finds its backend started and its statements prepared. DB_OK when
 * there was nothing to do.
 */
enum db_rc db_refresh(struct db *, double timeout);

/* 1 when the last call closed the connection for its size and none has been
 * opened since. Safe from any thread, without the caller's lock. */
int	db_shed(struct db *);

/*
 * The last failure, for logs and error answers: "what: PostgreSQL's first
 * line (SQLSTATE xxxxx)", or "deadline of N s passed while ...". Never holds
 * parameters or data. Valid until the next call on this db.
 */
const char *db_error(const struct db *);

/*
 * Writes "what: PostgreSQL's primary message (SQLSTATE x)" of r into buf,
 * or, without r, the first line of conn's message (a client-side failure).
 * A class 22 message is cut before a colon: what follows may quote the
 * offending value, data that must not reach a log. state (statelen bytes,
 * 6 hold it), when not NULL, gets the SQLSTATE or "". Used by db_error() and
 * by modules with a connection of their own.
 */
void	db_describe(char *buf, size_t len, char *state, size_t statelen, const char *what,
	    PGconn *conn, const PGresult *r);

/* The last failure's SQLSTATE, or "" (client-side failures have none). */
const char *db_sqlstate(const struct db *);

/* PostgreSQL refused the data itself (class 22, 23, 54): no retry can help. */
int	db_state_is_data(const char *sqlstate);

/* The connection's socket, for poll(2) beside other work (readable: the server
 * sent something, e.g. a notification), or -1 when not connected. */
int	db_socket(const struct db *);

/*
 * For a connection that LISTENs (opts.session_sql, so a reconnect listens
 * again): reads what the server sent while idle, without waiting, and returns
 * how many notifications arrived since the last call (freed; their channel and
 * payload are not kept). A connection found dead is dropped: the next call
 * reconnects.
 */
int	db_notifications(struct db *);

/* Drops the connection (the next call reconnects); the db stays usable. */
void	db_disconnect(struct db *);

/* Closes the connection and frees the db (NULL is fine). */
void	db_free(struct db *);

#endif
