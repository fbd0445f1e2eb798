/*
 * processes.c: two processes on one backend: every job runs exactly once.
 */
#include "conformance.h"

/* ------------------------------------------------ Two processes --- */

#define N_SHARED 200

static void process_jobs_until_told(const struct test_ctx *t)
{
    stellar_options o = {.processors = 2};
    stellar *h = open_h(t, &o);
    char stop_file[600];
    struct stat st;
    int64_t deadline = test_mono_ms() + 60000;

    snprintf(stop_file, sizeof stop_file, "%s/stop", t->dir);
    reg(h, &task_append);
    start(h);
    test_append_line(test_path(t, "ready"), "ready");
    while (stat(stop_file, &st) != 0) {
        if (test_mono_ms() > deadline) FAIL("never told to stop");
        test_sleep_ms(10);
    }
    stellar_close(h);
    exit(0);
}

void two_processes_sharing_a_backend_run_every_job_exactly_once(
    struct test_ctx *t)
{
    static int seen[N_SHARED];
    char out[600], params[700], pid_a[32] = "", pid_b[32] = "";
    pid_t kids[2];
    stellar *h;
    FILE *f;
    int lines = 0, st;
    long i_seen, pid;

    snprintf(out, sizeof out, "%s", test_path(t, "out.txt"));
    for (int k = 0; k < 2; k++) {
        fflush(NULL);
        kids[k] = fork();
        ASSERT_TRUE(kids[k] >= 0);
        if (kids[k] == 0) process_jobs_until_told(t);
    }
    ASSERT_WAIT(test_count_lines(test_path(t, "ready")) == 2, 10000);
    snprintf(pid_a, sizeof pid_a, "%ld", (long)kids[0]);
    snprintf(pid_b, sizeof pid_b, "%ld", (long)kids[1]);

    h = open_h(t, NULL);
    for (int i = 0; i < N_SHARED; i++) {
        snprintf(params, sizeof params, "{\"path\":\"%s\",\"i\":%d}", out, i);
        enqueue(h, "append", params, NULL);
    }
    ASSERT_WAIT(test_count_lines(out) >= N_SHARED, 60000);
    ASSERT_WAIT(test_stat(h, "processed") >= N_SHARED, 10000);
    ASSERT_EQ(0, test_length(h, "default"));
    test_append_line(test_path(t, "stop"), "stop");
    for (int k = 0; k < 2; k++) {
        ASSERT_EQ(kids[k], waitpid(kids[k], &st, 0));
        if (WIFSIGNALED(st))
            FAIL("worker process %d killed by signal %d", (int)kids[k],
                 WTERMSIG(st));
        if (WEXITSTATUS(st) != 0)
            FAIL("worker process %d exited %d (66: a sanitizer report, above)",
                 (int)kids[k], WEXITSTATUS(st));
    }
    ASSERT_EQ(N_SHARED, test_stat(h, "processed"));
    ASSERT_EQ(0, test_failed_count(h));

    f = fopen(out, "r");
    ASSERT_TRUE(f != NULL);
    bool by_a = false, by_b = false;
    while (fscanf(f, "%ld %ld", &i_seen, &pid) == 2) {
        ASSERT_TRUE(i_seen >= 0 && i_seen < N_SHARED);
        if (seen[i_seen]++) FAIL("job %ld ran twice", i_seen);
        by_a |= pid == (long)kids[0];
        by_b |= pid == (long)kids[1];
        lines++;
    }
    fclose(f);
    ASSERT_EQ(N_SHARED, lines);
    if (!by_a || !by_b)
        FAIL("one process did all the work (a %s: %d, b %s: %d)", pid_a, by_a,
             pid_b, by_b);
    stellar_close(h);
}
