-- 001_schema.sql - wahook's tables: what Meta sent us, and what we still owe it.
--
-- Read this file to learn the data model. The responder (wahook.fcgi) writes every
-- table except wa_outbox's progress columns; the drainer (wahook-drain) works
-- wa_outbox and resets wa_conversations.unread_count. Message ids are Meta's
-- ("wamid...."), unique across retries: they are how duplicates die.
--
-- Applied with: psql -v ON_ERROR_STOP=1 -f sql/001_schema.sql (scripts/migrate
-- does it for every pending file). Safe to apply twice: the \if guard skips a
-- version already recorded in schema_migrations.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = '001') AS wahook_todo \gset
\if :wahook_todo
BEGIN;

-- Every inbound message Meta delivered, once, whatever its type: user messages,
-- reactions, system notices, unsupported ones, edits, revokes, and the business's
-- own echoes (field smb_message_echoes). The raw message object is kept in
-- payload; the columns are what operators filter on.
CREATE TABLE wa_messages (
    message_id            text PRIMARY KEY,           -- Meta's id, e.g. wamid.HBgM...
    phone_number_id       text NOT NULL,              -- our business number's id (metadata)
    display_phone_number  text,                       -- our business number as shown
    waba_id               text,                       -- entry[].id: the business account
    field                 text NOT NULL DEFAULT 'messages', -- or smb_message_echoes
    sender                text NOT NULL,              -- "from": a phone number or a
                                                      -- business-scoped user id (US.1349...)
    recipient             text,                       -- "to", for echoes only
    type                  text NOT NULL,              -- text, image, ..., or a future type
    wa_timestamp          timestamptz NOT NULL,       -- Meta's time (1 s resolution)
    text_body             text,                       -- text body, caption or reply title
    profile_name          text,                       -- contacts[].profile.name of the sender
    context_message_id    text,                       -- the message this one replies to
    answered              boolean NOT NULL,           -- true when it got a wa_outbox row
    payload               jsonb NOT NULL,             -- the message object as Meta sent it
    received_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wa_messages_conversation ON wa_messages (phone_number_id, sender, wa_timestamp);
CREATE INDEX wa_messages_received_at ON wa_messages (received_at);

-- What the drainer owes each answerable message: a mark-read and a reply, in
-- order per conversation. A row is inserted in the same statement as its
-- message, and only when the message was new: retries add nothing.
--
-- Order key within a conversation: (wa_timestamp, received_at, position) -
-- Meta's one-second timestamp, then the arrival of the webhook, then the
-- message's position in it.
CREATE TABLE wa_outbox (
    message_id        text PRIMARY KEY REFERENCES wa_messages (message_id) ON DELETE CASCADE,
    phone_number_id   text NOT NULL,
    sender            text NOT NULL,                  -- whom we answer
    wa_timestamp      timestamptz NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    position          integer NOT NULL,               -- 1-based place in its webhook
    state             text NOT NULL DEFAULT 'pending'
                          CHECK (state IN ('pending', 'done', 'dead')),
    attempts          integer NOT NULL DEFAULT 0,     -- Graph calls that failed
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    lease_until       timestamptz,                    -- claimed by a drainer until then
    last_error        text,                           -- "code=131047 http=400 msg=..."
    read_at           timestamptz,                    -- mark-read succeeded (step 1)
    reply_message_id  text,                           -- wamid of our reply (step 2); joins
                                                      -- wa_statuses.message_id
    replied_at        timestamptz,
    done_at           timestamptz,                    -- state left 'pending'
    CHECK (state <> 'done' OR (read_at IS NOT NULL AND reply_message_id IS NOT NULL))
);
-- The drainer polls this small partial index: finished rows are not in it.
CREATE INDEX wa_outbox_due ON wa_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX wa_outbox_conversation ON wa_outbox (phone_number_id, sender, wa_timestamp,
    received_at, position) WHERE state = 'pending';
CREATE INDEX wa_outbox_dead ON wa_outbox (done_at) WHERE state = 'dead';

-- One row per conversation (our number, the user), for dashboards.
-- unread_count counts new answerable messages; the drainer brings it down to
-- what is still unread when it marks a message read (Meta marks every earlier
-- message of the chat read with it).
CREATE TABLE wa_conversations (
    phone_number_id   text NOT NULL,
    sender            text NOT NULL,
    profile_name      text,
    last_message_at   timestamptz NOT NULL,           -- Meta's time of the newest message
    unread_count      integer NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (phone_number_id, sender)
);

-- The latest reaction of each sender to a message. An empty or absent emoji
-- removes the row. Reactions are messages too: each is also in wa_messages.
CREATE TABLE wa_reactions (
    message_id            text NOT NULL,              -- the message reacted to
    sender                text NOT NULL,
    phone_number_id       text NOT NULL,
    emoji                 text NOT NULL,
    reaction_message_id   text NOT NULL,              -- the reaction's own wamid
    wa_timestamp          timestamptz NOT NULL,
    PRIMARY KEY (message_id, sender)
);

-- The latest status of each message *we* sent (our replies among them; join
-- wa_outbox.reply_message_id). Statuses arrive out of order: the upsert only
-- moves forward, sent < delivered < read < played, and failed is final.
CREATE TABLE wa_statuses (
    message_id        text PRIMARY KEY,               -- our outbound wamid
    phone_number_id   text NOT NULL,
    recipient_id      text,
    status            text NOT NULL,                  -- sent, delivered, read, played, failed
    status_rank       smallint NOT NULL,              -- 1..4, 9 for failed, 0 unknown
    wa_timestamp      timestamptz NOT NULL,
    errors            jsonb,                          -- for failed: Meta's errors[]
    biz_opaque_callback_data text,
    payload           jsonb NOT NULL,                 -- the status object as sent
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Every other change Meta sends (template and account updates, user
-- preferences, calls, value-level errors...), raw. Retries of the same change
-- collapse on dedupe_key.
CREATE TABLE wa_events (
    id            bigserial PRIMARY KEY,
    waba_id       text,
    field         text NOT NULL,
    payload       jsonb NOT NULL,                     -- the change's value
    dedupe_key    text GENERATED ALWAYS AS (md5(field || ':' || payload::text)) STORED,
    received_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dedupe_key)
);
CREATE INDEX wa_events_field ON wa_events (field, received_at);

-- Correctly signed bodies we could not use: not JSON, wrong shape, data
-- PostgreSQL refuses. Kept raw (bytea: may not even be UTF-8) with the reason,
-- to inspect and replay (scripts/replay). Meta got a 200 for each: it will not
-- send them again.
CREATE TABLE wa_quarantine (
    id            bigserial PRIMARY KEY,
    reason        text NOT NULL,
    body          bytea NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO schema_migrations (version) VALUES ('001');
COMMIT;
\endif
