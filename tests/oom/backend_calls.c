/*
 * backend_calls.c: what a processor and the scheduler ask of the backend
 * (reserve with each kind of ack, promote, register, ping, clean, kv,
 * push at, replace, stat incr), called directly under failed
 * allocations: each is atomic, and a reserve retried after an error does
 * what one call without failures does.
 */
#include "oom.h"

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

void worker_and_scheduler_backend_calls_are_atomic(struct test_ctx *t)
{
    oom_loop_all(t, backend_ops, sizeof backend_ops / sizeof backend_ops[0]);
}
