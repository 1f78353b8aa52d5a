/*
 * log.c - logfmt lines (see log.h). Escaping follows logfmt as read by
 * Loki/Grafana and `hl`: bare when the value is [A-Za-z0-9._:/@+-]*, else
 * double-quoted with \" \\ \n \r \t and \xHH for other control bytes.
 * Where lines go is process-wide state, set once by log_open(): a program
 * started with stderr on /dev/null must not log into it.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int log_fd = STDERR_FILENO;	/* the file lines go to, unless log_syslog */
static int log_syslog;			/* lines go to syslog(3) */
static int log_errors_to_stderr;	/* level=error lines also go to stderr */

static const char trunc_mark[] = " truncated=1";

/* Usable length of a line: one byte is kept for the newline added by log_end(),
 * and room for the mark, so a cut line keeps its whole fields and the mark. */
#define LINE_LIMIT(l) (sizeof((l)->buf) - 1 - (sizeof(trunc_mark) - 1))

static void
put(struct logline *l, const char *s, size_t n)
{
	if (l->truncated || l->len + n > LINE_LIMIT(l)) {
		l->truncated = 1;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static int
bare(const char *v, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
		    c == '/' || c == '@' || c == '+' || c == '-' || c == ','))
			return 0;
	}
	return 1;
}

void
log_begin(struct logline *l, const char *level, const char *ev)
{
	l->len = 0;
	l->field_end = 0;
	l->truncated = 0;
	put(l, "level=", 6);
	put(l, level, strlen(level));
	log_str(l, "ev", ev);
}

void
log_strn(struct logline *l, const char *key, const char *v, size_t n)
{
	char esc[8];
	size_t i;

	if (l->len > 0)
		put(l, " ", 1);
	put(l, key, strlen(key));
	put(l, "=", 1);
	if (v != NULL && bare(v, n)) {
		put(l, v, n);
		if (!l->truncated)
			l->field_end = l->len;
		return;
	}
	put(l, "\"", 1);
	for (i = 0; v != NULL && i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		switch (c) {
		case '"':  put(l, "\\\"", 2); break;
		case '\\': put(l, "\\\\", 2); break;
		case '\n': put(l, "\\n", 2); break;
		case '\r': put(l, "\\r", 2); break;
		case '\t': put(l, "\\t", 2); break;
		default:
			if (c < 0x20 || c == 0x7f) {
				snprintf(esc, sizeof(esc), "\\x%02x", c);
				put(l, esc, 4);
			} else
				put(l, (const char *)&v[i], 1);
		}
	}
	put(l, "\"", 1);
	if (!l->truncated)
		l->field_end = l->len;
}

void
log_str(struct logline *l, const char *key, const char *v)
{
	log_strn(l, key, v, v == NULL ? 0 : strlen(v));
}

void
log_int(struct logline *l, const char *key, long long v)
{
	char num[32];
	int n;

	n = snprintf(num, sizeof(num), "%lld", v);
	log_strn(l, key, num, (size_t)n);
}

void
log_ms(struct logline *l, const char *key, double ms)
{
	char num[32];
	int n;

	n = snprintf(num, sizeof(num), "%.1f", ms);
	if (n < 0 || (size_t)n >= sizeof(num))
		n = 0;
	log_strn(l, key, num, (size_t)n);
}

size_t
log_room(const struct logline *l)
{
	return l->truncated || l->len >= LINE_LIMIT(l) ? 0 : LINE_LIMIT(l) - l->len;
}

#define LIST_RESERVE 96	/* kept free behind a list for the fields that follow it */

void
log_list_begin(struct logline *l, const char *key)
{
	if (l->len > 0)
		put(l, " ", 1);
	put(l, key, strlen(key));
	put(l, "=\"", 2);
	l->list_items = 0;
}

int
log_list_item(struct logline *l, const char *item, size_t n)
{
	size_t i;

	if (l->truncated || n + 1 + LIST_RESERVE > log_room(l))
		return -1;
	if (l->list_items++ > 0)
		l->buf[l->len++] = ',';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)item[i];
		l->buf[l->len++] = (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) ?
		    '?' : (char)c;
	}
	return 0;
}

void
log_list_end(struct logline *l)
{
	put(l, "\"", 1);
	if (!l->truncated)
		l->field_end = l->len;
}

void
log_set_level(struct logline *l, const char *level)
{
	size_t old, new = strlen(level);

	/* the line starts "level=OLD " */
	old = strcspn(l->buf + 6, " ");
	if (6 + old > l->len || l->len - old + new > LINE_LIMIT(l))
		return;
	memmove(l->buf + 6 + new, l->buf + 6 + old, l->len - 6 - old);
	memcpy(l->buf + 6, level, new);
	l->len = l->len - old + new;
	if (l->field_end >= 6 + old)
		l->field_end = l->field_end - old + new;
}

/* 1 when stderr is closed or is /dev/null: nobody would ever read it */
static int
stderr_is_void(void)
{
	struct stat se, sn;

	if (fstat(STDERR_FILENO, &se) == -1)
		return 1;
	if (!S_ISCHR(se.st_mode) || stat("/dev/null", &sn) == -1)
		return 0;
	return se.st_rdev == sn.st_rdev;
}

int
log_open(const char *prog, char *err, size_t errlen)
{
	const char *v = getenv("WAHOOK_LOG");
	int fd, rc = 0;

	log_fd = STDERR_FILENO;
	log_syslog = 0;
	log_errors_to_stderr = 0;
	if (v != NULL && v[0] == '/') {
		fd = open(v, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
		if (fd != -1) {
			log_fd = fd;
			log_errors_to_stderr = !stderr_is_void();
			return 0;
		}
		snprintf(err, errlen, "WAHOOK_LOG: cannot open %.200s: %s", v, strerror(errno));
		rc = -1;
	} else if (v != NULL && strcmp(v, "syslog") == 0) {
		log_syslog = 1;
		log_errors_to_stderr = !stderr_is_void();
	} else if (v != NULL && v[0] != '\0' && strcmp(v, "stderr") != 0) {
		snprintf(err, errlen, "WAHOOK_LOG: want stderr, syslog or an absolute "
		    "file path, not %.200s", v);
		rc = -1;
	}
	if (!log_syslog && stderr_is_void())
		log_syslog = 1;
	if (log_syslog)
		openlog(prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	return rc;
}

/* Writes n bytes to fd whole, retrying short writes; best effort. */
static void
write_all(int fd, const char *p, size_t left)
{
	ssize_t w;

	while (left > 0) {
		w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;	/* nowhere to complain: a log line is best effort */
		p += w;
		left -= (size_t)w;
	}
}

void
log_end(struct logline *l)
{
	int is_error;

	if (l->truncated) {
		/* drop the field that did not fit whole (a value cut inside its
		 * quotes would swallow the mark); put() kept room for the mark */
		l->len = l->field_end;
		memcpy(l->buf + l->len, trunc_mark, sizeof(trunc_mark) - 1);
		l->len += sizeof(trunc_mark) - 1;
	}
	is_error = strncmp(l->buf, "level=error ", 12) == 0;
	if (log_syslog)
		syslog(is_error ? LOG_ERR : strncmp(l->buf, "level=warn ", 11) == 0 ?
		    LOG_WARNING : LOG_INFO, "%.*s", (int)l->len, l->buf);
	l->buf[l->len++] = '\n';
	if (!log_syslog)
		write_all(log_fd, l->buf, l->len);
	if (is_error && log_errors_to_stderr)
		write_all(STDERR_FILENO, l->buf, l->len);
	l->len = 0;
}

void
log_msg(const char *level, const char *ev, const char *msg)
{
	struct logline l;

	log_begin(&l, level, ev);
	log_str(&l, "msg", msg);
	log_end(&l);
}

double
log_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
