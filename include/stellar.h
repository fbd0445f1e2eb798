/*
 * stellar.h: the public API of libstellar, and its manual.
 *
 * Stellar is a background task system. A program defines tasks; anything can
 * enqueue them now, at a time or after a delay; TaskProcessors (worker
 * threads) run them; a scheduler moves delayed jobs to their queues and
 * re-enqueues periodic tasks. Storage is an embedded SQLite file by default
 * ("sqlite:./stellar.db") or Redis in node-resque 9's layout.
 *
 * Conventions
 * - A fallible function returns STELLAR_OK (0) or a negative STELLAR_E* code,
 *   and fills the caller-owned, nullable stellar_error with a message.
 * - Strings passed in are borrowed: the library copies what it keeps.
 *   Strings and JSON handed out are new: free strings with stellar_free(),
 *   json_t with json_decref().
 * - Time is milliseconds since the Unix epoch, everywhere.
 * - A stellar handle is thread-safe; see "Threads" below.
 *
 * Threads
 * - Every call on a handle may come from any thread at once: the embedding
 *   program's, HTTP handlers', and the handle's own, that is from a task's
 *   run(), a plugin hook (before/after enqueue and perform) and the log
 *   callback. Each call checks out a backend connection of its own for its
 *   length (up to 8 idle ones are kept per handle; more are opened as
 *   needed and closed after), so calls do not wait for one another, and no
 *   lock of the handle is held while user code (tasks, hooks, the log
 *   callback) runs: they may call back into the same handle.
 * - How long a call blocks: one or a few round trips to the backend (an
 *   enqueue: its hooks' round trips plus one write). On SQLite a writer
 *   waits up to 5 s for another writer's lock (then EBUSY); on Redis a
 *   new connection waits up to 10 s to connect, and an API call up to 10 s
 *   for a reply when the server does not answer (then ECONNECT, naming
 *   the silent server; TaskProcessors allow 30 s). stellar_stop() blocks until
 *   running tasks end (see there); stellar_close() includes a stop.
 * - Exceptions: stellar_stop() and stellar_close() must not be called on a
 *   handle from its own threads (a task, a hook, the log callback while the
 *   handle's threads or a start or stop of it are running): they would wait
 *   for themselves. Such a call is refused: it logs an error and returns
 *   without effect. stellar_stop_now() may be called from anywhere.
 *   Register tasks and plugins before stellar_start().
 */
#ifndef STELLAR_H
#define STELLAR_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define STELLAR_API          __attribute__((visibility("default")))
#define STELLAR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define STELLAR_API
#define STELLAR_PRINTF(a, b)
#endif

#define STELLAR_VERSION "0.1.0"

/* The latest time a job may be delayed to: 9999-12-31T23:59:59.999Z, in ms
 * since the epoch. Later times (and delays that reach past it) are EINVAL. */
#define STELLAR_TIME_MAX 253402300799999LL

/* ------------------------------------------------------------- Errors --- */

#define STELLAR_ERRNO_MAP(X)                                                   \
    X(EINVAL, -1, "invalid argument")                                          \
    X(EBACKEND, -2, "storage backend error")                                   \
    X(ENOTFOUND, -3, "not found")                                              \
    X(ENOTASK, -4, "unknown task")                                             \
    X(EEXISTS, -5, "already exists")                                           \
    X(ENOMEM, -6, "out of memory")                                             \
    X(EIO, -7, "input/output error")                                           \
    X(EBUSY, -8, "storage busy")                                               \
    X(ESTATE, -9, "wrong state for this call")                                 \
    X(ECOMPILE, -10, "task module failed to build or load")                    \
    X(ETIMEDOUT, -11, "timed out")                                             \
    X(EFULL, -12, "storage full")                                              \
    X(ECONNECT, -13, "cannot connect to the backend")                          \
    X(ETASK, -14, "the task failed")

enum {
    STELLAR_OK = 0,
    /* A result, not an error: a plugin's before-enqueue hook said no. */
    STELLAR_VETOED = 1,
    /* Returned by a task's run(): it will call stellar_next_done() later. */
    STELLAR_PENDING = 2,
#define STELLAR_X_(name, code, text) STELLAR_##name = code,
    STELLAR_ERRNO_MAP(STELLAR_X_)
#undef STELLAR_X_
};

typedef struct stellar_error {
    int code;      /* the value the function returned */
    char msg[256]; /* detail for humans, always NUL-terminated */
} stellar_error;

/* Text of a code ("invalid argument"), and its name ("EINVAL"). Never NULL. */
STELLAR_API const char *stellar_strerror(int code);
STELLAR_API const char *stellar_err_name(int code);

/* Frees what the library hands out as a plain string or buffer. NULL is ok. */
STELLAR_API void stellar_free(void *p);

/* ------------------------------------------------------------ Logging --- */

enum {
    STELLAR_LOG_DEBUG = 0,
    STELLAR_LOG_INFO = 1,
    STELLAR_LOG_WARN = 2,
    STELLAR_LOG_ERROR = 3,
};

/* Called from any thread, one call per event; msg is borrowed. No lock of
 * Stellar's is held while it runs, so it may call the API (but see
 * "Threads" for stellar_stop() and stellar_close()); a slow one slows only
 * the thread that logs. */
typedef void (*stellar_log_fn)(void *ud, int level, const char *msg);

/* ------------------------------------------------------------- Handle --- */

typedef struct stellar stellar;

/* Every field zero means the default given beside it. */
typedef struct stellar_options {
    const char *url;       /* backend URL; NULL: "sqlite:./stellar.db" */
    stellar_log_fn log_fn; /* NULL: silent */
    void *log_ud;
    int log_level;  /* lowest level passed to log_fn (DEBUG = 0) */
    void *userdata; /* handed to tasks by stellar_api_userdata() */

    /* What stellar_start() runs. */
    int processors;            /* TaskProcessor threads; 0: 1; < 0: none */
    const char *const *queues; /* priority order, NULL-terminated;
                                  NULL or {"*"}: every queue, by name */
    bool no_scheduler;         /* true: this process never moves delayed jobs */
    const char *name;          /* worker base name; NULL: the host name */
    int64_t poll_ms;           /* idle wait between reserve attempts; 0: 100 */
    int64_t shutdown_timeout_ms; /* grace for running jobs at stop; 0: 30000 */
    /* The scheduler leader treats a worker whose pings stopped this long
     * ago as dead and puts its in-flight job back in its queue; 0: 60000;
     * < 0: never; at least 3000 (workers ping once a second). */
    int64_t stuck_worker_timeout_ms;
    /* A job held by this many workers that died (it kills its process even
     * from a child of its own, where it runs as a suspect once one worker
     * died holding it) goes to failed as a poison pill instead; 0: 3. */
    int max_crashes;
    /* How tasks run unless a task says otherwise: in the processor's thread
     * (default) or in a child process per job (a crash or a timeout fails
     * that job, not the process). */
    int isolation;
} stellar_options;

/*
 * Opens a handle on a backend. URLs: "sqlite:PATH", "redis://[:pw@]host
 * [:port][/db][?namespace=NS]", "redis+unix:///path.sock[?db=N&namespace=NS]".
 * On success *out is the handle; on failure *out is NULL.
 */
STELLAR_API int stellar_open(stellar **out, const stellar_options *o,
                             stellar_error *e);

/* Stops what stellar_start() started (as stellar_stop(h)), then frees.
 * Not from the handle's own threads (see "Threads"). */
STELLAR_API void stellar_close(stellar *h);

/* The URL in use (borrowed, valid until close). */
STELLAR_API const char *stellar_url(const stellar *h);

/* -------------------------------------------------------------- Tasks --- */

typedef struct stellar_api stellar_api;   /* the run's context (borrowed) */
typedef struct stellar_next stellar_next; /* the run's completion handle */

/*
 * A task's body. params is the job's params object (borrowed until the job
 * ends). Return STELLAR_OK for success, a negative code (typically what
 * stellar_fail() returns) for failure, or STELLAR_PENDING to finish later with
 * stellar_next_done() from any thread.
 */
typedef int (*stellar_run_fn)(stellar_api *api, const json_t *params,
                              stellar_next *next);

enum {
    STELLAR_ISOLATION_DEFAULT = 0,
    STELLAR_ISOLATION_THREAD = 1,
    STELLAR_ISOLATION_FORK = 2,
};

typedef struct stellar_task {
    const char *name;           /* unique; required */
    const char *description;    /* required */
    const char *queue;          /* NULL: "default" */
    int64_t frequency;          /* ms; > 0 makes the task periodic */
    const char *const *plugins; /* NULL-terminated plugin names, or NULL */
    const char *plugin_options; /* JSON object keyed by plugin name, or NULL */
    stellar_run_fn run;         /* required */
    /* A run longer than this (ms) fails as timed out; 0: no limit. With
     * fork isolation the child is sent SIGTERM, then SIGKILL after 2 s; in
     * a thread the limit is cooperative: stellar_should_stop() turns true. */
    int64_t timeout;
    int isolation; /* STELLAR_ISOLATION_*; 0: the handle's */
    /* A cron expression (docs/schedules.md): the task is queued at each of
     * its fire times instead of every `frequency` ms (a task with both is
     * refused). 5 fields (minute hour day-of-month month day-of-week), 6
     * (seconds first) or a macro (@daily ...). NULL or "": none. The
     * task's schedule is named as the task, has params {} and policy
     * STELLAR_MISSED_SKIP; see stellar_schedule_add(). */
    const char *cron;
    /* The cron expression's IANA time zone ("Europe/Berlin", "UTC");
     * NULL or "": the machine's local zone. Only with cron. */
    const char *timezone;
} stellar_task;

/*
 * Adds a task to the handle, after validation: a name, a description and a
 * run are required, frequency must be >= 0, names are unique; cron and
 * frequency exclude each other, a cron expression must parse and its zone
 * exist. The task is copied. EINVAL / EEXISTS name the task and the field
 * in e->msg.
 */
STELLAR_API int stellar_task_register(stellar *h, const stellar_task *t,
                                      stellar_error *e);

/* The tasks registered on h, as a JSON array of {name, description, queue,
 * frequency, plugins}, and cron and timezone (null: the local zone) for a
 * task with cron. New reference; NULL if out of memory. */
STELLAR_API json_t *stellar_tasks_json(stellar *h);

/*
 * Tasks in shared objects. STELLAR_TASK(id) = { ... }; defines a task that
 * registers itself in a process-wide list when its object is loaded.
 * stellar_module_load() dlopens a shared object and registers on h every
 * task it defined; stellar_task_register_builtin() registers on h the tasks
 * that the program itself defined with STELLAR_TASK.
 */
STELLAR_API void stellar_module_add(const stellar_task *t);
STELLAR_API int stellar_module_load(stellar *h, const char *path,
                                    stellar_error *e);
STELLAR_API int stellar_task_register_builtin(stellar *h, stellar_error *e);

/*
 * Command tasks: a task whose run is an executable in any language, declared
 * by a JSON file (modules/<module>/tasks/<name>.json; docs/tasks.md):
 * {"name", "description", "command": [argv...], "queue", "frequency",
 * "timeout" (ms), "plugins", "pluginOptions", "env": {"K": "V"}, "limits":
 * {"memoryMiB", "cpuSeconds", "openFiles"} (setrlimit)}. The
 * command runs in the file's folder with the job's params (JSON) on its
 * standard input and STELLAR_TASK, STELLAR_QUEUE, STELLAR_WORKER,
 * STELLAR_BACKEND and STELLAR_APP in its environment; exit status 0 is
 * success, else the last line it wrote to stderr is the error. app_dir:
 * the app's folder (NULL: three levels above the file). EINVAL names the
 * file and the key.
 */
STELLAR_API int stellar_command_task_load(stellar *h, const char *path,
                                          const char *app_dir,
                                          stellar_error *e);

#define STELLAR_TASK(id)                                                       \
    static const stellar_task stellar_task_def_##id;                           \
    __attribute__((constructor)) static void stellar_task_ctor_##id(void)      \
    {                                                                          \
        stellar_module_add(&stellar_task_def_##id);                            \
    }                                                                          \
    static const stellar_task stellar_task_def_##id

/* ------------------------------------------------------------ Plugins --- */
/*
 * Resque plugins change how a task is queued and run. A task lists plugin
 * names in `plugins` (run in that order) and their options in
 * `plugin_options`, a JSON object keyed by plugin name. Built in: jobLock,
 * queueLock, delayQueueLock, retry, noop (node-resque's JobLock, QueueLock,
 * DelayQueueLock, Retry, Noop are accepted too: names match ignoring case).
 * Periodic tasks get jobLock, queueLock and delayQueueLock automatically.
 *
 * A hook returns STELLAR_OK to go on, STELLAR_VETOED to stop the enqueue
 * (enqueue returns STELLAR_VETOED) or the run (the job is dropped, counted
 * neither processed nor failed), or a negative code: the enqueue fails, or
 * the job fails with the message set by stellar_job_set_error(). Hooks run
 * for enqueue, enqueueAt and enqueueIn alike (see docs/compat.md).
 */
typedef struct stellar_job stellar_job; /* the job a hook looks at */

typedef int (*stellar_hook_fn)(stellar_job *job, const json_t *options);

typedef struct stellar_plugin {
    const char *name; /* unique; matched ignoring case */
    stellar_hook_fn before_enqueue, after_enqueue;
    stellar_hook_fn before_perform, after_perform; /* after: sees the error */
} stellar_plugin;

/* Registers a plugin for every handle of the process (the struct is
 * borrowed: keep it alive, e.g. static). EEXISTS for a taken name. A task
 * naming an unknown plugin makes stellar_start() fail with EINVAL. */
STELLAR_API int stellar_plugin_register(const stellar_plugin *p,
                                        stellar_error *e);

/* What a hook sees (all borrowed, valid during the hook). */
STELLAR_API stellar *stellar_job_handle(stellar_job *job);
STELLAR_API const char *stellar_job_task(stellar_job *job);
STELLAR_API const char *stellar_job_queue(stellar_job *job);
STELLAR_API const json_t *stellar_job_args(stellar_job *job); /* array */
/* The worker running the job; NULL in enqueue hooks. */
STELLAR_API const char *stellar_job_worker(stellar_job *job);
/* The run's error message, NULL on success (after_perform). */
STELLAR_API const char *stellar_job_error(stellar_job *job);
/* Sets (or with NULL clears) the run's error. */
STELLAR_API void stellar_job_set_error(stellar_job *job, const char *error);

/* ----------------------------------------------------- Inside a task --- */

/* Sets the job's error message and returns STELLAR_ETASK, so a run can end
 * with: return stellar_fail(next, "cannot open %s", path); */
STELLAR_API int stellar_fail(stellar_next *next, const char *fmt, ...)
    STELLAR_PRINTF(2, 3);

/* Ends a run that returned STELLAR_PENDING. error NULL means success. Call
 * exactly once, from any thread. */
STELLAR_API void stellar_next_done(stellar_next *next, const char *error);

/* Logs through the handle's log_fn, as the task. */
STELLAR_API void stellar_log(stellar_api *api, int level, const char *fmt, ...)
    STELLAR_PRINTF(3, 4);

STELLAR_API stellar *stellar_api_handle(stellar_api *api);
STELLAR_API void *stellar_api_userdata(stellar_api *api);
STELLAR_API const char *stellar_api_queue(stellar_api *api);
STELLAR_API const char *stellar_api_task(stellar_api *api);
STELLAR_API const char *stellar_api_worker(stellar_api *api);
/* True once the processor is stopping or the task's timeout has passed:
 * long tasks should check it and return soon. */
STELLAR_API bool stellar_should_stop(stellar_api *api);

/* ------------------------------------------------------------ Enqueue --- */

/*
 * Queues a job of `task` with `params` (a JSON object as text; NULL: {}).
 * queue NULL: the task's queue if the handle knows the task, else "default".
 * If the handle has tasks registered, an unknown task is ENOTASK; a handle
 * with none (a pure client) accepts any name.
 * The stored payload is {"class":task,"queue":queue,"args":[params]}, encoded
 * as JavaScript's JSON.stringify does.
 * Returns STELLAR_OK, STELLAR_VETOED (a plugin said no; nothing stored), or
 * an error.
 */
STELLAR_API int stellar_enqueue(stellar *h, const char *task,
                                const char *params, const char *queue,
                                stellar_error *e);

/* As stellar_enqueue, but the job waits in the delayed set until at_ms. */
STELLAR_API int stellar_enqueue_at(stellar *h, int64_t at_ms, const char *task,
                                   const char *params, const char *queue,
                                   stellar_error *e);

/* As stellar_enqueue_at(now + delay_ms); delay_ms < 0 is EINVAL. */
STELLAR_API int stellar_enqueue_in(stellar *h, int64_t delay_ms,
                                   const char *task, const char *params,
                                   const char *queue, stellar_error *e);

/*
 * Queues n jobs of `task` on one queue in one atomic write (Redis: one
 * MULTI with RPUSH; SQLite: one transaction): node-resque's enqueue called
 * n times, at the cost of one. params[i] is job i's params object as text
 * (params NULL, or params[i] NULL: {}); queue as for stellar_enqueue.
 * Every params text is checked first: one that is not a JSON object is
 * EINVAL and nothing is stored.
 *
 * Plugin hooks run per job, as stellar_enqueue runs them: each job's
 * before_enqueue hooks run in order (a veto drops that job only), then the
 * jobs that passed are written in one step, then the after_enqueue hooks
 * of every job written run. A before_enqueue hook that fails (a negative
 * code) stops there: the jobs before it that passed their hooks are still
 * written (as n stellar_enqueue calls would have written them), and its
 * error is returned; else the first after_enqueue error is returned.
 * Returns STELLAR_OK when all n jobs are stored, STELLAR_VETOED when a
 * hook dropped at least one (the others are stored), or an error.
 */
STELLAR_API int stellar_enqueue_many(stellar *h, const char *task,
                                     const char *const *params, size_t n,
                                     const char *queue, stellar_error *e);

/* ------------------------------------------------ Processors, scheduler --- */

/*
 * Starts the TaskProcessors and the scheduler described by the options in
 * background threads, and returns at once. ESTATE if already started (or
 * while a stop is under way); ENOMEM if a thread cannot be created (then
 * nothing is left running).
 */
STELLAR_API int stellar_start(stellar *h, stellar_error *e);

/*
 * Graceful stop: no new jobs are reserved; running jobs get up to
 * timeout_ms (< 0: the handle's shutdown_timeout_ms) to finish; jobs still
 * running then are put back at the head of their queue (they may run again,
 * and their own ack is then skipped). Then workers unregister. Blocks until
 * every thread has ended, which includes waiting for tasks still running
 * past the deadline to return (stellar_should_stop() is true for them; a
 * forked job's child is waited for). Safe to call when not started. Two
 * threads may call it at once: the second waits for the first's stop to
 * end. Not from the handle's own threads (see "Threads").
 */
STELLAR_API void stellar_stop(stellar *h, int64_t timeout_ms);

/* Asks a running stellar_stop() (from another thread or a signal-handling
 * thread) to stop waiting for running jobs now. */
STELLAR_API void stellar_stop_now(stellar *h);

/* ----------------------------------------------------- Inspection --- */

/* Counters: {"processed":n,"failed":n,"processed:<worker>":n,...}. */
STELLAR_API int stellar_stats(stellar *h, json_t **out, stellar_error *e);

/* The number of failed jobs. */
STELLAR_API int stellar_failed_count(stellar *h, int64_t *out,
                                     stellar_error *e);

/*
 * Failed jobs from index start to stop (inclusive; negative counts from the
 * end, as LRANGE), as a JSON array of the Resque failed entries: {worker,
 * queue, payload, exception, error, backtrace, failed_at}.
 */
STELLAR_API int stellar_failed(stellar *h, int64_t start, int64_t stop,
                               json_t **out, stellar_error *e);

/* Names of every queue, sorted. */
STELLAR_API int stellar_queues(stellar *h, json_t **out, stellar_error *e);

/* Jobs waiting in one queue (not counting delayed jobs). */
STELLAR_API int stellar_length(stellar *h, const char *queue, int64_t *out,
                               stellar_error *e);

/* The age (ms) of the oldest job waiting in queue: how long since it was
 * enqueued, or since it was due if it was delayed. -1 if the queue is
 * empty or the backend cannot tell: on Redis, where Resque payloads carry
 * no enqueue time, it is always -1. */
STELLAR_API int stellar_latency(stellar *h, const char *queue, int64_t *out,
                                stellar_error *e);

/* Every registered worker: {"<name>": {"queues": "...", "started": ms,
 * "ping": ms, "working_on": {"run_at": ms, "queue", "payload": {...}} or
 * null}}. */
STELLAR_API int stellar_workers(stellar *h, json_t **out, stellar_error *e);

/* Timestamps (ms, ascending) that hold delayed jobs. */
STELLAR_API int stellar_timestamps(stellar *h, json_t **out, stellar_error *e);

/* ----------------------------------------------------- Management --- */
/*
 * The calls of the Stellar guide (node-resque's Queue API). Jobs are named
 * by task + params + queue, matched as whole payloads, exactly as Resque
 * does: params must be given as they were enqueued (member order counts).
 * params NULL means {}. Every call that changes state is atomic.
 */

/* Jobs of one queue from start to stop (LRANGE), as parsed payloads. */
STELLAR_API int stellar_queued(stellar *h, const char *queue, int64_t start,
                               int64_t stop, json_t **out, stellar_error *e);

/* Removes up to count (0: all) queued jobs of task+params from queue. */
STELLAR_API int stellar_del(stellar *h, const char *queue, const char *task,
                            const char *params, int64_t count, int64_t *removed,
                            stellar_error *e);

/* Removes the delayed jobs of task+params; *timestamps: the ms timestamps
 * they were removed from (JSON array). */
STELLAR_API int stellar_del_delayed(stellar *h, const char *queue,
                                    const char *task, const char *params,
                                    json_t **timestamps, stellar_error *e);

/* Removes a queue and its jobs. ENOTFOUND if there is no such queue. */
STELLAR_API int stellar_del_queue(stellar *h, const char *queue,
                                  stellar_error *e);

/* (Re)starts a registered periodic task: removes its queued and delayed
 * copies and queues one now. A cron task's schedule is also resumed (see
 * stellar_schedule_pause()), so its ticks queue jobs again. ENOTASK /
 * EINVAL if the task has neither frequency nor cron. */
STELLAR_API int stellar_enqueue_recurrent(stellar *h, const char *task,
                                          stellar_error *e);
/* Stops a periodic task: removes its queued and delayed copies; *removed
 * counts them. (A processor running a frequency task right now
 * re-enqueues it.) A cron task's schedule is also paused, for every
 * process, until stellar_enqueue_recurrent() or a resume. */
STELLAR_API int stellar_stop_recurrent(stellar *h, const char *task,
                                       int64_t *removed, stellar_error *e);

/* The ms timestamps at which task+params is delayed. */
STELLAR_API int stellar_scheduled_at(stellar *h, const char *queue,
                                     const char *task, const char *params,
                                     json_t **out, stellar_error *e);
/* The jobs delayed at ts_ms, as parsed payloads. */
STELLAR_API int stellar_delayed_at(stellar *h, int64_t ts_ms, json_t **out,
                                   stellar_error *e);
/* Every delayed job: {"<ms>": [payloads...], ...}. */
STELLAR_API int stellar_all_delayed(stellar *h, json_t **out, stellar_error *e);
/* Removes every delayed job at ts_ms; *removed counts them. */
STELLAR_API int stellar_del_delayed_at(stellar *h, int64_t ts_ms,
                                       int64_t *removed, stellar_error *e);
/* Removes every delayed job. */
STELLAR_API int stellar_del_all_delayed(stellar *h, int64_t *removed,
                                        stellar_error *e);

/* {"queues": {"<q>": {"length": n, "latency_ms": ms or null, "paused":
 * bool, "paused_until": ms or null}}, "workers": <stellar_workers>};
 * latency_ms as stellar_latency(), null for -1; paused_until null when not
 * paused or paused until resumed. */
STELLAR_API int stellar_details(stellar *h, json_t **out, stellar_error *e);
/* What one worker is doing: {"run_at": ms, "queue", "payload"} or null;
 * ENOTFOUND if no such worker. */
STELLAR_API int stellar_working_on(stellar *h, const char *worker, json_t **out,
                                   stellar_error *e);
/* {"<worker>": "started" | {run_at, queue, payload}} for every worker. */
STELLAR_API int stellar_all_working_on(stellar *h, json_t **out,
                                       stellar_error *e);

/* Every lock ("lock:...", "workerslock:...") with its value and expiry:
 * {"<name>": {"value": str, "expires": ms or null}}. */
STELLAR_API int stellar_locks(stellar *h, json_t **out, stellar_error *e);
/* Removes one lock by name (as locks() lists it); *removed 0 or 1. */
STELLAR_API int stellar_del_lock(stellar *h, const char *name, int64_t *removed,
                                 stellar_error *e);

/* Removes one failed entry (as stellar_failed() returned it: an object, or
 * the text of an entry that is not JSON); *removed 0/1. An entry another
 * client stored in another JSON form (member order aside, other escapes or
 * number forms) is found by value. */
STELLAR_API int stellar_remove_failed(stellar *h, const json_t *failed_job,
                                      int64_t *removed, stellar_error *e);
/* Removes one failed entry and queues its job again, atomically. ENOTFOUND
 * ("This job is not in failed queue") if the entry is not there. */
STELLAR_API int stellar_retry_and_remove_failed(stellar *h,
                                                const json_t *failed_job,
                                                stellar_error *e);

/* Workers whose last ping is older than age_ms are removed; the job each
 * was running goes to failed ("Worker Timeout (killed manually)"), or back
 * to the head of its queue if requeue, as a suspect that runs next in a
 * child process of its own (README, "Not losing work"). *cleaned:
 * {"<worker>": payload or null}. */
STELLAR_API int stellar_clean_old_workers(stellar *h, int64_t age_ms,
                                          bool requeue, json_t **cleaned,
                                          stellar_error *e);

/* ---------------------------------------------------------- Schedules --- */
/*
 * Cron schedules (docs/schedules.md). A schedule queues a job of its task
 * at each fire time ("tick") of its cron expression in its time zone. Each
 * process's scheduler (stellar_start() without no_scheduler) tries every
 * tick, and the backend claims (schedule, tick) and stores the job in one
 * atomic step, so any number of processes, and a process that dies at any
 * point, give exactly one job per tick. The jobs are pushed directly (no
 * before/after_enqueue hooks run, as for a promoted delayed job); the
 * perform hooks run as for any job.
 *
 * A tick is late while less than STELLAR_SCHEDULE_GRACE_MS have passed
 * since it: a scheduler that sees it then still queues its job. Ticks that
 * passed longer ago with no job (no scheduler ran) are missed: the policy
 * decides. A schedule seen for the first time has missed nothing.
 */
#define STELLAR_SCHEDULE_GRACE_MS 5000

enum {
    STELLAR_MISSED_SKIP = 0, /* missed ticks queue nothing */
    STELLAR_MISSED_ONCE = 1, /* all missed ticks together: one job, queued
                                when a scheduler finds them */
};

typedef struct stellar_schedule {
    const char *name;     /* unique among schedules (a task with cron has
                             one named as the task); required */
    const char *cron;     /* the expression; required */
    const char *timezone; /* IANA name; NULL or "": the local zone */
    const char *task;     /* required; registered (unless the handle has
                             no tasks at all) */
    const char *params;   /* a JSON object as text; NULL: {} */
    const char *queue;    /* NULL: the task's, else "default" */
    int missed;           /* STELLAR_MISSED_* */
} stellar_schedule;

/*
 * Adds a schedule to the handle (copied). Before stellar_start(), after the
 * task is registered. EINVAL names the schedule and the field (a bad
 * expression: the cron field, as "schedule 'x': field 'cron': cron: hour
 * field: 25 is out of range 0-23"); ENOTFOUND an unknown zone; ENOTASK an
 * unknown task; EEXISTS a taken name; ESTATE while started.
 */
STELLAR_API int stellar_schedule_add(stellar *h, const stellar_schedule *s,
                                     stellar_error *e);

/*
 * Every schedule of the handle, by name: {"<name>": {"name", "kind":
 * "task" | "schedule", "cron", "timezone" (the zone's name), "task",
 * "queue", "params", "missed": "skip" | "once", "paused": bool, "last":
 * ms or null (the last tick that queued a job), "next": ms or null (the
 * next fire time after now), "next_local" (ISO 8601 in the zone, with its
 * offset), "next_utc" (ISO 8601, "Z"), "upcoming": [ms...] (the next 5)}}.
 * paused and last are read from the backend.
 */
STELLAR_API int stellar_schedules(stellar *h, json_t **out, stellar_error *e);

/*
 * Pauses (paused true) or resumes one schedule, for every process that
 * shares the backend: a paused schedule's ticks queue nothing, and the
 * ticks that pass while it is paused are skipped, not missed. ENOTFOUND
 * if the handle has no schedule of that name.
 */
STELLAR_API int stellar_schedule_pause(stellar *h, const char *name,
                                       bool paused, stellar_error *e);
/* ------------------------------------------------------ Queue control --- */
/*
 * Pauses and limits (issue 15), stored in the backend: they apply to every
 * process sharing it at once, survive restarts and may be set from any
 * machine. A Stellar TaskProcessor leaves a job held back by them where it
 * is, in order (it looks at a queue's head and goes on to its other
 * queues), and wakes when a permit frees or a queue is resumed. node-resque
 * workers sharing a Redis do not know them (docs/compat.md).
 *
 * A TARGET is "queue:NAME" (every job of that queue) or "task:NAME" (every
 * job of that task, in any queue). A job must pass the limits of both its
 * queue and its task.
 *   concurrency  at most N jobs of the target run at once. A running job
 *                holds a permit, a lease on its working-on record: it is
 *                released when the job succeeds, fails or is put back, and
 *                with a dead worker's records (the dead-worker recovery,
 *                after stuckWorkerTimeout).
 *   rate         at most N jobs of the target start in any window of
 *                DURATION: an exact sliding window over the start times
 *                (SQLite: this machine's clock; Redis: the server's).
 * All calls are thread-safe (each checks out a connection of its own).
 */

/* Pauses queue: no TaskProcessor takes a job from it, until
 * stellar_resume() or, if for_ms > 0, until for_ms from now (it then
 * resumes by itself; no process needs to run at that time). Jobs may still
 * be enqueued to it and due delayed jobs still move into it; running jobs
 * finish. for_ms 0: until resumed; < 0: EINVAL. */
STELLAR_API int stellar_pause(stellar *h, const char *queue, int64_t for_ms,
                              stellar_error *e);
/* Lifts queue's pause, waking idle processors. *was_paused (may be NULL):
 * whether it was paused. */
STELLAR_API int stellar_resume(stellar *h, const char *queue, bool *was_paused,
                               stellar_error *e);
/* {"<queue>": until_ms or null (until resumed)} for every paused queue. */
STELLAR_API int stellar_pauses(stellar *h, json_t **out, stellar_error *e);

/* A limit: 0 in a field means none. rate > 0 needs window_ms > 0. */
typedef struct stellar_limit {
    int64_t concurrency; /* jobs running at once */
    int64_t rate;        /* starts per window_ms */
    int64_t window_ms;
} stellar_limit;

/* Sets (replaces) target's limit. EINVAL, naming the problem, for a bad
 * target or a limit with neither field set. */
STELLAR_API int stellar_limit_set(stellar *h, const char *target,
                                  const stellar_limit *limit, stellar_error *e);
/* Removes target's limit (its permits and start times go with it).
 * *removed (may be NULL): 0 or 1. */
STELLAR_API int stellar_limit_clear(stellar *h, const char *target,
                                    int64_t *removed, stellar_error *e);
/* Every limit with its use: {"<target>": {"concurrency": n or null,
 * "rate": "N/DURATION" or null, "running": permits held, "started": starts
 * in the current window}}. */
STELLAR_API int stellar_limits(stellar *h, json_t **out, stellar_error *e);

/* Checks a TARGET ("queue:NAME" or "task:NAME"): STELLAR_OK or EINVAL with
 * a message. */
STELLAR_API int stellar_target_check(const char *target, stellar_error *e);
/* Parses a rate "N/DURATION" (N >= 1; DURATION a positive whole number
 * with ms, s, m or h: "100/1m"). EINVAL with a message if it is not one. */
STELLAR_API int stellar_rate_parse(const char *text, int64_t *n,
                                   int64_t *window_ms, stellar_error *e);
/* Writes a rate as stellar_rate_parse reads it, in the largest unit that
 * divides window_ms ("100/1m"); out has room for cap bytes. */
STELLAR_API void stellar_rate_format(int64_t n, int64_t window_ms, char *out,
                                     size_t cap);

/* --------------------------------------------------------------- HTTP --- */
/*
 * The HTTP server: a JSON API under /api/, Prometheus metrics at /metrics and
 * the web dashboard at /, served from threads of its own (libmicrohttpd)
 * over a handle. Present when libstellar was built with STELLAR_HTTP (the
 * default); STELLAR_HAVE_HTTP is then defined for code built against it.
 *
 * API (JSON; the documents the C API hands out, as `stellar ... --json`
 * prints them). Errors are {"error": text, "code": name}: a STELLAR_E*
 * name with 400 (EINVAL), 404 (ENOTFOUND, ENOTASK), 409 (ESTATE, EEXISTS),
 * 503 (EBUSY, ECONNECT) or 500; or EAUTH (401), ECSRF, EHOST and
 * EREADONLY (403), EMETHOD (405, with Allow), ETOOBIG (413), EBACKOFF
 * (429, with Retry-After). Queue latency (latency_ms, the age of the
 * oldest job, as stellar_latency()) is real on SQLite and null on Redis,
 * where a Resque payload carries no enqueue time.
 *   GET  /api/queues                  {"<q>": {"length": n, "latency_ms",
 *                                     "paused", "paused_until"}}
 *   GET  /api/queues/<q>              {"queue", "length"}
 *   GET  /api/queues/<q>/jobs?start=&stop=   stellar_queued()
 *   DELETE /api/queues/<q>            stellar_del_queue()
 *   DELETE /api/queues/<q>/jobs       body {task, params, count}: stellar_del()
 *   GET  /api/delayed?offset=&limit=  stellar_all_delayed(), a page of it:
 *        {"total": jobs, "offset", "limit", "delayed": {"<ms>": [job]}},
 *        jobs in time order; limit 100 by default, at most 1000
 *   GET|DELETE /api/delayed/<ms>      stellar_delayed_at(), _del_delayed_at()
 *   DELETE /api/delayed               stellar_del_all_delayed()
 *   GET  /api/timestamps, workers, working, stats, details, locks
 *   GET  /api/workers/<name>          stellar_working_on()
 *   POST /api/workers/clean           body {age, requeue}
 *   GET  /api/failed?start=&stop=, /api/failed/count, /api/failed/<i>
 *   POST /api/failed/<i>/retry, DELETE /api/failed/<i>   (body may carry
 *        {"entry": <the entry shown>}: 409 if index i holds another job now)
 *   POST /api/failed/retry-all, DELETE /api/failed
 *   DELETE /api/locks/<name>
 *   GET  /api/tasks                   stellar_tasks_json(), periodic ones
 *                                     with "scheduled_at": [ms...]
 *   POST /api/enqueue                 body {task, params?, queue?, at?|in?}
 *   POST|DELETE /api/recurrent/<task> start / stop a periodic task
 *   GET  /api/schedules               stellar_schedules()
 *   POST /api/schedules/<name>/pause, /api/schedules/<name>/resume
 *                                     stellar_schedule_pause()
 *   POST /api/queues/<q>/pause        body {} or {"for": ms}: stellar_pause()
 *   POST /api/queues/<q>/resume       stellar_resume()
 *   GET  /api/limits                  stellar_limits()
 *   GET|PUT|DELETE /api/limits/<target>   one limit; PUT body
 *        {"concurrency": n, "rate": "N/DURATION"} (either or both)
 * Path segments are percent-decoded one by one ("queues/a%2Fb").
 *
 * Security (docs/http.md lists every check): reads are GET/HEAD; changes
 * are POST/PUT/DELETE and need the header "X-Stellar-CSRF: 1" (and an Origin,
 * if sent, equal to the server's own). With a token or a read token set,
 * every request must carry one: "Authorization: Bearer T", or the session
 * cookie that opening the dashboard's page as /?token=T sets (a random id
 * held by this server for 12 h, never the token; HttpOnly,
 * SameSite=Strict). "?token=" is taken by that page only. The read token
 * cannot change anything (403 EREADONLY). A wrong token is logged (WARN)
 * with the client address, which then gets 429 EBACKOFF for 250 ms,
 * doubling per failure up to 30 s. Each change is logged at INFO ("http
 * audit: ..." with status, token kind and address); tokens appear only as
 * "***". Without a token (loopback only), requests must name a loopback
 * Host, against DNS rebinding. Slow clients: see per_ip_connections,
 * max_connections and head_timeout_ms below.
 */
typedef struct stellar_http stellar_http;

/* Every field zero means the default given beside it. */
typedef struct stellar_http_options {
    /* "host:port", "[v6]:port", or ":port" / "port" (127.0.0.1); port 0
     * picks a free one (see stellar_http_port()); NULL: "127.0.0.1:8080". */
    const char *listen;
    /* The bearer token every request must carry (borrowed; copied). NULL
     * or "": none, which is refused (EINVAL) unless `listen` is loopback. */
    const char *token;
    size_t max_body; /* largest request body in bytes (413 past it);
                        0: 64 KiB */
    /* A token that may only read (borrowed; copied): GET and HEAD of the
     * dashboard, /api/ and /metrics; a POST, PUT or DELETE answers 403
     * EREADONLY. NULL or "": none. It must differ from token. With only a
     * read token set, nothing can be changed over HTTP. Off loopback, each
     * token set must be at least 16 characters (else EINVAL). */
    const char *read_token;
    /* Connections one client address may hold at once; more are closed
     * as they are accepted. 0: 16. */
    unsigned per_ip_connections;
    /* Connections held in all (then new ones wait in the listen queue).
     * 0: 256; at least 4, and not below per_ip_connections (EINVAL). */
    unsigned max_connections;
    /* Milliseconds a client has to send a whole request head (request line
     * and headers), counted from the connection's accept, or from the end
     * of the previous request on a kept-alive connection; not reset by
     * each byte that arrives. Past it the connection gets 408 and is
     * closed. 0: 5000. */
    unsigned head_timeout_ms;
} stellar_http_options;

/*
 * Starts serving h over HTTP in background threads and returns at once.
 * o may be NULL (all defaults). On success *out is the server; on failure
 * *out is NULL: EINVAL (a bad listen string, a non-loopback address with
 * no token or a token under 16 characters, equal tokens, limits out of
 * range), EIO (the address cannot be bound: e->msg says why). h must
 * outlive the server: stop the server before stellar_close(h). Requests use
 * only the thread-safe public API of h, concurrently with its processors.
 */
STELLAR_API int stellar_http_start(stellar *h, const stellar_http_options *o,
                                   stellar_http **out, stellar_error *e);

/* The TCP port the server listens on (useful after asking for port 0). */
STELLAR_API int stellar_http_port(const stellar_http *s);

/* Stops serving: closes the listening socket, waits for the requests being
 * answered, then frees s. NULL is ok. Not from inside a request. */
STELLAR_API void stellar_http_stop(stellar_http *s);

#ifdef __cplusplus
}
#endif
#endif /* STELLAR_H */
