/*
 * poison.c: poison pills: a job that kills its worker process goes to
 * failed after max_crashes deaths, one that crashes a processor's thread
 * runs again as a suspect in a child of its own, and the innocent jobs
 * running beside a pill never fail.
 */
#include "faults.h"

/* ---------------------------------------------------- Poison pills --- */

/*
 * A job that kills its worker process (SIGKILL), even when it runs in a
 * child of its own as a suspect, is put back after each death, and after
 * max_crashes (3) deaths goes to failed as a poison pill; the next worker
 * process carries on. A job that crashes its process only from the
 * processor's thread (SIGSEGV) kills it once: put back as a suspect, it
 * runs in a child and fails there with its signal.
 */
void job_that_kills_its_process_three_times_is_a_poison_pill(struct test_ctx *t)
{
    stellar *h = open_handle(t, NULL, -1, true);
    stellar_error e = {0};
    json_t *failed;
    const char *err;
    char tag[16];
    int i, status;
    pid_t w;

    ASSERT_OK(stellar_enqueue(h, "killWorker", NULL, NULL, &e), &e);
    for (i = 1; i <= 3; i++) {
        snprintf(tag, sizeof tag, "w%d", i);
        w = start_worker(t, 1, true, tag);
        if ((status = wait_exit(w, 20000)) == -1)
            FAIL("death %d: the worker did not die", i);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            FAIL("death %d: status %d, expected SIGKILL", i, status);
        /* The leader sees the dead worker after STUCK_MS and puts its
         * job back at once, marked a suspect. */
        if (i < 3)
            ASSERT_WAIT(test_length(h, "default") == 1, STUCK_MS * 4);
        else
            ASSERT_WAIT(test_failed_count(h) == 1, STUCK_MS * 4);
    }
    ASSERT_EQ(test_length(h, "default"), 0);
    failed = failed_entries(h);
    err =
        json_string_value(json_object_get(json_array_get(failed, 0), "error"));
    test_note("failed: %s", err ? err : "(none)");
    ASSERT_EQ(failed_with(failed, "killWorker", "poison pill"), 1);
    ASSERT_EQ(failed_with(failed, "killWorker", "3 workers"), 1);
    json_decref(failed);

    /* SIGSEGV in the processor's thread: one death, then its signal. */
    ASSERT_OK(stellar_enqueue(h, "crashThread", "{\"addr\":0}", NULL, &e), &e);
    w = start_worker(t, 1, true, "w4");
    if ((status = wait_exit(w, 20000)) == -1)
        FAIL("crashThread: the worker did not crash");
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV)
        FAIL("crashThread: status %d, expected SIGSEGV", status);
    ASSERT_WAIT(test_length(h, "default") == 1, STUCK_MS * 4);
    w = start_worker(t, 1, true, "w5");
    ASSERT_WAIT(test_failed_count(h) == 2, 20000);
    failed = failed_entries(h);
    ASSERT_EQ(failed_with(failed, "crashThread", "signal 11"), 1);
    json_decref(failed);

    enqueue_jobs(h, 0, 1, 0, 0, test_path(t, "runs.txt"), false);
    ASSERT_WAIT(test_count_lines(test_path(t, "runs.txt")) == 1, 10000);
    assert_exit_0(stop_process(w, 10000), "fault_worker");
    ASSERT_EQ(test_failed_count(h), 2);
    stellar_close(h);
}

/*
 * Issue 17 item 9: two `stellar run` of 2 processors each (thread
 * isolation, maxCrashes 3), a stream of 40 ms jobs, and one job that aborts
 * its process. The jobs in flight on a dead process go back as suspects,
 * and a suspect runs in a child process of its own: the pill fails there
 * with SIGABRT, having killed a server once, and the jobs that ran beside
 * it simply run. Ten rounds, a pill of their own each; the test is the
 * scheduler leader (dead workers recovered after PILL_STUCK_MS) and
 * restarts a dead server, as a supervisor would, once its jobs are back:
 * so the recovered jobs meet again on the other server, as they did in the
 * issue (where, before suspects, a bystander died with the pill three
 * times and went to failed as a poison pill).
 */
#define PILL_ROUNDS   10
#define PILL_STUCK_MS 3000

/* The scheduler-only leader of open_handle(), with a stuck timeout. */
static stellar *open_leader(struct test_ctx *t, int64_t stuck_ms)
{
    stellar_options o = {0};
    stellar_error e = {0};
    stellar *h = NULL;

    o.url = t->url;
    o.log_fn = test_log_fn;
    o.log_level = STELLAR_LOG_INFO;
    o.processors = -1;
    o.poll_ms = 50;
    o.stuck_worker_timeout_ms = stuck_ms;
    ASSERT_OK(stellar_open(&h, &o, &e), &e);
    ASSERT_OK(stellar_start(h, &e), &e);
    return h;
}

/* One of the test's `stellar run` servers, as a supervisor sees it. */
struct server {
    char name; /* 'a' or 'b' */
    pid_t pid; /* running, or dead (down) */
    bool down; /* the pill killed it; restarted once its workers are gone */
};

/* Supervises server s: counts its death by the pill, and restarts it once
 * the leader has cleaned its dead workers, so that the jobs it held go
 * back while only the other server runs (they meet again there). */
static void supervise(struct test_ctx *t, stellar *h, const char *app,
                      struct server *s, int *deaths, int *spawned)
{
    char tag[32];
    int status;

    if (!s->down) {
        if (waitpid(s->pid, &status, WNOHANG) != s->pid) return;
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
            FAIL("server %c (pid %ld) ended with %s %d, expected SIGABRT",
                 s->name, (long)s->pid,
                 WIFSIGNALED(status) ? "signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        (*deaths)++;
        s->down = true;
    }
    if (workers_of(h, s->pid, NULL) > 0) return;
    snprintf(tag, sizeof tag, "%c%d", s->name, ++*spawned);
    s->pid = start_run(t, app, 2, tag);
    s->down = false;
}

/* Failed entries of task klass (any error). */
static int failed_of(stellar *h, const char *klass)
{
    json_t *all = failed_entries(h);
    int n = failed_with(all, klass, "");
    json_decref(all);
    return n;
}

void innocent_jobs_beside_a_poison_pill_never_fail(struct test_ctx *t)
{
    char *app = copy_app(t), *runs = st_strdup(test_path(t, "runs.txt"));
    stellar *h = open_leader(t, PILL_STUCK_MS);
    stellar_error e = {0};
    int next_id = 0, round, spawned = 0, deaths_all = 0, twice, extra;
    int innocent = 0, bad_rounds = 0, unsignalled = 0, many_deaths = 0;
    int64_t t0 = test_mono_ms();
    json_t *failed;
    struct server a = {'a', 0, false}, b = {'b', 0, false};

    a.pid = start_run(t, app, 2, "a");
    b.pid = start_run(t, app, 2, "b");
    ASSERT_WAIT(workers_of(h, 0, NULL) == 4, 60000);
    for (round = 0; round < PILL_ROUNDS; round++) {
        int64_t deadline = test_mono_ms() + 120000, r0 = test_mono_ms();
        int deaths = 0, now_innocent;
        char params[32];

        enqueue_jobs(h, next_id, 4, 40, 0, runs, false);
        next_id += 4;
        snprintf(params, sizeof params, "{\"n\":%d}", round);
        ASSERT_OK(stellar_enqueue(h, "abortThread", params, NULL, &e), &e);
        /* The stream goes on until the pill is in failed. */
        while (failed_of(h, "abortThread") < round + 1) {
            supervise(t, h, app, &a, &deaths, &spawned);
            supervise(t, h, app, &b, &deaths, &spawned);
            if (test_length(h, "default") < 4) {
                enqueue_jobs(h, next_id, 4, 40, 0, runs, false);
                next_id += 4;
            }
            if (test_mono_ms() > deadline) {
                note_failed(h);
                FAIL("round %d: the pill is not in failed after 120 s "
                     "(%d deaths)",
                     round, deaths);
            }
            test_sleep_ms(10);
        }
        /* Then every job of the stream ends (in failed, if innocent). */
        while (test_stat(h, "processed") + failed_of(h, "faultJob") < next_id) {
            supervise(t, h, app, &a, &deaths, &spawned);
            supervise(t, h, app, &b, &deaths, &spawned);
            if (test_mono_ms() > deadline) {
                note_failed(h);
                FAIL("round %d: %lld of %d jobs processed; %lld waiting", round,
                     (long long)test_stat(h, "processed"), next_id,
                     (long long)test_length(h, "default"));
            }
            test_sleep_ms(10);
        }
        while (a.down || b.down || workers_of(h, 0, NULL) < 4) {
            supervise(t, h, app, &a, &deaths, &spawned);
            supervise(t, h, app, &b, &deaths, &spawned);
            if (test_mono_ms() > deadline)
                FAIL("round %d: the servers are not back", round);
            test_sleep_ms(10);
        }
        failed = failed_entries(h);
        now_innocent = failed_with(failed, "faultJob", "");
        test_note("round %d: the pill killed a server %d time(s); %d "
                  "bystander(s) in failed; %d jobs so far; %lld ms",
                  round, deaths, now_innocent - innocent, next_id,
                  (long long)(test_mono_ms() - r0));
        bad_rounds += now_innocent > innocent;
        innocent = now_innocent;
        unsignalled =
            round + 1 - failed_with(failed, "abortThread", "signal 6");
        json_decref(failed);
        /* A suspect never runs in a processor's thread: one death. */
        many_deaths += deaths != 1;
        deaths_all += deaths;
    }
    if (innocent) note_failed(h);
    test_note("%d rounds, %d jobs, %d deaths; %d bystander(s) in failed in "
              "%d round(s); %d pill(s) in failed without SIGABRT; %lld ms",
              PILL_ROUNDS, next_id, deaths_all, innocent, bad_rounds,
              unsignalled, (long long)(test_mono_ms() - t0));
    ASSERT_EQ(innocent, 0);
    ASSERT_EQ(unsignalled, 0);
    ASSERT_EQ(many_deaths, 0);
    ASSERT_EQ(test_failed_count(h), PILL_ROUNDS);
    ASSERT_EQ(test_length(h, "default"), 0);
    assert_exit_0(stop_process(a.pid, 40000), "server a");
    assert_exit_0(stop_process(b.pid, 40000), "server b");
    /* Every job ran; only a bystander killed after its line and before
     * its ack may have run twice: one at most per death. */
    extra = extra_runs(runs, next_id, &twice);
    test_note("%d job(s) ran twice", twice);
    ASSERT_TRUE(extra <= deaths_all);
    ASSERT_EQ(test_stat(h, "processed"), next_id);
    ASSERT_WAIT(workers_of(h, 0, NULL) == 0, PILL_STUCK_MS * 3);
    stellar_close(h);
    st_free(runs);
    st_free(app);
}
