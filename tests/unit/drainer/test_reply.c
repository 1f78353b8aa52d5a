/*
 * test_reply.c - cgi/drainer/reply.c: what a reply program's output means (empty,
 * a JSON object, an array of up to 10, anything else as text), the bodies
 * recorded for the Graph API byte for byte, the refusals with their reasons,
 * and the program's input object.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reply.h"

#define TO	"4915112345678"
#define MID	"wamid.IN1"
#define ENVELOPE "\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\"," \
	"\"to\":\"" TO "\""
#define CTX	"\"context\":{\"message_id\":\"" MID "\"}"

static const struct address TO_A = { TO, NULL, NULL };

struct pcase {
	const char	*name;
	const char	*out;
	const char	*want;		/* the recorded array, or NULL: refused */
	int		 n;
	const char	*why;		/* part of the reason when refused */
};

static const struct pcase cases[] = {
	{ "empty", "", "[]", 0, NULL },
	{ "blank lines", " \n\r\n\t", "[]", 0, NULL },
	{ "empty array", " [ ]\n", "[]", 0, NULL },
	{ "text", "Hello there\n",
	  "[{\"type\":\"text\",\"text\":{\"body\":\"Hello there\"}," ENVELOPE "," CTX "}]", 1,
	  NULL },
	{ "text keeps inner newlines and quotes", "a \"b\"\nc\\d\r\n\n",
	  "[{\"type\":\"text\",\"text\":{\"body\":\"a \\\"b\\\"\\nc\\\\d\"}," ENVELOPE "," CTX
	  "}]", 1, NULL },
	{ "text utf-8", "Gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93",
	  "[{\"type\":\"text\",\"text\":{\"body\":\"Gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93\"},"
	  ENVELOPE "," CTX "}]", 1, NULL },
	{ "a JSON string is text", "\"quoted\"",
	  "[{\"type\":\"text\",\"text\":{\"body\":\"\\\"quoted\\\"\"}," ENVELOPE "," CTX "}]", 1,
	  NULL },
	{ "object", "{\"type\":\"image\",\"image\":{\"link\":\"https://x.example/a.png\"}}",
	  "[{\"type\":\"image\",\"image\":{\"link\":\"https://x.example/a.png\"}," ENVELOPE ","
	  CTX "}]", 1, NULL },
	{ "object's own recipient is replaced",
	  "{\"type\":\"text\",\"text\":{\"body\":\"hi\"},\"to\":\"1999\","
	  "\"messaging_product\":\"x\",\"recipient_type\":\"group\"}",
	  "[{\"type\":\"text\",\"text\":{\"body\":\"hi\"},\"to\":\"" TO "\","
	  "\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\"," CTX "}]", 1,
	  NULL },
	{ "object sets its context", "{\"type\":\"text\",\"text\":{\"body\":\"hi\"},"
	  "\"context\":{\"message_id\":\"wamid.OTHER\"}}",
	  "[{\"type\":\"text\",\"text\":{\"body\":\"hi\"},\"context\":{\"message_id\":"
	  "\"wamid.OTHER\"}," ENVELOPE "}]", 1, NULL },
	{ "null context: no quote", "{\"type\":\"text\",\"text\":{\"body\":\"hi\"},"
	  "\"context\":null}",
	  "[{\"type\":\"text\",\"text\":{\"body\":\"hi\"}," ENVELOPE "}]", 1, NULL },
	{ "array of two", "[{\"type\":\"text\",\"text\":{\"body\":\"1\"}},\n"
	  " {\"type\":\"reaction\",\"reaction\":{\"message_id\":\"" MID "\",\"emoji\":\"x\"}}]\n",
	  "[{\"type\":\"text\",\"text\":{\"body\":\"1\"}," ENVELOPE "," CTX "},"
	  "{\"type\":\"reaction\",\"reaction\":{\"message_id\":\"" MID "\",\"emoji\":\"x\"},"
	  ENVELOPE "," CTX "}]", 2, NULL },
	{ "broken JSON object", "{\"type\":\"text\",", NULL, 0, "not valid JSON" },
	{ "broken JSON array", "[Auto] thanks", NULL, 0, "not valid JSON" },
	{ "garbage after JSON", "{\"type\":\"text\",\"text\":{\"body\":\"a\"}} x", NULL, 0,
	  "more after" },
	{ "no type", "{\"text\":{\"body\":\"a\"}}", NULL, 0, "no \"type\"" },
	{ "type without its member", "{\"type\":\"image\",\"text\":{}}", NULL, 0,
	  "has no \"image\" member" },
	{ "empty text body", "{\"type\":\"text\",\"text\":{\"body\":\"\"}}", NULL, 0,
	  "text.body" },
	{ "array item not an object", "[{\"type\":\"text\",\"text\":{\"body\":\"a\"}},3]",
	  NULL, 0, "(item 2) is not a JSON object" },
	{ "array of 11", "[{\"type\":\"text\",\"text\":{\"body\":\"a\"}},"
	  "{\"type\":\"text\",\"text\":{\"body\":\"a\"}},{\"type\":\"text\",\"text\":{\"body\":\"a\"}},"
	  "{\"type\":\"text\",\"text\":{\"body\":\"a\"}},{\"type\":\"text\",\"text\":{\"body\":\"a\"}},"
	  "{\"type\":\"text\",\"text\":{\"body\":\"a\"}},{\"type\":\"text\",\"text\":{\"body\":\"a\"}},"
	  "{\"type\":\"text\",\"text\":{\"body\":\"a\"}},{\"type\":\"text\",\"text\":{\"body\":\"a\"}},"
	  "{\"type\":\"text\",\"text\":{\"body\":\"a\"}},{\"type\":\"text\",\"text\":{\"body\":\"a\"}}]",
	  NULL, 0, "at most 10" },
	/* what json-c takes and the database's jsonb refuses: an invalid reply */
#define BODY_AND "{\"type\":\"text\",\"text\":{\"body\":\"x\"},\"biz_opaque_callback_data\":"
	{ "NaN (Python's json.dumps of a float nan)", BODY_AND "NaN}", NULL, 0,
	  "NaN and Infinity are not JSON" },
	{ "Infinity", BODY_AND "Infinity}", NULL, 0, "not valid JSON" },
	{ "-Infinity", BODY_AND "-Infinity}", NULL, 0, "not valid JSON" },
	{ "number out of a double's range", BODY_AND "1e999}", NULL, 0, "out of range" },
	{ "number under a double's range", BODY_AND "1e-999}", NULL, 0, "out of range" },
	{ "\\u0000 outside text.body", BODY_AND "\"a\\u0000b\"}", NULL, 0, "\\u0000" },
	{ "\\u0000 in a member name", "{\"type\":\"text\",\"text\":{\"body\":\"x\"},"
	  "\"a\\u0000\":1}", NULL, 0, "\\u0000" },
	{ "lone high surrogate", BODY_AND "\"\\ud800\"}", NULL, 0, "surrogate" },
	{ "lone low surrogate", BODY_AND "\"\\udc00x\"}", NULL, 0, "surrogate" },
	{ "bytes that are not UTF-8 in a string", BODY_AND "\"caf\xe9\"}", NULL, 0,
	  "not UTF-8" },
	{ "single-quoted string", BODY_AND "'x'}", NULL, 0, "not valid JSON" },
	{ "trailing comma", "[{\"type\":\"text\",\"text\":{\"body\":\"x\"}},]", NULL, 0,
	  "not valid JSON" },
	{ "leading zero", BODY_AND "01}", NULL, 0, "not valid JSON" },
	{ "raw tab in a string", BODY_AND "\"a\tb\"}", NULL, 0, "control character" },
	{ "paired surrogates, escapes and numbers are fine", BODY_AND
	  "[\"\\ud83d\\ude00\\n\\/\",-0.5e+3,0,1E2,true,false,null,{}]}",
	  "[{\"type\":\"text\",\"text\":{\"body\":\"x\"},\"biz_opaque_callback_data\":"
	  "[\"\xf0\x9f\x98\x80\\n/\",-0.5e+3,0,1E2,true,false,null,{}]," ENVELOPE "," CTX "}]", 1,
	  NULL },
	{ "invalid utf-8 text", "caf\xe9", NULL, 0, "UTF-8" },
	{ "overlong utf-8", "\xc0\xaf", NULL, 0, "UTF-8" },
};

static void
test_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];
		char *rec = NULL, err[256] = "";
		int n = -1, rc;

		rc = reply_parse(c->out, strlen(c->out), &TO_A, MID, &rec, &n, err, sizeof(err));
		if (c->want != NULL) {
			if (rc != 0 || strcmp(rec, c->want) != 0 || n != c->n)
				fail_msg("%s: rc %d n %d\n got  %s\n want %s\n err %s", c->name, rc,
				    n, rec ? rec : "(null)", c->want, err);
		} else {
			if (rc != -1 || rec != NULL || strstr(err, c->why) == NULL)
				fail_msg("%s: rc %d, err \"%s\", want \"%s\"", c->name, rc, err,
				    c->why);
		}
		free(rec);
	}
}

static void
test_text_limits(void **state)
{
	char *buf = malloc(REPLY_OUTPUT_MAX + 2), *rec = NULL, err[256];
	int n;

	(void)state;
	assert_non_null(buf);
	/* 4096 characters (two bytes each) pass, 4097 do not */
	for (n = 0; n < 4096; n++) {
		buf[2 * n] = (char)0xc3;
		buf[2 * n + 1] = (char)0xa9;
	}
	assert_int_equal(reply_parse(buf, 8192, &TO_A, MID, &rec, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	free(rec);
	buf[8192] = 'x';
	assert_int_equal(reply_parse(buf, 8193, &TO_A, MID, &rec, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "4097 characters"));
	/* over the output cap */
	memset(buf, 'a', REPLY_OUTPUT_MAX + 1);
	assert_int_equal(reply_parse(buf, REPLY_OUTPUT_MAX + 1, &TO_A, MID, &rec, &n, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "output over"));
	/* a NUL inside text */
	assert_int_equal(reply_parse("a\0b", 3, &TO_A, MID, &rec, &n, err, sizeof(err)), -1);
	free(buf);
}

static void
test_body_at(void **state)
{
	static const char out[] = "[{\"type\":\"text\",\"text\":{\"body\":\"1\"}},"
	    "{\"type\":\"text\",\"text\":{\"body\":\"2\"}}]";
	char *rec = NULL, *b, err[256];
	int n, count;

	(void)state;
	assert_int_equal(reply_parse(out, sizeof(out) - 1, &TO_A, MID, &rec, &n, err, sizeof(err)),
	    0);
	b = reply_body_at(rec, 1, &count);
	assert_int_equal(count, 2);
	assert_string_equal(b, "{\"type\":\"text\",\"text\":{\"body\":\"2\"}," ENVELOPE ","
	    CTX "}");
	free(b);
	assert_null(reply_body_at(rec, 2, NULL));
	assert_null(reply_body_at("not json", 0, &count));
	assert_int_equal(count, 0);
	free(rec);
}

/* A reply goes where wahook says: a BSUID alone in "recipient", a group
 * message to its group, whatever the program wrote. */
static void
test_addressed_by_wahook(void **state)
{
	static const struct address bsuid = { NULL, "US.13491208655302741918", NULL };
	static const struct address group = { TO, "US.1", "GRP1" };
	static const char out[] = "{\"type\":\"text\",\"text\":{\"body\":\"hi\"},"
	    "\"to\":\"1999\"}";
	char *rec = NULL, err[256];
	int n;

	(void)state;
	assert_int_equal(reply_parse(out, sizeof(out) - 1, &bsuid, MID, &rec, &n, err,
	    sizeof(err)), 0);
	assert_string_equal(rec, "[{\"type\":\"text\",\"text\":{\"body\":\"hi\"},"
	    "\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
	    "\"recipient\":\"US.13491208655302741918\"," CTX "}]");
	free(rec);
	assert_int_equal(reply_parse("hello", 5, &group, MID, &rec, &n, err, sizeof(err)), 0);
	assert_string_equal(rec, "[{\"type\":\"text\",\"text\":{\"body\":\"hello\"},"
	    "\"messaging_product\":\"whatsapp\",\"recipient_type\":\"group\","
	    "\"to\":\"GRP1\"," CTX "}]");
	free(rec);
}

static void
test_input(void **state)
{
	struct reply_input in = {
		"{\"from\":\"" TO "\",\"id\":\"" MID "\",\"type\":\"text\",\"text\":"
		"{\"body\":\"hi \\\"you\\\"\"}}", MID, TO, "US.1349", "@you", NULL,
		"106540352242922", "15550783881", NULL, NULL
	};
	size_t len;
	char *s = reply_input_json(&in, &len);

	(void)state;
	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	assert_string_equal(s, "{\"message\":{\"from\":\"" TO "\",\"id\":\"" MID "\","
	    "\"type\":\"text\",\"text\":{\"body\":\"hi \\\"you\\\"\"}},\"message_id\":\"" MID
	    "\",\"sender\":\"" TO "\",\"phone_number_id\":\"106540352242922\","
	    "\"user_id\":\"US.1349\",\"username\":\"@you\",\"group_id\":null,"
	    "\"display_phone_number\":\"15550783881\",\"profile_name\":null}\n");
	free(s);
	in.message_json = "[1]";
	assert_null(reply_input_json(&in, &len));
	in.message_json = "{broken";
	assert_null(reply_input_json(&in, &len));
}

static void
test_utf8(void **state)
{
	size_t n;

	(void)state;
	assert_int_equal(reply_utf8("a\xe2\x9c\x93", 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(reply_utf8("\xed\xa0\x80", 3, &n), -1);	/* surrogate */
	assert_int_equal(reply_utf8("\xe2\x9c", 2, &n), -1);		/* cut short */
	assert_int_equal(reply_utf8("\xf4\x90\x80\x80", 4, &n), -1);	/* > U+10FFFF */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_text_limits),
		cmocka_unit_test(test_body_at),
		cmocka_unit_test(test_input),
		cmocka_unit_test(test_addressed_by_wahook),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
