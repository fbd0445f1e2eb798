/*
 * scheduler.c: leader election, delayed jobs and periodic tasks.
 *
 * Every process that runs processors runs a scheduler thread, but only the
 * leader acts: the one holding the kv key "resque_scheduler_leader_lock"
 * (node-resque's name, so a mixed deployment elects one leader), taken with
 * SET NX and a TTL and renewed every second. A leader that dies loses the
 * lock when its TTL runs out and another process takes over.
 *
 * The leader enqueues every periodic task once when it takes office, then
 * moves due delayed jobs to their queues. It sleeps until the next due
 * timestamp, at most TICK_MS, so delayed jobs written by other processes
 * start well under a second late; enqueues from this process wake it.
 *
 * Cron schedules (schedule.c) are fired by every scheduler, leader or not:
 * each tick is claimed with its job in one backend step, so the first to
 * try it wins and the others find it taken. The thread wakes for the next
 * tick, so a tick's job is queued within a few ms of it.
 *
 * Dead workers: a worker whose last ping is older than stuckWorkerTimeout
 * is dead, but only if the store could have taken its pings. When the
 * store itself is away (down, or frozen: every call hangs), nobody's pings
 * arrive, and when it is back every worker looks dead at once. So the
 * leader judges only after it has talked to the store, without a failure
 * or a call hanging longer than STALL_MS, for longer than that timeout
 * (reachable_ms): after an outage every worker has a fresh grace period
 * to ping. Workers of this very process are never judged (live.c).
 */
#include "scheduler.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LEADER_KEY     "resque_scheduler_leader_lock"
#define LEADER_TTL_MS  10000
#define RENEW_MS       1000
#define TICK_MS        100
#define PROMOTE_BATCH  1000
#define STUCK_CHECK_MS 5000
#define STALL_MS       1000 /* a call slower than this: the store was away */

struct st_sched {
    stellar *h;
    st_pool *pool;
    st_backend *conn;
    st_ticker *ticker; /* the cron schedules; NULL if none */
    char *name;
    pthread_t thread;
    bool leader;
    int64_t renewed_ms;   /* monotonic time of the last successful election */
    int64_t checked_ms;   /* monotonic time of the last dead-worker check */
    int64_t next_ms;      /* earliest delayed timestamp seen last pass, or -1 */
    int64_t backoff_ms;   /* the backend failed: wait this long; 0: it works */
    int64_t reachable_ms; /* monotonic: since then every call of ours
                             succeeded, none slower than STALL_MS */
};

/* After calls to the store that began at t0 (monotonic): a failure or a
 * stall restarts the time the store has been seen to work. */
static void store_seen(st_sched *s, int64_t t0, bool ok)
{
    int64_t now = st_mono_ms();
    if (!ok || now - t0 > STALL_MS) s->reachable_ms = now;
}

/* Takes or renews the leader lock; returns whether we lead. */
static bool elect(st_sched *s)
{
    st_backend *b = s->conn;
    stellar_error err;
    bool set = false;
    int rc;

    if (s->leader && st_mono_ms() - s->renewed_ms < RENEW_MS) return true;
    if (s->leader)
        rc = b->ops->kv_expire(b, LEADER_KEY, s->name, LEADER_TTL_MS, &set,
                               &err);
    else
        rc = b->ops->kv_set(b, LEADER_KEY, s->name, LEADER_TTL_MS, true, &set,
                            &err);
    if (rc) {
        /* Unreachable: back off up to 5 s, and say so once (issue #6). */
        if (!s->backoff_ms)
            st_log(&s->h->log, STELLAR_LOG_WARN,
                   "scheduler: election: %s (retrying with backoff)", err.msg);
        s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : TICK_MS;
        if (s->backoff_ms > 5000) s->backoff_ms = 5000;
        set = false;
    } else if (s->backoff_ms) {
        st_log(&s->h->log, STELLAR_LOG_INFO, "scheduler: backend back");
        s->backoff_ms = 0;
    }
    if (set != s->leader)
        st_log(&s->h->log, STELLAR_LOG_INFO, "scheduler %s: %s", s->name,
               set ? "now the leader" : "no longer the leader");
    s->leader = set;
    if (set) s->renewed_ms = st_mono_ms();
    return set;
}

static void enqueue_periodic(st_sched *s)
{
    stellar *h = s->h;
    stellar_error err;
    size_t i;

    for (i = 0; i < h->ntasks; i++) {
        const st_task *t = h->tasks[i];
        if (t->def.frequency <= 0) continue;
        /* A copy already waiting for its time (from the last leader) keeps
         * the task's rhythm; only a task with none is queued now. */
        if (st_recurrent_waiting(s->conn, t)) continue;
        if (st_recurrent(h, s->conn, t, ST_RECUR_NOW, NULL, &err))
            st_log(&h->log, STELLAR_LOG_ERROR,
                   "scheduler: enqueue periodic %s: %s", t->def.name, err.msg);
    }
}

/* Recovers the jobs of workers whose pings stopped (issue #6). */
static void recover_dead_workers(st_sched *s)
{
    stellar *h = s->h;
    int64_t every = h->stuck_worker_timeout_ms / 4;
    json_t *cleaned = NULL;
    stellar_error err;

    if (h->stuck_worker_timeout_ms < 0) return;
    /* Pings may have been held up by the store itself: wait until it has
     * worked for longer than the timeout (see the top). */
    if (st_mono_ms() - s->reachable_ms <= h->stuck_worker_timeout_ms) return;
    if (every > STUCK_CHECK_MS) every = STUCK_CHECK_MS;
    if (st_mono_ms() - s->checked_ms < every) return;
    s->checked_ms = st_mono_ms();
    if (st_clean_workers(h, s->conn, h->stuck_worker_timeout_ms, true, &cleaned,
                         &err))
        st_log(&h->log, STELLAR_LOG_WARN, "scheduler: dead workers: %s",
               err.msg);
    else if (json_object_size(cleaned)) {
        st_metrics_recovered(h->metrics, (int64_t)json_object_size(cleaned));
        st_pool_wake(s->pool);
    }
    json_decref(cleaned);
}

static void *sched_main(void *arg)
{
    st_sched *s = arg;
    stellar_error err;
    bool was_leader = false;

    st_thread_mark(s->h);
    for (;;) {
        int64_t wait = TICK_MS, moved = 0, next = -1, t0 = st_mono_ms();
        bool led = elect(s);

        store_seen(s, t0, s->backoff_ms == 0);
        if (led) {
            bool ok = true;
            if (!was_leader) enqueue_periodic(s);
            t0 = st_mono_ms();
            do {
                int64_t now = st_now_ms();
                if (s->conn->ops->promote_due(s->conn, now, PROMOTE_BATCH,
                                              &moved, &next, &err)) {
                    st_log(&s->h->log, STELLAR_LOG_WARN,
                           "scheduler: promote: %s", err.msg);
                    ok = false;
                    break;
                }
                if (moved) {
                    st_pool_wake(s->pool);
                    if (s->next_ms >= 0 && now >= s->next_ms)
                        st_metrics_delayed_lag(s->h->metrics, now - s->next_ms,
                                               moved);
                }
                s->next_ms = next;
                if (next >= 0 && next - now < wait) wait = next - now;
            } while (moved == PROMOTE_BATCH);
            store_seen(s, t0, ok);
            recover_dead_workers(s);
        }
        was_leader = s->leader;
        if (s->ticker) {
            int64_t fired = 0, due = st_ticker_run(s->ticker, s->conn,
                                                   st_now_ms(), &fired);
            if (fired) st_pool_wake(s->pool);
            if (due >= 0 && due < wait) wait = due;
        }
        if (s->backoff_ms && s->backoff_ms > wait) wait = s->backoff_ms;
        if (st_pool_aux_wait(s->pool, wait < 1 ? 1 : wait)) break;
    }
    return NULL;
}

int st_sched_start(stellar *h, st_pool *p, st_sched **out, stellar_error *e)
{
    static int seq;
    st_sched *s = st_calloc(1, sizeof *s);
    int rc;

    *out = NULL;
    if (!s) return st_fail(e, STELLAR_ENOMEM, "out of memory");
    s->h = h;
    s->pool = p;
    s->next_ms = -1;
    s->reachable_ms = st_mono_ms();
    /* Unique per handle, so two handles in one process are two schedulers. */
    s->name = st_asprintf("%s:%ld+s%d", h->name, (long)getpid(),
                          __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    if (!s->name) {
        st_free(s);
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    }
    if (h->nscheds && !(s->ticker = st_ticker_new(h))) {
        st_free(s->name);
        st_free(s);
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    }
    rc = st_backend_open(&s->conn, h->url, NULL, e);
    if (rc) {
        st_ticker_free(s->ticker);
        st_free(s->name);
        st_free(s);
        return rc;
    }
    if ((rc = pthread_create(&s->thread, NULL, sched_main, s))) {
        st_backend_close(s->conn);
        st_ticker_free(s->ticker);
        st_free(s->name);
        st_free(s);
        return st_fail(e, STELLAR_ENOMEM,
                       "cannot start the scheduler thread: %s", strerror(rc));
    }
    *out = s;
    return STELLAR_OK;
}

void st_sched_stop(st_sched *s)
{
    stellar_error err;
    int64_t removed;

    if (!s) return;
    pthread_join(s->thread, NULL);
    if (s->leader &&
        s->conn->ops->kv_del(s->conn, LEADER_KEY, s->name, &removed, &err))
        st_log(&s->h->log, STELLAR_LOG_WARN, "scheduler: release: %s", err.msg);
    st_backend_close(s->conn);
    st_ticker_free(s->ticker);
    st_free(s->name);
    st_free(s);
}
