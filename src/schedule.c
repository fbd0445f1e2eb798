/*
 * schedule.c: cron schedules. The table of a handle's schedules (those of
 * tasks with `cron`, and those added with stellar_schedule_add), their
 * listing and pause, and their firing by every process's scheduler.
 *
 * Exactly once. Every scheduler (not only the leader) tries each due tick,
 * and the backend's sched_claim stores the tick as the schedule's last one
 * (a compare-and-set: only a later tick, only while not paused) and the
 * job in one atomic step. However many processes try, one claims the tick;
 * a process that dies before its claim leaves the tick to the others, one
 * that dies after it has stored the job with it. Firing is cheap: each
 * scheduler computes the next tick locally (st_cron_next) and calls the
 * backend only when a tick is due, once per tick.
 *
 * Late and missed (docs/schedules.md). A tick is late while less than
 * STELLAR_SCHEDULE_GRACE_MS have passed since it: a scheduler that sees it
 * then claims it as usual. A tick older than that whose job was never
 * stored was missed (no scheduler ran). A scheduler learns what was missed
 * when it syncs a schedule with the backend: at its start, and whenever
 * its own next tick is older than the grace (it was stalled). The base is
 * the later of the schedule's last tick and its seen time (its first
 * sight, or its last resume from a pause); the ticks after the base and
 * older than the grace are missed. Ticks of a pause never are: resuming a
 * paused schedule stores the resume's time as seen, in the same backend
 * step as the flag (sched_set), and a sync while paused queues nothing.
 * "skip" queues nothing for missed ticks; "once" claims the latest of
 * them, with one job: as every claim is of a real tick, two schedulers
 * that sync at once still store one job. A schedule with no record is seen
 * for the first time: its first sight is stored and it has missed nothing.
 */
#include "core.h"
#include "cron.h"
#include "tz.h"

#include <stdio.h>
#include <string.h>

#define UPCOMING 5 /* next fire times listed per schedule */

struct st_schedule {
    char *name, *cron_text, *task, *queue, *payload;
    json_t *params;
    st_cron cron;
    st_tz *tz;
    int missed;
    bool from_task;
};

static void schedule_free(st_schedule *s)
{
    if (!s) return;
    st_free(s->name);
    st_free(s->cron_text);
    st_free(s->task);
    st_free(s->queue);
    st_free(s->payload);
    json_decref(s->params);
    st_tz_free(s->tz);
    st_free(s);
}

void st_schedules_free(stellar *h)
{
    size_t i;
    for (i = 0; i < h->nscheds; i++)
        schedule_free(h->scheds[i]);
    st_free(h->scheds);
    h->scheds = NULL;
    h->nscheds = 0;
}

static st_schedule *find(const stellar *h, const char *name)
{
    size_t i;
    for (i = 0; i < h->nscheds; i++)
        if (strcmp(h->scheds[i]->name, name) == 0) return h->scheds[i];
    return NULL;
}

int st_schedule_new(stellar *h, const stellar_schedule *s, bool from_task,
                    const char *what, stellar_error *e)
{
    st_schedule *n, **grown;
    const st_task *t = NULL;
    stellar_error ne;
    int rc;

    if (!s->name || st_name_check("schedule", s->name, &ne))
        return st_fail(e, STELLAR_EINVAL, "%s: field 'name': %s", what,
                       s->name ? ne.msg : "is required");
    if (!s->cron || !*s->cron)
        return st_fail(e, STELLAR_EINVAL, "%s: field 'cron' is required", what);
    if (!from_task) {
        if (!s->task || st_name_check("task", s->task, &ne))
            return st_fail(e, STELLAR_EINVAL, "%s: field 'task': %s", what,
                           s->task ? ne.msg : "is required");
        t = st_task_find(h, s->task);
        if (!t && h->ntasks)
            return st_fail(e, STELLAR_ENOTASK,
                           "%s: field 'task': unknown task '%s'", what,
                           s->task);
    }
    if (s->queue && *s->queue && st_name_check("queue", s->queue, &ne))
        return st_fail(e, STELLAR_EINVAL, "%s: field 'queue': %s", what,
                       ne.msg);
    if (s->missed != STELLAR_MISSED_SKIP && s->missed != STELLAR_MISSED_ONCE)
        return st_fail(e, STELLAR_EINVAL,
                       "%s: field 'missed' must be skip or once", what);
    if (find(h, s->name))
        return st_fail(e, STELLAR_EEXISTS,
                       "%s: field 'name': a schedule named '%s' exists "
                       "already",
                       what, s->name);
    if (!(n = st_calloc(1, sizeof *n)))
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    n->missed = s->missed;
    n->from_task = from_task;
    if ((rc = st_cron_parse(&n->cron, s->cron, &ne))) {
        schedule_free(n);
        return st_fail(e, rc, "%s: field 'cron': %s", what, ne.msg);
    }
    if ((rc = st_tz_open(s->timezone, &n->tz, &ne))) {
        schedule_free(n);
        return st_fail(e, rc, "%s: field 'timezone': %s", what, ne.msg);
    }
    if (s->params && *s->params) {
        n->params = st_json_parse(s->params, strlen(s->params), &ne);
        if (!n->params || !json_is_object(n->params)) {
            rc = n->params || ne.code != STELLAR_ENOMEM
                     ? st_fail(e, STELLAR_EINVAL,
                               "%s: field 'params' must be a JSON object%s%s",
                               what, n->params ? "" : ": ",
                               n->params ? "" : ne.msg)
                     : st_fail(e, STELLAR_ENOMEM, "out of memory");
            schedule_free(n);
            return rc;
        }
    }
    n->name = st_strdup(s->name);
    n->cron_text = st_strdup(s->cron);
    n->task = st_strdup(from_task ? s->name : s->task);
    n->queue = st_strdup(s->queue && *s->queue ? s->queue
                         : t                   ? t->def.queue
                                               : "default");
    if (!n->name || !n->cron_text || !n->task || !n->queue ||
        !(n->payload = st_payload_build(n->task, n->queue, n->params, &ne)) ||
        !(grown = st_realloc(h->scheds, (h->nscheds + 1) * sizeof *grown))) {
        schedule_free(n);
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    }
    h->scheds = grown;
    h->scheds[h->nscheds++] = n;
    return STELLAR_OK;
}

int stellar_schedule_add(stellar *h, const stellar_schedule *s,
                         stellar_error *e)
{
    char what[300];
    int rc;

    st_err_clear(e);
    if (!s) return st_fail(e, STELLAR_EINVAL, "schedule: NULL definition");
    snprintf(what, sizeof what, "schedule '%.256s'",
             s->name ? s->name : "(unnamed)");
    pthread_mutex_lock(&h->lock);
    if (h->pool || h->busy)
        rc = st_fail(e, STELLAR_ESTATE, "%s: cannot add while processors run",
                     what);
    else
        rc = st_schedule_new(h, s, false, what, e);
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* A resume passes its time (the clock the schedulers read ticks by): the
 * ticks up to it were paused, not missed (see the top). */
int st_schedule_set_paused(st_backend *b, const char *name, bool paused,
                           stellar_error *e)
{
    return b->ops->sched_set(b, name, paused ? 1 : 0, paused ? -1 : st_now_ms(),
                             e);
}

/* A copy of the table's pointers (each schedule lives as long as h). */
static st_schedule **snapshot(stellar *h, size_t *n)
{
    st_schedule **v;

    pthread_mutex_lock(&h->lock);
    *n = h->nscheds;
    v = st_calloc(*n + 1, sizeof *v);
    if (v && *n) memcpy(v, h->scheds, *n * sizeof *v);
    pthread_mutex_unlock(&h->lock);
    return v;
}

int stellar_schedule_pause(stellar *h, const char *name, bool paused,
                           stellar_error *e)
{
    st_backend *b;
    bool known;
    int rc;

    st_err_clear(e);
    pthread_mutex_lock(&h->lock);
    known = name && find(h, name);
    pthread_mutex_unlock(&h->lock);
    if (!known)
        return st_fail(e, STELLAR_ENOTFOUND, "no schedule named '%s'",
                       name ? name : "");
    if ((rc = st_conn_get(h, &b, e))) return rc;
    rc = st_schedule_set_paused(b, name, paused, e);
    st_conn_put(h, b);
    return rc;
}

/* One schedule's entry of stellar_schedules(); rec: its backend record or
 * NULL. */
static json_t *describe(const st_schedule *s, const json_t *rec, int64_t now)
{
    json_t *o, *up = json_array();
    int64_t t = now, next = -1;
    char local[48], utc[32];
    int i;

    for (i = 0; up && i < UPCOMING; i++) {
        if (!st_cron_next(&s->cron, s->tz, t, &t)) break;
        if (i == 0) next = t;
        if (json_array_append_new(up, json_integer(t))) {
            json_decref(up);
            up = NULL;
        }
    }
    if (!up) return NULL;
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:b, s:O}", "name",
                  s->name, "kind", s->from_task ? "task" : "schedule", "cron",
                  s->cron_text, "timezone", st_tz_name(s->tz), "task", s->task,
                  "queue", s->queue, "params",
                  s->params ? json_incref(s->params) : json_object(), "missed",
                  s->missed == STELLAR_MISSED_ONCE ? "once" : "skip", "paused",
                  json_is_true(json_object_get(rec, "paused")), "last",
                  json_object_get(rec, "last") ? json_object_get(rec, "last")
                                               : json_null());
    if (o && next >= 0) {
        st_tz_iso(s->tz, next / 1000, local);
        st_iso_date(next, utc); /* ticks are whole seconds: no ms */
        if (strlen(utc) == 24) memcpy(utc + 19, "Z", 2);
        if (json_object_set_new(o, "next", json_integer(next)) ||
            json_object_set_new(o, "next_local", json_string(local)) ||
            json_object_set_new(o, "next_utc", json_string(utc))) {
            json_decref(o);
            o = NULL;
        }
    } else if (o && (json_object_set_new(o, "next", json_null()) ||
                     json_object_set_new(o, "next_local", json_null()) ||
                     json_object_set_new(o, "next_utc", json_null()))) {
        json_decref(o);
        o = NULL;
    }
    if (o && json_object_set_new(o, "upcoming", up) == 0) return o;
    if (!o) json_decref(up);
    json_decref(o);
    return NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(st_schedule *const *)a)->name,
                  (*(st_schedule *const *)b)->name);
}

int stellar_schedules(stellar *h, json_t **out, stellar_error *e)
{
    size_t n, i;
    st_schedule **v;
    json_t *recs = NULL, *all;
    st_backend *b;
    int64_t now = st_now_ms();
    int rc;

    *out = NULL;
    st_err_clear(e);
    if (!(v = snapshot(h, &n)))
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    if (n) {
        if ((rc = st_conn_get(h, &b, e))) {
            st_free(v);
            return rc;
        }
        rc = b->ops->sched_list(b, &recs, e);
        st_conn_put(h, b);
        if (rc) {
            st_free(v);
            return rc;
        }
    }
    qsort(v, n, sizeof *v, by_name);
    all = json_object();
    for (i = 0; all && i < n; i++) {
        json_t *d = describe(v[i], json_object_get(recs, v[i]->name), now);
        if (!d || json_object_set_new(all, v[i]->name, d)) {
            json_decref(all);
            all = NULL;
        }
    }
    json_decref(recs);
    st_free(v);
    if (!all) return st_fail(e, STELLAR_ENOMEM, "out of memory");
    *out = all;
    return STELLAR_OK;
}

/* ------------------------------------------------------------- Firing --- */

struct tick_state {
    st_schedule *s;
    int64_t next_ms; /* the next tick to claim; INT64_MAX: none */
    bool synced;
};

struct st_ticker {
    stellar *h;
    struct tick_state *v;
    size_t n;
};

st_ticker *st_ticker_new(stellar *h)
{
    st_ticker *t = st_calloc(1, sizeof *t);
    st_schedule **v;
    size_t i;

    if (!t) return NULL;
    t->h = h;
    if (!(v = snapshot(h, &t->n)) ||
        !(t->v = st_calloc(t->n + 1, sizeof *t->v))) {
        st_free(v);
        st_free(t);
        return NULL;
    }
    for (i = 0; i < t->n; i++)
        t->v[i].s = v[i];
    st_free(v);
    return t;
}

void st_ticker_free(st_ticker *t)
{
    if (!t) return;
    st_free(t->v);
    st_free(t);
}

static int64_t next_after(const st_schedule *s, int64_t after)
{
    int64_t t;
    return st_cron_next(&s->cron, s->tz, after, &t) ? t : INT64_MAX;
}

/* The latest tick <= until, given first, a tick <= until: jumps back from
 * until by a growing window to skip a long downtime's ticks. */
static int64_t latest_tick(const st_schedule *s, int64_t first, int64_t until)
{
    int64_t best = first, w, t;

    for (w = 60000; until - w > best; w *= 2) {
        t = next_after(s, until - w);
        if (t <= until) {
            best = t;
            break;
        }
    }
    while ((t = next_after(s, best)) <= until)
        best = t;
    return best;
}

/* Claims tick with its job; -1 if the backend failed (logged). */
static int claim(st_ticker *tk, st_backend *b, struct tick_state *st,
                 int64_t tick, const char *why, int64_t *fired)
{
    stellar_error err;
    char iso[32];
    bool claimed = false;

    st_iso_date(tick, iso);
    if (b->ops->sched_claim(b, st->s->name, tick, st->s->queue, st->s->payload,
                            &claimed, &err)) {
        st_log(&tk->h->log, STELLAR_LOG_WARN, "schedule '%s': tick %s: %s",
               st->s->name, iso, err.msg);
        return -1;
    }
    if (!claimed) return 0;
    (*fired)++;
    st_log(&tk->h->log, STELLAR_LOG_INFO,
           "schedule '%s': queued %s on %s for tick %lld (%s)%s", st->s->name,
           st->s->task, st->s->queue, (long long)tick, iso, why);
    return 0;
}

/* Reads the schedule's record and sets st->next_ms: the first tick not
 * missed; missed ticks are handled per the policy (see the top). */
static int sync_one(st_ticker *tk, st_backend *b, struct tick_state *st,
                    const json_t *recs, int64_t now, int64_t *fired)
{
    const json_t *rec = json_object_get(recs, st->s->name);
    const json_t *last = json_object_get(rec, "last"),
                 *seen = json_object_get(rec, "seen");
    int64_t base = -1, first, until = now - STELLAR_SCHEDULE_GRACE_MS;
    stellar_error err;

    if (json_is_integer(last)) base = json_integer_value(last);
    if (json_is_integer(seen) && json_integer_value(seen) > base)
        base = json_integer_value(seen);
    if (base < 0) { /* first sight: nothing was missed */
        if (b->ops->sched_set(b, st->s->name, -1, now, &err)) {
            st_log(&tk->h->log, STELLAR_LOG_WARN, "schedule '%s': %s",
                   st->s->name, err.msg);
            return -1;
        }
        st->next_ms = next_after(st->s, now);
        st->synced = true;
        return 0;
    }
    first = next_after(st->s, base);
    if (first <= until) {
        int64_t m = latest_tick(st->s, first, until);
        if (st->s->missed == STELLAR_MISSED_ONCE &&
            !json_is_true(json_object_get(rec, "paused"))) {
            if (claim(tk, b, st, m, " for every missed tick", fired)) return -1;
        } else {
            st_log(&tk->h->log, STELLAR_LOG_INFO,
                   "schedule '%s': missed ticks up to %lld skipped",
                   st->s->name, (long long)m);
        }
        first = next_after(st->s, m);
    }
    st->next_ms = first;
    st->synced = true;
    return 0;
}

static int sync_all(st_ticker *tk, st_backend *b, int64_t now, int64_t *fired,
                    bool all)
{
    json_t *recs = NULL;
    stellar_error err;
    size_t i;

    if (b->ops->sched_list(b, &recs, &err)) {
        st_log(&tk->h->log, STELLAR_LOG_WARN, "schedules: %s", err.msg);
        return -1;
    }
    for (i = 0; i < tk->n; i++)
        if (all || !tk->v[i].synced)
            sync_one(tk, b, &tk->v[i], recs, now, fired);
    json_decref(recs);
    return 0;
}

int64_t st_ticker_run(st_ticker *tk, st_backend *b, int64_t now_ms,
                      int64_t *fired)
{
    int64_t wait = -1;
    bool unsynced = false;
    size_t i;

    *fired = 0;
    if (!tk) return -1;
    for (i = 0; i < tk->n; i++) {
        struct tick_state *st = &tk->v[i];
        /* Stalled past the grace (or never synced): sync again. */
        if (st->synced && st->next_ms != INT64_MAX &&
            now_ms - st->next_ms > STELLAR_SCHEDULE_GRACE_MS)
            st->synced = false;
        unsynced |= !st->synced;
    }
    if (unsynced) sync_all(tk, b, now_ms, fired, false);
    for (i = 0; i < tk->n; i++) {
        struct tick_state *st = &tk->v[i];
        if (!st->synced) { /* the backend failed: try again soon */
            wait = wait < 0 || wait > 100 ? 100 : wait;
            continue;
        }
        while (st->next_ms <= now_ms) {
            if (claim(tk, b, st, st->next_ms, "", fired)) break;
            st->next_ms = next_after(st->s, st->next_ms);
        }
        if (st->next_ms <= now_ms) /* the backend failed: again soon */
            wait = wait < 0 || wait > 100 ? 100 : wait;
        else if (st->next_ms != INT64_MAX &&
                 (wait < 0 || st->next_ms - now_ms < wait))
            wait = st->next_ms - now_ms;
    }
    return wait;
}
