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

/* Overwrites and frees a secret (NULL is fine). */
void	env_free_secret(char *);

#endif
