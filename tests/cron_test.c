/*
 * cron_test.c: the cron parser (src/cron.c) and the time-zone reader
 * (src/tz.c) in C: every kind of bad expression is refused with the field
 * named, hostile zone names and broken zone files are refused without
 * harm, POSIX footer rules (written here into TZif files under our own
 * TZDIR) give the right offsets, and zones are read by many threads at
 * once. The next fire times themselves are checked against an independent
 * oracle in tests/cron/oracle.py.
 */
#include "harness.h"

#include "cron.h"
#include "internal.h"
#include "tz.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ Parser --- */

static void bad_expressions_are_refused_naming_the_field(struct test_ctx *t)
{
    static const struct {
        const char *expr, *msg;
    } table[] = {
        {"0 25 * * *", "cron: hour field: 25 is out of range 0-23"},
        {"60 * * * *", "cron: minute field: 60 is out of range 0-59"},
        {"60 * * * * *", "cron: seconds field: 60 is out of range 0-59"},
        {"* * 0 * *", "cron: day-of-month field: 0 is out of range 1-31"},
        {"* * 32 * *", "cron: day-of-month field: 32 is out of range 1-31"},
        {"* * * 13 *", "cron: month field: 13 is out of range 1-12"},
        {"* * * * 8", "cron: day-of-week field: 8 is out of range 0-7"},
        {"* * * foo *", "cron: month field: unknown name 'FOO'"},
        {"* * * janu *", "cron: month field: unknown name 'JANU'"},
        {"* * * * funday", "cron: day-of-week field: unknown name 'FUNDAY'"},
        {"* jan * * *", "cron: hour field: names are not allowed here"},
        {"5-1 * * * *", "cron: minute field: range 5-1 is backwards"},
        {"* * * * fri-mon", "cron: day-of-week field: range 5-1 is backwards"},
        {"*/0 * * * *", "cron: minute field: step 0 is out of range 1-60"},
        {"*/61 * * * *", "cron: minute field: step 61 is out of range 1-60"},
        {"* */25 * * *", "cron: hour field: step 25 is out of range 1-24"},
        {"*/ * * * *", "cron: minute field: a step is missing after '/'"},
        {"1- * * * *", "cron: minute field: a value is missing"},
        {"1,,2 * * * *", "cron: minute field: empty list item"},
        {"1, * * * *", "cron: minute field: empty list item"},
        {",1 * * * *", "cron: minute field: empty list item"},
        {"1x * * * *", "cron: minute field: unexpected 'x'"},
        {"1\x01 * * * *", "cron: minute field: unexpected 0x01"},
        {"1 2 3 4 5\x7f", "cron: day-of-week field: unexpected 0x7f"},
        {"1234567 * * * *", "cron: minute field: number too long"},
        {"** * * * *", "cron: minute field: unexpected '*'"},
        {"* * * *", "cron: want 5 fields"},
        {"* * * * * * *", "got more than 6"},
        {"", "got 0"},
        {"   ", "got 0"},
        {"@reboot", "cron: unknown macro"},
        {"@daily 5", "cron: unknown macro"},
        {"@", "cron: unknown macro"},
        {"0 0 30 2 *", "cron: day-of-month field: no such day"},
        {"0 0 31 4,6,9,11 *", "cron: day-of-month field: no such day"},
        {"0 0 30,31 feb *", "cron: day-of-month field: no such day"},
    };
    stellar_error e;
    st_cron c;
    char long_expr[700];
    size_t i;

    (void)t;
    for (i = 0; i < sizeof table / sizeof table[0]; i++) {
        memset(&e, 0, sizeof e);
        if (st_cron_parse(&c, table[i].expr, &e) != STELLAR_EINVAL)
            FAIL("'%s' was accepted", table[i].expr);
        if (!strstr(e.msg, table[i].msg))
            FAIL("'%s':\n  want: %s\n  got:  %s", table[i].expr, table[i].msg,
                 e.msg);
    }
    memset(long_expr, '1', sizeof long_expr - 1);
    long_expr[sizeof long_expr - 1] = '\0';
    ASSERT_EQ(STELLAR_EINVAL, st_cron_parse(&c, long_expr, &e));
    ASSERT_TRUE(strstr(e.msg, "longer than") != NULL);
    ASSERT_EQ(STELLAR_EINVAL, st_cron_parse(&c, NULL, &e));
}

static void good_expressions_mean_what_vixie_cron_means(struct test_ctx *t)
{
    stellar_error e = {0};
    st_cron c, d;

    (void)t;
    ASSERT_OK(st_cron_parse(&c, "0 0 * * 7", &e), &e);
    ASSERT_EQ(1, c.dow); /* 7 is Sunday */
    ASSERT_OK(st_cron_parse(&c, "0 0 * * 5-7", &e), &e);
    ASSERT_EQ(0x61, c.dow); /* Fri, Sat, Sun */
    ASSERT_OK(st_cron_parse(&c, "0 9 * * Mon-FRI", &e), &e);
    ASSERT_EQ(0x3e, c.dow);
    ASSERT_TRUE(c.dom_star && !c.dow_star && !c.interval && !c.seconds);
    ASSERT_EQ(1, (int64_t)c.sec); /* 5 fields: second 0 */
    ASSERT_OK(st_cron_parse(&c, "*/15 * * * *", &e), &e);
    ASSERT_EQ(
        (int64_t)((1ull << 0) | (1ull << 15) | (1ull << 30) | (1ull << 45)),
        (int64_t)c.min);
    ASSERT_TRUE(c.interval);
    ASSERT_OK(st_cron_parse(&c, "5/20 3 * * *", &e), &e);
    ASSERT_EQ((int64_t)((1ull << 5) | (1ull << 25) | (1ull << 45)),
              (int64_t)c.min);
    ASSERT_TRUE(!c.interval); /* does not start with '*' */
    ASSERT_OK(st_cron_parse(&c, "1-30/10,59 * * * *", &e), &e);
    ASSERT_EQ(
        (int64_t)((1ull << 1) | (1ull << 11) | (1ull << 21) | (1ull << 59)),
        (int64_t)c.min);
    ASSERT_OK(st_cron_parse(&c, "0 0 1 jan,Jul,DEC *", &e), &e);
    ASSERT_EQ((1 << 1) | (1 << 7) | (1 << 12), c.mon);
    ASSERT_OK(st_cron_parse(&c, "*/2 0 3 * * *", &e), &e);
    ASSERT_TRUE(c.seconds && c.interval);
    ASSERT_EQ(8, c.hour);
    ASSERT_OK(st_cron_parse(&c, "0 */6 * * *", &e), &e);
    ASSERT_TRUE(c.interval); /* the hour field starts with '*' */
    ASSERT_OK(st_cron_parse(&c, "0 0 29 2 *", &e), &e);   /* leap years */
    ASSERT_OK(st_cron_parse(&c, "0 0 30 2 mon", &e), &e); /* OR: Mondays */
    ASSERT_OK(st_cron_parse(&c, " \t0\t0  1 1 * ", &e), &e);
    ASSERT_OK(st_cron_parse(&d, "@yearly", &e), &e);
    ASSERT_TRUE(memcmp(&c, &d, sizeof c) == 0);
    ASSERT_OK(st_cron_parse(&d, "@ANNUALLY", &e), &e);
    ASSERT_TRUE(memcmp(&c, &d, sizeof c) == 0);
    ASSERT_OK(st_cron_parse(&c, "@hourly", &e), &e);
    ASSERT_TRUE(c.interval && c.min == 1 && c.hour == 0xffffff);
    ASSERT_OK(st_cron_parse(&c, "@weekly", &e), &e);
    ASSERT_TRUE(!c.interval && c.dow == 1 && c.dom_star && !c.dow_star);
}

/* The next n fire times after from_ms, as "ms ms ...". */
static void expect_next(const char *file, int line, const char *expr,
                        const char *zone, int64_t from_ms, int n,
                        const char *want)
{
    stellar_error e = {0};
    st_cron c;
    st_tz *z;
    char got[512] = "";
    size_t len = 0;
    int i;

    if (st_cron_parse(&c, expr, &e) != STELLAR_OK ||
        st_tz_open(zone, &z, &e) != STELLAR_OK)
        test_fail(file, line, "%s / %s: %s", expr, zone, e.msg);
    for (i = 0; i < n && st_cron_next(&c, z, from_ms, &from_ms); i++)
        len += (size_t)snprintf(got + len, sizeof got - len, "%s%lld",
                                i ? " " : "", (long long)from_ms);
    st_tz_free(z);
    if (strcmp(got, want) != 0)
        test_fail(file, line, "%s in %s\n  want: %s\n  got:  %s", expr, zone,
                  want, got);
}
#define EXPECT_NEXT(expr, zone, from, n, want)                                 \
    expect_next(__FILE__, __LINE__, expr, zone, from, n, want)

static void
day_fields_combine_with_or_only_when_both_are_restricted(struct test_ctx *t)
{
    const int64_t jan1 = 1767225600000; /* 2026-01-01T00:00Z, a Thursday */
    (void)t;
    /* the 13th, or a Friday: Fri 2, Fri 9, Tue 13, Fri 16 */
    EXPECT_NEXT("0 0 13 * fri", "UTC", jan1, 4,
                "1767312000000 1767916800000 1768262400000 1768521600000");
    /* '*' first in day-of-month: AND, odd days that are Fridays: 9, 23 */
    EXPECT_NEXT("0 0 */2 * fri", "UTC", jan1, 2, "1767916800000 1769126400000");
    /* strictly after: from a fire time, the next one */
    EXPECT_NEXT("0 0 * * *", "UTC", jan1, 1, "1767312000000");
    EXPECT_NEXT("0 0 * * *", "UTC", jan1 - 1, 1, "1767225600000");
    /* 2100 is no leap year: from 2099 the next 29 February is in 2104 */
    EXPECT_NEXT("0 0 29 2 *", "UTC", 4070908800000, 1, "4233686400000");
}

/* ---------------------------------------------------------- Zones --- */

static void hostile_zone_names_are_refused(struct test_ctx *t)
{
    static const char *const bad[] = {
        "../../../../etc/passwd",
        "/etc/passwd",
        "Europe/../../etc/passwd",
        "Europe/..",
        "..",
        "./UTC",
        "Europe//Berlin",
        "Europe/Berlin/",
        "Europe/Berlin\n",
        "Europe/Ber lin",
        "\x1b[31mred",
        "-rf",
        "Europe\\Berlin",
        "Europe/Berlin%00",
    };
    stellar_error e;
    st_tz *z = NULL;
    char long_name[300];
    size_t i;

    (void)t;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        if (st_tz_open(bad[i], &z, &e) != STELLAR_EINVAL)
            FAIL("zone name %zu was not refused", i);
        ASSERT_TRUE(z == NULL);
        ASSERT_TRUE(strstr(e.msg, "bad time zone name") != NULL);
    }
    memset(long_name, 'A', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    ASSERT_EQ(STELLAR_EINVAL, st_tz_open(long_name, &z, &e));
    ASSERT_EQ(STELLAR_ENOTFOUND, st_tz_open("Mars/Olympus_Mons", &z, &e));
    ASSERT_STR_EQ("unknown time zone 'Mars/Olympus_Mons'", e.msg);
    ASSERT_OK(st_tz_open("UTC", &z, &e), &e);
    ASSERT_EQ(0, st_tz_offset(z, 0));
    ASSERT_STR_EQ("UTC", st_tz_name(z));
    st_tz_free(z);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ((int64_t)n, (int64_t)fwrite(data, 1, n, f));
    fclose(f);
}

static size_t put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return 4;
}

/* A version 2 TZif file with no transitions, one type (offset off) and a
 * footer; leap: one leap-second record. Returns its size. */
static size_t make_tzif(unsigned char *buf, int32_t off, const char *footer,
                        bool leap)
{
    size_t n = 0;
    int block;
    for (block = 0; block < 2; block++) {
        int tb = block ? 8 : 4;
        memcpy(buf + n, "TZif2", 5);
        memset(buf + n + 5, 0, 15);
        n += 20;
        n += put32(buf + n, 0);    /* isut */
        n += put32(buf + n, 0);    /* isstd */
        n += put32(buf + n, leap); /* leap */
        n += put32(buf + n, 0);    /* time */
        n += put32(buf + n, 1);    /* type */
        n += put32(buf + n, 4);    /* chars */
        n += put32(buf + n, (uint32_t)off);
        buf[n++] = 0; /* isdst */
        buf[n++] = 0; /* abbreviation index */
        memcpy(buf + n, "ABC", 4);
        n += 4;
        if (leap) {
            memset(buf + n, 0, (size_t)tb + 4);
            n += (size_t)tb + 4;
        }
    }
    n += (size_t)sprintf((char *)buf + n, "\n%s\n", footer);
    return n;
}

static int64_t utc(int y, int m, int d, int h, int mi)
{
    return st_days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60;
}

static void
footer_rules_give_the_offsets_after_the_last_transition(struct test_ctx *t)
{
    unsigned char buf[512];
    char path[512];
    stellar_error e = {0};
    st_tz *z;
    size_t n;

    snprintf(path, sizeof path, "%s/Test", t->dir);
    ASSERT_TRUE(mkdir(path, 0700) == 0);
    setenv("TZDIR", t->dir, 1); /* this test's own process */

    n = make_tzif(buf, -18000, "EST5EDT,M3.2.0,M11.1.0", false);
    snprintf(path, sizeof path, "%s/Test/US", t->dir);
    write_file(path, buf, n);
    ASSERT_OK(st_tz_open("Test/US", &z, &e), &e);
    /* 2050: DST from Sun 13 March 07:00Z to Sun 6 November 06:00Z */
    ASSERT_EQ(-18000, st_tz_offset(z, utc(2050, 3, 13, 6, 59) + 59));
    ASSERT_EQ(-14400, st_tz_offset(z, utc(2050, 3, 13, 7, 0)));
    ASSERT_EQ(-14400, st_tz_offset(z, utc(2050, 11, 6, 5, 59)));
    ASSERT_EQ(-18000, st_tz_offset(z, utc(2050, 11, 6, 6, 0)));
    st_tz_free(z);

    /* Jn skips February 29, n counts it; times after '/', negative too */
    n = make_tzif(buf, 3600, "<+01>-1<+02>,J60/-1,300/26", false);
    snprintf(path, sizeof path, "%s/Test/Julian", t->dir);
    write_file(path, buf, n);
    ASSERT_OK(st_tz_open("Test/Julian", &z, &e), &e);
    /* 2052 is a leap year: J60 is 1 March; -1 h local is 29 Feb 23:00 +01 */
    ASSERT_EQ(3600, st_tz_offset(z, utc(2052, 2, 29, 21, 59)));
    ASSERT_EQ(7200, st_tz_offset(z, utc(2052, 2, 29, 22, 0)));
    /* day 300 (zero-based) of 2052 is 27 October; 26:00 +02 = 28th 00:00Z */
    ASSERT_EQ(7200, st_tz_offset(z, utc(2052, 10, 27, 23, 59)));
    ASSERT_EQ(3600, st_tz_offset(z, utc(2052, 10, 28, 0, 0)));
    st_tz_free(z);

    /* southern hemisphere: DST across the new year, a 30-minute shift */
    n = make_tzif(buf, 37800, "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", false);
    snprintf(path, sizeof path, "%s/Test/South", t->dir);
    write_file(path, buf, n);
    ASSERT_OK(st_tz_open("Test/South", &z, &e), &e);
    ASSERT_EQ(39600, st_tz_offset(z, utc(2060, 1, 1, 0, 0)));
    ASSERT_EQ(37800, st_tz_offset(z, utc(2060, 6, 1, 0, 0)));
    ASSERT_EQ(39600, st_tz_offset(z, utc(2060, 12, 31, 0, 0)));
    st_tz_free(z);

    /* leap-second zones and broken footers are refused */
    n = make_tzif(buf, 0, "UTC0", true);
    snprintf(path, sizeof path, "%s/Test/Right", t->dir);
    write_file(path, buf, n);
    ASSERT_EQ(STELLAR_EINVAL, st_tz_open("Test/Right", &z, &e));
    ASSERT_TRUE(strstr(e.msg, "leap seconds") != NULL);
    n = make_tzif(buf, 0, "EST5EDT,M13.1.0,M11.1.0", false);
    snprintf(path, sizeof path, "%s/Test/Bad", t->dir);
    write_file(path, buf, n);
    ASSERT_EQ(STELLAR_EINVAL, st_tz_open("Test/Bad", &z, &e));
    ASSERT_STR_EQ("time zone 'Test/Bad': not a valid TZif zone file", e.msg);
    /* a folder is not a zone */
    ASSERT_EQ(STELLAR_EINVAL, st_tz_open("Test", &z, &e));
}

static void truncated_and_corrupt_zone_files_are_refused(struct test_ctx *t)
{
    char src[512], path[512];
    unsigned char *data;
    stellar_error e = {0};
    st_tz *z;
    FILE *f;
    long len, cut;

    snprintf(src, sizeof src, "%s/America/New_York",
             getenv("TZDIR") ? getenv("TZDIR") : "/usr/share/zoneinfo");
    if (!(f = fopen(src, "rb"))) SKIP("no tz database at %s", src);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    data = malloc((size_t)len);
    ASSERT_TRUE(data && fread(data, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    setenv("TZDIR", t->dir, 1);
    snprintf(path, sizeof path, "%s/Cut", t->dir);
    /* every prefix: refused (or, at full length, read), never a crash */
    for (cut = 0; cut <= len; cut++) {
        int rc;
        write_file(path, data, (size_t)cut);
        rc = st_tz_open("Cut", &z, &e);
        if (cut == len) {
            ASSERT_OK(rc, &e);
            ASSERT_EQ(-18000, st_tz_offset(z, utc(2026, 1, 1, 0, 0)));
        } else if (rc == STELLAR_OK) {
            FAIL("a file cut to %ld of %ld bytes was read", cut, len);
        }
        st_tz_free(z);
    }
    /* a flipped byte anywhere: read or refused, never a crash (ASan) */
    for (cut = 0; cut < len; cut += 7) {
        data[cut] ^= 0x5a;
        write_file(path, data, (size_t)len);
        if (st_tz_open("Cut", &z, &e) == STELLAR_OK) {
            (void)st_tz_offset(z, utc(2026, 7, 1, 0, 0));
            (void)st_tz_offset(z, utc(2090, 7, 1, 0, 0));
            st_tz_free(z);
        }
        data[cut] ^= 0x5a;
    }
    free(data);
}

static void the_local_zone_comes_from_tz_or_etc_localtime(struct test_ctx *t)
{
    stellar_error e = {0};
    st_tz *z;

    (void)t;
    setenv("TZ", "Europe/Berlin", 1);
    ASSERT_OK(st_tz_open(NULL, &z, &e), &e);
    ASSERT_STR_EQ("Europe/Berlin", st_tz_name(z));
    ASSERT_EQ(7200, st_tz_offset(z, utc(2026, 7, 1, 0, 0)));
    st_tz_free(z);
    setenv("TZ", ":America/New_York", 1);
    ASSERT_OK(st_tz_open("", &z, &e), &e);
    ASSERT_EQ(-14400, st_tz_offset(z, utc(2026, 7, 1, 0, 0)));
    st_tz_free(z);
    setenv("TZ", "XST3XDT,M3.2.0,M11.1.0", 1); /* a POSIX rule, no file */
    ASSERT_OK(st_tz_open(NULL, &z, &e), &e);
    ASSERT_EQ(-7200, st_tz_offset(z, utc(2026, 7, 1, 0, 0)));
    ASSERT_EQ(-10800, st_tz_offset(z, utc(2026, 1, 1, 0, 0)));
    st_tz_free(z);
    setenv("TZ", "", 1);
    ASSERT_OK(st_tz_open(NULL, &z, &e), &e);
    ASSERT_EQ(0, st_tz_offset(z, utc(2026, 7, 1, 0, 0)));
    st_tz_free(z);
    unsetenv("TZ");
    ASSERT_OK(st_tz_open(NULL, &z, &e), &e);
    ASSERT_TRUE(st_tz_name(z)[0] != '\0');
    st_tz_free(z);
}

/* ------------------------------------------------------------ Threads --- */

#define NSAMPLES 20000
static const char *const thread_zones[] = {
    "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"};
static st_tz *shared_zones[4];
static int32_t expected[4][NSAMPLES];

static int64_t sample_time(int i)
{
    return (int64_t)i * 211331 - 500000000; /* 1954 .. 2103 */
}

static void *read_zones(void *arg)
{
    long bad = 0;
    int k, i;
    (void)arg;
    for (k = 0; k < 4; k++) {
        stellar_error e = {0};
        st_tz *own;
        if (st_tz_open(thread_zones[k], &own, &e) != STELLAR_OK)
            return (void *)1;
        for (i = 0; i < NSAMPLES; i++)
            bad += st_tz_offset(shared_zones[k], sample_time(i)) !=
                       expected[k][i] ||
                   st_tz_offset(own, sample_time(i)) != expected[k][i];
        st_tz_free(own);
    }
    return (void *)bad;
}

static void zones_are_read_by_many_threads_at_once(struct test_ctx *t)
{
    pthread_t th[6];
    stellar_error e = {0};
    int k, i;

    (void)t;
    for (k = 0; k < 4; k++) {
        ASSERT_OK(st_tz_open(thread_zones[k], &shared_zones[k], &e), &e);
        for (i = 0; i < NSAMPLES; i++)
            expected[k][i] = st_tz_offset(shared_zones[k], sample_time(i));
    }
    for (k = 0; k < 6; k++)
        ASSERT_EQ(0, pthread_create(&th[k], NULL, read_zones, NULL));
    for (k = 0; k < 6; k++) {
        void *bad;
        ASSERT_EQ(0, pthread_join(th[k], &bad));
        ASSERT_EQ(0, (int64_t)(intptr_t)bad);
    }
    for (k = 0; k < 4; k++)
        st_tz_free(shared_zones[k]);
}

static const struct test tests[] = {
    {"bad expressions are refused naming the field",
     bad_expressions_are_refused_naming_the_field, 0},
    {"good expressions mean what Vixie cron means",
     good_expressions_mean_what_vixie_cron_means, 0},
    {"day fields combine with OR only when both are restricted",
     day_fields_combine_with_or_only_when_both_are_restricted, 0},
    {"hostile zone names are refused", hostile_zone_names_are_refused, 0},
    {"footer rules give the offsets after the last transition",
     footer_rules_give_the_offsets_after_the_last_transition, 0},
    {"truncated and corrupt zone files are refused",
     truncated_and_corrupt_zone_files_are_refused, 0},
    {"the local zone comes from TZ or /etc/localtime",
     the_local_zone_comes_from_tz_or_etc_localtime, 0},
    {"zones are read by many threads at once",
     zones_are_read_by_many_threads_at_once, 0},
};
TEST_MAIN(tests)
