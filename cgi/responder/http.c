/*
 * http.c - the request handler (see http.h). Order matters and is the
 * security argument: cap the size before reading, verify the signature over
 * the raw bytes before parsing, parse before touching the database, answer
 * 200 only after PostgreSQL confirmed the commit.
 */
#include "http.h"
#include "log.h"
#include "verify.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_KEEP (1024 * 1024)	/* a body buffer larger than this is freed after use */
#define READ_CHUNK 65536
#define TRIM_AFTER (256 * 1024)	/* bytes of body after which the heap is trimmed */
#define TRIM_AFTER_ITEMS 2000

static const char received[] = "EVENT_RECEIVED";

static void
answer(struct http_resp *r, int status, const char *reason, const char *body)
{
	r->status = status;
	r->reason = reason;
	r->extra_header = NULL;
	r->body = body;
	r->body_len = strlen(body);
	r->close = 0;
}

long
http_query_param(const char *q, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name), o = 0;
	const char *p, *v;
	int hi, lo;

	if (q == NULL || outlen == 0)
		return -1;
	for (p = q; *p != '\0'; p += strcspn(p, "&"), p += *p == '&') {
		if (strncmp(p, name, nlen) != 0 || p[nlen] != '=')
			continue;
		for (v = p + nlen + 1; *v != '\0' && *v != '&'; v++) {
			if (o + 1 >= outlen)
				return -1;
			if (*v == '+')
				out[o++] = ' ';
			else if (*v == '%') {
				if ((hi = verify_hexdigit((unsigned char)v[1])) < 0 ||
				    (lo = verify_hexdigit((unsigned char)v[2])) < 0)
					return -1;
				out[o++] = (char)(hi << 4 | lo);
				v += 2;
			} else
				out[o++] = *v;
		}
		out[o] = '\0';
		return (long)o;
	}
	return -1;
}

static void
handle_get(struct http_state *st, const struct http_req *req, struct http_resp *resp,
    struct logline *l)
{
	char mode[32], token[512];
	long tlen, clen;

	answer(resp, 403, "Forbidden", "Forbidden\n");
	if (st->cfg->verify_token == NULL) {
		log_str(l, "reason", "no verify token configured (WAHOOK_VERIFY_TOKEN)");
		return;
	}
	if (http_query_param(req->query, "hub.mode", mode, sizeof(mode)) < 0 ||
	    strcmp(mode, "subscribe") != 0) {
		log_str(l, "reason", "hub.mode is not subscribe");
		return;
	}
	tlen = http_query_param(req->query, "hub.verify_token", token, sizeof(token));
	if (tlen < 0 || !verify_token(st->cfg->verify_token, token, (size_t)tlen)) {
		log_str(l, "reason", "verify token mismatch");
		return;
	}
	clen = http_query_param(req->query, "hub.challenge", st->challenge,
	    sizeof(st->challenge));
	if (clen <= 0) {
		log_str(l, "reason", "hub.challenge missing or too long");
		return;
	}
	resp->status = 200;
	resp->reason = "OK";
	resp->body = st->challenge;
	resp->body_len = (size_t)clen;
	log_str(l, "verify", "subscribed");
}

/* What a POST comes to; post_answers[] turns it into the HTTP answer. */
enum post_outcome {
	POST_OK,		/* stored, quarantined or ignored: 200 */
	POST_BAD_REQUEST,
	POST_UNAUTHORIZED,
	POST_TIMEOUT,
	POST_TOO_LARGE,
	POST_NO_SECRET,
	POST_UNAVAILABLE,	/* try again: the only answer with Retry-After */
};

static const struct {
	int		 status;
	const char	*reason, *body, *header;
	int		 close;		/* a client too slow to wait for: do not drain
					   the rest (a server that buffers still sends a
					   413's body whole, and wants it taken) */
} post_answers[] = {
	[POST_OK] = { 200, "OK", received, NULL, 0 },
	[POST_BAD_REQUEST] = { 400, "Bad Request", "Bad Request\n", NULL, 0 },
	[POST_UNAUTHORIZED] = { 401, "Unauthorized", "bad signature\n", NULL, 0 },
	[POST_TIMEOUT] = { 408, "Request Timeout", "Request Timeout\n", NULL, 1 },
	[POST_TOO_LARGE] = { 413, "Payload Too Large", "Payload Too Large\n", NULL, 0 },
	[POST_NO_SECRET] = { 500, "Internal Server Error", "no app secret configured\n",
	    NULL, 0 },
	[POST_UNAVAILABLE] = { 503, "Service Unavailable", "try again\n",
	    "Retry-After: 10", 0 },
};

/*
 * When the next byte of the body must have arrived: the whole body within
 * WAHOOK_BODY_TIMEOUT of the start, and after the first second at least
 * WAHOOK_BODY_MIN_RATE bytes per second on average, so a client trickling a
 * body is cut off after about a second instead of holding a worker.
 */
static double
body_deadline(const struct config *c, double t0, size_t got)
{
	double dl = c->body_timeout > 0 ? t0 + c->body_timeout * 1000.0 : t0 + 1e12;
	double by_rate;

	if (c->body_min_rate > 0) {
		by_rate = t0 + 1000.0 + (double)got * 1000.0 / (double)c->body_min_rate;
		if (by_rate < dl)
			dl = by_rate;
	}
	return dl;
}

/* Reads the body under the cap and the deadlines into st->body. */
static enum post_outcome
read_body(struct http_state *st, const struct http_req *req, struct logline *l)
{
	struct dynbuf *b = &st->body;
	size_t cap = st->cfg->max_body, want, room;
	unsigned long long cl = 0;
	double t0 = log_now_ms(), dl;
	int have_cl = 0;
	char *end;
	long n;

	if (req->content_length != NULL && *req->content_length != '\0') {
		errno = 0;
		cl = strtoull(req->content_length, &end, 10);
		/* digits only: strtoull() would skip blanks and take a sign */
		if (errno != 0 || *end != '\0' ||
		    *req->content_length < '0' || *req->content_length > '9') {
			log_str(l, "reason", "malformed Content-Length");
			return POST_BAD_REQUEST;
		}
		have_cl = 1;
		if (cl > cap) {
			log_int(l, "content_length", (long long)(cl > (unsigned long long)
			    INT64_MAX ? INT64_MAX : (long long)cl));
			log_str(l, "reason", "body larger than WAHOOK_MAX_BODY");
			return POST_TOO_LARGE;
		}
	}
	if (b->max != cap + 1)
		dynbuf_init(b, cap + 1);	/* one byte past the cap tells "too large" */
	dynbuf_reset(b);
	if (dynbuf_reserve(b, 0) != DYNBUF_OK) {	/* an empty body is "", never NULL */
		log_str(l, "reason", "out of memory for the body");
		return POST_UNAVAILABLE;
	}
	/* without Content-Length (chunked via Apache) read to EOF, one byte past the cap */
	want = have_cl ? (size_t)cl : cap + 1;
	while (b->len < want) {
		/* all of a known length at once; else grow as the bytes come */
		room = have_cl ? want - b->len :
		    (want - b->len < READ_CHUNK ? want - b->len : READ_CHUNK);
		if (dynbuf_reserve(b, room) != DYNBUF_OK) {
			log_str(l, "reason", "out of memory for the body");
			return POST_UNAVAILABLE;
		}
		dl = body_deadline(st->cfg, t0, b->len);
		n = req->read(req->ctx, b->s + b->len, room, dl);
		if (n == HTTP_READ_TIMEOUT) {
			log_int(l, "bytes", (long long)b->len);
			if (have_cl)
				log_int(l, "content_length", (long long)cl);
			log_ms(l, "read_ms", log_now_ms() - t0);
			log_str(l, "reason", dl < t0 + st->cfg->body_timeout * 1000.0 ?
			    "body slower than WAHOOK_BODY_MIN_RATE" :
			    "body not received within WAHOOK_BODY_TIMEOUT");
			return POST_TIMEOUT;
		}
		if (n < 0) {
			log_str(l, "reason", "error reading the body");
			return POST_BAD_REQUEST;
		}
		if (n == 0)
			break;
		dynbuf_commit(b, (size_t)n);
	}
	if (!have_cl && b->len > cap) {
		log_str(l, "reason", "body larger than WAHOOK_MAX_BODY");
		return POST_TOO_LARGE;
	}
	if (have_cl && b->len < (size_t)cl) {
		log_int(l, "content_length", (long long)cl);
		log_str(l, "reason", "body shorter than Content-Length");
		return POST_BAD_REQUEST;
	}
	return POST_OK;
}

/* A reason fit for a text column and a log: ASCII only. */
static void
ascii(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80 || (unsigned char)*s < 0x20)
			*s = '?';
}

static void
log_ids(struct logline *l, const struct payload *p)
{
	char item[256];
	const struct payload_msg *m;
	const char *what;
	size_t i;
	int n;

	log_list_begin(l, "ids");
	for (i = 0; i < p->nmsgs; i++) {
		m = &p->msgs[i];
		what = m->dup || !m->fresh ? "dup" :
		    m->cls == PAYLOAD_ANSWER ? "new" : payload_class_str(m->cls);
		n = snprintf(item, sizeof(item), "%.200s:%s", m->id, what);
		if (n < 0 || (size_t)n >= sizeof(item) ||
		    log_list_item(l, item, (size_t)n) == -1)
			break;
	}
	log_list_end(l);
	if (i < p->nmsgs)
		log_int(l, "ids_more", (long long)(p->nmsgs - i));
}

static void
handle_post(struct http_state *st, const struct http_req *req, struct http_resp *resp,
    struct logline *l)
{
	struct payload *p = &st->payload;
	enum post_outcome o;
	enum verify_result vr;
	enum payload_result pr;
	enum store_result sr;
	char err[512], reason[600];
	size_t len, i, nnew = 0, ndup = 0, nign = 0, batched = 0;

	if (st->cfg->nsecrets == 0) {
		/* fail closed, loudly; read nothing */
		log_str(l, "reason", "no app secret configured (WAHOOK_APP_SECRET): "
		    "refusing every POST");
		o = POST_NO_SECRET;
		goto out;
	}
	if ((o = read_body(st, req, l)) != POST_OK)
		goto out;
	len = st->body.len;
	st->big = len;
	log_int(l, "bytes", (long long)len);
	vr = verify_signature(st->cfg->secrets, st->cfg->nsecrets, req->signature,
	    (const unsigned char *)st->body.s, len);
	if (vr != VERIFY_OK) {
		log_str(l, "reason", "signature");
		log_str(l, "signature", verify_result_str(vr));
		o = POST_UNAUTHORIZED;
		goto out;
	}

	/* signed from here on: never 4xx, Meta would retry it for days */
	pr = payload_parse(p, st->body.s, len);
	if (pr == PAYLOAD_NOMEM) {
		log_str(l, "reason", "out of memory parsing the body");
		o = POST_UNAVAILABLE;
		goto out;
	}
	if (pr == PAYLOAD_NOT_WHATSAPP) {
		log_str(l, "ignored", p->reason);
		goto out;
	}
	if (pr == PAYLOAD_OK) {
		sr = batch_store(st->batch, p, st->body.s, len, err, sizeof(err), &batched);
		log_int(l, "batch", (long long)batched);
		if (sr == STORE_OK) {
			for (i = 0; i < p->nmsgs; i++) {
				if (p->msgs[i].dup || !p->msgs[i].fresh)
					ndup++;
				else if (p->msgs[i].cls == PAYLOAD_ANSWER)
					nnew++;
				else
					nign++;
			}
			log_int(l, "msgs", (long long)p->nmsgs);
			log_int(l, "new", (long long)nnew);
			log_int(l, "dup", (long long)ndup);
			log_int(l, "ignored", (long long)nign);
			log_int(l, "statuses", (long long)p->nstatuses);
			log_int(l, "events", (long long)p->nevents);
			if (p->nbroken > 0) {
				/* stored alone in wa_quarantine, in the same transaction */
				snprintf(reason, sizeof(reason), "%s: %s", p->broken[0].where,
				    p->broken[0].reason);
				ascii(reason);
				log_int(l, "quarantined_items",
				    (long long)p->nbroken + (long long)p->nbroken_more);
				log_str(l, "item_reason", reason);
				log_set_level(l, "warn");
			}
			if (p->nmsgs > 0)
				log_ids(l, p);
			goto out;
		}
		if (sr == STORE_UNAVAILABLE) {
			log_str(l, "reason", err);
			o = POST_UNAVAILABLE;
			goto out;
		}
		snprintf(reason, sizeof(reason), "database refused the data: %s", err);
	} else
		snprintf(reason, sizeof(reason), "%s", p->reason);

	ascii(reason);
	if (batch_quarantine(st->batch, reason, st->body.s, len, err,
	    sizeof(err)) != STORE_OK) {
		log_str(l, "reason", err);
		log_str(l, "quarantine", reason);
		o = POST_UNAVAILABLE;
		goto out;
	}
	log_str(l, "quarantined", reason);
out:
	/* the one place a POST's answer is decided; the tree and the buffer go in
	 * http_release(), after the answer */
	answer(resp, post_answers[o].status, post_answers[o].reason, post_answers[o].body);
	resp->extra_header = post_answers[o].header;
	resp->close = post_answers[o].close;
}

void
http_release(struct http_state *st)
{
	size_t items = st->payload.nmsgs + st->payload.nstatuses + st->payload.nevents;

	payload_reset(&st->payload);
	dynbuf_trim(&st->body, BUF_KEEP);
	/* a large body's tree was many small blocks: without this their pages
	 * stay with the process for good */
	if (st->big > TRIM_AFTER || items > TRIM_AFTER_ITEMS)
		malloc_trim(0);
	st->big = 0;
}

void
http_handle(struct http_state *st, const struct http_req *req, struct http_resp *resp)
{
	struct logline l;
	double t0 = log_now_ms();
	const char *m = req->method ? req->method : "";

	http_release(st);
	log_begin(&l, "info", "request");
	log_str(&l, "method", m);
	if (strcmp(m, "POST") == 0)
		handle_post(st, req, resp, &l);
	else if (strcmp(m, "GET") == 0)
		handle_get(st, req, resp, &l);
	else {
		answer(resp, 405, "Method Not Allowed", "Method Not Allowed\n");
		resp->extra_header = "Allow: GET, POST";
	}
	log_int(&l, "status", resp->status);
	log_ms(&l, "ms", log_now_ms() - t0);
	if (resp->status >= 500)
		log_set_level(&l, "error");
	else if (resp->status >= 400)
		log_set_level(&l, "warn");
	log_end(&l);
}

void
http_state_free(struct http_state *st)
{
	payload_free(&st->payload);
	dynbuf_free(&st->body);
}
