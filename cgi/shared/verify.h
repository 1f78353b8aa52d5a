/*
 * verify.h - the two checks that stand between the internet and the database:
 * the X-Hub-Signature-256 HMAC over the raw body (never over a
 * re-serialisation: doc/meta-webhooks.md, "The signature") and the GET verify token. Both compare in constant time.
 */
#ifndef WAHOOK_VERIFY_H
#define WAHOOK_VERIFY_H

#include <stddef.h>

/* One app secret; WAHOOK_APP_SECRET may hold several (rotation). */
struct secret {
	const char	*key;
	size_t		 len;
};

enum verify_result {
	VERIFY_OK = 0,
	VERIFY_MISSING,		/* no header */
	VERIFY_MALFORMED,	/* not "sha256=" + 64 hex digits */
	VERIFY_MISMATCH,	/* well formed, no secret gives this digest */
	VERIFY_NO_SECRET	/* nothing to verify with: fail closed */
};

#define VERIFY_MAX_VALUES 8	/* values in one header; more is VERIFY_MALFORMED */

/*
 * Checks header (the X-Hub-Signature-256 value, may be NULL) against
 * HMAC-SHA256(secret, body[0..len)) for each secret; any match is VERIFY_OK.
 * A header sent twice arrives as "v1, v2" (lighttpd and Apache join repeated
 * lines so; the FastCGI front end joins nginx's separate params alike): every
 * well-formed value is tried, malformed ones are skipped, and any match
 * verifies. Accepting any is as strong as accepting one, since each value
 * needs the secret to forge. VERIFY_MALFORMED when no value is well formed or
 * there are more than VERIFY_MAX_VALUES. Hex is case-insensitive. Every
 * secret and value is tried, so the time does not tell which one matched.
 */
enum verify_result verify_signature(const struct secret *secrets, size_t nsecrets,
	    const char *header, const unsigned char *body, size_t len);

/*
 * out = HMAC-SHA256(key, msg) (RFC 2104), 32 bytes. Also signs what the
 * drainer posts to a reply URL.
 */
void	verify_hmac_sha256(const unsigned char *key, size_t klen, const unsigned char *msg,
	    size_t len, unsigned char out[32]);

/* The value of hex digit c (either case), or -1. Shared with http.c's %XX decoding. */
int	verify_hexdigit(unsigned char c);

/* A short word for logs: "ok", "missing", "malformed", "mismatch", "no_secret". */
const char *verify_result_str(enum verify_result);

/*
 * Returns 1 when given (len bytes) equals expected (NUL-terminated), else 0.
 * Compares SHA-256 digests of both, so neither content nor length leaks
 * through timing. expected NULL never matches.
 */
int	verify_token(const char *expected, const char *given, size_t len);

#endif
