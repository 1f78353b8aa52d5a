/*
 * engine.c - the transfer engine (see engine.h). Every transfer's bytes pass
 * through on_write(), which stamps their arrival, so an idle limit is measured
 * from the last byte libcurl handed over, never from the owner's clock.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"

struct engine {
	CURLM			*multi;
	struct engine_slot	**slots;
	int			 nslots, max;
};

struct engine *
engine_new(int nslots, long maxconnects, char *err, size_t errlen)
{
	struct engine *e = NULL;

	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->slots = calloc((size_t)nslots, sizeof(struct engine_slot *))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	e->max = nslots;
	if ((e->multi = curl_multi_init()) == NULL) {
		snprintf(err, errlen, "curl_multi_init failed");
		goto fail;
	}
	curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	if (maxconnects > 0)
		curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, maxconnects);
	return e;
fail:
	engine_free(e);
	return NULL;
}

void
engine_free(struct engine *e)
{
	struct engine_slot *s;
	int i;

	if (e == NULL)
		return;
	for (i = 0; i < e->nslots; i++) {
		s = e->slots[i];
		engine_cancel(s);
		curl_easy_cleanup(s->easy);
		transfer_answer_free(&s->ans);
		free(s);
	}
	free(e->slots);
	if (e->multi != NULL)
		curl_multi_cleanup(e->multi);
	free(e);
}

struct engine_slot *
engine_slot_new(struct engine *e, size_t answer_max)
{
	struct engine_slot *s = NULL;

	if (e->nslots == e->max || (s = calloc(1, sizeof(*s))) == NULL)
		goto fail;
	if ((s->easy = curl_easy_init()) == NULL)
		goto fail;
	transfer_answer_init(&s->ans, answer_max);
	s->eng = e;
	e->slots[e->nslots++] = s;
	return s;
fail:
	free(s);
	return NULL;
}

static size_t
on_write(char *p, size_t size, size_t n, void *arg)
{
	struct engine_slot *s = arg;
	size_t len = size * n, took;

	took = s->sink != NULL ? s->sink(s->sink_arg, p, len) :
	    transfer_answer_take(&s->ans, p, len);
	if (took == len && len > 0)
		s->last = log_now_ms();
	return took;
}

CURL *
engine_prepare(struct engine_slot *s)
{
	CURL *c = s->easy;

	curl_easy_reset(c);
	s->errbuf[0] = '\0';
	s->sink = NULL;
	s->sink_arg = NULL;
	transfer_answer_reset(&s->ans);
	/* every byte through on_write(): its arrival is the idle limit's clock */
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	return c;
}

void
engine_sink(struct engine_slot *s, engine_sink_fn *sink, void *arg)
{
	s->sink = sink;
	s->sink_arg = arg;
}

int
engine_start(struct engine_slot *s, enum engine_limit how, double limit_ms,
    const char *limit_name, engine_done_fn *done, void *priv)
{
	curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
	if (curl_multi_add_handle(s->eng->multi, s->easy) != CURLM_OK)
		return -1;
	s->busy = 1;
	s->how = how;
	s->limit_ms = limit_ms;
	s->limit_name = limit_name;
	s->done = done;
	s->priv = priv;
	s->t0 = s->last = log_now_ms();
	return 0;
}

void
engine_cancel(struct engine_slot *s)
{
	if (s == NULL || !s->busy)
		return;
	curl_multi_remove_handle(s->eng->multi, s->easy);
	s->busy = 0;
}

int
engine_busy(const struct engine_slot *s)
{
	return s->busy;
}

/* When s's limit passes, in log_now_ms() terms. */
static double
due(const struct engine_slot *s)
{
	return (s->how == ENGINE_IDLE ? s->last : s->t0) + s->limit_ms;
}

/* Takes s out and calls its owner back. */
static void
end(struct engine_slot *s, CURLcode rc)
{
	engine_cancel(s);
	s->done(s->priv, s, rc);
}

int
engine_wait(struct engine *e, struct curl_waitfd *extra, unsigned n, int timeout_ms)
{
	struct engine_slot *s;
	CURLcode rc;
	void *priv;
	double now, left;
	int i, still = 0;

	/* wake up in time for the first limit */
	now = log_now_ms();
	for (i = 0; i < e->nslots; i++) {
		s = e->slots[i];
		if (s->busy && (left = due(s) - now) < timeout_ms)
			timeout_ms = left < 0 ? 0 : (int)left + 1;
	}
	if (curl_multi_poll(e->multi, extra, n, timeout_ms, NULL) != CURLM_OK ||
	    curl_multi_perform(e->multi, &still) != CURLM_OK)
		return -1;
	while (transfer_next_done(e->multi, &priv, &rc)) {
		s = priv;
		if (s != NULL && s->busy)
			end(s, rc);
	}
	/*
	 * The limits are measured on the transfer: this pass has just read
	 * whatever had arrived, however long the owner was busy elsewhere, so a
	 * transfer still short of its answer now really was late.
	 */
	now = log_now_ms();
	for (i = 0; i < e->nslots; i++) {
		s = e->slots[i];
		if (!s->busy || now < due(s))
			continue;
		snprintf(s->errbuf, sizeof(s->errbuf), "%s within %s (%.0f ms)",
		    s->how == ENGINE_IDLE ? "no byte" : "no answer", s->limit_name,
		    s->limit_ms);
		end(s, CURLE_OPERATION_TIMEDOUT);
	}
	return 0;
}

void
engine_wakeup(struct engine *e)
{
	curl_multi_wakeup(e->multi);
}
