-- ingest.sql - the one statement wahook.fcgi runs per batch of webhooks (not a
-- migration: it is compiled into the responder, and `make bench` runs it through
-- pgbench with one webhook per transaction, the way the responder ran before it
-- batched).
--
-- Group commit: every webhook a process has read, verified and parsed while the
-- previous statement committed goes into this one statement, so they share one
-- snapshot, one commit and one WAL flush. The C side (cgi/store.c) passes the
-- bodies once, as one JSON array ($1, body k at index k), and one array per
-- column holding every webhook's rows; each stored jsonb object is taken from
-- $1 by its path, whose first element is its webhook's index, so nothing is
-- re-serialised. Messages go in ON CONFLICT DO NOTHING; only the ones inserted
-- now (fresh) get an outbox row, bump their conversation or touch reactions.
-- A message id sent twice in one batch (Meta's retry racing its original) is
-- fresh once, for its first copy. Rows are written in key order (message id,
-- conversation, status id), so two batches committing at once lock their rows in
-- the same order. It runs as a single implicit transaction: its success is the
-- COMMIT.
--
--  $1  bodies (jsonb: an array of the batch's webhooks)
--  $2..$18  per message: message_id, phone_number_id, display_phone_number, waba_id,
--           field, sender, recipient, type, ts (bigint), text_body, profile_name,
--           context_id, cls (answer|reaction|system|...|echo), react_to, emoji, path,
--           position (1-based place in its webhook)
--  $19..$26 per status: id, phone_number_id, recipient_id, status, rank, ts,
--           biz_opaque_callback_data, path
--  $27..$29 per event: field, waba_id, path
-- Returns the 1-based position (in the $2.. arrays) of every message inserted now,
-- and sends one NOTIFY wahook when there is any (the note CTE below).
--
-- Two statements are made from this file: "full" (all of it, $1..$29) and "lean"
-- (without the BEGIN full / END full part, $1..$18), for batches with no
-- reaction, status or event. Same rows, same transaction; lean spares the
-- executor five table writes that would get empty arrays (pgbench: 16-60 % more
-- transactions per second for a one-message webhook).
WITH body AS MATERIALIZED (SELECT $1::jsonb AS j),
m AS (
  SELECT t.*, b.j #> t.path::text[] AS obj
  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
              $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[],
              $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
              $18::integer[])
       WITH ORDINALITY AS t(message_id, phone_number_id, display_phone_number, waba_id,
            field, sender, recipient, type, ts, text_body, profile_name, context_id,
            cls, react_to, emoji, path, position, pos),
       body b
),
ins AS (
  INSERT INTO wa_messages (message_id, phone_number_id, display_phone_number, waba_id,
       field, sender, recipient, type, wa_timestamp, text_body, profile_name,
       context_message_id, answered, payload)
  SELECT DISTINCT ON (message_id) message_id, phone_number_id, display_phone_number,
       waba_id, field, sender, recipient, type, to_timestamp(ts), text_body,
       profile_name, context_id, cls = 'answer', obj
  FROM m ORDER BY message_id, pos
  ON CONFLICT (message_id) DO NOTHING
  RETURNING message_id
),
fresh AS (
  SELECT DISTINCT ON (message_id) m.* FROM m JOIN ins USING (message_id)
  ORDER BY message_id, pos
),
ob AS (
  INSERT INTO wa_outbox (message_id, phone_number_id, sender, wa_timestamp, position)
  SELECT message_id, phone_number_id, sender, to_timestamp(ts), position
  FROM fresh WHERE cls = 'answer' ORDER BY message_id
),
conv AS (
  INSERT INTO wa_conversations AS c (phone_number_id, sender, profile_name,
       last_message_at, unread_count)
  SELECT phone_number_id, sender,
       (array_agg(profile_name ORDER BY ts DESC, pos DESC)
            FILTER (WHERE profile_name IS NOT NULL))[1],
       to_timestamp(max(ts)), count(*) FILTER (WHERE cls = 'answer')
  FROM fresh WHERE cls <> 'echo'
  GROUP BY phone_number_id, sender
  ORDER BY phone_number_id, sender
  ON CONFLICT (phone_number_id, sender) DO UPDATE SET
       profile_name = coalesce(EXCLUDED.profile_name, c.profile_name),
       last_message_at = greatest(c.last_message_at, EXCLUDED.last_message_at),
       unread_count = c.unread_count + EXCLUDED.unread_count,
       updated_at = now()
),
-- NOTIFY wahook, once per batch that stored a new message (payload: how many),
-- delivered to every LISTENer when this statement commits and never if it
-- fails; statuses and retries alone notify nobody. wahook-drain --for listens
-- instead of polling. Referenced by the final SELECT, or it would not run.
note AS MATERIALIZED (
  SELECT pg_notify('wahook', count(*)::text) FROM fresh HAVING count(*) > 0
)
-- BEGIN full: reactions, statuses and events. A webhook with none of them
-- (most: user messages only) runs the statement without this part
-- (store.c: "lean"), which spares PostgreSQL five empty table writes.
, rx AS (
  SELECT DISTINCT ON (react_to, sender) react_to, sender, phone_number_id,
       coalesce(emoji, '') AS emoji, message_id, to_timestamp(ts) AS at
  FROM fresh WHERE type = 'reaction' AND cls = 'reaction' AND react_to IS NOT NULL
  ORDER BY react_to, sender, ts DESC, pos DESC
),
rx_set AS (
  INSERT INTO wa_reactions AS r (message_id, sender, phone_number_id, emoji,
       reaction_message_id, wa_timestamp)
  SELECT react_to, sender, phone_number_id, emoji, message_id, at FROM rx
  WHERE emoji <> ''
  ON CONFLICT (message_id, sender) DO UPDATE SET emoji = EXCLUDED.emoji,
       reaction_message_id = EXCLUDED.reaction_message_id,
       wa_timestamp = EXCLUDED.wa_timestamp
  WHERE r.wa_timestamp <= EXCLUDED.wa_timestamp
),
rx_del AS (
  DELETE FROM wa_reactions r USING rx
  WHERE rx.emoji = '' AND r.message_id = rx.react_to AND r.sender = rx.sender
    AND r.wa_timestamp <= rx.at
),
st AS (
  INSERT INTO wa_statuses AS s (message_id, phone_number_id, recipient_id, status,
       status_rank, wa_timestamp, errors, biz_opaque_callback_data, payload)
  SELECT DISTINCT ON (t.id) t.id, t.pnid, t.recipient, t.status, t.rank,
       to_timestamp(t.ts), (b.j #> t.path::text[]) -> 'errors', t.cb,
       b.j #> t.path::text[]
  FROM unnest($19::text[], $20::text[], $21::text[], $22::text[], $23::smallint[],
              $24::bigint[], $25::text[], $26::text[])
       WITH ORDINALITY AS t(id, pnid, recipient, status, rank, ts, cb, path, pos),
       body b
  ORDER BY t.id, t.rank DESC, t.ts DESC, t.pos DESC
  ON CONFLICT (message_id) DO UPDATE SET status = EXCLUDED.status,
       status_rank = EXCLUDED.status_rank, wa_timestamp = EXCLUDED.wa_timestamp,
       errors = EXCLUDED.errors, payload = EXCLUDED.payload,
       recipient_id = coalesce(EXCLUDED.recipient_id, s.recipient_id),
       biz_opaque_callback_data = coalesce(EXCLUDED.biz_opaque_callback_data,
                                           s.biz_opaque_callback_data),
       updated_at = now()
  WHERE s.status_rank <> 9 AND EXCLUDED.status_rank > s.status_rank
),
ev AS (
  INSERT INTO wa_events (waba_id, field, payload)
  SELECT t.waba, t.field, b.j #> t.path::text[]
  FROM unnest($27::text[], $28::text[], $29::text[]) AS t(field, waba, path), body b
  ORDER BY t.field, t.waba, t.path
  ON CONFLICT (dedupe_key) DO NOTHING
)
-- END full
SELECT pos FROM fresh, note;
