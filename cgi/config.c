/*
 * config.c - the responder's environment (see config.h). A missing app secret
 * is not an error at start: the responder fails closed (500 per POST, with a log
 * line) so a misdeployment is loud but the GET verification still works.
 */
#include "config.h"
#include "db.h"
#include "env.h"
#include "store.h"

#include <stdio.h>
#include <string.h>

/* A byte count from 1 KiB to what one statement can hold (STORE_BODIES_MAX). */
static int
load_bytes(const char *name, long long def, long long *out, char *err, size_t errlen)
{
	size_t n;

	if (env_long(name, def, 1024, STORE_BODIES_MAX, out, err, errlen) == 0)
		return 0;
	n = strlen(err);
	if (n < errlen)
		snprintf(err + n, errlen - n, " (%ld MiB of bodies is the most one "
		    "statement holds)", STORE_BODIES_MAX >> 20);
	return -1;
}

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

int
config_load(struct config *c, char *err, size_t errlen)
{
	char *secrets = NULL;
	long long max_body, n;

	memset(c, 0, sizeof(*c));
	if (env_secret("WAHOOK_APP_SECRET", &secrets, err, errlen) == -1)
		goto fail;
	if (secrets != NULL &&
	    config_split_secrets(c, secrets, err, errlen) == -1)
		goto fail;	/* c->storage_ owns secrets now */
	if (env_secret("WAHOOK_VERIFY_TOKEN", &c->token_storage_, err, errlen) == -1)
		goto fail;
	c->verify_token = c->token_storage_;
	if (env_conninfo("WAHOOK_DB", &c->db, err, errlen) == -1)
		goto fail;
	if (load_bytes("WAHOOK_MAX_BODY", CONFIG_DEFAULT_MAX_BODY, &max_body, err,
	    errlen) == -1)
		goto fail;
	c->max_body = (size_t)max_body;
	if (env_double("WAHOOK_DB_TIMEOUT", CONFIG_DEFAULT_DB_TIMEOUT, 1, 300,
	    &c->db_timeout, err, errlen) == -1)
		goto fail;
	if (env_choice("WAHOOK_DB_PREPARE", db_prepare_names, DB_PREPARE_AUTO,
	    &c->db_prepare, err, errlen) == -1)
		goto fail;
	if (env_double("WAHOOK_BODY_TIMEOUT", CONFIG_DEFAULT_BODY_TIMEOUT, 1, 600,
	    &c->body_timeout, err, errlen) == -1)
		goto fail;
	if (env_long("WAHOOK_BODY_MIN_RATE", CONFIG_DEFAULT_BODY_MIN_RATE, 0,
	    1024L * 1024 * 1024, &c->body_min_rate, err, errlen) == -1)
		goto fail;
	if (env_long("WAHOOK_THREADS", CONFIG_DEFAULT_THREADS, 1, 256, &n, err,
	    errlen) == -1)
		goto fail;
	c->threads = (int)n;
	if (env_long("WAHOOK_BATCH_MAX", CONFIG_DEFAULT_BATCH_MAX, 1, 1000, &n, err,
	    errlen) == -1)
		goto fail;
	c->batch_max = (size_t)n;
	if (load_bytes("WAHOOK_BATCH_BYTES", CONFIG_DEFAULT_BATCH_BYTES, &n, err,
	    errlen) == -1)
		goto fail;
	c->batch_bytes = (size_t)n;
	return 0;
fail:
	config_free(c);
	return -1;
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
