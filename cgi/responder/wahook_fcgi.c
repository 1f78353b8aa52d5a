/*
 * wahook_fcgi.c - main() of wahook.fcgi: configuration, then the requests,
 * from FastCGI (front.c) or, when started as a plain CGI program, the single
 * request in the environment and stdin (a batch of one). Under systemd socket
 * activation the listening socket arrives on fd 3 (LISTEN_FDS) and is moved
 * to fd 0, where libfcgi looks for it.
 *
 * FastCGI: WAHOOK_THREADS request threads, each with its own FCGX_Request
 * (FCGX_Accept_r: FCGI_Accept would swap environ under us), read and verify
 * bodies under their deadlines and share the process's one database
 * connection through group commit (batch.h). No thread ever waits on a
 * connection without a request on it: front.h says how. The main thread
 * alone takes signals; SIGTERM stops accepting, and every request in hand is
 * answered before the process exits.
 */
#include "batch.h"
#include "config.h"
#include "env.h"
#include "front.h"
#include "http.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

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
	if ((n = front_format_head(head, sizeof(head), &resp)) < 0)
		return 1;
	if (fwrite(head, 1, (size_t)n, stdout) != (size_t)n ||
	    fwrite(resp.body, 1, resp.body_len, stdout) != resp.body_len ||
	    fflush(stdout) != 0)
		return 1;
	return 0;
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
	rc = FCGX_IsCGI() ? serve_cgi(&st) : front_serve(&st, store);
	http_state_free(&st);
	batch_free(st.batch);
	store_free(store);
	config_free(&cfg);
	return rc;
}
