/*
 * plugins.c: the proofs of issue #5, Resque plugins, run once per backend
 * (plugins.sqlite, plugins.redis) with the same expectations.
 *
 * - Periodic tasks on three processes: a 1000 ms task runs 5 to 7 times in
 *   6 s, never twice at once, never stored twice.
 * - jobLock: 50 enqueues of one slow job on 4 processors in 2 processes run
 *   one at a time, and all 50 run (the blocked copies go through the delayed
 *   set and the scheduler).
 * - retry: backoffStrategy spacing and counters; retryLimit ends in failed.
 * - A jobLock left by a process killed with SIGKILL expires; the job comes
 *   back through dead-worker recovery and runs.
 * - queueLock, delayQueueLock, noop; a plugin of the app's own (vetoes,
 *   afterPerform clearing an error, hook order, enqueueAt/enqueueIn);
 *   pluginOptions keys in both spellings; an unknown plugin name.
 * - The keys and values the reference (§6) defines, read back raw: through
 *   backend.h on both backends and, on Redis, with hiredis under the
 *   "resque:" namespace (GET and PTTL), as node-resque would see them.
 *
 * Runs are recorded by the tasks in files opened O_APPEND (one write(2) per
 * line), so runs in several processes land in one log; every wait polls a
 * condition with a deadline.
 *
 * Timing on Redis: delayed jobs are kept by the second (node-resque stores
 * round(ms / 1000)), so a delay of d ms becomes d - 500 .. d + 500 ms there,
 * and one payload can be delayed at most once per second: 49 identical
 * blocked copies of a jobLock job drain at one a second.
 */
#include "fixture.h"
#include "harness.h"

#include "backend.h"
#include "internal.h"
#include "stellar.h"

#ifdef STELLAR_HAVE_REDIS
#include <hiredis/hiredis.h>
#endif

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SPANS 512

/* The test's directory, for tasks that take no params (periodic ones).
 * Set before any fork, so child processes have it too. */
static char g_dir[512];

/* "<g_dir>/<name>" into buf. */
static const char *dir_file(char *buf, size_t n, const char *name)
{
    if ((size_t)snprintf(buf, n, "%s/%s", g_dir, name) >= n)
        FAIL("path too long: %s/%s", g_dir, name);
    return buf;
}

/* Waits for <g_dir>/<name> (a gate the test opens), at most 30 s. */
static void wait_gate(stellar_api *api, const char *name)
{
    char path[600];
    int64_t deadline = test_mono_ms() + 30000;
    dir_file(path, sizeof path, name);
    while (!file_exists(path) && test_mono_ms() < deadline &&
           !stellar_should_stop(api))
        test_sleep_ms(5);
}

static void open_gate(const char *name)
{
    char path[600];
    test_append_line(dir_file(path, sizeof path, name), "open");
}

/* ------------------------------------------------------------ Spans --- */

/* One run as a task logged it: "<start_ms> <end_ms> <pid>". */
struct span {
    long long start, end;
    long pid;
};

static void log_span(const char *path, int64_t start)
{
    char line[96];
    snprintf(line, sizeof line, "%lld %lld %ld", (long long)start,
             (long long)test_now_ms(), (long)getpid());
    test_append_line(path, line);
}

static int by_start(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Reads the spans of path, sorted by start. */
static int read_spans(const char *path, struct span *out, int max)
{
    FILE *f = fopen(path, "r");
    int n = 0;
    if (!f) return 0;
    while (n < max && fscanf(f, "%lld %lld %ld", &out[n].start, &out[n].end,
                             &out[n].pid) == 3)
        n++;
    fclose(f);
    qsort(out, (size_t)n, sizeof *out, by_start);
    return n;
}

/* Fails if two runs overlap in time. */
static void assert_one_at_a_time(const struct span *s, int n)
{
    for (int i = 1; i < n; i++)
        if (s[i].start < s[i - 1].end)
            FAIL("two runs at once: [%lld, %lld] (pid %ld) and [%lld, %lld] "
                 "(pid %ld)",
                 s[i - 1].start, s[i - 1].end, s[i - 1].pid, s[i].start,
                 s[i].end, s[i].pid);
}

/* ------------------------------------------------------------ Tasks --- */

#define TICK_RUN_MS 50

/* Periodic, 1000 ms; runs TICK_RUN_MS and logs its span to <dir>/ticks. */
static int tick_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    int64_t start = test_now_ms();
    char path[600];
    (void)api;
    (void)params;
    (void)next;
    test_sleep_ms(TICK_RUN_MS);
    log_span(dir_file(path, sizeof path, "ticks"), start);
    return STELLAR_OK;
}

/* Sleeps params.ms and logs its span to params.path. */
static int slow_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    int64_t start = test_now_ms();
    (void)api;
    (void)next;
    test_sleep_ms(json_integer_value(json_object_get(params, "ms")));
    log_span(json_string_value(json_object_get(params, "path")), start);
    return STELLAR_OK;
}

/* Fails while params.path holds fewer than params.failures lines; every
 * attempt appends its span there. */
static int flaky_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    int64_t start = test_now_ms();
    const char *path = json_string_value(json_object_get(params, "path"));
    int before = test_count_lines(path);
    (void)api;
    log_span(path, start);
    if (before < json_integer_value(json_object_get(params, "failures")))
        return stellar_fail(next, "flaky failure %d", before + 1);
    return STELLAR_OK;
}

static int doomed_runs; /* atomic */

static int doomed_run(stellar_api *api, const json_t *params,
                      stellar_next *next)
{
    (void)api;
    (void)params;
    __atomic_add_fetch(&doomed_runs, 1, __ATOMIC_SEQ_CST);
    return stellar_fail(next, "doomed attempt");
}

/* Appends "S <ms> <pid>" to <dir>/hang; the first run ever then hangs (its
 * process is killed), later ones append "E <ms> <pid>" and return. */
static int hang_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    char path[600], line[96];
    int64_t deadline = test_mono_ms() + 60000;
    (void)params;
    (void)next;
    dir_file(path, sizeof path, "hang");
    snprintf(line, sizeof line, "S %lld %ld", (long long)test_now_ms(),
             (long)getpid());
    test_append_line(path, line);
    if (test_count_lines(path) == 1)
        while (test_mono_ms() < deadline && !stellar_should_stop(api))
            test_sleep_ms(20);
    snprintf(line, sizeof line, "E %lld %ld", (long long)test_now_ms(),
             (long)getpid());
    test_append_line(path, line);
    return STELLAR_OK;
}

static int gated_started, gated_ended; /* atomic */

/* Counts its start, waits for the gate named "go-<task>", counts its end. */
static int gated_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    char gate[160];
    (void)params;
    (void)next;
    __atomic_add_fetch(&gated_started, 1, __ATOMIC_SEQ_CST);
    snprintf(gate, sizeof gate, "go-%s", stellar_api_task(api));
    wait_gate(api, gate);
    __atomic_add_fetch(&gated_ended, 1, __ATOMIC_SEQ_CST);
    return STELLAR_OK;
}

static int plain_runs; /* atomic */

static int plain_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api;
    (void)params;
    (void)next;
    __atomic_add_fetch(&plain_runs, 1, __ATOMIC_SEQ_CST);
    return STELLAR_OK;
}

/* Fails with params.why. */
static int failing_run(stellar_api *api, const json_t *params,
                       stellar_next *next)
{
    const char *why = json_string_value(json_object_get(params, "why"));
    (void)api;
    __atomic_add_fetch(&plain_runs, 1, __ATOMIC_SEQ_CST);
    return stellar_fail(next, "%s", why ? why : "failed");
}

static int gated(void)
{
    return __atomic_load_n(&gated_started, __ATOMIC_SEQ_CST);
}
static int gated_done(void)
{
    return __atomic_load_n(&gated_ended, __ATOMIC_SEQ_CST);
}
static int plain(void)
{
    return __atomic_load_n(&plain_runs, __ATOMIC_SEQ_CST);
}

static const stellar_task task_tick = {.name = "tick",
                                       .description = "periodic, 1000 ms",
                                       .frequency = 1000,
                                       .run = tick_run};
static const stellar_task task_flaky = {
    .name = "flaky",
    .description = "fails params.failures times, then succeeds",
    .plugins = (const char *const[]){"retry", NULL},
    .plugin_options =
        "{\"retry\":{\"retryLimit\":4,\"backoffStrategy\":[100,200,400]}}",
    .run = flaky_run};
static const stellar_task task_doomed = {
    .name = "doomed",
    .description = "always fails, two attempts",
    .plugins = (const char *const[]){"retry", NULL},
    .plugin_options = "{\"retry\":{\"retryLimit\":2,\"retryDelay\":100}}",
    .run = doomed_run};
static const stellar_task task_retried = {
    .name = "retried",
    .description = "always fails, retried a minute later",
    .plugins = (const char *const[]){"retry", NULL},
    .plugin_options = "{\"Retry\":{\"retryLimit\":3,\"retryDelay\":60000}}",
    .run = failing_run};
static const stellar_task task_hang = {
    .name = "hang",
    .description = "hangs the first time (killed), then returns",
    .plugins = (const char *const[]){"jobLock", NULL},
    .plugin_options = "{\"jobLock\":{\"lockTimeout\":5}}",
    .run = hang_run};
static const stellar_task task_held = {
    .name = "held",
    .description = "jobLock with a 2 s lockTimeout; waits for its gate",
    .plugins = (const char *const[]){"jobLock", NULL},
    .plugin_options = "{\"jobLock\":{\"lockTimeout\":2}}",
    .run = gated_run};
static const stellar_task task_qlocked = {
    .name = "qlocked",
    .description = "queueLock; waits for its gate",
    .plugins = (const char *const[]){"queueLock", NULL},
    .run = gated_run};
static const stellar_task task_dlocked = {
    .name = "dlocked",
    .description = "delayQueueLock",
    .plugins = (const char *const[]){"delayQueueLock", NULL},
    .run = plain_run};
static const stellar_task task_quiet = {.name = "quiet",
                                        .description = "noop; always fails",
                                        .plugins =
                                            (const char *const[]){"noop", NULL},
                                        .run = failing_run};
static const stellar_task task_lock_a = {
    .name = "lockA",
    .description = "jobLock, options keyed JobLock",
    .plugins = (const char *const[]){"jobLock", NULL},
    .plugin_options = "{\"JobLock\":{\"lockTimeout\":77}}",
    .run = gated_run};
static const stellar_task task_lock_b = {
    .name = "lockB",
    .description = "jobLock, options keyed jobLock",
    .plugins = (const char *const[]){"jobLock", NULL},
    .plugin_options = "{\"jobLock\":{\"lockTimeout\":88}}",
    .run = gated_run};

/* ---------------------------------------------------------- Helpers --- */

/* stellar_enqueue, expecting rc (STELLAR_OK or STELLAR_VETOED). */
static void enqueue_expect(stellar *h, int want, const char *task,
                           const char *params)
{
    stellar_error e = {0};
    int rc = stellar_enqueue(h, task, params, NULL, &e);
    if (rc != want)
        FAIL("enqueue %s %s: got %d (%s), want %d", task,
             params ? params : "{}", rc, rc < 0 ? e.msg : "", want);
}

static void enqueue_in_expect(stellar *h, int want, int64_t ms,
                              const char *task, const char *params)
{
    stellar_error e = {0};
    int rc = stellar_enqueue_in(h, ms, task, params, NULL, &e);
    if (rc != want)
        FAIL("enqueueIn %lld %s: got %d (%s), want %d", (long long)ms, task, rc,
             rc < 0 ? e.msg : "", want);
}

static void enqueue_at_expect(stellar *h, int want, int64_t at,
                              const char *task, const char *params)
{
    stellar_error e = {0};
    int rc = stellar_enqueue_at(h, at, task, params, NULL, &e);
    if (rc != want)
        FAIL("enqueueAt %lld %s: got %d (%s), want %d", (long long)at, task, rc,
             rc < 0 ? e.msg : "", want);
}

/* The sum of the per-worker counters "<kind>:<worker>". */
static int64_t worker_stats_sum(stellar *h, const char *kind)
{
    stellar_error e = {0};
    json_t *s = NULL, *v;
    const char *k;
    size_t n = strlen(kind);
    int64_t sum = 0;
    ASSERT_OK(stellar_stats(h, &s, &e), &e);
    json_object_foreach(s, k, v)
    {
        if (strncmp(k, kind, n) == 0 && k[n] == ':')
            sum += json_integer_value(v);
    }
    json_decref(s);
    return sum;
}

static size_t timestamps(stellar *h)
{
    stellar_error e = {0};
    json_t *ts = NULL;
    size_t n;
    ASSERT_OK(stellar_timestamps(h, &ts, &e), &e);
    n = json_array_size(ts);
    json_decref(ts);
    return n;
}

/* How many delayed copies of task+params there are. */
static size_t scheduled(stellar *h, const char *task, const char *params)
{
    stellar_error e = {0};
    json_t *ts = NULL;
    size_t n;
    ASSERT_OK(stellar_scheduled_at(h, NULL, task, params, &ts, &e), &e);
    n = json_array_size(ts);
    json_decref(ts);
    return n;
}

/* True when no worker of h's backend is working on anything. */
static bool workers_idle(stellar *h)
{
    stellar_error e = {0};
    json_t *w = NULL, *v;
    const char *name;
    bool idle = true;
    ASSERT_OK(stellar_workers(h, &w, &e), &e);
    json_object_foreach(w, name, v)
    {
        if (!json_is_null(json_object_get(v, "working_on"))) idle = false;
    }
    json_decref(w);
    return idle;
}

static size_t locks_count(stellar *h)
{
    stellar_error e = {0};
    json_t *l = NULL;
    size_t n;
    ASSERT_OK(stellar_locks(h, &l, &e), &e);
    n = json_object_size(l);
    json_decref(l);
    return n;
}

/* --------------------------------------------------- Raw keys (§6) --- */

#ifdef STELLAR_HAVE_REDIS
/* GET and PTTL of "resque:<key>" straight from the private redis-server. */
static char *redis_raw(const struct test_ctx *t, const char *key, int64_t *pttl)
{
    char sock[600];
    redisContext *c;
    redisReply *r;
    char *v = NULL;

    snprintf(sock, sizeof sock, "%s/redis.sock", t->dir);
    c = redisConnectUnix(sock);
    if (!c || c->err) FAIL("connect to %s: %s", sock, c ? c->errstr : "oom");
    r = redisCommand(c, "GET resque:%s", key);
    if (r && r->type == REDIS_REPLY_STRING) v = strdup(r->str);
    freeReplyObject(r);
    r = redisCommand(c, "PTTL resque:%s", key);
    *pttl = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
    freeReplyObject(r);
    redisFree(c);
    return v;
}
#endif

/*
 * The value of kv key (malloc'd, NULL if absent) and the ms left before it
 * expires (-1: no expiry), through backend.h. On Redis the same key is also
 * read raw, under node-resque's namespace, and must agree.
 */
static char *kv_read(const struct test_ctx *t, const char *key, int64_t *ttl_ms)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *all = NULL, *ent, *exp;
    char *v = NULL;

    ASSERT_OK(b->ops->kv_scan(b, key, &all, &e), &e);
    ent = json_object_get(all, key);
    exp = json_object_get(ent, "expires");
    *ttl_ms = -1;
    if (ent) {
        v = strdup(json_string_value(json_object_get(ent, "value")));
        if (json_is_integer(exp))
            *ttl_ms = json_integer_value(exp) - test_now_ms();
    }
    json_decref(all);
    st_backend_close(b);
#ifdef STELLAR_HAVE_REDIS
    if (is_redis(t)) {
        int64_t pttl;
        char *raw = redis_raw(t, key, &pttl);
        if ((raw == NULL) != (v == NULL) || (raw && strcmp(raw, v) != 0))
            FAIL("resque:%s holds %s, backend.h read %s", key,
                 raw ? raw : "(nothing)", v ? v : "(nothing)");
        if (raw) *ttl_ms = pttl;
        free(raw);
    }
#endif
    return v;
}

/* A lock as node-resque writes it: value now_s + timeout + 1, a TTL of
 * timeout seconds. */
static void assert_lock_key(const struct test_ctx *t, const char *key,
                            int64_t timeout_s)
{
    int64_t ttl, now_s = test_now_ms() / 1000, val;
    char *v = kv_read(t, key, &ttl);

    if (!v) FAIL("no lock %s", key);
    val = strtoll(v, NULL, 10);
    test_note("%s = %s, ttl %lld ms", key, v, (long long)ttl);
    if (val < now_s + timeout_s || val > now_s + timeout_s + 2)
        FAIL("%s = %s, want now_s + %lld + 1 = %lld", key, v,
             (long long)timeout_s, (long long)(now_s + timeout_s + 1));
    if (ttl <= (timeout_s - 5) * 1000 || ttl > timeout_s * 1000)
        FAIL("%s expires in %lld ms, want about %lld s", key, (long long)ttl,
             (long long)timeout_s);
    free(v);
}

static bool kv_absent(const struct test_ctx *t, const char *key)
{
    int64_t ttl;
    char *v = kv_read(t, key, &ttl);
    free(v);
    return v == NULL;
}

/* ------------------------------------------------ Other processes --- */

struct server_cfg {
    int processors;
    bool no_scheduler;
    const stellar_task *tasks[4];
};

/* A child process: a handle with processors (and a scheduler unless told
 * not to) until <dir>/stop exists. Announces itself in <dir>/ready. */
_Noreturn static void serve_until_told(const struct test_ctx *t,
                                       const struct server_cfg *c)
{
    stellar_options o = {.processors = c->processors,
                         .no_scheduler = c->no_scheduler};
    stellar *h = open_h(t, &o);
    int64_t deadline = test_mono_ms() + 170000;
    char stop[600];

    for (int i = 0; i < 4 && c->tasks[i]; i++)
        reg(h, c->tasks[i]);
    start(h);
    test_append_line(test_path(t, "ready"), "ready");
    dir_file(stop, sizeof stop, "stop");
    while (!file_exists(stop)) {
        if (test_mono_ms() > deadline) FAIL("never told to stop");
        test_sleep_ms(10);
    }
    stellar_close(h);
    fflush(NULL);
    exit(0);
}

/* Forks n servers (call before this process starts any thread) and waits
 * until all have started. */
static void spawn_servers(const struct test_ctx *t, const struct server_cfg *c,
                          pid_t *pids, int n)
{
    int before = test_count_lines(test_path(t, "ready"));
    for (int k = 0; k < n; k++) {
        fflush(NULL);
        pids[k] = fork();
        ASSERT_TRUE(pids[k] >= 0);
        if (pids[k] == 0) serve_until_told(t, c);
    }
    ASSERT_WAIT(test_count_lines(test_path(t, "ready")) == before + n, 20000);
}

static void stop_servers(const struct test_ctx *t, const pid_t *pids, int n)
{
    int st;
    test_append_line(test_path(t, "stop"), "stop");
    for (int k = 0; k < n; k++) {
        ASSERT_EQ(pids[k], waitpid(pids[k], &st, 0));
        if (WIFSIGNALED(st))
            FAIL("server %d killed by signal %d", (int)pids[k], WTERMSIG(st));
        if (WEXITSTATUS(st) != 0)
            FAIL("server %d exited %d (66: a sanitizer report, above)",
                 (int)pids[k], WEXITSTATUS(st));
    }
}

/* ---------------------------------------------------- Log capture --- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char warn_log[16384];
static size_t warn_len;

/* test_log_fn, plus warnings kept in memory for log_has(). */
static void capture_log(void *ud, int level, const char *msg)
{
    size_t n = strlen(msg);
    test_log_fn(ud, level, msg);
    if (level < STELLAR_LOG_WARN) return;
    pthread_mutex_lock(&log_mu);
    if (warn_len + n + 2 < sizeof warn_log) {
        memcpy(warn_log + warn_len, msg, n);
        warn_len += n;
        warn_log[warn_len++] = '\n';
        warn_log[warn_len] = '\0';
    }
    pthread_mutex_unlock(&log_mu);
}

static bool log_has(const char *needle)
{
    bool found;
    pthread_mutex_lock(&log_mu);
    found = strstr(warn_log, needle) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}

/* ------------------------------------------------ Periodic, 3 procs --- */

#define WINDOW_MS 6000

/* Earliest start logged in path, or -1. */
static int64_t first_start(const char *path)
{
    static struct span s[MAX_SPANS];
    int n = read_spans(path, s, MAX_SPANS);
    return n ? s[0].start : -1;
}

static void a_periodic_task_on_three_processes_runs_once_a_second_one_at_a_time(
    struct test_ctx *t)
{
    static struct span s[MAX_SPANS];
    struct server_cfg cfg = {.processors = 2, .tasks = {&task_tick}};
    pid_t pids[3];
    stellar_error e = {0};
    stellar *h;
    json_t *tasks;
    char ticks[600];
    int64_t t0 = -1, deadline, max_copies = 0, samples = 0;
    int n, in_window = 0;

    snprintf(g_dir, sizeof g_dir, "%s", t->dir);
    dir_file(ticks, sizeof ticks, "ticks");
    spawn_servers(t, &cfg, pids, 3);

    /* A client on the side, to watch storage. */
    h = open_h(t, NULL);
    reg(h, &task_tick);
    tasks = stellar_tasks_json(h);
    ASSERT_TRUE(tasks != NULL);
    {
        char *pl = json_dumps(
            json_object_get(json_array_get(tasks, 0), "plugins"), JSON_COMPACT);
        ASSERT_STR_EQ("[\"jobLock\",\"queueLock\",\"delayQueueLock\"]", pl);
        free(pl);
    }
    json_decref(tasks);

    /* Sample storage until 6 s after the first run started: queued plus
     * delayed copies, read in that order (a promotion between the two
     * reads can only hide a copy, never count one twice). */
    deadline = test_mono_ms() + 30000;
    while (t0 < 0 || test_now_ms() < t0 + WINDOW_MS + 300) {
        json_t *ts = NULL;
        int64_t q = test_length(h, "default"), copies;
        ASSERT_OK(stellar_scheduled_at(h, NULL, "tick", NULL, &ts, &e), &e);
        copies = q + (int64_t)json_array_size(ts);
        json_decref(ts);
        if (copies > 1)
            FAIL("%lld copies of the periodic task stored (%lld queued)",
                 (long long)copies, (long long)q);
        if (copies > max_copies) max_copies = copies;
        samples++;
        if (t0 < 0) t0 = first_start(ticks);
        if (test_mono_ms() > deadline) FAIL("the periodic task never ran");
        test_sleep_ms(10);
    }
    stop_servers(t, pids, 3);

    n = read_spans(ticks, s, MAX_SPANS);
    assert_one_at_a_time(s, n);
    for (int i = 0; i < n; i++)
        in_window += s[i].start < t0 + WINDOW_MS;
    for (int i = 1; i < n && s[i].start < t0 + WINDOW_MS; i++)
        test_note("run %d started %lld ms after run %d ended (pid %ld)", i,
                  s[i].start - s[i - 1].end, i - 1, s[i].pid);
    test_note("%d runs in %d ms on 3 processes; %lld storage samples, at "
              "most %lld copy stored",
              in_window, WINDOW_MS, (long long)samples, (long long)max_copies);
    if (in_window < 5 || in_window > 7)
        FAIL("the 1000 ms task ran %d times in %d ms, want 5 to 7", in_window,
             WINDOW_MS);
    ASSERT_EQ(n, test_stat(h, "processed"));
    ASSERT_EQ(0, test_stat(h, "failed"));
    stellar_close(h);
}

/* ----------------------------------------------------------- jobLock --- */

#define N_LOCKED 50

static void fifty_copies_of_a_job_under_joblock_run_one_at_a_time_and_all_run(
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

/* ------------------------------------------------------------- Retry --- */

static void retry_with_a_backoff_strategy_runs_four_attempts_spaced_by_it(
    struct test_ctx *t)
{
    static const int64_t backoff[3] = {100, 200, 400};
    struct span s[8];
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    char out[600], params[700], key[800];
    int n;

    snprintf(g_dir, sizeof g_dir, "%s", t->dir);
    dir_file(out, sizeof out, "flaky");
    reg(h, &task_flaky);
    start(h);
    snprintf(params, sizeof params, "{\"path\":\"%s\",\"failures\":3}", out);
    enqueue_expect(h, STELLAR_OK, "flaky", params);
    ASSERT_WAIT(test_count_lines(out) >= 4, 15000);
    ASSERT_WAIT(test_stat(h, "processed") == 1, 5000);

    /* Reference §6.5: a retried attempt counts failed +1, processed +0 (and
     * goes on no list); the attempt that succeeds counts processed +1. */
    ASSERT_EQ(1, test_stat(h, "processed"));
    ASSERT_EQ(3, test_stat(h, "failed"));
    ASSERT_EQ(1, worker_stats_sum(h, "processed"));
    ASSERT_EQ(3, worker_stats_sum(h, "failed"));
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_EQ(0, test_length(h, "default"));
    ASSERT_EQ(0, timestamps(h));
    /* Success forgets the attempts. */
    snprintf(key, sizeof key, "resque-retry:flaky:%s", params);
    ASSERT_TRUE(kv_absent(t, key));
    snprintf(key, sizeof key, "failure-resque-retry:flaky:%s", params);
    ASSERT_TRUE(kv_absent(t, key));
    stellar_close(h);

    n = read_spans(out, s, 8);
    ASSERT_EQ(4, n);
    for (int i = 1; i < n; i++) {
        int64_t gap = s[i].start - s[i - 1].end, want = backoff[i - 1];
        /* SQLite: never early, and late by at most 250 ms (how late it
         * is the bench measures: under sanitizers on a loaded machine a
         * wake-up can take 100 ms). Redis: the delayed job sits at
         * round(ms / 1000) seconds and moves when that second begins. */
        int64_t lo = is_redis(t) ? want - 500 : want;
        int64_t hi = is_redis(t) ? want + 1000 : want + 250;
        test_note("attempt %d started %lld ms after attempt %d failed "
                  "(backoff %lld ms)",
                  i + 1, (long long)gap, i, (long long)want);
        if (gap < lo || gap > hi)
            FAIL("attempt %d started %lld ms after attempt %d; backoff %lld, "
                 "allowed [%lld, %lld]",
                 i + 1, (long long)gap, i, (long long)want, (long long)lo,
                 (long long)hi);
    }
}

static void
retry_limit_two_ends_in_failed_with_the_attempt_count(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    stellar_error e = {0};
    json_t *f = NULL, *entry;

    reg(h, &task_doomed);
    start(h);
    enqueue_expect(h, STELLAR_OK, "doomed", "{\"n\":1}");
    ASSERT_WAIT(test_failed_count(h) == 1, 10000);
    ASSERT_WAIT(workers_idle(h), 5000);
    ASSERT_EQ(2, __atomic_load_n(&doomed_runs, __ATOMIC_SEQ_CST));
    ASSERT_OK(stellar_failed(h, 0, -1, &f, &e), &e);
    entry = json_array_get(f, 0);
    ASSERT_STR_EQ("doomed attempt (attempt 2 of 2)",
                  json_string_value(json_object_get(entry, "error")));
    ASSERT_STR_EQ("doomed", json_string_value(json_object_get(
                                json_object_get(entry, "payload"), "class")));
    json_decref(f);
    /* Attempt 1: failed +1 (retried); attempt 2: failed +1 (final). */
    ASSERT_EQ(2, test_stat(h, "failed"));
    ASSERT_EQ(0, test_stat(h, "processed"));
    ASSERT_EQ(0, test_length(h, "default"));
    ASSERT_EQ(0, timestamps(h));
    ASSERT_TRUE(kv_absent(t, "resque-retry:doomed:{\"n\":1}"));
    stellar_close(h);
    ASSERT_EQ(2, __atomic_load_n(&doomed_runs, __ATOMIC_SEQ_CST));
}

static void retry_writes_node_resques_counter_and_error_keys_after_a_failure(
    struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    const char *params = "{\"n\":7,\"why\":\"try again\"}";
    /* argsKey is the args' text with the first whitespace character of the
     * whole key dropped (a node-resque quirk, reference §6.5). */
    const char *counter = "resque-retry:retried:{\"n\":7,\"why\":\"tryagain\"}";
    const char *errkey =
        "failure-resque-retry:retried:{\"n\":7,\"why\":\"tryagain\"}";
    json_t *err;
    int64_t ttl;
    char *v, *p;

    reg(h, &task_retried);
    start(h);
    enqueue_expect(h, STELLAR_OK, "retried", params);
    ASSERT_WAIT(test_stat(h, "failed") == 1 && workers_idle(h), 10000);
    stellar_close(h);
    h = open_h(t, NULL);
    ASSERT_EQ(1, plain());
    ASSERT_EQ(0, test_stat(h, "processed"));
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_EQ(1, scheduled(h, "retried", params)); /* back in 60 s */

    /* The counter is "0" after the first failure; its TTL is maxDelay
     * (60000, in ms) taken as seconds, as node-resque does. */
    v = kv_read(t, counter, &ttl);
    if (!v) FAIL("no retry counter %s", counter);
    ASSERT_STR_EQ("0", v);
    free(v);
    test_note("%s = 0, ttl %lld ms", counter, (long long)ttl);
    if (ttl <= 59990LL * 1000 || ttl > 60000LL * 1000)
        FAIL("retry counter expires in %lld ms, want 60000 s", (long long)ttl);

    v = kv_read(t, errkey, &ttl);
    if (!v) FAIL("no retry error key %s", errkey);
    test_note("%s = %s", errkey, v);
    err = json_loads(v, 0, NULL);
    free(v);
    ASSERT_TRUE(json_is_object(err));
    ASSERT_STR_EQ("Error: try again",
                  json_string_value(json_object_get(err, "exception")));
    ASSERT_STR_EQ("Error: try again",
                  json_string_value(json_object_get(err, "error")));
    ASSERT_STR_EQ("retried", json_string_value(json_object_get(err, "worker")));
    ASSERT_STR_EQ("default", json_string_value(json_object_get(err, "queue")));
    ASSERT_TRUE(json_is_array(json_object_get(err, "backtrace")));
    ASSERT_TRUE(json_is_string(json_object_get(err, "failed_at")));
    p = json_dumps(json_object_get(err, "payload"), JSON_COMPACT);
    ASSERT_STR_EQ("[{\"n\":7,\"why\":\"try again\"}]", p);
    free(p);
    json_decref(err);
    stellar_close(h);
}

/* ----------------------------------------------------- Lock expiry --- */

static void
a_joblock_left_by_a_killed_process_expires_and_the_job_runs(struct test_ctx *t)
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
static void
a_joblock_outlives_its_lock_timeout_while_its_run_lasts(struct test_ctx *t)
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

static void
queuelock_refuses_a_second_copy_until_the_first_starts(struct test_ctx *t)
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

static void delayqueuelock_refuses_an_enqueue_while_the_same_job_is_delayed(
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

/* -------------------------------------------------------------- noop --- */

static void noop_logs_a_failure_and_counts_the_job_processed(struct test_ctx *t)
{
    stellar_options o = {.processors = 1, .log_fn = capture_log};
    stellar *h = open_h(t, &o);

    reg(h, &task_quiet);
    start(h);
    enqueue_expect(h, STELLAR_OK, "quiet", "{\"why\":\"quiet failure 17\"}");
    ASSERT_WAIT(test_stat(h, "processed") == 1, 5000);
    ASSERT_EQ(0, test_stat(h, "failed"));
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_EQ(1, plain());
    ASSERT_TRUE(log_has("quiet failure 17"));
    ASSERT_TRUE(log_has("noop"));
    stellar_close(h);
}

/* ------------------------------------------------ The app's plugins --- */

static pthread_mutex_t hooks_mu = PTHREAD_MUTEX_INITIALIZER;
static char hook_trail[2048];  /* "B.beforeEnqueue A.beforeEnqueue ..." */
static char seen_error[256];   /* what the gate's afterPerform saw */
static char seen_options[256]; /* what the probe saw */
static int gate_perform_calls; /* the gate's beforePerform */
static bool worker_in_enqueue, worker_in_perform;

static void trail(const char *what)
{
    pthread_mutex_lock(&hooks_mu);
    if (strlen(hook_trail) + strlen(what) + 2 < sizeof hook_trail) {
        if (hook_trail[0]) strcat(hook_trail, " ");
        strcat(hook_trail, what);
    }
    pthread_mutex_unlock(&hooks_mu);
}

static void assert_trail(const char *want)
{
    pthread_mutex_lock(&hooks_mu);
    if (strcmp(hook_trail, want) != 0)
        FAIL("hook calls\n  got:  %s\n  want: %s", hook_trail, want);
    pthread_mutex_unlock(&hooks_mu);
}

/* params.<flag> of the job's args [params]. */
static bool flag(stellar_job *job, const char *name)
{
    return json_is_true(
        json_object_get(json_array_get(stellar_job_args(job), 0), name));
}

static int gate_before_enqueue(stellar_job *job, const json_t *o)
{
    (void)o;
    pthread_mutex_lock(&hooks_mu);
    worker_in_enqueue |= stellar_job_worker(job) != NULL;
    pthread_mutex_unlock(&hooks_mu);
    trail("gate.beforeEnqueue");
    return flag(job, "veto_enqueue") ? STELLAR_VETOED : STELLAR_OK;
}

static int gate_after_enqueue(stellar_job *job, const json_t *o)
{
    (void)job;
    (void)o;
    trail("gate.afterEnqueue");
    return STELLAR_OK;
}

/* gate_perform_calls, read under the lock the hooks write it under. */
static int gate_calls(void)
{
    int n;
    pthread_mutex_lock(&hooks_mu);
    n = gate_perform_calls;
    pthread_mutex_unlock(&hooks_mu);
    return n;
}

static int gate_before_perform(stellar_job *job, const json_t *o)
{
    (void)o;
    pthread_mutex_lock(&hooks_mu);
    gate_perform_calls++;
    worker_in_perform = stellar_job_worker(job) != NULL;
    pthread_mutex_unlock(&hooks_mu);
    return flag(job, "veto_perform") ? STELLAR_VETOED : STELLAR_OK;
}

static int gate_after_perform(stellar_job *job, const json_t *o)
{
    const char *err = stellar_job_error(job);
    (void)o;
    pthread_mutex_lock(&hooks_mu);
    snprintf(seen_error, sizeof seen_error, "%s", err ? err : "(none)");
    pthread_mutex_unlock(&hooks_mu);
    if (flag(job, "clear")) stellar_job_set_error(job, NULL);
    return STELLAR_OK;
}

static const stellar_plugin plugin_gate = {
    "gate", gate_before_enqueue, gate_after_enqueue, gate_before_perform,
    gate_after_perform};

#define TRAIL_HOOK(P, H)                                                       \
    static int P##_##H(stellar_job *job, const json_t *o)                      \
    {                                                                          \
        (void)job;                                                             \
        (void)o;                                                               \
        trail(#P "." #H);                                                      \
        return STELLAR_OK;                                                     \
    }
TRAIL_HOOK(orderA, beforeEnqueue)
TRAIL_HOOK(orderA, afterEnqueue)
TRAIL_HOOK(orderA, beforePerform)
TRAIL_HOOK(orderA, afterPerform)
TRAIL_HOOK(orderB, beforeEnqueue)
TRAIL_HOOK(orderB, afterEnqueue)
TRAIL_HOOK(orderB, beforePerform)
TRAIL_HOOK(orderB, afterPerform)

static const stellar_plugin plugin_order_a = {
    "orderA", orderA_beforeEnqueue, orderA_afterEnqueue, orderA_beforePerform,
    orderA_afterPerform};
static const stellar_plugin plugin_order_b = {
    "orderB", orderB_beforeEnqueue, orderB_afterEnqueue, orderB_beforePerform,
    orderB_afterPerform};

static int probe_before_perform(stellar_job *job, const json_t *o)
{
    char *txt = json_dumps(o, JSON_COMPACT);
    (void)job;
    pthread_mutex_lock(&hooks_mu);
    snprintf(seen_options, sizeof seen_options, "%s", txt ? txt : "");
    pthread_mutex_unlock(&hooks_mu);
    free(txt);
    return STELLAR_OK;
}

static const stellar_plugin plugin_probe = {"probe", NULL, NULL,
                                            probe_before_perform, NULL};

static void register_plugin(const stellar_plugin *p)
{
    stellar_error e = {0};
    ASSERT_OK(stellar_plugin_register(p, &e), &e);
}

static const stellar_task task_gated_by_app = {
    .name = "guarded",
    .description = "under the app's plugin 'gate'",
    .plugins = (const char *const[]){"gate", NULL},
    .run = failing_run};

static void
an_apps_plugin_can_veto_an_enqueue_and_nothing_is_stored(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *queues = NULL;

    register_plugin(&plugin_gate);
    /* Names are unique, ignoring case, built-ins included. */
    ASSERT_EQ(STELLAR_EEXISTS, stellar_plugin_register(&plugin_gate, &e));
    {
        static const stellar_plugin clash = {"JobLock", NULL, NULL, NULL, NULL};
        ASSERT_EQ(STELLAR_EEXISTS, stellar_plugin_register(&clash, &e));
    }
    reg(h, &task_gated_by_app);
    enqueue_expect(h, STELLAR_VETOED, "guarded", "{\"veto_enqueue\":true}");
    enqueue_in_expect(h, STELLAR_VETOED, 1000, "guarded",
                      "{\"veto_enqueue\":true}");
    enqueue_at_expect(h, STELLAR_VETOED, test_now_ms() + 1000, "guarded",
                      "{\"veto_enqueue\":true}");
    ASSERT_EQ(0, test_length(h, "default"));
    ASSERT_EQ(0, timestamps(h));
    ASSERT_OK(stellar_queues(h, &queues, &e), &e);
    ASSERT_EQ(0, json_array_size(queues));
    json_decref(queues);
    /* Every hook call above stopped at the veto: no afterEnqueue. */
    assert_trail("gate.beforeEnqueue gate.beforeEnqueue gate.beforeEnqueue");
    enqueue_expect(h, STELLAR_OK, "guarded", "{\"why\":\"x\"}");
    ASSERT_EQ(1, test_length(h, "default"));
    ASSERT_TRUE(!worker_in_enqueue); /* no worker in enqueue hooks */
    stellar_close(h);
}

static void
an_apps_plugin_vetoing_a_run_drops_the_job_uncounted(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);

    register_plugin(&plugin_gate);
    reg(h, &task_gated_by_app);
    enqueue_expect(h, STELLAR_OK, "guarded", "{\"veto_perform\":true}");
    start(h);
    ASSERT_WAIT(gate_calls() == 1 && workers_idle(h), 5000);
    ASSERT_EQ(0, plain()); /* the task never ran */
    ASSERT_EQ(0, test_stat(h, "processed"));
    ASSERT_EQ(0, test_stat(h, "failed"));
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_EQ(0, test_length(h, "default"));
    ASSERT_EQ(0, timestamps(h));
    pthread_mutex_lock(&hooks_mu);
    ASSERT_TRUE(worker_in_perform);
    pthread_mutex_unlock(&hooks_mu);
    stellar_close(h);
}

static void
an_apps_after_perform_sees_the_error_and_may_clear_it(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    stellar_error e = {0};
    json_t *f = NULL;

    register_plugin(&plugin_gate);
    reg(h, &task_gated_by_app);
    start(h);
    enqueue_expect(h, STELLAR_OK, "guarded",
                   "{\"why\":\"oops 42\",\"clear\":true}");
    ASSERT_WAIT(test_stat(h, "processed") == 1, 5000);
    pthread_mutex_lock(&hooks_mu);
    ASSERT_STR_EQ("oops 42", seen_error);
    pthread_mutex_unlock(&hooks_mu);
    ASSERT_EQ(0, test_stat(h, "failed"));
    ASSERT_EQ(0, test_failed_count(h));

    /* Not cleared: the job fails with the task's error. */
    enqueue_expect(h, STELLAR_OK, "guarded", "{\"why\":\"oops 43\"}");
    ASSERT_WAIT(test_failed_count(h) == 1, 5000);
    pthread_mutex_lock(&hooks_mu);
    ASSERT_STR_EQ("oops 43", seen_error);
    pthread_mutex_unlock(&hooks_mu);
    ASSERT_OK(stellar_failed(h, 0, 0, &f, &e), &e);
    ASSERT_STR_EQ("oops 43", json_string_value(json_object_get(
                                 json_array_get(f, 0), "error")));
    json_decref(f);
    ASSERT_EQ(1, test_stat(h, "processed"));
    ASSERT_WAIT(test_stat(h, "failed") == 1, 5000);
    stellar_close(h);
}

static void
hooks_run_in_the_order_the_task_lists_its_plugins(struct test_ctx *t)
{
    const stellar_task ordered = {
        .name = "ordered",
        .description = "orderB then orderA",
        .plugins = (const char *const[]){"orderB", "orderA", NULL},
        .run = plain_run};
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);

    register_plugin(&plugin_order_a);
    register_plugin(&plugin_order_b);
    reg(h, &ordered);
    /* Enqueued before the processors start: a running processor may take
     * a job while its afterEnqueue hooks still run (as in node-resque). */
    enqueue_expect(h, STELLAR_OK, "ordered", NULL);
    start(h);
    /* Counted when the processor acks the job: after afterPerform. */
    ASSERT_WAIT(test_stat(h, "processed") == 1, 5000);
    assert_trail("orderB.beforeEnqueue orderA.beforeEnqueue "
                 "orderB.afterEnqueue orderA.afterEnqueue "
                 "orderB.beforePerform orderA.beforePerform "
                 "orderB.afterPerform orderA.afterPerform");
    stellar_close(h);
}

static void
enqueue_hooks_run_for_enqueue_at_and_enqueue_in_too(struct test_ctx *t)
{
    const stellar_task ordered = {.name = "ordered",
                                  .description = "orderA",
                                  .plugins =
                                      (const char *const[]){"orderA", NULL},
                                  .run = plain_run};
    stellar *h = open_h(t, NULL);

    register_plugin(&plugin_order_a);
    reg(h, &ordered);
    enqueue_in_expect(h, STELLAR_OK, 60000, "ordered", "{\"n\":1}");
    assert_trail("orderA.beforeEnqueue orderA.afterEnqueue");
    enqueue_at_expect(h, STELLAR_OK, test_now_ms() + 120000, "ordered",
                      "{\"n\":2}");
    assert_trail("orderA.beforeEnqueue orderA.afterEnqueue "
                 "orderA.beforeEnqueue orderA.afterEnqueue");
    ASSERT_EQ(2, timestamps(h));
    stellar_close(h);
}

static void
plugin_options_apply_under_either_spelling_of_the_name(struct test_ctx *t)
{
    const stellar_task probed_a = {.name = "probedA",
                                   .description = "options keyed Probe",
                                   .plugins =
                                       (const char *const[]){"probe", NULL},
                                   .plugin_options = "{\"Probe\":{\"x\":1}}",
                                   .run = plain_run};
    const stellar_task probed_b = {.name = "probedB",
                                   .description = "options keyed probe",
                                   .plugins =
                                       (const char *const[]){"PROBE", NULL},
                                   .plugin_options = "{\"probe\":{\"x\":2}}",
                                   .run = plain_run};
    stellar_options o = {.processors = 2};
    stellar *h = open_h(t, &o);

    snprintf(g_dir, sizeof g_dir, "%s", t->dir);
    register_plugin(&plugin_probe);
    reg(h, &task_lock_a);
    reg(h, &task_lock_b);
    reg(h, &probed_a);
    reg(h, &probed_b);
    start(h);

    /* jobLock's lockTimeout, given as "JobLock" (node-resque's class name)
     * and as "jobLock": both show in the lock's value and TTL. */
    enqueue_expect(h, STELLAR_OK, "lockA", NULL);
    enqueue_expect(h, STELLAR_OK, "lockB", NULL);
    ASSERT_WAIT(gated() == 2, 5000);
    assert_lock_key(t, "workerslock:lockA:default:[{}]", 77);
    assert_lock_key(t, "workerslock:lockB:default:[{}]", 88);
    open_gate("go-lockA");
    open_gate("go-lockB");
    ASSERT_WAIT(test_stat(h, "processed") == 2, 5000);
    ASSERT_EQ(0, locks_count(h));

    enqueue_expect(h, STELLAR_OK, "probedA", NULL);
    ASSERT_WAIT(test_stat(h, "processed") == 3, 5000);
    pthread_mutex_lock(&hooks_mu);
    ASSERT_STR_EQ("{\"x\":1}", seen_options);
    pthread_mutex_unlock(&hooks_mu);
    enqueue_expect(h, STELLAR_OK, "probedB", NULL);
    ASSERT_WAIT(test_stat(h, "processed") == 4, 5000);
    pthread_mutex_lock(&hooks_mu);
    ASSERT_STR_EQ("{\"x\":2}", seen_options);
    pthread_mutex_unlock(&hooks_mu);
    stellar_close(h);
}

static void a_joblock_taken_is_released_when_a_later_plugin_vetoes_the_run(
    struct test_ctx *t)
{
    const stellar_task locked_gate = {
        .name = "lockedGate",
        .description = "jobLock, then the app's gate",
        .plugins = (const char *const[]){"jobLock", "gate", NULL},
        .run = plain_run};
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);

    register_plugin(&plugin_gate);
    reg(h, &locked_gate);
    enqueue_expect(h, STELLAR_OK, "lockedGate", "{\"veto_perform\":true}");
    start(h);
    ASSERT_WAIT(gate_calls() == 1 && workers_idle(h), 5000);
    ASSERT_EQ(0, plain());
    /* The run did not happen: the lock it took must not outlive it (it
     * would hold back every run of these params for lockTimeout, 1 h). */
    ASSERT_TRUE(kv_absent(
        t, "workerslock:lockedGate:default:[{\"veto_perform\":true}]"));
    ASSERT_EQ(0, locks_count(h));
    ASSERT_EQ(0, test_stat(h, "processed"));
    ASSERT_EQ(0, test_stat(h, "failed"));
    stellar_close(h);
}

#define N_WAITING 70

static void a_blocked_joblock_run_waits_behind_any_number_of_delayed_copies(
    struct test_ctx *t)
{
    const stellar_task held = {.name = "held",
                               .description = "jobLock",
                               .plugins =
                                   (const char *const[]){"jobLock", NULL},
                               .run = plain_run};
    stellar_options po = {.processors = 1, .no_scheduler = true};
    stellar *client = open_h(t, NULL), *h;
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    int64_t first_s = test_now_ms() / 1000 + 1;
    bool set = false;

    /* 70 copies of the job wait, one in each of the next 70 seconds (the
     * most the Redis layout allows: one identical payload a second), and
     * another run holds the lock. */
    for (int k = 0; k < N_WAITING; k++)
        enqueue_at_expect(client, STELLAR_OK, (first_s + k) * 1000, "held",
                          NULL);
    ASSERT_OK(b->ops->kv_set(b, "workerslock:held:default:[{}]", "1", 60000,
                             true, &set, &e),
              &e);
    ASSERT_TRUE(set);
    enqueue_expect(client, STELLAR_OK, "held", NULL);

    /* The queued copy is blocked: it must go back to the delayed set,
     * after the others, and not fail. */
    h = open_h(t, &po);
    reg(h, &held);
    start(h);
    ASSERT_WAIT(test_length(h, "default") == 0 && workers_idle(h), 10000);
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_EQ(0, plain());
    ASSERT_EQ(N_WAITING + 1, scheduled(h, "held", NULL));
    stellar_close(h);
    stellar_close(client);
    st_backend_close(b);
}

static void
a_task_naming_an_unknown_plugin_stops_start_naming_the_task(struct test_ctx *t)
{
    const stellar_task bad = {
        .name = "misconfigured",
        .description = "names a plugin nobody registered",
        .plugins = (const char *const[]){"jobLock", "noSuchPlugin", NULL},
        .run = plain_run};
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    stellar_error e = {0};

    reg(h, &task_quiet);
    reg(h, &bad);
    ASSERT_EQ(STELLAR_EINVAL, stellar_start(h, &e));
    test_note("stellar_start: %s", e.msg);
    ASSERT_TRUE(strstr(e.msg, "'misconfigured'") != NULL);
    ASSERT_TRUE(strstr(e.msg, "noSuchPlugin") != NULL);
    /* Nothing started: no workers registered. */
    ASSERT_TRUE(workers_idle(h));
    {
        json_t *w = NULL;
        ASSERT_OK(stellar_workers(h, &w, &e), &e);
        ASSERT_EQ(0, json_object_size(w));
        json_decref(w);
    }
    stellar_close(h);
}

static const struct test tests[] = {
    {"a periodic task on three processes runs once a second, one at a time",
     a_periodic_task_on_three_processes_runs_once_a_second_one_at_a_time, 60},
    {"fifty copies of a job under jobLock run one at a time and all run",
     fifty_copies_of_a_job_under_joblock_run_one_at_a_time_and_all_run, 300},
    {"retry with a backoff strategy runs four attempts spaced by it",
     retry_with_a_backoff_strategy_runs_four_attempts_spaced_by_it, 0},
    {"retry limit two ends in failed with the attempt count",
     retry_limit_two_ends_in_failed_with_the_attempt_count, 0},
    {"retry writes node-resque's counter and error keys after a failure",
     retry_writes_node_resques_counter_and_error_keys_after_a_failure, 0},
    {"a jobLock left by a killed process expires and the job runs",
     a_joblock_left_by_a_killed_process_expires_and_the_job_runs, 0},
    {"a jobLock outlives its lockTimeout while its run lasts",
     a_joblock_outlives_its_lock_timeout_while_its_run_lasts, 0},
    {"queueLock refuses a second copy until the first starts",
     queuelock_refuses_a_second_copy_until_the_first_starts, 0},
    {"delayQueueLock refuses an enqueue while the same job is delayed",
     delayqueuelock_refuses_an_enqueue_while_the_same_job_is_delayed, 0},
    {"noop logs a failure and counts the job processed",
     noop_logs_a_failure_and_counts_the_job_processed, 0},
    {"an app's plugin can veto an enqueue and nothing is stored",
     an_apps_plugin_can_veto_an_enqueue_and_nothing_is_stored, 0},
    {"an app's plugin vetoing a run drops the job uncounted",
     an_apps_plugin_vetoing_a_run_drops_the_job_uncounted, 0},
    {"an app's afterPerform sees the error and may clear it",
     an_apps_after_perform_sees_the_error_and_may_clear_it, 0},
    {"hooks run in the order the task lists its plugins",
     hooks_run_in_the_order_the_task_lists_its_plugins, 0},
    {"enqueue hooks run for enqueueAt and enqueueIn too",
     enqueue_hooks_run_for_enqueue_at_and_enqueue_in_too, 0},
    {"pluginOptions apply under either spelling of the name",
     plugin_options_apply_under_either_spelling_of_the_name, 0},
    {"a jobLock taken is released when a later plugin vetoes the run",
     a_joblock_taken_is_released_when_a_later_plugin_vetoes_the_run, 0},
    {"a blocked jobLock run waits behind any number of delayed copies",
     a_blocked_joblock_run_waits_behind_any_number_of_delayed_copies, 0},
    {"a task naming an unknown plugin stops start, naming the task",
     a_task_naming_an_unknown_plugin_stops_start_naming_the_task, 0},
};
TEST_MAIN(tests)
