/*
 * kills.c: worker processes SIGKILLed and restarted mid-run, the real
 * `stellar run` and a program on the library: no job is lost, and only
 * the jobs in flight at a kill run again.
 */
#include "faults.h"

/* ------------------------------------------------ Kill and restart --- */

/*
 * N jobs of 20-100 ms across two worker processes of PROCS processors; one
 * of them is SIGKILLed and restarted `kills` times, spread over the run.
 * Every job must complete (appear in the runs file, be acked once: stat
 * processed = N), and only jobs in flight at a kill may run twice: at most
 * PROCS per kill.
 *
 * real_run: the processes are `stellar run` on the test app, and this test
 * process is the scheduler leader that recovers the dead workers' jobs
 * (`stellar run` takes no stuckWorkerTimeout from stellar.json yet). Else
 * they are fault_worker, each with its own scheduler (stuck timeout
 * STUCK_MS): the leader itself may be the one killed.
 */
static void kill_and_restart(struct test_ctx *t, bool real_run)
{
    int n = long_mode() ? 10000 : 1000, kills = long_mode() ? 5 : 3;
    int64_t t0 = test_mono_ms(), done_by = long_mode() ? 900000 : 150000;
    char *runs = st_strdup(test_path(t, "runs.txt")), *app = NULL, tag[16];
    char *starts = st_strdup(test_path(t, "starts.txt"));
    int restarts, started_twice;
    stellar *h = open_handle(t, NULL, -1, real_run);
    int k, busy_at_kills = 0, extra, twice, status;
    pid_t a, b;

    if (real_run) app = copy_app(t);
    enqueue_jobs_ex(h, 0, n, 20, 81, runs, starts, false);
    a = real_run ? start_run(t, app, PROCS, "a0")
                 : start_worker(t, PROCS, false, "a0");
    b = real_run ? start_run(t, app, PROCS, "b")
                 : start_worker(t, PROCS, false, "b");
    for (k = 1; k <= kills; k++) {
        int64_t target = (int64_t)n * k / (kills + 1), deadline;
        int busy = 0;

        /* Kill when the run has reached its k-th share and the process to
         * kill is registered and holding jobs. */
        deadline = test_mono_ms() + done_by;
        while (test_stat(h, "processed") < target ||
               workers_of(h, a, &busy) < PROCS || busy == 0) {
            assert_alive(a, "worker process a");
            assert_alive(b, "worker process b");
            if (test_mono_ms() > deadline)
                FAIL("kill %d: processed %lld of %lld, a has %d workers", k,
                     (long long)test_stat(h, "processed"), (long long)target,
                     workers_of(h, a, NULL));
            test_sleep_ms(10);
        }
        kill(a, SIGKILL);
        waitpid(a, NULL, 0);
        busy_at_kills += busy;
        snprintf(tag, sizeof tag, "a%d", k);
        a = real_run ? start_run(t, app, PROCS, tag)
                     : start_worker(t, PROCS, false, tag);
    }
    {
        int64_t deadline = test_mono_ms() + done_by;
        while (test_stat(h, "processed") < n) {
            assert_alive(a, "worker process a");
            assert_alive(b, "worker process b");
            if (test_mono_ms() > deadline)
                FAIL("processed %lld of %d jobs; %lld waiting, %lld failed",
                     (long long)test_stat(h, "processed"), n,
                     (long long)test_length(h, "default"),
                     (long long)test_failed_count(h));
            test_sleep_ms(20);
        }
    }
    /* The dead incarnations' workers are cleaned: only a's and b's are
     * left, and none of them holds a job. */
    ASSERT_WAIT(workers_of(h, 0, NULL) == 2 * PROCS, STUCK_MS * 3);
    ASSERT_EQ(workers_of(h, a, NULL), PROCS);
    ASSERT_EQ(test_length(h, "default"), 0);
    status = stop_process(a, 40000);
    assert_exit_0(status, "worker process a");
    status = stop_process(b, 40000);
    assert_exit_0(status, "worker process b");

    extra = extra_runs(runs, n, &twice);
    restarts = extra_runs(starts, n, &started_twice);
    test_note("%d jobs, %d kills of a %d-processor %s (%d busy at the "
              "kills): %d jobs started again after a kill, %d ran to the end "
              "twice (bound %d); %lld ms",
              n, kills, PROCS, real_run ? "`stellar run`" : "fault_worker",
              busy_at_kills, started_twice, twice, PROCS * kills,
              (long long)(test_mono_ms() - t0));
    /* The jobs in flight at the kills were recovered and started again,
     * and no others. */
    if (restarts > PROCS * kills || extra > PROCS * kills)
        FAIL("%d extra starts, %d extra runs: more than the %d jobs in "
             "flight at %d kills",
             restarts, extra, PROCS * kills, kills);
    ASSERT_TRUE(started_twice >= kills);
    ASSERT_EQ(test_stat(h, "processed"), n);
    if (test_failed_count(h)) note_failed(h);
    ASSERT_EQ(test_failed_count(h), 0);
    ASSERT_EQ(workers_of(h, 0, NULL), 0);
    stellar_close(h);
    st_free(runs);
    st_free(starts);
    st_free(app);
}

void stellar_run_killed_and_restarted_loses_no_job(struct test_ctx *t)
{
    kill_and_restart(t, true);
}

void library_process_killed_and_restarted_loses_no_job(struct test_ctx *t)
{
    kill_and_restart(t, false);
}
