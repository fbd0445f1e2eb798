/*
 * parsers.c: unit tests of the parsers that take text from outside: backend
 * URLs (backend.c, url.c and the Redis backend's URL parser, reached through
 * st_backend_open), the HTTP API's router (st_http_api in src/http/api.c,
 * which sees a request as a plain struct, so no socket is needed), and the
 * app config stellar.json (cmd/stellar/app.c, compiled into this program).
 *
 * Inputs are real ones and hostile ones: empty, huge, control characters,
 * bad escapes, bad ports, unknown keys. Each must be refused with a clear
 * message or taken as the documentation says, never crash, and never show a
 * password. ctest runs the program once (--backend sqlite): only the router
 * needs a handle, on the test's SQLite file.
 */
#include "fixture.h"
#include "harness.h"

#include "backend.h"
#include "internal.h"
#include "stellar.h"

#ifdef STELLAR_TEST_HTTP
#include "http/http.h"
#endif
#include "../cmd/stellar/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HUGE_LEN (256 * 1024)

/* A string of n copies of c (new buffer). */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    ASSERT_TRUE(s != NULL);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* -------------------------------------------------------- Redaction --- */

static void check_redact(const char *url, const char *want)
{
    char *got = st_url_redact(url);
    if (!got || strcmp(got, want) != 0)
        FAIL("st_url_redact(\"%s\")\n  want: %s\n  got:  %s", url, want,
             got ? got : "NULL");
    st_free(got);
}

static void
redaction_hides_every_password_and_keeps_the_rest(struct test_ctx *t)
{
    char *huge, *got;
    (void)t;
    ASSERT_TRUE(st_url_redact(NULL) == NULL);
    check_redact("", "");
    check_redact("sqlite:./stellar.db", "sqlite:./stellar.db");
    check_redact("sqlite::memory:", "sqlite::memory:");
    check_redact("redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2");
    check_redact("redis://user:secret@host:6379", "redis://user:***@host:6379");
    check_redact("redis://secret@host", "redis://***@host");
    check_redact("redis://:secret@host/0", "redis://:***@host/0");
    check_redact("redis://u:p@ss/w@rd@host", "redis://u:***@host");
    check_redact("redis://host?password=secret&db=1",
                 "redis://host?password=***&db=1");
    check_redact("redis://host?db=1&password=secret",
                 "redis://host?db=1&password=***");
    check_redact("redis://host?password=", "redis://host?password=");
    check_redact("redis+unix:///tmp/r.sock", "redis+unix:///tmp/r.sock");
    check_redact("redis+unix://pw@/tmp/r.sock", "redis+unix://***@/tmp/r.sock");
    check_redact("redis+unix:///tmp/r.sock?password=pw",
                 "redis+unix:///tmp/r.sock?password=***");
    /* Control characters pass through untouched; a password is still
     * hidden. */
    check_redact("redis://a:s\x01\n@h\t", "redis://a:***@h\t");

    /* Huge: a 256 KiB password is hidden whole. */
    huge = repeat('x', HUGE_LEN);
    {
        size_t n = strlen("redis://u:@h") + HUGE_LEN + 1;
        char *url = malloc(n);
        snprintf(url, n, "redis://u:%s@h", huge);
        got = st_url_redact(url);
        ASSERT_STR_EQ("redis://u:***@h", got);
        st_free(got);
        free(url);
    }
    free(huge);
}

/* ---------------------------------------------------- Decode, param --- */

static void url_decoding_and_query_parameters(struct test_ctx *t)
{
    char *s;
    (void)t;
    s = st_url_decode("a%20b%2Fc", 9);
    ASSERT_STR_EQ("a b/c", s);
    st_free(s);
    s = st_url_decode("", 0);
    ASSERT_TRUE(s != NULL);
    ASSERT_STR_EQ("", s);
    st_free(s);
    s = st_url_decode("abc", 2); /* only the first n bytes */
    ASSERT_STR_EQ("ab", s);
    st_free(s);

    s = st_url_param("db=3&password=p%40ss", "password");
    ASSERT_STR_EQ("p@ss", s);
    st_free(s);
    s = st_url_param("db=3&password=x", "db");
    ASSERT_STR_EQ("3", s);
    st_free(s);
    ASSERT_TRUE(st_url_param("db=3", "password") == NULL);
    ASSERT_TRUE(st_url_param("", "db") == NULL);
    ASSERT_TRUE(st_url_param("xdb=3", "db") == NULL);
    ASSERT_TRUE(st_url_param("&&&", "db") == NULL);
}

/* ------------------------------------------------- Backend schemes --- */

/* Opening url fails with want (a STELLAR_E* code); the message must be
 * set and must not show secret. */
static void expect_open_fails(const char *url, int want, const char *secret)
{
    st_backend_cfg cfg = {0};
    stellar_error e = {0};
    st_backend *b = (st_backend *)&e; /* must be reset to NULL */
    int rc = st_backend_open(&b, url, &cfg, &e);

    if (rc != want)
        FAIL("st_backend_open(\"%.80s\"): got %d (%s), want %d", url, rc, e.msg,
             want);
    ASSERT_TRUE(b == NULL);
    ASSERT_TRUE(e.msg[0] != '\0');
    ASSERT_TRUE(memchr(e.msg, '\0', sizeof e.msg) != NULL);
    if (secret && strstr(e.msg, secret))
        FAIL("the message shows the password: %s", e.msg);
}

static void backend_urls_pick_their_backend_or_are_refused(struct test_ctx *t)
{
    char *huge;
    (void)t;
    ASSERT_TRUE(st_backend_find("sqlite:x.db") != NULL);
    ASSERT_TRUE(st_backend_find("sqlite:") != NULL);
    ASSERT_TRUE(st_backend_find("") == NULL);
    ASSERT_TRUE(st_backend_find("sqlite") == NULL);
    ASSERT_TRUE(st_backend_find(":") == NULL);
    ASSERT_TRUE(st_backend_find("SQLITE:x") == NULL ||
                st_backend_find("SQLITE:x") == st_backend_find("sqlite:x"));
    ASSERT_TRUE(st_backend_find("mysql://h") == NULL);
    ASSERT_TRUE(st_backend_find("sqlite3:x") == NULL);
    ASSERT_TRUE(st_backend_find("redis+unixx:///s") == NULL);
#ifdef STELLAR_HAVE_REDIS
    ASSERT_TRUE(st_backend_find("redis://h") != NULL);
    ASSERT_TRUE(st_backend_find("redis+unix:///s") ==
                st_backend_find("redis:"));
#endif

    expect_open_fails("", STELLAR_EINVAL, NULL);
    expect_open_fails("nothing", STELLAR_EINVAL, NULL);
    expect_open_fails("mysql://u:hunter2@h/db", STELLAR_EINVAL, "hunter2");
    expect_open_fails("\x01\x02:\n", STELLAR_EINVAL, NULL);
    huge = repeat('a', HUGE_LEN);
    huge[10] = ':';
    expect_open_fails(huge, STELLAR_EINVAL, NULL);
    free(huge);
}

static void
bad_redis_urls_are_refused_without_showing_the_password(struct test_ctx *t)
{
#ifdef STELLAR_HAVE_REDIS
    static const char *const bad[] = {
        "redis://u:hunter2@h:0",
        "redis://u:hunter2@h:65536",
        "redis://u:hunter2@h:-1",
        "redis://u:hunter2@h:99999999999999999999",
        "redis://u:hunter2@h:port",
        "redis://u:hunter2@h:63 79",
        "redis://u:hunter2@h:6379x",
        "redis://u:hunter2@[::1",
        "redis://u:hunter2@h/notanumber",
        "redis://u:hunter2@h/-1",
        "redis://u:hunter2@h/99999999",
        "redis://u:hunter2@h?db=x",
        "redis://u:hunter2@h?db=-5",
        "redis+unix://hunter2@",
        "redis+unix://hunter2@?db=1",
        "redis+unix://",
        "redis:h",
        "redis:/h",
    };
    (void)t;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_open_fails(bad[i], STELLAR_EINVAL, "hunter2");
#else
    (void)t;
    SKIP("libstellar was built without hiredis");
#endif
}

/* (An empty URL is not among them: stellar_open takes NULL or "" as the
 * default, sqlite:./stellar.db.) */
static void stellar_open_refuses_huge_and_unknown_urls(struct test_ctx *t)
{
    const char *urls[3] = {"ftp://x", "\x7f\x01:", NULL};
    char *huge = repeat('z', HUGE_LEN);
    (void)t;
    urls[2] = huge;
    for (int i = 0; i < 3; i++) {
        stellar_options o = {0};
        stellar_error e = {0};
        stellar *h = (stellar *)&o;
        o.url = urls[i];
        ASSERT_TRUE(stellar_open(&h, &o, &e) < 0);
        ASSERT_TRUE(h == NULL);
        ASSERT_TRUE(e.msg[0] != '\0');
    }
    free(huge);
}

/* ------------------------------------------------------------ Router --- */

#ifdef STELLAR_TEST_HTTP
static char *no_args(void *ud, const char *name)
{
    (void)ud;
    (void)name;
    return NULL;
}

/* Answers method path (body: NULL) with st_http_api; returns the status,
 * *r filled (reply_free it). */
static int route(stellar *h, const char *method, const char *path,
                 const char *body, st_http_reply *r)
{
    st_http_req req = {method, path, no_args,
                       NULL,   body, body ? strlen(body) : 0};
    st_http_api(h, &req, r);
    return r->status;
}

static void reply_free(st_http_reply *r)
{
    st_free(r->body);
    memset(r, 0, sizeof *r);
}

/* The reply's "code" field equals code. */
static void assert_code(const st_http_reply *r, const char *code)
{
    json_t *doc = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    const char *got = json_string_value(json_object_get(doc, "code"));
    if (!got || strcmp(got, code) != 0)
        FAIL("want code %s, got: %.*s", code, (int)r->len,
             r->body ? r->body : "");
    json_decref(doc);
}

static void the_router_matches_routes_and_refuses_the_rest(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_http_reply r = {0};
    char *huge, *path;

    ASSERT_EQ(200, route(h, "GET", "queues", NULL, &r));
    reply_free(&r);
    ASSERT_EQ(200, route(h, "HEAD", "queues", NULL, &r));
    reply_free(&r);
    ASSERT_EQ(200, route(h, "GET", "failed/count", NULL, &r));
    reply_free(&r);
    /* A route with a decoded segment: the queue does not exist, but the
     * route matched (not "no such API route"). */
    route(h, "GET", "queues/a%20b", NULL, &r);
    ASSERT_TRUE(r.status != 400 && r.status != 405);
    ASSERT_TRUE(r.body && !strstr(r.body, "no such API route"));
    reply_free(&r);

    /* Unknown routes. */
    static const char *const unknown[] = {"",
                                          "nope",
                                          "queues/a/b/c",
                                          "QUEUES",
                                          "failed/count/x",
                                          "workers/clean/x",
                                          "../etc/passwd"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        if (route(h, "GET", unknown[i], NULL, &r) != 404)
            FAIL("GET /api/%s: %d, want 404", unknown[i], r.status);
        assert_code(&r, "ENOTFOUND");
        reply_free(&r);
    }

    /* A known route with a method it does not take: 405 and Allow. */
    ASSERT_EQ(405, route(h, "POST", "queues", NULL, &r));
    assert_code(&r, "EMETHOD");
    ASSERT_STR_EQ("GET, HEAD", r.allow);
    reply_free(&r);
    ASSERT_EQ(405, route(h, "PUT", "queues/q", NULL, &r));
    ASSERT_TRUE(strstr(r.allow, "GET") && strstr(r.allow, "DELETE"));
    reply_free(&r);
    ASSERT_EQ(405, route(h, "get", "queues", NULL, &r));
    reply_free(&r);
    ASSERT_EQ(405, route(h, "", "queues", NULL, &r));
    reply_free(&r);
    ASSERT_EQ(405, route(h, "GET", "enqueue", NULL, &r));
    ASSERT_STR_EQ("POST", r.allow);
    reply_free(&r);

    /* Bad escapes, a NUL, too many segments: 400. */
    static const char *const bad[] = {"queues/%",      "queues/%4",
                                      "queues/%zz",    "queues/a%00b",
                                      "a/b/c/d/e/f/g", "queues/%g0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (route(h, "GET", bad[i], NULL, &r) != 400)
            FAIL("GET /api/%s: %d, want 400", bad[i], r.status);
        assert_code(&r, "EINVAL");
        reply_free(&r);
    }

    /* Control characters in a queue name: refused as a bad name, or
     * unknown; never a 200 or a crash. */
    ASSERT_TRUE(route(h, "GET", "queues/a%0Ab", NULL, &r) >= 400);
    reply_free(&r);
    ASSERT_TRUE(route(h, "GET", "queues/\x01\x7f", NULL, &r) >= 400);
    reply_free(&r);

    /* A body that is not JSON, an empty object, a huge name. */
    ASSERT_EQ(400, route(h, "POST", "enqueue", "{not json", &r));
    assert_code(&r, "EINVAL");
    reply_free(&r);
    ASSERT_TRUE(route(h, "POST", "enqueue", "{}", &r) >= 400);
    reply_free(&r);
    huge = repeat('q', HUGE_LEN);
    path = malloc(HUGE_LEN + 16);
    snprintf(path, HUGE_LEN + 16, "queues/%s", huge);
    ASSERT_TRUE(route(h, "GET", path, NULL, &r) >= 400);
    reply_free(&r);
    free(path);
    free(huge);
    stellar_close(h);
}
#else
static void the_router_matches_routes_and_refuses_the_rest(struct test_ctx *t)
{
    (void)t;
    SKIP("built without STELLAR_HTTP");
}
#endif

/* ------------------------------------------------------------ Config --- */

/*
 * Writes text as <dir>/<name>/stellar.json and runs cli_app_find and
 * cli_backend_resolve on it, stderr in <dir>/<name>.err; returns the exit
 * code and leaves the message in msg.
 */
static int load_config(const struct test_ctx *t, const char *name,
                       const char *text, size_t len, char *backend,
                       size_t backend_n, char *msg, size_t msg_n)
{
    char dir[600], file[700], err[700];
    cli c = {0};
    FILE *f;
    int rc, saved = dup(2);
    size_t n;

    snprintf(dir, sizeof dir, "%s/%s", t->dir, name);
    snprintf(file, sizeof file, "%s/stellar.json", dir);
    snprintf(err, sizeof err, "%s/%s.err", t->dir, name);
    ASSERT_EQ(0, mkdir(dir, 0755));
    f = fopen(file, "wb");
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ(len, fwrite(text, 1, len, f));
    fclose(f);

    fflush(stderr);
    ASSERT_TRUE(freopen(err, "w", stderr) != NULL);
    c.app_opt = dir;
    rc = cli_app_find(&c, true);
    if (rc == CLI_OK) rc = cli_backend_resolve(&c);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    snprintf(backend, backend_n, "%s", c.backend ? c.backend : "");
    f = fopen(err, "r");
    n = f ? fread(msg, 1, msg_n - 1, f) : 0;
    msg[n] = '\0';
    if (f) fclose(f);
    cli_cleanup(&c);
    return rc;
}

static void
the_app_config_is_read_or_refused_naming_the_line(struct test_ctx *t)
{
    static const struct {
        const char *name, *text;
        int ok;
        const char *in_msg; /* expected in the message (failures) */
    } cases[] = {
        {"plain", "{\"tasks\": {\"queues\": [\"*\"]}}", 1, NULL},
        {"top_only", "{}", 1, NULL},
        {"with_http",
         "{\"tasks\": {}, \"http\": {\"listen\": \"127.0.0.1:0\"}}", 1, NULL},
        {"empty", "", 0, "stellar.json"},
        {"spaces", "  \n\t ", 0, "stellar.json"},
        {"broken", "{\"tasks\": {", 0, "stellar.json:"},
        {"array", "[]", 0, "expected an object"},
        {"string", "\"tasks\"", 0, "stellar.json:1:"},
        {"tasks_array", "{\"tasks\": []}", 0, "expected an object"},
        {"unknown_top", "{\"tasks\": {},\n \"task\": {}}", 0,
         "stellar.json:2: task is not a setting"},
        {"unknown_task_key", "{\"tasks\": {\n  \"queue\": [\"a\"]\n}}", 0,
         "stellar.json:2: tasks.queue is not a setting"},
        {"unknown_http_key", "{\"http\": {\"port\": 80}}", 0,
         "http.port is not a setting"},
        {"control_key", "{\"ta\\u0001sks\": {}}", 0, "is not a setting"},
        {"backend_number", "{\"tasks\": {\"backend\": 5}}", 0,
         "tasks.backend must be a URL string"},
        {"backend_empty", "{\"tasks\": {\"backend\": \"\"}}", 0,
         "tasks.backend must be a URL string"},
    };
    char backend[1024], msg[4096];

    unsetenv("STELLAR_BACKEND");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc =
            load_config(t, cases[i].name, cases[i].text, strlen(cases[i].text),
                        backend, sizeof backend, msg, sizeof msg);
        if (cases[i].ok && rc != CLI_OK)
            FAIL("%s: refused (%d): %s", cases[i].name, rc, msg);
        if (!cases[i].ok && rc == CLI_OK)
            FAIL("%s: taken, want refused", cases[i].name);
        if (cases[i].in_msg && !strstr(msg, cases[i].in_msg))
            FAIL("%s: message lacks \"%s\": %s", cases[i].name, cases[i].in_msg,
                 msg);
    }

    /* The default backend, and a relative SQLite path from the app. */
    ASSERT_EQ(CLI_OK, load_config(t, "default", "{}", 2, backend,
                                  sizeof backend, msg, sizeof msg));
    ASSERT_STR_EQ("sqlite:./stellar.db", backend);
    {
        const char *text = "{\"tasks\": {\"backend\": \"sqlite:./jobs.db\"}}";
        char want[800];
        ASSERT_EQ(CLI_OK,
                  load_config(t, "relative", text, strlen(text), backend,
                              sizeof backend, msg, sizeof msg));
        snprintf(want, sizeof want, "sqlite:%s/relative/jobs.db", t->dir);
        ASSERT_STR_EQ(want, backend);
    }

    /* Huge: 1 MiB of whitespace around an object is still read; a 1 MiB
     * unknown key is refused without overflowing the message. */
    {
        size_t n = 1024 * 1024;
        char *text = repeat(' ', n);
        memcpy(text + n / 2, "{}", 2);
        ASSERT_EQ(CLI_OK, load_config(t, "huge_space", text, n, backend,
                                      sizeof backend, msg, sizeof msg));
        free(text);
        text = repeat('k', n);
        text[0] = '{';
        text[1] = '"';
        memcpy(text + n - 6, "\": 1}", 5);
        text[n - 1] = '\n';
        ASSERT_TRUE(load_config(t, "huge_key", text, n, backend, sizeof backend,
                                msg, sizeof msg) != CLI_OK);
        ASSERT_TRUE(strstr(msg, "is not a setting") != NULL);
        free(text);
    }
}

static const struct test tests[] = {
    TEST(redaction_hides_every_password_and_keeps_the_rest, 0),
    TEST(url_decoding_and_query_parameters, 0),
    TEST(backend_urls_pick_their_backend_or_are_refused, 0),
    TEST(bad_redis_urls_are_refused_without_showing_the_password, 0),
    TEST(stellar_open_refuses_huge_and_unknown_urls, 0),
    TEST(the_router_matches_routes_and_refuses_the_rest, 0),
    TEST(the_app_config_is_read_or_refused_naming_the_line, 0),
};
TEST_MAIN(tests)
