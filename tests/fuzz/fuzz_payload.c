/*
 * fuzz_payload.c - libFuzzer target for payload_parse() and the outbox rule.
 * Any byte string goes in; the walker must not crash, leak or read past the
 * body, and what it lists must hold the invariants store.c relies on (ids,
 * senders, types present, bounded, NUL-free; classes agree with
 * payload_classify(); paths NUL-terminated). The parse runs twice on one
 * struct payload, as the responder reuses it between requests.
 */
#include "payload.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct payload *p)
{
	const struct payload_msg *m;
	const struct payload_status *s;
	size_t i;

	for (i = 0; i < p->nmsgs; i++) {
		m = &p->msgs[i];
		if (m->id == NULL || *m->id == '\0' || strlen(m->id) > PAYLOAD_ID_MAX ||
		    m->sender == NULL || *m->sender == '\0' || m->type == NULL ||
		    m->phone_number_id == NULL || m->field == NULL ||
		    memchr(m->path, '\0', sizeof(m->path)) == NULL)
			abort();
		if (m->ts < 0 || m->ts > 253402300799LL)
			abort();
		if (m->cls != PAYLOAD_ECHO && m->cls != payload_classify(m->type, m->sender,
		    m->display_phone_number, m->cls == PAYLOAD_ERRORED, 0))
			abort();
		if (payload_class_str(m->cls) == NULL)
			abort();
	}
	for (i = 0; i < p->nstatuses; i++) {
		s = &p->statuses[i];
		if (s->id == NULL || *s->id == '\0' || s->status == NULL ||
		    s->rank != payload_status_rank(s->status))
			abort();
	}
	for (i = 0; i < p->nevents; i++)
		if (p->events[i].field == NULL)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct payload p;	/* reused across inputs, as in the responder */
	enum payload_result r;
	char *copy;

	/* an exact-size heap copy: ASan sees any read past the body */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	r = payload_parse(&p, copy, size);
	if (r == PAYLOAD_OK)
		check(&p);
	else if (r == PAYLOAD_UNUSABLE || r == PAYLOAD_NOT_WHATSAPP) {
		if (p.reason[0] == '\0' || memchr(p.reason, '\0', sizeof(p.reason)) == NULL)
			abort();
	}
	payload_reset(&p);
	free(copy);
	return 0;
}
