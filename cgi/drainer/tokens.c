/*
 * tokens.c - the phone_number_id -> access token map (see tokens.h). The file
 * is copied into one buffer whose fields are cut in place (NUL-terminated), so
 * wiping that buffer wipes every token at once.
 */
#include "tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pair {
	const char	*pnid;
	const char	*token;
	size_t		 line;
};

struct tokens {
	char		*buf;	/* the file's bytes, fields NUL-terminated in place */
	size_t		 buflen;
	struct pair	*pairs;	/* sorted by pnid */
	size_t		 n;
};

static int
pnid_char(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    c == '_' || c == '-' || c == '.';
}

static int
blank(int c)
{
	return c == ' ' || c == '\t';
}

static int
cmp_pair(const void *a, const void *b)
{
	return strcmp(((const struct pair *)a)->pnid, ((const struct pair *)b)->pnid);
}

/*
 * Cuts the field starting at *p (ending at a blank or at end) in place and
 * returns it; *p moves past it. ok(c) must hold for every byte, and the field
 * must be 1..max bytes; else NULL.
 */
static char *
field(char **p, char *end, int (*ok)(int), size_t max)
{
	char *s = *p, *q = s;

	while (q < end && !blank((unsigned char)*q)) {
		if (!ok((unsigned char)*q))
			return NULL;
		q++;
	}
	if (q == s || (size_t)(q - s) > max)
		return NULL;
	*p = q;
	return s;
}

static int
token_char(int c)
{
	return c > 0x20 && c < 0x7f;
}

void
tokens_free(struct tokens *t)
{
	if (t == NULL)
		return;
	if (t->buf != NULL) {
		explicit_bzero(t->buf, t->buflen);
		free(t->buf);
	}
	free(t->pairs);
	free(t);
}

int
tokens_parse(const char *text, size_t len, struct tokens **out, char *err, size_t errlen)
{
	struct tokens *t = NULL;
	char *p, *eol, *end, *pnid, *tok, *rest;
	size_t cap = 0, line = 0, i;
	struct pair *grown;

	*out = NULL;
	if (len > TOKENS_FILE_MAX) {
		snprintf(err, errlen, "larger than %d bytes", TOKENS_FILE_MAX);
		goto fail;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL || (t->buf = malloc(len + 1)) == NULL)
		goto oom;
	t->buflen = len + 1;
	memcpy(t->buf, text, len);
	t->buf[len] = '\0';
	for (p = t->buf, end = t->buf + len; p < end; p = eol + 1) {
		line++;
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		rest = eol;
		if (rest > p && rest[-1] == '\r')
			rest--;
		*rest = '\0';
		while (p < rest && blank((unsigned char)*p))
			p++;
		if (p == rest || *p == '#')
			continue;
		if ((pnid = field(&p, rest, pnid_char, TOKENS_PNID_MAX)) == NULL ||
		    p == rest) {
			snprintf(err, errlen, "line %zu: want \"phone_number_id token\" "
			    "(the id of letters, digits, '_', '-' or '.', at most %d bytes)",
			    line, TOKENS_PNID_MAX);
			goto fail;
		}
		*p++ = '\0';
		while (p < rest && blank((unsigned char)*p))
			p++;
		if ((tok = field(&p, rest, token_char, TOKENS_TOKEN_MAX)) == NULL) {
			snprintf(err, errlen, "line %zu: the token is missing, longer than %d "
			    "bytes or holds control or non-ASCII characters", line,
			    TOKENS_TOKEN_MAX);
			goto fail;
		}
		if (p < rest) {
			*p++ = '\0';
			while (p < rest && blank((unsigned char)*p))
				p++;
			if (p != rest) {
				snprintf(err, errlen, "line %zu: more than two fields", line);
				goto fail;
			}
		}
		if (t->n == cap) {
			if (cap >= TOKENS_MAX) {
				snprintf(err, errlen, "more than %d pairs", TOKENS_MAX);
				goto fail;
			}
			cap = cap ? cap * 2 : 16;
			if ((grown = realloc(t->pairs, cap * sizeof(*grown))) == NULL)
				goto oom;
			t->pairs = grown;
		}
		t->pairs[t->n].pnid = pnid;
		t->pairs[t->n].token = tok;
		t->pairs[t->n].line = line;
		t->n++;
	}
	if (t->n > 1)
		qsort(t->pairs, t->n, sizeof(*t->pairs), cmp_pair);
	for (i = 1; i < t->n; i++) {
		if (strcmp(t->pairs[i - 1].pnid, t->pairs[i].pnid) == 0) {
			/* no field quoted: a line with its fields swapped would
			 * put a token here */
			snprintf(err, errlen, "lines %zu and %zu list the same "
			    "phone_number_id", t->pairs[i - 1].line < t->pairs[i].line ?
			    t->pairs[i - 1].line : t->pairs[i].line,
			    t->pairs[i - 1].line < t->pairs[i].line ? t->pairs[i].line :
			    t->pairs[i - 1].line);
			goto fail;
		}
	}
	*out = t;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	tokens_free(t);
	return -1;
}

int
tokens_load(const char *name, const char *path, struct tokens **out, char *err,
    size_t errlen)
{
	struct stat st;
	char *buf = NULL, why[256];
	size_t got = 0;
	ssize_t r;
	int fd = -1, rc = -1;

	*out = NULL;
	memset(&st, 0, sizeof(st));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: cannot open %s: %s", name, path, strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: %s is not a regular file", name, path);
		goto done;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		snprintf(err, errlen, "%s: %s is readable or writable by every user "
		    "(mode %04o): chmod o-rwx it", name, path, (unsigned)(st.st_mode & 07777));
		goto done;
	}
	if (st.st_size > TOKENS_FILE_MAX) {
		snprintf(err, errlen, "%s: %s is larger than %d bytes", name, path,
		    TOKENS_FILE_MAX);
		goto done;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto done;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "%s: cannot read %s", name, path);
			goto done;
		}
		got += (size_t)r;
	}
	if (tokens_parse(buf, got, out, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s: %s", name, path, why);
		goto done;
	}
	rc = 0;
done:
	if (buf != NULL) {
		explicit_bzero(buf, (size_t)st.st_size + 1);
		free(buf);
	}
	if (fd != -1)
		close(fd);
	return rc;
}

const char *
tokens_get(const struct tokens *t, const char *pnid)
{
	struct pair key = { pnid, NULL, 0 }, *hit;

	if (t == NULL || t->n == 0)
		return NULL;
	hit = bsearch(&key, t->pairs, t->n, sizeof(*t->pairs), cmp_pair);
	return hit ? hit->token : NULL;
}

const char *
tokens_pick(const struct tokens *t, const char *single, const char *pnid)
{
	const char *own = tokens_get(t, pnid);

	return own != NULL ? own : single;
}

size_t
tokens_count(const struct tokens *t)
{
	return t ? t->n : 0;
}
