/*
 * batch.c - group commit (see batch.h). One mutex guards the queue; the
 * committer role is a flag, not a thread: a waiting request thread that
 * finds no commit running takes the queue's head and runs it, so a process
 * serving one request at a time (plain CGI, mod_fcgid) commits exactly as
 * before. A job lives on its waiting thread's stack until that thread is
 * woken; a job still queued when its deadline passes leaves the queue and
 * fails (503), so the deadline holds behind a stuck commit too.
 *
 * Each job has its own condition variable, so a commit wakes the threads of
 * the webhooks it stored and, when more are queued, the first of them to
 * commit next: never every thread of the process (with 16 threads the
 * broadcast cost several needless wakeups per webhook).
 */
#include "batch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum job_kind { JOB_INGEST, JOB_QUARANTINE };

struct job {
	enum job_kind		 kind;
	struct store_item	 item;		/* JOB_INGEST; body and result for both */
	const char		*reason;	/* JOB_QUARANTINE */
	struct timespec		 deadline;	/* CLOCK_MONOTONIC */
	int			 taken;		/* a committer has it: wait for its end */
	int			 done;
	pthread_cond_t		 cv;		/* done, or first in line to commit */
	struct job		*next;
};

struct batch {
	struct store		 *store;
	size_t			  max_webhooks, max_bytes;
	double			  timeout;
	pthread_mutex_t		  mu;
	pthread_condattr_t	  ca;		/* the jobs' condition variables */
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
	pthread_cond_t probe;
	struct batch *b;
	int mu = 0, ca = 0;

	if (max_webhooks == 0)
		max_webhooks = 1;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->store = store;
	b->max_webhooks = max_webhooks;
	b->max_bytes = max_bytes;
	b->timeout = timeout;
	if ((b->take = calloc(max_webhooks, sizeof(*b->take))) == NULL ||
	    (b->jobs = calloc(max_webhooks, sizeof(*b->jobs))) == NULL)
		goto fail;
	if (pthread_mutex_init(&b->mu, NULL) != 0)
		goto fail;
	mu = 1;
	if (pthread_condattr_init(&b->ca) != 0)
		goto fail;
	ca = 1;
	/* deadlines on the monotonic clock: a clock step must not move them */
	if (pthread_condattr_setclock(&b->ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&probe, &b->ca) != 0)
		goto fail;
	pthread_cond_destroy(&probe);
	return b;
fail:
	if (ca)
		pthread_condattr_destroy(&b->ca);
	if (mu)
		pthread_mutex_destroy(&b->mu);
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
	pthread_condattr_destroy(&b->ca);
	pthread_mutex_destroy(&b->mu);
	free(b->take);
	free(b->jobs);
	free(b);
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

/* Under the lock: no commit runs; the first queued job's thread commits next. */
static void
wake_next(struct batch *b)
{
	if (!b->committing && b->head != NULL)
		pthread_cond_signal(&b->head->cv);
}

/* Queues j and returns once it is done, committing batches while no other
 * thread does, or once its deadline passed while it was still queued. */
static void
submit(struct batch *b, struct job *j)
{
	struct timespec t0, t1;
	double left;
	size_t n, k;
	int rc;

	j->done = j->taken = 0;
	j->next = NULL;
	if (pthread_cond_init(&j->cv, &b->ca) != 0) {
		j->item.res = STORE_UNAVAILABLE;
		snprintf(j->item.err, sizeof(j->item.err), "store: out of resources "
		    "(a condition variable)");
		return;
	}
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
	while (!j->done) {
		if (!b->committing && b->head != NULL) {
			b->committing = 1;
			n = dequeue(b, &left);
			for (k = 0; k < n; k++)
				b->jobs[k]->taken = 1;
			pthread_mutex_unlock(&b->mu);
			clock_gettime(CLOCK_MONOTONIC, &t0);
			run(b, n, left);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			pthread_mutex_lock(&b->mu);
			b->commit_s = (b->commit_s + ts_s(&t1) - ts_s(&t0)) / 2;
			for (k = 0; k < n; k++) {
				b->jobs[k]->done = 1;
				if (b->jobs[k] != j)
					pthread_cond_signal(&b->jobs[k]->cv);
			}
			b->committing = 0;
			wake_next(b);
			continue;
		}
		if (j->taken) {
			pthread_cond_wait(&j->cv, &b->mu);
			continue;
		}
		rc = pthread_cond_timedwait(&j->cv, &b->mu, &j->deadline);
		if (rc == ETIMEDOUT && !j->taken && !j->done) {
			unlink_job(b, j);
			wake_next(b);	/* it may have been first in line */
			j->item.res = STORE_UNAVAILABLE;
			snprintf(j->item.err, sizeof(j->item.err), "store: waited "
			    "WAHOOK_DB_TIMEOUT (%g s) for the database connection",
			    b->timeout);
			break;
		}
	}
	pthread_mutex_unlock(&b->mu);
	pthread_cond_destroy(&j->cv);
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
