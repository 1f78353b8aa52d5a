/*
 * reply.h - what a reply program or reply URL is given, and what its answer
 * means: the input JSON, and the output turned into the Graph API message
 * bodies that are recorded in wa_outbox.reply before the first is sent.
 *
 * Pure (json-c only): the unit tests drive it without processes or sockets.
 */
#ifndef WAHOOK_REPLY_H
#define WAHOOK_REPLY_H

#include <stddef.h>

#include "address.h"

#define REPLY_OUTPUT_MAX (64 * 1024)	/* bytes of a program's stdout or a URL's answer */
#define REPLY_MSGS_MAX	 10		/* messages in one reply (a JSON array) */
#define REPLY_TEXT_MAX	 4096		/* Meta's limit on a text body, in characters */

/* What the program reads on stdin. Strings are borrowed; NULL is sent as null. */
struct reply_input {
	const char	*message_json;	/* the message object as Meta sent it (stored payload) */
	const char	*message_id;
	const char	*sender;		/* the phone number when known, else the BSUID */
	const char	*user_id;		/* the BSUID, may be NULL */
	const char	*username;		/* may be NULL */
	const char	*group_id;		/* a group message's group, may be NULL */
	const char	*phone_number_id;
	const char	*display_phone_number;	/* may be NULL */
	const char	*profile_name;		/* may be NULL */
	const char	*media_json;		/* a JSON array describing the message's
						   media (wa_media), or NULL: no "media" */
};

/*
 * The input object {"message":{...},"message_id":...,"sender":...,"user_id":...,
 * "username":...,"group_id":...,"phone_number_id":...,"display_phone_number":...,
 * "profile_name":...} (user_id, username, group_id, display_phone_number and
 * profile_name null when unknown) as one
 * line of JSON and a newline. Returns a malloc'd NUL-terminated string (caller
 * frees) with its length in *len, or NULL when message_json is not a JSON
 * object or memory ran out.
 */
char	*reply_input_json(const struct reply_input *in, size_t *len);

/*
 * Turns a program's output (out, len bytes, need not be NUL-terminated) into
 * the reply to record: a JSON array of complete message bodies, in send order.
 *   - nothing but blanks, or []: no reply (the array is empty);
 *   - first non-blank byte '{': one JSON object, a message (text, image,
 *     interactive, template...) with a string "type" and a member named after
 *     it; '[': an array of 1..10 such objects. Either must be valid JSON;
 *   - anything else: a text message with that text (trailing newlines cut),
 *     valid UTF-8, 1..4096 characters.
 * Each body gets messaging_product "whatsapp" and is addressed to `to`
 * (address_apply(): overwriting the output's own), and context {"message_id":
 * context_id} unless the output sets "context" (null removes it).
 * Returns 0 with *recorded (malloc'd, caller frees) and *n messages, or -1
 * with a reason in err for last_error (*recorded NULL).
 */
int	reply_parse(const char *out, size_t len, const struct address *to,
	    const char *context_id,
	    char **recorded, int *n, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * The i-th body (0-based) of a recorded reply as a malloc'd string (caller
 * frees), or NULL when there is none (or memory ran out). *n, when not NULL,
 * is set to the number of bodies (0 when recorded is not an array).
 */
char	*reply_body_at(const char *recorded, int i, int *n);

/*
 * Counts the characters of s (len bytes) when it is valid UTF-8 without NUL
 * (no overlongs, no surrogates): returns 0 and sets *nchars, or -1.
 */
int	reply_utf8(const char *s, size_t len, size_t *nchars);

#endif
