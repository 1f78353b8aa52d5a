/*
 * address.c - whom a reply goes to (see address.h). Meta takes "to" (a phone
 * number, or a group with recipient_type "group") or "recipient" (a BSUID);
 * when a body has both, "to" wins, so the one that does not apply is removed.
 */
#include "address.h"

#include <json-c/json.h>

const char *
address_target(const struct address *a)
{
	if (a->group_id != NULL)
		return a->group_id;
	if (a->phone != NULL)
		return a->phone;
	return a->user_id;
}

static int
set(struct json_object *o, const char *k, const char *v)
{
	struct json_object *s = json_object_new_string(v);

	if (s == NULL || json_object_object_add(o, k, s) != 0) {
		json_object_put(s);
		return -1;
	}
	return 0;
}

int
address_apply(struct json_object *o, const struct address *a)
{
	const char *target = address_target(a);
	int by_user_id = a->group_id == NULL && a->phone == NULL;

	if (target == NULL || *target == '\0')
		return -1;
	if (set(o, "recipient_type", a->group_id != NULL ? "group" : "individual") == -1 ||
	    set(o, by_user_id ? "recipient" : "to", target) == -1)
		return -1;
	json_object_object_del(o, by_user_id ? "to" : "recipient");
	return 0;
}
