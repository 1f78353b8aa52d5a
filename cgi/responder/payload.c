/*
 * payload.c - the webhook walker (see payload.h). Strict on what we store
 * (ids, senders, timestamps must be well-typed, else that item alone is
 * quarantined), lenient on what we pass through (unknown types, unknown
 * fields, extra keys). doc/meta-webhooks.md: every entry, every change, every
 * message; a person is known by phone number, by business-scoped user id
 * (BSUID), or both; timestamps are seconds as strings.
 */
#include "payload.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define TS_MAX 253402300799LL	/* 9999-12-31T23:59:59Z: PostgreSQL's timestamptz holds it */

static enum payload_result
unusable(struct payload *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
	va_end(ap);
	return PAYLOAD_UNUSABLE;
}

/*
 * Appends a zeroed item to the list whose storage is b, and points *list at
 * the storage again (growth may move it). Returns the item, or NULL with
 * *why set: PAYLOAD_NOMEM, or PAYLOAD_UNUSABLE past PAYLOAD_ITEMS_MAX.
 */
static void *
grow(struct dynbuf *b, void **list, size_t *n, size_t size, enum payload_result *why)
{
	enum dynbuf_rc rc;
	void *item;

	if (b->max == 0)
		dynbuf_init(b, PAYLOAD_ITEMS_MAX * size);
	if ((item = dynbuf_item(b, size, &rc)) == NULL) {
		*why = rc == DYNBUF_TOOBIG ? PAYLOAD_UNUSABLE : PAYLOAD_NOMEM;
		return NULL;
	}
	*list = b->s;
	(*n)++;
	return item;
}

/*
 * Looks up key in obj. Returns 1 with *out set when it is a string without an
 * embedded NUL, 0 when absent or null, -1 when present with another type (or a
 * NUL inside: a C string would silently cut it).
 */
static int
get_str(struct json_object *obj, const char *key, const char **out)
{
	struct json_object *v;
	const char *s;

	*out = NULL;
	if (obj == NULL || !json_object_object_get_ex(obj, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return -1;
	*out = s;
	return 1;
}

/* An optional string: absent and wrongly typed both give NULL. */
static const char *
opt_str(struct json_object *obj, const char *key)
{
	const char *s;

	return get_str(obj, key, &s) == 1 ? s : NULL;
}

static struct json_object *
get_obj(struct json_object *obj, const char *key, enum json_type t)
{
	struct json_object *v;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v) || v == NULL ||
	    !json_object_is_type(v, t))
		return NULL;
	return v;
}

/* Unix seconds as Meta sends them (a string of digits), or a JSON integer. */
static int
get_ts(struct json_object *obj, int64_t *out)
{
	struct json_object *v;
	const char *s;
	char *end;
	long long x;

	if (!json_object_object_get_ex(obj, "timestamp", &v) || v == NULL)
		return -1;
	if (json_object_is_type(v, json_type_int)) {
		errno = 0;
		x = (long long)json_object_get_int64(v);
		if (errno != 0)
			return -1;
	} else if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		if (*s < '0' || *s > '9' || strlen(s) > 12)
			return -1;
		errno = 0;
		x = strtoll(s, &end, 10);
		if (errno != 0 || *end != '\0')
			return -1;
	} else
		return -1;
	if (x < 0 || x > TS_MAX)
		return -1;
	*out = x;
	return 0;
}

static int
digits_equal(const char *a, const char *b)
{
	/* compare the digits only: "+1 555-0100" is "15550100" */
	for (;;) {
		while (*a != '\0' && (*a < '0' || *a > '9'))
			a++;
		while (*b != '\0' && (*b < '0' || *b > '9'))
			b++;
		if (*a == '\0' || *b == '\0')
			return *a == *b;
		if (*a++ != *b++)
			return 0;
	}
}

static int
all_phone_chars(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || *s == '+' || *s == ' ' || *s == '-'))
			return 0;
	return 1;
}

enum payload_class
payload_classify(const char *type, const char *sender, const char *display,
    int has_errors, int is_echo_field)
{
	if (is_echo_field)
		return PAYLOAD_ECHO;
	/* the echo loop (doc/meta-webhooks.md): our own number's messages must
	 * never be answered */
	if (display != NULL && sender != NULL && all_phone_chars(sender) &&
	    all_phone_chars(display) && digits_equal(sender, display))
		return PAYLOAD_ECHO;
	if (strcmp(type, "reaction") == 0)
		return PAYLOAD_REACTION;
	if (strcmp(type, "system") == 0)
		return PAYLOAD_SYSTEM;
	if (strcmp(type, "unsupported") == 0)
		return PAYLOAD_UNSUPPORTED;
	if (strcmp(type, "edit") == 0)
		return PAYLOAD_EDIT;
	if (strcmp(type, "revoke") == 0)
		return PAYLOAD_REVOKE;
	if (has_errors)
		return PAYLOAD_ERRORED;
	return PAYLOAD_ANSWER;
}

const char *
payload_class_str(enum payload_class c)
{
	switch (c) {
	case PAYLOAD_ANSWER:		return "answer";
	case PAYLOAD_REACTION:		return "reaction";
	case PAYLOAD_SYSTEM:		return "system";
	case PAYLOAD_UNSUPPORTED:	return "unsupported";
	case PAYLOAD_ERRORED:		return "errored";
	case PAYLOAD_EDIT:		return "edit";
	case PAYLOAD_REVOKE:		return "revoke";
	case PAYLOAD_ECHO:		return "echo";
	}
	return "unknown";
}

int
payload_status_rank(const char *s)
{
	if (strcmp(s, "sent") == 0)
		return 1;
	if (strcmp(s, "delivered") == 0)
		return 2;
	if (strcmp(s, "read") == 0)
		return 3;
	if (strcmp(s, "played") == 0)
		return 4;
	if (strcmp(s, "failed") == 0)
		return 9;
	return 0;
}

/* The human text of a message, where there is one. */
static const char *
text_of(struct json_object *m, const char *type)
{
	struct json_object *o, *r;

	if ((o = get_obj(m, type, json_type_object)) == NULL)
		return NULL;
	if (strcmp(type, "text") == 0)
		return opt_str(o, "body");
	if (strcmp(type, "button") == 0)
		return opt_str(o, "text");
	if (strcmp(type, "interactive") == 0) {
		if ((r = get_obj(o, "button_reply", json_type_object)) != NULL ||
		    (r = get_obj(o, "list_reply", json_type_object)) != NULL)
			return opt_str(r, "title");
		if ((r = get_obj(o, "nfm_reply", json_type_object)) != NULL)
			return opt_str(r, "body");
		return NULL;
	}
	return opt_str(o, "caption");	/* image, video, document, ... */
}

/*
 * The contact a message speaks for: the one whose wa_id is the message's
 * `from` or whose user_id is its BSUID, else the only contact there is. NULL
 * when none fits (system messages carry no contacts at all).
 */
static struct json_object *
contact_of(struct json_object *contacts, const char *from, const char *user_id)
{
	struct json_object *c;
	const char *id;
	size_t i, n;

	if (contacts == NULL)
		return NULL;
	n = json_object_array_length(contacts);
	for (i = 0; i < n; i++) {
		c = json_object_array_get_idx(contacts, i);
		if ((from != NULL && (id = opt_str(c, "wa_id")) != NULL &&
		    strcmp(id, from) == 0) ||
		    ((id = opt_str(c, "user_id")) != NULL &&
		    ((user_id != NULL && strcmp(id, user_id) == 0) ||
		    (from != NULL && strcmp(id, from) == 0))))
			return c;
	}
	c = n == 1 ? json_object_array_get_idx(contacts, 0) : NULL;
	return json_object_is_type(c, json_type_object) ? c : NULL;
}

/* "US.1349...": two capital letters and a dot; a phone number has digits only. */
static int
looks_like_bsuid(const char *s)
{
	return s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] == '.';
}

/* An identifier: a non-empty string of at most PAYLOAD_ID_MAX bytes, else NULL. */
static const char *
id_str(struct json_object *obj, const char *key)
{
	const char *s = opt_str(obj, key);

	return s != NULL && *s != '\0' && strlen(s) <= PAYLOAD_ID_MAX ? s : NULL;
}

static int
set_path(char *buf, size_t i, size_t j, const char *list, size_t k)
{
	int n;

	if (j == SIZE_MAX)
		n = snprintf(buf, PAYLOAD_PATH_MAX, "{entry,%zu}", i);
	else if (list == NULL)
		n = snprintf(buf, PAYLOAD_PATH_MAX, "{entry,%zu,changes,%zu,value}", i, j);
	else
		n = snprintf(buf, PAYLOAD_PATH_MAX, "{entry,%zu,changes,%zu,value,%s,%zu}",
		    i, j, list, k);
	return (n < 0 || n >= PAYLOAD_PATH_MAX) ? -1 : 0;
}

/* "{entry,0,changes,1,value,messages,2}" -> "entry[0].changes[1].messages[2]" */
static void
human_path(char *out, size_t size, const char *path)
{
	size_t o = 0, n;
	const char *t = path + 1;
	int num;

	out[0] = '\0';
	while (*t != '\0' && *t != '}') {
		n = strcspn(t, ",}");
		num = *t >= '0' && *t <= '9';
		if (!(n == 5 && strncmp(t, "value", 5) == 0) && o + n + 3 < size) {
			if (num)
				out[o++] = '[';
			else if (o > 0)
				out[o++] = '.';
			memcpy(out + o, t, n);
			o += n;
			if (num)
				out[o++] = ']';
			out[o] = '\0';
		}
		t += n;
		if (*t == ',')
			t++;
	}
}

/*
 * Lists the item at path (set_path's form) as broken, with the reason.
 * Returns PAYLOAD_OK, or PAYLOAD_NOMEM / PAYLOAD_UNUSABLE (past
 * PAYLOAD_ITEMS_MAX) for the whole body.
 */
static enum payload_result
broken(struct payload *p, const char *path, const char *fmt, ...)
{
	struct payload_broken *b;
	enum payload_result r;
	va_list ap;

	if (p->nbroken >= PAYLOAD_BROKEN_MAX) {
		p->nbroken_more++;
		return PAYLOAD_OK;
	}
	if ((b = grow(&p->brokenbuf, (void **)&p->broken, &p->nbroken, sizeof(*b),
	    &r)) == NULL)
		return r == PAYLOAD_NOMEM ? r : unusable(p, "more than %d broken items",
		    PAYLOAD_ITEMS_MAX);
	snprintf(b->path, sizeof(b->path), "%s", path);
	human_path(b->where, sizeof(b->where), path);
	va_start(ap, fmt);
	vsnprintf(b->reason, sizeof(b->reason), fmt, ap);
	va_end(ap);
	return PAYLOAD_OK;
}

struct where {
	size_t		 e, c;
	const char	*waba_id, *field, *pnid, *display;
	struct json_object *contacts;
	int		 errored;	/* the change's value carries errors[] */
};

/*
 * A system message saying a person's identity changed (user_changed_number,
 * user_changed_user_id: no contacts, maybe no "from"): the identity they had
 * (system.previous_user_id, else NULL: "from" says it) into *old, and the one
 * they have now (system.user_id, the new BSUID, else system.wa_id, the new
 * phone number) returned. NULL for any other message.
 */
static const char *
new_identity(struct json_object *o, const char *type, const char **old)
{
	struct json_object *sys;
	const char *st, *id;

	*old = NULL;
	if (strcmp(type, "system") != 0 ||
	    (sys = get_obj(o, "system", json_type_object)) == NULL ||
	    (st = opt_str(sys, "type")) == NULL ||
	    (strcmp(st, "user_changed_user_id") != 0 &&
	    strcmp(st, "user_changed_number") != 0))
		return NULL;
	*old = id_str(sys, "previous_user_id");
	if ((id = id_str(sys, "user_id")) == NULL)
		id = id_str(sys, "wa_id");
	return id;
}

/* The edited or revoked message an edit or revoke refers to, where Meta says. */
static const char *
original_of(struct json_object *o, const char *type)
{
	struct json_object *x;
	const char *id;

	if ((x = get_obj(o, type, json_type_object)) != NULL &&
	    ((id = id_str(x, "original_message_id")) != NULL ||
	    (id = id_str(x, "message_id")) != NULL))
		return id;
	return NULL;
}

/* Reads message o into m. Returns NULL when it can be stored, else why not. */
static const char *
read_message(struct payload_msg *m, struct json_object *o, const struct where *w,
    int echo)
{
	struct json_object *ctx, *re, *contact, *prof;
	const char *from, *old;
	int rc;

	if (!json_object_is_type(o, json_type_object))
		return "not an object";
	if (get_str(o, "id", &m->id) != 1 || *m->id == '\0' ||
	    strlen(m->id) > PAYLOAD_ID_MAX)
		return "id missing, not a string, or too long";
	if (get_str(o, "type", &m->type) != 1 || *m->type == '\0' ||
	    strlen(m->type) > 64)
		return "type missing or not a string";
	if (get_ts(o, &m->ts) == -1)
		return "timestamp missing or out of range";
	if (get_str(o, "to", &m->recipient) == -1)
		return "to is not a string";
	if (m->recipient == NULL)	/* an echo to a user who keeps the phone back */
		m->recipient = id_str(o, "to_user_id");
	if ((rc = get_str(o, "from", &from)) == -1 || (rc == 1 &&
	    (*from == '\0' || strlen(from) > PAYLOAD_ID_MAX)))
		return "from is not a string, or empty, or too long";
	m->user_id = id_str(o, "from_user_id");
	m->new_id = new_identity(o, m->type, &old);
	if (old != NULL)	/* the message is about the identity they leave */
		m->user_id = old;
	contact = echo ? NULL : contact_of(w->contacts, from, m->user_id);
	if (m->user_id == NULL)
		m->user_id = id_str(contact, "user_id");
	if ((m->parent_user_id = id_str(o, "from_parent_user_id")) == NULL)
		m->parent_user_id = id_str(contact, "parent_user_id");
	prof = get_obj(contact, "profile", json_type_object);
	m->profile_name = opt_str(prof, "name");
	m->username = opt_str(prof, "username");
	if (m->user_id == NULL && from != NULL && looks_like_bsuid(from))
		m->user_id = from;	/* a BSUID in "from", as Meta first sent them */
	if (from == NULL)	/* a user who keeps the phone number back */
		from = m->user_id;
	if (from == NULL)
		return "neither from nor a business-scoped user id (from_user_id, "
		    "contacts[].user_id)";
	m->sender = from;
	m->group_id = id_str(o, "group_id");
	m->conv = m->group_id ? m->group_id : m->user_id ? m->user_id : m->sender;
	m->phone_number_id = w->pnid;
	m->display_phone_number = w->display;
	m->waba_id = w->waba_id;
	m->field = w->field;
	m->text_body = text_of(o, m->type);
	ctx = get_obj(o, "context", json_type_object);
	m->context_id = opt_str(ctx, "id");
	if (strcmp(m->type, "edit") == 0 || strcmp(m->type, "revoke") == 0)
		m->context_id = original_of(o, m->type);
	if (strcmp(m->type, "reaction") == 0 &&
	    (re = get_obj(o, "reaction", json_type_object)) != NULL) {
		m->react_to = opt_str(re, "message_id");
		m->emoji = opt_str(re, "emoji");
	}
	/* value-level errors[] are about this change's messages (pywa's
	 * interactive_message_with_err: "Unsupported webhook payload", no
	 * content): as errored as a message with its own errors[] */
	m->cls = payload_classify(m->type, m->sender, w->display,
	    get_obj(o, "errors", json_type_array) != NULL || w->errored, echo);
	return NULL;
}

static enum payload_result
walk_messages(struct payload *p, const struct where *w, struct json_object *list,
    const char *listname, int echo)
{
	struct payload_msg m, *slot;
	enum payload_result r;
	const char *bad;
	size_t k, n;

	n = json_object_array_length(list);
	for (k = 0; k < n; k++) {
		memset(&m, 0, sizeof(m));
		if (set_path(m.path, w->e, w->c, listname, k) == -1)
			return unusable(p, "path too long");
		bad = read_message(&m, json_object_array_get_idx(list, k), w, echo);
		if (bad != NULL) {
			if ((r = broken(p, m.path, "%s", bad)) != PAYLOAD_OK)
				return r;
			continue;
		}
		if ((slot = grow(&p->msgbuf, (void **)&p->msgs, &p->nmsgs, sizeof(*slot),
		    &r)) == NULL)
			return r == PAYLOAD_NOMEM ? r : unusable(p, "more than %d messages",
			    PAYLOAD_ITEMS_MAX);
		*slot = m;
	}
	return PAYLOAD_OK;
}

/* Reads status o into s. Returns NULL when it can be stored, else why not. */
static const char *
read_status(struct payload_status *s, struct json_object *o, const struct where *w)
{
	if (!json_object_is_type(o, json_type_object))
		return "not an object";
	if (get_str(o, "id", &s->id) != 1 || *s->id == '\0' ||
	    strlen(s->id) > PAYLOAD_ID_MAX)
		return "id missing, not a string, or too long";
	if (get_str(o, "status", &s->status) != 1 || strlen(s->status) > 64)
		return "status missing or not a string";
	if (get_ts(o, &s->ts) == -1)
		return "timestamp missing or out of range";
	if (get_str(o, "recipient_id", &s->recipient_id) == -1)
		return "recipient_id is not a string";
	s->recipient_user_id = id_str(o, "recipient_user_id");
	s->recipient_parent_user_id = id_str(o, "recipient_parent_user_id");
	s->callback_data = opt_str(o, "biz_opaque_callback_data");
	s->phone_number_id = w->pnid;
	s->rank = payload_status_rank(s->status);
	return NULL;
}

static enum payload_result
walk_statuses(struct payload *p, const struct where *w, struct json_object *list)
{
	struct payload_status s, *slot;
	enum payload_result r;
	const char *bad;
	size_t k, n;

	n = json_object_array_length(list);
	for (k = 0; k < n; k++) {
		memset(&s, 0, sizeof(s));
		if (set_path(s.path, w->e, w->c, "statuses", k) == -1)
			return unusable(p, "path too long");
		if ((bad = read_status(&s, json_object_array_get_idx(list, k), w)) != NULL) {
			if ((r = broken(p, s.path, "%s", bad)) != PAYLOAD_OK)
				return r;
			continue;
		}
		if ((slot = grow(&p->statusbuf, (void **)&p->statuses, &p->nstatuses,
		    sizeof(*slot), &r)) == NULL)
			return r == PAYLOAD_NOMEM ? r : unusable(p, "more than %d statuses",
			    PAYLOAD_ITEMS_MAX);
		*slot = s;
	}
	return PAYLOAD_OK;
}

static enum payload_result
add_event(struct payload *p, const struct where *w)
{
	struct payload_event *ev;
	enum payload_result r;

	if ((ev = grow(&p->eventbuf, (void **)&p->events, &p->nevents, sizeof(*ev),
	    &r)) == NULL)
		return r == PAYLOAD_NOMEM ? r : unusable(p, "more than %d events",
		    PAYLOAD_ITEMS_MAX);
	ev->field = w->field;
	ev->waba_id = w->waba_id;
	if (set_path(ev->path, w->e, w->c, NULL, 0) == -1)
		return unusable(p, "path too long");
	return PAYLOAD_OK;
}

/* A change that cannot be read at all: quarantined alone, with why. */
static enum payload_result
broken_change(struct payload *p, const struct where *w, const char *why)
{
	char path[PAYLOAD_PATH_MAX];

	snprintf(path, sizeof(path), "{entry,%zu,changes,%zu}", w->e, w->c);
	return broken(p, path, "%s", why);
}

static enum payload_result
walk_change(struct payload *p, struct where *w, struct json_object *change)
{
	struct json_object *value, *meta, *list;
	enum payload_result r;
	const char *name;
	int echo;

	if (!json_object_is_type(change, json_type_object))
		return broken_change(p, w, "not an object");
	if (get_str(change, "field", &w->field) != 1 || *w->field == '\0' ||
	    strlen(w->field) > 128)
		return broken_change(p, w, "field missing or not a string");
	if (!json_object_object_get_ex(change, "value", &value) || value == NULL)
		return broken_change(p, w, "value missing");

	echo = strcmp(w->field, "smb_message_echoes") == 0;
	if (strcmp(w->field, "messages") != 0 && !echo)
		return add_event(p, w);	/* templates, account, calls...: kept raw */

	if (!json_object_is_type(value, json_type_object))
		return broken_change(p, w, "value is not an object");
	meta = get_obj(value, "metadata", json_type_object);
	if (get_str(meta, "phone_number_id", &w->pnid) != 1 || *w->pnid == '\0')
		return broken_change(p, w, "value.metadata.phone_number_id missing or "
		    "not a string");
	if (get_str(meta, "display_phone_number", &w->display) == -1)
		return broken_change(p, w, "metadata.display_phone_number is not a string");
	w->contacts = get_obj(value, "contacts", json_type_array);
	w->errored = get_obj(value, "errors", json_type_array) != NULL;

	name = echo ? "message_echoes" : "messages";
	if (json_object_object_get_ex(value, name, &list) && list != NULL &&
	    !json_object_is_type(list, json_type_array))
		return broken_change(p, w, echo ? "value.message_echoes is not an array" :
		    "value.messages is not an array");
	if (json_object_object_get_ex(value, "statuses", &list) && list != NULL &&
	    !json_object_is_type(list, json_type_array))
		return broken_change(p, w, "value.statuses is not an array");
	if ((list = get_obj(value, name, json_type_array)) != NULL &&
	    (r = walk_messages(p, w, list, name, echo)) != PAYLOAD_OK)
		return r;
	if ((list = get_obj(value, "statuses", json_type_array)) != NULL &&
	    (r = walk_statuses(p, w, list)) != PAYLOAD_OK)
		return r;
	/* value-level errors[] (doc/meta-webhooks.md): nothing to answer, keep them raw */
	if (get_obj(value, "errors", json_type_array) != NULL)
		return add_event(p, w);
	return PAYLOAD_OK;
}

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Flags repeats of an id within this body; the first stays. */
static enum payload_result
mark_dups(struct payload *p)
{
	size_t *slots, cap = 16, i, h;

	if (p->nmsgs < 2)
		return PAYLOAD_OK;
	while (cap < 2 * p->nmsgs)
		cap *= 2;
	if ((slots = calloc(cap, sizeof(*slots))) == NULL)
		return PAYLOAD_NOMEM;
	for (i = 0; i < p->nmsgs; i++) {
		for (h = fnv1a(p->msgs[i].id) & (cap - 1); slots[h] != 0;
		    h = (h + 1) & (cap - 1)) {
			if (strcmp(p->msgs[slots[h] - 1].id, p->msgs[i].id) == 0) {
				p->msgs[i].dup = 1;
				break;
			}
		}
		if (slots[h] == 0)
			slots[h] = i + 1;
	}
	free(slots);
	return PAYLOAD_OK;
}

enum payload_result
payload_parse(struct payload *p, const char *body, size_t len)
{
	struct json_tokener *tok = NULL;
	struct json_object *entries, *entry, *changes;
	enum json_tokener_error jerr;
	enum payload_result r;
	struct where w;
	const char *object, *why;
	char path[PAYLOAD_PATH_MAX];
	size_t i, j, ne, nc, end;

	payload_reset(p);
	if (len == 0) {
		r = unusable(p, "empty body");
		goto out;
	}
	if ((tok = json_tokener_new_ex(PAYLOAD_MAX_DEPTH)) == NULL) {
		r = PAYLOAD_NOMEM;
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	if (len > (size_t)INT32_MAX) {
		r = unusable(p, "body too large to parse");
		goto out;
	}
	p->root = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_error_depth) {
		r = unusable(p, "nested deeper than %d levels at byte %zu", PAYLOAD_MAX_DEPTH,
		    json_tokener_get_parse_end(tok));
		goto out;
	}
	if (p->root == NULL || jerr != json_tokener_success) {
		r = unusable(p, "not JSON: %s at byte %zu",
		    jerr == json_tokener_continue ? "unexpected end of input" :
		    json_tokener_error_desc(jerr), json_tokener_get_parse_end(tok));
		goto out;
	}
	for (end = json_tokener_get_parse_end(tok); end < len; end++)
		if (body[end] != ' ' && body[end] != '\t' && body[end] != '\r' &&
		    body[end] != '\n') {
			r = unusable(p, "not JSON: trailing bytes at byte %zu", end);
			goto out;
		}
	if (!json_object_is_type(p->root, json_type_object)) {
		r = unusable(p, "top level is not an object");
		goto out;
	}
	if (get_str(p->root, "object", &object) != 1) {
		r = unusable(p, "\"object\" missing or not a string");
		goto out;
	}
	if (strcmp(object, "whatsapp_business_account") != 0) {
		snprintf(p->reason, sizeof(p->reason), "object=%.64s", object);
		r = PAYLOAD_NOT_WHATSAPP;
		goto out;
	}
	if ((entries = get_obj(p->root, "entry", json_type_array)) == NULL) {
		r = unusable(p, "\"entry\" missing or not an array");
		goto out;
	}
	ne = json_object_array_length(entries);
	for (i = 0; i < ne; i++) {
		memset(&w, 0, sizeof(w));
		w.e = i;
		entry = json_object_array_get_idx(entries, i);
		why = NULL;
		if (!json_object_is_type(entry, json_type_object))
			why = "not an object";
		else if (get_str(entry, "id", &w.waba_id) == -1)
			why = "id is not a string";
		else if ((changes = get_obj(entry, "changes", json_type_array)) == NULL)
			why = "changes missing or not an array";
		if (why != NULL) {
			/* an entry stands alone like an item: the others are stored */
			if (set_path(path, i, SIZE_MAX, NULL, 0) == -1 ||
			    (r = broken(p, path, "%s", why)) != PAYLOAD_OK)
				goto out;
			continue;
		}
		nc = json_object_array_length(changes);
		for (j = 0; j < nc; j++) {
			w.c = j;
			w.pnid = w.display = NULL;
			w.contacts = NULL;
			w.errored = 0;
			r = walk_change(p, &w, json_object_array_get_idx(changes, j));
			if (r != PAYLOAD_OK)
				goto out;
		}
	}
	r = mark_dups(p);
out:
	if (tok != NULL)
		json_tokener_free(tok);
	return r;
}

void
payload_reset(struct payload *p)
{
	if (p->root != NULL)
		json_object_put(p->root);
	p->root = NULL;
	p->nmsgs = p->nstatuses = p->nevents = p->nbroken = p->nbroken_more = 0;
	dynbuf_trim(&p->msgbuf, PAYLOAD_KEEP);
	dynbuf_trim(&p->statusbuf, PAYLOAD_KEEP);
	dynbuf_trim(&p->eventbuf, PAYLOAD_KEEP);
	dynbuf_trim(&p->brokenbuf, PAYLOAD_KEEP);
	p->msgs = (struct payload_msg *)(void *)p->msgbuf.s;
	p->statuses = (struct payload_status *)(void *)p->statusbuf.s;
	p->events = (struct payload_event *)(void *)p->eventbuf.s;
	p->broken = (struct payload_broken *)(void *)p->brokenbuf.s;
	p->reason[0] = '\0';
}

void
payload_free(struct payload *p)
{
	payload_reset(p);
	dynbuf_free(&p->msgbuf);
	dynbuf_free(&p->statusbuf);
	dynbuf_free(&p->eventbuf);
	dynbuf_free(&p->brokenbuf);
	memset(p, 0, sizeof(*p));
}
