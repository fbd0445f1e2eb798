/*
 * api_jobs.c: the /api/ routes that add and take back jobs: the failed
 * list (read, retry, remove), enqueue and the recurrent calls. The route
 * table at the end is read by api.c's router.
 */
#include "http/api.h"

#include <string.h>

/* -------------------------------------------------------------- Failed --- */

static int get_failed(st_api_call *c, stellar_error *e)
{
    int64_t start = 0, stop = -1;
    int rc;
    if ((rc = st_api_arg_i64(c, "start", 0, &start, e)) ||
        (rc = st_api_arg_i64(c, "stop", -1, &stop, e)))
        return rc;
    return stellar_failed(c->h, start, stop, &c->out, e);
}

static int get_failed_count(st_api_call *c, stellar_error *e)
{
    int64_t n = 0;
    int rc = stellar_failed_count(c->h, &n, e);
    if (rc == STELLAR_OK) c->out = json_pack("{s:I}", "count", (json_int_t)n);
    return rc;
}

/*
 * The failed entry at the index in the path (new reference). If the body
 * has {"entry": {...}} (what the client showed), its identifying members
 * must match, so that a list that moved under the client does not make it
 * act on another job: ESTATE (409) then.
 */
static int failed_at_index(st_api_call *c, json_t **entry, stellar_error *e)
{
    static const char *const ids[] = {"failed_at", "worker", "queue",
                                      "exception", "error"};
    json_t *list = NULL, *want;
    int64_t i = 0;
    size_t k;
    int rc;

    *entry = NULL;
    if ((rc = st_api_seg_i64(c->cap[0], "the index", &i, e)) ||
        (rc = stellar_failed(c->h, i, i, &list, e)))
        return rc;
    if (json_array_size(list) == 0) {
        json_decref(list);
        return st_fail(e, STELLAR_ENOTFOUND, "no failed job at index %lld",
                       (long long)i);
    }
    *entry = json_incref(json_array_get(list, 0));
    json_decref(list);
    want = json_object_get(c->body, "entry");
    if (!json_is_object(want)) return STELLAR_OK;
    for (k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        json_t *w = json_object_get(want, ids[k]);
        json_t *h = json_object_get(*entry, ids[k]);
        if (w && !json_equal(w, h)) {
            json_decref(*entry);
            *entry = NULL;
            return st_fail(e, STELLAR_ESTATE,
                           "the failed list changed: index %lld holds another "
                           "job now; reload",
                           (long long)i);
        }
    }
    return STELLAR_OK;
}

static int get_failed_one(st_api_call *c, stellar_error *e)
{
    return failed_at_index(c, &c->out, e);
}

static int retry_failed(st_api_call *c, stellar_error *e)
{
    json_t *entry;
    int rc;
    if ((rc = failed_at_index(c, &entry, e))) return rc;
    rc = stellar_retry_and_remove_failed(c->h, entry, e);
    json_decref(entry);
    if (rc == STELLAR_OK) c->out = json_pack("{s:i}", "retried", 1);
    return rc;
}

static int del_failed(st_api_call *c, stellar_error *e)
{
    json_t *entry;
    int64_t removed = 0;
    int rc;
    if ((rc = failed_at_index(c, &entry, e))) return rc;
    rc = stellar_remove_failed(c->h, entry, &removed, e);
    json_decref(entry);
    if (rc == STELLAR_OK && !removed)
        rc = st_fail(e, STELLAR_ENOTFOUND, "This job is not in failed queue");
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:I}", "removed", (json_int_t)removed);
    return rc;
}

/* Retries (or removes) every failed job there is now, one by one; jobs
 * another client took meanwhile are skipped. */
static int failed_all(st_api_call *c, bool retry, stellar_error *e)
{
    json_t *list = NULL, *entry;
    int64_t done = 0;
    size_t i;
    int rc;

    if ((rc = stellar_failed(c->h, 0, -1, &list, e))) return rc;
    json_array_foreach(list, i, entry)
    {
        int64_t removed = 0;
        if (retry) {
            rc = stellar_retry_and_remove_failed(c->h, entry, e);
            removed = rc == STELLAR_OK;
            if (rc == STELLAR_ENOTFOUND) rc = STELLAR_OK;
        } else {
            rc = stellar_remove_failed(c->h, entry, &removed, e);
        }
        if (rc) break;
        done += removed;
    }
    json_decref(list);
    if (rc == STELLAR_OK)
        c->out =
            json_pack("{s:I}", retry ? "retried" : "removed", (json_int_t)done);
    return rc;
}

static int retry_all(st_api_call *c, stellar_error *e)
{
    return failed_all(c, true, e);
}

static int del_failed_all(st_api_call *c, stellar_error *e)
{
    return failed_all(c, false, e);
}

/* ------------------------------------------------------------ Enqueue --- */

/* The queue a job of task went to when none was named: the task's queue if
 * this handle knows the task, else "default" (as the CLI reports it). */
static char *queue_of(stellar *h, const char *task)
{
    json_t *tasks = stellar_tasks_json(h), *t;
    char *q = NULL;
    size_t i;
    json_array_foreach(tasks, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "name")), task) == 0)
            q = st_strdup(json_string_value(json_object_get(t, "queue")));
    }
    json_decref(tasks);
    return q ? q : st_strdup("default");
}

/*
 * Body {"task", "params"?, "queue"?, "at"? | "in"?} (at: ms since the
 * epoch; in: ms from now). Answers the document `stellar enqueue --json`
 * prints: {"enqueued": false} when a plugin vetoed it.
 */
static int post_enqueue(st_api_call *c, stellar_error *e)
{
    const char *task, *queue;
    char *params = NULL, *used;
    json_t *at = NULL, *in = NULL, *p;
    int64_t when;
    int rc;

    if ((rc = st_api_need_body(c, e)) ||
        (rc = st_api_body_str(c, "task", &task, e)) ||
        (rc = st_api_body_str(c, "queue", &queue, e)))
        return rc;
    if (!task) return st_fail(e, STELLAR_EINVAL, "task is required");
    at = json_object_get(c->body, "at");
    in = json_object_get(c->body, "in");
    if (json_is_null(at)) at = NULL;
    if (json_is_null(in)) in = NULL;
    if (at && in) return st_fail(e, STELLAR_EINVAL, "give at or in, not both");
    if ((at && (!json_is_integer(at) || json_integer_value(at) < 0)) ||
        (in && (!json_is_integer(in) || json_integer_value(in) < 0)))
        return st_fail(e, STELLAR_EINVAL,
                       "%s must be a whole number of milliseconds >= 0",
                       at ? "at" : "in");
    if ((rc = st_api_body_params(c, &params, e))) return rc;

    if (at) {
        when = json_integer_value(at);
        rc = stellar_enqueue_at(c->h, when, task, params, queue, e);
    } else if (in) {
        when = st_now_ms();
        rc = stellar_enqueue_in(c->h, json_integer_value(in), task, params,
                                queue, e);
        if (rc >= 0) when += json_integer_value(in); /* in range: no overflow */
    } else {
        when = st_now_ms();
        rc = stellar_enqueue(c->h, task, params, queue, e);
    }
    if (rc < 0) {
        st_free(params);
        return rc;
    }
    used = queue ? st_strdup(queue) : queue_of(c->h, task);
    p = json_object_get(c->body, "params");
    c->out =
        json_pack("{s:b, s:s, s:s, s:O, s:I}", "enqueued", rc == STELLAR_OK,
                  "task", task, "queue", used ? used : "default", "params",
                  p ? p : json_null(), "at", (json_int_t)when);
    st_free(used);
    st_free(params);
    return STELLAR_OK;
}

static int post_recurrent(st_api_call *c, stellar_error *e)
{
    int rc = stellar_enqueue_recurrent(c->h, c->cap[0], e);
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:s, s:b}", "task", c->cap[0], "enqueued", 1);
    return rc;
}

static int del_recurrent(st_api_call *c, stellar_error *e)
{
    int64_t removed = 0;
    int rc = stellar_stop_recurrent(c->h, c->cap[0], &removed, e);
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:s, s:I}", "task", c->cap[0], "removed",
                           (json_int_t)removed);
    return rc;
}

/* ------------------------------------------------------------- Routes --- */

const st_api_route st_api_jobs_routes[] = {
    {"GET", "failed", get_failed},
    {"DELETE", "failed", del_failed_all},
    {"GET", "failed/count", get_failed_count},
    {"POST", "failed/retry-all", retry_all},
    {"GET", "failed/*", get_failed_one},
    {"DELETE", "failed/*", del_failed},
    {"POST", "failed/*/retry", retry_failed},
    {"POST", "enqueue", post_enqueue},
    {"POST", "recurrent/*", post_recurrent},
    {"DELETE", "recurrent/*", del_recurrent},
    {NULL, NULL, NULL},
};
