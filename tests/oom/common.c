/*
 * common.c: what the oom tests share: the fixture (a handle with the
 * tasks, the test's own connection, storage wiped and dumped), the loop
 * that runs one call with its 1st, 2nd, ... allocation failing and checks
 * each round against a round without failures, and the states the calls
 * start from. The tests live in one file per topic beside this one;
 * main.c holds the table.
 */
#include "oom.h"

#define MAX_ROUNDS 100000

/* ---------------------------------------------------------- Fixture --- */

int noop_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api, (void)params, (void)next;
    return STELLAR_OK;
}

const char *const queue_lock[] = {"queueLock", NULL};
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

void register_tasks(stellar *h)
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

void oom_loop_all(const struct test_ctx *t, const struct op *ops, size_t n)
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
const st_worker_id worker = {WORKER, "q,r", worker_queues};

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
void setup_all(struct fx *f)
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
void setup_tick(struct fx *f)
{
    setup_all(f);
    push(f, "q", "tick", NULL);
    push_at(f, AT_MS, "tick", NULL);
}

/* The failed entry as stellar_failed() hands it out, in f->in. */
void setup_failed(struct fx *f)
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
