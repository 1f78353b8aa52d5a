/*
 * report.h - the operator's views of the outbox: --status (for people) and
 * --metrics (Prometheus text exposition format, for node_exporter's textfile
 * collector). Formatting only: the numbers come from outbox_stats().
 */
#ifndef WAHOOK_REPORT_H
#define WAHOOK_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "media_store.h"
#include "ops.h"
#include "outbox.h"

/* Writes the human-readable status to f. Returns 0, or -1 when writing failed. */
int	report_status(FILE *f, const struct outbox_stats *st);

/*
 * Formats a sample value for the exposition format: whole numbers (below 2^53)
 * without a fraction, others with three decimals (no "2.3302429999999998"),
 * NaN and +Inf/-Inf as Prometheus spells them. Returns 0, or -1 when buf is
 * too small.
 */
int	report_number(char *buf, size_t len, double v);

/* Writes every gauge with # HELP and # TYPE lines. Returns 0, or -1 when writing
 * failed. */
int	report_metrics(FILE *f, const struct outbox_stats *st);

/* The same for wa_media (shown when the media lane is on). */
int	report_media_status(FILE *f, const struct media_stats *st);
int	report_media_metrics(FILE *f, const struct media_stats *st);

/* The alerting record for people: each number's last message and refused
 * token, each host's drainer, the quarantine, as ages from now (Unix
 * seconds). Returns 0, or -1 when writing failed. */
int	report_ops_status(FILE *f, const struct ops_stats *st, double now);

/* The alerting record (ops.h): last inbound message per number, refused
 * tokens, each host's drainer, the quarantine. Returns 0, or -1 when writing
 * failed. */
int	report_ops_metrics(FILE *f, const struct ops_stats *st);

#endif
