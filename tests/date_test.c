/*
 * date_test.c: st_js_date_parse (src/date.c) reads back, to the
 * millisecond, the dates Stellar writes (st_js_date, st_iso_date) and the
 * ones real node writes (Date.prototype.toString() in several time zones,
 * toISOString()), plus resque-retry's form; and refuses what is no date.
 * The node test is skipped when node is not on PATH.
 */
#include "harness.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The earliest instant the round trips use: 1000-01-01T00:00:00Z, so
 * that every year has four digits, as JavaScript writes them. */
#define YEAR_1000_MS (-30610224000000LL)

/* A reproducible spread of instants (xorshift64*). */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static int64_t some_instant(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next_rand(s) % (uint64_t)(hi - lo + 1));
}

/* ms rounded down to its second, as toString() writes it. */
static int64_t whole_second(int64_t ms)
{
    return ms - ((ms % 1000) + 1000) % 1000;
}

static void expect_parse(const char *file, int line, const char *s,
                         int64_t want)
{
    int64_t got = 0;
    if (!st_js_date_parse(s, &got))
        test_fail(file, line, "st_js_date_parse(\"%s\") refused it", s);
    if (got != want)
        test_fail(file, line,
                  "st_js_date_parse(\"%s\")\n  want: %lld\n  got:  %lld", s,
                  (long long)want, (long long)got);
}
#define EXPECT_PARSE(s, want) expect_parse(__FILE__, __LINE__, (s), (want))

static void js_dates_round_trip_to_the_second(struct test_ctx *t)
{
    static const int64_t edges[] = {0,
                                    1,
                                    999,
                                    1000,
                                    -1,
                                    -1000,
                                    -1001,
                                    951782400000LL, /* 2000-02-29 */
                                    1795918819123LL,
                                    STELLAR_TIME_MAX,
                                    YEAR_1000_MS};
    uint64_t seed = 0x5eed5eedULL;
    char date[80];
    size_t i;

    (void)t;
    for (i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        st_js_date(edges[i], date);
        EXPECT_PARSE(date, whole_second(edges[i]));
    }
    for (i = 0; i < 20000; i++) {
        int64_t ms = some_instant(&seed, YEAR_1000_MS, STELLAR_TIME_MAX);
        st_js_date(ms, date);
        EXPECT_PARSE(date, whole_second(ms));
    }
}

static void iso_dates_round_trip_to_the_millisecond(struct test_ctx *t)
{
    uint64_t seed = 0xda7eULL;
    char date[32];
    size_t i;

    (void)t;
    for (i = 0; i < 20000; i++) {
        int64_t ms = some_instant(&seed, YEAR_1000_MS, STELLAR_TIME_MAX);
        st_iso_date(ms, date);
        EXPECT_PARSE(date, ms);
    }
}

static void every_written_form_is_read(struct test_ctx *t)
{
    const int64_t at = 1795918819000LL; /* 2026-11-29T02:20:19Z */

    (void)t;
    EXPECT_PARSE("Sun Nov 29 2026 02:20:19 GMT+0000 (Coordinated Universal "
                 "Time)",
                 at);
    EXPECT_PARSE("Sun Nov 29 2026 07:50:19 GMT+0530 (India Standard Time)", at);
    EXPECT_PARSE("Sat Nov 28 2026 18:20:19 GMT-0800 (Pacific Standard Time)",
                 at);
    EXPECT_PARSE("Sun Nov 29 2026 02:20:19 GMT+0000", at);
    EXPECT_PARSE("Sun Nov 29 2026 02:20:19", at); /* no offset: UTC */
    EXPECT_PARSE("2026-11-29T02:20:19.123Z", at + 123);
    EXPECT_PARSE("2026-11-29T02:20:19Z", at);
    EXPECT_PARSE("2026-11-29T02:20:19", at);
    EXPECT_PARSE("2026-11-29T02:20:19.5Z", at + 500);
    EXPECT_PARSE("2026-11-29T02:20:19.123456Z", at + 123);
    EXPECT_PARSE("2026-11-29T07:50:19+05:30", at);
    EXPECT_PARSE("2026-11-29T07:50:19.000+0530", at);
    EXPECT_PARSE("2026-11-28T21:20:19-05", at);
    EXPECT_PARSE("2026/11/29 02:20:19", at); /* resque-retry */
}

static void what_is_no_date_is_refused(struct test_ctx *t)
{
    static const char *const bad[] = {
        "",
        "yesterday",
        "1796004019000",
        "Sun Foo 29 2026 02:20:19 GMT+0000",
        "2026-11-29",
        "29/11/2026",
    };
    size_t i;
    int64_t ms = 42;

    (void)t;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (st_js_date_parse(bad[i], &ms))
            FAIL("st_js_date_parse(\"%s\") took it as %lld", bad[i],
                 (long long)ms);
    ASSERT_TRUE(!st_js_date_parse(NULL, &ms));
    ASSERT_EQ(ms, 42); /* untouched on refusal */
}

/* Node prints, for each instant given, "<ms>\t<toString>\t<toISOString>". */
static const char node_script[] =
    "for (const a of process.argv.slice(1)) { const d = new Date(Number(a));"
    " console.log(a + '\\t' + d.toString() + '\\t' + d.toISOString()); }";

static void check_zone(const char *tz, uint64_t *seed)
{
    char cmd[8192], line[512];
    size_t len, i, lines = 0;
    FILE *p;

    len = (size_t)snprintf(cmd, sizeof cmd, "TZ=%s node -e \"%s\"", tz,
                           node_script);
    for (i = 0; i < 200; i++) {
        /* From 1970 on: earlier, zones had offsets in seconds (local mean
         * time), which toString() rounds to the minute. */
        int64_t ms = some_instant(seed, 0, STELLAR_TIME_MAX);
        len += (size_t)snprintf(cmd + len, sizeof cmd - len, " %lld",
                                (long long)ms);
        ASSERT_TRUE(len < sizeof cmd);
    }
    if (!(p = popen(cmd, "r"))) FAIL("popen node: cannot start it");
    while (fgets(line, sizeof line, p)) {
        char *text = strchr(line, '\t'), *iso;
        int64_t ms;
        if (!text || !(iso = strchr(text + 1, '\t')))
            FAIL("TZ=%s: node printed \"%s\"", tz, line);
        *text++ = '\0';
        *iso++ = '\0';
        iso[strcspn(iso, "\n")] = '\0';
        ms = strtoll(line, NULL, 10);
        EXPECT_PARSE(text, whole_second(ms));
        EXPECT_PARSE(iso, ms);
        lines++;
    }
    ASSERT_EQ(pclose(p), 0);
    ASSERT_EQ(lines, 200);
}

static void
dates_written_by_node_are_read_to_the_millisecond(struct test_ctx *t)
{
    static const char *const zones[] = {"UTC",
                                        "Asia/Kolkata",
                                        "America/New_York",
                                        "Asia/Kathmandu",
                                        "Australia/Lord_Howe",
                                        "America/St_Johns",
                                        "Pacific/Chatham"};
    uint64_t seed = 0x0de5eedULL;
    size_t i;

    (void)t;
    if (system("command -v node >/dev/null 2>&1") != 0)
        SKIP("node is not on PATH");
    for (i = 0; i < sizeof zones / sizeof zones[0]; i++)
        check_zone(zones[i], &seed);
}

static const struct test tests[] = {
    {"js dates round trip to the second", js_dates_round_trip_to_the_second, 0},
    {"iso dates round trip to the millisecond",
     iso_dates_round_trip_to_the_millisecond, 0},
    {"every written form is read", every_written_form_is_read, 0},
    {"what is no date is refused", what_is_no_date_is_refused, 0},
    {"dates written by node are read to the millisecond",
     dates_written_by_node_are_read_to_the_millisecond, 0},
};
TEST_MAIN(tests)
