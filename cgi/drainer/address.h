/*
 * address.h - whom a reply goes to. A group message is answered in its group,
 * never to its author alone; a person by phone number when Meta told us it
 * (Meta prefers it), else by business-scoped user id (BSUID) in "recipient".
 */
#ifndef WAHOOK_ADDRESS_H
#define WAHOOK_ADDRESS_H

struct json_object;

struct address {
	const char	*phone;		/* the person's phone number, or NULL when withheld */
	const char	*user_id;	/* their BSUID, or NULL */
	const char	*group_id;	/* the group a group message was said in, or NULL */
};

/*
 * Makes o (a Graph API message body) go to a: sets recipient_type ("group" or
 * "individual") and "to" (the group, or the phone number) or "recipient" (the
 * BSUID), removing whichever of "to" and "recipient" does not apply, so the
 * body's own say is overruled. Returns 0, or -1 when a names nobody or memory
 * ran out (o may then be half changed: discard it).
 */
int	address_apply(struct json_object *o, const struct address *a)
	    __attribute__((warn_unused_result));

/* The one identifier a goes to (group, phone number or BSUID), or NULL. */
const char *address_target(const struct address *a);

#endif
