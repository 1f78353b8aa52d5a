/*
 * conf.c - the engine of the configuration tables (see conf.h). The parsers
 * are env.c's, so a value read through a table fails with the same message it
 * always did; a default is parsed like a value, so a table cannot hold one its
 * own bounds refuse without the unit tests noticing.
 */
#include "conf.h"
#include "env.h"

#include <string.h>

/* Appends e->why to a bounds error already in err. */
static void
add_why(const struct conf_var *e, char *err, size_t errlen)
{
	size_t n = strlen(err);

	if (e->why != NULL && n < errlen)
		snprintf(err + n, errlen - n, " %s", e->why);
}

static int
read_number(const struct conf_var *e, const char *v, void *out, char *err, size_t errlen)
{
	long long n;
	double d;
	int i;

	switch (e->kind) {
	case CONF_DOUBLE:
		if (env_parse_double(e->name, v, e->min, e->max, &d, err, errlen) == -1)
			goto fail;
		*(double *)out = d;
		return 0;
	case CONF_ENUM:
		if (env_parse_choice(e->name, v, e->words, &i, err, errlen) == -1)
			return -1;
		*(int *)out = i;
		return 0;
	case CONF_ONOFF:
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
			snprintf(err, errlen, "%s: want on or off", e->name);
			return -1;
		}
		*(int *)out = strcmp(v, "on") == 0;
		return 0;
	default:
		break;
	}
	if (env_parse_long(e->name, v, (long long)e->min, (long long)e->max, &n, err,
	    errlen) == -1)
		goto fail;
	if (e->kind == CONF_LONG)
		*(long long *)out = n;
	else if (e->kind == CONF_SIZE)
		*(size_t *)out = (size_t)n;
	else
		*(int *)out = (int)n;	/* CONF_INT, CONF_BOOL: bounds within int */
	return 0;
fail:
	add_why(e, err, errlen);
	return -1;
}

/* Reads e into out (typed by its kind); *set: the variable is set, not empty. */
static int
read_var(const struct conf_var *e, void *out, int *set, char *err, size_t errlen)
{
	const char *v = env_string(e->name, NULL);

	*set = v != NULL;
	switch (e->kind) {
	case CONF_SECRET:
		if (env_secret(e->name, (char **)out, err, errlen) == -1)
			return -1;
		*set = *(char **)out != NULL;
		return 0;
	case CONF_CONNINFO:
		return env_conninfo(e->name, (const char **)out, err, errlen);
	case CONF_STRING:
		*(const char **)out = v != NULL ? v : e->def;
		return 0;
	default:
		if (v == NULL)
			v = e->def;
		/* a number without a default is left as it is: the after hook's */
		return v == NULL ? 0 : read_number(e, v, out, err, errlen);
	}
}

const struct conf_var *
conf_find(const struct conf_var *t, const char *name)
{
	for (; t->name != NULL; t++)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

int
conf_get(const struct conf_var *t, const char *name, void *out, char *err, size_t errlen)
{
	const struct conf_var *e = conf_find(t, name);
	int set;

	if (e == NULL) {
		snprintf(err, errlen, "%s: not in the configuration table", name);
		return -1;
	}
	return read_var(e, out, &set, err, errlen);
}

int
conf_load(const struct conf_var *t, unsigned part, void *cfg, void *ctx, char *err,
    size_t errlen)
{
	int set;

	for (; t->name != NULL; t++) {
		if (t->part != part)
			continue;
		set = env_string(t->name, NULL) != NULL;
		if (t->off != 0 &&
		    read_var(t, (char *)cfg + t->off - 1, &set, err, errlen) == -1)
			return -1;
		if (t->after != NULL && t->after(cfg, ctx, set, err, errlen) == -1)
			return -1;
	}
	return 0;
}

void
conf_help(FILE *f, const struct conf_var *t)
{
	char name[128], bounds[96];
	const char *const *w;
	size_t n;

	for (; t->name != NULL; t++) {
		snprintf(name, sizeof(name), "%s%s%s%s", t->name,
		    t->kind == CONF_SECRET ? "[_FILE]" : "", t->def != NULL ? "=" : "",
		    t->def != NULL ? t->def : "");
		bounds[0] = '\0';
		if (t->kind == CONF_DOUBLE)
			snprintf(bounds, sizeof(bounds), " (%.15g to %.15g)", t->min, t->max);
		else if (t->kind == CONF_INT || t->kind == CONF_LONG || t->kind == CONF_SIZE)
			snprintf(bounds, sizeof(bounds), " (%lld to %lld)", (long long)t->min,
			    (long long)t->max);
		else if (t->kind == CONF_BOOL)
			snprintf(bounds, sizeof(bounds), " (0 or 1)");
		else if (t->kind == CONF_ONOFF)
			snprintf(bounds, sizeof(bounds), " (on or off)");
		else if (t->kind == CONF_ENUM) {
			for (w = t->words; *w != NULL; w++) {
				n = strlen(bounds);
				snprintf(bounds + n, sizeof(bounds) - n, "%s%s",
				    w == t->words ? " (" : ", ", *w);
			}
			n = strlen(bounds);
			snprintf(bounds + n, sizeof(bounds) - n, ")");
		}
		/* a long NAME=default gets a line of its own */
		if (strlen(name) > 36)
			fprintf(f, "  %s\n%-38s", name, "");
		else
			fprintf(f, "  %-36s", name);
		fprintf(f, "%s%s\n", t->help, bounds);
	}
}
