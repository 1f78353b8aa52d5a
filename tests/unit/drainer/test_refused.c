/*
 * test_refused.c - cgi/drainer/refused.c: a number is kept once, in the order met;
 * past REFUSED_MAX a new number is refused and the set stays unchanged; the
 * pointers handed out stay put; free empties the set for reuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "refused.h"

static void
test_once_in_order(void **state)
{
	struct refused set;
	const char *first;

	(void)state;
	refused_init(&set);
	assert_int_equal(refused_has(&set, "111"), 0);
	assert_null(refused_at(&set, 0));
	assert_int_equal(refused_add(&set, "111"), 1);
	first = refused_at(&set, 0);
	assert_int_equal(refused_add(&set, "222"), 1);
	assert_int_equal(refused_add(&set, "111"), 0);	/* there already */
	assert_int_equal(set.n, 2);
	assert_int_equal(refused_has(&set, "111"), 1);
	assert_int_equal(refused_has(&set, "222"), 1);
	assert_int_equal(refused_has(&set, "11"), 0);
	assert_string_equal(refused_at(&set, 0), "111");
	assert_string_equal(refused_at(&set, 1), "222");
	assert_ptr_equal(refused_at(&set, 0), first);
	assert_null(refused_at(&set, 2));
	assert_null(refused_at(&set, -1));
	refused_free(&set);
	assert_int_equal(set.n, 0);
	assert_int_equal(refused_has(&set, "111"), 0);
	assert_int_equal(refused_add(&set, "333"), 1);
	refused_free(&set);
}

static void
test_full(void **state)
{
	struct refused set;
	char number[16];
	int i;

	(void)state;
	refused_init(&set);
	for (i = 0; i < REFUSED_MAX; i++) {
		snprintf(number, sizeof(number), "%d", 1000 + i);
		assert_int_equal(refused_add(&set, number), 1);
	}
	assert_int_equal(refused_add(&set, "1"), -1);
	assert_int_equal(refused_has(&set, "1"), 0);
	assert_int_equal(refused_add(&set, "1000"), 0);	/* known: not a failure */
	assert_int_equal(set.n, REFUSED_MAX);
	refused_free(&set);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_once_in_order),
		cmocka_unit_test(test_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
