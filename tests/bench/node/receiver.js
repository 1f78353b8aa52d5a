// receiver.js - the peer make bench measures wahook against: a WhatsApp webhook
// receiver written the way Node code usually does it (Express, node-postgres,
// one query per message), doing wahook's job on wahook's tables: verify the
// signature over the raw body, store every message ON CONFLICT DO NOTHING with
// an outbox row and a conversation bump for the new ones, every status with
// wahook's rank rule, all of one webhook in one transaction, then 200.
// One process per core (cluster), a pool of 8 connections each.
// Usage: PORT=... DATABASE_URL=... APP_SECRET=... node receiver.js
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

const express = require('express');
const { Pool } = require('pg');

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 8 });
const secret = process.env.APP_SECRET;
const RANK = { sent: 1, delivered: 2, read: 3, played: 4, failed: 9 };

function signed(req) {
  const h = req.get('X-Hub-Signature-256') || '';
  if (!h.startsWith('sha256=') || !Buffer.isBuffer(req.body)) return false;
  const want = crypto.createHmac('sha256', secret).update(req.body).digest();
  const got = Buffer.from(h.slice(7), 'hex');
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

async function store(client, body) {
  for (const entry of body.entry || []) {
    for (const change of entry.changes || []) {
      const v = change.value || {};
      const md = v.metadata || {};
      const names = {};
      for (const c of v.contacts || []) names[c.wa_id] = c.profile && c.profile.name;
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
      for (const s of v.statuses || []) {
        await client.query(
          `INSERT INTO wa_statuses AS s (message_id, phone_number_id, recipient_id, status,
             status_rank, wa_timestamp, errors, biz_opaque_callback_data, payload)
           VALUES ($1, $2, $3, $4, $5, to_timestamp($6), $7, $8, $9)
           ON CONFLICT (message_id) DO UPDATE SET status = EXCLUDED.status,
             status_rank = EXCLUDED.status_rank, wa_timestamp = EXCLUDED.wa_timestamp,
             errors = EXCLUDED.errors, payload = EXCLUDED.payload, updated_at = now()
           WHERE s.status_rank <> 9 AND EXCLUDED.status_rank > s.status_rank`,
          [s.id, md.phone_number_id, s.recipient_id, s.status, RANK[s.status] || 0,
           Number(s.timestamp), s.errors ? JSON.stringify(s.errors) : null,
           s.biz_opaque_callback_data || null, JSON.stringify(s)]);
      }
    }
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
