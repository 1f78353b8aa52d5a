-- lean.sql - one message stored with one statement: the message ON CONFLICT DO
-- NOTHING and, when it was new and is not our own echo ($12, answered), its
-- outbox row; no conversation upsert. The lean Node receiver (receiver.js with
-- LEAN=1) runs it as a prepared statement, one per message, and make bench's
-- pgbench runs the same text (bench.py's lean_pgbench_script()) as that
-- receiver's database limit.
-- $1 message id, $2 phone_number_id, $3 display_phone_number, $4 waba_id,
-- $5 field, $6 sender, $7 type, $8 Meta's timestamp (seconds), $9 text body,
-- $10 profile name, $11 context message id, $12 answered, $13 the message as
-- JSON, $14 its 1-based position in the webhook
WITH m AS (
    INSERT INTO wa_messages (message_id, phone_number_id, display_phone_number, waba_id,
        field, sender, type, wa_timestamp, text_body, profile_name, context_message_id,
        answered, payload)
    VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8), $9, $10, $11, $12, $13)
    ON CONFLICT (message_id) DO NOTHING
    RETURNING message_id, phone_number_id, sender, wa_timestamp
)
INSERT INTO wa_outbox (message_id, phone_number_id, sender, wa_timestamp, position)
SELECT message_id, phone_number_id, sender, wa_timestamp, $14 FROM m WHERE $12
