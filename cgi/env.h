/*
 * env.h - reading configuration from the process environment, once, at start.
 *
 * Shared by both programs. Every reader names the variable in its error so
 * the operator knows what to fix; secrets may come from NAME or NAME_FILE
 * (never argv, so they stay out of ps), and never reach an error message.
 */
#ifndef WAHOOK_ENV_H
#define WAHOOK_ENV_H

#include <stddef.h>

#define ENV_ERR_MAX 256

/*
 * Reads the secret NAME or the file named by NAME_FILE (both set is an error).
 * On success returns 0 and *out is a malloc'd NUL-terminated copy with one trailing
 * newline (and CR) removed, or NULL when neither is set; the caller frees it.
 * On failure returns -1 with a reason in err (which never holds the secret).
 * Files over 64 KiB are refused.
 */
int	env_secret(const char *name, char **out, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* Returns the value of NAME, or def when unset or empty. Never fails. */
const char *env_string(const char *name, const char *def);

/*
 * Parses NAME as a whole decimal integer in [min, max]; unset or empty gives def.
 * Returns 0, or -1 with a reason in err.
 */
int	env_long(const char *name, long long def, long long min, long long max,
	    long long *out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Same for a decimal number (e.g. "0.5"); NaN and infinities are refused. */
int	env_double(const char *name, double def, double min, double max,
	    double *out, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Reads NAME as one of the words in choices (NULL-terminated); unset or empty
 * gives def. *out is the word's index. Returns 0, or -1 with a reason listing
 * the words in err.
 */
int	env_choice(const char *name, const char *const *choices, int def, int *out,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/* Overwrites and frees a secret (NULL is fine). */
void	env_free_secret(char *);

/*
 * Takes each variable of names (NULL-terminated) out of this process's
 * environment for good: its value's bytes are overwritten where they lie
 * (/proc/PID/environ shows the memory the process started with, whatever
 * environ says later) and the variable is unset. For secrets, once they are
 * copied: a pointer into the environment to one of them reads zeros after.
 */
void	env_scrub(const char *const *names);

/*
 * Reads NAME as a libpq connection string (key=value pairs or a postgresql://
 * URI) and checks it with PQconninfoParse, so that a typo such as "dbnam=" is
 * a configuration error at start, not a 503 on every request. Unset or empty
 * gives "" (libpq's PG* defaults). Returns 0 with *out pointing into the
 * environment, or -1 with a reason naming NAME in err. The reason never holds
 * the value or a piece of it (a conninfo may hold a password): at most the name
 * of an unknown keyword.
 */
int	env_conninfo(const char *name, const char **out, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * The WAHOOK_* names each program reads, NULL-terminated: one table per program,
 * and one for the operator scripts shipped beside them (migrate, prune, run,
 * sample-webhook). A name in any of them is not a typo: one environment file may
 * serve both programs and the scripts.
 */
extern const char *const env_names_fcgi[];
extern const char *const env_names_drain[];
extern const char *const env_names_secret[];	/* for env_scrub() */
extern const char *const env_names_scripts[];

/*
 * Calls warn(name, ctx) for each variable in the environment (envp, e.g.
 * environ) whose name starts with WAHOOK_ and is in none of the NULL-terminated
 * tables in known (itself NULL-terminated): a typo such as
 * WAHOOK_APP_SECRETFILE, which would otherwise be ignored without a word. name
 * is NUL-terminated, truncated to 127 bytes. Returns the number of such names.
 */
size_t	env_unknown(char *const *envp, const char *const *const *known,
	    void (*warn)(const char *name, void *ctx), void *ctx);

/* env_unknown() with one logfmt warning per name: level=warn ev=config
 * msg="unknown variable ignored (a typo?)" var=NAME. */
size_t	env_warn_unknown(char *const *envp, const char *const *const *known);

#endif
