/*
 * ask.c - the reply program or the reply URL (see ask.h). The URL's calls
 * run on the drain loop's engine beside the Graph calls, and the programs'
 * descriptors join that engine's poll: one poll, one thread, no call waiting
 * for another. The body is signed like Meta signs webhooks.
 */
#include "ask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "log.h"
#include "reply.h"
#include "transfer.h"
#include "verify.h"

struct hook {
	struct engine_slot	*x;		/* the call; its answer up to REPLY_OUTPUT_MAX */
	int			 busy;
	int			 finished;
	char			*body;
	struct curl_slist	*headers;
	CURLcode		 result;
};

struct ask {
	struct ask_settings	 set;
	struct children		*kids;		/* command mode */
	struct hook		*hooks;		/* URL mode */
	int			 nslots;
	int			 running;
	char			 env[3][1024];	/* PATH=, HOME=, LANG= */
};

void
ask_result_clear(struct ask_result *r)
{
	free(r->out);
	memset(r, 0, sizeof(*r));
}

struct ask *
ask_new(const struct ask_settings *c, struct engine *eng, int nslots, char *err,
    size_t errlen)
{
	struct ask *a = NULL;
	const char *base[4];
	int i, n = 0;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto oom;
	a->set = *c;
	a->nslots = nslots;
	if (c->command != NULL) {
		/* the program sees these and its own four, nothing else: no token,
		 * no WAHOOK_DB, no secret */
		if (c->env_path != NULL &&
		    (size_t)snprintf(a->env[0], sizeof(a->env[0]), "PATH=%s", c->env_path) <
		    sizeof(a->env[0]))
			base[n++] = a->env[0];
		if (c->env_home != NULL &&
		    (size_t)snprintf(a->env[1], sizeof(a->env[1]), "HOME=%s", c->env_home) <
		    sizeof(a->env[1]))
			base[n++] = a->env[1];
		if (c->env_lang != NULL &&
		    (size_t)snprintf(a->env[2], sizeof(a->env[2]), "LANG=%s", c->env_lang) <
		    sizeof(a->env[2]))
			base[n++] = a->env[2];
		base[n] = NULL;
		if ((a->kids = child_new(c->command, c->timeout, nslots, base)) == NULL)
			goto oom;
		return a;
	}
	if ((a->hooks = calloc((size_t)nslots, sizeof(*a->hooks))) == NULL)
		goto oom;
	for (i = 0; i < nslots; i++) {
		if ((a->hooks[i].x = engine_slot_new(eng, REPLY_OUTPUT_MAX)) == NULL)
			goto oom;
	}
	return a;
oom:
	snprintf(err, errlen, "out of memory");
	ask_free(a);
	return NULL;
}

static void
hook_end(struct hook *h)
{
	if (h->busy)
		engine_cancel(h->x);
	free(h->body);
	h->body = NULL;
	curl_slist_free_all(h->headers);
	h->headers = NULL;
	h->busy = h->finished = 0;
}

void
ask_free(struct ask *a)
{
	int i;

	if (a == NULL)
		return;
	child_free(a->kids);
	for (i = 0; a->hooks != NULL && i < a->nslots; i++)
		hook_end(&a->hooks[i]);
	free(a->hooks);
	free(a);
}

static void
failed(struct ask_result *r, const char *why)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->why, sizeof(r->why), "%s", why);
}

/* "X-Wahook-Signature-256: sha256=<hex>" of body under the secret. */
static void
signature(const char *secret, const char *body, size_t len, char *hdr, size_t hdrlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[32];
	char digits[65];
	int i;

	verify_hmac_sha256((const unsigned char *)secret, strlen(secret),
	    (const unsigned char *)body, len, mac);
	for (i = 0; i < 32; i++) {
		digits[2 * i] = hex[mac[i] >> 4];
		digits[2 * i + 1] = hex[mac[i] & 15];
	}
	digits[64] = '\0';
	snprintf(hdr, hdrlen, "X-Wahook-Signature-256: sha256=%s", digits);
}

/* The engine's callback: the call of hook arg ended; ask_next() reads it. */
static void
hook_ended(void *arg, struct engine_slot *x, CURLcode rc)
{
	struct hook *h = arg;

	(void)x;
	h->result = rc;
	h->finished = 1;
}

static int
hook_start(struct ask *a, int slot, const char *input, size_t len, struct ask_result *r)
{
	struct hook *h = &a->hooks[slot];
	CURL *e;
	char sig[128];
	struct curl_slist *l;
	double timeout_ms = (double)(long)(a->set.timeout * 1000);

	if ((h->body = malloc(len + 1)) == NULL)
		goto oom;
	memcpy(h->body, input, len);
	h->body[len] = '\0';
	signature(a->set.secret, input, len, sig, sizeof(sig));
	if ((l = curl_slist_append(NULL, "Content-Type: application/json")) == NULL)
		goto oom;
	h->headers = l;
	if (curl_slist_append(l, sig) == NULL || curl_slist_append(l, "Expect:") == NULL)
		goto oom;
	e = engine_prepare(h->x);
	transfer_setup(e, a->set.url, 0, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, h->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
	/* the engine measures the limit on the transfer */
	if (engine_start(h->x, ENGINE_TOTAL, timeout_ms, "WAHOOK_REPLY_TIMEOUT", hook_ended,
	    h) == -1) {
		failed(r, "reply URL: curl_multi_add_handle failed");
		goto fail;
	}
	h->busy = 1;
	return 0;
oom:
	failed(r, "out of memory");
fail:
	hook_end(h);
	return -1;
}

int
ask_start(struct ask *a, int slot, const char *input, size_t len,
    const struct ask_about *about, struct ask_result *r)
{
	/* what the program is told in its environment; an unknown value is
	 * left out rather than set empty */
	const struct { const char *name, *value; } vars[] = {
		{ .name = "WAHOOK_MESSAGE_ID", .value = about->message_id },
		{ .name = "WAHOOK_SENDER", .value = about->sender },
		{ .name = "WAHOOK_USER_ID", .value = about->user_id },
		{ .name = "WAHOOK_USERNAME", .value = about->username },
		{ .name = "WAHOOK_GROUP_ID", .value = about->group_id },
		{ .name = "WAHOOK_PHONE_NUMBER_ID", .value = about->phone_number_id },
		{ .name = "WAHOOK_MESSAGE_TYPE", .value = about->type },
	};
	char v[sizeof(vars) / sizeof(vars[0])][1100];
	const char *env[sizeof(vars) / sizeof(vars[0]) + 1];
	char why[CHILD_WHY_MAX];
	size_t i, n = 0;

	if (a->kids == NULL) {
		if (hook_start(a, slot, input, len, r) == -1)
			return -1;
		a->running++;
		return 0;
	}
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if (vars[i].value == NULL)
			continue;
		if ((size_t)snprintf(v[n], sizeof(v[n]), "%s=%s", vars[i].name,
		    vars[i].value) >= sizeof(v[n])) {
			snprintf(why, sizeof(why), "%s too long for the environment",
			    vars[i].name);
			failed(r, why);
			return -1;
		}
		env[n] = v[n];
		n++;
	}
	env[n] = NULL;
	if (child_start(a->kids, slot, input, len, env, why, sizeof(why)) == -1) {
		failed(r, why);
		return -1;
	}
	a->running++;
	return 0;
}

int
ask_fds_max(const struct ask *a)
{
	return a->kids != NULL ? a->nslots * 4 : 0;
}

int
ask_fds(struct ask *a, struct curl_waitfd *fds, int max)
{
	return a->kids != NULL ? child_fds(a->kids, fds, max) : 0;
}

int
ask_wait_ms(struct ask *a)
{
	return a->kids != NULL ? child_wait_ms(a->kids) : -1;
}

void
ask_work(struct ask *a, struct curl_waitfd *fds, int n)
{
	if (a->kids != NULL)
		child_work(a->kids, fds, n);
}

/* The start of an error answer, for last_error: printable ASCII only. */
static void
snippet(const char *s, size_t len, char *dst, size_t dstlen)
{
	size_t i, n = len < dstlen - 1 ? len : dstlen - 1;

	for (i = 0; i < n; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	dst[n] = '\0';
}

int
ask_next(struct ask *a, int *slot, struct ask_result *r)
{
	struct child_result cr;
	const struct transfer_answer *ans;
	struct hook *h;
	long http = 0;
	char snip[80];
	int i;

	if (a->kids != NULL) {
		if (!child_next(a->kids, slot, &cr))
			return 0;
		memset(r, 0, sizeof(*r));
		r->ok = cr.ok;
		r->out = cr.out;
		r->outlen = cr.outlen;
		r->ms = cr.ms;
		snprintf(r->why, sizeof(r->why), "%s", cr.why);
		a->running--;
		return 1;
	}
	for (i = 0; i < a->nslots; i++) {
		h = &a->hooks[i];
		if (!h->busy || !h->finished)
			continue;
		ans = &h->x->ans;
		memset(r, 0, sizeof(*r));
		r->ms = log_now_ms() - h->x->t0;
		curl_easy_getinfo(h->x->easy, CURLINFO_RESPONSE_CODE, &http);
		snippet(ans->buf.s, ans->buf.len, snip, sizeof(snip));
		if (ans->over)
			snprintf(r->why, sizeof(r->why), "reply URL answered more than %d bytes",
			    REPLY_OUTPUT_MAX);
		else if (h->result != CURLE_OK)
			snprintf(r->why, sizeof(r->why), "reply URL: curl: %.60s%s%.180s",
			    curl_easy_strerror(h->result), h->x->errbuf[0] ? ": " : "",
			    h->x->errbuf);
		else if (http < 200 || http > 299)
			snprintf(r->why, sizeof(r->why), "reply URL answered HTTP %ld%s%s", http,
			    snip[0] ? ": " : "", snip);
		else {
			r->ok = 1;
			/* 204, or any empty body: no reply */
			if (http != 204 && ans->buf.len > 0) {
				if ((r->out = malloc(ans->buf.len)) == NULL) {
					r->ok = 0;
					snprintf(r->why, sizeof(r->why), "out of memory");
				} else {
					memcpy(r->out, ans->buf.s, ans->buf.len);
					r->outlen = ans->buf.len;
				}
			}
		}
		*slot = i;
		hook_end(h);
		a->running--;
		return 1;
	}
	return 0;
}

int
ask_running(const struct ask *a)
{
	return a->running;
}
