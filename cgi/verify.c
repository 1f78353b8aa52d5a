/*
 * verify.c - HMAC-SHA256 signature and token checks with OpenSSL's one-shot
 * HMAC() and CRYPTO_memcmp(). The header's hex is decoded into bytes first, so
 * upper- and lower-case digests compare alike.
 */
#include "verify.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "sha256=" then exactly 64 hex digits; surrounding blanks are tolerated. */
static int
parse_header(const char *h, unsigned char want[SHA256_DIGEST_LENGTH])
{
	size_t i, n;
	int hi, lo;

	while (*h == ' ' || *h == '\t')
		h++;
	if (strncmp(h, "sha256=", 7) != 0)
		return -1;
	h += 7;
	n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n != 2 * SHA256_DIGEST_LENGTH)
		return -1;
	for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		hi = hexval((unsigned char)h[2 * i]);
		lo = hexval((unsigned char)h[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		want[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

enum verify_result
verify_signature(const struct secret *secrets, size_t nsecrets,
    const char *header, const unsigned char *body, size_t len)
{
	unsigned char want[SHA256_DIGEST_LENGTH], got[EVP_MAX_MD_SIZE];
	unsigned int gotlen;
	static const unsigned char empty;
	size_t i;
	int match = 0;

	if (nsecrets == 0)
		return VERIFY_NO_SECRET;
	if (header == NULL)
		return VERIFY_MISSING;
	if (parse_header(header, want) == -1)
		return VERIFY_MALFORMED;
	if (body == NULL)
		body = &empty;	/* HMAC() wants a pointer even for 0 bytes */
	for (i = 0; i < nsecrets; i++) {
		gotlen = 0;
		if (HMAC(EVP_sha256(), secrets[i].key, (int)secrets[i].len, body, len,
		    got, &gotlen) == NULL || gotlen != SHA256_DIGEST_LENGTH)
			continue;
		match |= CRYPTO_memcmp(got, want, SHA256_DIGEST_LENGTH) == 0;
	}
	OPENSSL_cleanse(got, sizeof(got));
	return match ? VERIFY_OK : VERIFY_MISMATCH;
}

const char *
verify_result_str(enum verify_result r)
{
	switch (r) {
	case VERIFY_OK:		return "ok";
	case VERIFY_MISSING:	return "missing";
	case VERIFY_MALFORMED:	return "malformed";
	case VERIFY_MISMATCH:	return "mismatch";
	case VERIFY_NO_SECRET:	return "no_secret";
	}
	return "unknown";
}

int
verify_token(const char *expected, const char *given, size_t len)
{
	unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];

	if (expected == NULL || given == NULL)
		return 0;
	SHA256((const unsigned char *)expected, strlen(expected), a);
	SHA256((const unsigned char *)given, len, b);
	return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}
