/*
 * tz.h: time zones read from the system's tz database (TZif files), for
 * cron schedules. Thread-safe: a zone is read once into an immutable
 * st_tz, and nothing here touches the process-global TZ / localtime state.
 */
#ifndef STELLAR_TZ_H
#define STELLAR_TZ_H

#include "stellar.h"

#include <stdint.h>

typedef struct st_tz st_tz;

/* The longest zone name accepted ("America/Argentina/ComodRivadavia" is 32). */
#define ST_TZ_NAME_MAX 128

/*
 * Opens a zone by IANA name ("Europe/Berlin"), read from $TZDIR, else
 * /usr/share/zoneinfo. "UTC" always works, even without a tz database.
 * NULL or "" is the machine's local zone: $TZ if set (":NAME" or NAME, a
 * POSIX rule such as "EST5EDT,M3.2.0,M11.1.0", "" for UTC), else
 * /etc/localtime. Names with "..", "." or empty parts, a leading '/',
 * characters other than letters, digits and "/_-+.", or longer than
 * ST_TZ_NAME_MAX are refused (EINVAL); a zone not found is ENOTFOUND; a
 * file that is not valid TZif is EINVAL. Returns STELLAR_OK and *out.
 */
int st_tz_open(const char *name, st_tz **out, stellar_error *e);
void st_tz_free(st_tz *z);

/* The zone's name as opened ("Europe/Berlin"; the local zone's link target
 * under zoneinfo/, or "localtime"). */
const char *st_tz_name(const st_tz *z);

/* The span of constant UTC offset holding the instant t (seconds since the
 * epoch): [start, end), its offset, and the offset just before start.
 * Spans next to each other always differ in offset. */
typedef struct st_tz_span {
    int64_t start;       /* INT64_MIN: since ever */
    int64_t end;         /* INT64_MAX: forever */
    int32_t offset;      /* seconds east of UTC */
    int32_t prev_offset; /* offset before start; = offset if start is MIN */
} st_tz_span;
void st_tz_span_at(const st_tz *z, int64_t t, st_tz_span *s);

/* The UTC offset (seconds east) at instant t. */
int32_t st_tz_offset(const st_tz *z, int64_t t);

/* "2026-01-01T03:00:00-05:00": instant t (seconds) as local time in z;
 * an offset with seconds (old local mean times) as "+00:53:28". */
void st_tz_iso(const st_tz *z, int64_t t, char out[48]);

/* Calendar arithmetic on the proleptic Gregorian calendar, shared with
 * cron.c: days since 1970-01-01 of a date, and back; weekday 0 = Sunday. */
int64_t st_days_from_civil(int64_t y, int m, int d);
void st_civil_from_days(int64_t z, int64_t *y, int *m, int *d);
int st_weekday(int64_t days);
int st_month_days(int64_t y, int m);

#endif /* STELLAR_TZ_H */
