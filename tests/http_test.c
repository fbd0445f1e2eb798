/*
 * http_test.c: the HTTP server (issue #7) over real sockets, once per
 * backend (http.sqlite, http.redis): the JSON API against the C API's
 * documents, management calls, errors, the security checks (token, Host,
 * CSRF, methods, sizes, paths), and /metrics parsed as Prometheus text.
 *
 * The client is a few lines of sockets: one request per connection
 * ("Connection: close"), the whole reply read to EOF. Raw requests let the
 * tests send what a browser would not (odd paths, forged headers).
 */
#include "fixture.h"
#include "harness.h"

#include "stellar.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ------------------------------------------------------------ Client --- */

typedef struct reply {
    int status;
    char *head; /* status line and headers */
    char *body;
    size_t len;
    json_t *json; /* the body parsed, if it is JSON */
} reply;

static reply last; /* the reply of the latest request; freed by the next */

static void reply_clear(reply *r)
{
    free(r->head);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* A TCP socket connected to 127.0.0.1:port from the address src (NULL:
 * any), or -1 with errno. */
static int connect_from(const char *src, int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (src) {
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        inet_pton(AF_INET, src, &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) goto fail;
    }
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
fail:
    close(fd);
    return -1;
}

static reply *raw_from(const char *src, int port, const char *req, size_t n);

/* Sends raw bytes to 127.0.0.1:port and reads the reply to EOF. */
static reply *raw(int port, const char *req, size_t n)
{
    return raw_from(NULL, port, req, n);
}

/* raw() from the local address src (127.0.0.2: another client). */
static reply *raw_from(const char *src, int port, const char *req, size_t n)
{
    struct timeval tv = {20, 0};
    char *buf = NULL, *sep;
    size_t len = 0, cap = 0;
    int fd;

    reply_clear(&last);
    if ((fd = connect_from(src, port)) < 0)
        FAIL("connect to port %d from %s: %s", port, src ? src : "any",
             strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    while (n) {
        ssize_t w = send(fd, req, n, MSG_NOSIGNAL);
        if (w <= 0) break; /* the server may refuse before the body */
        req += w;
        n -= (size_t)w;
    }
    for (;;) {
        ssize_t got;
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 16384;
            if (!(buf = realloc(buf, cap + 1))) FAIL("out of memory");
        }
        got = recv(fd, buf + len, cap - len, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == ECONNRESET && len) break;
        if (got < 0) FAIL("recv: %s", strerror(errno));
        if (got == 0) break;
        len += (size_t)got;
    }
    close(fd);
    if (!buf) FAIL("no reply from the server");
    buf[len] = '\0';
    if (!(sep = strstr(buf, "\r\n\r\n"))) FAIL("no header end in: %s", buf);
    last.head = strndup(buf, (size_t)(sep - buf));
    last.len = len - (size_t)(sep + 4 - buf);
    last.body = malloc(last.len + 1);
    memcpy(last.body, sep + 4, last.len);
    last.body[last.len] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &last.status) != 1)
        FAIL("bad status line: %.80s", buf);
    last.json = json_loadb(last.body, last.len, JSON_DECODE_ANY, NULL);
    free(buf);
    return &last;
}

static reply *req_from(const char *src, int port, const char *method,
                       const char *path, const char *extra, const char *body);

/* A request with the usual headers; extra is "Name: value\r\n" lines. */
static reply *req(int port, const char *method, const char *path,
                  const char *extra, const char *body)
{
    return req_from(NULL, port, method, path, extra, body);
}

/* req() from the local address src. */
static reply *req_from(const char *src, int port, const char *method,
                       const char *path, const char *extra, const char *body)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    reply *r;
    fprintf(f, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n",
            method, path, port);
    if (extra) fputs(extra, f);
    if (body)
        fprintf(f, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                strlen(body));
    fputs("\r\n", f);
    if (body) fputs(body, f);
    fclose(f);
    r = raw_from(src, port, text, n);
    free(text);
    return r;
}

#define CSRF "X-Stellar-CSRF: 1\r\n"
/* Tokens long enough for a listen off loopback; TOKEN_Q is TOKEN in a
 * query. */
#define TOKEN       "s3cret+/=0123456789"
#define TOKEN_Q     "s3cret%2B%2F%3D0123456789"
#define BEARER      "Authorization: Bearer " TOKEN "\r\n"
#define READ_TOKEN  "reader-0123456789abcdef"
#define READ_BEARER "Authorization: Bearer " READ_TOKEN "\r\n"

static reply *get(int port, const char *path)
{
    return req(port, "GET", path, NULL, NULL);
}

static reply *post(int port, const char *path, const char *body)
{
    return req(port, "POST", path, CSRF, body);
}

static reply *del(int port, const char *path, const char *body)
{
    return req(port, "DELETE", path, CSRF, body);
}

/* A header's value (static buffer), or NULL. */
static const char *hdr(const reply *r, const char *name)
{
    static char val[1024];
    const char *p = r->head;
    size_t nl = strlen(name);
    while ((p = strstr(p, "\r\n"))) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *end = strstr(v, "\r\n");
            size_t len = end ? (size_t)(end - v) : strlen(v);
            while (*v == ' ')
                v++, len--;
            if (len >= sizeof val) len = sizeof val - 1;
            memcpy(val, v, len);
            val[len] = '\0';
            return val;
        }
    }
    return NULL;
}

/* The request again while it answers 429 (an address in its backoff after
 * a wrong token), waiting as Retry-After says; up to 60 s in all. */
static reply *req_past_backoff(const char *src, int port, const char *method,
                               const char *path, const char *extra,
                               const char *body)
{
    int64_t until = test_now_ms() + 60000;
    reply *r;
    while ((r = req_from(src, port, method, path, extra, body))->status ==
               429 &&
           test_now_ms() < until)
        test_sleep_ms(100);
    return r;
}

/* Whether the file at path has a line holding all of the words given. */
static bool log_has(const char *path, const char *w1, const char *w2,
                    const char *w3)
{
    char line[4096];
    bool found = false;
    FILE *f = fopen(path, "r");
    if (!f) return false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, w1) && (!w2 || strstr(line, w2)) &&
                (!w3 || strstr(line, w3));
    fclose(f);
    return found;
}

#define ASSERT_STATUS(r, want)                                                 \
    do {                                                                       \
        const reply *r_ = (r);                                                 \
        if (r_->status != (want))                                              \
            FAIL("status %d, expected %d; body: %s", r_->status, (want),       \
                 r_->body);                                                    \
    } while (0)

/* The reply is the JSON error {"error": ..., "code": code}. */
static void assert_error(const char *file, int line, const reply *r, int status,
                         const char *code)
{
    const char *c = json_string_value(json_object_get(r->json, "code"));
    if (r->status != status || !c || strcmp(c, code) != 0 ||
        !json_is_string(json_object_get(r->json, "error")))
        test_fail(file, line, "expected %d %s, got %d: %s", status, code,
                  r->status, r->body);
    if (!hdr(r, "Content-Type") ||
        strncmp(hdr(r, "Content-Type"), "application/json", 16) != 0)
        test_fail(file, line, "error is not application/json");
}
#define ASSERT_ERROR(r, status, code)                                          \
    assert_error(__FILE__, __LINE__, (r), (status), (code))

/* The reply body is doc, byte for byte as the CLI's --json prints it.
 * Takes the reference to doc. */
/* Removes every "latency_ms" member: a queue's latency grows while the
 * test runs (the latency test checks it), so two reads may differ. */
static void no_latency(json_t *v)
{
    const char *k;
    json_t *m;
    size_t i;
    json_object_del(v, "latency_ms");
    json_object_foreach(v, k, m) no_latency(m);
    json_array_foreach(v, i, m) no_latency(m);
}

/* r is 200 with doc as its body, byte for byte (but for latency_ms). */
static void assert_doc(const char *file, int line, const reply *r, json_t *doc)
{
    json_t *body = json_deep_copy(r->json);
    char *want, *got;

    no_latency(doc);
    no_latency(body);
    want = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    got = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (r->status != 200 || !want || !got || strcmp(want, got) != 0)
        test_fail(file, line, "status %d\n  body: %s\n  want: %s", r->status,
                  r->body, want ? want : "(null)");
    free(want);
    free(got);
    json_decref(body);
    json_decref(doc);
}
#define ASSERT_DOC(r, doc) assert_doc(__FILE__, __LINE__, (r), (doc))

/* ------------------------------------------------------------- Setup --- */

static int run_flaky(stellar_api *api, const json_t *params, stellar_next *next)
{
    /* Fails on the first run of each params object in this process. */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char *seen[64];
    static int nseen;
    char *key = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    bool first = true;
    (void)api;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nseen; i++)
        if (strcmp(seen[i], key) == 0) first = false;
    if (first && nseen < 64) seen[nseen++] = strdup(key);
    pthread_mutex_unlock(&mu);
    free(key);
    return first ? stellar_fail(next, "flaky: first try") : STELLAR_OK;
}

static int run_ok(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api, (void)params, (void)next;
    return STELLAR_OK;
}

static int run_boom(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api, (void)params;
    return stellar_fail(next, "boom");
}

static const char *const lock_plugins[] = {"queueLock", NULL};

static stellar *open_app(const struct test_ctx *t, int processors,
                         const char *const *queues)
{
    const stellar_task tasks[] = {
        {.name = "echo", .description = "ok", .run = run_ok},
        {.name = "flaky", .description = "fails once", .run = run_flaky},
        {.name = "boom", .description = "fails", .run = run_boom},
        {.name = "tick",
         .description = "periodic",
         .frequency = 600000,
         .run = run_ok},
        {.name = "locked",
         .description = "queue-locked",
         .queue = "locks",
         .plugins = lock_plugins,
         .run = run_ok},
    };
    stellar_options o = {0};
    stellar *h;
    o.processors = processors > 0 ? processors : 1;
    o.queues = queues;
    o.poll_ms = 20;
    o.name = "httptest";
    h = open_h_at(t, &o, STELLAR_LOG_DEBUG);
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++)
        reg(h, &tasks[i]);
    if (processors > 0) start(h);
    return h;
}

static stellar_http *serve(stellar *h, const char *listen, const char *token,
                           int *port)
{
    stellar_http_options o = {0};
    stellar_error e = {0};
    stellar_http *s = NULL;
    o.listen = listen ? listen : "127.0.0.1:0";
    o.token = token;
    ASSERT_OK(stellar_http_start(h, &o, &s, &e), &e);
    *port = stellar_http_port(s);
    ASSERT_TRUE(*port > 0);
    return s;
}

static void finish(stellar_http *s, stellar *h)
{
    stellar_http_stop(s);
    stellar_close(h);
    reply_clear(&last);
}

/* ------------------------------------------------------------- Reads --- */

static void reads_answer_the_documents_of_the_c_api(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    stellar_error e = {0};
    json_t *doc = NULL;
    int port;
    stellar_http *s = serve(h, NULL, NULL, &port);

    enqueue(h, "echo", "{\"n\":1}", "q1");
    enqueue(h, "echo", "{\"n\":2,\"a\":[1,2]}", "q1");
    enqueue(h, "echo", "{\"n\":3}", "q1");
    enqueue(h, "boom", NULL, "q2");
    ASSERT_OK(
        stellar_enqueue_in(h, 600000, "echo", "{\"later\":true}", "q3", &e),
        &e);

    ASSERT_OK(stellar_stats(h, &doc, &e), &e);
    ASSERT_DOC(get(port, "/api/stats"), doc);
    ASSERT_DOC(get(port, "/api/queues"),
               json_pack("{s:{s:i, s:b, s:n}, s:{s:i, s:b, s:n}}", "q1",
                         "length", 3, "paused", 0, "paused_until", "q2",
                         "length", 1, "paused", 0, "paused_until"));
    {
        const reply *r = get(port, "/api/queues");
        json_t *age =
            json_object_get(json_object_get(r->json, "q1"), "latency_ms");
        ASSERT_TRUE(is_redis(t) ? json_is_null(age) : json_is_integer(age));
    }
    ASSERT_OK(stellar_details(h, &doc, &e), &e);
    ASSERT_DOC(get(port, "/api/queues"),
               json_incref(json_object_get(doc, "queues")));
    ASSERT_DOC(get(port, "/api/details"), doc);
    ASSERT_DOC(get(port, "/api/queues/q1"),
               json_pack("{s:s, s:i}", "queue", "q1", "length", 3));
    ASSERT_OK(stellar_queued(h, "q1", 1, 2, &doc, &e), &e);
    ASSERT_EQ(2, json_array_size(doc));
    ASSERT_DOC(get(port, "/api/queues/q1/jobs?start=1&stop=2"), doc);
    ASSERT_OK(stellar_queued(h, "q1", 0, -1, &doc, &e), &e);
    ASSERT_DOC(get(port, "/api/queues/q1/jobs"), doc);
    ASSERT_OK(stellar_timestamps(h, &doc, &e), &e);
    ASSERT_EQ(1, json_array_size(doc));
    ASSERT_DOC(get(port, "/api/timestamps"), doc);
    ASSERT_OK(stellar_all_delayed(h, &doc, &e), &e);
    ASSERT_DOC(get(port, "/api/delayed"),
               json_pack("{s:i, s:i, s:i, s:o}", "total", 1, "offset", 0,
                         "limit", 100, "delayed", doc));
    ASSERT_OK(stellar_workers(h, &doc, &e), &e);
    ASSERT_DOC(get(port, "/api/workers"), doc);
    ASSERT_OK(stellar_all_working_on(h, &doc, &e), &e);
    ASSERT_DOC(get(port, "/api/working"), doc);
    ASSERT_OK(stellar_locks(h, &doc, &e), &e);
    ASSERT_DOC(get(port, "/api/locks"), doc);
    ASSERT_OK(stellar_failed(h, 0, -1, &doc, &e), &e);
    ASSERT_DOC(get(port, "/api/failed"), doc);
    ASSERT_DOC(get(port, "/api/failed/count"), json_pack("{s:i}", "count", 0));

    /* Tasks: the C API's list; the periodic one with its next run. */
    doc = stellar_tasks_json(h);
    for (size_t i = 0; i < json_array_size(doc); i++) {
        json_t *task = json_array_get(doc, i);
        if (json_integer_value(json_object_get(task, "frequency")) > 0)
            json_object_set_new(task, "scheduled_at", json_array());
    }
    ASSERT_DOC(get(port, "/api/tasks"), doc);

    /* HEAD answers the headers of GET, no body. */
    ASSERT_STATUS(req(port, "HEAD", "/api/stats", NULL, NULL), 200);
    ASSERT_EQ(0, last.len);
    finish(s, h);
}

/* --------------------------------------------------------- Enqueueing --- */

static void enqueue_over_http_queues_and_runs_jobs(struct test_ctx *t)
{
    stellar *h = open_app(t, 1, NULL);
    int port;
    stellar_http *s = serve(h, NULL, NULL, &port);
    int64_t at;

    /* The periodic "tick" runs once at start. */
    ASSERT_WAIT(test_stat(h, "processed") == 1, 10000);
    post(port, "/api/enqueue", "{\"task\":\"echo\",\"params\":{\"n\":1}}");
    ASSERT_STATUS(&last, 200);
    ASSERT_TRUE(json_is_true(json_object_get(last.json, "enqueued")));
    ASSERT_STR_EQ("echo",
                  json_string_value(json_object_get(last.json, "task")));
    ASSERT_STR_EQ("default",
                  json_string_value(json_object_get(last.json, "queue")));
    ASSERT_EQ(1, json_integer_value(json_object_get(
                     json_object_get(last.json, "params"), "n")));
    ASSERT_WAIT(test_stat(h, "processed") == 2, 10000);

    post(port, "/api/enqueue",
         "{\"task\":\"echo\",\"queue\":\"default\",\"in\":200}");
    ASSERT_STATUS(&last, 200);
    at = json_integer_value(json_object_get(last.json, "at"));
    ASSERT_TRUE(at >= test_now_ms() - 1000);
    ASSERT_WAIT(test_stat(h, "processed") == 3, 10000);

    post(port, "/api/enqueue", "{\"task\":\"echo\",\"at\":1000}");
    ASSERT_STATUS(&last, 200);
    ASSERT_WAIT(test_stat(h, "processed") == 4, 10000);

    ASSERT_ERROR(post(port, "/api/enqueue", "{\"task\":\"nope\"}"), 404,
                 "ENOTASK");
    ASSERT_ERROR(post(port, "/api/enqueue", "{\"params\":{}}"), 400, "EINVAL");
    ASSERT_ERROR(
        post(port, "/api/enqueue", "{\"task\":\"echo\",\"params\":[1]}"), 400,
        "EINVAL");
    ASSERT_ERROR(
        post(port, "/api/enqueue", "{\"task\":\"echo\",\"at\":1,\"in\":1}"),
        400, "EINVAL");
    ASSERT_ERROR(post(port, "/api/enqueue", "{\"task\":\"echo\",\"in\":-5}"),
                 400, "EINVAL");
    ASSERT_ERROR(post(port, "/api/enqueue", "{\"task\":"), 400, "EINVAL");
    ASSERT_ERROR(post(port, "/api/enqueue", NULL), 400, "EINVAL");
    /* Hostile names and times: 400, nothing stored (issue: hardening). */
    ASSERT_ERROR(post(port, "/api/enqueue",
                      "{\"task\":\"echo\",\"in\":9223372036854775807}"),
                 400, "EINVAL");
    ASSERT_ERROR(post(port, "/api/enqueue",
                      "{\"task\":\"echo\",\"at\":9223372036854775807}"),
                 400, "EINVAL");
    ASSERT_ERROR(post(port, "/api/enqueue",
                      "{\"task\":\"echo\",\"queue\":\"a\\u0000b\"}"),
                 400, "EINVAL");
    ASSERT_ERROR(
        post(port, "/api/enqueue", "{\"task\":\"echo\",\"queue\":\"   \"}"),
        400, "EINVAL");
    ASSERT_ERROR(post(port, "/api/enqueue",
                      "{\"task\":\"echo\",\"queue\":\"bell\\u0007\"}"),
                 400, "EINVAL");
    ASSERT_EQ(0, test_length(h, "a"));
    ASSERT_EQ(0, test_length(h, "default"));
    finish(s, h);
}

/* ---------------------------------------------------------- Security --- */

static void
state_changes_need_post_or_delete_and_the_csrf_header(struct test_ctx *t)
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

static void a_token_is_required_off_loopback_and_checked_on_every_request(
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

static void a_loopback_server_without_a_token_answers_only_loopback_hosts(
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

static void listen_strings_are_checked(struct test_ctx *t)
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

/* ------------------------------------------------------ Static files --- */

static void static_files_come_only_from_the_embedded_table(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    int port;
    stellar_http *s = serve(h, NULL, NULL, &port);
    static const char *const outside[] = {"/../CMakeLists.txt",
                                          "/%2e%2e/%2e%2e/etc/passwd",
                                          "/..%2fapp.js",
                                          "/index.html/../app.js",
                                          "//etc/passwd",
                                          "/web/index.html",
                                          "/./app.js",
                                          "/app.js%00.html",
                                          "/APP.JS",
                                          "/api",
                                          "/metrics/"};

    ASSERT_STATUS(get(port, "/"), 200);
    ASSERT_TRUE(strncmp(hdr(&last, "Content-Type"), "text/html", 9) == 0);
    ASSERT_TRUE(test_contains_ci(last.body, "<!doctype html>"));
    ASSERT_TRUE(hdr(&last, "Content-Security-Policy") != NULL);
    ASSERT_TRUE(strstr(hdr(&last, "Content-Security-Policy"),
                       "script-src 'self'") != NULL);
    ASSERT_STR_EQ("nosniff", hdr(&last, "X-Content-Type-Options"));
    ASSERT_STR_EQ("DENY", hdr(&last, "X-Frame-Options"));
    ASSERT_STATUS(get(port, "/index.html"), 200);
    ASSERT_STATUS(get(port, "/app.js"), 200);
    ASSERT_TRUE(strncmp(hdr(&last, "Content-Type"), "text/javascript", 15) ==
                0);
    ASSERT_TRUE(last.len > 1000);
    ASSERT_STATUS(get(port, "/app.css"), 200);
    ASSERT_TRUE(strncmp(hdr(&last, "Content-Type"), "text/css", 8) == 0);

    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        get(port, outside[i]);
        if (last.status != 404)
            FAIL("GET %s answered %d, expected 404: %.200s", outside[i],
                 last.status, last.body);
    }
    ASSERT_ERROR(post(port, "/", "{}"), 405, "EMETHOD");
    finish(s, h);
}

/* ------------------------------------------------------------ Errors --- */

static void errors_are_json_with_a_code_and_a_status(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    int port;
    stellar_http *s = serve(h, NULL, NULL, &port);
    char *big;
    const char *chunked;
    size_t n = 70 * 1024;

    ASSERT_ERROR(get(port, "/api/nope"), 404, "ENOTFOUND");
    ASSERT_ERROR(get(port, "/api/"), 404, "ENOTFOUND");
    ASSERT_ERROR(get(port, "/api/queues/"), 404, "ENOTFOUND");
    ASSERT_ERROR(get(port, "/api/queues/nope"), 404, "ENOTFOUND");
    ASSERT_ERROR(get(port, "/api/queues/q/jobs?start=x"), 400, "EINVAL");
    ASSERT_ERROR(get(port, "/api/failed?stop=1.5"), 400, "EINVAL");
    ASSERT_ERROR(get(port, "/api/queues/%zz"), 400, "EINVAL");
    ASSERT_ERROR(get(port, "/api/queues/a%00b"), 400, "EINVAL");
    ASSERT_ERROR(get(port, "/api/queues/a%2"), 400, "EINVAL");
    ASSERT_ERROR(get(port, "/api/failed/abc"), 400, "EINVAL");
    ASSERT_ERROR(get(port, "/api/failed/0"), 404, "ENOTFOUND");
    ASSERT_ERROR(post(port, "/api/failed/0/retry", NULL), 404, "ENOTFOUND");
    ASSERT_ERROR(del(port, "/api/failed/3", NULL), 404, "ENOTFOUND");
    ASSERT_ERROR(get(port, "/api/workers/nobody"), 404, "ENOTFOUND");
    ASSERT_ERROR(get(port, "/api/delayed/soon"), 400, "EINVAL");

    /* Bodies past 64 KiB: announced, or streamed in chunks. */
    big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    ASSERT_ERROR(post(port, "/api/enqueue", big), 413, "ETOOBIG");
    {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        fprintf(f,
                "POST /api/enqueue HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                "Connection: close\r\n" CSRF
                "Transfer-Encoding: chunked\r\n\r\n",
                port);
        for (int i = 0; i < 40; i++)
            fprintf(f, "800\r\n%.2048s\r\n", big);
        fputs("0\r\n\r\n", f);
        fclose(f);
        ASSERT_ERROR(raw(port, text, len), 413, "ETOOBIG");
        free(text);
    }
    free(big);
    chunked = "POST /api/enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              "Connection: close\r\n" CSRF "Transfer-Encoding: chunked\r\n\r\n"
              "f\r\n{\"task\":\"echo\"}\r\n0\r\n\r\n";
    ASSERT_STATUS(raw(port, chunked, strlen(chunked)), 200);
    finish(s, h);
}

/* -------------------------------------------------------- Management --- */

static void
failed_jobs_are_listed_retried_and_removed_over_http(struct test_ctx *t)
{
    stellar *h = open_app(t, 1, NULL);
    stellar_error e = {0};
    json_t *list = NULL, *entry;
    char path[64], *body;
    int port, flaky = -1, other = -1;
    stellar_http *s = serve(h, NULL, NULL, &port);

    enqueue(h, "flaky", "{\"a\":1}", NULL);
    enqueue(h, "boom", "{\"b\":1}", NULL);
    enqueue(h, "boom", "{\"b\":2}", NULL);
    /* The periodic "tick" runs once at start, too. */
    ASSERT_WAIT(test_failed_count(h) == 3 && test_stat(h, "processed") == 1,
                10000);
    ASSERT_DOC(get(port, "/api/failed/count"), json_pack("{s:i}", "count", 3));
    ASSERT_OK(stellar_failed(h, 0, -1, &list, &e), &e);
    ASSERT_DOC(get(port, "/api/failed"), json_incref(list));
    ASSERT_DOC(get(port, "/api/failed?start=1&stop=1"),
               json_pack("[O]", json_array_get(list, 1)));
    ASSERT_DOC(get(port, "/api/failed/2"),
               json_incref(json_array_get(list, 2)));
    for (int i = 0; i < 3; i++) {
        json_t *p = json_object_get(json_array_get(list, (size_t)i), "payload");
        if (strcmp(json_string_value(json_object_get(p, "class")), "flaky") ==
            0)
            flaky = i;
        else
            other = i;
    }
    ASSERT_TRUE(flaky >= 0 && other >= 0);

    /* The entry the client saw must still be at that index. */
    snprintf(path, sizeof path, "/api/failed/%d/retry", flaky);
    entry = json_pack("{s:O}", "entry", json_array_get(list, (size_t)other));
    body = json_dumps(entry, JSON_COMPACT);
    ASSERT_ERROR(post(port, path, body), 409, "ESTATE");
    free(body);
    json_decref(entry);
    entry = json_pack("{s:O}", "entry", json_array_get(list, (size_t)flaky));
    body = json_dumps(entry, JSON_COMPACT);
    ASSERT_DOC(post(port, path, body), json_pack("{s:i}", "retried", 1));
    free(body);
    json_decref(entry);
    json_decref(list);
    /* It runs again, succeeds, and is gone from failed. */
    ASSERT_WAIT(test_stat(h, "processed") == 2, 10000);
    ASSERT_EQ(2, test_failed_count(h));

    ASSERT_DOC(del(port, "/api/failed/0", NULL),
               json_pack("{s:i}", "removed", 1));
    ASSERT_EQ(1, test_failed_count(h));
    enqueue(h, "boom", "{\"b\":3}", NULL);
    ASSERT_WAIT(test_failed_count(h) == 2, 10000);
    ASSERT_DOC(post(port, "/api/failed/retry-all", NULL),
               json_pack("{s:i}", "retried", 2));
    /* Both fail again: 3 + 1 + 2 failures in all. */
    ASSERT_WAIT(test_stat(h, "failed") == 6, 10000);
    ASSERT_WAIT(test_failed_count(h) == 2, 10000);
    ASSERT_DOC(del(port, "/api/failed", NULL),
               json_pack("{s:i}", "removed", 2));
    ASSERT_EQ(0, test_failed_count(h));
    finish(s, h);
}

static void queues_locks_delayed_and_periodic_tasks_are_managed_over_http(
    struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    stellar_error e = {0};
    json_t *doc = NULL;
    const char *lock;
    char path[512];
    int64_t n = 0, ts;
    int port;
    stellar_http *s = serve(h, NULL, NULL, &port);

    /* A queue name with a slash and a space, percent-encoded. */
    enqueue(h, "echo", "{\"x\":1}", "q/with space");
    ASSERT_DOC(get(port, "/api/queues/q%2Fwith%20space"),
               json_pack("{s:s, s:i}", "queue", "q/with space", "length", 1));
    ASSERT_DOC(get(port, "/api/queues/q%2Fwith%20space/jobs?start=0&stop=0"),
               json_pack("[{s:s, s:s, s:[{s:i}]}]", "class", "echo", "queue",
                         "q/with space", "args", "x", 1));
    ASSERT_DOC(del(port, "/api/queues/q%2Fwith%20space", NULL),
               json_pack("{s:s, s:b}", "queue", "q/with space", "deleted", 1));
    ASSERT_ERROR(del(port, "/api/queues/q%2Fwith%20space", NULL), 404,
                 "ENOTFOUND");
    ASSERT_ERROR(del(port, "/api/queues/nope", NULL), 404, "ENOTFOUND");

    /* One job out of a queue, named by task and params. */
    enqueue(h, "echo", "{\"x\":1}", "default");
    enqueue(h, "echo", "{\"x\":2}", "default");
    ASSERT_DOC(del(port, "/api/queues/default/jobs",
                   "{\"task\":\"echo\",\"params\":{\"x\":2}}"),
               json_pack("{s:i}", "removed", 1));
    ASSERT_OK(stellar_length(h, "default", &n, &e), &e);
    ASSERT_EQ(1, n);
    ASSERT_ERROR(del(port, "/api/queues/default/jobs", "{}"), 400, "EINVAL");

    /* Periodic tasks: start, stop; not for a plain task. */
    ASSERT_DOC(post(port, "/api/recurrent/tick", NULL),
               json_pack("{s:s, s:b}", "task", "tick", "enqueued", 1));
    ASSERT_OK(stellar_length(h, "default", &n, &e), &e);
    ASSERT_EQ(2, n);
    ASSERT_DOC(del(port, "/api/recurrent/tick", NULL),
               json_pack("{s:s, s:i}", "task", "tick", "removed", 1));
    ASSERT_ERROR(post(port, "/api/recurrent/echo", NULL), 400, "EINVAL");
    ASSERT_ERROR(post(port, "/api/recurrent/nope", NULL), 404, "ENOTASK");

    /* Locks: queueLock holds one for the queued job. */
    enqueue(h, "locked", "{\"k\":1}", NULL);
    get(port, "/api/locks");
    ASSERT_STATUS(&last, 200);
    ASSERT_EQ(1, json_object_size(last.json));
    lock = json_object_iter_key(json_object_iter(last.json));
    {
        /* Encode the name for the path. */
        char *p = path + snprintf(path, sizeof path, "/api/locks/");
        for (const char *c = lock; *c; c++)
            p += isalnum((unsigned char)*c)
                     ? sprintf(p, "%c", *c)
                     : sprintf(p, "%%%02X", (unsigned char)*c);
    }
    ASSERT_STATUS(del(port, path, NULL), 200);
    ASSERT_EQ(1, json_integer_value(json_object_get(last.json, "removed")));
    ASSERT_ERROR(del(port, path, NULL), 404, "ENOTFOUND");
    ASSERT_OK(stellar_locks(h, &doc, &e), &e);
    ASSERT_EQ(0, json_object_size(doc));
    json_decref(doc);

    /* Delayed jobs by timestamp. */
    ASSERT_OK(stellar_enqueue_in(h, 600000, "echo", "{\"d\":1}", NULL, &e), &e);
    ASSERT_OK(stellar_timestamps(h, &doc, &e), &e);
    ts = (int64_t)json_number_value(json_array_get(doc, 0));
    json_decref(doc);
    snprintf(path, sizeof path, "/api/delayed/%lld", (long long)ts);
    ASSERT_OK(stellar_delayed_at(h, ts, &doc, &e), &e);
    ASSERT_EQ(1, json_array_size(doc));
    ASSERT_DOC(get(port, path), doc);
    ASSERT_DOC(del(port, path, NULL), json_pack("{s:i}", "removed", 1));
    ASSERT_ERROR(del(port, path, NULL), 404, "ENOTFOUND");
    ASSERT_OK(stellar_enqueue_in(h, 600000, "echo", "{\"d\":2}", NULL, &e), &e);
    ASSERT_DOC(del(port, "/api/delayed", NULL),
               json_pack("{s:i}", "removed", 1));
    finish(s, h);
}

static void periodic_tasks_show_their_next_run(struct test_ctx *t)
{
    stellar *h = open_app(t, 1, NULL);
    int port;
    stellar_http *s = serve(h, NULL, NULL, &port);
    json_t *task = NULL, *at;
    int64_t now = test_now_ms();

    /* The scheduler queues it at start; once run, it waits a frequency. */
    ASSERT_WAIT(test_stat(h, "processed") >= 1, 10000);
    for (int tries = 0; tries < 200; tries++) {
        get(port, "/api/tasks");
        for (size_t i = 0; i < json_array_size(last.json); i++)
            if (strcmp(json_string_value(json_object_get(
                           json_array_get(last.json, i), "name")),
                       "tick") == 0)
                task = json_array_get(last.json, i);
        if (json_array_size(json_object_get(task, "scheduled_at")) == 1) break;
        test_sleep_ms(20);
    }
    at = json_array_get(json_object_get(task, "scheduled_at"), 0);
    ASSERT_TRUE(json_is_number(at));
    /* Redis keeps seconds: allow a second either way. */
    ASSERT_TRUE((int64_t)json_number_value(at) >= now + 600000 - 1000);
    ASSERT_TRUE((int64_t)json_number_value(at) <= test_now_ms() + 601000);
    finish(s, h);
}

/* ----------------------------------------------------------- Metrics --- */

/* A parsed exposition: families with HELP and TYPE, and samples. */
struct family {
    char name[128], type[16];
    bool help;
};
struct sample {
    char name[128], labels[512];
    double value;
};
struct expo {
    struct family fam[64];
    int nfam;
    struct sample smp[1024];
    int nsmp;
};

static bool metric_name_ok(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_' || *s == ':')) return false;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == ':'))
            return false;
    return true;
}

static struct family *family_of(struct expo *x, const char *name)
{
    for (int i = 0; i < x->nfam; i++)
        if (strcmp(x->fam[i].name, name) == 0) return &x->fam[i];
    return NULL;
}

/* Parses Prometheus text 0.0.4 and checks the rules a linter checks:
 * names, HELP and TYPE before samples, one TYPE per family, counters named
 * _total, histogram samples (_bucket with le, _sum, _count), label syntax
 * and escapes, values as numbers. */
static void parse_exposition(const char *text, struct expo *x)
{
    const char *line = text;
    memset(x, 0, sizeof *x);
    if (!*text || text[strlen(text) - 1] != '\n')
        FAIL("the exposition must end with a line feed");
    while (*line) {
        const char *end = strchr(line, '\n');
        char buf[2048];
        size_t len = (size_t)(end - line);
        if (len >= sizeof buf) FAIL("line too long");
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = end + 1;
        if (!len) FAIL("empty line in the exposition");
        if (strncmp(buf, "# HELP ", 7) == 0 ||
            strncmp(buf, "# TYPE ", 7) == 0) {
            char name[128], rest[512];
            struct family *f;
            if (sscanf(buf + 7, "%127s %511[^\n]", name, rest) != 2)
                FAIL("bad comment: %s", buf);
            if (!metric_name_ok(name)) FAIL("bad metric name: %s", name);
            if (!(f = family_of(x, name))) {
                if (x->nfam == 64) FAIL("too many families");
                f = &x->fam[x->nfam++];
                snprintf(f->name, sizeof f->name, "%s", name);
            }
            if (buf[2] == 'H') {
                if (f->help) FAIL("two HELP lines for %s", name);
                f->help = true;
            } else {
                if (f->type[0]) FAIL("two TYPE lines for %s", name);
                if (strcmp(rest, "counter") && strcmp(rest, "gauge") &&
                    strcmp(rest, "histogram") && strcmp(rest, "summary") &&
                    strcmp(rest, "untyped"))
                    FAIL("bad TYPE: %s", buf);
                if (strcmp(rest, "counter") == 0 &&
                    (strlen(name) < 6 ||
                     strcmp(name + strlen(name) - 6, "_total") != 0))
                    FAIL("counter %s does not end in _total", name);
                snprintf(f->type, sizeof f->type, "%.15s", rest);
            }
            continue;
        }
        if (buf[0] == '#') continue;
        {
            struct sample *sm;
            const char *p = buf;
            char base[128], *endv;
            struct family *f;
            size_t nl = strcspn(buf, "{ ");
            if (x->nsmp == 1024) FAIL("too many samples");
            sm = &x->smp[x->nsmp++];
            if (nl >= sizeof sm->name) FAIL("name too long: %s", buf);
            memcpy(sm->name, buf, nl);
            sm->name[nl] = '\0';
            if (!metric_name_ok(sm->name)) FAIL("bad sample name: %s", buf);
            p = buf + nl;
            if (*p == '{') {
                const char *q = p + 1;
                char *o = sm->labels;
                /* name="value" pairs, comma separated; \\ \" \n escapes. */
                while (*q != '}') {
                    const char *ln = q;
                    while (isalnum((unsigned char)*q) || *q == '_')
                        q++;
                    if (q == ln || *q != '=' || q[1] != '"')
                        FAIL("bad label in: %s", buf);
                    q += 2;
                    while (*q != '"') {
                        if (!*q) FAIL("unterminated label value: %s", buf);
                        if (*q == '\\') {
                            if (q[1] != '\\' && q[1] != '"' && q[1] != 'n')
                                FAIL("bad escape in: %s", buf);
                            q++;
                        }
                        q++;
                    }
                    q++;
                    if (*q == ',')
                        q++;
                    else if (*q != '}')
                        FAIL("bad label list: %s", buf);
                }
                len = (size_t)(q - (p + 1));
                if (len >= sizeof sm->labels) FAIL("labels too long");
                memcpy(o, p + 1, len);
                o[len] = '\0';
                p = q + 1;
            }
            if (*p != ' ') FAIL("no value in: %s", buf);
            sm->value = strtod(p + 1, &endv);
            if (endv == p + 1 || *endv) FAIL("bad value in: %s", buf);
            /* The family: the name, or for a histogram its base. */
            snprintf(base, sizeof base, "%s", sm->name);
            f = family_of(x, base);
            if (!f) {
                static const char *const sfx[] = {"_bucket", "_sum", "_count"};
                for (int i = 0; i < 3 && !f; i++) {
                    size_t bl = strlen(base), sl = strlen(sfx[i]);
                    if (bl > sl && strcmp(base + bl - sl, sfx[i]) == 0) {
                        base[bl - sl] = '\0';
                        f = family_of(x, base);
                        if (f && strcmp(f->type, "histogram") != 0) f = NULL;
                        if (!f) base[bl - sl] = sfx[i][0];
                    }
                }
            }
            if (!f || !f->type[0] || !f->help)
                FAIL("sample %s has no HELP and TYPE before it", sm->name);
            if (strcmp(f->type, "histogram") == 0 &&
                strstr(sm->name, "_bucket") && !strstr(sm->labels, "le=\""))
                FAIL("histogram bucket without le: %s", buf);
        }
    }
}

/* The value of the sample name{labels} (labels exactly as written). */
static double sample(const struct expo *x, const char *name, const char *labels)
{
    for (int i = 0; i < x->nsmp; i++)
        if (strcmp(x->smp[i].name, name) == 0 &&
            strcmp(x->smp[i].labels, labels) == 0)
            return x->smp[i].value;
    return -1;
}

static void scrape(int port, struct expo *x)
{
    get(port, "/metrics");
    ASSERT_STATUS(&last, 200);
    ASSERT_TRUE(strncmp(hdr(&last, "Content-Type"), "text/plain; version=0.0.4",
                        25) == 0);
    parse_exposition(last.body, x);
}

static void metrics_are_prometheus_text_and_counters_move(struct test_ctx *t)
{
    static const char *const queues[] = {"default", NULL};
    static struct expo x;
    stellar *h = open_app(t, 2, queues);
    stellar_error e = {0};
    int port;
    stellar_http *s = serve(h, NULL, NULL, &port);
    static const char *const fams[][2] = {
        {"stellar_jobs_processed_total", "counter"},
        {"stellar_jobs_failed_total", "counter"},
        {"stellar_queue_depth", "gauge"},
        {"stellar_job_duration_seconds", "histogram"},
        {"stellar_scheduler_lag_seconds", "histogram"},
        {"stellar_workers_alive", "gauge"},
        {"stellar_recovered_jobs_total", "counter"},
        {"stellar_backend_up", "gauge"},
        {"stellar_queue_paused", "gauge"},
        {"stellar_limit_permits_in_use", "gauge"},
    };
    double prev;

    ASSERT_WAIT(test_stat(h, "processed") >= 0, 1000);
    scrape(port, &x);
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        struct family *f = family_of(&x, fams[i][0]);
        if (!f) FAIL("no family %s", fams[i][0]);
        ASSERT_STR_EQ(fams[i][1], f->type);
    }
    ASSERT_TRUE(sample(&x, "stellar_jobs_processed_total",
                       "task=\"echo\",queue=\"default\"") < 0);
    ASSERT_EQ(1, (int64_t)sample(&x, "stellar_backend_up", ""));

    /* Due in 1.5 s: the scheduler sees it waiting, then moves it (how
     * late goes to stellar_scheduler_lag_seconds). */
    ASSERT_OK(
        stellar_enqueue_in(h, 1500, "echo", "{\"late\":1}", "default", &e), &e);
    for (int i = 0; i < 3; i++)
        enqueue(h, "echo", NULL, "default");
    enqueue(h, "boom", NULL, "default");
    enqueue(h, "boom", NULL, "default");
    /* Parked (no processor takes it); its name needs escaping. */
    enqueue(h, "echo", NULL, "pa\"rk\\ed q");
    enqueue(h, "echo", "{\"i\":2}", "pa\"rk\\ed q");
    /* Four echo jobs and the periodic tick's first run. */
    ASSERT_WAIT(test_stat(h, "processed") == 5 && test_stat(h, "failed") == 2,
                10000);
    /* Counters are bumped after the backend acks; wait for the scrape. */
    for (int tries = 0; tries < 500; tries++) {
        scrape(port, &x);
        if (sample(&x, "stellar_jobs_processed_total",
                   "task=\"echo\",queue=\"default\"") == 4)
            break;
        test_sleep_ms(10);
    }
    ASSERT_EQ(4, (int64_t)sample(&x, "stellar_jobs_processed_total",
                                 "task=\"echo\",queue=\"default\""));
    ASSERT_EQ(2, (int64_t)sample(&x, "stellar_jobs_failed_total",
                                 "task=\"boom\",queue=\"default\""));
    ASSERT_EQ(0, (int64_t)sample(&x, "stellar_jobs_failed_total",
                                 "task=\"echo\",queue=\"default\""));
    ASSERT_EQ(4, (int64_t)sample(&x, "stellar_job_duration_seconds_count",
                                 "task=\"echo\""));
    ASSERT_EQ(4, (int64_t)sample(&x, "stellar_job_duration_seconds_bucket",
                                 "task=\"echo\",le=\"+Inf\""));
    ASSERT_EQ(2, (int64_t)sample(&x, "stellar_job_duration_seconds_count",
                                 "task=\"boom\""));
    ASSERT_TRUE(
        sample(&x, "stellar_job_duration_seconds_sum", "task=\"echo\"") >= 0);
    /* Buckets are cumulative. */
    prev = 0;
    for (int i = 0; i < x.nsmp; i++) {
        if (strcmp(x.smp[i].name, "stellar_job_duration_seconds_bucket") ||
            strncmp(x.smp[i].labels, "task=\"echo\"", 11))
            continue;
        ASSERT_TRUE(x.smp[i].value >= prev);
        prev = x.smp[i].value;
    }
    ASSERT_EQ(2, (int64_t)sample(&x, "stellar_queue_depth",
                                 "queue=\"pa\\\"rk\\\\ed q\""));
    ASSERT_EQ(0,
              (int64_t)sample(&x, "stellar_queue_depth", "queue=\"default\""));
    ASSERT_EQ(2, (int64_t)sample(&x, "stellar_workers_alive", ""));
    ASSERT_EQ(2, (int64_t)sample(&x, "stellar_failed_jobs", ""));
    ASSERT_TRUE(sample(&x, "stellar_scheduler_lag_seconds_count", "") >= 1);
    ASSERT_EQ(0, (int64_t)sample(&x, "stellar_recovered_jobs_total", ""));
    ASSERT_EQ(0,
              (int64_t)sample(&x, "stellar_queue_paused", "queue=\"default\""));

    /* Issue 15: a paused queue and a limit's permits. */
    {
        stellar_limit l = {1, 0, 0};
        ASSERT_OK(stellar_pause(h, "pa\"rk\\ed q", 0, &e), &e);
        ASSERT_OK(stellar_limit_set(h, "task:echo", &l, &e), &e);
    }
    scrape(port, &x);
    ASSERT_EQ(1, (int64_t)sample(&x, "stellar_queue_paused",
                                 "queue=\"pa\\\"rk\\\\ed q\""));
    ASSERT_EQ(0, (int64_t)sample(&x, "stellar_limit_permits_in_use",
                                 "target=\"task:echo\""));
    ASSERT_EQ(1, (int64_t)sample(&x, "stellar_limit_concurrency",
                                 "target=\"task:echo\""));

    /* promtool's linter, where it is installed. */
    if (system("command -v promtool >/dev/null 2>&1") == 0) {
        char cmd[600];
        FILE *f = fopen(test_path(t, "metrics.txt"), "w");
        fputs(last.body, f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'",
                 test_path(t, "metrics.txt"));
        ASSERT_EQ(0, system(cmd));
        test_note("promtool check metrics: ok");
    }
    finish(s, h);
}

/* --------------------------------------------- Tokens, sessions, audit --- */

static void
a_read_token_reads_everything_and_changes_nothing(struct test_ctx *t)
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

static void wrong_tokens_are_logged_and_slowed_per_address(struct test_ctx *t)
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

static void every_change_over_http_is_audited(struct test_ctx *t)
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

/* ------------------------------------------------------- Slow clients --- */

#define SLOW_CONNS 140

/* A slowloris: SLOW_CONNS connections from 127.0.0.1 that each send one
 * header line every 2 s and never end their head; a connection the
 * server closes is opened again at its next turn. */
typedef struct slowloris {
    int port;
    int fd[SLOW_CONNS];
    pthread_mutex_t lock;
    bool stop; /* guarded by lock */
    pthread_t thread;
    int reconnects; /* for the note */
} slowloris;

static void *slowloris_main(void *arg)
{
    slowloris *sl = arg;
    char line[64];
    int i, round = 0;
    for (;;) {
        pthread_mutex_lock(&sl->lock);
        if (sl->stop) {
            pthread_mutex_unlock(&sl->lock);
            break;
        }
        pthread_mutex_unlock(&sl->lock);
        for (i = 0; i < SLOW_CONNS; i++) {
            if (sl->fd[i] >= 0) {
                int n =
                    snprintf(line, sizeof line, "X-Slow-%d: %d\r\n", round, i);
                if (send(sl->fd[i], line, (size_t)n,
                         MSG_NOSIGNAL | MSG_DONTWAIT) == n)
                    continue;
                close(sl->fd[i]);
                sl->fd[i] = -1;
            }
            if ((sl->fd[i] = connect_from("127.0.0.1", sl->port)) >= 0) {
                const char *head = "GET /api/stats HTTP/1.1\r\nHost: "
                                   "127.0.0.1\r\n";
                (void)!send(sl->fd[i], head, strlen(head),
                            MSG_NOSIGNAL | MSG_DONTWAIT);
                sl->reconnects++;
            }
        }
        round++;
        /* About 2 s between lines, in steps so that stop is quick. */
        for (i = 0; i < 20; i++) {
            pthread_mutex_lock(&sl->lock);
            if (sl->stop) i = 20;
            pthread_mutex_unlock(&sl->lock);
            if (i < 20) test_sleep_ms(100);
        }
    }
    for (i = 0; i < SLOW_CONNS; i++)
        if (sl->fd[i] >= 0) close(sl->fd[i]);
    return NULL;
}

static void slow_clients_do_not_starve_other_addresses(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    int port, i, answered = 0;
    stellar_http *s = serve(h, "127.0.0.1:0", TOKEN, &port);
    slowloris *sl = calloc(1, sizeof *sl);
    int64_t start, worst = 0, attack_until;

    /* 127.0.0.2 must be a local address (it is on Linux's lo). */
    {
        int fd = connect_from("127.0.0.2", port);
        if (fd < 0)
            test_skip("cannot connect from 127.0.0.2: %s", strerror(errno));
        close(fd);
    }
    sl->port = port;
    for (i = 0; i < SLOW_CONNS; i++)
        sl->fd[i] = -1;
    pthread_mutex_init(&sl->lock, NULL);
    ASSERT_EQ(0, pthread_create(&sl->thread, NULL, slowloris_main, sl));
    /* Let the attack open its connections, then ask from another address
     * for 12 s (past two head deadlines): every answer comes within the
     * 5 s head deadline. */
    test_sleep_ms(1500);
    attack_until = test_now_ms() + 12000;
    while (test_now_ms() < attack_until) {
        start = test_now_ms();
        ASSERT_STATUS(
            req_from("127.0.0.2", port, "GET", "/api/stats", BEARER, NULL),
            200);
        if (test_now_ms() - start > worst) worst = test_now_ms() - start;
        answered++;
        test_sleep_ms(500);
    }
    pthread_mutex_lock(&sl->lock);
    sl->stop = true;
    pthread_mutex_unlock(&sl->lock);
    pthread_join(sl->thread, NULL);
    test_note("%d answers to 127.0.0.2 during the attack, the slowest in "
              "%lld ms; %d slow connections opened",
              answered, (long long)worst, sl->reconnects);
    ASSERT_TRUE(worst < 5000);
    ASSERT_TRUE(sl->reconnects > SLOW_CONNS); /* the server closed some */
    pthread_mutex_destroy(&sl->lock);
    free(sl);
    finish(s, h);
}

static void a_request_head_must_arrive_within_the_deadline(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    int port, fd, i = 0;
    stellar_http *s = serve(h, NULL, NULL, &port);
    int64_t start = test_now_ms(), closed_at = 0;
    char buf[512];

    /* One header line every 500 ms: never idle, never done. */
    ASSERT_TRUE((fd = connect_from(NULL, port)) >= 0);
    ASSERT_TRUE(send(fd, "GET /api/stats HTTP/1.1\r\n", 25, MSG_NOSIGNAL) ==
                25);
    while (test_now_ms() - start < 30000) {
        char line[32];
        ssize_t got;
        int n = snprintf(line, sizeof line, "X-Slow: %d\r\n", i++);
        if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) break;
        test_sleep_ms(500);
        got = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        if (got > 0) {
            buf[got] = '\0';
            ASSERT_TRUE(strncmp(buf, "HTTP/1.1 408", 12) == 0);
        }
    }
    closed_at = test_now_ms() - start;
    close(fd);
    test_note("a head trickling in was cut after %lld ms",
              (long long)closed_at);
    ASSERT_TRUE(closed_at >= 4500); /* the deadline is 5 s */
    ASSERT_TRUE(closed_at < 20000); /* and it is kept, loaded or not */
    /* The server still answers. */
    ASSERT_STATUS(get(port, "/api/stats"), 200);
    finish(s, h);
}

/* ------------------------------------------------------------ Paging --- */

static void delayed_jobs_are_paged(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    stellar_error e = {0};
    int port, i;
    stellar_http *s = serve(h, NULL, NULL, &port);
    /* Whole seconds: Redis (Resque) keeps delayed times in seconds. */
    int64_t base = (test_now_ms() / 1000 + 3600) * 1000, prev = 0, seen = 0;
    json_t *d;
    const char *k;
    json_t *v;
    char params[32];

    /* 250 jobs: 125 timestamps of two jobs each. */
    for (i = 0; i < 250; i++) {
        snprintf(params, sizeof params, "{\"n\":%d}", i);
        ASSERT_OK(stellar_enqueue_at(h, base + (i / 2) * 1000, "echo", params,
                                     "later", &e),
                  &e);
    }
    /* Default: the first 100 in time order, and the total. */
    ASSERT_STATUS(get(port, "/api/delayed"), 200);
    ASSERT_EQ(250, json_integer_value(json_object_get(last.json, "total")));
    ASSERT_EQ(0, json_integer_value(json_object_get(last.json, "offset")));
    ASSERT_EQ(100, json_integer_value(json_object_get(last.json, "limit")));
    d = json_object_get(last.json, "delayed");
    ASSERT_EQ(50, json_object_size(d));
    json_object_foreach(d, k, v)
    {
        ASSERT_TRUE(strtoll(k, NULL, 10) > prev);
        prev = strtoll(k, NULL, 10);
        seen += (int64_t)json_array_size(v);
    }
    ASSERT_EQ(100, seen);
    ASSERT_EQ(base,
              strtoll(json_object_iter_key(json_object_iter(d)), NULL, 10));
    /* A page that splits a timestamp: jobs 99..101. */
    ASSERT_STATUS(get(port, "/api/delayed?offset=99&limit=3"), 200);
    d = json_object_get(last.json, "delayed");
    ASSERT_EQ(2, json_object_size(d));
    snprintf(params, sizeof params, "%lld", (long long)(base + 49000));
    ASSERT_EQ(1, json_array_size(json_object_get(d, params)));
    snprintf(params, sizeof params, "%lld", (long long)(base + 50000));
    ASSERT_EQ(2, json_array_size(json_object_get(d, params)));
    /* The end, limit 0 (just the total), and bad arguments. */
    ASSERT_STATUS(get(port, "/api/delayed?offset=240&limit=1000"), 200);
    ASSERT_EQ(5, json_object_size(json_object_get(last.json, "delayed")));
    ASSERT_STATUS(get(port, "/api/delayed?offset=900"), 200);
    ASSERT_EQ(0, json_object_size(json_object_get(last.json, "delayed")));
    ASSERT_STATUS(get(port, "/api/delayed?limit=0"), 200);
    ASSERT_EQ(250, json_integer_value(json_object_get(last.json, "total")));
    ASSERT_EQ(0, json_object_size(json_object_get(last.json, "delayed")));
    ASSERT_ERROR(get(port, "/api/delayed?limit=1001"), 400, "EINVAL");
    ASSERT_ERROR(get(port, "/api/delayed?limit=-1"), 400, "EINVAL");
    ASSERT_ERROR(get(port, "/api/delayed?offset=-1"), 400, "EINVAL");
    ASSERT_ERROR(get(port, "/api/delayed?offset=x"), 400, "EINVAL");
    /* A page is a page: 100 jobs, not 250. */
    ASSERT_STATUS(get(port, "/api/delayed?limit=1000"), 200);
    {
        size_t all = last.len;
        ASSERT_STATUS(get(port, "/api/delayed"), 200);
        test_note("/api/delayed: %zu bytes for 250 jobs, %zu for the "
                  "default page",
                  all, last.len);
        ASSERT_TRUE(last.len * 2 < all);
    }
    finish(s, h);
}

/* ---------------------------------------------------------- Schedules --- */

static void schedules_are_listed_paused_and_measured(struct test_ctx *t)
{
    static struct expo x;
    stellar *h = open_app(t, 0, NULL);
    stellar_error e = {0};
    stellar_schedule daily = {.name = "daily",
                              .cron = "0 3 * * *",
                              .timezone = "Europe/Berlin",
                              .task = "echo",
                              .params = "{\"kind\":\"daily\"}"};
    json_t *doc = NULL;
    int64_t next;
    int port, found = 0;
    stellar_http *s;

    ASSERT_OK(stellar_schedule_add(h, &daily, &e), &e);
    s = serve(h, NULL, NULL, &port);
    ASSERT_OK(stellar_schedules(h, &doc, &e), &e);
    next = json_integer_value(
        json_object_get(json_object_get(doc, "daily"), "next"));
    ASSERT_TRUE(next > test_now_ms());
    ASSERT_DOC(get(port, "/api/schedules"), doc);
    ASSERT_DOC(post(port, "/api/schedules/daily/pause", NULL),
               json_pack("{s:s, s:b}", "schedule", "daily", "paused", 1));
    get(port, "/api/schedules");
    ASSERT_TRUE(json_is_true(
        json_object_get(json_object_get(last.json, "daily"), "paused")));
    ASSERT_DOC(post(port, "/api/schedules/daily/resume", NULL),
               json_pack("{s:s, s:b}", "schedule", "daily", "paused", 0));
    ASSERT_ERROR(post(port, "/api/schedules/nope/pause", NULL), 404,
                 "ENOTFOUND");
    /* /metrics: the next fire time (it never fired: no last series). */
    scrape(port, &x);
    for (int i = 0; i < x.nsmp; i++) {
        if (strstr(x.smp[i].name, "stellar_schedule_last_fire"))
            FAIL("a last fire time for a schedule that never fired");
        if (strcmp(x.smp[i].name,
                   "stellar_schedule_next_fire_timestamp_seconds") == 0) {
            ASSERT_TRUE(strstr(x.smp[i].labels, "schedule=\"daily\"") != NULL);
            ASSERT_EQ(next / 1000, (int64_t)x.smp[i].value);
            found++;
        }
    }
    ASSERT_EQ(1, found);
    finish(s, h);
}

/* Issue 15: pause and resume a queue, set, read and clear limits; the
 * writes need the CSRF header and the admin token as every write does. */
static void queues_are_paused_and_limits_set_over_http(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    stellar_http_options o = {0};
    stellar_error e = {0};
    stellar_http *s = NULL;
    json_t *p = NULL;
    int port;

    enqueue(h, "echo", NULL, "q1");
    o.listen = "127.0.0.1:0";
    o.token = TOKEN;
    o.read_token = READ_TOKEN;
    ASSERT_OK(stellar_http_start(h, &o, &s, &e), &e);
    port = stellar_http_port(s);

    ASSERT_DOC(req(port, "POST", "/api/queues/q1/pause", CSRF BEARER, NULL),
               json_pack("{s:s, s:b, s:n}", "queue", "q1", "paused", 1,
                         "paused_until"));
    ASSERT_STATUS(req(port, "GET", "/api/queues", BEARER, NULL), 200);
    ASSERT_TRUE(json_is_true(
        json_object_get(json_object_get(last.json, "q1"), "paused")));
    ASSERT_STATUS(req(port, "POST", "/api/queues/q1/pause", CSRF BEARER,
                      "{\"for\":60000}"),
                  200);
    ASSERT_TRUE(json_integer_value(json_object_get(last.json, "paused_until")) >
                test_now_ms());
    ASSERT_OK(stellar_pauses(h, &p, &e), &e);
    ASSERT_TRUE(json_is_integer(json_object_get(p, "q1")));
    json_decref(p);
    ASSERT_ERROR(
        req(port, "POST", "/api/queues/q1/pause", CSRF BEARER, "{\"for\":-1}"),
        400, "EINVAL");
    ASSERT_DOC(req(port, "POST", "/api/queues/q1/resume", CSRF BEARER, NULL),
               json_pack("{s:s, s:b, s:b}", "queue", "q1", "paused", 0,
                         "was_paused", 1));
    ASSERT_OK(stellar_pauses(h, &p, &e), &e);
    ASSERT_JSON_EQ("{}", p);
    json_decref(p);

    ASSERT_DOC(req(port, "PUT", "/api/limits/task:echo", CSRF BEARER,
                   "{\"concurrency\":2,\"rate\":\"100/1m\"}"),
               json_pack("{s:i, s:s, s:i, s:i}", "concurrency", 2, "rate",
                         "100/1m", "running", 0, "started", 0));
    ASSERT_DOC(req(port, "GET", "/api/limits/task:echo", BEARER, NULL),
               json_pack("{s:i, s:s, s:i, s:i}", "concurrency", 2, "rate",
                         "100/1m", "running", 0, "started", 0));
    ASSERT_STATUS(req(port, "GET", "/api/limits", READ_BEARER, NULL), 200);
    ASSERT_TRUE(json_object_get(last.json, "task:echo") != NULL);
    ASSERT_ERROR(req(port, "PUT", "/api/limits/task:echo", CSRF BEARER,
                     "{\"rate\":\"100/1x\"}"),
                 400, "EINVAL");
    ASSERT_ERROR(req(port, "PUT", "/api/limits/sendEmail", CSRF BEARER,
                     "{\"concurrency\":1}"),
                 400, "EINVAL");
    ASSERT_ERROR(req(port, "PUT", "/api/limits/task:echo", CSRF BEARER, "{}"),
                 400, "EINVAL");
    /* Writes: the CSRF header, the admin token. */
    ASSERT_ERROR(req(port, "PUT", "/api/limits/task:echo", BEARER,
                     "{\"concurrency\":1}"),
                 403, "ECSRF");
    ASSERT_ERROR(req(port, "PUT", "/api/limits/task:echo", CSRF READ_BEARER,
                     "{\"concurrency\":1}"),
                 403, "EREADONLY");
    ASSERT_ERROR(
        req(port, "POST", "/api/queues/q1/pause", CSRF READ_BEARER, NULL), 403,
        "EREADONLY");
    ASSERT_ERROR(req(port, "POST", "/api/queues/q1/pause", CSRF, NULL), 401,
                 "EAUTH");
    ASSERT_ERROR(
        req(port, "DELETE", "/api/limits/task:echo", CSRF READ_BEARER, NULL),
        403, "EREADONLY");
    ASSERT_DOC(req(port, "DELETE", "/api/limits/task:echo", CSRF BEARER, NULL),
               json_pack("{s:s, s:i}", "target", "task:echo", "removed", 1));
    ASSERT_ERROR(
        req(port, "DELETE", "/api/limits/task:echo", CSRF BEARER, NULL), 404,
        "ENOTFOUND");
    ASSERT_ERROR(req(port, "GET", "/api/limits/task:echo", BEARER, NULL), 404,
                 "ENOTFOUND");
    finish(s, h);
}

static const struct test tests[] = {
    TEST(reads_answer_the_documents_of_the_c_api, 0),
    TEST(enqueue_over_http_queues_and_runs_jobs, 0),
    TEST(state_changes_need_post_or_delete_and_the_csrf_header, 0),
    TEST(a_token_is_required_off_loopback_and_checked_on_every_request, 0),
    TEST(a_loopback_server_without_a_token_answers_only_loopback_hosts, 0),
    TEST(listen_strings_are_checked, 0),
    TEST(static_files_come_only_from_the_embedded_table, 0),
    TEST(errors_are_json_with_a_code_and_a_status, 0),
    TEST(failed_jobs_are_listed_retried_and_removed_over_http, 0),
    TEST(queues_locks_delayed_and_periodic_tasks_are_managed_over_http, 0),
    TEST(periodic_tasks_show_their_next_run, 0),
    TEST(metrics_are_prometheus_text_and_counters_move, 0),
    TEST(a_read_token_reads_everything_and_changes_nothing, 0),
    TEST(wrong_tokens_are_logged_and_slowed_per_address, 120),
    TEST(every_change_over_http_is_audited, 0),
    TEST(slow_clients_do_not_starve_other_addresses, 120),
    TEST(a_request_head_must_arrive_within_the_deadline, 0),
    TEST(delayed_jobs_are_paged, 0),
    TEST(schedules_are_listed_paused_and_measured, 0),
    TEST(queues_are_paused_and_limits_set_over_http, 0),
};
TEST_MAIN(tests)
