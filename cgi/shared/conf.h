/*
 * conf.h - a program's configuration as one table of variables, read once at
 * start: each entry says its name, kind, default, bounds and a line of help,
 * and where in the program's struct the value goes. The same table drives the
 * reading and its error messages, the known names (the Makefile generates
 * env_names_* from the tables), --help, and the manual page's check
 * (tests/integration/test_reference_complete.py). Shared: it knows no
 * program's struct, only offsets into one.
 */
#ifndef WAHOOK_CONF_H
#define WAHOOK_CONF_H

#include <stddef.h>
#include <stdio.h>

/* The kind says how a value is parsed and what C type it is stored as. */
enum conf_kind {
	CONF_STRING,	/* const char *, into the environment (or def); "" is unset */
	CONF_SECRET,	/* char *, from NAME or NAME_FILE (env_secret()); the program
			 * frees it with env_free_secret(); NULL when unset */
	CONF_CONNINFO,	/* const char *: a libpq conninfo, checked (env_conninfo()); a
			 * secret too: it may hold a password */
	CONF_INT,	/* int: a whole number within [min, max] */
	CONF_LONG,	/* long long: the same */
	CONF_SIZE,	/* size_t: the same, min >= 0 */
	CONF_BOOL,	/* int: 0 or 1 (read as a whole number from 0 to 1) */
	CONF_DOUBLE,	/* double: a decimal number within [min, max] */
	CONF_ENUM,	/* int: the index of the value in words */
	CONF_ONOFF	/* int: "on" 1, "off" 0 */
};

/* off of an entry stored in struct type's field (0 is "not stored") */
#define CONF_AT(type, field) (offsetof(type, field) + 1)

struct conf_var {
	const char	*name;		/* NULL ends the table */
	enum conf_kind	 kind;
	const char	*def;		/* the default, as an operator would write it,
					 * parsed as a value is; NULL: none, or the
					 * after hook's (the help says which) */
	double		 min, max;	/* bounds of a number (exact up to 2^53) */
	size_t		 off;		/* CONF_AT() of the field conf_load() fills;
					 * 0: read by the program (conf_get(), or
					 * another module), described here */
	const char *const *words;	/* CONF_ENUM: the values, NULL-terminated */
	const char	*why;		/* appended to a bounds error, or NULL */
	/*
	 * Called by conf_load() right after the entry is read (set: the variable
	 * is set and not empty): cross-checks, computed defaults, what cannot be
	 * said by a kind. cfg and ctx are conf_load()'s. Returns 0, or -1 with a
	 * reason naming the variable in err.
	 */
	int		(*after)(void *cfg, void *ctx, int set, char *err, size_t errlen);
	unsigned	 part;		/* conf_load() reads one part at a time */
	const char	*help;		/* one line, for --help */
};

/*
 * Reads every entry of table t whose part is part, in table order, into the
 * struct at cfg (each stored one at its off), calling each entry's after hook.
 * The first failure stops it: returns -1 with a reason naming the variable in
 * err (the caller prints it and exits 2), never holding a secret; what was
 * stored until then (secrets included) is the caller's to free. Returns 0.
 */
int	conf_load(const struct conf_var *t, unsigned part, void *cfg, void *ctx,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Reads t's entry name into *out, typed by its kind (see enum conf_kind), with
 * its default and bounds: what conf_load() would store. For a program's own
 * reading of an entry whose off is 0. Returns 0, or -1 with a reason in err
 * (also when name is not in t: a bug).
 */
int	conf_get(const struct conf_var *t, const char *name, void *out, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/* t's entry called name, or NULL. */
const struct conf_var *conf_find(const struct conf_var *t, const char *name);

/* Writes one line per entry of t to f: name (and NAME_FILE for a secret), the
 * default, the help and the bounds. */
void	conf_help(FILE *f, const struct conf_var *t);

#endif
