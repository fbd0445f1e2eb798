/*
 * workers.c: the SQLite backend's workers: register, ping and unregister;
 * reserve, which ends the held job and takes the next in one transaction;
 * the list of workers; the clean-up of a dead one; and wait, which sleeps
 * until a job may be there to reserve.
 *
 * A worker is one row of `workers`; its working-on record (job_*) is set in
 * the transaction that takes the job off its queue, so a job is always in a
 * queue or held by a named worker. clean_worker, run for a dead worker,
 * puts its job back or fails it, and deletes its row and its counters.
 */
#include "sq.h"

#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------- Workers --- */

static const char *queues_str(const st_worker_id *w)
{
    return w->queues_str ? w->queues_str : "*";
}

static bool is_wildcard(const st_worker_id *w)
{
    return !w->queues || !w->queues[0] ||
           (strcmp(w->queues[0], "*") == 0 && !w->queues[1]);
}

/* The workers written to at now_ms: one for register and unregister,
 * n for ping. */
struct workers_arg {
    const st_worker_id *const *ws;
    size_t n;
    int64_t now_ms;
};

static int register_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct workers_arg *a = arg;
    const st_worker_id *w = a->ws[0];

    return sq_exec(c, S_WORKER_REG, e, "tti", w->name, queues_str(w),
                   a->now_ms);
}

int sq_worker_register(st_backend *b, const st_worker_id *w, int64_t now_ms,
                       stellar_error *e)
{
    struct workers_arg a = {&w, 1, now_ms};

    if (!w || !w->name)
        return st_fail(e, STELLAR_EINVAL, "sqlite worker_register: no name");
    return sq_txn((sq_conn *)b, "worker_register", SQ_WRITE, register_body, &a,
                  e);
}

/* Deletes worker name's row and its per-worker counters. */
static int forget_worker(sq_conn *c, const char *name, stellar_error *e)
{
    int rc = sq_exec(c, S_WORKER_DEL, e, "t", name);
    if (rc < 0) return rc;
    return sq_exec(c, S_WORKER_STATS_DEL, e, "t", name);
}

static int unregister_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct workers_arg *a = arg;

    return forget_worker(c, a->ws[0]->name, e);
}

int sq_worker_unregister(st_backend *b, const st_worker_id *w, stellar_error *e)
{
    struct workers_arg a = {&w, 1, 0};

    if (!w || !w->name)
        return st_fail(e, STELLAR_EINVAL, "sqlite worker_unregister: no name");
    return sq_txn((sq_conn *)b, "worker_unregister", SQ_WRITE, unregister_body,
                  &a, e);
}

static int ping_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct workers_arg *a = arg;
    size_t i;
    int rc;

    for (i = 0; i < a->n; i++) {
        const st_worker_id *w = a->ws[i];
        if (!w || !w->name) continue;
        rc = sq_exec(c, S_WORKER_PING, e, "tti", w->name, queues_str(w),
                     a->now_ms);
        if (rc < 0) return rc;
    }
    return STELLAR_OK;
}

int sq_ping(st_backend *b, const st_worker_id *const *ws, size_t n,
            int64_t now_ms, stellar_error *e)
{
    struct workers_arg a = {ws, n, now_ms};

    if (n == 0) return STELLAR_OK;
    return sq_txn((sq_conn *)b, "ping", SQ_WRITE, ping_body, &a, e);
}

/*
 * Finds the first job of w's queues in priority order that no pause or limit
 * holds back: 1 (with *id and, if r is not NULL, copies of its queue and
 * payload in r, and in st the rate-limited targets it starts under), 0 if
 * there is none, or an error.
 */
static int head(sq_conn *c, const st_worker_id *w, int64_t *id, st_reserved *r,
                sq_starts *st, stellar_error *e)
{
    const char *const *q;
    sqlite3_stmt *s;
    int rc;

    /* Pauses and limits (control.c) may hold a head back. */
    if ((rc = sq_ctl_any(c, e)) != 0)
        return rc < 0 ? rc : sq_ctl_head(c, w, st_now_ms(), id, r, st, e);
    if (is_wildcard(w)) {
        if ((rc = sq_prep(c, S_JOB_HEAD_ANY, &s, e, "")) < 0) return rc;
        if ((rc = sq_step(c, s, e)) != 1) return rc;
        *id = sqlite3_column_int64(s, 0);
        if (r) {
            r->payload = st_strndup((const char *)sqlite3_column_text(s, 1),
                                    (size_t)sqlite3_column_bytes(s, 1));
            r->payload_len = (size_t)sqlite3_column_bytes(s, 1);
            r->queue = st_strdup((const char *)sqlite3_column_text(s, 2));
        }
        sqlite3_reset(s);
        return r && (!r->payload || !r->queue) ? sq_oom(c, e) : 1;
    }
    for (q = w->queues; *q; q++) {
        if ((rc = sq_prep(c, S_JOB_HEAD, &s, e, "t", *q)) < 0) return rc;
        if ((rc = sq_step(c, s, e)) < 0) return rc;
        if (rc == 0) continue;
        *id = sqlite3_column_int64(s, 0);
        if (r) {
            r->payload = st_strndup((const char *)sqlite3_column_text(s, 1),
                                    (size_t)sqlite3_column_bytes(s, 1));
            r->payload_len = (size_t)sqlite3_column_bytes(s, 1);
            r->queue = st_strdup(*q);
        }
        sqlite3_reset(s);
        return r && (!r->payload || !r->queue) ? sq_oom(c, e) : 1;
    }
    return 0;
}

/* Applies the end of w's held job (inside a write transaction), except for
 * clearing its working-on record: the caller does that, or overwrites it. */
static int apply_done(sq_conn *c, const st_worker_id *w, const st_done *d,
                      stellar_error *e)
{
    int rc;

    switch (d ? d->outcome : ST_DONE_NONE) {
    case ST_DONE_OK:
        return sq_exec(c, S_STAT_INCR2, e, "tti", "processed", w->name,
                       (int64_t)1);
    case ST_DONE_FAILED:
        rc = sq_exec(c, S_STAT_INCR2, e, "tti", "failed", w->name, (int64_t)1);
        if (rc < 0) return rc;
        return sq_exec(c, S_FAILED_ADD, e, "t", d->failed_entry);
    case ST_DONE_REQUEUE: return sq_push_head(c, d->queue, d->payload, e);
    case ST_DONE_NONE:
    case ST_DONE_DROPPED:
    default: return STELLAR_OK;
    }
}

static int no_job(const st_worker_id *w, stellar_error *e)
{
    return st_fail(e, STELLAR_ENOTFOUND, "no job in queues %s", queues_str(w));
}

struct reserve_arg {
    const st_worker_id *w;
    const st_done *done; /* the end of the held job, or NULL */
    int64_t now_ms;
    bool want;       /* reserve a job (the caller gave out) */
    bool found;      /* one was reserved, into got */
    st_reserved got; /* owned until handed out */
    sq_starts st;    /* the rate-limited targets it starts under */
};

static int reserve_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct reserve_arg *a = arg;
    const st_worker_id *w = a->w;
    int64_t id = 0, one;
    char klass[SQ_TARGET_MAX];
    int rc;

    if ((rc = apply_done(c, w, a->done, e)) < 0) return rc;
    a->st.n = 0;
    if (a->want) {
        if ((rc = head(c, w, &id, &a->got, &a->st, e)) < 0) return rc;
        a->found = rc == 1;
    }
    if (!a->found) {
        if (!a->done || a->done->outcome == ST_DONE_NONE) return STELLAR_OK;
        return sq_exec(c, S_WORKER_CLEAR, e, "t", w->name);
    }
    if ((rc = sq_exec(c, S_JOB_DEL_ID, e, "i", id)) < 0) return rc;
    /* The class in the record is the job's permit under a task limit
     * (control.c): counted while the record stands. */
    rc = sq_exec(c, S_WORKER_TAKE, e, "ttttit", w->name, queues_str(w),
                 a->got.queue, a->got.payload, a->now_ms,
                 st_payload_class(a->got.payload, klass, sizeof klass) ? klass
                                                                       : NULL);
    if (rc < 0) return rc;
    if (a->st.n && (rc = sq_ctl_started(c, &a->st, st_now_ms(), e)) < 0)
        return rc;
    /* Live as kv_get reads it: by the clock, not by now_ms (the caller's
     * stamp for the working-on record). */
    rc = sq_int(c, S_KV_SUSPECT, &one, e, "ti", a->got.payload, st_now_ms());
    if (rc < 0) return rc;
    a->got.suspect = rc == 1;
    return STELLAR_OK;
}

int sq_reserve(st_backend *b, const st_worker_id *w, const st_done *done,
               int64_t now_ms, st_reserved *out, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    enum st_outcome oc = done ? done->outcome : ST_DONE_NONE;
    struct reserve_arg a = {
        w, done, now_ms, out != NULL, false, {NULL, NULL, 0, false}, {0}};
    int64_t id = 0;
    int rc;

    c->op = "reserve";
    if (out) *out = a.got;
    if (!w || !w->name)
        return st_fail(e, STELLAR_EINVAL, "sqlite reserve: no worker name");
    if ((oc == ST_DONE_FAILED && !done->failed_entry) ||
        (oc == ST_DONE_REQUEUE && (!done->queue || !done->payload)))
        return st_fail(e, STELLAR_EINVAL,
                       "sqlite reserve: done without its failed entry or "
                       "payload");
    if (oc == ST_DONE_NONE) {
        if (!out) return STELLAR_OK;
        /* Idle polling: look without the write lock first. */
        if ((rc = head(c, w, &id, NULL, NULL, e)) <= 0)
            return rc < 0 ? rc : no_job(w, e);
    }
    if ((rc = sq_txn(c, "reserve", SQ_WRITE, reserve_body, &a, e)) < 0) {
        st_reserved_clear(&a.got);
        return rc;
    }
    if (!a.found) return out ? no_job(w, e) : STELLAR_OK;
    *out = a.got;
    return STELLAR_OK;
}

/* One row of S_WORKERS as {"queues", "started", "ping", "working_on"}, or
 * NULL on allocation failure. */
static json_t *worker_json(sqlite3_stmt *s)
{
    json_t *one = json_object(), *job;
    bool ok;

    if (sqlite3_column_type(s, 5) == SQLITE_NULL) {
        job = json_null();
    } else if ((job = json_object()) &&
               (sq_jset(job, "run_at", sq_col_int(s, 6)) < 0 ||
                sq_jset(job, "queue", sq_col_str(s, 4)) < 0 ||
                sq_jset(job, "payload", sq_col_str(s, 5)) < 0)) {
        json_decref(job);
        job = NULL;
    }
    ok = one && job && sq_jset(one, "queues", sq_col_str(s, 1)) == 0 &&
         sq_jset(one, "started", sq_col_int(s, 2)) == 0 &&
         sq_jset(one, "ping", sq_col_int(s, 3)) == 0;
    if (ok) {
        ok = sq_jset(one, "working_on", job) == 0; /* takes job */
        job = NULL;
    }
    json_decref(job);
    if (ok) return one;
    json_decref(one);
    return NULL;
}

int sq_workers(st_backend *b, json_t **out, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    sqlite3_stmt *s;
    int rc;

    c->op = "workers";
    *out = NULL;
    if ((rc = sq_prep(c, S_WORKERS, &s, e, "")) < 0) return rc;
    return sq_rows(c, s, true, worker_json, out, e);
}

struct clean_arg {
    const char *name;
    enum st_clean_mode mode;
    const char *failed_entry; /* or NULL: st_timeout_entry builds one */
    char *queue, *held;       /* the job it held (owned), or NULL */
    char *built;              /* st_timeout_entry's (owned), or NULL */
};

static int clean_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct clean_arg *a = arg;
    sqlite3_stmt *s;
    int rc;

    if ((rc = sq_prep(c, S_WORKER_JOB, &s, e, "t", a->name)) < 0) return rc;
    if ((rc = sq_step(c, s, e)) < 0) return rc;
    if (rc == 0)
        return st_fail(e, STELLAR_ENOTFOUND, "no worker named %s", a->name);
    if (sqlite3_column_type(s, 1) != SQLITE_NULL) {
        const char *q = (const char *)sqlite3_column_text(s, 0);
        a->queue = st_strdup(q ? q : "default");
        a->held = st_strndup((const char *)sqlite3_column_text(s, 1),
                             (size_t)sqlite3_column_bytes(s, 1));
        if (!a->queue || !a->held) {
            sqlite3_reset(s);
            return sq_oom(c, e);
        }
    }
    sqlite3_reset(s);
    if (a->held && a->mode == ST_CLEAN_REQUEUE) {
        if ((rc = sq_push_head(c, a->queue, a->held, e)) < 0) return rc;
    } else if (a->held) {
        /* As node-resque's forceCleanWorker, except that an idle worker
         * does not count as a failure (the Redis backend does the same). */
        if (!a->failed_entry &&
            !(a->built = st_timeout_entry(a->name, a->queue, a->held, NULL,
                                          NULL, st_now_ms())))
            return sq_oom(c, e);
        rc = sq_exec(c, S_STAT_INCR, e, "ti", "failed", (int64_t)1);
        if (rc < 0) return rc;
        rc = sq_exec(c, S_FAILED_ADD, e, "t",
                     a->failed_entry ? a->failed_entry : a->built);
        if (rc < 0) return rc;
    }
    return forget_worker(c, a->name, e);
}

int sq_clean_worker(st_backend *b, const char *name, enum st_clean_mode mode,
                    const char *failed_entry, char **payload, stellar_error *e)
{
    struct clean_arg a = {name, mode, failed_entry, NULL, NULL, NULL};
    int rc;

    if (payload) *payload = NULL;
    if (!name)
        return st_fail(e, STELLAR_EINVAL, "sqlite clean_worker: no name");
    rc = sq_txn((sq_conn *)b, "clean_worker", SQ_WRITE, clean_body, &a, e);
    st_free(a.built);
    st_free(a.queue);
    if (rc == STELLAR_OK && payload)
        *payload = a.held;
    else
        st_free(a.held);
    return rc;
}

/* ---------------------------------------------------------------- Wait --- */

/* Without a watch on the WAL, how often wait looks (ms); with one, how
 * often it looks anyway. */
#define WAIT_POLL_MS  1
#define WAIT_CHECK_MS 25

/*
 * Waits until one of w's queues may hold a job or timeout_ms pass: after
 * each write to the WAL (every WAIT_POLL_MS without a watch, and every
 * WAIT_CHECK_MS anyway), compares PRAGMA data_version (it changes when
 * another connection commits) and looks at w's queues when it changed.
 * A commit shows in data_version only once its last WAL write is done, so
 * a write that changed nothing yet is looked at again 1 ms later. Events
 * left from before this call are not dropped but looked at: one may be
 * the write of a commit the first look below came too early to see.
 * Returns STELLAR_OK either way.
 */
int sq_wait(st_backend *b, const st_worker_id *w, int64_t timeout_ms,
            stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    int64_t deadline = st_mono_ms() + timeout_ms, seen = 0, v = 0, id, now;
    int64_t check_at;
    enum sq_wake why;
    bool watched;
    int rc;

    c->op = "wait";
    if (!w) return st_fail(e, STELLAR_EINVAL, "sqlite wait: no worker");
    watched = sq_watch_open(c);
    if ((rc = sq_int(c, S_DATA_VERSION, &seen, e, "")) < 0) return rc;
    if ((rc = head(c, w, &id, NULL, NULL, e)) != 0)
        return rc < 0 ? rc : STELLAR_OK;
    check_at = st_mono_ms() + WAIT_CHECK_MS;
    while ((now = st_mono_ms()) < deadline) {
        int64_t nap = watched ? check_at - now : WAIT_POLL_MS;
        if (nap > deadline - now) nap = deadline - now;
        why = sq_watch_wait(c, nap < 0 ? 0 : nap);
        now = st_mono_ms();
        if (why == SQ_WAKE_OTHER && now < check_at) continue;
        if ((rc = sq_int(c, S_DATA_VERSION, &v, e, "")) < 0) return rc;
        check_at = now + (v == seen && why == SQ_WAKE_WAL ? 1 : WAIT_CHECK_MS);
        if (v == seen) continue;
        seen = v;
        if ((rc = head(c, w, &id, NULL, NULL, e)) != 0)
            return rc < 0 ? rc : STELLAR_OK;
    }
    return STELLAR_OK;
}
