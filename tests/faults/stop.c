/*
 * stop.c: SIGTERM to `stellar run` while its processors run jobs: the jobs
 * finish within the grace period, and a second SIGTERM puts them back at
 * once for another process to run.
 */
#include "faults.h"

/* ------------------------------------------------------ Graceful stop --- */

/* `stellar run` with 8 processors, once all 8 run a 2 s job, gets SIGTERM:
 * it exits 0 within the grace period, with all 8 acked. */
void sigterm_lets_eight_running_jobs_finish(struct test_ctx *t)
{
    char *app = copy_app(t), *runs = st_strdup(test_path(t, "runs.txt"));
    stellar *h = open_handle(t, NULL, -1, false);
    pid_t run = start_run(t, app, 8, "run");
    int busy = 0, status;
    int64_t t0, ms;

    ASSERT_WAIT(workers_of(h, run, NULL) == 8, 60000);
    enqueue_jobs(h, 0, 8, 2000, 0, runs, false);
    ASSERT_WAIT(workers_of(h, run, &busy) == 8 && busy == 8, 10000);
    t0 = test_mono_ms();
    kill(run, SIGTERM);
    if ((status = wait_exit(run, 30000 + 5000)) == -1)
        FAIL("stellar run still running 35 s after SIGTERM");
    ms = test_mono_ms() - t0;
    test_note("exited %lld ms after SIGTERM (grace 30000 ms)", (long long)ms);
    assert_exit_0(status, "stellar run");
    ASSERT_TRUE(ms < 30000);
    ASSERT_EQ(test_stat(h, "processed"), 8);
    ASSERT_EQ(test_failed_count(h), 0);
    ASSERT_EQ(test_length(h, "default"), 0);
    ASSERT_EQ(workers_of(h, 0, NULL), 0);
    assert_runs(runs, 8, 1);
    stellar_close(h);
    st_free(runs);
    st_free(app);
}

/* A second SIGTERM puts the running jobs back at once and exits 0 when
 * their tasks return (their acks skipped); a new process runs them. */
void second_sigterm_puts_running_jobs_back(struct test_ctx *t)
{
    char *app = copy_app(t), *runs = st_strdup(test_path(t, "runs.txt"));
    stellar *h = open_handle(t, NULL, -1, false);
    pid_t run = start_run(t, app, 8, "run");
    int busy = 0, status;

    ASSERT_WAIT(workers_of(h, run, NULL) == 8, 60000);
    enqueue_jobs(h, 0, 8, 2000, 0, runs, false);
    ASSERT_WAIT(workers_of(h, run, &busy) == 8 && busy == 8, 10000);
    kill(run, SIGTERM);
    ASSERT_WAIT(file_contains(test_path(t, "run.log"), "stopping"), 5000);
    kill(run, SIGTERM);
    ASSERT_WAIT(test_length(h, "default") == 8, 3000);
    if ((status = wait_exit(run, 10000)) == -1)
        FAIL("stellar run still running 10 s after a second SIGTERM");
    assert_exit_0(status, "stellar run");
    ASSERT_EQ(test_stat(h, "processed"), 0);
    ASSERT_EQ(test_failed_count(h), 0);
    ASSERT_EQ(workers_of(h, 0, NULL), 0);

    run = start_run(t, app, 8, "run2");
    ASSERT_WAIT(test_stat(h, "processed") == 8, 30000);
    assert_exit_0(stop_process(run, 40000), "stellar run");
    ASSERT_EQ(test_length(h, "default"), 0);
    /* The tasks ran to their end in the first process too (a put-back
     * job may run again: stellar.h, stellar_stop). */
    assert_runs(runs, 8, 2);
    stellar_close(h);
    st_free(runs);
    st_free(app);
}
