/*
 * ops.c - the drainer's record for alerting (see ops.h, sql/008_ops.sql). The
 * last inbound time per number is never read from all of wa_messages: the
 * record keeps it, and both the note and --metrics add only the tail received
 * since the newest time on record (index wa_messages_received_at), less ten
 * minutes for transactions that committed late.
 */
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "db.h"

#define STR_(x) #x
#define STR(x) STR_(x)

struct ops {
	struct db	*db;
	char		 err[DB_ERR_MAX];
};

/* the messages received since the record's newest time, per number */
#define TAIL \
	"tail AS (SELECT phone_number_id, max(received_at) AS at FROM wa_messages" \
	"  WHERE received_at > (SELECT coalesce(max(last_inbound_at), '-infinity')" \
	"    - interval '10 minutes' FROM wa_ops_number)" \
	"  GROUP BY phone_number_id)"

enum stmt { ST_NOTE, ST_NUMBERS, ST_HOSTS, ST_QUARANTINE, NSTMTS };

static const struct db_stmt stmts[NSTMTS] = {
	/*
	 * $1 host, $2 1 when a run starts, $3 its exit code (NULL while it
	 * runs), $4 a JSON array of the numbers whose token was refused. Rows
	 * are written in key order: two hosts noting at once never deadlock.
	 */
	{ "ops_note", 4,
	  "WITH " TAIL ","
	  " ref AS (SELECT DISTINCT jsonb_array_elements_text($4::jsonb) AS phone_number_id),"
	  " nums AS (INSERT INTO wa_ops_number AS n"
	  "   (phone_number_id, last_inbound_at, token_refused_at)"
	  "  SELECT coalesce(tail.phone_number_id, ref.phone_number_id), tail.at,"
	  "   CASE WHEN ref.phone_number_id IS NOT NULL THEN now() END"
	  "  FROM tail FULL JOIN ref ON ref.phone_number_id = tail.phone_number_id"
	  "  ORDER BY 1"
	  "  ON CONFLICT (phone_number_id) DO UPDATE SET"
	  "   last_inbound_at = greatest(n.last_inbound_at, EXCLUDED.last_inbound_at),"
	  "   token_refused_at = coalesce(EXCLUDED.token_refused_at, n.token_refused_at))"
	  " INSERT INTO wa_ops_drainer AS d (host, started_at, alive_at, finished_at, exit_code)"
	  " VALUES ($1, now(), now(), CASE WHEN $3::int IS NOT NULL THEN now() END, $3::int)"
	  " ON CONFLICT (host) DO UPDATE SET"
	  "  started_at = CASE WHEN $2::int = 1 THEN now() ELSE d.started_at END,"
	  "  alive_at = now(),"
	  "  finished_at = CASE WHEN $3::int IS NOT NULL THEN now() ELSE d.finished_at END,"
	  "  exit_code = coalesce($3::int, d.exit_code)", 1 },
	{ "ops_numbers", 0,
	  "WITH " TAIL
	  " SELECT phone_number_id,"
	  "  coalesce(extract(epoch FROM greatest(n.last_inbound_at, tail.at))::float8, 0),"
	  "  coalesce(extract(epoch FROM n.token_refused_at)::float8, 0),"
	  "  count(*) OVER ()"
	  " FROM wa_ops_number n FULL JOIN tail USING (phone_number_id)"
	  " ORDER BY phone_number_id LIMIT " STR(OPS_NUMBERS_MAX), 1 },
	{ "ops_hosts", 0,
	  "SELECT host, extract(epoch FROM started_at)::float8,"
	  "  extract(epoch FROM alive_at)::float8,"
	  "  coalesce(extract(epoch FROM finished_at)::float8, 0), coalesce(exit_code, -1)"
	  " FROM wa_ops_drainer ORDER BY alive_at DESC LIMIT " STR(OPS_HOSTS_MAX), 1 },
	/* the count reads the primary key; the newest is its last entry */
	{ "ops_quarantine", 0,
	  "SELECT (SELECT count(*) FROM wa_quarantine),"
	  "  coalesce((SELECT extract(epoch FROM received_at)::float8 FROM wa_quarantine"
	  "   ORDER BY id DESC LIMIT 1), 0)", 1 },
};

struct ops *
ops_open(const char *conninfo, double timeout, int prepare)
{
	struct db_opts o = {
		.conninfo = conninfo,
		.app_name = "wahook-drain",
		.stmts = stmts,
		.nstmts = NSTMTS,
		.timeout = timeout,
		.connect_timeout = 5,
		.prepare = (enum db_prepare)prepare,
	};
	struct ops *op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return NULL;
	if ((op->db = db_new(&o)) == NULL) {
		free(op);
		return NULL;
	}
	return op;
}

void
ops_close(struct ops *op)
{
	if (op == NULL)
		return;
	db_free(op->db);
	free(op);
}

const char *
ops_error(const struct ops *op)
{
	return op->err;
}

/* Runs stmt; the result (caller PQclears it), or NULL with op->err set. */
static PGresult *
run(struct ops *op, enum stmt stmt, const char *const *vals)
{
	PGresult *r = NULL;

	if (db_run(op->db, stmt, vals, NULL, NULL, 0, &r) != DB_OK) {
		snprintf(op->err, sizeof(op->err), "%s", db_error(op->db));
		return NULL;
	}
	return r;
}

int
ops_note(struct ops *op, const char *host, int starting, int exit_code,
    char *const *refused, int nrefused)
{
	json_object *a = NULL;
	PGresult *r = NULL;
	const char *vals[4];
	char scode[16];
	int i, rc = -1;

	if ((a = json_object_new_array()) == NULL)
		goto oom;
	for (i = 0; i < nrefused; i++)
		if (json_object_array_add(a, json_object_new_string(refused[i])) != 0)
			goto oom;
	snprintf(scode, sizeof(scode), "%d", exit_code);
	vals[0] = host;
	vals[1] = starting ? "1" : "0";
	vals[2] = exit_code >= 0 ? scode : NULL;
	if ((vals[3] = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN)) == NULL)
		goto oom;
	if ((r = run(op, ST_NOTE, vals)) == NULL)
		goto fail;
	rc = 0;
	goto fail;
oom:
	snprintf(op->err, sizeof(op->err), "ops_note: out of memory");
fail:
	PQclear(r);
	json_object_put(a);
	db_disconnect(op->db);
	return rc;
}

static void
copy_name(char *dst, const char *src)
{
	snprintf(dst, OPS_NAME_MAX + 1, "%s", src);
}

int
ops_stats(struct ops *op, struct ops_stats *st)
{
	PGresult *r = NULL;
	int i, n, rc = -1;

	memset(st, 0, sizeof(*st));
	if ((r = run(op, ST_NUMBERS, NULL)) == NULL)
		goto fail;
	n = PQntuples(r);
	if (n > 0 && (st->numbers = calloc((size_t)n, sizeof(*st->numbers))) == NULL) {
		snprintf(op->err, sizeof(op->err), "ops_stats: out of memory");
		goto fail;
	}
	for (i = 0; i < n; i++) {
		copy_name(st->numbers[i].number, PQgetvalue(r, i, 0));
		st->numbers[i].last_inbound = strtod(PQgetvalue(r, i, 1), NULL);
		st->numbers[i].refused_at = strtod(PQgetvalue(r, i, 2), NULL);
		st->numbers_total = strtoll(PQgetvalue(r, i, 3), NULL, 10);
	}
	st->nnumbers = n;
	PQclear(r);
	if ((r = run(op, ST_HOSTS, NULL)) == NULL)
		goto fail;
	for (i = 0; i < PQntuples(r) && i < OPS_HOSTS_MAX; i++) {
		copy_name(st->hosts[i].host, PQgetvalue(r, i, 0));
		st->hosts[i].started = strtod(PQgetvalue(r, i, 1), NULL);
		st->hosts[i].alive = strtod(PQgetvalue(r, i, 2), NULL);
		st->hosts[i].finished = strtod(PQgetvalue(r, i, 3), NULL);
		st->hosts[i].exit_code = (int)strtol(PQgetvalue(r, i, 4), NULL, 10);
		st->nhosts = i + 1;
	}
	PQclear(r);
	if ((r = run(op, ST_QUARANTINE, NULL)) == NULL)
		goto fail;
	if (PQntuples(r) == 1) {
		st->quarantined = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		st->quarantine_newest = strtod(PQgetvalue(r, 0, 1), NULL);
	}
	rc = 0;
fail:
	PQclear(r);
	db_disconnect(op->db);
	return rc;
}

void
ops_stats_free(struct ops_stats *st)
{
	free(st->numbers);
	memset(st, 0, sizeof(*st));
}
