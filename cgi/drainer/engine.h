/*
 * engine.h - the drainer's one transfer engine: a libcurl multi handle, the
 * slots that carry its transfers, each transfer's deadline and the dispatch of
 * its end to the module that started it. graph.c, ask.c and media.c build
 * requests and read answers; only this module polls.
 *
 * Deadlines are measured on the transfer: engine_wait() first lets libcurl
 * read whatever has arrived, then ends the transfers past their limit. Time
 * the owner spent elsewhere (a slow PostgreSQL statement) never turns an
 * answer that came into a timeout.
 *
 * One implementation, two instances. The drain loop's engine carries the
 * Graph calls and the reply URL's POSTs, polled together with the reply
 * programs' pipes and the database's socket. The media lane keeps its thread
 * and runs its own engine there: a 100 MB download or a large-object write
 * must never hold up a conversation's mark-read or reply, and libcurl's multi
 * handle belongs to one thread. An engine is used by one thread only, except
 * engine_wakeup().
 */
#ifndef WAHOOK_ENGINE_H
#define WAHOOK_ENGINE_H

#include <stddef.h>

#include <curl/curl.h>

#include "transfer.h"

/* How a transfer's limit is measured. */
enum engine_limit {
	ENGINE_TOTAL,	/* the whole transfer within the limit of its start */
	ENGINE_IDLE	/* never longer than the limit without a byte (downloads) */
};

struct engine_slot;

/*
 * The owner's completion callback: the transfer started with priv ended with
 * rc, libcurl's result, or CURLE_OPERATION_TIMEDOUT past its limit (then
 * s->errbuf says which limit). s is out of the multi handle and free: the
 * callback may read its answer and CURLINFO, and may start it again.
 */
typedef void engine_done_fn(void *priv, struct engine_slot *s, CURLcode rc);

/* Where a transfer's bytes go instead of the capped answer: returns len to go
 * on, anything else cuts the transfer (CURLE_WRITE_ERROR). */
typedef size_t engine_sink_fn(void *arg, const char *p, size_t len);

/* One transfer at a time, reused. The owner reads the first four fields. */
struct engine_slot {
	CURL		*easy;
	struct transfer_answer ans;	/* the answer, capped at engine_slot_new()'s max */
	char		 errbuf[CURL_ERROR_SIZE];	/* libcurl's detail, or the limit passed */
	double		 t0;		/* log_now_ms() at engine_start() */
	/* the engine's */
	struct engine	*eng;
	int		 busy;		/* in the multi handle */
	enum engine_limit how;
	double		 limit_ms;
	const char	*limit_name;
	double		 last;		/* log_now_ms() of the last byte (or the start) */
	engine_sink_fn	*sink;
	void		*sink_arg;
	engine_done_fn	*done;
	void		*priv;
};

struct engine;

/*
 * An engine of at most nslots slots. maxconnects: connections kept open
 * between transfers (CURLMOPT_MAXCONNECTS; 0: libcurl's default). HTTP/2
 * multiplexing is on. Returns NULL with the reason in err (curl_global_init
 * must have succeeded).
 */
struct engine *engine_new(int nslots, long maxconnects, char *err, size_t errlen);

/* Ends what still runs (no callback) and frees every slot; NULL is fine. */
void	engine_free(struct engine *);

/*
 * A new slot whose answer keeps at most answer_max bytes (the engine frees
 * it). Returns NULL out of memory, or when nslots slots exist already.
 */
struct engine_slot *engine_slot_new(struct engine *, size_t answer_max);

/*
 * Readies s for its next transfer: every option back to libcurl's default
 * (connections and caches are kept), then libcurl's error detail into
 * s->errbuf (emptied), no signals, and the answer emptied and made the write
 * target. Returns s->easy for the owner's own options. s must not be busy.
 */
CURL	*engine_prepare(struct engine_slot *s);

/* The bytes go to sink(arg, ...) instead of s->ans; call after
 * engine_prepare(). Each piece sink takes counts as progress for ENGINE_IDLE. */
void	engine_sink(struct engine_slot *s, engine_sink_fn *sink, void *arg);

/*
 * Starts the transfer prepared on s: done(priv, s, rc) is called once when it
 * ends, from engine_wait(). limit_ms is measured as how says; limit_name (a
 * string constant, e.g. "WAHOOK_HTTP_TIMEOUT") names it in s->errbuf when it
 * passes. Returns 0, or -1 when libcurl refused it (s stays free, no callback).
 */
int	engine_start(struct engine_slot *s, enum engine_limit how, double limit_ms,
	    const char *limit_name, engine_done_fn *done, void *priv)
	    __attribute__((warn_unused_result));

/* Takes s's transfer out without a callback (a run that stops, a slot freed);
 * nothing happens when it is not busy. */
void	engine_cancel(struct engine_slot *s);

/* 1 while s's transfer runs (started, its callback not yet called). */
int	engine_busy(const struct engine_slot *s);

/*
 * Waits up to timeout_ms (shortened to the first limit due) for network
 * activity or the n descriptors of extra (their revents set on return; NULL
 * when n is 0), also when nothing runs, so it doubles as the owner's sleep.
 * Then advances every transfer, calls back those that ended, in libcurl's
 * order, then those past their limit. Returns 0, or -1 when the multi handle
 * failed (not a transfer: the owner should stop).
 */
int	engine_wait(struct engine *, struct curl_waitfd *extra, unsigned n, int timeout_ms)
	    __attribute__((warn_unused_result));

/* Makes a running or coming engine_wait() return at once; from any thread. */
void	engine_wakeup(struct engine *);

#endif
