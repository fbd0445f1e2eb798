/*
 * queues.c: the SQLite backend's queues and delayed set: pushing, reading
 * and removing jobs, and promoting the due delayed ones.
 *
 * A queue is the rows of `jobs` with its name, FIFO by id; the set of queue
 * names is the table `queues`, as Redis's "queues" set (a name stays until
 * del_queue, empty or not). A delayed job is a row of `delayed`, due at
 * at_ms. Each change is one transaction (sq_txn), so promote_due moves a
 * due job exactly once however many schedulers run it.
 */
#include "sq.h"

#include <string.h>

/* -------------------------------------------------------------- Queues --- */

struct push_arg {
    const char *queue;
    const char *const *payloads;
    size_t n;
};

static int push_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct push_arg *a = arg;
    size_t i;
    int rc = sq_exec(c, S_QUEUE_ADD, e, "t", a->queue);

    for (i = 0; i < a->n && rc >= 0; i++) {
        if (!a->payloads[i])
            return st_fail(e, STELLAR_EINVAL,
                           "sqlite push: payload %zu is NULL", i);
        rc = sq_exec(c, S_JOB_PUSH, e, "tt", a->queue, a->payloads[i]);
    }
    return rc;
}

int sq_push(st_backend *b, const char *queue, const char *const *payloads,
            size_t n, stellar_error *e)
{
    struct push_arg a = {queue, payloads, n};

    if (!queue || (n && !payloads))
        return st_fail(e, STELLAR_EINVAL, "sqlite push: no queue or payload");
    if (n == 0) return STELLAR_OK;
    return sq_txn((sq_conn *)b, "push", SQ_WRITE, push_body, &a, e);
}

/* Puts payload at the head of queue (inside a write transaction). */
int sq_push_head(sq_conn *c, const char *queue, const char *payload,
                 stellar_error *e)
{
    int rc = sq_exec(c, S_QUEUE_ADD, e, "t", queue);
    if (rc < 0) return rc;
    return sq_exec(c, S_JOB_PUSH_HEAD, e, "tt", queue, payload);
}

struct push_at_arg {
    int64_t at_ms;
    const char *queue, *payload;
    bool later;
};

static int push_at_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct push_at_arg *a = arg;
    int64_t at_ms = a->at_ms, one;
    int rc;

    for (;;) {
        rc = sq_int(c, S_DELAYED_FIND, &one, e, "ti", a->payload, at_ms);
        if (rc != 1 || !a->later) break;
        at_ms++; /* taken: the next ms */
    }
    if (rc < 0) return rc;
    if (rc == 1)
        return st_fail(e, STELLAR_EEXISTS,
                       "Job already enqueued at this time with same arguments");
    return sq_exec(c, S_DELAYED_ADD, e, "itt", at_ms, a->queue, a->payload);
}

int sq_push_at(st_backend *b, int64_t at_ms, const char *queue,
               const char *payload, bool later, stellar_error *e)
{
    struct push_at_arg a = {at_ms, queue, payload, later};

    if (!queue || !payload)
        return st_fail(e, STELLAR_EINVAL,
                       "sqlite push_at: no queue or payload");
    return sq_txn((sq_conn *)b, "push_at", SQ_WRITE, push_at_body, &a, e);
}

int sq_queues(st_backend *b, json_t **names, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;

    c->op = "queues";
    return sq_query_array(c, S_QUEUES, false, names, e, "");
}

/* One integer about queue (or `none` if the query has no row). */
static int queue_int(st_backend *b, const char *op, int stmt, const char *queue,
                     int64_t none, int64_t *out, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    int rc;

    c->op = op;
    *out = none;
    rc = sq_int(c, stmt, out, e, "t", queue);
    return rc < 0 ? rc : STELLAR_OK;
}

int sq_length(st_backend *b, const char *queue, int64_t *n, stellar_error *e)
{
    return queue_int(b, "length", S_JOB_COUNT, queue, 0, n, e);
}

int sq_oldest(st_backend *b, const char *queue, int64_t *enqueued_ms,
              stellar_error *e)
{
    return queue_int(b, "oldest", S_JOB_OLDEST, queue, -1, enqueued_ms, e);
}

int sq_queued(st_backend *b, const char *queue, int64_t start, int64_t stop,
              json_t **payloads, stellar_error *e)
{
    return sq_range((sq_conn *)b, "queued", S_JOB_COUNT, S_JOB_RANGE, queue,
                    start, stop, payloads, e);
}

/* The arguments of the operations that remove rows (del, del_queue,
 * replace, del_delayed_at), and how many went. */
struct del_arg {
    const char *queue, *payload;
    int64_t count; /* del: as LREM's */
    int64_t at_ms; /* replace: the new time; del_delayed_at: < 0 all */
    int64_t removed;
};

static int del_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct del_arg *a = arg;
    int rc;

    /* As LREM: count > 0 from the head, < 0 from the tail, 0 all. */
    if (a->count < 0)
        rc = sq_exec(c, S_JOB_DEL_TAIL, e, "tti", a->queue, a->payload,
                     a->count == INT64_MIN ? INT64_MAX : -a->count);
    else
        rc = sq_exec(c, S_JOB_DEL, e, "tti", a->queue, a->payload,
                     a->count > 0 ? a->count : (int64_t)-1);
    if (rc < 0) return rc;
    a->removed = sq_changes(c);
    return STELLAR_OK;
}

int sq_del(st_backend *b, const char *queue, const char *payload, int64_t count,
           int64_t *removed, stellar_error *e)
{
    struct del_arg a = {queue, payload, count, 0, 0};
    int rc = sq_txn((sq_conn *)b, "del", SQ_WRITE, del_body, &a, e);

    *removed = rc < 0 ? 0 : a.removed;
    return rc;
}

static int del_queue_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct del_arg *a = arg;
    int rc;

    if ((rc = sq_exec(c, S_JOB_DEL_QUEUE, e, "t", a->queue)) < 0) return rc;
    a->removed = sq_changes(c);
    if ((rc = sq_exec(c, S_QUEUE_DEL, e, "t", a->queue)) < 0) return rc;
    a->removed += sq_changes(c);
    return STELLAR_OK;
}

int sq_del_queue(st_backend *b, const char *queue, int64_t *removed,
                 stellar_error *e)
{
    struct del_arg a = {queue, NULL, 0, 0, 0};
    int rc = sq_txn((sq_conn *)b, "del_queue", SQ_WRITE, del_queue_body, &a, e);

    *removed = rc < 0 ? 0 : a.removed > 0;
    return rc;
}

/* ------------------------------------------------------------- Delayed --- */

struct del_delayed_arg {
    const char *payload;
    json_t *ts; /* the times it was delayed to */
};

static int del_delayed_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct del_delayed_arg *a = arg;
    int rc =
        sq_query_array(c, S_DELAYED_TS_OF, true, &a->ts, e, "t", a->payload);

    if (rc < 0) return rc;
    return sq_exec(c, S_DELAYED_DEL_PAYLOAD, e, "t", a->payload);
}

int sq_del_delayed(st_backend *b, const char *payload, json_t **ts_ms,
                   stellar_error *e)
{
    struct del_delayed_arg a = {payload, NULL};
    int rc =
        sq_txn((sq_conn *)b, "del_delayed", SQ_WRITE, del_delayed_body, &a, e);

    if (rc < 0) {
        json_decref(a.ts);
        a.ts = NULL;
    }
    *ts_ms = a.ts;
    return rc;
}

static int replace_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct del_arg *a = arg;
    int64_t at_ms = a->at_ms;
    int rc;

    if ((rc = sq_exec(c, S_DELAYED_DEL_PAYLOAD, e, "t", a->payload)) < 0)
        return rc;
    a->removed = sq_changes(c);
    rc = sq_exec(c, S_JOB_DEL, e, "tti", a->queue, a->payload, (int64_t)-1);
    if (rc < 0) return rc;
    a->removed += sq_changes(c);
    if (at_ms == ST_REPLACE_NOW) {
        if ((rc = sq_exec(c, S_QUEUE_ADD, e, "t", a->queue)) < 0) return rc;
        return sq_exec(c, S_JOB_PUSH, e, "tt", a->queue, a->payload);
    }
    if (at_ms > 0)
        return sq_exec(c, S_DELAYED_ADD, e, "itt", at_ms, a->queue, a->payload);
    return STELLAR_OK;
}

int sq_replace(st_backend *b, const char *queue, const char *payload,
               int64_t at_ms, int64_t *removed, stellar_error *e)
{
    struct del_arg a = {queue, payload, 0, at_ms, 0};
    int rc = sq_txn((sq_conn *)b, "replace", SQ_WRITE, replace_body, &a, e);

    *removed = rc < 0 ? 0 : a.removed;
    return rc;
}

int sq_scheduled_at(st_backend *b, const char *payload, json_t **ts_ms,
                    stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;

    c->op = "scheduled_at";
    return sq_query_array(c, S_DELAYED_TS_OF, true, ts_ms, e, "t", payload);
}

int sq_timestamps(st_backend *b, json_t **ts_ms, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;

    c->op = "timestamps";
    return sq_query_array(c, S_DELAYED_TS, true, ts_ms, e, "");
}

int sq_delayed_at(st_backend *b, int64_t ts_ms, json_t **payloads,
                  stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;

    c->op = "delayed_at";
    return sq_query_array(c, S_DELAYED_AT, false, payloads, e, "i", ts_ms);
}

static int del_delayed_at_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct del_arg *a = arg;
    int64_t ts_ms = a->at_ms;
    int rc = ts_ms < 0 ? sq_exec(c, S_DELAYED_DEL_ALL, e, "")
                       : sq_exec(c, S_DELAYED_DEL_AT, e, "i", ts_ms);

    if (rc < 0) return rc;
    a->removed = sq_changes(c);
    return STELLAR_OK;
}

int sq_del_delayed_at(st_backend *b, int64_t ts_ms, int64_t *removed,
                      stellar_error *e)
{
    struct del_arg a = {NULL, NULL, 0, ts_ms, 0};
    int rc = sq_txn((sq_conn *)b, "del_delayed_at", SQ_WRITE,
                    del_delayed_at_body, &a, e);

    *removed = rc < 0 ? 0 : a.removed;
    return rc;
}

struct promote_arg {
    int64_t now_ms, limit; /* limit -1: all that are due */
    int64_t moved, next;   /* next: the earliest at_ms left, or -1 */
};

static int promote_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct promote_arg *a = arg;
    int64_t n;
    int rc;

    rc = sq_exec(c, S_PROMOTE_QUEUES, e, "ii", a->now_ms, a->limit);
    if (rc < 0) return rc;
    rc = sq_exec(c, S_PROMOTE_JOBS, e, "ii", a->now_ms, a->limit);
    if (rc < 0) return rc;
    n = sq_changes(c);
    rc = sq_exec(c, S_PROMOTE_DEL, e, "ii", a->now_ms, a->limit);
    if (rc < 0) return rc;
    if (sq_changes(c) != n)
        return st_fail(e, STELLAR_EBACKEND,
                       "sqlite promote_due: moved %lld jobs but removed %lld "
                       "from the delayed set",
                       (long long)n, (long long)sq_changes(c));
    if ((rc = sq_int(c, S_DELAYED_NEXT, &a->next, e, "")) < 0) return rc;
    if (rc == 0) a->next = -1;
    a->moved = n;
    return STELLAR_OK;
}

int sq_promote_due(st_backend *b, int64_t now_ms, int64_t max, int64_t *moved,
                   int64_t *next_ms, stellar_error *e)
{
    struct promote_arg a = {now_ms, max > 0 ? max : -1, 0, -1};
    int rc = sq_txn((sq_conn *)b, "promote_due", SQ_WRITE, promote_body, &a, e);

    *moved = rc < 0 ? 0 : a.moved;
    *next_ms = rc < 0 ? -1 : a.next;
    return rc;
}
