/*
 * delayed.c: delayed jobs: enqueueAt and enqueueIn run a job not before its
 * time and not much later (the windows of conformance.h), in time order.
 */
#include "conformance.h"

/* ----------------------------------------------------------- Delayed --- */

void enqueue_at_runs_the_job_not_before_its_time(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *ts = NULL;
    int64_t at = test_now_ms() + 1300, lo, hi;
    struct run r;

    reg(h, &task_record);
    start(h);
    ASSERT_OK(
        stellar_enqueue_at(h, at, "record", "{\"when\":\"at\"}", NULL, &e), &e);
    due_window(t, at, at, &lo, &hi);
    /* Waiting in the delayed set, listed by timestamp, not in its queue. */
    ASSERT_OK(stellar_timestamps(h, &ts, &e), &e);
    ASSERT_EQ(1, json_array_size(ts));
    ASSERT_EQ(is_redis(t) ? lo : at, json_integer_value(json_array_get(ts, 0)));
    json_decref(ts);
    ASSERT_EQ(0, test_length(h, "default"));

    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    r = run_of("record", 0);
    test_note("enqueueAt: started %+lld ms from its time",
              (long long)(r.start_ms - at));
    if (r.start_ms < lo || r.start_ms > hi)
        FAIL("due at %lld: started at %+lld ms, allowed [%+lld, %+lld]",
             (long long)at, (long long)(r.start_ms - at), (long long)(lo - at),
             (long long)(hi - at));
    ASSERT_OK(stellar_timestamps(h, &ts, &e), &e);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    free(r.params);
    stellar_close(h);
}

void enqueue_at_a_past_time_runs_the_job_at_once(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t t0;
    struct run r;

    reg(h, &task_record);
    start(h);
    t0 = test_now_ms();
    ASSERT_OK(stellar_enqueue_at(h, t0 - 60000, "record", NULL, NULL, &e), &e);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    r = run_of("record", 0);
    test_note("a past-due job started %lld ms after enqueueAt",
              (long long)(r.start_ms - t0));
    if (r.start_ms - t0 > (is_redis(t) ? 1000 + SLACK_MS : LATE_MS))
        FAIL("a past-due job started %lld ms after enqueueAt",
             (long long)(r.start_ms - t0));
    free(r.params);
    stellar_close(h);
}

void enqueue_in_runs_the_job_after_its_delay_and_not_before(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t t0, t1, lo, hi;
    struct run r;

    reg(h, &task_record);
    start(h);
    t0 = test_now_ms();
    ASSERT_OK(
        stellar_enqueue_in(h, 1500, "record", "{\"when\":\"in\"}", NULL, &e),
        &e);
    t1 = test_now_ms();
    due_window(t, t0 + 1500, t1 + 1500, &lo, &hi);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    r = run_of("record", 0);
    test_note("enqueueIn(1500): started %lld..%lld ms after the call",
              (long long)(r.start_ms - t1), (long long)(r.start_ms - t0));
    if (r.start_ms < lo || r.start_ms > hi)
        FAIL("enqueueIn(1500): started %lld ms after, allowed [%lld, %lld]",
             (long long)(r.start_ms - t0), (long long)(lo - t0),
             (long long)(hi - t0));
    free(r.params);
    stellar_close(h);
}

void enqueue_in_with_a_negative_delay_is_refused(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *ts = NULL;

    ASSERT_EQ(STELLAR_EINVAL, stellar_enqueue_in(h, -1, "x", NULL, NULL, &e));
    ASSERT_EQ(STELLAR_EINVAL, e.code);
    ASSERT_TRUE(e.msg[0] != '\0');
    ASSERT_OK(stellar_timestamps(h, &ts, &e), &e);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    stellar_close(h);
}

void delayed_jobs_run_in_time_order(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    stellar_error e = {0};
    /* Whole seconds apart, so the order holds on the seconds layout too. */
    int64_t base = (test_now_ms() / 1000 + 2) * 1000;

    reg(h, &task_record);
    ASSERT_OK(
        stellar_enqueue_at(h, base + 1000, "record", "{\"n\":2}", NULL, &e),
        &e);
    ASSERT_OK(stellar_enqueue_at(h, base, "record", "{\"n\":1}", NULL, &e), &e);
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 2, 6000);
    for (int i = 0; i < 2; i++) {
        struct run r = run_of("record", i);
        json_t *p = params_of(&r);
        ASSERT_EQ(i + 1, json_integer_value(json_object_get(p, "n")));
        ASSERT_TRUE(r.start_ms >= base + 1000 * i);
        json_decref(p);
        free(r.params);
    }
    stellar_close(h);
}
