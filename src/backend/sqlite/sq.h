/*
 * sq.h: what the files of the SQLite backend share with each other, and
 * nothing more; nothing here leaves src/backend/sqlite/.
 *
 * The backend is one st_backend_ops table over one kind of connection,
 * sq_conn. Its files, in reading order:
 *
 *   sqlite.c    the design; errors, the writer lock, statements, sq_txn
 *               (every transaction), JSON and list helpers; the ops table
 *   open.c      opening a file: the modes tried, the read-only fallback,
 *               WAL and its settings; close
 *   schema.c    whose a file is (application_id), the schema version and
 *               its migrations
 *   queues.c    queues and the delayed set
 *   workers.c   workers, reserve, dead-worker clean-up, and wait
 *   control.c   pauses and limits (issue 15), and the check reserve
 *               makes before it takes a queue's head
 *   walwatch.c  the wake-up on a write to the WAL: inotify on Linux, a
 *               timed sleep elsewhere (a platform seam)
 *   stats.c     the stats counters and the failed list
 *   kv.c        keys with an expiry: locks and counters
 *
 * Shared names carry sq_ (statement ids S_); file-local ones are static.
 */
#ifndef ST_SQ_H
#define ST_SQ_H

#include "backend.h"
#include "internal.h"

#include <sqlite3.h>

#include <stdbool.h>
#include <stdint.h>

#define SQ_STR_(x) #x
#define SQ_XSTR(x) SQ_STR_(x)

/* The statement's time, epoch ms (SQLite's 'now' has ms precision). */
#define SQ_NOW_MS "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

/* --------------------------------------------------------- Statements --- */

/* Every statement a connection may run, prepared on first use. Parameters
 * are numbered (?1, ?2...) in the order the bind format gives them. */
#define SQ_STMTS(X)                                                            \
    X(BEGIN_W, "BEGIN IMMEDIATE")                                              \
    X(BEGIN_R, "BEGIN")                                                        \
    X(COMMIT, "COMMIT")                                                        \
    X(ROLLBACK, "ROLLBACK")                                                    \
    X(DATA_VERSION, "PRAGMA data_version")                                     \
    /* Queues */                                                               \
    X(QUEUE_ADD, "INSERT OR IGNORE INTO queues(name) VALUES(?1)")              \
    X(QUEUES, "SELECT name FROM queues ORDER BY name")                         \
    X(QUEUE_DEL, "DELETE FROM queues WHERE name = ?1")                         \
    X(JOB_PUSH, "INSERT INTO jobs(queue, payload, enqueued_ms)"                \
                " VALUES(?1, ?2, " SQ_NOW_MS ")")                              \
    /* A job put back at the head waited at least as long as the head it       \
     * goes before (FIFO): it takes that head's time. */                       \
    X(JOB_PUSH_HEAD,                                                           \
      "INSERT INTO jobs(id, queue, payload, enqueued_ms)"                      \
      " VALUES((SELECT coalesce(min(id), 1) - 1 FROM jobs),"                   \
      " ?1, ?2, coalesce((SELECT enqueued_ms FROM jobs"                        \
      " WHERE queue = ?1 ORDER BY id LIMIT 1), " SQ_NOW_MS "))")               \
    X(JOB_OLDEST,                                                              \
      "SELECT coalesce(enqueued_ms, -1) FROM jobs WHERE queue = ?1"            \
      " ORDER BY id LIMIT 1")                                                  \
    X(JOB_HEAD, "SELECT id, payload FROM jobs WHERE queue = ?1"                \
                " ORDER BY id LIMIT 1")                                        \
    X(JOB_HEAD_ANY, "SELECT id, payload, queue FROM jobs"                      \
                    " ORDER BY queue, id LIMIT 1")                             \
    X(JOB_DEL_ID, "DELETE FROM jobs WHERE id = ?1")                            \
    X(JOB_COUNT, "SELECT count(*) FROM jobs WHERE queue = ?1")                 \
    X(JOB_RANGE, "SELECT payload FROM jobs WHERE queue = ?1"                   \
                 " ORDER BY id LIMIT ?3 OFFSET ?2")                            \
    X(JOB_DEL, "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"             \
               " WHERE queue = ?1 AND payload = ?2 ORDER BY id LIMIT ?3)")     \
    X(JOB_DEL_TAIL, "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"        \
                    " WHERE queue = ?1 AND payload = ?2 ORDER BY id DESC"      \
                    " LIMIT ?3)")                                              \
    X(JOB_DEL_QUEUE, "DELETE FROM jobs WHERE queue = ?1")                      \
    /* Delayed */                                                              \
    X(DELAYED_FIND, "SELECT 1 FROM delayed WHERE payload = ?1"                 \
                    " AND at_ms = ?2 LIMIT 1")                                 \
    X(DELAYED_ADD,                                                             \
      "INSERT INTO delayed(at_ms, queue, payload) VALUES(?1, ?2, ?3)")         \
    X(DELAYED_TS_OF, "SELECT DISTINCT at_ms FROM delayed WHERE payload = ?1"   \
                     " ORDER BY at_ms")                                        \
    X(DELAYED_DEL_PAYLOAD, "DELETE FROM delayed WHERE payload = ?1")           \
    X(DELAYED_TS, "SELECT DISTINCT at_ms FROM delayed ORDER BY at_ms")         \
    X(DELAYED_AT, "SELECT payload FROM delayed WHERE at_ms = ?1 ORDER BY id")  \
    X(DELAYED_DEL_AT, "DELETE FROM delayed WHERE at_ms = ?1")                  \
    X(DELAYED_DEL_ALL, "DELETE FROM delayed")                                  \
    X(DELAYED_NEXT, "SELECT min(at_ms) FROM delayed")                          \
    /* The due set of promote_due is the same in all three statements: they    \
     * run in one write transaction, in a fixed order. */                      \
    X(PROMOTE_QUEUES,                                                          \
      "INSERT OR IGNORE INTO queues(name) SELECT DISTINCT queue FROM"          \
      " (SELECT queue FROM delayed WHERE at_ms <= ?1"                          \
      " ORDER BY at_ms, id LIMIT ?2)")                                         \
    /* A promoted job has waited since it was due. */                          \
    X(PROMOTE_JOBS,                                                            \
      "INSERT INTO jobs(queue, payload, enqueued_ms) SELECT queue, payload,"   \
      " at_ms FROM delayed WHERE at_ms <= ?1 ORDER BY at_ms, id LIMIT ?2")     \
    X(PROMOTE_DEL, "DELETE FROM delayed WHERE id IN (SELECT id FROM delayed"   \
                   " WHERE at_ms <= ?1 ORDER BY at_ms, id LIMIT ?2)")          \
    /* Workers */                                                              \
    X(WORKER_REG,                                                              \
      "INSERT INTO workers(name, queues, started_ms, ping_ms)"                 \
      " VALUES(?1, ?2, ?3, ?3) ON CONFLICT(name) DO UPDATE SET"                \
      " queues = excluded.queues, started_ms = excluded.started_ms,"           \
      " ping_ms = excluded.ping_ms")                                           \
    X(WORKER_PING, "INSERT INTO workers(name, queues, ping_ms)"                \
                   " VALUES(?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET"       \
                   " ping_ms = excluded.ping_ms")                              \
    X(WORKER_TAKE,                                                             \
      "INSERT INTO workers(name, queues, job_queue, job_payload, job_run_ms,"  \
      " job_class) VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO UPDATE" \
      " SET job_queue = excluded.job_queue,"                                   \
      " job_payload = excluded.job_payload,"                                   \
      " job_run_ms = excluded.job_run_ms, job_class = excluded.job_class")     \
    X(WORKER_CLEAR, "UPDATE workers SET job_queue = NULL, job_payload = NULL," \
                    " job_run_ms = NULL, job_class = NULL WHERE name = ?1")    \
    X(WORKER_JOB, "SELECT job_queue, job_payload FROM workers"                 \
                  " WHERE name = ?1")                                          \
    X(WORKER_DEL, "DELETE FROM workers WHERE name = ?1")                       \
    X(WORKER_STATS_DEL, "DELETE FROM stats WHERE key IN"                       \
                        " ('processed:' || ?1, 'failed:' || ?1)")              \
    X(WORKERS, "SELECT name, queues, started_ms, ping_ms, job_queue,"          \
               " job_payload, job_run_ms FROM workers ORDER BY name")          \
    /* Stats, failed */                                                        \
    X(STAT_INCR, "INSERT INTO stats(key, value) VALUES(?1, ?2)"                \
                 " ON CONFLICT(key) DO UPDATE SET value = value + "            \
                 "excluded.value")                                             \
    X(STAT_INCR2, "INSERT INTO stats(key, value)"                              \
                  " VALUES(?1, ?3), (?1 || ':' || ?2, ?3)"                     \
                  " ON CONFLICT(key) DO UPDATE SET value = value + "           \
                  "excluded.value")                                            \
    X(STATS, "SELECT key, value FROM stats ORDER BY key")                      \
    X(FAILED_ADD, "INSERT INTO failed(entry) VALUES(?1)")                      \
    X(FAILED_COUNT, "SELECT count(*) FROM failed")                             \
    X(FAILED_RANGE, "SELECT entry FROM failed ORDER BY id LIMIT ?2 OFFSET ?1") \
    X(FAILED_DEL, "DELETE FROM failed WHERE id = (SELECT id FROM failed"       \
                  " WHERE entry = ?1 ORDER BY id LIMIT 1)")                    \
    /* KV */                                                                   \
    X(KV_PURGE, "DELETE FROM kv WHERE expires_ms <= ?1")                       \
    X(KV_GET, "SELECT value, expires_ms FROM kv WHERE key = ?1"                \
              " AND (expires_ms IS NULL OR expires_ms > ?2)")                  \
    X(KV_PUT, "INSERT OR REPLACE INTO kv(key, value, expires_ms)"              \
              " VALUES(?1, ?2, nullif(?3, 0))")                                \
    X(KV_DEL, "DELETE FROM kv WHERE key = ?1 AND (?2 IS NULL OR value = ?2)")  \
    /* reserve: whether payload ?1 has a live crash counter (a suspect); one   \
     * lookup on the primary key, expiry as KV_GET reads it. */                \
    X(KV_SUSPECT, "SELECT 1 FROM kv WHERE key = '" ST_CRASHES_PREFIX "' || ?1" \
                  " AND (expires_ms IS NULL OR expires_ms > ?2)")              \
    X(KV_EXPIRE, "UPDATE kv SET expires_ms = nullif(?3, 0)"                    \
                 " WHERE key = ?1 AND (?2 IS NULL OR value = ?2)")             \
    /* Controls (control.c): ?1 a queue or a target. */                        \
    X(CTL_ANY, "SELECT EXISTS(SELECT 1 FROM pauses)"                           \
               " OR EXISTS(SELECT 1 FROM limits)")                             \
    /* Whether table ?1 exists (a read-only file of an older schema). */       \
    X(HAS_TABLE, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"     \
                 " AND name = ?1")                                             \
    X(PAUSE_SET, "INSERT OR REPLACE INTO pauses(queue, until_ms)"              \
                 " VALUES(?1, ?2)")                                            \
    X(PAUSE_GET, "SELECT until_ms FROM pauses WHERE queue = ?1")               \
    X(PAUSE_DEL, "DELETE FROM pauses WHERE queue = ?1")                        \
    X(PAUSES, "SELECT queue, until_ms FROM pauses"                             \
              " WHERE until_ms = 0 OR until_ms > ?1 ORDER BY queue")           \
    X(LIMIT_SET, "INSERT OR REPLACE INTO limits(target, concurrency, rate,"    \
                 " window_ms) VALUES(?1, ?2, ?3, ?4)")                         \
    X(LIMIT_GET, "SELECT concurrency, rate, window_ms FROM limits"             \
                 " WHERE target = ?1")                                         \
    X(LIMIT_DEL, "DELETE FROM limits WHERE target = ?1")                       \
    X(LIMITS, "SELECT target, concurrency, rate, window_ms FROM limits"        \
              " ORDER BY target")                                              \
    /* In use: the jobs of a target other workers than ?2 hold. */             \
    X(USE_QUEUE, "SELECT count(*) FROM workers WHERE job_queue = ?1"           \
                 " AND name <> ?2")                                            \
    X(USE_TASK, "SELECT count(*) FROM workers WHERE job_class = ?1"            \
                " AND name <> ?2")                                             \
    X(STARTS_COUNT, "SELECT count(*) FROM starts WHERE target = ?1"            \
                    " AND at_ms > ?2")                                         \
    X(STARTS_ADD, "INSERT INTO starts(target, at_ms) VALUES(?1, ?2)")          \
    X(STARTS_TRIM, "DELETE FROM starts WHERE target = ?1 AND at_ms <= ?2")     \
    X(STARTS_DEL, "DELETE FROM starts WHERE target = ?1")                      \
    X(JOB_QUEUES, "SELECT DISTINCT queue FROM jobs ORDER BY queue")            \
    X(KV_SCAN, "SELECT key, value, expires_ms FROM kv WHERE key >= ?1"         \
               " AND (?2 IS NULL OR key < ?2)"                                 \
               " AND (expires_ms IS NULL OR expires_ms > ?3) ORDER BY key")    \
    /* Schedules (sched.c): the claim is the compare-and-set of last_ms. */    \
    X(SCHED_CLAIM,                                                             \
      "INSERT INTO schedules(name, last_ms) VALUES(?1, ?2)"                    \
      " ON CONFLICT(name) DO UPDATE SET last_ms = excluded.last_ms"            \
      " WHERE paused = 0 AND (last_ms IS NULL OR last_ms < excluded.last_ms)") \
    /* ?2 -1 (a sync): ?3 is the first sight, kept once set. ?2 0 (a resume):  \
     * ?3 is its time, stored if the schedule was paused and has been seen,    \
     * so that its paused ticks are not missed. SET reads the old row. */      \
    X(SCHED_SET,                                                               \
      "INSERT INTO schedules(name, paused, seen_ms)"                           \
      " VALUES(?1, max(?2, 0), CASE WHEN ?2 < 0 THEN nullif(?3, -1) END)"      \
      " ON CONFLICT(name) DO UPDATE"                                           \
      " SET paused = CASE WHEN ?2 >= 0 THEN ?2 ELSE paused END,"               \
      " seen_ms = CASE WHEN ?2 < 0 THEN coalesce(seen_ms, nullif(?3, -1))"     \
      " WHEN ?2 = 0 AND ?3 >= 0 AND paused = 1"                                \
      " AND coalesce(seen_ms, last_ms) IS NOT NULL"                            \
      " THEN max(coalesce(seen_ms, ?3), ?3) ELSE seen_ms END")                 \
    X(SCHED_LIST, "SELECT name, last_ms, paused, seen_ms FROM schedules"       \
                  " ORDER BY name")

enum {
#define SQ_X_(name, sql) S_##name,
    SQ_STMTS(SQ_X_)
#undef SQ_X_
        S_COUNT
};

/* One connection. Used by one thread at a time. */
typedef struct sq_conn {
    st_backend base; /* must be first */
    sqlite3 *db;
    char *path;                  /* the file, for messages */
    const char *op;              /* the operation running, for messages */
    int64_t busy_ms;             /* how long a writer waits for the lock */
    int64_t busy_since_ms;       /* monotonic start of the current wait */
    sqlite3_stmt *stmt[S_COUNT]; /* prepared on first use */
    int watch_fd;        /* walwatch.c's watch: -2 not made yet, -1 none */
    char *watch_name;    /* walwatch.c: the WAL's name in the watched folder */
    struct sq_wlock *wl; /* this process's writer lock for the file, or NULL */
    bool wl_held;        /* wl is locked by this connection's transaction */
    const char *ro_why;  /* opened read-only, and why; NULL: read-write */
    bool in_begin;       /* BEGIN IMMEDIATE is running: waits count from */
    int64_t begin_ms;    /* ... this monotonic time (the writer lock's wait) */
} sq_conn;

/* ------------------------------------------------------------ sqlite.c --- */

int sq_fail(sq_conn *c, int rc, stellar_error *e);
int sq_oom(sq_conn *c, stellar_error *e);
int sq_on_busy(void *ud, int count);
struct sq_wlock *sq_wlock_get(const char *path);
void sq_wlock_put(struct sq_wlock *w);

int sq_prep(sq_conn *c, int id, sqlite3_stmt **out, stellar_error *e,
            const char *fmt, ...);
int sq_step(sq_conn *c, sqlite3_stmt *s, stellar_error *e);
int sq_exec(sq_conn *c, int id, stellar_error *e, const char *fmt, ...);
int sq_int(sq_conn *c, int id, int64_t *v, stellar_error *e, const char *fmt,
           ...);
int64_t sq_changes(sq_conn *c);

/* What sq_txn runs inside its transaction, with the caller's arg: >= 0 to
 * commit, or a negative code with e filled to roll back. */
typedef int sq_body(sq_conn *c, void *arg, stellar_error *e);

enum sq_txn_kind {
    SQ_WRITE, /* BEGIN IMMEDIATE, after this process's writer lock */
    SQ_READ,  /* BEGIN: one consistent snapshot, no lock held */
};

int sq_txn(sq_conn *c, const char *op, enum sq_txn_kind kind, sq_body *body,
           void *arg, stellar_error *e);

json_t *sq_col_str(sqlite3_stmt *s, int col);
json_t *sq_col_int(sqlite3_stmt *s, int col);
int sq_jset(json_t *obj, const char *key, json_t *v);
/* One row of a statement as a new JSON value, or NULL if out of memory. */
typedef json_t *sq_row_fn(sqlite3_stmt *s);
json_t *sq_row_int(sqlite3_stmt *s);
int sq_rows_into(sq_conn *c, sqlite3_stmt *s, json_t *into, sq_row_fn *row,
                 stellar_error *e);
int sq_rows(sq_conn *c, sqlite3_stmt *s, bool keyed, sq_row_fn *row,
            json_t **out, stellar_error *e);
int sq_query_array(sq_conn *c, int id, bool ints, json_t **out,
                   stellar_error *e, const char *fmt, ...);
int sq_range(sq_conn *c, const char *op, int count_id, int range_id,
             const char *queue, int64_t start, int64_t stop, json_t **out,
             stellar_error *e);

/* ------------------------------------------------------------ schema.c --- */

int sq_schema_version(sq_conn *c, int64_t *v, bool *marked, int *sqlite_rc,
                      stellar_error *e);
int sq_schema_init(sq_conn *c, int64_t v, bool marked, stellar_error *e);

/* ---------------------------------------------------------- walwatch.c --- */

/* What sq_watch_wait woke up for. */
enum sq_wake {
    SQ_WAKE_TIME,  /* the time passed (or there is no watch) */
    SQ_WAKE_WAL,   /* the WAL was written */
    SQ_WAKE_OTHER, /* only other files of its folder changed */
};

bool sq_watch_open(sq_conn *c);
enum sq_wake sq_watch_wait(sq_conn *c, int64_t ms);
void sq_watch_close(sq_conn *c);

/* ----------------------------------------------------------- control.c --- */

/* The longest target ("queue:" or "task:" and a name of up to 256 bytes)
 * reserve checks, NUL included; a class longer than a name may be has no
 * task limit. */
#define SQ_TARGET_MAX 272

/* The rate-limited targets a reserve takes a job under: their starts are
 * written in the same transaction (sq_ctl_started). */
typedef struct sq_starts {
    int n;
    char target[2][SQ_TARGET_MAX];
    int64_t window_ms[2];
} sq_starts;

/* Whether any pause or limit exists: 1, 0, or an error. */
int sq_ctl_any(sq_conn *c, stellar_error *e);
/* The first job of w's queues that the controls let start at now_ms
 * (workers.c's head(), when sq_ctl_any): 1 with *id (and r, st filled if
 * not NULL), 0 if none, or an error. */
int sq_ctl_head(sq_conn *c, const st_worker_id *w, int64_t now_ms, int64_t *id,
                st_reserved *r, sq_starts *st, stellar_error *e);
/* Records the starts of st at now_ms and trims their windows. */
int sq_ctl_started(sq_conn *c, const sq_starts *st, int64_t now_ms,
                   stellar_error *e);

/* ------------------------------------------- The operations (ops table) --- */

/* open.c */
int sq_open(st_backend **out, const char *url, const st_backend_cfg *cfg,
            stellar_error *e);
void sq_close(st_backend *b);

/* sched.c */
int sq_sched_claim(st_backend *b, const char *name, int64_t tick_ms,
                   const char *queue, const char *payload, bool *claimed,
                   stellar_error *e);
int sq_sched_set(st_backend *b, const char *name, int paused, int64_t seen_ms,
                 stellar_error *e);
int sq_sched_list(st_backend *b, json_t **out, stellar_error *e);

/* queues.c */
int sq_push_head(sq_conn *c, const char *queue, const char *payload,
                 stellar_error *e);
int sq_push(st_backend *b, const char *queue, const char *const *payloads,
            size_t n, stellar_error *e);
int sq_push_at(st_backend *b, int64_t at_ms, const char *queue,
               const char *payload, bool later, stellar_error *e);
int sq_queues(st_backend *b, json_t **names, stellar_error *e);
int sq_length(st_backend *b, const char *queue, int64_t *n, stellar_error *e);
int sq_oldest(st_backend *b, const char *queue, int64_t *enqueued_ms,
              stellar_error *e);
int sq_queued(st_backend *b, const char *queue, int64_t start, int64_t stop,
              json_t **payloads, stellar_error *e);
int sq_del(st_backend *b, const char *queue, const char *payload, int64_t count,
           int64_t *removed, stellar_error *e);
int sq_del_queue(st_backend *b, const char *queue, int64_t *removed,
                 stellar_error *e);
int sq_del_delayed(st_backend *b, const char *payload, json_t **ts_ms,
                   stellar_error *e);
int sq_replace(st_backend *b, const char *queue, const char *payload,
               int64_t at_ms, int64_t *removed, stellar_error *e);
int sq_scheduled_at(st_backend *b, const char *payload, json_t **ts_ms,
                    stellar_error *e);
int sq_timestamps(st_backend *b, json_t **ts_ms, stellar_error *e);
int sq_delayed_at(st_backend *b, int64_t ts_ms, json_t **payloads,
                  stellar_error *e);
int sq_del_delayed_at(st_backend *b, int64_t ts_ms, int64_t *removed,
                      stellar_error *e);
int sq_promote_due(st_backend *b, int64_t now_ms, int64_t max, int64_t *moved,
                   int64_t *next_ms, stellar_error *e);

/* workers.c */
int sq_worker_register(st_backend *b, const st_worker_id *w, int64_t now_ms,
                       stellar_error *e);
int sq_worker_unregister(st_backend *b, const st_worker_id *w,
                         stellar_error *e);
int sq_ping(st_backend *b, const st_worker_id *const *ws, size_t n,
            int64_t now_ms, stellar_error *e);
int sq_reserve(st_backend *b, const st_worker_id *w, const st_done *done,
               int64_t now_ms, st_reserved *out, stellar_error *e);
int sq_workers(st_backend *b, json_t **out, stellar_error *e);
int sq_clean_worker(st_backend *b, const char *name, enum st_clean_mode mode,
                    const char *failed_entry, char **payload, stellar_error *e);
int sq_wait(st_backend *b, const st_worker_id *w, int64_t timeout_ms,
            stellar_error *e);

/* stats.c */
int sq_stats(st_backend *b, json_t **out, stellar_error *e);
int sq_stat_incr(st_backend *b, const char *key, int64_t by, stellar_error *e);
int sq_failed_count(st_backend *b, int64_t *n, stellar_error *e);
int sq_failed_range(st_backend *b, int64_t start, int64_t stop,
                    json_t **entries, stellar_error *e);
int sq_failed_remove(st_backend *b, const char *entry, const st_done *requeue,
                     int64_t *removed, stellar_error *e);

/* kv.c */
int sq_kv_set(st_backend *b, const char *key, const char *value, int64_t ttl_ms,
              bool nx, bool *set, stellar_error *e);
int sq_kv_get(st_backend *b, const char *key, char **value, stellar_error *e);
int sq_kv_del(st_backend *b, const char *key, const char *value,
              int64_t *removed, stellar_error *e);
int sq_kv_expire(st_backend *b, const char *key, const char *value,
                 int64_t ttl_ms, bool *set, stellar_error *e);
int sq_kv_incr(st_backend *b, const char *key, int64_t by, int64_t ttl_ms,
               int64_t *out, stellar_error *e);
int sq_kv_scan(st_backend *b, const char *prefix, json_t **out,
               stellar_error *e);

/* control.c */
int sq_pause(st_backend *b, const char *queue, int64_t for_ms,
             stellar_error *e);
int sq_resume(st_backend *b, const char *queue, int64_t *removed,
              stellar_error *e);
int sq_limit_set(st_backend *b, const char *target, int64_t concurrency,
                 int64_t rate, int64_t window_ms, stellar_error *e);
int sq_limit_del(st_backend *b, const char *target, int64_t *removed,
                 stellar_error *e);
int sq_controls(st_backend *b, int64_t now_ms, json_t **out, stellar_error *e);

#endif
