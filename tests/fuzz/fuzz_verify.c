/*
 * fuzz_verify.c - libFuzzer target for the signature check, the secret list
 * split, the verify token and http_query_param(). Input: "secrets\nheader\nbody".
 * An independent oracle (OpenSSL HMAC over every secret, hex in either case)
 * says whether the header should verify; verify_signature() must agree.
 */
#include "config.h"
#include "http.h"
#include "verify.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 when h is "sha256=" + the hex of d (either case), blanks around allowed. */
static int
oracle(const char *h, const unsigned char *d)
{
	static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
	size_t i, n;

	while (*h == ' ' || *h == '\t')
		h++;
	if (strncmp(h, "sha256=", 7) != 0)
		return 0;
	h += 7;
	n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n != 64)
		return 0;
	for (i = 0; i < 64; i++) {
		unsigned v = i % 2 ? d[i / 2] & 15u : d[i / 2] >> 4;
		if (h[i] != lo[v] && h[i] != up[v])
			return 0;
	}
	return 1;
}

static void
query(const char *q)
{
	static const char *const names[] = { "hub.mode", "hub.verify_token",
	    "hub.challenge", "", "a" };
	char out[64], big[600];
	size_t i;
	long n;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		n = http_query_param(q, names[i], out, sizeof(out));
		if (n >= (long)sizeof(out) || (n >= 0 && out[n] != '\0'))
			abort();
		n = http_query_param(q, names[i], big, sizeof(big));
		if (n >= (long)sizeof(big) || (n >= 0 && big[n] != '\0'))
			abort();
		n = http_query_param(q, names[i], out, 1);
		if (n > 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen;
	const uint8_t *nl1, *nl2;
	char *list = NULL, *header = NULL, err[256];
	unsigned char *body = NULL;
	size_t blen, i;
	int want = 0;
	enum verify_result vr;

	memset(&c, 0, sizeof(c));
	if ((nl1 = memchr(data, '\n', size)) == NULL ||
	    (nl2 = memchr(nl1 + 1, '\n', size - (size_t)(nl1 + 1 - data))) == NULL)
		return 0;
	list = strndup((const char *)data, (size_t)(nl1 - data));
	header = strndup((const char *)nl1 + 1, (size_t)(nl2 - nl1 - 1));
	blen = size - (size_t)(nl2 + 1 - data);
	body = malloc(blen ? blen : 1);	/* exact size: ASan sees overreads */
	if (list == NULL || header == NULL || body == NULL)
		goto out;
	memcpy(body, nl2 + 1, blen);

	query(header);
	if (verify_token(list, header, strlen(header)) != (strcmp(list, header) == 0))
		abort();

	if (*list == '\0' || config_split_secrets(&c, list, err, sizeof(err)) == -1) {
		if (*list != '\0')
			list = NULL;	/* owned by c now: config_free() frees it */
		if (verify_signature(c.secrets, 0, header, body, blen) != VERIFY_NO_SECRET)
			abort();
		goto out;
	}
	list = NULL;
	for (i = 0; i < c.nsecrets; i++) {
		if (c.secrets[i].len == 0 || memchr(c.secrets[i].key, ',', c.secrets[i].len))
			abort();
		maclen = 0;
		if (HMAC(EVP_sha256(), c.secrets[i].key, (int)c.secrets[i].len, blen ? body :
		    (const unsigned char *)"", blen, mac, &maclen) != NULL && maclen == 32)
			want |= oracle(header, mac);
	}
	vr = verify_signature(c.secrets, c.nsecrets, header, body, blen);
	if ((vr == VERIFY_OK) != want)
		abort();
out:
	config_free(&c);
	free(list);
	free(header);
	free(body);
	return 0;
}
