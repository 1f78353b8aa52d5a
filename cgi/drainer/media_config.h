/*
 * media_config.h - the media settings of wahook-drain, read once at start from
 * the environment into one struct that nothing modifies afterwards. Kept apart
 * from drain_config so the media lane can be switched off (WAHOOK_MEDIA=off)
 * without touching anything else. Its variables are entries of wahook-drain's
 * one table (drain_vars, drain_config.c), which reads them.
 */
#ifndef WAHOOK_MEDIA_CONFIG_H
#define WAHOOK_MEDIA_CONFIG_H

#include <stddef.h>

#define MEDIA_DIR_MAX		256		/* leaves room for /<64 hex> and temp names */

struct media_config {
	int		 on;		/* WAHOOK_MEDIA: on (default), or off */
	char		 dir[MEDIA_DIR_MAX];	/* WAHOOK_MEDIA_DIR, no trailing '/'; "" = database */
	long long	 max;		/* WAHOOK_MEDIA_MAX: largest item fetched, bytes */
	int		 concurrency;	/* WAHOOK_MEDIA_CONCURRENCY: fetches in flight */
	char		 spool[MEDIA_DIR_MAX];	/* where downloads are spooled: dir, else TMPDIR
					 * or /tmp (database mode) */
};

/*
 * Fills *c from the environment (drain_vars' media entries; defined in
 * drain_config.c). Returns 0, or -1 with a message naming the
 * variable in err (the caller prints it and exits 2). WAHOOK_MEDIA_DIR must be
 * an absolute path to a writable directory.
 */
int	media_config_load(struct media_config *c, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

#endif
