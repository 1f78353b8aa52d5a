/*
 * wahook_fcgi.c - main() of wahook.fcgi: configuration, then the requests,
 * from FastCGI or, when started as a plain CGI program, the single request in
 * the environment and stdin (a batch of one). Under systemd socket activation
 * the listening socket arrives on fd 3 (LISTEN_FDS) and is moved to fd 0,
 * where libfcgi looks for it.
 *
 * FastCGI: WAHOOK_THREADS request threads, each with its own FCGX_Request
 * (FCGX_Accept_r: FCGI_Accept would swap environ under us), read and verify
 * bodies under their deadlines and share the process's one database
 * connection through group commit (batch.h). The design choice a reader must
 * know: no thread ever waits on a connection that has no request on it. The
 * main thread accepts, and polls idle connections (new ones, and the ones the
 * web server keeps open between requests: nginx fastcgi_keep_conn, Apache
 * enablereuse); a thread is handed a connection only once bytes are there,
 * and gives it back when the answer is out. So idle kept connections cost a
 * file descriptor, never a thread, and cannot starve new connections. The
 * main thread alone takes signals; SIGTERM stops accepting, and every
 * request in hand is answered before the process exits.
 */
#include "batch.h"
#include "config.h"
#include "env.h"
#include "http.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
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

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <fcgiapp.h>

#define WORKER_STACK (512 * 1024)

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

/*
 * A connection kept for the next request: takes what is left of this one's
 * input first, at least the empty stdin record that ends it (Apache may send
 * it in a write of its own, after the body). Left in the socket, libfcgi
 * would read it as the start of the next request, find no FCGI_BEGIN_REQUEST
 * and close the connection under the web server's next request. Bounded like
 * a body: a read that times out leaves the stream in error, and
 * FCGX_Finish_r() then closes the connection.
 */
static void
drain_input(FCGX_Request *rq, double seconds)
{
	char buf[4096];

	set_rcvtimeo(rq->ipcFd, seconds * 1000.0);
	while (FCGX_GetStr(buf, (int)sizeof(buf), rq->in) > 0)
		;
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
	} else if (rq->keepConnection && !rq->in->isClosed)
		drain_input(rq, st->cfg->body_timeout);
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

#ifndef PARK_MAX	/* -DPARK_MAX=8: a small table, for the test that fills it */
#define PARK_MAX 512	/* idle connections per process; past it, closed */
#endif

/* The FastCGI front: the main thread's poller and the request threads. */
struct front {
	const struct config	*cfg;
	struct batch		*batch;
	int			 listen_fd;
	int			 wake[2];	/* threads -> poller: look again */
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;		/* ready has a connection, or done */
	int			*ready;		/* ring: connections with a request */
	size_t			 ready_cap, ready_head, nready;
	int			 parked[PARK_MAX]; /* connections without a request yet */
	char			 fresh[PARK_MAX]; /* 1: accepted, never served */
	size_t			 nparked, nfresh;
	size_t			 busy;		/* connections a thread holds */
	int			 full_logged;	/* poller only: said the table is full */
	size_t			 idle;		/* threads waiting for a connection */
	int			 done;		/* no more connections: finish and exit */
	atomic_long		 served;
};

/*
 * Under the lock. Every connection is in one place: parked[], the ready ring
 * or a thread (busy), and nparked + nready + busy stays within PARK_MAX: only
 * accept_one() adds a connection, and only when there is room for it; the
 * rest move it from place to place (a kept connection a thread served always
 * has its place back in parked[]). So neither parked[] nor the ring can
 * overflow, and new connections never push out kept ones.
 */
static size_t
held(const struct front *f)
{
	return f->nparked + f->nready + f->busy;
}

static void
ready_push(struct front *f, int fd)
{
	f->ready[(f->ready_head + f->nready) % f->ready_cap] = fd;
	f->nready++;
	pthread_cond_signal(&f->cv);
}

static void
wake_poller(struct front *f)
{
	char c = 1;

	/* a full pipe already holds a wake-up */
	(void)!write(f->wake[1], &c, 1);
}

/*
 * Waits for a connection with a request on it; returns it, or -1 when the
 * process is stopping and none is left.
 */
static int
take(struct front *f)
{
	int fd = -1;

	pthread_mutex_lock(&f->mu);
	f->idle++;
	if (f->idle == f->nready + 1)
		wake_poller(f);		/* the poller may not be watching the listener */
	while (f->nready == 0 && !f->done)
		pthread_cond_wait(&f->cv, &f->mu);
	f->idle--;
	if (f->nready > 0) {
		fd = f->ready[f->ready_head];
		f->ready_head = (f->ready_head + 1) % f->ready_cap;
		f->nready--;
		f->busy++;
	}
	pthread_mutex_unlock(&f->mu);
	return fd;
}

/*
 * A thread is done with the connection take() gave it: fd kept open (the web
 * server keeps it) goes back to the poller until a request arrives on it;
 * -1: libfcgi closed it. Its place in the table is its own (see held()).
 */
static void
release(struct front *f, int fd)
{
	int parked = 0, was_full;

	pthread_mutex_lock(&f->mu);
	was_full = held(f) >= PARK_MAX;
	f->busy--;
	if (fd >= 0 && !f->done && held(f) < PARK_MAX) {
		f->fresh[f->nparked] = 0;
		f->parked[f->nparked++] = fd;
		parked = 1;
	}
	pthread_mutex_unlock(&f->mu);
	if (fd >= 0 && !parked)
		close(fd);
	/* a parked connection to watch, or room for the listener again */
	if (parked || was_full)
		wake_poller(f);
}

struct worker {
	struct front		*f;
	pthread_t		 tid;
	struct http_state	 st;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct front *f = w->f;
	FCGX_Request rq;
	int fd;

	/* listen_sock -1: libfcgi never accepts on its own, we hand it connections */
	FCGX_InitRequest(&rq, -1, 0);
	while ((fd = take(f)) != -1) {
		rq.ipcFd = fd;
		rq.keepConnection = 1;	/* so that Accept_r's Finish_r keeps fd */
		/* a web server that stops halfway through a request's params
		 * holds this thread no longer than a body may */
		if (f->cfg->body_timeout > 0)
			set_rcvtimeo(fd, f->cfg->body_timeout * 1000.0);
		if (FCGX_Accept_r(&rq) != 0) {
			release(f, -1);	/* closed, or not FastCGI: libfcgi closed it */
			continue;
		}
		serve_fcgx(&w->st, &rq);	/* answers and finishes: closes unless kept */
		release(f, rq.ipcFd);
		rq.ipcFd = -1;
		atomic_fetch_add(&f->served, 1);
		http_release(&w->st);	/* after the answer left: nobody waits for free() */
		if (!stopping)
			batch_idle(f->batch);	/* a connection a big batch closed */
	}
	FCGX_Free(&rq, 1);
	return NULL;
}

/*
 * A new connection: blocking like libfcgi's own, no Nagle delay on TCP. It is
 * parked like a kept one: a thread gets it once its first bytes are there, so
 * a connection that sends nothing holds no thread (and SIGTERM need not wait
 * for it).
 */
static void
accept_one(struct front *f)
{
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	int fd, one = 1, full;

	fd = accept4(f->listen_fd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
	if (fd == -1) {
		/* another process took it, or the client gave up: not ours to report */
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED) {
			log_msg("error", "accept", strerror(errno));
			poll(NULL, 0, 100);	/* EMFILE and friends: do not spin */
		}
		return;
	}
	if (sa.ss_family == AF_INET || sa.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/*
	 * Room is checked again under the lock, whatever the poller saw before it
	 * polled. Full (PARK_MAX connections held): closed, and this process goes
	 * on serving the ones it holds.
	 */
	pthread_mutex_lock(&f->mu);
	full = held(f) >= PARK_MAX;
	if (!full) {
		f->fresh[f->nparked] = 1;
		f->parked[f->nparked++] = fd;
		f->nfresh++;
	}
	pthread_mutex_unlock(&f->mu);
	if (full) {
		close(fd);
		if (!f->full_logged)	/* once until a connection fits again */
			log_msg("warn", "accept", "PARK_MAX connections are open: closed a "
			    "new one (fewer kept connections in the web server, or more "
			    "processes)");
		f->full_logged = 1;
	} else
		f->full_logged = 0;
}

/*
 * The main thread's loop: poll the wake pipe, the listener (only while a
 * thread is idle, so that a busy process leaves new connections to its
 * siblings on the same socket) and the parked connections, and hand each
 * connection with a request on it to a thread; signals are delivered in
 * ppoll() alone. Returns when a signal set stopping.
 */
static void
poll_loop(struct front *f, const sigset_t *unblocked)
{
	struct pollfd pfd[2 + PARK_MAX];
	size_t n, i, k, npark;
	int want_listen, rc;
	char drain[64];

	while (!stopping) {
		pthread_mutex_lock(&f->mu);
		n = 0;
		pfd[n].fd = f->wake[0];
		pfd[n++].events = POLLIN;
		/* the connections accepted but not yet readable are spoken for too */
		/* full: new connections wait in the backlog, or a sibling takes them */
		want_listen = f->idle > f->nready + f->nfresh && held(f) < PARK_MAX;
		pfd[n].fd = want_listen ? f->listen_fd : -1;	/* -1: ignored */
		pfd[n++].events = POLLIN;
		npark = f->nparked;
		for (i = 0; i < npark; i++) {
			pfd[n].fd = f->parked[i];
			pfd[n++].events = POLLIN;
		}
		pthread_mutex_unlock(&f->mu);
		rc = ppoll(pfd, n, NULL, unblocked);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			log_msg("error", "poll", strerror(errno));
			break;
		}
		if (pfd[0].revents != 0)
			while (read(f->wake[0], drain, sizeof(drain)) > 0)
				;
		pthread_mutex_lock(&f->mu);
		for (i = 2; i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			/* a request, or the server closed it: a thread finds out which */
			for (k = 0; k < f->nparked; k++)
				if (f->parked[k] == pfd[i].fd)
					break;
			if (k == f->nparked)
				continue;
			f->nfresh -= (size_t)f->fresh[k];
			f->nparked--;
			f->parked[k] = f->parked[f->nparked];
			f->fresh[k] = f->fresh[f->nparked];
			ready_push(f, pfd[i].fd);
		}
		pthread_mutex_unlock(&f->mu);
		if (want_listen && (pfd[1].revents & POLLIN) != 0)
			accept_one(f);
	}
}

static int
serve_fastcgi(struct http_state *proto, struct store *store)
{
	struct sigaction sa;
	sigset_t block, unblocked;
	struct front f;
	struct worker *w = NULL;
	pthread_attr_t attr;
	struct logline l;
	size_t i, nthreads = 0;
	int rc = 1, fl;

	memset(&f, 0, sizeof(f));
	f.cfg = proto->cfg;
	f.batch = proto->batch;
	f.listen_fd = 0;	/* FCGI_LISTENSOCK_FILENO */
	f.wake[0] = f.wake[1] = -1;
	f.ready_cap = PARK_MAX + (size_t)f.cfg->threads;
	if (FCGX_Init() != 0) {
		log_msg("error", "start", "FastCGI initialisation failed");
		return 1;
	}
	if ((f.ready = calloc(f.ready_cap, sizeof(*f.ready))) == NULL ||
	    (w = calloc((size_t)f.cfg->threads, sizeof(*w))) == NULL ||
	    pipe2(f.wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_msg("error", "start", "out of memory or file descriptors");
		goto out;
	}
	/* the listener is shared with sibling processes: accept must not block
	 * when one of them took the connection first */
	if ((fl = fcntl(f.listen_fd, F_GETFL)) == -1 ||
	    fcntl(f.listen_fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		log_msg("error", "start", "fd 0 is not the listening socket");
		goto out;
	}
	pthread_mutex_init(&f.mu, NULL);
	pthread_cond_init(&f.cv, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGINT);
	/* blocked in every thread (they inherit it); ppoll() unblocks them */
	pthread_sigmask(SIG_BLOCK, &block, &unblocked);
	sigdelset(&unblocked, SIGTERM);
	sigdelset(&unblocked, SIGUSR1);
	sigdelset(&unblocked, SIGINT);

	if (pthread_attr_init(&attr) != 0) {
		log_msg("error", "start", "out of memory");
		goto out;
	}
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	for (i = 0; i < (size_t)f.cfg->threads; i++) {
		w[i].f = &f;
		w[i].st = *proto;	/* cfg and batch shared; buffers per thread */
		if (pthread_create(&w[i].tid, &attr, worker_main, &w[i]) != 0)
			break;
		nthreads++;
	}
	pthread_attr_destroy(&attr);
	log_begin(&l, nthreads > 0 ? "info" : "error", "start");
	log_int(&l, "pid", (long long)getpid());
	log_int(&l, "threads", (long long)nthreads);
	log_int(&l, "secrets", (long long)f.cfg->nsecrets);
	log_int(&l, "max_body", (long long)f.cfg->max_body);
	log_end(&l);
	if (nthreads > 0) {
		/* no thread has a connection before poll_loop(): the db is ours */
		warn_if_db_down(store);
		poll_loop(&f, &unblocked);
		rc = 0;
	}

	/* stop: no new connection, idle kept ones closed, requests in hand finish */
	pthread_mutex_lock(&f.mu);
	f.done = 1;
	for (i = 0; i < f.nparked; i++)
		close(f.parked[i]);
	f.nparked = 0;
	pthread_cond_broadcast(&f.cv);
	pthread_mutex_unlock(&f.mu);
	for (i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		http_state_free(&w[i].st);
	}
	while (f.nready > 0) {	/* only when no thread ever started */
		close(f.ready[f.ready_head]);
		f.ready_head = (f.ready_head + 1) % f.ready_cap;
		f.nready--;
	}
	log_begin(&l, "info", "stop");
	log_int(&l, "pid", (long long)getpid());
	log_int(&l, "requests", atomic_load(&f.served));
	log_str(&l, "why", stopping ? "signal" : "poll failed");
	log_end(&l);
	pthread_cond_destroy(&f.cv);
	pthread_mutex_destroy(&f.mu);
out:
	if (f.wake[0] != -1) {
		close(f.wake[0]);
		close(f.wake[1]);
	}
	free(w);
	free(f.ready);
	return rc;
}

int
main(void)
{
	struct http_state st;
	struct config cfg;
	struct store *store = NULL;
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
	if ((store = store_new(cfg.db, cfg.db_timeout, cfg.db_prepare)) == NULL ||
	    (st.batch = batch_new(store, cfg.batch_max, cfg.batch_bytes,
	    cfg.db_timeout)) == NULL) {
		log_msg("error", "start", "out of memory");
		store_free(store);
		config_free(&cfg);
		return 1;
	}
	if (cfg.nsecrets == 0)
		log_msg("warn", "config", "no app secret configured (WAHOOK_APP_SECRET): "
		    "every POST will be refused with 500");
	rc = FCGX_IsCGI() ? serve_cgi(&st) : serve_fastcgi(&st, store);
	http_state_free(&st);
	batch_free(st.batch);
	store_free(store);
	config_free(&cfg);
	return rc;
}
