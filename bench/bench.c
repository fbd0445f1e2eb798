/*
 * bench.c: the Stellar side of `make bench` (bench/run.sh drives it; see
 * bench/README.md). Each subcommand runs one workload once and prints one
 * JSON object on stdout; run.sh repeats them and `report` takes medians.
 *
 *   enqueue URL N THREADS   N stellar_enqueue calls, split over THREADS
 *                           threads, each with its own handle
 *   batch URL N BATCH       N jobs through stellar_enqueue_many, BATCH a call
 *   process URL N PROCS     N jobs queued first, then PROCS TaskProcessors
 *                           run them until the queue is empty
 *   process-limited URL N PROCS   as process, with a concurrency limit
 *                           on the task that never binds (issue 15: what
 *                           the check in reserve costs)
 *   latency URL N PROCS     enqueue-to-start: one job at a time, queued by a
 *                           second handle (as another process would) while
 *                           PROCS processors sit idle
 *   delayed URL N PROCS     how far from their time delayed jobs start,
 *                           |start - due| (scheduler on)
 *   load URL N              queues N jobs and waits until the queue is
 *                           empty (the load for the RSS of `stellar run`)
 *   sqlite-limit PATH N     SQLite alone, no Stellar: one write transaction
 *                           per job, 100 jobs per transaction, and a job's
 *                           processing bookkeeping as one transaction
 *   report RESULTS JSON     medians of run.sh's results: prints the table,
 *                           writes JSON
 *
 * Jobs are of the task "noop" on the queue "bench", params {"i": n}: the
 * same bytes node-resque's bench (node/bench.js) writes, so `load` drives
 * either system.
 *
 * Only the public API (stellar.h) is used, plus SQLite for its limit.
 */
#include <stellar.h>

#include <jansson.h>
#include <sqlite3.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TASK  "noop"
#define QUEUE "bench"

/* ------------------------------------------------------------ Helpers --- */

static void die(const char *what, int rc, const stellar_error *e)
{
    fprintf(stderr, "stellar_bench: %s: %s (%s)\n", what,
            e && e->msg[0] ? e->msg : stellar_strerror(rc),
            stellar_err_name(rc));
    exit(1);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(int64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static long arg_long(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v <= 0) {
        fprintf(stderr, "stellar_bench: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of v[0..n) (sorts v). */
static double percentile(double *v, size_t n, double p)
{
    size_t k;
    if (n == 0) return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    k = (size_t)ceil(p / 100.0 * (double)n);
    return v[k ? k - 1 : 0];
}

/* A pure client: no tasks, no processors. */
static stellar *client(const char *url)
{
    stellar_options o = {0};
    stellar_error e;
    stellar *h;
    int rc;

    o.url = url;
    o.processors = -1;
    if ((rc = stellar_open(&h, &o, &e))) die("open", rc, &e);
    return h;
}

/* ------------------------------------------------------- The no-op task --- */

/* What the task does depends on the workload. */
enum mode { M_COUNT, M_LATENCY, M_DELAYED };

static struct {
    enum mode mode;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long done;   /* jobs run */
    long want;   /* signal when done reaches this */
    double *lat; /* M_LATENCY: us; M_DELAYED: ms late, by params.i */
    long nlat;
} run = {
    M_COUNT, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL,
    0};

static int noop(stellar_api *api, const json_t *params, stellar_next *next)
{
    long i = (long)json_integer_value(json_object_get(params, "i"));
    (void)api;
    (void)next;
    if (run.mode == M_LATENCY && i >= 0 && i < run.nlat)
        run.lat[i] = (double)(mono_us() -
                              json_integer_value(json_object_get(params, "t")));
    else if (run.mode == M_DELAYED && i >= 0 && i < run.nlat)
        run.lat[i] = fabs((double)wall_us() / 1000.0 -
                          json_number_value(json_object_get(params, "due")));
    pthread_mutex_lock(&run.lock);
    if (++run.done >= run.want) pthread_cond_broadcast(&run.cond);
    pthread_mutex_unlock(&run.lock);
    return STELLAR_OK;
}

static const stellar_task noop_task = {
    .name = TASK,
    .description = "does nothing (bench)",
    .queue = QUEUE,
    .run = noop,
};

/* Waits until run.done >= want, or timeout_ms; false on timeout. */
static bool wait_done(long want, int64_t timeout_ms)
{
    struct timespec ts;
    bool ok = true;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&run.lock);
    run.want = want;
    while (run.done < want && ok)
        ok = pthread_cond_timedwait(&run.cond, &run.lock, &ts) == 0;
    ok = run.done >= want;
    pthread_mutex_unlock(&run.lock);
    return ok;
}

static const char *const bench_queues[] = {QUEUE, NULL};

/* A handle with the task and procs processors on QUEUE (not started). */
static stellar *server(const char *url, int procs, bool scheduler)
{
    stellar_options o = {0};
    stellar_error e;
    stellar *h;
    int rc;

    o.url = url;
    o.processors = procs;
    o.queues = bench_queues;
    o.no_scheduler = !scheduler;
    o.name = "bench";
    if ((rc = stellar_open(&h, &o, &e))) die("open", rc, &e);
    if ((rc = stellar_task_register(h, &noop_task, &e))) die("task", rc, &e);
    return h;
}

/* Queues n jobs in batches of 1000, params {"i": k}. */
static void fill(stellar *h, long n)
{
    enum { B = 1000 };
    static char text[B][32];
    const char *params[B];
    stellar_error e;
    long k = 0;
    int rc;

    while (k < n) {
        size_t m = 0;
        for (; m < B && k < n; m++, k++) {
            snprintf(text[m], sizeof text[m], "{\"i\":%ld}", k);
            params[m] = text[m];
        }
        if ((rc = stellar_enqueue_many(h, TASK, params, m, QUEUE, &e)))
            die("enqueue_many", rc, &e);
    }
}

/* ------------------------------------------------------------ Enqueue --- */

typedef struct eq_arg {
    const char *url;
    long from, n;
    pthread_barrier_t *go;
} eq_arg;

static void *enqueue_thread(void *p)
{
    eq_arg *a = p;
    stellar *h = client(a->url);
    stellar_error e;
    char params[48];
    long i;
    int rc;

    pthread_barrier_wait(a->go);
    for (i = a->from; i < a->from + a->n; i++) {
        snprintf(params, sizeof params, "{\"i\":%ld}", i);
        if ((rc = stellar_enqueue(h, TASK, params, QUEUE, &e)))
            die("enqueue", rc, &e);
    }
    pthread_barrier_wait(a->go);
    stellar_close(h);
    return NULL;
}

static int cmd_enqueue(const char *url, long n, long threads)
{
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    eq_arg *a = calloc((size_t)threads, sizeof *a);
    pthread_barrier_t go;
    int64_t t0, t1;
    long i;

    pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
    for (i = 0; i < threads; i++) {
        a[i] = (eq_arg){url, n * i / threads,
                        n * (i + 1) / threads - n * i / threads, &go};
        pthread_create(&t[i], NULL, enqueue_thread, &a[i]);
    }
    pthread_barrier_wait(&go); /* every handle is open */
    t0 = mono_us();
    pthread_barrier_wait(&go); /* every job is queued */
    t1 = mono_us();
    for (i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    printf("{\"rate\":%.1f}\n", (double)n * 1e6 / (double)(t1 - t0));
    free(t);
    free(a);
    return 0;
}

static int cmd_batch(const char *url, long n, long batch)
{
    stellar *h = client(url);
    char(*text)[32] = calloc((size_t)n, sizeof *text);
    const char **params = calloc((size_t)n, sizeof *params);
    stellar_error e;
    int64_t t0, t1;
    long k;
    int rc;

    for (k = 0; k < n; k++) {
        snprintf(text[k], sizeof text[k], "{\"i\":%ld}", k);
        params[k] = text[k];
    }
    t0 = mono_us();
    for (k = 0; k < n; k += batch) {
        size_t m = (size_t)(n - k < batch ? n - k : batch);
        if ((rc = stellar_enqueue_many(h, TASK, params + k, m, QUEUE, &e)))
            die("enqueue_many", rc, &e);
    }
    t1 = mono_us();
    printf("{\"rate\":%.1f}\n", (double)n * 1e6 / (double)(t1 - t0));
    stellar_close(h);
    free(text);
    free(params);
    return 0;
}

/* ------------------------------------------------------------ Process --- */

static int cmd_process(const char *url, long n, long procs, bool limited)
{
    stellar *h = server(url, (int)procs, true);
    stellar_limit lim = {1000000, 0, 0};
    stellar_error e;
    int64_t t0, t1;
    int rc;

    if (limited && (rc = stellar_limit_set(h, "task:" TASK, &lim, &e)))
        die("limit", rc, &e);
    fill(h, n);
    run.mode = M_COUNT;
    t0 = mono_us();
    if ((rc = stellar_start(h, &e))) die("start", rc, &e);
    if (!wait_done(n, 600000)) {
        fprintf(stderr, "stellar_bench: process: only %ld of %ld jobs ran\n",
                run.done, n);
        return 1;
    }
    t1 = mono_us();
    stellar_close(h);
    printf("{\"rate\":%.1f}\n", (double)n * 1e6 / (double)(t1 - t0));
    return 0;
}

/* ------------------------------------------------------------ Latency --- */

static int cmd_latency(const char *url, long n, long procs)
{
    stellar *srv = server(url, (int)procs, false), *cli = client(url);
    stellar_error e;
    char params[96];
    long i;
    int rc;

    run.mode = M_LATENCY;
    run.lat = calloc((size_t)n, sizeof *run.lat);
    run.nlat = n;
    if ((rc = stellar_start(srv, &e))) die("start", rc, &e);
    sleep_us(300000); /* the processors are idle */
    srand(42);
    for (i = 0; i < n; i++) {
        snprintf(params, sizeof params, "{\"i\":%ld,\"t\":%lld}", i,
                 (long long)mono_us());
        if ((rc = stellar_enqueue(cli, TASK, params, QUEUE, &e)))
            die("enqueue", rc, &e);
        if (!wait_done(i + 1, 10000)) {
            fprintf(stderr, "stellar_bench: latency: job %ld never ran\n", i);
            return 1;
        }
        sleep_us(2000 + rand() % 8000); /* idle again, at a random phase */
    }
    stellar_close(cli);
    stellar_close(srv);
    printf("{\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
           percentile(run.lat, (size_t)n, 50) / 1000.0,
           percentile(run.lat, (size_t)n, 99) / 1000.0);
    return 0;
}

/* ------------------------------------------------------------ Delayed --- */

static int cmd_delayed(const char *url, long n, long procs)
{
    stellar *srv = server(url, (int)procs, true), *cli = client(url);
    bool redis = strncmp(url, "redis", 5) == 0;
    int64_t now, spread_ms = 3000;
    stellar_error e;
    char params[96];
    long i;
    int rc;

    run.mode = M_DELAYED;
    run.lat = calloc((size_t)n, sizeof *run.lat);
    run.nlat = n;
    if ((rc = stellar_start(srv, &e))) die("start", rc, &e);
    sleep_us(300000);
    srand(7);
    now = wall_us() / 1000;
    for (i = 0; i < n; i++) {
        int64_t at = now + 1000 + (int64_t)(rand() % spread_ms);
        /* Redis keeps the second, round(at / 1000): that is the time. */
        int64_t due = redis ? (at + 500) / 1000 * 1000 : at;
        snprintf(params, sizeof params, "{\"i\":%ld,\"due\":%lld}", i,
                 (long long)due);
        if ((rc = stellar_enqueue_at(cli, at, TASK, params, QUEUE, &e)))
            die("enqueue_at", rc, &e);
    }
    if (!wait_done(n, spread_ms + 10000)) {
        fprintf(stderr, "stellar_bench: delayed: %ld of %ld jobs ran\n",
                run.done, n);
        return 1;
    }
    stellar_close(cli);
    stellar_close(srv);
    printf("{\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
           percentile(run.lat, (size_t)n, 50),
           percentile(run.lat, (size_t)n, 99));
    return 0;
}

/* --------------------------------------------------------------- Load --- */

static int cmd_load(const char *url, long n)
{
    stellar *h = client(url);
    stellar_error e;
    int64_t len = 1, t0 = mono_us();
    int rc;

    fill(h, n);
    while (len > 0) {
        sleep_us(10000);
        if ((rc = stellar_length(h, QUEUE, &len, &e))) die("length", rc, &e);
    }
    printf("{\"seconds\":%.3f}\n", (double)(mono_us() - t0) / 1e6);
    stellar_close(h);
    return 0;
}

/* ------------------------------------------------------- SQLite limit --- */

static void sq_check(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "stellar_bench: sqlite %s: %s\n", what,
                sqlite3_errmsg(db));
        exit(1);
    }
}

static sqlite3_stmt *sq_prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    sq_check(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
    return s;
}

static void sq_run(sqlite3_stmt *s)
{
    sq_check(sqlite3_db_handle(s), sqlite3_step(s), sqlite3_sql(s));
    sqlite3_reset(s);
}

/*
 * The floor under the SQLite backend, with its settings (WAL,
 * synchronous=NORMAL, 1 KiB pages, a checkpoint every 10000 pages) and
 * tables shaped like its own: INSERTs of a payload, one per transaction
 * and 100 per transaction; then a job's processing bookkeeping (take the
 * head job, record it as the worker's, count it) as one transaction per
 * job. One thread, prepared statements.
 */
static int cmd_sqlite_limit(const char *path, long n)
{
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *ins, *head, *del, *take, *stat;
    const char *payload = "{\"class\":\"noop\",\"queue\":\"bench\","
                          "\"args\":[{\"i\":12345}]}";
    double r1, r100, rp;
    int64_t t0;
    long i;

    remove(path);
    sq_check(NULL, sqlite3_open(path, &db), "open");
    sq_check(db,
             sqlite3_exec(db,
                          "PRAGMA page_size=1024; PRAGMA journal_mode=WAL;"
                          "PRAGMA synchronous=NORMAL;"
                          "PRAGMA wal_autocheckpoint=10000;"
                          "CREATE TABLE jobs(id INTEGER PRIMARY KEY,"
                          " queue TEXT NOT NULL, payload TEXT NOT NULL);"
                          "CREATE INDEX jobs_queue ON jobs(queue, id);"
                          "CREATE TABLE workers(name TEXT PRIMARY KEY,"
                          " job TEXT, run_ms INTEGER);"
                          "CREATE TABLE stats(key TEXT PRIMARY KEY,"
                          " value INTEGER) WITHOUT ROWID;",
                          NULL, NULL, NULL),
             "schema");
    begin = sq_prep(db, "BEGIN IMMEDIATE");
    commit = sq_prep(db, "COMMIT");
    ins = sq_prep(db, "INSERT INTO jobs(queue, payload) VALUES('bench', ?1)");
    head = sq_prep(db, "SELECT id, payload FROM jobs WHERE queue = 'bench'"
                       " ORDER BY id LIMIT 1");
    del = sq_prep(db, "DELETE FROM jobs WHERE id = ?1");
    take = sq_prep(db, "INSERT INTO workers VALUES('w', ?1, ?2) ON"
                       " CONFLICT(name) DO UPDATE SET job = excluded.job,"
                       " run_ms = excluded.run_ms");
    stat = sq_prep(db, "INSERT INTO stats VALUES('processed', 1) ON"
                       " CONFLICT(key) DO UPDATE SET value = value + 1");
    sqlite3_bind_text(ins, 1, payload, -1, SQLITE_STATIC);

    t0 = mono_us();
    for (i = 0; i < n; i++) {
        sq_run(begin);
        sq_run(ins);
        sq_run(commit);
    }
    r1 = (double)n * 1e6 / (double)(mono_us() - t0);

    t0 = mono_us();
    for (i = 0; i < n; i++) {
        if (i % 100 == 0) sq_run(begin);
        sq_run(ins);
        if (i % 100 == 99 || i == n - 1) sq_run(commit);
    }
    r100 = (double)n * 1e6 / (double)(mono_us() - t0);

    t0 = mono_us();
    for (i = 0; i < n; i++) {
        sqlite3_int64 id;
        sq_run(begin);
        sq_check(db, sqlite3_step(head), "head");
        id = sqlite3_column_int64(head, 0);
        sqlite3_bind_text(take, 1, (const char *)sqlite3_column_text(head, 1),
                          -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(take, 2, (sqlite3_int64)(wall_us() / 1000));
        sqlite3_reset(head);
        sqlite3_bind_int64(del, 1, id);
        sq_run(del);
        sq_run(take);
        sq_run(stat);
        sq_run(commit);
    }
    rp = (double)n * 1e6 / (double)(mono_us() - t0);

    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_finalize(ins);
    sqlite3_finalize(head);
    sqlite3_finalize(del);
    sqlite3_finalize(take);
    sqlite3_finalize(stat);
    sqlite3_close(db);
    remove(path);
    printf("{\"tx1\":%.1f,\"tx100\":%.1f,\"process\":%.1f}\n", r1, r100, rp);
    return 0;
}

/* ------------------------------------------------------------- Report --- */

int bench_report(const char *results, const char *out_json);

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";

    setvbuf(stdout, NULL, _IOLBF, 0);
    /* As `stellar run` does (and most servers): a write to a closed socket
     * fails with EPIPE instead of killing the process. */
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(cmd, "enqueue") == 0 && argc == 5)
        return cmd_enqueue(argv[2], arg_long(argv[3], "N"),
                           arg_long(argv[4], "THREADS"));
    if (strcmp(cmd, "batch") == 0 && argc == 5)
        return cmd_batch(argv[2], arg_long(argv[3], "N"),
                         arg_long(argv[4], "BATCH"));
    if (strcmp(cmd, "process") == 0 && argc == 5)
        return cmd_process(argv[2], arg_long(argv[3], "N"),
                           arg_long(argv[4], "PROCS"), false);
    if (strcmp(cmd, "process-limited") == 0 && argc == 5)
        return cmd_process(argv[2], arg_long(argv[3], "N"),
                           arg_long(argv[4], "PROCS"), true);
    if (strcmp(cmd, "latency") == 0 && argc == 5)
        return cmd_latency(argv[2], arg_long(argv[3], "N"),
                           arg_long(argv[4], "PROCS"));
    if (strcmp(cmd, "delayed") == 0 && argc == 5)
        return cmd_delayed(argv[2], arg_long(argv[3], "N"),
                           arg_long(argv[4], "PROCS"));
    if (strcmp(cmd, "load") == 0 && argc == 4)
        return cmd_load(argv[2], arg_long(argv[3], "N"));
    if (strcmp(cmd, "sqlite-limit") == 0 && argc == 4)
        return cmd_sqlite_limit(argv[2], arg_long(argv[3], "N"));
    if (strcmp(cmd, "report") == 0 && argc == 4)
        return bench_report(argv[2], argv[3]);
    fprintf(
        stderr,
        "usage: stellar_bench enqueue|batch|process|process-limited|latency|"
        "delayed URL N "
        "ARG\n       stellar_bench load URL N\n"
        "       stellar_bench sqlite-limit PATH N\n"
        "       stellar_bench report RESULTS.jsonl OUT.json\n");
    return 2;
}
