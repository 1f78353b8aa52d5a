/*
 * test_report.c - cgi/drainer/report.c: what --status prints for people and --metrics
 * for Prometheus' textfile collector, from made-up outbox figures: every
 * figure on its line, every gauge with its HELP and TYPE (the labelled ones of
 * the alerting record too: numbers, hosts, the quarantine), numbers as the
 * exposition format reads them (no 2.3302429999999998), a failed write reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "report.h"

static const struct outbox_stats figures = {
	.pending = 17, .due = 3, .queued = 9, .retrying = 4, .leased = 1,
	.dead = 2, .done_hour = 1234, .oldest_age = 2.3302429999999998,
	.refused_numbers = 3, .nrefused = 2,
	.refused = { { "106540352242922", 5 }, { "odd\"number", 1 } },
};

/* Runs fn on a memory stream; returns what it wrote (caller frees). */
static char *
capture(int (*fn)(FILE *, const struct outbox_stats *), const struct outbox_stats *st)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(fn(f, st), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void
test_status(void **state)
{
	char *out = capture(report_status, &figures);

	(void)state;
	assert_string_equal(out,
	    "pending              17\n"
	    "  due now            3\n"
	    "  queued behind head 9\n"
	    "  waiting for retry  4\n"
	    "  claimed (leased)   1\n"
	    "dead                 2\n"
	    "done in last hour    1234\n"
	    "oldest pending age   2.3 s\n"
	    "numbers whose token was refused  3\n"
	    "  106540352242922                5 pending\n"
	    "  odd\"number                     1 pending\n"
	    "  (and 1 more)\n");
	free(out);
}

static void
test_metrics(void **state)
{
	static const struct {
		const char *name, *value;
	} want[] = {
		{ "wahook_outbox_pending", "17" },
		{ "wahook_outbox_due", "3" },
		{ "wahook_outbox_queued", "9" },
		{ "wahook_outbox_retrying", "4" },
		{ "wahook_outbox_leased", "1" },
		{ "wahook_outbox_dead", "2" },
		{ "wahook_outbox_done_last_hour", "1234" },
		{ "wahook_outbox_oldest_pending_age_seconds", "2.330" },
		{ "wahook_outbox_token_refused_numbers", "3" },
	};
	char *out = capture(report_metrics, &figures), line[256], *p;
	size_t i, nlines = 0;

	(void)state;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(line, sizeof(line), "\n%s %s\n", want[i].name, want[i].value);
		if (strstr(out, line) == NULL)
			fail_msg("no sample line \"%s %s\" in:\n%s", want[i].name,
			    want[i].value, out);
		snprintf(line, sizeof(line), "# HELP %s ", want[i].name);
		assert_non_null(strstr(out, line));
		snprintf(line, sizeof(line), "# TYPE %s gauge\n", want[i].name);
		assert_non_null(strstr(out, line));
	}
	/* one labelled gauge, its label value escaped */
	assert_non_null(strstr(out, "\nwahook_outbox_token_refused_pending"
	    "{phone_number_id=\"106540352242922\"} 5\n"));
	assert_non_null(strstr(out, "\nwahook_outbox_token_refused_pending"
	    "{phone_number_id=\"odd\\\"number\"} 1\n"));
	/* three lines per gauge, two more and a sample per refused number, nothing else */
	for (p = out; *p != '\0'; p++)
		nlines += *p == '\n';
	assert_int_equal(nlines, 3 * (sizeof(want) / sizeof(want[0])) + 2 + 2);
	assert_null(strstr(out, "99999"));
	free(out);
}

static void
test_number(void **state)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{ 0, "0" }, { 7, "7" }, { -3, "-3" }, { 1e15, "1000000000000000" },
		{ 2.3302429999999998, "2.330" }, { 0.1 + 0.2, "0.300" }, { 86399.9996, "86400.000" },
		{ 1e300, "%" },	/* not exact as an integer: printed with decimals */
	};
	char buf[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(report_number(buf, sizeof(buf), cases[i].v), 0);
		if (cases[i].want[0] == '%')
			assert_non_null(strstr(buf, ".000"));
		else
			assert_string_equal(buf, cases[i].want);
	}
	assert_int_equal(report_number(buf, sizeof(buf), NAN), 0);
	assert_string_equal(buf, "NaN");
	assert_int_equal(report_number(buf, sizeof(buf), INFINITY), 0);
	assert_string_equal(buf, "+Inf");
	assert_int_equal(report_number(buf, sizeof(buf), -INFINITY), 0);
	assert_string_equal(buf, "-Inf");
	assert_int_equal(report_number(buf, 4, 12345), -1);	/* too small a buffer */
}

/* A full disk (or a closed pipe) is a failure the caller turns into exit 1. */
static void
test_write_failure(void **state)
{
	FILE *f = fopen("/dev/full", "w");

	(void)state;
	if (f == NULL)
		fail_msg("cannot open /dev/full");
	assert_int_equal(report_status(f, &figures), -1);
	clearerr(f);
	assert_int_equal(report_metrics(f, &figures), -1);
	fclose(f);
}

static void
test_ops_metrics(void **state)
{
	struct ops_number nums[3] = {
		{ "106540352242922", 1765000000.5, 0 },
		{ "106540352242931", 1765000100, 1765000200 },
		{ "odd\"num\\ber", 0, 1765000300 },	/* refused, never heard from */
	};
	struct ops_stats st;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.numbers = nums;
	st.nnumbers = 3;
	st.numbers_total = 12001;
	st.nhosts = 2;
	st.hosts[0] = (struct ops_host){ "drain-a", 1765000000, 1765000055, 1765000055, 1 };
	st.hosts[1] = (struct ops_host){ "drain-b", 1765000000, 1765000030, 0, -1 };
	st.quarantined = 4;
	st.quarantine_newest = 1765000001;
	assert_non_null(f = open_memstream(&buf, &len));
	assert_int_equal(report_ops_metrics(f, &st), 0);
	assert_int_equal(fclose(f), 0);
	/* a number never heard from has no last-inbound sample; one never refused
	 * no refusal sample; label values escaped as the format wants */
	assert_non_null(strstr(buf, "\nwahook_number_last_inbound_timestamp_seconds"
	    "{phone_number_id=\"106540352242922\"} 1765000000.500\n"));
	assert_null(strstr(buf, "wahook_number_last_inbound_timestamp_seconds"
	    "{phone_number_id=\"odd"));
	assert_null(strstr(buf, "wahook_number_token_refused_timestamp_seconds"
	    "{phone_number_id=\"106540352242922\"}"));
	assert_non_null(strstr(buf, "\nwahook_number_token_refused_timestamp_seconds"
	    "{phone_number_id=\"odd\\\"num\\\\ber\"} 1765000300\n"));
	assert_non_null(strstr(buf, "\nwahook_numbers 12001\n"));
	assert_non_null(strstr(buf, "\nwahook_drain_last_run_exit_code{host=\"drain-a\"} 1\n"));
	/* a host whose first run has not ended: alive, no exit code, last run 0 */
	assert_null(strstr(buf, "wahook_drain_last_run_exit_code{host=\"drain-b\"}"));
	assert_non_null(strstr(buf, "\nwahook_drain_last_run_timestamp_seconds"
	    "{host=\"drain-b\"} 0\n"));
	assert_non_null(strstr(buf, "\nwahook_drain_alive_timestamp_seconds"
	    "{host=\"drain-b\"} 1765000030\n"));
	assert_non_null(strstr(buf, "\nwahook_quarantine_rows 4\n"));
	assert_non_null(strstr(buf, "\nwahook_quarantine_newest_timestamp_seconds 1765000001\n"));
	assert_non_null(strstr(buf, "# TYPE wahook_drain_alive_timestamp_seconds gauge\n"));
	free(buf);
	buf = NULL;
	assert_non_null(f = open_memstream(&buf, &len));
	assert_int_equal(report_ops_status(f, &st, 1765000400), 0);
	assert_int_equal(fclose(f), 0);
	assert_string_equal(buf,
	    "business numbers     12001\n"
	    "  106540352242922                last message 400 s ago\n"
	    "  106540352242931                last message 300 s ago, token refused 200 s ago\n"
	    "  odd\"num\\ber                    no message on record, token refused 100 s ago\n"
	    "  (and 11998 more)\n"
	    "drainer hosts        2\n"
	    "  drain-a                        alive 345 s ago, last run ended 345 s ago, exit 1\n"
	    "  drain-b                        alive 370 s ago\n"
	    "quarantined          4, newest 399 s ago\n");
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_ops_metrics),
		cmocka_unit_test(test_number),
		cmocka_unit_test(test_write_failure),
	};

	return cmocka_run_group_tests_name("report", tests, NULL, NULL);
}
