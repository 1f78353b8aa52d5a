-- 008_ops.sql - what alerting reads beyond the queues themselves: when each
-- business number last received a message, when its access token was last
-- refused, and when each host's drainer last ran (wahook-drain --metrics).
--
-- Both tables are small (one row per number, one per host) and written by the
-- drainer, never by the responder: the ingest statement stays as it was. Each
-- drainer run ends (and a long --for run, every minute) with one statement
-- (cgi/drainer/ops.c) that
--   - folds the messages received since the newest time on record into
--     wa_ops_number.last_inbound_at (through wa_messages_received_at: only the
--     new rows are read, so it costs the same on a million-row table);
--   - stamps token_refused_at of every number whose token the Graph API refused
--     in that run (either lane: replies or media);
--   - upserts the host's row in wa_ops_drainer.
-- --metrics reads these rows plus the same tail of wa_messages, so a number's
-- last message shows even when no drainer has run since. The rows outlive
-- scripts/prune: a number that went quiet a month ago is still known.
--
-- Applied by scripts/migrate; safe to apply twice (the \if guard below).

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = '008') AS wahook_todo \gset
\if :wahook_todo
BEGIN;

CREATE TABLE wa_ops_number (
    phone_number_id   text PRIMARY KEY,               -- our business number's id
    last_inbound_at   timestamptz,                    -- received_at of its newest message
    token_refused_at  timestamptz                     -- a drainer run ended with its
                                                      -- token refused (401, code 190...)
);

CREATE TABLE wa_ops_drainer (
    host          text PRIMARY KEY,                   -- gethostname() of the drainer
    started_at    timestamptz NOT NULL,               -- its newest run began
    alive_at      timestamptz NOT NULL,               -- last heard from (start, every
                                                      -- minute of a long --for, end)
    finished_at   timestamptz,                        -- its newest completed run ended
    exit_code     smallint                            -- and exited so (wahook-drain(8))
);

-- what is on record today, once (a full scan now, never again)
INSERT INTO wa_ops_number (phone_number_id, last_inbound_at)
    SELECT phone_number_id, max(received_at) FROM wa_messages GROUP BY phone_number_id;

GRANT SELECT, INSERT, UPDATE ON wa_ops_number, wa_ops_drainer TO wahook_drain;
-- --metrics counts quarantined bodies and shows the newest (never the bodies)
GRANT SELECT (id, received_at) ON wa_quarantine TO wahook_drain;

INSERT INTO schema_migrations (version) VALUES ('008');
COMMIT;
\endif
