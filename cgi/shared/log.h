/*
 * log.h - one logfmt line per event, on stderr, in a file or to syslog
 * (WAHOOK_LOG, chosen once by log_open()).
 *
 * A line is built in a fixed buffer (struct logline) and written with one
 * write(2), so lines from several processes sharing a log never interleave.
 * Values from outside are quoted and control characters escaped; a line that
 * would overflow is cut after its last whole field and marked truncated=1,
 * never overrun.
 */
#ifndef WAHOOK_LOG_H
#define WAHOOK_LOG_H

#include <stddef.h>
#include <stdint.h>

#define LOGLINE_MAX 8192

struct logline {
	char	buf[LOGLINE_MAX];
	size_t	len;
	size_t	field_end;	/* len after the last whole field: where a cut line ends */
	int	truncated;
	int	list_items;
};

/* Starts a line: "level=LEVEL ev=EV". */
void	log_begin(struct logline *, const char *level, const char *ev);

/* Appends key=value; the value is quoted and escaped when it needs to be. A NULL value is
 * written as key="" . */
void	log_str(struct logline *, const char *key, const char *val);

/* Same for a value of known length that may hold NUL or any byte. */
void	log_strn(struct logline *, const char *key, const char *val, size_t len);

void	log_int(struct logline *, const char *key, long long val);

/* Milliseconds with one decimal: ms=1.4 */
void	log_ms(struct logline *, const char *key, double ms);

/* Room left before the line would be cut (for callers that append lists). */
size_t	log_room(const struct logline *);

/*
 * A comma-separated list value: log_list_begin(l, "ids"), then log_list_item()
 * per item (control bytes, quotes and backslashes become '?'), then
 * log_list_end(). Items that do not fit whole are dropped; log_list_item()
 * returns 0 when it added the item, -1 when it did not fit (stop adding).
 */
void	log_list_begin(struct logline *, const char *key);
int	log_list_item(struct logline *, const char *item, size_t len);
void	log_list_end(struct logline *);

/* Replaces the level of a line begun with log_begin() (e.g. once the outcome is known). */
void	log_set_level(struct logline *, const char *level);

/*
 * Chooses where lines go, from WAHOOK_LOG; call first thing in main(), before
 * anything is logged. prog is the syslog ident (a string literal: kept).
 *   unset, empty or "stderr"  stderr; but when stderr is closed or /dev/null
 *                             (spawn-fcgi's children, daemons) syslog instead,
 *                             so no line is ever written to nowhere
 *   "syslog"                  syslog(3), facility daemon, with the pid
 *   an absolute path          appended to that file (created 0640 if missing),
 *                             one write(2) per line with O_APPEND
 * With a file or syslog, level=error lines also go to stderr when it is open
 * and not /dev/null: cron mails them, a server's error log shows them.
 * Returns 0, or -1 with a reason in err (relative path, file cannot be
 * opened); lines then go where the unset value would send them, so the
 * caller logs err and exits 2.
 */
int	log_open(const char *prog, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* Writes the line and a newline where log_open() chose, in one write(2). */
void	log_end(struct logline *);

/* Convenience: level=.. ev=.. msg="..." on one line. */
void	log_msg(const char *level, const char *ev, const char *msg);

/* Monotonic clock in milliseconds, for durations. */
double	log_now_ms(void);

#endif
