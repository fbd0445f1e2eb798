/*
 * recovery.c: failed jobs ranged, removed and retried, and the jobs of dead
 * workers: cleanOldWorkers, crash counters, periodic recovery.
 */
#include "conformance.h"

static const char *why_of(const json_t *entry)
{
    json_t *args = json_object_get(json_object_get(entry, "payload"), "args");
    return json_string_value(json_object_get(json_array_get(args, 0), "why"));
}

void failed_jobs_are_ranged_removed_and_retried(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    stellar_error e = {0};
    json_t *all = NULL, *some = NULL, *q;
    int64_t removed = -1;

    reg(h, &task_boom);
    enqueue(h, "boom", "{\"why\":\"one\"}", "q");
    enqueue(h, "boom", "{\"why\":\"two\"}", "q");
    enqueue(h, "boom", "{\"why\":\"three\"}", "q");
    start(h);
    ASSERT_WAIT(test_failed_count(h) == 3, 10000);
    stellar_stop(h, -1);

    ASSERT_OK(stellar_failed(h, 0, -1, &all, &e), &e);
    ASSERT_EQ(3, json_array_size(all));
    ASSERT_STR_EQ("one", why_of(json_array_get(all, 0)));
    ASSERT_STR_EQ("two", why_of(json_array_get(all, 1)));
    ASSERT_STR_EQ("three", why_of(json_array_get(all, 2)));
    ASSERT_OK(stellar_failed(h, 1, 2, &some, &e), &e);
    ASSERT_EQ(2, json_array_size(some));
    ASSERT_TRUE(json_equal(json_array_get(all, 1), json_array_get(some, 0)));
    ASSERT_TRUE(json_equal(json_array_get(all, 2), json_array_get(some, 1)));
    json_decref(some);
    ASSERT_OK(stellar_failed(h, -1, -1, &some, &e), &e);
    ASSERT_STR_EQ("three", why_of(json_array_get(some, 0)));
    json_decref(some);
    ASSERT_OK(stellar_failed(h, 5, 9, &some, &e), &e);
    ASSERT_JSON_EQ("[]", some);
    json_decref(some);

    /* removeFailed takes exactly that entry, once. */
    ASSERT_OK(stellar_remove_failed(h, json_array_get(all, 1), &removed, &e),
              &e);
    ASSERT_EQ(1, removed);
    ASSERT_EQ(2, test_failed_count(h));
    ASSERT_OK(stellar_remove_failed(h, json_array_get(all, 1), &removed, &e),
              &e);
    ASSERT_EQ(0, removed);
    ASSERT_EQ(2, test_failed_count(h));

    /* retryAndRemoveFailed queues the job again, as it was. */
    ASSERT_OK(stellar_retry_and_remove_failed(h, json_array_get(all, 0), &e),
              &e);
    ASSERT_EQ(1, test_failed_count(h));
    q = queued_all(h, "q");
    ASSERT_JSON_EQ("[{\"class\":\"boom\",\"queue\":\"q\",\"args\":[{\"why\":"
                   "\"one\"}]}]",
                   q);
    json_decref(q);
    ASSERT_EQ(STELLAR_ENOTFOUND,
              stellar_retry_and_remove_failed(h, json_array_get(all, 0), &e));
    if (!test_contains_ci(e.msg, "not in failed"))
        FAIL("the error does not say the job is not in failed: %s", e.msg);
    ASSERT_EQ(1, test_length(h, "q")); /* not queued twice */
    ASSERT_EQ(1, test_failed_count(h));

    /* A string names an entry that is not JSON, by its text: none here.
     * What is neither an object nor a string is refused. */
    {
        json_t *s = json_string("nope"), *n = json_integer(1);
        ASSERT_EQ(STELLAR_OK, stellar_remove_failed(h, s, &removed, &e));
        ASSERT_EQ(0, removed);
        ASSERT_EQ(STELLAR_EINVAL, stellar_remove_failed(h, n, &removed, &e));
        ASSERT_EQ(STELLAR_EINVAL, stellar_retry_and_remove_failed(h, s, &e));
        json_decref(s);
        json_decref(n);
    }
    ASSERT_EQ(1, test_failed_count(h));
    json_decref(all);
    stellar_close(h);
}

void clean_old_workers_fails_the_job_of_a_silent_worker(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *cleaned = NULL, *ws = NULL, *entry;
    int64_t now = test_now_ms();

    enqueue(h, "t", "{\"n\":1}", "q");
    fake_worker(b, "dead:1+1", "q", now - 120000, true);
    fake_worker(b, "idle:2+1", "q", now - 120000, false);
    fake_worker(b, "live:3+1", "q", now, false);
    ASSERT_EQ(0, test_length(h, "q"));

    ASSERT_OK(stellar_clean_old_workers(h, 60000, false, &cleaned, &e), &e);
    ASSERT_JSON_EQ("{\"dead:1+1\":{\"class\":\"t\",\"queue\":\"q\",\"args\":"
                   "[{\"n\":1}]},\"idle:2+1\":null}",
                   cleaned);
    json_decref(cleaned);
    ASSERT_OK(stellar_workers(h, &ws, &e), &e);
    ASSERT_EQ(1, json_object_size(ws));
    ASSERT_TRUE(json_is_object(json_object_get(ws, "live:3+1")));
    json_decref(ws);

    entry = the_failed_entry(h);
    ASSERT_STR_EQ("dead:1+1",
                  json_string_value(json_object_get(entry, "worker")));
    ASSERT_STR_EQ("q", json_string_value(json_object_get(entry, "queue")));
    ASSERT_JSON_EQ("{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":1}]}",
                   json_object_get(entry, "payload"));
    if (!test_contains_ci(
            json_string_value(json_object_get(entry, "exception")),
            "Worker Timeout"))
        FAIL("exception is not a worker timeout: %s",
             json_string_value(json_object_get(entry, "exception")));
    json_decref(entry);
    ASSERT_EQ(0, test_length(h, "q"));
    ASSERT_EQ(1, test_stat(h, "failed"));

    /* Done once: nothing more to clean. */
    ASSERT_OK(stellar_clean_old_workers(h, 60000, false, &cleaned, &e), &e);
    ASSERT_JSON_EQ("{}", cleaned);
    json_decref(cleaned);
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_clean_old_workers(h, -1, false, &cleaned, &e));
    st_backend_close(b);
    stellar_close(h);
}

void clean_old_workers_with_requeue_puts_the_job_back_at_the_head(
    struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *cleaned = NULL, *q, *ws = NULL;
    int64_t now = test_now_ms();

    enqueue(h, "t", "{\"n\":1}", "q");
    enqueue(h, "t", "{\"n\":2}", "q");
    fake_worker(b, "dead:1+1", "q", now - 120000, true);
    ASSERT_EQ(1, test_length(h, "q"));

    ASSERT_OK(stellar_clean_old_workers(h, 60000, true, &cleaned, &e), &e);
    ASSERT_JSON_EQ("{\"dead:1+1\":{\"class\":\"t\",\"queue\":\"q\",\"args\":"
                   "[{\"n\":1}]}}",
                   cleaned);
    json_decref(cleaned);
    q = queued_all(h, "q");
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":1}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":2}]}]",
                   q);
    json_decref(q);
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_OK(stellar_workers(h, &ws, &e), &e);
    ASSERT_JSON_EQ("{}", ws);
    json_decref(ws);
    st_backend_close(b);
    stellar_close(h);
}

/* reserve() says whether the job it pops is a suspect (core.h): its crash
 * counter, the kv key ST_CRASHES_PREFIX<payload>, is live. Read in the
 * same atomic step as the pop, with the key built as every kv key is (on
 * Redis, in the namespace); an expired counter is no mark. */
void reserve_tells_a_suspect_by_its_live_crash_counter(struct test_ctx *t)
{
    static const char *const payloads[] = {
        "{\"class\":\"t\",\"queue\":\"q\",\"args\":[1]}",
        "{\"class\":\"t\",\"queue\":\"q\",\"args\":[2]}",
        "{\"class\":\"t\",\"queue\":\"q\",\"args\":[3]}",
    };
    /* Marked (live), unmarked, marked but expired. */
    static const bool suspect[] = {true, false, false};
    const char *queues[] = {"q", NULL};
    st_worker_id w = {"host:1+1", "q", queues};
    st_done ok = {ST_DONE_NONE, NULL, NULL, NULL};
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    st_reserved got = {0};
    char *k1 = st_asprintf(ST_CRASHES_PREFIX "%s", payloads[0]);
    char *k3 = st_asprintf(ST_CRASHES_PREFIX "%s", payloads[2]);
    int64_t n = 0, removed = 0;
    bool set = false;
    size_t i;

    ASSERT_TRUE(k1 && k3);
    ASSERT_OK(b->ops->worker_register(b, &w, test_now_ms(), &e), &e);
    ASSERT_OK(b->ops->push(b, "q", payloads, 3, &e), &e);
    ASSERT_OK(b->ops->kv_incr(b, k1, 1, 86400000, &n, &e), &e);
    ASSERT_EQ(1, n);
    ASSERT_OK(b->ops->kv_set(b, k3, "1", 1, false, &set, &e), &e);
    ASSERT_TRUE(set);
    test_sleep_ms(20);
    for (i = 0; i < 3; i++) {
        ASSERT_OK(b->ops->reserve(b, &w, &ok, test_now_ms(), &got, &e), &e);
        ASSERT_STR_EQ(payloads[i], got.payload);
        ASSERT_EQ(suspect[i], got.suspect);
        st_reserved_clear(&got);
        ASSERT_EQ(false, got.suspect);
        ok.outcome = ST_DONE_OK;
    }

    /* Its mark deleted (as a processor does after the run), the same job
     * is no suspect any more. */
    ASSERT_OK(b->ops->kv_del(b, k1, NULL, &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_OK(b->ops->push(b, "q", payloads, 1, &e), &e);
    ASSERT_OK(b->ops->reserve(b, &w, &ok, test_now_ms(), &got, &e), &e);
    ASSERT_STR_EQ(payloads[0], got.payload);
    ASSERT_EQ(false, got.suspect);
    st_reserved_clear(&got);
    ASSERT_EQ(STELLAR_ENOTFOUND,
              b->ops->reserve(b, &w, &ok, test_now_ms(), &got, &e));
    ASSERT_EQ(false, got.suspect);
    st_free(k1);
    st_free(k3);
    st_backend_close(b);
}

/* A process died running a periodic task; the next leader, finding no copy
 * waiting, queued a fresh one. Requeueing the dead worker's copy must not
 * make two: the periodic task keeps one copy, queued. */
void recovering_a_periodic_job_keeps_one_copy_of_the_task(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *cleaned = NULL;
    int64_t now = test_now_ms();

    reg(h, &race_every);
    ASSERT_OK(stellar_enqueue_recurrent(h, "every", &e), &e);
    fake_worker(b, "dead:1+1", "clock", now - 120000, true);  /* takes it */
    ASSERT_OK(stellar_enqueue_recurrent(h, "every", &e), &e); /* the fresh */
    ASSERT_EQ(1, copies_stored(b, "clock", "every"));

    ASSERT_OK(stellar_clean_old_workers(h, 60000, true, &cleaned, &e), &e);
    ASSERT_EQ(1, json_object_size(cleaned));
    json_decref(cleaned);
    ASSERT_EQ(1, copies_stored(b, "clock", "every"));
    ASSERT_EQ(1, test_length(h, "clock"));
    st_backend_close(b);
    stellar_close(h);
}
