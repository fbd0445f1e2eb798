/*
 * failure.c: failing jobs: the failed entry and its counters, unknown tasks and
 * payloads that are not JSON.
 */
#include "conformance.h"

/* ------------------------------------------------------------ Failure --- */

void a_failing_task_is_recorded_in_failed_with_counters(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    json_t *entry, *raw;
    const char *txt,
        *order[] = {
            "\"worker\":", "\"queue\":",     "\"payload\":",  "\"exception\":",
            "\"error\":",  "\"backtrace\":", "\"failed_at\":"};
    const char *last;
    char key[160];
    struct run r;

    reg(h, &task_boom);
    reg(h, &task_record);
    enqueue(h, "boom", "{\"why\":\"disk on fire\"}", "q");
    start(h);
    ASSERT_WAIT(test_failed_count(h) == 1, 5000);
    r = run_of("boom", 0);
    entry = the_failed_entry(h);
    ASSERT_STR_EQ(r.worker,
                  json_string_value(json_object_get(entry, "worker")));
    ASSERT_STR_EQ("q", json_string_value(json_object_get(entry, "queue")));
    ASSERT_JSON_EQ("{\"class\":\"boom\",\"queue\":\"q\",\"args\":[{\"why\":"
                   "\"disk on fire\"}]}",
                   json_object_get(entry, "payload"));
    ASSERT_TRUE(json_string_length(json_object_get(entry, "exception")) > 0);
    ASSERT_TRUE(strstr(json_string_value(json_object_get(entry, "error"))
                           ? json_string_value(json_object_get(entry, "error"))
                           : "",
                       "boom: disk on fire") != NULL);
    ASSERT_TRUE(json_is_array(json_object_get(entry, "backtrace")) ||
                json_is_null(json_object_get(entry, "backtrace")));
    ASSERT_TRUE(json_string_length(json_object_get(entry, "failed_at")) > 0);

    /* The stored entry has the Resque member order (§2.6). */
    raw = raw_failed(b);
    txt = json_string_value(json_array_get(raw, 0));
    ASSERT_TRUE(txt != NULL);
    last = txt;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *at = strstr(txt, order[i]);
        if (!at || at < last)
            FAIL("failed entry member %s out of order: %s", order[i], txt);
        last = at;
    }
    ASSERT_TRUE(strncmp(txt, "{\"worker\":", 10) == 0);

    ASSERT_WAIT(test_stat(h, "failed") == 1, 5000);
    snprintf(key, sizeof key, "failed:%s", r.worker);
    ASSERT_EQ(1, test_stat(h, key));
    ASSERT_EQ(0, test_stat(h, "processed"));

    /* The worker keeps going. */
    enqueue(h, "record", NULL, "q");
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    ASSERT_EQ(1, runs_of("boom", false));
    ASSERT_EQ(1, test_failed_count(h));
    json_decref(raw);
    json_decref(entry);
    free(r.params);
    st_backend_close(b);
    stellar_close(h);
}

void an_unknown_task_fails_the_job_and_the_worker_keeps_going(
    struct test_ctx *t)
{
    stellar *h = open_h(t, NULL), *client = open_h(t, NULL);
    json_t *entry;
    const char *err;

    reg(h, &task_record);
    start(h);
    enqueue(client, "noSuchTask", "{\"a\":1}", "default");
    enqueue(client, "record", NULL, "default");
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    ASSERT_WAIT(test_failed_count(h) == 1, 5000);
    entry = the_failed_entry(h);
    err = json_string_value(json_object_get(entry, "error"));
    if (!err || !strstr(err, "noSuchTask"))
        FAIL("the error does not name the task: %s", err ? err : "NULL");
    ASSERT_JSON_EQ(
        "{\"class\":\"noSuchTask\",\"queue\":\"default\",\"args\":[{\"a\":1}]}",
        json_object_get(entry, "payload"));
    ASSERT_EQ(0, test_length(h, "default"));
    ASSERT_WAIT(test_stat(h, "processed") == 1, 5000);
    ASSERT_EQ(1, test_stat(h, "failed"));
    json_decref(entry);
    stellar_close(client);
    stellar_close(h);
}

void enqueue_of_an_unknown_task_on_a_handle_with_tasks_is_refused(
    struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};

    reg(h, &task_record);
    ASSERT_EQ(STELLAR_ENOTASK, stellar_enqueue(h, "nope", NULL, NULL, &e));
    ASSERT_TRUE(strstr(e.msg, "nope") != NULL);
    ASSERT_EQ(STELLAR_ENOTASK,
              stellar_enqueue_in(h, 10, "nope", NULL, NULL, &e));
    ASSERT_EQ(0, test_length(h, "default"));
    stellar_close(h);
}

void an_invalid_payload_fails_with_a_clear_error_and_is_kept(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    const char *bad[] = {"not json {", "{\"queue\":\"default\",\"args\":[{}]}"};
    json_t *raw, *entries = NULL, *v;
    size_t i;

    reg(h, &task_record);
    ASSERT_OK(b->ops->push(b, "default", bad, 2, &e), &e);
    enqueue(h, "record", NULL, "default");
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    ASSERT_WAIT(test_failed_count(h) == 2, 5000);
    ASSERT_OK(stellar_failed(h, 0, -1, &entries, &e), &e);
    json_array_foreach(entries, i, v)
    {
        const char *err = json_string_value(json_object_get(v, "error"));
        if (!err || strlen(err) < 8)
            FAIL("failed entry %zu: no clear error", i);
        ASSERT_STR_EQ("default",
                      json_string_value(json_object_get(v, "queue")));
    }
    /* The first names the problem; the job's bytes are kept in the entry. */
    {
        const char *err = json_string_value(
            json_object_get(json_array_get(entries, 0), "error"));
        if (!test_contains_ci(err, "json") && !test_contains_ci(err, "payload"))
            FAIL("error for a non-JSON payload says neither JSON nor payload: "
                 "%s",
                 err);
    }
    raw = raw_failed(b);
    ASSERT_EQ(2, json_array_size(raw));
    ASSERT_TRUE(strstr(json_string_value(json_array_get(raw, 0)),
                       "not json {") != NULL);
    ASSERT_TRUE(strstr(json_string_value(json_array_get(raw, 1)),
                       "\"args\":[{}]") != NULL);
    ASSERT_WAIT(test_stat(h, "failed") == 2, 5000);
    json_decref(raw);
    json_decref(entries);
    st_backend_close(b);
    stellar_close(h);
}
