/*
 * security.c: the HTTP server's security checks: methods and the CSRF
 * header, the token off loopback, Host checks on loopback, listen strings;
 * read tokens, wrong tokens logged and slowed per address, the audit log.
 */
#include "http_test.h"

/* ---------------------------------------------------------- Security --- */

void state_changes_need_post_or_delete_and_the_csrf_header(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    int port;
    stellar_http *s = serve(h, NULL, NULL, &port);
    const char *body = "{\"task\":\"echo\"}";
    char origin[128];
    int64_t n = -1;
    stellar_error e = {0};

    ASSERT_ERROR(req(port, "POST", "/api/enqueue", NULL, body), 403, "ECSRF");
    ASSERT_ERROR(
        req(port, "POST", "/api/enqueue", "X-Stellar-CSRF: yes\r\n", body), 403,
        "ECSRF");
    ASSERT_ERROR(req(port, "POST", "/api/enqueue",
                     CSRF "Origin: http://evil.example\r\n", body),
                 403, "ECSRF");
    ASSERT_ERROR(
        req(port, "POST", "/api/enqueue", CSRF "Origin: null\r\n", body), 403,
        "ECSRF");
    ASSERT_ERROR(req(port, "POST", "/api/enqueue",
                     CSRF "Sec-Fetch-Site: cross-site\r\n", body),
                 403, "ECSRF");
    ASSERT_ERROR(req(port, "DELETE", "/api/failed", NULL, NULL), 403, "ECSRF");
    ASSERT_OK(stellar_length(h, "default", &n, &e), &e);
    ASSERT_EQ(0, n);

    snprintf(origin, sizeof origin, CSRF "Origin: http://127.0.0.1:%d\r\n",
             port);
    ASSERT_STATUS(req(port, "POST", "/api/enqueue", origin, body), 200);
    ASSERT_OK(stellar_length(h, "default", &n, &e), &e);
    ASSERT_EQ(1, n);

    /* Reads never change anything, and routes keep their methods. */
    ASSERT_ERROR(get(port, "/api/enqueue"), 405, "EMETHOD");
    ASSERT_STR_EQ("POST", hdr(&last, "Allow"));
    ASSERT_ERROR(get(port, "/api/failed/retry-all"), 405, "EMETHOD");
    ASSERT_ERROR(del(port, "/api/stats", NULL), 405, "EMETHOD");
    ASSERT_STR_EQ("GET, HEAD", hdr(&last, "Allow"));
    ASSERT_ERROR(req(port, "PUT", "/api/stats", CSRF, NULL), 405, "EMETHOD");
    ASSERT_STR_EQ("GET, HEAD", hdr(&last, "Allow"));
    ASSERT_ERROR(req(port, "OPTIONS", "/api/enqueue", NULL, NULL), 405,
                 "EMETHOD");
    ASSERT_ERROR(post(port, "/metrics", "{}"), 405, "EMETHOD");
    /* No CORS: nothing grants another origin. */
    ASSERT_TRUE(hdr(get(port, "/api/stats"), "Access-Control-Allow-Origin") ==
                NULL);
    finish(s, h);
}

void a_token_is_required_off_loopback_and_checked_on_every_request(
    struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    stellar_http_options o = {0};
    stellar_error e = {0};
    stellar_http *s = NULL;
    char line[256], cookie[128];
    int port, rc;

    o.listen = "0.0.0.0:0";
    rc = stellar_http_start(h, &o, &s, &e);
    ASSERT_EQ(STELLAR_EINVAL, rc);
    ASSERT_TRUE(s == NULL);
    ASSERT_TRUE(test_contains_ci(e.msg, "token"));

    /* Off loopback a token needs 16 characters; the message shows none. */
    o.token = "s3cret+/=";
    ASSERT_EQ(STELLAR_EINVAL, stellar_http_start(h, &o, &s, &e));
    ASSERT_TRUE(test_contains_ci(e.msg, "16"));
    ASSERT_TRUE(strstr(e.msg, "s3cret") == NULL);

    s = serve(h, "0.0.0.0:0", TOKEN, &port);
    ASSERT_ERROR(get(port, "/api/stats"), 401, "EAUTH");
    ASSERT_TRUE(hdr(&last, "WWW-Authenticate") != NULL);
    ASSERT_ERROR(get(port, "/metrics"), 401, "EAUTH");
    ASSERT_ERROR(get(port, "/"), 401, "EAUTH");
    ASSERT_ERROR(get(port, "/app.js"), 401, "EAUTH");
    ASSERT_ERROR(post(port, "/api/enqueue", "{\"task\":\"echo\"}"), 401,
                 "EAUTH");
    ASSERT_ERROR(req(port, "GET", "/api/stats",
                     "Authorization: Bearer s3cret\r\n", NULL),
                 401, "EAUTH");
    ASSERT_ERROR(get(port, "/api/stats?token=s3cret"), 401, "EAUTH");

    /* The wrong token above makes this address wait a moment. */
    ASSERT_STATUS(
        req_past_backoff(NULL, port, "GET", "/api/stats", BEARER, NULL), 200);
    ASSERT_STATUS(
        req(port, "POST", "/api/enqueue", CSRF BEARER, "{\"task\":\"echo\"}"),
        200);
    /* ?token= is taken only by the dashboard's page, never by /api or
     * /metrics (those send the header). */
    ASSERT_ERROR(get(port, "/api/stats?token=" TOKEN_Q), 401, "EAUTH");
    ASSERT_TRUE(test_contains_ci(
        json_string_value(json_object_get(last.json, "error")), "Bearer"));
    ASSERT_ERROR(get(port, "/metrics?token=" TOKEN_Q), 401, "EAUTH");
    ASSERT_ERROR(req(port, "POST", "/api/enqueue?token=" TOKEN_Q, CSRF,
                     "{\"task\":\"echo\"}"),
                 401, "EAUTH");
    /* Opening the page with ?token= sets a session cookie: a random id,
     * not the token nor its hex, HttpOnly, SameSite=Strict, expiring. */
    ASSERT_STATUS(get(port, "/?token=" TOKEN_Q), 200);
    ASSERT_TRUE(hdr(&last, "Set-Cookie") != NULL);
    snprintf(cookie, sizeof cookie, "%s", hdr(&last, "Set-Cookie"));
    ASSERT_TRUE(strncmp(cookie, "stellar_session=", 16) == 0);
    ASSERT_TRUE(strstr(cookie, "HttpOnly") &&
                strstr(cookie, "SameSite=Strict") &&
                strstr(cookie, "Max-Age=43200"));
    ASSERT_TRUE(strstr(cookie, "s3cret") == NULL);
    ASSERT_TRUE(strstr(cookie, "7333637265742b2f3d") == NULL);
    ASSERT_EQ(32, strcspn(cookie + 16, ";"));
    snprintf(line, sizeof line, "Cookie: %.*s\r\n", (int)strcspn(cookie, ";"),
             cookie);
    ASSERT_STATUS(req(port, "GET", "/app.js", line, NULL), 200);
    ASSERT_STATUS(req(port, "GET", "/api/stats", line, NULL), 200);
    /* Each page load makes another session. */
    ASSERT_STATUS(get(port, "/index.html?token=" TOKEN_Q), 200);
    ASSERT_TRUE(strstr(cookie, hdr(&last, "Set-Cookie")) == NULL);
    ASSERT_ERROR(req(port, "GET", "/app.js",
                     "Cookie: stellar_session=00000000000000000000000000000000"
                     "\r\n",
                     NULL),
                 401, "EAUTH");
    stellar_http_stop(s);

    /* The session dies with the server. */
    s = serve(h, "0.0.0.0:0", TOKEN, &port);
    ASSERT_ERROR(req(port, "GET", "/api/stats", line, NULL), 401, "EAUTH");
    stellar_http_stop(s);

    /* A token set on loopback is checked too. */
    s = serve(h, "127.0.0.1:0", "tok", &port);
    ASSERT_ERROR(get(port, "/api/stats"), 401, "EAUTH");
    ASSERT_STATUS(
        req(port, "GET", "/api/stats", "Authorization: Bearer tok\r\n", NULL),
        200);
    ASSERT_STATUS(get(port, "/?token=tok"), 200);
    finish(s, h);
}

void a_loopback_server_without_a_token_answers_only_loopback_hosts(
    struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    char text[256];
    int port;
    stellar_http *s = serve(h, NULL, NULL, &port);
    /* Hosts, each followed by ":<port>" when the flag says so. */
    static const struct {
        const char *host;
        bool port;
    } ok[] = {{"localhost", true},
              {"127.0.0.1", true},
              {"LOCALHOST", false},
              {"[::1]", true},
              {"127.1.2.3", false}},
      bad[] = {{"evil.example", true},
               {"evil.example", false},
               {"127.0.0.1.evil.example", true},
               {"localhost.evil.example", false}};

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char host[64];
        snprintf(host, sizeof host, ok[i].port ? "%s:%d" : "%s", ok[i].host,
                 port);
        snprintf(text, sizeof text,
                 "GET /api/stats HTTP/1.1\r\nHost: %s\r\nConnection: close"
                 "\r\n\r\n",
                 host);
        ASSERT_STATUS(raw(port, text, strlen(text)), 200);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char host[64];
        snprintf(host, sizeof host, bad[i].port ? "%s:%d" : "%s", bad[i].host,
                 port);
        snprintf(text, sizeof text,
                 "GET /api/stats HTTP/1.1\r\nHost: %s\r\nConnection: close"
                 "\r\n\r\n",
                 host);
        ASSERT_ERROR(raw(port, text, strlen(text)), 403, "EHOST");
    }
    finish(s, h);
}

void listen_strings_are_checked(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    static const char *const bad[] = {
        "nonsense",   "127.0.0.1:99999", "::1:80",
        "127.0.0.1:", "[::1]80",         "127.0.0.1:8x"};
    stellar_http_options o = {0};
    stellar_error e = {0};
    stellar_http *s = NULL, *s2 = NULL;
    char addr[64];
    int port;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.listen = bad[i];
        if (stellar_http_start(h, &o, &s, &e) != STELLAR_EINVAL)
            FAIL("listen '%s' was not refused with EINVAL: %s", bad[i], e.msg);
        ASSERT_TRUE(s == NULL);
    }
    /* A taken port is EIO, with the reason. */
    s = serve(h, NULL, NULL, &port);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    o.listen = addr;
    ASSERT_EQ(STELLAR_EIO, stellar_http_start(h, &o, &s2, &e));
    ASSERT_TRUE(test_contains_ci(e.msg, "in use"));
    ASSERT_TRUE(s2 == NULL);
    /* The first server still serves. */
    ASSERT_STATUS(get(port, "/api/stats"), 200);
    finish(s, h);
}

/* --------------------------------------------- Tokens, sessions, audit --- */

void a_read_token_reads_everything_and_changes_nothing(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    stellar_http_options o = {0};
    stellar_error e = {0};
    stellar_http *s = NULL;
    char cookie[256];
    const char *sc;
    int port;

    /* The two tokens must differ; off loopback both need 16 characters. */
    o.listen = "0.0.0.0:0";
    o.token = TOKEN;
    o.read_token = TOKEN;
    ASSERT_EQ(STELLAR_EINVAL, stellar_http_start(h, &o, &s, &e));
    ASSERT_TRUE(strstr(e.msg, TOKEN) == NULL);
    o.read_token = "short";
    ASSERT_EQ(STELLAR_EINVAL, stellar_http_start(h, &o, &s, &e));
    ASSERT_TRUE(test_contains_ci(e.msg, "read token"));
    ASSERT_TRUE(strstr(e.msg, "short") == NULL);

    o.read_token = READ_TOKEN;
    ASSERT_OK(stellar_http_start(h, &o, &s, &e), &e);
    port = stellar_http_port(s);
    enqueue(h, "echo", NULL, "q1");
    ASSERT_STATUS(req(port, "GET", "/api/stats", READ_BEARER, NULL), 200);
    ASSERT_STATUS(req(port, "GET", "/api/delayed", READ_BEARER, NULL), 200);
    ASSERT_STATUS(req(port, "HEAD", "/api/queues", READ_BEARER, NULL), 200);
    ASSERT_STATUS(req(port, "GET", "/metrics", READ_BEARER, NULL), 200);
    ASSERT_TRUE(strstr(last.body, "stellar_queue_depth") != NULL);
    ASSERT_STATUS(req(port, "GET", "/", READ_BEARER, NULL), 200);
    ASSERT_ERROR(req(port, "POST", "/api/enqueue", CSRF READ_BEARER,
                     "{\"task\":\"echo\"}"),
                 403, "EREADONLY");
    ASSERT_ERROR(req(port, "DELETE", "/api/queues/q1", CSRF READ_BEARER, NULL),
                 403, "EREADONLY");
    ASSERT_ERROR(
        req(port, "POST", "/api/failed/retry-all", CSRF READ_BEARER, NULL), 403,
        "EREADONLY");
    ASSERT_ERROR(req(port, "DELETE", "/api/delayed", READ_BEARER, NULL), 403,
                 "EREADONLY");
    ASSERT_EQ(1, test_length(h, "q1"));

    /* A session opened with the read token is read-only too. */
    ASSERT_STATUS(get(port, "/?token=" READ_TOKEN), 200);
    ASSERT_TRUE((sc = hdr(&last, "Set-Cookie")) != NULL);
    snprintf(cookie, sizeof cookie, "Cookie: %.*s\r\n", (int)strcspn(sc, ";"),
             sc);
    ASSERT_STATUS(req(port, "GET", "/api/stats", cookie, NULL), 200);
    strcat(cookie, CSRF);
    ASSERT_ERROR(req(port, "DELETE", "/api/queues/q1", cookie, NULL), 403,
                 "EREADONLY");
    ASSERT_EQ(1, test_length(h, "q1"));

    /* The admin token still changes things. */
    ASSERT_STATUS(req(port, "DELETE", "/api/queues/q1", CSRF BEARER, NULL),
                  200);
    ASSERT_EQ(0, test_length(h, "q1"));
    finish(s, h);

    /* Tokens are never in the log. */
    ASSERT_TRUE(!log_has(test_path(t, "stellar.log"), "s3cret", NULL, NULL));
    ASSERT_TRUE(!log_has(test_path(t, "stellar.log"), READ_TOKEN, NULL, NULL));
    ASSERT_TRUE(
        log_has(test_path(t, "stellar.log"), "read token ***", NULL, NULL));
}

void wrong_tokens_are_logged_and_slowed_per_address(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    int port, i, wrong = 0;
    stellar_http *s = serve(h, "127.0.0.1:0", TOKEN, &port);
    const char *bad = "Authorization: Bearer not-the-token-0123\r\n";

    /* Wrong tokens: 401, then 429 with Retry-After while the address must
     * wait (250 ms, doubling): a guess is not even checked then. */
    for (i = 0; i < 20 && last.status != 429; i++) {
        req(port, "GET", "/api/stats", bad, NULL);
        ASSERT_TRUE(last.status == 401 || last.status == 429);
        wrong += last.status == 401;
    }
    ASSERT_ERROR(&last, 429, "EBACKOFF");
    ASSERT_TRUE(hdr(&last, "Retry-After") &&
                atoi(hdr(&last, "Retry-After")) >= 1);
    ASSERT_TRUE(wrong >= 1);
    /* Another address is not slowed. */
    ASSERT_STATUS(
        req_from("127.0.0.2", port, "GET", "/api/stats", BEARER, NULL), 200);
    /* The failures are logged with the address, never the token. */
    ASSERT_TRUE(log_has(test_path(t, "stellar.log"), "wrong token", "127.0.0.1",
                        "bearer"));
    ASSERT_TRUE(
        !log_has(test_path(t, "stellar.log"), "not-the-token", NULL, NULL));
    /* A wrong ?token= on the page counts as well; a stale session cookie
     * does not (it is just no credential). */
    ASSERT_ERROR(
        req_past_backoff("127.0.0.3", port, "GET", "/?token=nope", NULL, NULL),
        401, "EAUTH");
    ASSERT_TRUE(log_has(test_path(t, "stellar.log"), "wrong token", "127.0.0.3",
                        "?token"));
    for (i = 0; i < 5; i++)
        ASSERT_ERROR(
            req_from("127.0.0.4", port, "GET", "/api/stats",
                     "Cookie: stellar_session=0123456789abcdef0123456789abcdef"
                     "\r\n",
                     NULL),
            401, "EAUTH");
    /* Once the wait is over, the right token works and clears the count. */
    ASSERT_STATUS(
        req_past_backoff(NULL, port, "GET", "/api/stats", BEARER, NULL), 200);
    ASSERT_STATUS(req(port, "GET", "/api/stats", BEARER, NULL), 200);
    finish(s, h);
}

void every_change_over_http_is_audited(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    int port;
    stellar_http *s = serve(h, "127.0.0.1:0", TOKEN, &port);
    const char *log = test_path(t, "stellar.log");

    ASSERT_STATUS(req_from("127.0.0.2", port, "POST", "/api/enqueue",
                           CSRF BEARER, "{\"task\":\"echo\"}"),
                  200);
    ASSERT_TRUE(log_has(log, "http audit: POST /api/enqueue -> 200",
                        "by admin token via bearer", "from 127.0.0.2"));
    ASSERT_ERROR(req_from("127.0.0.2", port, "DELETE", "/api/locks/lock:none",
                          CSRF BEARER, NULL),
                 404, "ENOTFOUND");
    ASSERT_TRUE(log_has(log, "http audit: DELETE /api/locks/lock:none -> 404",
                        "admin token", "127.0.0.2"));
    /* Reads are not audited. */
    ASSERT_STATUS(req(port, "GET", "/api/stats", BEARER, NULL), 200);
    ASSERT_TRUE(!log_has(log, "http audit: GET", NULL, NULL));
    finish(s, h);

    /* Without a token (loopback), the audit says so. */
    h = open_app(t, 0, NULL);
    s = serve(h, NULL, NULL, &port);
    ASSERT_STATUS(post(port, "/api/enqueue", "{\"task\":\"echo\"}"), 200);
    ASSERT_TRUE(log_has(log, "http audit: POST /api/enqueue -> 200",
                        "by no token", "from 127.0.0.1"));
    finish(s, h);
}
