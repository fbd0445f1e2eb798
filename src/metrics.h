/*
 * metrics.h: how metrics.c's in-process series are written out in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * metrics.c is core and is built with or without the HTTP server, so what
 * it defines for /metrics is declared here, below the server: http/prom.c
 * (through http/http.h) includes this file, never the other way round.
 * Feeding the series (st_metrics_job and the rest) is declared in core.h.
 */
#ifndef ST_METRICS_H
#define ST_METRICS_H

#include "core.h"

/* Appends the in-process families (jobs processed / failed / dropped,
 * durations, scheduler lag, recoveries) in the Prometheus text format. */
void st_metrics_write(st_metrics *m, st_buf *out);
/* "# HELP name help\n# TYPE name type\n". */
void st_prom_family(st_buf *b, const char *name, const char *type,
                    const char *help);
/* Appends s escaped as a label value (\\, \", \n), without the quotes. */
void st_prom_label_value(st_buf *b, const char *s);

#endif /* ST_METRICS_H */
