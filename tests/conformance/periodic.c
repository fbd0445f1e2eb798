/*
 * periodic.c: periodic tasks: run again after each run, never stored twice,
 * never run twice at once, even when the leader changes.
 */
#include "conformance.h"

/* ---------------------------------------------------------- Periodic --- */

/* Checks, while the periodic task "tick" runs until it has ended `until`
 * runs, that storage never holds two copies of it. */
static void watch_ticks(st_backend *b, int until)
{
    int64_t deadline = test_mono_ms() + 30000;
    while (runs_of("tick", true) < until) {
        int n = copies_stored(b, "default", "tick");
        if (n > 1) FAIL("%d copies of the periodic job stored at once", n);
        if (test_mono_ms() > deadline)
            FAIL("periodic task ran %d times in 30 s", runs_of("tick", true));
        test_sleep_ms(20);
    }
}

/* Each of runs [from, to) started `frequency` after the previous one ended. */
static void check_gaps(const struct test_ctx *t, int64_t freq, int from, int to)
{
    int64_t lo = is_redis(t) ? freq - 500 : freq;
    int64_t hi = is_redis(t) ? freq + 1000 + SLACK_MS : freq + LATE_MS;
    for (int i = from; i < to; i++) {
        struct run a = run_of("tick", i - 1), c = run_of("tick", i);
        int64_t gap = c.start_ms - a.end_ms;
        test_note("periodic run %d started %lld ms after run %d ended", i,
                  (long long)gap, i - 1);
        if (gap < lo || gap > hi)
            FAIL("run %d started %lld ms after run %d ended; frequency %lld, "
                 "allowed [%lld, %lld]",
                 i, (long long)gap, i - 1, (long long)freq, (long long)lo,
                 (long long)hi);
        free(a.params);
        free(c.params);
    }
}

void a_periodic_task_runs_again_after_each_run_and_is_never_stored_twice(
    struct test_ctx *t)
{
    /* Two handles, as two servers: each runs processors and a scheduler. */
    const int64_t freq = is_redis(t) ? 1000 : 400;
    const stellar_task tick = {.name = "tick",
                               .description = "periodic",
                               .frequency = freq,
                               .run = tick_run};
    stellar *h1 = open_h(t, NULL), *h2 = open_h(t, NULL);
    st_backend *b = raw_open(t);

    reg(h1, &tick);
    reg(h2, &tick);
    start(h1);
    start(h2);
    watch_ticks(b, 4);
    check_gaps(t, freq, 1, 4);

    /* The first server (the leader: it started first) leaves. The other
     * takes office and enqueues every periodic task at once (replacing the
     * waiting copy): still one copy, and the period holds from then on. */
    stellar_close(h1);
    watch_ticks(b, 8);
    check_gaps(t, freq, 6, 8);
    stellar_close(h2);
    ASSERT_EQ(1, max_in_flight);
    st_backend_close(b);
}

static int ticks_in_flight(void)
{
    int n;
    pthread_mutex_lock(&runs_mu);
    n = in_flight;
    pthread_mutex_unlock(&runs_mu);
    return n;
}

void a_periodic_task_never_runs_twice_at_once_when_the_leader_changes(
    struct test_ctx *t)
{
    /* A scheduler-only server, and a server with two idle processors.
     * While a run is going on, the scheduler server is replaced; the new
     * leader enqueues the periodic task at once, and the second processor
     * takes that copy: the task's automatic jobLock must hold it back. */
    const stellar_task tick = {.name = "tick",
                               .description = "periodic",
                               .frequency = is_redis(t) ? 1000 : 300,
                               .run = tick_run};
    stellar_options sched = {.processors = -1};
    stellar_options procs = {.processors = 2, .no_scheduler = true};
    stellar *h1 = open_h(t, &sched), *hw = open_h(t, &procs), *h3;

    tick_ms = 1500;
    reg(h1, &tick);
    reg(hw, &tick);
    start(hw);
    start(h1);
    ASSERT_WAIT(ticks_in_flight() == 1, 10000);
    stellar_close(h1);
    h3 = open_h(t, &sched);
    reg(h3, &tick);
    start(h3);
    ASSERT_WAIT(runs_of("tick", true) >= 3, 30000);
    stellar_close(h3);
    stellar_close(hw);
    if (max_in_flight != 1)
        FAIL("the periodic task ran %d times at once", max_in_flight);
}
