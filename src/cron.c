/*
 * cron.c: cron expressions and their next fire time in a time zone.
 *
 * Parsing follows Vixie cron (the cron of most Unix systems), with a seconds
 * field allowed first: each field becomes a bit set, and two flags keep
 * what Vixie keeps from the text. A day-of-month or day-of-week field that
 * starts with '*' makes the two combine with AND (so "*" simply does not
 * restrict); two restricted fields combine with OR. A seconds, minute or
 * hour field that starts with '*' makes the job an interval job.
 *
 * The next fire time walks the zone's spans of constant UTC offset
 * (tz.c): inside a span, local time is UTC plus a constant, so the next
 * matching local time is plain calendar arithmetic (next_local). Where
 * spans meet, the DST rules of docs/schedules.md apply:
 *  - fixed-time jobs: a matching local time in the gap of a spring-forward
 *    fires once at the first instant after the gap (the span's start); a
 *    local time repeated by a fall-back fires at its first occurrence only,
 *    so the repeated part of the later span is skipped;
 *  - interval jobs: fire at every instant whose local time matches, so
 *    nothing fires in a gap and a repeated time fires twice: the real-time
 *    cadence of "*\/15 * * * *" goes on unbroken.
 */
#include "cron.h"

#include "internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define EXPR_MAX 512

typedef struct field {
    const char *name;
    int lo, hi;  /* values accepted */
    int star_hi; /* the top of '*' (day-of-week: 6, 7 is Sunday again) */
    const char *const *names;
    int name_base; /* the value of names[0] */
} field;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY",
                                          "JUN", "JUL", "AUG", "SEP", "OCT",
                                          "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED",
                                        "THU", "FRI", "SAT", NULL};

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW };
static const field fields[] = {
    {"seconds", 0, 59, 59, NULL, 0},
    {"minute", 0, 59, 59, NULL, 0},
    {"hour", 0, 23, 23, NULL, 0},
    {"day-of-month", 1, 31, 31, NULL, 0},
    {"month", 1, 12, 12, month_names, 1},
    {"day-of-week", 0, 7, 6, day_names, 0},
};

static const struct {
    const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* ----------------------------------------------------------- Parsing --- */

static int field_fail(stellar_error *e, const field *f, const char *fmt, ...)
    STELLAR_PRINTF(3, 4);
static int field_fail(stellar_error *e, const field *f, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return st_fail(e, STELLAR_EINVAL, "cron: %s field: %s", f->name, what);
}

/* A character as it may be shown in a message. */
static const char *show_char(char ch, char buf[8])
{
    if (isprint((unsigned char)ch))
        snprintf(buf, 8, "'%c'", ch);
    else
        snprintf(buf, 8, "0x%02x", (unsigned char)ch);
    return buf;
}

/* A number or a name at *p (moved past it). */
static int parse_value(const field *f, const char **p, const char *end, int *v,
                       stellar_error *e)
{
    const char *s = *p;
    char buf[8];

    if (s < end && isdigit((unsigned char)*s)) {
        long n = 0;
        int digits = 0;
        while (s < end && isdigit((unsigned char)*s)) {
            if (++digits > 6) return field_fail(e, f, "number too long");
            n = n * 10 + (*s++ - '0');
        }
        if (n < f->lo || n > f->hi)
            return field_fail(e, f, "%ld is out of range %d-%d", n, f->lo,
                              f->hi);
        *v = (int)n;
    } else if (s < end && isalpha((unsigned char)*s)) {
        char name[8];
        size_t len = 0, i;
        while (s < end && isalpha((unsigned char)*s)) {
            if (len < sizeof name - 1)
                name[len] = (char)toupper((unsigned char)*s);
            len++;
            s++;
        }
        name[len < sizeof name ? len : sizeof name - 1] = '\0';
        if (!f->names)
            return field_fail(e, f, "names are not allowed here ('%s')", name);
        for (i = 0; f->names[i]; i++)
            if (len == 3 && strcmp(name, f->names[i]) == 0) break;
        if (!f->names[i]) return field_fail(e, f, "unknown name '%s'", name);
        *v = (int)i + f->name_base;
    } else if (s < end) {
        return field_fail(e, f, "unexpected %s", show_char(*s, buf));
    } else {
        return field_fail(e, f, "a value is missing");
    }
    *p = s;
    return STELLAR_OK;
}

/* One field, [s, end), into *bits. */
static int parse_field(const field *f, const char *s, const char *end,
                       uint64_t *bits, stellar_error *e)
{
    char buf[8];
    int rc;

    *bits = 0;
    while (s <= end) {
        const char *item_end = memchr(s, ',', (size_t)(end - s));
        int a, b, step = 1, v;
        if (!item_end) item_end = end;
        if (item_end == s) return field_fail(e, f, "empty list item");
        if (*s == '*') {
            a = f->lo;
            b = f->star_hi;
            s++;
        } else {
            if ((rc = parse_value(f, &s, item_end, &a, e)) != STELLAR_OK)
                return rc;
            b = a;
            if (s < item_end && *s == '-') {
                s++;
                if ((rc = parse_value(f, &s, item_end, &b, e)) != STELLAR_OK)
                    return rc;
                if (b < a)
                    return field_fail(e, f, "range %d-%d is backwards", a, b);
            } else if (s < item_end && *s == '/') {
                b = f->star_hi; /* "5/15": from 5 to the top */
                if (a > b) b = a;
            }
        }
        if (s < item_end && *s == '/') {
            long n = 0;
            int digits = 0;
            s++;
            while (s < item_end && isdigit((unsigned char)*s) && digits < 7) {
                n = n * 10 + (*s++ - '0');
                digits++;
            }
            if (digits == 0)
                return field_fail(e, f, "a step is missing after '/'");
            if (n < 1 || n > f->star_hi - f->lo + 1)
                return field_fail(e, f, "step %ld is out of range 1-%d", n,
                                  f->star_hi - f->lo + 1);
            step = (int)n;
        }
        if (s < item_end)
            return field_fail(e, f, "unexpected %s", show_char(*s, buf));
        for (v = a; v <= b; v += step)
            *bits |= (uint64_t)1 << (v == 7 && f->names == day_names ? 0 : v);
        s = item_end + 1;
    }
    return STELLAR_OK;
}

/* Whether some day of the month set exists (30 February does not). */
static bool some_day_exists(const st_cron *c)
{
    int m, d;
    for (m = 1; m <= 12; m++)
        for (d = 1; d <= (m == 2 ? 29 : st_month_days(2001, m)); d++)
            if ((c->mon >> m & 1) && (c->dom >> d & 1)) return true;
    return false;
}

int st_cron_parse(st_cron *c, const char *expr, stellar_error *e)
{
    const char *start[6], *stop[6], *p;
    size_t i, n = 0, len;
    uint64_t bits[6];
    int rc;

    memset(c, 0, sizeof *c);
    if (!expr) return st_fail(e, STELLAR_EINVAL, "cron: no expression");
    len = strlen(expr);
    if (len > EXPR_MAX)
        return st_fail(e, STELLAR_EINVAL, "cron: expression longer than %d",
                       EXPR_MAX);
    while (*expr == ' ' || *expr == '\t')
        expr++;
    if (*expr == '@') {
        size_t mlen = strcspn(expr, " \t");
        for (i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (strlen(macros[i].name) == mlen &&
                strncasecmp(expr, macros[i].name, mlen) == 0)
                break;
        p = expr + mlen;
        while (*p == ' ' || *p == '\t')
            p++;
        if (i == sizeof macros / sizeof macros[0] || *p)
            return st_fail(e, STELLAR_EINVAL,
                           "cron: unknown macro (want @yearly, @annually, "
                           "@monthly, @weekly, @daily, @midnight or "
                           "@hourly)");
        expr = macros[i].expr;
    }
    for (p = expr; *p;) {
        if (*p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        if (n == 6) {
            n++;
            break;
        }
        start[n] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        stop[n++] = p;
    }
    if (n != 5 && n != 6)
        return st_fail(e, STELLAR_EINVAL,
                       "cron: want 5 fields (minute hour day-of-month month "
                       "day-of-week) or 6 (seconds first), got %s%zu",
                       n > 6 ? "more than " : "", n > 6 ? (size_t)6 : n);
    for (i = 0; i < n; i++) {
        const field *f = &fields[i + (n == 5)];
        if ((rc = parse_field(f, start[i], stop[i], &bits[i + (n == 5)], e)) !=
            STELLAR_OK)
            return rc;
    }
    c->seconds = n == 6;
    c->sec = n == 6 ? bits[F_SEC] : 1;
    c->min = bits[F_MIN];
    c->hour = (uint32_t)bits[F_HOUR];
    c->dom = (uint32_t)bits[F_DOM];
    c->mon = (uint16_t)bits[F_MON];
    c->dow = (uint8_t)bits[F_DOW];
    c->dom_star = *start[F_DOM - (n == 5)] == '*';
    c->dow_star = *start[F_DOW - (n == 5)] == '*';
    c->interval = (n == 6 && *start[0] == '*') ||
                  *start[F_MIN - (n == 5)] == '*' ||
                  *start[F_HOUR - (n == 5)] == '*';
    if (c->dow_star && !some_day_exists(c))
        return st_fail(e, STELLAR_EINVAL,
                       "cron: day-of-month field: no such day in the months "
                       "given (as 30 February): it would never fire");
    return STELLAR_OK;
}

/* -------------------------------------------------------- Next fire --- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The lowest set bit >= from, up to top; -1 if none. */
static int next_bit(uint64_t bits, int from, int top)
{
    int i;
    for (i = from; i <= top; i++)
        if (bits >> i & 1) return i;
    return -1;
}

static bool day_ok(const st_cron *c, int64_t days, int d)
{
    bool dm = c->dom >> d & 1, dw = c->dow >> st_weekday(days) & 1;
    return (c->dom_star || c->dow_star) ? dm && dw : dm || dw;
}

/* The first local time (seconds, as if local time were UTC) >= from and
 * < limit that c matches, or INT64_MAX. */
static int64_t next_local(const st_cron *c, int64_t from, int64_t limit)
{
    int64_t days = floor_div(from, 86400), y;
    int sod = (int)(from - days * 86400), h = sod / 3600, mi = sod / 60 % 60,
        s = sod % 60, m, d, x;

    st_civil_from_days(days, &y, &m, &d);
    for (;;) {
        if (days * 86400 + h * 3600 + mi * 60 + s >= limit) return INT64_MAX;
        if (!(c->mon >> m & 1)) { /* to the 1st of the next month */
            days += st_month_days(y, m) - d + 1;
            if (++m > 12) m = 1, y++;
            d = 1, h = mi = s = 0;
            continue;
        }
        if (!day_ok(c, days, d)) goto next_day;
        if ((x = next_bit(c->hour, h, 23)) < 0) goto next_day;
        if (x != h) h = x, mi = s = 0;
        if ((x = next_bit(c->min, mi, 59)) < 0) {
            mi = s = 0;
            if (++h == 24) goto next_day;
            continue;
        }
        if (x != mi) mi = x, s = 0;
        if ((x = next_bit(c->sec, s, 59)) < 0) {
            s = 0;
            if (++mi == 60) {
                mi = 0;
                if (++h == 24) goto next_day;
            }
            continue;
        }
        s = x;
        x = h * 3600 + mi * 60 + s;
        return days * 86400 + x < limit ? days * 86400 + x : INT64_MAX;
    next_day:
        days++;
        if (++d > st_month_days(y, m)) {
            d = 1;
            if (++m > 12) m = 1, y++;
        }
        h = mi = s = 0;
    }
}

bool st_cron_next(const st_cron *c, const st_tz *z, int64_t after_ms,
                  int64_t *next_ms)
{
    const int64_t min_t = st_days_from_civil(1, 1, 1) * 86400,
                  max_t = st_days_from_civil(10000, 1, 1) * 86400;
    int64_t t0, cap, lo, end, m;
    int guard;
    st_tz_span sp;

    if (after_ms < min_t * 1000 || after_ms >= max_t * 1000) return false;
    t0 = floor_div(after_ms, 1000) + 1;
    cap = t0 + (int64_t)400 * 366 * 86400;
    if (cap > max_t) cap = max_t;
    for (guard = 0; guard < 100000 && t0 < cap; guard++) {
        st_tz_span_at(z, t0, &sp);
        /* At the end of a spring-forward gap: a fixed time in the gap fires
         * now, once. */
        if (!c->interval && t0 == sp.start && sp.offset > sp.prev_offset &&
            next_local(c, sp.start + sp.prev_offset, sp.start + sp.offset) !=
                INT64_MAX) {
            *next_ms = sp.start * 1000;
            return true;
        }
        lo = t0 + sp.offset;
        /* After a fall-back: a fixed time repeated fired the first time. */
        if (!c->interval && sp.start != INT64_MIN &&
            sp.prev_offset > sp.offset && lo < sp.start + sp.prev_offset)
            lo = sp.start + sp.prev_offset;
        end = sp.end < cap ? sp.end : cap;
        if ((m = next_local(c, lo, end + sp.offset)) != INT64_MAX) {
            *next_ms = (m - sp.offset) * 1000;
            return true;
        }
        t0 = end;
    }
    return false;
}
