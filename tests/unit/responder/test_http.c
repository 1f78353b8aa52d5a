/*
 * test_http.c - cgi/responder/http.c on the paths that never reach PostgreSQL (the store
 * is NULL here): the GET verification, method dispatch, the body cap, the
 * signature gate, the fail-closed 500, and http_query_param(). What reaches the
 * database is proven by the integration tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "http.h"
#include "log.h"

#define SECRET "t0p-s3cret-app"
#define TOKEN "verify-me-42"
#define MAX_BODY 2048

/* The body source behind http_req.read: counts what was asked and given. */
struct reader {
	const char	*data;
	size_t		 len, pos;
	size_t		 chunk;		/* at most this many bytes per call (0: any) */
	int		 endless;	/* 'x' bytes forever */
	int		 fail_at_end;	/* -1 instead of 0 at the end */
	int		 calls;
	size_t		 given;
	size_t		 stall_at;	/* no byte past this offset arrives (0: off) */
	double		 deadline;	/* the last deadline asked for */
};

static long
read_cb(void *ctx, char *buf, size_t n, double deadline)
{
	struct reader *r = ctx;
	size_t k;

	r->calls++;
	r->deadline = deadline;
	if (r->stall_at != 0 && r->pos >= r->stall_at)
		return HTTP_READ_TIMEOUT;	/* the client stopped sending */
	assert_true(n > 0);
	if (r->chunk != 0 && n > r->chunk)
		n = r->chunk;
	if (r->endless) {
		memset(buf, 'x', n);
		r->given += n;
		return (long)n;
	}
	k = r->len - r->pos;
	if (k == 0)
		return r->fail_at_end ? -1 : 0;
	if (k > n)
		k = n;
	memcpy(buf, r->data + r->pos, k);
	r->pos += k;
	r->given += k;
	return (long)k;
}

static struct config cfg;
static struct http_state st;
static char logbuf[16384];

static int
setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.secrets[0].key = SECRET;
	cfg.secrets[0].len = strlen(SECRET);
	cfg.nsecrets = 1;
	cfg.verify_token = TOKEN;
	cfg.db = "";
	cfg.max_body = MAX_BODY;
	cfg.body_timeout = 10;
	cfg.body_min_rate = 16384;
	memset(&st, 0, sizeof(st));
	st.cfg = &cfg;
	st.batch = NULL;	/* these paths must never need it */
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	http_state_free(&st);
	return 0;
}

/* http_handle() with stderr captured into logbuf (its one log line). */
static void
handle(const struct http_req *req, struct http_resp *resp)
{
	FILE *f;
	int saved;
	size_t n;

	fflush(stderr);
	f = tmpfile();
	assert_non_null(f);
	saved = dup(STDERR_FILENO);
	assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
	memset(resp, 0, sizeof(*resp));
	http_handle(&st, req, resp);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(f);
	n = fread(logbuf, 1, sizeof(logbuf) - 1, f);
	fclose(f);
	logbuf[n] = '\0';
	/* one line, never the secret or the token */
	assert_true(n > 0 && logbuf[n - 1] == '\n');
	assert_null(memchr(logbuf, '\n', n - 1));
	assert_null(strstr(logbuf, SECRET));
	assert_null(strstr(logbuf, TOKEN));
}

static void
get(const char *query, struct http_resp *resp)
{
	struct reader r = { 0 };
	struct http_req req = { .method = "GET", .query = query, .read = read_cb, .ctx = &r };

	handle(&req, resp);
	assert_int_equal(r.calls, 0);	/* a GET body is never read */
}

static void
sign(const char *body, size_t len, char hdr[7 + 64 + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
	    (const unsigned char *)body, len, md, &mdlen));
	assert_int_equal(mdlen, 32);
	memcpy(hdr, "sha256=", 7);
	for (i = 0; i < mdlen; i++)
		snprintf(hdr + 7 + 2 * i, 3, "%02x", md[i]);
}

static void
assert_body(const struct http_resp *resp, const char *want)
{
	assert_non_null(resp->body);
	assert_int_equal(resp->body_len, strlen(want));
	assert_memory_equal(resp->body, want, resp->body_len);
}

/* ---- http_query_param ---- */

static void
test_query_param(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(http_query_param("a=1&b=22&c=333", "b", out, sizeof(out)), 2);
	assert_string_equal(out, "22");
	assert_int_equal(http_query_param("a=1&b=22&c=333", "a", out, sizeof(out)), 1);
	assert_string_equal(out, "1");
	assert_int_equal(http_query_param("a=1&b=22&c=333", "c", out, sizeof(out)), 3);
	assert_string_equal(out, "333");
	/* decoding */
	assert_int_equal(http_query_param("q=a+b%20c", "q", out, sizeof(out)), 5);
	assert_string_equal(out, "a b c");
	assert_int_equal(http_query_param("q=%41%62%2B%25%2b", "q", out, sizeof(out)), 5);
	assert_string_equal(out, "Ab+%+");
	assert_int_equal(http_query_param("q=%e2%82%AC", "q", out, sizeof(out)), 3);
	assert_string_equal(out, "\xe2\x82\xac");
	assert_int_equal(http_query_param("q=%26%3D", "q", out, sizeof(out)), 2);
	assert_string_equal(out, "&=");
	assert_int_equal(http_query_param("q=a%00b", "q", out, sizeof(out)), 3);
	assert_memory_equal(out, "a\0b", 4);
	/* empty value; the first of two */
	assert_int_equal(http_query_param("q=&r=1", "q", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(http_query_param("q=1&q=2", "q", out, sizeof(out)), 1);
	assert_string_equal(out, "1");
	/* names match whole */
	assert_int_equal(http_query_param("xq=1&qq=2&q=3", "q", out, sizeof(out)), 1);
	assert_string_equal(out, "3");
	assert_int_equal(http_query_param("hub.modex=subscribe", "hub.mode", out,
	    sizeof(out)), -1);
	assert_int_equal(http_query_param("hub%2Emode=subscribe", "hub.mode", out,
	    sizeof(out)), -1);
	/* absent */
	assert_int_equal(http_query_param("a=1", "b", out, sizeof(out)), -1);
	assert_int_equal(http_query_param("b&a=1", "b", out, sizeof(out)), -1);
	assert_int_equal(http_query_param("", "b", out, sizeof(out)), -1);
	assert_int_equal(http_query_param(NULL, "b", out, sizeof(out)), -1);
	assert_int_equal(http_query_param("&&b=2&", "b", out, sizeof(out)), 1);
	/* malformed escapes */
	assert_int_equal(http_query_param("q=%", "q", out, sizeof(out)), -1);
	assert_int_equal(http_query_param("q=%4", "q", out, sizeof(out)), -1);
	assert_int_equal(http_query_param("q=%4&r=1", "q", out, sizeof(out)), -1);
	assert_int_equal(http_query_param("q=%zz", "q", out, sizeof(out)), -1);
	assert_int_equal(http_query_param("q=%g0", "q", out, sizeof(out)), -1);
}

static void
test_query_param_outlen(void **state)
{
	char out[16];

	(void)state;
	/* outlen counts the NUL: 3 chars need 4 */
	memset(out, '#', sizeof(out));
	assert_int_equal(http_query_param("q=abc", "q", out, 4), 3);
	assert_string_equal(out, "abc");
	memset(out, '#', sizeof(out));
	assert_int_equal(http_query_param("q=abcd", "q", out, 4), -1);
	assert_int_equal(out[4], '#');	/* nothing written past outlen */
	assert_int_equal(out[3], '#');
	memset(out, '#', sizeof(out));
	assert_int_equal(http_query_param("q=%41%41%41%41", "q", out, 4), -1);
	assert_int_equal(out[4], '#');
	assert_int_equal(http_query_param("q=", "q", out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(http_query_param("q=a", "q", out, 1), -1);
	assert_int_equal(http_query_param("q=", "q", out, 0), -1);
}

/* ---- GET: the subscription handshake ---- */

static void
test_get_verification_ok(void **state)
{
	struct http_resp resp;

	(void)state;
	get("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=" TOKEN, &resp);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.reason, "OK");
	assert_body(&resp, "1158201444");	/* the challenge is the whole body */
	assert_null(resp.extra_header);
	assert_non_null(strstr(logbuf, "status=200"));

	/* any order, encoded challenge and token */
	get("hub.challenge=a%20b+c&hub.verify_token=verify%2Dme%2D42&hub.mode=subscribe",
	    &resp);
	assert_int_equal(resp.status, 200);
	assert_body(&resp, "a b c");
}

static void
test_get_verification_refused(void **state)
{
	static const char *bad[] = {
		"",
		"hub.mode=subscribe&hub.challenge=1",			/* no token */
		"hub.challenge=1&hub.verify_token=" TOKEN,		/* no mode */
		"hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=" TOKEN,
		"hub.mode=Subscribe&hub.challenge=1&hub.verify_token=" TOKEN,
		"hub.mode=subscribe&hub.challenge=1&hub.verify_token=verify-me-4",
		"hub.mode=subscribe&hub.challenge=1&hub.verify_token=verify-me-421",
		"hub.mode=subscribe&hub.challenge=1&hub.verify_token=VERIFY-ME-42",
		"hub.mode=subscribe&hub.challenge=1&hub.verify_token=",
		"hub.mode=subscribe&hub.challenge=1&hub.verify_token=verify-me-42%00",
		"hub.mode=subscribe&hub.challenge=1&hub.verify_token=%zz",
		"hub.mode=subscribe&hub.verify_token=" TOKEN,		/* no challenge */
		"hub.mode=subscribe&hub.challenge=&hub.verify_token=" TOKEN,
		"hub.mode=subscribe&hub.challenge=%4&hub.verify_token=" TOKEN,
	};
	struct http_resp resp;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		get(bad[i], &resp);
		if (resp.status != 403)
			fail_msg("GET ?%s: %d, want 403", bad[i], resp.status);
		assert_true(resp.body_len == 0 || strstr(resp.body, "1158201444") == NULL);
		assert_non_null(strstr(logbuf, "status=403"));
		assert_non_null(strstr(logbuf, "level=warn"));
	}
	{
		struct reader r = { 0 };
		struct http_req req = { .method = "GET", .query = NULL, .read = read_cb,
		    .ctx = &r };

		handle(&req, &resp);
		assert_int_equal(resp.status, 403);
	}
}

static void
test_get_challenge_too_long(void **state)
{
	char q[2048];
	struct http_resp resp;
	int n;

	(void)state;
	n = snprintf(q, sizeof(q), "hub.mode=subscribe&hub.verify_token=" TOKEN
	    "&hub.challenge=");
	assert_true(n > 0);
	memset(q + n, '7', sizeof(st.challenge));	/* one more than fits */
	q[(size_t)n + sizeof(st.challenge)] = '\0';
	get(q, &resp);
	assert_int_equal(resp.status, 403);
	q[(size_t)n + sizeof(st.challenge) - 1] = '\0';	/* exactly fits */
	get(q, &resp);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body_len, sizeof(st.challenge) - 1);
}

static void
test_get_without_token_configured(void **state)
{
	struct http_resp resp;

	(void)state;
	cfg.verify_token = NULL;
	get("hub.mode=subscribe&hub.challenge=1&hub.verify_token=", &resp);
	assert_int_equal(resp.status, 403);
	get("hub.mode=subscribe&hub.challenge=1&hub.verify_token=(null)", &resp);
	assert_int_equal(resp.status, 403);
	assert_non_null(strstr(logbuf, "WAHOOK_VERIFY_TOKEN"));
}

/* ---- other methods ---- */

static void
test_other_methods(void **state)
{
	static const char *methods[] = { "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
	    "get", "post", "", "POST " };
	struct http_resp resp;
	size_t i;

	(void)state;
	for (i = 0; i <= sizeof(methods) / sizeof(methods[0]); i++) {
		struct reader r = { .data = "{}", .len = 2 };
		struct http_req req = { .method = i < sizeof(methods) / sizeof(methods[0]) ?
		    methods[i] : NULL, .query = "hub.mode=subscribe", .content_length = "2",
		    .read = read_cb, .ctx = &r };

		handle(&req, &resp);
		if (resp.status != 405)
			fail_msg("method \"%s\": %d, want 405", req.method ? req.method :
			    "(null)", resp.status);
		assert_non_null(resp.extra_header);
		assert_string_equal(resp.extra_header, "Allow: GET, POST");
		assert_int_equal(r.calls, 0);
	}
}

/* ---- POST paths before the database ---- */

static void
post(const char *sig, const char *cl, struct reader *r, struct http_resp *resp)
{
	struct http_req req = { .method = "POST", .content_length = cl, .signature = sig,
	    .read = read_cb, .ctx = r };

	handle(&req, resp);
}

static void
test_post_bad_signature(void **state)
{
	static const char body[] = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}";
	char good[72], bad[72], cl[16];
	struct http_resp resp;
	struct reader r;

	(void)state;
	sign(body, sizeof(body) - 1, good);
	memcpy(bad, good, sizeof(bad));
	bad[10] = bad[10] == '0' ? '1' : '0';
	snprintf(cl, sizeof(cl), "%zu", sizeof(body) - 1);

	r = (struct reader){ .data = body, .len = sizeof(body) - 1 };
	post(bad, cl, &r, &resp);
	assert_int_equal(resp.status, 401);
	assert_non_null(strstr(logbuf, "signature=mismatch"));
	assert_non_null(strstr(logbuf, "level=warn"));

	r = (struct reader){ .data = body, .len = sizeof(body) - 1 };
	post(NULL, cl, &r, &resp);
	assert_int_equal(resp.status, 401);
	assert_non_null(strstr(logbuf, "signature=missing"));

	r = (struct reader){ .data = body, .len = sizeof(body) - 1 };
	post("sha1=0123", cl, &r, &resp);
	assert_int_equal(resp.status, 401);
	assert_non_null(strstr(logbuf, "signature=malformed"));

	/* the right signature over other bytes: one byte more in the body */
	r = (struct reader){ .data = "{\"object\":\"whatsapp_business_account\","
	    "\"entry\":[] }", .len = sizeof(body) };
	snprintf(cl, sizeof(cl), "%zu", sizeof(body));
	post(good, cl, &r, &resp);
	assert_int_equal(resp.status, 401);
	/* the body is never echoed into the log */
	assert_null(strstr(logbuf, "whatsapp_business_account"));
}

/* Signed, valid, not WhatsApp: acknowledged without the database. */
static void
test_post_signed_other_object(void **state)
{
	static const char body[] = "{\"object\":\"page\",\"entry\":[{\"id\":\"1\"}]}";
	char sig[72], cl[16], upper[72];
	struct http_resp resp;
	struct reader r;
	size_t i;

	(void)state;
	sign(body, sizeof(body) - 1, sig);
	snprintf(cl, sizeof(cl), "%zu", sizeof(body) - 1);
	r = (struct reader){ .data = body, .len = sizeof(body) - 1 };
	post(sig, cl, &r, &resp);
	assert_int_equal(resp.status, 200);
	assert_body(&resp, "EVENT_RECEIVED");
	assert_int_equal(r.given, sizeof(body) - 1);

	/* read in 3-byte pieces, no Content-Length (chunked), upper-case hex */
	memcpy(upper, sig, sizeof(upper));
	for (i = 7; upper[i] != '\0'; i++)
		if (upper[i] >= 'a' && upper[i] <= 'f')
			upper[i] = (char)(upper[i] - 'a' + 'A');
	r = (struct reader){ .data = body, .len = sizeof(body) - 1, .chunk = 3 };
	post(upper, NULL, &r, &resp);
	assert_int_equal(resp.status, 200);
	assert_int_equal(r.given, sizeof(body) - 1);
	assert_true(r.calls >= (int)((sizeof(body) - 1) / 3));

	/* exactly at the cap is allowed */
	{
		char *big = malloc(MAX_BODY), bsig[72];
		int n;

		assert_non_null(big);
		n = snprintf(big, MAX_BODY, "{\"object\":\"page\",\"pad\":\"");
		memset(big + n, 'p', MAX_BODY - (size_t)n - 2);
		memcpy(big + MAX_BODY - 2, "\"}", 2);
		sign(big, MAX_BODY, bsig);
		snprintf(cl, sizeof(cl), "%d", MAX_BODY);
		r = (struct reader){ .data = big, .len = MAX_BODY };
		post(bsig, cl, &r, &resp);
		assert_int_equal(resp.status, 200);
		r = (struct reader){ .data = big, .len = MAX_BODY, .chunk = 100 };
		post(bsig, NULL, &r, &resp);
		assert_int_equal(resp.status, 200);
		free(big);
	}
}

static void
test_post_too_large(void **state)
{
	char cl[32];
	struct http_resp resp;
	struct reader r;

	(void)state;
	/* Content-Length over the cap: refused before a single read */
	snprintf(cl, sizeof(cl), "%d", MAX_BODY + 1);
	r = (struct reader){ .endless = 1 };
	post("sha256=00", cl, &r, &resp);
	assert_int_equal(resp.status, 413);
	assert_int_equal(r.calls, 0);
	assert_non_null(strstr(logbuf, "WAHOOK_MAX_BODY"));

	r = (struct reader){ .endless = 1 };
	post(NULL, "3000000000", &r, &resp);
	assert_int_equal(resp.status, 413);
	assert_int_equal(r.calls, 0);

	r = (struct reader){ .endless = 1 };
	post(NULL, "18446744073709551615", &r, &resp);
	assert_int_equal(resp.status, 413);
	assert_int_equal(r.calls, 0);

	/* no Content-Length: read one byte past the cap, then stop */
	r = (struct reader){ .endless = 1 };
	post(NULL, NULL, &r, &resp);
	assert_int_equal(resp.status, 413);
	assert_true(r.given <= MAX_BODY + 1);
	assert_true(r.given > MAX_BODY);

	r = (struct reader){ .endless = 1 };
	post(NULL, "", &r, &resp);
	assert_int_equal(resp.status, 413);
	assert_true(r.given <= MAX_BODY + 1);
}

static void
test_post_short_body(void **state)
{
	static const char body[] = "{\"object\":\"page\"}";
	char sig[72];
	struct http_resp resp;
	struct reader r;

	(void)state;
	sign(body, sizeof(body) - 1, sig);
	/* the client promised 100 bytes and sent 17 */
	r = (struct reader){ .data = body, .len = sizeof(body) - 1 };
	post(sig, "100", &r, &resp);
	assert_int_equal(resp.status, 400);
	assert_non_null(strstr(logbuf, "shorter"));
	/* a read error */
	r = (struct reader){ .data = body, .len = 5, .fail_at_end = 1 };
	post(sig, "17", &r, &resp);
	assert_int_equal(resp.status, 400);
	r = (struct reader){ .data = body, .len = 5, .fail_at_end = 1 };
	post(sig, NULL, &r, &resp);
	assert_int_equal(resp.status, 400);
}

/* A body that stops coming: 408, the connection closed, the reason logged,
 * and the deadlines asked of the reader follow WAHOOK_BODY_MIN_RATE and
 * WAHOOK_BODY_TIMEOUT. */
static void
test_post_slow_body(void **state)
{
	static char body[1500];
	struct http_resp resp;
	struct reader r;
	double t0;

	(void)state;
	memset(body, 'x', sizeof(body));
	/* the first second is free; then 1000 bytes a second */
	cfg.body_min_rate = 1000;
	t0 = log_now_ms();
	r = (struct reader){ .data = body, .len = sizeof(body), .chunk = 1000,
	    .stall_at = 1000 };
	post("sha256=00", "1500", &r, &resp);
	assert_int_equal(resp.status, 408);
	assert_int_equal(resp.close, 1);
	assert_null(resp.extra_header);
	assert_int_equal(r.calls, 2);
	/* second read: 1000 bytes in hand may take until t0 + 1 s + 1 s */
	assert_true(r.deadline > t0 + 1900 && r.deadline < log_now_ms() + 2100);
	assert_non_null(strstr(logbuf, "status=408"));
	assert_non_null(strstr(logbuf, "WAHOOK_BODY_MIN_RATE"));
	assert_non_null(strstr(logbuf, "bytes=1000"));

	/* without a minimum rate the whole-body deadline is what is left */
	cfg.body_min_rate = 0;
	t0 = log_now_ms();
	r = (struct reader){ .data = body, .len = sizeof(body), .stall_at = 1 };
	post(NULL, NULL, &r, &resp);
	assert_int_equal(resp.status, 408);
	assert_true(r.deadline > t0 + 9900 && r.deadline < log_now_ms() + 10100);
	assert_non_null(strstr(logbuf, "WAHOOK_BODY_TIMEOUT"));
	cfg.body_min_rate = 16384;

	/* a 413 lets the front end take the rest (nginx sends it whole and
	 * answers 502 to a backend that will not read it); a 401 read it all */
	r = (struct reader){ .endless = 1 };
	post(NULL, "999999999", &r, &resp);
	assert_int_equal(resp.status, 413);
	assert_int_equal(resp.close, 0);
	r = (struct reader){ .data = body, .len = 100 };
	post("sha256=00", "100", &r, &resp);
	assert_int_equal(resp.status, 401);
	assert_int_equal(resp.close, 0);
}

static void
test_post_bad_content_length(void **state)
{
	static const char *bad[] = {
		"12x", "-1", "-0", "+1", "x", " 1", "\t1", "0x10", "1 ",
	};
	struct http_resp resp;
	struct reader r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = (struct reader){ .data = "{}", .len = 2 };
		post("sha256=00", bad[i], &r, &resp);
		if (resp.status != 400)
			fail_msg("Content-Length \"%s\": %d, want 400", bad[i], resp.status);
		assert_int_equal(r.calls, 0);
	}
}

static void
test_post_without_secret(void **state)
{
	static const char body[] = "{\"object\":\"page\"}";
	char sig[72];
	struct http_resp resp;
	struct reader r;

	(void)state;
	sign(body, sizeof(body) - 1, sig);
	cfg.nsecrets = 0;
	r = (struct reader){ .data = body, .len = sizeof(body) - 1 };
	post(sig, "17", &r, &resp);
	assert_int_equal(resp.status, 500);
	assert_int_equal(r.calls, 0);	/* fail closed, read nothing */
	assert_non_null(strstr(logbuf, "level=error"));
	assert_non_null(strstr(logbuf, "WAHOOK_APP_SECRET"));
	/* GET still works */
	get("hub.mode=subscribe&hub.challenge=ok&hub.verify_token=" TOKEN, &resp);
	assert_int_equal(resp.status, 200);
}

/* Many requests on one state: buffers are reused and released (valgrind). */
static void
test_state_reuse(void **state)
{
	static const char body[] = "{\"object\":\"page\"}";
	char sig[72];
	struct http_resp resp;
	struct reader r;
	int i;

	(void)state;
	sign(body, sizeof(body) - 1, sig);
	cfg.max_body = 4 * 1024 * 1024;
	for (i = 0; i < 5; i++) {
		/* a large chunked body grows the buffer past what is kept */
		r = (struct reader){ .endless = 1 };
		cfg.max_body = 2 * 1024 * 1024;
		post(NULL, NULL, &r, &resp);
		assert_int_equal(resp.status, 413);
		r = (struct reader){ .data = body, .len = sizeof(body) - 1 };
		post(sig, "17", &r, &resp);
		assert_int_equal(resp.status, 200);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_query_param),
		T(test_query_param_outlen),
		T(test_get_verification_ok),
		T(test_get_verification_refused),
		T(test_get_challenge_too_long),
		T(test_get_without_token_configured),
		T(test_other_methods),
		T(test_post_bad_signature),
		T(test_post_signed_other_object),
		T(test_post_too_large),
		T(test_post_short_body),
		T(test_post_slow_body),
		T(test_post_bad_content_length),
		T(test_post_without_secret),
		T(test_state_reuse),
	};

	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
