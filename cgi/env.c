/*
 * env.c - configuration readers (see env.h). Strict parsing: "10x", " 10",
 * "1e3" for an integer, out-of-range values all fail with the variable's name.
 */
#include "env.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
env_long(const char *name, long long def, long long min, long long max,
    long long *out, char *err, size_t errlen)
{
	const char *v = getenv(name);
	char *end;
	long long x;

	if (v == NULL || *v == '\0') {
		*out = def;
		return 0;
	}
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
env_double(const char *name, double def, double min, double max,
    double *out, char *err, size_t errlen)
{
	const char *v = getenv(name);
	char *end;
	double x;

	if (v == NULL || *v == '\0') {
		*out = def;
		return 0;
	}
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
