/*
 * tasks.c: enqueue, enqueueAt, enqueueIn, recurrent (periodic) jobs and the
 * management and inspection calls, written against backend.h only.
 *
 * API calls run on the handle's own connection under h->lock; the worker and
 * scheduler threads call the st_ helpers here with their own connections.
 */
#include "core.h"

#include <string.h>

/* ------------------------------------------------------------ Enqueue --- */

int st_enqueue_on(stellar *h, st_backend *b, int64_t at_ms, bool delayed,
                  const char *task, const json_t *params, const char *queue,
                  stellar_error *e)
{
    const st_task *t;
    char *payload;
    int rc;

    if (!task || !*task)
        return st_fail(e, STELLAR_EINVAL, "enqueue: a task name is required");
    if (params && !json_is_object(params))
        return st_fail(e, STELLAR_EINVAL,
                       "enqueue %s: params must be a JSON object", task);
    t = st_task_find(h, task);
    if (!t && h->ntasks > 0)
        return st_fail(e, STELLAR_ENOTASK, "enqueue: unknown task '%s'", task);
    if (!queue || !*queue) queue = t ? t->def.queue : "default";
    payload = st_payload_build(task, queue, params, e);
    if (!payload) return STELLAR_ENOMEM;
    if (delayed)
        rc = b->ops->push_at(b, at_ms, queue, payload, e);
    else
        rc = b->ops->push(b, queue, (const char *const *)&payload, 1, e);
    st_free(payload);
    return rc;
}

static int enqueue(stellar *h, int64_t at_ms, bool delayed, const char *task,
                   const char *params, const char *queue, stellar_error *e)
{
    json_t *p = NULL;
    stellar_error pe;
    int rc;

    st_err_clear(e);
    if (params && *params) {
        p = st_json_parse(params, strlen(params), &pe);
        if (!p)
            return st_fail(e, STELLAR_EINVAL, "enqueue %s: params: %s",
                           task ? task : "", pe.msg);
    }
    pthread_mutex_lock(&h->lock);
    rc = st_enqueue_on(h, h->conn, at_ms, delayed, task, p, queue, e);
    if (rc == STELLAR_OK && h->pool) st_pool_wake(h->pool);
    pthread_mutex_unlock(&h->lock);
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
    return enqueue(h, at_ms, true, task, params, queue, e);
}

int stellar_enqueue_in(stellar *h, int64_t delay_ms, const char *task,
                       const char *params, const char *queue, stellar_error *e)
{
    if (delay_ms < 0)
        return st_fail(e, STELLAR_EINVAL, "enqueueIn: negative delay %lld",
                       (long long)delay_ms);
    return enqueue(h, st_now_ms() + delay_ms, true, task, params, queue, e);
}


int st_recurrent_enqueue(stellar *h, st_backend *b, const st_task *t,
                         bool immediate, int64_t *removed, stellar_error *e)
{
    char *payload = st_payload_build(t->def.name, t->def.queue, NULL, e);
    json_t *ts = NULL;
    int64_t n = 0;
    int rc;

    (void)h; /* the plugin hooks will need it */
    if (!payload) return STELLAR_ENOMEM;
    /* Remove every queued and delayed copy first, so that one periodic
     * task never has two copies waiting. */
    rc = b->ops->del(b, t->def.queue, payload, 0, &n, e);
    if (rc == STELLAR_OK) rc = b->ops->del_delayed(b, payload, &ts, e);
    if (rc == STELLAR_OK) {
        n += (int64_t)json_array_size(ts);
        if (immediate)
            rc = b->ops->push(b, t->def.queue, (const char *const *)&payload,
                              1, e);
        else
            rc = b->ops->push_at(b, st_now_ms() + t->def.frequency,
                                 t->def.queue, payload, e);
    }
    if (removed) *removed = n;
    json_decref(ts);
    st_free(payload);
    return rc;
}

/* --------------------------------------------------------- Inspection --- */

/* Runs one backend query on the handle's connection. */
#define WITH_CONN(h, call)                                                     \
    do {                                                                       \
        st_err_clear(e);                                                       \
        pthread_mutex_lock(&(h)->lock);                                        \
        rc = (call);                                                           \
        pthread_mutex_unlock(&(h)->lock);                                      \
    } while (0)

int stellar_stats(stellar *h, json_t **out, stellar_error *e)
{
    int rc;
    *out = NULL;
    WITH_CONN(h, h->conn->ops->stats(h->conn, out, e));
    return rc;
}

int stellar_failed_count(stellar *h, int64_t *out, stellar_error *e)
{
    int rc;
    *out = 0;
    WITH_CONN(h, h->conn->ops->failed_count(h->conn, out, e));
    return rc;
}

/* Turns an array of raw JSON strings into parsed values; an entry that does
 * not parse stays as its string. */
static void parse_entries(json_t *arr)
{
    size_t i;
    for (i = 0; i < json_array_size(arr); i++) {
        json_t *s = json_array_get(arr, i), *v;
        if (!json_is_string(s)) continue;
        v = st_json_parse(json_string_value(s), json_string_length(s), NULL);
        if (v) json_array_set_new(arr, i, v);
    }
}

int stellar_failed(stellar *h, int64_t start, int64_t stop, json_t **out,
                   stellar_error *e)
{
    int rc;
    *out = NULL;
    WITH_CONN(h, h->conn->ops->failed_range(h->conn, start, stop, out, e));
    if (rc == STELLAR_OK) parse_entries(*out);
    return rc;
}

int stellar_queues(stellar *h, json_t **out, stellar_error *e)
{
    int rc;
    *out = NULL;
    WITH_CONN(h, h->conn->ops->queues(h->conn, out, e));
    return rc;
}

int stellar_length(stellar *h, const char *queue, int64_t *out,
                   stellar_error *e)
{
    int rc;
    *out = 0;
    if (!queue || !*queue)
        return st_fail(e, STELLAR_EINVAL, "length: a queue name is required");
    WITH_CONN(h, h->conn->ops->length(h->conn, queue, out, e));
    return rc;
}

int stellar_workers(stellar *h, json_t **out, stellar_error *e)
{
    int rc;
    *out = NULL;
    WITH_CONN(h, h->conn->ops->workers(h->conn, out, e));
    return rc;
}

int stellar_timestamps(stellar *h, json_t **out, stellar_error *e)
{
    int rc;
    *out = NULL;
    WITH_CONN(h, h->conn->ops->timestamps(h->conn, out, e));
    return rc;
}
