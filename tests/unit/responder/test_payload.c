/*
 * test_payload.c - cgi/responder/payload.c: every body of the project's fixtures
 * (tests/fixtures/webhooks, table-driven, the expected counts and classes
 * written down from the outbox rule in doc/meta-webhooks.md), the walk over
 * every entry x change x message, in-body duplicates, and the bodies that must
 * be quarantined (PAYLOAD_UNUSABLE with a reason). Meta's sample bodies as
 * collected by pywa are an extra check when a copy sits beside the clone
 * (../shared/fixtures/pywa): absent, the test says so and passes.
 *
 * Hand-written bodies use ' for " (see J()) so they stay readable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "payload.h"

#define OWN_DIR "tests/fixtures/webhooks/"
#define SIGNED_BODY "tests/fixtures/signed/body.json"
#define PYWA_DIR "../shared/fixtures/pywa/"
#define NOCLS (-1)

/* ---- helpers ---- */

/* A malloc'd copy of s with every ' made a " (JSON written in C strings). */
static char *
J(const char *s)
{
	char *d = strdup(s), *p;

	assert_non_null(d);
	for (p = d; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

static enum payload_result
parse_j(struct payload *p, const char *tmpl)
{
	char *b = J(tmpl);
	enum payload_result r;

	/* json-c copies what it keeps: the body may go right after the parse */
	r = payload_parse(p, b, strlen(b));
	free(b);
	return r;
}

#define ENV_HEAD "{'object':'whatsapp_business_account','entry':[{'id':'WABA1'," \
	"'changes':[{'field':'messages','value':{'messaging_product':'whatsapp'," \
	"'metadata':{'display_phone_number':'15550001111','phone_number_id':'PNID1'},"
#define ENV_TAIL "}}]}]}"
/* one change of field "messages" whose value holds VALUE after the metadata */
#define IN_VALUE(value) ENV_HEAD value ENV_TAIL
#define IN_MESSAGES(msgs) IN_VALUE("'messages':[" msgs "]")
#define MSG_TEXT(id) "{'from':'15551234567','id':'" id "','timestamp':'1700000000'," \
	"'type':'text','text':{'body':'hi'}}"

/* Reads a fixture file (variant name -> body) into a json-c tree (caller puts it). */
static struct json_object *
fixture_file(const char *dir, const char *file)
{
	char path[512];
	struct json_object *o;

	snprintf(path, sizeof(path), "%s%s", dir, file);
	o = json_object_from_file(path);
	if (o == NULL)
		fail_msg("cannot read %s (the runner runs from the repo root)", path);
	return o;
}

/* The body of one variant, serialised plain; caller frees. */
static char *
fixture_body(const char *dir, const char *file, const char *variant)
{
	struct json_object *root = fixture_file(dir, file), *v;
	char *s;

	if (!json_object_object_get_ex(root, variant, &v))
		fail_msg("%s has no variant %s", file, variant);
	s = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	assert_non_null(s);
	json_object_put(root);
	return s;
}

static enum payload_result
parse_own(struct payload *p, const char *file, const char *variant)
{
	char *b = fixture_body(OWN_DIR, file, variant);
	enum payload_result r = payload_parse(p, b, strlen(b));

	free(b);
	return r;
}

static enum payload_result
parse_fixture(struct payload *p, const char *file, const char *variant)
{
	char *b = fixture_body(PYWA_DIR, file, variant);
	enum payload_result r = payload_parse(p, b, strlen(b));

	free(b);
	return r;
}

/* ---- the fixtures, table-driven ---- */

struct fx {
	const char	*file, *variant;
	size_t		 nmsgs, nstatuses, nevents;
	int		 cls;		/* class of the message, NOCLS without one */
	int		 rank;		/* rank of the status, 0 without one */
	int		 seen;
	int		 batch;		/* several changes or messages: counts only here */
};

#define EVENT(f, v)	{ f, v, 0, 0, 1, NOCLS, 0, 0, 0 }
#define MSG(f, v, c)	{ f, v, 1, 0, 0, c, 0, 0, 0 }
#define STATUS(f, v, r)	{ f, v, 0, 1, 0, NOCLS, r, 0, 0 }
#define BATCH(f, v, m, s, e) { f, v, m, s, e, NOCLS, 0, 0, 1 }

/* The project's own fixtures: one variant per message type, status, echo,
 * event and error shape Meta sends (doc/meta-webhooks.md), and batches. */
static struct fx own[] = {
	MSG("messages.json", "text", PAYLOAD_ANSWER),
	MSG("messages.json", "text_reply", PAYLOAD_ANSWER),
	MSG("messages.json", "text_forwarded", PAYLOAD_ANSWER),
	MSG("messages.json", "image", PAYLOAD_ANSWER),
	MSG("messages.json", "image_without_caption", PAYLOAD_ANSWER),
	MSG("messages.json", "video", PAYLOAD_ANSWER),
	MSG("messages.json", "audio", PAYLOAD_ANSWER),
	MSG("messages.json", "voice", PAYLOAD_ANSWER),
	MSG("messages.json", "document", PAYLOAD_ANSWER),
	MSG("messages.json", "sticker", PAYLOAD_ANSWER),
	MSG("messages.json", "location", PAYLOAD_ANSWER),
	MSG("messages.json", "contacts", PAYLOAD_ANSWER),
	MSG("messages.json", "interactive_button_reply", PAYLOAD_ANSWER),
	MSG("messages.json", "interactive_list_reply", PAYLOAD_ANSWER),
	MSG("messages.json", "interactive_nfm_reply", PAYLOAD_ANSWER),
	MSG("messages.json", "button", PAYLOAD_ANSWER),
	MSG("messages.json", "reaction", PAYLOAD_REACTION),
	MSG("messages.json", "reaction_removed_empty", PAYLOAD_REACTION),
	MSG("messages.json", "reaction_removed_absent", PAYLOAD_REACTION),
	MSG("messages.json", "order", PAYLOAD_ANSWER),
	MSG("messages.json", "system", PAYLOAD_SYSTEM),
	MSG("messages.json", "unsupported", PAYLOAD_UNSUPPORTED),
	MSG("messages.json", "unsupported_poll", PAYLOAD_UNSUPPORTED),
	MSG("messages.json", "edit", PAYLOAD_EDIT),
	MSG("messages.json", "revoke", PAYLOAD_REVOKE),
	MSG("messages.json", "unknown_type", PAYLOAD_ANSWER),
	MSG("messages.json", "message_with_errors", PAYLOAD_ERRORED),
	MSG("messages.json", "business_scoped_user", PAYLOAD_ANSWER),
	MSG("messages.json", "non_ascii", PAYLOAD_ANSWER),
	STATUS("statuses.json", "sent", 1),
	STATUS("statuses.json", "delivered", 2),
	STATUS("statuses.json", "read", 3),
	STATUS("statuses.json", "played", 4),
	STATUS("statuses.json", "failed", 9),
	STATUS("statuses.json", "with_callback_data", 1),
	MSG("echoes.json", "from_own_number", PAYLOAD_ECHO),
	MSG("echoes.json", "from_own_number_formatted", PAYLOAD_ECHO),
	MSG("echoes.json", "smb_message_echoes", PAYLOAD_ECHO),
	EVENT("events.json", "message_template_status_update"),
	EVENT("events.json", "message_template_status_update_rejected"),
	EVENT("events.json", "message_template_quality_update"),
	EVENT("events.json", "account_update"),
	EVENT("events.json", "account_update_violation"),
	EVENT("events.json", "phone_number_quality_update"),
	EVENT("events.json", "user_preferences"),
	/* value-level errors[]: kept as an event; a message beside them is errored */
	{ "errors.json", "value_errors", 0, 0, 1, NOCLS, 0, 0, 0 },
	{ "errors.json", "value_errors_beside_message", 1, 0, 1, PAYLOAD_ERRORED, 0, 0, 0 },
	/* entry 0: 3 messages, 2 statuses, an account_update; entry 1: 2 messages
	 * (one a reaction) and a status for another phone_number_id */
	BATCH("batches.json", "entries_and_changes", 5, 3, 1),
	BATCH("batches.json", "duplicate_in_body", 3, 0, 0),
	BATCH("batches.json", "hundred_messages", 100, 0, 0),
	/* the 2026 platform: people known by BSUID, phone or both, changed
	 * identities, groups, coexistence, calls (doc/meta-webhooks.md) */
	MSG("platform2026.json", "username_bsuid_only", PAYLOAD_ANSWER),
	MSG("platform2026.json", "phone_and_bsuid", PAYLOAD_ANSWER),
	MSG("platform2026.json", "phone_bsuid_and_username", PAYLOAD_ANSWER),
	MSG("platform2026.json", "parent_bsuid", PAYLOAD_ANSWER),
	MSG("platform2026.json", "system_user_changed_number", PAYLOAD_SYSTEM),
	MSG("platform2026.json", "system_user_changed_user_id", PAYLOAD_SYSTEM),
	MSG("platform2026.json", "system_user_changed_user_id_from_user_id", PAYLOAD_SYSTEM),
	MSG("platform2026.json", "after_user_changed_user_id", PAYLOAD_ANSWER),
	STATUS("platform2026.json", "status_delivered_to_bsuid", 2),
	STATUS("platform2026.json", "status_read_phone_and_bsuid", 3),
	STATUS("platform2026.json", "status_failed_to_bsuid_without_contacts", 9),
	STATUS("platform2026.json", "status_sent_to_group", 1),
	STATUS("platform2026.json", "status_read_in_group", 3),
	MSG("platform2026.json", "group_text", PAYLOAD_ANSWER),
	MSG("platform2026.json", "group_text_username_only", PAYLOAD_ANSWER),
	MSG("platform2026.json", "unknown_type_username_only", PAYLOAD_ANSWER),
	/* the middle message has no id: listed broken, the other two stored */
	BATCH("platform2026.json", "batch_middle_without_id", 2, 0, 0),
	EVENT("platform2026.json", "history"),
	EVENT("platform2026.json", "history_media"),
	MSG("platform2026.json", "smb_message_echoes_to_bsuid", PAYLOAD_ECHO),
	EVENT("platform2026.json", "smb_app_state_sync"),
	MSG("platform2026.json", "edit_with_bsuid", PAYLOAD_EDIT),
	MSG("platform2026.json", "revoke_username_only", PAYLOAD_REVOKE),
	EVENT("platform2026.json", "calls_connect_user_initiated"),
	EVENT("platform2026.json", "calls_terminate"),
	EVENT("platform2026.json", "calls_status_ringing"),
	EVENT("platform2026.json", "user_preferences_username_only"),
	EVENT("platform2026.json", "account_update_pricing_tier"),
	EVENT("platform2026.json", "account_update_partner_added"),
	EVENT("platform2026.json", "group_participants_update"),
	EVENT("platform2026.json", "user_id_update_withdrawn"),
};
#define NOWN (sizeof(own) / sizeof(own[0]))

/* pywa's collection of Meta's sample bodies (the extra check) */
static struct fx pywa[] = {
	EVENT("account_update.json", "account_deleted"),
	EVENT("account_update.json", "account_restriction"),
	EVENT("account_update.json", "account_violation"),
	EVENT("account_update.json", "ad_account_linked"),
	EVENT("account_update.json", "authentication_international_eligibility"),
	EVENT("account_update.json", "account_disabled"),
	EVENT("account_update.json", "mm_api_for_wa_terms_of_service"),
	EVENT("account_update.json", "partner_added"),
	EVENT("account_update.json", "partner_app_installed"),
	EVENT("account_update.json", "partner_app_uninstalled"),
	EVENT("account_update.json", "partner_led_business_verification_status"),
	EVENT("account_update.json", "partner_removed"),
	EVENT("account_update.json", "partner_removed_wa_app_disconnection"),
	EVENT("account_update.json", "primary_business_location_set"),
	EVENT("account_update.json", "pricing_tiering_update"),
	EVENT("account_update.json", "account_offboarded"),
	EVENT("account_update.json", "account_reconnected"),
	/* field "calls": kept raw, even the one whose value holds statuses[] */
	EVENT("call_connect.json", "business_initiated"),
	EVENT("call_connect.json", "user_initiated"),
	MSG("call_permission_update.json", "accept", PAYLOAD_ANSWER),
	MSG("call_permission_update.json", "reject", PAYLOAD_ANSWER),
	EVENT("call_status.json", "call_status"),
	EVENT("call_terminate.json", "call_terminate"),
	MSG("callback_button.json", "button", PAYLOAD_ANSWER),
	MSG("callback_button.json", "quick_reply", PAYLOAD_ANSWER),
	MSG("callback_button.json", "quick_reply_without_context", PAYLOAD_ANSWER),
	MSG("callback_selection.json", "callback", PAYLOAD_ANSWER),
	MSG("callback_selection.json", "description", PAYLOAD_ANSWER),
	MSG("deleted_message.json", "revoke", PAYLOAD_REVOKE),
	MSG("edited_message.json", "image", PAYLOAD_EDIT),
	MSG("flow_completion.json", "completion", PAYLOAD_ANSWER),
	MSG("flow_completion.json", "without_flow_token", PAYLOAD_ANSWER),
	MSG("message.json", "text", PAYLOAD_ANSWER),
	MSG("message.json", "image", PAYLOAD_ANSWER),
	MSG("message.json", "media_with_url", PAYLOAD_ANSWER),
	MSG("message.json", "video", PAYLOAD_ANSWER),
	MSG("message.json", "document", PAYLOAD_ANSWER),
	MSG("message.json", "audio", PAYLOAD_ANSWER),
	MSG("message.json", "voice", PAYLOAD_ANSWER),
	MSG("message.json", "static_sticker", PAYLOAD_ANSWER),
	MSG("message.json", "animated_sticker", PAYLOAD_ANSWER),
	MSG("message.json", "reaction", PAYLOAD_REACTION),
	MSG("message.json", "unreaction_empty", PAYLOAD_REACTION),
	MSG("message.json", "unreaction_no_emoji", PAYLOAD_REACTION),
	MSG("message.json", "current_location", PAYLOAD_ANSWER),
	MSG("message.json", "chosen_location", PAYLOAD_ANSWER),
	MSG("message.json", "contacts", PAYLOAD_ANSWER),
	MSG("message.json", "order", PAYLOAD_ANSWER),
	MSG("message.json", "unsupported", PAYLOAD_UNSUPPORTED),
	MSG("message.json", "unsupported_with_type", PAYLOAD_UNSUPPORTED),
	MSG("message.json", "reply", PAYLOAD_ANSWER),
	MSG("message.json", "forwarded", PAYLOAD_ANSWER),
	MSG("message.json", "forwarded_many_times", PAYLOAD_ANSWER),
	/* errors[] beside messages[] ("Unsupported webhook payload"): the message
	 * is errored (no outbox) and the value with its errors is kept as an event */
	{ "message.json", "interactive_message_with_err", 1, 0, 1, PAYLOAD_ERRORED, 0, 0, 0 },
	MSG("message.json", "referral", PAYLOAD_ANSWER),
	STATUS("message_status.json", "sent", 1),
	STATUS("message_status.json", "delivered", 2),
	STATUS("message_status.json", "read", 3),
	STATUS("message_status.json", "played", 4),
	STATUS("message_status.json", "failed", 9),
	STATUS("message_status.json", "with_tracker", 1),
	STATUS("message_status.json", "group", 3),
	MSG("outgoing_message.json", "text", PAYLOAD_ECHO),
	MSG("outgoing_message.json", "delete", PAYLOAD_ECHO),
	MSG("outgoing_message.json", "edit", PAYLOAD_ECHO),
	MSG("system.json", "phone_number_change", PAYLOAD_SYSTEM),
	MSG("system.json", "identity_change", PAYLOAD_SYSTEM),
	EVENT("template_category_update.json", "marketing"),
	EVENT("template_components_update.json", "element"),
	EVENT("template_quality_update.json", "yellow"),
	EVENT("template_status_update.json", "approved"),
	EVENT("template_status_update.json", "rejected"),
	EVENT("user_marketing_preferences.json", "resume"),
	EVENT("user_marketing_preferences.json", "signup"),
};
#define NPYWA (sizeof(pywa) / sizeof(pywa[0]))

static struct fx *
find_fx(struct fx *table, size_t n, const char *file, const char *variant)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(table[i].file, file) == 0 &&
		    strcmp(table[i].variant, variant) == 0)
			return &table[i];
	return NULL;
}

static const char *
jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_get_string(v);
}

/* The first change of the first entry of a body. */
static struct json_object *
first_change(struct json_object *body)
{
	struct json_object *e, *c;

	assert_true(json_object_object_get_ex(body, "entry", &e));
	e = json_object_array_get_idx(e, 0);
	assert_true(json_object_object_get_ex(e, "changes", &c));
	return json_object_array_get_idx(c, 0);
}

/* Checks p against the expectations in f and against the body itself. */
static void
check_fixture(const struct payload *p, const struct fx *f, struct json_object *body)
{
	struct json_object *change, *value, *list, *o;
	const char *field, *listname;
	char want[PAYLOAD_PATH_MAX];

	if (p->nmsgs != f->nmsgs || p->nstatuses != f->nstatuses ||
	    p->nevents != f->nevents)
		fail_msg("%s/%s: msgs=%zu statuses=%zu events=%zu, want %zu %zu %zu",
		    f->file, f->variant, p->nmsgs, p->nstatuses, p->nevents, f->nmsgs,
		    f->nstatuses, f->nevents);
	if (f->batch)
		return;
	change = first_change(body);
	field = jstr(change, "field");
	assert_true(json_object_object_get_ex(change, "value", &value));
	if (f->nmsgs == 1) {
		if ((int)p->msgs[0].cls != f->cls)
			fail_msg("%s/%s: class %s, want %s", f->file, f->variant,
			    payload_class_str(p->msgs[0].cls),
			    payload_class_str((enum payload_class)f->cls));
		listname = strcmp(field, "smb_message_echoes") == 0 ?
		    "message_echoes" : "messages";
		assert_true(json_object_object_get_ex(value, listname, &list));
		o = json_object_array_get_idx(list, 0);
		assert_string_equal(p->msgs[0].id, jstr(o, "id"));
		if (json_object_object_get_ex(o, "from", NULL))
			assert_string_equal(p->msgs[0].sender, jstr(o, "from"));
		else	/* no phone number: the BSUID stands in ("US.1349...") */
			assert_true(p->msgs[0].user_id != NULL &&
			    strcmp(p->msgs[0].sender, p->msgs[0].user_id) == 0 &&
			    p->msgs[0].sender[2] == '.');
		assert_string_equal(p->msgs[0].type, jstr(o, "type"));
		assert_int_equal(p->msgs[0].ts, strtoll(jstr(o, "timestamp"), NULL, 10));
		assert_string_equal(p->msgs[0].field, field);
		assert_non_null(p->msgs[0].phone_number_id);
		assert_int_equal(p->msgs[0].dup, 0);
		snprintf(want, sizeof(want), "{entry,0,changes,0,value,%s,0}", listname);
		assert_string_equal(p->msgs[0].path, want);
	}
	if (f->nstatuses == 1) {
		assert_true(json_object_object_get_ex(value, "statuses", &list));
		o = json_object_array_get_idx(list, 0);
		assert_string_equal(p->statuses[0].id, jstr(o, "id"));
		assert_string_equal(p->statuses[0].status, jstr(o, "status"));
		assert_int_equal(p->statuses[0].rank, f->rank);
		assert_int_equal(p->statuses[0].ts, strtoll(jstr(o, "timestamp"), NULL, 10));
		assert_string_equal(p->statuses[0].path, "{entry,0,changes,0,value,statuses,0}");
	}
	if (f->nevents == 1) {
		assert_string_equal(p->events[0].field, field);
		assert_string_equal(p->events[0].path, "{entry,0,changes,0,value}");
	}
}

static int
is_json_file(const char *name)
{
	size_t n = strlen(name);

	return n > 5 && strcmp(name + n - 5, ".json") == 0;
}

/*
 * Parses every variant of every *.json in dir and checks it against table:
 * each variant must be in the table and each table row met exactly once.
 * Returns the number of variants.
 */
static size_t
check_fixture_dir(const char *dir, struct fx *table, size_t ntable)
{
	struct payload p;
	struct json_object *root, *body;
	struct json_object_iterator it, end;
	struct dirent *de;
	struct fx *f;
	const char *variant, *s;
	enum payload_result r;
	size_t i, nvariants = 0;
	DIR *d;

	memset(&p, 0, sizeof(p));
	if ((d = opendir(dir)) == NULL)
		fail_msg("cannot open %s (the runner runs from the repo root)", dir);
	while ((de = readdir(d)) != NULL) {
		if (!is_json_file(de->d_name))
			continue;
		root = fixture_file(dir, de->d_name);
		it = json_object_iter_begin(root);
		end = json_object_iter_end(root);
		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
			variant = json_object_iter_peek_name(&it);
			body = json_object_iter_peek_value(&it);
			nvariants++;
			if ((f = find_fx(table, ntable, de->d_name, variant)) == NULL)
				fail_msg("%s/%s: not in the table of expectations",
				    de->d_name, variant);
			f->seen++;
			s = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
			r = payload_parse(&p, s, strlen(s));
			if (r != PAYLOAD_OK)
				fail_msg("%s/%s: result %d (%s), want PAYLOAD_OK", de->d_name,
				    variant, (int)r, p.reason);
			check_fixture(&p, f, body);
			payload_reset(&p);
		}
		json_object_put(root);
	}
	closedir(d);
	for (i = 0; i < ntable; i++)
		if (table[i].seen != 1)
			fail_msg("%s/%s: seen %d times in the fixtures", table[i].file,
			    table[i].variant, table[i].seen);
	payload_free(&p);
	return nvariants;
}

static void
test_own_fixtures(void **state)
{
	(void)state;
	assert_int_equal(check_fixture_dir(OWN_DIR, own, NOWN), NOWN);
}

/* What the store takes besides ids and classes, on a few pywa bodies. */
static void
pywa_fields(void)
{
	struct payload p;
	const struct payload_msg *m;
	const struct payload_status *s;

	memset(&p, 0, sizeof(p));

	assert_int_equal(parse_fixture(&p, "message.json", "text"), PAYLOAD_OK);
	m = &p.msgs[0];
	assert_string_equal(m->text_body, "Body Text");
	assert_string_equal(m->profile_name, "Test Name");
	assert_string_equal(m->phone_number_id, "1122334455667");
	assert_string_equal(m->display_phone_number, "972123456789");
	assert_string_equal(m->waba_id, "1234567890987654321");
	assert_int_equal(m->ts, 1697043223);
	assert_null(m->context_id);
	assert_null(m->react_to);

	assert_int_equal(parse_fixture(&p, "message.json", "reply"), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].context_id, "wamid.xyzxyz==");
	assert_string_equal(p.msgs[0].text_body, "replied text");

	assert_int_equal(parse_fixture(&p, "message.json", "video"), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].text_body, "caption");
	assert_int_equal(parse_fixture(&p, "message.json", "image"), PAYLOAD_OK);
	assert_null(p.msgs[0].text_body);

	assert_int_equal(parse_fixture(&p, "message.json", "reaction"), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].react_to, "wamid.yzxyzx=");
	assert_string_equal(p.msgs[0].emoji, "\xf0\x9f\x98\xae");	/* U+1F62E */
	assert_int_equal(parse_fixture(&p, "message.json", "unreaction_empty"), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].react_to, "wamid.yzxyzx=");
	assert_string_equal(p.msgs[0].emoji, "");
	assert_int_equal(parse_fixture(&p, "message.json", "unreaction_no_emoji"),
	    PAYLOAD_OK);
	assert_string_equal(p.msgs[0].react_to, "wamid.yzxyzx=");
	assert_null(p.msgs[0].emoji);

	assert_int_equal(parse_fixture(&p, "callback_button.json", "quick_reply"),
	    PAYLOAD_OK);
	assert_string_equal(p.msgs[0].text_body, "title");
	assert_int_equal(parse_fixture(&p, "callback_selection.json", "callback"),
	    PAYLOAD_OK);
	assert_string_equal(p.msgs[0].text_body, "title");
	assert_int_equal(parse_fixture(&p, "flow_completion.json", "completion"),
	    PAYLOAD_OK);
	assert_string_equal(p.msgs[0].text_body, "Sent");

	assert_int_equal(parse_fixture(&p, "outgoing_message.json", "text"), PAYLOAD_OK);
	m = &p.msgs[0];
	assert_string_equal(m->field, "smb_message_echoes");
	assert_string_equal(m->recipient, "<WHATSAPP_USER_PHONE_NUMBER>");
	assert_string_equal(m->text_body, "Test message");
	assert_null(m->profile_name);	/* the contact is the recipient, not the sender */

	assert_int_equal(parse_fixture(&p, "message_status.json", "with_tracker"),
	    PAYLOAD_OK);
	s = &p.statuses[0];
	assert_string_equal(s->callback_data, "some data");
	assert_string_equal(s->recipient_id, "972987654321");
	assert_string_equal(s->phone_number_id, "1122334455667");
	assert_int_equal(parse_fixture(&p, "message_status.json", "sent"), PAYLOAD_OK);
	assert_null(p.statuses[0].callback_data);

	payload_free(&p);
}

/* pywa's bodies, when a copy is beside the clone: the extra check. */
static void
test_extra_pywa_fixtures(void **state)
{
	size_t n;

	(void)state;
	if (access(PYWA_DIR, R_OK) != 0) {
		printf("# extra: " PYWA_DIR " not present: skipped the extra check\n");
		skip();	/* reported as skipped, not passed */
	}
	n = check_fixture_dir(PYWA_DIR, pywa, NPYWA);
	assert_int_equal(n, 74);	/* the pywa README's count */
	pywa_fields();
	printf("# extra: " PYWA_DIR " present: checked %zu bodies\n", n);
}

/* What the store takes besides ids and classes, from the project's fixtures. */
static void
test_own_fixture_fields(void **state)
{
	static const struct {
		const char *variant, *text;
	} texts[] = {
		{ "text", "Do you open on Sundays?" },
		{ "image", "the broken part" },
		{ "image_without_caption", NULL },
		{ "video", "how it rattles" },
		{ "audio", NULL },
		{ "document", "my invoice" },
		{ "sticker", NULL },
		{ "location", NULL },
		{ "interactive_button_reply", "Yes, book it" },
		{ "interactive_list_reply", "14:00" },
		{ "interactive_nfm_reply", "Sent" },
		{ "button", "Stop promotions" },
		{ "unknown_type", "a type nobody has seen yet" },
		{ "non_ascii", "Gr\xc3\xbc\xc3\x9f" "e \xe2\x80\x94 \xe4\xbd\xa0\xe5\xa5\xbd "
		    "\xf0\x9f\x98\x80 a/b @home" },
	};
	struct payload p;
	const struct payload_msg *m;
	const struct payload_status *s;
	size_t i;

	(void)state;
	memset(&p, 0, sizeof(p));
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		assert_int_equal(parse_own(&p, "messages.json", texts[i].variant), PAYLOAD_OK);
		if (texts[i].text == NULL)
			assert_null(p.msgs[0].text_body);
		else
			assert_string_equal(p.msgs[0].text_body, texts[i].text);
	}

	assert_int_equal(parse_own(&p, "messages.json", "text"), PAYLOAD_OK);
	m = &p.msgs[0];
	assert_string_equal(m->sender, "15550100123");
	assert_string_equal(m->profile_name, "Rosa Quint");
	assert_string_equal(m->phone_number_id, "3000000000000001");
	assert_string_equal(m->display_phone_number, "15550100001");
	assert_string_equal(m->waba_id, "2000000000000001");
	assert_null(m->context_id);
	assert_null(m->react_to);

	assert_int_equal(parse_own(&p, "messages.json", "text_reply"), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].context_id,
	    "wamid.HBgLMTU1NTAxMDAwMDEVAgARGBI5QTBGMjg3QjM0QUUzAA==");

	assert_int_equal(parse_own(&p, "messages.json", "reaction"), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].react_to,
	    "wamid.HBgLMTU1NTAxMDAwMDEVAgARGBJSRUFDVEVEVE8A");
	assert_string_equal(p.msgs[0].emoji, "\xf0\x9f\x91\x8d");	/* U+1F44D */
	assert_int_equal(parse_own(&p, "messages.json", "reaction_removed_empty"), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].emoji, "");
	assert_int_equal(parse_own(&p, "messages.json", "reaction_removed_absent"),
	    PAYLOAD_OK);
	assert_non_null(p.msgs[0].react_to);
	assert_null(p.msgs[0].emoji);

	/* a user with a username: the id is not digits, and contacts has no wa_id */
	assert_int_equal(parse_own(&p, "messages.json", "business_scoped_user"), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].sender, "US.13491208655302741918");
	assert_string_equal(p.msgs[0].profile_name, "Ana");

	assert_int_equal(parse_own(&p, "echoes.json", "smb_message_echoes"), PAYLOAD_OK);
	m = &p.msgs[0];
	assert_string_equal(m->field, "smb_message_echoes");
	assert_string_equal(m->recipient, "15550100123");
	assert_string_equal(m->text_body, "typed in the Business app");
	assert_null(m->profile_name);	/* the contact is the recipient, not the sender */

	assert_int_equal(parse_own(&p, "statuses.json", "with_callback_data"), PAYLOAD_OK);
	s = &p.statuses[0];
	assert_string_equal(s->callback_data, "order-0042");
	assert_string_equal(s->recipient_id, "15550100123");
	assert_string_equal(s->phone_number_id, "3000000000000001");
	assert_int_equal(parse_own(&p, "statuses.json", "failed"), PAYLOAD_OK);
	assert_null(p.statuses[0].callback_data);
	assert_int_equal(p.statuses[0].rank, 9);

	assert_int_equal(parse_own(&p, "events.json", "message_template_status_update"),
	    PAYLOAD_OK);
	assert_string_equal(p.events[0].field, "message_template_status_update");
	assert_string_equal(p.events[0].waba_id, "2000000000000001");
	payload_free(&p);
}

/* The batches: every entry, change and message, in order, with their paths. */
static void
test_own_batches(void **state)
{
	struct payload p;
	size_t i;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(parse_own(&p, "batches.json", "entries_and_changes"), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].path, "{entry,0,changes,0,value,messages,0}");
	assert_string_equal(p.msgs[2].path, "{entry,0,changes,0,value,messages,2}");
	assert_string_equal(p.msgs[1].profile_name, "Len Ortiz");
	assert_string_equal(p.msgs[3].path, "{entry,1,changes,0,value,messages,0}");
	assert_string_equal(p.msgs[3].phone_number_id, "3000000000000002");
	assert_string_equal(p.msgs[3].waba_id, "2000000000000002");
	assert_int_equal(p.msgs[4].cls, PAYLOAD_REACTION);
	for (i = 0; i < 4; i++)
		assert_int_equal(p.msgs[i].cls, PAYLOAD_ANSWER);
	assert_string_equal(p.statuses[1].path, "{entry,0,changes,1,value,statuses,1}");
	assert_string_equal(p.statuses[2].path, "{entry,1,changes,1,value,statuses,0}");
	assert_string_equal(p.events[0].path, "{entry,0,changes,2,value}");
	assert_string_equal(p.events[0].field, "account_update");

	assert_int_equal(parse_own(&p, "batches.json", "duplicate_in_body"), PAYLOAD_OK);
	assert_int_equal(p.msgs[0].dup + p.msgs[1].dup, 0);
	assert_int_equal(p.msgs[2].dup, 1);
	assert_string_equal(p.msgs[2].id, p.msgs[0].id);

	assert_int_equal(parse_own(&p, "batches.json", "hundred_messages"), PAYLOAD_OK);
	for (i = 0; i < 100; i++)
		assert_int_equal(p.msgs[i].dup, 0);
	assert_string_equal(p.msgs[99].path, "{entry,0,changes,0,value,messages,99}");
	payload_free(&p);
}

/* The signed fixture as Meta writes it, \uXXXX and \/ escapes and all: the
 * parser decodes them (the store gets UTF-8), the signature covers the raw bytes. */
static void
test_escaped_body(void **state)
{
	struct payload p;
	char buf[2048];
	size_t n;
	FILE *f;

	(void)state;
	memset(&p, 0, sizeof(p));
	if ((f = fopen(SIGNED_BODY, "rb")) == NULL)
		fail_msg("cannot open " SIGNED_BODY " (the runner runs from the repo root)");
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_true(n > 0 && n < sizeof(buf));
	assert_non_null(memmem(buf, n, "\\u00fc", 6));
	assert_non_null(memmem(buf, n, "\\ud83d\\ude00", 12));	/* a surrogate pair */
	assert_non_null(memmem(buf, n, "\\/", 2));
	assert_int_equal(payload_parse(&p, buf, n), PAYLOAD_OK);
	assert_int_equal(p.nmsgs, 1);
	assert_string_equal(p.msgs[0].text_body, "Gr\xc3\xbc\xc3\x9f" "e \xe2\x80\x94 "
	    "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 see https://example.org/a?b=1 @home");
	assert_string_equal(p.msgs[0].profile_name, "Jos\xc3\xa9 \xc3\x98lund");
	payload_free(&p);
}

/* ---- the walk ---- */

/* E entries x C changes x K messages (+ one status per change), distinct ids. */
static void
test_every_entry_change_message(void **state)
{
	enum { E = 3, C = 4, K = 5 };
	char *buf, want[PAYLOAD_PATH_MAX], id[64];
	size_t cap = 64 * 1024, n = 0, e, c, k, i;
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	buf = malloc(cap);
	assert_non_null(buf);
#define ADD(...) do { \
	int w_ = snprintf(buf + n, cap - n, __VA_ARGS__); \
	assert_true(w_ > 0 && (size_t)w_ < cap - n); \
	n += (size_t)w_; \
} while (0)
	ADD("{\"object\":\"whatsapp_business_account\",\"entry\":[");
	for (e = 0; e < E; e++) {
		ADD("%s{\"id\":\"WABA%zu\",\"changes\":[", e ? "," : "", e);
		for (c = 0; c < C; c++) {
			ADD("%s{\"field\":\"messages\",\"value\":{\"messaging_product\":"
			    "\"whatsapp\",\"metadata\":{\"display_phone_number\":\"1555000%zu\","
			    "\"phone_number_id\":\"PN%zu.%zu\"},\"messages\":[", c ? "," : "",
			    e, e, c);
			for (k = 0; k < K; k++)
				ADD("%s{\"from\":\"4917%zu\",\"id\":\"wamid.%zu.%zu.%zu\","
				    "\"timestamp\":\"%zu\",\"type\":\"text\",\"text\":"
				    "{\"body\":\"m%zu\"}}", k ? "," : "", k, e, c, k,
				    1700000000 + k, k);
			ADD("],\"statuses\":[{\"id\":\"wamid.out.%zu.%zu\",\"status\":"
			    "\"delivered\",\"timestamp\":\"1700000001\",\"recipient_id\":"
			    "\"4917\"}]}}", e, c);
		}
		ADD("]}");
	}
	ADD("]}");
#undef ADD
	assert_int_equal(payload_parse(&p, buf, n), PAYLOAD_OK);
	assert_int_equal(p.nmsgs, E * C * K);
	assert_int_equal(p.nstatuses, E * C);
	assert_int_equal(p.nevents, 0);
	i = 0;
	for (e = 0; e < E; e++)
		for (c = 0; c < C; c++) {
			snprintf(want, sizeof(want), "{entry,%zu,changes,%zu,value,statuses,0}",
			    e, c);
			assert_string_equal(p.statuses[e * C + c].path, want);
			for (k = 0; k < K; k++, i++) {
				snprintf(id, sizeof(id), "wamid.%zu.%zu.%zu", e, c, k);
				assert_string_equal(p.msgs[i].id, id);
				snprintf(want, sizeof(want),
				    "{entry,%zu,changes,%zu,value,messages,%zu}", e, c, k);
				assert_string_equal(p.msgs[i].path, want);
				snprintf(id, sizeof(id), "WABA%zu", e);
				assert_string_equal(p.msgs[i].waba_id, id);
				snprintf(id, sizeof(id), "PN%zu.%zu", e, c);
				assert_string_equal(p.msgs[i].phone_number_id, id);
				assert_int_equal(p.msgs[i].ts, 1700000000 + k);
				assert_int_equal(p.msgs[i].cls, PAYLOAD_ANSWER);
				assert_int_equal(p.msgs[i].dup, 0);
			}
		}
	assert_string_equal(p.msgs[E * C * K - 1].path,
	    "{entry,2,changes,3,value,messages,4}");
	free(buf);
	payload_free(&p);
}

static void
test_path_second_change_third_message(void **state)
{
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(parse_j(&p,
	    "{'object':'whatsapp_business_account','entry':[{'id':'W','changes':["
	    "{'field':'message_template_status_update','value':{'event':'APPROVED'}},"
	    "{'field':'messages','value':{'metadata':{'phone_number_id':'P'},'messages':["
	    MSG_TEXT("a") "," MSG_TEXT("b") "," MSG_TEXT("c") "]}}]}]}"), PAYLOAD_OK);
	assert_int_equal(p.nmsgs, 3);
	assert_int_equal(p.nevents, 1);
	assert_string_equal(p.events[0].path, "{entry,0,changes,0,value}");
	assert_string_equal(p.events[0].field, "message_template_status_update");
	assert_string_equal(p.msgs[2].id, "c");
	assert_string_equal(p.msgs[2].path, "{entry,0,changes,1,value,messages,2}");
	assert_null(p.msgs[2].display_phone_number);
	payload_free(&p);
}

static void
test_duplicates_in_body(void **state)
{
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	/* the same id three times, across two changes; another id once */
	assert_int_equal(parse_j(&p,
	    "{'object':'whatsapp_business_account','entry':[{'id':'W','changes':["
	    "{'field':'messages','value':{'metadata':{'phone_number_id':'P'},'messages':["
	    MSG_TEXT("wamid.X") "," MSG_TEXT("wamid.Y") "," MSG_TEXT("wamid.X") "]}},"
	    "{'field':'messages','value':{'metadata':{'phone_number_id':'P'},'messages':["
	    MSG_TEXT("wamid.X") "]}}]}]}"), PAYLOAD_OK);
	assert_int_equal(p.nmsgs, 4);
	assert_int_equal(p.msgs[0].dup, 0);
	assert_int_equal(p.msgs[1].dup, 0);
	assert_int_equal(p.msgs[2].dup, 1);
	assert_int_equal(p.msgs[3].dup, 1);
	/* ids differing only in case or a suffix are not duplicates */
	assert_int_equal(parse_j(&p, IN_MESSAGES(MSG_TEXT("wamid.a") "," MSG_TEXT("wamid.A")
	    "," MSG_TEXT("wamid.a1"))), PAYLOAD_OK);
	assert_int_equal(p.msgs[1].dup + p.msgs[2].dup, 0);
	payload_free(&p);
}

/* Meta batches up to 1000 updates: 1000 messages, ids 0..499 then again. */
static void
test_duplicates_in_a_batch_of_1000(void **state)
{
	char *buf;
	size_t cap = 256 * 1024, n, i, ndup = 0;
	struct payload p;
	int w;

	(void)state;
	memset(&p, 0, sizeof(p));
	buf = malloc(cap);
	assert_non_null(buf);
	n = (size_t)snprintf(buf, cap, "{\"object\":\"whatsapp_business_account\",\"entry\":"
	    "[{\"id\":\"W\",\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":"
	    "{\"phone_number_id\":\"P\"},\"messages\":[");
	for (i = 0; i < 1000; i++) {
		w = snprintf(buf + n, cap - n, "%s{\"from\":\"1\",\"id\":\"wamid.%zu\","
		    "\"timestamp\":\"1700000000\",\"type\":\"text\"}", i ? "," : "", i % 500);
		assert_true(w > 0 && (size_t)w < cap - n);
		n += (size_t)w;
	}
	w = snprintf(buf + n, cap - n, "]}}]}]}");
	assert_true(w > 0 && (size_t)w < cap - n);
	n += (size_t)w;
	assert_int_equal(payload_parse(&p, buf, n), PAYLOAD_OK);
	assert_int_equal(p.nmsgs, 1000);
	for (i = 0; i < 1000; i++) {
		assert_int_equal(p.msgs[i].dup, i >= 500);
		ndup += (size_t)p.msgs[i].dup;
	}
	assert_int_equal(ndup, 500);
	free(buf);
	payload_free(&p);
}

/* ---- bodies to quarantine ---- */

struct bad {
	const char	*name;
	const char	*body;		/* ' for ", NUL-terminated */
	const char	*reason;	/* a substring the reason must hold, or NULL */
};

#define BAD_MSG(name, msg, why) { name, IN_MESSAGES(msg), why }

static const struct bad bad_bodies[] = {
	{ "not JSON", "hello", "not JSON" },
	{ "half an object", "{'object':'whatsapp_business_account'", "not JSON" },
	{ "unquoted key", "{object:'whatsapp_business_account','entry':[]}", "not JSON" },
	{ "trailing comma", "{'object':'whatsapp_business_account','entry':[],}",
	    "not JSON" },
	{ "trailing garbage", "{'object':'whatsapp_business_account','entry':[]}x",
	    "byte 49" },
	{ "two objects", "{'object':'whatsapp_business_account','entry':[]} {}",
	    "byte 5" },
	{ "invalid UTF-8", "{'object':'whatsapp_business_account','entry':[],'x':'\xff'}",
	    "not JSON" },
	{ "truncated UTF-8", "{'object':'whatsapp_business_account','entry':[],"
	    "'x':'\xe2\x82'}", "not JSON" },
	{ "top level array", "[{'object':'whatsapp_business_account'}]", "top level" },
	{ "top level string", "'whatsapp_business_account'", "top level" },
	{ "object missing", "{'entry':[]}", "object" },
	{ "object not a string", "{'object':1,'entry':[]}", "object" },
	{ "entry missing", "{'object':'whatsapp_business_account'}", "entry" },
	{ "entry an object", "{'object':'whatsapp_business_account','entry':{}}", "entry" },
};

/*
 * Items of a good envelope that cannot be stored: each is listed broken, with
 * its path and reason, and the rest of the body is stored (reason: a
 * substring of "path: reason").
 */
static const struct bad broken_items[] = {
	{ "entry[0] a string", "{'object':'whatsapp_business_account','entry':['x']}",
	    "entry[0]" },
	{ "entry.id a number", "{'object':'whatsapp_business_account','entry':"
	    "[{'id':1,'changes':[]}]}", "entry[0]: id" },
	{ "changes missing", "{'object':'whatsapp_business_account','entry':[{'id':'W'}]}",
	    "changes" },
	{ "changes an object", "{'object':'whatsapp_business_account','entry':"
	    "[{'id':'W','changes':{}}]}", "changes" },
	{ "changes[1] a number", "{'object':'whatsapp_business_account','entry':"
	    "[{'id':'W','changes':[{'field':'x','value':{}},7]}]}", "changes[1]" },
	{ "field missing", "{'object':'whatsapp_business_account','entry':"
	    "[{'id':'W','changes':[{'value':{}}]}]}", "field" },
	{ "field a number", "{'object':'whatsapp_business_account','entry':"
	    "[{'id':'W','changes':[{'field':3,'value':{}}]}]}", "field" },
	{ "value missing", "{'object':'whatsapp_business_account','entry':"
	    "[{'id':'W','changes':[{'field':'messages'}]}]}", "value" },
	{ "value an array", "{'object':'whatsapp_business_account','entry':"
	    "[{'id':'W','changes':[{'field':'messages','value':[]}]}]}", "value" },
	{ "metadata missing", "{'object':'whatsapp_business_account','entry':"
	    "[{'id':'W','changes':[{'field':'messages','value':{'messages':[]}}]}]}",
	    "phone_number_id" },
	{ "phone_number_id a number", "{'object':'whatsapp_business_account','entry':"
	    "[{'id':'W','changes':[{'field':'messages','value':{'metadata':"
	    "{'phone_number_id':1},'messages':[]}}]}]}", "phone_number_id" },
	{ "display_phone_number a number", "{'object':'whatsapp_business_account','entry':"
	    "[{'id':'W','changes':[{'field':'messages','value':{'metadata':"
	    "{'phone_number_id':'P','display_phone_number':1555},'messages':[]}}]}]}",
	    "display_phone_number" },
	{ "messages an object", IN_VALUE("'messages':{}"), "messages" },
	{ "message_echoes a string", "{'object':'whatsapp_business_account','entry':"
	    "[{'id':'W','changes':[{'field':'smb_message_echoes','value':{'metadata':"
	    "{'phone_number_id':'P'},'message_echoes':'x'}}]}]}", "message_echoes" },
	{ "statuses an object", IN_VALUE("'statuses':{}"), "statuses" },
	BAD_MSG("messages[1] a string", MSG_TEXT("a") ",'b'", "messages[1]"),
	BAD_MSG("id missing", "{'from':'1','timestamp':'1700000000','type':'text'}", "id"),
	BAD_MSG("id a number", "{'from':'1','id':5,'timestamp':'1700000000','type':'text'}",
	    "id"),
	BAD_MSG("id empty", "{'from':'1','id':'','timestamp':'1700000000','type':'text'}",
	    "id"),
	BAD_MSG("id null", "{'from':'1','id':null,'timestamp':'1700000000','type':'text'}",
	    "id"),
	BAD_MSG("id with \\u0000", "{'from':'1','id':'wamid.a\\u0000b',"
	    "'timestamp':'1700000000','type':'text'}", "id"),
	BAD_MSG("from missing", "{'id':'a','timestamp':'1700000000','type':'text'}", "from"),
	BAD_MSG("from a number", "{'from':4917,'id':'a','timestamp':'1700000000',"
	    "'type':'text'}", "from"),
	BAD_MSG("from with \\u0000", "{'from':'49\\u000017','id':'a',"
	    "'timestamp':'1700000000','type':'text'}", "from"),
	BAD_MSG("type missing", "{'from':'1','id':'a','timestamp':'1700000000'}", "type"),
	BAD_MSG("type an object", "{'from':'1','id':'a','timestamp':'1700000000',"
	    "'type':{}}", "type"),
	BAD_MSG("to a number", "{'from':'1','id':'a','timestamp':'1700000000',"
	    "'type':'text','to':5}", "to"),
	BAD_MSG("timestamp missing", "{'from':'1','id':'a','type':'text'}", "timestamp"),
	BAD_MSG("timestamp letters", "{'from':'1','id':'a','timestamp':'abc',"
	    "'type':'text'}", "timestamp"),
	BAD_MSG("timestamp empty", "{'from':'1','id':'a','timestamp':'','type':'text'}",
	    "timestamp"),
	BAD_MSG("timestamp negative", "{'from':'1','id':'a','timestamp':'-1',"
	    "'type':'text'}", "timestamp"),
	BAD_MSG("timestamp negative int", "{'from':'1','id':'a','timestamp':-1,"
	    "'type':'text'}", "timestamp"),
	BAD_MSG("timestamp with a suffix", "{'from':'1','id':'a','timestamp':'1700000000x',"
	    "'type':'text'}", "timestamp"),
	BAD_MSG("timestamp with a space", "{'from':'1','id':'a','timestamp':' 1700000000',"
	    "'type':'text'}", "timestamp"),
	BAD_MSG("timestamp exponent", "{'from':'1','id':'a','timestamp':'17e8',"
	    "'type':'text'}", "timestamp"),
	BAD_MSG("timestamp a float", "{'from':'1','id':'a','timestamp':1700000000.5,"
	    "'type':'text'}", "timestamp"),
	BAD_MSG("timestamp a bool", "{'from':'1','id':'a','timestamp':true,"
	    "'type':'text'}", "timestamp"),
	BAD_MSG("timestamp past year 9999", "{'from':'1','id':'a',"
	    "'timestamp':'253402300800','type':'text'}", "timestamp"),
	BAD_MSG("timestamp past year 9999 as int", "{'from':'1','id':'a',"
	    "'timestamp':253402300800,'type':'text'}", "timestamp"),
	BAD_MSG("timestamp past int64", "{'from':'1','id':'a',"
	    "'timestamp':'99999999999999999999','type':'text'}", "timestamp"),
	{ "status id missing", IN_VALUE("'statuses':[{'status':'read',"
	    "'timestamp':'1700000000'}]"), "id" },
	{ "status missing", IN_VALUE("'statuses':[{'id':'s','timestamp':'1700000000'}]"),
	    "status" },
	{ "status timestamp bad", IN_VALUE("'statuses':[{'id':'s','status':'read',"
	    "'timestamp':'soon'}]"), "timestamp" },
	{ "status recipient_id a number", IN_VALUE("'statuses':[{'id':'s','status':'read',"
	    "'timestamp':'1700000000','recipient_id':1}]"), "recipient_id" },
	{ "statuses[0] a number", IN_VALUE("'statuses':[1]"), "statuses[0]" },
	BAD_MSG("second message broken", MSG_TEXT("a") ",{'from':'1','id':'b',"
	    "'type':'text'}", "entry[0].changes[0].messages[1]: timestamp"),
	BAD_MSG("neither from nor a BSUID", "{'id':'a','timestamp':'1700000000',"
	    "'type':'text'}", "messages[0]: neither from nor a business-scoped user id"),
};

static void
test_unusable_bodies(void **state)
{
	struct payload p;
	enum payload_result r;
	size_t i;

	(void)state;
	memset(&p, 0, sizeof(p));
	for (i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
		const struct bad *b = &bad_bodies[i];

		r = parse_j(&p, b->body);
		if (r != PAYLOAD_UNUSABLE)
			fail_msg("%s: result %d, want PAYLOAD_UNUSABLE", b->name, (int)r);
		if (p.reason[0] == '\0')
			fail_msg("%s: no reason given", b->name);
		if (strstr(p.reason, b->reason) == NULL)
			fail_msg("%s: reason \"%s\" does not mention \"%s\"", b->name,
			    p.reason, b->reason);
		payload_reset(&p);
		assert_int_equal(p.nmsgs, 0);
	}
	payload_free(&p);
}

static void
test_broken_items(void **state)
{
	struct payload p;
	enum payload_result r;
	char said[512];
	size_t i;

	(void)state;
	memset(&p, 0, sizeof(p));
	for (i = 0; i < sizeof(broken_items) / sizeof(broken_items[0]); i++) {
		const struct bad *b = &broken_items[i];

		r = parse_j(&p, b->body);
		if (r != PAYLOAD_OK)
			fail_msg("%s: result %d (%s), want PAYLOAD_OK", b->name, (int)r,
			    p.reason);
		if (p.nbroken != 1)
			fail_msg("%s: %zu broken items, want 1", b->name, p.nbroken);
		snprintf(said, sizeof(said), "%s: %s", p.broken[0].where,
		    p.broken[0].reason);
		if (strstr(said, b->reason) == NULL)
			fail_msg("%s: \"%s\" does not say \"%s\"", b->name, said, b->reason);
		payload_reset(&p);
		assert_int_equal(p.nbroken, 0);
	}
	payload_free(&p);
}

/* One broken message among good ones: the good ones are listed to be stored,
 * in order, and the broken one is listed with the path that finds it. */
static void
test_broken_item_leaves_the_rest(void **state)
{
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(parse_j(&p, IN_VALUE("'messages':[" MSG_TEXT("a") ","
	    "{'from':'1','timestamp':'1700000000','type':'text'}," MSG_TEXT("c") "],"
	    "'statuses':[{'id':'s1','status':'read','timestamp':'1700000000'},"
	    "{'id':'s2','status':'read'}]")), PAYLOAD_OK);
	assert_int_equal(p.nmsgs, 2);
	assert_string_equal(p.msgs[0].id, "a");
	assert_string_equal(p.msgs[1].id, "c");
	assert_string_equal(p.msgs[1].path, "{entry,0,changes,0,value,messages,2}");
	assert_int_equal(p.nstatuses, 1);
	assert_int_equal(p.nbroken, 2);
	assert_string_equal(p.broken[0].path, "{entry,0,changes,0,value,messages,1}");
	assert_string_equal(p.broken[0].where, "entry[0].changes[0].messages[1]");
	assert_string_equal(p.broken[1].where, "entry[0].changes[0].statuses[1]");
	assert_non_null(strstr(p.broken[1].reason, "timestamp"));
	/* a broken change leaves the next change of its entry */
	assert_int_equal(parse_j(&p, "{'object':'whatsapp_business_account','entry':[{"
	    "'id':'W','changes':[{'field':'messages','value':{'messages':[]}},"
	    "{'field':'messages','value':{'metadata':{'phone_number_id':'P'},"
	    "'messages':[" MSG_TEXT("z") "]}}]},'x']}"), PAYLOAD_OK);
	assert_int_equal(p.nmsgs, 1);
	assert_int_equal(p.nbroken, 2);
	assert_string_equal(p.broken[0].path, "{entry,0,changes,0}");
	assert_string_equal(p.broken[0].where, "entry[0].changes[0]");
	assert_string_equal(p.broken[1].path, "{entry,1}");
	payload_free(&p);
}

/* Usernames: no phone number, a BSUID, a username; both; a group message. */
static void
test_people_by_phone_bsuid_or_both(void **state)
{
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(parse_j(&p, IN_VALUE(
	    "'contacts':[{'profile':{'name':'Sheena','username':'@sheena'},"
	    "'user_id':'US.13491208655302741918','parent_user_id':'US.ENT.118'}],"
	    "'messages':[{'id':'wamid.N','timestamp':'1750000000','type':'text',"
	    "'text':{'body':'hi'}}]")), PAYLOAD_OK);
	assert_int_equal(p.nbroken, 0);
	assert_string_equal(p.msgs[0].sender, "US.13491208655302741918");
	assert_string_equal(p.msgs[0].user_id, "US.13491208655302741918");
	assert_string_equal(p.msgs[0].parent_user_id, "US.ENT.118");
	assert_string_equal(p.msgs[0].username, "@sheena");
	assert_string_equal(p.msgs[0].profile_name, "Sheena");
	assert_string_equal(p.msgs[0].conv, "US.13491208655302741918");
	assert_int_equal(p.msgs[0].cls, PAYLOAD_ANSWER);
	/* both: the phone number is the sender, the BSUID the conversation */
	assert_int_equal(parse_j(&p, IN_VALUE(
	    "'contacts':[{'profile':{'name':'S'},'wa_id':'16505551234',"
	    "'user_id':'US.1349'}],'messages':[{'from':'16505551234','id':'wamid.B',"
	    "'timestamp':'1750000000','type':'text'}]")), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].sender, "16505551234");
	assert_string_equal(p.msgs[0].user_id, "US.1349");
	assert_string_equal(p.msgs[0].conv, "US.1349");
	assert_null(p.msgs[0].username);
	/* from_user_id on the message names the BSUID without a contact */
	assert_int_equal(parse_j(&p, IN_MESSAGES("{'from_user_id':'BR.77','id':'wamid.F',"
	    "'timestamp':'1750000000','type':'text'}")), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].sender, "BR.77");
	assert_string_equal(p.msgs[0].conv, "BR.77");
	/* a group message: the group is the conversation */
	assert_int_equal(parse_j(&p, IN_VALUE(
	    "'contacts':[{'profile':{'name':'M'},'wa_id':'16505550000'}],"
	    "'messages':[{'from':'16505550000','group_id':'Y2FwaV9ncm91cDox','id':'wamid.G',"
	    "'timestamp':'1750000000','type':'text','text':{'body':'all'}}]")), PAYLOAD_OK);
	assert_string_equal(p.msgs[0].group_id, "Y2FwaV9ncm91cDox");
	assert_string_equal(p.msgs[0].conv, "Y2FwaV9ncm91cDox");
	assert_string_equal(p.msgs[0].sender, "16505550000");
	/* a status to a BSUID */
	assert_int_equal(parse_j(&p, IN_VALUE("'statuses':[{'id':'s','status':'read',"
	    "'timestamp':'1750000000','recipient_user_id':'US.1349',"
	    "'recipient_parent_user_id':'US.ENT.9'}]")), PAYLOAD_OK);
	assert_null(p.statuses[0].recipient_id);
	assert_string_equal(p.statuses[0].recipient_user_id, "US.1349");
	assert_string_equal(p.statuses[0].recipient_parent_user_id, "US.ENT.9");
	payload_free(&p);
}

static void
test_empty_and_trailing_bytes(void **state)
{
	static const char ok[] = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}";
	char buf[128];
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(payload_parse(&p, "", 0), PAYLOAD_UNUSABLE);
	assert_true(p.reason[0] != '\0');
	assert_int_equal(payload_parse(&p, "   \n", 4), PAYLOAD_UNUSABLE);
	/* trailing whitespace is fine */
	snprintf(buf, sizeof(buf), "%s \r\n\t", ok);
	assert_int_equal(payload_parse(&p, buf, strlen(buf)), PAYLOAD_OK);
	/* a NUL after the object is a trailing byte, not the end of the body */
	memcpy(buf, ok, sizeof(ok));	/* with its NUL */
	buf[sizeof(ok)] = '1';
	assert_int_equal(payload_parse(&p, buf, sizeof(ok) + 1), PAYLOAD_UNUSABLE);
	assert_int_equal(payload_parse(&p, buf, sizeof(ok)), PAYLOAD_UNUSABLE);
	/* the length counts, not the NUL: a cut body is not JSON */
	assert_int_equal(payload_parse(&p, ok, sizeof(ok) - 2), PAYLOAD_UNUSABLE);
	assert_int_equal(payload_parse(&p, ok, sizeof(ok) - 1), PAYLOAD_OK);
	assert_int_equal(p.nmsgs + p.nstatuses + p.nevents, 0);
	payload_free(&p);
}

/* Nesting: the envelope plus an extra key holding depth nested arrays. */
static enum payload_result
parse_nested(struct payload *p, size_t depth)
{
	static const char head[] = "{\"object\":\"whatsapp_business_account\",\"entry\":[],"
	    "\"deep\":";
	char *buf;
	size_t n = 0, i;
	enum payload_result r;

	buf = malloc(sizeof(head) + 2 * depth + 2);
	assert_non_null(buf);
	memcpy(buf, head, sizeof(head) - 1);
	n = sizeof(head) - 1;
	for (i = 0; i < depth; i++)
		buf[n++] = '[';
	for (i = 0; i < depth; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	r = payload_parse(p, buf, n);
	free(buf);
	return r;
}

static void
test_nesting(void **state)
{
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(parse_nested(&p, 20), PAYLOAD_OK);
	/* the outer object is level 1: 63 arrays in it make 64 levels, the limit */
	assert_int_equal(parse_nested(&p, PAYLOAD_MAX_DEPTH - 1), PAYLOAD_OK);
	payload_reset(&p);
	assert_int_equal(parse_nested(&p, PAYLOAD_MAX_DEPTH), PAYLOAD_UNUSABLE);
	assert_non_null(strstr(p.reason, "nested deeper than 64 levels"));
	assert_int_equal(parse_nested(&p, 100000), PAYLOAD_UNUSABLE);
	payload_free(&p);
}

static void
test_id_length_limit(void **state)
{
	char *id, *body;
	struct payload p;
	size_t cap = PAYLOAD_ID_MAX + 512;
	int n;

	(void)state;
	memset(&p, 0, sizeof(p));
	id = malloc(PAYLOAD_ID_MAX + 2);
	body = malloc(cap);
	assert_non_null(id);
	assert_non_null(body);
	memset(id, 'w', PAYLOAD_ID_MAX + 1);

	id[PAYLOAD_ID_MAX] = '\0';	/* exactly the limit: fine */
	n = snprintf(body, cap, "{\"object\":\"whatsapp_business_account\",\"entry\":[{"
	    "\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":{"
	    "\"phone_number_id\":\"P\"},\"messages\":[{\"from\":\"1\",\"id\":\"%s\","
	    "\"timestamp\":\"1\",\"type\":\"text\"}]}}]}]}", id);
	assert_true(n > 0 && (size_t)n < cap);
	assert_int_equal(payload_parse(&p, body, (size_t)n), PAYLOAD_OK);
	assert_int_equal(strlen(p.msgs[0].id), PAYLOAD_ID_MAX);

	id[PAYLOAD_ID_MAX] = 'w';	/* one more */
	id[PAYLOAD_ID_MAX + 1] = '\0';
	n = snprintf(body, cap, "{\"object\":\"whatsapp_business_account\",\"entry\":[{"
	    "\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":{"
	    "\"phone_number_id\":\"P\"},\"messages\":[{\"from\":\"1\",\"id\":\"%s\","
	    "\"timestamp\":\"1\",\"type\":\"text\"}]}}]}]}", id);
	assert_true(n > 0 && (size_t)n < cap);
	assert_int_equal(payload_parse(&p, body, (size_t)n), PAYLOAD_OK);
	assert_int_equal(p.nmsgs, 0);
	assert_int_equal(p.nbroken, 1);
	assert_non_null(strstr(p.broken[0].reason, "id"));

	n = snprintf(body, cap, "{\"object\":\"whatsapp_business_account\",\"entry\":[{"
	    "\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":{"
	    "\"phone_number_id\":\"P\"},\"statuses\":[{\"id\":\"%s\",\"status\":\"read\","
	    "\"timestamp\":\"1\"}]}}]}]}", id);
	assert_true(n > 0 && (size_t)n < cap);
	assert_int_equal(payload_parse(&p, body, (size_t)n), PAYLOAD_OK);
	assert_int_equal(p.nstatuses, 0);
	assert_int_equal(p.nbroken, 1);

	free(id);
	free(body);
	payload_free(&p);
}

static void
test_timestamps_accepted(void **state)
{
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(parse_j(&p, IN_MESSAGES("{'from':'1','id':'a','timestamp':'0',"
	    "'type':'text'}")), PAYLOAD_OK);
	assert_int_equal(p.msgs[0].ts, 0);
	assert_int_equal(parse_j(&p, IN_MESSAGES("{'from':'1','id':'a',"
	    "'timestamp':'253402300799','type':'text'}")), PAYLOAD_OK);
	assert_int_equal(p.msgs[0].ts, 253402300799LL);
	/* a JSON integer is taken too */
	assert_int_equal(parse_j(&p, IN_MESSAGES("{'from':'1','id':'a',"
	    "'timestamp':1700000123,'type':'text'}")), PAYLOAD_OK);
	assert_int_equal(p.msgs[0].ts, 1700000123);
	payload_free(&p);
}

static void
test_not_whatsapp(void **state)
{
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(parse_j(&p, "{'object':'page','entry':[{'id':'1','time':1,"
	    "'messaging':[]}]}"), PAYLOAD_NOT_WHATSAPP);
	assert_non_null(strstr(p.reason, "page"));
	assert_int_equal(p.nmsgs + p.nstatuses + p.nevents, 0);
	/* another object is not checked further: its shape is not ours */
	assert_int_equal(parse_j(&p, "{'object':'instagram','entry':5}"),
	    PAYLOAD_NOT_WHATSAPP);
	payload_free(&p);
}

/* from may be a business-scoped user id; contacts may lack wa_id
 * (doc/meta-webhooks.md). */
static void
test_business_scoped_user_id(void **state)
{
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(parse_j(&p, IN_VALUE(
	    "'contacts':[{'profile':{'name':'Other'},'wa_id':'4917000'},"
	    "{'profile':{'name':'Ana'},'user_id':'US.13491208655302741918'}],"
	    "'messages':[{'from':'US.13491208655302741918','id':'wamid.U',"
	    "'timestamp':'1700000000','type':'text','text':{'body':'hola'}}]")), PAYLOAD_OK);
	assert_int_equal(p.nmsgs, 1);
	assert_string_equal(p.msgs[0].sender, "US.13491208655302741918");
	assert_string_equal(p.msgs[0].profile_name, "Ana");
	assert_string_equal(p.msgs[0].text_body, "hola");
	assert_int_equal(p.msgs[0].cls, PAYLOAD_ANSWER);
	/* a user id is never taken for our own number, whatever its digits */
	assert_int_equal(parse_j(&p, "{'object':'whatsapp_business_account','entry':[{"
	    "'changes':[{'field':'messages','value':{'metadata':{'phone_number_id':'P',"
	    "'display_phone_number':'13491208655302741918'},'messages':[{'from':"
	    "'US.13491208655302741918','id':'x','timestamp':'1','type':'text'}]}}]}]}"),
	    PAYLOAD_OK);
	assert_int_equal(p.msgs[0].cls, PAYLOAD_ANSWER);
	payload_free(&p);
}

static void
test_echo_from_own_number(void **state)
{
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	/* ENV_HEAD's display number is 15550001111 */
	assert_int_equal(parse_j(&p, IN_MESSAGES(
	    "{'from':'15550001111','id':'a','timestamp':'1','type':'text'},"
	    "{'from':'15550001112','id':'b','timestamp':'1','type':'text'}")), PAYLOAD_OK);
	assert_int_equal(p.msgs[0].cls, PAYLOAD_ECHO);
	assert_int_equal(p.msgs[1].cls, PAYLOAD_ANSWER);
	/* an unknown future type is an ordinary user message */
	assert_int_equal(parse_j(&p, IN_MESSAGES("{'from':'1','id':'a','timestamp':'1',"
	    "'type':'hologram','hologram':{'x':1}}")), PAYLOAD_OK);
	assert_int_equal(p.msgs[0].cls, PAYLOAD_ANSWER);
	assert_string_equal(p.msgs[0].type, "hologram");
	/* errors[] inside a message makes it errored */
	assert_int_equal(parse_j(&p, IN_MESSAGES("{'from':'1','id':'a','timestamp':'1',"
	    "'type':'text','errors':[{'code':131051}]}")), PAYLOAD_OK);
	assert_int_equal(p.msgs[0].cls, PAYLOAD_ERRORED);
	payload_free(&p);
}

struct cls_case {
	const char	*type, *sender, *display;
	int		 errors, echo_field;
	enum payload_class want;
};

static void
test_classify(void **state)
{
	static const struct cls_case cases[] = {
		{ "text", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "image", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "video", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "audio", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "document", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "sticker", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "location", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "contacts", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "interactive", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "button", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "order", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "some_future_type", "4917", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "text", "US.1349", "1555", 0, 0, PAYLOAD_ANSWER },
		{ "text", "4917", NULL, 0, 0, PAYLOAD_ANSWER },
		{ "reaction", "4917", "1555", 0, 0, PAYLOAD_REACTION },
		{ "system", "4917", "1555", 0, 0, PAYLOAD_SYSTEM },
		{ "unsupported", "4917", "1555", 0, 0, PAYLOAD_UNSUPPORTED },
		{ "unsupported", "4917", "1555", 1, 0, PAYLOAD_UNSUPPORTED },
		{ "text", "4917", "1555", 1, 0, PAYLOAD_ERRORED },
		{ "image", "4917", "1555", 1, 0, PAYLOAD_ERRORED },
		{ "edit", "4917", "1555", 0, 0, PAYLOAD_EDIT },
		{ "revoke", "4917", "1555", 0, 0, PAYLOAD_REVOKE },
		/* the echo loop: smb_message_echoes, or from == our display number */
		{ "text", "4917", "1555", 0, 1, PAYLOAD_ECHO },
		{ "revoke", "4917", "1555", 0, 1, PAYLOAD_ECHO },
		{ "text", "15550001111", "15550001111", 0, 0, PAYLOAD_ECHO },
		{ "image", "15550001111", "+1 555-000-1111", 0, 0, PAYLOAD_ECHO },
		{ "text", "15550001111", "15550001112", 0, 0, PAYLOAD_ANSWER },
		{ "text", "1555000111", "15550001111", 0, 0, PAYLOAD_ANSWER },
		{ "text", "155500011111", "15550001111", 0, 0, PAYLOAD_ANSWER },
		/* no digits on either side is not "equal digits" */
		{ "text", "<USER>", "<BUSINESS>", 0, 0, PAYLOAD_ANSWER },
		{ "text", "US.15550001111", "15550001111", 0, 0, PAYLOAD_ANSWER },
	};
	enum payload_class got;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct cls_case *c = &cases[i];

		got = payload_classify(c->type, c->sender, c->display, c->errors,
		    c->echo_field);
		if (got != c->want)
			fail_msg("case %zu (%s from %s, display %s, errors %d, echo %d): "
			    "%s, want %s", i, c->type, c->sender,
			    c->display ? c->display : "NULL", c->errors, c->echo_field,
			    payload_class_str(got), payload_class_str(c->want));
	}
	assert_string_equal(payload_class_str(PAYLOAD_ANSWER), "answer");
	assert_string_equal(payload_class_str(PAYLOAD_ECHO), "echo");
}

static void
test_status_rank(void **state)
{
	(void)state;
	assert_int_equal(payload_status_rank("sent"), 1);
	assert_int_equal(payload_status_rank("delivered"), 2);
	assert_int_equal(payload_status_rank("read"), 3);
	assert_int_equal(payload_status_rank("played"), 4);
	assert_int_equal(payload_status_rank("failed"), 9);
	assert_int_equal(payload_status_rank("deleted"), 0);
	assert_int_equal(payload_status_rank("RINGING"), 0);
	assert_int_equal(payload_status_rank("Sent"), 0);
	assert_int_equal(payload_status_rank("sent "), 0);
	assert_int_equal(payload_status_rank(""), 0);
	/* the order the forward-only upsert relies on */
	assert_true(payload_status_rank("sent") < payload_status_rank("delivered"));
	assert_true(payload_status_rank("delivered") < payload_status_rank("read"));
	assert_true(payload_status_rank("read") < payload_status_rank("played"));
	assert_true(payload_status_rank("played") < payload_status_rank("failed"));
}

static void
test_value_level_errors_and_empty_changes(void **state)
{
	struct payload p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(parse_j(&p, IN_VALUE("'errors':[{'code':131000}]")), PAYLOAD_OK);
	assert_int_equal(p.nmsgs, 0);
	assert_int_equal(p.nevents, 1);
	assert_string_equal(p.events[0].field, "messages");
	/* beside messages: they are errored, and not those of the next change */
	assert_int_equal(parse_j(&p,
	    "{'object':'whatsapp_business_account','entry':[{'id':'W','changes':["
	    "{'field':'messages','value':{'metadata':{'phone_number_id':'P'},'messages':["
	    MSG_TEXT("a") "," MSG_TEXT("b") "],'errors':[{'code':131000}]}},"
	    "{'field':'messages','value':{'metadata':{'phone_number_id':'P'},'messages':["
	    MSG_TEXT("c") "]}}]}]}"), PAYLOAD_OK);
	assert_int_equal(p.nmsgs, 3);
	assert_int_equal(p.nevents, 1);
	assert_string_equal(p.events[0].path, "{entry,0,changes,0,value}");
	assert_int_equal(p.msgs[0].cls, PAYLOAD_ERRORED);
	assert_int_equal(p.msgs[1].cls, PAYLOAD_ERRORED);
	assert_int_equal(p.msgs[2].cls, PAYLOAD_ANSWER);
	/* contacts only, nothing to store */
	assert_int_equal(parse_j(&p, IN_VALUE("'contacts':[]")), PAYLOAD_OK);
	assert_int_equal(p.nmsgs + p.nstatuses + p.nevents, 0);
	/* no entries, no changes */
	assert_int_equal(parse_j(&p, "{'object':'whatsapp_business_account','entry':[]}"),
	    PAYLOAD_OK);
	assert_int_equal(parse_j(&p, "{'object':'whatsapp_business_account','entry':"
	    "[{'id':'W','changes':[]}]}"), PAYLOAD_OK);
	assert_int_equal(p.nmsgs + p.nstatuses + p.nevents, 0);
	payload_free(&p);
}

/* One payload across many calls: lists empty out, memory is kept, nothing leaks
 * (valgrind and ASan check the last part). */
static void
test_reuse(void **state)
{
	struct payload p;
	int round;

	(void)state;
	memset(&p, 0, sizeof(p));
	payload_reset(&p);	/* on a zeroed payload: harmless */
	for (round = 0; round < 20; round++) {
		assert_int_equal(parse_j(&p, IN_MESSAGES(MSG_TEXT("a") "," MSG_TEXT("b") ","
		    MSG_TEXT("a"))), PAYLOAD_OK);
		assert_int_equal(p.nmsgs, 3);
		assert_int_equal(p.msgs[2].dup, 1);
		assert_int_equal(parse_own(&p, "statuses.json", "read"), PAYLOAD_OK);
		assert_int_equal(p.nmsgs, 0);
		assert_int_equal(p.nstatuses, 1);
		assert_int_equal(parse_j(&p, IN_MESSAGES(MSG_TEXT("a") ",{'id':'b'}")),
		    PAYLOAD_OK);
		assert_int_equal(p.nbroken, 1);
		/* dup flags are fresh on the next parse */
		assert_int_equal(parse_j(&p, IN_MESSAGES(MSG_TEXT("b") "," MSG_TEXT("a"))),
		    PAYLOAD_OK);
		assert_int_equal(p.nmsgs, 2);
		assert_int_equal(p.msgs[0].dup + p.msgs[1].dup, 0);
		assert_int_equal(p.nstatuses, 0);
		assert_string_equal(p.reason, "");
		assert_int_equal(parse_j(&p, "{'object':'page'}"), PAYLOAD_NOT_WHATSAPP);
		assert_int_equal(parse_j(&p, "nope"), PAYLOAD_UNUSABLE);
	}
	payload_reset(&p);
	payload_reset(&p);
	assert_null(p.root);
	payload_free(&p);
	assert_null(p.msgs);
	payload_free(&p);	/* twice is fine too */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_fixtures),
		cmocka_unit_test(test_own_fixture_fields),
		cmocka_unit_test(test_own_batches),
		cmocka_unit_test(test_escaped_body),
		cmocka_unit_test(test_extra_pywa_fixtures),
		cmocka_unit_test(test_every_entry_change_message),
		cmocka_unit_test(test_path_second_change_third_message),
		cmocka_unit_test(test_duplicates_in_body),
		cmocka_unit_test(test_duplicates_in_a_batch_of_1000),
		cmocka_unit_test(test_unusable_bodies),
		cmocka_unit_test(test_broken_items),
		cmocka_unit_test(test_broken_item_leaves_the_rest),
		cmocka_unit_test(test_people_by_phone_bsuid_or_both),
		cmocka_unit_test(test_empty_and_trailing_bytes),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_id_length_limit),
		cmocka_unit_test(test_timestamps_accepted),
		cmocka_unit_test(test_not_whatsapp),
		cmocka_unit_test(test_business_scoped_user_id),
		cmocka_unit_test(test_echo_from_own_number),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_status_rank),
		cmocka_unit_test(test_value_level_errors_and_empty_changes),
		cmocka_unit_test(test_reuse),
	};

	return cmocka_run_group_tests_name("payload", tests, NULL, NULL);
}
