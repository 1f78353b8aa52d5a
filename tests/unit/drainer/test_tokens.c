/*
 * test_tokens.c - cgi/drainer/tokens.c: the WAHOOK_ACCESS_TOKENS_FILE format (pairs,
 * comments, blank lines, CRLF), what it refuses with the line number and never
 * a field, lookups, and the file checks (mode, regular file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tokens.h"

static struct tokens *
parse_ok(const char *text)
{
	struct tokens *t = NULL;
	char err[256] = "";

	if (tokens_parse(text, strlen(text), &t, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	return t;
}

static void
test_pairs_and_lookup(void **state)
{
	struct tokens *t;

	(void)state;
	t = parse_ok("# numbers of the shop\n"
	    "106540352242922 EAAGtokenA\n"
	    "\n"
	    "   \t\n"
	    "  # indented comment\n"
	    "1065\tEAAGtokenB  \r\n"
	    "abc-DEF_1.2   EAAG|token/C=\n"
	    "zz EAAGlast");		/* no final newline */
	assert_int_equal(tokens_count(t), 4);
	assert_string_equal(tokens_get(t, "106540352242922"), "EAAGtokenA");
	assert_string_equal(tokens_get(t, "1065"), "EAAGtokenB");
	assert_string_equal(tokens_get(t, "abc-DEF_1.2"), "EAAG|token/C=");
	assert_string_equal(tokens_get(t, "zz"), "EAAGlast");
	assert_null(tokens_get(t, "10654035224292"));
	assert_null(tokens_get(t, ""));
	assert_null(tokens_get(NULL, "1065"));
	/* a number's own token first, else the single one */
	assert_string_equal(tokens_pick(t, "ONE", "1065"), "EAAGtokenB");
	assert_string_equal(tokens_pick(t, "ONE", "10654035224292"), "ONE");
	assert_null(tokens_pick(t, NULL, "10654035224292"));
	assert_string_equal(tokens_pick(NULL, "ONE", "1065"), "ONE");
	tokens_free(t);
	t = parse_ok("# nothing but comments\n\n");
	assert_int_equal(tokens_count(t), 0);
	assert_null(tokens_get(t, "1"));
	tokens_free(t);
}

static void
test_refusals_name_the_line_never_the_token(void **state)
{
	static const struct {
		const char	*text;
		const char	*want;
	} cases[] = {
		{ "1 SECRETA\n2\n", "line 2:" },
		{ "1 SECRETA\n2 SECRETB SECRETC\n", "line 2: more than two fields" },
		{ "1/2 SECRETA\n", "line 1:" },
		{ "1 SECRET\x01" "A\n", "line 1:" },
		{ "1 SECRET\xc3\xa9\n", "line 1:" },
		{ "1 SECRETA\n# x\n1 SECRETB\n", "lines 1 and 3 list the same" },
		{ "SECRETA 1 x\n", "line 1: more than two fields" },
		{ "1 SECRETA\n\n\n SECRETB\n", "line 4:" },
	};
	struct tokens *t;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = (struct tokens *)1;
		err[0] = '\0';
		assert_int_equal(tokens_parse(cases[i].text, strlen(cases[i].text), &t, err,
		    sizeof(err)), -1);
		assert_null(t);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
		if (strstr(err, "SECRET") != NULL)
			fail_msg("case %zu: the message quotes the file: %s", i, err);
	}
}

static void
test_long_fields(void **state)
{
	char *text = malloc(TOKENS_TOKEN_MAX + 128);
	struct tokens *t = NULL;
	char err[256];

	(void)state;
	assert_non_null(text);
	memcpy(text, "123 ", 4);
	memset(text + 4, 'x', TOKENS_TOKEN_MAX);
	text[4 + TOKENS_TOKEN_MAX] = '\0';
	assert_int_equal(tokens_parse(text, strlen(text), &t, err, sizeof(err)), 0);
	assert_int_equal(strlen(tokens_get(t, "123")), TOKENS_TOKEN_MAX);
	tokens_free(t);
	text[4 + TOKENS_TOKEN_MAX] = 'x';
	text[5 + TOKENS_TOKEN_MAX] = '\0';
	assert_int_equal(tokens_parse(text, strlen(text), &t, err, sizeof(err)), -1);
	memset(text, '1', TOKENS_PNID_MAX + 1);
	memcpy(text + TOKENS_PNID_MAX + 1, " tok", 5);
	assert_int_equal(tokens_parse(text, strlen(text), &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 1"));
	free(text);
}

static void
test_file_checks(void **state)
{
	char path[] = "/tmp/test_tokens_XXXXXX", err[512];
	struct tokens *t = NULL;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "42 EAAGfiletoken\n", 17), 17);
	close(fd);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(tokens_load("WAHOOK_ACCESS_TOKENS_FILE", path, &t, err,
	    sizeof(err)), 0);
	assert_string_equal(tokens_get(t, "42"), "EAAGfiletoken");
	tokens_free(t);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(tokens_load("X", path, &t, err, sizeof(err)), 0);
	tokens_free(t);
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(tokens_load("WAHOOK_ACCESS_TOKENS_FILE", path, &t, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "WAHOOK_ACCESS_TOKENS_FILE"));
	assert_non_null(strstr(err, "every user"));
	assert_null(strstr(err, "EAAG"));
	assert_int_equal(chmod(path, 0602), 0);
	assert_int_equal(tokens_load("X", path, &t, err, sizeof(err)), -1);
	unlink(path);
	assert_int_equal(tokens_load("X", path, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
	assert_int_equal(tokens_load("X", "/tmp", &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs_and_lookup),
		cmocka_unit_test(test_refusals_name_the_line_never_the_token),
		cmocka_unit_test(test_long_fields),
		cmocka_unit_test(test_file_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
