// receiver.js - the peer make bench measures wahook against: a WhatsApp webhook
// receiver written the way Node code usually does it (Express, node-postgres,
// one query per message), doing wahook's job on wahook's tables: verify the
// signature over the raw body, store every message ON CONFLICT DO NOTHING with
// an outbox row and a conversation bump for the new ones, every status with
// wahook's rank rule, all of one webhook in one transaction, then 200.
// One process per core (cluster), a pool of 8 connections each.
// LEAN=1: the leaner peer. Each message is stored with one prepared statement
// doing both inserts (lean.sql: the message ON CONFLICT DO NOTHING, and the
// outbox row of a new one; no conversation upsert), and a webhook that needs
// one statement runs it alone, with no BEGIN and COMMIT: one round trip.
// Usage: PORT=... DATABASE_URL=... APP_SECRET=... [LEAN=1] node receiver.js
'use strict';
const cluster = require('node:cluster');
const crypto = require('node:crypto');
const os = require('node:os');

if (cluster.isPrimary) {
  const n = Number(process.env.WORKERS || os.cpus().length);
  for (let i = 0; i < n; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const id in cluster.workers) cluster.workers[id].kill('SIGTERM');
    process.exit(0);
  });
  return;
}

const fs = require('node:fs');
const path = require('node:path');
const express = require('express');
const { Pool } = require('pg');

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 8 });
const secret = process.env.APP_SECRET;
const RANK = { sent: 1, delivered: 2, read: 3, played: 4, failed: 9 };
const LEAN = process.env.LEAN === '1';
const LEAN_SQL = LEAN ? fs.readFileSync(path.join(__dirname, 'lean.sql'), 'utf8') : null;
const STATUS_SQL =
  `INSERT INTO wa_statuses AS s (message_id, phone_number_id, recipient_id, status,
     status_rank, wa_timestamp, errors, biz_opaque_callback_data, payload)
   VALUES ($1, $2, $3, $4, $5, to_timestamp($6), $7, $8, $9)
   ON CONFLICT (message_id) DO UPDATE SET status = EXCLUDED.status,
     status_rank = EXCLUDED.status_rank, wa_timestamp = EXCLUDED.wa_timestamp,
     errors = EXCLUDED.errors, payload = EXCLUDED.payload, updated_at = now()
   WHERE s.status_rank <> 9 AND EXCLUDED.status_rank > s.status_rank`;

function statusValues(s, md) {
  return [s.id, md.phone_number_id, s.recipient_id, s.status, RANK[s.status] || 0,
    Number(s.timestamp), s.errors ? JSON.stringify(s.errors) : null,
    s.biz_opaque_callback_data || null, JSON.stringify(s)];
}

function signed(req) {
  const h = req.get('X-Hub-Signature-256') || '';
  if (!h.startsWith('sha256=') || !Buffer.isBuffer(req.body)) return false;
  const want = crypto.createHmac('sha256', secret).update(req.body).digest();
  const got = Buffer.from(h.slice(7), 'hex');
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

// each change of a webhook, with its metadata and its contacts' names by wa_id
function* changes(body) {
  for (const entry of body.entry || []) {
    for (const change of entry.changes || []) {
      const v = change.value || {};
      const names = {};
      for (const c of v.contacts || []) names[c.wa_id] = c.profile && c.profile.name;
      yield { entry, change, v, md: v.metadata || {}, names };
    }
  }
}

async function store(client, body) {
  for (const { entry, change, v, md, names } of changes(body)) {
    for (const [pos, m] of (v.messages || []).entries()) {
      const mine = m.from === md.display_phone_number;
      const text = m.text ? m.text.body : null;
      const r = await client.query(
        `INSERT INTO wa_messages (message_id, phone_number_id, display_phone_number,
           waba_id, field, sender, type, wa_timestamp, text_body, profile_name,
           context_message_id, answered, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8), $9, $10, $11, $12, $13)
         ON CONFLICT (message_id) DO NOTHING RETURNING message_id`,
        [m.id, md.phone_number_id, md.display_phone_number, entry.id, change.field,
         m.from, m.type, Number(m.timestamp), text, names[m.from] || null,
         m.context ? m.context.id : null, !mine, JSON.stringify(m)]);
      if (r.rowCount === 0 || mine) continue;
      await client.query(
        `INSERT INTO wa_outbox (message_id, phone_number_id, sender, wa_timestamp, position)
         VALUES ($1, $2, $3, to_timestamp($4), $5)`,
        [m.id, md.phone_number_id, m.from, Number(m.timestamp), pos + 1]);
      await client.query(
        `INSERT INTO wa_conversations AS c (phone_number_id, sender, profile_name,
           last_message_at, unread_count)
         VALUES ($1, $2, $3, to_timestamp($4), 1)
         ON CONFLICT (phone_number_id, sender) DO UPDATE SET
           profile_name = coalesce(EXCLUDED.profile_name, c.profile_name),
           last_message_at = greatest(c.last_message_at, EXCLUDED.last_message_at),
           unread_count = c.unread_count + 1, updated_at = now()`,
        [md.phone_number_id, m.from, names[m.from] || null, Number(m.timestamp)]);
    }
    for (const s of v.statuses || []) await client.query(STATUS_SQL, statusValues(s, md));
  }
}

// LEAN=1: the statements of one webhook, one per message and per status
function leanQueries(body) {
  const qs = [];
  for (const { entry, change, v, md, names } of changes(body)) {
    for (const [pos, m] of (v.messages || []).entries()) {
      const mine = m.from === md.display_phone_number;
      qs.push({ name: 'lean_message', text: LEAN_SQL, values: [
        m.id, md.phone_number_id, md.display_phone_number, entry.id, change.field, m.from,
        m.type, Number(m.timestamp), m.text ? m.text.body : null, names[m.from] || null,
        m.context ? m.context.id : null, !mine, JSON.stringify(m), pos + 1] });
    }
    for (const s of v.statuses || []) {
      qs.push({ name: 'status', text: STATUS_SQL, values: statusValues(s, md) });
    }
  }
  return qs;
}

async function storeLean(body) {
  const qs = leanQueries(body);
  if (qs.length === 0) return;
  if (qs.length === 1) {       // one statement commits alone: no BEGIN, no COMMIT
    await pool.query(qs[0]);
    return;
  }
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    for (const q of qs) await client.query(q);
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}

const app = express();
app.post('/webhook', express.raw({ type: '*/*', limit: '4mb' }), async (req, res) => {
  if (!signed(req)) return res.status(401).send('bad signature\n');
  let body;
  try {
    body = JSON.parse(req.body.toString('utf8'));
  } catch (e) {
    return res.status(200).send('EVENT_RECEIVED');   // wahook quarantines; not measured
  }
  if (LEAN) {
    try {
      await storeLean(body);
      return res.status(200).type('text/plain').send('EVENT_RECEIVED');
    } catch (e) {
      return res.status(503).send('try again\n');
    }
  }
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await store(client, body);
    await client.query('COMMIT');
    res.status(200).type('text/plain').send('EVENT_RECEIVED');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    res.status(503).send('try again\n');
  } finally {
    client.release();
  }
});
app.listen(Number(process.env.PORT), '127.0.0.1');
