-- 004_reply.sql - the business decides each reply (a program or a URL): the
-- decided reply is recorded in wa_outbox before the first Graph call, so a
-- failed send is retried from the record and the program never runs twice for
-- a message (except when a drainer dies while it runs: at least once).
--
-- A row's reply, step by step:
--   reply_state NULL       not decided yet (the program has not answered)
--               'recorded' decided: reply holds the messages, reply_sent of
--                          them went out (their wamids in reply_message_ids)
--               'sent'     every message of the reply went out
--               'none'     no reply: the program printed nothing, the URL
--                          answered 204 or an empty body, or WAHOOK_REPLY=none
--               'window'   not answered: older than WAHOOK_REPLY_WINDOW by
--                          Meta's timestamp (reply_reason says how old)
-- A fixed-text reply (WAHOOK_REPLY_TEXT) is 'sent' with its one message.
--
-- Applied by scripts/migrate; safe to apply twice (the \if guard below).

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = '004') AS wahook_todo \gset
\if :wahook_todo
BEGIN;

-- The decided reply: a JSON array of complete Graph API message bodies
-- (messaging_product, recipient_type, to, context added), in send order.
ALTER TABLE wa_outbox ADD COLUMN reply jsonb;
ALTER TABLE wa_outbox ADD COLUMN reply_state text
    CHECK (reply_state IN ('recorded', 'sent', 'none', 'window'));
ALTER TABLE wa_outbox ADD COLUMN reply_sent smallint NOT NULL DEFAULT 0;
-- wamids of the reply's messages sent so far; reply_message_id keeps the
-- first (it joins wa_statuses as before).
ALTER TABLE wa_outbox ADD COLUMN reply_message_ids text[];
-- Why a row is done without a reply ('window: 90061 s after the message ...').
ALTER TABLE wa_outbox ADD COLUMN reply_reason text;

-- done used to mean "read and answered"; now a row can also be done without a
-- reply, when nobody is to be answered ('none') or the window has closed.
ALTER TABLE wa_outbox DROP CONSTRAINT IF EXISTS wa_outbox_check;
ALTER TABLE wa_outbox ADD CONSTRAINT wa_outbox_done_check CHECK (state <> 'done' OR
    (read_at IS NOT NULL AND (reply_message_id IS NOT NULL OR
     reply_state IN ('none', 'window'))));

-- The drainer records the reply, and reads what its program is told about the
-- message (and nothing else of wa_messages).
GRANT UPDATE (reply, reply_state, reply_sent, reply_message_ids, reply_reason)
    ON wa_outbox TO wahook_drain;
GRANT SELECT (message_id, payload, type, display_phone_number, profile_name)
    ON wa_messages TO wahook_drain;

INSERT INTO schema_migrations (version) VALUES ('004');
COMMIT;
\endif
