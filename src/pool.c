/*
 * pool.c: the TaskProcessors of one handle, started and stopped together.
 *
 * Start opens and registers every processor (a connection each) before
 * any thread starts, so a failure leaves nothing half-started, then starts
 * the processor threads (worker.c), the heartbeat and the scheduler.
 *
 * Stop: `stopping` is set, processors finish their running job and exit;
 * at the deadline, jobs still running are put back at the head of their
 * queue by the stopping thread (st_proc_requeue marks the processor
 * `abandoned`, so it will not ack the job when its task finally returns),
 * then every thread is joined, and only then are the workers unregistered
 * (a ping after the unregister would leave a ghost worker).
 *
 * The files of the pool and what each holds are listed in pool.h.
 *
 * Lock order: st_pool.lock, then st_proc.lock. User code (tasks, the log
 * callback) never runs under either.
 */
#include "pool.h"

#include <string.h>
#include <unistd.h>

void st_pool_free(st_pool *p)
{
    size_t i;
    if (!p) return;
    for (i = 0; p->procs && i < p->n; i++) {
        st_proc *w = &p->procs[i];
        st_backend_close(w->conn);
        if (w->name) st_live_del(w->name);
        st_free(w->name);
        st_free(w->hold_key);
        st_free(w->hold_value);
        st_free(w->suspect_key);
        pthread_cond_destroy(&w->settled);
        pthread_mutex_destroy(&w->lock);
    }
    st_free(p->procs);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    st_free(p);
}

bool st_pool_aux_wait(st_pool *p, int64_t ms)
{
    struct timespec ts = st_deadline_ts(ms);
    bool stop;

    pthread_mutex_lock(&p->lock);
    if (!p->aux_stop) pthread_cond_timedwait(&p->wake, &p->lock, &ts);
    stop = p->aux_stop;
    pthread_mutex_unlock(&p->lock);
    return stop;
}

int st_pool_start(stellar *h, st_pool **out, stellar_error *e)
{
    static int slots; /* worker slots handed out in this process */
    st_pool *p = st_calloc(1, sizeof *p);
    size_t i;
    int rc = STELLAR_OK;

    *out = NULL;
    if (!p) return st_fail(e, STELLAR_ENOMEM, "out of memory");
    p->h = h;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->n = (size_t)h->processors;
    p->procs = st_calloc(p->n, sizeof *p->procs);
    if (!p->procs) {
        st_pool_free(p);
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    }
    /* Open and register every processor before any thread starts, so a
     * failure leaves nothing half-started. */
    for (i = 0; i < p->n && rc == STELLAR_OK; i++) {
        st_proc *w = &p->procs[i];
        w->pool = p;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->settled, NULL);
        /* Slot numbers are unique in the process, so two handles never
         * share a worker name (and so records and counters). */
        w->name = st_asprintf("%s:%ld+%d", h->name, (long)getpid(),
                              __atomic_add_fetch(&slots, 1, __ATOMIC_RELAXED));
        if (!w->name) {
            rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
            break;
        }
        st_live_add(w->name); /* never cleaned as dead while here */
        w->id.name = w->name;
        w->id.queues_str = h->queues_str;
        w->id.queues = (const char *const *)h->queues;
        rc = st_backend_open(&w->conn, h->url, NULL, e);
        if (rc == STELLAR_OK)
            rc = w->conn->ops->worker_register(w->conn, &w->id, st_now_ms(), e);
    }
    if (rc == STELLAR_OK && !h->no_scheduler)
        rc = st_sched_start(h, p, &p->sched, e);
    if (rc) {
        stellar_error ignored;
        for (i = 0; i < p->n; i++)
            if (p->procs[i].conn)
                p->procs[i].conn->ops->worker_unregister(
                    p->procs[i].conn, &p->procs[i].id, &ignored);
        st_pool_free(p);
        return rc;
    }
    for (i = 0; i < p->n && rc == 0; i++) {
        rc = pthread_create(&p->procs[i].thread, NULL, st_proc_main,
                            &p->procs[i]);
        p->procs[i].started = rc == 0;
    }
    if (rc == 0 && p->n) {
        rc = pthread_create(&p->heartbeat, NULL, st_heartbeat_main, p);
        p->heartbeat_started = rc == 0;
    }
    if (rc) {
        /* What started is stopped, every worker unregistered, and nothing
         * was reserved yet by a processor that did not start. */
        int err = rc;
        st_pool_stop(p, 0);
        st_pool_free(p);
        return st_fail(e, STELLAR_ENOMEM, "cannot start a thread: %s",
                       strerror(err));
    }
    if (h->log.fn && STELLAR_LOG_INFO >= h->log.level) {
        char *shown = st_url_redact(h->url); /* no password in the log */
        st_logf(&h->log, STELLAR_LOG_INFO,
                "started %zu TaskProcessor(s) on %s, queues %s%s", p->n,
                shown ? shown : "the backend", h->queues_str,
                p->sched ? ", with the scheduler" : "");
        st_free(shown);
    }
    *out = p;
    return STELLAR_OK;
}

void st_pool_wake(st_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->work_seq++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void st_pool_stop_now(st_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop_now = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

/* Puts the running jobs of processors still busy back in their queues
 * (st_proc_requeue: a job is either put back or acked by its processor,
 * never both), on one connection opened for the purpose. */
static void requeue_running(st_pool *p)
{
    st_backend *conn = NULL;
    stellar_error err;
    size_t i;

    for (i = 0; i < p->n; i++)
        st_proc_requeue(&p->procs[i], &conn,
                        "still running at the stop deadline", &err);
    st_backend_close(conn);
}

void st_pool_stop(st_pool *p, int64_t timeout_ms)
{
    int64_t deadline = st_mono_ms() + timeout_ms;
    size_t i;

    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    for (;;) {
        size_t exited = 0;
        for (i = 0; i < p->n; i++) {
            pthread_mutex_lock(&p->procs[i].lock);
            exited += p->procs[i].exited;
            pthread_mutex_unlock(&p->procs[i].lock);
        }
        if (exited == p->n || p->stop_now || st_mono_ms() >= deadline) break;
        pthread_mutex_unlock(&p->lock);
        st_pool_aux_wait(p, 50);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    requeue_running(p);
    for (i = 0; i < p->n; i++)
        if (p->procs[i].started) pthread_join(p->procs[i].thread, NULL);

    pthread_mutex_lock(&p->lock);
    p->aux_stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    if (p->heartbeat_started) pthread_join(p->heartbeat, NULL);
    for (i = 0; i < p->n; i++) { /* every thread is joined: conn is free */
        st_proc *w = &p->procs[i];
        stellar_error err;
        if (w->conn && w->conn->ops->worker_unregister(w->conn, &w->id, &err))
            st_log(&p->h->log, STELLAR_LOG_WARN, "%s: unregister: %s", w->name,
                   err.msg);
    }
    st_sched_stop(p->sched);
    p->sched = NULL;
    st_log(&p->h->log, STELLAR_LOG_INFO, "stopped");
}
