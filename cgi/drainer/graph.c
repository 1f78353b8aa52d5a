/*
 * graph.c - Graph API calls (see graph.h). Each slot holds one engine slot,
 * reused call after call; the engine's connection cache is what keeps
 * connections to Meta warm. Answers are read into the engine slot's capped
 * buffer; classification looks at the status and error.code only,
 * never at the message text. Request bodies are handed to libcurl once
 * (body_once.h): libcurl cannot resend a POST behind our back.
 */
#include "graph.h"
#include "body_once.h"
#include "engine.h"
#include "transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "log.h"

#define PNID_MAX	32
/*
 * Idle connections older than this are not reused (libcurl's default is
 * 118 s). Servers close idle keep-alive connections after a few seconds (5 s
 * is a common default); a POST written into a connection the server is
 * closing gets no answer, and costs the message its one resend.
 */
#define MAXAGE_CONN_S	4L

struct slot {
	struct graph	*g;
	struct engine_slot *x;		/* the transfer; its answer up to GRAPH_ANSWER_MAX */
	int		 busy;
	int		 done;		/* finished or expired, waiting in g->finished */
	enum graph_step	 step;
	char		*body;		/* request, freed when the call ends */
	struct curl_slist *headers;	/* this call's, with its number's token: wiped */
	struct body_once send;		/* how much of body went out */
	struct graph_result res;	/* valid when done */
	char		 url[GRAPH_URL_MAX];
};

struct graph {
	struct graph_settings	 set;
	struct slot		*slots;
	int			*finished;	/* slots done, in order, not yet collected */
	int			 nfinished;
	int			 nslots;
	int			 running;	/* calls added and not yet collected */
};

static engine_done_fn ended;

const char *
graph_class_name(enum graph_class c)
{
	switch (c) {
	case GRAPH_OK:		return "ok";
	case GRAPH_TRANSIENT:	return "transient";
	case GRAPH_PAIR_RATE:	return "pair_rate";
	case GRAPH_AUTH:	return "auth";
	case GRAPH_PERMANENT:	return "permanent";
	case GRAPH_CONFIG:	return "config";
	case GRAPH_UNANSWERED:	return "unanswered";
	}
	return "unknown";
}

static char *
to_string(json_object *o)
{
	const char *s;
	char *copy = NULL;

	if (o == NULL)
		return NULL;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s != NULL)
		copy = strdup(s);
	json_object_put(o);
	return copy;
}

/* json_object_object_add takes ownership of v, also of a NULL: an allocation
 * failure shows up as a missing member, which we check via *ok. */
static void
add(json_object *o, const char *k, json_object *v, int *ok)
{
	if (v == NULL || json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		*ok = 0;
	}
}

char *
graph_body_read(const char *message_id, int typing)
{
	json_object *o = json_object_new_object(), *t = NULL;
	int ok = o != NULL;

	if (!ok)
		return NULL;
	add(o, "messaging_product", json_object_new_string("whatsapp"), &ok);
	add(o, "status", json_object_new_string("read"), &ok);
	add(o, "message_id", json_object_new_string(message_id), &ok);
	if (typing) {
		if ((t = json_object_new_object()) != NULL)
			add(t, "type", json_object_new_string("text"), &ok);
		add(o, "typing_indicator", t, &ok);
	}
	if (!ok) {
		json_object_put(o);
		return NULL;
	}
	return to_string(o);
}

char *
graph_body_reply(const struct address *to, const char *text, const char *context_id)
{
	json_object *o = json_object_new_object(), *t = NULL, *ctx = NULL;
	int ok = o != NULL;

	if (!ok)
		return NULL;
	add(o, "messaging_product", json_object_new_string("whatsapp"), &ok);
	if (ok && address_apply(o, to) == -1)
		ok = 0;
	add(o, "type", json_object_new_string("text"), &ok);
	if ((t = json_object_new_object()) != NULL)
		add(t, "body", json_object_new_string(text), &ok);
	add(o, "text", t, &ok);
	if ((ctx = json_object_new_object()) != NULL)
		add(ctx, "message_id", json_object_new_string(context_id), &ok);
	add(o, "context", ctx, &ok);
	if (!ok) {
		json_object_put(o);
		return NULL;
	}
	return to_string(o);
}

/* Copies s into dst (bounded), control characters as '?'. */
static void
copy_text(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t i;

	if (n > dstlen - 1)
		n = dstlen - 1;
	for (i = 0; i < n; i++)
		dst[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	dst[n] = '\0';
}

static long
get_long(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return GRAPH_NO_CODE;
	if (json_object_is_type(v, json_type_int))
		return (long)json_object_get_int64(v);
	if (json_object_is_type(v, json_type_string)) {
		/* some proxies and old API versions quote numbers */
		const char *s = json_object_get_string(v);
		char *end;
		long x = strtol(s, &end, 10);

		if (end != s && *end == '\0')
			return x;
	}
	return GRAPH_NO_CODE;
}

static int
is_transient_code(long code)
{
	switch (code) {
	case 1: case 2: case 4: case 80007: case 130429: case 131000: case 131016:
	case 133004:
		return 1;
	}
	return 0;
}

/* doc/graph-api.md's permanent class: final whatever the status says */
static int
is_permanent_code(long code)
{
	switch (code) {
	case 100: case 131008: case 131009: case 131026: case 131030: case 131047:
	case 131051: case 131052: case 133010:
		return 1;
	}
	return code >= 132000 && code <= 132999;
}

static int
is_auth_code(long code)
{
	return code == 0 || code == 190 || code == 10 || (code >= 200 && code <= 299);
}

enum graph_class
graph_classify(enum graph_step step, long http, const char *body, size_t len,
    int truncated, struct graph_result *r)
{
	json_tokener *tok = NULL;
	json_object *root = NULL, *err = NULL, *v, *msgs, *m0, *id;
	int transient_flag = 0;

	r->step = step;
	r->http = http;
	r->code = r->subcode = GRAPH_NO_CODE;
	r->rate_limited = 0;
	r->no_wamid = 0;
	r->reply_id[0] = '\0';
	r->msg[0] = '\0';
	if (body != NULL && len > 0 && len <= GRAPH_ANSWER_MAX && !truncated &&
	    (tok = json_tokener_new()) != NULL) {
		root = json_tokener_parse_ex(tok, body, (int)len);
		if (json_tokener_get_error(tok) != json_tokener_success) {
			json_object_put(root);
			root = NULL;
		}
		json_tokener_free(tok);
	}
	if (root != NULL && json_object_is_type(root, json_type_object) &&
	    json_object_object_get_ex(root, "error", &err) &&
	    json_object_is_type(err, json_type_object)) {
		r->code = get_long(err, "code");
		r->subcode = get_long(err, "error_subcode");
		if (json_object_object_get_ex(err, "message", &v) &&
		    json_object_is_type(v, json_type_string))
			copy_text(r->msg, sizeof(r->msg), json_object_get_string(v),
			    (size_t)json_object_get_string_len(v));
		if (json_object_object_get_ex(err, "is_transient", &v) &&
		    json_object_is_type(v, json_type_boolean))
			transient_flag = json_object_get_boolean(v);
	} else
		err = NULL;

	if (http >= 200 && http <= 299 && err == NULL) {
		r->cls = GRAPH_OK;
		if (step == GRAPH_REPLY) {
			/* {"messages":[{"id":"wamid..."}]}: the id joins wa_statuses */
			if (root != NULL && json_object_object_get_ex(root, "messages", &msgs) &&
			    json_object_is_type(msgs, json_type_array) &&
			    json_object_array_length(msgs) > 0 &&
			    (m0 = json_object_array_get_idx(msgs, 0)) != NULL &&
			    json_object_object_get_ex(m0, "id", &id) &&
			    json_object_is_type(id, json_type_string) &&
			    json_object_get_string_len(id) > 0 &&
			    (size_t)json_object_get_string_len(id) < sizeof(r->reply_id)) {
				copy_text(r->reply_id, sizeof(r->reply_id),
				    json_object_get_string(id),
				    (size_t)json_object_get_string_len(id));
			} else {
				/* accepted all the same: a resend would answer twice */
				r->no_wamid = 1;
				snprintf(r->msg, sizeof(r->msg), "accepted (HTTP %ld) but the "
				    "wamid could not be read: %s", http, truncated ?
				    "answer over 64 KiB" : root == NULL ?
				    "answer is not JSON" : "no messages[0].id in the answer");
			}
		}
		goto done;
	}
	if (r->msg[0] == '\0')
		snprintf(r->msg, sizeof(r->msg), "HTTP %ld%s", http,
		    root == NULL && len > 0 ? " (answer is not JSON)" : "");
	r->rate_limited = http == 429 || r->code == 130429;
	/*
	 * The order matters: a known code decides before the status does. Among
	 * the rest, 5xx/429/408 and odd statuses (1xx, a 2xx with an error object)
	 * are worth a retry. A 3xx or 4xx without a Graph error object is not Meta
	 * judging the message: a proxy or a wrong URL answered, and every row
	 * would meet the same fate, so the run stops. Any other 4xx is final.
	 */
	if (r->code == 131056)
		r->cls = GRAPH_PAIR_RATE;
	else if (http == 401 || (r->code != GRAPH_NO_CODE && is_auth_code(r->code)))
		r->cls = GRAPH_AUTH;
	else if (transient_flag || is_transient_code(r->code) ||
	    (!is_permanent_code(r->code) &&
	    (http >= 500 || http == 429 || http == 408 || http < 300)))
		r->cls = GRAPH_TRANSIENT;
	else if (err == NULL)
		r->cls = GRAPH_CONFIG;
	else
		r->cls = GRAPH_PERMANENT;
done:
	json_object_put(root);
	return r->cls;
}

struct graph *
graph_new(const struct graph_settings *set, struct engine *eng, int nslots, char *err,
    size_t errlen)
{
	struct graph *g = NULL;
	int i;

	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->slots = calloc((size_t)nslots, sizeof(*g->slots))) == NULL ||
	    (g->finished = calloc((size_t)nslots, sizeof(*g->finished))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	g->set = *set;
	g->nslots = nslots;
	for (i = 0; i < nslots; i++) {
		g->slots[i].g = g;
		if ((g->slots[i].x = engine_slot_new(eng, GRAPH_ANSWER_MAX)) == NULL) {
			snprintf(err, errlen, "out of memory (libcurl)");
			goto fail;
		}
	}
	return g;
fail:
	graph_free(g);
	return NULL;
}

/* Wipes (the Authorization line is the first item) and frees a call's headers. */
static void
drop_headers(struct slot *s)
{
	transfer_headers_free(s->headers);
	s->headers = NULL;
}

/*
 * Builds the call's headers with token: 0, or -1 (out of memory, or a token
 * too long: the map and the single token are checked at start already).
 */
static int
make_headers(struct slot *s, const char *token)
{
	static const char *const extra[] = {
		"Content-Type: application/json",
		"Expect:",	/* no 100-continue */
		NULL
	};

	s->headers = transfer_auth_headers(token, extra);
	return s->headers != NULL ? 0 : -1;
}

void
graph_free(struct graph *g)
{
	int i;

	if (g == NULL)
		return;
	for (i = 0; g->slots != NULL && i < g->nslots; i++) {
		struct slot *s = &g->slots[i];

		engine_cancel(s->x);
		free(s->body);
		drop_headers(s);
	}
	free(g->slots);
	free(g->finished);
	free(g);
}

int
graph_id_valid(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++) {
		if (*s < '0' || *s > '9')
			return 0;
	}
	return n > 0 && n <= PNID_MAX;
}

static void
local_failure(struct graph_result *r, enum graph_step step, const char *why)
{
	memset(r, 0, sizeof(*r));
	r->cls = GRAPH_PERMANENT;
	r->step = step;
	r->code = r->subcode = GRAPH_NO_CODE;
	snprintf(r->msg, sizeof(r->msg), "%s", why);
}

/* Starts step in slot with body (malloc'd, owned from here on, may be NULL). */
static int
start(struct graph *g, int slot, enum graph_step step, const char *pnid, char *body,
    struct graph_result *r)
{
	struct slot *s = &g->slots[slot];
	CURL *e;
	long timeout_ms = (long)(g->set.timeout * 1000);
	const char *token = tokens_pick(g->set.tokens, g->set.token, pnid);

	if (!graph_id_valid(pnid) || (size_t)snprintf(s->url, sizeof(s->url),
	    "%s/%s/messages", g->set.url, pnid) >= sizeof(s->url)) {
		free(body);
		local_failure(r, step, "phone_number_id is not a numeric id: refused, "
		    "never put into the URL");
		return -1;
	}
	if (token == NULL) {
		/* an operator's omission, not the message's fault: the number waits */
		free(body);
		local_failure(r, step, "no access token for this phone_number_id (neither "
		    "in WAHOOK_ACCESS_TOKENS_FILE nor WAHOOK_ACCESS_TOKEN)");
		r->cls = GRAPH_AUTH;
		return -1;
	}
	s->body = body;
	if (s->body == NULL || make_headers(s, token) == -1) {
		free(s->body);
		s->body = NULL;
		local_failure(r, step, "out of memory building the request");
		return -1;
	}
	s->done = 0;
	s->step = step;
	/* no answer of Meta's is that big: past the cap the transfer is cut */
	e = engine_prepare(s->x);
	transfer_setup(e, s->url, strncmp(g->set.url, "https:", 6) == 0, timeout_ms);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
	body_once_attach(&s->send, e, s->body, strlen(s->body));
	curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, MAXAGE_CONN_S);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* the engine measures the limit on the transfer */
	if (engine_start(s->x, ENGINE_TOTAL, (double)timeout_ms, "WAHOOK_HTTP_TIMEOUT",
	    ended, s) == -1) {
		free(s->body);
		s->body = NULL;
		drop_headers(s);
		local_failure(r, step, "curl_multi_add_handle failed");
		return -1;
	}
	s->busy = 1;
	g->running++;
	return 0;
}

/*
 * Judges a call that ended: rc is libcurl's result (CURLE_OPERATION_TIMEDOUT
 * for our own time limit). A status line that arrived counts even when the
 * rest of the answer did not: a 2xx is an acceptance.
 */
static void
judge(struct slot *s, CURLcode rc, struct graph_result *r)
{
	long http = 0;
	curl_off_t ra = -1;
	const char *why;

	const struct transfer_answer *ans = &s->x->ans;
	const char *errbuf = s->x->errbuf;

	curl_easy_getinfo(s->x->easy, CURLINFO_RESPONSE_CODE, &http);
	if (rc == CURLE_OK && http > 0)
		graph_classify(s->step, http, ans->buf.s, ans->buf.len, 0, r);
	else if (http > 0) {
		/* the status came, the rest did not (stall, reset, short, too big) */
		graph_classify(s->step, http, ans->buf.s, ans->buf.len, ans->over, r);
		if (r->cls == GRAPH_OK && r->no_wamid && !ans->over)
			snprintf(r->msg, sizeof(r->msg), "accepted (HTTP %ld) but the wamid "
			    "could not be read: answer cut off: %.60s%s%.120s", http,
			    curl_easy_strerror(rc), errbuf[0] ? ": " : "", errbuf);
	} else {
		memset(r, 0, sizeof(*r));
		r->step = s->step;
		r->code = r->subcode = GRAPH_NO_CODE;
		/*
		 * No status. A mark-read is idempotent: retry freely. A reply whose
		 * body went out may have reached Meta; one whose body never left
		 * (no connection) is safe to send again.
		 */
		r->cls = s->step == GRAPH_REPLY && s->send.off > 0 ? GRAPH_UNANSWERED :
		    GRAPH_TRANSIENT;
		why = s->send.resend_refused ? "connection closed after the request went out; "
		    "libcurl's resend refused" : errbuf;
		/* curl's strerror, then its detail (cut to fit: the detail may repeat it) */
		snprintf(r->msg, sizeof(r->msg), "curl: %.60s%s%.180s",
		    curl_easy_strerror(rc), why[0] ? ": " : "", why);
	}
	if (http > 0 && curl_easy_getinfo(s->x->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
	    ra > 0)
		r->retry_after = (double)ra;
	else
		r->retry_after = 0;
	r->sent = s->send.off > 0;
	r->resend_refused = s->send.resend_refused;
	r->ms = log_now_ms() - s->x->t0;
}

/* The engine's callback: the call in slot arg ended (answered or not), and is
 * queued for graph_next(). */
static void
ended(void *arg, struct engine_slot *x, CURLcode rc)
{
	struct slot *s = arg;
	struct graph *g = s->g;

	(void)x;
	judge(s, rc, &s->res);
	free(s->body);
	s->body = NULL;
	drop_headers(s);
	s->done = 1;
	g->finished[g->nfinished++] = (int)(s - g->slots);
}

int
graph_start(struct graph *g, int slot, enum graph_step step, const char *pnid,
    const char *message_id, const struct address *to, struct graph_result *r)
{
	return start(g, slot, step, pnid, step == GRAPH_READ ?
	    graph_body_read(message_id, g->set.typing) :
	    graph_body_reply(to, g->set.reply_text, message_id), r);
}

int
graph_start_body(struct graph *g, int slot, const char *pnid, const char *body,
    struct graph_result *r)
{
	return start(g, slot, GRAPH_REPLY, pnid, strdup(body), r);
}

int
graph_next(struct graph *g, int *slotp, struct graph_result *r)
{
	struct slot *s;

	if (g->nfinished == 0)
		return 0;
	*slotp = g->finished[0];
	g->nfinished--;
	memmove(g->finished, g->finished + 1, (size_t)g->nfinished * sizeof(*g->finished));
	s = &g->slots[*slotp];
	*r = s->res;
	s->busy = 0;
	s->done = 0;
	g->running--;
	return 1;
}

int
graph_running(const struct graph *g)
{
	return g->running;
}
