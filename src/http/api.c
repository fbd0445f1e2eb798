/*
 * api.c: the JSON API under /api/ (issue #7), one route table over the
 * public API.
 *
 * Every document is the one the C API hands out (and the CLI prints with
 * --json), encoded compactly as the CLI does; where a route needs more than
 * one call it says what it adds. Errors are {"error": text, "code": name}
 * with the STELLAR_E* name and a fitting status (see status_of).
 *
 * Paths are matched segment by segment after percent-decoding each one, so
 * a queue named "a/b" is "queues/a%2Fb". When a literal segment matches
 * (failed/count) it wins over a wildcard (failed/<index>); a path that
 * matches a route under another method answers 405 with Allow.
 *
 * This file sees no socket: server.c has checked the token, the Host and
 * the CSRF header, and limited the body, before it calls st_http_api().
 */
#include "http/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGS      6
#define DELAYED_LIMIT 100  /* /api/delayed's page, by default */
#define DELAYED_MAX   1000 /* and at most */

typedef struct call {
    stellar *h;
    const st_http_req *req;
    char *cap[2]; /* the wildcard segments, decoded */
    json_t *body; /* the request body parsed, or NULL if empty */
    json_t *out;  /* the reply document */
    int status;   /* 0: 200 */
} call;

typedef int (*route_fn)(call *c, stellar_error *e);

/* --------------------------------------------------------- Arguments --- */

/* Parses a whole decimal int64. */
static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;
    if (!s || !*s) return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* Query argument `name` as an integer, def when absent. */
static int arg_i64(call *c, const char *name, int64_t def, int64_t *out,
                   stellar_error *e)
{
    char *v = c->req->arg ? c->req->arg(c->req->arg_ud, name) : NULL;
    bool ok;
    if (!v) {
        *out = def;
        return STELLAR_OK;
    }
    ok = parse_i64(v, out);
    st_free(v);
    if (!ok)
        return st_fail(e, STELLAR_EINVAL, "%s must be a whole number", name);
    return STELLAR_OK;
}

/* A path segment as an integer (a failed index, a timestamp). */
static int seg_i64(const char *s, const char *what, int64_t *out,
                   stellar_error *e)
{
    if (!parse_i64(s, out))
        return st_fail(e, STELLAR_EINVAL, "%s must be a whole number, not '%s'",
                       what, s);
    return STELLAR_OK;
}

static int need_body(call *c, stellar_error *e)
{
    if (!json_is_object(c->body))
        return st_fail(e, STELLAR_EINVAL, "the body must be a JSON object");
    return STELLAR_OK;
}

/* Optional string member; EINVAL if present and not a non-empty string. */
static int body_str(call *c, const char *name, const char **out,
                    stellar_error *e)
{
    json_t *v = json_object_get(c->body, name);
    *out = NULL;
    if (!v || json_is_null(v)) return STELLAR_OK;
    if (!json_is_string(v) || !*json_string_value(v))
        return st_fail(e, STELLAR_EINVAL, "%s must be a non-empty string",
                       name);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return st_fail(e, STELLAR_EINVAL, "%s must not contain a NUL (\\u0000)",
                       name);
    *out = json_string_value(v);
    return STELLAR_OK;
}

/* Optional "params" member as JSON text (JSON.stringify-exact, member
 * order kept, since jobs are matched as whole payloads). */
static int body_params(call *c, char **out, stellar_error *e)
{
    json_t *p = json_object_get(c->body, "params");
    *out = NULL;
    if (!p || json_is_null(p)) return STELLAR_OK;
    if (!json_is_object(p))
        return st_fail(
            e, STELLAR_EINVAL,
            "params must be a JSON object, such as {\"to\":\"a@b.c\"}");
    if (!(*out = st_json_dumps(p)))
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    return STELLAR_OK;
}

/* --------------------------------------------------------- Inspection --- */

/* {"<queue>": {"length": n, "latency_ms": ms or null}}: the "queues"
 * member of stellar_details(). */
static int get_queues(call *c, stellar_error *e)
{
    return st_queues_detail(c->h, &c->out, e);
}

static int queue_exists(call *c, const char *q, stellar_error *e)
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
static int get_queue(call *c, stellar_error *e)
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
static int get_queue_jobs(call *c, stellar_error *e)
{
    int64_t start = 0, stop = -1;
    int rc;
    if ((rc = arg_i64(c, "start", 0, &start, e)) ||
        (rc = arg_i64(c, "stop", -1, &stop, e)))
        return rc;
    return stellar_queued(c->h, c->cap[0], start, stop, &c->out, e);
}

/* Body {"task", "params", "count"}: stellar_del(). */
static int del_queue_jobs(call *c, stellar_error *e)
{
    const char *task;
    char *params = NULL;
    int64_t count = 0, removed = 0;
    json_t *n;
    int rc;

    if ((rc = need_body(c, e)) || (rc = body_str(c, "task", &task, e)))
        return rc;
    if (!task) return st_fail(e, STELLAR_EINVAL, "task is required");
    n = json_object_get(c->body, "count");
    if (n && !json_is_null(n)) {
        if (!json_is_integer(n) || json_integer_value(n) < 0)
            return st_fail(e, STELLAR_EINVAL,
                           "count must be a whole number >= 0");
        count = json_integer_value(n);
    }
    if ((rc = body_params(c, &params, e))) return rc;
    rc = stellar_del(c->h, c->cap[0], task, params, count, &removed, e);
    st_free(params);
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:I}", "removed", (json_int_t)removed);
    return rc;
}

static int del_queue(call *c, stellar_error *e)
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
static int get_delayed(call *c, stellar_error *e)
{
    json_t *all = NULL, *page = NULL, *jobs, *v;
    int64_t offset = 0, limit = 0, *ts = NULL, total = 0, pos = 0;
    const char *k;
    size_t n = 0, i, j;
    int rc;

    if ((rc = arg_i64(c, "offset", 0, &offset, e)) ||
        (rc = arg_i64(c, "limit", DELAYED_LIMIT, &limit, e)))
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

static int get_delayed_at(call *c, stellar_error *e)
{
    int64_t ts = 0;
    int rc;
    if ((rc = seg_i64(c->cap[0], "the timestamp", &ts, e))) return rc;
    return stellar_delayed_at(c->h, ts, &c->out, e);
}

static int del_delayed_at(call *c, stellar_error *e)
{
    int64_t ts = 0, removed = 0;
    int rc;
    if ((rc = seg_i64(c->cap[0], "the timestamp", &ts, e)) ||
        (rc = stellar_del_delayed_at(c->h, ts, &removed, e)))
        return rc;
    if (!removed)
        return st_fail(e, STELLAR_ENOTFOUND, "no delayed jobs at %lld",
                       (long long)ts);
    c->out = json_pack("{s:I}", "removed", (json_int_t)removed);
    return STELLAR_OK;
}

static int del_delayed_all(call *c, stellar_error *e)
{
    int64_t removed = 0;
    int rc = stellar_del_all_delayed(c->h, &removed, e);
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:I}", "removed", (json_int_t)removed);
    return rc;
}

static int get_timestamps(call *c, stellar_error *e)
{
    return stellar_timestamps(c->h, &c->out, e);
}

static int get_workers(call *c, stellar_error *e)
{
    return stellar_workers(c->h, &c->out, e);
}

static int get_worker(call *c, stellar_error *e)
{
    return stellar_working_on(c->h, c->cap[0], &c->out, e);
}

/* Body {"age": ms, "requeue": bool}: stellar_clean_old_workers(). */
static int clean_workers(call *c, stellar_error *e)
{
    json_t *age, *rq;
    int rc;
    if ((rc = need_body(c, e))) return rc;
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

static int get_working(call *c, stellar_error *e)
{
    return stellar_all_working_on(c->h, &c->out, e);
}

static int get_stats(call *c, stellar_error *e)
{
    return stellar_stats(c->h, &c->out, e);
}

static int get_details(call *c, stellar_error *e)
{
    return stellar_details(c->h, &c->out, e);
}

static int get_locks(call *c, stellar_error *e)
{
    return stellar_locks(c->h, &c->out, e);
}

static int del_lock(call *c, stellar_error *e)
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
static int get_tasks(call *c, stellar_error *e)
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

/* -------------------------------------------------------------- Failed --- */

static int get_failed(call *c, stellar_error *e)
{
    int64_t start = 0, stop = -1;
    int rc;
    if ((rc = arg_i64(c, "start", 0, &start, e)) ||
        (rc = arg_i64(c, "stop", -1, &stop, e)))
        return rc;
    return stellar_failed(c->h, start, stop, &c->out, e);
}

static int get_failed_count(call *c, stellar_error *e)
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
static int failed_at_index(call *c, json_t **entry, stellar_error *e)
{
    static const char *const ids[] = {"failed_at", "worker", "queue",
                                      "exception", "error"};
    json_t *list = NULL, *want;
    int64_t i = 0;
    size_t k;
    int rc;

    *entry = NULL;
    if ((rc = seg_i64(c->cap[0], "the index", &i, e)) ||
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

static int get_failed_one(call *c, stellar_error *e)
{
    return failed_at_index(c, &c->out, e);
}

static int retry_failed(call *c, stellar_error *e)
{
    json_t *entry;
    int rc;
    if ((rc = failed_at_index(c, &entry, e))) return rc;
    rc = stellar_retry_and_remove_failed(c->h, entry, e);
    json_decref(entry);
    if (rc == STELLAR_OK) c->out = json_pack("{s:i}", "retried", 1);
    return rc;
}

static int del_failed(call *c, stellar_error *e)
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
static int failed_all(call *c, bool retry, stellar_error *e)
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

static int retry_all(call *c, stellar_error *e)
{
    return failed_all(c, true, e);
}

static int del_failed_all(call *c, stellar_error *e)
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
static int post_enqueue(call *c, stellar_error *e)
{
    const char *task, *queue;
    char *params = NULL, *used;
    json_t *at = NULL, *in = NULL, *p;
    int64_t when;
    int rc;

    if ((rc = need_body(c, e)) || (rc = body_str(c, "task", &task, e)) ||
        (rc = body_str(c, "queue", &queue, e)))
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
    if ((rc = body_params(c, &params, e))) return rc;

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

static int post_recurrent(call *c, stellar_error *e)
{
    int rc = stellar_enqueue_recurrent(c->h, c->cap[0], e);
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:s, s:b}", "task", c->cap[0], "enqueued", 1);
    return rc;
}

static int del_recurrent(call *c, stellar_error *e)
{
    int64_t removed = 0;
    int rc = stellar_stop_recurrent(c->h, c->cap[0], &removed, e);
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:s, s:I}", "task", c->cap[0], "removed",
                           (json_int_t)removed);
    return rc;
}

/* ---------------------------------------------------------- Schedules --- */

static int get_schedules(call *c, stellar_error *e)
{
    return stellar_schedules(c->h, &c->out, e);
}

static int pause_schedule(call *c, bool paused, stellar_error *e)
{
    int rc = stellar_schedule_pause(c->h, c->cap[0], paused, e);
    if (rc == STELLAR_OK)
        c->out =
            json_pack("{s:s, s:b}", "schedule", c->cap[0], "paused", paused);
    return rc;
}

static int post_schedule_pause(call *c, stellar_error *e)
{
    return pause_schedule(c, true, e);
}

static int post_schedule_resume(call *c, stellar_error *e)
{
    return pause_schedule(c, false, e);
}

/* ------------------------------------------------------ Queue control --- */

/* POST queues/<q>/pause, body {} or {"for": ms}: as `stellar pause --json`
 * ({"queue", "paused": true, "paused_until": ms or null}). */
static int post_pause(call *c, stellar_error *e)
{
    json_t *f = json_object_get(c->body, "for"), *p = NULL;
    int64_t for_ms = 0;
    int rc;

    if (c->body && !json_is_object(c->body))
        return st_fail(e, STELLAR_EINVAL, "the body must be a JSON object");
    if (f && !json_is_null(f)) {
        if (!json_is_integer(f) || json_integer_value(f) <= 0)
            return st_fail(e, STELLAR_EINVAL,
                           "for must be a whole number of ms > 0");
        for_ms = json_integer_value(f);
    }
    if ((rc = stellar_pause(c->h, c->cap[0], for_ms, e))) return rc;
    if ((rc = stellar_pauses(c->h, &p, e))) return rc;
    c->out = json_pack(
        "{s:s, s:b, s:O}", "queue", c->cap[0], "paused", 1, "paused_until",
        json_object_get(p, c->cap[0]) ? json_object_get(p, c->cap[0])
                                      : json_null());
    json_decref(p);
    return STELLAR_OK;
}

/* POST queues/<q>/resume: {"queue", "paused": false, "was_paused"}. */
static int post_resume(call *c, stellar_error *e)
{
    bool was = false;
    int rc = stellar_resume(c->h, c->cap[0], &was, e);
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:s, s:b, s:b}", "queue", c->cap[0], "paused", 0,
                           "was_paused", was);
    return rc;
}

/* GET limits: stellar_limits(). */
static int get_limits(call *c, stellar_error *e)
{
    return stellar_limits(c->h, &c->out, e);
}

/* GET limits/<target>: {"concurrency", "rate", "running", "started"} as
 * stellar_limits() lists it; 404 if the target has no limit. */
static int get_limit(call *c, stellar_error *e)
{
    json_t *all = NULL;
    int rc;

    if ((rc = stellar_target_check(c->cap[0], e))) return rc;
    if ((rc = stellar_limits(c->h, &all, e))) return rc;
    c->out = json_incref(json_object_get(all, c->cap[0]));
    json_decref(all);
    if (!c->out)
        return st_fail(e, STELLAR_ENOTFOUND, "no limit on '%s'", c->cap[0]);
    return STELLAR_OK;
}

/* PUT limits/<target>, body {"concurrency": n, "rate": "N/DURATION"} (one
 * or both, as in stellar.json): sets the limit and answers as GET. */
static int put_limit(call *c, stellar_error *e)
{
    json_t *conc = json_object_get(c->body, "concurrency");
    json_t *rate = json_object_get(c->body, "rate");
    stellar_limit l = {0};
    int rc;

    if ((rc = need_body(c, e))) return rc;
    if (conc && !json_is_null(conc)) {
        if (!json_is_integer(conc) || json_integer_value(conc) < 1)
            return st_fail(e, STELLAR_EINVAL,
                           "concurrency must be a whole number >= 1");
        l.concurrency = json_integer_value(conc);
    }
    if (rate && !json_is_null(rate)) {
        if (!json_is_string(rate))
            return st_fail(e, STELLAR_EINVAL,
                           "rate must be a string N/DURATION, as \"100/1m\"");
        rc = stellar_rate_parse(json_string_value(rate), &l.rate, &l.window_ms,
                                e);
        if (rc) return rc;
    }
    if ((rc = stellar_limit_set(c->h, c->cap[0], &l, e))) return rc;
    return get_limit(c, e);
}

/* DELETE limits/<target>: {"target", "removed": 1}; 404 if none. */
static int del_limit(call *c, stellar_error *e)
{
    int64_t removed = 0;
    int rc = stellar_limit_clear(c->h, c->cap[0], &removed, e);
    if (rc) return rc;
    if (!removed)
        return st_fail(e, STELLAR_ENOTFOUND, "no limit on '%s'", c->cap[0]);
    c->out = json_pack("{s:s, s:I}", "target", c->cap[0], "removed",
                       (json_int_t)removed);
    return STELLAR_OK;
}

/* ------------------------------------------------------------- Routes --- */

static const struct route {
    const char *method;  /* GET also answers HEAD */
    const char *pattern; /* segments; "*" matches one */
    route_fn fn;
} routes[] = {
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
    {"GET", "failed", get_failed},
    {"DELETE", "failed", del_failed_all},
    {"GET", "failed/count", get_failed_count},
    {"POST", "failed/retry-all", retry_all},
    {"GET", "failed/*", get_failed_one},
    {"DELETE", "failed/*", del_failed},
    {"POST", "failed/*/retry", retry_failed},
    {"GET", "locks", get_locks},
    {"DELETE", "locks/*", del_lock},
    {"GET", "tasks", get_tasks},
    {"POST", "enqueue", post_enqueue},
    {"POST", "recurrent/*", post_recurrent},
    {"DELETE", "recurrent/*", del_recurrent},
    {"GET", "schedules", get_schedules},
    {"POST", "schedules/*/pause", post_schedule_pause},
    {"POST", "schedules/*/resume", post_schedule_resume},
    {"POST", "queues/*/pause", post_pause},
    {"POST", "queues/*/resume", post_resume},
    {"GET", "limits", get_limits},
    {"GET", "limits/*", get_limit},
    {"PUT", "limits/*", put_limit},
    {"DELETE", "limits/*", del_limit},
};

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes one segment; false on a bad escape or a NUL byte. */
static bool decode_seg(const char *s, size_t n, char **out)
{
    char *d = st_malloc(n + 1), *o = d;
    size_t i;
    *out = d;
    if (!d) return false;
    for (i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        if (i + 2 >= n) return false;
        if (hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) return false;
        *o = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
        if (!*o++) return false;
        i += 2;
    }
    *o = '\0';
    return true;
}

/* Splits and decodes path; returns the number of segments, -1 if bad. */
static int split(const char *path, char **seg)
{
    int n = 0;
    const char *p = path;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n == MAX_SEGS || !decode_seg(p, len, &seg[n++])) return -1;
        if (!end) return n;
        p = end + 1;
    }
}

/* Matches a pattern against segments: -1 if not, else the number of
 * literal segments (the more, the more specific). */
static int match(const char *pattern, char **seg, int nseg, char **cap)
{
    const char *p = pattern;
    int i, lit = 0, ncap = 0;
    for (i = 0; i < nseg; i++) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!*p && !end) return -1; /* pattern shorter */
        if (len == 1 && *p == '*') {
            if (!*seg[i]) return -1; /* an empty segment names nothing */
            if (cap && ncap < 2) cap[ncap] = seg[i];
            ncap++;
        } else if (strlen(seg[i]) == len && memcmp(p, seg[i], len) == 0) {
            lit++;
        } else {
            return -1;
        }
        p = end ? end + 1 : p + len;
        if (!end && i + 1 < nseg) return -1;
    }
    return *p ? -1 : lit;
}

static int status_of(int rc)
{
    switch (rc) {
    case STELLAR_EINVAL: return 400;
    case STELLAR_ENOTFOUND:
    case STELLAR_ENOTASK: return 404;
    case STELLAR_EEXISTS:
    case STELLAR_ESTATE: return 409;
    case STELLAR_EBUSY:
    case STELLAR_ECONNECT: return 503;
    case STELLAR_ETIMEDOUT: return 504;
    default: return 500;
    }
}

void st_http_api(stellar *h, const st_http_req *req, st_http_reply *r)
{
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    char *seg[MAX_SEGS] = {0};
    const struct route *found = NULL;
    stellar_error e = {0};
    call c = {h, req, {NULL, NULL}, NULL, NULL, 0};
    int nseg, best = -1, rc;
    size_t i;

    memset(r, 0, sizeof *r);
    nseg = split(req->path, seg);
    if (nseg < 0) {
        st_http_error(r, 400, "EINVAL",
                      "bad path: a segment has a bad "
                      "percent escape, a NUL, or there are "
                      "too many");
        goto out;
    }
    for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int m = match(routes[i].pattern, seg, nseg, NULL);
        if (m > best) best = m;
    }
    if (best < 0) {
        st_http_error(r, 404, "ENOTFOUND", "no such API route: /api/%s",
                      req->path);
        goto out;
    }
    for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (match(routes[i].pattern, seg, nseg, NULL) != best) continue;
        if (strcmp(routes[i].method, method) == 0) {
            found = &routes[i];
            match(found->pattern, seg, nseg, c.cap);
            break;
        }
        if (strlen(r->allow) + strlen(routes[i].method) + 8 < sizeof r->allow) {
            if (*r->allow) strcat(r->allow, ", ");
            strcat(r->allow, routes[i].method);
            if (strcmp(routes[i].method, "GET") == 0)
                strcat(r->allow, ", HEAD");
        }
    }
    if (!found) {
        st_http_error(r, 405, "EMETHOD", "%s is not allowed here (allowed: %s)",
                      req->method, r->allow);
        goto out;
    }
    r->allow[0] = '\0';
    if (req->body_len) {
        c.body = st_json_parse(req->body, req->body_len, &e);
        if (!c.body) {
            st_http_error(r, 400, "EINVAL", "the body is not JSON: %s", e.msg);
            goto out;
        }
    }
    rc = found->fn(&c, &e);
    if (rc < 0) {
        st_http_error(r, status_of(rc), stellar_err_name(rc), "%s",
                      e.msg[0] ? e.msg : stellar_strerror(rc));
        json_decref(c.out);
    } else {
        st_http_json(r, c.out);
    }
    json_decref(c.body);
out:
    for (i = 0; i < MAX_SEGS; i++)
        st_free(seg[i]);
}

/* ------------------------------------------------------------ Replies --- */

void st_http_error(st_http_reply *r, int status, const char *code,
                   const char *fmt, ...)
{
    char msg[512];
    json_t *doc;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st_free(r->body);
    r->body = NULL;
    r->len = 0;
    r->status = status;
    r->type = "application/json";
    doc = json_pack("{s:s, s:s}", "error", msg, "code", code);
    if (doc) {
        char *s = json_dumps(doc, JSON_COMPACT);
        if (s) {
            r->body = st_strdup(s);
            r->len = r->body ? strlen(r->body) : 0;
            free(s);
        }
        json_decref(doc);
    }
}

void st_http_json(st_http_reply *r, json_t *doc)
{
    char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(doc);
    if (!s) {
        st_http_error(r, 500, "ENOMEM", "out of memory");
        return;
    }
    st_free(r->body);
    r->len = strlen(s);
    r->body = st_malloc(r->len + 1);
    if (!r->body) {
        free(s);
        r->len = 0;
        st_http_error(r, 500, "ENOMEM", "out of memory");
        return;
    }
    memcpy(r->body, s, r->len + 1);
    free(s);
    r->status = 200;
    r->type = "application/json";
}
