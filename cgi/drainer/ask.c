/*
 * ask.c - the reply program or the reply URL (see ask.h). The URL mode runs
 * its own multi handle through libcurl's socket interface, so its sockets can
 * join the poll that graph.c runs for the Graph calls: one poll, one thread,
 * no call waiting for another. The body is signed like Meta signs webhooks.
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

#define SOCKS_MAX_EXTRA 8	/* sockets beyond one per slot (resolver, reconnects) */

struct hook {
	CURL			*easy;
	int			 busy;
	int			 finished;
	char			*body;
	struct curl_slist	*headers;
	struct transfer_answer	 ans;		/* up to REPLY_OUTPUT_MAX, cut past it */
	CURLcode		 result;
	double			 t0;
	char			 errbuf[CURL_ERROR_SIZE];
};

struct sock {
	curl_socket_t	 fd;
	int		 what;		/* CURL_POLL_IN/OUT/INOUT */
};

struct ask {
	const struct drain_config *c;
	struct children		*kids;		/* command mode */
	CURLM			*multi;		/* URL mode */
	struct hook		*hooks;
	struct sock		*socks;
	int			 nsocks, maxsocks;
	double			 timer_at;	/* ms, monotonic; < 0: none */
	int			 nslots;
	int			 running;
	int			 nkidfds;	/* how many of the last ask_fds() were the children's */
	char			 env[3][1024];	/* PATH=, HOME=, LANG= */
};

void
ask_result_clear(struct ask_result *r)
{
	free(r->out);
	memset(r, 0, sizeof(*r));
}

static int
on_socket(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct ask *a = arg;
	int i;

	(void)e;
	(void)sockp;
	for (i = 0; i < a->nsocks && a->socks[i].fd != s; i++)
		;
	if (what == CURL_POLL_REMOVE) {
		if (i < a->nsocks)
			a->socks[i] = a->socks[--a->nsocks];
		return 0;
	}
	if (i == a->nsocks) {
		if (a->nsocks == a->maxsocks)
			return -1;	/* cannot happen: connections are capped below */
		a->nsocks++;
	}
	a->socks[i].fd = s;
	a->socks[i].what = what;
	return 0;
}

static int
on_timer(CURLM *m, long ms, void *arg)
{
	struct ask *a = arg;

	(void)m;
	a->timer_at = ms < 0 ? -1 : log_now_ms() + (double)ms;
	return 0;
}

struct ask *
ask_new(const struct drain_config *c, int nslots, char *err, size_t errlen)
{
	struct ask *a = NULL;
	const char *base[4];
	int i, n = 0;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto oom;
	a->c = c;
	a->nslots = nslots;
	a->timer_at = -1;
	if (c->reply == DRAIN_REPLY_COMMAND) {
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
		if ((a->kids = child_new(c->reply_command, c->reply_timeout, nslots, base)) ==
		    NULL)
			goto oom;
		return a;
	}
	a->maxsocks = nslots + SOCKS_MAX_EXTRA;
	if ((a->hooks = calloc((size_t)nslots, sizeof(*a->hooks))) == NULL ||
	    (a->socks = calloc((size_t)a->maxsocks, sizeof(*a->socks))) == NULL)
		goto oom;
	if ((a->multi = curl_multi_init()) == NULL) {
		snprintf(err, errlen, "curl_multi_init failed");
		goto fail;
	}
	curl_multi_setopt(a->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(a->multi, CURLMOPT_SOCKETDATA, a);
	curl_multi_setopt(a->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(a->multi, CURLMOPT_TIMERDATA, a);
	curl_multi_setopt(a->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)nslots);
	curl_multi_setopt(a->multi, CURLMOPT_MAXCONNECTS, (long)nslots);
	for (i = 0; i < nslots; i++) {
		transfer_answer_init(&a->hooks[i].ans, REPLY_OUTPUT_MAX);
		if ((a->hooks[i].easy = curl_easy_init()) == NULL)
			goto oom;
	}
	return a;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	ask_free(a);
	return NULL;
}

static void
hook_end(struct ask *a, struct hook *h)
{
	if (h->busy)
		curl_multi_remove_handle(a->multi, h->easy);
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
	for (i = 0; a->hooks != NULL && i < a->nslots; i++) {
		hook_end(a, &a->hooks[i]);
		if (a->hooks[i].easy != NULL)
			curl_easy_cleanup(a->hooks[i].easy);
		transfer_answer_free(&a->hooks[i].ans);
	}
	if (a->multi != NULL)
		curl_multi_cleanup(a->multi);
	free(a->hooks);
	free(a->socks);
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

static int
hook_start(struct ask *a, int slot, const char *input, size_t len, struct ask_result *r)
{
	struct hook *h = &a->hooks[slot];
	CURL *e = h->easy;
	char sig[128];
	struct curl_slist *l;
	long timeout_ms = (long)(a->c->reply_timeout * 1000);

	if ((h->body = malloc(len + 1)) == NULL)
		goto oom;
	memcpy(h->body, input, len);
	h->body[len] = '\0';
	signature(a->c->reply_secret, input, len, sig, sizeof(sig));
	if ((l = curl_slist_append(NULL, "Content-Type: application/json")) == NULL)
		goto oom;
	h->headers = l;
	if (curl_slist_append(l, sig) == NULL || curl_slist_append(l, "Expect:") == NULL)
		goto oom;
	h->errbuf[0] = '\0';
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, a->c->reply_url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, h->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
	transfer_answer_attach(&h->ans, e);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, h);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "wahook-drain/1");
	if (curl_multi_add_handle(a->multi, e) != CURLM_OK) {
		failed(r, "reply URL: curl_multi_add_handle failed");
		goto fail;
	}
	h->busy = 1;
	h->t0 = log_now_ms();
	return 0;
oom:
	failed(r, "out of memory");
fail:
	hook_end(a, h);
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
	return a->kids != NULL ? a->nslots * 4 : a->maxsocks;
}

int
ask_fds(struct ask *a, struct curl_waitfd *fds, int max)
{
	int i, n = 0;

	if (a->kids != NULL)
		return a->nkidfds = child_fds(a->kids, fds, max);
	for (i = 0; i < a->nsocks && n < max; i++) {
		fds[n].fd = a->socks[i].fd;
		fds[n].events = (short)(((a->socks[i].what & CURL_POLL_IN) ? CURL_WAIT_POLLIN : 0) |
		    ((a->socks[i].what & CURL_POLL_OUT) ? CURL_WAIT_POLLOUT : 0));
		fds[n].revents = 0;
		n++;
	}
	return n;
}

int
ask_wait_ms(struct ask *a)
{
	double d;

	if (a->kids != NULL)
		return child_wait_ms(a->kids);
	if (a->timer_at < 0)
		return -1;
	d = a->timer_at - log_now_ms();
	return d <= 0 ? 0 : (int)d + 1;
}

void
ask_work(struct ask *a, struct curl_waitfd *fds, int n)
{
	struct hook *h;
	CURLcode rc;
	void *priv;
	int i, still, ev;

	if (a->kids != NULL) {
		child_work(a->kids, fds, n);
		return;
	}
	for (i = 0; i < n; i++) {
		if (fds[i].revents == 0)
			continue;
		ev = ((fds[i].revents & CURL_WAIT_POLLIN) ? CURL_CSELECT_IN : 0) |
		    ((fds[i].revents & CURL_WAIT_POLLOUT) ? CURL_CSELECT_OUT : 0);
		if (ev == 0)
			ev = CURL_CSELECT_ERR;
		curl_multi_socket_action(a->multi, fds[i].fd, ev, &still);
	}
	if (a->timer_at >= 0 && log_now_ms() >= a->timer_at) {
		a->timer_at = -1;
		curl_multi_socket_action(a->multi, CURL_SOCKET_TIMEOUT, 0, &still);
	}
	while (transfer_next_done(a->multi, &priv, &rc)) {
		h = priv;
		h->result = rc;
		h->finished = 1;
	}
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
		memset(r, 0, sizeof(*r));
		r->ms = log_now_ms() - h->t0;
		curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &http);
		snippet(h->ans.buf.s, h->ans.buf.len, snip, sizeof(snip));
		if (h->ans.over)
			snprintf(r->why, sizeof(r->why), "reply URL answered more than %d bytes",
			    REPLY_OUTPUT_MAX);
		else if (h->result != CURLE_OK)
			snprintf(r->why, sizeof(r->why), "reply URL: curl: %.60s%s%.180s",
			    curl_easy_strerror(h->result), h->errbuf[0] ? ": " : "", h->errbuf);
		else if (http < 200 || http > 299)
			snprintf(r->why, sizeof(r->why), "reply URL answered HTTP %ld%s%s", http,
			    snip[0] ? ": " : "", snip);
		else {
			r->ok = 1;
			/* 204, or any empty body: no reply */
			if (http != 204 && h->ans.buf.len > 0) {
				if ((r->out = malloc(h->ans.buf.len)) == NULL) {
					r->ok = 0;
					snprintf(r->why, sizeof(r->why), "out of memory");
				} else {
					memcpy(r->out, h->ans.buf.s, h->ans.buf.len);
					r->outlen = h->ans.buf.len;
				}
			}
		}
		*slot = i;
		hook_end(a, h);
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
