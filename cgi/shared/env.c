/*
 * env.c - configuration readers (see env.h). Strict parsing: "10x", " 10",
 * "1e3" for an integer, out-of-range values all fail with the variable's name.
 * The scripts' known names live here, the one place both programs link, so
 * that each program can tell them from a typo.
 */
#include "env.h"
#include "log.h"

#include <libpq-fe.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET_FILE_MAX (64 * 1024)

static char *
read_file(const char *path, char *err, size_t errlen, const char *name)
{
	FILE *f = NULL;
	char *buf = NULL;
	size_t n = 0;

	if ((f = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen, "%s_FILE: cannot open %s: %s", name, path,
		    strerror(errno));
		goto fail;
	}
	if ((buf = malloc(SECRET_FILE_MAX + 1)) == NULL) {
		snprintf(err, errlen, "%s_FILE: out of memory", name);
		goto fail;
	}
	n = fread(buf, 1, SECRET_FILE_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s_FILE: cannot read %s", name, path);
		goto fail;
	}
	if (n > SECRET_FILE_MAX) {
		snprintf(err, errlen, "%s_FILE: %s is larger than 64 KiB", name, path);
		goto fail;
	}
	if (memchr(buf, '\0', n) != NULL) {
		snprintf(err, errlen, "%s_FILE: %s contains a NUL byte", name, path);
		goto fail;
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
fail:
	if (buf != NULL) {
		/* not a C string here (no NUL yet, or one inside): wipe it all */
		explicit_bzero(buf, SECRET_FILE_MAX + 1);
		free(buf);
	}
	if (f != NULL)
		fclose(f);
	return NULL;
}

int
env_secret(const char *name, char **out, char *err, size_t errlen)
{
	char fname[128];
	const char *v, *path;
	char *s = NULL;
	size_t n;

	*out = NULL;
	snprintf(fname, sizeof(fname), "%s_FILE", name);
	v = getenv(name);
	path = getenv(fname);
	if (v != NULL && *v == '\0')
		v = NULL;
	if (path != NULL && *path == '\0')
		path = NULL;
	if (v != NULL && path != NULL) {
		snprintf(err, errlen, "%s and %s are both set: keep one", name, fname);
		return -1;
	}
	if (v == NULL && path == NULL)
		return 0;
	if (v != NULL)
		s = strdup(v);
	else if ((s = read_file(path, err, errlen, name)) == NULL)
		return -1;
	if (s == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	n = strlen(s);
	if (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	if (n > 0 && s[n - 1] == '\r')
		s[--n] = '\0';
	if (n == 0) {
		snprintf(err, errlen, "%s%s is empty", name, path ? "_FILE" : "");
		env_free_secret(s);
		return -1;
	}
	*out = s;
	return 0;
}

const char *
env_string(const char *name, const char *def)
{
	const char *v = getenv(name);

	return (v == NULL || *v == '\0') ? def : v;
}

int
env_parse_long(const char *name, const char *v, long long min, long long max,
    long long *out, char *err, size_t errlen)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	/* strtoll() would skip any leading blank (tab, newline) and take '+' */
	if (errno != 0 || end == v || *end != '\0' ||
	    (*v != '-' && (*v < '0' || *v > '9')) || x < min || x > max) {
		snprintf(err, errlen, "%s=%.40s: want a whole number from %lld to %lld",
		    name, v, min, max);
		return -1;
	}
	*out = x;
	return 0;
}

int
env_long(const char *name, long long def, long long min, long long max,
    long long *out, char *err, size_t errlen)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		*out = def;
		return 0;
	}
	return env_parse_long(name, v, min, max, out, err, errlen);
}

int
env_parse_double(const char *name, const char *v, double min, double max,
    double *out, char *err, size_t errlen)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (errno != 0 || end == v || *end != '\0' || isspace((unsigned char)*v) ||
	    !isfinite(x) ||
	    x < min || x > max) {
		snprintf(err, errlen, "%s=%.40s: want a number from %g to %g",
		    name, v, min, max);
		return -1;
	}
	*out = x;
	return 0;
}

int
env_double(const char *name, double def, double min, double max,
    double *out, char *err, size_t errlen)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		*out = def;
		return 0;
	}
	return env_parse_double(name, v, min, max, out, err, errlen);
}

int
env_parse_choice(const char *name, const char *v, const char *const *choices, int *out,
    char *err, size_t errlen)
{
	size_t used;
	int i, n;

	for (i = 0; choices[i] != NULL; i++) {
		if (strcmp(v, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	n = snprintf(err, errlen, "%s=%.40s: want one of", name, v);
	used = n < 0 ? 0 : (size_t)n;
	for (i = 0; choices[i] != NULL && used < errlen; i++) {
		n = snprintf(err + used, errlen - used, " %s", choices[i]);
		used += n < 0 ? 0 : (size_t)n;
	}
	return -1;
}

int
env_choice(const char *name, const char *const *choices, int def, int *out,
    char *err, size_t errlen)
{
	const char *v = getenv(name);

	*out = def;
	if (v == NULL || *v == '\0')
		return 0;
	return env_parse_choice(name, v, choices, out, err, errlen);
}

void
env_free_secret(char *s)
{
	if (s == NULL)
		return;
	/* volatile so the compiler keeps the wipe */
	for (volatile char *p = s; *p != '\0'; p++)
		*p = '\0';
	free(s);
}

int
env_conninfo(const char *name, const char **out, char *err, size_t errlen)
{
	const char *v = env_string(name, "");
	PQconninfoOption *opts = NULL;
	char *perr = NULL, kw[41];
	const char *p, *q;
	size_t n;

	*out = v;
	if (*v == '\0')
		return 0;
	if ((opts = PQconninfoParse(v, &perr)) != NULL) {
		PQconninfoFree(opts);
		return 0;
	}
	/*
	 * libpq's reason may quote a piece of the value ("missing "=" after
	 * "...""): pass on only the name of an unknown keyword, when it looks like
	 * one (lower-case letters and '_'), which is what a typo gives.
	 */
	kw[0] = '\0';
	if (perr != NULL && strncmp(perr, "invalid connection option \"", 27) == 0) {
		p = perr + 27;
		q = strchr(p, '"');
		n = q != NULL ? (size_t)(q - p) : 0;
		if (n > 0 && n < sizeof(kw) && strspn(p, "abcdefghijklmnopqrstuvwxyz_") == n) {
			memcpy(kw, p, n);
			kw[n] = '\0';
		}
	}
	if (kw[0] != '\0')
		snprintf(err, errlen, "%s: unknown connection keyword \"%s\" (see the "
		    "libpq keywords: host, port, dbname, user, ...)", name, kw);
	else if (perr == NULL)
		snprintf(err, errlen, "%s: out of memory parsing the connection string",
		    name);
	else
		snprintf(err, errlen, "%s: not a valid libpq connection string (want "
		    "key=value pairs or a postgresql:// URI; the value is not shown, it "
		    "may hold a password)", name);
	PQfreemem(perr);
	return -1;
}

/* the programs' names are generated from their tables (tools/conf-names) */
const char *const env_names_scripts[] = {
	"WAHOOK_SQL_DIR", "WAHOOK_RETENTION_DAYS", "WAHOOK_PRUNE_BATCH", "WAHOOK_PRUNE_PAUSE",
	"WAHOOK_PORT", "WAHOOK_SECRET_FILE",
	NULL
};

static int
known_name(const char *const *const *known, const char *name, size_t n)
{
	const char *const *t;

	for (; *known != NULL; known++)
		for (t = *known; *t != NULL; t++)
			if (strlen(*t) == n && strncmp(*t, name, n) == 0)
				return 1;
	return 0;
}

size_t
env_unknown(char *const *envp, const char *const *const *known,
    void (*warn)(const char *name, void *ctx), void *ctx)
{
	char name[128];
	size_t n, found = 0;
	const char *eq;

	for (; envp != NULL && *envp != NULL; envp++) {
		if (strncmp(*envp, "WAHOOK_", 7) != 0)
			continue;
		eq = strchr(*envp, '=');
		n = eq != NULL ? (size_t)(eq - *envp) : strlen(*envp);
		if (known_name(known, *envp, n))
			continue;
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, *envp, n);
		name[n] = '\0';
		warn(name, ctx);
		found++;
	}
	return found;
}

static void
warn_unknown(const char *name, void *ctx)
{
	struct logline l;

	(void)ctx;
	log_begin(&l, "warn", "config");
	log_str(&l, "msg", "unknown variable ignored (a typo?)");
	log_str(&l, "var", name);
	log_end(&l);
}

size_t
env_warn_unknown(char *const *envp, const char *const *const *known)
{
	return env_unknown(envp, known, warn_unknown, NULL);
}

void
env_scrub(const char *const *names)
{
	size_t i, n;
	char **e;

	for (i = 0; names[i] != NULL; i++) {
		n = strlen(names[i]);
		for (e = environ; *e != NULL; e++)
			if (strncmp(*e, names[i], n) == 0 && (*e)[n] == '=')
				explicit_bzero(*e + n + 1, strlen(*e + n + 1));
		(void)unsetenv(names[i]);
	}
}
