/*
 * backend.h: the storage contract. Everything above this file (tasks.c,
 * recover.c, worker.c, pool.c, scheduler.c) speaks only these operations; a
 * backend is done when it passes the shared conformance suite
 * (tests/conformance/).
 *
 * The logical data model is Resque's, as node-resque 9 lays it out in Redis
 * (reference: shared/reference/resque-protocol.md), so that the Redis backend
 * can be a byte-for-byte member of the Resque world and the SQLite backend
 * gives the same answers:
 *
 *   queues      a set of queue names; each queue a FIFO list of payloads
 *   delayed     timestamp -> FIFO list of payloads (Redis keeps seconds,
 *               SQLite milliseconds; the API always speaks milliseconds)
 *   workers     name -> queues string, started, last ping, working-on record
 *   stats       counter name -> integer ("processed", "failed:<worker>", ...)
 *   failed      a list of failed-job entries (Resque JSON text, §2.6)
 *   kv          key -> string value with an optional expiry: locks
 *               ("lock:...", "workerslock:..."), the scheduler leader lock,
 *               retry counters. Keys are given without namespace.
 *
 * Payloads are opaque byte strings here: the caller builds them (job.c) and
 * matching (del, delDelayed, removeFailed) compares whole strings, as Redis's
 * LREM does.
 *
 * A st_backend is one connection: not thread-safe; each thread opens its own.
 * Every operation that changes state is atomic (one Lua script or MULTI on
 * Redis, one transaction on SQLite). Every operation returns STELLAR_OK or a
 * negative code with e filled. Strings and json_t handed out are new.
 */
#ifndef ST_BACKEND_H
#define ST_BACKEND_H

#include "stellar.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct st_backend st_backend;
typedef struct st_backend_ops st_backend_ops;

/* Every backend's connection starts with this. */
struct st_backend {
    const st_backend_ops *ops;
};

/* One TaskProcessor, as the backend records it. */
typedef struct st_worker_id {
    const char *name;          /* "<host>:<pid>+<n>": at most one colon */
    const char *queues_str;    /* queues joined with ",", or "*" */
    const char *const *queues; /* priority order, NULL-terminated; NULL or
                                  {"*"}: every queue, in name order */
} st_worker_id;

/* How the job a worker held has ended; applied atomically with the next
 * reserve (or alone, by st_backend_finish). */
enum st_outcome {
    ST_DONE_NONE = 0, /* nothing held */
    ST_DONE_OK,       /* INCR processed, processed:<worker>; clear working-on */
    ST_DONE_FAILED,   /* INCR failed, failed:<worker>; RPUSH failed <entry>;
                         clear working-on */
    ST_DONE_DROPPED,  /* no counters (vetoed run); clear working-on */
    ST_DONE_REQUEUE,  /* put the held payload back at the head of its queue;
                         no counters; clear working-on */
};

typedef struct st_done {
    enum st_outcome outcome;
    const char *failed_entry; /* ST_DONE_FAILED: the failed JSON (§2.6) */
    const char *queue;        /* ST_DONE_REQUEUE: where the payload goes */
    const char *payload;      /* ST_DONE_REQUEUE: the raw payload */
} st_done;

/* A reserved job: new strings, free with st_reserved_clear(). */
typedef struct st_reserved {
    char *queue;
    char *payload; /* raw bytes as stored, NUL-terminated */
    size_t payload_len;
    bool suspect; /* the kv key ST_CRASHES_PREFIX<payload> was live (set,
                     not expired) when the job was popped: a dead worker
                     held it (core.h, Suspects) */
} st_reserved;

/* The kv key of a job's crash counter is this prefix and its raw payload
 * (without namespace, as every kv key here); the recovery of a dead
 * worker's job writes it before the job goes back, and reserve reads it. */
#define ST_CRASHES_PREFIX "stellar:crashes:"

/* What open() gets besides the URL. */
typedef struct st_backend_cfg {
    int64_t busy_timeout_ms;    /* SQLite: wait this long for a lock; 0: 5000 */
    int64_t command_timeout_ms; /* Redis: a reply that takes longer fails
                                   the call (ECONNECT, saying so) and drops
                                   the link; 0: 30000 */
} st_backend_cfg;

/* A failed cleanup of a dead worker: what to do with its in-flight job. */
enum st_clean_mode {
    ST_CLEAN_FAIL = 0, /* push `failed_entry` (built by the caller) */
    ST_CLEAN_REQUEUE,  /* push the payload back to its queue (head) */
};

struct st_backend_ops {
    const char *scheme; /* URL scheme, "sqlite", "redis", "redis+unix" */

    /* Opens one connection on url (the whole URL, scheme included). */
    int (*open)(st_backend **out, const char *url, const st_backend_cfg *cfg,
                stellar_error *e);
    void (*close)(st_backend *b);

    /* ------------------------------------------------------ Queues --- */

    /* Appends n payloads to queue (and adds queue to the queue set), all in
     * one atomic step. */
    int (*push)(st_backend *b, const char *queue, const char *const *payloads,
                size_t n, stellar_error *e);

    /* Adds payload to the delayed set at at_ms (queue: the payload's own,
     * which the Redis layout does not store separately) (Redis: second
     * round(at_ms/1000), as node-resque). If the same payload is already
     * delayed at that same timestamp: EEXISTS and nothing written, or, with
     * `later`, it goes to the first later timestamp (SQLite: ms; Redis:
     * second) that does not hold it, found and taken in the same atomic
     * step, so any number of writers each store their copy. */
    int (*push_at)(st_backend *b, int64_t at_ms, const char *queue,
                   const char *payload, bool later, stellar_error *e);

    int (*queues)(st_backend *b, json_t **names, stellar_error *e);
    int (*length)(st_backend *b, const char *queue, int64_t *n,
                  stellar_error *e);
    /* Raw payload strings from start to stop (LRANGE semantics). */
    int (*queued)(st_backend *b, const char *queue, int64_t start, int64_t stop,
                  json_t **payloads, stellar_error *e);
    /* Optional (NULL: the backend cannot tell): when queue's oldest job
     * entered it (epoch ms; a promoted job: when it was due), or -1 if the
     * queue is empty or that job's time is unknown. */
    int (*oldest)(st_backend *b, const char *queue, int64_t *enqueued_ms,
                  stellar_error *e);
    /* Removes up to count (0: all) entries equal to payload, from the head
     * (count < 0: from the tail, as LREM). */
    int (*del)(st_backend *b, const char *queue, const char *payload,
               int64_t count, int64_t *removed, stellar_error *e);
    /* Removes the queue and its jobs. *removed: 1 if it existed. */
    int (*del_queue)(st_backend *b, const char *queue, int64_t *removed,
                     stellar_error *e);

    /* ----------------------------------------------------- Delayed --- */

    /* Removes every delayed entry equal to payload; *ts_ms: JSON array of
     * the timestamps (ms) it was removed from. */
    int (*del_delayed)(st_backend *b, const char *payload, json_t **ts_ms,
                       stellar_error *e);
    /* Timestamps (ms, ascending) at which payload is delayed. */
    int (*scheduled_at)(st_backend *b, const char *payload, json_t **ts_ms,
                        stellar_error *e);
    /* Every timestamp (ms, ascending) holding delayed jobs. */
    int (*timestamps)(st_backend *b, json_t **ts_ms, stellar_error *e);
    /* Raw payloads delayed at ts_ms (Redis: its second). */
    int (*delayed_at)(st_backend *b, int64_t ts_ms, json_t **payloads,
                      stellar_error *e);
    /* Removes every delayed job at ts_ms (all of them if ts_ms < 0). */
    int (*del_delayed_at)(st_backend *b, int64_t ts_ms, int64_t *removed,
                          stellar_error *e);
    /* Removes every copy of payload from queue and from the delayed set,
     * then pushes one copy, all in one atomic step: at the tail of queue if
     * at_ms is ST_REPLACE_NOW, delayed at at_ms if at_ms > 0 (as push_at),
     * none if ST_REPLACE_NONE. *removed: how many copies it removed. The
     * (re)start, re-enqueue and stop of a periodic task: whatever runs at
     * the same moment, one copy at most is left. */
    int (*replace)(st_backend *b, const char *queue, const char *payload,
                   int64_t at_ms, int64_t *removed, stellar_error *e);
    /* Moves up to max due delayed jobs (at <= now_ms) to their queues, in
     * time order, FIFO within a timestamp, each exactly once even with
     * several schedulers. *moved: how many; *next_ms: the earliest timestamp
     * still delayed, or -1. */
    int (*promote_due)(st_backend *b, int64_t now_ms, int64_t max,
                       int64_t *moved, int64_t *next_ms, stellar_error *e);

    /* ----------------------------------------------------- Workers --- */

    /* Registers w (workers set, started, first ping). */
    int (*worker_register)(st_backend *b, const st_worker_id *w, int64_t now_ms,
                           stellar_error *e);
    /* Removes w's records (set member, ping, started, working-on, its
     * per-worker counters). Does not touch a held job: finish it first. */
    int (*worker_unregister)(st_backend *b, const st_worker_id *w,
                             stellar_error *e);
    /* Refreshes the ping records of n workers in one round trip. */
    int (*ping)(st_backend *b, const st_worker_id *const *ws, size_t n,
                int64_t now_ms, stellar_error *e);

    /*
     * The hot path, one atomic step: applies done for w's held job (if
     * done->outcome != ST_DONE_NONE), then pops the first job of w's queues
     * in priority order and records it as w's working-on (run_at = now_ms).
     * STELLAR_OK with *out filled, or ENOTFOUND if every queue is empty
     * (done is applied either way). out->suspect is read in the same
     * atomic step as the pop: no extra round trip, no race with recovery.
     * out NULL: only apply done; release a job with ST_DONE_REQUEUE that
     * way, or the pop may return it at once.
     */
    int (*reserve)(st_backend *b, const st_worker_id *w, const st_done *done,
                   int64_t now_ms, st_reserved *out, stellar_error *e);

    /* {"<name>": {"queues": str, "started": ms or null, "ping": ms or null,
     *  "working_on": {"run_at": ms, "queue": q, "payload": raw string} or
     *  null}} for every registered worker (and for ping records without a
     *  registration, so ghosts can be cleaned). */
    int (*workers)(st_backend *b, json_t **out, stellar_error *e);

    /* Removes worker `name` entirely (as worker_unregister, by name), and
     * its in-flight job: to failed (failed_entry, INCR failed) or back to
     * the head of its queue, per mode. failed_entry may be NULL: the
     * backend then builds node-resque's forceCleanWorker entry
     * (st_timeout_entry, job.c, with killer NULL). *payload: the
     * raw in-flight payload (new string) or NULL if it held none. ENOTFOUND if
     * no such worker. */
    int (*clean_worker)(st_backend *b, const char *name,
                        enum st_clean_mode mode, const char *failed_entry,
                        char **payload, stellar_error *e);

    /* ------------------------------------------------ Stats, failed --- */

    /* {"processed": n, "failed": n, "processed:<w>": n, ...} (integers). */
    int (*stats)(st_backend *b, json_t **out, stellar_error *e);
    /* Adds by to counter key (e.g. "processed", "failed:<worker>"). */
    int (*stat_incr)(st_backend *b, const char *key, int64_t by,
                     stellar_error *e);

    int (*failed_count)(st_backend *b, int64_t *n, stellar_error *e);
    /* Raw failed entries from start to stop (LRANGE semantics). */
    int (*failed_range)(st_backend *b, int64_t start, int64_t stop,
                        json_t **entries, stellar_error *e);
    /* Removes one failed entry equal to entry (raw text) and, if requeue
     * is not NULL, pushes requeue->payload to requeue->queue, atomically.
     * *removed: 0 or 1 (nothing is pushed when 0). */
    int (*failed_remove)(st_backend *b, const char *entry,
                         const st_done *requeue, int64_t *removed,
                         stellar_error *e);

    /* ---------------------------------------------------------- KV --- */

    /* Sets key = value with ttl_ms (0: none). nx: only if absent. *set:
     * whether it was written. */
    int (*kv_set)(st_backend *b, const char *key, const char *value,
                  int64_t ttl_ms, bool nx, bool *set, stellar_error *e);
    /* *value: new string, or NULL if absent or expired. */
    int (*kv_get)(st_backend *b, const char *key, char **value,
                  stellar_error *e);
    /* Deletes key; if value is not NULL, only when it holds value (a
     * compare-and-delete, for releasing one's own lock). *removed 0/1. */
    int (*kv_del)(st_backend *b, const char *key, const char *value,
                  int64_t *removed, stellar_error *e);
    /* Sets the expiry of key if it holds value (NULL: any value); ttl_ms
     * <= 0 removes the expiry. *set 0/1. */
    int (*kv_expire)(st_backend *b, const char *key, const char *value,
                     int64_t ttl_ms, bool *set, stellar_error *e);
    /* INCR key by `by` (missing counts as 0), setting ttl_ms if > 0. */
    int (*kv_incr)(st_backend *b, const char *key, int64_t by, int64_t ttl_ms,
                   int64_t *out, stellar_error *e);
    /* {"<key>": {"value": str, "expires": ms or null}} for every live key
     * starting with prefix; expires is absolute (epoch ms). */
    int (*kv_scan)(st_backend *b, const char *prefix, json_t **out,
                   stellar_error *e);

    /* --------------------------------------------------- Schedules --- */
    /* A schedule's record, by name (schedule.c): the last tick that queued
     * its job, whether it is paused (for every process), and when it was
     * first seen. Kept apart from node-resque's keys (Redis: hash
     * stellar:schedule:<name>, set stellar:schedules). */

    /* Claims one tick, in one atomic step: if schedule name is not paused
     * and its last tick is unset or < tick_ms, sets it to tick_ms and
     * appends payload to queue (as push, with the wake-up). *claimed:
     * whether it did. Any number of schedulers may try the same tick: one
     * wins. Safe to send again after a lost reply (the second finds the
     * tick taken: the job is stored once). */
    int (*sched_claim)(st_backend *b, const char *name, int64_t tick_ms,
                       const char *queue, const char *payload, bool *claimed,
                       stellar_error *e);
    /* Creates name's record if missing (not paused, no last tick); paused
     * >= 0 sets the paused flag to it (0 or 1). seen_ms (-1: none) with
     * paused -1 (a sync) is the first sight: sets seen if it is unset.
     * With paused 0 (a resume) it is the resume's time: if the schedule
     * was paused and has been seen (seen or last set), seen becomes the
     * later of the two, in the same atomic step, so that the ticks of the
     * pause are never counted as missed. Otherwise seen is left as is. */
    int (*sched_set)(st_backend *b, const char *name, int paused,
                     int64_t seen_ms, stellar_error *e);
    /* Every record: {"<name>": {"last": ms or null, "paused": bool,
     * "seen": ms or null}}. */
    int (*sched_list)(st_backend *b, json_t **out, stellar_error *e);
    /* ---------------------------------------------------- Controls --- */

    /*
     * Queue control (issue 15; the rules are control.c's). Stored in the
     * backend so that every process sharing it obeys them; reserve (and
     * wait) read them in the same atomic step as the pop:
     *
     *   pause       queue -> until (epoch ms; 0: until resumed), by the
     *               backend's clock, the one its check reads (Redis: the
     *               server's). reserve skips a queue paused at its call
     *               time (an expired pause is absent), leaving its jobs
     *               where they are.
     *   limit       target ("queue:NAME" or "task:NAME") -> concurrency
     *               (0: none), rate per window_ms (0: none). reserve skips a
     *               queue whose head job would exceed a limit of its queue
     *               or its task. Concurrency counts the jobs of the target
     *               held by workers (a permit, released in the same step
     *               that clears the working-on record: done, clean_worker);
     *               rate is a sliding window: at most rate starts in any
     *               window_ms, by the backend's clock (Redis: the server's).
     *
     * Neither touches node-resque's keys. With no pause and no limit,
     * reserve costs one cheap look more.
     */
    /* Pauses queue until resumed (for_ms 0) or for for_ms > 0 from now by
     * the backend's clock (until = its now + for_ms). */
    int (*pause)(st_backend *b, const char *queue, int64_t for_ms,
                 stellar_error *e);
    /* Lifts queue's pause and wakes its waiting workers. *removed: 1 if a
     * live pause was there. */
    int (*resume)(st_backend *b, const char *queue, int64_t *removed,
                  stellar_error *e);
    /* Sets (replaces) target's limit; concurrency and rate >= 0, window_ms
     * > 0 when rate > 0. */
    int (*limit_set)(st_backend *b, const char *target, int64_t concurrency,
                     int64_t rate, int64_t window_ms, stellar_error *e);
    /* Removes target's limit, its permits and its start times; wakes
     * waiting workers. *removed: 0 or 1. */
    int (*limit_del)(st_backend *b, const char *target, int64_t *removed,
                     stellar_error *e);
    /* {"paused": {"<queue>": until_ms or 0}, "limits": {"<target>":
     *  {"concurrency": n, "rate": n, "window_ms": ms, "running": n,
     *  "started": n}}}: live pauses at now_ms, and each limit with its use
     * (running: permits held; started: starts in the current window). A
     * store that predates controls (a read-only SQLite file of an older
     * schema) answers with both empty. */
    int (*controls)(st_backend *b, int64_t now_ms, json_t **out,
                    stellar_error *e);

    /* -------------------------------------------------------- Wake --- */

    /* Optional (may be NULL): blocks up to timeout_ms or until work may
     * have arrived on w's queues; STELLAR_OK either way (the caller just
     * tries reserve again). Without it the caller sleeps poll_ms. */
    int (*wait)(st_backend *b, const st_worker_id *w, int64_t timeout_ms,
                stellar_error *e);
};

/* replace()'s at_ms besides a timestamp. */
#define ST_REPLACE_NOW  0
#define ST_REPLACE_NONE (-1)

/* The backends compiled in, looked up by URL scheme. */
const st_backend_ops *st_backend_find(const char *url);
int st_backend_open(st_backend **out, const char *url,
                    const st_backend_cfg *cfg, stellar_error *e);
void st_backend_close(st_backend *b);
void st_reserved_clear(st_reserved *r);

extern const st_backend_ops st_sqlite_ops;
#ifdef STELLAR_HAVE_REDIS
extern const st_backend_ops st_redis_ops;
#endif

#endif /* ST_BACKEND_H */
