/*
 * control.c: queue control (issue 15) on every backend: pauses hold a
 * queue back without popping, resume and expiry; concurrency limits and
 * their permits (released on ack, fail, requeue and the clean-up of a dead
 * worker); the rate limit's sliding window; targets and rates checked.
 *
 * Most tests drive reserve through backend.h with workers registered by
 * hand, so each step is one atomic call and nothing depends on timing; one
 * runs real processors.
 */
#include "conformance.h"

/* A worker of queues (NULL-terminated) as a processor registers it, with
 * a connection of its own, as a processor has (a Redis connection keeps
 * the reserve call ids of one worker). */
struct wk {
    const char *qv[4];
    char qs[64];
    st_worker_id id;
    st_backend *b;
};

static void wk_init(const struct test_ctx *t, struct wk *w, const char *name,
                    const char *q1, const char *q2)
{
    stellar_error e = {0};
    st_backend *b;

    memset(w, 0, sizeof *w);
    b = w->b = raw_open(t);
    w->qv[0] = q1;
    w->qv[1] = q2;
    snprintf(w->qs, sizeof w->qs, "%s%s%s", q1, q2 ? "," : "", q2 ? q2 : "");
    w->id.name = name;
    w->id.queues_str = w->qs;
    w->id.queues = w->qv;
    ASSERT_OK(b->ops->worker_register(b, &w->id, st_now_ms(), &e), &e);
}

static void wk_close(struct wk *w)
{
    st_backend_close(w->b);
}

/* reserve for w after done (NULL: nothing held): the class and params of
 * the job it took as "class:n" in out, or "" if none (ENOTFOUND). */
static void take(struct wk *w, const st_done *done, char out[64])
{
    st_backend *b = w->b;
    st_done none = {ST_DONE_NONE, NULL, NULL, NULL};
    st_reserved got = {0};
    stellar_error e = {0};
    int rc =
        b->ops->reserve(b, &w->id, done ? done : &none, st_now_ms(), &got, &e);

    out[0] = '\0';
    if (rc == STELLAR_ENOTFOUND) return;
    ASSERT_OK(rc, &e);
    {
        json_t *p = json_loads(got.payload, 0, NULL);
        json_t *n =
            json_object_get(json_array_get(json_object_get(p, "args"), 0), "n");
        snprintf(out, 64, "%s:%lld",
                 json_string_value(json_object_get(p, "class")),
                 (long long)json_integer_value(n));
        json_decref(p);
    }
    st_reserved_clear(&got);
}

static const st_done ok_done = {ST_DONE_OK, NULL, NULL, NULL};

static void push(st_backend *b, const char *queue, const char *task, int n)
{
    char params[32], *payload;
    stellar_error e = {0};
    json_t *pj;

    snprintf(params, sizeof params, "{\"n\":%d}", n);
    pj = json_loads(params, 0, NULL);
    payload = st_payload_build(task, queue, pj, &e);
    json_decref(pj);
    ASSERT_TRUE(payload != NULL);
    ASSERT_OK(b->ops->push(b, queue, (const char *const *)&payload, 1, &e), &e);
    st_free(payload);
}

/* The backend's controls document (new reference). */
static json_t *controls_of(st_backend *b)
{
    stellar_error e = {0};
    json_t *c = NULL;
    ASSERT_OK(b->ops->controls(b, st_now_ms(), &c, &e), &e);
    return c;
}

/* running / started of target's limit, as controls() counts them. */
static int64_t use_of(st_backend *b, const char *target, const char *what)
{
    json_t *c = controls_of(b);
    int64_t n = json_integer_value(json_object_get(
        json_object_get(json_object_get(c, "limits"), target), what));
    json_decref(c);
    return n;
}

void a_paused_queue_is_held_back_in_place_and_resumed(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    struct wk w;
    char got[64];
    json_t *q, *c;
    int64_t removed = -1;

    push(b, "a", "record", 1);
    push(b, "a", "record", 2);
    push(b, "b", "record", 3);
    wk_init(t, &w, "host:1+1", "a", "b");
    ASSERT_OK(b->ops->pause(b, "a", 0, &e), &e);
    c = controls_of(b);
    ASSERT_JSON_EQ("{\"a\":0}", json_object_get(c, "paused"));
    json_decref(c);

    /* Its jobs stay where they are; the worker goes on to b. */
    take(&w, NULL, got);
    ASSERT_STR_EQ("record:3", got);
    take(&w, &ok_done, got);
    ASSERT_STR_EQ("", got);
    q = raw_queued(b, "a");
    ASSERT_EQ(2, json_array_size(q));
    ASSERT_TRUE(strstr(json_string_value(json_array_get(q, 0)), "\"n\":1"));
    json_decref(q);
    /* wait does not call an idle worker for a held-back job. */
    {
        int64_t t0 = st_mono_ms();
        ASSERT_OK(w.b->ops->wait(w.b, &w.id, 300, &e), &e);
        ASSERT_TRUE(st_mono_ms() - t0 >= 250);
    }

    ASSERT_OK(b->ops->resume(b, "a", &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_OK(b->ops->resume(b, "a", &removed, &e), &e);
    ASSERT_EQ(0, removed);
    take(&w, NULL, got);
    ASSERT_STR_EQ("record:1", got);
    take(&w, &ok_done, got);
    ASSERT_STR_EQ("record:2", got);
    wk_close(&w);
    st_backend_close(b);
}

void a_pause_for_a_while_ends_by_itself(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    struct wk w;
    char got[64];
    json_t *c;
    int64_t until, t0;

    push(b, "a", "record", 1);
    wk_init(t, &w, "host:1+1", "a", NULL);
    /* Over already: absent, listed nowhere. */
    ASSERT_OK(b->ops->pause(b, "a", 1, &e), &e);
    test_sleep_ms(20);
    c = controls_of(b);
    ASSERT_JSON_EQ("{}", json_object_get(c, "paused"));
    json_decref(c);
    take(&w, NULL, got);
    ASSERT_STR_EQ("record:1", got);

    /* A second: held, then taken with no one resuming it. Its until time
     * is the backend's clock plus the second (Redis: the server's, here
     * on this machine). */
    push(b, "a", "record", 2);
    t0 = st_now_ms();
    ASSERT_OK(b->ops->pause(b, "a", 1000, &e), &e);
    c = controls_of(b);
    until =
        json_integer_value(json_object_get(json_object_get(c, "paused"), "a"));
    json_decref(c);
    ASSERT_TRUE(until >= t0 + 1000 - 50 && until <= st_now_ms() + 1000 + 50);
    take(&w, &ok_done, got);
    ASSERT_STR_EQ("", got);
    ASSERT_WAIT((take(&w, NULL, got), got[0] != '\0'), 10000);
    ASSERT_STR_EQ("record:2", got);
    ASSERT_TRUE(st_now_ms() - t0 >= 1000 - 50);
    wk_close(&w);
    st_backend_close(b);
}

void a_concurrency_limit_holds_permits_released_by_ack_fail_requeue(
    struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    st_done failed = {ST_DONE_FAILED, "{\"failed\":1}", NULL, NULL};
    st_done back = {ST_DONE_REQUEUE, NULL, "a", NULL};
    struct wk w1, w2, w3;
    char got[64], *payload;
    json_t *q;
    int i;

    for (i = 1; i <= 6; i++)
        push(b, "a", "record", i);
    push(b, "b", "other", 7);
    ASSERT_OK(b->ops->limit_set(b, "task:record", 2, 0, 0, &e), &e);
    wk_init(t, &w1, "host:1+1", "a", "b");
    wk_init(t, &w2, "host:1+2", "a", "b");
    wk_init(t, &w3, "host:1+3", "a", "b");
    take(&w1, NULL, got);
    ASSERT_STR_EQ("record:1", got);
    take(&w2, NULL, got);
    ASSERT_STR_EQ("record:2", got);
    /* Full: the third worker skips a (its head stays) and takes b. */
    take(&w3, NULL, got);
    ASSERT_STR_EQ("other:7", got);
    take(&w3, &ok_done, got);
    ASSERT_STR_EQ("", got);
    ASSERT_EQ(2, use_of(b, "task:record", "running"));
    q = raw_queued(b, "a");
    ASSERT_EQ(4, json_array_size(q));
    ASSERT_TRUE(strstr(json_string_value(json_array_get(q, 0)), "\"n\":3"));
    json_decref(q);

    /* An ack frees the permit it held, in the step that takes the next. */
    take(&w1, &ok_done, got);
    ASSERT_STR_EQ("record:3", got);
    take(&w3, NULL, got);
    ASSERT_STR_EQ("", got);
    /* So does a failure. */
    take(&w2, &failed, got);
    ASSERT_STR_EQ("record:4", got);
    ASSERT_EQ(2, use_of(b, "task:record", "running"));
    /* And a job put back: it goes to the head, and its permit is free. */
    payload = st_payload_build_args("record", "a", NULL, &e);
    ASSERT_TRUE(payload != NULL);
    back.payload = payload;
    ASSERT_OK(w1.b->ops->reserve(w1.b, &w1.id, &back, st_now_ms(), NULL, &e),
              &e);
    st_free(payload);
    ASSERT_EQ(1, use_of(b, "task:record", "running"));
    take(&w3, NULL, got);
    ASSERT_STR_EQ("record:0", got); /* the one put back ([] args: n 0) */
    ASSERT_EQ(2, use_of(b, "task:record", "running"));

    /* A raised limit lets more run; a cleared one lets all run. */
    ASSERT_OK(b->ops->limit_set(b, "task:record", 3, 0, 0, &e), &e);
    take(&w1, NULL, got);
    ASSERT_STR_EQ("record:5", got);
    {
        int64_t removed = 0;
        ASSERT_OK(b->ops->limit_del(b, "task:record", &removed, &e), &e);
        ASSERT_EQ(1, removed);
    }
    take(&w2, &ok_done, got);
    ASSERT_STR_EQ("record:6", got);
    wk_close(&w1);
    wk_close(&w2);
    wk_close(&w3);
    st_backend_close(b);
}

void a_queue_limit_holds_its_queue_back_and_others_run(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    struct wk w1, w2;
    char got[64];

    push(b, "a", "record", 1);
    push(b, "a", "other", 2);
    push(b, "b", "record", 3);
    ASSERT_OK(b->ops->limit_set(b, "queue:a", 1, 0, 0, &e), &e);
    wk_init(t, &w1, "host:1+1", "a", "b");
    wk_init(t, &w2, "host:1+2", "a", "b");
    take(&w1, NULL, got);
    ASSERT_STR_EQ("record:1", got);
    take(&w2, NULL, got);
    ASSERT_STR_EQ("record:3", got);
    ASSERT_EQ(1, use_of(b, "queue:a", "running"));
    take(&w2, &ok_done, got);
    ASSERT_STR_EQ("", got);
    take(&w1, &ok_done, got);
    ASSERT_STR_EQ("other:2", got);
    wk_close(&w1);
    wk_close(&w2);
    st_backend_close(b);
}

void a_dead_workers_permit_is_freed_by_its_clean_up(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    struct wk w1, w2;
    char got[64], *held = NULL;

    push(b, "a", "record", 1);
    push(b, "a", "record", 2);
    ASSERT_OK(b->ops->limit_set(b, "task:record", 1, 0, 0, &e), &e);
    wk_init(t, &w1, "host:1+1", "a", NULL);
    wk_init(t, &w2, "host:1+2", "a", NULL);
    take(&w1, NULL, got);
    ASSERT_STR_EQ("record:1", got);
    take(&w2, NULL, got);
    ASSERT_STR_EQ("", got);
    ASSERT_OK(
        b->ops->clean_worker(b, "host:1+1", ST_CLEAN_REQUEUE, NULL, &held, &e),
        &e);
    ASSERT_TRUE(held != NULL);
    st_free(held);
    ASSERT_EQ(0, use_of(b, "task:record", "running"));
    take(&w2, NULL, got);
    ASSERT_STR_EQ("record:1", got);
    wk_close(&w1);
    wk_close(&w2);
    st_backend_close(b);
}

/* A limit cleared and set again while a job of its target runs: the job
 * took no permit under the new limit (Redis; SQLite counts it), and when
 * it ends its worker must not go on to the next job without one. */
void a_limit_cleared_and_set_again_while_a_job_runs_still_binds(
    struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    struct wk wa, wb;
    char got[64];
    int64_t removed = 0;
    bool b_holds;
    int i;

    for (i = 1; i <= 4; i++)
        push(b, "a", "record", i);
    ASSERT_OK(b->ops->limit_set(b, "queue:a", 1, 0, 0, &e), &e);
    wk_init(t, &wa, "host:1+1", "a", NULL);
    wk_init(t, &wb, "host:1+2", "a", NULL);
    take(&wa, NULL, got);
    ASSERT_STR_EQ("record:1", got);
    ASSERT_OK(b->ops->limit_del(b, "queue:a", &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_OK(b->ops->limit_set(b, "queue:a", 1, 0, 0, &e), &e);
    /* Redis: wa's job holds no permit of the new limit, so wb takes one;
     * SQLite: wa's job counts, the limit is full. */
    take(&wb, NULL, got);
    b_holds = got[0] != '\0';
    ASSERT_EQ(is_redis(t), b_holds);

    /* wa's job ends: with wb's running, the limit of 1 is full. */
    take(&wa, &ok_done, got);
    ASSERT_STR_EQ(b_holds ? "" : "record:2", got);
    ASSERT_EQ(1, use_of(b, "queue:a", "running"));
    /* Whoever holds the permit goes on; the other is held back. */
    if (b_holds) {
        take(&wb, &ok_done, got);
        ASSERT_STR_EQ("record:3", got);
        take(&wa, NULL, got);
        ASSERT_STR_EQ("", got);
    } else {
        take(&wa, &ok_done, got);
        ASSERT_STR_EQ("record:3", got);
        take(&wb, NULL, got);
        ASSERT_STR_EQ("", got);
    }
    ASSERT_EQ(1, use_of(b, "queue:a", "running"));
    wk_close(&wa);
    wk_close(&wb);
    st_backend_close(b);
}

/* The same with room left: the job that outlived its permit ends, and its
 * worker's next job takes a permit of the new limit (it is counted). */
void a_job_that_outlived_its_permit_takes_a_new_one_for_its_next_job(
    struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    struct wk wa, wb, wc;
    char got[64];
    int i;

    for (i = 1; i <= 5; i++)
        push(b, "a", "record", i);
    ASSERT_OK(b->ops->limit_set(b, "task:record", 1, 0, 0, &e), &e);
    wk_init(t, &wa, "host:1+1", "a", NULL);
    wk_init(t, &wb, "host:1+2", "a", NULL);
    wk_init(t, &wc, "host:1+3", "a", NULL);
    take(&wa, NULL, got);
    ASSERT_STR_EQ("record:1", got);
    ASSERT_OK(b->ops->limit_del(b, "task:record", NULL, &e), &e);
    ASSERT_OK(b->ops->limit_set(b, "task:record", 2, 0, 0, &e), &e);
    take(&wb, NULL, got);
    ASSERT_STR_EQ("record:2", got);
    take(&wa, &ok_done, got);
    ASSERT_STR_EQ("record:3", got);
    ASSERT_EQ(2, use_of(b, "task:record", "running"));
    take(&wc, NULL, got);
    ASSERT_STR_EQ("", got);
    /* And it is released when that job ends. */
    take(&wa, &ok_done, got);
    ASSERT_STR_EQ("record:4", got);
    take(&wa, &ok_done, got);
    ASSERT_STR_EQ("record:5", got);
    ASSERT_OK(wa.b->ops->reserve(wa.b, &wa.id, &ok_done, st_now_ms(), NULL, &e),
              &e);
    ASSERT_EQ(1, use_of(b, "task:record", "running"));
    wk_close(&wa);
    wk_close(&wb);
    wk_close(&wc);
    st_backend_close(b);
}

/* A worker that goes away holding a permit (its final ack failed, then
 * it unregistered) does not keep it. */
void a_worker_unregistered_while_holding_a_permit_frees_it(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    struct wk w1, w2;
    char got[64];

    push(b, "a", "record", 1);
    push(b, "a", "record", 2);
    ASSERT_OK(b->ops->limit_set(b, "task:record", 1, 0, 0, &e), &e);
    wk_init(t, &w1, "host:1+1", "a", NULL);
    wk_init(t, &w2, "host:1+2", "a", NULL);
    take(&w1, NULL, got);
    ASSERT_STR_EQ("record:1", got);
    take(&w2, NULL, got);
    ASSERT_STR_EQ("", got);
    ASSERT_OK(w1.b->ops->worker_unregister(w1.b, &w1.id, &e), &e);
    ASSERT_EQ(0, use_of(b, "task:record", "running"));
    take(&w2, NULL, got);
    ASSERT_STR_EQ("record:2", got);
    wk_close(&w1);
    wk_close(&w2);
    st_backend_close(b);
}

#ifdef STELLAR_HAVE_REDIS
/* One command on the test's redis-server, raw (argv, argc). */
static void raw_redis(const struct test_ctx *t, int argc, const char **argv)
{
    const char *path = t->url + strlen("redis+unix://"), *at;
    redisContext *c;
    redisReply *r = NULL;

    /* The socket (after the ACL test's user, if any); as the default user,
     * which may do anything. */
    if ((at = strchr(path, '@'))) path = at + 1;
    c = redisConnectUnix(path);
    ASSERT_TRUE(c != NULL && !c->err);
    r = redisCommandArgv(c, argc, argv, NULL);
    ASSERT_TRUE(r != NULL && r->type != REDIS_REPLY_ERROR);
    freeReplyObject(r);
    redisFree(c);
}
#endif

/* node-resque's forceCleanWorker removes a dead Stellar worker's records
 * (it knows nothing of permits): a permit of a worker that is no longer
 * registered does not count. Redis only: SQLite counts the workers'
 * records. */
void a_permit_of_a_worker_no_longer_registered_does_not_count(
    struct test_ctx *t)
{
#ifdef STELLAR_HAVE_REDIS
    st_backend *b;
    stellar_error e = {0};
    struct wk w1, w2;
    char got[64];
    const char *srem[] = {"SREM", "resque:workers", "host:1+1:a"};
    const char *del[] = {"DEL", "resque:worker:ping:host:1+1",
                         "resque:worker:host:1+1:a",
                         "resque:worker:host:1+1:a:started"};

    if (!is_redis(t)) SKIP("node-resque's workers set");
    b = raw_open(t);
    push(b, "a", "record", 1);
    push(b, "a", "record", 2);
    push(b, "a", "record", 3);
    ASSERT_OK(b->ops->limit_set(b, "task:record", 1, 0, 0, &e), &e);
    wk_init(t, &w1, "host:1+1", "a", NULL);
    wk_init(t, &w2, "host:1+2", "a", NULL);
    take(&w1, NULL, got);
    ASSERT_STR_EQ("record:1", got);
    take(&w2, NULL, got);
    ASSERT_STR_EQ("", got);
    /* forceCleanWorker's writes, as node-resque makes them. */
    raw_redis(t, 3, srem);
    raw_redis(t, 4, del);
    /* The check looks for such permits at most once a second. */
    ASSERT_WAIT((take(&w2, NULL, got), got[0] != '\0'), 5000);
    ASSERT_STR_EQ("record:2", got);
    ASSERT_EQ(1, use_of(b, "task:record", "running"));
    /* The live worker's permit is not pruned: still full. */
    {
        struct wk w3;
        wk_init(t, &w3, "host:1+3", "a", NULL);
        take(&w3, NULL, got);
        ASSERT_STR_EQ("", got);
        wk_close(&w3);
    }
    wk_close(&w1);
    wk_close(&w2);
    st_backend_close(b);
#else
    (void)t;
    SKIP("node-resque's workers set");
#endif
}

void a_rate_limit_is_an_exact_sliding_window(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    struct wk w;
    char got[64];
    int64_t first, third;
    int i;

    for (i = 1; i <= 4; i++)
        push(b, "a", "record", i);
    ASSERT_OK(b->ops->limit_set(b, "task:record", 0, 2, 600, &e), &e);
    wk_init(t, &w, "host:1+1", "a", NULL);
    first = st_now_ms();
    take(&w, NULL, got);
    ASSERT_STR_EQ("record:1", got);
    take(&w, &ok_done, got);
    ASSERT_STR_EQ("record:2", got);
    take(&w, &ok_done, got);
    ASSERT_STR_EQ("", got);
    ASSERT_EQ(2, use_of(b, "task:record", "started"));
    /* The third starts once the first start has left the window, never
     * before: no more than 2 in any 600 ms. */
    ASSERT_WAIT((take(&w, NULL, got), got[0] != '\0'), 10000);
    third = st_now_ms();
    ASSERT_STR_EQ("record:3", got);
    ASSERT_TRUE(third - first >= 600 - 5); /* Redis: the server's clock */
    wk_close(&w);
    st_backend_close(b);
}

void controls_are_checked_and_listed_through_the_api(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    stellar_limit l = {0};
    int64_t n = 0, w = 0, removed = -1;
    bool was = true;
    json_t *v = NULL;
    char text[64];

    ASSERT_EQ(STELLAR_EINVAL, stellar_target_check("sendEmail", &e));
    ASSERT_TRUE(strstr(e.msg, "queue:NAME") != NULL);
    ASSERT_EQ(STELLAR_EINVAL, stellar_target_check("task:", &e));
    ASSERT_OK(stellar_target_check("queue:a b", &e), &e);
    ASSERT_OK(stellar_rate_parse("100/1m", &n, &w, &e), &e);
    ASSERT_EQ(100, n);
    ASSERT_EQ(60000, w);
    ASSERT_OK(stellar_rate_parse("5/250ms", &n, &w, &e), &e);
    ASSERT_EQ(250, w);
    ASSERT_OK(stellar_rate_parse("1/2h", &n, &w, &e), &e);
    ASSERT_EQ(7200000, w);
    ASSERT_EQ(STELLAR_EINVAL, stellar_rate_parse("100/1", &n, &w, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_rate_parse("0/1s", &n, &w, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_rate_parse("5/0s", &n, &w, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_rate_parse("5/1d", &n, &w, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_rate_parse("x/1s", &n, &w, &e));
    stellar_rate_format(100, 60000, text, sizeof text);
    ASSERT_STR_EQ("100/1m", text);
    stellar_rate_format(5, 1500, text, sizeof text);
    ASSERT_STR_EQ("5/1500ms", text);

    ASSERT_EQ(STELLAR_EINVAL, stellar_limit_set(h, "task:x", &l, &e));
    l.concurrency = 2;
    l.rate = 100;
    l.window_ms = 60000;
    ASSERT_OK(stellar_limit_set(h, "task:sendEmail", &l, &e), &e);
    ASSERT_OK(stellar_limits(h, &v, &e), &e);
    ASSERT_JSON_EQ("{\"task:sendEmail\":{\"concurrency\":2,\"rate\":"
                   "\"100/1m\",\"running\":0,\"started\":0}}",
                   v);
    json_decref(v);
    ASSERT_OK(stellar_limit_clear(h, "task:sendEmail", &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_OK(stellar_limits(h, &v, &e), &e);
    ASSERT_JSON_EQ("{}", v);
    json_decref(v);

    ASSERT_EQ(STELLAR_EINVAL, stellar_pause(h, "q", -1, &e));
    ASSERT_OK(stellar_pause(h, "q", 0, &e), &e);
    ASSERT_OK(stellar_pause(h, "r", 60000, &e), &e);
    ASSERT_OK(stellar_pauses(h, &v, &e), &e);
    ASSERT_TRUE(json_is_null(json_object_get(v, "q")));
    ASSERT_TRUE(json_integer_value(json_object_get(v, "r")) > st_now_ms());
    json_decref(v);
    ASSERT_OK(stellar_resume(h, "q", &was, &e), &e);
    ASSERT_TRUE(was);
    ASSERT_OK(stellar_resume(h, "q", &was, &e), &e);
    ASSERT_TRUE(!was);
    stellar_close(h);
}

/* Real processors: a paused queue runs nothing while another runs; its
 * jobs all run after resume. */
void processors_skip_a_paused_queue_and_run_it_after_resume(struct test_ctx *t)
{
    stellar_options o = {.processors = 2};
    const char *queues[] = {"a", "b", NULL};
    stellar *h;
    stellar_error e = {0};
    int i;

    o.queues = queues;
    h = open_h(t, &o);
    reg(h, &task_record);
    ASSERT_OK(stellar_pause(h, "a", 0, &e), &e);
    for (i = 0; i < 3; i++)
        enqueue(h, "record", "{\"q\":\"a\"}", "a");
    enqueue(h, "record", "{\"q\":\"b\"}", "b");
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 1, 10000);
    test_sleep_ms(300);
    ASSERT_EQ(1, runs_of("record", false));
    ASSERT_EQ(3, test_length(h, "a"));
    ASSERT_OK(stellar_resume(h, "a", NULL, &e), &e);
    ASSERT_WAIT(runs_of("record", true) == 4, 10000);
    stellar_close(h);
}
