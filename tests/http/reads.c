/*
 * reads.c: the read side of the HTTP API: the JSON documents against the C
 * API's, enqueueing over HTTP, the static files of the embedded table,
 * errors as JSON, and paged listings.
 */
#include "http_test.h"

/* ------------------------------------------------------------- Reads --- */

void reads_answer_the_documents_of_the_c_api(struct test_ctx *t)
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

void enqueue_over_http_queues_and_runs_jobs(struct test_ctx *t)
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

/* ------------------------------------------------------ Static files --- */

void static_files_come_only_from_the_embedded_table(struct test_ctx *t)
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

void errors_are_json_with_a_code_and_a_status(struct test_ctx *t)
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

/* ------------------------------------------------------------ Paging --- */

void delayed_jobs_are_paged(struct test_ctx *t)
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
