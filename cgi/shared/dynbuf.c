/*
 * dynbuf.c - the capped growable buffer (see dynbuf.h). Every size sum is
 * checked against the cap before it is computed, so nothing can wrap.
 */
#include "dynbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DYNBUF_FIRST 256

void
dynbuf_init(struct dynbuf *b, size_t max)
{
	b->s = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

enum dynbuf_rc
dynbuf_reserve(struct dynbuf *b, size_t n)
{
	size_t need, ncap;
	char *ns;

	if (n > b->max - b->len)
		return DYNBUF_TOOBIG;
	need = b->len + n + 1;	/* len + n <= max: wraps only when max is SIZE_MAX */
	if (need == 0)
		return DYNBUF_TOOBIG;
	if (need <= b->cap)
		return DYNBUF_OK;
	ncap = b->cap ? b->cap : DYNBUF_FIRST;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need;
			break;
		}
		ncap *= 2;
	}
	if (b->max + 1 != 0 && ncap > b->max + 1)
		ncap = b->max + 1;	/* >= need, as len + n <= max */
	if ((ns = realloc(b->s, ncap)) == NULL)
		return DYNBUF_NOMEM;
	b->s = ns;
	b->cap = ncap;
	return DYNBUF_OK;
}

void
dynbuf_commit(struct dynbuf *b, size_t n)
{
	b->len += n;
	b->s[b->len] = '\0';
}

enum dynbuf_rc
dynbuf_add(struct dynbuf *b, const void *p, size_t n)
{
	enum dynbuf_rc rc;

	if ((rc = dynbuf_reserve(b, n)) != DYNBUF_OK)
		return rc;
	if (n > 0)
		memcpy(b->s + b->len, p, n);
	dynbuf_commit(b, n);
	return DYNBUF_OK;
}

enum dynbuf_rc
dynbuf_adds(struct dynbuf *b, const char *s)
{
	return dynbuf_add(b, s, strlen(s));
}

void *
dynbuf_item(struct dynbuf *b, size_t size, enum dynbuf_rc *rcp)
{
	enum dynbuf_rc rc;
	char *item;

	if ((rc = dynbuf_reserve(b, size)) != DYNBUF_OK) {
		if (rcp != NULL)
			*rcp = rc;
		return NULL;
	}
	item = b->s + b->len;
	memset(item, 0, size);
	dynbuf_commit(b, size);
	if (rcp != NULL)
		*rcp = DYNBUF_OK;
	return item;
}

void
dynbuf_reset(struct dynbuf *b)
{
	b->len = 0;
	if (b->s != NULL)
		b->s[0] = '\0';
}

void
dynbuf_trim(struct dynbuf *b, size_t keep)
{
	if (b->cap > keep)
		dynbuf_free(b);
	else
		dynbuf_reset(b);
}

void
dynbuf_free(struct dynbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}
