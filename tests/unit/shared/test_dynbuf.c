/*
 * test_dynbuf.c - cgi/shared/dynbuf.c: the cap is never passed (by one byte, by a
 * size that would wrap), a refused add changes nothing, strings stay
 * NUL-terminated, items come zeroed, trim frees only what is past keep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dynbuf.h"

static void
test_cap(void **state)
{
	struct dynbuf b;

	(void)state;
	dynbuf_init(&b, 10);
	assert_null(b.s);
	assert_int_equal(dynbuf_add(&b, "hello", 5), DYNBUF_OK);
	assert_string_equal(b.s, "hello");
	assert_int_equal(dynbuf_adds(&b, "world"), DYNBUF_OK);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.s, "helloworld");
	/* one byte past the cap: refused, nothing changed */
	assert_int_equal(dynbuf_add(&b, "!", 1), DYNBUF_TOOBIG);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.s, "helloworld");
	/* growth is clamped to the cap (+ the NUL), not doubled past it */
	assert_true(b.cap <= 11 || b.cap == 256);
	assert_int_equal(dynbuf_add(&b, "", 0), DYNBUF_OK);
	dynbuf_free(&b);
	assert_null(b.s);
	assert_int_equal(b.max, 10);
}

static void
test_no_wrap(void **state)
{
	struct dynbuf b;

	(void)state;
	dynbuf_init(&b, SIZE_MAX);
	assert_int_equal(dynbuf_add(&b, "ab", 2), DYNBUF_OK);
	/* len + n + 1 would wrap to a small number */
	assert_int_equal(dynbuf_reserve(&b, SIZE_MAX - 2), DYNBUF_TOOBIG);
	assert_int_equal(dynbuf_reserve(&b, SIZE_MAX), DYNBUF_TOOBIG);
	assert_int_equal(b.len, 2);
	assert_string_equal(b.s, "ab");
	dynbuf_free(&b);
}

static void
test_reserve_commit(void **state)
{
	struct dynbuf b;

	(void)state;
	dynbuf_init(&b, 1 << 20);
	assert_int_equal(dynbuf_reserve(&b, 100000), DYNBUF_OK);
	assert_true(b.cap >= 100001);
	memset(b.s, 'y', 100000);
	dynbuf_commit(&b, 100000);
	assert_int_equal(b.len, 100000);
	assert_int_equal(b.s[100000], '\0');
	dynbuf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.s, "");
	dynbuf_free(&b);
}

struct item {
	long	a;
	char	name[24];
};

static void
test_items_and_trim(void **state)
{
	struct dynbuf b;
	struct item *it;
	enum dynbuf_rc rc;
	int i;

	(void)state;
	dynbuf_init(&b, 100 * sizeof(struct item));
	for (i = 0; i < 100; i++) {
		it = dynbuf_item(&b, sizeof(*it), &rc);
		assert_non_null(it);
		assert_int_equal(rc, DYNBUF_OK);
		assert_int_equal(it->a, 0);
		assert_int_equal(it->name[0], 0);
		it->a = i;
	}
	assert_null(dynbuf_item(&b, sizeof(*it), &rc));
	assert_int_equal(rc, DYNBUF_TOOBIG);
	assert_int_equal(b.len, 100 * sizeof(struct item));
	it = (struct item *)(void *)b.s;
	assert_int_equal(it[99].a, 99);
	/* under keep: emptied, memory kept; over keep: freed */
	dynbuf_trim(&b, 1 << 20);
	assert_non_null(b.s);
	assert_int_equal(b.len, 0);
	assert_non_null(dynbuf_item(&b, sizeof(*it), NULL));
	dynbuf_trim(&b, 16);
	assert_null(b.s);
	assert_int_equal(b.cap, 0);
	dynbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_no_wrap),
		cmocka_unit_test(test_reserve_commit),
		cmocka_unit_test(test_items_and_trim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
