/*
 * test_config.c - cgi/responder/config.c and cgi/shared/env.c: the responder's environment read
 * once at start. Every test starts from an environment without WAHOOK_*
 * variables; secrets come from NAME or from a temp file named by NAME_FILE.
 * Errors must name the variable and never hold the secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "env.h"

static const char *vars[] = {
	"WAHOOK_APP_SECRET", "WAHOOK_APP_SECRET_FILE",
	"WAHOOK_VERIFY_TOKEN", "WAHOOK_VERIFY_TOKEN_FILE",
	"WAHOOK_DB", "WAHOOK_MAX_BODY",
	"WAHOOK_THREADS", "WAHOOK_BATCH_MAX", "WAHOOK_BATCH_BYTES",
	"WAHOOK_TEST_NUM", "WAHOOK_TEST_SECRET", "WAHOOK_TEST_SECRET_FILE",
};

/* temp files made by a test, removed by teardown */
static char tmpfiles[4][64];
static int ntmp;

static int
setup(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	ntmp = 0;
	return 0;
}

static int
teardown(void **state)
{
	int i;

	for (i = 0; i < ntmp; i++)
		unlink(tmpfiles[i]);
	ntmp = 0;
	return setup(state);
}

/* Writes len bytes to a new temp file; returns its path (valid until teardown). */
static const char *
temp_file(const char *data, size_t len)
{
	char *path;
	int fd;

	assert_true(ntmp < 4);
	path = tmpfiles[ntmp];
	snprintf(path, sizeof(tmpfiles[0]), "/tmp/wahook-test-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	ntmp++;
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static void
set(const char *name, const char *value)
{
	assert_int_equal(setenv(name, value, 1), 0);
}

/* config_load must fail with an error naming want and never holding secret. */
static void
load_fails(const char *want, const char *secret)
{
	struct config c;
	char err[ENV_ERR_MAX];

	err[0] = '\0';
	if (config_load(&c, err, sizeof(err)) != -1)
		fail_msg("config_load succeeded, want an error naming %s", want);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not name %s", err, want);
	if (secret != NULL && strstr(err, secret) != NULL)
		fail_msg("error \"%s\" holds the secret", err);
	/* nothing left to free, and freeing again is harmless */
	assert_int_equal(c.nsecrets, 0);
	assert_null(c.storage_);
	assert_null(c.token_storage_);
	config_free(&c);
}

static void
test_defaults(void **state)
{
	struct config c;
	char err[ENV_ERR_MAX];

	(void)state;
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.nsecrets, 0);	/* fail closed later, not here */
	assert_null(c.verify_token);
	assert_string_equal(c.db, "");
	assert_int_equal(c.max_body, 4 * 1024 * 1024);
	config_free(&c);

	/* set but empty counts as unset */
	set("WAHOOK_APP_SECRET", "");
	set("WAHOOK_VERIFY_TOKEN", "");
	set("WAHOOK_DB", "");
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.nsecrets, 0);
	assert_null(c.verify_token);
	assert_string_equal(c.db, "");
	config_free(&c);
}

static void
test_values_from_environment(void **state)
{
	struct config c;
	char err[ENV_ERR_MAX];

	(void)state;
	set("WAHOOK_APP_SECRET", "0123456789abcdef0123456789abcdef");
	set("WAHOOK_VERIFY_TOKEN", "my token");
	set("WAHOOK_DB", "host=/run/postgresql dbname=wahook");
	set("WAHOOK_MAX_BODY", "3145728");
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.nsecrets, 1);
	assert_int_equal(c.secrets[0].len, 32);
	assert_memory_equal(c.secrets[0].key, "0123456789abcdef0123456789abcdef", 32);
	assert_string_equal(c.verify_token, "my token");
	assert_string_equal(c.db, "host=/run/postgresql dbname=wahook");
	assert_int_equal(c.max_body, 3145728);
	config_free(&c);
	assert_int_equal(c.nsecrets, 0);
	assert_null(c.verify_token);
}

static void
test_secret_list(void **state)
{
	struct config c;
	char err[ENV_ERR_MAX];

	(void)state;
	set("WAHOOK_APP_SECRET", "oldsecret, newsecret ,\tthird");
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.nsecrets, 3);
	assert_int_equal(c.secrets[0].len, 9);
	assert_memory_equal(c.secrets[0].key, "oldsecret", 9);
	assert_int_equal(c.secrets[1].len, 9);
	assert_memory_equal(c.secrets[1].key, "newsecret", 9);
	assert_int_equal(c.secrets[2].len, 5);
	assert_memory_equal(c.secrets[2].key, "third", 5);
	config_free(&c);

	/* eight is the most */
	set("WAHOOK_APP_SECRET", "s1,s2,s3,s4,s5,s6,s7,s8");
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.nsecrets, CONFIG_MAX_SECRETS);
	assert_memory_equal(c.secrets[7].key, "s8", 2);
	config_free(&c);
	set("WAHOOK_APP_SECRET", "s1,s2,s3,s4,s5,s6,s7,s8,s9xyz");
	load_fails("WAHOOK_APP_SECRET", "s9xyz");
}

static void
test_secret_list_empty_item(void **state)
{
	static const char *lists[] = {
		"alpha1,,beta2", ",alpha1", "alpha1,", " , alpha1", "alpha1, \t ,beta2",
		",", " ",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		set("WAHOOK_APP_SECRET", lists[i]);
		load_fails("WAHOOK_APP_SECRET", "alpha1");
		load_fails("empty", "beta2");
	}
}

static void
test_split_secrets_directly(void **state)
{
	struct config c;
	char err[ENV_ERR_MAX];
	char *list;

	(void)state;
	memset(&c, 0, sizeof(c));
	list = strdup("a, bb");
	assert_non_null(list);
	assert_int_equal(config_split_secrets(&c, list, err, sizeof(err)), 0);
	assert_int_equal(c.nsecrets, 2);
	assert_int_equal(c.secrets[1].len, 2);
	assert_memory_equal(c.secrets[1].key, "bb", 2);
	config_free(&c);	/* owns list */
}

static void
test_secret_from_file(void **state)
{
	struct config c;
	char err[ENV_ERR_MAX];

	(void)state;
	set("WAHOOK_APP_SECRET_FILE", temp_file("filesecret\n", 11));
	set("WAHOOK_VERIFY_TOKEN_FILE", temp_file("filetoken\r\n", 11));
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.nsecrets, 1);
	assert_int_equal(c.secrets[0].len, 10);	/* no newline */
	assert_memory_equal(c.secrets[0].key, "filesecret", 10);
	assert_string_equal(c.verify_token, "filetoken");
	config_free(&c);

	/* a list in a file, without a final newline */
	set("WAHOOK_APP_SECRET_FILE", temp_file("one,two", 7));
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.nsecrets, 2);
	assert_int_equal(c.secrets[1].len, 3);
	assert_memory_equal(c.secrets[1].key, "two", 3);
	config_free(&c);
}

static void
test_secret_file_problems(void **state)
{
	char *big;

	(void)state;
	set("WAHOOK_APP_SECRET_FILE", "/nonexistent/wahook-secret");
	load_fails("WAHOOK_APP_SECRET_FILE", NULL);
	set("WAHOOK_APP_SECRET_FILE", temp_file("", 0));
	load_fails("WAHOOK_APP_SECRET", NULL);
	set("WAHOOK_APP_SECRET_FILE", temp_file("\n", 1));
	load_fails("empty", NULL);
	set("WAHOOK_APP_SECRET_FILE", temp_file("abc\0def", 7));
	load_fails("NUL", "abc");
	big = malloc(64 * 1024 + 1);
	assert_non_null(big);
	memset(big, 'k', 64 * 1024 + 1);
	set("WAHOOK_APP_SECRET_FILE", temp_file(big, 64 * 1024 + 1));
	free(big);
	load_fails("WAHOOK_APP_SECRET_FILE", "kkkk");
	unsetenv("WAHOOK_APP_SECRET_FILE");
	set("WAHOOK_VERIFY_TOKEN_FILE", "/nonexistent/wahook-token");
	load_fails("WAHOOK_VERIFY_TOKEN_FILE", NULL);
}

static void
test_both_name_and_file(void **state)
{
	struct config c;
	char err[ENV_ERR_MAX];

	(void)state;
	set("WAHOOK_APP_SECRET", "envsecret99");
	set("WAHOOK_APP_SECRET_FILE", temp_file("filesecret99\n", 13));
	load_fails("WAHOOK_APP_SECRET_FILE", "secret99");
	/* the error names both */
	assert_int_equal(config_load(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "WAHOOK_APP_SECRET "));
	assert_non_null(strstr(err, "WAHOOK_APP_SECRET_FILE"));

	unsetenv("WAHOOK_APP_SECRET");
	unsetenv("WAHOOK_APP_SECRET_FILE");
	set("WAHOOK_VERIFY_TOKEN", "envtoken99");
	set("WAHOOK_VERIFY_TOKEN_FILE", temp_file("filetoken99", 11));
	assert_int_equal(config_load(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "WAHOOK_VERIFY_TOKEN "));
	assert_non_null(strstr(err, "WAHOOK_VERIFY_TOKEN_FILE"));
	assert_null(strstr(err, "token99"));

	/* a secret already read is released when a later variable fails */
	set("WAHOOK_APP_SECRET", "goodsecret");
	load_fails("WAHOOK_VERIFY_TOKEN", "goodsecret");
}

static void
test_max_body(void **state)
{
	static const char *bad[] = {
		"10x", "-1", "0", "1023", "99999999999999999999", "134217729", "268435456",
		"1e6",
		" 4096", "4096 ", "+4096", "0x1000", "4096.0", "\t4096", "4 096",
	};
	struct config c;
	char err[ENV_ERR_MAX];
	size_t i;

	(void)state;
	set("WAHOOK_APP_SECRET", "bodysecret");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set("WAHOOK_MAX_BODY", bad[i]);
		if (config_load(&c, err, sizeof(err)) != -1)
			fail_msg("WAHOOK_MAX_BODY=\"%s\" accepted as %zu", bad[i], c.max_body);
		if (strstr(err, "WAHOOK_MAX_BODY") == NULL)
			fail_msg("\"%s\": error \"%s\" does not name WAHOOK_MAX_BODY",
			    bad[i], err);
		assert_null(strstr(err, "bodysecret"));
	}
	/* bounds: 1 KiB .. 128 MiB (STORE_BODIES_MAX: what one statement holds) */
	set("WAHOOK_MAX_BODY", "1024");
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.max_body, 1024);
	config_free(&c);
	set("WAHOOK_MAX_BODY", "134217728");
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.max_body, 134217728);
	config_free(&c);
	/* empty is "unset" (env.h): the default */
	set("WAHOOK_MAX_BODY", "");
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.max_body, 4194304);
	config_free(&c);
}

/* The group-commit knobs: defaults, bounds, and a refusal naming the variable. */
static void
test_threads_and_batch_bounds(void **state)
{
	static const struct {
		const char	*name, *value;
		int		 ok;
		size_t		 want;
	} cases[] = {
		{ "WAHOOK_THREADS", "", 1, 16 },
		{ "WAHOOK_THREADS", "1", 1, 1 },
		{ "WAHOOK_THREADS", "256", 1, 256 },
		{ "WAHOOK_THREADS", "0", 0, 0 },
		{ "WAHOOK_THREADS", "257", 0, 0 },
		{ "WAHOOK_THREADS", "8x", 0, 0 },
		{ "WAHOOK_BATCH_MAX", "", 1, 64 },
		{ "WAHOOK_BATCH_MAX", "1", 1, 1 },
		{ "WAHOOK_BATCH_MAX", "1000", 1, 1000 },
		{ "WAHOOK_BATCH_MAX", "0", 0, 0 },
		{ "WAHOOK_BATCH_MAX", "1001", 0, 0 },
		{ "WAHOOK_BATCH_BYTES", "", 1, 8388608 },
		{ "WAHOOK_BATCH_BYTES", "1024", 1, 1024 },
		{ "WAHOOK_BATCH_BYTES", "134217728", 1, 134217728 },
		{ "WAHOOK_BATCH_BYTES", "134217729", 0, 0 },
		{ "WAHOOK_BATCH_BYTES", "1073741824", 0, 0 },
		{ "WAHOOK_BATCH_BYTES", "1023", 0, 0 },
		{ "WAHOOK_BATCH_BYTES", "-1", 0, 0 },
	};
	struct config c;
	char err[ENV_ERR_MAX];
	size_t i, got;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set(cases[i].name, cases[i].value);
		if (!cases[i].ok) {
			if (config_load(&c, err, sizeof(err)) != -1)
				fail_msg("%s=\"%s\" accepted", cases[i].name, cases[i].value);
			if (strstr(err, cases[i].name) == NULL)
				fail_msg("%s: error \"%s\" does not name it", cases[i].name, err);
		} else {
			assert_int_equal(config_load(&c, err, sizeof(err)), 0);
			got = strcmp(cases[i].name, "WAHOOK_THREADS") == 0 ? (size_t)c.threads :
			    strcmp(cases[i].name, "WAHOOK_BATCH_MAX") == 0 ? c.batch_max :
			    c.batch_bytes;
			if (got != cases[i].want)
				fail_msg("%s=\"%s\" read as %zu", cases[i].name,
				    cases[i].value, got);
			config_free(&c);
		}
		unsetenv(cases[i].name);
	}
}

static void
test_env_long(void **state)
{
	static const char *bad[] = {
		"10x", "x10", " 10", "10 ", "\t10", "\n10", "+10", "1e3", "0x10", "1.0",
		"-", "--1", "9223372036854775808", "-9223372036854775809",
		"99999999999999999999999",
	};
	long long v;
	char err[ENV_ERR_MAX], tiny[8];
	size_t i;

	(void)state;
	assert_int_equal(env_long("WAHOOK_TEST_NUM", 7, 0, 10, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 7);
	set("WAHOOK_TEST_NUM", "");
	assert_int_equal(env_long("WAHOOK_TEST_NUM", 7, 0, 10, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 7);
	set("WAHOOK_TEST_NUM", "10");
	assert_int_equal(env_long("WAHOOK_TEST_NUM", 7, 0, 10, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 10);
	set("WAHOOK_TEST_NUM", "0");
	assert_int_equal(env_long("WAHOOK_TEST_NUM", 7, 0, 10, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 0);
	set("WAHOOK_TEST_NUM", "-5");
	assert_int_equal(env_long("WAHOOK_TEST_NUM", 7, -10, 10, &v, err, sizeof(err)), 0);
	assert_int_equal(v, -5);
	set("WAHOOK_TEST_NUM", "007");
	assert_int_equal(env_long("WAHOOK_TEST_NUM", 1, 0, 10, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 7);	/* decimal, not octal */
	set("WAHOOK_TEST_NUM", "9223372036854775807");
	assert_int_equal(env_long("WAHOOK_TEST_NUM", 0, 0, LLONG_MAX, &v, err,
	    sizeof(err)), 0);
	assert_true(v == LLONG_MAX);
	set("WAHOOK_TEST_NUM", "-9223372036854775808");
	assert_int_equal(env_long("WAHOOK_TEST_NUM", 0, LLONG_MIN, 0, &v, err,
	    sizeof(err)), 0);
	assert_true(v == LLONG_MIN);

	/* out of [min, max] */
	set("WAHOOK_TEST_NUM", "11");
	v = 42;
	assert_int_equal(env_long("WAHOOK_TEST_NUM", 7, 0, 10, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "WAHOOK_TEST_NUM"));
	assert_int_equal(v, 42);	/* untouched on failure */
	set("WAHOOK_TEST_NUM", "-1");
	assert_int_equal(env_long("WAHOOK_TEST_NUM", 7, 0, 10, &v, err, sizeof(err)), -1);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set("WAHOOK_TEST_NUM", bad[i]);
		err[0] = '\0';
		if (env_long("WAHOOK_TEST_NUM", 7, LLONG_MIN, LLONG_MAX, &v, err,
		    sizeof(err)) != -1)
			fail_msg("env_long accepted \"%s\" as %lld", bad[i], v);
		assert_non_null(strstr(err, "WAHOOK_TEST_NUM"));
	}

	/* a short error buffer is cut, never overrun */
	set("WAHOOK_TEST_NUM", "nope");
	memset(tiny, 'x', sizeof(tiny));
	assert_int_equal(env_long("WAHOOK_TEST_NUM", 7, 0, 10, &v, tiny, 5), -1);
	assert_int_equal(strlen(tiny), 4);
	assert_int_equal(tiny[5], 'x');
}

static void
test_env_double(void **state)
{
	static const char *bad[] = {
		"nan", "NaN", "inf", "-inf", "infinity", "1e999", "0.5x", "x", " 0.5",
		"\t0.5", "0.5 ", "", "-0.1", "2.5",
	};
	double v;
	char err[ENV_ERR_MAX];
	size_t i;

	(void)state;
	assert_int_equal(env_double("WAHOOK_TEST_NUM", 0.25, 0, 2, &v, err, sizeof(err)), 0);
	assert_true(v == 0.25);
	set("WAHOOK_TEST_NUM", "0.5");
	assert_int_equal(env_double("WAHOOK_TEST_NUM", 0.25, 0, 2, &v, err, sizeof(err)), 0);
	assert_true(v == 0.5);
	set("WAHOOK_TEST_NUM", "2");
	assert_int_equal(env_double("WAHOOK_TEST_NUM", 0.25, 0, 2, &v, err, sizeof(err)), 0);
	assert_true(v == 2.0);
	set("WAHOOK_TEST_NUM", "0");
	assert_int_equal(env_double("WAHOOK_TEST_NUM", 0.25, 0, 2, &v, err, sizeof(err)), 0);
	assert_true(v == 0.0);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i][0] == '\0')
			continue;	/* empty is unset: see below */
		set("WAHOOK_TEST_NUM", bad[i]);
		err[0] = '\0';
		v = 42;
		if (env_double("WAHOOK_TEST_NUM", 0.25, 0, 2, &v, err, sizeof(err)) != -1)
			fail_msg("env_double accepted \"%s\" as %g", bad[i], v);
		assert_non_null(strstr(err, "WAHOOK_TEST_NUM"));
		assert_true(v == 42);
	}
	set("WAHOOK_TEST_NUM", "");
	assert_int_equal(env_double("WAHOOK_TEST_NUM", 0.25, 0, 2, &v, err, sizeof(err)), 0);
	assert_true(v == 0.25);
}

static void
test_env_secret_and_string(void **state)
{
	char err[ENV_ERR_MAX], *s = (char *)"sentinel";

	(void)state;
	/* neither set: 0 and NULL */
	assert_int_equal(env_secret("WAHOOK_TEST_SECRET", &s, err, sizeof(err)), 0);
	assert_null(s);
	/* only one trailing newline (and CR) goes */
	set("WAHOOK_TEST_SECRET_FILE", temp_file("  spaced secret \r\n", 18));
	assert_int_equal(env_secret("WAHOOK_TEST_SECRET", &s, err, sizeof(err)), 0);
	assert_string_equal(s, "  spaced secret ");
	env_free_secret(s);
	set("WAHOOK_TEST_SECRET", "inline");
	unsetenv("WAHOOK_TEST_SECRET_FILE");
	assert_int_equal(env_secret("WAHOOK_TEST_SECRET", &s, err, sizeof(err)), 0);
	assert_string_equal(s, "inline");
	env_free_secret(s);
	env_free_secret(NULL);

	assert_string_equal(env_string("WAHOOK_TEST_NUM", "dflt"), "dflt");
	set("WAHOOK_TEST_NUM", "");
	assert_string_equal(env_string("WAHOOK_TEST_NUM", "dflt"), "dflt");
	set("WAHOOK_TEST_NUM", "v");
	assert_string_equal(env_string("WAHOOK_TEST_NUM", "dflt"), "v");
	assert_null(env_string("WAHOOK_NOT_SET_ANYWHERE", NULL));
}

/* WAHOOK_DB is parsed at start: a typo is exit 2 naming it, never its value */
static void
test_db_conninfo(void **state)
{
	static const char *const good[] = {
		"host=/run/postgresql dbname=wahook user=wahook_ingest",
		"host=db1,db2 port=5432,5433 target_session_attrs=read-write dbname=w",
		"postgresql://wahook@localhost:5432/wahook?connect_timeout=3",
		"dbname = 'my db' password='it\\'s'",
	};
	static const struct {
		const char *value, *want, *secret;
	} bad[] = {
		/* what a typo gives: the keyword is named */
		{ "host=/run/postgresql dbnam=wahook", "\"dbnam\"", NULL },
		{ "dbname=w passwrd=hunter2secret", "\"passwrd\"", "hunter2secret" },
		/* malformed: nothing of the value is shown */
		{ "host=/tmp password=hunter2secret dbname", "WAHOOK_DB", "hunter2secret" },
		{ "host=/tmp hunter2secret", "WAHOOK_DB", "hunter2secret" },
		{ "password='hunter2secret", "WAHOOK_DB", "hunter2secret" },
		{ "postgresql://u:hunter2secret@h/db?bogus=1", "WAHOOK_DB", "hunter2secret" },
	};
	const char *v;
	char err[ENV_ERR_MAX];
	struct config c;
	size_t i;

	(void)state;
	assert_int_equal(env_conninfo("WAHOOK_DB", &v, err, sizeof(err)), 0);
	assert_string_equal(v, "");	/* unset: libpq's PG* defaults */
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		set("WAHOOK_DB", good[i]);
		if (config_load(&c, err, sizeof(err)) != 0)
			fail_msg("%s: refused: %s", good[i], err);
		assert_string_equal(c.db, good[i]);
		config_free(&c);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set("WAHOOK_DB", bad[i].value);
		load_fails("WAHOOK_DB", bad[i].secret);
		err[0] = '\0';
		assert_int_equal(env_conninfo("WAHOOK_DB", &v, err, sizeof(err)), -1);
		if (strstr(err, bad[i].want) == NULL)
			fail_msg("%s: error \"%s\" does not hold %s", bad[i].value, err,
			    bad[i].want);
		if (bad[i].secret != NULL && strstr(err, bad[i].secret) != NULL)
			fail_msg("%s: error \"%s\" holds the password", bad[i].value, err);
	}
}

static char seen_names[8][128];
static size_t nseen;

static void
collect(const char *name, void *ctx)
{
	assert_ptr_equal(ctx, seen_names);
	assert_true(nseen < 8);
	snprintf(seen_names[nseen++], sizeof(seen_names[0]), "%s", name);
}

/* Unknown WAHOOK_* names are reported; each program's own, the other's and
 * the scripts' are not (one environment file may serve them all). */
static void
test_unknown_variables(void **state)
{
	static const char *const *const fcgi_view[] = {
		env_names_fcgi, env_names_drain, env_names_scripts, NULL
	};
	static const char *const *const fcgi_alone[] = { env_names_fcgi, NULL };
	char long_name[300];
	char *envp[] = {
		"PATH=/usr/bin", "WAHOOK_APP_SECRET_FILE=/etc/wahook/app-secret",
		"WAHOOK_APP_SECRETFILE=/etc/wahook/app-secret", "WAHOOK_DB=",
		"WAHOOK_ACCESS_TOKEN_FILE=/etc/wahook/access-token",
		"WAHOOK_RETENTION_DAYS=30", "wahook_db=lower case is not ours",
		"WAHOOK_MAX_BODY_BYTES=1", "WAHOOK_DBX", long_name, NULL
	};

	(void)state;
	memset(long_name, 'X', sizeof(long_name) - 1);
	memcpy(long_name, "WAHOOK_", 7);
	long_name[sizeof(long_name) - 1] = '\0';
	nseen = 0;
	assert_int_equal(env_unknown(envp, fcgi_view, collect, seen_names), 4);
	assert_string_equal(seen_names[0], "WAHOOK_APP_SECRETFILE");
	assert_string_equal(seen_names[1], "WAHOOK_MAX_BODY_BYTES");
	assert_string_equal(seen_names[2], "WAHOOK_DBX");	/* no '=' at all */
	assert_int_equal(strlen(seen_names[3]), 127);	/* truncated, NUL-terminated */
	/* with its own table alone, the drainer's token file would be reported */
	nseen = 0;
	assert_int_equal(env_unknown(envp, fcgi_alone, collect, seen_names), 6);
	assert_string_equal(seen_names[1], "WAHOOK_ACCESS_TOKEN_FILE");
	assert_string_equal(seen_names[2], "WAHOOK_RETENTION_DAYS");
	/* every name the responder reads is in its table */
	nseen = 0;
	{
		char *mine[] = { "WAHOOK_APP_SECRET=a", "WAHOOK_APP_SECRET_FILE=b",
		    "WAHOOK_VERIFY_TOKEN=c", "WAHOOK_VERIFY_TOKEN_FILE=d", "WAHOOK_DB=e",
		    "WAHOOK_MAX_BODY=f", NULL };
		assert_int_equal(env_unknown(mine, fcgi_alone, collect, seen_names), 0);
	}
	assert_int_equal(env_unknown(NULL, fcgi_alone, collect, seen_names), 0);
}

/* env_names_fcgi is generated from config_vars (tools/conf-names), in its
 * order, NAME_FILE after each secret; the secrets are in env_names_secret */
static void
test_table_gives_the_known_names(void **state)
{
	const char *const *n = env_names_fcgi;
	const struct conf_var *e;
	char file[128];

	(void)state;
	for (e = config_vars; e->name != NULL; e++) {
		assert_non_null(*n);
		assert_string_equal(*n++, e->name);
		if (e->kind != CONF_SECRET)
			continue;
		snprintf(file, sizeof(file), "%s_FILE", e->name);
		assert_non_null(*n);
		assert_string_equal(*n++, file);
	}
	assert_null(*n);
	for (n = env_names_secret; *n != NULL && strcmp(*n, "WAHOOK_APP_SECRET") != 0; n++)
		;
	assert_non_null(*n);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_values_from_environment),
		T(test_secret_list),
		T(test_secret_list_empty_item),
		T(test_split_secrets_directly),
		T(test_secret_from_file),
		T(test_secret_file_problems),
		T(test_both_name_and_file),
		T(test_max_body),
		T(test_threads_and_batch_bounds),
		T(test_env_long),
		T(test_env_double),
		T(test_env_secret_and_string),
		T(test_db_conninfo),
		T(test_unknown_variables),
		T(test_table_gives_the_known_names),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
