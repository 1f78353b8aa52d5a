/*
 * report.h - the operator's views of the outbox: --status (for people) and
 * --metrics (Prometheus text exposition format, for node_exporter's textfile
 * collector). Formatting only: the numbers come from outbox_stats().
 */
#ifndef WAHOOK_REPORT_H
#define WAHOOK_REPORT_H

#include <stdio.h>

#include "outbox.h"

/* Writes the human-readable status to f. Returns 0, or -1 when writing failed. */
int	report_status(FILE *f, const struct outbox_stats *st);

/* Writes every gauge with # HELP and # TYPE lines. Returns 0, or -1 when writing
 * failed. */
int	report_metrics(FILE *f, const struct outbox_stats *st);

#endif
