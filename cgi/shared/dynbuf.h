/*
 * dynbuf.h - the one growable buffer: every list or string that grows with
 * the input gets its hard cap when it is initialised and refuses to pass it.
 *
 * Bytes are kept NUL-terminated (a string buffer is a C string at any time);
 * a list of structs is a dynbuf of bytes grown one zeroed item at a time.
 * The owner frees it with dynbuf_free(); dynbuf_trim() gives memory back
 * after a large request while keeping a small buffer warm.
 */
#ifndef WAHOOK_DYNBUF_H
#define WAHOOK_DYNBUF_H

#include <stddef.h>

struct dynbuf {
	char	*s;	/* NULL until the first byte; else NUL-terminated at len */
	size_t	 len;
	size_t	 cap;	/* allocated bytes (len + 1 at least, once allocated) */
	size_t	 max;	/* len never passes this */
};

enum dynbuf_rc {
	DYNBUF_OK = 0,
	DYNBUF_TOOBIG = -1,	/* the cap would be passed: nothing added */
	DYNBUF_NOMEM = -2	/* out of memory: nothing added */
};

/* An empty buffer whose length may never pass max bytes. Allocates nothing. */
void	dynbuf_init(struct dynbuf *, size_t max);

/* Appends n bytes of p. DYNBUF_OK, or an error and the buffer unchanged. */
enum dynbuf_rc dynbuf_add(struct dynbuf *, const void *p, size_t n)
	    __attribute__((warn_unused_result));

/* Appends a NUL-terminated string (without its NUL). */
enum dynbuf_rc dynbuf_adds(struct dynbuf *, const char *s)
	    __attribute__((warn_unused_result));

/*
 * Makes room for n more bytes without adding them: on DYNBUF_OK, s + len has
 * at least n + 1 writable bytes (a read can land there; dynbuf_commit() then
 * counts what it wrote). Growth doubles, clamped to the cap.
 */
enum dynbuf_rc dynbuf_reserve(struct dynbuf *, size_t n) __attribute__((warn_unused_result));

/* Counts n bytes written at s + len after dynbuf_reserve(n or more). */
void	dynbuf_commit(struct dynbuf *, size_t n);

/* Appends size zero bytes and returns where they start (a new list item), or
 * NULL (cap or memory); *rc says which when rc is not NULL. The pointer is
 * valid until the next growth. */
void	*dynbuf_item(struct dynbuf *, size_t size, enum dynbuf_rc *rc)
	    __attribute__((warn_unused_result));

/* Empties the buffer; keeps its memory. */
void	dynbuf_reset(struct dynbuf *);

/* Empties the buffer and frees its memory when it holds more than keep bytes. */
void	dynbuf_trim(struct dynbuf *, size_t keep);

/* Frees the memory; the buffer is empty and usable again (same cap). */
void	dynbuf_free(struct dynbuf *);

#endif
