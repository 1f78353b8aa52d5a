/*
 * drain_config.c - wahook-drain's environment (see drain_config.h). Every
 * value is checked here, once, so the loop never meets a nonsensical one: an
 * HTTP timeout longer than half the lease would let a claim expire mid-call.
 */
#include "drain_config.h"
#include "db.h"
#include "env.h"
#include "tokens.h"
#include "reply.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The host[:port] of url (checked by load_url()) into dst: the authority
 * without any user:password@, which must never reach a log. */
static void
url_host(const char *url, char *dst, size_t dstlen)
{
	const char *p = strstr(url, "://") + 3, *h;
	size_t n = strcspn(p, "/?#");

	if ((h = memrchr(p, '@', n)) != NULL) {
		n -= (size_t)(h + 1 - p);
		p = h + 1;
	}
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/*
 * 1 when url's host (url checked by load_url()) is a loopback address:
 * 127.0.0.0/8, [::1] (or [::ffff:127.x.y.z]), or "localhost". No other name is
 * resolved: only what the URL itself says counts.
 */
static int
url_is_loopback(const char *url)
{
	char host[DRAIN_URL_MAX], *p;
	struct in_addr a4;
	struct in6_addr a6;

	url_host(url, host, sizeof(host));
	if (host[0] == '[') {
		if ((p = strchr(host, ']')) == NULL)
			return 0;
		*p = '\0';
		return inet_pton(AF_INET6, host + 1, &a6) == 1 && (IN6_IS_ADDR_LOOPBACK(&a6) ||
		    (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127));
	}
	if ((p = strchr(host, ':')) != NULL)
		*p = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* 1 when url is http:// (checked by load_url()) to a host that is not loopback. */
static int
url_in_clear(const char *url)
{
	return strncmp(url, "http://", 7) == 0 && !url_is_loopback(url);
}

/* An http(s) URL without spaces or control characters, its trailing slashes
 * cut when trim, into dst with room to spare bytes after it. */
static int
load_url(const char *name, const char *u, int trim, char *dst, size_t dstlen, size_t spare,
    char *err, size_t errlen)
{
	size_t n = strlen(u);
	const char *p;

	if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0) {
		snprintf(err, errlen, "%s: want an http:// or https:// URL", name);
		return -1;
	}
	for (p = u; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			snprintf(err, errlen, "%s: spaces or control characters in the URL",
			    name);
			return -1;
		}
	}
	while (trim && n > 0 && u[n - 1] == '/')
		n--;
	if (n + 1 > dstlen - spare) {
		snprintf(err, errlen, "%s: longer than %zu bytes", name, dstlen - spare - 1);
		return -1;
	}
	memcpy(dst, u, n);
	dst[n] = '\0';
	return 0;
}

/*
 * Who answers: WAHOOK_REPLY=none, else COMMAND, else URL, else TEXT. Only the
 * winner's variables are checked. An empty WAHOOK_REPLY_TEXT is refused rather
 * than read as the default or as "no reply": WAHOOK_REPLY=none says that.
 */
static int
load_reply(struct drain_config *c, char *err, size_t errlen)
{
	const char *mode = env_string("WAHOOK_REPLY", ""), *cmd, *url;
	char *abs = NULL;
	struct stat st;
	size_t nchars;
	long long insecure;
	int rc = -1;

	cmd = env_string("WAHOOK_REPLY_COMMAND", "");
	url = env_string("WAHOOK_REPLY_URL", "");
	if (*mode != '\0' && strcmp(mode, "none") != 0) {
		snprintf(err, errlen, "WAHOOK_REPLY: want \"none\" (mark read, no reply) "
		    "or nothing");
		goto fail;
	}
	if (*mode != '\0') {
		c->reply = DRAIN_REPLY_NONE;
	} else if (*cmd != '\0') {
		c->reply = DRAIN_REPLY_COMMAND;
		if ((abs = realpath(cmd, NULL)) == NULL) {
			snprintf(err, errlen, "WAHOOK_REPLY_COMMAND: %s: %s", cmd, strerror(errno));
			goto fail;
		}
		if (stat(abs, &st) == -1 || !S_ISREG(st.st_mode) || access(abs, X_OK) == -1) {
			snprintf(err, errlen, "WAHOOK_REPLY_COMMAND: %s is not an executable "
			    "file", cmd);
			goto fail;
		}
		if ((size_t)snprintf(c->reply_command, sizeof(c->reply_command), "%s", abs) >=
		    sizeof(c->reply_command)) {
			snprintf(err, errlen, "WAHOOK_REPLY_COMMAND: path too long");
			goto fail;
		}
	} else if (*url != '\0') {
		c->reply = DRAIN_REPLY_URL;
		if (load_url("WAHOOK_REPLY_URL", url, 0, c->reply_url, sizeof(c->reply_url), 0,
		    err, errlen) == -1)
			goto fail;
		if (env_long("WAHOOK_REPLY_URL_INSECURE", 0, 0, 1, &insecure, err, errlen) == -1)
			goto fail;
		c->reply_url_insecure = url_in_clear(c->reply_url);
		if (c->reply_url_insecure && !insecure) {
			snprintf(err, errlen, "WAHOOK_REPLY_URL: http:// to a host that is not "
			    "loopback would carry customers' messages unencrypted: use https://, "
			    "or set WAHOOK_REPLY_URL_INSECURE=1 for a network you trust");
			goto fail;
		}
		if (env_secret("WAHOOK_REPLY_URL_SECRET", &c->reply_secret, err, errlen) == -1)
			goto fail;
		if (c->reply_secret == NULL || *c->reply_secret == '\0') {
			snprintf(err, errlen, "WAHOOK_REPLY_URL needs WAHOOK_REPLY_URL_SECRET or "
			    "WAHOOK_REPLY_URL_SECRET_FILE: the receiver checks the signature");
			goto fail;
		}
	} else {
		c->reply = DRAIN_REPLY_TEXT;
		c->reply_text = getenv("WAHOOK_REPLY_TEXT");
		if (c->reply_text == NULL)
			c->reply_text = "OK";
		if (*c->reply_text == '\0') {
			snprintf(err, errlen, "WAHOOK_REPLY_TEXT is empty: unset it for the "
			    "default \"OK\", or set WAHOOK_REPLY=none to mark read without "
			    "replying");
			goto fail;
		}
		if (reply_utf8(c->reply_text, strlen(c->reply_text), &nchars) == -1 ||
		    nchars > DRAIN_REPLY_MAX) {
			snprintf(err, errlen, "WAHOOK_REPLY_TEXT: want valid UTF-8 of at most %d "
			    "characters", DRAIN_REPLY_MAX);
			goto fail;
		}
	}
	c->env_path = getenv("PATH");
	c->env_home = getenv("HOME");
	c->env_lang = getenv("LANG");
	rc = 0;
fail:
	free(abs);
	return rc;
}

int
drain_config_load(struct drain_config *c, int need_token, char *err, size_t errlen)
{
	long long v;
	const char *p;

	memset(c, 0, sizeof(*c));
	if (env_conninfo("WAHOOK_DB", &c->db, err, errlen) == -1)
		goto fail;
	/* a copy: the environment's is scrubbed (drain_secret_names) */
	if ((c->db_storage_ = strdup(c->db)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c->db = c->db_storage_;
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
	/* room left for /{phone_number_id}/messages */
	if (load_url("WAHOOK_GRAPH_URL", env_string("WAHOOK_GRAPH_URL", DRAIN_GRAPH_URL_DEFAULT),
	    1, c->graph_url, sizeof(c->graph_url), 64, err, errlen) == -1)
		goto fail;
	url_host(c->graph_url, c->graph_host, sizeof(c->graph_host));
	if (url_in_clear(c->graph_url)) {
		snprintf(err, errlen, "WAHOOK_GRAPH_URL: http:// only to a loopback address (a "
		    "test stand-in): the access token would travel unencrypted; use https://");
		goto fail;
	}
	if (load_reply(c, err, errlen) == -1)
		goto fail;
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
	if (env_double("WAHOOK_REPLY_TIMEOUT", c->lease / 2 < 10 ? c->lease / 2 : 10,
	    0.05, 3600, &c->reply_timeout, err, errlen) == -1)
		goto fail;
	if (c->reply_timeout > c->lease / 2) {
		snprintf(err, errlen, "WAHOOK_REPLY_TIMEOUT (%g) must be at most half of "
		    "WAHOOK_LEASE (%g): a claim must outlive the program it covers",
		    c->reply_timeout, c->lease);
		goto fail;
	}
	if (env_double("WAHOOK_REPLY_WINDOW", 86400, 0, 30 * 86400.0, &c->reply_window, err,
	    errlen) == -1)
		goto fail;
	if (env_double("WAHOOK_DB_OUTAGE_MAX", 60, 0, 86400, &c->db_outage_max, err,
	    errlen) == -1)
		goto fail;
	if (env_double("WAHOOK_DB_TIMEOUT", 10, 1, 300, &c->db_timeout, err, errlen) == -1)
		goto fail;
	if (env_choice("WAHOOK_DB_PREPARE", db_prepare_names, DB_PREPARE_AUTO,
	    &c->db_prepare, err, errlen) == -1)
		goto fail;
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
	env_free_secret(c->db_storage_);
	env_free_secret(c->token);
	tokens_free(c->tokens);
	env_free_secret(c->reply_secret);
	memset(c, 0, sizeof(*c));
}
