/*
 * media_config.c - WAHOOK_MEDIA, WAHOOK_MEDIA_DIR, WAHOOK_MEDIA_MAX and
 * WAHOOK_MEDIA_CONCURRENCY (see media_config.h). The directory is checked
 * here, once: a typo must stop the run with exit 2, not fail every fetch.
 */
#include "media_config.h"
#include "env.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies an absolute directory path without trailing slashes into dst. */
static int
load_dir(const char *name, const char *v, char *dst, size_t dstlen, char *err,
    size_t errlen)
{
	struct stat st;
	size_t n = strlen(v);

	while (n > 1 && v[n - 1] == '/')
		n--;
	if (v[0] != '/') {
		snprintf(err, errlen, "%s: want an absolute path", name);
		return -1;
	}
	if (n >= dstlen) {
		snprintf(err, errlen, "%s: longer than %zu bytes", name, dstlen - 1);
		return -1;
	}
	memcpy(dst, v, n);
	dst[n] = '\0';
	if (stat(dst, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", name);
		return -1;
	}
	if (access(dst, W_OK | X_OK) == -1) {
		snprintf(err, errlen, "%s: not writable by this user", name);
		return -1;
	}
	return 0;
}

int
media_config_load(struct media_config *c, char *err, size_t errlen)
{
	const char *v;
	long long n;

	memset(c, 0, sizeof(*c));
	v = env_string("WAHOOK_MEDIA", "on");
	if (strcmp(v, "on") == 0)
		c->on = 1;
	else if (strcmp(v, "off") != 0) {
		snprintf(err, errlen, "WAHOOK_MEDIA: want on or off");
		return -1;
	}
	if (env_long("WAHOOK_MEDIA_MAX", MEDIA_MAX_DEFAULT, 1, 4LL * 1024 * 1024 * 1024,
	    &c->max, err, errlen) == -1)
		return -1;
	if (env_long("WAHOOK_MEDIA_CONCURRENCY", 4, 1, 64, &n, err, errlen) == -1)
		return -1;
	c->concurrency = (int)n;
	v = env_string("WAHOOK_MEDIA_DIR", "");
	if (*v != '\0' && load_dir("WAHOOK_MEDIA_DIR", v, c->dir, sizeof(c->dir), err,
	    errlen) == -1)
		return -1;
	if (c->dir[0] == '\0' && c->max > 1073741823LL) {
		snprintf(err, errlen, "WAHOOK_MEDIA_MAX: at most 1073741823 bytes in PostgreSQL "
		    "(bytea's limit); set WAHOOK_MEDIA_DIR for larger items");
		return -1;
	}
	if (c->dir[0] != '\0')
		memcpy(c->spool, c->dir, sizeof(c->spool));
	else if (load_dir("TMPDIR", env_string("TMPDIR", "/tmp"), c->spool, sizeof(c->spool),
	    err, errlen) == -1)
		return -1;
	return 0;
}
