/*
 * management.c: the calls that change storage on an operator's behalf
 * (del, delDelayed, delQueue, recurrent jobs, delLock, failed jobs removed
 * or retried, cleanOldWorkers) under failed allocations: all or nothing.
 */
#include "oom.h"

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

void management_calls_change_all_or_nothing(struct test_ctx *t)
{
    oom_loop_all(t, management_ops,
                 sizeof management_ops / sizeof management_ops[0]);
}
