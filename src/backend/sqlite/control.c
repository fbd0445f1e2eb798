/*
 * control.c: the SQLite backend's queue control (issue 15): pauses, limits
 * and the check reserve makes before it takes a queue's head job.
 *
 * Tables (schema.c, version 4): `pauses` (queue -> until_ms, 0: until
 * resumed), `limits` (target -> concurrency, rate, window_ms; 0: none) and
 * `starts` (one row per start of a rate-limited target, trimmed to its
 * window as starts are written). A permit is not a row of its own: a
 * target's running jobs are the workers whose working-on record (job_queue,
 * job_class) is of it, so a permit is released by the very write that
 * clears or replaces that record (reserve's done, clean_worker), and a
 * reserve under a concurrency limit writes nothing more.
 *
 * The check runs inside reserve's write transaction, so two processes can
 * never both take the last permit. Held back means left in place: the
 * head is looked at, never popped. With no pause and no limit (sq_ctl_any
 * is 0, one lookup in two empty tables) reserve takes the plain path.
 */
#include "sq.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------- The check --- */

int sq_ctl_any(sq_conn *c, stellar_error *e)
{
    int64_t v = 0;
    int rc = sq_int(c, S_CTL_ANY, &v, e, "");
    return rc < 0 ? rc : v != 0;
}

/* 1 if queue is paused at now_ms, 0 if not, or an error. */
static int paused(sq_conn *c, const char *queue, int64_t now_ms,
                  stellar_error *e)
{
    int64_t until = 0;
    int rc = sq_int(c, S_PAUSE_GET, &until, e, "t", queue);
    if (rc <= 0) return rc;
    return until == 0 || until > now_ms;
}

/* 1 if the limit of target (if any) lets one more of its jobs start at
 * now_ms for worker, 0 if it is full, or an error. A rate limit adds the
 * target to st. */
static int limit_allows(sq_conn *c, const char *target, const char *name,
                        int use_id, const char *worker, int64_t now_ms,
                        sq_starts *st, stellar_error *e)
{
    int64_t conc, rate, window, n = 0;
    sqlite3_stmt *s;
    int rc;

    if ((rc = sq_prep(c, S_LIMIT_GET, &s, e, "t", target)) < 0) return rc;
    if ((rc = sq_step(c, s, e)) <= 0) return rc < 0 ? rc : 1;
    conc = sqlite3_column_int64(s, 0);
    rate = sqlite3_column_int64(s, 1);
    window = sqlite3_column_int64(s, 2);
    sqlite3_reset(s);
    if (conc > 0) {
        if ((rc = sq_int(c, use_id, &n, e, "tt", name, worker)) < 0) return rc;
        if (n >= conc) return 0;
    }
    if (rate > 0 && window > 0) {
        rc = sq_int(c, S_STARTS_COUNT, &n, e, "ti", target, now_ms - window);
        if (rc < 0) return rc;
        if (n >= rate) return 0;
        if (st && st->n < 2) {
            snprintf(st->target[st->n], SQ_TARGET_MAX, "%s", target);
            st->window_ms[st->n++] = window;
        }
    }
    return 1;
}

/* 1 if the job payload at the head of queue may start now, 0 if a pause
 * or a limit holds it back, or an error. */
static int may_start(sq_conn *c, const st_worker_id *w, const char *queue,
                     const char *payload, int64_t now_ms, sq_starts *st,
                     stellar_error *e)
{
    char target[SQ_TARGET_MAX], klass[SQ_TARGET_MAX - 8];
    int rc;

    if (st) st->n = 0;
    if ((rc = paused(c, queue, now_ms, e)) != 0) return rc < 0 ? rc : 0;
    if (strlen(queue) < sizeof klass) {
        snprintf(target, sizeof target, "queue:%s", queue);
        rc =
            limit_allows(c, target, queue, S_USE_QUEUE, w->name, now_ms, st, e);
        if (rc <= 0) return rc;
    }
    if (st_payload_class(payload, klass, sizeof klass)) {
        snprintf(target, sizeof target, "task:%s", klass);
        rc = limit_allows(c, target, klass, S_USE_TASK, w->name, now_ms, st, e);
        if (rc <= 0) return rc;
    }
    return 1;
}

/* Looks at queue's head: 1 (with *id, r, st) if it may start, else 0. */
static int try_queue(sq_conn *c, const st_worker_id *w, const char *queue,
                     int64_t now_ms, int64_t *id, st_reserved *r, sq_starts *st,
                     stellar_error *e)
{
    sqlite3_stmt *s;
    char *payload;
    size_t len;
    int rc;

    if ((rc = sq_prep(c, S_JOB_HEAD, &s, e, "t", queue)) < 0) return rc;
    if ((rc = sq_step(c, s, e)) <= 0) return rc;
    *id = sqlite3_column_int64(s, 0);
    len = (size_t)sqlite3_column_bytes(s, 1);
    payload = st_strndup((const char *)sqlite3_column_text(s, 1), len);
    sqlite3_reset(s);
    if (!payload) return sq_oom(c, e);
    rc = may_start(c, w, queue, payload, now_ms, st, e);
    if (rc == 1 && r) {
        r->payload = payload;
        r->payload_len = len;
        payload = NULL;
        if (!(r->queue = st_strdup(queue))) rc = sq_oom(c, e);
    }
    st_free(payload);
    return rc;
}

int sq_ctl_head(sq_conn *c, const st_worker_id *w, int64_t now_ms, int64_t *id,
                st_reserved *r, sq_starts *st, stellar_error *e)
{
    const char *const *q;
    json_t *names = NULL, *v;
    size_t i;
    int rc = 0;

    if (w->queues && w->queues[0] &&
        !(strcmp(w->queues[0], "*") == 0 && !w->queues[1])) {
        for (q = w->queues; *q; q++)
            if ((rc = try_queue(c, w, *q, now_ms, id, r, st, e)) != 0)
                return rc;
        return 0;
    }
    /* Every queue holding jobs, in name order (as JOB_HEAD_ANY). */
    if ((rc = sq_query_array(c, S_JOB_QUEUES, false, &names, e, "")) < 0)
        return rc;
    json_array_foreach(names, i, v)
    {
        rc = try_queue(c, w, json_string_value(v), now_ms, id, r, st, e);
        if (rc != 0) break;
    }
    json_decref(names);
    return rc;
}

int sq_ctl_started(sq_conn *c, const sq_starts *st, int64_t now_ms,
                   stellar_error *e)
{
    int i, rc;

    for (i = 0; i < st->n; i++) {
        rc = sq_exec(c, S_STARTS_TRIM, e, "ti", st->target[i],
                     now_ms - st->window_ms[i]);
        if (rc < 0) return rc;
        rc = sq_exec(c, S_STARTS_ADD, e, "ti", st->target[i], now_ms);
        if (rc < 0) return rc;
    }
    return STELLAR_OK;
}

/* ------------------------------------------------------ Operations --- */

struct ctl_arg {
    const char *name; /* queue or target */
    int64_t until_ms, conc, rate, window_ms;
    int64_t removed;
};

/* Runs body on a in a write transaction named op. *removed (if not NULL):
 * what body counted, or 0 if it failed. */
static int ctl_txn(st_backend *b, const char *op, sq_body *body,
                   struct ctl_arg *a, int64_t *removed, stellar_error *e)
{
    int rc = sq_txn((sq_conn *)b, op, SQ_WRITE, body, a, e);

    if (removed) *removed = rc == STELLAR_OK ? a->removed : 0;
    return rc;
}

static int pause_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct ctl_arg *a = arg;
    return sq_exec(c, S_PAUSE_SET, e, "ti", a->name, a->until_ms);
}

int sq_pause(st_backend *b, const char *queue, int64_t for_ms, stellar_error *e)
{
    /* This machine's clock, the one the check reads (as for rates). */
    struct ctl_arg a = {queue, for_ms > 0 ? st_now_ms() + for_ms : 0, 0, 0, 0,
                        0};
    return ctl_txn(b, "pause", pause_body, &a, NULL, e);
}

static int resume_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct ctl_arg *a = arg;
    int rc = paused(c, a->name, st_now_ms(), e);

    if (rc < 0) return rc;
    a->removed = rc;
    return sq_exec(c, S_PAUSE_DEL, e, "t", a->name);
}

int sq_resume(st_backend *b, const char *queue, int64_t *removed,
              stellar_error *e)
{
    struct ctl_arg a = {queue, 0, 0, 0, 0, 0};
    return ctl_txn(b, "resume", resume_body, &a, removed, e);
}

static int limit_set_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct ctl_arg *a = arg;
    int rc = sq_exec(c, S_LIMIT_SET, e, "tiii", a->name, a->conc, a->rate,
                     a->window_ms);
    /* Starts older than a new window no longer count. */
    if (rc == STELLAR_OK && a->rate == 0)
        rc = sq_exec(c, S_STARTS_DEL, e, "t", a->name);
    return rc;
}

int sq_limit_set(st_backend *b, const char *target, int64_t concurrency,
                 int64_t rate, int64_t window_ms, stellar_error *e)
{
    struct ctl_arg a = {target, 0, concurrency, rate, window_ms, 0};
    return ctl_txn(b, "limit_set", limit_set_body, &a, NULL, e);
}

static int limit_del_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct ctl_arg *a = arg;
    int rc = sq_exec(c, S_LIMIT_DEL, e, "t", a->name);

    if (rc < 0) return rc;
    a->removed = sq_changes(c);
    return sq_exec(c, S_STARTS_DEL, e, "t", a->name);
}

int sq_limit_del(st_backend *b, const char *target, int64_t *removed,
                 stellar_error *e)
{
    struct ctl_arg a = {target, 0, 0, 0, 0, 0};
    return ctl_txn(b, "limit_del", limit_del_body, &a, removed, e);
}

struct controls_arg {
    int64_t now_ms;
    json_t *out;
};

/* One limit row of S_LIMITS with its use, into limits. */
static int limit_json(sq_conn *c, sqlite3_stmt *s, int64_t now_ms,
                      json_t *limits, stellar_error *e)
{
    const char *target = (const char *)sqlite3_column_text(s, 0);
    int64_t conc = sqlite3_column_int64(s, 1),
            rate = sqlite3_column_int64(s, 2);
    int64_t window = sqlite3_column_int64(s, 3), running = 0, started = 0;
    bool queue = strncmp(target, "queue:", 6) == 0;
    const char *name = strchr(target, ':') + 1;
    json_t *one;
    int rc;

    rc = sq_int(c, queue ? S_USE_QUEUE : S_USE_TASK, &running, e, "tt", name,
                "");
    if (rc >= 0 && rate > 0)
        rc = sq_int(c, S_STARTS_COUNT, &started, e, "ti", target,
                    now_ms - window);
    if (rc < 0) return rc;
    one = json_pack("{s:I, s:I, s:I, s:I, s:I}", "concurrency",
                    (json_int_t)conc, "rate", (json_int_t)rate, "window_ms",
                    (json_int_t)window, "running", (json_int_t)running,
                    "started", (json_int_t)started);
    return sq_jset(limits, target, one) < 0 ? sq_oom(c, e) : STELLAR_OK;
}

static int controls_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct controls_arg *a = arg;
    json_t *paused_j = json_object(), *limits = json_object();
    int64_t have = 0;
    sqlite3_stmt *s;
    int rc;

    a->out = json_pack("{s:o, s:o}", "paused", paused_j, "limits", limits);
    if (!a->out) return sq_oom(c, e);
    /* A read-only file of an older schema has no controls. */
    if ((rc = sq_int(c, S_HAS_TABLE, &have, e, "t", "limits")) < 0) return rc;
    if (!have) return STELLAR_OK;
    if ((rc = sq_prep(c, S_PAUSES, &s, e, "i", a->now_ms)) < 0) return rc;
    if ((rc = sq_rows_into(c, s, paused_j, sq_row_int, e)) < 0) return rc;
    /* The use counts run while S_LIMITS is stepped: other statements. */
    if ((rc = sq_prep(c, S_LIMITS, &s, e, "")) < 0) return rc;
    while ((rc = sq_step(c, s, e)) == 1) {
        if ((rc = limit_json(c, s, a->now_ms, limits, e)) < 0) {
            sqlite3_reset(s);
            return rc;
        }
    }
    return rc < 0 ? rc : STELLAR_OK;
}

int sq_controls(st_backend *b, int64_t now_ms, json_t **out, stellar_error *e)
{
    struct controls_arg a = {now_ms, NULL};
    int rc = sq_txn((sq_conn *)b, "controls", SQ_READ, controls_body, &a, e);

    *out = NULL;
    if (rc < 0) {
        json_decref(a.out);
        return rc;
    }
    *out = a.out;
    return STELLAR_OK;
}
