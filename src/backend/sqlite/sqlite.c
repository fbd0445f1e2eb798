/*
 * sqlite.c: the SQLite storage backend ("sqlite:PATH"), the default: its
 * design, and the machinery its other files share (sq.h lists them): errors,
 * the in-process writer lock, cached statements, sq_txn, which runs every
 * transaction, JSON and list helpers; and the table of its operations.
 *
 * DESIGN
 * One st_backend is one sqlite3 connection, used by one thread. Many
 * connections, in many threads and processes, share one database file in
 * WAL mode: readers never block, and writers take turns on the one write
 * lock. Every operation that changes state runs in one BEGIN IMMEDIATE ...
 * COMMIT transaction, so it is atomic and sees no other writer; this is also
 * what makes promote_due and reserve exactly-once across processes. A writer
 * that finds the lock taken waits (busy handler) up to busy_timeout_ms, then
 * fails with STELLAR_EBUSY.
 *
 * The logical model of backend.h maps onto tables (schema.c): a queue is
 * the rows of `jobs` with that queue, FIFO by id (the rowid); putting a job
 * back at the head inserts it with id = min(id) - 1. Times are milliseconds.
 *
 * Statements are prepared once per connection, on first use, and cached in
 * the connection (SQ_STMTS, sq.h); the hot path (reserve) runs about six of
 * them in one transaction. An idle reserve first peeks without the write
 * lock, so idle workers do not queue up on it.
 */
#include "sq.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* --------------------------------------------------------- Statements --- */

/* The SQL of each statement id (SQ_STMTS). */
static const char *const stmt_sql[S_COUNT] = {
#define SQ_X_(name, sql) sql,
    SQ_STMTS(SQ_X_)
#undef SQ_X_
};

/* ------------------------------------------------------------- Errors --- */

/* Fills e for SQLite result code rc (read before any rollback, which would
 * replace the connection's message) and returns the Stellar code. */
int sq_fail(sq_conn *c, int rc, stellar_error *e)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return st_fail(e, STELLAR_EBUSY,
                       "sqlite %s: %s is locked by another connection; gave "
                       "up after waiting %lld ms (busy timeout)",
                       c->op, c->path, (long long)c->busy_ms);
    case SQLITE_FULL:
        return st_fail(e, STELLAR_EFULL, "sqlite %s: %s: %s", c->op, c->path,
                       sqlite3_errmsg(c->db));
    case SQLITE_NOMEM:
        return st_fail(e, STELLAR_ENOMEM, "sqlite %s: out of memory", c->op);
    case SQLITE_IOERR: /* e.g. a write past the file size limit */
        return st_fail(e, STELLAR_EIO, "sqlite %s: %s: %s", c->op, c->path,
                       sqlite3_errmsg(c->db));
    default:
        return st_fail(e, STELLAR_EBACKEND, "sqlite %s: %s: %s", c->op, c->path,
                       sqlite3_errmsg(c->db));
    }
}

int sq_oom(sq_conn *c, stellar_error *e)
{
    return st_fail(e, STELLAR_ENOMEM, "sqlite %s: out of memory", c->op);
}

/* Waits for a lock held by another connection: short sleeps first, since
 * a write transaction here lasts tens of microseconds, longer ones later.
 * Returns 0 (give up: SQLITE_BUSY) once busy_ms has passed. */
int sq_on_busy(void *ud, int count)
{
    sq_conn *c = ud;
    int64_t now = st_mono_ms(), waited;
    struct timespec ts = {0, 0};

    if (count == 0) c->busy_since_ms = c->in_begin ? c->begin_ms : now;
    waited = now - c->busy_since_ms;
    if (waited >= c->busy_ms) return 0;
    ts.tv_nsec = waited < 2 ? 50000L : waited < 100 ? 500000L : 2000000L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
    return 1;
}

/* ---------------------------------------------- In-process writer lock --- */

/*
 * Writers of one process take turns on a mutex of their own before BEGIN
 * IMMEDIATE. SQLite's own wait for its write lock is a busy handler that
 * sleeps and retries: eight TaskProcessors retrying so on two cores lost a
 * third of their throughput to it, and a mutex hands the lock over at once
 * (bench/README.md). Writers in other processes still meet at SQLite's
 * lock, and the whole wait stays within busy_ms. One mutex per database
 * file and process: a child made by fork() makes its own (entries are keyed
 * by pid), and the table's own lock is held across fork() so that no child
 * inherits it locked.
 */
typedef struct sq_wlock {
    struct sq_wlock *next;
    pid_t pid;
    char *path; /* as sqlite3_db_filename gives it: absolute */
    int refs;   /* connections using it */
    pthread_mutex_t m;
} sq_wlock;

static pthread_mutex_t wlocks_mu = PTHREAD_MUTEX_INITIALIZER; /* the list */
static sq_wlock *wlocks;
static pthread_once_t wlocks_once = PTHREAD_ONCE_INIT;

static void wlocks_fork_prepare(void)
{
    pthread_mutex_lock(&wlocks_mu);
}

static void wlocks_fork_done(void)
{
    pthread_mutex_unlock(&wlocks_mu);
}

static void wlocks_init(void)
{
    pthread_atfork(wlocks_fork_prepare, wlocks_fork_done, wlocks_fork_done);
}

/* This process's lock for the file at path; NULL if out of memory (the
 * connection then waits on SQLite's lock only). */
sq_wlock *sq_wlock_get(const char *path)
{
    pid_t pid = getpid();
    sq_wlock *w;

    pthread_once(&wlocks_once, wlocks_init);
    pthread_mutex_lock(&wlocks_mu);
    for (w = wlocks; w; w = w->next)
        if (w->pid == pid && strcmp(w->path, path) == 0) break;
    if (!w && (w = st_calloc(1, sizeof *w)) != NULL) {
        if (!(w->path = st_strdup(path))) {
            st_free(w);
            w = NULL;
        } else {
            w->pid = pid;
            pthread_mutex_init(&w->m, NULL);
            w->next = wlocks;
            wlocks = w;
        }
    }
    if (w) w->refs++;
    pthread_mutex_unlock(&wlocks_mu);
    return w;
}

void sq_wlock_put(sq_wlock *w)
{
    sq_wlock **p;

    if (!w) return;
    pthread_mutex_lock(&wlocks_mu);
    if (--w->refs == 0) {
        for (p = &wlocks; *p && *p != w; p = &(*p)->next)
            ;
        if (*p) *p = w->next;
        pthread_mutex_destroy(&w->m);
        st_free(w->path);
        st_free(w);
    }
    pthread_mutex_unlock(&wlocks_mu);
}

/* Takes c's writer lock, waiting until c->begin_ms + busy_ms at most. */
static int wlock_take(sq_conn *c, stellar_error *e)
{
    struct timespec ts;

    if (!c->wl) return STELLAR_OK;
    if (pthread_mutex_trylock(&c->wl->m) != 0) {
        ts = st_deadline_ts(c->busy_ms);
        if (pthread_mutex_timedlock(&c->wl->m, &ts) != 0)
            return st_fail(e, STELLAR_EBUSY,
                           "sqlite %s: %s is locked by another connection; "
                           "gave up after waiting %lld ms (busy timeout)",
                           c->op, c->path, (long long)c->busy_ms);
    }
    c->wl_held = true;
    return STELLAR_OK;
}

static void wlock_drop(sq_conn *c)
{
    if (!c->wl_held) return;
    c->wl_held = false;
    pthread_mutex_unlock(&c->wl->m);
}

/* ---------------------------------------------------- Statement helpers --- */

/* Binds the arguments after fmt to s: 't' a string (NULL: SQL NULL), 'i' an
 * int64_t. */
static int vbind(sq_conn *c, sqlite3_stmt *s, stellar_error *e, const char *fmt,
                 va_list ap)
{
    int i, rc = SQLITE_OK;

    for (i = 0; fmt[i] && rc == SQLITE_OK; i++) {
        if (fmt[i] == 't')
            rc = sqlite3_bind_text(s, i + 1, va_arg(ap, const char *), -1,
                                   SQLITE_STATIC);
        else
            rc = sqlite3_bind_int64(s, i + 1,
                                    (sqlite3_int64)va_arg(ap, int64_t));
    }
    return rc == SQLITE_OK ? STELLAR_OK : sq_fail(c, rc, e);
}

/* The cached statement id, prepared if needed, with fmt's arguments bound.
 * The caller steps it with sq_step and resets it if it stops early. */
static int vprep(sq_conn *c, int id, sqlite3_stmt **out, stellar_error *e,
                 const char *fmt, va_list ap)
{
    int rc;

    *out = NULL;
    if (!c->stmt[id]) {
        rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1,
                                SQLITE_PREPARE_PERSISTENT, &c->stmt[id], NULL);
        if (rc != SQLITE_OK) return sq_fail(c, rc, e);
    }
    if ((rc = vbind(c, c->stmt[id], e, fmt, ap)) < 0) return rc;
    *out = c->stmt[id];
    return STELLAR_OK;
}

int sq_prep(sq_conn *c, int id, sqlite3_stmt **out, stellar_error *e,
            const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vprep(c, id, out, e, fmt, ap);
    va_end(ap);
    return rc;
}

/* Steps s: 1 for a row, 0 when done, or a negative code. Resets s unless a
 * row came back. */
int sq_step(sq_conn *c, sqlite3_stmt *s, stellar_error *e)
{
    int rc = sqlite3_step(s);

    if (rc == SQLITE_ROW) return 1;
    if (rc != SQLITE_DONE)
        rc = sq_fail(c, rc, e);
    else
        rc = 0;
    sqlite3_reset(s);
    return rc;
}

/* Runs statement id to its end, ignoring rows. */
int sq_exec(sq_conn *c, int id, stellar_error *e, const char *fmt, ...)
{
    sqlite3_stmt *s;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vprep(c, id, &s, e, fmt, ap);
    va_end(ap);
    while (rc == STELLAR_OK && (rc = sq_step(c, s, e)) == 1)
        rc = STELLAR_OK;
    return rc < 0 ? rc : STELLAR_OK;
}

/* Runs statement id and reads column 0 of its first row as an integer:
 * 1 if there is such a row with a non-NULL value, 0 if not, or an error. */
int sq_int(sq_conn *c, int id, int64_t *v, stellar_error *e, const char *fmt,
           ...)
{
    sqlite3_stmt *s;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vprep(c, id, &s, e, fmt, ap);
    va_end(ap);
    if (rc < 0) return rc;
    if ((rc = sq_step(c, s, e)) != 1) return rc;
    rc = sqlite3_column_type(s, 0) != SQLITE_NULL;
    if (rc) *v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc;
}

int64_t sq_changes(sq_conn *c)
{
    return sqlite3_changes(c->db);
}

/* Starts a write transaction: this process's writer lock, then SQLite's
 * write lock, waiting up to busy_ms for both. */
static int sq_begin(sq_conn *c, const char *op, stellar_error *e)
{
    int rc;

    c->op = op;
    if (c->ro_why)
        return st_fail(e, STELLAR_EBACKEND,
                       "sqlite %s: %s is open read-only (%s): nothing can be "
                       "written",
                       op, c->path, c->ro_why);
    c->begin_ms = st_mono_ms();
    if ((rc = wlock_take(c, e)) < 0) return rc;
    c->in_begin = true;
    rc = sq_exec(c, S_BEGIN_W, e, "");
    c->in_begin = false;
    if (rc < 0) wlock_drop(c);
    return rc;
}

/* Starts a read transaction: one consistent snapshot, no lock held. */
static int sq_begin_read(sq_conn *c, const char *op, stellar_error *e)
{
    c->op = op;
    return sq_exec(c, S_BEGIN_R, e, "");
}

static int sq_commit(sq_conn *c, stellar_error *e)
{
    int rc = sq_exec(c, S_COMMIT, e, "");
    if (rc >= 0) wlock_drop(c);
    return rc;
}

/* Ends a failed transaction, if one is open. The error in e stays. */
static void sq_rollback(sq_conn *c)
{
    if (!sqlite3_get_autocommit(c->db)) sq_exec(c, S_ROLLBACK, NULL, "");
    wlock_drop(c);
}

/*
 * Runs body(c, arg, e) in one transaction named op (for messages): begins
 * it, commits it if body succeeds, and rolls it back if body or the commit
 * fails, keeping body's error in e. STELLAR_OK or the negative code. Every
 * transaction of the backend goes through here, so none can miss its
 * rollback; results go out through arg, and the caller keeps or drops them
 * by the code returned.
 */
int sq_txn(sq_conn *c, const char *op, enum sq_txn_kind kind, sq_body *body,
           void *arg, stellar_error *e)
{
    int rc = kind == SQ_READ ? sq_begin_read(c, op, e) : sq_begin(c, op, e);

    if (rc < 0) return rc;
    if ((rc = body(c, arg, e)) >= 0 && (rc = sq_commit(c, e)) >= 0)
        return STELLAR_OK;
    sq_rollback(c);
    return rc;
}

/* ----------------------------------------------------------- JSON bits --- */

/* Column col as a JSON string (its raw bytes; non-UTF-8 kept as is), or
 * null if SQL NULL. NULL on allocation failure. */
json_t *sq_col_str(sqlite3_stmt *s, int col)
{
    const char *p = (const char *)sqlite3_column_text(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    json_t *v;

    if (!p) return json_null();
    v = json_stringn(p, n);
    return v ? v : json_stringn_nocheck(p, n);
}

/* Column col as a JSON integer, or null if SQL NULL. */
json_t *sq_col_int(sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL) return json_null();
    return json_integer((json_int_t)sqlite3_column_int64(s, col));
}

/* Sets obj[key] = v (stolen). -1 if v is NULL or the set fails. */
int sq_jset(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

/* The value of a (key, integer) row: column 1 as sq_col_int reads it. */
json_t *sq_row_int(sqlite3_stmt *s)
{
    return sq_col_int(s, 1);
}

static json_t *col0_int(sqlite3_stmt *s)
{
    return sq_col_int(s, 0);
}

static json_t *col0_str(sqlite3_stmt *s)
{
    return sq_col_str(s, 0);
}

/* Steps a prepared, bound statement to its end, adding row(s) for every
 * row to into: to an object under the text of column 0 (rows whose column
 * 0 is NULL are skipped), or to the end of an array. Resets s if it stops
 * early; a NULL from row, or a failed add, is an allocation failure. */
int sq_rows_into(sq_conn *c, sqlite3_stmt *s, json_t *into, sq_row_fn *row,
                 stellar_error *e)
{
    bool keyed = json_is_object(into);
    int rc;

    while ((rc = sq_step(c, s, e)) == 1) {
        const char *key = NULL;
        json_t *v;
        if (keyed && !(key = (const char *)sqlite3_column_text(s, 0))) continue;
        if (!(v = row(s)) || (keyed ? json_object_set_new(into, key, v)
                                    : json_array_append_new(into, v)) < 0) {
            sqlite3_reset(s);
            return sq_oom(c, e);
        }
    }
    return rc;
}

/* sq_rows_into a new object (keyed) or array, in *out; *out stays NULL on
 * failure. */
int sq_rows(sq_conn *c, sqlite3_stmt *s, bool keyed, sq_row_fn *row,
            json_t **out, stellar_error *e)
{
    json_t *all = keyed ? json_object() : json_array();
    int rc;

    *out = NULL;
    if (!all) {
        sqlite3_reset(s);
        return sq_oom(c, e);
    }
    if ((rc = sq_rows_into(c, s, all, row, e)) < 0) {
        json_decref(all);
        return rc;
    }
    *out = all;
    return STELLAR_OK;
}

/* Runs statement id (args as fmt says) into a new array of column 0. */
int sq_query_array(sq_conn *c, int id, bool ints, json_t **out,
                   stellar_error *e, const char *fmt, ...)
{
    sqlite3_stmt *s;
    va_list ap;
    int rc;

    *out = NULL;
    va_start(ap, fmt);
    rc = vprep(c, id, &s, e, fmt, ap);
    va_end(ap);
    if (rc < 0) return rc;
    return sq_rows(c, s, false, ints ? col0_int : col0_str, out, e);
}

/* Redis LRANGE index rules on a list of len entries: negative counts from
 * the end, stop is inclusive. Gives the offset and count to read. */
static void lrange(int64_t len, int64_t start, int64_t stop, int64_t *offset,
                   int64_t *count)
{
    if (start < 0) start += len;
    if (stop < 0) stop += len;
    if (start < 0) start = 0;
    if (stop >= len) stop = len - 1;
    *offset = start;
    if (start > stop)
        *count = 0;
    else
        *count = stop - start < INT64_MAX ? stop - start + 1 : INT64_MAX;
}

struct range_arg {
    int count_id, range_id; /* the list's length, its rows */
    const char *queue;      /* bound as ?1, or NULL: the failed list */
    int64_t start, stop;    /* LRANGE indexes */
    json_t *out;            /* the entries read */
};

static int range_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct range_arg *a = arg;
    int64_t len = INT64_MAX, offset, count;
    sqlite3_stmt *s;
    int rc;

    if (a->start < 0 || a->stop < 0) {
        rc = a->queue ? sq_int(c, a->count_id, &len, e, "t", a->queue)
                      : sq_int(c, a->count_id, &len, e, "");
        if (rc < 0) return rc;
    }
    lrange(len, a->start, a->stop, &offset, &count);
    if (count > 0) {
        rc = a->queue ? sq_prep(c, a->range_id, &s, e, "tii", a->queue, offset,
                                count)
                      : sq_prep(c, a->range_id, &s, e, "ii", offset, count);
        if (rc < 0) return rc;
        return sq_rows(c, s, false, col0_str, &a->out, e);
    }
    return (a->out = json_array()) ? STELLAR_OK : sq_oom(c, e);
}

/* Reads entries start..stop of a list with LRANGE rules, in one snapshot:
 * count_id gives its length (only needed with a negative index), range_id
 * the rows. */
int sq_range(sq_conn *c, const char *op, int count_id, int range_id,
             const char *queue, int64_t start, int64_t stop, json_t **out,
             stellar_error *e)
{
    struct range_arg a = {count_id, range_id, queue, start, stop, NULL};
    int rc = sq_txn(c, op, SQ_READ, range_body, &a, e);

    if (rc < 0) {
        json_decref(a.out);
        a.out = NULL;
    }
    *out = a.out;
    return rc;
}

/* ----------------------------------------------------------------- Ops --- */

const st_backend_ops st_sqlite_ops = {
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .push = sq_push,
    .push_at = sq_push_at,
    .queues = sq_queues,
    .length = sq_length,
    .queued = sq_queued,
    .del = sq_del,
    .del_queue = sq_del_queue,
    .del_delayed = sq_del_delayed,
    .oldest = sq_oldest,
    .replace = sq_replace,
    .scheduled_at = sq_scheduled_at,
    .timestamps = sq_timestamps,
    .delayed_at = sq_delayed_at,
    .del_delayed_at = sq_del_delayed_at,
    .promote_due = sq_promote_due,
    .worker_register = sq_worker_register,
    .worker_unregister = sq_worker_unregister,
    .ping = sq_ping,
    .reserve = sq_reserve,
    .workers = sq_workers,
    .clean_worker = sq_clean_worker,
    .stats = sq_stats,
    .stat_incr = sq_stat_incr,
    .failed_count = sq_failed_count,
    .failed_range = sq_failed_range,
    .failed_remove = sq_failed_remove,
    .kv_set = sq_kv_set,
    .kv_get = sq_kv_get,
    .kv_del = sq_kv_del,
    .kv_expire = sq_kv_expire,
    .kv_incr = sq_kv_incr,
    .kv_scan = sq_kv_scan,
    .sched_claim = sq_sched_claim,
    .sched_set = sq_sched_set,
    .sched_list = sq_sched_list,
    .pause = sq_pause,
    .resume = sq_resume,
    .limit_set = sq_limit_set,
    .limit_del = sq_limit_del,
    .controls = sq_controls,
    .wait = sq_wait,
};
