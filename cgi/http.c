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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_KEEP (1024 * 1024)	/* a body buffer larger than this is freed after use */
#define READ_CHUNK 65536

static const char received[] = "EVENT_RECEIVED";

static void
answer(struct http_resp *r, int status, const char *reason, const char *body)
{
	r->status = status;
	r->reason = reason;
	r->extra_header = NULL;
	r->body = body;
	r->body_len = strlen(body);
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

/* Reads the body under the cap. Returns 0, or the HTTP status to answer. */
static int
read_body(struct http_state *st, const struct http_req *req, size_t *lenp,
    struct logline *l)
{
	size_t cap = st->cfg->max_body, want, len = 0, ncap;
	unsigned long long cl = 0;
	int have_cl = 0;
	char *end, *nb;
	long n;

	if (req->content_length != NULL && *req->content_length != '\0') {
		errno = 0;
		cl = strtoull(req->content_length, &end, 10);
		/* digits only: strtoull() would skip blanks and take a sign */
		if (errno != 0 || *end != '\0' ||
		    *req->content_length < '0' || *req->content_length > '9') {
			log_str(l, "reason", "malformed Content-Length");
			return 400;
		}
		have_cl = 1;
		if (cl > cap) {
			log_int(l, "content_length", (long long)(cl > (unsigned long long)
			    INT64_MAX ? INT64_MAX : (long long)cl));
			log_str(l, "reason", "body larger than WAHOOK_MAX_BODY");
			return 413;
		}
	}
	/* without Content-Length (chunked via Apache) read to EOF, one byte past the cap */
	want = have_cl ? (size_t)cl : cap + 1;
	if (st->cap < want + 1) {
		ncap = want + 1;
		if (!have_cl && ncap > READ_CHUNK + 1 && st->cap < READ_CHUNK + 1)
			ncap = READ_CHUNK + 1;	/* grow as the bytes come */
		if ((nb = realloc(st->buf, ncap)) == NULL) {
			log_str(l, "reason", "out of memory for the body");
			return 503;
		}
		st->buf = nb;
		st->cap = ncap;
	}
	while (len < want) {
		if (len + 1 >= st->cap) {
			ncap = st->cap * 2 > want + 1 ? want + 1 : st->cap * 2;
			/* never 0: st->cap >= 1 above, as max_body <= 256 MiB (config.c)
			 * keeps want + 1 from wrapping; the analyzer cannot know that */
			// NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI)
			if ((nb = realloc(st->buf, ncap)) == NULL) {
				log_str(l, "reason", "out of memory for the body");
				return 503;
			}
			st->buf = nb;
			st->cap = ncap;
		}
		n = req->read(req->ctx, st->buf + len, st->cap - 1 - len > want - len ?
		    want - len : st->cap - 1 - len);
		if (n < 0) {
			log_str(l, "reason", "error reading the body");
			return 400;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	st->buf[len] = '\0';
	*lenp = len;
	if (!have_cl && len > cap) {
		log_str(l, "reason", "body larger than WAHOOK_MAX_BODY");
		return 413;
	}
	if (have_cl && len < (size_t)cl) {
		log_int(l, "content_length", (long long)cl);
		log_str(l, "reason", "body shorter than Content-Length");
		return 400;
	}
	return 0;
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
	enum verify_result vr;
	enum payload_result pr;
	enum store_result sr;
	char err[512], reason[600];
	size_t len = 0, i, nnew = 0, ndup = 0, nign = 0;
	int status;

	if (st->cfg->nsecrets == 0) {
		/* fail closed, loudly; read nothing */
		answer(resp, 500, "Internal Server Error", "no app secret configured\n");
		log_str(l, "reason", "no app secret configured (WAHOOK_APP_SECRET): "
		    "refusing every POST");
		return;
	}
	if ((status = read_body(st, req, &len, l)) != 0) {
		if (status == 413)
			answer(resp, 413, "Payload Too Large", "Payload Too Large\n");
		else if (status == 503)
			answer(resp, 503, "Service Unavailable", "try again\n");
		else
			answer(resp, 400, "Bad Request", "Bad Request\n");
		goto out;
	}
	log_int(l, "bytes", (long long)len);
	vr = verify_signature(st->cfg->secrets, st->cfg->nsecrets, req->signature,
	    (const unsigned char *)st->buf, len);
	if (vr != VERIFY_OK) {
		answer(resp, 401, "Unauthorized", "bad signature\n");
		log_str(l, "reason", "signature");
		log_str(l, "signature", verify_result_str(vr));
		goto out;
	}

	/* signed from here on: never 4xx, Meta would retry it for days */
	pr = payload_parse(p, st->buf, len);
	if (pr == PAYLOAD_NOMEM) {
		answer(resp, 503, "Service Unavailable", "try again\n");
		log_str(l, "reason", "out of memory parsing the body");
		goto out;
	}
	if (pr == PAYLOAD_NOT_WHATSAPP) {
		answer(resp, 200, "OK", received);
		log_str(l, "ignored", p->reason);
		goto out;
	}
	if (pr == PAYLOAD_OK) {
		sr = store_webhook(st->store, p, st->buf, len, err, sizeof(err));
		if (sr == STORE_OK) {
			for (i = 0; i < p->nmsgs; i++) {
				if (p->msgs[i].dup || !p->msgs[i].fresh)
					ndup++;
				else if (p->msgs[i].cls == PAYLOAD_ANSWER)
					nnew++;
				else
					nign++;
			}
			answer(resp, 200, "OK", received);
			log_int(l, "msgs", (long long)p->nmsgs);
			log_int(l, "new", (long long)nnew);
			log_int(l, "dup", (long long)ndup);
			log_int(l, "ignored", (long long)nign);
			log_int(l, "statuses", (long long)p->nstatuses);
			log_int(l, "events", (long long)p->nevents);
			if (p->nmsgs > 0)
				log_ids(l, p);
			goto out;
		}
		if (sr == STORE_UNAVAILABLE) {
			answer(resp, 503, "Service Unavailable", "try again\n");
			resp->extra_header = "Retry-After: 10";
			log_str(l, "reason", err);
			goto out;
		}
		snprintf(reason, sizeof(reason), "database refused the data: %s", err);
	} else
		snprintf(reason, sizeof(reason), "%s", p->reason);

	ascii(reason);
	if (store_quarantine(st->store, reason, st->buf, len, err, sizeof(err)) != STORE_OK) {
		answer(resp, 503, "Service Unavailable", "try again\n");
		resp->extra_header = "Retry-After: 10";
		log_str(l, "reason", err);
		log_str(l, "quarantine", reason);
		goto out;
	}
	answer(resp, 200, "OK", received);
	log_str(l, "quarantined", reason);
out:
	;	/* the tree and the buffer go in http_release(), after the answer */
}

void
http_release(struct http_state *st)
{
	payload_reset(&st->payload);
	if (st->cap > BUF_KEEP) {
		free(st->buf);
		st->buf = NULL;
		st->cap = 0;
	}
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
	free(st->buf);
	st->buf = NULL;
	st->cap = 0;
}
