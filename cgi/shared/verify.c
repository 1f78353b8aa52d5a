/*
 * verify.c - HMAC-SHA256 signature and token checks: RFC 2104 over OpenSSL's
 * low-level SHA-256 (see verify_hmac_sha256() for why not HMAC()) and CRYPTO_memcmp().
 * The header's hex is decoded into bytes first, so upper- and lower-case
 * digests compare alike.
 */
#include "verify.h"

#include <string.h>

/* SHA256_Init() & co. are deprecated in OpenSSL 3 in favour of EVP, and are
 * used on purpose: see verify_hmac_sha256() */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

int
verify_hexdigit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "sha256=" then exactly 64 hex digits in h[0..n); surrounding blanks are
 * tolerated. */
static int
parse_value(const char *h, size_t n, unsigned char want[SHA256_DIGEST_LENGTH])
{
	size_t i;
	int hi, lo;

	while (n > 0 && (*h == ' ' || *h == '\t')) {
		h++;
		n--;
	}
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n != 7 + 2 * SHA256_DIGEST_LENGTH || strncmp(h, "sha256=", 7) != 0)
		return -1;
	h += 7;
	for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		hi = verify_hexdigit((unsigned char)h[2 * i]);
		lo = verify_hexdigit((unsigned char)h[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		want[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/*
 * out = HMAC-SHA256(key, msg) (RFC 2104). Not OpenSSL 3's HMAC(): that goes
 * through EVP and the provider machinery, which on first use maps megabytes
 * more of libcrypto into every responder process (doc/performance.md,
 * resident size) and allocates and frees a context per call. The low-level
 * SHA-256 is the same assembly (SHA-NI/AVX2) without either.
 */
void
verify_hmac_sha256(const unsigned char *key, size_t klen, const unsigned char *msg, size_t len,
    unsigned char out[SHA256_DIGEST_LENGTH])
{
	unsigned char k[SHA256_CBLOCK], pad[SHA256_CBLOCK], inner[SHA256_DIGEST_LENGTH];
	SHA256_CTX c;
	size_t i;

	memset(k, 0, sizeof(k));
	if (klen > sizeof(k)) {
		SHA256_Init(&c);
		SHA256_Update(&c, key, klen);
		SHA256_Final(k, &c);
	} else if (klen > 0)
		memcpy(k, key, klen);
	for (i = 0; i < sizeof(k); i++)
		pad[i] = k[i] ^ 0x36;
	SHA256_Init(&c);
	SHA256_Update(&c, pad, sizeof(pad));
	SHA256_Update(&c, msg, len);
	SHA256_Final(inner, &c);
	for (i = 0; i < sizeof(k); i++)
		pad[i] = k[i] ^ 0x5c;
	SHA256_Init(&c);
	SHA256_Update(&c, pad, sizeof(pad));
	SHA256_Update(&c, inner, sizeof(inner));
	SHA256_Final(out, &c);
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(pad, sizeof(pad));
	OPENSSL_cleanse(inner, sizeof(inner));
	OPENSSL_cleanse(&c, sizeof(c));
}

enum verify_result
verify_signature(const struct secret *secrets, size_t nsecrets,
    const char *header, const unsigned char *body, size_t len)
{
	unsigned char want[VERIFY_MAX_VALUES][SHA256_DIGEST_LENGTH];
	unsigned char got[SHA256_DIGEST_LENGTH];
	static const unsigned char empty;
	size_t i, j, nvals = 0, nwant = 0, n;
	const char *p;
	int match = 0;

	if (nsecrets == 0)
		return VERIFY_NO_SECRET;
	if (header == NULL)
		return VERIFY_MISSING;
	/* the header's values, as a server joins repeated lines: "v1, v2" */
	for (p = header; ; p += n + 1) {
		n = strcspn(p, ",");
		if (++nvals > VERIFY_MAX_VALUES)
			return VERIFY_MALFORMED;
		if (parse_value(p, n, want[nwant]) == 0)
			nwant++;
		if (p[n] == '\0')
			break;
	}
	if (nwant == 0)
		return VERIFY_MALFORMED;
	if (body == NULL)
		body = &empty;	/* SHA256_Update() wants a pointer even for 0 bytes */
	for (i = 0; i < nsecrets; i++) {
		verify_hmac_sha256((const unsigned char *)secrets[i].key, secrets[i].len, body, len,
		    got);
		for (j = 0; j < nwant; j++)
			match |= CRYPTO_memcmp(got, want[j], SHA256_DIGEST_LENGTH) == 0;
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
