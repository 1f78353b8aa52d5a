/*
 * drain_config.c - wahook-drain's environment (see drain_config.h). Every
 * value is checked here, once, so the loop never meets a nonsensical one: an
 * HTTP timeout longer than half the lease would let a claim expire mid-call.
 */
#include "drain_config.h"
#include "env.h"
#include "tokens.h"

#include <stdio.h>
#include <string.h>

/* Nonzero when s is valid UTF-8 without NUL (strlen stops there anyway). */
static int
utf8_valid(const char *s, size_t *nchars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;
	int more, i;
	unsigned int cp, min;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			n++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			more = 1; cp = *p & 0x1fu; min = 0x80;
		} else if ((*p & 0xf0) == 0xe0) {
			more = 2; cp = *p & 0x0fu; min = 0x800;
		} else if ((*p & 0xf8) == 0xf0) {
			more = 3; cp = *p & 0x07u; min = 0x10000;
		} else
			return 0;
		p++;
		for (i = 0; i < more; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (*p & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		n++;
	}
	*nchars = n;
	return 1;
}

static int
load_url(struct drain_config *c, char *err, size_t errlen)
{
	const char *u = env_string("WAHOOK_GRAPH_URL", DRAIN_GRAPH_URL_DEFAULT);
	size_t n = strlen(u);
	const char *p;

	if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0) {
		snprintf(err, errlen, "WAHOOK_GRAPH_URL: want an http:// or https:// URL");
		return -1;
	}
	for (p = u; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			snprintf(err, errlen, "WAHOOK_GRAPH_URL: spaces or control "
			    "characters in the URL");
			return -1;
		}
	}
	while (n > 0 && u[n - 1] == '/')
		n--;
	if (n + 1 > sizeof(c->graph_url) - 64) {	/* room for /{phone_number_id}/messages */
		snprintf(err, errlen, "WAHOOK_GRAPH_URL: longer than %zu bytes",
		    sizeof(c->graph_url) - 65);
		return -1;
	}
	memcpy(c->graph_url, u, n);
	c->graph_url[n] = '\0';
	return 0;
}

int
drain_config_load(struct drain_config *c, int need_token, char *err, size_t errlen)
{
	long long v;
	size_t nchars;
	const char *p;

	memset(c, 0, sizeof(*c));
	c->db = env_string("WAHOOK_DB", "");
	if (env_secret("WAHOOK_ACCESS_TOKEN", &c->token, err, errlen) == -1)
		goto fail;
	p = env_string("WAHOOK_ACCESS_TOKENS_FILE", NULL);
	if (p != NULL && tokens_load("WAHOOK_ACCESS_TOKENS_FILE", p, &c->tokens, err,
	    errlen) == -1)
		goto fail;
	if (need_token && c->token == NULL && c->tokens == NULL) {
		snprintf(err, errlen, "WAHOOK_ACCESS_TOKEN, WAHOOK_ACCESS_TOKEN_FILE or "
		    "WAHOOK_ACCESS_TOKENS_FILE must be set");
		goto fail;
	}
	if (c->token != NULL && strlen(c->token) > TOKENS_TOKEN_MAX) {
		snprintf(err, errlen, "WAHOOK_ACCESS_TOKEN: longer than %d bytes",
		    TOKENS_TOKEN_MAX);
		goto fail;
	}
	/* the token goes into an HTTP header: no byte may end or split it */
	for (p = c->token; p != NULL && *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			snprintf(err, errlen, "WAHOOK_ACCESS_TOKEN: contains spaces, control "
			    "or non-ASCII characters");
			goto fail;
		}
	}
	if (load_url(c, err, errlen) == -1)
		goto fail;
	c->reply_text = env_string("WAHOOK_REPLY_TEXT", "OK");
	if (!utf8_valid(c->reply_text, &nchars) || nchars > DRAIN_REPLY_MAX) {
		snprintf(err, errlen, "WAHOOK_REPLY_TEXT: want valid UTF-8 of at most %d "
		    "characters", DRAIN_REPLY_MAX);
		goto fail;
	}
	if (env_long("WAHOOK_TYPING", 0, 0, 1, &v, err, errlen) == -1)
		goto fail;
	c->typing = (int)v;
	if (env_long("WAHOOK_CONCURRENCY", 16, 1, 1024, &v, err, errlen) == -1)
		goto fail;
	c->concurrency = (int)v;
	if (env_double("WAHOOK_MAX_RPS", 80, 0.01, 100000, &c->max_rps, err, errlen) == -1)
		goto fail;
	if (env_double("WAHOOK_RETRY_MIN", 15, 0.001, 86400, &c->retry_min, err,
	    errlen) == -1)
		goto fail;
	if (env_double("WAHOOK_RETRY_MAX", 3600, 0.001, 7 * 86400.0, &c->retry_max, err,
	    errlen) == -1)
		goto fail;
	if (c->retry_max < c->retry_min) {
		snprintf(err, errlen, "WAHOOK_RETRY_MAX (%g) is below WAHOOK_RETRY_MIN (%g)",
		    c->retry_max, c->retry_min);
		goto fail;
	}
	if (env_long("WAHOOK_MAX_ATTEMPTS", 10, 1, 1000, &v, err, errlen) == -1)
		goto fail;
	c->max_attempts = (int)v;
	if (env_double("WAHOOK_MAX_AGE", 86400, 1, 365 * 86400.0, &c->max_age, err,
	    errlen) == -1)
		goto fail;
	if (env_double("WAHOOK_LEASE", 60, 0.2, 86400, &c->lease, err, errlen) == -1)
		goto fail;
	if (env_double("WAHOOK_HTTP_TIMEOUT", c->lease / 2 < 20 ? c->lease / 2 : 20,
	    0.05, 3600, &c->http_timeout, err, errlen) == -1)
		goto fail;
	if (c->http_timeout > c->lease / 2) {
		snprintf(err, errlen, "WAHOOK_HTTP_TIMEOUT (%g) must be at most half of "
		    "WAHOOK_LEASE (%g): a claim must outlive the call it covers",
		    c->http_timeout, c->lease);
		goto fail;
	}
	return 0;
fail:
	drain_config_free(c);
	return -1;
}

const char *
drain_config_token(const struct drain_config *c, const char *pnid)
{
	const char *t = tokens_get(c->tokens, pnid);

	return t != NULL ? t : c->token;
}

void
drain_config_free(struct drain_config *c)
{
	env_free_secret(c->token);
	tokens_free(c->tokens);
	memset(c, 0, sizeof(*c));
}
