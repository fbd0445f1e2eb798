/*
 * redis.c: Redis outages mid-run: the server paused (SIGSTOP), stopped and
 * restarted, killed and restarted, frozen for longer than the stuck-worker
 * timeout, and frozen while `stellar run` stops: no job is lost or run
 * twice, no live worker is taken for a dead one, and a second SIGTERM
 * still exits. Redis only; on SQLite the tests skip.
 */
#include "faults.h"

/* ---------------------------------------------------- Redis outages --- */

enum outage { PAUSED, RESTARTED, CRASHED };

#ifdef STELLAR_HAVE_REDIS
/* Number of lines of a file containing needle (the Redis outage tests). */
static int count_matching(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;

    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}
#endif

#ifdef STELLAR_HAVE_REDIS
/* A redis-server of the test's own on <dir>/<sub>/redis.sock with an
 * append-only file fsynced at every write, so a restart keeps the data. */
static pid_t start_own_redis(struct test_ctx *t, const char *sub)
{
    char dir[600], sock[700], log[700];
    const char *argv[] = {"redis-server",
                          "--port",
                          "0",
                          "--unixsocket",
                          sock,
                          "--save",
                          "",
                          "--appendonly",
                          "yes",
                          "--appendfsync",
                          "always",
                          "--dir",
                          dir,
                          "--logfile",
                          log,
                          NULL};
    char bin[600] = "";
    const char *path = getenv("PATH");
    redisContext *c = NULL;
    int64_t deadline;
    pid_t pid;

    while (path && *path && !bin[0]) {
        size_t len = strcspn(path, ":");
        snprintf(bin, sizeof bin, "%.*s/redis-server", (int)len, path);
        if (access(bin, X_OK) != 0) bin[0] = '\0';
        path += len + (path[len] == ':');
    }
    if (!bin[0]) SKIP("redis-server is not on PATH");
    argv[0] = bin;
    snprintf(dir, sizeof dir, "%s/%s", t->dir, sub);
    snprintf(sock, sizeof sock, "%s/redis.sock", dir);
    snprintf(log, sizeof log, "%s/redis.log", dir);
    mkdir(dir, 0755);
    pid = spawn(argv, dir, test_path(t, "redis-out.log"));
    deadline = test_mono_ms() + 10000;
    for (;;) {
        redisReply *r = NULL;
        bool ready;
        c = redisConnectUnix(sock);
        /* Up, and done loading the append-only file. */
        if (c && !c->err) r = redisCommand(c, "PING");
        ready = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (ready) break;
        redisFree(c);
        assert_alive(pid, "redis-server");
        if (test_mono_ms() > deadline) FAIL("redis-server did not start");
        test_sleep_ms(10);
    }
    redisFree(c);
    return pid;
}

/* The pid of the harness's redis-server for this test. */
static pid_t redis_pid(struct test_ctx *t)
{
    char sock[600];
    redisContext *c;
    redisReply *r;
    long pid = 0;

    snprintf(sock, sizeof sock, "%s/redis.sock", t->dir);
    c = redisConnectUnix(sock);
    ASSERT_TRUE(c && !c->err);
    r = redisCommand(c, "INFO server");
    ASSERT_TRUE(r && r->type == REDIS_REPLY_STRING);
    sscanf(strstr(r->str, "process_id:") + 11, "%ld", &pid);
    freeReplyObject(r);
    redisFree(c);
    ASSERT_TRUE(pid > 0);
    return (pid_t)pid;
}

/* Per-worker processed counters, for "every processor still works". */
static json_t *per_worker_processed(stellar *h)
{
    stellar_error e = {0};
    json_t *stats = NULL, *out = json_object(), *v;
    const char *key;

    ASSERT_OK(stellar_stats(h, &stats, &e), &e);
    json_object_foreach(stats, key, v)
    {
        if (strncmp(key, "processed:", 10) == 0)
            json_object_set(out, key + 10, v);
    }
    json_decref(stats);
    return out;
}

/* How many workers pinged after since_ms (wall clock). */
static int fresh_pings(stellar *h, int64_t since_ms)
{
    stellar_error e = {0};
    json_t *all = NULL, *w;
    const char *name;
    int n = 0;

    ASSERT_OK(stellar_workers(h, &all, &e), &e);
    json_object_foreach(all, name, w)
    {
        (void)name;
        n += json_integer_value(json_object_get(w, "ping")) > since_ms;
    }
    json_decref(all);
    return n;
}
#endif

/*
 * Redis goes away for 5 s mid-run: PAUSED (SIGSTOP/SIGCONT: the server
 * hangs, connections stay), RESTARTED (SIGTERM, then a new server on the
 * same socket over the same append-only file), CRASHED (SIGKILL, then the
 * same). The run completes with every job acked once (stat processed) and
 * run once (the runs file), nothing failed, every processor still working.
 */
static void redis_outage(struct test_ctx *t, enum outage how)
{
#ifdef STELLAR_HAVE_REDIS
    int n = long_mode() ? 5000 : 1000;
    char url[700], *runs = st_strdup(test_path(t, "runs.txt"));
    pid_t server;
    stellar *h;
    stellar_error e = {0};
    json_t *before, *after, *v;
    const char *name;
    int64_t t_back, deadline;
    int alive = 0;

    if (!is_redis(t)) SKIP("Redis only");
    if (how == PAUSED) {
        server = redis_pid(t);
        snprintf(url, sizeof url, "%s", t->url);
    } else {
        server = start_own_redis(t, "r");
        snprintf(url, sizeof url, "redis+unix://%s/r/redis.sock", t->dir);
    }
    h = open_handle(t, url, PROCS, false);
    ASSERT_OK(stellar_task_register_builtin(h, &e), &e);
    enqueue_jobs(h, 0, n, 5, 20, runs, false);
    ASSERT_OK(stellar_start(h, &e), &e);
    ASSERT_WAIT(test_stat(h, "processed") >= n / 3, 60000);
    before = per_worker_processed(h);
    if (how == PAUSED) {
        kill(server, SIGSTOP);
        test_sleep_ms(5000); /* the outage itself */
        kill(server, SIGCONT);
    } else {
        kill(server, how == RESTARTED ? SIGTERM : SIGKILL);
        if (wait_exit(server, 10000) == -1) FAIL("redis-server did not stop");
        test_sleep_ms(5000); /* the outage itself */
        server = start_own_redis(t, "r");
    }
    t_back = test_now_ms();
    deadline = test_mono_ms() + 120000;
    while (stat_try(h, "processed") + stat_try(h, "failed") < n) {
        if (test_mono_ms() > deadline)
            FAIL("after the outage: processed %lld of %d, %lld waiting",
                 (long long)test_stat(h, "processed"), n,
                 (long long)test_length(h, "default"));
        test_sleep_ms(20);
    }
    /* Heartbeats resumed for every processor. */
    ASSERT_WAIT(fresh_pings(h, t_back) == PROCS, 5000);
    /* The scheduler backs off too, and says so once, not every tick. */
    if (how != PAUSED) {
        int lines =
            count_matching(test_path(t, "stellar.log"), "scheduler: election");
        test_note("scheduler election warnings during the outage: %d", lines);
        ASSERT_TRUE(lines <= 3);
    }
    after = per_worker_processed(h);
    json_object_foreach(after, name, v)
    {
        alive += json_integer_value(v) >
                 json_integer_value(json_object_get(before, name));
    }
    stellar_stop(h, -1);
    test_note("%d jobs, Redis %s for 5 s: processed %lld, failed %lld, "
              "%d of %d processors worked after it",
              n,
              how == PAUSED      ? "paused (SIGSTOP)"
              : how == RESTARTED ? "stopped (SIGTERM) and restarted"
                                 : "killed (SIGKILL) and restarted",
              (long long)test_stat(h, "processed"),
              (long long)test_stat(h, "failed"), alive, PROCS);
    if (test_failed_count(h)) note_failed(h);
    ASSERT_EQ(test_failed_count(h), 0);
    assert_runs(runs, n, 1);
    ASSERT_EQ(test_stat(h, "processed"), n);
    ASSERT_EQ(alive, PROCS);
    json_decref(before);
    json_decref(after);
    stellar_close(h);
    st_free(runs);
    if (how != PAUSED) {
        kill(server, SIGTERM);
        wait_exit(server, 10000);
    }
#else
    (void)how;
    SKIP("libstellar was built without hiredis (t: %s)", t->name);
#endif
}

void redis_paused_for_5s_loses_and_repeats_nothing(struct test_ctx *t)
{
    redis_outage(t, PAUSED);
}

/*
 * Redis frozen (SIGSTOP) for longer than stuckWorkerTimeout while two jobs
 * run: one on a processor of this process (which is also the scheduler
 * leader), one in a worker process. Pings sent during the freeze land
 * after it, stamped with the time they were sent, so every worker looks
 * long dead when Redis is back. Neither may be cleaned: the leader never
 * judges its own live workers, and judges others only once Redis has
 * answered it for longer than the timeout. Their records and counters
 * stay, each job runs and is acked once, and the log says nothing of dead
 * workers.
 */
void redis_frozen_longer_than_stuck_timeout_cleans_no_live_worker(
    struct test_ctx *t)
{
#ifdef STELLAR_HAVE_REDIS
    char *runs = st_strdup(test_path(t, "runs.txt"));
    stellar_error e = {0};
    json_t *before = NULL, *stats_before, *after = NULL, *stats_after, *w;
    const char *name;
    pid_t server, worker;
    stellar *h;
    int busy = 0;

    if (!is_redis(t))
        SKIP("Redis only: SIGSTOP freezes the Redis server; SQLite has no "
             "server to freeze");
    server = redis_pid(t);
    h = open_handle(t, NULL, 1, false); /* 1 processor and the scheduler */
    ASSERT_OK(stellar_task_register_builtin(h, &e), &e);
    ASSERT_OK(stellar_start(h, &e), &e);
    worker = start_worker(t, 1, true, "w");
    ASSERT_WAIT(workers_of(h, worker, NULL) == 1, 60000);
    ASSERT_WAIT(workers_of(h, getpid(), NULL) == 1, 10000);
    /* Counters for both workers (which takes which job is chance). */
    enqueue_jobs(h, 0, 8, 50, 0, runs, false);
    ASSERT_WAIT(test_stat(h, "processed") == 8, 30000);
    enqueue_jobs(h, 8, 2, 3 * STUCK_MS, 0, runs, false);
    ASSERT_WAIT(workers_of(h, 0, &busy) == 2 && busy == 2, 10000);
    ASSERT_OK(stellar_workers(h, &before, &e), &e);
    stats_before = per_worker_processed(h);

    kill(server, SIGSTOP);
    test_sleep_ms(STUCK_MS + 4000); /* longer than stuckWorkerTimeout */
    kill(server, SIGCONT);

    ASSERT_WAIT(stat_try(h, "processed") == 10, 60000);
    test_sleep_ms(2 * STUCK_MS); /* time enough for a wrong judgement */
    ASSERT_EQ(count_matching(test_path(t, "stellar.log"), "cleaned dead"), 0);
    ASSERT_EQ(test_stat(h, "processed"), 10);
    ASSERT_EQ(test_failed_count(h), 0);
    assert_runs(runs, 10, 1);
    ASSERT_OK(stellar_workers(h, &after, &e), &e);
    stats_after = per_worker_processed(h);
    json_object_foreach(before, name, w)
    {
        json_t *now = json_object_get(after, name);
        if (!now) FAIL("worker %s was removed", name);
        ASSERT_EQ(json_integer_value(json_object_get(w, "started")),
                  json_integer_value(json_object_get(now, "started")));
        if (json_object_get(stats_before, name))
            ASSERT_TRUE(
                json_integer_value(json_object_get(stats_after, name)) >=
                json_integer_value(json_object_get(stats_before, name)));
    }
    json_decref(before);
    json_decref(after);
    json_decref(stats_before);
    json_decref(stats_after);
    assert_exit_0(stop_process(worker, 30000), "fault_worker");
    stellar_stop(h, -1);
    stellar_close(h);
    st_free(runs);
#else
    SKIP("libstellar was built without hiredis (t: %s)", t->name);
#endif
}

/* With Redis frozen, a stop of `stellar run` waits on it (acks, putting
 * jobs back, unregistering: up to 30 s a call); a second SIGTERM makes it
 * exit within seconds, saying why. */
void second_sigterm_exits_promptly_while_redis_is_frozen(struct test_ctx *t)
{
#ifdef STELLAR_HAVE_REDIS
    char *app, *runs = st_strdup(test_path(t, "runs.txt"));
    stellar *h;
    pid_t server, run;
    int busy = 0, status;
    int64_t t0, ms;

    if (!is_redis(t)) SKIP("Redis only: SIGSTOP freezes the Redis server");
    app = copy_app(t);
    server = redis_pid(t);
    h = open_handle(t, NULL, -1, false);
    run = start_run(t, app, 2, "run");
    ASSERT_WAIT(workers_of(h, run, NULL) == 2, 60000);
    enqueue_jobs(h, 0, 2, 60000, 0, runs, false);
    ASSERT_WAIT(workers_of(h, run, &busy) == 2 && busy == 2, 10000);
    kill(server, SIGSTOP);
    kill(run, SIGTERM);
    ASSERT_WAIT(file_contains(test_path(t, "run.log"), "stopping"), 5000);
    t0 = test_mono_ms();
    kill(run, SIGTERM);
    status = wait_exit(run, 20000);
    ms = test_mono_ms() - t0;
    kill(server, SIGCONT);
    if (status == -1)
        FAIL("stellar run still running 20 s after a second "
             "SIGTERM with Redis frozen");
    test_note("exited %lld ms after the second SIGTERM", (long long)ms);
    ASSERT_TRUE(ms < 15000);
    ASSERT_TRUE(file_contains(test_path(t, "run.log"), "exiting without"));
    stellar_close(h);
    st_free(runs);
    st_free(app);
#else
    SKIP("libstellar was built without hiredis (t: %s)", t->name);
#endif
}

void redis_restarted_after_5s_loses_and_repeats_nothing(struct test_ctx *t)
{
    redis_outage(t, RESTARTED);
}

void redis_killed_and_restarted_loses_and_repeats_nothing(struct test_ctx *t)
{
    redis_outage(t, CRASHED);
}
