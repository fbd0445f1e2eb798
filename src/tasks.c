/*
 * tasks.c: enqueue, enqueueAt, enqueueIn, enqueueMany, recurrent (periodic)
 * jobs and the management and inspection calls, written against backend.h
 * only. The rules an enqueue applies are written once (job_rules,
 * params_rule); the dead-worker clean-up is recover.c's.
 *
 * Each API call runs on a connection checked out for its length
 * (st_conn_get) and holds no lock while plugin hooks run, so hooks and
 * tasks may call the API on their own handle; the worker and scheduler
 * threads call the st_ helpers here with their own connections.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ Enqueue --- */

/*
 * The enqueue rules, in one place for the three kinds of call that name a
 * job: a single enqueue (now, at, in), enqueueMany, and the management
 * calls that find a stored job by task and params (del, delDelayed,
 * scheduledAt), which must build the very payload an enqueue stored.
 * - the task's name and a queue given (NULL or "": none) follow the name
 *   rule (st_name_check);
 * - a job to store needs a registered task, unless the handle has none (a
 *   client-only handle enqueues any name); a job to find does not;
 * - the queue is the one given, else the task's, else "default";
 * - params are a JSON object (none: {}).
 * Messages of a store start with "enqueue", as they always have; those of
 * a find are the rule's own.
 */

/* The task and queue rules: *t the registered task (NULL if none), *q the
 * queue the job goes to (borrowed: the caller's, or a task's, which lives
 * as long as the handle). */
static int job_rules(stellar *h, bool store, const char *task,
                     const char *queue, const st_task **t, const char **q,
                     stellar_error *e)
{
    stellar_error ne;
    bool any = false;

    if (st_name_check("task", task, &ne))
        return store ? st_fail(e, STELLAR_EINVAL, "enqueue: %s", ne.msg)
                     : st_fail(e, ne.code, "%s", ne.msg);
    if (queue && *queue && st_name_check("queue", queue, &ne))
        return store
                   ? st_fail(e, STELLAR_EINVAL, "enqueue %s: %s", task, ne.msg)
                   : st_fail(e, ne.code, "%s", ne.msg);
    *t = st_task_lookup(h, task, &any);
    if (store && !*t && !any)
        return st_fail(e, STELLAR_ENOTASK, "enqueue: unknown task '%s'", task);
    *q = queue && *queue ? queue : *t ? (*t)->def.queue : "default";
    return STELLAR_OK;
}

/* The params rule for parsed params p (NULL: {}); which names them in the
 * message ("params", "params[3]"). */
static int params_rule(bool store, const char *task, const json_t *p,
                       const char *which, stellar_error *e)
{
    if (!p || json_is_object(p)) return STELLAR_OK;
    return store
               ? st_fail(e, STELLAR_EINVAL,
                         "enqueue %s: %s must be a JSON object", task, which)
               : st_fail(e, STELLAR_EINVAL, "%s must be a JSON object", which);
}

static int enqueue_on(stellar *h, st_backend *b, int64_t at_ms, bool delayed,
                      const char *task, const json_t *params, const char *queue,
                      stellar_error *e)
{
    const st_task *t;
    stellar_job job = {0};
    json_t *args;
    int rc;

    if ((rc = job_rules(h, true, task, queue, &t, &queue, e)) ||
        (rc = params_rule(true, task, params, "params", e)))
        return rc;
    args = params ? json_pack("[O]", params) : json_pack("[{}]");
    job = (stellar_job){.h = h,
                        .b = b,
                        .task = t,
                        .queue = queue,
                        .args = args,
                        .delayed = delayed};
    job.payload = st_payload_build_args(task, queue, args, e);
    if (!args || !job.payload) {
        rc = st_fail(e, STELLAR_ENOMEM, "enqueue %s: out of memory", task);
        goto out;
    }
    rc = st_hooks_run(ST_HOOK_BEFORE_ENQUEUE, &job, e);
    if (rc) goto out;
    if (delayed)
        rc = b->ops->push_at(b, at_ms, queue, job.payload, false, e);
    else
        rc = b->ops->push(b, queue, &job.payload, 1, e);
    if (rc == STELLAR_OK)
        rc = st_hooks_run(ST_HOOK_AFTER_ENQUEUE, &job, e);
    else
        st_hooks_enqueue_failed(&job);
out:
    st_free((char *)(uintptr_t)job.payload);
    st_free(job.error);
    json_decref(args);
    return rc;
}

static int enqueue(stellar *h, int64_t at_ms, bool delayed, const char *task,
                   const char *params, const char *queue, stellar_error *e)
{
    json_t *p = NULL;
    st_backend *b;
    stellar_error pe;
    int rc;

    st_err_clear(e);
    if (params && *params) {
        p = st_json_parse(params, strlen(params), &pe);
        if (!p)
            return st_fail(e, pe.code, "enqueue %s: params: %s",
                           task ? task : "", pe.msg);
    }
    rc = st_conn_get(h, &b, e);
    if (rc == STELLAR_OK) {
        rc = enqueue_on(h, b, at_ms, delayed, task, p, queue, e);
        st_conn_put(h, b);
    }
    if (rc == STELLAR_OK) st_wake(h);
    json_decref(p);
    return rc;
}

int stellar_enqueue(stellar *h, const char *task, const char *params,
                    const char *queue, stellar_error *e)
{
    return enqueue(h, 0, false, task, params, queue, e);
}

int stellar_enqueue_at(stellar *h, int64_t at_ms, const char *task,
                       const char *params, const char *queue, stellar_error *e)
{
    if (at_ms < 0)
        return st_fail(e, STELLAR_EINVAL, "enqueueAt: negative timestamp");
    if (at_ms > STELLAR_TIME_MAX)
        return st_fail(e, STELLAR_EINVAL,
                       "enqueueAt: %lld ms is after the year 9999 (at most "
                       "%lld)",
                       (long long)at_ms, (long long)STELLAR_TIME_MAX);
    return enqueue(h, at_ms, true, task, params, queue, e);
}

int stellar_enqueue_in(stellar *h, int64_t delay_ms, const char *task,
                       const char *params, const char *queue, stellar_error *e)
{
    int64_t now = st_now_ms();

    if (delay_ms < 0)
        return st_fail(e, STELLAR_EINVAL, "enqueueIn: negative delay %lld",
                       (long long)delay_ms);
    if (delay_ms > STELLAR_TIME_MAX - now) /* now + delay would pass it */
        return st_fail(e, STELLAR_EINVAL,
                       "enqueueIn: a delay of %lld ms ends after the year 9999",
                       (long long)delay_ms);
    return enqueue(h, now + delay_ms, true, task, params, queue, e);
}

bool st_recurrent_waiting(st_backend *b, const st_task *t)
{
    stellar_error e;
    char *payload = st_payload_build(t->def.name, t->def.queue, NULL, &e);
    json_t *ts = NULL;
    bool waiting = payload &&
                   b->ops->scheduled_at(b, payload, &ts, &e) == STELLAR_OK &&
                   json_array_size(ts) > 0;
    json_decref(ts);
    st_free(payload);
    return waiting;
}

int st_recurrent(stellar *h, st_backend *b, const st_task *t,
                 enum st_recur then, int64_t *removed, stellar_error *e)
{
    char *payload = st_payload_build(t->def.name, t->def.queue, NULL, e);
    int64_t n = 0, at = ST_REPLACE_NONE;
    int rc;

    (void)h; /* the plugin hooks will need it */
    if (!payload) return STELLAR_ENOMEM;
    if (then == ST_RECUR_NOW) at = ST_REPLACE_NOW;
    if (then == ST_RECUR_LATER) at = st_now_ms() + t->def.frequency;
    /* One atomic step: whatever a scheduler or another process does at the
     * same moment, one periodic task never has two copies waiting. */
    rc = b->ops->replace(b, t->def.queue, payload, at, &n, e);
    if (removed) *removed = n;
    st_free(payload);
    return rc;
}

/* --------------------------------------------------------- Inspection --- */

int stellar_stats(stellar *h, json_t **out, stellar_error *e)
{
    int rc;
    *out = NULL;
    WITH_CONN(h, b, b->ops->stats(b, out, e));
    return rc;
}

int stellar_failed_count(stellar *h, int64_t *out, stellar_error *e)
{
    int rc;
    *out = 0;
    WITH_CONN(h, b, b->ops->failed_count(b, out, e));
    return rc;
}

/* Turns an array of raw JSON strings into parsed values; an entry that does
 * not parse stays as its string. On ENOMEM, *arr is freed and NULL. */
static int parse_entries(json_t **arr, stellar_error *e)
{
    size_t i;
    for (i = 0; i < json_array_size(*arr); i++) {
        json_t *s = json_array_get(*arr, i), *v;
        stellar_error pe;
        if (!json_is_string(s)) continue;
        v = st_json_parse(json_string_value(s), json_string_length(s), &pe);
        if ((!v && pe.code == STELLAR_ENOMEM) ||
            (v && json_array_set_new(*arr, i, v) < 0)) {
            json_decref(*arr);
            *arr = NULL;
            return st_fail(e, STELLAR_ENOMEM, "out of memory");
        }
    }
    return STELLAR_OK;
}

int stellar_failed(stellar *h, int64_t start, int64_t stop, json_t **out,
                   stellar_error *e)
{
    int rc;
    *out = NULL;
    WITH_CONN(h, b, b->ops->failed_range(b, start, stop, out, e));
    if (rc == STELLAR_OK) rc = parse_entries(out, e);
    return rc;
}

int stellar_queues(stellar *h, json_t **out, stellar_error *e)
{
    int rc;
    *out = NULL;
    WITH_CONN(h, b, b->ops->queues(b, out, e));
    return rc;
}

int stellar_length(stellar *h, const char *queue, int64_t *out,
                   stellar_error *e)
{
    int rc;
    *out = 0;
    if (st_name_check("queue", queue, e)) return STELLAR_EINVAL;
    WITH_CONN(h, b, b->ops->length(b, queue, out, e));
    return rc;
}

/* The age of queue's oldest job on b (-1: empty or unknown). */
static int latency_on(st_backend *b, const char *queue, int64_t *out,
                      stellar_error *e)
{
    int64_t at = -1;
    int rc = b->ops->oldest ? b->ops->oldest(b, queue, &at, e) : STELLAR_OK;

    *out = -1;
    if (rc == STELLAR_OK && at >= 0) {
        int64_t age = st_now_ms() - at;
        *out = age > 0 ? age : 0;
    }
    return rc;
}

int stellar_latency(stellar *h, const char *queue, int64_t *out,
                    stellar_error *e)
{
    int rc;

    *out = -1;
    if (st_name_check("queue", queue, e)) return STELLAR_EINVAL;
    WITH_CONN(h, b, latency_on(b, queue, out, e));
    return rc;
}

static json_t *working_on_of(json_t *worker);

int stellar_workers(stellar *h, json_t **out, stellar_error *e)
{
    json_t *w;
    const char *name;
    int rc;

    *out = NULL;
    WITH_CONN(h, b, b->ops->workers(b, out, e));
    /* Payloads come out parsed, as in failed entries. */
    json_object_foreach(rc == STELLAR_OK ? *out : NULL, name, w)
    {
        json_t *on = json_object_get(w, "working_on");
        if (json_is_object(on) &&
            json_object_set_new(w, "working_on", working_on_of(w)) < 0) {
            json_decref(*out);
            *out = NULL;
            return st_fail(e, STELLAR_ENOMEM, "workers: out of memory");
        }
    }
    return rc;
}

int stellar_timestamps(stellar *h, json_t **out, stellar_error *e)
{
    int rc;
    *out = NULL;
    WITH_CONN(h, b, b->ops->timestamps(b, out, e));
    return rc;
}

/* --------------------------------------------------------- Management --- */

/* A job named by task + params on a queue, as the matching calls need it. */
typedef struct named_job {
    char *payload;     /* the exact payload enqueue would store */
    const char *queue; /* the resolved queue (borrowed) */
} named_job;

/* The job a management call names, by the enqueue rules. */
static int name_job(stellar *h, const char *queue, const char *task,
                    const char *params, named_job *j, stellar_error *e)
{
    json_t *p = NULL;
    const st_task *t;
    stellar_error pe;
    int rc;

    st_err_clear(e);
    j->payload = NULL;
    if ((rc = job_rules(h, false, task, queue, &t, &j->queue, e))) return rc;
    if (params && *params) {
        p = st_json_parse(params, strlen(params), &pe);
        if (!p) return st_fail(e, pe.code, "params: %s", pe.msg);
        if ((rc = params_rule(false, task, p, "params", e))) {
            json_decref(p);
            return rc;
        }
    }
    j->payload = st_payload_build(task, j->queue, p, e);
    json_decref(p);
    return j->payload ? STELLAR_OK : STELLAR_ENOMEM;
}

int stellar_queued(stellar *h, const char *queue, int64_t start, int64_t stop,
                   json_t **out, stellar_error *e)
{
    int rc;
    *out = NULL;
    if (st_name_check("queue", queue, e)) return STELLAR_EINVAL;
    WITH_CONN(h, b, b->ops->queued(b, queue, start, stop, out, e));
    if (rc == STELLAR_OK) rc = parse_entries(out, e);
    return rc;
}

int stellar_del(stellar *h, const char *queue, const char *task,
                const char *params, int64_t count, int64_t *removed,
                stellar_error *e)
{
    named_job j;
    int rc;

    *removed = 0;
    if (count < 0) return st_fail(e, STELLAR_EINVAL, "del: count must be >= 0");
    if ((rc = name_job(h, queue, task, params, &j, e))) return rc;
    WITH_CONN(h, b, b->ops->del(b, j.queue, j.payload, count, removed, e));
    st_free(j.payload);
    return rc;
}

int stellar_del_delayed(stellar *h, const char *queue, const char *task,
                        const char *params, json_t **timestamps,
                        stellar_error *e)
{
    named_job j;
    int rc;

    *timestamps = NULL;
    if ((rc = name_job(h, queue, task, params, &j, e))) return rc;
    WITH_CONN(h, b, b->ops->del_delayed(b, j.payload, timestamps, e));
    st_free(j.payload);
    return rc;
}

int stellar_scheduled_at(stellar *h, const char *queue, const char *task,
                         const char *params, json_t **out, stellar_error *e)
{
    named_job j;
    int rc;

    *out = NULL;
    if ((rc = name_job(h, queue, task, params, &j, e))) return rc;
    WITH_CONN(h, b, b->ops->scheduled_at(b, j.payload, out, e));
    st_free(j.payload);
    return rc;
}

int stellar_del_queue(stellar *h, const char *queue, stellar_error *e)
{
    int64_t removed = 0;
    int rc;

    if (st_name_check("queue", queue, e)) return STELLAR_EINVAL;
    WITH_CONN(h, b, b->ops->del_queue(b, queue, &removed, e));
    if (rc == STELLAR_OK && !removed)
        return st_fail(e, STELLAR_ENOTFOUND, "delQueue: no queue '%s'", queue);
    return rc;
}

static int periodic_task(stellar *h, const char *task, const st_task **t,
                         stellar_error *e)
{
    *t = st_task_lookup(h, task, NULL);
    if (!*t)
        return st_fail(e, STELLAR_ENOTASK, "unknown task '%s'",
                       task ? task : "");
    if ((*t)->def.frequency <= 0 && !(*t)->def.cron)
        return st_fail(e, STELLAR_EINVAL,
                       "task '%s' is not periodic (no frequency, no cron)",
                       task);
    return STELLAR_OK;
}

/* A cron task's start and stop: resume or pause its schedule (for every
 * process), then as a frequency task: one copy queued now, or none. */
static int cron_recurrent(stellar *h, st_backend *b, const st_task *t,
                          bool start, int64_t *removed, stellar_error *e)
{
    int rc = st_schedule_set_paused(b, t->def.name, !start, e);
    if (rc) return rc;
    return st_recurrent(h, b, t, start ? ST_RECUR_NOW : ST_RECUR_STOP, removed,
                        e);
}

int stellar_enqueue_recurrent(stellar *h, const char *task, stellar_error *e)
{
    const st_task *t;
    int rc;

    st_err_clear(e);
    if ((rc = periodic_task(h, task, &t, e))) return rc;
    if (t->def.cron)
        WITH_CONN(h, b, cron_recurrent(h, b, t, true, NULL, e));
    else
        WITH_CONN(h, b, st_recurrent(h, b, t, ST_RECUR_NOW, NULL, e));
    if (rc == STELLAR_OK) st_wake(h);
    return rc;
}

int stellar_stop_recurrent(stellar *h, const char *task, int64_t *removed,
                           stellar_error *e)
{
    const st_task *t;
    int rc;

    *removed = 0;
    st_err_clear(e);
    if ((rc = periodic_task(h, task, &t, e))) return rc;
    if (t->def.cron)
        WITH_CONN(h, b, cron_recurrent(h, b, t, false, removed, e));
    else
        WITH_CONN(h, b, st_recurrent(h, b, t, ST_RECUR_STOP, removed, e));
    return rc;
}

int stellar_delayed_at(stellar *h, int64_t ts_ms, json_t **out,
                       stellar_error *e)
{
    int rc;
    *out = NULL;
    WITH_CONN(h, b, b->ops->delayed_at(b, ts_ms, out, e));
    if (rc == STELLAR_OK) rc = parse_entries(out, e);
    return rc;
}

int stellar_all_delayed(stellar *h, json_t **out, stellar_error *e)
{
    json_t *ts = NULL, *all;
    size_t i;
    int rc;

    *out = NULL;
    WITH_CONN(h, b, b->ops->timestamps(b, &ts, e));
    if (rc) return rc;
    if (!(all = json_object()))
        rc = st_fail(e, STELLAR_ENOMEM, "allDelayed: out of memory");
    for (i = 0; rc == STELLAR_OK && i < json_array_size(ts); i++) {
        json_int_t t = json_integer_value(json_array_get(ts, i));
        json_t *jobs = NULL;
        char key[32];
        rc = stellar_delayed_at(h, t, &jobs, e);
        snprintf(key, sizeof key, "%lld", (long long)t);
        if (rc == STELLAR_OK && json_object_set_new(all, key, jobs) < 0)
            rc = st_fail(e, STELLAR_ENOMEM, "allDelayed: out of memory");
    }
    json_decref(ts);
    if (rc) {
        json_decref(all);
        return rc;
    }
    *out = all;
    return STELLAR_OK;
}

int stellar_del_delayed_at(stellar *h, int64_t ts_ms, int64_t *removed,
                           stellar_error *e)
{
    int rc;
    *removed = 0;
    if (ts_ms < 0)
        return st_fail(e, STELLAR_EINVAL, "delDelayedAt: negative timestamp");
    WITH_CONN(h, b, b->ops->del_delayed_at(b, ts_ms, removed, e));
    return rc;
}

int stellar_del_all_delayed(stellar *h, int64_t *removed, stellar_error *e)
{
    int rc;
    *removed = 0;
    WITH_CONN(h, b, b->ops->del_delayed_at(b, -1, removed, e));
    return rc;
}

/* The queues' lengths, latencies and pauses on b. Names come from the
 * store, as any client wrote them: not checked against the name rule. */
static int queues_detail_on(st_backend *b, json_t **out, stellar_error *e)
{
    json_t *names = NULL, *queues, *ctl = NULL, *paused;
    size_t i;
    int rc;

    *out = NULL;
    if ((rc = b->ops->queues(b, &names, e))) return rc;
    if ((rc = b->ops->controls(b, st_now_ms(), &ctl, e))) {
        json_decref(names);
        return rc;
    }
    paused = json_object_get(ctl, "paused");
    if (!(queues = json_object()))
        rc = st_fail(e, STELLAR_ENOMEM, "details: out of memory");
    for (i = 0; rc == STELLAR_OK && i < json_array_size(names); i++) {
        const char *q = json_string_value(json_array_get(names, i));
        json_t *p = json_object_get(paused, q);
        int64_t n = 0, age = -1;
        rc = b->ops->length(b, q, &n, e);
        if (rc == STELLAR_OK) rc = latency_on(b, q, &age, e);
        /* paused_until: ms, or null (not paused, or until resumed). */
        if (rc == STELLAR_OK &&
            json_object_set_new(
                queues, q,
                json_pack("{s:I, s:o, s:b, s:o}", "length", (json_int_t)n,
                          "latency_ms",
                          age < 0 ? json_null() : json_integer(age), "paused",
                          p != NULL, "paused_until",
                          p && json_integer_value(p) > 0
                              ? json_integer(json_integer_value(p))
                              : json_null())) < 0)
            rc = st_fail(e, STELLAR_ENOMEM, "details: out of memory");
    }
    json_decref(ctl);
    json_decref(names);
    if (rc) {
        json_decref(queues);
        return rc;
    }
    *out = queues;
    return STELLAR_OK;
}

int st_queues_detail(stellar *h, json_t **out, stellar_error *e)
{
    int rc;
    WITH_CONN(h, b, queues_detail_on(b, out, e));
    return rc;
}

int stellar_details(stellar *h, json_t **out, stellar_error *e)
{
    json_t *queues = NULL, *workers = NULL;
    int rc;

    *out = NULL;
    if ((rc = st_queues_detail(h, &queues, e))) return rc;
    if ((rc = stellar_workers(h, &workers, e))) {
        json_decref(queues);
        return rc;
    }
    *out = json_pack("{s:o, s:o}", "queues", queues, "workers", workers);
    return *out ? STELLAR_OK
                : st_fail(e, STELLAR_ENOMEM, "details: out of memory");
}

/* The working-on record of a workers() entry, payload parsed; NULL if
 * out of memory. */
static json_t *working_on_of(json_t *worker)
{
    json_t *w = json_object_get(worker, "working_on"), *copy, *p;
    stellar_error pe;
    if (!json_is_object(w)) return json_null();
    copy = json_deep_copy(w);
    p = json_object_get(copy, "payload");
    if (json_is_string(p)) {
        json_t *v =
            st_json_parse(json_string_value(p), json_string_length(p), &pe);
        if ((!v && pe.code == STELLAR_ENOMEM) ||
            (v && json_object_set_new(copy, "payload", v) < 0)) {
            json_decref(copy);
            return NULL;
        }
    }
    return copy;
}

int stellar_working_on(stellar *h, const char *worker, json_t **out,
                       stellar_error *e)
{
    json_t *all = NULL, *w;
    int rc;

    *out = NULL;
    if ((rc = stellar_workers(h, &all, e))) return rc;
    w = json_object_get(all, worker ? worker : "");
    if (!w)
        rc = st_fail(e, STELLAR_ENOTFOUND, "no worker '%s'",
                     worker ? worker : "");
    else if (!(*out = working_on_of(w)))
        rc = st_fail(e, STELLAR_ENOMEM, "workingOn: out of memory");
    json_decref(all);
    return rc;
}

int stellar_all_working_on(stellar *h, json_t **out, stellar_error *e)
{
    json_t *all = NULL, *w, *res;
    const char *name;
    int rc;

    *out = NULL;
    if ((rc = stellar_workers(h, &all, e))) return rc;
    res = json_object();
    json_object_foreach(res ? all : NULL, name, w)
    {
        json_t *on = working_on_of(w);
        if (json_is_null(on)) on = json_string("started");
        if (json_object_set_new(res, name, on) < 0) {
            json_decref(res);
            res = NULL;
            break;
        }
    }
    json_decref(all);
    if (!res) return st_fail(e, STELLAR_ENOMEM, "allWorkingOn: out of memory");
    *out = res;
    return STELLAR_OK;
}

int stellar_locks(stellar *h, json_t **out, stellar_error *e)
{
    json_t *more = NULL;
    int rc;

    *out = NULL;
    WITH_CONN(h, b, b->ops->kv_scan(b, "lock:", out, e));
    if (rc == STELLAR_OK)
        WITH_CONN(h, b, b->ops->kv_scan(b, "workerslock:", &more, e));
    if (rc == STELLAR_OK && json_object_update(*out, more))
        rc = st_fail(e, STELLAR_ENOMEM, "locks: out of memory");
    json_decref(more);
    if (rc) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int stellar_del_lock(stellar *h, const char *name, int64_t *removed,
                     stellar_error *e)
{
    int rc;
    *removed = 0;
    if (!name ||
        (strncmp(name, "lock:", 5) && strncmp(name, "workerslock:", 12)))
        return st_fail(e, STELLAR_EINVAL,
                       "delLock: '%s' is not a lock name (lock:... or "
                       "workerslock:...)",
                       name ? name : "");
    WITH_CONN(h, b, b->ops->kv_del(b, name, NULL, removed, e));
    return rc;
}

/* The stored text of the failed entry equal to job: its canonical
 * JSON.stringify form first (what Stellar and node-resque write), else the
 * first stored entry that parses to an equal value (written by another
 * client in another form), else job itself when it is a string (an entry
 * that is not JSON). New string, or NULL if none matches. */
static char *failed_text(stellar *h, const json_t *job, stellar_error *e)
{
    char *canon = json_is_string(job) ? st_strdup(json_string_value(job))
                                      : st_json_dumps(job);
    int64_t start, n = 0;
    stellar_error pe;
    int rc;

    if (!canon || json_is_string(job)) return canon;
    WITH_CONN(h, b, b->ops->failed_count(b, &n, e));
    for (start = 0; rc == STELLAR_OK && start < n; start += 100) {
        json_t *raw = NULL;
        size_t i;
        WITH_CONN(h, b, b->ops->failed_range(b, start, start + 99, &raw, e));
        for (i = 0; rc == STELLAR_OK && i < json_array_size(raw); i++) {
            json_t *s = json_array_get(raw, i), *v;
            if (strcmp(json_string_value(s), canon) == 0) {
                json_decref(raw);
                return canon;
            }
            v = st_json_parse(json_string_value(s), json_string_length(s), &pe);
            if (!v && pe.code == STELLAR_ENOMEM) { /* cannot compare */
                json_decref(raw);
                st_free(canon);
                st_fail(e, STELLAR_ENOMEM, "out of memory");
                return NULL;
            }
            if (v && json_equal(v, (json_t *)(uintptr_t)job)) {
                char *text = st_strdup(json_string_value(s));
                json_decref(v);
                json_decref(raw);
                st_free(canon);
                return text;
            }
            json_decref(v);
        }
        json_decref(raw);
    }
    return canon; /* not there: the remove below finds nothing */
}

/* Removes a failed entry; with retry, queues its job again atomically. */
static int failed_take(stellar *h, const json_t *job, bool retry,
                       int64_t *removed, stellar_error *e)
{
    char *entry = NULL, *payload = NULL;
    json_t *pl = json_object_get(job, "payload");
    const char *queue = json_string_value(json_object_get(job, "queue"));
    const char *klass = json_string_value(json_object_get(pl, "class"));
    st_done requeue = {ST_DONE_REQUEUE, NULL, queue, NULL};
    int rc;

    *removed = 0;
    st_err_clear(e);
    if (!json_is_object(job) && !(json_is_string(job) && !retry))
        return st_fail(e, STELLAR_EINVAL, "a failed job must be a JSON object");
    if (retry && (!queue || !klass))
        return st_fail(e, STELLAR_EINVAL,
                       "failed job has no queue or payload class to retry");
    if (!(entry = failed_text(h, job, e)) ||
        (retry && !(payload = st_payload_build_args(
                        klass, queue, json_object_get(pl, "args"), e)))) {
        st_free(entry);
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    }
    requeue.payload = payload;
    WITH_CONN(
        h, b,
        b->ops->failed_remove(b, entry, retry ? &requeue : NULL, removed, e));
    if (rc == STELLAR_OK && retry && *removed) st_wake(h);
    st_free(entry);
    st_free(payload);
    return rc;
}

int stellar_remove_failed(stellar *h, const json_t *failed_job,
                          int64_t *removed, stellar_error *e)
{
    return failed_take(h, failed_job, false, removed, e);
}

int stellar_retry_and_remove_failed(stellar *h, const json_t *failed_job,
                                    stellar_error *e)
{
    int64_t removed = 0;
    int rc = failed_take(h, failed_job, true, &removed, e);
    if (rc == STELLAR_OK && !removed)
        return st_fail(e, STELLAR_ENOTFOUND, "This job is not in failed queue");
    return rc;
}

int stellar_clean_old_workers(stellar *h, int64_t age_ms, bool requeue,
                              json_t **cleaned, stellar_error *e)
{
    int rc;
    *cleaned = NULL;
    if (age_ms < 0)
        return st_fail(e, STELLAR_EINVAL, "cleanOldWorkers: negative age");
    WITH_CONN(h, b, st_clean_workers(h, b, age_ms, requeue, cleaned, e));
    return rc;
}

/* ------------------------------------------------------- Enqueue many --- */

/*
 * stellar_enqueue_many (see stellar.h): every params text is parsed before
 * anything else, so a bad one stores nothing; then, on one connection and
 * under no lock, each job is built and passed through its before_enqueue
 * hooks, the jobs that passed go out in one push, and their after_enqueue
 * hooks run.
 * A task without plugins skips the args array that only hooks look at.
 */
int stellar_enqueue_many(stellar *h, const char *task,
                         const char *const *params, size_t n, const char *queue,
                         stellar_error *e)
{
    json_t **parsed = NULL, **args = NULL, *empty = NULL;
    char **payloads = NULL;
    st_backend *b;
    stellar_error pe, first;
    const st_task *t;
    char which[32];
    size_t i, npush = 0;
    bool hooks, vetoed = false;
    int rc = STELLAR_OK, before_rc = STELLAR_OK, after_rc = STELLAR_OK;

    st_err_clear(e);
    st_err_clear(&first);
    if ((rc = job_rules(h, true, task, queue, &t, &queue, e))) return rc;
    if (n == 0) return STELLAR_OK;
    parsed = st_calloc(n, sizeof *parsed);
    args = st_calloc(n, sizeof *args);
    payloads = st_calloc(n, sizeof *payloads);
    empty = json_object();
    if (!parsed || !args || !payloads || !empty) {
        rc = st_fail(e, STELLAR_ENOMEM, "enqueue %s: out of memory", task);
        goto out;
    }
    for (i = 0; i < n; i++) {
        const char *p = params ? params[i] : NULL;
        if (!p || !*p) continue; /* {} */
        parsed[i] = st_json_parse(p, strlen(p), &pe);
        if (!parsed[i]) {
            rc = st_fail(e, pe.code, "enqueue %s: params[%zu]: %s", task, i,
                         pe.msg);
            goto out;
        }
        snprintf(which, sizeof which, "params[%zu]", i);
        if ((rc = params_rule(true, task, parsed[i], which, e))) goto out;
    }

    if ((rc = st_conn_get(h, &b, e))) goto out;
    hooks = t && t->plugins && t->plugins[0];
    for (i = 0; i < n; i++) {
        json_t *obj = parsed[i] ? parsed[i] : empty;
        stellar_job job = {0};
        char *payload;

        /* The payload wraps a non-array in [ ]: args = [params]. */
        if (hooks && !(args[npush] = json_pack("[O]", obj))) {
            before_rc = st_fail(&first, STELLAR_ENOMEM, "out of memory");
            break;
        }
        payload = st_payload_build_args(task, queue, hooks ? args[npush] : obj,
                                        &first);
        if (!payload) {
            before_rc = STELLAR_ENOMEM;
            break;
        }
        if (hooks) {
            job = (stellar_job){.h = h,
                                .b = b,
                                .task = t,
                                .queue = queue,
                                .args = args[npush],
                                .payload = payload};
            before_rc = st_hooks_run(ST_HOOK_BEFORE_ENQUEUE, &job, &first);
            st_free(job.error);
            if (before_rc == STELLAR_VETOED) {
                vetoed = true;
                before_rc = STELLAR_OK;
                json_decref(args[npush]);
                args[npush] = NULL;
                st_free(payload);
                continue;
            }
            if (before_rc < 0) {
                st_free(payload);
                break;
            }
        }
        payloads[npush++] = payload;
    }
    /* Out of memory with no hooks run yet: none is written, as for a
     * bad params text (with hooks, as for a failing hook). */
    if (before_rc == STELLAR_ENOMEM && !hooks) npush = 0;
    if (npush)
        rc = b->ops->push(b, queue, (const char *const *)payloads, npush, e);
    for (i = 0; hooks && i < npush; i++) {
        stellar_job job = {.h = h,
                           .b = b,
                           .task = t,
                           .queue = queue,
                           .args = args[i],
                           .payload = payloads[i]};
        stellar_error ae;
        int arc;

        if (rc < 0) { /* not stored: the hooks undo what they took */
            st_hooks_enqueue_failed(&job);
            continue;
        }
        arc = st_hooks_run(ST_HOOK_AFTER_ENQUEUE, &job, &ae);
        st_free(job.error);
        if (arc < 0 && after_rc == STELLAR_OK) {
            after_rc = arc;
            if (before_rc == STELLAR_OK) first = ae;
        }
    }
    st_conn_put(h, b);
    if (rc == STELLAR_OK && npush) st_wake(h);

    if (rc == STELLAR_OK && (before_rc < 0 || after_rc < 0)) {
        rc = before_rc < 0 ? before_rc : after_rc;
        if (e) *e = first;
    } else if (rc == STELLAR_OK && vetoed) {
        rc = STELLAR_VETOED;
    }
out:
    for (i = 0; parsed && i < n; i++) {
        json_decref(parsed[i]);
        if (args) json_decref(args[i]);
        if (payloads) st_free(payloads[i]);
    }
    st_free(parsed);
    st_free(args);
    st_free(payloads);
    json_decref(empty);
    return rc;
}
