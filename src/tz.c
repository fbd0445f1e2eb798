/*
 * tz.c: a reader of the system's tz database, for cron schedules.
 *
 * Why not localtime_r(): it reads the zone from the process-global TZ
 * variable, and changing TZ (setenv + tzset) from one thread while another
 * reads it is undefined. A schedule names its own zone, and schedules of
 * many zones are computed by several threads at once, so we read the TZif
 * files ourselves (RFC 8536) into immutable structures.
 *
 * What is read: the version 2+ 64-bit data (the 32-bit version 1 block is
 * skipped, and only used for a version 1 file), and the footer, a POSIX TZ
 * rule ("CET-1CEST,M3.5.0,M10.5.0/3") that gives the offsets after the
 * last transition in the file. Transitions that do not change the UTC
 * offset (only the abbreviation or the is-DST flag) are dropped: cron
 * only cares about the offset. Files with leap seconds ("right/" zones)
 * are refused, since their transition times are not POSIX times.
 */
#include "tz.h"

#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_FILE_MAX   (1 << 20) /* larger than any real TZif file */
#define DEFAULT_TZDIR "/usr/share/zoneinfo"

/* One end of daylight saving time in a POSIX rule. */
typedef struct rule_date {
    char kind; /* 'J': Julian day 1-365 without Feb 29; 'D': day 0-365;
                  'M': month.week.weekday */
    int n, m, w, d;
    int32_t time; /* local time of day in seconds, may be < 0 or > 24 h */
} rule_date;

typedef struct posix_rule {
    bool present;
    bool has_dst;
    int32_t std_off, dst_off; /* seconds east of UTC */
    rule_date start, end;
} posix_rule;

struct st_tz {
    char *name;
    int32_t initial_off; /* before the first transition */
    size_t n;            /* transitions */
    int64_t *at;         /* strictly ascending */
    int32_t *off;        /* offset from at[i] on */
    posix_rule rule;     /* after the last transition (or always, if n=0) */
};

/* ---------------------------------------------------------- Calendar --- */

int64_t st_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void st_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int st_weekday(int64_t days)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

static bool leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int st_month_days(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ------------------------------------------------------- POSIX rules --- */

/* "EST", "<+0330>": at least 3 characters. */
static const char *parse_abbr(const char *p)
{
    const char *s = p;
    if (*p == '<') {
        for (p++; *p && *p != '>'; p++)
            if (!(isalnum((unsigned char)*p) || *p == '+' || *p == '-'))
                return NULL;
        if (*p != '>' || p - s < 4) return NULL;
        return p + 1;
    }
    while (isalpha((unsigned char)*p))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]], hours up to max_h; into seconds. */
static const char *parse_hms(const char *p, int max_h, int32_t *out)
{
    int sign = 1, part[3] = {0, 0, 0}, i;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    for (i = 0; i < 3; i++) {
        int v = 0, digits = 0;
        if (i > 0) {
            if (*p != ':') break;
            p++;
        }
        while (isdigit((unsigned char)*p) && digits < 3) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        if (digits == 0 || (i > 0 && (digits != 2 || v > 59))) return NULL;
        part[i] = v;
    }
    if (part[0] > max_h) return NULL;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    return p;
}

static const char *parse_num(const char *p, int lo, int hi, int *out)
{
    int v = 0, digits = 0;
    while (isdigit((unsigned char)*p) && digits < 4) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || v < lo || v > hi) return NULL;
    *out = v;
    return p;
}

static const char *parse_rule_date(const char *p, rule_date *r)
{
    r->time = 7200; /* 02:00 unless given */
    if (*p == 'J') {
        r->kind = 'J';
        p = parse_num(p + 1, 1, 365, &r->n);
    } else if (*p == 'M') {
        r->kind = 'M';
        if (!(p = parse_num(p + 1, 1, 12, &r->m)) || *p++ != '.') return NULL;
        if (!(p = parse_num(p, 1, 5, &r->w)) || *p++ != '.') return NULL;
        p = parse_num(p, 0, 6, &r->d);
    } else {
        r->kind = 'D';
        p = parse_num(p, 0, 365, &r->n);
    }
    if (p && *p == '/') p = parse_hms(p + 1, 167, &r->time);
    return p;
}

/* A whole POSIX TZ string; "" is refused (callers handle it). */
static bool parse_posix(const char *s, posix_rule *r)
{
    const char *p = s;
    int32_t off;

    memset(r, 0, sizeof *r);
    if (!(p = parse_abbr(p)) || !(p = parse_hms(p, 24, &off))) return false;
    r->std_off = r->dst_off = -off; /* POSIX offsets count west */
    r->present = true;
    if (*p == '\0') return true;
    if (!(p = parse_abbr(p))) return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = parse_hms(p, 24, &off))) return false;
        r->dst_off = -off;
    }
    if (*p == '\0') { /* no rule: the US one, as glibc */
        r->start = (rule_date){'M', 0, 3, 2, 0, 7200};
        r->end = (rule_date){'M', 0, 11, 1, 0, 7200};
    } else {
        if (*p++ != ',' || !(p = parse_rule_date(p, &r->start))) return false;
        if (*p++ != ',' || !(p = parse_rule_date(p, &r->end))) return false;
        if (*p != '\0') return false;
    }
    if (r->dst_off == r->std_off) r->has_dst = false;
    return true;
}

/* The instant (UTC seconds) a rule date happens in year y, its time of day
 * read with the offset off in effect before it. */
static int64_t rule_instant(const rule_date *r, int64_t y, int32_t off)
{
    int64_t day;
    if (r->kind == 'J') {
        day = st_days_from_civil(y, 1, 1) + r->n - 1 +
              (leap_year(y) && r->n >= 60 ? 1 : 0);
    } else if (r->kind == 'D') {
        day = st_days_from_civil(y, 1, 1) + r->n;
    } else {
        int64_t first = st_days_from_civil(y, r->m, 1);
        int md = (r->d - st_weekday(first) + 7) % 7 + 1 + (r->w - 1) * 7;
        while (md > st_month_days(y, r->m))
            md -= 7;
        day = first + md - 1;
    }
    return day * 86400 + r->time - off;
}

/* The span holding t under the rule alone. */
static void rule_span(const posix_rule *r, int64_t t, st_tz_span *s)
{
    int64_t at[6], y, yy;
    int32_t off[6];
    int m, d, n = 0, i, j;

    s->start = INT64_MIN;
    s->end = INT64_MAX;
    s->offset = s->prev_offset = r->std_off;
    if (!r->has_dst) return;
    st_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    for (yy = y - 1; yy <= y + 1; yy++) {
        at[n] = rule_instant(&r->start, yy, r->std_off);
        off[n++] = r->dst_off;
        at[n] = rule_instant(&r->end, yy, r->dst_off);
        off[n++] = r->std_off;
    }
    for (i = 1; i < n; i++) /* insertion sort of 6 */
        for (j = i; j > 0 && at[j - 1] > at[j]; j--) {
            int64_t ta = at[j];
            int32_t to = off[j];
            at[j] = at[j - 1];
            off[j] = off[j - 1];
            at[j - 1] = ta;
            off[j - 1] = to;
        }
    /* the last transition <= t that changes the offset, and the next */
    for (i = n - 1; i >= 0 && at[i] > t; i--)
        ;
    if (i < 0) { /* cannot happen for t within year y; stay safe */
        s->offset = s->prev_offset =
            off[n - 1] == r->dst_off ? r->std_off : r->dst_off;
        s->end = at[0];
        return;
    }
    s->start = at[i];
    s->offset = off[i];
    s->prev_offset = off[i] == r->dst_off ? r->std_off : r->dst_off;
    for (j = i + 1; j < n && off[j] == s->offset; j++)
        ;
    if (j < n) s->end = at[j];
}

/* -------------------------------------------------------------- TZif --- */

static int64_t be(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    if (bytes == 4) return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

typedef struct tzif_counts {
    size_t isut, isstd, leap, time, type, chr;
} tzif_counts;

static bool read_header(const unsigned char *p, size_t len, tzif_counts *c)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0) return false;
    c->isut = (uint32_t)be(p + 20, 4);
    c->isstd = (uint32_t)be(p + 24, 4);
    c->leap = (uint32_t)be(p + 28, 4);
    c->time = (uint32_t)be(p + 32, 4);
    c->type = (uint32_t)be(p + 36, 4);
    c->chr = (uint32_t)be(p + 40, 4);
    /* sizes far beyond any real file; keeps the arithmetic below small */
    return c->time < 100000 && c->type >= 1 && c->type <= 256 &&
           c->chr < 100000 && c->leap < 100000 && c->isut <= c->type &&
           c->isstd <= c->type;
}

static size_t data_size(const tzif_counts *c, int tb)
{
    return c->time * (size_t)(tb + 1) + c->type * 6 + c->chr +
           c->leap * (size_t)(tb + 4) + c->isstd + c->isut;
}

static int parse_tzif(st_tz *z, const unsigned char *buf, size_t len,
                      stellar_error *e)
{
    tzif_counts c;
    const unsigned char *p = buf, *idx, *types;
    size_t i, k, size;
    int tb = 4;
    int32_t prev;
    bool v2;

    if (!read_header(p, len, &c)) goto bad;
    v2 = p[4] >= '2';
    if (v2) { /* skip the 32-bit block */
        size = 44 + data_size(&c, 4);
        if (size > len) goto bad;
        p += size;
        len -= size;
        if (!read_header(p, len, &c)) goto bad;
        tb = 8;
    }
    size = 44 + data_size(&c, tb);
    if (size > len) goto bad;
    if (c.leap > 0)
        return st_fail(e, STELLAR_EINVAL,
                       "zone file has leap seconds (a right/ zone): not "
                       "supported");
    idx = p + 44 + c.time * (size_t)tb;
    types = idx + c.time;
    for (i = 0; i < c.type; i++) {
        int64_t off = be(types + i * 6, 4);
        if (off <= -26 * 3600 || off >= 26 * 3600 || types[i * 6 + 5] >= c.chr)
            goto bad;
    }
    z->initial_off = (int32_t)be(types, 4);
    z->at = st_malloc((c.time ? c.time : 1) * sizeof *z->at);
    z->off = st_malloc((c.time ? c.time : 1) * sizeof *z->off);
    if (!z->at || !z->off) return st_fail(e, STELLAR_ENOMEM, "out of memory");
    prev = z->initial_off;
    for (i = 0, k = 0; i < c.time; i++) {
        int64_t at = be(p + 44 + i * (size_t)tb, tb);
        int32_t off;
        if (idx[i] >= c.type) goto bad;
        if (i > 0 && at <= be(p + 44 + (i - 1) * (size_t)tb, tb)) goto bad;
        off = (int32_t)be(types + idx[i] * 6, 4);
        if (off == prev) continue;
        z->at[k] = at;
        z->off[k++] = prev = off;
    }
    z->n = k;
    if (v2) { /* the footer: "\nRULE\n" */
        const unsigned char *f = p + size, *nl;
        char rule[256];
        size_t rest = len - size;
        if (rest < 2 || f[0] != '\n') goto bad;
        nl = memchr(f + 1, '\n', rest - 1);
        if (!nl || (size_t)(nl - f - 1) >= sizeof rule) goto bad;
        memcpy(rule, f + 1, (size_t)(nl - f - 1));
        rule[nl - f - 1] = '\0';
        if (rule[0] && !parse_posix(rule, &z->rule)) goto bad;
    }
    return STELLAR_OK;
bad:
    return st_fail(e, STELLAR_EINVAL, "not a valid TZif zone file");
}

/* ------------------------------------------------------------ Lookup --- */

void st_tz_span_at(const st_tz *z, int64_t t, st_tz_span *s)
{
    size_t lo = 0, hi = z->n;

    if (z->n == 0) {
        if (z->rule.present) {
            rule_span(&z->rule, t, s);
        } else {
            s->start = INT64_MIN;
            s->end = INT64_MAX;
            s->offset = s->prev_offset = z->initial_off;
        }
        return;
    }
    while (lo < hi) { /* lo = number of transitions <= t */
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) {
        s->start = INT64_MIN;
        s->end = z->at[0];
        s->offset = s->prev_offset = z->initial_off;
        return;
    }
    s->start = z->at[lo - 1];
    s->offset = z->off[lo - 1];
    s->prev_offset = lo >= 2 ? z->off[lo - 2] : z->initial_off;
    if (lo < z->n) {
        s->end = z->at[lo];
        return;
    }
    s->end = INT64_MAX;
    if (z->rule.present) {
        st_tz_span r;
        rule_span(&z->rule, t, &r);
        if (r.offset != s->offset) { /* the rule's span starts later */
            s->start = s->start > r.start ? s->start : r.start;
            s->prev_offset =
                s->start == z->at[lo - 1] ? s->offset : r.prev_offset;
            s->offset = r.offset;
            s->end = r.end;
            return;
        }
        if (r.start > s->start) {
            s->start = r.start;
            s->prev_offset = r.prev_offset;
        }
        s->end = r.end;
    }
}

int32_t st_tz_offset(const st_tz *z, int64_t t)
{
    st_tz_span s;
    st_tz_span_at(z, t, &s);
    return s.offset;
}

void st_tz_iso(const st_tz *z, int64_t t, char out[48])
{
    int32_t off = st_tz_offset(z, t), a = off < 0 ? -off : off;
    int64_t local = t + off, days = floor_div(local, 86400), y;
    int m, d, sod = (int)(local - days * 86400), n;

    st_civil_from_days(days, &y, &m, &d);
    n = snprintf(out, 48, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
                 (long long)y, m, d, sod / 3600, sod / 60 % 60, sod % 60,
                 off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    if (a % 60 && n > 0 && n < 44)
        snprintf(out + n, 48 - (size_t)n, ":%02d", a % 60);
}

/* -------------------------------------------------------------- Open --- */

static bool name_ok(const char *name)
{
    size_t len = strlen(name), i, part = 0;
    if (len == 0 || len > ST_TZ_NAME_MAX || name[0] == '/' || name[0] == '-')
        return false;
    for (i = 0; i <= len; i++) {
        char ch = name[i];
        if (ch == '/' || ch == '\0') {
            const char *seg = name + i - part;
            if (part == 0 || (part == 1 && seg[0] == '.') ||
                (part == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            part = 0;
            continue;
        }
        if (!(isalnum((unsigned char)ch) || ch == '_' || ch == '-' ||
              ch == '+' || ch == '.'))
            return false;
        part++;
    }
    return true;
}

static int read_file(const char *path, unsigned char **buf, size_t *len,
                     stellar_error *e)
{
    struct stat st;
    ssize_t n;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return st_fail(e, errno == ENOENT ? STELLAR_ENOTFOUND : STELLAR_EIO,
                       "%s", strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 44 ||
        st.st_size > TZ_FILE_MAX) {
        close(fd);
        return st_fail(e, STELLAR_EINVAL, "not a valid TZif zone file");
    }
    if (!(*buf = st_malloc((size_t)st.st_size))) {
        close(fd);
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    }
    while (got < (size_t)st.st_size) {
        n = read(fd, *buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return STELLAR_OK;
}

static int load_file(st_tz *z, const char *path, stellar_error *e)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, e);
    if (rc == STELLAR_OK) rc = parse_tzif(z, buf, len, e);
    st_free(buf);
    return rc;
}

/* The local zone's name: /etc/localtime's link target below "zoneinfo/". */
static char *local_name(void)
{
    char link[512];
    ssize_t n = readlink("/etc/localtime", link, sizeof link - 1);
    const char *p;
    if (n > 0) {
        link[n] = '\0';
        if ((p = strstr(link, "zoneinfo/")) && name_ok(p + 9))
            return st_strdup(p + 9);
    }
    return st_strdup("localtime");
}

int st_tz_open(const char *name, st_tz **out, stellar_error *e)
{
    st_tz *z;
    const char *env = NULL, *dir;
    char path[PATH_MAX];
    int rc;

    *out = NULL;
    if (!name || !*name) {
        env = getenv("TZ");
        if (env && *env == ':') env++;
        name = env ? (*env ? env : "UTC") : NULL;
    }
    if (name && !name_ok(name) && !env)
        return st_fail(e, STELLAR_EINVAL,
                       "bad time zone name (want an IANA name such as "
                       "Europe/Berlin)");
    if (!(z = st_calloc(1, sizeof *z)))
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    z->name = st_strdup(name ? name : "");
    if (!z->name) {
        st_tz_free(z);
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    }
    if (name && (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)) {
        *out = z; /* all zeros: UTC */
        return STELLAR_OK;
    }
    if (!name) {
        st_free(z->name);
        if (!(z->name = local_name())) {
            st_tz_free(z);
            return st_fail(e, STELLAR_ENOMEM, "out of memory");
        }
        rc = load_file(z, "/etc/localtime", e);
        if (rc == STELLAR_ENOTFOUND) { /* no local zone set: UTC, as libc */
            st_free(z->name);
            z->name = st_strdup("UTC");
            rc = z->name ? STELLAR_OK : STELLAR_ENOMEM;
        }
    } else if (env && !name_ok(name)) { /* $TZ as a POSIX rule */
        rc = parse_posix(name, &z->rule)
                 ? STELLAR_OK
                 : st_fail(e, STELLAR_EINVAL, "bad TZ in the environment");
    } else {
        dir = getenv("TZDIR");
        if (!dir || !*dir) dir = DEFAULT_TZDIR;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >=
            sizeof path)
            rc = st_fail(e, STELLAR_EINVAL, "time zone path too long");
        else
            rc = load_file(z, path, e);
        if (rc == STELLAR_ENOTFOUND && env && parse_posix(name, &z->rule))
            rc = STELLAR_OK; /* TZ=EST5EDT without the file */
        else if (rc == STELLAR_ENOTFOUND)
            st_fail(e, rc, "unknown time zone '%s'", name);
        else if (rc != STELLAR_OK && rc != STELLAR_ENOMEM && e) {
            char why[sizeof e->msg];
            memcpy(why, e->msg, sizeof why);
            st_fail(e, rc, "time zone '%s': %s", name, why);
        }
    }
    if (rc != STELLAR_OK) {
        st_tz_free(z);
        return rc;
    }
    *out = z;
    return STELLAR_OK;
}

void st_tz_free(st_tz *z)
{
    if (!z) return;
    st_free(z->name);
    st_free(z->at);
    st_free(z->off);
    st_free(z);
}

const char *st_tz_name(const st_tz *z)
{
    return z->name;
}
