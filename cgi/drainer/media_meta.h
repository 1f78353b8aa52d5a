/*
 * media_meta.h - what the Graph API says about a media item, and the checks
 * its bytes must pass. Pure functions: no I/O, so the unit tests can call them.
 *
 * GET /{media_id} answers {"url", "mime_type", "sha256", "file_size", "id"}.
 * Meta has been seen to send sha256 as hex and as base64 (the webhook's own
 * field is base64), and file_size as a number and as a string: each is
 * accepted, and the digest is kept as 32 raw bytes.
 */
#ifndef WAHOOK_MEDIA_META_H
#define WAHOOK_MEDIA_META_H

#include <stddef.h>

#define MEDIA_URL_MAX	2048
#define MEDIA_MIME_MAX	128
#define MEDIA_SHA_LEN	32
#define MEDIA_HEX_LEN	(2 * MEDIA_SHA_LEN + 1)

struct media_meta {
	char		 url[MEDIA_URL_MAX];	/* where to download, with the token */
	char		 mime_type[MEDIA_MIME_MAX];	/* "" when absent */
	unsigned char	 sha256[MEDIA_SHA_LEN];
	long long	 file_size;		/* -1 when absent */
};

/*
 * Parses the retrieve call's answer (len bytes, need not be NUL-terminated).
 * Returns 0, or -1 with the reason in err: not JSON, no url or one that is not
 * http(s) without spaces or control bytes, no sha256 or one that is neither 64
 * hex digits nor base64 of 32 bytes, a file_size that is not a whole number >= 0.
 */
int	media_meta_parse(const char *body, size_t len, struct media_meta *m, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/*
 * Decodes a SHA-256 digest written as 64 hex digits (either case) or as base64
 * of 32 bytes (standard or URL-safe alphabet, '=' padding optional) into out.
 * Returns 0, or -1 when s is neither.
 */
int	media_sha256_decode(const char *s, unsigned char out[MEDIA_SHA_LEN])
	    __attribute__((warn_unused_result));

/* Writes the digest as 64 lowercase hex digits and a NUL. */
void	media_sha256_hex(const unsigned char d[MEDIA_SHA_LEN], char out[MEDIA_HEX_LEN]);

/* The media types whose messages carry bytes to fetch: 1 for image, audio,
 * video, document and sticker, else 0. */
int	media_type_known(const char *type);

#endif
