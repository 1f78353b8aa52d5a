/*
 * test_drain_config.c - cgi/drainer/drain_config.c: wahook-drain's environment, read
 * once at start. Every test starts from an environment without WAHOOK_*
 * variables. Defaults are the documented ones; each bad value is refused with
 * an error naming its variable and never holding the access token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "drain_config.h"
#include "media_config.h"
#include "env.h"

#define TOKEN "EAAGunit-test-token-0c1d2e3f"

static char tmpfile_path[64];

static int
setup(void **state)
{
	const char *const *n;

	(void)state;
	for (n = env_names_drain; *n != NULL; n++)
		unsetenv(*n);
	tmpfile_path[0] = '\0';
	return 0;
}

static int
teardown(void **state)
{
	if (tmpfile_path[0] != '\0')
		unlink(tmpfile_path);
	return setup(state);
}

static void
set(const char *name, const char *value)
{
	assert_int_equal(setenv(name, value, 1), 0);
}

/* drain_config_load must fail naming want, without the token in the message. */
static void
load_fails(int need_token, const char *want)
{
	struct drain_config c;
	char err[512];

	err[0] = '\0';
	if (drain_config_load(&c, need_token, err, sizeof(err)) != -1)
		fail_msg("accepted, want an error naming %s", want);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not name %s", err, want);
	if (strstr(err, "unit-test-token") != NULL)
		fail_msg("error \"%s\" holds the token", err);
	assert_null(c.token);	/* wiped and freed on the way out */
	drain_config_free(&c);
}

static void
test_defaults(void **state)
{
	struct drain_config c;
	char err[512];

	(void)state;
	/* --status, --metrics, --requeue-dead need no token */
	assert_int_equal(drain_config_load(&c, 0, err, sizeof(err)), 0);
	assert_null(c.token);
	assert_string_equal(c.db, "");
	assert_string_equal(c.graph_url, "https://graph.facebook.com/v26.0");
	assert_string_equal(c.reply_text, "OK");
	assert_int_equal(c.typing, 0);
	assert_int_equal(c.concurrency, 16);
	assert_true(c.max_rps == 80);
	assert_true(c.retry_min == 15);
	assert_true(c.retry_max == 3600);
	assert_int_equal(c.max_attempts, 10);
	assert_true(c.max_age == 86400);
	assert_true(c.lease == 60);
	assert_true(c.http_timeout == 20);	/* min(20, lease / 2) */
	drain_config_free(&c);

	/* draining does */
	load_fails(1, "WAHOOK_ACCESS_TOKEN");
	/* a short lease brings the default HTTP timeout down with it */
	set("WAHOOK_LEASE", "10");
	set("WAHOOK_ACCESS_TOKEN", TOKEN);
	assert_int_equal(drain_config_load(&c, 1, err, sizeof(err)), 0);
	assert_true(c.http_timeout == 5);
	assert_string_equal(c.token, TOKEN);
	drain_config_free(&c);
	assert_null(c.token);
}

static void
test_values_from_environment(void **state)
{
	struct drain_config c;
	char err[512];

	(void)state;
	set("WAHOOK_DB", "host=/run/postgresql dbname=wahook user=wahook_drain");
	set("WAHOOK_GRAPH_URL", "http://127.0.0.1:9/v99.0///");
	set("WAHOOK_REPLY_TEXT", "Danke \xc3\xa4 \xf0\x9f\x98\x80");
	set("WAHOOK_TYPING", "1");
	set("WAHOOK_CONCURRENCY", "4");
	set("WAHOOK_MAX_RPS", "20");
	set("WAHOOK_RETRY_MIN", "0.5");
	set("WAHOOK_RETRY_MAX", "30");
	set("WAHOOK_MAX_ATTEMPTS", "3");
	set("WAHOOK_MAX_AGE", "600");
	set("WAHOOK_LEASE", "30");
	set("WAHOOK_HTTP_TIMEOUT", "15");
	assert_int_equal(drain_config_load(&c, 0, err, sizeof(err)), 0);
	assert_string_equal(c.db, "host=/run/postgresql dbname=wahook user=wahook_drain");
	assert_string_equal(c.graph_url, "http://127.0.0.1:9/v99.0");	/* no trailing / */
	assert_string_equal(c.reply_text, "Danke \xc3\xa4 \xf0\x9f\x98\x80");
	assert_int_equal(c.typing, 1);
	assert_int_equal(c.concurrency, 4);
	assert_true(c.max_rps == 20);
	assert_true(c.retry_min == 0.5);
	assert_true(c.retry_max == 30);
	assert_int_equal(c.max_attempts, 3);
	assert_true(c.max_age == 600);
	assert_true(c.lease == 30);
	assert_true(c.http_timeout == 15);
	drain_config_free(&c);
}

static void
test_token_from_file(void **state)
{
	struct drain_config c;
	char err[512];
	int fd;

	(void)state;
	snprintf(tmpfile_path, sizeof(tmpfile_path), "/tmp/wahook-test-XXXXXX");
	assert_true((fd = mkstemp(tmpfile_path)) >= 0);
	assert_int_equal(write(fd, TOKEN "\n", sizeof(TOKEN)), (ssize_t)sizeof(TOKEN));
	close(fd);
	set("WAHOOK_ACCESS_TOKEN_FILE", tmpfile_path);
	assert_int_equal(drain_config_load(&c, 1, err, sizeof(err)), 0);
	assert_string_equal(c.token, TOKEN);	/* the file's newline trimmed */
	drain_config_free(&c);
	/* both set: which one would win is not for us to guess */
	set("WAHOOK_ACCESS_TOKEN", TOKEN);
	load_fails(1, "WAHOOK_ACCESS_TOKEN");
}

/* Each bad value, alone, is refused naming its variable. */
static void
test_bad_values(void **state)
{
	static const struct {
		const char *name, *value, *want;
	} cases[] = {
		{ "WAHOOK_ACCESS_TOKEN", TOKEN " x", "WAHOOK_ACCESS_TOKEN" },
		{ "WAHOOK_ACCESS_TOKEN", TOKEN "\r\nX-Evil: 1", "WAHOOK_ACCESS_TOKEN" },
		{ "WAHOOK_ACCESS_TOKEN", TOKEN "\xc3\xa4", "WAHOOK_ACCESS_TOKEN" },
		{ "WAHOOK_DB", "host=/run/postgresql dbnam=wahook", "WAHOOK_DB" },
		{ "WAHOOK_GRAPH_URL", "graph.facebook.com/v26.0", "WAHOOK_GRAPH_URL" },
		{ "WAHOOK_GRAPH_URL", "ftp://graph.facebook.com", "WAHOOK_GRAPH_URL" },
		{ "WAHOOK_GRAPH_URL", "https://graph.facebook.com/v26.0 ", "WAHOOK_GRAPH_URL" },
		{ "WAHOOK_REPLY_TEXT", "\xc0\xaf", "WAHOOK_REPLY_TEXT" },	/* overlong '/' */
		{ "WAHOOK_REPLY_TEXT", "\xed\xa0\x80", "WAHOOK_REPLY_TEXT" },	/* a surrogate */
		{ "WAHOOK_REPLY_TEXT", "caf\xe9", "WAHOOK_REPLY_TEXT" },	/* Latin-1 */
		{ "WAHOOK_TYPING", "yes", "WAHOOK_TYPING" },
		{ "WAHOOK_TYPING", "2", "WAHOOK_TYPING" },
		{ "WAHOOK_CONCURRENCY", "0", "WAHOOK_CONCURRENCY" },
		{ "WAHOOK_CONCURRENCY", "1025", "WAHOOK_CONCURRENCY" },
		{ "WAHOOK_MAX_RPS", "0", "WAHOOK_MAX_RPS" },
		{ "WAHOOK_MAX_RPS", "nan", "WAHOOK_MAX_RPS" },
		{ "WAHOOK_RETRY_MIN", "-1", "WAHOOK_RETRY_MIN" },
		{ "WAHOOK_RETRY_MAX", "1", "WAHOOK_RETRY_MAX" },	/* below RETRY_MIN's 15 */
		{ "WAHOOK_MAX_ATTEMPTS", "3.5", "WAHOOK_MAX_ATTEMPTS" },
		{ "WAHOOK_MAX_AGE", "0", "WAHOOK_MAX_AGE" },
		{ "WAHOOK_LEASE", "0.1", "WAHOOK_LEASE" },
		{ "WAHOOK_HTTP_TIMEOUT", "31", "WAHOOK_HTTP_TIMEOUT" },	/* > lease / 2 */
		{ "WAHOOK_HTTP_TIMEOUT", "inf", "WAHOOK_HTTP_TIMEOUT" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setup(NULL);
		set(cases[i].name, cases[i].value);
		if (strcmp(cases[i].name, "WAHOOK_ACCESS_TOKEN") != 0)
			set("WAHOOK_ACCESS_TOKEN", TOKEN);
		load_fails(1, cases[i].want);
	}
}

/* Meta's limit is 4096 characters, not bytes. */
static void
test_reply_length(void **state)
{
	struct drain_config c;
	char err[512], *text;
	size_t i;

	(void)state;
	text = malloc(4097 * 2 + 1);
	assert_non_null(text);
	for (i = 0; i < 4096; i++)
		memcpy(text + 2 * i, "\xc3\xa4", 2);	/* 4096 characters, 8192 bytes */
	text[2 * 4096] = '\0';
	set("WAHOOK_REPLY_TEXT", text);
	assert_int_equal(drain_config_load(&c, 0, err, sizeof(err)), 0);
	assert_int_equal(strlen(c.reply_text), 8192);
	drain_config_free(&c);
	memcpy(text + 2 * 4096, "\xc3\xa4", 3);	/* one more */
	set("WAHOOK_REPLY_TEXT", text);
	load_fails(0, "WAHOOK_REPLY_TEXT");
	free(text);
}

static int
listed(const char *const *names, const char *name)
{
	for (; *names != NULL; names++)
		if (strcmp(*names, name) == 0)
			return 1;
	return 0;
}

/* env_names_drain is generated from drain_vars (tools/conf-names): the same
 * names, NAME_FILE for each secret; every secret is in env_names_secret (what
 * the drainer scrubs before it starts a reply program) */
static void
test_table_gives_the_known_names(void **state)
{
	const struct conf_var *e;
	size_t n = 0, want = 0;
	char file[128];

	(void)state;
	for (e = drain_vars; e->name != NULL; e++, want++) {
		assert_true(listed(env_names_drain, e->name));
		assert_non_null(e->help);
		if (e->kind == CONF_SECRET) {
			snprintf(file, sizeof(file), "%s_FILE", e->name);
			assert_true(listed(env_names_drain, file));
			want++;
		}
		if (e->kind == CONF_SECRET || e->kind == CONF_CONNINFO)
			assert_true(listed(env_names_secret, e->name));
	}
	while (env_names_drain[n] != NULL)
		n++;
	assert_int_equal(n, want);
	assert_true(listed(env_names_secret, "WAHOOK_ACCESS_TOKEN"));
	assert_true(listed(env_names_secret, "WAHOOK_REPLY_URL_SECRET"));
	assert_true(listed(env_names_secret, "WAHOOK_DB"));
}

/* the media entries of the same table fill struct media_config */
static void
test_media_defaults_and_bounds(void **state)
{
	struct media_config m;
	char err[512];

	(void)state;
	assert_int_equal(media_config_load(&m, err, sizeof(err)), 0);
	assert_int_equal(m.on, 1);
	assert_int_equal(m.max, 104857600);
	assert_int_equal(m.concurrency, 4);
	assert_string_equal(m.dir, "");
	set("WAHOOK_MEDIA", "yes");
	assert_int_equal(media_config_load(&m, err, sizeof(err)), -1);
	assert_string_equal(err, "WAHOOK_MEDIA: want on or off");
	set("WAHOOK_MEDIA", "off");
	set("WAHOOK_MEDIA_CONCURRENCY", "65");
	assert_int_equal(media_config_load(&m, err, sizeof(err)), -1);
	assert_string_equal(err, "WAHOOK_MEDIA_CONCURRENCY=65: want a whole number from 1 to 64");
	set("WAHOOK_MEDIA_CONCURRENCY", "64");
	set("WAHOOK_MEDIA_MAX", "2000000000");
	assert_int_equal(media_config_load(&m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bytea's limit"));
	set("WAHOOK_MEDIA_DIR", "/tmp/");
	assert_int_equal(media_config_load(&m, err, sizeof(err)), 0);
	assert_int_equal(m.on, 0);
	assert_string_equal(m.dir, "/tmp");
	assert_string_equal(m.spool, "/tmp");
	assert_int_equal(m.max, 2000000000);
}

/*
 * A call's result is recorded before its lease ends through the outage ridden
 * out: unset, WAHOOK_DB_OUTAGE_MAX is lease - call timeout - WAHOOK_DB_TIMEOUT
 * - 2, at least 0; set, call + outage + db timeout + 1 must fit the lease (or
 * it is 0); lease_need is that sum, what a call starts with at least.
 */
static void
test_outage_fits_the_lease(void **state)
{
	static const struct {
		const char	*lease, *http, *reply, *db, *outage, *command;
		double		 want, need;	/* want < 0: refused */
	} cases[] = {
		{ NULL, NULL, NULL, NULL, NULL, NULL, 28, 59 },		/* 60 20 10 */
		{ NULL, NULL, NULL, NULL, "29", NULL, 29, 60 },
		{ NULL, NULL, NULL, NULL, "29.01", NULL, -1, 0 },
		{ NULL, NULL, NULL, NULL, "60", NULL, -1, 0 },		/* the old default */
		{ NULL, NULL, NULL, NULL, "0", NULL, 0, 31 },
		{ "10", "2", NULL, "2", NULL, NULL, 4, 9 },		/* the tests' */
		{ "4", "2", NULL, NULL, NULL, NULL, 0, 13 },		/* too short: 0 */
		{ "4", "2", NULL, NULL, "0", NULL, 0, 13 },
		{ "4", "2", NULL, NULL, "1", NULL, -1, 0 },
		/* a reply program's timeout counts when it is the longer one */
		{ NULL, NULL, "25", NULL, NULL, "/bin/sh", 23, 59 },
		{ NULL, NULL, "25", NULL, "25", "/bin/sh", -1, 0 },
		{ NULL, NULL, "25", NULL, NULL, NULL, 28, 59 },		/* no program */
	};
	struct drain_config c;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setup(NULL);
		if (cases[i].lease != NULL)
			set("WAHOOK_LEASE", cases[i].lease);
		if (cases[i].http != NULL)
			set("WAHOOK_HTTP_TIMEOUT", cases[i].http);
		if (cases[i].reply != NULL)
			set("WAHOOK_REPLY_TIMEOUT", cases[i].reply);
		if (cases[i].db != NULL)
			set("WAHOOK_DB_TIMEOUT", cases[i].db);
		if (cases[i].outage != NULL)
			set("WAHOOK_DB_OUTAGE_MAX", cases[i].outage);
		if (cases[i].command != NULL)
			set("WAHOOK_REPLY_COMMAND", cases[i].command);
		if (cases[i].want < 0) {
			load_fails(0, "WAHOOK_DB_OUTAGE_MAX");
			continue;
		}
		if (drain_config_load(&c, 0, err, sizeof(err)) != 0)
			fail_msg("case %zu: %s", i, err);
		if (c.db_outage_max != cases[i].want || c.lease_need != cases[i].need)
			fail_msg("case %zu: outage %g need %g, want %g and %g", i,
			    c.db_outage_max, c.lease_need, cases[i].want, cases[i].need);
		drain_config_free(&c);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_values_from_environment),
		T(test_token_from_file),
		T(test_bad_values),
		T(test_reply_length),
		T(test_table_gives_the_known_names),
		T(test_media_defaults_and_bounds),
		T(test_outage_fits_the_lease),
	};

	return cmocka_run_group_tests_name("drain_config", tests, NULL, NULL);
}
