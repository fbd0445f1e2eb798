/*
 * inspection.c: the calls that read (stats, failed, queues, workers,
 * delayed jobs, details, locks, tasks ...) under failed allocations: they
 * answer in full, as without failures, or fail cleanly.
 */
#include "oom.h"

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

void inspection_calls_answer_in_full_or_fail_cleanly(struct test_ctx *t)
{
    oom_loop_all(t, inspection_ops,
                 sizeof inspection_ops / sizeof inspection_ops[0]);
}
