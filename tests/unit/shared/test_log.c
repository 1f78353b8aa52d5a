/*
 * test_log.c - cgi/shared/log.c: logfmt escaping, lists, levels and truncation, read
 * back from what log_end() really writes (stderr is pointed at a temp file
 * around the call).
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

#include "log.h"

/* a line with guard bytes behind it: an overrun shows as changed guards */
struct guarded {
	struct logline	l;
	unsigned char	guard[64];
};

static char out[LOGLINE_MAX * 2];

/* Runs log_end(l) with stderr captured; returns what was written (in out). */
static size_t
capture_end(struct logline *l)
{
	FILE *f;
	int saved;
	size_t n;

	fflush(stderr);
	f = tmpfile();
	assert_non_null(f);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
	log_end(l);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	fclose(f);
	out[n] = '\0';
	return n;
}

static void
capture_msg(const char *level, const char *ev, const char *msg)
{
	FILE *f;
	int saved;
	size_t n;

	fflush(stderr);
	f = tmpfile();
	assert_non_null(f);
	saved = dup(STDERR_FILENO);
	assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
	log_msg(level, ev, msg);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	fclose(f);
	out[n] = '\0';
}

/* One field on a fresh line; returns the line without "level=info ev=t ". */
static const char *
one(const char *key, const char *val, size_t len)
{
	struct logline l;
	size_t n;

	log_begin(&l, "info", "t");
	log_strn(&l, key, val, len);
	n = capture_end(&l);
	assert_true(n > 0 && out[n - 1] == '\n');
	out[n - 1] = '\0';
	assert_memory_equal(out, "level=info ev=t ", 16);
	return out + 16;
}

#define ONE(v) one("k", v, strlen(v))

static void
test_basic_line(void **state)
{
	struct logline l;
	size_t n;

	(void)state;
	log_begin(&l, "info", "request");
	log_str(&l, "method", "GET");
	log_int(&l, "status", 200);
	log_int(&l, "neg", -42);
	log_int(&l, "min", LLONG_MIN);
	log_ms(&l, "ms", 1.44);
	log_ms(&l, "big", 1234.56);
	n = capture_end(&l);
	assert_int_equal(n, strlen(out));
	assert_string_equal(out, "level=info ev=request method=GET status=200 neg=-42 "
	    "min=-9223372036854775808 ms=1.4 big=1234.6\n");
	/* log_end leaves the line empty */
	assert_int_equal(l.len, 0);
}

static void
test_bare_values(void **state)
{
	(void)state;
	assert_string_equal(ONE("abcXYZ019"), "k=abcXYZ019");
	assert_string_equal(ONE("wamid.HBgM+/=="), "k=\"wamid.HBgM+/==\"");
	assert_string_equal(ONE("a._:/@+-,b"), "k=a._:/@+-,b");
	assert_string_equal(ONE("US.1349"), "k=US.1349");
	/* empty and NULL are written as "" so the key still parses */
	assert_string_equal(ONE(""), "k=\"\"");
	assert_string_equal(one("k", NULL, 0), "k=\"\"");
	assert_string_equal(one("k", NULL, 5), "k=\"\"");
}

static void
test_escaping(void **state)
{
	(void)state;
	assert_string_equal(ONE("a b"), "k=\"a b\"");
	assert_string_equal(ONE("k=v"), "k=\"k=v\"");
	assert_string_equal(ONE("say \"hi\""), "k=\"say \\\"hi\\\"\"");
	assert_string_equal(ONE("a\\b"), "k=\"a\\\\b\"");
	assert_string_equal(ONE("a\nb"), "k=\"a\\nb\"");
	assert_string_equal(ONE("a\rb\tc"), "k=\"a\\rb\\tc\"");
	assert_string_equal(ONE("\x01\x1f\x7f"), "k=\"\\x01\\x1f\\x7f\"");
	assert_string_equal(ONE("\x1b[31mred"), "k=\"\\x1b[31mred\"");
	/* UTF-8 passes as is, inside quotes */
	assert_string_equal(ONE("caf\xc3\xa9"), "k=\"caf\xc3\xa9\"");
	/* a NUL inside a counted value is escaped, not the end */
	assert_string_equal(one("k", "a\0b", 3), "k=\"a\\x00b\"");
	/* a forged second line or field cannot be injected */
	assert_string_equal(ONE("x\nlevel=error ev=forged"),
	    "k=\"x\\nlevel=error ev=forged\"");
}

/* A line that never ends on a raw newline and has only its final one. */
static void
assert_one_line(size_t n)
{
	assert_true(n > 0);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, '\n', n - 1));
}

/* Counts the unescaped '"' of out[0..n). */
static int
quotes(size_t n)
{
	size_t i;
	int q = 0;

	for (i = 0; i < n; i++) {
		if (out[i] == '\\')
			i++;
		else if (out[i] == '"')
			q++;
	}
	return q;
}

static void
check_truncated(struct guarded *g, size_t n)
{
	static const char mark[] = " truncated=1\n";
	size_t i;

	assert_one_line(n);
	assert_true(n <= LOGLINE_MAX);
	assert_true(n >= sizeof(mark) - 1);
	assert_string_equal(out + n - (sizeof(mark) - 1), mark);
	assert_memory_equal(out, "level=", 6);
	assert_non_null(strstr(out, " ev=t "));
	/* the mark is a field of its own: no quote left open before it */
	if (quotes(n) % 2 != 0)
		fail_msg("unbalanced quotes in a truncated line: ...%s",
		    out + (n > 80 ? n - 80 : 0));
	for (i = 0; i < sizeof(g->guard); i++)
		assert_int_equal(g->guard[i], 0xa5);
}

static void
test_truncation_long_value(void **state)
{
	struct guarded g;
	char *big;
	size_t n;

	(void)state;
	memset(g.guard, 0xa5, sizeof(g.guard));
	big = malloc(3 * LOGLINE_MAX);
	assert_non_null(big);

	/* one value longer than a line, bare */
	memset(big, 'a', 3 * LOGLINE_MAX);
	log_begin(&g.l, "info", "t");
	log_strn(&g.l, "big", big, 3 * LOGLINE_MAX);
	assert_int_equal(g.l.truncated, 1);
	log_int(&g.l, "after", 1);	/* nothing more after the cut */
	n = capture_end(&g.l);
	check_truncated(&g, n);
	assert_string_equal(out, "level=info ev=t truncated=1\n");

	/* a quoted value cut in the middle */
	memset(big, ' ', 3 * LOGLINE_MAX);
	log_begin(&g.l, "info", "t");
	log_strn(&g.l, "big", big, 3 * LOGLINE_MAX);
	n = capture_end(&g.l);
	check_truncated(&g, n);

	/* every byte an escape (4 bytes each), cut anywhere */
	memset(big, 0x01, 3 * LOGLINE_MAX);
	log_begin(&g.l, "info", "t");
	log_strn(&g.l, "big", big, 3 * LOGLINE_MAX);
	n = capture_end(&g.l);
	check_truncated(&g, n);
	free(big);
}

static void
test_truncation_many_fields(void **state)
{
	struct guarded g;
	size_t n, i, len;
	char esc[LOGLINE_MAX];

	(void)state;
	memset(g.guard, 0xa5, sizeof(g.guard));
	/* fields until the line is full, at every alignment of the cut */
	for (len = 1; len < 40; len += 3) {
		memset(esc, '"', len);
		log_begin(&g.l, "info", "t");
		for (i = 0; i < LOGLINE_MAX; i++)
			log_strn(&g.l, "field", esc, len);
		assert_int_equal(g.l.truncated, 1);
		n = capture_end(&g.l);
		check_truncated(&g, n);
	}
	/* a line that exactly fits is not truncated */
	log_begin(&g.l, "info", "t");
	memset(esc, 'x', sizeof(esc));
	log_strn(&g.l, "k", esc, log_room(&g.l) - 3);
	assert_int_equal(g.l.truncated, 0);
	n = capture_end(&g.l);
	assert_one_line(n);
	assert_null(strstr(out, "truncated"));
	assert_true(n <= LOGLINE_MAX);
}

static void
test_lists(void **state)
{
	struct logline l;
	size_t n;

	(void)state;
	log_begin(&l, "info", "t");
	log_list_begin(&l, "ids");
	assert_int_equal(log_list_item(&l, "wamid.A", 7), 0);
	assert_int_equal(log_list_item(&l, "b\"c\\d", 5), 0);
	assert_int_equal(log_list_item(&l, "e\nf\x7f", 4), 0);
	log_list_end(&l);
	log_int(&l, "n", 3);
	capture_end(&l);
	assert_string_equal(out, "level=info ev=t ids=\"wamid.A,b?c?d,e?f?\" n=3\n");

	/* an empty list */
	log_begin(&l, "info", "t");
	log_list_begin(&l, "ids");
	log_list_end(&l);
	capture_end(&l);
	assert_string_equal(out, "level=info ev=t ids=\"\"\n");

	/* items that do not fit are refused whole; fields after the list still fit */
	log_begin(&l, "info", "t");
	log_list_begin(&l, "ids");
	for (n = 0; log_list_item(&l, "wamid.0123456789", 16) == 0; n++)
		assert_true(n < LOGLINE_MAX);
	assert_true(n > 100);
	assert_int_equal(log_list_item(&l, "x", 1), log_room(&l) >= 1 + 1 + 96 ? 0 : -1);
	log_list_end(&l);
	log_int(&l, "ids_more", 12345);
	log_str(&l, "status", "200");
	assert_int_equal(l.truncated, 0);
	n = capture_end(&l);
	assert_one_line(n);
	assert_true(n <= LOGLINE_MAX);
	assert_non_null(strstr(out, "\" ids_more=12345 status=200\n"));
	assert_null(strstr(out, "wamid.012345678,"));	/* no item cut short */
}

static void
test_set_level(void **state)
{
	struct logline l;

	(void)state;
	log_begin(&l, "info", "request");
	log_int(&l, "status", 500);
	log_set_level(&l, "error");
	capture_end(&l);
	assert_string_equal(out, "level=error ev=request status=500\n");

	log_begin(&l, "info", "request");
	log_int(&l, "status", 401);
	log_set_level(&l, "warn");
	capture_end(&l);
	assert_string_equal(out, "level=warn ev=request status=401\n");

	log_begin(&l, "error", "x");
	log_set_level(&l, "info");
	log_set_level(&l, "debug");
	capture_end(&l);
	assert_string_equal(out, "level=debug ev=x\n");
}

static void
test_set_level_on_a_full_line(void **state)
{
	struct guarded g;
	char fill[LOGLINE_MAX];
	size_t n;

	(void)state;
	memset(g.guard, 0xa5, sizeof(g.guard));
	memset(fill, 'x', sizeof(fill));
	log_begin(&g.l, "info", "t");
	log_strn(&g.l, "k", fill, log_room(&g.l) - 3);
	log_set_level(&g.l, "error-with-a-long-name");	/* no room: kept as is */
	n = capture_end(&g.l);
	assert_one_line(n);
	assert_true(n <= LOGLINE_MAX);
	assert_memory_equal(out, "level=", 6);
	for (n = 0; n < sizeof(g.guard); n++)
		assert_int_equal(g.guard[n], 0xa5);

	/* on a truncated line the level still changes and the mark stays */
	log_begin(&g.l, "info", "t");
	log_strn(&g.l, "k", fill, sizeof(fill));
	log_set_level(&g.l, "warn");
	n = capture_end(&g.l);
	check_truncated(&g, n);
	assert_string_equal(out, "level=warn ev=t truncated=1\n");
}

static void
test_log_msg(void **state)
{
	(void)state;
	capture_msg("error", "config", "WAHOOK_MAX_BODY=10x: want a whole number");
	assert_string_equal(out, "level=error ev=config "
	    "msg=\"WAHOOK_MAX_BODY=10x: want a whole number\"\n");
}

static void
test_now_ms(void **state)
{
	double a, b;

	(void)state;
	a = log_now_ms();
	usleep(2000);
	b = log_now_ms();
	assert_true(a > 0);
	assert_true(b - a >= 1.5);
	assert_true(b - a < 5000);
}

/* Reads a whole small file into out; returns its length. */
static size_t
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	fclose(f);
	out[n] = '\0';
	return n;
}

/* WAHOOK_LOG=/path: every line is appended to the file; error lines also reach
 * stderr (what cron mails), info lines do not */
static void
test_log_to_file(void **state)
{
	char dir[] = "/tmp/wahook-test-log-XXXXXX", path[128], err[256];
	struct logline l;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/w.log", dir);
	assert_int_equal(setenv("WAHOOK_LOG", path, 1), 0);
	assert_int_equal(log_open("test", err, sizeof(err)), 0);
	log_begin(&l, "info", "one");
	assert_int_equal(capture_end(&l), 0);		/* nothing on stderr */
	log_begin(&l, "error", "two");
	n = capture_end(&l);
	assert_string_equal(out, "level=error ev=two\n");
	assert_int_equal(n, 19);
	slurp(path);
	assert_string_equal(out, "level=info ev=one\nlevel=error ev=two\n");
	/* a second open appends, never truncates */
	assert_int_equal(log_open("test", err, sizeof(err)), 0);
	log_begin(&l, "warn", "three");
	assert_int_equal(capture_end(&l), 0);
	slurp(path);
	assert_string_equal(out, "level=info ev=one\nlevel=error ev=two\nlevel=warn ev=three\n");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(setenv("WAHOOK_LOG", "stderr", 1), 0);
	assert_int_equal(log_open("test", err, sizeof(err)), 0);
}

/* values that cannot work are refused naming WAHOOK_LOG, and lines still go
 * to stderr so the refusal itself is seen */
static void
test_log_bad_values(void **state)
{
	static const char *bad[] = { "wahook.log", "/nonexistent-dir/w.log", "journal" };
	char err[256];
	struct logline l;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(setenv("WAHOOK_LOG", bad[i], 1), 0);
		err[0] = '\0';
		assert_int_equal(log_open("test", err, sizeof(err)), -1);
		assert_non_null(strstr(err, "WAHOOK_LOG"));
		assert_non_null(strstr(err, bad[i]));
		log_begin(&l, "info", "still");
		capture_end(&l);
		assert_string_equal(out, "level=info ev=still\n");
	}
	assert_int_equal(unsetenv("WAHOOK_LOG"), 0);
	assert_int_equal(log_open("test", err, sizeof(err)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_line),
		cmocka_unit_test(test_bare_values),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_truncation_long_value),
		cmocka_unit_test(test_truncation_many_fields),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_set_level),
		cmocka_unit_test(test_set_level_on_a_full_line),
		cmocka_unit_test(test_log_msg),
		cmocka_unit_test(test_now_ms),
		cmocka_unit_test(test_log_to_file),
		cmocka_unit_test(test_log_bad_values),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
