-- 002_drain.sql - what wahook-drain needs beyond 001: claim tokens, a requeue
-- clock, and indexes for its queries.
--
-- How the drainer uses wa_outbox (cgi/drainer/outbox.c has the statements):
--   claim   the head row of each conversation (no earlier pending row), due and
--           not leased, FOR UPDATE SKIP LOCKED, gets lease_until = now() + lease
--           and a fresh claim_token, in one short autocommit statement;
--   record  every later write names (message_id, claim_token): a drainer whose
--           lease ran out and whose row another drainer claimed since updates
--           nothing, so it can never record over the other's work;
--   finish  done or dead clears lease_until and claim_token.
-- No transaction is ever held open across a Graph API call.
--
-- Applied by scripts/migrate; safe to apply twice (the \if guard below).

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = '002') AS wahook_todo \gset
\if :wahook_todo
BEGIN;

-- Set by each claim (gen_random_uuid(), built into PostgreSQL 13+), cleared
-- when the row is released, retried, done or dead. NULL: nobody holds the row.
ALTER TABLE wa_outbox ADD COLUMN claim_token uuid;

-- When an operator last ran `wahook-drain --requeue-dead` on the row. The age
-- limit (WAHOOK_MAX_AGE) counts from here when set, else from received_at, so
-- a requeued row gets a fresh day instead of going dead again at once.
ALTER TABLE wa_outbox ADD COLUMN requeued_at timestamptz;

-- The claim's "no earlier pending row in this conversation" probe is served
-- by 001's partial index wa_outbox_conversation (its key is the order key, and
-- only pending rows are in it), and the due scan by wa_outbox_due: no new index.

-- --status/--metrics ("done in the last hour") and scripts/prune (finished
-- rows past the retention) look finished rows up by when they finished.
CREATE INDEX wa_outbox_done ON wa_outbox (done_at) WHERE state = 'done';

INSERT INTO schema_migrations (version) VALUES ('002');
COMMIT;
\endif
