-- 006_media.sql - inbound media kept: the bytes of every photo, voice note, video,
-- document and sticker a user sent, fetched by wahook-drain before Meta forgets
-- them (a webhook's media id works for 7 days; each download URL for 5 minutes).
--
-- Rows are made by the drainer, not the responder: each run inserts one row per
-- media message of the last 7 days that has none yet (so the ingest statement
-- stays as lean as it was, and media of messages stored before this migration
-- are fetched too while Meta still has them). A row is then worked like an
-- outbox row: claimed with a lease and a claim token, retried with backoff,
-- given up ('dead', reason in last_error) once the 7 days are over.
--
-- Where the bytes go (doc/media.md; wahook-drain(8)): by default into data (bytea, written in
-- one transaction with state 'done'); with WAHOOK_MEDIA_DIR into a file named
-- by its sha256 under that directory, path holding the file and data NULL.
--
-- Applied by scripts/migrate; safe to apply twice (the \if guard below).

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = '006') AS wahook_todo \gset
\if :wahook_todo
BEGIN;

CREATE TABLE wa_media (
    media_id          text PRIMARY KEY,               -- Meta's media id (message.<type>.id)
    message_id        text NOT NULL REFERENCES wa_messages (message_id) ON DELETE CASCADE,
    phone_number_id   text NOT NULL,                  -- the number that received it: its
                                                      -- token fetches it
    media_type        text NOT NULL,                  -- image, audio, video, document, sticker
    mime_type         text,                           -- from the webhook, then the retrieve call
    sha256            text,                           -- hex digest of the stored bytes, checked
    file_size         bigint,                         -- bytes, as Meta announced and we counted
    data              bytea,                          -- the bytes (default storage)
    path              text,                           -- or the file (WAHOOK_MEDIA_DIR)
    state             text NOT NULL DEFAULT 'pending'
                          CHECK (state IN ('pending', 'done', 'dead', 'too_large')),
    attempts          integer NOT NULL DEFAULT 0,     -- fetches that failed
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    lease_until       timestamptz,                    -- claimed by a drainer until then
    claim_token       uuid,
    last_error        text,                           -- "download: sha256 mismatch ..."
    wa_timestamp      timestamptz NOT NULL,           -- the message's time (Meta's)
    expires_at        timestamptz NOT NULL,           -- wa_timestamp + 7 days: after a failed
                                                      -- attempt past it, the row goes dead
    created_at        timestamptz NOT NULL DEFAULT now(),
    fetched_at        timestamptz,                    -- the bytes were stored
    done_at           timestamptz,                    -- state left 'pending'
    requeued_at       timestamptz,                    -- wahook-drain --requeue-dead
    CHECK (state <> 'done' OR ((data IS NULL) <> (path IS NULL) AND sha256 IS NOT NULL))
);
-- the drainer's claim scans this small partial index, as for wa_outbox
CREATE INDEX wa_media_due ON wa_media (next_attempt_at) WHERE state = 'pending';
CREATE INDEX wa_media_message ON wa_media (message_id);
-- scripts/prune deletes a file only when no remaining row names it
CREATE INDEX wa_media_path ON wa_media (path) WHERE path IS NOT NULL;
-- what the drainer's discovery reads: media messages by arrival
CREATE INDEX wa_messages_media ON wa_messages (received_at)
    WHERE type IN ('image', 'audio', 'video', 'document', 'sticker');

-- wahook_drain: discovers (reads wa_messages), claims and records wa_media. The
-- bytes reach data through a large object written in the same transaction
-- (lo_create/lo_put/lo_get/lo_unlink: PUBLIC may run them on its own objects).
GRANT SELECT (message_id, phone_number_id, type, payload, wa_timestamp, received_at)
    ON wa_messages TO wahook_drain;
GRANT SELECT, INSERT ON wa_media TO wahook_drain;
GRANT UPDATE (mime_type, sha256, file_size, data, path, state, attempts, next_attempt_at,
              lease_until, claim_token, last_error, fetched_at, done_at, requeued_at)
    ON wa_media TO wahook_drain;

INSERT INTO schema_migrations (version) VALUES ('006');
COMMIT;
\endif
