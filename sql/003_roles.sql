-- 003_roles.sql - least privilege: one group role per program, holding exactly
-- what that program's statements need and nothing else.
--
--   wahook_ingest  wahook.fcgi: the statement in sql/statements/ingest.sql and the
--                  quarantine insert of cgi/responder/store.c. It can add rows and run the
--                  upserts of ingest.sql; it cannot read messages back, touch the
--                  drainer's progress columns, or DELETE anything but the
--                  reaction it replaces.
--   wahook_drain   wahook-drain: claims and records wa_outbox rows (cgi/drainer/outbox.c)
--                  and brings wa_conversations.unread_count down.
--
-- Both are NOLOGIN: roles are cluster-wide, so this file creates them only
-- when missing, and logging in is the operator's choice, e.g.
--     CREATE ROLE wahook LOGIN IN ROLE wahook_ingest;         -- peer auth for
--     CREATE ROLE "wahook-drain" LOGIN IN ROLE wahook_drain;  -- OS users
-- or a password (ALTER ROLE ... PASSWORD) for TCP. Creating roles needs
-- CREATEROLE: run scripts/migrate as the database owner or a superuser.
--
-- Privileges are per column where a statement reads or updates only some
-- columns (RETURNING, ON CONFLICT targets, DO UPDATE SET lists and the
-- EXCLUDED values they read, WHERE clauses of the upserts). A change to sql/statements/ingest.sql that reads or writes
-- another column needs a GRANT in a later migration:
-- tests/integration/test_servers_*.py run the responder as wahook_ingest and fail
-- with "permission denied" until it is there.
--
-- Applied by scripts/migrate; safe to apply twice (the \if guard below).

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = '003') AS wahook_todo \gset
\if :wahook_todo
BEGIN;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wahook_ingest') THEN
        CREATE ROLE wahook_ingest NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wahook_drain') THEN
        CREATE ROLE wahook_drain NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE wahook_ingest IS 'wahook.fcgi: inserts webhooks (sql/003_roles.sql)';
COMMENT ON ROLE wahook_drain IS 'wahook-drain: works wa_outbox (sql/003_roles.sql)';

-- The tables live in the schema the migrations ran in (normally public, where
-- PostgreSQL 15 no longer lets PUBLIC create anything).
SELECT format('GRANT USAGE ON SCHEMA %I TO wahook_ingest, wahook_drain',
              current_schema()) \gexec

-- wahook_ingest -------------------------------------------------------------
-- wa_messages: INSERT ... ON CONFLICT (message_id) DO NOTHING RETURNING message_id
GRANT INSERT ON wa_messages TO wahook_ingest;
GRANT SELECT (message_id) ON wa_messages TO wahook_ingest;

-- wa_outbox: a plain INSERT of new rows; the progress columns are the drainer's
GRANT INSERT (message_id, phone_number_id, sender, wa_timestamp, position)
    ON wa_outbox TO wahook_ingest;

-- wa_conversations: the upsert that bumps unread_count
GRANT INSERT (phone_number_id, sender, profile_name, last_message_at, unread_count)
    ON wa_conversations TO wahook_ingest;
GRANT SELECT (phone_number_id, sender, profile_name, last_message_at, unread_count)
    ON wa_conversations TO wahook_ingest;
GRANT UPDATE (profile_name, last_message_at, unread_count, updated_at)
    ON wa_conversations TO wahook_ingest;

-- wa_reactions: the newest reaction replaces the older one; an empty emoji
-- deletes it (the only DELETE the responder may run)
GRANT INSERT, DELETE ON wa_reactions TO wahook_ingest;
GRANT SELECT (message_id, sender, emoji, reaction_message_id, wa_timestamp)
    ON wa_reactions TO wahook_ingest;
GRANT UPDATE (emoji, reaction_message_id, wa_timestamp) ON wa_reactions TO wahook_ingest;

-- wa_statuses: the upsert that only moves forward
GRANT INSERT ON wa_statuses TO wahook_ingest;
GRANT SELECT (message_id, status, status_rank, wa_timestamp, errors, payload,
                recipient_id, biz_opaque_callback_data)
    ON wa_statuses TO wahook_ingest;
GRANT UPDATE (status, status_rank, wa_timestamp, errors, payload, recipient_id,
              biz_opaque_callback_data, updated_at)
    ON wa_statuses TO wahook_ingest;

-- wa_events and wa_quarantine: bigserial ids
GRANT INSERT (waba_id, field, payload) ON wa_events TO wahook_ingest;
GRANT SELECT (dedupe_key) ON wa_events TO wahook_ingest;
GRANT INSERT (reason, body) ON wa_quarantine TO wahook_ingest;
GRANT USAGE ON SEQUENCE wa_events_id_seq, wa_quarantine_id_seq TO wahook_ingest;

-- wahook_drain --------------------------------------------------------------
-- wa_outbox: claim (SELECT ... FOR UPDATE SKIP LOCKED, which needs UPDATE),
-- record each step, retry, finish, requeue; --status and --metrics count rows
GRANT SELECT ON wa_outbox TO wahook_drain;
GRANT UPDATE (state, attempts, next_attempt_at, lease_until, claim_token, last_error,
              read_at, reply_message_id, replied_at, done_at, requeued_at)
    ON wa_outbox TO wahook_drain;

-- wa_conversations: unread_count comes down when a message is marked read
GRANT SELECT (phone_number_id, sender, unread_count) ON wa_conversations TO wahook_drain;
GRANT UPDATE (unread_count, updated_at) ON wa_conversations TO wahook_drain;

INSERT INTO schema_migrations (version) VALUES ('003');
COMMIT;
\endif
