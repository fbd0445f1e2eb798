/*
 * stats.c: the SQLite backend's stats counters and failed list.
 *
 * Counters are rows of `stats` (key, integer), named as Resque names them
 * ("processed", "failed", "processed:<worker>"...); the failed list is the
 * table `failed`, oldest first, each row one entry's JSON text. A job's
 * own counters and failed entry are written by reserve (workers.c), in the
 * transaction that ends it; what is here is reading them and managing the
 * list.
 */
#include "sq.h"

/* ------------------------------------------------------- Stats, failed --- */

int sq_stats(st_backend *b, json_t **out, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    sqlite3_stmt *s;
    int rc;

    c->op = "stats";
    *out = NULL;
    if ((rc = sq_prep(c, S_STATS, &s, e, "")) < 0) return rc;
    return sq_rows(c, s, true, sq_row_int, out, e);
}

struct incr_arg {
    const char *key;
    int64_t by;
};

static int stat_incr_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct incr_arg *a = arg;

    return sq_exec(c, S_STAT_INCR, e, "ti", a->key, a->by);
}

int sq_stat_incr(st_backend *b, const char *key, int64_t by, stellar_error *e)
{
    struct incr_arg a = {key, by};

    if (!key) return st_fail(e, STELLAR_EINVAL, "sqlite stat_incr: no key");
    return sq_txn((sq_conn *)b, "stat_incr", SQ_WRITE, stat_incr_body, &a, e);
}

int sq_failed_count(st_backend *b, int64_t *n, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    int rc;

    c->op = "failed_count";
    *n = 0;
    rc = sq_int(c, S_FAILED_COUNT, n, e, "");
    return rc < 0 ? rc : STELLAR_OK;
}

int sq_failed_range(st_backend *b, int64_t start, int64_t stop,
                    json_t **entries, stellar_error *e)
{
    return sq_range((sq_conn *)b, "failed_range", S_FAILED_COUNT,
                    S_FAILED_RANGE, NULL, start, stop, entries, e);
}

struct failed_remove_arg {
    const char *entry;
    const st_done *requeue; /* its job goes back to its queue, or NULL */
    int64_t removed;
};

static int failed_remove_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct failed_remove_arg *a = arg;
    const st_done *r = a->requeue;
    int rc;

    if ((rc = sq_exec(c, S_FAILED_DEL, e, "t", a->entry)) < 0) return rc;
    a->removed = sq_changes(c);
    if (a->removed > 0 && r) {
        if ((rc = sq_exec(c, S_QUEUE_ADD, e, "t", r->queue)) < 0) return rc;
        return sq_exec(c, S_JOB_PUSH, e, "tt", r->queue, r->payload);
    }
    return STELLAR_OK;
}

int sq_failed_remove(st_backend *b, const char *entry, const st_done *requeue,
                     int64_t *removed, stellar_error *e)
{
    struct failed_remove_arg a = {entry, requeue, 0};
    int rc;

    *removed = 0;
    if (!entry || (requeue && (!requeue->queue || !requeue->payload)))
        return st_fail(e, STELLAR_EINVAL,
                       "sqlite failed_remove: no entry, queue or payload");
    rc = sq_txn((sq_conn *)b, "failed_remove", SQ_WRITE, failed_remove_body, &a,
                e);
    if (rc == STELLAR_OK) *removed = a.removed;
    return rc;
}
