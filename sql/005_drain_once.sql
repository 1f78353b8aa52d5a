-- 005_drain_once.sql - what the drainer needs to answer each message once and
-- to serve every business number side by side.
--
--   reply_unanswered  a reply POST that went out and got no HTTP status back
--                     (timeout, connection reset) may have been delivered. The
--                     drainer sends such a reply once more at most: this counts
--                     those POSTs, and a second one dead-letters the row.
--   done rows         a 2xx to the reply means Meta accepted it. When the wamid
--                     in the answer could not be read (cut off, over 64 KiB),
--                     the row is done all the same, reply_message_id NULL and
--                     last_error saying why: sending it again would answer twice.
--   wa_outbox_number_due  the claim serves each phone_number_id apart (its due
--                     rows in next_attempt_at order), so one number's backlog
--                     or pause never takes another number's turn.
--
-- Applied by scripts/migrate; safe to apply twice (the \if guard below).

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = '005') AS wahook_todo \gset
\if :wahook_todo
BEGIN;

ALTER TABLE wa_outbox ADD COLUMN reply_unanswered smallint NOT NULL DEFAULT 0;

-- 004's check wanted a wamid on every answered done row; an answered row now
-- needs a reply that was accepted (replied_at), with its wamid when it could
-- be read.
ALTER TABLE wa_outbox DROP CONSTRAINT IF EXISTS wa_outbox_done_check;
ALTER TABLE wa_outbox ADD CONSTRAINT wa_outbox_done_check CHECK (state <> 'done' OR
    (read_at IS NOT NULL AND (reply_message_id IS NOT NULL OR replied_at IS NOT NULL OR
     reply_state IN ('none', 'window'))));

CREATE INDEX wa_outbox_number_due ON wa_outbox (phone_number_id, next_attempt_at)
    WHERE state = 'pending';

GRANT UPDATE (reply_unanswered) ON wa_outbox TO wahook_drain;

INSERT INTO schema_migrations (version) VALUES ('005');
COMMIT;
\endif
