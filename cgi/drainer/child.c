/*
 * child.c - reply programs (see child.h). fork+execve rather than a shell:
 * the value of WAHOOK_REPLY_COMMAND is one path, never parsed. Between fork
 * and exec the child only calls async-signal-safe functions. PR_SET_PDEATHSIG
 * ends a program whose drainer was killed; the next claim runs it again.
 */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "reply.h"

#define ENV_MAX		16	/* base + per-run variables */
#define ERRTAIL		1024	/* bytes of stderr kept: its last line goes to last_error */
#define EXIT_POLL_MS	20	/* without a pidfd, how often exits are looked for */

enum fdkind { FD_IN, FD_OUT, FD_ERR, FD_PID };

struct run {
	int		 busy;		/* started, not collected */
	int		 finished;	/* reaped: result ready */
	pid_t		 pid;
	int		 fd[4];		/* by enum fdkind; -1 when closed */
	char		*in;		/* input not yet written */
	size_t		 inlen, inoff;
	char		*out;		/* REPLY_OUTPUT_MAX + 1 bytes */
	size_t		 outlen;
	char		 errtail[ERRTAIL];
	size_t		 errlen;	/* bytes in errtail (the last ERRTAIL of stderr) */
	int		 status;	/* waitpid's */
	int		 killed;	/* 0, or why we killed it: 1 timeout, 2 output cap */
	double		 t0, deadline;	/* ms, monotonic */
};

struct fdref {
	int		 slot;
	enum fdkind	 kind;
};

struct children {
	const char	*path;
	double		 timeout_ms;
	int		 nslots;
	int		 running;
	struct run	*runs;
	struct fdref	*refs;		/* what child_fds() listed, in its order */
	int		 nrefs;
	char		*base[ENV_MAX];
	int		 nbase;
};

static void
close_fd(int *fd)
{
	if (*fd != -1) {
		close(*fd);
		*fd = -1;
	}
}

struct children *
child_new(const char *path, double timeout_s, int nslots, const char *const *base_env)
{
	struct children *c = NULL;
	struct sigaction sa;
	int i, k;

	/* an inherited SIGCHLD of SIG_IGN would reap our programs for us, and
	 * waitpid() would never see their exit */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->runs = calloc((size_t)nslots, sizeof(*c->runs))) == NULL ||
	    (c->refs = calloc((size_t)nslots * 4, sizeof(*c->refs))) == NULL)
		goto fail;
	c->path = path;
	c->timeout_ms = timeout_s * 1000;
	c->nslots = nslots;
	for (i = 0; i < nslots; i++)
		for (k = 0; k < 4; k++)
			c->runs[i].fd[k] = -1;
	for (i = 0; base_env != NULL && base_env[i] != NULL && c->nbase < ENV_MAX - 6; i++)
		if ((c->base[c->nbase++] = strdup(base_env[i])) == NULL)
			goto fail;
	return c;
fail:
	child_free(c);
	return NULL;
}

/* Frees the run's buffers and closes its descriptors (the process is gone or ignored). */
static void
run_clear(struct run *r)
{
	int k;

	for (k = 0; k < 4; k++)
		close_fd(&r->fd[k]);
	free(r->in);
	free(r->out);
	memset(r, 0, sizeof(*r));
	for (k = 0; k < 4; k++)
		r->fd[k] = -1;
}

void
child_free(struct children *c)
{
	int i;

	if (c == NULL)
		return;
	for (i = 0; c->runs != NULL && i < c->nslots; i++) {
		struct run *r = &c->runs[i];

		if (r->busy && !r->finished && r->pid > 0) {
			killpg(r->pid, SIGKILL);
			while (waitpid(r->pid, NULL, 0) == -1 && errno == EINTR)
				;
		}
		run_clear(r);
	}
	for (i = 0; i < c->nbase; i++)
		free(c->base[i]);
	free(c->runs);
	free(c->refs);
	free(c);
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl == -1 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* In the child, after fork: async-signal-safe calls only, then execve. */
static void __attribute__((noreturn))
exec_child(const char *path, int in, int out, int err, pid_t parent, char *const *envp)
{
	static const char msg[] = "wahook-drain: cannot execute the reply program\n";
	char *argv[2];
	struct sigaction sa;
	sigset_t none;
	int sig;

	setpgid(0, 0);
	/* if the drainer dies, so does the program (it runs again on the next claim) */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	if (dup2(in, 0) == -1 || dup2(out, 1) == -1 || dup2(err, 2) == -1)
		_exit(127);
	/* the drainer's database and Graph sockets stay with it */
	syscall(SYS_close_range, 3U, ~0U, 0U);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);	/* SIGPIPE was ignored: default again */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	argv[0] = (char *)(uintptr_t)path;
	argv[1] = NULL;
	execve(path, argv, envp);
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(127);
	_exit(127);
}

int
child_start(struct children *c, int slot, const char *input, size_t len,
    const char *const *env, char *why, size_t whylen)
{
	struct run *r = &c->runs[slot];
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	char *envp[ENV_MAX + 1];
	int n = 0, i;
	pid_t pid;

	for (i = 0; i < c->nbase; i++)
		envp[n++] = c->base[i];
	for (i = 0; env != NULL && env[i] != NULL && n < ENV_MAX; i++)
		envp[n++] = (char *)(uintptr_t)env[i];
	envp[n] = NULL;
	if ((r->in = malloc(len > 0 ? len : 1)) == NULL ||
	    (r->out = malloc(REPLY_OUTPUT_MAX + 1)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	memcpy(r->in, input, len);
	r->inlen = len;
	if (pipe2(pin, O_CLOEXEC) == -1 || pipe2(pout, O_CLOEXEC) == -1 ||
	    pipe2(perr, O_CLOEXEC) == -1) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		goto fail;
	}
	if (set_nonblock(pin[1]) == -1 || set_nonblock(pout[0]) == -1 ||
	    set_nonblock(perr[0]) == -1) {
		snprintf(why, whylen, "fcntl: %s", strerror(errno));
		goto fail;
	}
	pid = getpid();
	if ((r->pid = fork()) == -1) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		r->pid = 0;
		goto fail;
	}
	if (r->pid == 0)
		exec_child(c->path, pin[0], pout[1], perr[1], pid, envp);
	setpgid(r->pid, r->pid);	/* also here: no race with an early killpg */
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	r->fd[FD_IN] = pin[1];
	r->fd[FD_OUT] = pout[0];
	r->fd[FD_ERR] = perr[0];
	/* a pidfd makes the exit pollable; without one, exits are looked for */
	r->fd[FD_PID] = (int)syscall(SYS_pidfd_open, r->pid, 0);
	if (r->inlen == 0)
		close_fd(&r->fd[FD_IN]);
	r->busy = 1;
	r->t0 = log_now_ms();
	r->deadline = r->t0 + c->timeout_ms;
	c->running++;
	return 0;
fail:
	for (i = 0; i < 2; i++) {
		if (pin[i] != -1)
			close(pin[i]);
		if (pout[i] != -1)
			close(pout[i]);
		if (perr[i] != -1)
			close(perr[i]);
	}
	free(r->in);
	free(r->out);
	r->in = r->out = NULL;
	return -1;
}

int
child_fds(struct children *c, struct curl_waitfd *fds, int max)
{
	int i, k, n = 0;
	static const short ev[4] = { CURL_WAIT_POLLOUT, CURL_WAIT_POLLIN, CURL_WAIT_POLLIN,
	    CURL_WAIT_POLLIN };

	for (i = 0; i < c->nslots; i++) {
		struct run *r = &c->runs[i];

		if (!r->busy || r->finished)
			continue;
		for (k = 0; k < 4 && n < max; k++) {
			if (r->fd[k] == -1)
				continue;
			fds[n].fd = r->fd[k];
			fds[n].events = ev[k];
			fds[n].revents = 0;
			c->refs[n].slot = i;
			c->refs[n].kind = (enum fdkind)k;
			n++;
		}
	}
	c->nrefs = n;
	return n;
}

int
child_wait_ms(const struct children *c)
{
	double now = log_now_ms(), best = -1, d;
	int i;

	for (i = 0; i < c->nslots; i++) {
		const struct run *r = &c->runs[i];

		if (!r->busy || r->finished)
			continue;
		d = r->killed ? EXIT_POLL_MS : r->deadline - now;
		if (r->fd[FD_PID] == -1 && d > EXIT_POLL_MS)
			d = EXIT_POLL_MS;
		if (d < 0)
			d = 0;
		if (best < 0 || d < best)
			best = d;
	}
	return best < 0 ? -1 : (int)best + 1;
}

static void
kill_run(struct run *r, int why)
{
	if (!r->killed) {
		r->killed = why;
		killpg(r->pid, SIGKILL);
	}
}

static void
write_input(struct run *r)
{
	ssize_t w;

	while (r->inoff < r->inlen) {
		w = write(r->fd[FD_IN], r->in + r->inoff, r->inlen - r->inoff);
		if (w > 0) {
			r->inoff += (size_t)w;
			continue;
		}
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && errno == EAGAIN)
			return;
		break;		/* EPIPE: the program does not read its input; fine */
	}
	close_fd(&r->fd[FD_IN]);
}

/* Reads what is there (never blocks); closes the descriptor at EOF. */
static void
read_output(struct run *r, enum fdkind k)
{
	char buf[4096];
	ssize_t n;
	size_t room, keep;

	for (;;) {
		n = read(r->fd[k], buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close_fd(&r->fd[k]);
			return;
		}
		if (k == FD_OUT) {
			room = REPLY_OUTPUT_MAX + 1 - r->outlen;
			keep = (size_t)n < room ? (size_t)n : room;
			memcpy(r->out + r->outlen, buf, keep);
			r->outlen += keep;
			if (r->outlen > REPLY_OUTPUT_MAX) {
				kill_run(r, 2);
				close_fd(&r->fd[k]);
				return;
			}
		} else {
			/* keep the tail: the last line is what matters */
			if ((size_t)n >= ERRTAIL) {
				memcpy(r->errtail, buf + n - ERRTAIL, ERRTAIL);
				r->errlen = ERRTAIL;
			} else {
				if (r->errlen + (size_t)n > ERRTAIL) {
					size_t drop = r->errlen + (size_t)n - ERRTAIL;

					memmove(r->errtail, r->errtail + drop, r->errlen - drop);
					r->errlen -= drop;
				}
				memcpy(r->errtail + r->errlen, buf, (size_t)n);
				r->errlen += (size_t)n;
			}
		}
	}
}

static void
reap(struct children *c, struct run *r)
{
	pid_t p;

	do
		p = waitpid(r->pid, &r->status, WNOHANG);
	while (p == -1 && errno == EINTR);
	if (p != r->pid)
		return;
	/* it has gone: what it wrote is in the pipes (a grandchild may hold them
	 * open, so read what is there rather than wait for EOF) */
	if (r->fd[FD_OUT] != -1 && !r->killed)
		read_output(r, FD_OUT);
	if (r->fd[FD_ERR] != -1)
		read_output(r, FD_ERR);
	r->finished = 1;
	(void)c;
}

void
child_work(struct children *c, const struct curl_waitfd *fds, int n)
{
	double now;
	int i;

	for (i = 0; i < n && i < c->nrefs; i++) {
		struct run *r = &c->runs[c->refs[i].slot];
		enum fdkind k = c->refs[i].kind;

		if (fds[i].revents == 0 || r->fd[k] != fds[i].fd)
			continue;
		if (k == FD_IN)
			write_input(r);
		else if (k == FD_OUT || k == FD_ERR)
			read_output(r, k);
	}
	now = log_now_ms();
	for (i = 0; i < c->nslots; i++) {
		struct run *r = &c->runs[i];

		if (!r->busy || r->finished)
			continue;
		if (now >= r->deadline)
			kill_run(r, 1);
		reap(c, r);
	}
}

/* The last non-empty line of stderr, control characters as '?'. */
static void
last_line(const struct run *r, char *dst, size_t len)
{
	size_t end = r->errlen, start;

	while (end > 0 && (r->errtail[end - 1] == '\n' || r->errtail[end - 1] == '\r'))
		end--;
	for (start = end; start > 0 && r->errtail[start - 1] != '\n'; start--)
		;
	if (end - start > len - 1)
		end = start + len - 1;
	memcpy(dst, r->errtail + start, end - start);
	dst[end - start] = '\0';
	for (; *dst != '\0'; dst++)
		if ((unsigned char)*dst < 0x20 || *dst == 0x7f)
			*dst = '?';
}

int
child_next(struct children *c, int *slot, struct child_result *res)
{
	char line[200];
	int i;

	for (i = 0; i < c->nslots; i++) {
		struct run *r = &c->runs[i];

		if (!r->busy || !r->finished)
			continue;
		memset(res, 0, sizeof(*res));
		res->ms = log_now_ms() - r->t0;
		last_line(r, line, sizeof(line));
		if (r->killed == 1)
			snprintf(res->why, sizeof(res->why), "reply program timed out after "
			    "%.1f s: its process group was killed%s%s", c->timeout_ms / 1000,
			    line[0] ? "; stderr: " : "", line);
		else if (r->killed == 2)
			snprintf(res->why, sizeof(res->why), "reply program wrote more than %d "
			    "bytes: its process group was killed", REPLY_OUTPUT_MAX);
		else if (WIFSIGNALED(r->status))
			snprintf(res->why, sizeof(res->why), "reply program killed by signal "
			    "%d%s%s", WTERMSIG(r->status), line[0] ? ": " : "", line);
		else if (WIFEXITED(r->status) && WEXITSTATUS(r->status) != 0)
			snprintf(res->why, sizeof(res->why), "reply program exited %d%s%s",
			    WEXITSTATUS(r->status), line[0] ? ": " : "", line);
		else {
			res->ok = 1;
			res->out = r->out;
			res->outlen = r->outlen;
			r->out = NULL;
		}
		*slot = i;
		run_clear(r);
		c->running--;
		return 1;
	}
	return 0;
}

int
child_running(const struct children *c)
{
	return c->running;
}
