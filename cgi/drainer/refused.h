/*
 * refused.h - the numbers whose access token the Graph API refused in this
 * run (or that have none): a bounded set of phone_number_ids, each kept once,
 * in the order met. Both lanes of the drainer stop claiming those numbers'
 * rows until the run ends.
 *
 * No lock inside: an owner that shares its set between threads (the media
 * lane) holds its own lock around every call.
 */
#ifndef WAHOOK_REFUSED_H
#define WAHOOK_REFUSED_H

#define REFUSED_MAX	1024	/* numbers a set keeps */

struct refused {
	char	*number[REFUSED_MAX];	/* n copies, owned by the set */
	int	 n;
};

/* An empty set (a zeroed struct is one too). Allocates nothing. */
void	refused_init(struct refused *);

/* 1 when number is in the set, else 0. */
int	refused_has(const struct refused *, const char *number);

/*
 * Adds a copy of number unless it is there already. Returns 1 (added), 0 (it
 * was there), or -1 when it cannot be kept: the set holds REFUSED_MAX numbers,
 * or out of memory. The set is unchanged unless 1 is returned.
 */
int	refused_add(struct refused *, const char *number);

/* The i-th number added (0-based), or NULL when there are not that many. The
 * string is the set's: valid until refused_free(). */
const char *refused_at(const struct refused *, int i);

/* Frees every copy; the set is empty again. */
void	refused_free(struct refused *);

#endif
