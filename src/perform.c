/*
 * perform.c: one reserved job, from its payload to the outcome that the
 * processor's next reserve() records.
 *
 * The payload is parsed, the task looked up, the before_perform hooks run
 * (a veto drops the job quietly, as in node-resque), then the task runs,
 * in the processor's thread or, with fork isolation or for a suspect, in a
 * child process (isolate.c), then the after_perform hooks. The outcome is
 * an st_done for reserve() to ack: ok, failed (with its failed entry, the
 * §2.6 JSON with a backtrace naming where it failed) or dropped.
 *
 * A job put back from a dead worker is a suspect (core.h): it runs in a
 * child process of its own whatever the isolation, so a pill that crashes
 * its process dies alone and fails with its signal, and the jobs that
 * happened to run beside it simply run. reserve() tells whether the job
 * it pops is a suspect, so knowing costs no extra round trip.
 *
 * A job this processor cannot go on with for lack of memory is not at
 * fault: it goes back to the head of its queue (st_proc_requeue, the same
 * handshake as a stop's deadline), not to the failed list.
 */
#include "pool.h"

#include <stdio.h>

static char *run_task(st_proc *w, const st_task *t, const char *queue,
                      json_t *args, bool suspect)
{
    stellar *h = w->pool->h;
    stellar_api api = {h, w, t->def.name, queue, 0, false, NULL};
    int64_t start = st_mono_ms();
    int iso = t->def.isolation ? t->def.isolation : h->isolation;
    char *error;

    if (t->def.timeout > 0) api.deadline_ms = start + t->def.timeout;
    if (iso == STELLAR_ISOLATION_FORK || suspect)
        return st_isolate_run(&api, t, args);
    error = st_task_call(&api, t, args);
    /* In a thread the limit is cooperative, and still reported: from the
     * ms stellar_should_stop() turns true (>=, as there). */
    if (!error && t->def.timeout > 0 && st_mono_ms() - start >= t->def.timeout)
        error = st_asprintf("timed out: ran %lld ms (timeout %lld ms)",
                            (long long)(st_mono_ms() - start),
                            (long long)t->def.timeout);
    return error;
}

/* A job this processor cannot go on with for lack of memory (its payload
 * cannot be parsed, its failed entry cannot be built) is not at fault: it
 * goes back to the head of its queue now, as at a stop deadline, and is
 * marked abandoned so that it is not acked. False if that failed too. */
static bool put_back(st_proc *w)
{
    stellar_error err;
    bool done;

    /* If a stop's deadline claimed the job first, its outcome counts. */
    st_proc_requeue(w, &w->conn, NULL, &err);
    pthread_mutex_lock(&w->lock);
    done = st_proc_settle(w);
    pthread_mutex_unlock(&w->lock);
    st_log(&w->pool->h->log, done ? STELLAR_LOG_WARN : STELLAR_LOG_ERROR,
           "%s: out of memory: %s", w->name,
           done ? "its job is back at the head of its queue"
                : "cannot put its job back");
    return done;
}

/* Whether the job w just reserved is a suspect (core.h), as reserve()
 * read it; if so, sets w->suspect_key, deleted once the run ends. */
static bool is_suspect(st_proc *w, const st_reserved *job)
{
    if (!job->suspect) return false;
    w->suspect_key = st_asprintf(ST_CRASHES_PREFIX "%s", job->payload);
    st_log(&w->pool->h->log, STELLAR_LOG_INFO,
           "%s: the job on %s was in flight on a worker that died: it runs "
           "in a child process of its own%s",
           w->name, job->queue,
           w->suspect_key ? "" : " (out of memory: its mark stays)");
    return true;
}

/* The suspect w ran has ended, in its child: it is cleared (a pill failed
 * there with its signal). */
void st_suspect_done(st_proc *w)
{
    stellar_error err;
    int64_t removed;

    if (w->suspect_key &&
        w->conn->ops->kv_del(w->conn, w->suspect_key, NULL, &removed, &err))
        st_log(&w->pool->h->log, STELLAR_LOG_WARN,
               "%s: cannot clear a suspect: %s", w->name, err.msg);
    st_free(w->suspect_key);
    w->suspect_key = NULL;
}

/* Runs one reserved job with its plugin hooks (pool.h). */
const st_task *st_perform(st_proc *w, const st_reserved *job, st_done *done,
                          char **failed_entry)
{
    stellar *h = w->pool->h;
    st_payload pl;
    stellar_error pe;
    stellar_job hj = {0};
    char where[512];
    json_t *bt;
    int rc;

    hj.h = h;
    hj.b = w->conn;
    hj.queue = job->queue;
    hj.payload = job->payload;
    hj.worker = w->name;
    hj.proc = w;
    snprintf(w->task_name, sizeof w->task_name, "(invalid payload)");
    if ((rc = st_payload_parse(&pl, job->payload, job->payload_len, &pe))) {
        if (rc == STELLAR_ENOMEM && put_back(w)) return NULL;
        hj.error = st_strdup(pe.msg);
        snprintf(where, sizeof where, "    at reserve (%s)", w->name);
        goto failed;
    }
    snprintf(w->task_name, sizeof w->task_name, "%s", pl.klass);
    if (pl.args && !json_is_array(pl.args)) { /* issue #6: bad input */
        hj.error = st_strdup("payload \"args\" is not an array");
        snprintf(where, sizeof where, "    at reserve (%s)", w->name);
        goto failed;
    }
    hj.task = st_task_find(h, pl.klass);
    hj.args = pl.args;
    if (!hj.task) {
        hj.error = st_asprintf("No job defined for class \"%s\"", pl.klass);
        snprintf(where, sizeof where, "    at perform (%s)", w->name);
        goto failed;
    }
    snprintf(where, sizeof where, "    at %s.run (%s)", hj.task->def.name,
             w->name);
    rc = st_hooks_run(ST_HOOK_BEFORE_PERFORM, &hj, &pe);
    if (rc == STELLAR_VETOED) { /* dropped quietly, as in node-resque */
        done->outcome = ST_DONE_DROPPED;
        st_payload_clear(&pl);
        st_free(hj.error);
        return NULL;
    }
    if (rc < 0) {
        stellar_job_set_error(&hj, pe.msg);
    } else {
        st_log(&h->log, STELLAR_LOG_DEBUG, "%s: running %s on %s", w->name,
               hj.task->def.name, job->queue);
        hj.error =
            run_task(w, hj.task, job->queue, pl.args, is_suspect(w, job));
        rc = st_hooks_run(ST_HOOK_AFTER_PERFORM, &hj, &pe);
        if (rc < 0 && !hj.error) stellar_job_set_error(&hj, pe.msg);
    }
    if (!hj.error) {
        done->outcome = hj.retried ? ST_DONE_DROPPED : ST_DONE_OK;
        st_payload_clear(&pl);
        return hj.task->def.frequency > 0 ? hj.task : NULL;
    }
failed:
    st_log(&h->log, STELLAR_LOG_WARN, "%s: job on %s failed: %s", w->name,
           job->queue, hj.error ? hj.error : "out of memory");
    bt = json_pack("[s, s]", where, "    at stellar worker");
    *failed_entry =
        st_failed_entry(w->name, job->queue, job->payload, "Error",
                        hj.error ? hj.error : "out of memory", bt, st_now_ms());
    json_decref(bt);
    st_free(hj.error);
    st_payload_clear(&pl);
    done->outcome = ST_DONE_FAILED;
    done->failed_entry = *failed_entry;
    /* Without its entry the failure cannot be recorded: reserve refuses a
     * failed outcome without one, and would be retried for ever. */
    if (!*failed_entry) {
        if (put_back(w)) return NULL;
        st_log(&h->log, STELLAR_LOG_ERROR, "%s: job on %s lost", w->name,
               job->queue);
        done->outcome = ST_DONE_DROPPED;
    }
    /* A periodic task is re-enqueued after a failure too. */
    return hj.task && hj.task->def.frequency > 0 ? hj.task : NULL;
}
