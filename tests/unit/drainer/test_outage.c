/*
 * test_outage.c - cgi/drainer/outage.c: a first failure starts an outage, the waits
 * back off (0.1 s doubling to 2 s, jittered down to half), a success ends it,
 * a rider with no patience (max 0) gives up at once and is up again after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "outage.h"

static void
test_backoff_then_back(void **state)
{
	struct outage o;
	double want[] = { 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0 }, d;
	size_t i;

	(void)state;
	outage_init(&o, 60, "media", "waiting", "back");
	assert_int_equal(outage_riding(&o), 0);
	outage_up(&o);		/* nothing to end */
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		d = outage_down(&o, "connection refused");
		assert_true(d >= want[i] / 2 - 1e-9 && d <= want[i] + 1e-9);
		assert_int_equal(outage_riding(&o), 1);
	}
	assert_string_equal(o.err, "connection refused");
	outage_up(&o);
	assert_int_equal(outage_riding(&o), 0);
	/* a new outage starts from the first wait again */
	d = outage_down(&o, "gone again");
	assert_true(d >= 0.05 - 1e-9 && d <= 0.1 + 1e-9);
	outage_up(&o);
}

static void
test_no_patience(void **state)
{
	struct outage o;
	char err[OUTAGE_ERR_MAX + 100];

	(void)state;
	outage_init(&o, 0, NULL, "waiting", "back");
	assert_true(outage_down(&o, "gone") < 0);
	assert_int_equal(outage_riding(&o), 0);
	/* an overlong reason is cut to fit */
	memset(err, 'x', sizeof(err) - 1);
	err[sizeof(err) - 1] = '\0';
	assert_true(outage_down(&o, err) < 0);
	assert_int_equal(strlen(o.err), OUTAGE_ERR_MAX - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_then_back),
		cmocka_unit_test(test_no_patience),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
