/*
 * locks.c: the lock plugins. jobLock: 50 enqueues of one slow job on 4
 * processors in 2 processes run one at a time, and all 50 run (the blocked
 * copies go through the delayed set and the scheduler); a jobLock left by
 * a process killed with SIGKILL expires, and the job comes back through
 * dead-worker recovery and runs; the heartbeat keeps a long run's lock.
 * queueLock and delayQueueLock refuse second copies.
 */
#include "plugins.h"

/* ----------------------------------------------------------- jobLock --- */

#define N_LOCKED 50

void fifty_copies_of_a_job_under_joblock_run_one_at_a_time_and_all_run(
    struct test_ctx *t)
{
    static struct span s[MAX_SPANS];
    /* SQLite keeps delayed jobs by the ms: a short enqueueTimeout lets the
     * blocked copies come back soon. On Redis an identical payload can be
     * delayed once per second whatever the timeout: keep the default. */
    stellar_task slow = {
        .name = "slow",
        .description = "jobLock; sleeps params.ms",
        .plugins = (const char *const[]){"jobLock", NULL},
        .plugin_options =
            is_redis(t) ? NULL : "{\"jobLock\":{\"enqueueTimeout\":200}}",
        .run = slow_run};
    struct server_cfg cfg = {.processors = 2, .tasks = {&slow}};
    pid_t pids[2];
    stellar *h;
    char out[600], params[700];
    int64_t t0, took, progress = 0;
    size_t max_delayed = 0;
    int n;
    long by_first = 0;

    snprintf(g_dir, sizeof g_dir, "%s", t->dir);
    dir_file(out, sizeof out, "slow");
    spawn_servers(t, &cfg, pids, 2); /* 2 processes x 2 processors */
    h = open_h(t, NULL);
    reg(h, &slow);
    snprintf(params, sizeof params, "{\"path\":\"%s\",\"ms\":100}", out);
    t0 = test_mono_ms();
    for (int i = 0; i < N_LOCKED; i++)
        enqueue_expect(h, STELLAR_OK, "slow", params);
    /* The blocked copies wait in the delayed set for the scheduler. Slow is
     * not wrong (a loaded machine): only 30 s without a run fails, saying
     * where the copies are. */
    for (int done = 0, last = -1; (done = test_count_lines(out)) < N_LOCKED;) {
        size_t d = scheduled(h, "slow", params);
        if (d > max_delayed) max_delayed = d;
        if (done != last) {
            last = done;
            progress = test_mono_ms();
        }
        if (test_mono_ms() - progress > 30000)
            FAIL("%d of %d runs after %lld s, none in the last 30 s; queued "
                 "%lld, delayed %zu, failed %lld, processed %lld",
                 done, N_LOCKED, (long long)(test_mono_ms() - t0) / 1000,
                 (long long)test_length(h, "default"), d,
                 (long long)test_failed_count(h),
                 (long long)test_stat(h, "processed"));
        test_sleep_ms(20);
    }
    took = test_mono_ms() - t0;
    ASSERT_WAIT(test_stat(h, "processed") >= N_LOCKED, 10000);
    ASSERT_WAIT(test_length(h, "default") == 0 && timestamps(h) == 0, 10000);
    stop_servers(t, pids, 2);

    n = read_spans(out, s, MAX_SPANS);
    ASSERT_EQ(N_LOCKED, n);
    assert_one_at_a_time(s, n);
    for (int i = 0; i < n; i++)
        by_first += s[i].pid == (long)pids[0];
    test_note("%d runs of one jobLock job in %lld ms on 4 processors (%ld "
              "in one process, %ld in the other), never two at once; up to "
              "%zu copies delayed at once",
              n, (long long)took, by_first, (long)n - by_first, max_delayed);
    ASSERT_TRUE(max_delayed > 1);
    ASSERT_EQ(N_LOCKED,
              test_stat(h, "processed")); /* vetoed runs: not counted */
    ASSERT_EQ(0, test_stat(h, "failed"));
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_EQ(0, locks_count(h));
    stellar_close(h);
}

/* ----------------------------------------------------- Lock expiry --- */

void a_joblock_left_by_a_killed_process_expires_and_the_job_runs(
    struct test_ctx *t)
{
    struct server_cfg cfg = {
        .processors = 1, .no_scheduler = true, .tasks = {&task_hang}};
    stellar_options o = {.processors = 1,
                         .stuck_worker_timeout_ms = 3000,
                         .log_fn = capture_log};
    const char *lock = "workerslock:hang:default:[{\"n\":1}]";
    long long s1 = 0, s2 = 0, e2 = 0, ms;
    char path[600], kind;
    pid_t victim;
    stellar *client, *h;
    int st, starts = 0, ends = 0;
    int64_t killed_at;
    long pid;
    FILE *f;

    snprintf(g_dir, sizeof g_dir, "%s", t->dir);
    dir_file(path, sizeof path, "hang");
    spawn_servers(t, &cfg, &victim, 1);
    client = open_h(t, NULL);
    reg(client, &task_hang);
    enqueue_expect(client, STELLAR_OK, "hang", "{\"n\":1}");
    ASSERT_WAIT(test_count_lines(path) == 1, 10000);
    assert_lock_key(t, lock, 5);

    /* Killed mid-run: no afterPerform, the lock stays until its TTL. */
    kill(victim, SIGKILL);
    ASSERT_EQ(victim, waitpid(victim, &st, 0));
    ASSERT_TRUE(WIFSIGNALED(st));
    killed_at = test_mono_ms();

    /* A new server: its scheduler finds the dead worker (no ping for 3 s)
     * and puts the job back; the job meets the dead run's lock, goes back
     * to the delayed set until the lock expires (5 s), then runs. */
    h = open_h(t, &o);
    reg(h, &task_hang);
    start(h);
    ASSERT_WAIT(test_count_lines(path) >= 3, 20000);
    test_note("the job ran again %lld ms after its process was killed",
              (long long)(test_mono_ms() - killed_at));
    ASSERT_WAIT(test_stat(h, "processed") == 1, 5000);
    f = fopen(path, "r");
    ASSERT_TRUE(f != NULL);
    while (fscanf(f, " %c %lld %ld", &kind, &ms, &pid) == 3) {
        if (kind == 'S' && starts++ == 0) s1 = ms;
        if (kind == 'S' && starts == 2) s2 = ms;
        if (kind == 'E') {
            ends++;
            e2 = ms;
        }
    }
    fclose(f);
    ASSERT_EQ(2, starts);
    ASSERT_EQ(1, ends);
    ASSERT_TRUE(log_has("its job is back in its queue")); /* recovered */
    test_note("second run started %lld ms after the first (lockTimeout 5 s)",
              s2 - s1);
    if (s2 - s1 < 4900)
        FAIL("ran again after %lld ms, under the lock", s2 - s1);
    ASSERT_TRUE(e2 >= s2);
    ASSERT_TRUE(kv_absent(t, lock));
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_EQ(0, test_length(h, "default"));
    stellar_close(h);
    stellar_close(client);
}

/* The heartbeat renews a running job's lock: a run three times as long as
 * lockTimeout keeps it, and the second copy waits its turn. */
void a_joblock_outlives_its_lock_timeout_while_its_run_lasts(struct test_ctx *t)
{
    stellar_options o = {.processors = 2};
    stellar *h = open_h(t, &o);
    const char *key = "workerslock:held:default:[{\"n\":1}]";
    int64_t ttl = 0;
    char *v;

    snprintf(g_dir, sizeof g_dir, "%s", t->dir);
    reg(h, &task_held);
    enqueue_expect(h, STELLAR_OK, "held", "{\"n\":1}");
    enqueue_expect(h, STELLAR_OK, "held", "{\"n\":1}");
    start(h);
    ASSERT_WAIT(gated() == 1, 5000);
    test_sleep_ms(6000);
    ASSERT_EQ(1, gated());
    v = kv_read(t, key, &ttl);
    ASSERT_TRUE(v != NULL);
    free(v);
    test_note("after 6 s of run, the lock expires in %lld ms", (long long)ttl);
    ASSERT_TRUE(ttl > 0 && ttl <= 2000);
    open_gate("go-held");
    ASSERT_WAIT(gated_done() == 2 && test_stat(h, "processed") == 2, 15000);
    ASSERT_TRUE(kv_absent(t, key));
    stellar_close(h);
}

/* --------------------------------------------------------- queueLock --- */

void queuelock_refuses_a_second_copy_until_the_first_starts(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    const char *key = "lock:qlocked:default:[{\"n\":1}]";

    snprintf(g_dir, sizeof g_dir, "%s", t->dir);
    reg(h, &task_qlocked);
    enqueue_expect(h, STELLAR_OK, "qlocked", "{\"n\":1}");
    assert_lock_key(t, key, 3600);
    enqueue_expect(h, STELLAR_VETOED, "qlocked", "{\"n\":1}");
    enqueue_in_expect(h, STELLAR_VETOED, 5000, "qlocked", "{\"n\":1}");
    ASSERT_EQ(1, test_length(h, "default"));
    ASSERT_EQ(0, timestamps(h));
    /* Other params: another lock. */
    enqueue_expect(h, STELLAR_OK, "qlocked", "{\"n\":2}");
    ASSERT_EQ(2, test_length(h, "default"));

    /* The lock goes when the job starts: the next enqueue is accepted,
     * and holds the lock again. */
    start(h);
    ASSERT_WAIT(gated() == 1, 5000);
    ASSERT_TRUE(kv_absent(t, key));
    enqueue_expect(h, STELLAR_OK, "qlocked", "{\"n\":1}");
    enqueue_expect(h, STELLAR_VETOED, "qlocked", "{\"n\":1}");
    open_gate("go-qlocked");
    ASSERT_WAIT(gated_done() == 3 && test_stat(h, "processed") == 3, 10000);
    ASSERT_EQ(0, locks_count(h));
    stellar_close(h);
}

/* ---------------------------------------------------- delayQueueLock --- */

void delayqueuelock_refuses_an_enqueue_while_the_same_job_is_delayed(
    struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *ts = NULL;

    reg(h, &task_dlocked);
    enqueue_in_expect(h, STELLAR_OK, 60000, "dlocked", "{\"n\":1}");
    enqueue_expect(h, STELLAR_VETOED, "dlocked", "{\"n\":1}");
    enqueue_in_expect(h, STELLAR_VETOED, 1000, "dlocked", "{\"n\":1}");
    enqueue_at_expect(h, STELLAR_VETOED, test_now_ms() + 120000, "dlocked",
                      "{\"n\":1}");
    ASSERT_EQ(0, test_length(h, "default"));
    ASSERT_EQ(1, scheduled(h, "dlocked", "{\"n\":1}"));
    enqueue_expect(h, STELLAR_OK, "dlocked", "{\"n\":2}"); /* other params */
    ASSERT_EQ(1, test_length(h, "default"));

    /* Once the delayed copy is gone, the same job is accepted again. */
    ASSERT_OK(stellar_del_delayed(h, NULL, "dlocked", "{\"n\":1}", &ts, &e),
              &e);
    ASSERT_EQ(1, json_array_size(ts));
    json_decref(ts);
    enqueue_expect(h, STELLAR_OK, "dlocked", "{\"n\":1}");
    ASSERT_EQ(2, test_length(h, "default"));
    stellar_close(h);
}
