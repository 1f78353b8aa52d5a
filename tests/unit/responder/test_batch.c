/*
 * test_batch.c - cgi/responder/batch.c over a store that takes a set time per commit
 * and, like the real one, fails a batch whose deadline comes first (this file
 * defines the four store_* functions batch.c calls, so the order of events is
 * the test's to set). What is proved: one nearly expired webhook does not take
 * the others of its batch down with it; a webhook queued behind a stuck commit
 * fails at its deadline; and under many threads every webhook gets its own
 * result, once, with no thread left waiting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"

#define TIMEOUT	1.0	/* WAHOOK_DB_TIMEOUT of the batch under test */
#define COMMIT	0.2	/* seconds a commit takes, after the first */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int calls, release_first, b_with_c;
static int held;		/* the first commit is waiting for the test's word */
static int fast;		/* store_batch answers at once: 'x' bodies rejected */
static long fast_items;		/* webhooks fast commits stored, under mu */

static void
sleep_s(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* The first call waits for the test's word; the others take COMMIT seconds,
 * and fail when their deadline (timeout) is shorter, as a real one would. */
void
store_batch(struct store *s, struct store_item *const *items, size_t n, double timeout)
{
	size_t k;
	int call;

	(void)s;
	if (fast) {
		for (k = 0; k < n; k++) {
			items[k]->batch = n;
			items[k]->res = items[k]->body[0] == 'x' ? STORE_REJECTED : STORE_OK;
			snprintf(items[k]->err, sizeof(items[k]->err), "%s", items[k]->body);
		}
		pthread_mutex_lock(&mu);
		fast_items += (long)n;
		pthread_mutex_unlock(&mu);
		return;
	}
	pthread_mutex_lock(&mu);
	call = calls++;
	for (k = 0; k + 1 < n; k++)	/* "b" and "c", queued in that order */
		b_with_c |= items[k]->body[0] == 'b' && items[k + 1]->body[0] == 'c';
	held = call == 0;
	while (call == 0 && !release_first)
		pthread_cond_wait(&cv, &mu);
	held = 0;
	pthread_mutex_unlock(&mu);
	if (call > 0)
		sleep_s(timeout < COMMIT ? timeout : COMMIT);
	for (k = 0; k < n; k++) {
		items[k]->batch = n;
		items[k]->res = call > 0 && timeout < COMMIT ? STORE_UNAVAILABLE : STORE_OK;
		snprintf(items[k]->err, sizeof(items[k]->err), "%s",
		    items[k]->res == STORE_OK ? "" : "deadline passed");
	}
}

enum store_result
store_quarantine(struct store *s, const char *reason, const char *body, size_t len,
    double timeout, char *err, size_t errlen)
{
	(void)s; (void)reason; (void)body; (void)len; (void)timeout; (void)err; (void)errlen;
	return STORE_OK;
}

int
store_stale(struct store *s)
{
	(void)s;
	return 0;
}

void
store_refresh(struct store *s)
{
	(void)s;
}

struct submitter {
	struct batch	*b;
	const char	*body;
	enum store_result res;
	pthread_t	 t;
};

static void *
submit_main(void *arg)
{
	struct submitter *w = arg;
	char err[STORE_ERR_MAX];

	w->res = batch_store(w->b, NULL, w->body, strlen(w->body), err, sizeof(err), NULL);
	return NULL;
}

static void
start(struct submitter *w, struct batch *b, const char *body)
{
	w->b = b;
	w->body = body;
	assert_int_equal(pthread_create(&w->t, NULL, submit_main, w), 0);
}

/*
 * A commit held back for most of the timeout: B, queued behind it from the
 * start, has less left than a commit takes; C, queued near the end, has
 * nearly all of it. Together they would share B's deadline and both fail;
 * C must be stored.
 */
static void
test_nearly_expired_webhook_does_not_fail_its_batch(void **state)
{
	struct batch *b = batch_new(NULL, 64, 1 << 20, TIMEOUT);
	struct submitter a, bb, c;

	(void)state;
	assert_non_null(b);
	start(&a, b, "a");
	sleep_s(0.05);		/* a commits (held) */
	start(&bb, b, "b");
	sleep_s(0.80);		/* b: 0.15 s left, under a commit's time */
	start(&c, b, "c");
	sleep_s(0.05);		/* c queued behind b */
	pthread_mutex_lock(&mu);
	release_first = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(a.t, NULL);
	pthread_join(bb.t, NULL);
	pthread_join(c.t, NULL);
	assert_int_equal(a.res, STORE_OK);
	assert_int_equal(c.res, STORE_OK);
	assert_false(b_with_c);		/* b's deadline did not govern c's commit */
	batch_free(b);
}

/*
 * A commit that never ends: the webhook queued behind it fails when its own
 * deadline passes (503, the reason naming WAHOOK_DB_TIMEOUT), while that
 * commit is still held, not once it ends.
 */
static void
test_queued_webhook_fails_at_its_deadline_behind_a_stuck_commit(void **state)
{
	struct batch *b = batch_new(NULL, 64, 1 << 20, 0.3);
	char err[STORE_ERR_MAX];
	struct submitter a;
	struct timespec t0, t1;
	enum store_result r;
	double waited;

	(void)state;
	assert_non_null(b);
	pthread_mutex_lock(&mu);
	calls = 0;
	release_first = 0;
	pthread_mutex_unlock(&mu);
	start(&a, b, "a");
	sleep_s(0.05);		/* a commits, held */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = batch_store(b, NULL, "q", 1, err, sizeof(err), NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(r, STORE_UNAVAILABLE);
	assert_non_null(strstr(err, "WAHOOK_DB_TIMEOUT"));
	assert_true(waited >= 0.25);	/* not before its deadline */
	pthread_mutex_lock(&mu);
	assert_true(held);		/* and while the commit is still stuck */
	release_first = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(a.t, NULL);
	assert_int_equal(a.res, STORE_OK);
	batch_free(b);
}

#define STRESS_THREADS	16
#define STRESS_EACH	3000

struct stresser {
	struct batch	*b;
	int		 id;
	long		 wrong;
	pthread_t	 t;
};

static void *
stress_main(void *arg)
{
	struct stresser *w = arg;
	char body[32], err[STORE_ERR_MAX];
	enum store_result r;
	size_t batched;
	int i;

	for (i = 0; i < STRESS_EACH; i++) {
		/* every third webhook is one the database refuses */
		snprintf(body, sizeof(body), "%c%d.%d", i % 3 == 0 ? 'x' : 'w', w->id, i);
		batched = 0;
		r = batch_store(w->b, NULL, body, strlen(body), err, sizeof(err), &batched);
		if (r != (i % 3 == 0 ? STORE_REJECTED : STORE_OK) || batched < 1 ||
		    (r != STORE_OK && strcmp(err, body) != 0))
			w->wrong++;
	}
	return NULL;
}

/* Sixteen threads, each its own results back (rejected ones with their own
 * reason), every webhook stored exactly once, and nobody left waiting. */
static void
test_many_threads_each_get_their_own_result(void **state)
{
	struct batch *b = batch_new(NULL, 8, 1 << 20, 5.0);
	struct stresser w[STRESS_THREADS];
	long wrong = 0;
	int i;

	(void)state;
	assert_non_null(b);
	fast = 1;
	fast_items = 0;
	for (i = 0; i < STRESS_THREADS; i++) {
		w[i].b = b;
		w[i].id = i;
		w[i].wrong = 0;
		assert_int_equal(pthread_create(&w[i].t, NULL, stress_main, &w[i]), 0);
	}
	for (i = 0; i < STRESS_THREADS; i++) {
		pthread_join(w[i].t, NULL);
		wrong += w[i].wrong;
	}
	fast = 0;
	assert_int_equal(wrong, 0);
	assert_int_equal(fast_items, (long)STRESS_THREADS * STRESS_EACH);
	batch_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nearly_expired_webhook_does_not_fail_its_batch),
		cmocka_unit_test(test_queued_webhook_fails_at_its_deadline_behind_a_stuck_commit),
		cmocka_unit_test(test_many_threads_each_get_their_own_result),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
