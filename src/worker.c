/*
 * worker.c: one TaskProcessor, and the heartbeat that keeps them alive.
 *
 * Each TaskProcessor is a thread with its own backend connection. Its loop
 * is one backend call per job: reserve() acks the job just finished and
 * claims the next in one atomic step, so a job is always recorded either in
 * a queue or as some worker's working-on, never only in memory. Running
 * the job is perform.c's. With nothing to do, a processor waits for work
 * (idle_wait); a backend that fails is retried with a backoff.
 *
 * The running job may be put back in its queue by another thread (a stop
 * at its deadline) or by the processor itself (out of memory): the one
 * requeue handshake, st_proc_requeue(), makes sure it is then not acked
 * too.
 *
 * A heartbeat thread pings for every processor once a second, whatever the
 * tasks are doing, so a long CPU-bound job never looks like a dead worker;
 * it also renews the expiry of the locks running jobs hold (st_proc_hold).
 *
 * Lock order: st_pool.lock, then st_proc.lock. User code (tasks, the log
 * callback) never runs under either.
 */
#include "pool.h"

#include <string.h>

#define PING_MS 1000

/* How long the watcher blocks in the backend's wait at a time: the most a
 * stop waits for it. */
#define WATCH_SLICE_MS 50

/* ----------------------------------------------------------- Requeue --- */

enum st_requeue st_proc_requeue(st_proc *w, st_backend **conn, const char *why,
                                stellar_error *e)
{
    st_done back = {ST_DONE_REQUEUE, NULL, NULL, NULL};
    stellar *h = w->pool->h;
    bool ok;

    pthread_mutex_lock(&w->lock);
    if (w->running && !w->abandoned && !w->requeueing) {
        w->requeueing = true;
        back.queue = w->job_queue; /* stable while requeueing */
        back.payload = w->job_payload;
    }
    pthread_mutex_unlock(&w->lock);
    if (!back.queue) return ST_REQUEUE_NONE;

    if (!*conn && st_backend_open(conn, h->url, NULL, e)) *conn = NULL;
    ok = *conn && (*conn)->ops->reserve(*conn, &w->id, &back, st_now_ms(), NULL,
                                        e) == STELLAR_OK;
    /* Logged before the settle: then the processor may free the queue. */
    if (why && ok)
        st_log(&h->log, STELLAR_LOG_WARN,
               "%s: %s: its job is back at the head of %s", w->name, why,
               back.queue);
    else if (why)
        st_log(&h->log, STELLAR_LOG_ERROR,
               "%s: cannot put its running job back: %s", w->name, e->msg);

    pthread_mutex_lock(&w->lock);
    w->abandoned = ok;
    w->requeueing = false;
    pthread_cond_broadcast(&w->settled);
    pthread_mutex_unlock(&w->lock);
    return ok ? ST_REQUEUE_DONE : ST_REQUEUE_FAILED;
}

bool st_proc_settle(st_proc *w)
{
    while (w->requeueing)
        pthread_cond_wait(&w->settled, &w->lock);
    return w->abandoned;
}

/* --------------------------------------------------------- Processor --- */

/*
 * Waits until stop is set, ms pass, or (if any_work) work may have arrived
 * since work_seq was `seen`.
 *
 * Work queued by this handle bumps work_seq (st_pool_wake). Work queued by
 * other processes or handles is seen through the backend's wait op, if it
 * has one: one idle processor at a time, the watcher, blocks in it (in
 * slices of WATCH_SLICE_MS, so that it sees a stop soon) while the others
 * sleep on the condvar. A watcher that wakes early goes to reserve at once
 * and hands the watch over (the broadcast lets the next idle processor take
 * it), so a burst of work pulls idle processors in one after another
 * rather than all at once for a single job. A wait op that fails is not
 * used again until this idle spell ends (the reserve every `ms` still
 * runs).
 */
static void idle_wait(st_pool *p, st_proc *w, uint64_t seen, bool any_work,
                      int64_t ms)
{
    int64_t deadline = st_mono_ms() + ms;
    struct timespec ts = st_deadline_ts(ms);
    bool watch = any_work && w->conn->ops->wait != NULL, watched = false;
    stellar_error wait_err;
    bool wait_failed = false;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        int64_t left = deadline - st_mono_ms(), slice, t0;
        stellar_error err;
        bool early;
        int rc;

        if (p->stopping || (any_work && p->work_seq != seen) || left <= 0)
            break;
        if (!watch || p->watching) {
            if (pthread_cond_timedwait(&p->wake, &p->lock, &ts)) break;
            continue;
        }
        slice = left < WATCH_SLICE_MS ? left : WATCH_SLICE_MS;
        p->watching = watched = true;
        pthread_mutex_unlock(&p->lock);
        t0 = st_mono_ms();
        rc = w->conn->ops->wait(w->conn, &w->id, slice, &err);
        early = st_mono_ms() - t0 < slice;
        pthread_mutex_lock(&p->lock);
        p->watching = false;
        if (rc != STELLAR_OK) {
            wait_err = err; /* logged below, outside the lock */
            wait_failed = true;
            watch = false;
        } else if (early) {
            break;
        }
    }
    /* The watch is free: the next idle processor takes it. */
    if (watched) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    if (wait_failed)
        st_log(&p->h->log, STELLAR_LOG_DEBUG, "%s: wait: %s", w->name,
               wait_err.msg);
}

void *st_proc_main(void *arg)
{
    st_proc *w = arg;
    st_pool *p = w->pool;
    stellar *h = p->h;
    st_done done = {0};
    char *failed_entry = NULL;
    stellar_error err;
    int64_t backoff = 0;

    st_thread_mark(h);
    for (;;) {
        st_reserved job = {0};
        uint64_t seen;
        const st_task *periodic;
        int64_t started;
        bool abandoned;
        int rc;

        pthread_mutex_lock(&p->lock);
        seen = p->work_seq;
        if (p->stopping) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        pthread_mutex_unlock(&p->lock);

        rc = w->conn->ops->reserve(w->conn, &w->id, &done, st_now_ms(), &job,
                                   &err);
        if (rc == STELLAR_OK || rc == STELLAR_ENOTFOUND) {
            memset(&done, 0, sizeof done);
            st_free(failed_entry);
            failed_entry = NULL;
            backoff = 0;
        }
        if (rc == STELLAR_ENOTFOUND) {
            idle_wait(p, w, seen, true, h->poll_ms);
            continue;
        }
        if (rc != STELLAR_OK) {
            /* The backend is unreachable or busy: keep what we owe (done)
             * and try again, backing off up to 5 s. */
            backoff = backoff ? (backoff * 2 > 5000 ? 5000 : backoff * 2) : 100;
            st_log(&h->log, STELLAR_LOG_WARN,
                   "%s: reserve: %s (retry in %lld ms)", w->name, err.msg,
                   (long long)backoff);
            idle_wait(p, w, seen, false, backoff);
            continue;
        }

        pthread_mutex_lock(&w->lock);
        w->running = true;
        w->job_queue = job.queue;
        w->job_payload = job.payload;
        pthread_mutex_unlock(&w->lock);

        started = st_mono_ms();
        periodic = st_perform(w, &job, &done, &failed_entry);
        st_metrics_job(h->metrics, w->task_name, job.queue,
                       done.outcome == ST_DONE_OK       ? ST_METRIC_OK
                       : done.outcome == ST_DONE_FAILED ? ST_METRIC_FAILED
                                                        : ST_METRIC_DROPPED,
                       st_mono_ms() - started);

        pthread_mutex_lock(&w->lock);
        abandoned = st_proc_settle(w); /* a stop may be deciding its fate */
        w->running = false;
        w->abandoned = false;
        w->job_queue = w->job_payload = NULL;
        pthread_mutex_unlock(&w->lock);
        if (abandoned) {
            /* The job is already back in its queue (a stop's deadline,
             * or out of memory): not acked, and still a suspect if it
             * was one (it did not end). */
            memset(&done, 0, sizeof done);
            periodic = NULL;
            st_free(w->suspect_key);
            w->suspect_key = NULL;
        }
        st_suspect_done(w);
        if (periodic &&
            st_recurrent(h, w->conn, periodic, ST_RECUR_LATER, NULL, &err))
            st_log(&h->log, STELLAR_LOG_ERROR, "%s: re-enqueue of %s: %s",
                   w->name, periodic->def.name, err.msg);
        st_reserved_clear(&job);
    }

    /* Ack the last job, then leave the cluster. */
    for (int tries = 0; done.outcome != ST_DONE_NONE && tries < 20; tries++) {
        if (w->conn->ops->reserve(w->conn, &w->id, &done, st_now_ms(), NULL,
                                  &err) == STELLAR_OK)
            break;
        st_log(&h->log, STELLAR_LOG_WARN, "%s: final ack: %s", w->name,
               err.msg);
        st_sleep_ms(250);
    }
    st_free(failed_entry);
    /* st_pool_stop unregisters it, once the heartbeat has stopped: a ping
     * after the unregister would leave a ghost worker (tests/faults). */
    pthread_mutex_lock(&p->lock);
    pthread_mutex_lock(&w->lock);
    w->exited = true;
    pthread_mutex_unlock(&w->lock);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* --------------------------------------------------------- Heartbeat --- */

void st_proc_hold(st_proc *w, const char *key, const char *value,
                  int64_t ttl_ms)
{
    char *k = key ? st_strdup(key) : NULL, *v = key ? st_strdup(value) : NULL;
    char *old_k, *old_v;

    if (!k || !v) { /* released, or out of memory: not renewed */
        st_free(k);
        st_free(v);
        k = v = NULL;
    }
    pthread_mutex_lock(&w->lock);
    old_k = w->hold_key;
    old_v = w->hold_value;
    w->hold_key = k;
    w->hold_value = v;
    w->hold_ttl_ms = ttl_ms;
    pthread_mutex_unlock(&w->lock);
    st_free(old_k);
    st_free(old_v);
}

/* Renews the expiry of the locks held by running jobs (st_proc_hold). */
static void renew_holds(st_pool *p, st_backend *conn)
{
    for (size_t i = 0; i < p->n; i++) {
        st_proc *w = &p->procs[i];
        char *k = NULL, *v = NULL;
        int64_t ttl;
        stellar_error err;
        bool set;

        pthread_mutex_lock(&w->lock);
        if (w->hold_key) {
            k = st_strdup(w->hold_key);
            v = st_strdup(w->hold_value);
        }
        ttl = w->hold_ttl_ms;
        pthread_mutex_unlock(&w->lock);
        if (k && v && conn->ops->kv_expire(conn, k, v, ttl, &set, &err))
            st_log(&p->h->log, STELLAR_LOG_WARN, "heartbeat: lock %s: %s", k,
                   err.msg);
        st_free(k);
        st_free(v);
    }
}

void *st_heartbeat_main(void *arg)
{
    st_pool *p = arg;
    stellar *h = p->h;
    st_backend *conn = NULL;
    const st_worker_id **ids = st_calloc(p->n, sizeof *ids);
    stellar_error err;
    size_t i;

    st_thread_mark(h);
    for (i = 0; ids && i < p->n; i++)
        ids[i] = &p->procs[i].id;
    for (;;) {
        struct timespec ts;
        bool stop;

        if (!conn && st_backend_open(&conn, h->url, NULL, &err))
            st_log(&h->log, STELLAR_LOG_WARN, "heartbeat: %s", err.msg);
        if (conn && ids &&
            conn->ops->ping(conn, ids, p->n, st_now_ms(), &err)) {
            st_log(&h->log, STELLAR_LOG_WARN, "heartbeat: ping: %s", err.msg);
        }
        if (conn) renew_holds(p, conn);
        ts = st_deadline_ts(PING_MS);
        pthread_mutex_lock(&p->lock);
        while (!p->aux_stop)
            if (pthread_cond_timedwait(&p->wake, &p->lock, &ts)) break;
        stop = p->aux_stop;
        pthread_mutex_unlock(&p->lock);
        if (stop) break;
    }
    st_backend_close(conn);
    st_free(ids);
    return NULL;
}
