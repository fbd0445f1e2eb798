/*
 * cron.h: cron expressions, and the next time one fires in a time zone.
 * Pure computation (no I/O, no global state): the rules are in
 * docs/schedules.md, and tests/cron/ checks them against an oracle.
 */
#ifndef STELLAR_CRON_H
#define STELLAR_CRON_H

#include "stellar.h"
#include "tz.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct st_cron {
    uint64_t sec;  /* bit n: second n (0-59); 5 fields: second 0 only */
    uint64_t min;  /* bits 0-59 */
    uint32_t hour; /* bits 0-23 */
    uint32_t dom;  /* bits 1-31 */
    uint16_t mon;  /* bits 1-12 */
    uint8_t dow;   /* bits 0-6, 0 = Sunday (7 is read as 0) */
    bool dom_star; /* the field starts with '*' (Vixie cron's DOM_STAR) */
    bool dow_star;
    bool interval; /* seconds, minute or hour field starts with '*': keeps
                      its real-time cadence across offset changes */
    bool seconds;  /* written with 6 fields */
} st_cron;

/*
 * Parses expr: 5 fields (minute hour day-of-month month day-of-week), 6
 * (seconds first), or a macro (@hourly ...). On error returns EINVAL with a
 * message naming the field: "cron: hour field: 25 is out of range 0-23".
 */
int st_cron_parse(st_cron *c, const char *expr, stellar_error *e);

/*
 * The first instant strictly after after_ms (ms since the epoch) at which c
 * fires in zone z, in *next_ms (whole seconds). false if there is none
 * before the year 9999 (or within 400 years), or after_ms is outside the
 * years 1-9999.
 */
bool st_cron_next(const st_cron *c, const st_tz *z, int64_t after_ms,
                  int64_t *next_ms);

#endif /* STELLAR_CRON_H */
