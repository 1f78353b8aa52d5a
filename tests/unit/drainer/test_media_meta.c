/*
 * test_media_meta.c - cgi/drainer/media_meta.c: the retrieve call's answer in every
 * form Meta has been seen to use (sha256 hex or base64, file_size number or
 * string), and the answers that must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "media_meta.h"

/* sha256("hello") */
#define HEX "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define B64 "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="

static void
test_digest_forms(void **state)
{
	static const struct { const char *in; int ok; } cases[] = {
		{ HEX, 1 },
		{ "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824", 1 },
		{ B64, 1 },
		{ "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ", 1 },	/* no padding */
		{ "LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=", 1 },	/* URL-safe */
		{ "", 0 },
		{ HEX "00", 0 },
		{ "zzf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", 0 },
		{ "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCR=", 0 },	/* stray low bits */
		{ "LPJNul+wow4m6Dsq*bninhsWHlwfp0JecwQzYpOLmCQ=", 0 },
		{ "aGVsbG8=", 0 },					/* base64, not 32 bytes */
	};
	unsigned char d[MEDIA_SHA_LEN];
	char hex[MEDIA_HEX_LEN];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = media_sha256_decode(cases[i].in, d);

		if (!cases[i].ok) {
			assert_int_equal(rc, -1);
			continue;
		}
		assert_int_equal(rc, 0);
		media_sha256_hex(d, hex);
		assert_string_equal(hex, HEX);
	}
}

static void
test_parse_forms(void **state)
{
	static const struct { const char *body; long long size; const char *mime; } ok[] = {
		{ "{\"url\":\"https://lookaside.fbsbx.com/x?a=1\",\"mime_type\":\"image/jpeg\","
		  "\"sha256\":\"" HEX "\",\"file_size\":303833,\"id\":\"1\","
		  "\"messaging_product\":\"whatsapp\"}", 303833, "image/jpeg" },
		{ "{\"url\":\"https://h/x\",\"mime_type\":\"audio/ogg\",\"sha256\":\"" B64 "\","
		  "\"file_size\":\"5\"}", 5, "audio/ogg" },
		{ "{\"url\":\"http://127.0.0.1:8/dl\",\"sha256\":\"" HEX "\"}", -1, "" },
	};
	struct media_meta m;
	char err[256], hex[MEDIA_HEX_LEN];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(media_meta_parse(ok[i].body, strlen(ok[i].body), &m, err,
		    sizeof(err)), 0);
		assert_int_equal(m.file_size, ok[i].size);
		assert_string_equal(m.mime_type, ok[i].mime);
		media_sha256_hex(m.sha256, hex);
		assert_string_equal(hex, HEX);
		assert_true(strncmp(m.url, "http", 4) == 0);
	}
}

static void
test_parse_refuses(void **state)
{
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"{\"sha256\":\"" HEX "\"}",					/* no url */
		"{\"url\":\"ftp://h/x\",\"sha256\":\"" HEX "\"}",
		"{\"url\":\"https://h/x y\",\"sha256\":\"" HEX "\"}",
		"{\"url\":\"https://h/x\"}",					/* no sha256 */
		"{\"url\":\"https://h/x\",\"sha256\":\"abc\"}",
		"{\"url\":\"https://h/x\",\"sha256\":\"" HEX "\",\"file_size\":-1}",
		"{\"url\":\"https://h/x\",\"sha256\":\"" HEX "\",\"file_size\":\"12kB\"}",
		"{\"url\":\"https://h/x\",\"sha256\":\"" HEX "\",\"file_size\":1.5}",
		"{\"url\":\"https://h/x\",\"sha256\":\"" HEX "\",\"file_size\":\"-3\"}",
	};
	struct media_meta m;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(media_meta_parse(bad[i], strlen(bad[i]), &m, err,
		    sizeof(err)), -1);
		assert_true(strncmp(err, "retrieve answer:", 16) == 0);
	}
}

static void
test_types(void **state)
{
	(void)state;
	assert_true(media_type_known("image"));
	assert_true(media_type_known("audio"));
	assert_true(media_type_known("video"));
	assert_true(media_type_known("document"));
	assert_true(media_type_known("sticker"));
	assert_false(media_type_known("text"));
	assert_false(media_type_known("location"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_forms),
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
