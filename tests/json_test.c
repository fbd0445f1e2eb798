/*
 * json_test.c: st_json_stringify / st_json_dumps must produce exactly what
 * JavaScript's JSON.stringify produces (reference §2.1), since Redis
 * matching (LREM, timestamps:<payload> keys, removeFailed) compares whole
 * strings written by node-resque. Expected strings below are node 20's.
 * tests/interop/ checks a table against a live node as well.
 */
#include "harness.h"

#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void expect(const char *file, int line, const json_t *v,
                   const char *want)
{
    char *got = st_json_dumps(v);
    if (!got || strcmp(got, want) != 0)
        test_fail(file, line, "st_json_dumps\n  want: %s\n  got:  %s", want,
                  got ? got : "NULL");
    st_free(got);
}
#define EXPECT(v, want)                                                        \
    do {                                                                       \
        json_t *v_ = (v);                                                      \
        ASSERT_TRUE(v_ != NULL);                                               \
        expect(__FILE__, __LINE__, v_, want);                                  \
        json_decref(v_);                                                       \
    } while (0)

static void expect_number(const char *file, int line, double d,
                          const char *want)
{
    st_buf b = {0};
    char *got;
    st_json_put_number(&b, d);
    got = st_buf_take(&b);
    if (!got || strcmp(got, want) != 0)
        test_fail(file, line,
                  "st_json_put_number(%.17g)\n  want: %s\n  got:  %s", d, want,
                  got ? got : "NULL");
    st_free(got);
}
#define EXPECT_NUMBER(d, want) expect_number(__FILE__, __LINE__, d, want)

static void numbers_are_written_as_javascript_writes_them(struct test_ctx *t)
{
    static const struct {
        double d;
        const char *js;
    } table[] = {
        {0.0, "0"},
        {-0.0, "0"},
        {1.0, "1"},
        {-1.0, "-1"},
        {1.5, "1.5"},
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {100.0, "100"},
        {1e20, "100000000000000000000"},
        {1e21, "1e+21"},
        {1.5e21, "1.5e+21"},
        {1e-6, "0.000001"},
        {1e-7, "1e-7"},
        {1.2e-7, "1.2e-7"},
        {123e-20, "1.23e-18"},
        {9007199254740993.0, "9007199254740992"}, /* 2^53+1 is not a double */
        {123456789012345678901.0, "123456789012345680000"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
        {-3.14159, "-3.14159"},
        {1e300, "1e+300"},
        {4294967296.5, "4294967296.5"},
        {9.999999999999999e22, "1e+23"},
    };
    (void)t;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        EXPECT_NUMBER(table[i].d, table[i].js);
    EXPECT_NUMBER(NAN, "null");
    EXPECT_NUMBER(INFINITY, "null");
    EXPECT_NUMBER(-INFINITY, "null");
}

static void
json_numbers_are_written_as_javascript_writes_them(struct test_ctx *t)
{
    (void)t;
    EXPECT(json_integer(0), "0");
    EXPECT(json_integer(-42), "-42");
    EXPECT(json_integer(9007199254740992LL), "9007199254740992");
    EXPECT(json_integer(9007199254740993LL), "9007199254740992");
    EXPECT(json_integer(9223372036854775807LL), "9223372036854776000");
    EXPECT(json_integer(-9007199254740993LL), "-9007199254740992");
    EXPECT(json_real(-0.0), "0");
    EXPECT(json_real(3.0), "3");
    EXPECT(json_real(0.1), "0.1");
    EXPECT(json_real(1e21), "1e+21");
    EXPECT(json_real(1.2e-7), "1.2e-7");
    EXPECT(json_real(123456789012345678901.0), "123456789012345680000");
    EXPECT(json_real(5e-324), "5e-324");
    EXPECT(json_real(1.7976931348623157e308), "1.7976931348623157e+308");
}

static void strings_escape_only_what_javascript_escapes(struct test_ctx *t)
{
    static const struct {
        const char *s;
        size_t n; /* 0: strlen */
        const char *js;
    } table[] = {
        {"plain", 0, "\"plain\""},
        {"", 0, "\"\""},
        {"quote \" backslash \\", 0, "\"quote \\\" backslash \\\\\""},
        {"\b\f\n\r\t", 0, "\"\\b\\f\\n\\r\\t\""},
        {"\x01", 0, "\"\\u0001\""},
        {"\x1f\x0b\x1e", 0, "\"\\u001f\\u000b\\u001e\""},
        {"a\0b", 3, "\"a\\u0000b\""},
        {"\x7f", 0, "\"\x7f\""},             /* DEL is raw */
        {"http://x/y", 0, "\"http://x/y\""}, /* "/" is raw */
        {"</script>", 0, "\"</script>\""},
        {"\xe2\x80\xa8\xe2\x80\xa9", 0,
         "\"\xe2\x80\xa8\xe2\x80\xa9\""},                  /* U+2028/9 raw */
        {"\xc3\xa9t\xc3\xa9", 0, "\"\xc3\xa9t\xc3\xa9\""}, /* é raw */
        {"\xe4\xb8\xad\xe6\x96\x87", 0,
         "\"\xe4\xb8\xad\xe6\x96\x87\""},                /* CJK raw */
        {"\xf0\x9f\x98\x80", 0, "\"\xf0\x9f\x98\x80\""}, /* emoji raw */
        {"\xef\xbf\xbf", 0, "\"\xef\xbf\xbf\""},         /* U+FFFF raw */
        {"<&'>", 0, "\"<&'>\""},
    };
    (void)t;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        size_t n = table[i].n ? table[i].n : strlen(table[i].s);
        st_buf b = {0};
        char *got;
        EXPECT(json_stringn(table[i].s, n), table[i].js);
        st_json_put_string(&b, table[i].s, n);
        got = st_buf_take(&b);
        ASSERT_STR_EQ(table[i].js, got);
        st_free(got);
    }
}

static void
containers_keep_member_order_and_have_no_whitespace(struct test_ctx *t)
{
    json_t *o = json_object();
    (void)t;
    json_object_set_new(o, "z", json_integer(1));
    json_object_set_new(o, "a", json_true());
    json_object_set_new(o, "m", json_null());
    json_object_set_new(o, "e", json_array());
    json_object_set_new(o, "o", json_object());
    json_object_set_new(o, "f", json_false());
    json_object_set_new(o, "k\"ey", json_pack("[i,s,[f]]", 1, "two", 3.5));
    EXPECT(o, "{\"z\":1,\"a\":true,\"m\":null,\"e\":[],\"o\":{},\"f\":false,"
              "\"k\\\"ey\":[1,\"two\",[3.5]]}");
    EXPECT(json_pack("[[],[[]],{}]"), "[[],[[]],{}]");
    EXPECT(json_true(), "true");
    EXPECT(json_null(), "null");
}

static void stringify_appends_to_a_buffer(struct test_ctx *t)
{
    st_buf b = {0};
    json_t *v = json_pack("{s:i}", "a", 1);
    char *got;
    (void)t;
    st_buf_puts(&b, "x=");
    st_json_stringify(&b, v);
    st_json_stringify(&b, v);
    got = st_buf_take(&b);
    ASSERT_STR_EQ("x={\"a\":1}{\"a\":1}", got);
    st_free(got);
    json_decref(v);
}

/* st_json_parse reads what JSON.parse reads; dumps gives stringify's text. */
static void parse_then_dumps_equals_javascript_round_trip(struct test_ctx *t)
{
    static const struct {
        const char *in, *js;
    } table[] = {
        {"1e21", "1e+21"},
        {"1E3", "1000"},
        {"-0", "0"},
        {"-0.0", "0"},
        {"0.1", "0.1"},
        {"1.20e-7", "1.2e-7"},
        {"9007199254740993", "9007199254740992"},
        {"123456789012345678901", "123456789012345680000"},
        {"-123456789012345678901", "-123456789012345680000"},
        {"18446744073709551616", "18446744073709552000"},
        {"5e-324", "5e-324"},
        {"1.7976931348623157e+308", "1.7976931348623157e+308"},
        {" { \"b\" : [ 1 , 2 ] , \"a\" : \"\\u00e9\\/\\u2028\" } ",
         "{\"b\":[1,2],\"a\":\"\xc3\xa9/\xe2\x80\xa8\"}"},
        {"\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\""},
        {"\"\\u0000\\u001F\\u007f\"", "\"\\u0000\\u001f\x7f\""},
        {"[true,false,null,{}]", "[true,false,null,{}]"},
        {"\"x\"", "\"x\""},
        {"42", "42"},
    };
    (void)t;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        stellar_error e = {0};
        json_t *v = st_json_parse(table[i].in, strlen(table[i].in), &e);
        if (!v) FAIL("st_json_parse(%s): %s", table[i].in, e.msg);
        expect(__FILE__, __LINE__, v, table[i].js);
        json_decref(v);
    }
}

static void parse_refuses_what_javascript_refuses(struct test_ctx *t)
{
    static const char *bad[] = {"",   "{",   "not json {", "[1,]",   "{'a':1}",
                                "01", "NaN", "[1] x",      "\"\\x\""};
    (void)t;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stellar_error e = {0};
        json_t *v = st_json_parse(bad[i], strlen(bad[i]), &e);
        if (v) FAIL("st_json_parse accepted %s", bad[i]);
        ASSERT_TRUE(e.code < 0);
        ASSERT_TRUE(e.msg[0] != '\0');
    }
}

static void the_payload_is_class_queue_args_in_that_order(struct test_ctx *t)
{
    stellar_error e = {0};
    json_t *p = json_pack("{s:s,s:f}", "url", "http://x/y", "n", 1.5);
    char *s = st_payload_build("boom", "work", p, &e), *s2;
    st_payload pl = {0};
    (void)t;
    ASSERT_STR_EQ("{\"class\":\"boom\",\"queue\":\"work\",\"args\":[{\"url\":"
                  "\"http://x/y\",\"n\":1.5}]}",
                  s);
    s2 = st_payload_build("noargs", "q", NULL, &e);
    ASSERT_STR_EQ("{\"class\":\"noargs\",\"queue\":\"q\",\"args\":[{}]}", s2);
    ASSERT_OK(st_payload_parse(&pl, s, strlen(s), &e), &e);
    ASSERT_STR_EQ("boom", pl.klass);
    ASSERT_STR_EQ("work", pl.queue);
    st_payload_clear(&pl);
    ASSERT_TRUE(st_payload_parse(&pl, "not json {", 10, &e) < 0);
    ASSERT_TRUE(e.msg[0] != '\0');
    st_free(s);
    st_free(s2);
    json_decref(p);
}

static const struct test tests[] = {
    {"numbers are written as JavaScript writes them",
     numbers_are_written_as_javascript_writes_them, 0},
    {"json numbers are written as JavaScript writes them",
     json_numbers_are_written_as_javascript_writes_them, 0},
    {"strings escape only what JavaScript escapes",
     strings_escape_only_what_javascript_escapes, 0},
    {"containers keep member order and have no whitespace",
     containers_keep_member_order_and_have_no_whitespace, 0},
    {"stringify appends to a buffer", stringify_appends_to_a_buffer, 0},
    {"parse then dumps equals the JavaScript round trip",
     parse_then_dumps_equals_javascript_round_trip, 0},
    {"parse refuses what JavaScript refuses",
     parse_refuses_what_javascript_refuses, 0},
    {"the payload is class, queue, args in that order",
     the_payload_is_class_queue_args_in_that_order, 0},
};
TEST_MAIN(tests)
