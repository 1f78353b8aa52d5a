/*
 * media_meta.c - the retrieve call's answer and the digest forms (see
 * media_meta.h). Accepting both forms of sha256 and of file_size matters: a
 * receiver that insists on one would fail every fetch the day Meta sends the
 * other, and the bytes are gone after 7 days.
 */
#include "media_meta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "verify.h"

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int
media_sha256_decode(const char *s, unsigned char out[MEDIA_SHA_LEN])
{
	size_t n = strlen(s), i, o = 0;
	unsigned int acc = 0;
	int bits = 0, v, hi, lo;

	if (n == 2 * MEDIA_SHA_LEN) {
		for (i = 0; i < MEDIA_SHA_LEN; i++) {
			if ((hi = verify_hexdigit((unsigned char)s[2 * i])) < 0 ||
			    (lo = verify_hexdigit((unsigned char)s[2 * i + 1])) < 0)
				return -1;
			out[i] = (unsigned char)(hi << 4 | lo);
		}
		return 0;
	}
	/* base64 of 32 bytes: 43 digits (the last carries 2 zero bits), then '=' */
	if (n == 44 && s[43] == '=')
		n = 43;
	if (n != 43)
		return -1;
	for (i = 0; i < n; i++) {
		if ((v = b64_value((unsigned char)s[i])) < 0)
			return -1;
		acc = (acc << 6 | (unsigned int)v) & 0xffffu;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (o != MEDIA_SHA_LEN || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return 0;
}

void
media_sha256_hex(const unsigned char d[MEDIA_SHA_LEN], char out[MEDIA_HEX_LEN])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < MEDIA_SHA_LEN; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * MEDIA_SHA_LEN] = '\0';
}

int
media_type_known(const char *t)
{
	return strcmp(t, "image") == 0 || strcmp(t, "audio") == 0 ||
	    strcmp(t, "video") == 0 || strcmp(t, "document") == 0 ||
	    strcmp(t, "sticker") == 0;
}

/* A whole number >= 0 from a JSON int or a string of digits; -1 when neither. */
static long long
size_value(json_object *v)
{
	const char *s;
	char *end;
	long long x;

	if (json_object_is_type(v, json_type_int)) {
		x = (long long)json_object_get_int64(v);
		return x >= 0 ? x : -1;
	}
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	x = strtoll(s, &end, 10);
	return errno == 0 && *end == '\0' ? x : -1;
}

static int
url_ok(const char *u)
{
	const char *p;

	if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
		return 0;
	for (p = u; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	}
	return 1;
}

int
media_meta_parse(const char *body, size_t len, struct media_meta *m, char *err,
    size_t errlen)
{
	json_tokener *tok = NULL;
	json_object *root = NULL, *v;
	const char *s;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	m->file_size = -1;
	if (len == 0 || len > 64 * 1024 || (tok = json_tokener_new()) == NULL) {
		snprintf(err, errlen, "retrieve answer: empty or too long");
		goto fail;
	}
	root = json_tokener_parse_ex(tok, body, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(root, json_type_object)) {
		snprintf(err, errlen, "retrieve answer: not a JSON object");
		goto fail;
	}
	if (!json_object_object_get_ex(root, "url", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    (size_t)json_object_get_string_len(v) >= sizeof(m->url) ||
	    !url_ok(s = json_object_get_string(v))) {
		snprintf(err, errlen, "retrieve answer: no usable url");
		goto fail;
	}
	memcpy(m->url, s, strlen(s) + 1);
	if (!json_object_object_get_ex(root, "sha256", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    media_sha256_decode(json_object_get_string(v), m->sha256) == -1) {
		snprintf(err, errlen, "retrieve answer: sha256 missing or neither hex nor "
		    "base64 of 32 bytes");
		goto fail;
	}
	if (json_object_object_get_ex(root, "file_size", &v) &&
	    !json_object_is_type(v, json_type_null) && (m->file_size = size_value(v)) < 0) {
		snprintf(err, errlen, "retrieve answer: file_size is not a whole number");
		goto fail;
	}
	if (json_object_object_get_ex(root, "mime_type", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    (size_t)json_object_get_string_len(v) < sizeof(m->mime_type)) {
		s = json_object_get_string(v);
		if (strcspn(s, "\r\n\"\\") == strlen(s))
			memcpy(m->mime_type, s, strlen(s) + 1);
	}
	rc = 0;
fail:
	json_object_put(root);
	if (tok != NULL)
		json_tokener_free(tok);
	return rc;
}
