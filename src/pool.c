/*
 * pool.c: the TaskProcessors of one handle, their heartbeat, and graceful
 * stop.
 *
 * Each TaskProcessor is a thread with its own backend connection. Its loop
 * is one backend call per job: reserve() acks the job just finished and
 * claims the next in one atomic step, so a job is always recorded either in
 * a queue or as some worker's working-on, never only in memory.
 *
 * A heartbeat thread pings for every processor once a second, whatever the
 * tasks are doing, so a long CPU-bound job never looks like a dead worker.
 *
 * A job put back from a dead worker is a suspect (core.h): it runs in a
 * child process of its own whatever the isolation, so a pill that crashes
 * its process dies alone and fails with its signal, and the jobs that
 * happened to run beside it simply run. reserve() tells whether the job
 * it pops is a suspect, so knowing costs no extra round trip.
 *
 * Stop: `stopping` is set, processors finish their running job and exit;
 * at the deadline, jobs still running are put back at the head of their
 * queue by the stopping thread (the processor is marked `abandoned` so it
 * will not ack the job when its task finally returns), then every thread is
 * joined.
 *
 * Lock order: st_pool.lock, then st_proc.lock. User code (tasks, the log
 * callback) never runs under either.
 */
#include "command.h"
#include "core.h"
#include "scheduler.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PING_MS 1000

typedef struct st_proc st_proc;

struct stellar_next {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;   /* stellar_next_done() was called */
    char *error; /* failure message, or NULL */
};

struct stellar_api {
    stellar *h;
    st_proc *proc;
    const char *task, *queue;
    int64_t deadline_ms; /* monotonic; 0: no timeout */
    bool in_child;       /* running in a forked child (fork isolation) */
    stellar *child_h;    /* the child's own handle, opened on demand */
};

struct st_proc {
    st_pool *pool;
    pthread_t thread;
    bool started; /* the thread exists (set before the pool is shared) */
    char *name;
    st_worker_id id;
    st_backend *conn; /* only this processor's thread uses it */

    pthread_mutex_t lock;   /* guards the fields below */
    pthread_cond_t settled; /* requeueing went false */
    bool running;           /* a task is running now */
    bool requeueing;        /* the running job is being put back (a stop's
                               deadline, or out of memory) */
    bool abandoned;         /* stop put the running job back: don't ack it */
    bool exited;            /* the thread has left its loop */
    char *job_queue, *job_payload;
    char *hold_key, *hold_value; /* st_proc_hold() */
    int64_t hold_ttl_ms;

    char task_name[128]; /* the last job's class, for metrics (own thread) */
    char *suspect_key;   /* the running job's crash key if it is a suspect
                            (own thread) */
};

struct st_pool {
    stellar *h;
    size_t n;
    st_proc *procs;

    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t wake;  /* new work, stop, or a processor exited */
    bool stopping;        /* set once by st_pool_stop(); never cleared */
    bool stop_now;        /* stop waiting for running jobs */
    bool aux_stop;        /* heartbeat and scheduler: end now */
    uint64_t work_seq;    /* bumped by st_pool_wake() */
    bool watching;        /* an idle processor is in the backend's wait */

    pthread_t heartbeat;
    bool heartbeat_started;
    st_sched *sched; /* NULL if this process runs no scheduler */
};

/* --------------------------------------------------------- Task side --- */

int stellar_fail(stellar_next *next, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&next->lock);
    st_free(next->error);
    next->error = st_strdup(msg);
    pthread_mutex_unlock(&next->lock);
    return STELLAR_ETASK;
}

void stellar_next_done(stellar_next *next, const char *error)
{
    pthread_mutex_lock(&next->lock);
    if (error) {
        st_free(next->error);
        next->error = st_strdup(error);
    }
    next->done = true;
    pthread_cond_broadcast(&next->cond);
    pthread_mutex_unlock(&next->lock);
}

void stellar_log(stellar_api *api, int level, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];

    if (!api->h->log.fn || level < api->h->log.level) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st_logf(&api->h->log, level, "[%s] %s", api->task, msg);
}

/* No handle crosses fork(): a child gets its own, with the same tasks. */
static stellar *child_handle(stellar_api *api)
{
    stellar_options o = {0};
    stellar_error err;
    size_t i;

    if (api->child_h) return api->child_h;
    o.url = api->h->url;
    o.log_fn = api->h->log.fn;
    o.log_ud = api->h->log.ud;
    o.log_level = api->h->log.level;
    o.userdata = api->h->userdata;
    if (stellar_open(&api->child_h, &o, &err)) return NULL;
    for (i = 0; i < api->h->ntasks; i++)
        stellar_task_register(api->child_h, &api->h->tasks[i]->def, &err);
    return api->child_h;
}

stellar *stellar_api_handle(stellar_api *api)
{
    return api->in_child ? child_handle(api) : api->h;
}

void *stellar_api_userdata(stellar_api *api)
{
    return api->h->userdata;
}

const char *stellar_api_queue(stellar_api *api)
{
    return api->queue;
}

const char *stellar_api_task(stellar_api *api)
{
    return api->task;
}

const char *stellar_api_worker(stellar_api *api)
{
    return api->proc->name;
}

bool stellar_should_stop(stellar_api *api)
{
    bool s;
    if (api->deadline_ms && st_mono_ms() >= api->deadline_ms) return true;
    if (api->in_child) return false; /* the parent signals a stop */
    pthread_mutex_lock(&api->proc->pool->lock);
    s = api->proc->pool->stopping;
    pthread_mutex_unlock(&api->proc->pool->lock);
    return s;
}

/* Command tasks (command.c): the task being run, and whether a stop's
 * deadline put its job back (requeue_running), so the command must end. */
const st_task *st_api_task_def(stellar_api *api)
{
    return st_task_find(api->h, api->task);
}

bool st_api_abandoned(stellar_api *api)
{
    bool a;
    if (api->in_child) return false; /* the parent ends the child */
    pthread_mutex_lock(&api->proc->lock);
    a = api->proc->abandoned;
    pthread_mutex_unlock(&api->proc->lock);
    return a;
}

/* ----------------------------------------------------------- Perform --- */

/* The params a task sees: Stellar enqueues args = [params]; a job written by
 * another Resque client may carry other shapes (see docs/compat.md). */
static json_t *params_of(json_t *args)
{
    if (!args) return json_object();
    if (!json_is_array(args)) return json_incref(args);
    if (json_array_size(args) == 0) return json_object();
    if (json_array_size(args) == 1) return json_incref(json_array_get(args, 0));
    return json_incref(args);
}

/* Calls the task's run and waits for it to finish; returns the error
 * message (new) or NULL on success. */
static char *call_run(stellar_api *api, const st_task *t, json_t *args)
{
    stellar_next next = {.done = false, .error = NULL};
    json_t *params = params_of(args);
    char *error;
    int rc;

    pthread_mutex_init(&next.lock, NULL);
    pthread_cond_init(&next.cond, NULL);
    rc = t->def.run(api, params, &next);
    pthread_mutex_lock(&next.lock);
    if (rc == STELLAR_PENDING) {
        while (!next.done)
            pthread_cond_wait(&next.cond, &next.lock);
    } else if (rc < 0 && !next.error) {
        next.error = st_asprintf("%s returned %s (%s)", t->def.name,
                                 stellar_err_name(rc), stellar_strerror(rc));
    }
    /* stellar_fail() then a return of STELLAR_OK still counts as failed. */
    error = next.error;
    pthread_mutex_unlock(&next.lock);
    pthread_cond_destroy(&next.cond);
    pthread_mutex_destroy(&next.lock);
    json_decref(params);
    return error;
}

/* Fork isolation: the run happens in a child process that reports its
 * error on a pipe; a crash, an exit or a timeout fails the job, not the
 * process. */
static char *run_forked(stellar_api *api, const st_task *t, json_t *args)
{
    int fds[2], status = 0;
    bool timed_out = false;
    st_buf msg = {0};
    pid_t pid;
    char *error;

    if (pipe(fds))
        return st_asprintf("fork isolation: pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return st_asprintf("fork isolation: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        char *err;
        size_t off = 0, len;
        sigset_t none;
        /* A daemon blocks SIGTERM and SIGINT in every thread (it takes them
         * with sigwait): the child must not inherit that, or the SIGTERM
         * sent at its timeout waits for the SIGKILL (tests/faults). */
        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        close(fds[0]);
        api->in_child = true;
        err = call_run(api, t, args);
        len = err ? strlen(err) : 0;
        while (off < len) {
            ssize_t n = write(fds[1], err + off, len - off);
            if (n <= 0) break;
            off += (size_t)n;
        }
        stellar_close(api->child_h);
        _exit(err ? 1 : 0);
    }
    close(fds[1]);
    for (;;) {
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int64_t left = api->deadline_ms ? api->deadline_ms - st_mono_ms() : -1;
        char buf[512];
        ssize_t n;

        if (api->deadline_ms && left <= 0) {
            timed_out = true;
            break;
        }
        if (poll(&pfd, 1, left < 0 || left > 1000 ? 1000 : (int)left) <= 0)
            continue;
        n = read(fds[0], buf, sizeof buf);
        if (n == 0) break;
        if (n < 0 && errno != EINTR) break;
        if (n > 0) st_buf_put(&msg, buf, (size_t)n);
    }
    close(fds[0]);
    if (timed_out) {
        int64_t grace = st_mono_ms() + 2000;
        kill(pid, SIGTERM);
        while (waitpid(pid, &status, WNOHANG) == 0) {
            if (st_mono_ms() >= grace) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                break;
            }
            st_sleep_ms(10);
        }
        st_buf_free(&msg);
        return st_asprintf("timed out after %lld ms: the child was killed",
                           (long long)t->def.timeout);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    error = st_buf_take(&msg);
    if (WIFSIGNALED(status)) {
        st_free(error);
        return st_asprintf("the child running %s was killed by signal %d (%s)",
                           t->def.name, WTERMSIG(status),
                           strsignal(WTERMSIG(status)));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && (!error || !*error)) {
        st_free(error);
        return st_asprintf("the child running %s exited with status %d",
                           t->def.name, WEXITSTATUS(status));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        st_free(error);
        return NULL;
    }
    return error;
}

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
        return run_forked(&api, t, args);
    error = call_run(&api, t, args);
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
static bool put_back(st_proc *w, const st_reserved *job)
{
    st_done back = {ST_DONE_REQUEUE, NULL, job->queue, job->payload};
    stellar_error err;
    bool mine, done = false;

    /* As requeue_running: the backend call runs outside w->lock, and
     * `requeueing` keeps a stop from putting the same job back too. */
    pthread_mutex_lock(&w->lock);
    mine = !w->abandoned && !w->requeueing;
    w->requeueing = mine;
    pthread_mutex_unlock(&w->lock);
    if (mine)
        done = w->conn->ops->reserve(w->conn, &w->id, &back, st_now_ms(), NULL,
                                     &err) == STELLAR_OK;
    pthread_mutex_lock(&w->lock);
    if (mine) {
        w->abandoned = done;
        w->requeueing = false;
        pthread_cond_broadcast(&w->settled);
    }
    while (w->requeueing) /* a stop is putting it back: its outcome */
        pthread_cond_wait(&w->settled, &w->lock);
    done = w->abandoned;
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
static void suspect_done(st_proc *w)
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

/* Runs one reserved job with its plugin hooks; fills *done (and
 * *failed_entry, which *done points into). Returns the task if it is
 * periodic and ran (the caller re-enqueues it), else NULL. */
static const st_task *perform(st_proc *w, const st_reserved *job, st_done *done,
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
        if (rc == STELLAR_ENOMEM && put_back(w, job)) return NULL;
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
        if (put_back(w, job)) return NULL;
        st_log(&h->log, STELLAR_LOG_ERROR, "%s: job on %s lost", w->name,
               job->queue);
        done->outcome = ST_DONE_DROPPED;
    }
    /* A periodic task is re-enqueued after a failure too. */
    return hj.task && hj.task->def.frequency > 0 ? hj.task : NULL;
}

/* --------------------------------------------------------- Processor --- */

/* How long the watcher blocks in the backend's wait at a time: the most a
 * stop waits for it. */
#define WATCH_SLICE_MS 50

/* now + ms on CLOCK_REALTIME, for pthread_cond_timedwait. */
static struct timespec deadline_ts(int64_t ms)
{
    struct timespec ts;
    int64_t ns;

    clock_gettime(CLOCK_REALTIME, &ts);
    ns = ts.tv_nsec + (ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return ts;
}

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
    struct timespec ts = deadline_ts(ms);
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

static void *proc_main(void *arg)
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
        periodic = perform(w, &job, &done, &failed_entry);
        st_metrics_job(h->metrics, w->task_name, job.queue,
                       done.outcome == ST_DONE_OK       ? ST_METRIC_OK
                       : done.outcome == ST_DONE_FAILED ? ST_METRIC_FAILED
                                                        : ST_METRIC_DROPPED,
                       st_mono_ms() - started);

        pthread_mutex_lock(&w->lock);
        while (w->requeueing) /* stop is deciding this job's fate */
            pthread_cond_wait(&w->settled, &w->lock);
        w->running = false;
        abandoned = w->abandoned;
        w->abandoned = false;
        w->job_queue = w->job_payload = NULL;
        pthread_mutex_unlock(&w->lock);
        if (abandoned) {
            /* Stop already put this job back in its queue (still a
             * suspect, if it was one: it did not end). */
            memset(&done, 0, sizeof done);
            periodic = NULL;
            st_free(w->suspect_key);
            w->suspect_key = NULL;
        }
        suspect_done(w);
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

static void *heartbeat_main(void *arg)
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
        ts = deadline_ts(PING_MS);
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

/* ------------------------------------------------------------- Pool --- */

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
    struct timespec ts = deadline_ts(ms);
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
        rc = pthread_create(&p->procs[i].thread, NULL, proc_main, &p->procs[i]);
        p->procs[i].started = rc == 0;
    }
    if (rc == 0 && p->n) {
        rc = pthread_create(&p->heartbeat, NULL, heartbeat_main, p);
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

/* Puts the running jobs of processors still busy back in their queues.
 * The backend call runs outside w->lock: `requeueing` holds the processor
 * (which may finish its task meanwhile) until the job's fate is known, so
 * a job is either put back or acked by its processor, never both. */
static void requeue_running(st_pool *p)
{
    stellar *h = p->h;
    st_backend *conn = NULL;
    stellar_error err;
    size_t i;

    for (i = 0; i < p->n; i++) {
        st_proc *w = &p->procs[i];
        st_done back = {ST_DONE_REQUEUE, NULL, NULL, NULL};
        bool ok = false;

        pthread_mutex_lock(&w->lock);
        if (w->running && !w->abandoned && !w->requeueing) {
            w->requeueing = true;
            back.queue = w->job_queue; /* stable while requeueing */
            back.payload = w->job_payload;
        }
        pthread_mutex_unlock(&w->lock);
        if (!back.queue) continue;

        if (!conn && st_backend_open(&conn, h->url, NULL, &err)) conn = NULL;
        ok = conn && conn->ops->reserve(conn, &w->id, &back, st_now_ms(), NULL,
                                        &err) == STELLAR_OK;
        if (ok)
            st_log(&h->log, STELLAR_LOG_WARN,
                   "%s: still running at the stop deadline: its job is back "
                   "at the head of %s",
                   w->name, back.queue);
        else
            st_log(&h->log, STELLAR_LOG_ERROR,
                   "%s: cannot put its running job back: %s", w->name, err.msg);

        pthread_mutex_lock(&w->lock);
        w->abandoned = ok;
        w->requeueing = false;
        pthread_cond_broadcast(&w->settled);
        pthread_mutex_unlock(&w->lock);
    }
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
