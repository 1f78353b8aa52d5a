/*
 * test_graph.c - cgi/drainer/graph.c's pure parts: the classification of Graph API
 * answers (decided on HTTP status and error.code, never the message text), the
 * phone_number_id check and the request bodies, byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "graph.h"

struct ccase {
	const char	*name;
	enum graph_step	 step;
	long		 http;
	const char	*body;
	enum graph_class want;
	long		 code;
	int		 rate_limited;
	int		 no_wamid;
};

#define ERR(code, extra) "{\"error\":{\"message\":\"text that must not matter\"," \
	"\"type\":\"OAuthException\",\"code\":" #code extra ",\"fbtrace_id\":\"A1\"}}"

static const struct ccase cases[] = {
	{ "read ok", GRAPH_READ, 200, "{\"success\":true}", GRAPH_OK, GRAPH_NO_CODE, 0, 0 },
	{ "reply ok", GRAPH_REPLY, 200, "{\"messaging_product\":\"whatsapp\",\"contacts\":"
	  "[{\"input\":\"1\",\"wa_id\":\"1\"}],\"messages\":[{\"id\":\"wamid.X1\"}]}",
	  GRAPH_OK, GRAPH_NO_CODE, 0, 0 },
	/* a 2xx is an acceptance, readable wamid or not: never sent again */
	{ "reply 200 without id", GRAPH_REPLY, 200, "{\"success\":true}", GRAPH_OK,
	  GRAPH_NO_CODE, 0, 1 },
	{ "reply 200 not json", GRAPH_REPLY, 200, "<html>", GRAPH_OK, GRAPH_NO_CODE, 0, 1 },
	{ "reply 201 empty", GRAPH_REPLY, 201, "", GRAPH_OK, GRAPH_NO_CODE, 0, 1 },
	{ "read 200 html", GRAPH_READ, 200, "<html>", GRAPH_OK, GRAPH_NO_CODE, 0, 0 },
	{ "503 html", GRAPH_READ, 503, "<html>busy</html>", GRAPH_TRANSIENT, GRAPH_NO_CODE, 0, 0 },
	{ "500 code 1", GRAPH_READ, 500, ERR(1, ""), GRAPH_TRANSIENT, 1, 0, 0 },
	{ "400 code 2", GRAPH_READ, 400, ERR(2, ""), GRAPH_TRANSIENT, 2, 0, 0 },
	{ "400 code 4", GRAPH_READ, 400, ERR(4, ""), GRAPH_TRANSIENT, 4, 0, 0 },
	{ "400 80007", GRAPH_REPLY, 400, ERR(80007, ""), GRAPH_TRANSIENT, 80007, 0, 0 },
	{ "429 130429", GRAPH_REPLY, 429, ERR(130429, ""), GRAPH_TRANSIENT, 130429, 1, 0 },
	{ "400 130429", GRAPH_REPLY, 400, ERR(130429, ""), GRAPH_TRANSIENT, 130429, 1, 0 },
	{ "429 no body", GRAPH_REPLY, 429, "", GRAPH_TRANSIENT, GRAPH_NO_CODE, 1, 0 },
	{ "400 131000", GRAPH_REPLY, 400, ERR(131000, ""), GRAPH_TRANSIENT, 131000, 0, 0 },
	{ "400 131016", GRAPH_REPLY, 400, ERR(131016, ""), GRAPH_TRANSIENT, 131016, 0, 0 },
	{ "400 133004", GRAPH_REPLY, 400, ERR(133004, ""), GRAPH_TRANSIENT, 133004, 0, 0 },
	{ "400 is_transient", GRAPH_REPLY, 400, ERR(99999, ",\"is_transient\":true"),
	  GRAPH_TRANSIENT, 99999, 0, 0 },
	{ "400 131056", GRAPH_REPLY, 400, ERR(131056, ""), GRAPH_PAIR_RATE, 131056, 0, 0 },
	{ "401 190", GRAPH_READ, 401, ERR(190, ",\"error_subcode\":463"), GRAPH_AUTH, 190, 0, 0 },
	{ "401 no body", GRAPH_READ, 401, "", GRAPH_AUTH, GRAPH_NO_CODE, 0, 0 },
	{ "400 190", GRAPH_READ, 400, ERR(190, ""), GRAPH_AUTH, 190, 0, 0 },
	{ "400 code 0", GRAPH_READ, 400, ERR(0, ""), GRAPH_AUTH, 0, 0, 0 },
	{ "403 code 10", GRAPH_READ, 403, ERR(10, ""), GRAPH_AUTH, 10, 0, 0 },
	{ "403 code 200", GRAPH_READ, 403, ERR(200, ""), GRAPH_AUTH, 200, 0, 0 },
	{ "403 code 299", GRAPH_READ, 403, ERR(299, ""), GRAPH_AUTH, 299, 0, 0 },
	{ "400 100", GRAPH_READ, 400, ERR(100, ""), GRAPH_PERMANENT, 100, 0, 0 },
	{ "400 131008", GRAPH_REPLY, 400, ERR(131008, ""), GRAPH_PERMANENT, 131008, 0, 0 },
	{ "400 131009", GRAPH_READ, 400, ERR(131009, ""), GRAPH_PERMANENT, 131009, 0, 0 },
	{ "400 131026", GRAPH_REPLY, 400, ERR(131026, ""), GRAPH_PERMANENT, 131026, 0, 0 },
	{ "400 131047", GRAPH_REPLY, 400, ERR(131047, ""), GRAPH_PERMANENT, 131047, 0, 0 },
	{ "400 131051", GRAPH_REPLY, 400, ERR(131051, ""), GRAPH_PERMANENT, 131051, 0, 0 },
	{ "400 132001", GRAPH_REPLY, 400, ERR(132001, ""), GRAPH_PERMANENT, 132001, 0, 0 },
	/* no Graph error object: a proxy or a wrong URL answered, not Meta */
	{ "404 no body", GRAPH_REPLY, 404, "", GRAPH_CONFIG, GRAPH_NO_CODE, 0, 0 },
	{ "404 html", GRAPH_REPLY, 404, "<html><h1>Not Found</h1></html>", GRAPH_CONFIG,
	  GRAPH_NO_CODE, 0, 0 },
	{ "403 html", GRAPH_READ, 403, "<html>Forbidden</html>", GRAPH_CONFIG,
	  GRAPH_NO_CODE, 0, 0 },
	{ "407 proxy", GRAPH_READ, 407, "<html>Proxy Authentication Required</html>",
	  GRAPH_CONFIG, GRAPH_NO_CODE, 0, 0 },
	{ "400 html", GRAPH_REPLY, 400, "<html>Bad Request</html>", GRAPH_CONFIG,
	  GRAPH_NO_CODE, 0, 0 },
	{ "400 json, no error", GRAPH_REPLY, 400, "{\"message\":\"bad\"}", GRAPH_CONFIG,
	  GRAPH_NO_CODE, 0, 0 },
	{ "404 graph error", GRAPH_REPLY, 404, ERR(100, ""), GRAPH_PERMANENT, 100, 0, 0 },
	{ "400 quoted code", GRAPH_REPLY, 400, "{\"error\":{\"code\":\"131047\"}}",
	  GRAPH_PERMANENT, 131047, 0, 0 },
	{ "500 with 131047", GRAPH_REPLY, 500, ERR(131047, ""), GRAPH_PERMANENT, 131047, 0, 0 },
	{ "408", GRAPH_READ, 408, "", GRAPH_TRANSIENT, GRAPH_NO_CODE, 0, 0 },
	{ "302", GRAPH_READ, 302, "", GRAPH_CONFIG, GRAPH_NO_CODE, 0, 0 },
	{ "200 with error", GRAPH_READ, 200, ERR(131000, ""), GRAPH_TRANSIENT, 131000, 0, 0 },
};

static void
test_classify_table(void **state)
{
	struct graph_result r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ccase *c = &cases[i];

		memset(&r, 0x5a, sizeof(r));
		if (graph_classify(c->step, c->http, c->body, strlen(c->body), 0, &r) != c->want)
			fail_msg("%s: got %s, want %s", c->name, graph_class_name(r.cls),
			    graph_class_name(c->want));
		if (r.code != c->code)
			fail_msg("%s: code %ld, want %ld", c->name, r.code, c->code);
		if (r.rate_limited != c->rate_limited)
			fail_msg("%s: rate_limited %d", c->name, r.rate_limited);
		if (r.cls == GRAPH_OK && r.no_wamid != c->no_wamid)
			fail_msg("%s: no_wamid %d", c->name, r.no_wamid);
		assert_int_equal(r.http, c->http);
		assert_true(strlen(r.msg) < sizeof(r.msg));
	}
}

static void
test_classify_details(void **state)
{
	struct graph_result r;
	const char *b = "{\"messages\":[{\"id\":\"wamid.HBgLMTIzNDU2Nzg5MA==\"}]}";
	const char *e = "{\"error\":{\"message\":\"(#131047) Re-engagement\\nmessage\","
	    "\"code\":131047,\"error_subcode\":2494010}}";

	(void)state;
	assert_int_equal(graph_classify(GRAPH_REPLY, 200, b, strlen(b), 0, &r), GRAPH_OK);
	assert_string_equal(r.reply_id, "wamid.HBgLMTIzNDU2Nzg5MA==");
	assert_int_equal(r.no_wamid, 0);
	/* cut at the cap: accepted, and the row says why there is no wamid */
	assert_int_equal(graph_classify(GRAPH_REPLY, 200, b, strlen(b), 1, &r), GRAPH_OK);
	assert_int_equal(r.no_wamid, 1);
	assert_string_equal(r.reply_id, "");
	assert_non_null(strstr(r.msg, "over 64 KiB"));
	assert_int_equal(graph_classify(GRAPH_REPLY, 200, "{}", 2, 0, &r), GRAPH_OK);
	assert_non_null(strstr(r.msg, "accepted (HTTP 200) but the wamid could not be read"));
	assert_int_equal(graph_classify(GRAPH_REPLY, 400, e, strlen(e), 0, &r), GRAPH_PERMANENT);
	assert_int_equal(r.subcode, 2494010);
	/* control characters from outside never reach last_error raw */
	assert_string_equal(r.msg, "(#131047) Re-engagement?message");
	/* no message: the status says what happened */
	assert_int_equal(graph_classify(GRAPH_READ, 503, "oops", 4, 0, &r), GRAPH_TRANSIENT);
	assert_string_equal(r.msg, "HTTP 503 (answer is not JSON)");
	/* a NULL body */
	assert_int_equal(graph_classify(GRAPH_READ, 204, NULL, 0, 0, &r), GRAPH_OK);
}

/* Only digits go into the URL path: a row can never aim a POST elsewhere. */
static void
test_id_valid(void **state)
{
	static const char *const good[] = { "106540352242922", "1",
	    "12345678901234567890123456789012" };
	static const char *const bad[] = { "", "..", ".", "1.2", "../x", "%2e%2e", "1/2",
	    "abc", "106540352242922 ", "-1", "+1", "1e5", "\xd9\xa1",
	    "123456789012345678901234567890123" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!graph_id_valid(good[i]))
			fail_msg("refused %s", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (graph_id_valid(bad[i]))
			fail_msg("accepted %s", bad[i]);
}

static void
test_bodies(void **state)
{
	char *s;

	(void)state;
	s = graph_body_read("wamid.ABC", 0);
	assert_string_equal(s, "{\"messaging_product\":\"whatsapp\",\"status\":\"read\","
	    "\"message_id\":\"wamid.ABC\"}");
	free(s);
	s = graph_body_read("wamid.ABC", 1);
	assert_string_equal(s, "{\"messaging_product\":\"whatsapp\",\"status\":\"read\","
	    "\"message_id\":\"wamid.ABC\",\"typing_indicator\":{\"type\":\"text\"}}");
	free(s);
	/* a BSUID alone goes in "recipient", never "to" */
	s = graph_body_reply(&(struct address){ NULL, "US.13491208655302741918", NULL },
	    "say \"hi\"\n\\ </x> \xc3\xa9", "wamid.A/B");
	assert_string_equal(s, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":"
	    "\"individual\",\"recipient\":\"US.13491208655302741918\",\"type\":\"text\","
	    "\"text\":{\"body\":\"say \\\"hi\\\"\\n\\\\ </x> \xc3\xa9\"},\"context\":"
	    "{\"message_id\":\"wamid.A/B\"}}");
	free(s);
	/* the phone number, when known, is "to" (Meta prefers it to the BSUID) */
	s = graph_body_reply(&(struct address){ "16505551234", "US.1349", NULL }, "ok",
	    "wamid.X");
	assert_string_equal(s, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":"
	    "\"individual\",\"to\":\"16505551234\",\"type\":\"text\",\"text\":"
	    "{\"body\":\"ok\"},\"context\":{\"message_id\":\"wamid.X\"}}");
	free(s);
	/* a group message is answered in the group */
	s = graph_body_reply(&(struct address){ "16505551234", "US.1349", "GRP1" }, "ok",
	    "wamid.G");
	assert_string_equal(s, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":"
	    "\"group\",\"to\":\"GRP1\",\"type\":\"text\",\"text\":"
	    "{\"body\":\"ok\"},\"context\":{\"message_id\":\"wamid.G\"}}");
	free(s);
	/* nobody to address: no body */
	assert_null(graph_body_reply(&(struct address){ NULL, NULL, NULL }, "ok", "w"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify_table),
		cmocka_unit_test(test_classify_details),
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_bodies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
