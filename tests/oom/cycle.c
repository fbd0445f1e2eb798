/*
 * cycle.c: the worker cycle: a processor's own allocations after a task
 * ran (the run's error, the failed entry, the ack, the next reserve) fail
 * one by one, armed from inside a task; every job still ends processed or
 * failed, once.
 */
#include "oom.h"

/* ------------------------------------------------ The worker cycle --- */

/*
 * A processor's own allocations, after a task ran: the task "subject"
 * queues a "probe" job, then arms the hook in its processor's thread and
 * returns (failing, with the params {"fail":true}). What the processor
 * then does (the run's error, the failed entry, the ack, the reserve of
 * the probe) runs with the nth allocation failing. The probe reads how
 * many allocations failed, disarms the hook and reports. Every job must
 * end processed or failed, once.
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int64_t arm;    /* the n the subject arms, once (then 0) */
    int64_t probes; /* how many the subject queued */
    bool reported;  /* the probe ran */
    int64_t failed; /* what st_alloc_failures() said then */
} cyc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false, 0};

static int subject_run(stellar_api *api, const json_t *params,
                       stellar_next *next)
{
    stellar_error e = {0};
    bool fail = json_is_true(json_object_get(params, "fail"));
    int64_t n;

    ASSERT_OK(stellar_enqueue(stellar_api_handle(api), "probe", NULL, NULL, &e),
              &e);
    pthread_mutex_lock(&cyc.mu);
    cyc.probes++;
    n = cyc.arm;
    cyc.arm = 0; /* a job put back runs again: without the hook */
    pthread_mutex_unlock(&cyc.mu);
    if (n) st_alloc_fail_after(n, false);
    return fail ? stellar_fail(next, "subject failed as asked") : STELLAR_OK;
}

static int probe_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    int64_t failed = st_alloc_failures();
    (void)api, (void)params, (void)next;
    st_alloc_fail_after(0, false);
    pthread_mutex_lock(&cyc.mu);
    cyc.failed = failed;
    cyc.reported = true;
    pthread_cond_broadcast(&cyc.cond);
    pthread_mutex_unlock(&cyc.mu);
    return STELLAR_OK;
}

static const stellar_task task_subject = {.name = "subject",
                                          .description = "arms the hook",
                                          .queue = "q",
                                          .run = subject_run};
static const stellar_task task_probe = {
    .name = "probe", .description = "reports", .queue = "q", .run = probe_run};

static int64_t cyc_probes(void)
{
    int64_t n;
    pthread_mutex_lock(&cyc.mu);
    n = cyc.probes;
    pthread_mutex_unlock(&cyc.mu);
    return n;
}

/* Every job of the rounds so far has ended, once: processed or failed
 * (with its entry on the failed list), none queued or running. */
static bool cycle_settled(stellar *h, int64_t jobs)
{
    stellar_error e = {0};
    json_t *w = NULL;
    const char *k;
    json_t *v;
    bool idle = true;
    int64_t failed = test_stat(h, "failed");

    if (test_stat(h, "processed") + failed != jobs ||
        test_failed_count(h) != failed || test_length(h, "q") != 0)
        return false;
    ASSERT_OK(stellar_workers(h, &w, &e), &e);
    json_object_foreach(w, k, v)
    {
        if (!json_is_null(json_object_get(v, "working_on"))) idle = false;
    }
    json_decref(w);
    return idle;
}

void a_processor_survives_failed_allocations_after_a_run(struct test_ctx *t)
{
    stellar_options o = {0};
    stellar_error e = {0};
    stellar *h;
    int64_t jobs = 0, n, allocs[2] = {0, 0};
    int fail;

    o.processors = 1;
    o.no_scheduler = true;
    o.poll_ms = 10;
    h = open_h_at(t, &o, STELLAR_LOG_DEBUG);
    ASSERT_OK(stellar_task_register(h, &task_subject, &e), &e);
    ASSERT_OK(stellar_task_register(h, &task_probe, &e), &e);
    ASSERT_OK(stellar_start(h, &e), &e);
    for (fail = 0; fail < 2; fail++) {
        for (n = 1; n < 10000; n++) {
            bool clean;
            pthread_mutex_lock(&cyc.mu);
            cyc.arm = n;
            cyc.reported = false;
            pthread_mutex_unlock(&cyc.mu);
            ASSERT_OK(stellar_enqueue(h, "subject",
                                      fail ? "{\"fail\":true}" : NULL, NULL,
                                      &e),
                      &e);
            /* The subject and the probe end (the probe is acked by the
             * next reserve, which finds q empty). A failed allocation may
             * fail the probe before it runs: then it never reports, and
             * the hook, which fails once, is off again. A job put back
             * runs again, and a subject then queues one more probe. */
            ASSERT_WAIT(cycle_settled(h, jobs + 1 + cyc_probes()), 20000);
            jobs++;
            pthread_mutex_lock(&cyc.mu);
            clean = cyc.reported && cyc.failed == 0;
            pthread_mutex_unlock(&cyc.mu);
            if (clean) break;
        }
        if (n == 10000) FAIL("no end to the processor's allocations");
        allocs[fail] = n - 1;
    }
    test_note("after a run that succeeded: %lld allocations, after one that "
              "failed: %lld",
              (long long)allocs[0], (long long)allocs[1]);
    stellar_close(h);
}
