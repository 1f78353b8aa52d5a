/*
 * reply.c - the reply program's input and the meaning of its output (see
 * reply.h). The output is judged by its first non-blank byte: '{' or '[' must
 * be valid JSON, anything else is text. So a program's broken JSON fails
 * loudly (last_error) instead of reaching the customer as text. JSON is read
 * strictly (strict_json()): what the database's jsonb would refuse is an
 * invalid reply here, not a failed write later.
 */
#include "reply.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int
reply_utf8(const char *s, size_t len, size_t *nchars)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t n = 0;
	int more, i;
	unsigned int cp, min;

	while (p < end) {
		if (*p == 0)
			return -1;
		if (*p < 0x80) {
			p++;
			n++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			more = 1; cp = *p & 0x1fu; min = 0x80;
		} else if ((*p & 0xf0) == 0xe0) {
			more = 2; cp = *p & 0x0fu; min = 0x800;
		} else if ((*p & 0xf8) == 0xf0) {
			more = 3; cp = *p & 0x07u; min = 0x10000;
		} else
			return -1;
		if (end - p <= more)
			return -1;
		p++;
		for (i = 0; i < more; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (*p & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		n++;
	}
	*nchars = n;
	return 0;
}

static char *
dump(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);

	return s != NULL ? strdup(s) : NULL;
}

/* json_object_object_add takes v also on failure paths we must free: *ok tells. */
static void
add(json_object *o, const char *k, json_object *v, int *ok)
{
	if (v == NULL || json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		*ok = 0;
	}
}

static json_object *
str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

char *
reply_input_json(const struct reply_input *in, size_t *len)
{
	json_object *o = NULL, *msg = NULL;
	char *s = NULL, *line = NULL;
	size_t n;
	int ok = 1;

	*len = 0;
	if (in->message_json == NULL ||
	    (msg = json_tokener_parse(in->message_json)) == NULL ||
	    !json_object_is_type(msg, json_type_object) ||
	    (o = json_object_new_object()) == NULL)
		goto fail;
	add(o, "message", msg, &ok);
	msg = NULL;
	add(o, "message_id", json_object_new_string(in->message_id), &ok);
	add(o, "sender", json_object_new_string(in->sender), &ok);
	add(o, "phone_number_id", json_object_new_string(in->phone_number_id), &ok);
	/* null members are wanted here: json-c adds a NULL value as null */
	if (json_object_object_add(o, "user_id", str_or_null(in->user_id)) != 0 ||
	    json_object_object_add(o, "username", str_or_null(in->username)) != 0 ||
	    json_object_object_add(o, "group_id", str_or_null(in->group_id)) != 0 ||
	    json_object_object_add(o, "display_phone_number",
	    str_or_null(in->display_phone_number)) != 0 ||
	    json_object_object_add(o, "profile_name", str_or_null(in->profile_name)) != 0)
		ok = 0;
	if (ok && in->media_json != NULL)
		add(o, "media", json_tokener_parse(in->media_json), &ok);
	if (!ok || (s = dump(o)) == NULL)
		goto fail;
	n = strlen(s);
	if ((line = malloc(n + 2)) == NULL)
		goto fail;
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
fail:
	free(s);
	json_object_put(msg);
	json_object_put(o);
	return line;
}

/*
 * Makes o (an output object) a complete body for `to`, or says why it cannot
 * be one. o is modified in place.
 */
static int
complete(json_object *o, int idx, const struct address *to, const char *context_id,
    char *err, size_t errlen)
{
	json_object *type, *v, *body, *ctx = NULL;
	const char *t;
	size_t nchars;
	int ok = 1;
	char where[32] = "";

	if (idx >= 0)
		snprintf(where, sizeof(where), " (item %d)", idx + 1);
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "output%s is not a JSON object", where);
		return -1;
	}
	if (!json_object_object_get_ex(o, "type", &type) ||
	    !json_object_is_type(type, json_type_string) ||
	    json_object_get_string_len(type) == 0) {
		snprintf(err, errlen, "output%s has no \"type\" string", where);
		return -1;
	}
	t = json_object_get_string(type);
	if (!json_object_object_get_ex(o, t, &v) || v == NULL) {
		snprintf(err, errlen, "output%s of type \"%.40s\" has no \"%.40s\" member",
		    where, t, t);
		return -1;
	}
	if (strcmp(t, "text") == 0) {
		if (!json_object_is_type(v, json_type_object) ||
		    !json_object_object_get_ex(v, "body", &body) ||
		    !json_object_is_type(body, json_type_string) ||
		    reply_utf8(json_object_get_string(body),
		    (size_t)json_object_get_string_len(body), &nchars) == -1 ||
		    nchars == 0 || nchars > REPLY_TEXT_MAX) {
			snprintf(err, errlen, "output%s: text.body must be a string of 1 to "
			    "%d characters", where, REPLY_TEXT_MAX);
			return -1;
		}
	}
	/* where the reply goes is wahook's to say, not the program's */
	add(o, "messaging_product", json_object_new_string("whatsapp"), &ok);
	if (ok && address_apply(o, to) == -1)
		ok = 0;
	if (json_object_object_get_ex(o, "context", &v)) {
		if (v == NULL)		/* "context": null: do not quote */
			json_object_object_del(o, "context");
	} else {
		if ((ctx = json_object_new_object()) != NULL)
			add(ctx, "message_id", json_object_new_string(context_id), &ok);
		add(o, "context", ctx, &ok);
	}
	if (!ok) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static json_object *
text_message(const char *s, size_t len, char *err, size_t errlen)
{
	json_object *o = NULL, *t = NULL;
	size_t nchars;
	int ok = 1;

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	if (reply_utf8(s, len, &nchars) == -1) {
		snprintf(err, errlen, "output is not valid UTF-8 text (or holds a NUL byte)");
		return NULL;
	}
	if (nchars > REPLY_TEXT_MAX) {
		snprintf(err, errlen, "output is a text of %zu characters; at most %d go "
		    "in one message", nchars, REPLY_TEXT_MAX);
		return NULL;
	}
	if ((o = json_object_new_object()) == NULL)
		goto oom;
	add(o, "type", json_object_new_string("text"), &ok);
	if ((t = json_object_new_object()) != NULL)
		add(t, "body", json_object_new_string_len(s, (int)len), &ok);
	add(o, "text", t, &ok);
	if (ok)
		return o;
oom:
	json_object_put(o);
	snprintf(err, errlen, "out of memory");
	return NULL;
}

/*
 * The strict check: json-c's parser takes NaN, Infinity, 'single quotes',
 * trailing commas, \u0000, lone surrogates and bytes that are not UTF-8,
 * even with JSON_TOKENER_STRICT, and the database then refuses to record the
 * reply (jsonb: 22P02, 22P05) on every try. So the output is first checked
 * against RFC 8259 as jsonb reads it: strings of UTF-8 (the whole output is
 * checked first) without control characters or \u0000, with paired surrogate
 * escapes; numbers in its grammar that fit a double (no 1e999, no 1e-999);
 * true, false, null; at most STRICT_DEPTH levels deep (json-c's own limit).
 */
#define STRICT_DEPTH	32
#define STRICT_NUM_MAX	64	/* characters of one number */

struct scan {
	const char	*s;
	size_t		 len, pos;
	char		*err;
	size_t		 errlen;
};

static int
scan_bad(struct scan *sc, const char *what)
{
	snprintf(sc->err, sc->errlen, "output starts like JSON but is not valid JSON: %s "
	    "(byte %zu)", what, sc->pos);
	return -1;
}

static void
scan_blanks(struct scan *sc)
{
	while (sc->pos < sc->len && is_blank(sc->s[sc->pos]))
		sc->pos++;
}

static int
scan_is(struct scan *sc, char c)
{
	return sc->pos < sc->len && sc->s[sc->pos] == c;
}

static int
scan_digits(struct scan *sc)
{
	size_t p0 = sc->pos;

	while (sc->pos < sc->len && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9')
		sc->pos++;
	return sc->pos > p0 ? 0 : -1;
}

/* Four hex digits after \u at sc->pos; -1 if not. */
static long
scan_hex4(struct scan *sc)
{
	char buf[5], *end;
	long v;

	if (sc->len - sc->pos < 4)
		return -1;
	memcpy(buf, sc->s + sc->pos, 4);
	buf[4] = '\0';
	if (strspn(buf, "0123456789abcdefABCDEF") != 4)
		return -1;
	v = strtol(buf, &end, 16);
	sc->pos += 4;
	return v;
}

static int
scan_string(struct scan *sc)
{
	unsigned char c;
	long u, lo;

	sc->pos++;				/* the opening quote */
	while (sc->pos < sc->len) {
		c = (unsigned char)sc->s[sc->pos];
		if (c == '"') {
			sc->pos++;
			return 0;
		}
		if (c < 0x20)
			return scan_bad(sc, "a control character in a string");
		sc->pos++;
		if (c != '\\')
			continue;
		if (sc->pos == sc->len)
			break;
		c = (unsigned char)sc->s[sc->pos++];
		if (c != 'u') {
			if (strchr("\"\\/bfnrt", c) == NULL || c == '\0')
				return scan_bad(sc, "an unknown escape in a string");
			continue;
		}
		if ((u = scan_hex4(sc)) < 0)
			return scan_bad(sc, "a \\u escape without four hex digits");
		if (u == 0)
			return scan_bad(sc, "\\u0000 in a string (the database refuses it)");
		if (u >= 0xdc00 && u <= 0xdfff)
			return scan_bad(sc, "a lone low surrogate escape");
		if (u >= 0xd800 && u <= 0xdbff) {
			if (sc->len - sc->pos < 2 || sc->s[sc->pos] != '\\' ||
			    sc->s[sc->pos + 1] != 'u')
				return scan_bad(sc, "a lone high surrogate escape");
			sc->pos += 2;
			if ((lo = scan_hex4(sc)) < 0xdc00 || lo > 0xdfff)
				return scan_bad(sc, "a lone high surrogate escape");
		}
	}
	return scan_bad(sc, "a string without its closing quote");
}

static int
scan_number(struct scan *sc)
{
	char buf[STRICT_NUM_MAX + 1];
	size_t p0 = sc->pos, n;
	double d;

	if (scan_is(sc, '-'))
		sc->pos++;
	if (scan_is(sc, '0'))
		sc->pos++;
	else if (scan_digits(sc) == -1)
		return scan_bad(sc, "not a value (NaN and Infinity are not JSON)");
	if (scan_is(sc, '.')) {
		sc->pos++;
		if (scan_digits(sc) == -1)
			return scan_bad(sc, "a number without digits after its point");
	}
	if (scan_is(sc, 'e') || scan_is(sc, 'E')) {
		sc->pos++;
		if (scan_is(sc, '+') || scan_is(sc, '-'))
			sc->pos++;
		if (scan_digits(sc) == -1)
			return scan_bad(sc, "a number without digits in its exponent");
	}
	n = sc->pos - p0;
	if (n > STRICT_NUM_MAX)
		return scan_bad(sc, "a number of over 64 characters");
	memcpy(buf, sc->s + p0, n);
	buf[n] = '\0';
	errno = 0;
	d = strtod(buf, NULL);
	if (errno == ERANGE || !isfinite(d))
		return scan_bad(sc, "a number out of range");
	return 0;
}

/* One scalar value at sc->pos: a string, number, true, false or null. */
static int
scan_scalar(struct scan *sc)
{
	static const char *const words[] = { "true", "false", "null" };
	size_t i, n;

	if (scan_is(sc, '"'))
		return scan_string(sc);
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		n = strlen(words[i]);
		if (sc->len - sc->pos >= n && memcmp(sc->s + sc->pos, words[i], n) == 0) {
			sc->pos += n;
			return 0;
		}
	}
	return scan_number(sc);
}

/* A member's name and its colon, blanks around them. */
static int
scan_key(struct scan *sc)
{
	scan_blanks(sc);
	if (!scan_is(sc, '"'))
		return scan_bad(sc, "a member name that is not a double-quoted string");
	if (scan_string(sc) == -1)
		return -1;
	scan_blanks(sc);
	if (!scan_is(sc, ':'))
		return scan_bad(sc, "a member name without its colon");
	sc->pos++;
	return 0;
}

/* 0 when s (len bytes) is exactly one JSON value, blanks around it, that jsonb takes. */
static int
strict_json(const char *s, size_t len, char *err, size_t errlen)
{
	struct scan sc = { s, len, 0, err, errlen };
	char open[STRICT_DEPTH];
	int depth = 0;
	size_t nchars;
	char c;

	if (reply_utf8(s, len, &nchars) == -1)
		return scan_bad(&sc, "not UTF-8 (or a NUL byte)");
	for (;;) {
		/* a value */
		scan_blanks(&sc);
		if (scan_is(&sc, '{') || scan_is(&sc, '[')) {
			if (depth == STRICT_DEPTH)
				return scan_bad(&sc, "nested too deep");
			open[depth++] = sc.s[sc.pos++];
			scan_blanks(&sc);
			if (scan_is(&sc, open[depth - 1] == '{' ? '}' : ']')) {
				sc.pos++;
				depth--;
			} else {
				if (open[depth - 1] == '{' && scan_key(&sc) == -1)
					return -1;
				continue;
			}
		} else if (sc.pos == sc.len)
			return scan_bad(&sc, "the output ends where a value should be");
		else if (scan_scalar(&sc) == -1)
			return -1;
		/* after a value: a comma, or the ends of what holds it */
		for (;;) {
			scan_blanks(&sc);
			if (depth == 0) {
				if (sc.pos < sc.len) {
					snprintf(err, errlen, "output has more after its JSON value "
					    "(byte %zu)", sc.pos);
					return -1;
				}
				return 0;
			}
			if (sc.pos == sc.len)
				return scan_bad(&sc, "the output ends inside an object or array");
			c = sc.s[sc.pos++];
			if (c == (open[depth - 1] == '{' ? '}' : ']')) {
				depth--;
				continue;
			}
			if (c != ',')
				return scan_bad(&sc, "a character where a comma or the end was due");
			if (open[depth - 1] == '{' && scan_key(&sc) == -1)
				return -1;
			break;
		}
	}
}

/* Parses the whole of s as JSON (trailing blanks allowed); NULL with err if not. */
static json_object *
parse_all(const char *s, size_t len, char *err, size_t errlen)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = NULL;
	size_t end;

	if (tok == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		snprintf(err, errlen, "output starts like JSON but is not valid JSON: %s",
		    json_tokener_error_desc(json_tokener_get_error(tok)));
		json_object_put(o);
		o = NULL;
		goto done;
	}
	for (end = json_tokener_get_parse_end(tok); end < len && is_blank(s[end]); end++)
		;
	if (end < len) {
		snprintf(err, errlen, "output has more after its JSON value (byte %zu)", end);
		json_object_put(o);
		o = NULL;
	}
done:
	json_tokener_free(tok);
	return o;
}

int
reply_parse(const char *out, size_t len, const struct address *to, const char *context_id,
    char **recorded, int *n, char *err, size_t errlen)
{
	json_object *v = NULL, *arr = NULL, *item;
	size_t i = 0, k, count;
	int rc = -1;

	*recorded = NULL;
	*n = 0;
	if (len > REPLY_OUTPUT_MAX) {
		snprintf(err, errlen, "output over %d bytes", REPLY_OUTPUT_MAX);
		return -1;
	}
	while (i < len && is_blank(out[i]))
		i++;
	if ((arr = json_object_new_array()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (i == len)
		goto record;			/* empty: no reply */
	if (out[i] == '{' || out[i] == '[') {
		if (memchr(out, '\0', len) != NULL) {
			snprintf(err, errlen, "output holds a NUL byte");
			goto fail;
		}
		if (strict_json(out + i, len - i, err, errlen) == -1 ||
		    (v = parse_all(out + i, len - i, err, errlen)) == NULL)
			goto fail;
	} else if ((v = text_message(out, len, err, errlen)) == NULL)
		goto fail;
	if (json_object_is_type(v, json_type_array)) {
		count = json_object_array_length(v);
		if (count > REPLY_MSGS_MAX) {
			snprintf(err, errlen, "output is an array of %zu messages; at most %d",
			    count, REPLY_MSGS_MAX);
			goto fail;
		}
		for (k = 0; k < count; k++) {
			item = json_object_array_get_idx(v, k);
			if (item == NULL) {
				snprintf(err, errlen, "output (item %zu) is null", k + 1);
				goto fail;
			}
			if (complete(item, (int)k, to, context_id, err, errlen) == -1)
				goto fail;
			if (json_object_array_add(arr, json_object_get(item)) != 0) {
				json_object_put(item);
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
		}
	} else {
		if (complete(v, -1, to, context_id, err, errlen) == -1)
			goto fail;
		if (json_object_array_add(arr, v) != 0) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		v = NULL;	/* arr owns it */
	}
record:
	if ((*recorded = dump(arr)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	*n = (int)json_object_array_length(arr);
	rc = 0;
fail:
	json_object_put(v);
	json_object_put(arr);
	return rc;
}

char *
reply_body_at(const char *recorded, int i, int *n)
{
	json_object *arr = recorded != NULL ? json_tokener_parse(recorded) : NULL, *item;
	char *s = NULL;

	if (n != NULL)
		*n = 0;
	if (arr == NULL || !json_object_is_type(arr, json_type_array))
		goto done;
	if (n != NULL)
		*n = (int)json_object_array_length(arr);
	if (i >= 0 && (size_t)i < json_object_array_length(arr) &&
	    (item = json_object_array_get_idx(arr, (size_t)i)) != NULL)
		s = dump(item);
done:
	json_object_put(arr);
	return s;
}
