/*
 * wahook_fcgi.c - main() of wahook.fcgi: configuration, then one request at a
 * time, from FastCGI (FCGX_Accept_r: FCGI_Accept would swap environ under
 * us) or, when started as a plain CGI program, the single request in the
 * environment and stdin. Under systemd socket activation the listening socket
 * arrives on fd 3 (LISTEN_FDS) and is moved to fd 0, where libfcgi looks for
 * it. Signals are blocked while a request is in hand, so
 * SIGTERM/SIGUSR1 always let it finish; they are delivered at the next accept.
 */
#include "config.h"
#include "env.h"
#include "http.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

static volatile sig_atomic_t stopping;

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

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
	/* only sets libfcgi's flag, so that its accept loop gives up on EINTR */
	FCGX_ShutdownPending();
}

static long
fcgx_read(void *ctx, char *buf, size_t n)
{
	FCGX_Stream *in = ctx;
	int got;

	got = FCGX_GetStr(buf, n > INT_MAX ? INT_MAX : (int)n, in);
	if (got < 0 || (got == 0 && FCGX_GetError(in) != 0))
		return -1;
	return got;
}

static long
cgi_read(void *ctx, char *buf, size_t n)
{
	ssize_t got;

	(void)ctx;
	do
		got = read(STDIN_FILENO, buf, n);
	while (got < 0 && errno == EINTR);
	return (long)got;
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

static void
serve_fcgx(struct http_state *st, FCGX_Request *rq)
{
	struct http_req req = {
		.method = FCGX_GetParam("REQUEST_METHOD", rq->envp),
		.query = FCGX_GetParam("QUERY_STRING", rq->envp),
		.content_length = FCGX_GetParam("CONTENT_LENGTH", rq->envp),
		.signature = FCGX_GetParam("HTTP_X_HUB_SIGNATURE_256", rq->envp),
		.read = fcgx_read,
		.ctx = rq->in,
	};
	struct http_resp resp;
	char head[512];
	int n;

	http_handle(st, &req, &resp);
	if ((n = format_head(head, sizeof(head), &resp)) < 0)
		return;
	/* a client gone by now is its own problem: the rows are committed */
	FCGX_PutStr(head, n, rq->out);
	FCGX_PutStr(resp.body, (int)resp.body_len, rq->out);
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
warn_if_db_down(struct http_state *st)
{
	char err[512];
	struct logline l;

	if (store_connect(st->store, err, sizeof(err)) == 0)
		return;
	log_begin(&l, "warn", "db");
	log_str(&l, "msg", "cannot use the database of WAHOOK_DB at start; "
	    "answering 503 and reconnecting per request until it works");
	log_str(&l, "error", err);
	log_end(&l);
}

static int
serve_fastcgi(struct http_state *st)
{
	struct sigaction sa;
	sigset_t block, old;
	FCGX_Request rq;
	struct logline l;
	long served = 0;
	int rc;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&rq, 0, 0) != 0) {
		log_msg("error", "start", "FastCGI initialisation failed");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: accept() must return on a signal */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);

	log_begin(&l, "info", "start");
	log_int(&l, "pid", (long long)getpid());
	log_int(&l, "secrets", (long long)st->cfg->nsecrets);
	log_int(&l, "max_body", (long long)st->cfg->max_body);
	log_end(&l);
	warn_if_db_down(st);

	while (!stopping) {
		sigprocmask(SIG_SETMASK, &old, NULL);	/* signals may land only here */
		rc = stopping ? -1 : FCGX_Accept_r(&rq);
		sigprocmask(SIG_BLOCK, &block, NULL);
		if (rc < 0)
			break;
		serve_fcgx(st, &rq);
		FCGX_Finish_r(&rq);
		http_release(st);	/* after the answer left: nobody waits for free() */
		served++;
	}
	log_begin(&l, "info", "stop");
	log_int(&l, "pid", (long long)getpid());
	log_int(&l, "requests", served);
	log_str(&l, "why", stopping ? "signal" : "accept failed");
	log_end(&l);
	FCGX_Free(&rq, 1);
	return 0;
}

int
main(void)
{
	struct http_state st;
	struct config cfg;
	char err[512];
	int rc;

	memset(&st, 0, sizeof(st));
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
	rc = FCGX_IsCGI() ? serve_cgi(&st) : serve_fastcgi(&st);
	http_state_free(&st);
	store_free(st.store);
	config_free(&cfg);
	return rc;
}
