/*
 * wahook_fcgi.c - main() of wahook.fcgi: configuration, then WAHOOK_THREADS
 * worker threads, each accepting and answering one FastCGI request at a time
 * (FCGX_Accept_r: FCGI_Accept would swap environ under us), sharing one
 * database connection; or, when started as a plain CGI program, the single
 * request in the environment and stdin. A slow client holds one thread, never
 * the process. Under systemd socket activation the listening socket arrives
 * on fd 3 (LISTEN_FDS) and is moved to fd 0, where libfcgi looks for it.
 * SIGTERM/SIGINT/SIGUSR1 are taken by the main thread (sigwait): every
 * request in hand is finished, then the process exits.
 */
#include "config.h"
#include "env.h"
#include "http.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>

#include <fcgiapp.h>

#define WORKER_STACK (512 * 1024)

static atomic_int stopping;
static volatile sig_atomic_t woken;	/* SIGUSR2 reached a worker in accept() */

/* a variable of the drainer or of the scripts is not a typo: one environment
 * file may serve them all */
static const char *const *const known_names[] = {
	env_names_fcgi, env_names_drain, env_names_scripts, NULL
};

/*
 * systemd socket activation (sd_listen_fds(3) protocol, without libsystemd):
 * when LISTEN_PID is ours and LISTEN_FDS is 1, the listening socket is fd 3;
 * libfcgi listens on fd 0, so move it there. The variables are removed so that
 * nothing started later takes them for its own. Units that say
 * StandardInput=socket already have the socket on fd 0: that works too.
 * Returns 0 (also when not activated), or -1 with a message in err.
 */
static int
listen_fds_to_stdin(char *err, size_t errlen)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;
	long n, p;

	if (pid == NULL || fds == NULL)
		return 0;
	errno = 0;
	p = strtol(pid, &end, 10);
	if (errno != 0 || end == pid || *end != '\0' || p != (long)getpid())
		return 0;	/* meant for another process: leave fd 0 alone */
	errno = 0;
	n = strtol(fds, &end, 10);
	if (errno != 0 || end == fds || *end != '\0' || n != 1) {
		snprintf(err, errlen, "LISTEN_FDS=%.20s: want exactly one socket "
		    "(one ListenStream= in the .socket unit)", fds);
		return -1;
	}
	if (dup2(3, STDIN_FILENO) == -1) {
		snprintf(err, errlen, "LISTEN_FDS: dup2(3, 0): %s", strerror(errno));
		return -1;
	}
	close(3);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 0;
}

/* SIGUSR2 only interrupts a worker's accept(); libfcgi's flag
 * (FCGX_ShutdownPending) then makes it give up instead of retrying. */
static void
on_wake(int sig)
{
	(void)sig;
	woken = 1;
}

/* The FastCGI connection of the request being read, for fcgx_read(). */
struct fcgx_ctx {
	FCGX_Request	*rq;
	int		 timeo;		/* SO_RCVTIMEO is set on rq->ipcFd */
};

static void
set_rcvtimeo(int fd, double ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000.0);
	tv.tv_usec = (suseconds_t)((ms - (double)tv.tv_sec * 1000.0) * 1000.0);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/*
 * The body through libfcgi, under the deadline. libfcgi reads the socket
 * only when its own buffer is empty (and may hold whole records poll(2)
 * cannot see), so the deadline is put on those reads themselves: SO_RCVTIMEO
 * with the time left, before each call that may read. What the stream has
 * buffered is handed out without a read; otherwise one byte is asked for, so
 * that libfcgi reads once and returns, rather than looping until n bytes
 * arrived. A read that times out leaves the stream in error (EAGAIN), and
 * the request ends with 408.
 */
static long
fcgx_read(void *arg, char *buf, size_t n, double deadline)
{
	struct fcgx_ctx *c = arg;
	FCGX_Stream *in = c->rq->in;
	long avail = (long)(in->stop - in->rdNext);
	double left;
	int got, e;

	if (avail > 0)
		return FCGX_GetStr(buf, (size_t)avail < n ? (int)avail :
		    (n > INT_MAX ? INT_MAX : (int)n), in);
	if (in->isClosed)
		return FCGX_GetError(in) != 0 ? -1 : 0;
	if ((left = deadline - log_now_ms()) < 1.0)
		return HTTP_READ_TIMEOUT;
	set_rcvtimeo(c->rq->ipcFd, left);
	c->timeo = 1;
	got = FCGX_GetStr(buf, 1, in);
	if (got == 1)
		return 1;
	e = FCGX_GetError(in);
	if (e == EAGAIN || e == EWOULDBLOCK)
		return HTTP_READ_TIMEOUT;
	return e != 0 ? -1 : 0;
}

/* Plain CGI: the body is stdin, read directly, so poll(2) sees all of it. */
static long
cgi_read(void *ctx, char *buf, size_t n, double deadline)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	ssize_t got;
	double left;
	int rc;

	(void)ctx;
	for (;;) {
		if ((left = deadline - log_now_ms()) < 1.0)
			return HTTP_READ_TIMEOUT;
		rc = poll(&pfd, 1, left > 3600000.0 ? 3600000 : (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;	/* the deadline check above ends it */
		got = read(STDIN_FILENO, buf, n);
		if (got < 0 && errno == EINTR)
			continue;
		return (long)got;
	}
}

/* The CGI/FastCGI answer: a Status line, headers, the body. */
static int
format_head(char *h, size_t hlen, const struct http_resp *r)
{
	int n;

	n = snprintf(h, hlen, "Status: %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
	    "Content-Length: %zu\r\n%s%s\r\n", r->status, r->reason, r->body_len,
	    r->extra_header ? r->extra_header : "", r->extra_header ? "\r\n" : "");
	return (n < 0 || (size_t)n >= hlen) ? -1 : n;
}

/*
 * The value of FastCGI param name, with every repeat of it joined by ", ":
 * nginx passes a header sent twice as two params of one name (libfcgi's
 * FCGX_GetParam() sees the first only), where lighttpd and Apache join the
 * lines into one value. Joined here the same way, so every server hands
 * verify_signature() the same string. NULL when absent; a join longer than
 * buf is cut (a cut value does not verify).
 */
static const char *
param_joined(const char *name, FCGX_ParamArray envp, char *buf, size_t buflen)
{
	size_t nlen = strlen(name), len = 0;
	const char *first = NULL;
	int n, count = 0;

	for (; envp != NULL && *envp != NULL; envp++) {
		if (strncmp(*envp, name, nlen) != 0 || (*envp)[nlen] != '=')
			continue;
		if (count++ == 0)
			first = *envp + nlen + 1;
		n = snprintf(buf + len, buflen - len, "%s%s", count > 1 ? ", " : "",
		    *envp + nlen + 1);
		if (n < 0 || (size_t)n >= buflen - len)
			break;
		len += (size_t)n;
	}
	return count > 1 ? buf : first;
}

/* Answers the request in hand and finishes it. */
static void
serve_fcgx(struct http_state *st, FCGX_Request *rq)
{
	struct fcgx_ctx ctx = { rq, 0 };
	char sigs[1024];
	struct http_req req = {
		.method = FCGX_GetParam("REQUEST_METHOD", rq->envp),
		.query = FCGX_GetParam("QUERY_STRING", rq->envp),
		.content_length = FCGX_GetParam("CONTENT_LENGTH", rq->envp),
		.signature = param_joined("HTTP_X_HUB_SIGNATURE_256", rq->envp, sigs,
		    sizeof(sigs)),
		.read = fcgx_read,
		.ctx = &ctx,
	};
	struct http_resp resp;
	char head[512];
	int n;

	http_handle(st, &req, &resp);
	if (ctx.timeo)
		set_rcvtimeo(rq->ipcFd, 0);	/* a kept connection waits as long as it likes */
	/* a client gone by now is its own problem: the rows are committed */
	if ((n = format_head(head, sizeof(head), &resp)) >= 0) {
		FCGX_PutStr(head, n, rq->out);
		FCGX_PutStr(resp.body, (int)resp.body_len, rq->out);
	}
	if (resp.close && !rq->in->isClosed) {
		/*
		 * The body is not read to its end (too large, refused early):
		 * answer, then close without libfcgi's drain (on close it reads
		 * until the web server has been silent for 2 s, which a client
		 * trickling a body never is). Shutting the reading side makes
		 * that drain end at once. (After an expired read the stream is
		 * closed in error and libfcgi closes the connection itself.)
		 */
		FCGX_FClose(rq->err);
		FCGX_FClose(rq->out);
		(void)shutdown(rq->ipcFd, SHUT_RD);
		rq->keepConnection = 0;
	}
	FCGX_Finish_r(rq);
}

static int
serve_cgi(struct http_state *st)
{
	struct http_req req = {
		.method = getenv("REQUEST_METHOD"),
		.query = getenv("QUERY_STRING"),
		.content_length = getenv("CONTENT_LENGTH"),
		.signature = getenv("HTTP_X_HUB_SIGNATURE_256"),
		.read = cgi_read,
		.ctx = NULL,
	};
	struct http_resp resp;
	char head[512];
	int n;

	http_handle(st, &req, &resp);
	if ((n = format_head(head, sizeof(head), &resp)) < 0)
		return 1;
	if (fwrite(head, 1, (size_t)n, stdout) != (size_t)n ||
	    fwrite(resp.body, 1, resp.body_len, stdout) != resp.body_len ||
	    fflush(stdout) != 0)
		return 1;
	return 0;
}

/*
 * A FastCGI responder connects at start, so that a database it cannot use
 * (down, a role that may not log in, no migrations) is a warning in the log
 * before the first webhook, not only a 503 then. Not an exit: the database may
 * come up later, and each request reconnects. (A CGI process serves one
 * request, which connects anyway.)
 */
static void
warn_if_db_down(struct store *store)
{
	char err[512];
	struct logline l;

	if (store_connect(store, err, sizeof(err)) == 0)
		return;
	log_begin(&l, "warn", "db");
	log_str(&l, "msg", "cannot use the database of WAHOOK_DB at start; "
	    "answering 503 and reconnecting per request until it works");
	log_str(&l, "error", err);
	log_end(&l);
}

struct worker {
	pthread_t		 t;
	struct http_state	 st;
	FCGX_Request		 rq;
	long			 served;
	atomic_int		 done;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	sigset_t wake;
	int rc;

	sigemptyset(&wake);
	sigaddset(&wake, SIGUSR2);
	while (!atomic_load(&stopping)) {
		/* the wake-up signal may land only while waiting for a request */
		pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
		rc = atomic_load(&stopping) ? -1 : FCGX_Accept_r(&w->rq);
		pthread_sigmask(SIG_BLOCK, &wake, NULL);
		if (rc < 0)
			break;
		serve_fcgx(&w->st, &w->rq);
		http_release(&w->st);	/* after the answer left: nobody waits for free() */
		w->served++;
	}
	if (!atomic_exchange(&stopping, 1))
		log_msg("error", "accept", "FastCGI accept failed: stopping");
	atomic_store(&w->done, 1);
	return NULL;
}

static int
serve_fastcgi(const struct config *cfg, struct store *store)
{
	struct timespec tick = { 0, 200 * 1000 * 1000 }, nap = { 0, 20 * 1000 * 1000 };
	struct worker *w = NULL;
	struct sigaction sa;
	pthread_attr_t attr;
	sigset_t stop, all;
	struct logline l;
	long served = 0;
	int i, n = 0, rc = 1, sig = 0, live;

	if (FCGX_Init() != 0) {
		log_msg("error", "start", "FastCGI initialisation failed");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_wake;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: accept() must return */
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* every thread starts with these blocked; main takes them with sigwait */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGUSR1);
	sigaddset(&stop, SIGINT);
	all = stop;
	sigaddset(&all, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	if ((w = calloc((size_t)cfg->threads, sizeof(*w))) == NULL ||
	    pthread_attr_init(&attr) != 0) {
		log_msg("error", "start", "out of memory");
		goto out;
	}
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	for (n = 0; n < cfg->threads; n++) {
		w[n].st.cfg = cfg;
		w[n].st.store = store;
		if (FCGX_InitRequest(&w[n].rq, 0, 0) != 0 ||
		    pthread_create(&w[n].t, &attr, worker_main, &w[n]) != 0) {
			log_msg("error", "start", "cannot start a worker thread");
			atomic_store(&stopping, 1);
			break;
		}
	}
	pthread_attr_destroy(&attr);

	log_begin(&l, "info", "start");
	log_int(&l, "pid", (long long)getpid());
	log_int(&l, "threads", (long long)n);
	log_int(&l, "secrets", (long long)cfg->nsecrets);
	log_int(&l, "max_body", (long long)cfg->max_body);
	log_end(&l);
	warn_if_db_down(store);

	while (!atomic_load(&stopping)) {
		if ((sig = sigtimedwait(&stop, NULL, &tick)) > 0)
			break;
	}
	atomic_store(&stopping, 1);
	FCGX_ShutdownPending();
	/* wake every worker blocked in accept(), again until all are out: one
	 * may have been between its check and accept() the first time */
	do {
		live = 0;
		for (i = 0; i < n; i++)
			if (!atomic_load(&w[i].done)) {
				pthread_kill(w[i].t, SIGUSR2);
				live++;
			}
		if (live > 0)
			nanosleep(&nap, NULL);
	} while (live > 0);
	for (i = 0; i < n; i++) {
		pthread_join(w[i].t, NULL);
		served += w[i].served;
		FCGX_Free(&w[i].rq, 1);
		http_state_free(&w[i].st);
	}
	rc = 0;
	log_begin(&l, "info", "stop");
	log_int(&l, "pid", (long long)getpid());
	log_int(&l, "requests", served);
	log_str(&l, "why", sig > 0 ? "signal" : "accept failed");
	log_end(&l);
out:
	free(w);
	return rc;
}

int
main(void)
{
	struct http_state st;
	struct config cfg;
	char err[512];
	int rc;

	memset(&st, 0, sizeof(st));
	/*
	 * Memory returns to its floor after a large body. Fixed thresholds turn
	 * off glibc's dynamic ones, which after one 4 MB buffer is freed keep
	 * every later buffer below 4 MB on the heap and up to 8 MB of free heap
	 * resident; two arenas instead of one per thread (most work waits for
	 * the one database connection anyway) leave fewer places for free
	 * memory to sit. http_release() calls malloc_trim() after large bodies.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 512 * 1024);
	mallopt(M_ARENA_MAX, 2);
	if (log_open("wahook.fcgi", err, sizeof(err)) == -1 ||
	    listen_fds_to_stdin(err, sizeof(err)) == -1 ||
	    config_load(&cfg, err, sizeof(err)) == -1) {
		struct logline l;

		log_begin(&l, "error", "config");
		log_str(&l, "msg", err);
		log_end(&l);
		return 2;
	}
	st.cfg = &cfg;
	env_warn_unknown(environ, known_names);
	if ((st.store = store_new(cfg.db, cfg.db_timeout, cfg.db_prepare)) == NULL) {
		log_msg("error", "start", "out of memory");
		config_free(&cfg);
		return 1;
	}
	if (cfg.nsecrets == 0)
		log_msg("warn", "config", "no app secret configured (WAHOOK_APP_SECRET): "
		    "every POST will be refused with 500");
	rc = FCGX_IsCGI() ? serve_cgi(&st) : serve_fastcgi(&cfg, st.store);
	http_state_free(&st);
	store_free(st.store);
	config_free(&cfg);
	return rc;
}
