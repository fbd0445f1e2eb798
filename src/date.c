/*
 * date.c: reading the date strings Resque clients write, as JavaScript's
 * Date.parse reads them. util.c's st_js_date and st_iso_date write them.
 *
 * Dates arrive as text in working-on records (run_at), failed entries
 * (failed_at) and resque-retry's keys, written by node-resque, Ruby Resque
 * plugins and Stellar itself. Three forms are written in practice, and
 * st_js_date_parse reads all of them to the millisecond:
 *   Date.prototype.toString()  "Sun Nov 29 2026 02:20:19 GMT+0530 (...)"
 *                              any offset; none (no "GMT+hhmm") means UTC
 *   toISOString() / ISO-8601   "2026-11-29T02:20:19.123Z", fraction and
 *                              offset (Z, +hh:mm, +hhmm, +hh) optional;
 *                              none means UTC; extended years (+010000)
 *   resque-retry               "2026/11/29 02:20:19", UTC
 * It is one parser for the whole program (the CLI's tables and the Redis
 * backend's stuck-worker check), so both read the same dates the same way.
 * Pure: no time zone database, no locale, no I/O.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t civil_ms(int y, int mo, int d, int h, int mi, int s)
{
    return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
           (int64_t)s * 1000;
}

/* 1..12 for "Jan".."Dec", else 0. */
static int month_of(const char *m)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const char *p = strstr(names, m);
    return p && strlen(m) == 3 && (p - names) % 3 == 0
               ? (int)(p - names) / 3 + 1
               : 0;
}

/* Reads up to max digits at *p into *v; the count read. */
static int digits(const char **p, int max, int *v)
{
    int n = 0;
    *v = 0;
    while (n < max && **p >= '0' && **p <= '9') {
        *v = *v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    return n;
}

/* An ISO-8601 offset at p ("+05:30", "+0530", "+05"), in ms east of UTC;
 * 0 for "Z", nothing or anything else. */
static int64_t iso_offset(const char *p)
{
    int sign, oh = 0, om = 0;

    if (*p != '+' && *p != '-') return 0;
    sign = *p++ == '+' ? 1 : -1;
    if (digits(&p, 2, &oh) == 0) return 0;
    if (*p == ':') p++;
    digits(&p, 2, &om);
    return sign * ((int64_t)oh * 60 + om) * 60000;
}

bool st_js_date_parse(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, n = 0;
    char wd[4], mon[4];

    if (!s) return false;
    if (sscanf(s, "%d-%d-%dT%d:%d:%d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 &&
        n > 0) {
        const char *p = s + n;
        int frac = 0, nd = 0;
        if (*p == '.') {
            for (p++; *p >= '0' && *p <= '9'; p++, nd++)
                if (nd < 3) frac = frac * 10 + (*p - '0');
            for (; nd > 0 && nd < 3; nd++) /* ".5" is 500 ms */
                frac *= 10;
        }
        *ms = civil_ms(y, mo, d, h, mi, sec) + frac - iso_offset(p);
        return true;
    }
    if (sscanf(s, "%3s %3s %d %d %d:%d:%d%n", wd, mon, &d, &y, &h, &mi, &sec,
               &n) == 7 &&
        n > 0 && month_of(mon)) {
        const char *p = s + n;
        int off = 0;
        *ms = civil_ms(y, month_of(mon), d, h, mi, sec);
        while (*p == ' ')
            p++;
        if (strncmp(p, "GMT", 3) == 0 && (p[3] == '+' || p[3] == '-')) {
            const char *q = p + 4;
            if (digits(&q, 4, &off) == 4)
                *ms -= (p[3] == '+' ? 1 : -1) *
                       ((int64_t)(off / 100) * 60 + off % 100) * 60000;
        }
        return true;
    }
    if (sscanf(s, "%d/%d/%d %d:%d:%d", &y, &mo, &d, &h, &mi, &sec) == 6) {
        *ms = civil_ms(y, mo, d, h, mi, sec);
        return true;
    }
    return false;
}
