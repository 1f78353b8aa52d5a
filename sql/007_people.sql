-- 007_people.sql - a person is known by phone number, by business-scoped user id
-- (BSUID), or both; group messages; one broken item quarantined alone.
--
-- Since 2026 Meta names every user by a BSUID ("US.13491208655302741918":
-- country, dot, up to 128 letters and digits; "US.ENT.…" for a parent BSUID
-- shared by several business portfolios) and may withhold the phone number of a
-- user who adopted a username. Usernames change freely and are never a key; a
-- BSUID changes when its user changes phone number (a system message says so).
--
-- What an existing install gets: nullable columns added (no rewrite of old
-- rows, no long lock: each ALTER is a catalog change), one small table, no
-- index built over old data. Old rows keep their meaning and NULL in the new
-- columns.
--
-- Identity, as the ingest statement (sql/statements/ingest.sql) applies it:
--   wa_messages.sender      the phone number ("from") when Meta sent it, else
--                           the BSUID: never empty, as before
--   conversation            the group for a group message, else the BSUID when
--                           Meta sent one, else the phone number; a recorded
--                           change of identity maps the new phone number or
--                           BSUID back to the conversation it continues
--   wa_outbox.sender        that conversation: the drainer keeps each one in
--                           order (a person's messages with and without their
--                           phone number are one conversation)
--   wa_conversations.sender the same conversation key
-- A conversation that began before Meta sent BSUIDs stays keyed by the phone
-- number; the person's messages that carry a BSUID form the conversation keyed
-- by it.
--
-- Applied by scripts/migrate; safe to apply twice (the \if guard below).

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = '007') AS wahook_todo \gset
\if :wahook_todo
BEGIN;
-- a webhook arriving meanwhile waits for this transaction, never longer than
-- the catalog changes take; an ALTER that cannot get its lock in 10 s fails the
-- migration (run it again) instead of queueing every webhook behind it
SET LOCAL lock_timeout = '10s';

ALTER TABLE wa_messages ADD COLUMN user_id text;          -- the sender's BSUID
ALTER TABLE wa_messages ADD COLUMN parent_user_id text;   -- their parent BSUID
ALTER TABLE wa_messages ADD COLUMN username text;         -- contacts[].profile.username
ALTER TABLE wa_messages ADD COLUMN group_id text;         -- a group message's group
COMMENT ON COLUMN wa_messages.sender IS
    'the phone number ("from") when Meta sent it, else the BSUID (user_id)';

ALTER TABLE wa_statuses ADD COLUMN recipient_user_id text;
ALTER TABLE wa_statuses ADD COLUMN recipient_parent_user_id text;

-- One row per conversation: the person (or group) on one business number.
ALTER TABLE wa_conversations ADD COLUMN user_id text;     -- the person's BSUID
ALTER TABLE wa_conversations ADD COLUMN username text;    -- the latest username seen
ALTER TABLE wa_conversations ADD COLUMN phone text;       -- the latest phone number seen
COMMENT ON COLUMN wa_conversations.sender IS
    'the conversation: the group id, else the BSUID, else the phone number';
COMMENT ON COLUMN wa_outbox.sender IS
    'the conversation this row is ordered in: the group id, else the BSUID, else the phone number';

-- A person's changed identity (system messages user_changed_number and
-- user_changed_user_id): their new phone number or BSUID continues the
-- conversation they had.
CREATE TABLE wa_identity_links (
    phone_number_id   text NOT NULL,                  -- our business number's id
    new_id            text NOT NULL,                  -- the new phone number or BSUID
    conversation      text NOT NULL,                  -- the conversation it continues
    message_id        text NOT NULL,                  -- the system message that said so
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (phone_number_id, new_id)
);

-- Where a broken item stood in its webhook ("entry[0].changes[0].messages[1]");
-- NULL for a body quarantined whole. Such a row's body is a webhook of its own
-- holding that item alone, which scripts/replay posts again.
ALTER TABLE wa_quarantine ADD COLUMN path text;

-- wahook_ingest writes the new columns (sql/003_roles.sql says why per column).
GRANT INSERT (user_id, username, phone) ON wa_conversations TO wahook_ingest;
GRANT SELECT (user_id, username, phone) ON wa_conversations TO wahook_ingest;
GRANT UPDATE (user_id, username, phone) ON wa_conversations TO wahook_ingest;
GRANT SELECT (recipient_user_id, recipient_parent_user_id) ON wa_statuses TO wahook_ingest;
GRANT UPDATE (recipient_user_id, recipient_parent_user_id) ON wa_statuses TO wahook_ingest;
GRANT SELECT (message_id, phone_number_id, sender, user_id, wa_timestamp)
    ON wa_messages TO wahook_ingest;
GRANT SELECT, INSERT ON wa_identity_links TO wahook_ingest;
GRANT INSERT (path) ON wa_quarantine TO wahook_ingest;
-- wahook_drain addresses the reply from the message (phone, BSUID or group).
GRANT SELECT (sender, user_id, parent_user_id, username, group_id) ON wa_messages
    TO wahook_drain;

INSERT INTO schema_migrations (version) VALUES ('007');
COMMIT;
\endif
