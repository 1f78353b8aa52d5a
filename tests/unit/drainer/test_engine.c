/*
 * test_engine.c - cgi/drainer/engine.c: a transfer's end reaches its owner's
 * callback once, with its answer capped; a sink takes the bytes instead of the
 * answer; a server that never answers is ended at the limit, named in errbuf;
 * and an answer that arrived while the owner was busy past the limit (a slow
 * database statement) is an answer, not a timeout. Real transfers: file://
 * and a listening socket on 127.0.0.1 that this test answers by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "engine.h"
#include "log.h"

#define CAP	100
#define LIMIT_MS 200.0

struct owner {
	int		 calls;
	CURLcode	 rc;
	struct engine_slot *slot;
	size_t		 sunk;
};

static void
done(void *priv, struct engine_slot *s, CURLcode rc)
{
	struct owner *o = priv;

	o->calls++;
	o->rc = rc;
	o->slot = s;
	assert_false(engine_busy(s));
}

static size_t
sink(void *arg, const char *p, size_t len)
{
	struct owner *o = arg;

	(void)p;
	o->sunk += len;
	return len;
}

/* A temp file of n 'x' (n <= CAP + 1); its URL in url. */
static void
temp_file(char *path, size_t n, char *url, size_t urllen)
{
	char bytes[CAP + 1];
	int fd;

	assert_true(n <= sizeof(bytes));
	memset(bytes, 'x', n);
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, bytes, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
	assert_true((size_t)snprintf(url, urllen, "file://%s", path) < urllen);
}

/* Waits until o's callback ran (at most 5 s). */
static void
run_until_done(struct engine *e, struct owner *o)
{
	double t0 = log_now_ms();

	while (o->calls == 0 && log_now_ms() - t0 < 5000)
		assert_int_equal(engine_wait(e, NULL, 0, 50), 0);
	assert_int_equal(o->calls, 1);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A listening socket on 127.0.0.1: its fd, its URL in url. */
static int
listener(char *url, size_t urllen)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, urllen, "http://127.0.0.1:%d/", ntohs(a.sin_port));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* A transfer to a socket of this test's, connected and not answered yet. */
struct fixture {
	struct owner	 o;
	struct engine	*e;
	struct engine_slot *s;
	int		 lfd;		/* the listener */
	int		 fd;		/* the transfer's connection, our side */
	char		 url[64];
};

/* Starts f's transfer with a LIMIT_MS limit and waits until it connected. */
static void
connect_one(struct fixture *f)
{
	char err[128];
	double t0;

	memset(f, 0, sizeof(*f));
	f->lfd = listener(f->url, sizeof(f->url));
	assert_non_null(f->e = engine_new(1, 0, err, sizeof(err)));
	assert_non_null(f->s = engine_slot_new(f->e, CAP));
	curl_easy_setopt(engine_prepare(f->s), CURLOPT_URL, f->url);
	assert_int_equal(engine_start(f->s, ENGINE_TOTAL, LIMIT_MS, "TEST_LIMIT", done,
	    &f->o), 0);
	f->fd = -1;
	t0 = log_now_ms();
	while (f->fd < 0 && log_now_ms() - t0 < 2000) {
		assert_int_equal(engine_wait(f->e, NULL, 0, 10), 0);
		f->fd = accept(f->lfd, NULL, NULL);
	}
	assert_true(f->fd >= 0);
}

static void
disconnect(struct fixture *f)
{
	engine_free(f->e);
	close(f->fd);
	close(f->lfd);
}

static void
test_answers_reach_their_owner(void **state)
{
	char path[2][32] = { "/tmp/test_engine.XXXXXX", "/tmp/test_engine.XXXXXX" };
	char url[2][64], err[128];
	struct owner o[2];
	struct engine *e;
	struct engine_slot *s[2];
	CURL *c;
	int i;

	(void)state;
	memset(o, 0, sizeof(o));
	assert_non_null(e = engine_new(2, 0, err, sizeof(err)));
	for (i = 0; i < 2; i++) {
		assert_non_null(s[i] = engine_slot_new(e, CAP));
		temp_file(path[i], i == 0 ? 10 : CAP + 1, url[i], sizeof(url[i]));
		c = engine_prepare(s[i]);
		curl_easy_setopt(c, CURLOPT_URL, url[i]);
		assert_int_equal(engine_start(s[i], ENGINE_TOTAL, 5000, "TEST_LIMIT", done,
		    &o[i]), 0);
		assert_true(engine_busy(s[i]));
	}
	assert_null(engine_slot_new(e, CAP));	/* two slots, no more */
	run_until_done(e, &o[0]);
	run_until_done(e, &o[1]);
	assert_int_equal(o[0].rc, CURLE_OK);
	assert_ptr_equal(o[0].slot, s[0]);
	assert_int_equal(s[0]->ans.buf.len, 10);
	assert_memory_equal(s[0]->ans.buf.s, "xxxxxxxxxx", 10);
	/* one byte over the cap: cut, the first CAP bytes kept */
	assert_int_equal(o[1].rc, CURLE_WRITE_ERROR);
	assert_int_equal(s[1]->ans.over, 1);
	assert_int_equal(s[1]->ans.buf.len, CAP);

	/* the same slot again, into a sink: the answer stays empty */
	memset(&o[0], 0, sizeof(o[0]));
	c = engine_prepare(s[1]);
	curl_easy_setopt(c, CURLOPT_URL, url[1]);
	engine_sink(s[1], sink, &o[0]);
	assert_int_equal(engine_start(s[1], ENGINE_IDLE, 5000, "TEST_LIMIT", done, &o[0]), 0);
	run_until_done(e, &o[0]);
	assert_int_equal(o[0].rc, CURLE_OK);
	assert_int_equal(o[0].sunk, CAP + 1);
	assert_int_equal(s[1]->ans.buf.len, 0);
	for (i = 0; i < 2; i++)
		unlink(path[i]);
	engine_free(e);
}

static void
test_silence_ends_at_the_limit(void **state)
{
	struct fixture f;

	(void)state;
	connect_one(&f);
	run_until_done(f.e, &f.o);
	assert_true(log_now_ms() - f.s->t0 >= LIMIT_MS);
	assert_int_equal(f.o.rc, CURLE_OPERATION_TIMEDOUT);
	assert_string_equal(f.s->errbuf, "no answer within TEST_LIMIT (200 ms)");
	disconnect(&f);
}

/* The owner is busy past the limit (a slow statement) while the answer
 * arrives: the next engine_wait() reads it first, so it is an answer. */
static void
test_busy_owner_gets_the_answer(void **state)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct fixture f;

	(void)state;
	connect_one(&f);
	assert_int_equal(write(f.fd, answer, sizeof(answer) - 1), (ssize_t)sizeof(answer) - 1);
	sleep_ms((long)(2 * LIMIT_MS));
	assert_true(log_now_ms() - f.s->t0 > LIMIT_MS);
	run_until_done(f.e, &f.o);
	assert_int_equal(f.o.rc, CURLE_OK);
	assert_int_equal(f.s->ans.buf.len, 2);
	assert_memory_equal(f.s->ans.buf.s, "ok", 2);
	disconnect(&f);
}

/* A transfer taken out gets no callback; the slot can run again. */
static void
test_cancel_calls_nobody(void **state)
{
	struct fixture f;
	int i;

	(void)state;
	connect_one(&f);
	engine_cancel(f.s);
	assert_false(engine_busy(f.s));
	for (i = 0; i < 3; i++)
		assert_int_equal(engine_wait(f.e, NULL, 0, (int)LIMIT_MS), 0);
	assert_int_equal(f.o.calls, 0);
	disconnect(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers_reach_their_owner),
		cmocka_unit_test(test_silence_ends_at_the_limit),
		cmocka_unit_test(test_busy_owner_gets_the_answer),
		cmocka_unit_test(test_cancel_calls_nobody),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
