/*
 * enqueue.c: enqueue and process: params, queues, the stored Resque payload
 * byte for byte, queue priority and wildcard workers.
 */
#include "conformance.h"

/* ------------------------------------------------- Enqueue, process --- */

void an_enqueued_job_runs_its_task_with_the_params(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    json_t *p;
    struct run r;

    reg(h, &task_record);
    enqueue(h, "record",
            "{\"to\":\"a@b.c\",\"n\":[1,2.5,null],\"s\":\"\xc3\xa9\"}", "q");
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    r = run_of("record", 0);
    p = params_of(&r);
    ASSERT_JSON_EQ("{\"to\":\"a@b.c\",\"n\":[1,2.5,null],\"s\":\"\xc3\xa9\"}",
                   p);
    ASSERT_STR_EQ("q", r.queue);
    ASSERT_STR_EQ("record", r.task);
    ASSERT_WAIT(test_stat(h, "processed") == 1, 5000);
    {
        char key[160];
        snprintf(key, sizeof key, "processed:%s", r.worker);
        ASSERT_EQ(1, test_stat(h, key));
    }
    ASSERT_EQ(0, test_stat(h, "failed"));
    ASSERT_EQ(0, test_length(h, "q"));
    json_decref(p);
    free(r.params);
    stellar_close(h);
    ASSERT_EQ(1, runs_of("record", false)); /* ran once, not again */
}

void a_job_without_params_gets_an_empty_object(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    struct run r;
    json_t *p;

    reg(h, &task_record);
    enqueue(h, "record", NULL, NULL);
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    r = run_of("record", 0);
    p = params_of(&r);
    ASSERT_JSON_EQ("{}", p);
    ASSERT_STR_EQ("default", r.queue);
    json_decref(p);
    free(r.params);
    stellar_close(h);
}

void a_job_without_a_queue_goes_to_its_tasks_queue(struct test_ctx *t)
{
    static const stellar_task mailer = {.name = "record",
                                        .description = "d",
                                        .queue = "mail",
                                        .run = record_run};
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    json_t *q;

    reg(h, &mailer);
    enqueue(h, "record", "{\"k\":1}", NULL);
    ASSERT_EQ(1, test_length(h, "mail"));
    ASSERT_EQ(0, test_length(h, "default"));
    q = raw_queued(b, "mail");
    ASSERT_STR_EQ(
        "{\"class\":\"record\",\"queue\":\"mail\",\"args\":[{\"k\":1}]}",
        json_string_value(json_array_get(q, 0)));
    json_decref(q);
    st_backend_close(b);
    stellar_close(h);
}

void the_stored_payload_is_the_resque_json_byte_for_byte(struct test_ctx *t)
{
    /* A pure client (no tasks registered) accepts any task name. */
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *q, *ts = NULL, *delayed = NULL;
    /* Member order kept, "/" and U+2028 raw, non-ASCII raw, numbers as JS. */
    const char *params = "{\"b\":1,\"a\":\"x/\xc3\xa9\xe2\x80\xa8\",\"f\":1.50,"
                         "\"e\":1E3,\"z\":-0.0,\"u\":\"\\u0041\\u0001\"}";
    const char *want = "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"b\":1,"
                       "\"a\":\"x/\xc3\xa9\xe2\x80\xa8\",\"f\":1.5,\"e\":1000,"
                       "\"z\":0,\"u\":\"A\\u0001\"}]}";
    int64_t at = (test_now_ms() / 1000 + 3600) * 1000; /* a whole second */

    enqueue(h, "t", params, "q");
    enqueue(h, "t", NULL, "q");
    q = raw_queued(b, "q");
    ASSERT_EQ(2, json_array_size(q));
    ASSERT_STR_EQ(want, json_string_value(json_array_get(q, 0)));
    ASSERT_STR_EQ("{\"class\":\"t\",\"queue\":\"q\",\"args\":[{}]}",
                  json_string_value(json_array_get(q, 1)));

    /* A delayed job is stored as the very same bytes. */
    ASSERT_OK(stellar_enqueue_at(h, at, "t", params, "q", &e), &e);
    ASSERT_OK(b->ops->timestamps(b, &ts, &e), &e);
    ASSERT_EQ(1, json_array_size(ts));
    ASSERT_EQ(at, json_integer_value(json_array_get(ts, 0)));
    ASSERT_OK(b->ops->delayed_at(b, at, &delayed, &e), &e);
    ASSERT_EQ(1, json_array_size(delayed));
    ASSERT_STR_EQ(want, json_string_value(json_array_get(delayed, 0)));
    json_decref(q);
    json_decref(ts);
    json_decref(delayed);
    st_backend_close(b);
    stellar_close(h);
}

void queues_and_lengths_are_readable_through_the_api(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *names = NULL;

    enqueue(h, "x", NULL, "b");
    enqueue(h, "x", "{\"n\":1}", "a");
    enqueue(h, "x", "{\"n\":2}", "a");
    ASSERT_OK(stellar_queues(h, &names, &e), &e);
    ASSERT_JSON_EQ("[\"a\",\"b\"]", names);
    ASSERT_EQ(2, test_length(h, "a"));
    ASSERT_EQ(1, test_length(h, "b"));
    ASSERT_EQ(0, test_length(h, "nothing"));
    json_decref(names);
    stellar_close(h);
}

void queues_are_taken_in_priority_order(struct test_ctx *t)
{
    static const char *const queues[] = {"high", "low", NULL};
    stellar_options o = {.queues = queues, .processors = 1};
    stellar *h = open_h(t, &o);
    int want[] = {3, 4, 1, 2};

    reg(h, &task_record);
    enqueue(h, "record", "{\"n\":1}", "low");
    enqueue(h, "record", "{\"n\":2}", "low");
    enqueue(h, "record", "{\"n\":3}", "high");
    enqueue(h, "record", "{\"n\":4}", "high");
    enqueue(h, "record", "{\"n\":5}", "other"); /* not one of ours */
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 4, 5000);
    for (int i = 0; i < 4; i++) {
        struct run r = run_of("record", i);
        json_t *p = params_of(&r);
        ASSERT_EQ(want[i], json_integer_value(json_object_get(p, "n")));
        json_decref(p);
        free(r.params);
    }
    ASSERT_EQ(1, test_length(h, "other"));
    stellar_close(h);
    ASSERT_EQ(4, runs_of("record", false));
}

void a_wildcard_worker_takes_every_queue_in_name_order(struct test_ctx *t)
{
    stellar_options o = {.processors = 1}; /* queues NULL: "*" */
    stellar *h = open_h(t, &o);
    const char *want[] = {"alpha", "alpha", "beta", "gamma"};

    reg(h, &task_record);
    enqueue(h, "record", NULL, "gamma");
    enqueue(h, "record", NULL, "beta");
    enqueue(h, "record", NULL, "alpha");
    enqueue(h, "record", NULL, "alpha");
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 4, 5000);
    for (int i = 0; i < 4; i++) {
        struct run r = run_of("record", i);
        ASSERT_STR_EQ(want[i], r.queue);
        free(r.params);
    }
    stellar_close(h);
}
