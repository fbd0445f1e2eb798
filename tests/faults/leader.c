/*
 * leader.c: the scheduler leader SIGKILLed between two runs of a periodic
 * task: the survivor takes the lock, the task never runs twice at once and
 * keeps its period, and every delayed job runs exactly once.
 */
#include "faults.h"

/* ------------------------------------------------ Leader failover --- */

/* The pid in the leader lock's value "<host>:<pid>+s<n>", 0 if none. */
static pid_t leader_pid(st_backend *b)
{
    stellar_error e = {0};
    char *v = NULL, *colon;
    pid_t pid = 0;

    ASSERT_OK(b->ops->kv_get(b, "resque_scheduler_leader_lock", &v, &e), &e);
    if (v && (colon = strrchr(v, ':')))
        pid = (pid_t)strtol(colon + 1, NULL, 10);
    st_free(v);
    return pid;
}

/* Whether leaderTick's jobLock (which every periodic task gets) is held. A
 * run killed after its line was written but before its afterPerform let go
 * of the lock keeps the task waiting for lockTimeout (60 s, as documented
 * in docs/plugins.md), so the test kills only once the lock is gone. */
static bool tick_locked(st_backend *b)
{
    stellar_error e = {0};
    char *v = NULL;

    ASSERT_OK(b->ops->kv_get(b, "workerslock:leaderTick:default:[{}]", &v, &e),
              &e);
    st_free(v);
    return v != NULL;
}

/* periodic.txt: its "<start> <end>" lines, in file order; the count. */
static int read_ticks(const char *path, int64_t (*iv)[2], int max)
{
    FILE *f = fopen(path, "r");
    long long s, e;
    int n = 0;

    if (!f) return 0;
    while (n < max && fscanf(f, "%lld %lld\n", &s, &e) == 2) {
        iv[n][0] = s;
        iv[n][1] = e;
        n++;
    }
    fclose(f);
    return n;
}

static int cmp_start(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/*
 * Issue #3: two `stellar run` processes with their schedulers on one
 * backend, a periodic task (leaderTick: every 1000 ms, runs 200 ms) and N
 * delayed faultJobs due over the next ~15 s. The leader (the pid in the
 * lock) is SIGKILLed and not restarted, between two runs of the periodic
 * task and between two delayed jobs' due times (in-flight jobs are the
 * kill tests' business). The task never runs twice at once, resumes within
 * the lock's TTL + 2 periods, keeps its period under the new leader, and
 * every delayed job runs exactly once.
 */
void killing_the_scheduler_leader_keeps_periodic_and_delayed_jobs(
    struct test_ctx *t)
{
    enum { N = 30, MAXT = 256, FREQ = 1000, RUN = 200, TTL = 10000 };
    char *runs = st_strdup(test_path(t, "runs.txt")), *app = copy_app(t);
    char *ticks = st_asprintf("%s/periodic.txt", app), *dst, *cfg;
    static int64_t iv[MAXT][2];
    stellar *h = open_handle(t, NULL, -1, false);
    stellar_error e = {0};
    st_backend *b = NULL;
    int64_t base, kill_ms, gap = 0, lo, hi;
    pid_t a, c, leader, survivor;
    int i, n, before, after_first = -1;
    FILE *f;

    /* The copy gets the periodic task and runs its scheduler. */
    dst = st_asprintf("%s/modules/faults/tasks/leaderTick.c", app);
    {
        char *src = st_asprintf("%s/periodic/leaderTick.c", app);
        const char *argv[] = {"/bin/cp", src, dst, NULL};
        int st = wait_exit(spawn(argv, NULL, test_path(t, "cp.log")), 10000);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            FAIL("cp %s %s failed", src, dst);
        st_free(src);
    }
    cfg = st_asprintf("%s/stellar.json", app);
    if (!(f = fopen(cfg, "w"))) FAIL("%s: %s", cfg, strerror(errno));
    fprintf(f,
            "{\"tasks\": {\"queues\": [\"*\"], \"maxTaskProcessors\": 2, "
            "\"scheduler\": true, \"timeout\": 50, "
            "\"stuckWorkerTimeout\": %d, \"shutdownTimeout\": 30000}}\n",
            STUCK_MS);
    fclose(f);

    ASSERT_OK(st_backend_open(&b, t->url, NULL, &e), &e);
    {
        /* Each of `stellar run`'s own flags; scheduler on (stellar.json). */
        const char *av[] = {program("STELLAR_BIN"), "run", "--backend", t->url,
                            "--processors",         "2",   NULL};
        a = spawn(av, app, test_path(t, "a.log"));
        c = spawn(av, app, test_path(t, "c.log"));
    }
    /* Both up (two workers each), a leader elected, the task running. */
    ASSERT_WAIT((assert_alive(a, "process a"), assert_alive(c, "process c"),
                 workers_of(h, a, NULL) == 2 && workers_of(h, c, NULL) == 2 &&
                     test_count_lines(ticks) >= 2),
                60000);
    leader = leader_pid(b);
    if (leader != a && leader != c)
        FAIL("leader lock names pid %ld, neither process (%ld, %ld)",
             (long)leader, (long)a, (long)c);
    survivor = leader == a ? c : a;

    /* N delayed jobs, one every 500 ms from base + 1 s. */
    base = test_mono_ms();
    for (i = 0; i < N; i++) {
        char *p = st_asprintf("{\"id\":%d,\"ms\":0,\"path\":\"%s\"}", i, runs);
        ASSERT_OK(stellar_enqueue_in(h, 1000 + (int64_t)i * 500, "faultJob", p,
                                     "default", &e),
                  &e);
        st_free(p);
    }

    /* Kill after ~2 s, right after a periodic run ended (the next starts a
     * period later), at 200-400 ms past a job's due time. */
    ASSERT_WAIT(test_mono_ms() - base >= 2000, 5000);
    before = test_count_lines(ticks);
    ASSERT_WAIT(test_count_lines(ticks) > before, 10000);
    ASSERT_WAIT(!tick_locked(b), 5000);
    while ((test_mono_ms() - base) % 500 < 200)
        test_sleep_ms(5);
    ASSERT_EQ(leader_pid(b), leader);
    kill(leader, SIGKILL);
    kill_ms = test_mono_ms();
    if (wait_exit(leader, 5000) == -1) FAIL("leader did not die");
    before = test_count_lines(ticks);
    test_note("killed leader pid %ld at +%lld ms (%d periodic runs so far)",
              (long)leader, (long long)(kill_ms - base), before);

    /* The survivor takes the lock within the TTL; the task resumes; every
     * job runs; then 5 more periodic runs under the new leader. */
    ASSERT_WAIT((assert_alive(survivor, "survivor"), leader_pid(b) == survivor),
                TTL + 3000);
    test_note("survivor %ld leads at +%lld ms after the kill", (long)survivor,
              (long long)(test_mono_ms() - kill_ms));
    ASSERT_WAIT(test_count_lines(runs) >= N, 1000 + N * 500 + TTL + 5000);
    ASSERT_WAIT(test_count_lines(ticks) >= before + 6, 2 * TTL);
    assert_alive(survivor, "survivor");

    /* Never twice at once. */
    n = read_ticks(ticks, iv, MAXT);
    qsort(iv, (size_t)n, sizeof iv[0], cmp_start);
    for (i = 1; i < n; i++)
        if (iv[i][0] < iv[i - 1][1])
            FAIL("periodic runs overlap: [%lld, %lld] and [%lld, %lld]",
                 (long long)iv[i - 1][0], (long long)iv[i - 1][1],
                 (long long)iv[i][0], (long long)iv[i][1]);
    /* The gap around the kill: the last start before it to the first
     * start after it. */
    for (i = 1; i < n; i++)
        if (iv[i][0] > kill_ms && iv[i - 1][0] <= kill_ms) {
            gap = iv[i][0] - iv[i - 1][0];
            after_first = i;
        }
    if (after_first < 0) FAIL("no periodic run after the kill");
    test_note("periodic gap across the kill: %lld ms (start to start), "
              "first run %lld ms after the kill",
              (long long)gap, (long long)(iv[after_first][0] - kill_ms));
    if (gap > TTL + 2 * (FREQ + RUN) + 1000)
        FAIL("periodic task paused %lld ms across the leader's death; "
             "allowed %d",
             (long long)gap, TTL + 2 * (FREQ + RUN) + 1000);
    /* Its rhythm under the new leader: each start one frequency after the
     * previous end (Redis stores due times in seconds: 500 ms early). */
    lo = is_redis(t) ? FREQ - 500 : FREQ - 20;
    hi = FREQ + 1000;
    for (i = after_first + 1; i < n; i++) {
        int64_t d = iv[i][0] - iv[i - 1][1];
        if (d < lo || d > hi)
            FAIL("after takeover, run %d started %lld ms after run %d "
                 "ended; frequency %d, allowed [%lld, %lld]",
                 i, (long long)d, i - 1, FREQ, (long long)lo, (long long)hi);
    }
    test_note("%d periodic runs, %d after the kill", n, n - after_first);

    /* Every delayed job exactly once; a last look for late duplicates. */
    test_sleep_ms(500);
    assert_runs(runs, N, 1);

    assert_exit_0(stop_process(survivor, 30000), "survivor after SIGTERM");
    st_backend_close(b);
    stellar_close(h);
    st_free(cfg);
    st_free(dst);
    st_free(ticks);
    st_free(app);
    st_free(runs);
}
