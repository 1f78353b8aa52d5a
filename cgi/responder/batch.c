/*
 * batch.c - group commit (see batch.h). One mutex guards the queue; the
 * committer role is a flag, not a thread: a waiting request thread that
 * finds no commit running takes the queue's head and runs it, so a process
 * serving one request at a time (plain CGI, mod_fcgid) commits exactly as
 * before. A job lives on its waiting thread's stack until that thread has
 * seen it done; a job still queued when its deadline passes leaves the queue
 * and fails (503), so the deadline holds behind a stuck commit too.
 *
 * Each job has a state word its thread sleeps on (a futex): the committer
 * sets it to done outside the queue's lock and wakes that thread alone, which
 * returns without taking the lock again. A condition variable would make
 * each woken thread queue for the committer's mutex before it could return:
 * two more system calls and a wait per webhook, under contention from every
 * other request thread of the process.
 */
#include "batch.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/futex.h>
#include <sys/syscall.h>

enum job_kind { JOB_INGEST, JOB_QUARANTINE };

/* a job's state word */
enum { JOB_WAITING, JOB_LEAD, JOB_DONE };

struct job {
	enum job_kind		 kind;
	struct store_item	 item;		/* JOB_INGEST; body and result for both */
	const char		*reason;	/* JOB_QUARANTINE */
	struct timespec		 deadline;	/* CLOCK_MONOTONIC */
	int			 taken;		/* under the lock: a committer has it */
	atomic_int		 state;		/* JOB_LEAD: first in line, commit if
						 * you can; JOB_DONE: item holds the
						 * result, and nobody else touches the job */
	struct job		*next;
};

struct batch {
	struct store		 *store;
	size_t			  max_webhooks, max_bytes;
	double			  timeout;
	pthread_mutex_t		  mu;
	struct job		 *head, *tail;	/* waiting, in arrival order */
	int			  committing;
	double			  commit_s;	/* how long a commit takes now (a moving
						   average of the last ones) */
	struct store_item	**take;		/* the committer's batch, max_webhooks */
	struct job		**jobs;
};

struct batch *
batch_new(struct store *store, size_t max_webhooks, size_t max_bytes, double timeout)
{
	struct batch *b;

	if (max_webhooks == 0)
		max_webhooks = 1;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->store = store;
	b->max_webhooks = max_webhooks;
	b->max_bytes = max_bytes;
	b->timeout = timeout;
	if ((b->take = calloc(max_webhooks, sizeof(struct store_item *))) == NULL ||
	    (b->jobs = calloc(max_webhooks, sizeof(struct job *))) == NULL ||
	    pthread_mutex_init(&b->mu, NULL) != 0)
		goto fail;
	return b;
fail:
	free(b->take);
	free(b->jobs);
	free(b);
	return NULL;
}

void
batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b->take);
	free(b->jobs);
	free(b);
}

/*
 * Sleeps while *w holds cur, until abs (CLOCK_MONOTONIC; NULL: no limit).
 * Returns ETIMEDOUT once abs has passed, else 0 (woken, the word changed,
 * or a spurious wake-up: the caller looks at the word again).
 */
static int
word_wait(atomic_int *w, int cur, const struct timespec *abs)
{
	if (syscall(SYS_futex, w, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, cur, abs, NULL,
	    FUTEX_BITSET_MATCH_ANY) == -1 && errno == ETIMEDOUT)
		return ETIMEDOUT;
	return 0;
}

/*
 * Sets *w to v and wakes its sleeper. The word's owner may return as soon as
 * it sees v, so the wake may reach a word that no longer exists: harmless
 * (FUTEX_WAKE only looks the address up; whoever sleeps on it next checks
 * its own word and sleeps again).
 */
static void
word_set(atomic_int *w, int v)
{
	atomic_store_explicit(w, v, memory_order_release);
	(void)syscall(SYS_futex, w, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

static double
ts_s(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

/*
 * Under the lock: unlinks the next batch from the queue into b->jobs. A
 * quarantine job goes alone; ingest jobs go together while they fit. A batch
 * runs under the earliest deadline of its jobs, so jobs with less time left
 * than a commit takes now (nearly expired: they waited behind a slow one) go
 * in a batch of their own, and the rest are not cut short by them. Returns
 * the number taken (>= 1: the queue is not empty) and sets *left to the
 * seconds until the earliest deadline among them.
 */
static size_t
dequeue(struct batch *b, double *left)
{
	struct job *j = b->head;
	struct timespec ts;
	size_t n = 0, bytes = 0;
	double now, first = ts_s(&j->deadline);
	int near;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = ts_s(&ts);
	near = first - now < b->commit_s;
	if (j->kind == JOB_QUARANTINE) {
		b->jobs[n++] = j;
		j = j->next;
	} else
		while (j != NULL && j->kind == JOB_INGEST && n < b->max_webhooks &&
		    (n == 0 || bytes + j->item.len <= b->max_bytes) &&
		    (ts_s(&j->deadline) - now < b->commit_s) == near) {
			bytes += j->item.len;
			if (ts_s(&j->deadline) < first)
				first = ts_s(&j->deadline);
			b->jobs[n++] = j;
			j = j->next;
		}
	b->head = j;
	if (j == NULL)
		b->tail = NULL;
	*left = first - now;
	if (*left < 1e-4)
		*left = 1e-4;	/* > 0: the store's own default would be longer */
	return n;
}

/* Outside the lock: runs what dequeue() took, within left seconds. */
static void
run(struct batch *b, size_t n, double left)
{
	struct job *j = b->jobs[0];
	size_t k;

	if (j->kind == JOB_QUARANTINE) {
		j->item.res = store_quarantine(b->store, j->reason, j->item.body,
		    j->item.len, left, j->item.err, sizeof(j->item.err));
		j->item.batch = 1;
		return;
	}
	for (k = 0; k < n; k++)
		b->take[k] = &b->jobs[k]->item;
	store_batch(b->store, b->take, n, left);
}

/* Under the lock: takes j out of the queue (it is in it). */
static void
unlink_job(struct batch *b, struct job *j)
{
	struct job **pp, *prev = NULL;

	for (pp = &b->head; *pp != NULL; prev = *pp, pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			if (b->tail == j)
				b->tail = prev;
			return;
		}
}

/*
 * Under the lock: no commit runs; the first queued job's thread commits next.
 * (A queued job cannot leave the queue without the lock, so it is there.)
 */
static void
wake_next(struct batch *b)
{
	if (!b->committing && b->head != NULL)
		word_set(&b->head->state, JOB_LEAD);
}

/*
 * Under the lock, which it releases while the statement runs: takes the next
 * batch, runs it, and marks its jobs done, waking their threads (not j's: j
 * is the committer's own, maybe in the batch). Returns 1 when j was in it.
 */
static int
commit_next(struct batch *b, struct job *j)
{
	struct timespec t0, t1;
	double left;
	size_t n, k;
	int mine = 0;

	b->committing = 1;
	n = dequeue(b, &left);
	for (k = 0; k < n; k++)
		b->jobs[k]->taken = 1;
	pthread_mutex_unlock(&b->mu);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run(b, n, left);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* done, outside the lock: each woken thread returns at once */
	for (k = 0; k < n; k++) {
		if (b->jobs[k] == j)
			mine = 1;
		else
			word_set(&b->jobs[k]->state, JOB_DONE);
	}
	pthread_mutex_lock(&b->mu);
	b->commit_s = (b->commit_s + ts_s(&t1) - ts_s(&t0)) / 2;
	b->committing = 0;
	return mine;
}

/* Queues j and returns once it is done, committing batches while no other
 * thread does, or once its deadline passed while it was still queued. */
static void
submit(struct batch *b, struct job *j)
{
	int st, lead;

	j->taken = 0;
	j->next = NULL;
	atomic_init(&j->state, JOB_WAITING);
	clock_gettime(CLOCK_MONOTONIC, &j->deadline);
	j->deadline.tv_sec += (time_t)b->timeout;
	j->deadline.tv_nsec += (long)((b->timeout - (double)(time_t)b->timeout) * 1e9);
	if (j->deadline.tv_nsec >= 1000000000L) {
		j->deadline.tv_sec++;
		j->deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->mu);
	if (b->tail != NULL)
		b->tail->next = j;
	else
		b->head = j;
	b->tail = j;
	for (;;) {
		/* the lock is held here */
		if (!b->committing && b->head != NULL) {
			/* not in it (the batch was full): j is still queued, and
			 * this thread commits the next batch too */
			if (commit_next(b, j))
				break;
			continue;
		}
		if (j->taken) {
			/* a committer has it: wait for its end, however long */
			pthread_mutex_unlock(&b->mu);
			while ((st = atomic_load_explicit(&j->state, memory_order_acquire)) !=
			    JOB_DONE)
				(void)word_wait(&j->state, st, NULL);
			return;
		}
		pthread_mutex_unlock(&b->mu);
		st = word_wait(&j->state, JOB_WAITING, &j->deadline);
		if (atomic_load_explicit(&j->state, memory_order_acquire) == JOB_DONE)
			return;
		pthread_mutex_lock(&b->mu);
		/* LEAD: first in line; back to waiting, and commit above if it can */
		lead = JOB_LEAD;
		(void)atomic_compare_exchange_strong(&j->state, &lead, JOB_WAITING);
		if (st == ETIMEDOUT && !j->taken) {
			unlink_job(b, j);	/* it may have been first in line: see below */
			j->item.res = STORE_UNAVAILABLE;
			snprintf(j->item.err, sizeof(j->item.err), "store: waited "
			    "WAHOOK_DB_TIMEOUT (%g s) for the database connection",
			    b->timeout);
			break;
		}
	}
	wake_next(b);	/* what is queued behind: its first commits next */
	pthread_mutex_unlock(&b->mu);
}

void
batch_idle(struct batch *b)
{
	if (!store_stale(b->store))
		return;		/* nearly always: no lock taken, nobody made to wait */
	pthread_mutex_lock(&b->mu);
	if (b->committing || b->head != NULL) {
		pthread_mutex_unlock(&b->mu);
		return;
	}
	b->committing = 1;	/* webhooks that arrive meanwhile queue */
	pthread_mutex_unlock(&b->mu);
	store_refresh(b->store);
	pthread_mutex_lock(&b->mu);
	b->committing = 0;
	wake_next(b);
	pthread_mutex_unlock(&b->mu);
}

enum store_result
batch_store(struct batch *b, struct payload *p, const char *body, size_t len,
    char *err, size_t errlen, size_t *batched)
{
	struct job j;

	memset(&j, 0, sizeof(j));
	j.kind = JOB_INGEST;
	j.item.p = p;
	j.item.body = body;
	j.item.len = len;
	submit(b, &j);
	if (j.item.res != STORE_OK)
		snprintf(err, errlen, "%s", j.item.err);
	if (batched != NULL)
		*batched = j.item.batch;
	return j.item.res;
}

enum store_result
batch_quarantine(struct batch *b, const char *reason, const char *body, size_t len,
    char *err, size_t errlen)
{
	struct job j;

	memset(&j, 0, sizeof(j));
	j.kind = JOB_QUARANTINE;
	j.reason = reason;
	j.item.body = body;
	j.item.len = len;
	submit(b, &j);
	if (j.item.res != STORE_OK)
		snprintf(err, errlen, "%s", j.item.err);
	return j.item.res;
}
