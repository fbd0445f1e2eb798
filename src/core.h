/*
 * core.h: the handle and the pieces that share it (stellar.c, task.c,
 * tasks.c, the pool's files listed in pool.h, scheduler.c). Not exported.
 *
 * Lock order: stellar.lock, then st_pool.lock, then st_proc.lock;
 * stellar.conns_lock is a leaf. No user code (tasks, hooks, the log
 * callback) ever runs holding any of them, and no network I/O happens under
 * stellar.lock, st_pool.lock or st_proc.lock.
 */
#ifndef ST_CORE_H
#define ST_CORE_H

#include "backend.h"
#include "internal.h"

#include <pthread.h>

/* A registered task: a deep copy of the caller's stellar_task. */
typedef struct st_task {
    stellar_task def;       /* strings below point into this struct's copies */
    char **plugins;         /* NULL-terminated copy, or NULL */
    json_t *plugin_options; /* parsed, or NULL */
    struct st_command *command; /* a command task's (command.h), or NULL */
} st_task;

typedef struct st_pool st_pool;
typedef struct st_metrics st_metrics;
typedef struct st_schedule st_schedule; /* schedule.c */

struct stellar {
    st_logger log;
    char *url;
    void *userdata;

    /* Copied options. */
    int processors;
    char **queues;    /* NULL-terminated, never NULL ("*" alone = all) */
    char *queues_str; /* joined with "," */
    bool no_scheduler;
    char *name; /* worker base name */
    int64_t poll_ms;
    int64_t shutdown_timeout_ms;
    int64_t stuck_worker_timeout_ms; /* < 0: never */
    int max_crashes;
    int isolation; /* STELLAR_ISOLATION_THREAD or _FORK */

    /* Connections for API calls, one checked out per call (st_conn_get):
     * any number of threads call the API at once, each on its own. */
    pthread_mutex_t conns_lock; /* guards idle, nidle */
    st_backend *idle[8];
    size_t nidle;

    pthread_mutex_t lock;   /* guards tasks, pool, busy */
    pthread_cond_t settled; /* busy went false */
    st_task **tasks;        /* frozen while busy or started */
    size_t ntasks;
    st_schedule **scheds; /* cron schedules; frozen as tasks are */
    size_t nscheds;
    st_pool *pool;       /* non-NULL from start until stop has joined */
    bool busy;           /* a start or stop is under way (without lock) */
    st_metrics *metrics; /* this process's counters (metrics.c); own lock */
};

/* A backend connection for the length of one call: taken from the idle
 * ones or opened; st_conn_put() gives it back (or closes it if enough are
 * idle). */
int st_conn_get(stellar *h, st_backend **out, stellar_error *e);
void st_conn_put(stellar *h, st_backend *b);

/* Runs `call` on a connection b checked out for it (the calling function
 * has int rc and stellar_error *e); rc: its result, or the failure to get
 * a connection. */
#define WITH_CONN(h, b, call)                                                  \
    do {                                                                       \
        st_backend *b;                                                         \
        st_err_clear(e);                                                       \
        rc = st_conn_get(h, &b, e);                                            \
        if (rc == STELLAR_OK) {                                                \
            rc = (call);                                                       \
            st_conn_put(h, b);                                                 \
        }                                                                      \
    } while (0)

/* Wakes this handle's idle processors and scheduler, if started. */
void st_wake(stellar *h);

/* Marks the calling thread as one of h's own (a processor, the heartbeat,
 * the scheduler, or a start or stop under way), so that stellar_stop() and
 * stellar_close() called from user code on it can refuse instead of
 * waiting for themselves. NULL clears the mark. */
void st_thread_mark(const stellar *h);

/* Queue and task names: 1 to ST_NAME_MAX bytes of valid UTF-8, no control
 * characters (C0, DEL, C1), not only spaces. EINVAL naming `what` ("queue",
 * "task") and the fault otherwise. The one rule for every entry point. */
#define ST_NAME_MAX 256
int st_name_check(const char *what, const char *name, stellar_error *e);

/* Looks a task up by name; NULL if unknown. Call with h->lock held, or
 * after start (when the table no longer changes). */
const st_task *st_task_find(const stellar *h, const char *name);
/* The same, taking h->lock for the lookup: a task, once registered, lives
 * as long as the handle. *any (if not NULL): no task is registered, so
 * any name may be enqueued (a client-only handle). */
const st_task *st_task_lookup(stellar *h, const char *name, bool *any);
void st_tasks_free(stellar *h);

/* Cron schedules (schedule.c). st_schedule_new() validates s and adds it
 * to h; call it with h->lock held. from_task: the schedule of a task being
 * registered (not yet in the table), named as the task; `what` starts its
 * messages ("task 'x'" or "schedule 'x'"). */
int st_schedule_new(stellar *h, const stellar_schedule *s, bool from_task,
                    const char *what, stellar_error *e);
void st_schedules_free(stellar *h);
/* Sets a schedule's paused flag in the backend (stellar_schedule_pause, and
 * the recurrent calls for cron tasks). */
int st_schedule_set_paused(st_backend *b, const char *name, bool paused,
                           stellar_error *e);

/* The firing of the schedules by one scheduler (schedule.c): each due tick
 * is claimed with its job in one backend step (sched_claim). st_ticker_run
 * fires what is due at now and returns the ms until the next tick (or -1:
 * none); *fired: how many jobs it queued. */
typedef struct st_ticker st_ticker;
st_ticker *st_ticker_new(stellar *h);
int64_t st_ticker_run(st_ticker *t, st_backend *b, int64_t now_ms,
                      int64_t *fired);
void st_ticker_free(st_ticker *t);

/* What st_recurrent() does after removing a periodic task's queued and
 * delayed copies: nothing more (stop), queue one now, or delay one to now
 * + frequency (after a run). */
enum st_recur { ST_RECUR_STOP, ST_RECUR_NOW, ST_RECUR_LATER };
int st_recurrent(stellar *h, st_backend *b, const st_task *t,
                 enum st_recur then, int64_t *removed, stellar_error *e);
/* Whether a periodic task has a delayed copy waiting. */
bool st_recurrent_waiting(st_backend *b, const st_task *t);

/* The "queues" member of stellar_details(): {"<q>": {"length": n,
 * "latency_ms": ms or null}}. */
int st_queues_detail(stellar *h, json_t **out, stellar_error *e);

/*
 * Suspects (issue 17 item 9). A process crash cannot say which of the jobs
 * it ran caused it, so each job put back from a dead worker is a suspect:
 * its kv key ST_CRASHES_PREFIX<payload> (backend.h) counts the dead workers
 * that held it, and is written before the job goes back. The backend's
 * reserve tells, in the same atomic step as the pop, whether that key is
 * live (st_reserved.suspect), so a job costs nothing more than its pop and
 * no process needs telling. A processor runs a suspect in a child process
 * of its own (fork isolation for that one run), then deletes the key (one
 * round trip, for suspects only). The real pill dies there alone, failing
 * with its signal; the bystanders just run.
 */
#define ST_CRASHES_TTL_MS 86400000 /* a crash counter's life: a day */

/* Removes workers whose last ping is older than age_ms; their in-flight
 * jobs go to failed, or back to their queue as suspects if requeue (to
 * failed anyway, as a poison pill, once a job has been held by max_crashes
 * dead workers). A job whose crash counter cannot be written stays with
 * its dead worker for a later call: it never goes back unmarked.
 * *cleaned: {"<worker>": payload or null}. */
int st_clean_workers(stellar *h, st_backend *b, int64_t age_ms, bool requeue,
                     json_t **cleaned, stellar_error *e);

/* In-process metrics (metrics.c), fed by the pool and the scheduler and
 * read by the HTTP server's /metrics. Thread-safe. */
st_metrics *st_metrics_new(void);
void st_metrics_free(st_metrics *m);
enum st_metric_outcome { ST_METRIC_OK, ST_METRIC_FAILED, ST_METRIC_DROPPED };
/* One job ended after duration_ms. */
void st_metrics_job(st_metrics *m, const char *task, const char *queue,
                    enum st_metric_outcome outcome, int64_t duration_ms);
/* Delayed jobs moved to their queues lag_ms after they were due. */
void st_metrics_delayed_lag(st_metrics *m, int64_t lag_ms, int64_t jobs);
/* Jobs recovered from dead workers. */
void st_metrics_recovered(st_metrics *m, int64_t jobs);

/* Plugins (plugin.c). */
typedef enum st_hook {
    ST_HOOK_BEFORE_ENQUEUE,
    ST_HOOK_AFTER_ENQUEUE,
    ST_HOOK_BEFORE_PERFORM,
    ST_HOOK_AFTER_PERFORM,
} st_hook;

struct stellar_job {
    stellar *h;
    st_backend *b; /* the connection of the thread running the hook */
    const st_task *task;
    const char *queue;
    const json_t *args;   /* the payload's args array */
    const char *payload;  /* the raw payload */
    const char *worker;   /* NULL in enqueue hooks */
    char *error;          /* the run's error (owned), NULL if none */
    bool delayed;         /* enqueue hooks: enqueueAt / enqueueIn */
    bool retried;         /* retry re-scheduled it: ack with no counters */
    struct st_proc *proc; /* perform hooks: the TaskProcessor running it */
};

/* Runs one hook of every plugin of job->task, in order. Returns STELLAR_OK,
 * STELLAR_VETOED, or a negative code with e filled. */
int st_hooks_run(st_hook which, stellar_job *job, stellar_error *e);
/* After a before_enqueue that passed, the write failed: undoes the hooks'
 * effects (the queueLock they took). */
void st_hooks_enqueue_failed(stellar_job *job);
/* EINVAL naming the task if one of its plugins is unknown. */
int st_plugins_check(const st_task *t, stellar_error *e);
/* A lock the job that w runs holds (jobLock): the heartbeat renews its
 * expiry to ttl_ms while it still holds value, so the lock lasts as long as
 * the run and expires ttl_ms after a crash. key NULL: released. */
void st_proc_hold(struct st_proc *w, const char *key, const char *value,
                  int64_t ttl_ms);

/* The pool (pool.c; its own files share pool.h). Start and stop log; the
 * caller holds no lock. st_pool_stop() joins every thread; st_pool_free()
 * then frees (after the handle no longer points at the pool). */
int st_pool_start(stellar *h, st_pool **out, stellar_error *e);
void st_pool_stop(st_pool *p, int64_t timeout_ms);
void st_pool_free(st_pool *p);
void st_pool_stop_now(st_pool *p);
/* Wakes idle processors and the scheduler of this process (new work). */
void st_pool_wake(st_pool *p);
/* Sleeps up to ms or until the pool is woken; true once the pool's helper
 * threads (heartbeat, scheduler) are to end. The scheduler's sleep. */
bool st_pool_aux_wait(st_pool *p, int64_t ms);

#endif /* ST_CORE_H */
