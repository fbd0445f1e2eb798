/*
 * workers.c: workers and stopping: what a running job shows in workers,
 * graceful stop with and past its grace period, and kv_expire.
 */
#include "conformance.h"

/* ----------------------------------------------------- Workers, stop --- */

void a_running_job_shows_in_workers_with_what_it_works_on(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *ws = NULL, *w, *on;
    struct run r;
    char *txt;

    reg(h, &task_slow);
    enqueue(h, "slow", "{\"ms\":1500}", "default");
    start(h);
    ASSERT_WAIT(runs_of("slow", false) == 1, 5000);
    r = run_of("slow", 0);
    ASSERT_OK(stellar_workers(h, &ws, &e), &e);
    w = json_object_get(ws, r.worker);
    txt = json_dumps(ws, JSON_COMPACT);
    if (!json_is_object(w)) FAIL("worker %s not listed in %s", r.worker, txt);
    on = json_object_get(w, "working_on");
    if (!json_is_object(on) || !strstr(txt, "slow"))
        FAIL("worker %s is not working on the slow job: %s", r.worker, txt);
    ASSERT_STR_EQ("default", json_string_value(json_object_get(on, "queue")));
    free(txt);
    json_decref(ws);
    free(r.params);
    stellar_stop(h, -1);
    ASSERT_OK(stellar_workers(h, &ws, &e), &e);
    ASSERT_JSON_EQ("{}", ws); /* unregistered at stop */
    json_decref(ws);
    stellar_close(h);
}

void graceful_stop_lets_the_running_job_finish_and_leaves_the_rest_queued(
    struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    struct run r;

    reg(h, &task_slow);
    reg(h, &task_record);
    enqueue(h, "slow", "{\"ms\":800}", "default");
    for (int i = 0; i < 3; i++)
        enqueue(h, "record", NULL, "default");
    start(h);
    ASSERT_WAIT(runs_of("slow", false) == 1, 5000);
    stellar_stop(h, 10000);
    r = run_of("slow", 0);
    ASSERT_TRUE(r.end_ms != 0); /* it finished before stop returned */
    ASSERT_TRUE(r.end_ms - r.start_ms >= 800);
    ASSERT_EQ(0, runs_of("record", false));
    ASSERT_EQ(3, test_length(h, "default"));
    ASSERT_EQ(1, test_stat(h, "processed"));
    ASSERT_EQ(0, test_failed_count(h));
    free(r.params);
    stellar_close(h);
    ASSERT_EQ(0, runs_of("record", false));
}

void graceful_stop_puts_a_job_running_past_the_grace_back_at_the_head(
    struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    st_backend *b = raw_open(t);
    json_t *before, *after;

    reg(h, &task_linger);
    reg(h, &task_record);
    enqueue(h, "linger", "{\"after_ms\":800}", "default");
    enqueue(h, "record", "{\"n\":1}", "default");
    enqueue(h, "record", "{\"n\":2}", "default");
    before = raw_queued(b, "default");
    start(h);
    ASSERT_WAIT(runs_of("linger", false) == 1, 5000);
    stellar_stop(h, 200);
    after = raw_queued(b, "default");
    if (!json_equal(before, after)) {
        char *x = json_dumps(before, JSON_COMPACT),
             *y = json_dumps(after, JSON_COMPACT);
        FAIL("queue after stop differs\n  before start: %s\n  after stop:   %s",
             x, y);
    }
    ASSERT_EQ(0, runs_of("record", false));
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_EQ(0, test_stat(h, "processed"));
    json_decref(before);
    json_decref(after);
    st_backend_close(b);
    stellar_close(h);
}

void stop_before_start_and_twice_is_harmless(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};

    reg(h, &task_record);
    stellar_stop(h, -1);
    start(h);
    ASSERT_EQ(STELLAR_ESTATE, stellar_start(h, &e));
    enqueue(h, "record", NULL, NULL);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    stellar_stop(h, -1);
    stellar_stop(h, -1);
    stellar_close(h);
}

/* backend.h: kv_expire with value NULL sets the expiry whatever the key
 * holds (the Redis backend refused NULL: the suspects' keys need it). */
void kv_expire_without_a_value_applies_to_any_value(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *keys = NULL;
    int64_t exp, now = test_now_ms();
    bool set = false;

    ASSERT_OK(b->ops->kv_set(b, "lock:any", "v1", 0, false, &set, &e), &e);
    ASSERT_OK(b->ops->kv_expire(b, "lock:any", NULL, 60000, &set, &e), &e);
    ASSERT_TRUE(set);
    ASSERT_OK(b->ops->kv_scan(b, "lock:", &keys, &e), &e);
    exp = json_integer_value(
        json_object_get(json_object_get(keys, "lock:any"), "expires"));
    json_decref(keys);
    ASSERT_TRUE(exp >= now + 59000 && exp <= test_now_ms() + 61000);
    ASSERT_OK(b->ops->kv_expire(b, "lock:none", NULL, 60000, &set, &e), &e);
    ASSERT_TRUE(!set);
    st_backend_close(b);
}
