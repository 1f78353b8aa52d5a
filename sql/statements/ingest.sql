-- ingest.sql - the one statement wahook.fcgi runs per webhook (not a migration:
-- it is compiled into the responder, and `make bench` runs it through pgbench).
--
-- The C side (cgi/store.c) passes the raw body once ($1) and one array per column;
-- each stored jsonb object is taken from the body by its path, so nothing is
-- re-serialised. Messages go in ON CONFLICT DO NOTHING; only the ones inserted
-- now (fresh) get an outbox row, bump their conversation or touch reactions.
-- It runs as a single implicit transaction: its success is the COMMIT.
--
--  $1  body (jsonb)
--  $2..$17  per message: message_id, phone_number_id, display_phone_number, waba_id,
--           field, sender, recipient, type, ts (bigint), text_body, profile_name,
--           context_id, cls (answer|reaction|system|...|echo), react_to, emoji, path
--  $18..$25 per status: id, phone_number_id, recipient_id, status, rank, ts,
--           biz_opaque_callback_data, path
--  $26..$28 per event: field, waba_id, path
-- Returns the 1-based position (in the $2.. arrays) of every message inserted now.
--
-- Two statements are made from this file: "full" (all of it, $1..$28) and "lean"
-- (without the BEGIN full / END full part, $1..$17), for webhooks with no
-- reaction, status or event. Same rows, same transaction; lean spares the
-- executor five table writes that would get empty arrays (pgbench: 16-60 % more
-- transactions per second for a one-message webhook).
WITH body AS MATERIALIZED (SELECT $1::jsonb AS j),
m AS (
  SELECT t.*, b.j #> t.path::text[] AS obj
  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
              $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[],
              $13::text[], $14::text[], $15::text[], $16::text[], $17::text[])
       WITH ORDINALITY AS t(message_id, phone_number_id, display_phone_number, waba_id,
            field, sender, recipient, type, ts, text_body, profile_name, context_id,
            cls, react_to, emoji, path, pos),
       body b
),
ins AS (
  INSERT INTO wa_messages (message_id, phone_number_id, display_phone_number, waba_id,
       field, sender, recipient, type, wa_timestamp, text_body, profile_name,
       context_message_id, answered, payload)
  SELECT message_id, phone_number_id, display_phone_number, waba_id, field, sender,
       recipient, type, to_timestamp(ts), text_body, profile_name, context_id,
       cls = 'answer', obj
  FROM m ORDER BY pos
  ON CONFLICT (message_id) DO NOTHING
  RETURNING message_id
),
fresh AS (SELECT m.* FROM m JOIN ins USING (message_id)),
ob AS (
  INSERT INTO wa_outbox (message_id, phone_number_id, sender, wa_timestamp, position)
  SELECT message_id, phone_number_id, sender, to_timestamp(ts), pos
  FROM fresh WHERE cls = 'answer'
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
  ON CONFLICT (phone_number_id, sender) DO UPDATE SET
       profile_name = coalesce(EXCLUDED.profile_name, c.profile_name),
       last_message_at = greatest(c.last_message_at, EXCLUDED.last_message_at),
       unread_count = c.unread_count + EXCLUDED.unread_count,
       updated_at = now()
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
  FROM unnest($18::text[], $19::text[], $20::text[], $21::text[], $22::smallint[],
              $23::bigint[], $24::text[], $25::text[])
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
  FROM unnest($26::text[], $27::text[], $28::text[]) AS t(field, waba, path), body b
  ON CONFLICT (dedupe_key) DO NOTHING
)
-- END full
SELECT pos FROM fresh;
