/*
 * media.c - the media lane's thread (see media.h). A slot walks one claimed wa_media row
 * through META (the retrieve call) -> DOWNLOAD (to a temp file, hashed as it
 * arrives) -> STORE (rename into WAHOOK_MEDIA_DIR, or an asynchronous upload
 * into wa_media.data; one upload at a time, the others wait their turn in
 * UPLOAD_WAIT). Every failure before the bytes are stored is one failed
 * attempt: released with backoff, or dead once Meta has forgotten the item.
 * The token goes only to the Graph API and to the URL it returned: redirects
 * are not followed, and an https Graph URL only hands out https downloads.
 */
#include "media.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "drain_exit.h"
#include "engine.h"
#include "graph.h"
#include "log.h"
#include "media_file.h"
#include "media_meta.h"
#include "media_store.h"
#include "outage.h"
#include "pace.h"
#include "refused.h"
#include "transfer.h"

#define ANSWER_MAX	(64 * 1024)
#define CLAIM_POLL_S	1.0	/* media is not latency-critical: claim at most every second */
#define DISCOVER_S	1.0
#define FIRST_WINDOW_S	(8 * 86400.0)	/* media ids live 7 days; one day of margin */
#define WINDOW_SLACK_S	300.0	/* webhooks committed late still fall in the window */
#define ERR_MAX		512
#define HOLD_MAX	64	/* numbers paused by the pacer, kept at once */
#define NUMBER_MAX	64	/* a phone_number_id, with room */
#define LANE_POLL_S	0.25	/* the lane's sleep when idle (it also wakes on I/O) */
#define LANE_DOWN	(-1)	/* m->fatal while the database is away (ridden out) */

enum slot_state { S_FREE, S_META, S_DOWNLOAD, S_UPLOAD_WAIT, S_UPLOAD };

struct mslot {
	struct media	*m;
	struct engine_slot *x;		/* the transfer; the retrieve call's answer up to
					 * ANSWER_MAX, cut past it */
	enum slot_state	 st;
	int		 finished;	/* the transfer ended; result holds how */
	int		 result;	/* CURLcode */
	int		 overflow;	/* more bytes than file_size or WAHOOK_MEDIA_MAX */
	struct media_row row;
	struct curl_slist *hdr;		/* Authorization of the row's number: never logged */
	struct media_meta meta;
	struct media_file file;
	long long	 limit;		/* bytes accepted from the download */
	double		 t0, lease_end;
	char		 hex[MEDIA_HEX_LEN];
	char		 url[GRAPH_URL_MAX + 128];
};

struct hold {
	char	 number[NUMBER_MAX];
	double	 until;
};

struct media {
	struct media_settings	 set;
	const struct media_config *mc;
	struct engine		*eng;		/* the lane's own */
	struct media_store	*ms;		/* the lane's thread only */
	struct media_store	*ms_main;	/* the drain loop's thread (media_ready) */
	struct mslot		*slots;
	pthread_t		 thread;
	int			 started;
	atomic_int		 stop_req;	/* media_stop() was called */
	atomic_int		 poke;		/* media_ready() found new rows: claim */
	atomic_int		 idle;		/* what media_idle() says */
	atomic_int		 fatal_out;	/* what media_fatal() says */
	atomic_int		 graph_config;	/* what media_graph_refused() says */
	pthread_mutex_t		 lock;		/* refused, holds[] */
	struct refused		 refused;	/* numbers stopped by their token */
	struct hold		 holds[HOLD_MAX];
	struct outage		 rider;		/* the database is away: riding it out */
	double			 next_try;	/* when to try it again */
	struct media_row	*claimed;
	int			 nslots;
	int			 active;
	int			 uploading;	/* slot index, or -1 */
	int			 short_claim;	/* the last claim found less than it wanted */
	int			 fatal;
	int			 https_only;
	double			 next_claim, next_discover, last_discover;
	long long		 stored, bytes, retries, dead, too_large;
};

static double
now_s(void)
{
	return log_now_ms() / 1000.0;
}

struct media *
media_new(const struct media_settings *c, const struct media_config *mc, char *err,
    size_t errlen)
{
	struct media *m = NULL;
	int i, n;

	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->slots = calloc((size_t)mc->concurrency, sizeof(*m->slots))) == NULL ||
	    (m->claimed = calloc((size_t)mc->concurrency, sizeof(*m->claimed))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	m->set = *c;
	m->mc = mc;
	outage_init(&m->rider, c->db_outage_max, "media", "lost the database: media "
	    "fetching waits for it for up to WAHOOK_DB_OUTAGE_MAX; the fetches in flight "
	    "are done again later", "the database answers again: media fetching carries on");
	pthread_mutex_init(&m->lock, NULL);
	if ((m->eng = engine_new(mc->concurrency, 0, err, errlen)) == NULL)
		goto fail;
	m->nslots = mc->concurrency;
	m->uploading = -1;
	m->https_only = strncmp(c->url, "https://", 8) == 0;
	for (i = 0; i < m->nslots; i++) {
		m->slots[i].m = m;
		media_file_init(&m->slots[i].file);
		if ((m->slots[i].x = engine_slot_new(m->eng, ANSWER_MAX)) == NULL) {
			snprintf(err, errlen, "out of memory (libcurl)");
			goto fail;
		}
	}
	if ((m->ms = media_store_open(c->db, c->db_timeout, c->db_prepare, err,
	    errlen)) == NULL || (m->ms_main = media_store_open(c->db, c->db_timeout,
	    c->db_prepare, err, errlen)) == NULL)
		goto fail;
	if (mc->dir[0] != '\0' && (n = media_file_clean(mc->dir, 2 * c->lease)) > 0) {
		struct logline l;

		log_begin(&l, "warn", "media_tmp_cleaned");
		log_int(&l, "files", n);
		log_str(&l, "msg", "temp files of an interrupted fetch removed");
		log_end(&l);
	}
	return m;
fail:
	media_free(m);
	return NULL;
}

/* Wipes and frees the slot's Authorization header. */
static void
drop_header(struct mslot *s)
{
	transfer_headers_free(s->hdr);
	s->hdr = NULL;
}

/* Takes the slot's transfer out of the engine (if there). */
static void
detach(struct mslot *s)
{
	engine_cancel(s->x);
	s->finished = 0;
}

/* Frees the slot for the next row; its temp file goes. */
static void
slot_free(struct media *m, struct mslot *s)
{
	detach(s);
	media_file_close(&s->file);
	media_row_clear(&s->row);
	drop_header(s);
	s->st = S_FREE;
	m->active--;
	m->short_claim = 0;
	m->next_claim = 0;
}

/* The database failed under the lane: a lost one is ridden out (outage()),
 * anything else ends the run with exit 4. */
static void
db_fail(struct media *m)
{
	struct logline l;

	if (media_store_down(m->ms) && m->set.db_outage_max > 0) {
		m->fatal = LANE_DOWN;
		return;
	}
	log_begin(&l, "error", "db");
	log_str(&l, "lane", "media");
	log_str(&l, "msg", media_store_error(m->ms));
	log_end(&l);
	m->fatal = DRAIN_DB;
}

/* Applies the rc of a write that ends the slot's hold on its row. */
static void
ended(struct media *m, struct mslot *s, int rc)
{
	if (rc == MEDIA_FAIL)
		db_fail(m);
	else if (rc == MEDIA_LOST)
		log_msg("warn", "lost_claim", "media: lease expired and the row was claimed again");
	slot_free(m, s);
}

static void
log_media(const struct mslot *s, const char *level, const char *outcome, const char *why,
    double retry_in)
{
	struct logline l;

	log_begin(&l, level, "media");
	log_str(&l, "media_id", s->row.media_id);
	log_str(&l, "id", s->row.message_id);
	log_str(&l, "outcome", outcome);
	if (s->file.size > 0 || strcmp(outcome, "stored") == 0)
		log_int(&l, "bytes", s->file.size);
	log_ms(&l, "ms", log_now_ms() - s->t0);
	if (why != NULL) {
		log_int(&l, "attempts", s->row.attempts + 1);
		if (retry_in > 0)
			log_ms(&l, "retry_in_ms", retry_in * 1000);
		log_str(&l, "err", why);
	}
	log_end(&l);
}

/* One failed attempt: retried with backoff, or dead once Meta forgot the item. */
static void
failed(struct media *m, struct mslot *s, const char *why, double retry_after)
{
	char reason[ERR_MAX + 96];
	double delay;

	if (s->row.expired) {
		snprintf(reason, sizeof(reason), "%s (given up: 7 days after the message, "
		    "Meta no longer has it)", why);
		log_media(s, "error", "dead", reason, 0);
		m->dead++;
		ended(m, s, media_store_dead(m->ms, &s->row, reason));
		return;
	}
	delay = pace_backoff(m->set.retry_min, m->set.retry_max, s->row.attempts + 1,
	    retry_after, (double)arc4random() / 4294967296.0);
	log_media(s, "warn", "retry", why, delay);
	m->retries++;
	ended(m, s, media_store_retry(m->ms, &s->row, delay, why));
}

static void
permanent(struct media *m, struct mslot *s, const char *why)
{
	log_media(s, "error", "dead", why, 0);
	m->dead++;
	ended(m, s, media_store_dead(m->ms, &s->row, why));
}

/* The number's token was refused (or none serves it): its media wait untouched
 * for a new token, the other numbers go on; the run ends with exit 3. */
static void
auth_refused(struct media *m, struct mslot *s, long http, const char *step)
{
	struct logline l;

	pthread_mutex_lock(&m->lock);
	if (!refused_has(&m->refused, s->row.phone_number_id)) {
		log_begin(&l, "error", "credentials");
		log_str(&l, "lane", "media");
		log_str(&l, "number", s->row.phone_number_id);
		log_str(&l, "step", step);
		log_int(&l, "http", http);
		log_str(&l, "msg", "the Graph API refused this number's access token (or none "
		    "is configured for it): its rows and media wait untouched for a new "
		    "token, every other number goes on; the run exits 3");
		log_end(&l);
		/* past REFUSED_MAX the number is not skipped, but the run exits 3 */
		refused_add(&m->refused, s->row.phone_number_id);
	}
	pthread_mutex_unlock(&m->lock);
	ended(m, s, media_store_release(m->ms, &s->row));
}

/*
 * WAHOOK_GRAPH_URL answered like no Graph API (a proxy's page, a wrong base
 * URL): not the item's fault. The row is released untouched, the lane claims
 * nothing more, and the run exits 5 as the conversations' lane does.
 */
static void
graph_config(struct media *m, struct mslot *s, const char *why)
{
	struct logline l;

	if (!atomic_exchange(&m->graph_config, 1)) {
		log_begin(&l, "error", "graph_config");
		log_str(&l, "lane", "media");
		log_str(&l, "err", why);
		log_str(&l, "msg", "WAHOOK_GRAPH_URL answered like no Graph API: media "
		    "fetching stops for this run (exit 5); the items wait untouched");
		log_end(&l);
	}
	ended(m, s, media_store_release(m->ms, &s->row));
}

/* A transfer that ended without an HTTP answer (network error, timeout, cut). */
static void
no_answer(struct media *m, struct mslot *s, const char *step, int res)
{
	char why[ERR_MAX];

	snprintf(why, sizeof(why), "%s: curl: %.60s%s%.160s", step,
	    curl_easy_strerror((CURLcode)res), s->x->errbuf[0] ? ": " : "", s->x->errbuf);
	failed(m, s, why, 0);
}

static size_t
on_bytes(void *arg, const char *p, size_t len)
{
	struct mslot *s = arg;

	if (s->file.size + (long long)len > s->limit) {
		s->overflow = 1;
		return 0;	/* aborts the transfer */
	}
	if (media_file_write(&s->file, p, len) == -1)
		return 0;
	return len;
}

/* The engine's callback: the slot's transfer ended; the lane's step() judges it. */
static void
xfer_ended(void *arg, struct engine_slot *x, CURLcode rc)
{
	struct mslot *s = arg;

	(void)x;
	s->finished = 1;
	s->result = (int)rc;
}

/* Common options of both requests; the URL and callbacks are set by the caller. */
static int
start_transfer(struct media *m, struct mslot *s, const char *url, int download)
{
	CURL *e = engine_prepare(s->x);
	long to_ms = (long)(m->set.timeout * 1000);

	s->finished = 0;
	transfer_setup(e, url, m->https_only, to_ms);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->hdr);
	if (download) {
		curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->limit);
		engine_sink(s->x, on_bytes, s);
	}
	/*
	 * No CURLOPT_TIMEOUT_MS nor low-speed limit: the engine measures the
	 * limits right after libcurl read what had arrived: a retrieve call gets
	 * WAHOOK_HTTP_TIMEOUT in all, a download as long as bytes keep coming
	 * (100 MB take their time), cut after WAHOOK_HTTP_TIMEOUT without one.
	 */
	return engine_start(s->x, download ? ENGINE_IDLE : ENGINE_TOTAL, (double)to_ms,
	    "WAHOOK_HTTP_TIMEOUT", xfer_ended, s);
}

static int
id_safe(const char *s)
{
	size_t n = strspn(s, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-");

	return n > 0 && n <= 128 && s[n] == '\0';
}

static void
start_meta(struct media *m, struct mslot *s, double t)
{
	const char *token = tokens_pick(m->set.tokens, m->set.token, s->row.phone_number_id);

	s->t0 = log_now_ms();
	s->lease_end = t + m->set.lease;
	s->st = S_META;
	if (token == NULL) {
		auth_refused(m, s, 0, "token");
		return;
	}
	if ((s->hdr = transfer_auth_headers(token, NULL)) == NULL) {
		failed(m, s, "out of memory (or a token too long) building the request", 0);
		return;
	}
	if (!id_safe(s->row.media_id) || !id_safe(s->row.phone_number_id) ||
	    (size_t)snprintf(s->url, sizeof(s->url), "%s/%s?phone_number_id=%s",
	    m->set.url, s->row.media_id, s->row.phone_number_id) >= sizeof(s->url)) {
		permanent(m, s, "media id or phone_number_id is not a URL-safe id");
		return;
	}
	if (start_transfer(m, s, s->url, 0) == -1)
		failed(m, s, "curl_multi_add_handle failed", 0);
}

static void
meta_done(struct media *m, struct mslot *s)
{
	struct graph_result r;
	long http = 0;
	curl_off_t ra = 0;
	char why[ERR_MAX], perr[256];
	int res = s->result;
	const struct transfer_answer *ans = &s->x->ans;

	curl_easy_getinfo(s->x->easy, CURLINFO_RESPONSE_CODE, &http);
	curl_easy_getinfo(s->x->easy, CURLINFO_RETRY_AFTER, &ra);
	detach(s);
	/* an answer cut at the cap was an answer all the same: judged on its status */
	if ((res != CURLE_OK && !ans->over) || http == 0) {
		no_answer(m, s, "retrieve", res);
		return;
	}
	if (http != 200) {
		graph_classify(GRAPH_READ, http, ans->buf.s, ans->buf.len, ans->over, &r);
		snprintf(why, sizeof(why), "retrieve: code=%ld http=%ld msg=%s",
		    r.code == GRAPH_NO_CODE ? -1L : r.code, http, r.msg);
		if (r.cls == GRAPH_AUTH)
			auth_refused(m, s, http, "retrieve");
		else if (r.cls == GRAPH_CONFIG)
			graph_config(m, s, why);
		else if (r.cls == GRAPH_PERMANENT && r.code != GRAPH_NO_CODE)
			permanent(m, s, why);
		else
			failed(m, s, why, ra > 0 ? (double)ra : 0);
		return;
	}
	if (ans->over) {
		snprintf(why, sizeof(why), "retrieve answer: over %d bytes", ANSWER_MAX);
		failed(m, s, why, 0);
		return;
	}
	if (media_meta_parse(ans->buf.s, ans->buf.len, &s->meta, perr, sizeof(perr)) == -1) {
		failed(m, s, perr, 0);
		return;
	}
	if (s->meta.file_size > m->mc->max) {
		snprintf(why, sizeof(why), "file_size %lld is over WAHOOK_MEDIA_MAX %lld: "
		    "not fetched", s->meta.file_size, m->mc->max);
		log_media(s, "warn", "too_large", why, 0);
		m->too_large++;
		ended(m, s, media_store_too_large(m->ms, &s->row, s->meta.mime_type,
		    s->meta.file_size, why));
		return;
	}
	if (m->https_only && strncmp(s->meta.url, "https://", 8) != 0) {
		failed(m, s, "retrieve: the download URL is not https: the token is not sent "
		    "in clear", 0);
		return;
	}
	s->limit = s->meta.file_size >= 0 ? s->meta.file_size : m->mc->max;
	s->overflow = 0;
	if (media_file_open(&s->file, m->mc->spool, m->mc->dir[0] != '\0', perr,
	    sizeof(perr)) == -1) {
		failed(m, s, perr, 0);
		return;
	}
	s->st = S_DOWNLOAD;
	if (start_transfer(m, s, s->meta.url, 1) == -1)
		failed(m, s, "curl_multi_add_handle failed", 0);
}

/* The bytes are checked: store them (directory now, database through the upload). */
static void
store(struct media *m, struct mslot *s)
{
	char path[MEDIA_PATH_MAX], err[256];
	long long size = s->file.size;

	if (m->mc->dir[0] == '\0') {
		s->st = S_UPLOAD_WAIT;
		return;
	}
	if (media_file_commit(&s->file, m->mc->dir, s->hex, path, sizeof(path), err,
	    sizeof(err)) == -1) {
		failed(m, s, err, 0);
		return;
	}
	s->file.size = size;	/* (closed by the commit) for the log line */
	log_media(s, "info", "stored", NULL, 0);
	m->stored++;
	m->bytes += size;
	ended(m, s, media_store_done_path(m->ms, &s->row, path, s->meta.mime_type, s->hex,
	    size));
}

static void
download_done(struct media *m, struct mslot *s)
{
	long http = 0;
	char why[ERR_MAX];
	unsigned char got[MEDIA_SHA_LEN];
	int res = s->result;

	curl_easy_getinfo(s->x->easy, CURLINFO_RESPONSE_CODE, &http);
	detach(s);
	if (http == 401) {
		auth_refused(m, s, http, "download");
		return;
	}
	if (s->overflow || res == CURLE_FILESIZE_EXCEEDED) {
		if (s->meta.file_size < 0) {
			snprintf(why, sizeof(why), "over WAHOOK_MEDIA_MAX %lld bytes: not kept",
			    m->mc->max);
			log_media(s, "warn", "too_large", why, 0);
			m->too_large++;
			ended(m, s, media_store_too_large(m->ms, &s->row, s->meta.mime_type, -1,
			    why));
		} else {
			snprintf(why, sizeof(why), "download: more bytes than file_size %lld",
			    s->meta.file_size);
			failed(m, s, why, 0);
		}
		return;
	}
	if (res != CURLE_OK || http == 0) {
		no_answer(m, s, "download", res);
		return;
	}
	if (http != 200) {
		/* an expired URL (404/403) is the usual case: the next attempt gets a new one */
		snprintf(why, sizeof(why), "download: HTTP %ld", http);
		failed(m, s, why, 0);
		return;
	}
	if (s->meta.file_size >= 0 && s->file.size != s->meta.file_size) {
		snprintf(why, sizeof(why), "download: %lld bytes, file_size says %lld",
		    s->file.size, s->meta.file_size);
		failed(m, s, why, 0);
		return;
	}
	media_file_digest(&s->file, got);
	if (memcmp(got, s->meta.sha256, sizeof(got)) != 0) {
		char want[MEDIA_HEX_LEN], have[MEDIA_HEX_LEN];

		media_sha256_hex(s->meta.sha256, want);
		media_sha256_hex(got, have);
		snprintf(why, sizeof(why), "download: sha256 mismatch: got %s, want %s",
		    have, want);
		failed(m, s, why, 0);
		return;
	}
	media_sha256_hex(got, s->hex);
	store(m, s);
}

static void
upload_turn(struct media *m)
{
	struct mslot *s;
	int i, rc;

	if (m->uploading >= 0) {
		s = &m->slots[m->uploading];
		if (media_store_upload_poll(m->ms, &rc) == 0)
			return;
		m->uploading = -1;
		if (rc == MEDIA_OK) {
			log_media(s, "info", "stored", NULL, 0);
			m->stored++;
			m->bytes += s->file.size;
			slot_free(m, s);
		} else if (rc == MEDIA_LOST) {
			ended(m, s, MEDIA_LOST);
		} else {
			char why[ERR_MAX];

			snprintf(why, sizeof(why), "storing: %s", media_store_error(m->ms));
			failed(m, s, why, 0);
		}
	}
	for (i = 0; i < m->nslots && m->uploading < 0 && !m->fatal; i++) {
		s = &m->slots[i];
		if (s->st != S_UPLOAD_WAIT)
			continue;
		if (media_store_upload_begin(m->ms, &s->row, &s->file, s->meta.mime_type,
		    s->hex, s->file.size) == -1) {
			char why[ERR_MAX];

			snprintf(why, sizeof(why), "storing: %s", media_store_error(m->ms));
			failed(m, s, why, 0);
			continue;
		}
		s->st = S_UPLOAD;
		m->uploading = i;
	}
}

static void
discover(struct media *m, double t)
{
	long long n = 0;
	double window = m->last_discover > 0 ? t - m->last_discover + WINDOW_SLACK_S :
	    FIRST_WINDOW_S;

	if (media_store_discover(m->ms, window, NULL, &n) != MEDIA_OK) {
		db_fail(m);
		return;
	}
	m->last_discover = t;
	m->next_discover = t + DISCOVER_S;
	if (n > 0) {
		struct logline l;

		log_begin(&l, "info", "media_found");
		log_int(&l, "items", n);
		log_end(&l);
		m->short_claim = 0;
		m->next_claim = 0;
	}
}

static void
claim(struct media *m, double t)
{
	int want = m->nslots - m->active, n = 0, i, k = 0;
	struct mslot *s;
	const char *number;

	json_object *skip = json_object_new_array();
	const char *sskip;

	pthread_mutex_lock(&m->lock);
	for (i = 0; skip != NULL && (number = refused_at(&m->refused, i)) != NULL; i++)
		json_object_array_add(skip, json_object_new_string(number));
	for (i = 0; skip != NULL && i < HOLD_MAX; i++)	/* paused by the pacer */
		if (m->holds[i].until > t)
			json_object_array_add(skip, json_object_new_string(m->holds[i].number));
	pthread_mutex_unlock(&m->lock);
	sskip = skip != NULL ? json_object_to_json_string_ext(skip, JSON_C_TO_STRING_PLAIN) :
	    NULL;
	if (sskip == NULL || media_store_claim(m->ms, want, m->set.lease, sskip, m->claimed,
	    &n) != MEDIA_OK) {
		json_object_put(skip);
		db_fail(m);
		return;
	}
	json_object_put(skip);
	m->short_claim = n < want;
	m->next_claim = n < want ? t + CLAIM_POLL_S : 0;
	for (i = 0; i < n; i++) {
		while (m->slots[k].st != S_FREE)
			k++;
		s = &m->slots[k];
		s->row = m->claimed[i];
		memset(&m->claimed[i], 0, sizeof(m->claimed[i]));
		m->active++;
		start_meta(m, s, t);
		if (m->fatal)
			break;
	}
	for (i++; i < n; i++)	/* after a fatal error: the leases run out */
		media_row_clear(&m->claimed[i]);
}

/* Gives back every claimed row (none when the database is gone). */
static void
release_all(struct media *m)
{
	struct mslot *s;
	int i;

	if (m->uploading >= 0) {
		media_store_upload_abort(m->ms);
		m->uploading = -1;
	}
	for (i = 0; i < m->nslots; i++) {
		s = &m->slots[i];
		if (s->st == S_FREE)
			continue;
		detach(s);
		/* a dead database: the leases run out by themselves */
		if (m->fatal == 0 && !outage_riding(&m->rider) &&
		    media_store_release(m->ms, &s->row) == MEDIA_FAIL)
			m->fatal = DRAIN_DB;
		slot_free(m, s);
	}
}

/*
 * The database went away under the lane (m->fatal == LANE_DOWN): what was in
 * flight is dropped without a write (the leases run out; nothing was counted
 * as an attempt, a file already renamed into place is simply fetched again),
 * and the lane waits, trying again after the rider's backoff (outage.h), for
 * up to WAHOOK_DB_OUTAGE_MAX from the first failure; past that, exit 4.
 */
static void
outage(struct media *m, double t)
{
	double delay;

	release_all(m);		/* m->fatal is LANE_DOWN: no writes */
	if ((delay = outage_down(&m->rider, media_store_error(m->ms))) < 0) {
		m->fatal = DRAIN_DB;
		return;
	}
	m->fatal = 0;
	m->next_try = t + delay;
	m->next_discover = 0;
	m->next_claim = 0;
}

/*
 * One turn of the lane at time t (monotonic seconds): collects finished
 * transfers, advances the upload, renews leases, discovers new media messages
 * (at most every second), claims due rows into free slots and starts them.
 * Returns 0, or the drainer's exit code that must end the run; *wake is
 * lowered to the seconds until the lane wants its next turn.
 */
static int
step(struct media *m, double t, double *wake)
{
	struct mslot *s;
	int i, rc, was_down = outage_riding(&m->rider);
	double t0;

	if (was_down && t < m->next_try) {
		*wake = m->next_try - t;
		return 0;
	}
	if (atomic_exchange(&m->poke, 0)) {
		m->short_claim = 0;
		m->next_claim = 0;
	}
	for (i = 0; i < m->nslots && !m->fatal; i++) {
		s = &m->slots[i];
		if (!s->finished)
			continue;
		if (s->st == S_META)
			meta_done(m, s);
		else if (s->st == S_DOWNLOAD)
			download_done(m, s);
	}
	if (!m->fatal)
		upload_turn(m);
	for (i = 0; i < m->nslots && !m->fatal; i++) {
		s = &m->slots[i];
		/* an upload holds its row locked instead (media_store.c) */
		if (s->st == S_FREE || s->st == S_UPLOAD || s->lease_end - t > m->set.lease / 2)
			continue;
		t0 = now_s();
		if ((rc = media_store_renew(m->ms, &s->row, m->set.lease)) != MEDIA_OK) {
			ended(m, s, rc);
			continue;
		}
		s->lease_end = t0 + m->set.lease;
	}
	if (!m->fatal && (t >= m->next_discover || was_down))
		discover(m, t);
	if (!m->fatal && was_down)
		outage_up(&m->rider);
	if (!m->fatal && !atomic_load(&m->graph_config) && m->active < m->nslots &&
	    t >= m->next_claim)
		claim(m, t);
	if (m->fatal == LANE_DOWN)
		outage(m, t);
	if (m->active < m->nslots && m->next_claim > t && m->next_claim - t < *wake)
		*wake = m->next_claim - t;
	if (m->next_discover > t && m->next_discover - t < *wake)
		*wake = m->next_discover - t;
	return m->fatal;
}

static void *
lane(void *arg)
{
	struct media *m = arg;
	struct curl_waitfd fd;
	double wake;
	int rc, n;

	while (!atomic_load(&m->stop_req)) {
		wake = LANE_POLL_S;
		if ((rc = step(m, now_s(), &wake)) != 0) {
			atomic_store(&m->fatal_out, rc);
			break;
		}
		atomic_store(&m->idle, m->active == 0 && m->short_claim &&
		    !outage_riding(&m->rider) && !atomic_load(&m->poke));
		n = 0;
		if ((fd.fd = media_store_upload_fd(m->ms)) >= 0) {
			fd.events = CURL_WAIT_POLLIN | (media_store_upload_writing(m->ms) ?
			    CURL_WAIT_POLLOUT : 0);
			fd.revents = 0;
			n = 1;
		}
		/* the engine shortens the wait to the first transfer's limit */
		if (engine_wait(m->eng, n ? &fd : NULL, (unsigned)n,
		    (int)(wake * 1000) + 1) != 0) {
			log_msg("error", "curl", "media: the lane's curl multi handle failed: "
			    "media fetching stops for this run");
			break;
		}
	}
	release_all(m);
	atomic_store(&m->idle, 1);
	return NULL;
}

int
media_start(struct media *m, char *err, size_t errlen)
{
	sigset_t all, old;
	int rc;

	/* signals are the drain loop's business: the lane's thread blocks them all */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&m->thread, NULL, lane, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "media: cannot start the lane's thread");
		return -1;
	}
	m->started = 1;
	return 0;
}

void
media_stop(struct media *m)
{
	if (m == NULL || atomic_exchange(&m->stop_req, 1))
		return;
	engine_wakeup(m->eng);
}

void
media_join(struct media *m)
{
	if (m == NULL || !m->started)
		return;
	media_stop(m);
	pthread_join(m->thread, NULL);
	m->started = 0;
}

int
media_idle(const struct media *m)
{
	return atomic_load(&m->idle);
}

int
media_fatal(const struct media *m)
{
	return atomic_load(&m->fatal_out);
}

int
media_graph_refused(const struct media *m)
{
	return atomic_load(&m->graph_config);
}

void
media_refuse(struct media *m, const char *number)
{
	pthread_mutex_lock(&m->lock);
	refused_add(&m->refused, number);	/* full: the drain loop stops the run */
	pthread_mutex_unlock(&m->lock);
}

int
media_refused_number(struct media *m, int i, char *buf, size_t len)
{
	const char *number;
	int found = 0;

	pthread_mutex_lock(&m->lock);
	if ((number = refused_at(&m->refused, i)) != NULL) {
		snprintf(buf, len, "%s", number);
		found = 1;
	}
	pthread_mutex_unlock(&m->lock);
	return found;
}

void
media_hold(struct media *m, const char *number, double until)
{
	int i, k = -1;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < HOLD_MAX; i++) {
		if (strcmp(m->holds[i].number, number) == 0) {
			k = i;
			break;
		}
		if (k < 0 || m->holds[i].until < m->holds[k].until)
			k = i;	/* else the entry that ends first */
	}
	if (snprintf(m->holds[k].number, NUMBER_MAX, "%s", number) < NUMBER_MAX &&
	    until > m->holds[k].until)
		m->holds[k].until = until;
	pthread_mutex_unlock(&m->lock);
}

long long
media_pending(struct media *m)
{
	struct media_stats st;

	if (media_store_stats(m->ms, &st) != MEDIA_OK)
		return -1;
	return st.pending;
}

int
media_ready(struct media *m, const char *message_id)
{
	struct logline l;
	long long n;
	int settled = 0;

	if (media_store_discover(m->ms_main, 0, message_id, &n) != MEDIA_OK ||
	    media_store_settled(m->ms_main, message_id, &settled) != MEDIA_OK) {
		log_begin(&l, "error", "db");
		log_str(&l, "lane", "media");
		log_str(&l, "msg", media_store_error(m->ms_main));
		log_end(&l);
		return -1;
	}
	if (n > 0) {
		atomic_store(&m->poke, 1);
		atomic_store(&m->idle, 0);
		engine_wakeup(m->eng);
	}
	return settled;
}

char *
media_describe(struct media *m, const char *message_id)
{
	char *json = NULL;

	if (media_store_describe(m->ms_main, message_id, &json) != MEDIA_OK)
		return NULL;
	return json;
}

void
media_free(struct media *m)
{
	struct logline l;
	int i;

	if (m == NULL)
		return;
	media_join(m);
	if (m->stored + m->retries + m->dead + m->too_large > 0) {
		log_begin(&l, "info", "media_end");
		log_int(&l, "stored", m->stored);
		log_int(&l, "bytes", m->bytes);
		log_int(&l, "retries", m->retries);
		log_int(&l, "dead", m->dead);
		log_int(&l, "too_large", m->too_large);
		log_end(&l);
	}
	for (i = 0; m->slots != NULL && i < m->nslots; i++) {
		detach(&m->slots[i]);
		media_file_close(&m->slots[i].file);
		media_row_clear(&m->slots[i].row);
	}
	engine_free(m->eng);
	media_store_close(m->ms);
	media_store_close(m->ms_main);
	refused_free(&m->refused);
	pthread_mutex_destroy(&m->lock);
	free(m->slots);
	free(m->claimed);
	free(m);
}
