-- ingest.sql - the one statement wahook.fcgi runs per batch of webhooks (not a
-- migration: it is compiled into the responder, and `make bench` runs it through
-- pgbench with one webhook per transaction, the way the responder ran before it
-- batched).
--
-- Group commit: every webhook a process has read, verified and parsed while the
-- previous statement committed goes into this one statement, so they share one
-- snapshot, one commit and one WAL flush. The C side (cgi/responder/store.c) passes the
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
-- People and conversations (sql/007_people.sql): sender is the phone number
-- when Meta sent one, else the business-scoped user id (BSUID); conv is the
-- conversation the C side derived (the group for a group message, else the
-- BSUID, else the phone number), which a recorded change of identity
-- (wa_identity_links) maps back to the conversation it continues.
--
--  $1  bodies (jsonb: an array of the batch's webhooks)
--  $2..$24  per message: message_id, phone_number_id, display_phone_number, waba_id,
--           field, sender, recipient, type, ts (bigint), text_body, profile_name,
--           context_id, cls (answer|reaction|system|...|echo), react_to, emoji, path,
--           position (1-based place in its webhook), user_id, parent_user_id,
--           username, group_id, conv, new_id (a system message's new identity)
--  $25..$34 per status: id, phone_number_id, recipient_id, status, rank, ts,
--           biz_opaque_callback_data, path, recipient_user_id,
--           recipient_parent_user_id
--  $35..$37 per event: field, waba_id, path
--  $38..$40 per broken item: path, where ("entry[0].changes[0].messages[1]"), reason
-- Returns the 1-based position (in the $2.. arrays) of every message inserted now,
-- and sends one NOTIFY wahook when there is any (the note CTE below).
--
-- Two statements are made from this file: "full" (all of it, $1..$40) and "lean"
-- (without the BEGIN full / END full part, $1..$24), for batches with no
-- reaction, status, event, change of identity or broken item. Same rows, same
-- transaction; lean spares the executor the table writes that would get empty
-- arrays (pgbench: 16-60 % more transactions per second for a one-message
-- webhook).
WITH body AS MATERIALIZED (SELECT $1::jsonb AS j,
  set_config('synchronous_commit', 'on', true) AS durable),  -- store.c says why
t AS (
  SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
              $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[],
              $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
              $17::text[], $18::integer[], $19::text[], $20::text[], $21::text[],
              $22::text[], $23::text[], $24::text[])
       WITH ORDINALITY AS t(message_id, phone_number_id, display_phone_number, waba_id,
            field, sender, recipient, type, ts, text_body, profile_name, context_id,
            cls, react_to, emoji, path, position, user_id, parent_user_id, username,
            group_id, conv, new_id, pos)
),
m AS (
  SELECT t.*, b.j #> t.path::text[] AS obj, coalesce(l.conversation, t.conv) AS conversation
  FROM t CROSS JOIN body b
  -- the person's one key (the BSUID, else the phone number), joined: a
  -- subquery per row cost far more (doc/performance.md)
  LEFT JOIN wa_identity_links l ON t.group_id IS NULL AND t.cls <> 'echo'
       AND l.phone_number_id = t.phone_number_id
       AND l.new_id = coalesce(t.user_id, t.sender)
),
ins AS (
  INSERT INTO wa_messages (message_id, phone_number_id, display_phone_number, waba_id,
       field, sender, recipient, type, wa_timestamp, text_body, profile_name,
       context_message_id, answered, payload, user_id, parent_user_id, username,
       group_id)
  SELECT DISTINCT ON (message_id) message_id, phone_number_id, display_phone_number,
       waba_id, field, sender, recipient, type, to_timestamp(ts), text_body,
       profile_name, context_id, cls = 'answer', obj, user_id, parent_user_id,
       username, group_id
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
  SELECT message_id, phone_number_id, conversation, to_timestamp(ts), position
  FROM fresh WHERE cls = 'answer' ORDER BY message_id
),
conv AS (
  INSERT INTO wa_conversations AS c (phone_number_id, sender, profile_name,
       last_message_at, unread_count, user_id, username, phone)
  SELECT phone_number_id, conversation,
       (array_agg(profile_name ORDER BY ts DESC, pos DESC)
            FILTER (WHERE profile_name IS NOT NULL AND group_id IS NULL))[1],
       to_timestamp(max(ts)), count(*) FILTER (WHERE cls = 'answer'),
       (array_agg(user_id ORDER BY ts DESC, pos DESC)
            FILTER (WHERE user_id IS NOT NULL AND group_id IS NULL))[1],
       (array_agg(username ORDER BY ts DESC, pos DESC)
            FILTER (WHERE username IS NOT NULL AND group_id IS NULL))[1],
       (array_agg(sender ORDER BY ts DESC, pos DESC)
            FILTER (WHERE sender IS DISTINCT FROM user_id AND group_id IS NULL))[1]
  FROM fresh WHERE cls <> 'echo'
  GROUP BY phone_number_id, conversation
  ORDER BY phone_number_id, conversation
  ON CONFLICT (phone_number_id, sender) DO UPDATE SET
       profile_name = coalesce(EXCLUDED.profile_name, c.profile_name),
       last_message_at = greatest(c.last_message_at, EXCLUDED.last_message_at),
       unread_count = c.unread_count + EXCLUDED.unread_count,
       user_id = coalesce(EXCLUDED.user_id, c.user_id),
       username = coalesce(EXCLUDED.username, c.username),
       phone = coalesce(EXCLUDED.phone, c.phone),
       updated_at = now()
),
-- NOTIFY wahook, once per batch that stored a new message (payload: how many),
-- delivered to every LISTENer when this statement commits and never if it
-- fails; statuses and retries alone notify nobody. wahook-drain --for listens
-- instead of polling. Referenced by the final SELECT, or it would not run.
note AS MATERIALIZED (
  SELECT pg_notify('wahook', count(*)::text) FROM fresh HAVING count(*) > 0
)
-- BEGIN full: reactions, statuses, events, changes of identity and broken
-- items. A webhook with none of them (most: user messages only) runs the
-- statement without this part (store.c: "lean"), which spares PostgreSQL the
-- empty table writes.
, rx AS (
  SELECT DISTINCT ON (react_to, who) react_to, who, phone_number_id,
       coalesce(emoji, '') AS emoji, message_id, to_timestamp(ts) AS at
  FROM (SELECT fresh.*, coalesce(user_id, sender) AS who FROM fresh) f
  WHERE type = 'reaction' AND cls = 'reaction' AND react_to IS NOT NULL
  ORDER BY react_to, who, ts DESC, pos DESC
),
rx_set AS (
  INSERT INTO wa_reactions AS r (message_id, sender, phone_number_id, emoji,
       reaction_message_id, wa_timestamp)
  SELECT react_to, who, phone_number_id, emoji, message_id, at FROM rx
  WHERE emoji <> ''
  ON CONFLICT (message_id, sender) DO UPDATE SET emoji = EXCLUDED.emoji,
       reaction_message_id = EXCLUDED.reaction_message_id,
       wa_timestamp = EXCLUDED.wa_timestamp
  WHERE r.wa_timestamp <= EXCLUDED.wa_timestamp
),
rx_del AS (
  DELETE FROM wa_reactions r USING rx
  WHERE rx.emoji = '' AND r.message_id = rx.react_to AND r.sender = rx.who
    AND r.wa_timestamp <= rx.at
),
-- A person's new phone number or BSUID continues the conversation they had:
-- the one the system message belongs to, found by its BSUID, else by the
-- BSUID last seen with its phone number.
ln AS (
  INSERT INTO wa_identity_links (phone_number_id, new_id, conversation, message_id)
  SELECT DISTINCT ON (f.phone_number_id, f.new_id) f.phone_number_id, f.new_id,
       CASE WHEN f.conversation <> f.conv OR f.user_id IS NOT NULL THEN f.conversation
            ELSE coalesce((SELECT o.user_id FROM wa_messages o
                           WHERE o.phone_number_id = f.phone_number_id
                             AND o.sender = f.sender AND o.user_id IS NOT NULL
                           ORDER BY o.wa_timestamp DESC LIMIT 1), f.conversation)
       END,
       f.message_id
  FROM fresh f
  WHERE f.new_id IS NOT NULL AND f.group_id IS NULL AND f.new_id <> f.conversation
  ORDER BY f.phone_number_id, f.new_id, f.ts DESC, f.pos DESC
  ON CONFLICT (phone_number_id, new_id) DO NOTHING
),
st AS (
  INSERT INTO wa_statuses AS s (message_id, phone_number_id, recipient_id, status,
       status_rank, wa_timestamp, errors, biz_opaque_callback_data, payload,
       recipient_user_id, recipient_parent_user_id)
  SELECT DISTINCT ON (t.id) t.id, t.pnid, t.recipient, t.status, t.rank,
       to_timestamp(t.ts), (b.j #> t.path::text[]) -> 'errors', t.cb,
       b.j #> t.path::text[], t.ruser, t.rparent
  FROM unnest($25::text[], $26::text[], $27::text[], $28::text[], $29::smallint[],
              $30::bigint[], $31::text[], $32::text[], $33::text[], $34::text[])
       WITH ORDINALITY AS t(id, pnid, recipient, status, rank, ts, cb, path, ruser,
            rparent, pos),
       body b
  ORDER BY t.id, t.rank DESC, t.ts DESC, t.pos DESC
  ON CONFLICT (message_id) DO UPDATE SET status = EXCLUDED.status,
       status_rank = EXCLUDED.status_rank, wa_timestamp = EXCLUDED.wa_timestamp,
       errors = EXCLUDED.errors, payload = EXCLUDED.payload,
       recipient_id = coalesce(EXCLUDED.recipient_id, s.recipient_id),
       recipient_user_id = coalesce(EXCLUDED.recipient_user_id, s.recipient_user_id),
       recipient_parent_user_id = coalesce(EXCLUDED.recipient_parent_user_id,
                                           s.recipient_parent_user_id),
       biz_opaque_callback_data = coalesce(EXCLUDED.biz_opaque_callback_data,
                                           s.biz_opaque_callback_data),
       updated_at = now()
  WHERE s.status_rank <> 9 AND EXCLUDED.status_rank > s.status_rank
),
ev AS (
  INSERT INTO wa_events (waba_id, field, payload)
  SELECT t.waba, t.field, b.j #> t.path::text[]
  FROM unnest($35::text[], $36::text[], $37::text[]) AS t(field, waba, path), body b
  ORDER BY t.field, t.waba, t.path
  ON CONFLICT (dedupe_key) DO NOTHING
),
-- A broken item is kept alone, as a webhook of its own that scripts/replay can
-- post again: the envelope around it (object, the entry's id, the change's
-- field and metadata) with nothing but that item in it. path is
-- {webhook, entry, i[, changes, j[, value, list, k]]}, or {webhook} alone for a
-- body with more broken items than are kept one by one: then it is kept whole.
q AS (
  SELECT q.reason, q.where_, b.j -> ((q.path::text[])[1]::int) AS w,
       q.path::text[] AS p, cardinality(q.path::text[]) AS n
  FROM unnest($38::text[], $39::text[], $40::text[]) AS q(path, where_, reason), body b
),
qc AS (
  SELECT q.*, CASE WHEN n = 8 THEN (w #> p[2:5]) || jsonb_build_object('value',
           ((w #> p[2:6]) - 'messages' - 'statuses' - 'message_echoes')
           || jsonb_build_object(p[7], jsonb_build_array(w #> p[2:8])))
         ELSE w #> p[2:5] END AS change
  FROM q
),
qu AS (
  INSERT INTO wa_quarantine (reason, body, path)
  SELECT coalesce(where_ || ': ', '') || reason,
       convert_to(CASE WHEN n = 1 THEN w
           ELSE jsonb_build_object('object', w -> 'object', 'entry',
           jsonb_build_array(CASE WHEN n = 3 THEN w #> p[2:3]
               ELSE ((w #> p[2:3]) - 'changes')
                    || jsonb_build_object('changes', jsonb_build_array(change))
               END)) END::text, 'UTF8'),
       where_
  FROM qc
)
-- END full
SELECT pos FROM fresh, note;
