/*
 * drain_config.c - wahook-drain's environment (see drain_config.h and
 * media_config.h): one table, drain_vars, of every variable it reads. Every
 * value is checked here, once, so the loop never meets a nonsensical one: an
 * HTTP timeout longer than half the lease would let a claim expire mid-call,
 * an outage ridden out longer than the lease covers after a call would let it
 * expire before the call's result is recorded.
 */
#include "drain_config.h"
#include "conf.h"
#include "db.h"
#include "media_config.h"
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
reply_after(void *cfg, void *ctx, int set, char *err, size_t errlen)
{
	struct drain_config *c = cfg;
	const char *mode = NULL, *cmd = NULL, *url = NULL;
	char *abs = NULL;
	struct stat st;
	size_t nchars;
	int insecure, rc = -1;

	(void)ctx;
	(void)set;
	if (conf_get(drain_vars, "WAHOOK_REPLY", &mode, err, errlen) == -1 ||
	    conf_get(drain_vars, "WAHOOK_REPLY_COMMAND", &cmd, err, errlen) == -1 ||
	    conf_get(drain_vars, "WAHOOK_REPLY_URL", &url, err, errlen) == -1)
		goto fail;
	if (mode != NULL && strcmp(mode, "none") != 0) {
		snprintf(err, errlen, "WAHOOK_REPLY: want \"none\" (mark read, no reply) "
		    "or nothing");
		goto fail;
	}
	if (mode != NULL) {
		c->reply = DRAIN_REPLY_NONE;
	} else if (cmd != NULL) {
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
	} else if (url != NULL) {
		c->reply = DRAIN_REPLY_URL;
		if (load_url("WAHOOK_REPLY_URL", url, 0, c->reply_url, sizeof(c->reply_url), 0,
		    err, errlen) == -1)
			goto fail;
		if (conf_get(drain_vars, "WAHOOK_REPLY_URL_INSECURE", &insecure, err,
		    errlen) == -1)
			goto fail;
		c->reply_url_insecure = url_in_clear(c->reply_url);
		if (c->reply_url_insecure && !insecure) {
			snprintf(err, errlen, "WAHOOK_REPLY_URL: http:// to a host that is not "
			    "loopback would carry customers' messages unencrypted: use https://, "
			    "or set WAHOOK_REPLY_URL_INSECURE=1 for a network you trust");
			goto fail;
		}
		if (conf_get(drain_vars, "WAHOOK_REPLY_URL_SECRET", &c->reply_secret, err,
		    errlen) == -1)
			goto fail;
		if (c->reply_secret == NULL || *c->reply_secret == '\0') {
			snprintf(err, errlen, "WAHOOK_REPLY_URL needs WAHOOK_REPLY_URL_SECRET or "
			    "WAHOOK_REPLY_URL_SECRET_FILE: the receiver checks the signature");
			goto fail;
		}
	} else {
		c->reply = DRAIN_REPLY_TEXT;
		/* not conf_get(): set but empty is an error here, not the default */
		c->reply_text = getenv("WAHOOK_REPLY_TEXT");
		if (c->reply_text == NULL)
			c->reply_text = conf_find(drain_vars, "WAHOOK_REPLY_TEXT")->def;
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

/* a copy of WAHOOK_DB: the environment's is scrubbed (env_names_secret) */
static int
db_after(void *cfg, void *ctx, int set, char *err, size_t errlen)
{
	struct drain_config *c = cfg;

	(void)ctx;
	(void)set;
	if ((c->db_storage_ = strdup(c->db)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->db = c->db_storage_;
	return 0;
}

/* the per-number tokens; then a token must be there when the run needs one
 * (ctx: int *need_token), and fit an HTTP header */
static int
tokens_after(void *cfg, void *ctx, int set, char *err, size_t errlen)
{
	struct drain_config *c = cfg;
	const char *p = NULL;

	(void)set;
	if (conf_get(drain_vars, "WAHOOK_ACCESS_TOKENS_FILE", &p, err, errlen) == -1)
		return -1;
	if (p != NULL && tokens_load("WAHOOK_ACCESS_TOKENS_FILE", p, &c->tokens, err,
	    errlen) == -1)
		return -1;
	if (*(const int *)ctx && c->token == NULL && c->tokens == NULL) {
		snprintf(err, errlen, "WAHOOK_ACCESS_TOKEN, WAHOOK_ACCESS_TOKEN_FILE or "
		    "WAHOOK_ACCESS_TOKENS_FILE must be set");
		return -1;
	}
	if (c->token != NULL && strlen(c->token) > TOKENS_TOKEN_MAX) {
		snprintf(err, errlen, "WAHOOK_ACCESS_TOKEN: longer than %d bytes",
		    TOKENS_TOKEN_MAX);
		return -1;
	}
	/* the token goes into an HTTP header: no byte may end or split it */
	for (p = c->token; p != NULL && *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			snprintf(err, errlen, "WAHOOK_ACCESS_TOKEN: contains spaces, control "
			    "or non-ASCII characters");
			return -1;
		}
	}
	return 0;
}

static int
graph_after(void *cfg, void *ctx, int set, char *err, size_t errlen)
{
	struct drain_config *c = cfg;
	const char *url = NULL;

	(void)ctx;
	(void)set;
	if (conf_get(drain_vars, "WAHOOK_GRAPH_URL", &url, err, errlen) == -1)
		return -1;
	/* room left for /{phone_number_id}/messages */
	if (load_url("WAHOOK_GRAPH_URL", url, 1, c->graph_url, sizeof(c->graph_url), 64, err,
	    errlen) == -1)
		return -1;
	url_host(c->graph_url, c->graph_host, sizeof(c->graph_host));
	if (url_in_clear(c->graph_url)) {
		snprintf(err, errlen, "WAHOOK_GRAPH_URL: http:// only to a loopback address (a "
		    "test stand-in): the access token would travel unencrypted; use https://");
		return -1;
	}
	return 0;
}

static int
retry_after(void *cfg, void *ctx, int set, char *err, size_t errlen)
{
	const struct drain_config *c = cfg;

	(void)ctx;
	(void)set;
	if (c->retry_max < c->retry_min) {
		snprintf(err, errlen, "WAHOOK_RETRY_MAX (%g) is below WAHOOK_RETRY_MIN (%g)",
		    c->retry_max, c->retry_min);
		return -1;
	}
	return 0;
}

/*
 * A timeout covered by a claim: unset, half the lease up to cap; set, at most
 * half the lease (a claim must outlive the call, or the program, it covers).
 */
static int
lease_half(const char *name, double *t, double lease, double cap, int set,
    const char *what, char *err, size_t errlen)
{
	if (!set)
		*t = lease / 2 < cap ? lease / 2 : cap;
	if (*t > lease / 2) {
		snprintf(err, errlen, "%s (%g) must be at most half of WAHOOK_LEASE (%g): a "
		    "claim must outlive the %s it covers", name, *t, lease, what);
		return -1;
	}
	return 0;
}

static int
http_timeout_after(void *cfg, void *ctx, int set, char *err, size_t errlen)
{
	struct drain_config *c = cfg;

	(void)ctx;
	return lease_half("WAHOOK_HTTP_TIMEOUT", &c->http_timeout, c->lease, 20, set, "call",
	    err, errlen);
}

static int
reply_timeout_after(void *cfg, void *ctx, int set, char *err, size_t errlen)
{
	struct drain_config *c = cfg;

	(void)ctx;
	return lease_half("WAHOOK_REPLY_TIMEOUT", &c->reply_timeout, c->lease, 10, set,
	    "program", err, errlen);
}

/*
 * A call's result must be recorded before its lease can end, through the
 * longest outage the run rides out: a call starts with at least lease_need
 * seconds of lease left (drain.c renews it first), and that must fit in the
 * lease. Unset, WAHOOK_DB_OUTAGE_MAX is what fits with a margin to spare (a
 * lease set a moment ago needs no renewal); set, it must fit, or it is refused.
 * Reads WAHOOK_REPLY, the timeouts and WAHOOK_DB_TIMEOUT: all above it.
 */
static int
outage_after(void *cfg, void *ctx, int set, char *err, size_t errlen)
{
	struct drain_config *c = cfg;
	double fits;

	(void)ctx;
	c->call_timeout = c->http_timeout;
	if ((c->reply == DRAIN_REPLY_COMMAND || c->reply == DRAIN_REPLY_URL) &&
	    c->reply_timeout > c->call_timeout)
		c->call_timeout = c->reply_timeout;
	fits = c->lease - c->call_timeout - c->db_timeout - DRAIN_LEASE_MARGIN_S;
	if (!set)
		c->db_outage_max = fits - DRAIN_LEASE_MARGIN_S > 0 ?
		    fits - DRAIN_LEASE_MARGIN_S : 0;
	else if (c->db_outage_max > 0 && c->db_outage_max > fits) {
		snprintf(err, errlen, "WAHOOK_DB_OUTAGE_MAX (%g) must be 0 or at most "
		    "WAHOOK_LEASE (%g) - %s (%g) - WAHOOK_DB_TIMEOUT (%g) - %g: a reply sent "
		    "just before an outage must be recorded before its lease ends, or another "
		    "drainer sends it again", c->db_outage_max, c->lease,
		    c->call_timeout == c->http_timeout ? "WAHOOK_HTTP_TIMEOUT" :
		    "WAHOOK_REPLY_TIMEOUT", c->call_timeout, c->db_timeout,
		    DRAIN_LEASE_MARGIN_S);
		return -1;
	}
	c->lease_need = c->call_timeout + c->db_outage_max + c->db_timeout +
	    DRAIN_LEASE_MARGIN_S;
	return 0;
}

/* Copies an absolute directory path without trailing slashes into dst. */
static int
load_dir(const char *name, const char *v, char *dst, size_t dstlen, char *err,
    size_t errlen)
{
	struct stat st;
	size_t n = strlen(v);

	while (n > 1 && v[n - 1] == '/')
		n--;
	if (v[0] != '/') {
		snprintf(err, errlen, "%s: want an absolute path", name);
		return -1;
	}
	if (n >= dstlen) {
		snprintf(err, errlen, "%s: longer than %zu bytes", name, dstlen - 1);
		return -1;
	}
	memcpy(dst, v, n);
	dst[n] = '\0';
	if (stat(dst, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", name);
		return -1;
	}
	if (access(dst, W_OK | X_OK) == -1) {
		snprintf(err, errlen, "%s: not writable by this user", name);
		return -1;
	}
	return 0;
}

/* The media directory (checked here, once: a typo must stop the run with exit
 * 2, not fail every fetch), the size bytea holds without it, and the spool. */
static int
media_dir_after(void *cfg, void *ctx, int set, char *err, size_t errlen)
{
	struct media_config *c = cfg;
	const char *v = NULL;

	(void)ctx;
	(void)set;
	if (conf_get(drain_vars, "WAHOOK_MEDIA_DIR", &v, err, errlen) == -1)
		return -1;
	if (v != NULL && load_dir("WAHOOK_MEDIA_DIR", v, c->dir, sizeof(c->dir), err,
	    errlen) == -1)
		return -1;
	if (c->dir[0] == '\0' && c->max > 1073741823LL) {
		snprintf(err, errlen, "WAHOOK_MEDIA_MAX: at most 1073741823 bytes in PostgreSQL "
		    "(bytea's limit); set WAHOOK_MEDIA_DIR for larger items");
		return -1;
	}
	if (c->dir[0] != '\0')
		memcpy(c->spool, c->dir, sizeof(c->spool));
	else if (load_dir("TMPDIR", env_string("TMPDIR", "/tmp"), c->spool, sizeof(c->spool),
	    err, errlen) == -1)
		return -1;
	return 0;
}

enum { PART_DRAIN, PART_MEDIA };	/* drain_config_load(), media_config_load() */

#define AT(field) CONF_AT(struct drain_config, field)
#define MEDIA_AT(field) CONF_AT(struct media_config, field), .part = PART_MEDIA

/*
 * In the order they are read: the first error is the one reported, and an
 * after hook sees the entries above it (the timeouts see WAHOOK_LEASE).
 * WAHOOK_REPLY's hook reads the reply variables below it: only the winner's
 * are checked.
 */
const struct conf_var drain_vars[] = {
	{ "WAHOOK_DB", CONF_CONNINFO, .off = AT(db), .after = db_after,
	    .help = "libpq connection string or URI; unset: the PG* variables" },
	{ "WAHOOK_ACCESS_TOKEN", CONF_SECRET, .off = AT(token),
	    .help = "the Graph API access token" },
	{ "WAHOOK_ACCESS_TOKENS_FILE", CONF_STRING, .after = tokens_after,
	    .help = "a file of \"phone_number_id token\" lines, a token per number" },
	{ "WAHOOK_GRAPH_URL", CONF_STRING, "https://graph.facebook.com/v26.0",
	    .after = graph_after, .help = "the Graph API's base URL, its version last" },
	{ "WAHOOK_REPLY", CONF_STRING, .after = reply_after,
	    .help = "none: mark read, answer nothing" },
	{ "WAHOOK_REPLY_COMMAND", CONF_STRING,
	    .help = "a program that decides each reply" },
	{ "WAHOOK_REPLY_URL", CONF_STRING,
	    .help = "an http(s) URL that decides each reply (a signed POST)" },
	{ "WAHOOK_REPLY_URL_INSECURE", CONF_BOOL, "0", 0, 1,
	    .help = "1: allow http:// to a host that is not loopback" },
	{ "WAHOOK_REPLY_URL_SECRET", CONF_SECRET,
	    .help = "the key of the reply URL's signature" },
	{ "WAHOOK_REPLY_TEXT", CONF_STRING, "OK",
	    .help = "the answer to every message, UTF-8, at most 4096 characters" },
	{ "WAHOOK_TYPING", CONF_BOOL, "0", 0, 1, .off = AT(typing),
	    .help = "1: the typing indicator with the mark read" },
	{ "WAHOOK_CONCURRENCY", CONF_INT, "16", 1, 1024, .off = AT(concurrency),
	    .help = "conversations in flight" },
	{ "WAHOOK_MAX_RPS", CONF_DOUBLE, "80", 0.01, 100000, .off = AT(max_rps),
	    .help = "calls per second per business number" },
	{ "WAHOOK_RETRY_MIN", CONF_DOUBLE, "15", 0.001, 86400, .off = AT(retry_min),
	    .help = "least backoff between retries, seconds" },
	{ "WAHOOK_RETRY_MAX", CONF_DOUBLE, "3600", 0.001, 7 * 86400.0, .off = AT(retry_max),
	    .after = retry_after, .help = "most backoff between retries, seconds" },
	{ "WAHOOK_MAX_ATTEMPTS", CONF_INT, "10", 1, 1000, .off = AT(max_attempts),
	    .help = "failed calls before a row goes dead" },
	{ "WAHOOK_MAX_AGE", CONF_DOUBLE, "86400", 1, 365 * 86400.0, .off = AT(max_age),
	    .help = "seconds from arrival to dead" },
	{ "WAHOOK_LEASE", CONF_DOUBLE, "60", 0.2, 86400, .off = AT(lease),
	    .help = "seconds a claim hides a row from other drainers" },
	{ "WAHOOK_HTTP_TIMEOUT", CONF_DOUBLE, NULL, 0.05, 3600, .off = AT(http_timeout),
	    .after = http_timeout_after,
	    .help = "seconds per Graph call; unset: lease / 2, at most 20" },
	{ "WAHOOK_REPLY_TIMEOUT", CONF_DOUBLE, NULL, 0.05, 3600, .off = AT(reply_timeout),
	    .after = reply_timeout_after,
	    .help = "seconds per reply program or URL; unset: lease / 2, at most 10" },
	{ "WAHOOK_REPLY_WINDOW", CONF_DOUBLE, "86400", 0, 30 * 86400.0,
	    .off = AT(reply_window), .help = "seconds after Meta's timestamp; 0: no window" },
	{ "WAHOOK_DB_TIMEOUT", CONF_DOUBLE, "10", 1, 300, .off = AT(db_timeout),
	    .help = "seconds one database call may take" },
	{ "WAHOOK_DB_OUTAGE_MAX", CONF_DOUBLE, NULL, 0, 86400, .off = AT(db_outage_max),
	    .after = outage_after, .help = "seconds to ride out a lost database; unset: "
	    "lease - call timeout - WAHOOK_DB_TIMEOUT - 2, at least 0" },
	{ "WAHOOK_DB_PREPARE", CONF_ENUM, "auto", .words = db_prepare_names,
	    .off = AT(db_prepare), .help = "prepared statements" },
	{ "WAHOOK_MEDIA", CONF_ONOFF, "on", .off = MEDIA_AT(on),
	    .help = "keep inbound media" },
	{ "WAHOOK_MEDIA_MAX", CONF_LONG, "104857600", 1, 4.0 * 1024 * 1024 * 1024,
	    .off = MEDIA_AT(max), .help = "largest item fetched, bytes" },
	{ "WAHOOK_MEDIA_CONCURRENCY", CONF_INT, "4", 1, 64, .off = MEDIA_AT(concurrency),
	    .help = "media fetches in flight" },
	{ "WAHOOK_MEDIA_DIR", CONF_STRING, .after = media_dir_after, .part = PART_MEDIA,
	    .help = "a directory for media files; unset: in the database" },
	{ "WAHOOK_LOG", CONF_STRING,
	    .help = "where log lines go: stderr (unset), syslog or an absolute file path" },
	{ NULL }
};

int
drain_config_load(struct drain_config *c, int need_token, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	if (conf_load(drain_vars, PART_DRAIN, c, &need_token, err, errlen) == -1) {
		drain_config_free(c);
		return -1;
	}
	return 0;
}

int
media_config_load(struct media_config *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	return conf_load(drain_vars, PART_MEDIA, c, NULL, err, errlen);
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
