/*
 * payload.h - a webhook body parsed into flat lists of what to store.
 *
 * json-c parses the raw bytes once; every entry, change and message is walked
 * (never only the first). The lists hold pointers into the json-c tree plus a
 * JSON path to each object, so the store can take the object itself from the
 * body PostgreSQL parses (no re-serialisation, numbers kept exactly as sent).
 */
#ifndef WAHOOK_PAYLOAD_H
#define WAHOOK_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "dynbuf.h"

#define PAYLOAD_PATH_MAX 96
#define PAYLOAD_MAX_DEPTH 64	/* nesting levels, counted from the top (the outer
				   object is level 1): deeper bodies are quarantined */
#define PAYLOAD_ID_MAX 1024	/* longest message id we accept */
#define PAYLOAD_ITEMS_MAX 1000000	/* per list (Meta batches up to 1000): more is quarantined */
#define PAYLOAD_BROKEN_MAX 100	/* broken items kept alone; past this many the
				   body is kept whole once (the good items are
				   still stored) */
#define PAYLOAD_KEEP (64 * 1024)	/* list storage past this is freed after each body */

/* Why a stored message gets no outbox row (PAYLOAD_ANSWER: it does). */
enum payload_class {
	PAYLOAD_ANSWER = 0,	/* a user message: mark read and reply */
	PAYLOAD_REACTION,
	PAYLOAD_SYSTEM,
	PAYLOAD_UNSUPPORTED,	/* type unsupported */
	PAYLOAD_ERRORED,	/* carries errors[] */
	PAYLOAD_EDIT,
	PAYLOAD_REVOKE,
	PAYLOAD_ECHO,		/* from our own number, or under smb_message_echoes */
};

struct payload_msg {
	const char	*id;
	const char	*phone_number_id;
	const char	*display_phone_number;	/* may be NULL */
	const char	*waba_id;		/* may be NULL */
	const char	*field;			/* "messages" or "smb_message_echoes" */
	const char	*sender;		/* "from" (a phone number) when Meta sent it,
						   else the BSUID: never NULL */
	const char	*user_id;		/* the BSUID, may be NULL */
	const char	*parent_user_id;	/* the parent BSUID, may be NULL */
	const char	*username;		/* contacts[].profile.username, may be NULL */
	const char	*group_id;		/* a group message's group, may be NULL */
	const char	*conv;			/* the conversation: group_id, else user_id,
						   else sender (one of those pointers) */
	const char	*new_id;		/* system user_changed_*: the person's new
						   identity (phone or BSUID), may be NULL */
	const char	*recipient;		/* "to" (echoes), may be NULL */
	const char	*type;
	int64_t		 ts;			/* Unix seconds */
	const char	*text_body;		/* may be NULL */
	const char	*profile_name;		/* may be NULL */
	const char	*context_id;		/* context.id, may be NULL */
	const char	*react_to;		/* reaction.message_id, reactions only */
	const char	*emoji;			/* NULL or "" removes the reaction */
	enum payload_class cls;
	int		 dup;			/* same id earlier in this body: skipped */
	int		 fresh;			/* set by store_batch(): inserted now */
	char		 path[PAYLOAD_PATH_MAX];	/* "{entry,0,changes,0,value,messages,2}" */
};

struct payload_status {
	const char	*id;
	const char	*phone_number_id;
	const char	*recipient_id;		/* may be NULL */
	const char	*status;
	int		 rank;			/* 1..4, 9 failed, 0 unknown */
	int64_t		 ts;
	const char	*callback_data;		/* biz_opaque_callback_data, may be NULL */
	const char	*recipient_user_id;	/* the recipient's BSUID, may be NULL */
	const char	*recipient_parent_user_id; /* may be NULL */
	char		 path[PAYLOAD_PATH_MAX];
};

/* One item (message, status, change or entry) of a well-formed envelope that
 * is itself unusable: quarantined alone, while the rest is stored. */
struct payload_broken {
	char		 path[PAYLOAD_PATH_MAX];	/* JSON path, as in payload_msg */
	char		 where[PAYLOAD_PATH_MAX];	/* "entry[0].changes[1].messages[2]" */
	char		 reason[200];
};

struct payload_event {
	const char	*field;
	const char	*waba_id;		/* may be NULL */
	char		 path[PAYLOAD_PATH_MAX];	/* to the change's value */
};

enum payload_result {
	PAYLOAD_OK = 0,
	PAYLOAD_NOT_WHATSAPP,	/* valid JSON, another "object": acknowledge, ignore */
	PAYLOAD_UNUSABLE,	/* quarantine with p->reason */
	PAYLOAD_NOMEM
};

struct payload {
	struct json_object	*root;
	struct payload_msg	*msgs;		/* views into the buffers below */
	size_t			 nmsgs;
	struct payload_status	*statuses;
	size_t			 nstatuses;
	struct payload_event	*events;
	size_t			 nevents;
	struct payload_broken	*broken;	/* the first PAYLOAD_BROKEN_MAX */
	size_t			 nbroken;
	size_t			 nbroken_more;	/* broken items past those */
	struct dynbuf		 msgbuf, statusbuf, eventbuf, brokenbuf; /* the lists' storage */
	char			 reason[256];	/* for PAYLOAD_UNUSABLE / NOT_WHATSAPP */
};

/*
 * Parses len bytes of body into p (which the caller zeroes once and may reuse:
 * list storage up to PAYLOAD_KEEP bytes is kept between calls). A list longer
 * than PAYLOAD_ITEMS_MAX makes the body PAYLOAD_UNUSABLE. Checks strict JSON,
 * valid UTF-8, nesting and the shapes doc/meta-webhooks.md describes. A body
 * that is not JSON or not Meta's envelope (object, entry[], changes[]) is
 * PAYLOAD_UNUSABLE as a whole. Inside a good envelope each item stands alone:
 * a message without a usable id, sender (from or a BSUID), timestamp or type,
 * a status without id, status or timestamp, a change without field, value or
 * metadata, goes to the broken list with its path and reason, and everything
 * else is listed to be stored. On PAYLOAD_OK the lists are filled,
 * classified, and in-body duplicates flagged. Always call payload_reset() (or
 * payload_free()) after.
 */
enum payload_result payload_parse(struct payload *p, const char *body, size_t len)
	    __attribute__((warn_unused_result));

/* Drops the parse tree and empties the lists; frees list storage past
 * PAYLOAD_KEEP bytes, so one huge body does not pin its lists for good. */
void	payload_reset(struct payload *p);

/* Frees everything payload_parse() allocated. */
void	payload_free(struct payload *p);

/*
 * The outbox rule, exposed for the unit tests: the class of a message of this
 * type from sender, given our display number (NULL if unknown), whether the
 * message object has errors[], and whether it came under smb_message_echoes.
 */
enum payload_class payload_classify(const char *type, const char *sender,
	    const char *display_phone_number, int has_errors, int is_echo_field);

/* "answer", "reaction", ... for logs. */
const char *payload_class_str(enum payload_class);

/* Rank of a status for the forward-only upsert: sent 1, delivered 2, read 3,
 * played 4, failed 9, anything else 0. */
int	payload_status_rank(const char *status);

#endif
