/*
 * outbox.c - the drainer's statements (see outbox.h). The claim is one
 * statement: a MATERIALIZED CTE picks due head rows FOR UPDATE SKIP LOCKED
 * (doc/postgresql.md: the queue pattern that survives several consumers), and the
 * UPDATE around it sets the lease and a fresh claim token. Connecting, the
 * deadline and the reconnect rule are db.c's; this file keeps the statements
 * and the drainer's patience with an outage. Every write is keyed by the claim
 * token, so repeating one after a reconnect is harmless.
 */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "outage.h"

struct outbox {
	struct db	*db;
	int		 listen;
	char		 err[DB_ERR_MAX];
	struct outage	 rider;		/* a lost database, ridden while wait is set */
	int		(*wait)(void *, double);
	void		*wait_arg;
};

/*
 * The head of a conversation: no earlier pending row in it, in the order key
 * (wa_timestamp, received_at, position), message_id as the last tie-break. A
 * row waiting for its retry is pending, so it holds its own conversation back
 * and nothing else; a row leased by another drainer does the same, which is
 * what keeps two drainers off one conversation. FOR UPDATE OF o: the probe's
 * rows are only read, never locked. The due scan meets a row that is not a
 * head only when its head is claimed now, or the row arrived after its head
 * last failed: a retry gives the rows behind its head its retry time
 * (retry_sql below), so a Graph outage over a deep backlog leaves no due rows
 * behind the waiting heads for each claim to probe.
 *
 * Numbers are served side by side, not in one global queue: nums lists the
 * phone_number_ids with pending rows (a loose index scan: one probe per
 * number), each gets at most its room ($4/$5/$6: the drainer's pacer; 0 for
 * a paused number, whose rows stay unclaimed), and the free slots go to the
 * least loaded numbers first. So a backlog, a pause or a hang on one number
 * never fills the slots another number needs.
 */
static const char claim_sql[] =
"WITH RECURSIVE nums(pnid) AS ("
"  (SELECT phone_number_id FROM wa_outbox WHERE state = 'pending'"
"   ORDER BY phone_number_id LIMIT 1)"
"  UNION ALL"
"  SELECT (SELECT o.phone_number_id FROM wa_outbox o"
"    WHERE o.state = 'pending' AND o.phone_number_id > nums.pnid"
"    ORDER BY o.phone_number_id LIMIT 1)"
"  FROM nums WHERE nums.pnid IS NOT NULL),"
" lim AS ("
"  SELECT n.pnid, coalesce(l.load, 0) AS load, least(coalesce(l.room, $3), $1) AS room"
"  FROM nums n LEFT JOIN unnest($4::text[], $5::int[], $6::int[]) AS l(pnid, load, room)"
"    ON l.pnid = n.pnid"
"  WHERE n.pnid IS NOT NULL),"
" cand AS MATERIALIZED ("
"  SELECT c.message_id, c.next_attempt_at, lim.load,"
"    row_number() OVER (PARTITION BY lim.pnid ORDER BY c.next_attempt_at) AS rk"
"  FROM lim CROSS JOIN LATERAL ("
"   SELECT o.message_id, o.next_attempt_at FROM wa_outbox o"
"   WHERE o.state = 'pending' AND o.phone_number_id = lim.pnid"
"     AND o.next_attempt_at <= now()"
"     AND (o.lease_until IS NULL OR o.lease_until <= now())"
"     AND NOT EXISTS (SELECT 1 FROM wa_outbox e"
"       WHERE e.state = 'pending' AND e.phone_number_id = o.phone_number_id"
"         AND e.sender = o.sender"
"         AND (e.wa_timestamp, e.received_at, e.position, e.message_id)"
"           < (o.wa_timestamp, o.received_at, o.position, o.message_id))"
"   ORDER BY o.next_attempt_at"
"   LIMIT lim.room"
"   FOR UPDATE OF o SKIP LOCKED) c"
"  WHERE lim.room > 0),"
" pick AS ("
"  SELECT message_id FROM cand ORDER BY load + rk, next_attempt_at LIMIT $1)"
" UPDATE wa_outbox o SET lease_until = now() + make_interval(secs => $2),"
"   claim_token = gen_random_uuid()"
" FROM pick LEFT JOIN wa_messages m ON m.message_id = pick.message_id"
" WHERE o.message_id = pick.message_id"
" RETURNING o.message_id, o.phone_number_id, o.sender, o.claim_token::text,"
"   coalesce(o.last_error, ''), (o.read_at IS NOT NULL)::int,"
"   (o.reply_message_id IS NOT NULL)::int, o.attempts,"
"   extract(epoch FROM now() - coalesce(o.requeued_at, o.received_at))::float8,"
"   extract(epoch FROM now() - o.wa_timestamp)::float8,"
"   CASE WHEN o.reply_state = 'recorded' THEN o.reply::text ELSE '' END, o.reply_sent,"
"   o.reply_unanswered, coalesce(m.sender, o.sender), m.user_id, m.username, m.group_id";

/*
 * A failed call's row waits for its retry, and so does every later pending
 * row of its conversation: they get the same next_attempt_at (rows already
 * waiting longer keep theirs). Otherwise the claim's due scan would meet each
 * of them, due but not a head, on every claim while the head waits: during a
 * Graph outage over a deep backlog that is every pending row, each probed to
 * learn it is not a head. Rows locked by a statement running now are skipped
 * (they stay due; the claim's head test still holds them back), so moving
 * them never waits for, or deadlocks with, another drainer. Nothing is
 * claimed or reordered: a row's place is its order key, not next_attempt_at.
 * The outer UPDATE is the head's, so its count is run_mine()'s one row.
 * $5: 1 when the failed call was a reply that went out unanswered.
 */
static const char retry_sql[] =
"WITH behind AS ("
"  UPDATE wa_outbox f SET next_attempt_at = now() + make_interval(secs => $3)"
"  WHERE f.message_id IN (SELECT b.message_id FROM wa_outbox h, wa_outbox b"
"   WHERE h.message_id = $1 AND h.claim_token = $2::uuid AND h.state = 'pending'"
"     AND b.state = 'pending' AND b.phone_number_id = h.phone_number_id"
"     AND b.sender = h.sender"
"     AND (b.wa_timestamp, b.received_at, b.position, b.message_id)"
"       > (h.wa_timestamp, h.received_at, h.position, h.message_id)"
"     AND b.next_attempt_at < now() + make_interval(secs => $3)"
"   FOR UPDATE OF b SKIP LOCKED))"
" UPDATE wa_outbox SET attempts = attempts + 1,"
"  next_attempt_at = now() + make_interval(secs => $3), last_error = $4,"
"  reply_unanswered = reply_unanswered + $5,"
"  lease_until = NULL, claim_token = NULL"
" WHERE message_id = $1 AND claim_token = $2::uuid AND state = 'pending'";

#define STR_(x) #x
#define STR(x) STR_(x)
#define REFUSED_SHOWN_S STR(OUTBOX_REFUSED_SHOWN)

#define MINE "WHERE message_id = $1 AND claim_token = $2::uuid AND state = 'pending'"

/* The statement table, in the order of enum stmt. Every one may run twice
 * (db.h's idempotent): the writes are keyed by the claim token (and the reply
 * steps by their state and count), a read is a read, and a claim repeated
 * after its commit was lost only hides those rows until their lease ends (no
 * call was made for them). */
enum stmt {
	ST_CLAIM, ST_RENEW, ST_READ_DONE, ST_REPLY_DONE, ST_REPLY_INPUT, ST_REPLY_RECORD,
	ST_REPLY_SKIP, ST_REPLY_SENT, ST_RETRY, ST_DEAD, ST_RELEASE, ST_STATS, ST_REFUSED,
	ST_REQUEUE_ALL, ST_REQUEUE_ONE, ST_NEXT_DUE, NSTMTS
};

static const struct db_stmt stmts[NSTMTS] = {
	{ "claim", 6, claim_sql, 1 },
	{ "renew", 3, "UPDATE wa_outbox SET lease_until = now() + make_interval(secs => $3) "
	    MINE, 1 },
	/*
	 * Meta marks every earlier message of the chat read along with this one;
	 * what stays unread is this conversation's later pending rows not yet
	 * read. Counted, not zeroed: messages may have arrived meanwhile. (The CTE
	 * sees the snapshot before its own UPDATE, hence message_id <> $1.)
	 */
	{ "read_done", 3,
	  "WITH r AS (UPDATE wa_outbox SET read_at = now(),"
	  "   lease_until = now() + make_interval(secs => $3) " MINE
	  "   RETURNING phone_number_id, sender),"
	  " c AS (UPDATE wa_conversations c SET unread_count = (SELECT count(*)"
	  "     FROM wa_outbox e WHERE e.state = 'pending' AND e.read_at IS NULL"
	  "       AND e.phone_number_id = r.phone_number_id AND e.sender = r.sender"
	  "       AND e.message_id <> $1), updated_at = now()"
	  "   FROM r WHERE c.phone_number_id = r.phone_number_id AND c.sender = r.sender)"
	  " SELECT count(*) FROM r", 1 },
	/* $3 NULL: accepted, but the wamid could not be read; $4 then says why */
	{ "reply_done", 4,
	  "UPDATE wa_outbox SET reply_message_id = $3, replied_at = now(), state = 'done',"
	  " reply_state = 'sent', reply_sent = 1, reply_message_ids = ARRAY[$3],"
	  " done_at = now(), lease_until = NULL, claim_token = NULL,"
	  " last_error = coalesce($4, last_error) " MINE
	  " AND read_at IS NOT NULL", 1 },
	{ "reply_input", 1,
	  "SELECT payload::text, type, display_phone_number, profile_name"
	  " FROM wa_messages WHERE message_id = $1", 1 },
	{ "reply_record", 4,
	  "UPDATE wa_outbox SET reply = $3::jsonb, reply_state = 'recorded', reply_sent = 0,"
	  " lease_until = now() + make_interval(secs => $4) " MINE
	  " AND reply_state IS NULL", 1 },
	{ "reply_skip", 5,
	  "UPDATE wa_outbox SET reply_state = $3, reply_reason = $4,"
	  " reply = coalesce($5::jsonb, reply), state = 'done', done_at = now(),"
	  " lease_until = NULL, claim_token = NULL " MINE " AND read_at IS NOT NULL", 1 },
	/*
	 * One message of a recorded reply went out. $5 (its index) guards against
	 * counting one twice; the last one ends the row. $3 NULL: accepted, its
	 * wamid unreadable (a NULL in reply_message_ids keeps the places); $6 why.
	 */
	{ "reply_sent", 6,
	  "UPDATE wa_outbox SET reply_sent = reply_sent + 1, last_error = coalesce($6, last_error),"
	  " reply_message_ids = coalesce(reply_message_ids, '{}') || $3::text,"
	  " reply_message_id = coalesce(reply_message_id, $3), replied_at = now(),"
	  " reply_state = CASE WHEN reply_sent + 1 >= jsonb_array_length(reply)"
	  "   THEN 'sent' ELSE reply_state END,"
	  " state = CASE WHEN reply_sent + 1 >= jsonb_array_length(reply)"
	  "   THEN 'done' ELSE state END,"
	  " done_at = CASE WHEN reply_sent + 1 >= jsonb_array_length(reply)"
	  "   THEN now() END,"
	  " lease_until = CASE WHEN reply_sent + 1 >= jsonb_array_length(reply)"
	  "   THEN NULL ELSE now() + make_interval(secs => $4) END,"
	  " claim_token = CASE WHEN reply_sent + 1 >= jsonb_array_length(reply)"
	  "   THEN NULL ELSE claim_token END "
	  MINE " AND reply_state = 'recorded' AND reply_sent = $5::int"
	  " RETURNING state", 1 },
	{ "retry", 5, retry_sql, 1 },
	{ "dead", 4,
	  "UPDATE wa_outbox SET state = 'dead', done_at = now(), last_error = $3,"
	  " attempts = attempts + $4, lease_until = NULL, claim_token = NULL " MINE, 1 },
	{ "release", 3,
	  "UPDATE wa_outbox SET lease_until = NULL, claim_token = NULL,"
	  " last_error = coalesce($3, last_error) " MINE, 1 },
	{ "stats", 0,
	  "SELECT p.n, p.due, p.retrying, p.leased,"
	  "  (SELECT count(*) FROM wa_outbox WHERE state = 'dead'),"
	  "  (SELECT count(*) FROM wa_outbox WHERE state = 'done'"
	  "     AND done_at > now() - interval '1 hour'),"
	  "  coalesce(extract(epoch FROM now() - p.oldest)::float8, 0)"
	  "  , p.queued"
	  " FROM (SELECT count(*) AS n,"
	  "   count(*) FILTER (WHERE NOT leased AND next_attempt_at <= now() AND head) AS due,"
	  "   count(*) FILTER (WHERE NOT leased AND next_attempt_at > now() AND head)"
	  "     AS retrying,"
	  "   count(*) FILTER (WHERE leased) AS leased,"
	  /* rows behind a retrying head carry its retry time: still queued */
	  "   count(*) FILTER (WHERE NOT leased AND NOT head) AS queued,"
	  "   min(received_at) AS oldest"
	  "   FROM (SELECT o.next_attempt_at, o.received_at,"
	  "     coalesce(o.lease_until > now(), false) AS leased,"
	  /* the claim's own test: no earlier pending row in the conversation */
	  "     NOT EXISTS (SELECT 1 FROM wa_outbox e"
	  "       WHERE e.state = 'pending' AND e.phone_number_id = o.phone_number_id"
	  "         AND e.sender = o.sender"
	  "         AND (e.wa_timestamp, e.received_at, e.position, e.message_id)"
	  "           < (o.wa_timestamp, o.received_at, o.position, o.message_id)) AS head"
	  "     FROM wa_outbox o WHERE o.state = 'pending') x) p", 1 },
	{ "refused", 1,
	  "SELECT phone_number_id, count(*), count(*) OVER () FROM wa_outbox"
	  " WHERE state = 'pending' GROUP BY phone_number_id"
	  " HAVING bool_or(starts_with(last_error, $1))"
	  " ORDER BY phone_number_id LIMIT " REFUSED_SHOWN_S, 1 },
	{ "requeue_all", 0,
	  "UPDATE wa_outbox SET state = 'pending', attempts = 0, next_attempt_at = now(),"
	  " done_at = NULL, lease_until = NULL, claim_token = NULL, requeued_at = now()"
	  " WHERE state = 'dead'", 1 },
	{ "requeue_one", 1,
	  "UPDATE wa_outbox SET state = 'pending', attempts = 0, next_attempt_at = now(),"
	  " done_at = NULL, lease_until = NULL, claim_token = NULL, requeued_at = now()"
	  " WHERE state = 'dead' AND message_id = $1", 1 },
	/* the first entry of wa_outbox_due, past the leased ones */
	{ "next_due", 0,
	  "SELECT coalesce(extract(epoch FROM min(next_attempt_at) - now())::float8, 0),"
	  "  count(*) > 0"
	  " FROM wa_outbox WHERE state = 'pending'"
	  "   AND (lease_until IS NULL OR lease_until <= now())", 1 },
};

const char *
outbox_error(const struct outbox *ob)
{
	return ob->err;
}

struct outbox *
outbox_open(const char *conninfo, double timeout, int prepare, int listen, char *err,
    size_t errlen)
{
	struct db_opts o = {
		.conninfo = conninfo,
		.app_name = "wahook-drain",
		.stmts = stmts,
		.nstmts = NSTMTS,
		.session_sql = listen ? "LISTEN wahook" : NULL,
		.timeout = timeout,
		.prepare = (enum db_prepare)prepare,
	};
	struct outbox *ob;

	if ((ob = calloc(1, sizeof(*ob))) == NULL || (ob->db = db_new(&o)) == NULL) {
		free(ob);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ob->listen = listen;
	if (db_connect(ob->db, 0) != DB_OK) {
		snprintf(err, errlen, "%s", db_error(ob->db));
		outbox_close(ob);
		return NULL;
	}
	return ob;
}

void
outbox_close(struct outbox *ob)
{
	if (ob == NULL)
		return;
	db_free(ob->db);
	free(ob);
}

void
outbox_ride_outages(struct outbox *ob, double max_s, int (*wait)(void *, double),
    void *arg)
{
	outage_init(&ob->rider, max_s, NULL, "lost the database: reconnecting with backoff "
	    "for up to WAHOOK_DB_OUTAGE_MAX", "the database answers again: carrying on");
	ob->wait = wait;
	ob->wait_arg = arg;
}

/*
 * Runs statement stmt; returns the result (the caller PQclears it), else NULL
 * with ob->err set. db.c reconnects once when that is safe; past that, a lost
 * database is ridden out (outbox_ride_outages, outage.h) with backoff, no
 * attempt starting later than WAHOOK_DB_OUTAGE_MAX after the statement did:
 * with each attempt's deadline, it ends within outage_max + the db timeout
 * (the leases count on that bound, see drain_config.h).
 */
static PGresult *
run(struct outbox *ob, enum stmt stmt, const char *const *vals)
{
	PGresult *r = NULL;
	double delay;

	outage_begin(&ob->rider, log_now_ms());
	for (;;) {
		switch (db_run(ob->db, stmt, vals, NULL, NULL, 0, &r)) {
		case DB_OK:
			outage_up(&ob->rider);
			return r;
		case DB_FAILED:		/* the statement failed, not the connection */
			snprintf(ob->err, sizeof(ob->err), "%s", db_error(ob->db));
			return NULL;
		case DB_UNAVAILABLE:
			snprintf(ob->err, sizeof(ob->err), "%s", db_error(ob->db));
			break;
		}
		if (ob->wait == NULL || (delay = outage_down(&ob->rider, ob->err)) < 0 ||
		    ob->wait(ob->wait_arg, delay) != 0)
			return NULL;
	}
}

/* Runs a write keyed by the claim: OUTBOX_OK when it touched the row. */
static int
run_mine(struct outbox *ob, enum stmt stmt, const char *const *vals)
{
	PGresult *r;
	int rc;

	if ((r = run(ob, stmt, vals)) == NULL)
		return OUTBOX_FAIL;
	rc = strcmp(PQcmdTuples(r), "1") == 0 ? OUTBOX_OK : OUTBOX_LOST;
	PQclear(r);
	return rc;
}

static char *
dup_value(const PGresult *r, int row, int col, int *oom)
{
	char *s = strdup(PQgetvalue(r, row, col));

	if (s == NULL)
		*oom = 1;
	return s;
}

/* dup_value(), with SQL NULL as NULL */
static char *
dup_or_null(const PGresult *r, int row, int col, int *oom)
{
	return PQgetisnull(r, row, col) ? NULL : dup_value(r, row, col, oom);
}

void
outbox_row_clear(struct outbox_row *row)
{
	free(row->message_id);
	free(row->phone_number_id);
	free(row->sender);
	free(row->person);
	free(row->user_id);
	free(row->username);
	free(row->group_id);
	free(row->token);
	free(row->last_error);
	free(row->reply);
	memset(row, 0, sizeof(*row));
}

/*
 * Sets *buf to a malloc'd PostgreSQL array literal {a,b,...} of field which
 * (0 number, 1 load, 2 room) of the nlim limits (numbers are quoted: they came
 * from the database and may hold anything). Returns 0, or -1 out of memory.
 */
static int
array_literal(char **buf, const struct outbox_limit *lim, int nlim, int which)
{
	size_t cap = 16, len = 0, need;
	char *b = NULL, item[32];
	const char *p;
	int i;

	for (i = 0; i < nlim; i++)
		cap += which == 0 ? 2 * strlen(lim[i].number) + 3 : sizeof(item);
	if ((b = malloc(cap)) == NULL)
		return -1;
	b[len++] = '{';
	for (i = 0; i < nlim; i++) {
		if (i > 0)
			b[len++] = ',';
		if (which == 0) {
			b[len++] = '"';
			for (p = lim[i].number; *p != '\0'; p++) {
				if (*p == '"' || *p == '\\')
					b[len++] = '\\';
				b[len++] = *p;
			}
			b[len++] = '"';
		} else {
			need = (size_t)snprintf(item, sizeof(item), "%d",
			    which == 1 ? lim[i].load : lim[i].room);
			memcpy(b + len, item, need);
			len += need;
		}
	}
	b[len++] = '}';
	b[len] = '\0';
	*buf = b;
	return 0;
}

int
outbox_claim(struct outbox *ob, int max, double lease, int room_default,
    const struct outbox_limit *lim, int nlim, struct outbox_row *rows, int *n)
{
	char smax[16], slease[32], sroom[16], *arr[3] = { NULL, NULL, NULL };
	const char *vals[6] = { smax, slease, sroom, NULL, NULL, NULL };
	PGresult *r = NULL;
	int i, oom = 0;

	*n = 0;
	snprintf(smax, sizeof(smax), "%d", max);
	snprintf(slease, sizeof(slease), "%.3f", lease);
	snprintf(sroom, sizeof(sroom), "%d", room_default);
	for (i = 0; i < 3; i++) {
		if (array_literal(&arr[i], lim, nlim, i) == -1) {
			snprintf(ob->err, sizeof(ob->err), "claim: out of memory");
			goto fail;
		}
		vals[3 + i] = arr[i];
	}
	if ((r = run(ob, ST_CLAIM, vals)) == NULL)
		goto fail;
	for (i = 0; i < PQntuples(r) && i < max; i++) {
		struct outbox_row *w = &rows[i];

		memset(w, 0, sizeof(*w));
		w->message_id = dup_value(r, i, 0, &oom);
		w->phone_number_id = dup_value(r, i, 1, &oom);
		w->sender = dup_value(r, i, 2, &oom);
		w->token = dup_value(r, i, 3, &oom);
		w->last_error = dup_value(r, i, 4, &oom);
		w->read_done = PQgetvalue(r, i, 5)[0] == '1';
		w->reply_done = PQgetvalue(r, i, 6)[0] == '1';
		w->attempts = (int)strtol(PQgetvalue(r, i, 7), NULL, 10);
		w->age = strtod(PQgetvalue(r, i, 8), NULL);
		w->msg_age = strtod(PQgetvalue(r, i, 9), NULL);
		w->reply = dup_value(r, i, 10, &oom);
		w->reply_recorded = PQgetvalue(r, i, 10)[0] != '\0';
		w->reply_sent = (int)strtol(PQgetvalue(r, i, 11), NULL, 10);
		w->reply_unanswered = (int)strtol(PQgetvalue(r, i, 12), NULL, 10);
		w->person = dup_value(r, i, 13, &oom);
		w->user_id = dup_or_null(r, i, 14, &oom);
		w->username = dup_or_null(r, i, 15, &oom);
		w->group_id = dup_or_null(r, i, 16, &oom);
		*n = i + 1;
	}
	if (oom) {
		/* the rows stay leased until their lease runs out: nothing else to do */
		snprintf(ob->err, sizeof(ob->err), "claim: out of memory");
		goto fail;
	}
	PQclear(r);
	for (i = 0; i < 3; i++)
		free(arr[i]);
	return OUTBOX_OK;
fail:
	for (i = 0; i < *n; i++)
		outbox_row_clear(&rows[i]);
	*n = 0;
	PQclear(r);
	for (i = 0; i < 3; i++)
		free(arr[i]);
	return OUTBOX_FAIL;
}

int
outbox_renew(struct outbox *ob, const struct outbox_row *w, double lease)
{
	char slease[32];
	const char *vals[3] = { w->message_id, w->token, slease };

	snprintf(slease, sizeof(slease), "%.3f", lease);
	return run_mine(ob, ST_RENEW, vals);
}

int
outbox_read_done(struct outbox *ob, const struct outbox_row *w, double lease)
{
	char slease[32];
	const char *vals[3] = { w->message_id, w->token, slease };
	PGresult *r;
	int rc;

	snprintf(slease, sizeof(slease), "%.3f", lease);
	if ((r = run(ob, ST_READ_DONE, vals)) == NULL)
		return OUTBOX_FAIL;
	rc = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "1") == 0 ?
	    OUTBOX_OK : OUTBOX_LOST;
	PQclear(r);
	return rc;
}

int
outbox_reply_done(struct outbox *ob, const struct outbox_row *w, const char *wamid,
    const char *note)
{
	const char *vals[4] = { w->message_id, w->token, wamid, note };

	return run_mine(ob, ST_REPLY_DONE, vals);
}

static char *
dup_nullable(const PGresult *r, int col, int *oom)
{
	return PQgetisnull(r, 0, col) ? NULL : dup_value(r, 0, col, oom);
}

void
outbox_input_clear(struct outbox_input *in)
{
	free(in->message_json);
	free(in->type);
	free(in->display_phone_number);
	free(in->profile_name);
	memset(in, 0, sizeof(*in));
}

int
outbox_reply_input(struct outbox *ob, const struct outbox_row *w, struct outbox_input *in)
{
	const char *vals[1] = { w->message_id };
	PGresult *r;
	int oom = 0, rc = OUTBOX_LOST;

	memset(in, 0, sizeof(*in));
	if ((r = run(ob, ST_REPLY_INPUT, vals)) == NULL)
		return OUTBOX_FAIL;
	if (PQntuples(r) == 1) {
		in->message_json = dup_nullable(r, 0, &oom);
		in->type = dup_nullable(r, 1, &oom);
		in->display_phone_number = dup_nullable(r, 2, &oom);
		in->profile_name = dup_nullable(r, 3, &oom);
		rc = OUTBOX_OK;
		if (oom) {
			snprintf(ob->err, sizeof(ob->err), "reply_input: out of memory");
			rc = OUTBOX_FAIL;
		}
	}
	PQclear(r);
	return rc;
}

int
outbox_reply_record(struct outbox *ob, const struct outbox_row *w, const char *reply,
    double lease)
{
	char slease[32];
	const char *vals[4] = { w->message_id, w->token, reply, slease };
	int rc;

	snprintf(slease, sizeof(slease), "%.3f", lease);
	rc = run_mine(ob, ST_REPLY_RECORD, vals);
	if (rc == OUTBOX_FAIL && strncmp(db_sqlstate(ob->db), "22", 2) == 0)
		rc = OUTBOX_REFUSED;
	return rc;
}

int
outbox_reply_skip(struct outbox *ob, const struct outbox_row *w, const char *state,
    const char *reason, const char *recorded)
{
	const char *vals[5] = { w->message_id, w->token, state, reason, recorded };

	return run_mine(ob, ST_REPLY_SKIP, vals);
}

int
outbox_reply_sent(struct outbox *ob, const struct outbox_row *w, int index,
    const char *wamid, const char *note, double lease, int *done)
{
	char slease[32], sidx[16];
	const char *vals[6] = { w->message_id, w->token, wamid, slease, sidx, note };
	PGresult *r;
	int rc;

	*done = 0;
	snprintf(slease, sizeof(slease), "%.3f", lease);
	snprintf(sidx, sizeof(sidx), "%d", index);
	if ((r = run(ob, ST_REPLY_SENT, vals)) == NULL)
		return OUTBOX_FAIL;
	rc = PQntuples(r) == 1 ? OUTBOX_OK : OUTBOX_LOST;
	if (rc == OUTBOX_OK)
		*done = strcmp(PQgetvalue(r, 0, 0), "done") == 0;
	PQclear(r);
	return rc;
}

int
outbox_retry(struct outbox *ob, const struct outbox_row *w, double delay,
    const char *last_error, int unanswered)
{
	char sdelay[32];
	const char *vals[5] = { w->message_id, w->token, sdelay, last_error,
	    unanswered ? "1" : "0" };

	snprintf(sdelay, sizeof(sdelay), "%.3f", delay);
	return run_mine(ob, ST_RETRY, vals);
}

int
outbox_dead(struct outbox *ob, const struct outbox_row *w, const char *last_error,
    int counted)
{
	const char *vals[4] = { w->message_id, w->token, last_error, counted ? "1" : "0" };

	return run_mine(ob, ST_DEAD, vals);
}

int
outbox_release(struct outbox *ob, const struct outbox_row *w, const char *last_error)
{
	const char *vals[3] = { w->message_id, w->token, last_error };

	return run_mine(ob, ST_RELEASE, vals);
}

int
outbox_stats(struct outbox *ob, struct outbox_stats *st)
{
	static const char *const prefix[1] = { OUTBOX_AUTH_PREFIX };
	PGresult *r;
	int i;

	memset(st, 0, sizeof(*st));
	if ((r = run(ob, ST_STATS, NULL)) == NULL)
		return OUTBOX_FAIL;
	if (PQntuples(r) == 1) {
		st->pending = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		st->due = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
		st->retrying = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
		st->leased = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
		st->dead = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
		st->done_hour = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
		st->oldest_age = strtod(PQgetvalue(r, 0, 6), NULL);
		st->queued = strtoll(PQgetvalue(r, 0, 7), NULL, 10);
	}
	PQclear(r);
	if ((r = run(ob, ST_REFUSED, prefix)) == NULL)
		return OUTBOX_FAIL;
	for (i = 0; i < PQntuples(r) && i < OUTBOX_REFUSED_SHOWN; i++) {
		snprintf(st->refused[i].number, sizeof(st->refused[i].number), "%s",
		    PQgetvalue(r, i, 0));
		st->refused[i].pending = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		st->refused_numbers = strtoll(PQgetvalue(r, i, 2), NULL, 10);
		st->nrefused = i + 1;
	}
	PQclear(r);
	return OUTBOX_OK;
}

int
outbox_requeue(struct outbox *ob, char *const *ids, int nids, long long *n)
{
	PGresult *r;
	const char *vals[1];
	int i;

	*n = 0;
	if (nids == 0) {
		if ((r = run(ob, ST_REQUEUE_ALL, NULL)) == NULL)
			return OUTBOX_FAIL;
		*n = strtoll(PQcmdTuples(r), NULL, 10);
		PQclear(r);
		return OUTBOX_OK;
	}
	for (i = 0; i < nids; i++) {
		vals[0] = ids[i];
		if ((r = run(ob, ST_REQUEUE_ONE, vals)) == NULL)
			return OUTBOX_FAIL;
		*n += strtoll(PQcmdTuples(r), NULL, 10);
		PQclear(r);
	}
	return OUTBOX_OK;
}

int
outbox_listening(const struct outbox *ob)
{
	return ob->listen;
}

int
outbox_socket(const struct outbox *ob)
{
	return db_socket(ob->db);
}

int
outbox_notified(struct outbox *ob)
{
	return db_notifications(ob->db);
}

int
outbox_next_due(struct outbox *ob, double *s)
{
	PGresult *r;

	*s = OUTBOX_NEVER;
	if ((r = run(ob, ST_NEXT_DUE, NULL)) == NULL)
		return OUTBOX_FAIL;
	if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 1), "t") == 0)
		*s = strtod(PQgetvalue(r, 0, 0), NULL);
	PQclear(r);
	return OUTBOX_OK;
}
