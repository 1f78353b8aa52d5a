/*
 * tokens.h - which access token calls the Graph API for which business number.
 *
 * WAHOOK_ACCESS_TOKENS_FILE maps phone_number_id to its own token, one
 * "phone_number_id token" pair a line; a number not listed uses the single
 * token (WAHOOK_ACCESS_TOKEN[_FILE]). Parsed once at start into a sorted
 * array; lookups are a binary search. No error message ever quotes the file.
 */
#ifndef WAHOOK_TOKENS_H
#define WAHOOK_TOKENS_H

#include <stddef.h>

#define TOKENS_FILE_MAX	(16 * 1024 * 1024)	/* bytes */
#define TOKENS_MAX	100000			/* pairs */
#define TOKENS_PNID_MAX	64			/* bytes of a phone_number_id */
#define TOKENS_TOKEN_MAX 4096			/* bytes of a token */

struct tokens;

/*
 * Parses text (len bytes, need not be NUL-terminated). Rules: lines end with
 * LF (a CR before it is dropped); blank lines and lines whose first non-blank
 * character is '#' are skipped; every other line holds exactly two fields
 * separated by spaces or tabs: a phone_number_id of [A-Za-z0-9_.-] and a token
 * of printable ASCII without spaces. A number listed twice is an error.
 * Returns 0 and *out (free with tokens_free()), or -1 with a reason naming the
 * line number in err (never a field's content).
 */
int	tokens_parse(const char *text, size_t len, struct tokens **out, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/*
 * Reads and parses the file at path. It must be a regular file of at most
 * TOKENS_FILE_MAX bytes that other users can neither read nor write (mode
 * 0600 or 0640 or stricter). Returns as tokens_parse(); err names `name`, the
 * variable that gave the path.
 */
int	tokens_load(const char *name, const char *path, struct tokens **out, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/* The token of phone_number_id pnid, or NULL when the file does not list it.
 * The string belongs to t. */
const char *tokens_get(const struct tokens *t, const char *pnid);

/* The token for calls on behalf of pnid: its line in t (NULL is fine), else
 * single (may be NULL); NULL when neither serves it. */
const char *tokens_pick(const struct tokens *t, const char *single, const char *pnid);

/* Pairs held (0 for NULL). */
size_t	tokens_count(const struct tokens *t);

/* Wipes every token and frees t (NULL is fine). */
void	tokens_free(struct tokens *t);

#endif
