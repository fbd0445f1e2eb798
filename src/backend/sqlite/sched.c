/*
 * sched.c: the SQLite backend's cron schedule records (table `schedules`):
 * the claim of a tick together with its job, pause and first sight, and
 * the listing.
 *
 * The claim is one write transaction: the compare-and-set of last_ms
 * (SCHED_CLAIM changes a row only if the schedule is not paused and its
 * last tick is older), then, only if it changed one, the push of the job.
 * However many schedulers try one tick, the writer lock lets one change
 * the row; the others find last_ms = tick and store nothing.
 */
#include "sq.h"

struct claim_arg {
    const char *name, *queue, *payload;
    int64_t tick_ms;
    bool claimed;
};

static int claim_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct claim_arg *a = arg;
    int rc = sq_exec(c, S_SCHED_CLAIM, e, "ti", a->name, a->tick_ms);

    if (rc < 0) return rc;
    a->claimed = sq_changes(c) > 0;
    if (!a->claimed) return STELLAR_OK;
    if ((rc = sq_exec(c, S_QUEUE_ADD, e, "t", a->queue)) < 0) return rc;
    return sq_exec(c, S_JOB_PUSH, e, "tt", a->queue, a->payload);
}

int sq_sched_claim(st_backend *b, const char *name, int64_t tick_ms,
                   const char *queue, const char *payload, bool *claimed,
                   stellar_error *e)
{
    struct claim_arg a = {name, queue, payload, tick_ms, false};
    int rc;

    *claimed = false;
    if (!name || !queue || !payload)
        return st_fail(e, STELLAR_EINVAL,
                       "sqlite sched_claim: no name, queue or payload");
    rc = sq_txn((sq_conn *)b, "sched_claim", SQ_WRITE, claim_body, &a, e);
    if (rc == STELLAR_OK) *claimed = a.claimed;
    return rc;
}

struct set_arg {
    const char *name;
    int64_t paused, seen_ms;
};

static int set_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct set_arg *a = arg;
    return sq_exec(c, S_SCHED_SET, e, "tii", a->name, a->paused, a->seen_ms);
}

int sq_sched_set(st_backend *b, const char *name, int paused, int64_t seen_ms,
                 stellar_error *e)
{
    struct set_arg a = {name, paused < 0 ? -1 : paused > 0,
                        seen_ms < 0 ? -1 : seen_ms};

    if (!name) return st_fail(e, STELLAR_EINVAL, "sqlite sched_set: no name");
    return sq_txn((sq_conn *)b, "sched_set", SQ_WRITE, set_body, &a, e);
}

/* One row of S_SCHED_LIST as {"last", "paused", "seen"}, or NULL if out of
 * memory. */
static json_t *sched_json(sqlite3_stmt *s)
{
    json_t *one = json_object();

    if (one && (sq_jset(one, "last", sq_col_int(s, 1)) < 0 ||
                sq_jset(one, "paused",
                        json_boolean(sqlite3_column_int64(s, 2) != 0)) < 0 ||
                sq_jset(one, "seen", sq_col_int(s, 3)) < 0)) {
        json_decref(one);
        one = NULL;
    }
    return one;
}

static int list_body(sq_conn *c, void *arg, stellar_error *e)
{
    sqlite3_stmt *s;
    int64_t have = 0;
    int rc;

    /* A read-only file of an older schema has no schedules. */
    if ((rc = sq_int(c, S_HAS_TABLE, &have, e, "t", "schedules")) < 0)
        return rc;
    if (!have) return STELLAR_OK;
    if ((rc = sq_prep(c, S_SCHED_LIST, &s, e, "")) < 0) return rc;
    return sq_rows_into(c, s, arg, sched_json, e);
}

int sq_sched_list(st_backend *b, json_t **out, stellar_error *e)
{
    json_t *all = json_object();
    int rc;

    *out = NULL;
    if (!all) return sq_oom((sq_conn *)b, e);
    rc = sq_txn((sq_conn *)b, "sched_list", SQ_READ, list_body, all, e);
    if (rc < 0) {
        json_decref(all);
        return rc;
    }
    *out = all;
    return STELLAR_OK;
}
