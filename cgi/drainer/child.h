/*
 * child.h - reply programs as child processes, several at once, never waited
 * for: each runs directly (no shell) in its own process group with a clean
 * environment; its stdin is fed, its stdout and stderr read, and its exit seen
 * (a pidfd) only when the caller's poll says a descriptor is ready.
 *
 * The caller owns the loop: child_fds() lists what to poll, child_work() acts
 * on the poll's answers and on deadlines, child_next() hands over finished runs.
 */
#ifndef WAHOOK_CHILD_H
#define WAHOOK_CHILD_H

#include <stddef.h>

#include <curl/curl.h>

#define CHILD_WHY_MAX	320

/* One finished run. */
struct child_result {
	int	 ok;		/* exited 0 in time, stdout within the cap */
	char	*out;		/* stdout (malloc'd, may be NULL when empty); caller frees */
	size_t	 outlen;
	char	 why[CHILD_WHY_MAX];	/* when !ok: "exit 3: <last stderr line>", "timed out..." */
	double	 ms;
};

struct children;

/*
 * nslots programs at once; each run of path gets timeout_s seconds and the
 * environment base (NULL-terminated "NAME=value" strings, copied) plus the
 * per-run variables. Returns NULL when out of memory.
 */
struct children *child_new(const char *path, double timeout_s, int nslots,
	    const char *const *base_env);

/* Kills (SIGKILL to the process group) and reaps what still runs; frees. NULL is fine. */
void	child_free(struct children *);

/*
 * Starts the program in free slot with input (len bytes, copied) on stdin and
 * the extra "NAME=value" strings of env (NULL-terminated) added to the base
 * environment. Returns 0, or -1 with the reason in why (slot stays free).
 */
int	child_start(struct children *, int slot, const char *input, size_t len,
	    const char *const *env, char *why, size_t whylen) __attribute__((warn_unused_result));

/* Appends to fds (room for max) what the running programs wait on; returns how many. */
int	child_fds(struct children *, struct curl_waitfd *fds, int max);

/* Milliseconds until the next deadline (a timeout, or a poll for exits), or -1. */
int	child_wait_ms(const struct children *);

/* After a poll over child_fds()'s entries (fds, n, revents set): reads, writes,
 * enforces timeouts and the output cap, reaps exits. */
void	child_work(struct children *, const struct curl_waitfd *fds, int n);

/* Collects one finished run: 1 with *slot and *r set (the slot is free again), or 0. */
int	child_next(struct children *, int *slot, struct child_result *r);

/* Programs running (started and not yet collected). */
int	child_running(const struct children *);

#endif
