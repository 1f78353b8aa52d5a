/*
 * wahook_drain.c - wahook-drain's main: parses the command line, reads the
 * configuration once, installs the signal handlers and hands over to the
 * loop (drain.c) or to one of the operator commands. Cron runs it every minute;
 * overlapping runs are safe because rows are claimed, never assumed.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>

#include <curl/curl.h>

#include "conf.h"
#include "db.h"
#include "drain_config.h"
#include "env.h"
#include "log.h"
#include "media_config.h"
#include "media_store.h"
#include "ops.h"
#include "outbox.h"
#include "report.h"
#include "drain.h"

#define FOR_MAX_S 86400.0

enum mode { M_DRAIN, M_STATUS, M_METRICS, M_REQUEUE, M_HELP };

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* a variable of the responder or of the scripts is not a typo: one
 * environment file may serve them all */
static const char *const *const known_names[] = {
	env_names_drain, env_names_fcgi, env_names_scripts, NULL
};

static const char usage[] =
"usage: wahook-drain                     mark read and answer every due outbox row, exit\n"
"       wahook-drain --for SECONDS       keep draining that long, woken by NOTIFY wahook\n"
"       wahook-drain --status            pending, retrying, dead, done, oldest age\n"
"                                        (of the outbox and of wa_media)\n"
"       wahook-drain --metrics           the same in Prometheus text format\n"
"       wahook-drain --requeue-dead [ID...]  dead rows and media (all, or those\n"
"                                        message or media ids) to pending\n"
"       wahook-drain --help\n"
"\n"
"Configuration comes from the environment: WAHOOK_DB and WAHOOK_ACCESS_TOKEN[_FILE]\n"
"(or WAHOOK_ACCESS_TOKENS_FILE) to drain. Every variable, and the exit status,\n"
"is described in wahook-drain(8).\n";

static int
bad_usage(const char *why)
{
	struct logline l;

	log_begin(&l, "error", "usage");
	log_str(&l, "msg", why);
	log_end(&l);
	fputs(usage, stderr);
	return DRAIN_CONFIG;
}

/* bad_usage() naming the argument (escaped by the log: it came from outside) */
static int
bad_usage_arg(const char *why, const char *arg)
{
	struct logline l;

	log_begin(&l, "error", "usage");
	log_str(&l, "msg", why);
	log_str(&l, "arg", arg);
	log_end(&l);
	fputs(usage, stderr);
	return DRAIN_CONFIG;
}

static int
parse_args(int argc, char **argv, enum mode *mode, double *for_s, int *first_id)
{
	char *end;
	int i;

	*mode = M_DRAIN;
	*for_s = 0;
	*first_id = argc;
	for (i = 1; i < argc; i++) {
		if (*mode != M_DRAIN || *for_s > 0)
			return bad_usage("one command at a time");
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			*mode = M_HELP;
		else if (strcmp(argv[i], "--status") == 0)
			*mode = M_STATUS;
		else if (strcmp(argv[i], "--metrics") == 0)
			*mode = M_METRICS;
		else if (strcmp(argv[i], "--requeue-dead") == 0) {
			*mode = M_REQUEUE;
			*first_id = i + 1;
			return 0;	/* the rest are message ids */
		} else if (strcmp(argv[i], "--for") == 0) {
			if (++i == argc)
				return bad_usage("--for needs a number of seconds");
			errno = 0;
			*for_s = strtod(argv[i], &end);
			if (errno != 0 || end == argv[i] || *end != '\0' || !isfinite(*for_s) ||
			    *for_s <= 0 || *for_s > FOR_MAX_S)
				return bad_usage("--for: want seconds, more than 0 and at most 86400");
		} else
			return bad_usage_arg("unknown argument", argv[i]);
	}
	return 0;
}

static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Unix seconds, with their fraction (the ages --status prints) */
static double
now_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
requeue(struct outbox *ob, struct media_store *ms, char **ids, int nids)
{
	long long n = 0, nm = 0;
	struct logline l;

	if (outbox_requeue(ob, ids, nids, &n) != OUTBOX_OK) {
		log_msg("error", "db", outbox_error(ob));
		return DRAIN_DB;
	}
	if (ms != NULL && media_store_requeue(ms, ids, nids, &nm) != MEDIA_OK) {
		log_msg("error", "db", media_store_error(ms));
		return DRAIN_DB;
	}
	printf("requeued %lld dead row%s%s\n", n, n == 1 ? "" : "s",
	    nids > 0 && n < nids ? " (the other ids were not dead rows)" : "");
	if (ms != NULL)
		printf("requeued %lld dead media item%s\n", nm, nm == 1 ? "" : "s");
	log_begin(&l, "info", "requeue");
	log_int(&l, "named", nids);
	log_int(&l, "requeued", n);
	log_int(&l, "media", nm);
	log_end(&l);
	return fflush(stdout) == 0 ? DRAIN_DONE : DRAIN_LEFT;
}

int
main(int argc, char **argv)
{
	struct drain_config cfg;
	struct outbox *ob = NULL;
	struct outbox_stats st;
	struct media_config mcfg;
	struct media_store *ms = NULL;
	struct media_stats mst;
	struct ops *ops = NULL;
	struct ops_stats ost;
	enum mode mode;
	double for_s;
	char err[512];
	int first_id, rc, curl_up = 0, listen;
	struct logline l;

	memset(&cfg, 0, sizeof(cfg));
	memset(&ost, 0, sizeof(ost));
	if (log_open("wahook-drain", err, sizeof(err)) == -1) {
		log_msg("error", "config", err);
		return DRAIN_CONFIG;
	}
	if ((rc = parse_args(argc, argv, &mode, &for_s, &first_id)) != 0)
		return rc;
	if (mode == M_HELP) {
		fputs(usage, stdout);
		fputs("\nThe variables, NAME=default:\n", stdout);
		conf_help(stdout, drain_vars);
		return 0;
	}
	if (drain_config_load(&cfg, mode == M_DRAIN, err, sizeof(err)) == -1) {
		log_begin(&l, "error", "config");
		log_str(&l, "msg", err);
		log_end(&l);
		return DRAIN_CONFIG;
	}
	env_warn_unknown(environ, known_names);
	if (cfg.reply == DRAIN_REPLY_URL && cfg.reply_url_insecure)
		log_msg("warn", "config", "WAHOOK_REPLY_URL is http:// to a host that is not "
		    "loopback (WAHOOK_REPLY_URL_INSECURE=1): customers' messages and the "
		    "replies travel unencrypted");
	if (media_config_load(&mcfg, err, sizeof(err)) == -1) {
		log_begin(&l, "error", "config");
		log_str(&l, "msg", err);
		log_end(&l);
		drain_config_free(&cfg);
		return DRAIN_CONFIG;
	}
	/*
	 * The reply program is our child: it could read our environment from
	 * /proc/PPID/environ, or our memory, as the same user. The secrets were
	 * copied by the loads above; none stays in the environment, and the
	 * process is not dumpable (no core file; /proc/PID/environ, mem and
	 * ptrace need privilege). A separate user for the program is the real
	 * boundary: the _FILE secrets stay readable to this one.
	 */
	env_scrub(env_names_secret);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		log_msg("warn", "start", "prctl(PR_SET_DUMPABLE, 0) failed: the reply "
		    "program can read this process's memory");
	install_signals();
	/* unlike the responder, which waits for the database and answers 503,
	 * a drainer run without its database has nothing to do: exit 4, loudly */
	/* a --for run listens for the ingest's NOTIFY instead of polling, unless
	 * statements go through a transaction pooler, which keeps no LISTEN */
	listen = mode == M_DRAIN && for_s > 0 && cfg.db_prepare != DB_PREPARE_OFF;
	if ((ob = outbox_open(cfg.db, cfg.db_timeout, cfg.db_prepare, listen, err,
	    sizeof(err))) == NULL) {
		log_begin(&l, "error", "db");
		log_str(&l, "msg", "cannot use the database of WAHOOK_DB");
		log_str(&l, "error", err);
		log_end(&l);
		rc = DRAIN_DB;
		goto done;
	}
	/* wa_media is counted for --metrics even with the media lane off: a
	 * lane switched off by mistake shows as media pending */
	if (mode != M_DRAIN && (mcfg.on || mode == M_METRICS) &&
	    (ms = media_store_open(cfg.db, cfg.db_timeout, cfg.db_prepare, err,
	    sizeof(err))) == NULL) {
		log_begin(&l, "error", "db");
		log_str(&l, "msg", err);
		log_end(&l);
		rc = DRAIN_DB;
		goto done;
	}
	if (mode != M_REQUEUE &&
	    (ops = ops_open(cfg.db, cfg.db_timeout, cfg.db_prepare)) == NULL) {
		log_msg("error", "start", "out of memory");
		rc = DRAIN_LEFT;
		goto done;
	}
	switch (mode) {
	case M_STATUS:
	case M_METRICS:
		if (outbox_stats(ob, &st) != OUTBOX_OK) {
			log_msg("error", "db", outbox_error(ob));
			rc = DRAIN_DB;
			break;
		}
		if (ms != NULL && media_store_stats(ms, &mst) != MEDIA_OK) {
			log_msg("error", "db", media_store_error(ms));
			rc = DRAIN_DB;
			break;
		}
		rc = (mode == M_STATUS ? report_status(stdout, &st) :
		    report_metrics(stdout, &st)) == 0 ? DRAIN_DONE : DRAIN_LEFT;
		if (ms != NULL && rc == DRAIN_DONE)
			rc = (mode == M_STATUS ? report_media_status(stdout, &mst) :
			    report_media_metrics(stdout, &mst)) == 0 ? DRAIN_DONE : DRAIN_LEFT;
		if (rc == DRAIN_DONE) {
			if (ops_stats(ops, &ost) == -1) {
				log_msg("error", "db", ops_error(ops));
				rc = DRAIN_DB;
				break;
			}
			rc = (mode == M_STATUS ?
			    report_ops_status(stdout, &ost, now_unix()) :
			    report_ops_metrics(stdout, &ost)) == 0 ? DRAIN_DONE : DRAIN_LEFT;
		}
		break;
	case M_REQUEUE:
		rc = requeue(ob, ms, argv + first_id, argc - first_id);
		break;
	default:
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			log_msg("error", "start", "curl_global_init failed");
			rc = DRAIN_LEFT;
			break;
		}
		curl_up = 1;
		rc = drain_run(&cfg, &mcfg, ob, ops, for_s, &stop_requested);
		break;
	}
done:
	ops_stats_free(&ost);
	ops_close(ops);
	media_store_close(ms);
	outbox_close(ob);
	if (curl_up)
		curl_global_cleanup();
	drain_config_free(&cfg);
	return rc;
}
