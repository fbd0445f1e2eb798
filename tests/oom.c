/*
 * oom.c: out-of-memory paths (issue 11), once per backend.
 *
 * Each test runs calls under the allocation-failure hook (internal.h): for
 * n = 1, 2, 3, ... the nth allocation of the call fails, either once or,
 * in a second pass, along with every allocation after it, until a round
 * passes with no allocation failed. Every round must end cleanly:
 *   - the call returns STELLAR_OK or STELLAR_ENOMEM, and on an error fills
 *     stellar_error with that code and a message;
 *   - a call that returned STELLAR_OK changed storage exactly as a run
 *     without failures does, and handed out the same result;
 *   - a call that failed changed nothing, or all that a call without
 *     failures changes (its reply lost after the atomic write, as when a
 *     connection drops; Redis builds replies after its script ran): never
 *     a part of it;
 *   - nothing leaks (ASan's leak checker runs when each test's process
 *     exits: `make asan`), nothing crashes.
 * Storage is compared through a dump of everything the backend holds,
 * taken on a connection of the test's own; before each round it is wiped
 * and set up again, so every round starts from the same state.
 *
 * The hook fails Stellar's allocations and jansson's (which allocates
 * through Stellar's; its parser fails as a whole, see json.c); SQLite and
 * hiredis allocate on their own and are not hooked. The hook is per
 * thread: a test fails allocations in the thread it runs on, and the worker
 * cycle test in the processor's thread, from inside a task. Not covered:
 * the scheduler's thread (its backend calls are, below) and the HTTP API.
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
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS     1800000000000LL /* the clock of raw backend calls */
#define WORKER     "host:7+1"
#define AT_MS      1900000000000LL /* a delayed job's time */
#define MAX_ROUNDS 100000

/* ---------------------------------------------------------- Fixture --- */

struct fx {
    const struct test_ctx *t;
    stellar *h;    /* a handle with the tasks below, not started */
    st_backend *b; /* the test's own connection: setup and dumps */
    stellar *h2;   /* a handle a round opens (open, register, start) */
    /* What a call takes, made by the setup. */
    json_t *in;
    char *entry;
    /* What the call under test handed out. */
    json_t *out;
    int64_t n;
    st_reserved got;
};

static int noop_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api, (void)params, (void)next;
    return STELLAR_OK;
}

static const char *const queue_lock[] = {"queueLock", NULL};
static const stellar_task task_job = {
    .name = "job", .description = "a job", .queue = "q", .run = noop_run};
static const stellar_task task_tick = {.name = "tick",
                                       .description = "a periodic job",
                                       .queue = "q",
                                       .frequency = 60000,
                                       .run = noop_run};
static const stellar_task task_locked = {.name = "locked",
                                         .description = "with queueLock",
                                         .queue = "q",
                                         .plugins = queue_lock,
                                         .run = noop_run};

static void register_tasks(stellar *h)
{
    reg(h, &task_job);
    reg(h, &task_tick);
    reg(h, &task_locked);
}

static void fx_init(struct fx *f, const struct test_ctx *t)
{
    memset(f, 0, sizeof *f);
    f->t = t;
    f->h = open_h_at(t, NULL, STELLAR_LOG_DEBUG);
    register_tasks(f->h);
    f->b = raw_open(t);
}

static void fx_free(struct fx *f)
{
    json_decref(f->in);
    st_free(f->entry);
    st_backend_close(f->b);
    stellar_close(f->h);
}

/* Empties storage, with a client of the backend's own. */
static void wipe(const struct fx *f)
{
    if (!is_redis(f->t)) {
        sqlite3 *db = NULL;
        char *msg = NULL;
        ASSERT_EQ(SQLITE_OK, sqlite3_open(test_path(f->t, "stellar.db"), &db));
        sqlite3_busy_timeout(db, 5000);
        if (sqlite3_exec(db,
                         "PRAGMA synchronous = OFF;" /* a test: no fsync */
                         "DELETE FROM queues; DELETE FROM jobs;"
                         " DELETE FROM delayed; DELETE FROM workers;"
                         " DELETE FROM stats; DELETE FROM failed;"
                         " DELETE FROM kv",
                         NULL, NULL, &msg) != SQLITE_OK)
            FAIL("wipe: %s", msg);
        sqlite3_close(db);
        return;
    }
#ifdef STELLAR_HAVE_REDIS
    {
        redisContext *c = redisConnectUnix(test_path(f->t, "redis.sock"));
        redisReply *r;
        if (!c || c->err) FAIL("wipe: cannot connect to redis");
        r = redisCommand(c, "FLUSHALL");
        if (!r || r->type == REDIS_REPLY_ERROR) FAIL("wipe: FLUSHALL failed");
        freeReplyObject(r);
        redisFree(c);
    }
#endif
}

/* A failed entry without its times (failed_at, a backtrace naming the
 * moment), as a parsed value; its text if it is not JSON. */
static json_t *entry_value(json_t *raw)
{
    json_t *v =
        st_json_parse(json_string_value(raw), json_string_length(raw), NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        return json_incref(raw);
    }
    json_object_del(v, "failed_at");
    json_object_del(v, "backtrace");
    return v;
}

/*
 * Everything storage holds, as one JSON value: queues and their jobs,
 * delayed jobs by time (or, with loose_times, in time order only), the
 * failed list, workers, stats and kv values (not their expiry, which
 * depends on the clock, nor with loose_times the value of a lock, which
 * is a time). On Redis, kv_scan("") lists every key of the
 * namespace: the Resque keys (again) as well.
 */
static json_t *dump(const struct fx *f, bool loose_times)
{
    st_backend *b = f->b;
    stellar_error e = {0};
    json_t *d = json_object(), *names = NULL, *a = NULL, *x = NULL, *v;
    json_t *delayed = loose_times ? json_array() : json_object();
    const char *k;
    size_t i;

    ASSERT_OK(b->ops->queues(b, &names, &e), &e);
    x = json_object();
    for (i = 0; i < json_array_size(names); i++) {
        const char *q = json_string_value(json_array_get(names, i));
        ASSERT_OK(b->ops->queued(b, q, 0, -1, &a, &e), &e);
        json_object_set_new(x, q, a);
    }
    json_decref(names);
    json_object_set_new(d, "queues", x);

    ASSERT_OK(b->ops->timestamps(b, &names, &e), &e);
    for (i = 0; i < json_array_size(names); i++) {
        json_int_t ts = json_integer_value(json_array_get(names, i));
        char key[32];
        ASSERT_OK(b->ops->delayed_at(b, ts, &a, &e), &e);
        snprintf(key, sizeof key, "%lld", (long long)ts);
        if (loose_times) {
            json_array_extend(delayed, a);
            json_decref(a);
        } else {
            json_object_set_new(delayed, key, a);
        }
    }
    json_decref(names);
    json_object_set_new(d, "delayed", delayed);

    ASSERT_OK(b->ops->failed_range(b, 0, -1, &a, &e), &e);
    x = json_array();
    for (i = 0; i < json_array_size(a); i++)
        json_array_append_new(x, entry_value(json_array_get(a, i)));
    json_decref(a);
    json_object_set_new(d, "failed", x);

    ASSERT_OK(b->ops->workers(b, &x, &e), &e);
    json_object_set_new(d, "workers", x);
    ASSERT_OK(b->ops->stats(b, &x, &e), &e);
    json_object_set_new(d, "stats", x);

    x = json_object();
    ASSERT_OK(b->ops->kv_scan(b, "", &a, &e), &e);
    json_object_foreach(a, k, v)
    {
        /* Redis: the id of a processor's last reserve call, which every
         * call changes (the retry of a failed call sends the same). */
        if (strncmp(k, "stellar:reserve:", 16) == 0) continue;
        /* queueLock's value is the lock's expiry in seconds: a retry
         * that starts in the next second stores the next second. */
        if (loose_times && strncmp(k, "lock:", 5) == 0)
            json_object_set_new(x, k, json_string("(a time)"));
        else
            json_object_set(x, k, json_object_get(v, "value"));
    }
    json_decref(a);
    json_object_set_new(d, "kv", x);
    ASSERT_TRUE(d != NULL);
    return d;
}

static char *text(const json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS)
             : strdup("NULL");
}

static void assert_same(const char *op, int64_t n, const char *what,
                        const json_t *want, const json_t *got)
{
    char *w, *g;
    if (json_equal((json_t *)(uintptr_t)want, (json_t *)(uintptr_t)got) ||
        (!want && !got))
        return;
    w = text(want);
    g = text(got);
    FAIL("%s, allocation %lld failed: %s differs\n  want: %s\n  got:  %s", op,
         (long long)n, what, w, g);
}

/* --------------------------------------------------------- The loop --- */

/* One call under test. */
struct op {
    const char *name;
    /* Before each round (hook off): the state the call starts from. */
    void (*setup)(struct fx *f);
    /* The call, with the hook armed; its results go to f->out, f->n and
     * f->got. */
    int (*call)(struct fx *f, stellar_error *e);
    /* Optional: blanks what changes from run to run in f->out. */
    void (*norm)(json_t *out);
    /* Optional: after each round (hook off), e.g. closes f->h2. */
    void (*done)(struct fx *f, int rc);
    /* Optional: after the call (hook off), reads what it did into f->out. */
    void (*collect)(struct fx *f);
    bool loose_times; /* the call delays a job to a time of its own */
    bool async;       /* on success, threads change storage: compare it
                         only after an error */
    bool retried;     /* an error may leave work half done, for the retry
                         of the same call to finish (a processor's
                         reserve): after an error, the call runs again
                         without the hook and must then do what a call
                         without failures does */
    bool no_dump;     /* storage is not compared (the call has no effect on
                         it, or one that needs its own check) */
    bool undoes;      /* on an error it undoes what it did so far, which
                         takes memory too: when every allocation after the
                         failed one fails as well, that may not be possible,
                         and only the error is checked (what is left behind
                         is what a crash there would leave) */
};

/* The outcome of one round, as a value to compare with the reference. */
static json_t *result_of(struct fx *f, const struct op *o)
{
    json_t *r;
    if (o->norm && f->out) o->norm(f->out);
    r = json_pack("{s:o*, s:I, s:s?, s:s?}", "out", f->out, "n",
                  (json_int_t)f->n, "got_queue", f->got.queue, "got_payload",
                  f->got.payload);
    f->out = NULL;
    f->n = 0;
    st_reserved_clear(&f->got);
    return r;
}

/* What a round without failures did: the reference. */
struct ref {
    json_t *state;  /* storage after it (NULL with no_dump) */
    json_t *result; /* result_of() */
};

/* Runs o once with the nth allocation failing (and with repeat, all after
 * it); n = 0 is the reference round, which fills ref. Checks a round
 * against ref. Returns how many allocations the hook failed. */
static int64_t round_of(struct fx *f, const struct op *o, int64_t n,
                        bool repeat, struct ref *ref)
{
    stellar_error e;
    json_t *before = NULL, *after = NULL, *res;
    int64_t failed;
    int rc;

    wipe(f);
    if (o->setup) o->setup(f);
    if (!o->no_dump) before = dump(f, o->loose_times);
    memset(&e, 0, sizeof e);
    st_alloc_fail_after(n, repeat);
    rc = o->call(f, &e);
    failed = st_alloc_failures();
    st_alloc_fail_after(0, false);

    if (rc < 0 && (e.code != rc || !e.msg[0]))
        FAIL("%s, allocation %lld failed: returned %s, but the error says "
             "%s: '%s'",
             o->name, (long long)n, stellar_err_name(rc),
             stellar_err_name(e.code), e.msg);
    if (failed == 0 && rc != STELLAR_OK)
        FAIL("%s without a failed allocation returned %s: %s", o->name,
             stellar_err_name(rc), e.msg);
    if (rc != STELLAR_OK && rc != STELLAR_ENOMEM)
        FAIL("%s, allocation %lld failed: returned %s, not ENOMEM: %s", o->name,
             (long long)n, stellar_err_name(rc), e.msg);
    if (rc < 0 && o->retried) {
        memset(&e, 0, sizeof e);
        rc = o->call(f, &e);
        if (rc != STELLAR_OK)
            FAIL("%s, allocation %lld failed: the retry returned %s: %s",
                 o->name, (long long)n, stellar_err_name(rc), e.msg);
    }
    if (o->collect) o->collect(f);
    res = result_of(f, o);
    if (!o->no_dump && !(o->async && rc == STELLAR_OK))
        after = dump(f, o->loose_times);
    if (n == 0) {
        ref->result = res;
        ref->state = after;
        res = after = NULL;
    } else if (rc == STELLAR_OK) {
        assert_same(o->name, n, "the result", ref->result, res);
        if (after) assert_same(o->name, n, "storage", ref->state, after);
    } else if (after && !(o->undoes && repeat) && !json_equal(before, after) &&
               !(ref->state && json_equal(ref->state, after))) {
        /* Neither nothing nor all of it: a part. */
        assert_same(o->name, n, "storage after the error", before, after);
    }
    if (o->done) o->done(f, rc);
    json_decref(before);
    json_decref(after);
    json_decref(res);
    return failed;
}

/* The loop: a reference round, then rounds failing the 1st, 2nd, ...
 * allocation, once and then with all that follow it, until a round needs
 * no more allocations than were let through. */
static void oom_loop(struct fx *f, const struct op *o)
{
    struct ref ref = {NULL, NULL};
    int64_t n = 0;
    int pass;

    round_of(f, o, 0, false, &ref);
    for (pass = 0; pass < 2; pass++) {
        for (n = 1; n < MAX_ROUNDS; n++)
            if (round_of(f, o, n, pass == 1, &ref) == 0) break;
        if (n == MAX_ROUNDS) FAIL("%s: no end to its allocations", o->name);
    }
    test_note("%-30s %4lld allocations", o->name, (long long)(n - 1));
    json_decref(ref.state);
    json_decref(ref.result);
}

static void oom_loop_all(const struct test_ctx *t, const struct op *ops,
                         size_t n)
{
    struct fx f;
    size_t i;

    fx_init(&f, t);
    for (i = 0; i < n; i++)
        oom_loop(&f, &ops[i]);
    fx_free(&f);
}

/* ------------------------------------------------------------ Setup --- */

#define OLD_MS 1500000000000LL /* a dead worker's last ping */

static char *payload(const char *task, const char *queue, const char *params)
{
    json_t *p = params ? json_loads(params, 0, NULL) : NULL;
    char *s = st_payload_build(task, queue, p, NULL);
    json_decref(p);
    ASSERT_TRUE(s != NULL);
    return s;
}

static void push(struct fx *f, const char *queue, const char *task,
                 const char *params)
{
    stellar_error e = {0};
    char *s = payload(task, queue, params);
    ASSERT_OK(f->b->ops->push(f->b, queue, (const char *const *)&s, 1, &e), &e);
    st_free(s);
}

static void push_at(struct fx *f, int64_t at, const char *task,
                    const char *params)
{
    stellar_error e = {0};
    char *s = payload(task, "q", params);
    ASSERT_OK(f->b->ops->push_at(f->b, at, "q", s, false, &e), &e);
    st_free(s);
}

static const char *const worker_queues[] = {"q", "r", NULL};
static const st_worker_id worker = {WORKER, "q,r", worker_queues};

/* Registers WORKER at `at`; with hold, it reserves the head of q. */
static void put_worker(struct fx *f, int64_t at, bool hold)
{
    st_done none = {ST_DONE_NONE, NULL, NULL, NULL};
    stellar_error e = {0};
    st_reserved got = {0};

    ASSERT_OK(f->b->ops->worker_register(f->b, &worker, at, &e), &e);
    if (!hold) return;
    ASSERT_OK(f->b->ops->reserve(f->b, &worker, &none, at, &got, &e), &e);
    st_reserved_clear(&got);
}

/* A failed entry for the job WORKER holds (f->entry). */
static void make_entry(struct fx *f)
{
    char *p = payload("job", "q", "{\"n\":1}");
    json_t *bt = json_pack("[s]", "at somewhere");

    st_free(f->entry);
    f->entry = st_failed_entry(WORKER, "q", p, "Error", "it broke", bt, NOW_MS);
    ASSERT_TRUE(f->entry != NULL);
    json_decref(bt);
    st_free(p);
}

/* Something of everything: jobs on q and r, two delayed jobs, WORKER
 * holding a job, a failed job, a queue lock. */
static void setup_all(struct fx *f)
{
    st_done fail = {ST_DONE_FAILED, NULL, NULL, NULL};
    stellar_error e = {0};
    bool set;

    push(f, "q", "job", "{\"n\":1}");
    push(f, "q", "job", "{\"n\":2}");
    push(f, "q", "job", "{\"n\":2}");
    push(f, "q", "job", "{\"n\":3}");
    push(f, "r", "other", NULL);
    push_at(f, AT_MS, "job", "{\"n\":4}");
    push_at(f, AT_MS + 5000, "job", "{\"n\":4}");
    push_at(f, AT_MS + 5000, "job", "{\"n\":5}");
    /* A failed job: WORKER takes {"n":1} and fails it. */
    make_entry(f);
    fail.failed_entry = f->entry;
    put_worker(f, OLD_MS, true);
    ASSERT_OK(f->b->ops->reserve(f->b, &worker, &fail, OLD_MS, NULL, &e), &e);
    /* Then holds {"n":2}. */
    ASSERT_OK(f->b->ops->reserve(f->b, &worker,
                                 &(st_done){ST_DONE_NONE, NULL, NULL, NULL},
                                 OLD_MS, &f->got, &e),
              &e);
    st_reserved_clear(&f->got);
    ASSERT_OK(
        f->b->ops->kv_set(f->b, "lock:job:q:[{}]", "123", 0, true, &set, &e),
        &e);
    ASSERT_OK(f->b->ops->kv_set(f->b, "workerslock:job:q:[{\"n\":2}]", "456",
                                60000, true, &set, &e),
              &e);
    ASSERT_OK(f->b->ops->stat_incr(f->b, "processed", 7, &e), &e);
}

/* The periodic task "tick", queued and delayed. */
static void setup_tick(struct fx *f)
{
    setup_all(f);
    push(f, "q", "tick", NULL);
    push_at(f, AT_MS, "tick", NULL);
}

/* The failed entry as stellar_failed() hands it out, in f->in. */
static void setup_failed(struct fx *f)
{
    stellar_error e = {0};
    json_t *a = NULL;

    setup_all(f);
    ASSERT_OK(stellar_failed(f->h, 0, -1, &a, &e), &e);
    ASSERT_EQ(1, json_array_size(a));
    json_decref(f->in);
    f->in = json_incref(json_array_get(a, 0));
    json_decref(a);
}

/* ---------------------------------------------------------- Enqueue --- */

static int call_enqueue(struct fx *f, stellar_error *e)
{
    return stellar_enqueue(f->h, "job", "{\"a\":[1,2.5,\"x\"],\"b\":null}",
                           NULL, e);
}

static int call_enqueue_queue(struct fx *f, stellar_error *e)
{
    return stellar_enqueue(f->h, "job", NULL, "elsewhere", e);
}

static int call_enqueue_at(struct fx *f, stellar_error *e)
{
    return stellar_enqueue_at(f->h, AT_MS, "job", "{\"a\":1}", NULL, e);
}

static int call_enqueue_in(struct fx *f, stellar_error *e)
{
    return stellar_enqueue_in(f->h, 3600000, "job", "{\"a\":1}", NULL, e);
}

static int call_enqueue_many(struct fx *f, stellar_error *e)
{
    static const char *const params[] = {"{\"i\":1}", NULL,
                                         "{\"i\":{\"j\":3}}"};
    return stellar_enqueue_many(f->h, "job", params, 3, NULL, e);
}

static int call_enqueue_locked(struct fx *f, stellar_error *e)
{
    return stellar_enqueue(f->h, "locked", "{\"k\":1}", NULL, e);
}

/* A call of the API or the backend that changes storage (or reads it),
 * from the state `setup` makes. */
#define OP(name_, setup_, call_)                                               \
    {                                                                          \
        .name = name_, .setup = setup_, .call = call_                          \
    }

static const struct op enqueue_ops[] = {
    OP("enqueue", setup_all, call_enqueue),
    OP("enqueue to a queue", NULL, call_enqueue_queue),
    OP("enqueueAt", setup_all, call_enqueue_at),
    {.name = "enqueueIn", .call = call_enqueue_in, .loose_times = true},
    OP("enqueue many", setup_all, call_enqueue_many),
    /* Releases the lock it took when the write fails. */
    {.name = "enqueue with queueLock",
     .call = call_enqueue_locked,
     .undoes = true,
     .loose_times = true},
};

static void enqueue_calls_store_the_job_or_nothing(struct test_ctx *t)
{
    oom_loop_all(t, enqueue_ops, sizeof enqueue_ops / sizeof enqueue_ops[0]);
}

/* ------------------------------------------------------- Inspection --- */

static int call_stats(struct fx *f, stellar_error *e)
{
    return stellar_stats(f->h, &f->out, e);
}
static int call_failed_count(struct fx *f, stellar_error *e)
{
    return stellar_failed_count(f->h, &f->n, e);
}
static int call_failed(struct fx *f, stellar_error *e)
{
    return stellar_failed(f->h, 0, -1, &f->out, e);
}
static int call_queues(struct fx *f, stellar_error *e)
{
    return stellar_queues(f->h, &f->out, e);
}
static int call_length(struct fx *f, stellar_error *e)
{
    return stellar_length(f->h, "q", &f->n, e);
}
static int call_latency(struct fx *f, stellar_error *e)
{
    int rc = stellar_latency(f->h, "q", &f->n, e);
    f->n = f->n >= 0; /* an age: it changes */
    return rc;
}
static int call_workers(struct fx *f, stellar_error *e)
{
    return stellar_workers(f->h, &f->out, e);
}
static int call_timestamps(struct fx *f, stellar_error *e)
{
    return stellar_timestamps(f->h, &f->out, e);
}
static int call_queued(struct fx *f, stellar_error *e)
{
    return stellar_queued(f->h, "q", 0, -1, &f->out, e);
}
static int call_delayed_at(struct fx *f, stellar_error *e)
{
    return stellar_delayed_at(f->h, AT_MS + 5000, &f->out, e);
}
static int call_all_delayed(struct fx *f, stellar_error *e)
{
    return stellar_all_delayed(f->h, &f->out, e);
}
static int call_scheduled_at(struct fx *f, stellar_error *e)
{
    return stellar_scheduled_at(f->h, NULL, "job", "{\"n\":4}", &f->out, e);
}
static int call_details(struct fx *f, stellar_error *e)
{
    return stellar_details(f->h, &f->out, e);
}
static int call_working_on(struct fx *f, stellar_error *e)
{
    return stellar_working_on(f->h, WORKER, &f->out, e);
}
static int call_all_working_on(struct fx *f, stellar_error *e)
{
    return stellar_all_working_on(f->h, &f->out, e);
}
static int call_locks(struct fx *f, stellar_error *e)
{
    return stellar_locks(f->h, &f->out, e);
}
static int call_tasks_json(struct fx *f, stellar_error *e)
{
    f->out = stellar_tasks_json(f->h);
    return f->out ? STELLAR_OK
                  : st_fail(e, STELLAR_ENOMEM, "stellar_tasks_json: NULL");
}

/* details: queue latencies change with the clock. */
static void norm_details(json_t *out)
{
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(out, "queues"), k, v)
    {
        json_object_del(v, "latency_ms");
    }
}

/* locks: expiries are absolute times. */
static void norm_locks(json_t *out)
{
    const char *k;
    json_t *v;
    json_object_foreach(out, k, v)
    {
        json_object_del(v, "expires");
    }
}

#define READ_OP(name_, call_, norm_)                                           \
    {                                                                          \
        .name = name_, .setup = setup_all, .call = call_, .norm = norm_        \
    }
static const struct op inspection_ops[] = {
    READ_OP("stats", call_stats, NULL),
    READ_OP("failedCount", call_failed_count, NULL),
    READ_OP("failed", call_failed, NULL),
    READ_OP("queues", call_queues, NULL),
    READ_OP("length", call_length, NULL),
    READ_OP("latency", call_latency, NULL),
    READ_OP("workers", call_workers, NULL),
    READ_OP("timestamps", call_timestamps, NULL),
    READ_OP("queued", call_queued, NULL),
    READ_OP("delayedAt", call_delayed_at, NULL),
    READ_OP("allDelayed", call_all_delayed, NULL),
    READ_OP("scheduledAt", call_scheduled_at, NULL),
    READ_OP("details", call_details, norm_details),
    READ_OP("workingOn", call_working_on, NULL),
    READ_OP("allWorkingOn", call_all_working_on, NULL),
    READ_OP("locks", call_locks, norm_locks),
    READ_OP("tasks", call_tasks_json, NULL),
};

static void inspection_calls_answer_in_full_or_fail_cleanly(struct test_ctx *t)
{
    oom_loop_all(t, inspection_ops,
                 sizeof inspection_ops / sizeof inspection_ops[0]);
}

/* ------------------------------------------------------- Management --- */

static int call_del(struct fx *f, stellar_error *e)
{
    return stellar_del(f->h, NULL, "job", "{\"n\":2}", 0, &f->n, e);
}
static int call_del_delayed(struct fx *f, stellar_error *e)
{
    return stellar_del_delayed(f->h, NULL, "job", "{\"n\":4}", &f->out, e);
}
static int call_del_delayed_at(struct fx *f, stellar_error *e)
{
    return stellar_del_delayed_at(f->h, AT_MS + 5000, &f->n, e);
}
static int call_del_all_delayed(struct fx *f, stellar_error *e)
{
    return stellar_del_all_delayed(f->h, &f->n, e);
}
static int call_del_queue(struct fx *f, stellar_error *e)
{
    return stellar_del_queue(f->h, "q", e);
}
static int call_enqueue_recurrent(struct fx *f, stellar_error *e)
{
    return stellar_enqueue_recurrent(f->h, "tick", e);
}
static int call_stop_recurrent(struct fx *f, stellar_error *e)
{
    return stellar_stop_recurrent(f->h, "tick", &f->n, e);
}
static int call_del_lock(struct fx *f, stellar_error *e)
{
    return stellar_del_lock(f->h, "lock:job:q:[{}]", &f->n, e);
}
static int call_remove_failed(struct fx *f, stellar_error *e)
{
    return stellar_remove_failed(f->h, f->in, &f->n, e);
}
static int call_retry_failed(struct fx *f, stellar_error *e)
{
    return stellar_retry_and_remove_failed(f->h, f->in, e);
}
static int call_clean_fail(struct fx *f, stellar_error *e)
{
    return stellar_clean_old_workers(f->h, 1000, false, &f->out, e);
}
static int call_clean_requeue(struct fx *f, stellar_error *e)
{
    return stellar_clean_old_workers(f->h, 1000, true, &f->out, e);
}

static const struct op management_ops[] = {
    OP("del", setup_all, call_del),
    OP("delDelayed", setup_all, call_del_delayed),
    OP("delDelayedAt", setup_all, call_del_delayed_at),
    OP("delAllDelayed", setup_all, call_del_all_delayed),
    OP("delQueue", setup_all, call_del_queue),
    OP("enqueueRecurrent", setup_tick, call_enqueue_recurrent),
    OP("stopRecurrent", setup_tick, call_stop_recurrent),
    OP("delLock", setup_all, call_del_lock),
    OP("removeFailed", setup_failed, call_remove_failed),
    OP("retryAndRemoveFailed", setup_failed, call_retry_failed),
    OP("cleanOldWorkers", setup_all, call_clean_fail),
    OP("cleanOldWorkers requeue", setup_all, call_clean_requeue),
};

static void management_calls_change_all_or_nothing(struct test_ctx *t)
{
    oom_loop_all(t, management_ops,
                 sizeof management_ops / sizeof management_ops[0]);
}

/* ---------------------------------------------- Backend: the worker --- */

/* What a processor and the scheduler ask of the backend, called directly
 * (their threads never see the hook). */
static int call_reserve(struct fx *f, enum st_outcome outcome, bool out,
                        stellar_error *e)
{
    st_done done = {outcome, NULL, NULL, NULL};
    if (outcome == ST_DONE_FAILED) done.failed_entry = f->entry;
    if (outcome == ST_DONE_REQUEUE) {
        done.queue = "q";
        done.payload = f->entry; /* any text does */
    }
    return f->b->ops->reserve(f->b, &worker, &done, NOW_MS,
                              out ? &f->got : NULL, e);
}
static int call_reserve_idle(struct fx *f, stellar_error *e)
{
    return call_reserve(f, ST_DONE_NONE, true, e);
}
static int call_reserve_ok(struct fx *f, stellar_error *e)
{
    return call_reserve(f, ST_DONE_OK, true, e);
}
static int call_reserve_failed(struct fx *f, stellar_error *e)
{
    return call_reserve(f, ST_DONE_FAILED, true, e);
}
static int call_reserve_requeue(struct fx *f, stellar_error *e)
{
    return call_reserve(f, ST_DONE_REQUEUE, true, e);
}
static int call_final_ack(struct fx *f, stellar_error *e)
{
    return call_reserve(f, ST_DONE_FAILED, false, e);
}
static int call_promote(struct fx *f, stellar_error *e)
{
    int64_t next = 0;
    int rc = f->b->ops->promote_due(f->b, AT_MS + 1000, 100, &f->n, &next, e);
    f->n = f->n * 10 + (next > 0);
    return rc;
}
static int call_register(struct fx *f, stellar_error *e)
{
    static const char *const qs[] = {"a", "b", NULL};
    st_worker_id w = {"host:8+2", "a,b", qs};
    return f->b->ops->worker_register(f->b, &w, NOW_MS, e);
}
static int call_ping(struct fx *f, stellar_error *e)
{
    const st_worker_id *ws[] = {&worker};
    return f->b->ops->ping(f->b, ws, 1, NOW_MS, e);
}
/* WORKER, its job finished. */
static void setup_idle(struct fx *f)
{
    st_done ok = {ST_DONE_OK, NULL, NULL, NULL};
    stellar_error e = {0};
    setup_all(f);
    ASSERT_OK(f->b->ops->reserve(f->b, &worker, &ok, NOW_MS, NULL, &e), &e);
}
static int call_unregister(struct fx *f, stellar_error *e)
{
    return f->b->ops->worker_unregister(f->b, &worker, e);
}
static int call_clean_worker(struct fx *f, stellar_error *e)
{
    char *held = NULL;
    int rc =
        f->b->ops->clean_worker(f->b, WORKER, ST_CLEAN_FAIL, NULL, &held, e);
    f->n = held != NULL;
    st_free(held);
    return rc;
}
static int call_kv_set(struct fx *f, stellar_error *e)
{
    bool set = false;
    int rc = f->b->ops->kv_set(f->b, "lock:x", "v", 60000, true, &set, e);
    f->n = set;
    return rc;
}
static int call_kv_get(struct fx *f, stellar_error *e)
{
    char *v = NULL;
    int rc = f->b->ops->kv_get(f->b, "lock:job:q:[{}]", &v, e);
    f->n = v && strcmp(v, "123") == 0;
    st_free(v);
    return rc;
}
static int call_kv_incr(struct fx *f, stellar_error *e)
{
    return f->b->ops->kv_incr(f->b, "counter", 3, 60000, &f->n, e);
}
static int call_kv_expire(struct fx *f, stellar_error *e)
{
    bool set = false;
    int rc =
        f->b->ops->kv_expire(f->b, "lock:job:q:[{}]", "123", 60000, &set, e);
    f->n = set;
    return rc;
}
/* What setup_all delayed at AT_MS, as stored. */
#define N4 "{\"class\":\"job\",\"queue\":\"q\",\"args\":[{\"n\":4}]}"
static int call_push_at_later(struct fx *f, stellar_error *e)
{
    return f->b->ops->push_at(f->b, AT_MS, "q", N4, true, e);
}
static int call_replace(struct fx *f, stellar_error *e)
{
    return f->b->ops->replace(f->b, "q", N4, ST_REPLACE_NOW, &f->n, e);
}
static int call_stat_incr(struct fx *f, stellar_error *e)
{
    return f->b->ops->stat_incr(f->b, "processed", 2, e);
}

/* A processor retries a reserve that failed, with the same done. */
#define RESERVE_OP(name_, call_)                                               \
    {                                                                          \
        .name = name_, .setup = setup_all, .call = call_, .retried = true      \
    }
static const struct op backend_ops[] = {
    RESERVE_OP("reserve", call_reserve_idle),
    RESERVE_OP("reserve, ack ok", call_reserve_ok),
    RESERVE_OP("reserve, ack failed", call_reserve_failed),
    RESERVE_OP("reserve, requeue", call_reserve_requeue),
    RESERVE_OP("final ack", call_final_ack),
    OP("promote due", setup_all, call_promote),
    OP("register a worker", setup_all, call_register),
    OP("ping", setup_all, call_ping),
    OP("unregister", setup_idle, call_unregister),
    OP("clean a worker", setup_all, call_clean_worker),
    OP("kv set", setup_all, call_kv_set),
    OP("kv get", setup_all, call_kv_get),
    OP("kv incr", setup_all, call_kv_incr),
    OP("kv expire", setup_all, call_kv_expire),
    OP("push at, later", setup_all, call_push_at_later),
    OP("replace", setup_all, call_replace),
    OP("stat incr", setup_all, call_stat_incr),
};

static void worker_and_scheduler_backend_calls_are_atomic(struct test_ctx *t)
{
    oom_loop_all(t, backend_ops, sizeof backend_ops / sizeof backend_ops[0]);
}

/* -------------------------------------------- Open, register, start --- */

static int call_open(struct fx *f, stellar_error *e)
{
    static const char *const qs[] = {"q", "r", NULL};
    stellar_options o = {0};
    o.url = f->t->url;
    o.queues = qs;
    o.name = "oom";
    return stellar_open(&f->h2, &o, e);
}

static void close_h2(struct fx *f, int rc)
{
    (void)rc;
    stellar_close(f->h2);
    f->h2 = NULL;
}

static void setup_h2(struct fx *f)
{
    stellar_options o = {0};
    o.processors = 2;
    o.poll_ms = 10;
    f->h2 = open_h_at(f->t, &o, STELLAR_LOG_DEBUG);
}

static const stellar_task task_opts = {
    .name = "opts",
    .description = "with plugins and their options",
    .queue = "q",
    .frequency = 1000,
    .plugins = queue_lock,
    .plugin_options = "{\"queueLock\":{\"lockTimeout\":10},\"x\":[1,2]}",
    .run = noop_run};

static int call_register_task(struct fx *f, stellar_error *e)
{
    return stellar_task_register(f->h2, &task_opts, e);
}

static void collect_tasks(struct fx *f)
{
    f->out = stellar_tasks_json(f->h2);
}

static int call_start(struct fx *f, stellar_error *e)
{
    return stellar_start(f->h2, e);
}

static void setup_start(struct fx *f)
{
    setup_h2(f);
    register_tasks(f->h2);
}

static const struct op handle_ops[] = {
    {.name = "open", .setup = setup_all, .call = call_open, .done = close_h2},
    {.name = "register a task",
     .setup = setup_h2,
     .call = call_register_task,
     .done = close_h2,
     .collect = collect_tasks},
    /* Unregisters the processors it registered. */
    {.name = "start",
     .setup = setup_start,
     .call = call_start,
     .done = close_h2,
     .async = true,
     .undoes = true},
};

static void open_register_and_start_fail_cleanly(struct test_ctx *t)
{
    oom_loop_all(t, handle_ops, sizeof handle_ops / sizeof handle_ops[0]);
}

/* ------------------------------------------------ The worker cycle --- */

/*
 * A processor's own allocations, after a task ran: the task "subject"
 * queues a "probe" job, then arms the hook in its processor's thread and
 * returns (failing, with the params {"fail":true}). What the processor
 * then does (the run's error, the failed entry, the ack, the reserve of
 * the probe) runs with the nth allocation failing. The probe reads how
 * many allocations failed, disarms the hook and reports. Every job must
 * end processed or failed, once.
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int64_t arm;    /* the n the subject arms, once (then 0) */
    int64_t probes; /* how many the subject queued */
    bool reported;  /* the probe ran */
    int64_t failed; /* what st_alloc_failures() said then */
} cyc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false, 0};

static int subject_run(stellar_api *api, const json_t *params,
                       stellar_next *next)
{
    stellar_error e = {0};
    bool fail = json_is_true(json_object_get(params, "fail"));
    int64_t n;

    ASSERT_OK(stellar_enqueue(stellar_api_handle(api), "probe", NULL, NULL, &e),
              &e);
    pthread_mutex_lock(&cyc.mu);
    cyc.probes++;
    n = cyc.arm;
    cyc.arm = 0; /* a job put back runs again: without the hook */
    pthread_mutex_unlock(&cyc.mu);
    if (n) st_alloc_fail_after(n, false);
    return fail ? stellar_fail(next, "subject failed as asked") : STELLAR_OK;
}

static int probe_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    int64_t failed = st_alloc_failures();
    (void)api, (void)params, (void)next;
    st_alloc_fail_after(0, false);
    pthread_mutex_lock(&cyc.mu);
    cyc.failed = failed;
    cyc.reported = true;
    pthread_cond_broadcast(&cyc.cond);
    pthread_mutex_unlock(&cyc.mu);
    return STELLAR_OK;
}

static const stellar_task task_subject = {.name = "subject",
                                          .description = "arms the hook",
                                          .queue = "q",
                                          .run = subject_run};
static const stellar_task task_probe = {
    .name = "probe", .description = "reports", .queue = "q", .run = probe_run};

static int64_t cyc_probes(void)
{
    int64_t n;
    pthread_mutex_lock(&cyc.mu);
    n = cyc.probes;
    pthread_mutex_unlock(&cyc.mu);
    return n;
}

/* Every job of the rounds so far has ended, once: processed or failed
 * (with its entry on the failed list), none queued or running. */
static bool cycle_settled(stellar *h, int64_t jobs)
{
    stellar_error e = {0};
    json_t *w = NULL;
    const char *k;
    json_t *v;
    bool idle = true;
    int64_t failed = test_stat(h, "failed");

    if (test_stat(h, "processed") + failed != jobs ||
        test_failed_count(h) != failed || test_length(h, "q") != 0)
        return false;
    ASSERT_OK(stellar_workers(h, &w, &e), &e);
    json_object_foreach(w, k, v)
    {
        if (!json_is_null(json_object_get(v, "working_on"))) idle = false;
    }
    json_decref(w);
    return idle;
}

static void
a_processor_survives_failed_allocations_after_a_run(struct test_ctx *t)
{
    stellar_options o = {0};
    stellar_error e = {0};
    stellar *h;
    int64_t jobs = 0, n, allocs[2] = {0, 0};
    int fail;

    o.processors = 1;
    o.no_scheduler = true;
    o.poll_ms = 10;
    h = open_h_at(t, &o, STELLAR_LOG_DEBUG);
    ASSERT_OK(stellar_task_register(h, &task_subject, &e), &e);
    ASSERT_OK(stellar_task_register(h, &task_probe, &e), &e);
    ASSERT_OK(stellar_start(h, &e), &e);
    for (fail = 0; fail < 2; fail++) {
        for (n = 1; n < 10000; n++) {
            bool clean;
            pthread_mutex_lock(&cyc.mu);
            cyc.arm = n;
            cyc.reported = false;
            pthread_mutex_unlock(&cyc.mu);
            ASSERT_OK(stellar_enqueue(h, "subject",
                                      fail ? "{\"fail\":true}" : NULL, NULL,
                                      &e),
                      &e);
            /* The subject and the probe end (the probe is acked by the
             * next reserve, which finds q empty). A failed allocation may
             * fail the probe before it runs: then it never reports, and
             * the hook, which fails once, is off again. A job put back
             * runs again, and a subject then queues one more probe. */
            ASSERT_WAIT(cycle_settled(h, jobs + 1 + cyc_probes()), 20000);
            jobs++;
            pthread_mutex_lock(&cyc.mu);
            clean = cyc.reported && cyc.failed == 0;
            pthread_mutex_unlock(&cyc.mu);
            if (clean) break;
        }
        if (n == 10000) FAIL("no end to the processor's allocations");
        allocs[fail] = n - 1;
    }
    test_note("after a run that succeeded: %lld allocations, after one that "
              "failed: %lld",
              (long long)allocs[0], (long long)allocs[1]);
    stellar_close(h);
}

static const struct test tests[] = {
    {"enqueue calls store the job or nothing",
     enqueue_calls_store_the_job_or_nothing, 300},
    {"inspection calls answer in full or fail cleanly",
     inspection_calls_answer_in_full_or_fail_cleanly, 300},
    {"management calls change all or nothing",
     management_calls_change_all_or_nothing, 300},
    {"worker and scheduler backend calls are atomic",
     worker_and_scheduler_backend_calls_are_atomic, 300},
    {"open, register and start fail cleanly",
     open_register_and_start_fail_cleanly, 300},
    {"a processor survives failed allocations after a run",
     a_processor_survives_failed_allocations_after_a_run, 300},
};
TEST_MAIN(tests)
