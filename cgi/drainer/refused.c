/*
 * refused.c - the set of numbers whose token was refused (see refused.h). A
 * plain array searched in order: a run meets a handful of refused numbers,
 * and each pointer stays put until refused_free() (drain.c hands them out
 * as the claim's limits).
 */
#include "refused.h"

#include <stdlib.h>
#include <string.h>

void
refused_init(struct refused *set)
{
	set->n = 0;
}

int
refused_has(const struct refused *set, const char *number)
{
	int i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->number[i], number) == 0)
			return 1;
	return 0;
}

int
refused_add(struct refused *set, const char *number)
{
	if (refused_has(set, number))
		return 0;
	if (set->n == REFUSED_MAX || (set->number[set->n] = strdup(number)) == NULL)
		return -1;
	set->n++;
	return 1;
}

const char *
refused_at(const struct refused *set, int i)
{
	return i >= 0 && i < set->n ? set->number[i] : NULL;
}

void
refused_free(struct refused *set)
{
	int i;

	for (i = 0; i < set->n; i++)
		free(set->number[i]);
	set->n = 0;
}
