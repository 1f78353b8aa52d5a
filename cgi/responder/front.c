/*
 * front.c - the FastCGI front (see front.h): an epoll set of the listener and
 * the connections without a request, request threads that wait on it and
 * serve what they see, and the table of the connections this process holds.
 */
#include "front.h"

#include "batch.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <fcgiapp.h>

#define WORKER_STACK (512 * 1024)

#ifndef PARK_MAX	/* -DPARK_MAX=8: a small table, for the test that fills it */
#define PARK_MAX 512	/* connections per process; past it, new ones wait */
#endif

/* epoll data: the listener, the stop event, or a connection's slot + 2 */
#define EV_LISTENER	0
#define EV_STOP		1
#define EV_SLOT0	2

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
 * the request ends with 408. arg is the FCGX_Request being read.
 */
static long
fcgx_read(void *arg, char *buf, size_t n, double deadline)
{
	FCGX_Request *rq = arg;
	FCGX_Stream *in = rq->in;
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
	set_rcvtimeo(rq->ipcFd, left);
	got = FCGX_GetStr(buf, 1, in);
	if (got == 1)
		return 1;
	e = FCGX_GetError(in);
	if (e == EAGAIN || e == EWOULDBLOCK)
		return HTTP_READ_TIMEOUT;
	return e != 0 ? -1 : 0;
}


int
front_format_head(char *h, size_t hlen, const struct http_resp *r)
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
	char sigs[1024];
	struct http_req req = {
		.method = FCGX_GetParam("REQUEST_METHOD", rq->envp),
		.query = FCGX_GetParam("QUERY_STRING", rq->envp),
		.content_length = FCGX_GetParam("CONTENT_LENGTH", rq->envp),
		.signature = param_joined("HTTP_X_HUB_SIGNATURE_256", rq->envp, sigs,
		    sizeof(sigs)),
		.read = fcgx_read,
		.ctx = rq,
	};
	struct http_resp resp;
	char head[512];
	int n, own_close = 0;

	http_handle(st, &req, &resp);
	/* a client gone by now is its own problem: the rows are committed */
	if ((n = front_format_head(head, sizeof(head), &resp)) >= 0) {
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
	else if (!rq->keepConnection) {
		/*
		 * Not kept: read the end of the input (the empty stdin record,
		 * nearly always buffered with the body; a read waits no longer
		 * than the body may), then close here, after the answer. libfcgi
		 * would shut down writing and wait for the web server to close
		 * first: a sleep and a wake-up per request, for nothing, since
		 * with nothing left unread close() cannot reset the answer.
		 */
		char c;

		if (!rq->in->isClosed)
			(void)FCGX_GetStr(&c, 1, rq->in);
		if (rq->in->isClosed && FCGX_GetError(rq->in) == 0) {
			rq->keepConnection = 1;	/* Finish_r leaves the closing to us */
			own_close = 1;
		}
	}
	FCGX_Finish_r(rq);
	if (own_close && rq->ipcFd >= 0) {
		close(rq->ipcFd);
		rq->ipcFd = -1;
	}
}


/*
 * The front. Every connection the process holds has a slot in the table
 * (slot_fd), from accept to close, whether it waits in the epoll set or a
 * thread serves it; at most PARK_MAX, so the table cannot overflow: when it
 * is full the listener is not rearmed, new connections wait in the listen
 * backlog (or a sibling process takes them), and the listener is rearmed
 * when a connection closes. A connection is armed for one event at a time
 * (EPOLLONESHOT), so one thread alone ever has it.
 */
struct front {
	const struct config	*cfg;
	int			 listen_fd;
	int			 ep;		/* the epoll set */
	int			 stop_fd;	/* eventfd, written at stop and never read:
						 * every thread's epoll_wait returns it */
	atomic_int		 stopping;
	pthread_mutex_t		 mu;		/* the table and listening */
	int			 slot_fd[PARK_MAX];	/* -1: free */
	char			 slot_in[PARK_MAX];	/* its fd is in the epoll set (only the
							 * thread that has it reads or writes this) */
	int			 free_slot[PARK_MAX];	/* a stack of the free ones */
	size_t			 nfree;
	int			 listening;	/* the listener is armed */
	int			 full_logged;	/* said the table is full, until it is not */
	atomic_long		 served;
};

static volatile sig_atomic_t signalled;

static void
on_signal(int sig)
{
	(void)sig;
	signalled = 1;
}

/* Arms fd (data: ev) for its next event; add: it is not in the set yet. */
static int
arm(struct front *f, int fd, uint64_t ev, int add)
{
	struct epoll_event e;

	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN | EPOLLONESHOT;
	e.data.u64 = ev;
	return epoll_ctl(f->ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e);
}

/* Arms the connection in slot s for its next request (adding it to the set the first time). */
static int
arm_slot(struct front *f, int s)
{
	if (arm(f, f->slot_fd[s], EV_SLOT0 + (uint64_t)s, !f->slot_in[s]) != 0)
		return -1;
	f->slot_in[s] = 1;
	return 0;
}

/* Under the lock: the listener is armed again while there is room. */
static void
listen_again(struct front *f)
{
	if (f->listening || f->nfree == 0 || atomic_load(&f->stopping))
		return;
	if (arm(f, f->listen_fd, EV_LISTENER, 0) == 0)
		f->listening = 1;
}

/*
 * The connection in slot s is closed (by libfcgi, or here at stop): its slot
 * is free, and the listener, disarmed while the table was full, is armed.
 */
static void
slot_free(struct front *f, int s)
{
	pthread_mutex_lock(&f->mu);
	f->slot_fd[s] = -1;
	f->slot_in[s] = 0;
	f->free_slot[f->nfree++] = s;
	listen_again(f);
	pthread_mutex_unlock(&f->mu);
}

/*
 * The listener is readable (its one event taken: disarmed): accepts one
 * connection, blocking like libfcgi's own, no Nagle delay on TCP, into a
 * slot. Rearms the listener while there is room. Returns the slot, or -1
 * (another process took it, the client gave up, or an error, logged).
 */
static int
accept_one(struct front *f)
{
	struct sockaddr_storage sa = { 0 };
	socklen_t salen = sizeof(sa);
	int fd, one = 1, s = -1;

	fd = accept4(f->listen_fd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
	if (fd == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
	    errno != ECONNABORTED) {
		log_msg("error", "accept", strerror(errno));
		poll(NULL, 0, 100);	/* EMFILE and friends: do not spin */
	}
	if (fd != -1 && (sa.ss_family == AF_INET || sa.ss_family == AF_INET6))
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	pthread_mutex_lock(&f->mu);
	f->listening = 0;
	if (fd != -1) {
		/* there is room: the listener is armed only while there is */
		s = f->free_slot[--f->nfree];
		f->slot_fd[s] = fd;
	}
	if (f->nfree == 0 && !f->full_logged) {
		/* once until a connection fits again */
		log_msg("warn", "accept", "PARK_MAX connections are open: new ones wait "
		    "until one closes (fewer kept connections in the web server, or "
		    "more processes)");
		f->full_logged = 1;
	} else if (f->nfree > 0)
		f->full_logged = 0;
	listen_again(f);
	pthread_mutex_unlock(&f->mu);
	return s;
}

/* 1 when fd has bytes (or its end) to read now. */
static int
readable_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

struct worker {
	struct front		*f;
	pthread_t		 tid;
	struct http_state	 st;
};

/*
 * Serves the request on the connection in slot s, then puts the connection
 * back in the set (kept by the web server) or frees its slot (closed).
 */
static void
serve_slot(struct worker *w, FCGX_Request *rq, int s)
{
	struct front *f = w->f;
	int fd = f->slot_fd[s];

	rq->ipcFd = fd;
	rq->keepConnection = 1;	/* so that Accept_r's Finish_r keeps fd */
	/* a web server that stops halfway through a request's params holds this
	 * thread no longer than a body may (WAHOOK_BODY_TIMEOUT is at least 1 s);
	 * set before every request, since the body's reads leave it shorter. An
	 * idle kept connection waits in the epoll set, never in a read. */
	set_rcvtimeo(fd, f->cfg->body_timeout * 1000.0);
	if (FCGX_Accept_r(rq) != 0) {
		slot_free(f, s);	/* closed, or not FastCGI: libfcgi closed it */
		rq->ipcFd = -1;
		return;
	}
	serve_fcgx(&w->st, rq);	/* answers and finishes: closes unless kept */
	fd = rq->ipcFd;
	rq->ipcFd = -1;
	atomic_fetch_add(&f->served, 1);
	if (fd >= 0 && !atomic_load(&f->stopping)) {
		if (arm_slot(f, s) == 0)
			return;		/* kept: back in the set */
		log_msg("error", "poll", strerror(errno));
	}
	if (fd >= 0)
		close(fd);	/* stopping (kept ones are closed), or it cannot be watched */
	slot_free(f, s);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct front *f = w->f;
	struct epoll_event e;
	FCGX_Request rq;
	int n, s;

	/* listen_sock -1: libfcgi never accepts on its own, we hand it connections */
	FCGX_InitRequest(&rq, -1, 0);
	for (;;) {
		n = epoll_wait(f->ep, &e, 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* cannot happen short of a bug: stop the whole process (its
			 * supervisor starts another) rather than lose its threads */
			log_msg("error", "poll", strerror(errno));
			kill(getpid(), SIGTERM);
			break;
		}
		if (n == 0 || e.data.u64 == EV_STOP)
			break;
		if (e.data.u64 == EV_LISTENER) {
			if ((s = accept_one(f)) < 0)
				continue;
			/* its request is nearly always there already: serve it
			 * here; else it waits in the set like a kept one */
			if (!readable_now(f->slot_fd[s])) {
				if (arm_slot(f, s) != 0) {
					log_msg("error", "poll", strerror(errno));
					close(f->slot_fd[s]);
					slot_free(f, s);
				}
				continue;
			}
		} else
			s = (int)(e.data.u64 - EV_SLOT0);
		serve_slot(w, &rq, s);
		http_release(&w->st);	/* after the answer left: nobody waits for free() */
		if (!atomic_load(&f->stopping))
			batch_idle(w->st.batch);	/* a connection a big batch closed */
	}
	FCGX_Free(&rq, 1);
	return NULL;
}

/*
 * A FastCGI responder connects at start, so that a database it cannot use
 * (down, a role that may not log in, no migrations) is a warning in the log
 * before the first webhook, not only a 503 then. Not an exit: the database may
 * come up later, and each request reconnects.
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

/* The signals that stop the front: blocked in every thread, waited for by the caller's. */
static void
stop_signals(sigset_t *set)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGINT);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* Opens the epoll set with the stop event and the listener in it. Returns 0 or -1 (logged). */
static int
front_open(struct front *f)
{
	struct epoll_event e;
	int fl, s;

	for (s = 0; s < PARK_MAX; s++) {
		f->slot_fd[s] = -1;
		f->free_slot[s] = PARK_MAX - 1 - s;
	}
	f->nfree = PARK_MAX;
	if (FCGX_Init() != 0) {
		log_msg("error", "start", "FastCGI initialisation failed");
		return -1;
	}
	/* the listener is shared with sibling processes: accept must not block
	 * when one of them took the connection first */
	if ((fl = fcntl(f->listen_fd, F_GETFL)) == -1 ||
	    fcntl(f->listen_fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		log_msg("error", "start", "fd 0 is not the listening socket");
		return -1;
	}
	if ((f->ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		log_msg("error", "start", "out of file descriptors");
		return -1;
	}
	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN;	/* level-triggered, never read: wakes every thread */
	e.data.u64 = EV_STOP;
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, f->stop_fd, &e) == -1 ||
	    arm(f, f->listen_fd, EV_LISTENER, 1) == -1) {
		log_msg("error", "start", "cannot watch the listening socket (epoll)");
		return -1;
	}
	f->listening = 1;
	return 0;
}

int
front_serve(const struct http_state *proto, struct store *store)
{
	sigset_t set;
	struct front *f;
	struct worker *w = NULL;
	pthread_attr_t attr;
	struct logline l;
	size_t i, nthreads = 0;
	uint64_t one = 1;
	int rc = 1, sig, mu = 0;

	if ((f = calloc(1, sizeof(*f))) == NULL) {
		log_msg("error", "start", "out of memory");
		return 1;
	}
	f->cfg = proto->cfg;
	f->listen_fd = 0;	/* FCGI_LISTENSOCK_FILENO */
	f->ep = f->stop_fd = -1;
	stop_signals(&set);	/* before any thread: they inherit the mask */
	if (front_open(f) == -1)
		goto out;
	if (pthread_mutex_init(&f->mu, NULL) != 0) {
		log_msg("error", "start", "out of memory");
		goto out;
	}
	mu = 1;
	if ((w = calloc((size_t)f->cfg->threads, sizeof(*w))) == NULL ||
	    pthread_attr_init(&attr) != 0) {
		log_msg("error", "start", "out of memory");
		goto out;
	}
	/* no thread yet: the database connection is ours */
	warn_if_db_down(store);
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	for (i = 0; i < (size_t)f->cfg->threads; i++) {
		w[i].f = f;
		w[i].st = *proto;	/* cfg and batch shared; buffers per thread */
		if (pthread_create(&w[i].tid, &attr, worker_main, &w[i]) != 0)
			break;
		nthreads++;
	}
	pthread_attr_destroy(&attr);
	log_begin(&l, nthreads > 0 ? "info" : "error", "start");
	log_int(&l, "pid", (long long)getpid());
	log_int(&l, "threads", (long long)nthreads);
	log_int(&l, "secrets", (long long)f->cfg->nsecrets);
	log_int(&l, "max_body", (long long)f->cfg->max_body);
	log_end(&l);
	if (nthreads > 0) {
		while (!signalled)
			if (sigwait(&set, &sig) == 0)
				signalled = 1;
		rc = 0;
	}

	/* stop: no new connection, requests in hand finish, idle kept ones closed */
	atomic_store(&f->stopping, 1);
	(void)epoll_ctl(f->ep, EPOLL_CTL_DEL, f->listen_fd, NULL);
	(void)!write(f->stop_fd, &one, sizeof(one));
	for (i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		http_state_free(&w[i].st);
	}
	for (i = 0; i < PARK_MAX; i++)
		if (f->slot_fd[i] != -1)
			close(f->slot_fd[i]);
	log_begin(&l, "info", "stop");
	log_int(&l, "pid", (long long)getpid());
	log_int(&l, "requests", atomic_load(&f->served));
	log_str(&l, "why", "signal");
	log_end(&l);
out:
	if (mu)
		pthread_mutex_destroy(&f->mu);
	if (f->ep != -1)
		close(f->ep);
	if (f->stop_fd != -1)
		close(f->stop_fd);
	free(w);
	free(f);
	return rc;
}
