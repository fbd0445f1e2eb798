/*
 * enqueue.c: the enqueue calls (to a queue, at a time, in a delay, many,
 * with queueLock) under failed allocations: the job is stored, or nothing
 * is.
 */
#include "oom.h"

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

void enqueue_calls_store_the_job_or_nothing(struct test_ctx *t)
{
    oom_loop_all(t, enqueue_ops, sizeof enqueue_ops / sizeof enqueue_ops[0]);
}
