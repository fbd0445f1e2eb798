/*
 * common.c: what the HTTP suite's files share: the client (a few lines of
 * sockets, one request per connection, the whole reply read to EOF), the
 * reply assertions, and the app and server every test starts.
 */
#include "http_test.h"

/* ------------------------------------------------------------ Client --- */

reply last; /* the reply of the latest request; freed by the next */

static void reply_clear(reply *r)
{
    free(r->head);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* A TCP socket connected to 127.0.0.1:port from the address src (NULL:
 * any), or -1 with errno. */
int connect_from(const char *src, int port)
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

/* Sends raw bytes to 127.0.0.1:port and reads the reply to EOF. */
reply *raw(int port, const char *req, size_t n)
{
    return raw_from(NULL, port, req, n);
}

/* raw() from the local address src (127.0.0.2: another client). */
reply *raw_from(const char *src, int port, const char *req, size_t n)
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

/* A request with the usual headers; extra is "Name: value\r\n" lines. */
reply *req(int port, const char *method, const char *path, const char *extra,
           const char *body)
{
    return req_from(NULL, port, method, path, extra, body);
}

/* req() from the local address src. */
reply *req_from(const char *src, int port, const char *method, const char *path,
                const char *extra, const char *body)
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

reply *get(int port, const char *path)
{
    return req(port, "GET", path, NULL, NULL);
}

reply *post(int port, const char *path, const char *body)
{
    return req(port, "POST", path, CSRF, body);
}

reply *del(int port, const char *path, const char *body)
{
    return req(port, "DELETE", path, CSRF, body);
}

/* A header's value (static buffer), or NULL. */
const char *hdr(const reply *r, const char *name)
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
reply *req_past_backoff(const char *src, int port, const char *method,
                        const char *path, const char *extra, const char *body)
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
bool log_has(const char *path, const char *w1, const char *w2, const char *w3)
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

/* The reply is the JSON error {"error": ..., "code": code}. */
void assert_error(const char *file, int line, const reply *r, int status,
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
void assert_doc(const char *file, int line, const reply *r, json_t *doc)
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

stellar *open_app(const struct test_ctx *t, int processors,
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

stellar_http *serve(stellar *h, const char *listen, const char *token,
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

void finish(stellar_http *s, stellar *h)
{
    stellar_http_stop(s);
    stellar_close(h);
    reply_clear(&last);
}
