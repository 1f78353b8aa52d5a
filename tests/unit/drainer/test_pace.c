/*
 * test_pace.c - cgi/drainer/pace.c: the per-number token bucket and the retry delay
 * (full jitter between RETRY_MIN and RETRY_MAX, floors for Retry-After and
 * 131056), on made-up clocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "pace.h"

static void
test_bucket(void **state)
{
	struct pace *p = pace_new(10);
	double w;
	int i;

	(void)state;
	assert_non_null(p);
	/* a burst of one second's worth, then one token per 1/rps */
	for (i = 0; i < 10; i++)
		assert_true(pace_take(p, "111", 100.0) == 0);
	w = pace_take(p, "111", 100.0);
	assert_true(w > 0.099 && w < 0.101);
	assert_true(pace_take(p, "111", 100.05) > 0);
	assert_true(pace_take(p, "111", 100.11) == 0);
	/* numbers are metered apart */
	assert_true(pace_take(p, "222", 100.11) == 0);
	/* a hold stops the number until it ends, and never shortens */
	pace_hold(p, "222", 200, 5);
	pace_hold(p, "222", 200, 1);
	w = pace_take(p, "222", 201);
	assert_true(w > 3.99 && w < 4.01);
	assert_true(pace_take(p, "222", 205.01) == 0);
	assert_true(pace_take(p, "111", 201) == 0);
	pace_free(p);
}

static void
test_bucket_slow_rate(void **state)
{
	struct pace *p = pace_new(0.5);

	(void)state;
	assert_true(pace_take(p, "1", 0) == 0);		/* burst is at least one call */
	assert_true(pace_take(p, "1", 1) > 0.99);
	assert_true(pace_take(p, "1", 2) == 0);
	pace_free(p);
}

/*
 * More numbers than buckets: the least recently used bucket is the one
 * recycled, and a recycled bucket starts full. A pacer that recycled another
 * bucket (a busy number's) would let that number through at once; one that
 * kept the old bucket's state would hold a new number back.
 */
static void
test_bucket_many_numbers(void **state)
{
	struct pace *p = pace_new(0.1);		/* burst 1, a token per 10 s */
	char num[16];
	double w;
	int i;

	(void)state;
	/* fill every bucket but one with an idle number, each one's token spent */
	for (i = 0; i < PACE_MAX_NUMBERS - 1; i++) {
		snprintf(num, sizeof(num), "idle%d", i);
		assert_true(pace_take(p, num, (double)i * 0.001) == 0);
	}
	/* the last bucket: a busy number, used last */
	assert_true(pace_take(p, "busy", 1.5) == 0);
	/* as many new numbers as idle ones: each recycles an idle bucket (still
	 * nearly empty at t=2), and starts with a full one whatever its state */
	for (i = 0; i < PACE_MAX_NUMBERS - 1; i++) {
		snprintf(num, sizeof(num), "new%d", i);
		if (pace_take(p, num, 2) != 0)
			fail_msg("%s waits: a recycled bucket kept its old state", num);
	}
	/* the busy number kept its bucket: nearly empty, 9.5 s to wait */
	w = pace_take(p, "busy", 2);
	if (!(w > 9.4 && w < 9.6))
		fail_msg("busy waits %g s, want 9.5: its bucket was recycled", w);
	/* and so did every new number: each has spent its token */
	for (i = 0; i < PACE_MAX_NUMBERS - 1; i++) {
		snprintf(num, sizeof(num), "new%d", i);
		w = pace_take(p, num, 2.5);
		if (!(w > 9.4 && w < 9.6))
			fail_msg("%s waits %g s, want 9.5: its bucket was recycled", num, w);
	}
	/* an idle number coming back gets a bucket again (a full one) */
	assert_true(pace_take(p, "idle0", 3) == 0);
	pace_free(p);
}

/* What the claim asks: how many calls a number may start now, without taking. */
static void
test_room(void **state)
{
	struct pace *p = pace_new(5);
	double wait;
	int held, i;

	(void)state;
	assert_int_equal(pace_burst(p), 5);
	assert_int_equal(pace_room(p, "111", 10, &held, &wait), 5);	/* never seen: full */
	assert_int_equal(held, 0);
	assert_true(wait == 0);
	assert_int_equal(pace_room(p, "111", 10, &held, &wait), 5);	/* nothing taken */
	for (i = 0; i < 5; i++)
		assert_true(pace_take(p, "111", 10) == 0);
	assert_int_equal(pace_room(p, "111", 10, &held, &wait), 0);	/* empty bucket */
	assert_int_equal(held, 0);
	assert_true(wait > 0.19 && wait < 0.21);
	assert_int_equal(pace_room(p, "111", 10.45, &held, &wait), 2);	/* refilling */
	/* a hold: no room, held, and the wait is the hold's */
	pace_hold(p, "222", 10, 30);
	assert_int_equal(pace_room(p, "222", 11, &held, &wait), 0);
	assert_int_equal(held, 1);
	assert_true(wait > 28.99 && wait < 29.01);
	assert_int_equal(pace_room(p, "222", 40.5, &held, &wait), 5);
	assert_int_equal(held, 0);
	/* the pacer lists what it knows */
	assert_int_equal((int)pace_count(p), 2);
	assert_string_equal(pace_number(p, 0), "111");
	assert_string_equal(pace_number(p, 1), "222");
	pace_free(p);
}

static void
test_backoff(void **state)
{
	(void)state;
	/* full jitter above the floor: u spans [lo, min(hi, lo * 2^n)] */
	assert_true(pace_backoff(15, 3600, 1, 0, 0.0) == 15);
	assert_true(pace_backoff(15, 3600, 1, 0, 0.999999) < 30);
	assert_true(pace_backoff(15, 3600, 3, 0, 0.5) == 15 + 0.5 * (120 - 15));
	assert_true(pace_backoff(15, 3600, 30, 0, 0.999999) <= 3600);
	assert_true(pace_backoff(15, 3600, 1000000, 0, 0.999999) <= 3600);
	assert_true(pace_backoff(15, 3600, 0, 0, 0.0) == 15);
	/* floors (Retry-After, 4^n for 131056) win when larger, capped by hi */
	assert_true(pace_backoff(15, 3600, 1, 120, 0.0) == 120);
	assert_true(pace_backoff(15, 3600, 1, 99999, 0.0) == 3600);
	assert_true(pace_backoff(0.05, 0.2, 5, 0, 0.999999) <= 0.2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_bucket_slow_rate),
		cmocka_unit_test(test_bucket_many_numbers),
		cmocka_unit_test(test_room),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
