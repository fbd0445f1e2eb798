/*
 * api_inspect.c: the /api/ routes that look at the store and clean it up:
 * queues and their jobs, delayed jobs and timestamps, workers, stats,
 * details, locks and the tasks. The route table at the end is read by
 * api.c's router.
 */
#include "http/api.h"

#include <stdlib.h>
#include <string.h>

#define DELAYED_LIMIT 100  /* /api/delayed's page, by default */
#define DELAYED_MAX   1000 /* and at most */

/* --------------------------------------------------------- Inspection --- */

/* {"<queue>": {"length": n, "latency_ms": ms or null}}: the "queues"
 * member of stellar_details(). */
static int get_queues(st_api_call *c, stellar_error *e)
{
    return st_queues_detail(c->h, &c->out, e);
}

static int queue_exists(st_api_call *c, const char *q, stellar_error *e)
{
    json_t *names = NULL, *v;
    size_t i;
    int rc = stellar_queues(c->h, &names, e);
    bool found = false;
    json_array_foreach(names, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), q) == 0)
            found = true;
    }
    json_decref(names);
    if (rc) return rc;
    return found ? STELLAR_OK
                 : st_fail(e, STELLAR_ENOTFOUND, "no queue named '%s'", q);
}

/* {"queue": q, "length": n}, as `stellar length --json`. */
static int get_queue(st_api_call *c, stellar_error *e)
{
    int64_t n = 0;
    int rc;
    if ((rc = queue_exists(c, c->cap[0], e))) return rc;
    if ((rc = stellar_length(c->h, c->cap[0], &n, e))) return rc;
    c->out =
        json_pack("{s:s, s:I}", "queue", c->cap[0], "length", (json_int_t)n);
    return STELLAR_OK;
}

/* ?start=&stop= (inclusive, negative from the end; default all). */
static int get_queue_jobs(st_api_call *c, stellar_error *e)
{
    int64_t start = 0, stop = -1;
    int rc;
    if ((rc = st_api_arg_i64(c, "start", 0, &start, e)) ||
        (rc = st_api_arg_i64(c, "stop", -1, &stop, e)))
        return rc;
    return stellar_queued(c->h, c->cap[0], start, stop, &c->out, e);
}

/* Body {"task", "params", "count"}: stellar_del(). */
static int del_queue_jobs(st_api_call *c, stellar_error *e)
{
    const char *task;
    char *params = NULL;
    int64_t count = 0, removed = 0;
    json_t *n;
    int rc;

    if ((rc = st_api_need_body(c, e)) ||
        (rc = st_api_body_str(c, "task", &task, e)))
        return rc;
    if (!task) return st_fail(e, STELLAR_EINVAL, "task is required");
    n = json_object_get(c->body, "count");
    if (n && !json_is_null(n)) {
        if (!json_is_integer(n) || json_integer_value(n) < 0)
            return st_fail(e, STELLAR_EINVAL,
                           "count must be a whole number >= 0");
        count = json_integer_value(n);
    }
    if ((rc = st_api_body_params(c, &params, e))) return rc;
    rc = stellar_del(c->h, c->cap[0], task, params, count, &removed, e);
    st_free(params);
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:I}", "removed", (json_int_t)removed);
    return rc;
}

static int del_queue(st_api_call *c, stellar_error *e)
{
    int rc = stellar_del_queue(c->h, c->cap[0], e);
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:s, s:b}", "queue", c->cap[0], "deleted", 1);
    return rc;
}

/* Compares two timestamps (json keys as int64) for qsort. */
static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * ?offset=&limit= (jobs; default 0 and DELAYED_LIMIT, at most
 * DELAYED_MAX): {"total": jobs in all, "offset", "limit", "delayed":
 * {"<ms>": [job...]}}, the jobs in time order (a timestamp's jobs in their
 * stored order) from offset, at most limit of them; a timestamp may be
 * split across pages. The dashboard polls this: a page, not 5,000 jobs.
 */
static int get_delayed(st_api_call *c, stellar_error *e)
{
    json_t *all = NULL, *page = NULL, *jobs, *v;
    int64_t offset = 0, limit = 0, *ts = NULL, total = 0, pos = 0;
    const char *k;
    size_t n = 0, i, j;
    int rc;

    if ((rc = st_api_arg_i64(c, "offset", 0, &offset, e)) ||
        (rc = st_api_arg_i64(c, "limit", DELAYED_LIMIT, &limit, e)))
        return rc;
    if (offset < 0) return st_fail(e, STELLAR_EINVAL, "offset must be >= 0");
    if (limit < 0 || limit > DELAYED_MAX)
        return st_fail(e, STELLAR_EINVAL, "limit must be 0 to %d", DELAYED_MAX);
    if ((rc = stellar_all_delayed(c->h, &all, e))) return rc;
    if (json_object_size(all) &&
        !(ts = st_malloc(json_object_size(all) * sizeof *ts)))
        goto oom;
    json_object_foreach(all, k, v)
    {
        ts[n++] = strtoll(k, NULL, 10);
        total += (int64_t)json_array_size(v);
    }
    if (n) qsort(ts, n, sizeof *ts, cmp_i64);
    if (!(page = json_object())) goto oom;
    for (i = 0; i < n && pos < offset + limit; i++) {
        char key[24];
        json_t *out = NULL;
        snprintf(key, sizeof key, "%lld", (long long)ts[i]);
        jobs = json_object_get(all, key);
        for (j = 0; j < json_array_size(jobs); j++, pos++) {
            if (pos < offset || pos >= offset + limit) continue;
            if (!out &&
                (!(out = json_array()) || json_object_set_new(page, key, out)))
                goto oom;
            if (json_array_append(out, json_array_get(jobs, j))) goto oom;
        }
    }
    st_free(ts);
    json_decref(all);
    c->out = json_pack("{s:I, s:I, s:I, s:o}", "total", (json_int_t)total,
                       "offset", (json_int_t)offset, "limit", (json_int_t)limit,
                       "delayed", page);
    return c->out ? STELLAR_OK : st_fail(e, STELLAR_ENOMEM, "out of memory");
oom:
    st_free(ts);
    json_decref(all);
    json_decref(page);
    return st_fail(e, STELLAR_ENOMEM, "out of memory");
}

static int get_delayed_at(st_api_call *c, stellar_error *e)
{
    int64_t ts = 0;
    int rc;
    if ((rc = st_api_seg_i64(c->cap[0], "the timestamp", &ts, e))) return rc;
    return stellar_delayed_at(c->h, ts, &c->out, e);
}

static int del_delayed_at(st_api_call *c, stellar_error *e)
{
    int64_t ts = 0, removed = 0;
    int rc;
    if ((rc = st_api_seg_i64(c->cap[0], "the timestamp", &ts, e)) ||
        (rc = stellar_del_delayed_at(c->h, ts, &removed, e)))
        return rc;
    if (!removed)
        return st_fail(e, STELLAR_ENOTFOUND, "no delayed jobs at %lld",
                       (long long)ts);
    c->out = json_pack("{s:I}", "removed", (json_int_t)removed);
    return STELLAR_OK;
}

static int del_delayed_all(st_api_call *c, stellar_error *e)
{
    int64_t removed = 0;
    int rc = stellar_del_all_delayed(c->h, &removed, e);
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:I}", "removed", (json_int_t)removed);
    return rc;
}

static int get_timestamps(st_api_call *c, stellar_error *e)
{
    return stellar_timestamps(c->h, &c->out, e);
}

static int get_workers(st_api_call *c, stellar_error *e)
{
    return stellar_workers(c->h, &c->out, e);
}

static int get_worker(st_api_call *c, stellar_error *e)
{
    return stellar_working_on(c->h, c->cap[0], &c->out, e);
}

/* Body {"age": ms, "requeue": bool}: stellar_clean_old_workers(). */
static int clean_workers(st_api_call *c, stellar_error *e)
{
    json_t *age, *rq;
    int rc;
    if ((rc = st_api_need_body(c, e))) return rc;
    age = json_object_get(c->body, "age");
    rq = json_object_get(c->body, "requeue");
    if (!json_is_integer(age) || json_integer_value(age) < 0)
        return st_fail(e, STELLAR_EINVAL,
                       "age (ms) must be a whole number >= 0");
    if (rq && !json_is_boolean(rq))
        return st_fail(e, STELLAR_EINVAL, "requeue must be true or false");
    return stellar_clean_old_workers(c->h, json_integer_value(age),
                                     json_is_true(rq), &c->out, e);
}

static int get_working(st_api_call *c, stellar_error *e)
{
    return stellar_all_working_on(c->h, &c->out, e);
}

static int get_stats(st_api_call *c, stellar_error *e)
{
    return stellar_stats(c->h, &c->out, e);
}

static int get_details(st_api_call *c, stellar_error *e)
{
    return stellar_details(c->h, &c->out, e);
}

static int get_locks(st_api_call *c, stellar_error *e)
{
    return stellar_locks(c->h, &c->out, e);
}

static int del_lock(st_api_call *c, stellar_error *e)
{
    int64_t removed = 0;
    int rc = stellar_del_lock(c->h, c->cap[0], &removed, e);
    if (rc) return rc;
    if (!removed)
        return st_fail(e, STELLAR_ENOTFOUND, "no lock named '%s'", c->cap[0]);
    c->out = json_pack("{s:s, s:I}", "lock", c->cap[0], "removed",
                       (json_int_t)removed);
    return STELLAR_OK;
}

/* stellar_tasks_json(), and for each periodic task "scheduled_at": the ms
 * timestamps its next run waits for (stellar_scheduled_at of its payload;
 * [] while it is queued, running, or stopped). */
static int get_tasks(st_api_call *c, stellar_error *e)
{
    json_t *tasks = stellar_tasks_json(c->h), *t;
    size_t i;
    int rc = STELLAR_OK;

    if (!tasks) return st_fail(e, STELLAR_ENOMEM, "out of memory");
    json_array_foreach(tasks, i, t)
    {
        json_t *at = NULL;
        if (json_integer_value(json_object_get(t, "frequency")) <= 0) continue;
        rc = stellar_scheduled_at(
            c->h, json_string_value(json_object_get(t, "queue")),
            json_string_value(json_object_get(t, "name")), NULL, &at, e);
        if (rc) break;
        json_object_set_new(t, "scheduled_at", at);
    }
    if (rc)
        json_decref(tasks);
    else
        c->out = tasks;
    return rc;
}

/* ------------------------------------------------------------- Routes --- */

const st_api_route st_api_inspect_routes[] = {
    {"GET", "queues", get_queues},
    {"GET", "queues/*", get_queue},
    {"DELETE", "queues/*", del_queue},
    {"GET", "queues/*/jobs", get_queue_jobs},
    {"DELETE", "queues/*/jobs", del_queue_jobs},
    {"GET", "delayed", get_delayed},
    {"DELETE", "delayed", del_delayed_all},
    {"GET", "delayed/*", get_delayed_at},
    {"DELETE", "delayed/*", del_delayed_at},
    {"GET", "timestamps", get_timestamps},
    {"GET", "workers", get_workers},
    {"POST", "workers/clean", clean_workers},
    {"GET", "workers/*", get_worker},
    {"GET", "working", get_working},
    {"GET", "stats", get_stats},
    {"GET", "details", get_details},
    {"GET", "locks", get_locks},
    {"DELETE", "locks/*", del_lock},
    {"GET", "tasks", get_tasks},
    {NULL, NULL, NULL},
};
