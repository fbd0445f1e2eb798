/*
 * management.c: management over HTTP: failed jobs listed, retried and
 * removed; queues, locks, delayed jobs and periodic tasks; queues paused
 * and limits set (issue 15).
 */
#include "http_test.h"

/* -------------------------------------------------------- Management --- */

void failed_jobs_are_listed_retried_and_removed_over_http(struct test_ctx *t)
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

void queues_locks_delayed_and_periodic_tasks_are_managed_over_http(
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

void periodic_tasks_show_their_next_run(struct test_ctx *t)
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

/* Issue 15: pause and resume a queue, set, read and clear limits; the
 * writes need the CSRF header and the admin token as every write does. */
void queues_are_paused_and_limits_set_over_http(struct test_ctx *t)
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
