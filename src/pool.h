/*
 * pool.h: what the files of the pool share, and nothing else includes.
 *
 * The pool is split by concern, each file with one reason to change:
 *
 *   pool.c     start and stop of the pool: threads, registration, the stop
 *              deadline (running jobs put back), the wake-ups
 *   worker.c   one TaskProcessor thread: reserve, idle wait, the requeue
 *              handshake; the heartbeat thread and the locks it renews
 *   perform.c  one reserved job: hooks, run (thread or child), the outcome
 *              reserve() acks or fails, suspects, a job put back for lack
 *              of memory
 *   isolate.c  fork isolation: one run in a child process, with a hard
 *              timeout
 *   taskapi.c  what a task sees: stellar_api_*, stellar_fail,
 *              stellar_next_done, stellar_log, stellar_should_stop, and the
 *              call of its run (sync or async)
 *
 * The pool's interface to the rest of the library (start, stop, wake) is
 * in core.h.
 *
 * Lock order: st_pool.lock, then st_proc.lock. User code (tasks, the log
 * callback) never runs under either, and no backend call is made under
 * either.
 */
#ifndef ST_POOL_H
#define ST_POOL_H

#include "core.h"
#include "scheduler.h"

typedef struct st_proc st_proc;

/* What a running task is handed (taskapi.c); lives on the stack of the
 * processor running it. */
struct stellar_api {
    stellar *h;
    st_proc *proc;
    const char *task, *queue;
    int64_t deadline_ms; /* monotonic; 0: no timeout */
    bool in_child;       /* running in a forked child (fork isolation) */
    stellar *child_h;    /* the child's own handle, opened on demand */
};

/* One TaskProcessor (worker.c). */
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
    bool abandoned;         /* its running job was put back: don't ack it */
    bool exited;            /* the thread has left its loop */
    char *job_queue, *job_payload; /* the running job; stable while
                                      requeueing */
    char *hold_key, *hold_value;   /* st_proc_hold() */
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

/* ------------------------------------------------------------ worker.c --- */

/* The thread of one processor (arg: its st_proc). */
void *st_proc_main(void *arg);
/* The heartbeat thread of a pool (arg: the st_pool): pings for every
 * processor and renews their holds until aux_stop. */
void *st_heartbeat_main(void *arg);

/*
 * The requeue handshake: puts w's running job back at the head of its
 * queue, on *conn (opened from the handle's URL if *conn is NULL; the
 * caller closes it); e is not NULL. Two threads may try at once, the processor
 * itself (out of memory) and a stop at its deadline: the first claims the job
 * by setting `requeueing`, makes the backend call outside w->lock, then settles
 * (`abandoned` if it went back, so the processor does not ack it) and wakes
 * whoever waits on `settled`. A job is thus either put back once or acked by
 * its processor, never both.
 */
enum st_requeue {
    ST_REQUEUE_NONE,   /* nothing to claim: no job running, or it is (being)
                          put back by another thread */
    ST_REQUEUE_DONE,   /* this call put it back */
    ST_REQUEUE_FAILED, /* this call claimed it and failed (*e filled) */
};
/* why: logged with the outcome ("<worker>: <why>: its job is back at the
 * head of <queue>"), or NULL for the caller to log. */
enum st_requeue st_proc_requeue(st_proc *w, st_backend **conn, const char *why,
                                stellar_error *e);
/* Waits until no requeue of w's job is under way and returns whether the
 * job was put back. Call with w->lock held. */
bool st_proc_settle(st_proc *w);

/* ----------------------------------------------------------- perform.c --- */

/* Runs one reserved job with its plugin hooks; fills *done (and
 * *failed_entry, which *done points into). Returns the task if it is
 * periodic and ran (the caller re-enqueues it), else NULL. */
const st_task *st_perform(st_proc *w, const st_reserved *job, st_done *done,
                          char **failed_entry);
/* The run of w's job has ended: clears its suspect mark, if it was one. */
void st_suspect_done(st_proc *w);

/* ----------------------------------------------------------- isolate.c --- */

/* Runs t in a child process, waiting for it up to api->deadline_ms (then
 * SIGTERM, and SIGKILL 2 s later). Returns the error message (new) or NULL
 * on success; a crash, a non-zero exit or the timeout is an error. */
char *st_isolate_run(stellar_api *api, const st_task *t, json_t *args);

/* ----------------------------------------------------------- taskapi.c --- */

/* Calls t's run with the params args carry and waits for it to finish
 * (returned, or stellar_next_done() for STELLAR_PENDING). Returns the
 * error message (new) or NULL on success. */
char *st_task_call(stellar_api *api, const st_task *t, json_t *args);

#endif /* ST_POOL_H */
