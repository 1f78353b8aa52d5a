/*
 * config.c - the responder's environment (see config.h). A missing app secret
 * is not an error at start: the responder fails closed (500 per POST, with a log
 * line) so a misdeployment is loud but the GET verification still works.
 */
#include "config.h"
#include "conf.h"
#include "db.h"
#include "env.h"
#include "store.h"

#include <stdio.h>
#include <string.h>

int
config_split_secrets(struct config *c, char *list, char *err, size_t errlen)
{
	char *p, *start, *end;

	c->storage_ = list;
	c->storage_len_ = strlen(list);
	c->nsecrets = 0;
	for (p = list; ; p++) {
		start = p;
		while (*p != ',' && *p != '\0')
			p++;
		end = p;
		while (start < end && (*start == ' ' || *start == '\t'))
			start++;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == start) {
			snprintf(err, errlen, "WAHOOK_APP_SECRET: empty item in the list");
			return -1;
		}
		if (c->nsecrets == CONFIG_MAX_SECRETS) {
			snprintf(err, errlen, "WAHOOK_APP_SECRET: more than %d secrets",
			    CONFIG_MAX_SECRETS);
			return -1;
		}
		c->secrets[c->nsecrets].key = start;
		c->secrets[c->nsecrets].len = (size_t)(end - start);
		c->nsecrets++;
		if (*p == '\0')
			break;
		*p = '\0';	/* p is the comma; end <= p */
	}
	return 0;
}

/* c->storage_ holds the list as read: split it (config_split_secrets() owns it) */
static int
split_after(void *cfg, void *ctx, int set, char *err, size_t errlen)
{
	struct config *c = cfg;

	(void)ctx;
	return set ? config_split_secrets(c, c->storage_, err, errlen) : 0;
}

static int
token_after(void *cfg, void *ctx, int set, char *err, size_t errlen)
{
	struct config *c = cfg;

	(void)ctx;
	(void)set;
	(void)err;
	(void)errlen;
	c->verify_token = c->token_storage_;
	return 0;
}

#define AT(field) CONF_AT(struct config, field)
/* a byte count is from 1 KiB to what one statement can hold */
#define BYTES_WHY "(128 MiB of bodies is the most one statement holds)"
_Static_assert(STORE_BODIES_MAX == 128L * 1024 * 1024, "BYTES_WHY says 128 MiB");

/* In the order they are read: the first error is the one reported. */
const struct conf_var config_vars[] = {
	{ "WAHOOK_APP_SECRET", CONF_SECRET, .off = AT(storage_), .after = split_after,
	    .help = "the Meta app's secret; a comma-separated list while rotating" },
	{ "WAHOOK_VERIFY_TOKEN", CONF_SECRET, .off = AT(token_storage_),
	    .after = token_after, .help = "the token of Meta's verification GET" },
	{ "WAHOOK_DB", CONF_CONNINFO, .off = AT(db),
	    .help = "libpq connection string or URI; unset: the PG* variables" },
	{ "WAHOOK_MAX_BODY", CONF_SIZE, "4194304", 1024, STORE_BODIES_MAX,
	    .off = AT(max_body), .why = BYTES_WHY, .help = "largest body accepted, bytes" },
	{ "WAHOOK_DB_TIMEOUT", CONF_DOUBLE, "15", 1, 300, .off = AT(db_timeout),
	    .help = "seconds one database call may take" },
	{ "WAHOOK_DB_PREPARE", CONF_ENUM, "auto", .words = db_prepare_names,
	    .off = AT(db_prepare), .help = "prepared statements" },
	{ "WAHOOK_BODY_TIMEOUT", CONF_DOUBLE, "10", 1, 600, .off = AT(body_timeout),
	    .help = "seconds to receive a whole body" },
	{ "WAHOOK_BODY_MIN_RATE", CONF_LONG, "16384", 0, 1024.0 * 1024 * 1024,
	    .off = AT(body_min_rate), .help = "bytes per second a body keeps up; 0: any" },
	{ "WAHOOK_THREADS", CONF_INT, "16", 1, 256, .off = AT(threads),
	    .help = "requests in hand per FastCGI process" },
	{ "WAHOOK_BATCH_MAX", CONF_SIZE, "64", 1, 1000, .off = AT(batch_max),
	    .help = "webhooks per statement" },
	{ "WAHOOK_BATCH_BYTES", CONF_SIZE, "8388608", 1024, STORE_BODIES_MAX,
	    .off = AT(batch_bytes), .why = BYTES_WHY, .help = "bytes of bodies per statement" },
	{ "WAHOOK_LOG", CONF_STRING,
	    .help = "where log lines go: stderr (unset), syslog or an absolute file path" },
	{ NULL }
};

int
config_load(struct config *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	if (conf_load(config_vars, 0, c, NULL, err, errlen) == -1) {
		config_free(c);
		return -1;
	}
	return 0;
}

void
config_free(struct config *c)
{
	/* the split put NULs where the commas were: wipe the whole span */
	if (c->storage_ != NULL)
		explicit_bzero(c->storage_, c->storage_len_);
	env_free_secret(c->storage_);
	env_free_secret(c->token_storage_);
	memset(c, 0, sizeof(*c));
}
