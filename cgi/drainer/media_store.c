/*
 * media_store.c - wa_media's statements and the asynchronous upload (see
 * media_store.h). The claim mirrors the outbox's: a MATERIALIZED CTE picks due
 * rows FOR UPDATE SKIP LOCKED and the UPDATE around it hands out a lease and a
 * fresh claim token; every outcome names both.
 */
#include "media_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"
#include "log.h"

#define CHUNK		(1024 * 1024)	/* bytes per lo_put: one 1 MiB buffer, reused */
#define UPLOAD_TIMEOUT_S 600	/* seconds: a 100 MB lo_get + UPDATE on a busy disk */
#define UPLOAD_TIMEOUT	"'600s'"	/* the same, for SET LOCAL statement_timeout */
#define MEDIA_DB_TIMEOUT 15.0		/* seconds per short statement, connecting included */

/* the 7-day life of a webhook's media id */
#define MEDIA_FROM_MESSAGES \
	"INSERT INTO wa_media (media_id, message_id, phone_number_id, media_type," \
	"   mime_type, wa_timestamp, expires_at)" \
	" SELECT s.media_id, s.message_id, s.phone_number_id, s.type, s.mime," \
	"   s.wa_timestamp, s.wa_timestamp + interval '7 days'" \
	" FROM (SELECT m.payload -> m.type ->> 'id' AS media_id, m.message_id," \
	"     m.phone_number_id, m.type, left(m.payload -> m.type ->> 'mime_type', 128) AS mime," \
	"     m.wa_timestamp FROM wa_messages m" \
	"   WHERE m.type IN ('image', 'audio', 'video', 'document', 'sticker') AND "
#define MEDIA_NEW \
	") s WHERE s.media_id IS NOT NULL AND s.media_id <> ''" \
	"   AND NOT EXISTS (SELECT 1 FROM wa_media x WHERE x.media_id = s.media_id)" \
	" ON CONFLICT (media_id) DO NOTHING"

#define MINE "WHERE media_id = $1 AND claim_token = $2::uuid AND state = 'pending'"
#define RELEASED "lease_until = NULL, claim_token = NULL"

enum upload_step { U_IDLE, U_BEGIN, U_LOCK, U_PUT, U_FINAL, U_END };

struct media_store {
	struct db	*db;		/* short statements (db.c: deadline, reconnect rule) */
	struct db	*updb;		/* the upload's connection: connected by db.c's rules
					   (deadline, keepalives, tcp_user_timeout) */
	PGconn		*up;		/* updb's connection, driven asynchronously here */
	double		 timeout;	/* seconds: a short command's deadline */
	double		 cmd_deadline;	/* monotonic seconds: the command in flight's */
	int		 writing;	/* libpq holds bytes it could not send yet */
	int		 down;		/* the last failure lost the connection */
	char		 err[512];
	/* the running upload */
	enum upload_step step;
	int		 up_rc;		/* what U_END reports */
	int		 cmd_failed;	/* the command in flight returned an error */
	int		 cmd_lost;	/* the final UPDATE touched no row */
	int		 small;		/* one chunk: a single UPDATE, no transaction */
	struct media_file *f;
	long long	 off, size;
	char		 oid[24];
	char		 id[256], token[64], mime[MEDIA_MIME_MAX], hex[MEDIA_HEX_LEN];
	char		*chunk;
};

enum {
	M_DISCOVER, M_DISCOVER_ONE, M_CLAIM, M_RENEW, M_RETRY, M_DEAD,
	M_RELEASE, M_TOO_LARGE, M_DONE_PATH, M_DONE_DATA, M_DONE_BYTES, M_STATS,
	M_REQUEUE_ALL, M_REQUEUE_ONE, M_LOCK, M_SETTLED, M_DESCRIBE, M_N
};

/* every write is keyed by the claim token (or ON CONFLICT DO NOTHING): running
 * one again after a lost connection is harmless; the claim is not */
static const struct db_stmt stmts[M_N] = {
	[M_DISCOVER] = { "m_discover", 1, MEDIA_FROM_MESSAGES
	  "m.received_at > now() - make_interval(secs => $1)" MEDIA_NEW, 1 },
	[M_DISCOVER_ONE] = { "m_discover_one", 1,
	  MEDIA_FROM_MESSAGES "m.message_id = $1" MEDIA_NEW, 1 },
	[M_CLAIM] = { "m_claim", 3,
	  "WITH cand AS MATERIALIZED (SELECT media_id FROM wa_media"
	  " WHERE state = 'pending' AND next_attempt_at <= now()"
	  "   AND (lease_until IS NULL OR lease_until <= now())"
	  "   AND phone_number_id NOT IN (SELECT jsonb_array_elements_text($3::jsonb))"
	  " ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
	  " UPDATE wa_media m SET lease_until = now() + make_interval(secs => $2),"
	  "   claim_token = gen_random_uuid()"
	  " FROM cand WHERE m.media_id = cand.media_id"
	  " RETURNING m.media_id, m.message_id, m.phone_number_id, m.claim_token::text,"
	  "   m.attempts, (now() > m.expires_at)::int", 0 },
	[M_RENEW] = { "m_renew", 3,
	  "UPDATE wa_media SET lease_until = now() + make_interval(secs => $3) " MINE, 1 },
	[M_RETRY] = { "m_retry", 4, "UPDATE wa_media SET attempts = attempts + 1,"
	  " next_attempt_at = now() + make_interval(secs => $3), last_error = $4, " RELEASED
	  " " MINE, 1 },
	[M_DEAD] = { "m_dead", 3, "UPDATE wa_media SET state = 'dead', done_at = now(),"
	  " attempts = attempts + 1, last_error = $3, " RELEASED " " MINE, 1 },
	[M_RELEASE] = { "m_release", 2, "UPDATE wa_media SET " RELEASED " " MINE, 1 },
	[M_TOO_LARGE] = { "m_too_large", 5,
	  "UPDATE wa_media SET state = 'too_large', done_at = now(),"
	  " mime_type = coalesce(nullif($3, ''), mime_type), file_size = $4::bigint,"
	  " last_error = $5, " RELEASED " " MINE, 1 },
	[M_DONE_PATH] = { "m_done_path", 6, "UPDATE wa_media SET state = 'done', done_at = now(),"
	  " fetched_at = now(), path = $3, data = NULL,"
	  " mime_type = coalesce(nullif($4, ''), mime_type), sha256 = $5,"
	  " file_size = $6::bigint, last_error = NULL, " RELEASED " " MINE, 1 },
	[M_DONE_DATA] = { "m_done_data", 6, "UPDATE wa_media SET state = 'done', done_at = now(),"
	  " fetched_at = now(), data = lo_get($3::oid), path = NULL,"
	  " mime_type = coalesce(nullif($4, ''), mime_type), sha256 = $5,"
	  " file_size = $6::bigint, last_error = NULL, " RELEASED " " MINE, 1 },
	/* an item of at most one chunk: one autocommit UPDATE, no large object */
	[M_DONE_BYTES] = { "m_done_bytes", 6,
	  "UPDATE wa_media SET state = 'done', done_at = now(),"
	  " fetched_at = now(), data = $3::bytea, path = NULL,"
	  " mime_type = coalesce(nullif($4, ''), mime_type), sha256 = $5,"
	  " file_size = $6::bigint, last_error = NULL, " RELEASED " " MINE, 1 },
	[M_STATS] = { "m_stats", 0,
	  "SELECT count(*) FILTER (WHERE state = 'pending'),"
	  "  count(*) FILTER (WHERE state = 'pending' AND attempts > 0),"
	  "  count(*) FILTER (WHERE state = 'pending' AND lease_until > now()),"
	  "  count(*) FILTER (WHERE state = 'dead'),"
	  "  count(*) FILTER (WHERE state = 'too_large'),"
	  "  count(*) FILTER (WHERE state = 'done' AND done_at > now() - interval '1 hour'),"
	  "  coalesce(extract(epoch FROM now() - min(wa_timestamp)"
	  "    FILTER (WHERE state = 'pending'))::float8, 0)"
	  " FROM wa_media WHERE state = 'pending' OR done_at > now() - interval '1 hour'"
	  "   OR state IN ('dead', 'too_large')", 1 },
	[M_REQUEUE_ALL] = { "m_requeue_all", 0,
	  "UPDATE wa_media SET state = 'pending', attempts = 0,"
	  " next_attempt_at = now(), done_at = NULL, requeued_at = now(), " RELEASED
	  " WHERE state = 'dead'", 1 },
	[M_REQUEUE_ONE] = { "m_requeue_one", 1,
	  "UPDATE wa_media SET state = 'pending', attempts = 0,"
	  " next_attempt_at = now(), done_at = NULL, requeued_at = now(), " RELEASED
	  " WHERE state = 'dead' AND (media_id = $1 OR message_id = $1)", 1 },
	/* the upload holds its row for its whole transaction: other drainers' claims
	 * skip it (SKIP LOCKED) however long the bytes take, so no renewal is needed */
	[M_LOCK] = { "m_lock", 2, "SELECT 1 FROM wa_media " MINE " FOR UPDATE", 1 },
	/* a reply program waits for each item's first attempt, not for its retries */
	[M_SETTLED] = { "m_settled", 1, "SELECT count(*) FROM wa_media WHERE message_id = $1"
	  " AND state = 'pending' AND attempts = 0", 1 },
	[M_DESCRIBE] = { "m_describe", 1,
	  "SELECT coalesce(json_agg(json_build_object('media_id', media_id,"
	  "   'type', media_type, 'mime_type', mime_type, 'sha256', sha256,"
	  "   'file_size', file_size, 'state', state, 'path', path,"
	  "   'in_database', data IS NOT NULL, 'error', last_error) ORDER BY media_id),"
	  "   '[]')::text FROM wa_media WHERE message_id = $1" },
};

const char *
media_store_error(const struct media_store *ms)
{
	return ms->err;
}

/* One line of PostgreSQL's reason (and SQLSTATE) into ms->err; never data. */
static void
set_err(struct media_store *ms, PGconn *c, const char *what, const PGresult *r)
{
	db_describe(ms->err, sizeof(ms->err), NULL, 0, what, c, r);
}

struct media_store *
media_store_open(const char *conninfo, double timeout, int prepare, char *err,
    size_t errlen)
{
	struct media_store *ms;

	if ((ms = calloc(1, sizeof(*ms))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct db_opts o = {
		.conninfo = conninfo,
		.app_name = "wahook-drain",
		.stmts = stmts,
		.nstmts = M_N,
		.timeout = timeout > 0 ? timeout : MEDIA_DB_TIMEOUT,
		.connect_timeout = 5,
		.prepare = (enum db_prepare)prepare,
	};

	ms->timeout = o.timeout;
	if ((ms->db = db_new(&o)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(ms);
		return NULL;
	}
	/* the upload's statements are always prepared there, as they always were */
	o.app_name = "wahook-drain-media";
	o.prepare = DB_PREPARE_ON;
	if ((ms->updb = db_new(&o)) == NULL) {
		snprintf(err, errlen, "out of memory");
		db_free(ms->db);
		free(ms);
		return NULL;
	}
	/* connected by the first statement: a drain run's conversations go first */
	return ms;
}

void
media_store_close(struct media_store *ms)
{
	if (ms == NULL)
		return;
	db_free(ms->db);
	db_free(ms->updb);	/* ms->up is its connection */
	free(ms->chunk);
	free(ms);
}

/* Runs statement idx; the result (the caller PQclears it), or NULL with ms->err
 * set. db.c applies the deadline and the reconnect rule. */
static PGresult *
run(struct media_store *ms, int idx, const char *const *vals)
{
	PGresult *r = NULL;
	enum db_rc rc = db_run(ms->db, (size_t)idx, vals, NULL, NULL, 0, &r);

	ms->down = rc == DB_UNAVAILABLE;
	if (rc != DB_OK) {
		snprintf(ms->err, sizeof(ms->err), "%s", db_error(ms->db));
		return NULL;
	}
	return r;
}

int
media_store_down(const struct media_store *ms)
{
	return ms->down;
}

static int
run_mine(struct media_store *ms, int idx, const char *const *vals)
{
	PGresult *r;
	int rc;

	if ((r = run(ms, idx, vals)) == NULL)
		return MEDIA_FAIL;
	rc = strcmp(PQcmdTuples(r), "1") == 0 ? MEDIA_OK : MEDIA_LOST;
	PQclear(r);
	return rc;
}

int
media_store_discover(struct media_store *ms, double window, const char *message_id,
    long long *n)
{
	char w[32];
	const char *vals[1] = { w };
	PGresult *r;

	*n = 0;
	snprintf(w, sizeof(w), "%.3f", window);
	if (message_id != NULL)
		vals[0] = message_id;
	if ((r = run(ms, message_id ? M_DISCOVER_ONE : M_DISCOVER, vals)) == NULL)
		return MEDIA_FAIL;
	*n = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return MEDIA_OK;
}

void
media_row_clear(struct media_row *row)
{
	free(row->media_id);
	free(row->message_id);
	free(row->phone_number_id);
	free(row->token);
	memset(row, 0, sizeof(*row));
}

int
media_store_claim(struct media_store *ms, int max, double lease, const char *skip,
    struct media_row *rows, int *n)
{
	char smax[16], slease[32];
	const char *vals[3] = { smax, slease, skip };
	PGresult *r;
	int i, oom = 0;

	*n = 0;
	snprintf(smax, sizeof(smax), "%d", max);
	snprintf(slease, sizeof(slease), "%.3f", lease);
	if ((r = run(ms, M_CLAIM, vals)) == NULL)
		return MEDIA_FAIL;
	for (i = 0; i < PQntuples(r) && i < max; i++) {
		struct media_row *w = &rows[i];

		memset(w, 0, sizeof(*w));
		if ((w->media_id = strdup(PQgetvalue(r, i, 0))) == NULL ||
		    (w->message_id = strdup(PQgetvalue(r, i, 1))) == NULL ||
		    (w->phone_number_id = strdup(PQgetvalue(r, i, 2))) == NULL ||
		    (w->token = strdup(PQgetvalue(r, i, 3))) == NULL)
			oom = 1;
		w->attempts = (int)strtol(PQgetvalue(r, i, 4), NULL, 10);
		w->expired = PQgetvalue(r, i, 5)[0] == '1';
		*n = i + 1;
	}
	PQclear(r);
	if (oom) {
		for (i = 0; i < *n; i++)
			media_row_clear(&rows[i]);
		*n = 0;
		snprintf(ms->err, sizeof(ms->err), "claim: out of memory");
		return MEDIA_FAIL;	/* the leases run out by themselves */
	}
	return MEDIA_OK;
}

int
media_store_renew(struct media_store *ms, const struct media_row *w, double lease)
{
	char s[32];
	const char *vals[3] = { w->media_id, w->token, s };

	snprintf(s, sizeof(s), "%.3f", lease);
	return run_mine(ms, M_RENEW, vals);
}

int
media_store_retry(struct media_store *ms, const struct media_row *w, double delay,
    const char *last_error)
{
	char s[32];
	const char *vals[4] = { w->media_id, w->token, s, last_error };

	snprintf(s, sizeof(s), "%.3f", delay);
	return run_mine(ms, M_RETRY, vals);
}

int
media_store_dead(struct media_store *ms, const struct media_row *w, const char *last_error)
{
	const char *vals[3] = { w->media_id, w->token, last_error };

	return run_mine(ms, M_DEAD, vals);
}

int
media_store_release(struct media_store *ms, const struct media_row *w)
{
	const char *vals[2] = { w->media_id, w->token };

	return run_mine(ms, M_RELEASE, vals);
}

int
media_store_too_large(struct media_store *ms, const struct media_row *w, const char *mime,
    long long size, const char *why)
{
	char s[32];
	const char *vals[5] = { w->media_id, w->token, mime, size >= 0 ? s : NULL, why };

	snprintf(s, sizeof(s), "%lld", size);
	return run_mine(ms, M_TOO_LARGE, vals);
}

int
media_store_done_path(struct media_store *ms, const struct media_row *w, const char *path,
    const char *mime, const char *hex, long long size)
{
	char s[32];
	const char *vals[6] = { w->media_id, w->token, path, mime, hex, s };

	snprintf(s, sizeof(s), "%lld", size);
	return run_mine(ms, M_DONE_PATH, vals);
}

int
media_store_stats(struct media_store *ms, struct media_stats *st)
{
	PGresult *r;

	memset(st, 0, sizeof(*st));
	if ((r = run(ms, M_STATS, NULL)) == NULL)
		return MEDIA_FAIL;
	if (PQntuples(r) == 1) {
		st->pending = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		st->failed = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
		st->leased = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
		st->dead = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
		st->too_large = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
		st->done_hour = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
		st->oldest_age = strtod(PQgetvalue(r, 0, 6), NULL);
	}
	PQclear(r);
	return MEDIA_OK;
}

int
media_store_requeue(struct media_store *ms, char *const *ids, int nids, long long *n)
{
	PGresult *r;
	const char *vals[1];
	int i;

	*n = 0;
	for (i = 0; i < (nids == 0 ? 1 : nids); i++) {
		vals[0] = nids == 0 ? NULL : ids[i];
		r = run(ms, nids == 0 ? M_REQUEUE_ALL : M_REQUEUE_ONE, vals);
		if (r == NULL)
			return MEDIA_FAIL;
		*n += strtoll(PQcmdTuples(r), NULL, 10);
		PQclear(r);
	}
	return MEDIA_OK;
}

int
media_store_settled(struct media_store *ms, const char *message_id, int *settled)
{
	const char *vals[1] = { message_id };
	PGresult *r;

	*settled = 0;
	if ((r = run(ms, M_SETTLED, vals)) == NULL)
		return MEDIA_FAIL;
	*settled = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "0") == 0;
	PQclear(r);
	return MEDIA_OK;
}

int
media_store_describe(struct media_store *ms, const char *message_id, char **json)
{
	const char *vals[1] = { message_id };
	PGresult *r;

	*json = NULL;
	if ((r = run(ms, M_DESCRIBE, vals)) == NULL)
		return MEDIA_FAIL;
	if (PQntuples(r) == 1)
		*json = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (*json == NULL) {
		snprintf(ms->err, sizeof(ms->err), "describe: out of memory");
		return MEDIA_FAIL;
	}
	return MEDIA_OK;
}

/* --- the upload ----------------------------------------------------------- */

int
media_store_uploading(const struct media_store *ms)
{
	return ms->step != U_IDLE;
}

int
media_store_upload_fd(const struct media_store *ms)
{
	return ms->step != U_IDLE && ms->up != NULL ? PQsocket(ms->up) : -1;
}

/* 1 while libpq holds bytes of the upload it could not send yet: wait for
 * the socket to take more (POLLOUT) too. */
int
media_store_upload_writing(const struct media_store *ms)
{
	return ms->step != U_IDLE && ms->up != NULL && ms->writing;
}

/*
 * After a PQsend* (ok its result): starts the command's deadline, the
 * statement_timeout of the upload's transaction for a long one (the final
 * UPDATE, the COMMIT), the short statements' otherwise, and sends what the
 * socket takes now. 0, or -1 with ms->err set.
 */
static int
sent(struct media_store *ms, int ok, int long_cmd)
{
	int f;

	if (ok != 1) {
		set_err(ms, ms->up, "upload", NULL);
		return -1;
	}
	ms->cmd_deadline = log_now_ms() / 1000.0 + ms->timeout +
	    (long_cmd ? UPLOAD_TIMEOUT_S : 0);
	if ((f = PQflush(ms->up)) == -1) {
		set_err(ms, ms->up, "upload", NULL);
		return -1;
	}
	ms->writing = f == 1;
	return 0;
}

/* Sends the next lo_put, or the final UPDATE once every byte is in. */
static int
send_next(struct media_store *ms)
{
	char off[32], size[32];
	const char *vals[6];
	int lens[3] = { 0, 0, 0 }, fmts[3] = { 0, 0, 1 };
	size_t want;

	ms->cmd_failed = ms->cmd_lost = 0;
	if (ms->off < ms->size) {
		want = ms->size - ms->off < CHUNK ? (size_t)(ms->size - ms->off) : CHUNK;
		if (media_file_read(ms->f, ms->off, ms->chunk, want) != (ssize_t)want) {
			snprintf(ms->err, sizeof(ms->err), "upload: reading the temp file failed");
			return -1;
		}
		snprintf(off, sizeof(off), "%lld", ms->off);
		vals[0] = ms->oid;
		vals[1] = off;
		vals[2] = ms->chunk;
		lens[2] = (int)want;
		ms->off += (long long)want;
		ms->step = U_PUT;
		return sent(ms, PQsendQueryParams(ms->up, "SELECT lo_put($1::oid, $2::bigint, "
		    "$3::bytea)", 3, NULL, vals, lens, fmts, 0), 0);
	}
	snprintf(size, sizeof(size), "%lld", ms->size);
	vals[0] = ms->id;
	vals[1] = ms->token;
	vals[2] = ms->oid;
	vals[3] = ms->mime;
	vals[4] = ms->hex;
	vals[5] = size;
	ms->step = U_FINAL;
	return sent(ms, PQsendQueryPrepared(ms->up, "m_done_data", 6, vals, NULL, NULL, 0), 1);
}

/* Locks the row: the claim must still be ours. */
static int
send_lock(struct media_store *ms)
{
	const char *vals[2] = { ms->id, ms->token };

	ms->cmd_failed = ms->cmd_lost = 0;
	ms->step = U_LOCK;
	return sent(ms, PQsendQueryPrepared(ms->up, "m_lock", 2, vals, NULL, NULL, 0), 0);
}

/* Ends the transaction: COMMIT after the UPDATE took the row, else ROLLBACK. */
static int
send_end(struct media_store *ms, int rc)
{
	char sql[96];

	ms->up_rc = rc;
	ms->step = U_END;
	ms->cmd_failed = ms->cmd_lost = 0;
	if (rc == MEDIA_OK)
		snprintf(sql, sizeof(sql), "SELECT lo_unlink(%s); COMMIT", ms->oid);
	else
		snprintf(sql, sizeof(sql), "ROLLBACK");
	return sent(ms, PQsendQuery(ms->up, sql), 1);
}

int
media_store_upload_begin(struct media_store *ms, const struct media_row *w,
    struct media_file *f, const char *mime, const char *hex, long long size)
{
	if (ms->step != U_IDLE) {
		snprintf(ms->err, sizeof(ms->err), "upload: one is running");
		return -1;
	}
	if (ms->chunk == NULL && (ms->chunk = malloc(CHUNK)) == NULL) {
		snprintf(ms->err, sizeof(ms->err), "upload: out of memory");
		return -1;
	}
	/* connected (or found dead and connected again) under the deadline */
	if ((ms->up = db_conn(ms->updb, ms->timeout)) == NULL) {
		snprintf(ms->err, sizeof(ms->err), "upload: %s", db_error(ms->updb));
		return -1;
	}
	ms->f = f;
	ms->off = 0;
	ms->size = size;
	ms->oid[0] = '\0';
	ms->err[0] = '\0';
	ms->cmd_failed = ms->cmd_lost = 0;
	snprintf(ms->id, sizeof(ms->id), "%s", w->media_id);
	snprintf(ms->token, sizeof(ms->token), "%s", w->token);
	snprintf(ms->mime, sizeof(ms->mime), "%s", mime);
	snprintf(ms->hex, sizeof(ms->hex), "%s", hex);
	ms->small = size <= CHUNK;
	if (ms->small) {
		char ssize[32];
		const char *vals[6] = { ms->id, ms->token, ms->chunk, ms->mime, ms->hex, ssize };
		int lens[6] = { 0, 0, (int)size, 0, 0, 0 }, fmts[6] = { 0, 0, 1, 0, 0, 0 };

		snprintf(ssize, sizeof(ssize), "%lld", size);
		if (media_file_read(f, 0, ms->chunk, (size_t)size) != (ssize_t)size) {
			snprintf(ms->err, sizeof(ms->err), "upload: reading the temp file failed");
			return -1;
		}
		ms->step = U_FINAL;
		if (sent(ms, PQsendQueryPrepared(ms->up, "m_done_bytes", 6, vals, lens, fmts,
		    0), 0) == -1) {
			media_store_upload_abort(ms);
			return -1;
		}
		return 0;
	}
	ms->step = U_BEGIN;
	if (sent(ms, PQsendQuery(ms->up, "BEGIN; SET LOCAL statement_timeout = "
	    UPLOAD_TIMEOUT "; SELECT lo_create(0)"), 0) == -1) {
		media_store_upload_abort(ms);
		return -1;
	}
	return 0;
}

void
media_store_upload_abort(struct media_store *ms)
{
	if (ms->step == U_IDLE)
		return;
	/* closing the connection rolls the transaction and the large object back */
	db_disconnect(ms->updb);
	ms->up = NULL;
	ms->writing = 0;
	ms->step = U_IDLE;
	ms->f = NULL;
}

int
media_store_upload_poll(struct media_store *ms, int *rc)
{
	PGresult *r;
	int complete = 0, f;

	*rc = MEDIA_OK;
	if (ms->step == U_IDLE)
		return 0;
	if ((f = PQflush(ms->up)) == -1 || PQconsumeInput(ms->up) != 1) {
		set_err(ms, ms->up, "upload", NULL);
		goto broken;
	}
	ms->writing = f == 1;
	while (!PQisBusy(ms->up)) {
		if ((r = PQgetResult(ms->up)) == NULL) {
			complete = 1;	/* every result of this command is in */
			break;
		}
		switch (PQresultStatus(r)) {
		case PGRES_TUPLES_OK:
			if (ms->step == U_BEGIN && PQntuples(r) == 1)
				snprintf(ms->oid, sizeof(ms->oid), "%s", PQgetvalue(r, 0, 0));
			if (ms->step == U_LOCK && PQntuples(r) != 1)
				ms->cmd_lost = 1;
			break;
		case PGRES_COMMAND_OK:
			if (ms->step == U_FINAL && strcmp(PQcmdTuples(r), "1") != 0)
				ms->cmd_lost = 1;
			break;
		default:
			if (!ms->cmd_failed)
				set_err(ms, ms->up, "upload", r);
			ms->cmd_failed = 1;
		}
		PQclear(r);
	}
	if (!complete) {
		/* a stopped server or a vanished host answers nothing, ever */
		if (log_now_ms() / 1000.0 > ms->cmd_deadline) {
			snprintf(ms->err, sizeof(ms->err), "upload: no answer from the "
			    "database within its deadline");
			goto broken;
		}
		return 0;
	}
	if (ms->small) {	/* its one UPDATE is the whole upload */
		*rc = ms->cmd_failed ? MEDIA_FAIL : ms->cmd_lost ? MEDIA_LOST : MEDIA_OK;
		goto ended;
	}
	if (ms->cmd_failed) {
		if (ms->step == U_END) {
			*rc = MEDIA_FAIL;
			goto ended;
		}
		if (send_end(ms, MEDIA_FAIL) == -1)
			goto broken;
		return 0;
	}
	switch (ms->step) {
	case U_BEGIN:
		if (send_lock(ms) == -1 && send_end(ms, MEDIA_FAIL) == -1)
			goto broken;
		return 0;
	case U_LOCK:
		if (ms->cmd_lost) {
			if (send_end(ms, MEDIA_LOST) == -1)
				goto broken;
			return 0;
		}
		/* FALLTHROUGH */
	case U_PUT:
		if (ms->oid[0] == '\0') {
			snprintf(ms->err, sizeof(ms->err), "upload: lo_create gave no oid");
			if (send_end(ms, MEDIA_FAIL) == -1)
				goto broken;
		} else if (send_next(ms) == -1) {
			if (send_end(ms, MEDIA_FAIL) == -1)
				goto broken;
		}
		return 0;
	case U_FINAL:
		if (send_end(ms, ms->cmd_lost ? MEDIA_LOST : MEDIA_OK) == -1)
			goto broken;
		return 0;
	case U_END:
		*rc = ms->up_rc;
		goto ended;
	case U_IDLE:
		break;
	}
	return 0;
broken:
	media_store_upload_abort(ms);
	*rc = MEDIA_FAIL;
	return 1;
ended:
	ms->step = U_IDLE;
	ms->f = NULL;
	return 1;
}
