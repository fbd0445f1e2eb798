/*
 * isolation.c: tasks run in fork isolation under the real `stellar run`
 * that segfault, abort, exit or overrun their timeout: each job fails with
 * its signal, status or timeout, and the process, its processors and the
 * other jobs carry on with no child left behind.
 */
#include "faults.h"

/* ------------------------------------------------------- Isolation --- */

/* Number of live processes whose parent is pid (from /proc). */
static int children_of(pid_t pid)
{
    DIR *d = opendir("/proc");
    struct dirent *ent;
    int n = 0;

    if (!d) return 0;
    while ((ent = readdir(d))) {
        char path[300], buf[512], *p;
        long ppid = 0;
        char state = 0;
        FILE *f;
        if (ent->d_name[0] < '0' || ent->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", ent->d_name);
        if (!(f = fopen(path, "r"))) continue;
        p = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
        fclose(f);
        if (p && sscanf(p + 1, " %c %ld", &state, &ppid) == 2 &&
            ppid == (long)pid && state != 'Z')
            n++;
    }
    closedir(d);
    return n;
}

/* Waits until the failed list has n entries; the ms it took. */
static int64_t wait_failed(stellar *h, int64_t n, int64_t timeout_ms, pid_t run)
{
    int64_t t0 = test_mono_ms();
    while (test_failed_count(h) < n) {
        assert_alive(run, "stellar run");
        if (test_mono_ms() - t0 > timeout_ms)
            FAIL("%lld failed entries after %lld ms, expected %lld",
                 (long long)test_failed_count(h), (long long)timeout_ms,
                 (long long)n);
        test_sleep_ms(5);
    }
    return test_mono_ms() - t0;
}

/*
 * Under the real `stellar run`: tasks with fork isolation that segfault (3
 * times), abort, exit(3), overrun their timeout (and one that ignores
 * SIGTERM), and a thread-mode task over its cooperative timeout: each job
 * is in failed with the signal, status or timeout; the process and its
 * processors survive, no child is left behind, and a good job still runs.
 */
void fork_isolation_fails_crashed_and_timed_out_jobs_only(struct test_ctx *t)
{
    char *app = copy_app(t);
    stellar *h = open_handle(t, NULL, -1, false);
    stellar_error e = {0};
    json_t *failed;
    int64_t ms;
    pid_t run = start_run(t, app, 2, "run");
    char names_before[2][128] = {{0}}, params[64];
    int i;

    ASSERT_WAIT(workers_of(h, run, NULL) == 2, 60000);

    /* SIGTERM at the timeout ends a child that does nothing about it. */
    ASSERT_OK(stellar_enqueue(h, "overTime", NULL, NULL, &e), &e);
    ms = wait_failed(h, 1, 10000, run);
    test_note("overTime (timeout 500 ms) failed after %lld ms", (long long)ms);
    if (ms >= 2000)
        FAIL("overTime took %lld ms to fail: its child ignored the SIGTERM "
             "sent at the 500 ms timeout and died only by the SIGKILL 2 s "
             "later (the forked child inherits the daemon's blocked "
             "signals)",
             (long long)ms);

    /* A child that ignores SIGTERM is killed after the 2 s grace. */
    ASSERT_OK(stellar_enqueue(h, "stubborn", NULL, NULL, &e), &e);
    ms = wait_failed(h, 2, 10000, run);
    test_note("stubborn (timeout 300 ms, ignores SIGTERM) failed after %lld "
              "ms",
              (long long)ms);
    ASSERT_TRUE(ms >= 2000 && ms < 6000);

    for (i = 0; i < 3; i++) {
        snprintf(params, sizeof params, "{\"addr\":0,\"n\":%d}", i);
        ASSERT_OK(stellar_enqueue(h, "segv", params, NULL, &e), &e);
    }
    ASSERT_OK(stellar_enqueue(h, "abortJob", NULL, NULL, &e), &e);
    ASSERT_OK(stellar_enqueue(h, "exitJob", NULL, NULL, &e), &e);
    ASSERT_OK(stellar_enqueue(h, "slowThread", NULL, NULL, &e), &e);
    wait_failed(h, 8, 20000, run);
    enqueue_jobs(h, 0, 1, 0, 0, test_path(t, "runs.txt"), false);
    ASSERT_WAIT(test_stat(h, "processed") == 1, 10000);
    assert_runs(test_path(t, "runs.txt"), 1, 1);

    failed = failed_entries(h);
    if (failed_with(failed, "segv", "signal 11") != 3) note_failed(h);
    ASSERT_EQ(failed_with(failed, "segv", "signal 11"), 3);
    ASSERT_EQ(failed_with(failed, "abortJob", "signal 6"), 1);
    ASSERT_EQ(failed_with(failed, "exitJob", "status 3"), 1);
    ASSERT_EQ(failed_with(failed, "overTime", "timed out"), 1);
    ASSERT_EQ(failed_with(failed, "stubborn", "timed out"), 1);
    ASSERT_EQ(failed_with(failed, "slowThread", "timed out"), 1);
    json_decref(failed);
    ASSERT_EQ(test_failed_count(h), 8);
    ASSERT_EQ(test_stat(h, "failed"), 8);

    /* The same process, with the same processors, and no child left. */
    assert_alive(run, "stellar run");
    ASSERT_EQ(workers_of(h, run, NULL), 2);
    {
        json_t *all = NULL, *w;
        const char *name;
        int k = 0;
        ASSERT_OK(stellar_workers(h, &all, &e), &e);
        json_object_foreach(all, name, w)
        {
            (void)w;
            if (k < 2) snprintf(names_before[k++], 128, "%s", name);
        }
        json_decref(all);
        ASSERT_TRUE(strstr(names_before[0], ":") != NULL);
    }
    ASSERT_WAIT(children_of(run) == 0, 5000);
    assert_exit_0(stop_process(run, 40000), "stellar run");
    ASSERT_EQ(workers_of(h, 0, NULL), 0);
    stellar_close(h);
    st_free(app);
}
