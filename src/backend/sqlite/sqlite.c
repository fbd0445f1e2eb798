/*
 * sqlite.c: the SQLite storage backend ("sqlite:PATH"), the default: its
 * design and all of its operations but the schema (schema.c) and the
 * wake-up on a WAL write (walwatch.c).
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
#include <stdio.h>
#include <stdlib.h>
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

/* now + ms on CLOCK_REALTIME: the deadline of a wait for the writer lock
 * (pthread_mutex_timedlock). */
static struct timespec lock_deadline(int64_t ms)
{
    struct timespec ts;
    int64_t ns;

    clock_gettime(CLOCK_REALTIME, &ts);
    ns = ts.tv_nsec + (ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return ts;
}

/* Takes c's writer lock, waiting until c->begin_ms + busy_ms at most. */
static int wlock_take(sq_conn *c, stellar_error *e)
{
    struct timespec ts;

    if (!c->wl) return STELLAR_OK;
    if (pthread_mutex_trylock(&c->wl->m) != 0) {
        ts = lock_deadline(c->busy_ms);
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

/* Runs a prepared, bound statement and appends column 0 of every row to a
 * new array: integers if ints, strings otherwise. */
static int rows_array(sq_conn *c, sqlite3_stmt *s, bool ints, json_t **out,
                      stellar_error *e)
{
    json_t *arr = json_array();
    int rc;

    *out = NULL;
    if (!arr) {
        sqlite3_reset(s);
        return sq_oom(c, e);
    }
    while ((rc = sq_step(c, s, e)) == 1) {
        json_t *v = ints ? sq_col_int(s, 0) : sq_col_str(s, 0);
        if (!v || json_array_append_new(arr, v) < 0) {
            sqlite3_reset(s);
            rc = sq_oom(c, e);
            break;
        }
    }
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
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
    return rows_array(c, s, ints, out, e);
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
        return rows_array(c, s, false, &a->out, e);
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

/* ----------------------------------------------------- Open and close --- */

/* The WAL is copied into the file (a checkpoint, with two fsyncs) once it
 * holds this many pages (1 KiB each): about 10 MiB. */
#define WAL_CHECKPOINT_PAGES 10000

void sq_close(st_backend *b)
{
    sq_conn *c = (sq_conn *)b;
    size_t i;

    if (!c) return;
    for (i = 0; i < S_COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    sq_watch_close(c);
    sqlite3_close(c->db);
    sq_wlock_put(c->wl);
    st_free(c->path);
    st_free(c);
}

/*
 * Switches the file to WAL (a no-op if it is already). This takes an
 * exclusive lock. When processes open a new file at once, one of them may
 * switch first and then hold its WAL-mode shared lock for good, while
 * another, which read the file before the switch, waits for the exclusive
 * lock forever. So each try waits at most 50 ms; a new try sees the file
 * already in WAL mode. The whole stays within busy_ms.
 */
static int set_wal(sq_conn *c, int *sqlite_rc, stellar_error *e)
{
    int64_t busy_ms = c->busy_ms, deadline = st_mono_ms() + busy_ms;
    int rc;

    c->op = "open (setting WAL mode)";
    c->busy_ms = busy_ms < 50 ? busy_ms : 50;
    do {
        rc = sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    } while ((rc & 0xff) == SQLITE_BUSY && st_mono_ms() < deadline);
    c->busy_ms = busy_ms;
    *sqlite_rc = rc;
    return rc == SQLITE_OK ? STELLAR_OK : sq_fail(c, rc, e);
}

/* "sqlite:PATH": PATH as given (relative to the working directory);
 * "sqlite://PATH" is accepted too ("sqlite:///abs" -> "/abs"). Borrowed
 * from url; "" if there is none. */
static const char *url_path(const char *url)
{
    const char *p = url + strlen("sqlite:");

    return strncmp(p, "//", 2) == 0 ? p + 2 : p;
}

/* Whether SQLite code rc, on opening or first reading path, is for want
 * of write access (to the file, its folder, its -wal or -shm), and that
 * is so: a read-only open may then do. (As root, access() says yes to
 * every file but those on a read-only mount.) */
static bool want_write_access(const char *path, int rc)
{
    char *dir, *slash;
    bool no;

    switch (rc & 0xff) {
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_IOERR: break;
    default: return false;
    }
    if (access(path, F_OK) != 0) return false; /* nothing to read */
    if (access(path, W_OK) != 0) return true;
    if (!(dir = st_strdup(path))) return false;
    slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else
        slash[slash == dir] = '\0'; /* "/x" -> "/" */
    no = access(dir, W_OK) != 0;
    st_free(dir);
    return no;
}

/* "file:PATH?immutable=1", PATH percent-encoded where a URI needs it. */
static char *immutable_uri(const char *path)
{
    st_buf b = {0};
    const unsigned char *p;

    st_buf_puts(&b, "file:");
    for (p = (const unsigned char *)path; *p; p++) {
        if (*p == '%' || *p == '?' || *p == '#' || *p <= ' ' || *p >= 0x7f)
            st_buf_printf(&b, "%%%02X", *p);
        else
            st_buf_putc(&b, (char)*p);
    }
    st_buf_puts(&b, "?immutable=1");
    return st_buf_take(&b);
}

/* How open() may open the file, in the order it tries them. */
enum open_mode {
    OPEN_RW,        /* read-write, created if missing */
    OPEN_RO,        /* read-only */
    OPEN_IMMUTABLE, /* read-only, as an unchanging file: no -shm needed */
};

/* Opens c->path in mode, checks whose the file is (no write before that),
 * switches it to WAL (read-write only). *v, *marked: sq_schema_version()'s;
 * *sqlite_rc: the SQLite code of a failure, for the fallback. */
static int open_mode(sq_conn *c, enum open_mode mode, int64_t *v, bool *marked,
                     int *sqlite_rc, stellar_error *e)
{
    int flags = SQLITE_OPEN_NOMUTEX, rc;
    char *uri = NULL;

    *sqlite_rc = SQLITE_OK;
    if (mode == OPEN_RW)
        flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    else
        flags |= SQLITE_OPEN_READONLY;
    if (mode == OPEN_IMMUTABLE) {
        if (!(uri = immutable_uri(c->path)))
            return st_fail(e, STELLAR_ENOMEM, "sqlite open: out of memory");
        flags |= SQLITE_OPEN_URI;
    }
    c->op = "open";
    /* NOMUTEX: a connection is used by one thread at a time (backend.h). */
    rc = sqlite3_open_v2(uri ? uri : c->path, &c->db, flags, NULL);
    st_free(uri);
    if (rc != SQLITE_OK) {
        *sqlite_rc = rc;
        return st_fail(e, STELLAR_EBACKEND, "sqlite open: cannot open %s: %s",
                       c->path,
                       c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    }
    sqlite3_busy_handler(c->db, sq_on_busy, c);
    if (mode == OPEN_RW && sqlite3_db_readonly(c->db, "main") == 1) {
        *sqlite_rc = SQLITE_READONLY;
        return st_fail(e, STELLAR_EBACKEND, "sqlite open: %s is read-only",
                       c->path);
    }
    /* Whose the file is, before anything is written to it. */
    c->op = "open (reading the schema version)";
    if ((rc = sq_schema_version(c, v, marked, sqlite_rc, e)) < 0) return rc;
    if (mode != OPEN_RW) return STELLAR_OK;
    /* Small pages for a new file (ignored for an existing one): a reserve
     * commits four or five pages to the WAL, and 1 KiB pages made it about
     * 1.5x faster than the default 4 KiB; a typical payload (< 1 KiB) still
     * fits in one. */
    rc = sqlite3_exec(c->db, "PRAGMA page_size = 1024", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        *sqlite_rc = rc;
        return sq_fail(c, rc, e);
    }
    if ((rc = set_wal(c, sqlite_rc, e)) < 0) return rc;
    /* NORMAL: a commit is not synced; the WAL is synced at each
     * checkpoint. A killed process loses nothing (its writes are in the
     * OS); a power cut or an OS crash may undo the transactions since the
     * last checkpoint, and never corrupts the file. A checkpoint every
     * WAL_CHECKPOINT_PAGES pages (instead of 1000) makes its two fsyncs
     * rarer, and bounds that loss to about that many pages of commits
     * (see README, Benchmarks). */
    rc = sqlite3_exec(c->db,
                      "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint"
                      " = " SQ_XSTR(WAL_CHECKPOINT_PAGES),
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        *sqlite_rc = rc;
        return sq_fail(c, rc, e);
    }
    return STELLAR_OK;
}

/*
 * Opens read-write; a file that cannot be written (the file or its folder
 * read-only, as for someone inspecting another user's store) is opened
 * read-only instead, so that the inspection commands work, and every write
 * then fails saying so. A WAL file in a read-only folder, with no -shm to
 * share, is read as an unchanging file (immutable): nobody can be writing
 * to it there.
 */
int sq_open(st_backend **out, const char *url, const st_backend_cfg *cfg,
            stellar_error *e)
{
    static const char *const why[] = {
        NULL, "no write access to the file or its folder",
        "no write access to the file or its folder; read as an unchanging "
        "file"};
    sq_conn *c = NULL;
    enum open_mode mode;
    int64_t v = 0;
    bool marked = false;
    int rc, sqlite_rc;

    *out = NULL;
    if (!url || strncmp(url, "sqlite:", 7) != 0 || !*url_path(url))
        return st_fail(e, STELLAR_EINVAL,
                       "bad SQLite backend URL '%s' (expected sqlite:PATH)",
                       url ? url : "(null)");
    if (!(c = st_calloc(1, sizeof *c)) ||
        !(c->path = st_strdup(url_path(url)))) {
        rc = st_fail(e, STELLAR_ENOMEM, "sqlite open: out of memory");
        goto fail;
    }
    c->base.ops = &st_sqlite_ops;
    c->op = "open";
    c->watch_fd = -2;
    c->busy_ms = cfg && cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000;
    for (mode = OPEN_RW;; mode++) {
        rc = open_mode(c, mode, &v, &marked, &sqlite_rc, e);
        if (rc == STELLAR_OK) break;
        if (rc == STELLAR_EINVAL || mode == OPEN_IMMUTABLE) goto fail;
        if (mode == OPEN_RW && !want_write_access(c->path, sqlite_rc))
            goto fail;
        /* A WAL file whose -shm cannot be made or written. */
        if (mode == OPEN_RO && (sqlite_rc & 0xff) != SQLITE_CANTOPEN &&
            (sqlite_rc & 0xff) != SQLITE_READONLY)
            goto fail;
        sqlite3_close(c->db);
        c->db = NULL;
    }
    c->ro_why = why[mode];
    c->wl = sq_wlock_get(sqlite3_db_filename(c->db, "main"));
    if ((rc = sq_schema_init(c, v, marked, e)) < 0) goto fail;
    *out = &c->base;
    return STELLAR_OK;
fail:
    sq_close(c ? &c->base : NULL);
    return rc;
}

/* -------------------------------------------------------------- Queues --- */

struct push_arg {
    const char *queue;
    const char *const *payloads;
    size_t n;
};

static int push_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct push_arg *a = arg;
    size_t i;
    int rc = sq_exec(c, S_QUEUE_ADD, e, "t", a->queue);

    for (i = 0; i < a->n && rc >= 0; i++) {
        if (!a->payloads[i])
            return st_fail(e, STELLAR_EINVAL,
                           "sqlite push: payload %zu is NULL", i);
        rc = sq_exec(c, S_JOB_PUSH, e, "tt", a->queue, a->payloads[i]);
    }
    return rc;
}

int sq_push(st_backend *b, const char *queue, const char *const *payloads,
            size_t n, stellar_error *e)
{
    struct push_arg a = {queue, payloads, n};

    if (!queue || (n && !payloads))
        return st_fail(e, STELLAR_EINVAL, "sqlite push: no queue or payload");
    if (n == 0) return STELLAR_OK;
    return sq_txn((sq_conn *)b, "push", SQ_WRITE, push_body, &a, e);
}

/* Puts payload at the head of queue (inside a write transaction). */
int sq_push_head(sq_conn *c, const char *queue, const char *payload,
                 stellar_error *e)
{
    int rc = sq_exec(c, S_QUEUE_ADD, e, "t", queue);
    if (rc < 0) return rc;
    return sq_exec(c, S_JOB_PUSH_HEAD, e, "tt", queue, payload);
}

struct push_at_arg {
    int64_t at_ms;
    const char *queue, *payload;
    bool later;
};

static int push_at_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct push_at_arg *a = arg;
    int64_t at_ms = a->at_ms, one;
    int rc;

    for (;;) {
        rc = sq_int(c, S_DELAYED_FIND, &one, e, "ti", a->payload, at_ms);
        if (rc != 1 || !a->later) break;
        at_ms++; /* taken: the next ms */
    }
    if (rc < 0) return rc;
    if (rc == 1)
        return st_fail(e, STELLAR_EEXISTS,
                       "Job already enqueued at this time with same arguments");
    return sq_exec(c, S_DELAYED_ADD, e, "itt", at_ms, a->queue, a->payload);
}

int sq_push_at(st_backend *b, int64_t at_ms, const char *queue,
               const char *payload, bool later, stellar_error *e)
{
    struct push_at_arg a = {at_ms, queue, payload, later};

    if (!queue || !payload)
        return st_fail(e, STELLAR_EINVAL,
                       "sqlite push_at: no queue or payload");
    return sq_txn((sq_conn *)b, "push_at", SQ_WRITE, push_at_body, &a, e);
}

int sq_queues(st_backend *b, json_t **names, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;

    c->op = "queues";
    return sq_query_array(c, S_QUEUES, false, names, e, "");
}

/* One integer about queue (or `none` if the query has no row). */
static int queue_int(st_backend *b, const char *op, int stmt, const char *queue,
                     int64_t none, int64_t *out, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    int rc;

    c->op = op;
    *out = none;
    rc = sq_int(c, stmt, out, e, "t", queue);
    return rc < 0 ? rc : STELLAR_OK;
}

int sq_length(st_backend *b, const char *queue, int64_t *n, stellar_error *e)
{
    return queue_int(b, "length", S_JOB_COUNT, queue, 0, n, e);
}

int sq_oldest(st_backend *b, const char *queue, int64_t *enqueued_ms,
              stellar_error *e)
{
    return queue_int(b, "oldest", S_JOB_OLDEST, queue, -1, enqueued_ms, e);
}

int sq_queued(st_backend *b, const char *queue, int64_t start, int64_t stop,
              json_t **payloads, stellar_error *e)
{
    return sq_range((sq_conn *)b, "queued", S_JOB_COUNT, S_JOB_RANGE, queue,
                    start, stop, payloads, e);
}

/* The arguments of the operations that remove rows (del, del_queue,
 * replace, del_delayed_at), and how many went. */
struct del_arg {
    const char *queue, *payload;
    int64_t count; /* del: as LREM's */
    int64_t at_ms; /* replace: the new time; del_delayed_at: < 0 all */
    int64_t removed;
};

static int del_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct del_arg *a = arg;
    int rc;

    /* As LREM: count > 0 from the head, < 0 from the tail, 0 all. */
    if (a->count < 0)
        rc = sq_exec(c, S_JOB_DEL_TAIL, e, "tti", a->queue, a->payload,
                     a->count == INT64_MIN ? INT64_MAX : -a->count);
    else
        rc = sq_exec(c, S_JOB_DEL, e, "tti", a->queue, a->payload,
                     a->count > 0 ? a->count : (int64_t)-1);
    if (rc < 0) return rc;
    a->removed = sq_changes(c);
    return STELLAR_OK;
}

int sq_del(st_backend *b, const char *queue, const char *payload, int64_t count,
           int64_t *removed, stellar_error *e)
{
    struct del_arg a = {queue, payload, count, 0, 0};
    int rc = sq_txn((sq_conn *)b, "del", SQ_WRITE, del_body, &a, e);

    *removed = rc < 0 ? 0 : a.removed;
    return rc;
}

static int del_queue_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct del_arg *a = arg;
    int rc;

    if ((rc = sq_exec(c, S_JOB_DEL_QUEUE, e, "t", a->queue)) < 0) return rc;
    a->removed = sq_changes(c);
    if ((rc = sq_exec(c, S_QUEUE_DEL, e, "t", a->queue)) < 0) return rc;
    a->removed += sq_changes(c);
    return STELLAR_OK;
}

int sq_del_queue(st_backend *b, const char *queue, int64_t *removed,
                 stellar_error *e)
{
    struct del_arg a = {queue, NULL, 0, 0, 0};
    int rc = sq_txn((sq_conn *)b, "del_queue", SQ_WRITE, del_queue_body, &a, e);

    *removed = rc < 0 ? 0 : a.removed > 0;
    return rc;
}

/* ------------------------------------------------------------- Delayed --- */

struct del_delayed_arg {
    const char *payload;
    json_t *ts; /* the times it was delayed to */
};

static int del_delayed_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct del_delayed_arg *a = arg;
    int rc =
        sq_query_array(c, S_DELAYED_TS_OF, true, &a->ts, e, "t", a->payload);

    if (rc < 0) return rc;
    return sq_exec(c, S_DELAYED_DEL_PAYLOAD, e, "t", a->payload);
}

int sq_del_delayed(st_backend *b, const char *payload, json_t **ts_ms,
                   stellar_error *e)
{
    struct del_delayed_arg a = {payload, NULL};
    int rc =
        sq_txn((sq_conn *)b, "del_delayed", SQ_WRITE, del_delayed_body, &a, e);

    if (rc < 0) {
        json_decref(a.ts);
        a.ts = NULL;
    }
    *ts_ms = a.ts;
    return rc;
}

static int replace_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct del_arg *a = arg;
    int64_t at_ms = a->at_ms;
    int rc;

    if ((rc = sq_exec(c, S_DELAYED_DEL_PAYLOAD, e, "t", a->payload)) < 0)
        return rc;
    a->removed = sq_changes(c);
    rc = sq_exec(c, S_JOB_DEL, e, "tti", a->queue, a->payload, (int64_t)-1);
    if (rc < 0) return rc;
    a->removed += sq_changes(c);
    if (at_ms == ST_REPLACE_NOW) {
        if ((rc = sq_exec(c, S_QUEUE_ADD, e, "t", a->queue)) < 0) return rc;
        return sq_exec(c, S_JOB_PUSH, e, "tt", a->queue, a->payload);
    }
    if (at_ms > 0)
        return sq_exec(c, S_DELAYED_ADD, e, "itt", at_ms, a->queue, a->payload);
    return STELLAR_OK;
}

int sq_replace(st_backend *b, const char *queue, const char *payload,
               int64_t at_ms, int64_t *removed, stellar_error *e)
{
    struct del_arg a = {queue, payload, 0, at_ms, 0};
    int rc = sq_txn((sq_conn *)b, "replace", SQ_WRITE, replace_body, &a, e);

    *removed = rc < 0 ? 0 : a.removed;
    return rc;
}

int sq_scheduled_at(st_backend *b, const char *payload, json_t **ts_ms,
                    stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;

    c->op = "scheduled_at";
    return sq_query_array(c, S_DELAYED_TS_OF, true, ts_ms, e, "t", payload);
}

int sq_timestamps(st_backend *b, json_t **ts_ms, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;

    c->op = "timestamps";
    return sq_query_array(c, S_DELAYED_TS, true, ts_ms, e, "");
}

int sq_delayed_at(st_backend *b, int64_t ts_ms, json_t **payloads,
                  stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;

    c->op = "delayed_at";
    return sq_query_array(c, S_DELAYED_AT, false, payloads, e, "i", ts_ms);
}

static int del_delayed_at_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct del_arg *a = arg;
    int64_t ts_ms = a->at_ms;
    int rc = ts_ms < 0 ? sq_exec(c, S_DELAYED_DEL_ALL, e, "")
                       : sq_exec(c, S_DELAYED_DEL_AT, e, "i", ts_ms);

    if (rc < 0) return rc;
    a->removed = sq_changes(c);
    return STELLAR_OK;
}

int sq_del_delayed_at(st_backend *b, int64_t ts_ms, int64_t *removed,
                      stellar_error *e)
{
    struct del_arg a = {NULL, NULL, 0, ts_ms, 0};
    int rc = sq_txn((sq_conn *)b, "del_delayed_at", SQ_WRITE,
                    del_delayed_at_body, &a, e);

    *removed = rc < 0 ? 0 : a.removed;
    return rc;
}

struct promote_arg {
    int64_t now_ms, limit; /* limit -1: all that are due */
    int64_t moved, next;   /* next: the earliest at_ms left, or -1 */
};

static int promote_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct promote_arg *a = arg;
    int64_t n;
    int rc;

    rc = sq_exec(c, S_PROMOTE_QUEUES, e, "ii", a->now_ms, a->limit);
    if (rc < 0) return rc;
    rc = sq_exec(c, S_PROMOTE_JOBS, e, "ii", a->now_ms, a->limit);
    if (rc < 0) return rc;
    n = sq_changes(c);
    rc = sq_exec(c, S_PROMOTE_DEL, e, "ii", a->now_ms, a->limit);
    if (rc < 0) return rc;
    if (sq_changes(c) != n)
        return st_fail(e, STELLAR_EBACKEND,
                       "sqlite promote_due: moved %lld jobs but removed %lld "
                       "from the delayed set",
                       (long long)n, (long long)sq_changes(c));
    if ((rc = sq_int(c, S_DELAYED_NEXT, &a->next, e, "")) < 0) return rc;
    if (rc == 0) a->next = -1;
    a->moved = n;
    return STELLAR_OK;
}

int sq_promote_due(st_backend *b, int64_t now_ms, int64_t max, int64_t *moved,
                   int64_t *next_ms, stellar_error *e)
{
    struct promote_arg a = {now_ms, max > 0 ? max : -1, 0, -1};
    int rc = sq_txn((sq_conn *)b, "promote_due", SQ_WRITE, promote_body, &a, e);

    *moved = rc < 0 ? 0 : a.moved;
    *next_ms = rc < 0 ? -1 : a.next;
    return rc;
}

/* ------------------------------------------------------------- Workers --- */

static const char *queues_str(const st_worker_id *w)
{
    return w->queues_str ? w->queues_str : "*";
}

static bool is_wildcard(const st_worker_id *w)
{
    return !w->queues || !w->queues[0] ||
           (strcmp(w->queues[0], "*") == 0 && !w->queues[1]);
}

/* The workers written to at now_ms: one for register and unregister,
 * n for ping. */
struct workers_arg {
    const st_worker_id *const *ws;
    size_t n;
    int64_t now_ms;
};

static int register_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct workers_arg *a = arg;
    const st_worker_id *w = a->ws[0];

    return sq_exec(c, S_WORKER_REG, e, "tti", w->name, queues_str(w),
                   a->now_ms);
}

int sq_worker_register(st_backend *b, const st_worker_id *w, int64_t now_ms,
                       stellar_error *e)
{
    struct workers_arg a = {&w, 1, now_ms};

    if (!w || !w->name)
        return st_fail(e, STELLAR_EINVAL, "sqlite worker_register: no name");
    return sq_txn((sq_conn *)b, "worker_register", SQ_WRITE, register_body, &a,
                  e);
}

/* Deletes worker name's row and its per-worker counters. */
static int forget_worker(sq_conn *c, const char *name, stellar_error *e)
{
    int rc = sq_exec(c, S_WORKER_DEL, e, "t", name);
    if (rc < 0) return rc;
    return sq_exec(c, S_WORKER_STATS_DEL, e, "t", name);
}

static int unregister_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct workers_arg *a = arg;

    return forget_worker(c, a->ws[0]->name, e);
}

int sq_worker_unregister(st_backend *b, const st_worker_id *w, stellar_error *e)
{
    struct workers_arg a = {&w, 1, 0};

    if (!w || !w->name)
        return st_fail(e, STELLAR_EINVAL, "sqlite worker_unregister: no name");
    return sq_txn((sq_conn *)b, "worker_unregister", SQ_WRITE, unregister_body,
                  &a, e);
}

static int ping_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct workers_arg *a = arg;
    size_t i;
    int rc;

    for (i = 0; i < a->n; i++) {
        const st_worker_id *w = a->ws[i];
        if (!w || !w->name) continue;
        rc = sq_exec(c, S_WORKER_PING, e, "tti", w->name, queues_str(w),
                     a->now_ms);
        if (rc < 0) return rc;
    }
    return STELLAR_OK;
}

int sq_ping(st_backend *b, const st_worker_id *const *ws, size_t n,
            int64_t now_ms, stellar_error *e)
{
    struct workers_arg a = {ws, n, now_ms};

    if (n == 0) return STELLAR_OK;
    return sq_txn((sq_conn *)b, "ping", SQ_WRITE, ping_body, &a, e);
}

/*
 * Finds the first job of w's queues in priority order: 1 (with *id and, if
 * r is not NULL, copies of its queue and payload in r), 0 if every queue is
 * empty, or an error.
 */
static int head(sq_conn *c, const st_worker_id *w, int64_t *id, st_reserved *r,
                stellar_error *e)
{
    const char *const *q;
    sqlite3_stmt *s;
    int rc;

    if (is_wildcard(w)) {
        if ((rc = sq_prep(c, S_JOB_HEAD_ANY, &s, e, "")) < 0) return rc;
        if ((rc = sq_step(c, s, e)) != 1) return rc;
        *id = sqlite3_column_int64(s, 0);
        if (r) {
            r->payload = st_strndup((const char *)sqlite3_column_text(s, 1),
                                    (size_t)sqlite3_column_bytes(s, 1));
            r->payload_len = (size_t)sqlite3_column_bytes(s, 1);
            r->queue = st_strdup((const char *)sqlite3_column_text(s, 2));
        }
        sqlite3_reset(s);
        return r && (!r->payload || !r->queue) ? sq_oom(c, e) : 1;
    }
    for (q = w->queues; *q; q++) {
        if ((rc = sq_prep(c, S_JOB_HEAD, &s, e, "t", *q)) < 0) return rc;
        if ((rc = sq_step(c, s, e)) < 0) return rc;
        if (rc == 0) continue;
        *id = sqlite3_column_int64(s, 0);
        if (r) {
            r->payload = st_strndup((const char *)sqlite3_column_text(s, 1),
                                    (size_t)sqlite3_column_bytes(s, 1));
            r->payload_len = (size_t)sqlite3_column_bytes(s, 1);
            r->queue = st_strdup(*q);
        }
        sqlite3_reset(s);
        return r && (!r->payload || !r->queue) ? sq_oom(c, e) : 1;
    }
    return 0;
}

/* Applies the end of w's held job (inside a write transaction), except for
 * clearing its working-on record: the caller does that, or overwrites it. */
static int apply_done(sq_conn *c, const st_worker_id *w, const st_done *d,
                      stellar_error *e)
{
    int rc;

    switch (d ? d->outcome : ST_DONE_NONE) {
    case ST_DONE_OK:
        return sq_exec(c, S_STAT_INCR2, e, "tti", "processed", w->name,
                       (int64_t)1);
    case ST_DONE_FAILED:
        rc = sq_exec(c, S_STAT_INCR2, e, "tti", "failed", w->name, (int64_t)1);
        if (rc < 0) return rc;
        return sq_exec(c, S_FAILED_ADD, e, "t", d->failed_entry);
    case ST_DONE_REQUEUE: return sq_push_head(c, d->queue, d->payload, e);
    case ST_DONE_NONE:
    case ST_DONE_DROPPED:
    default: return STELLAR_OK;
    }
}

static int no_job(const st_worker_id *w, stellar_error *e)
{
    return st_fail(e, STELLAR_ENOTFOUND, "no job in queues %s", queues_str(w));
}

struct reserve_arg {
    const st_worker_id *w;
    const st_done *done; /* the end of the held job, or NULL */
    int64_t now_ms;
    bool want;       /* reserve a job (the caller gave out) */
    bool found;      /* one was reserved, into got */
    st_reserved got; /* owned until handed out */
};

static int reserve_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct reserve_arg *a = arg;
    const st_worker_id *w = a->w;
    int64_t id = 0, one;
    int rc;

    if ((rc = apply_done(c, w, a->done, e)) < 0) return rc;
    if (a->want) {
        if ((rc = head(c, w, &id, &a->got, e)) < 0) return rc;
        a->found = rc == 1;
    }
    if (!a->found) {
        if (!a->done || a->done->outcome == ST_DONE_NONE) return STELLAR_OK;
        return sq_exec(c, S_WORKER_CLEAR, e, "t", w->name);
    }
    if ((rc = sq_exec(c, S_JOB_DEL_ID, e, "i", id)) < 0) return rc;
    rc = sq_exec(c, S_WORKER_TAKE, e, "tttti", w->name, queues_str(w),
                 a->got.queue, a->got.payload, a->now_ms);
    if (rc < 0) return rc;
    /* Live as kv_get reads it: by the clock, not by now_ms (the caller's
     * stamp for the working-on record). */
    rc = sq_int(c, S_KV_SUSPECT, &one, e, "ti", a->got.payload, st_now_ms());
    if (rc < 0) return rc;
    a->got.suspect = rc == 1;
    return STELLAR_OK;
}

int sq_reserve(st_backend *b, const st_worker_id *w, const st_done *done,
               int64_t now_ms, st_reserved *out, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    enum st_outcome oc = done ? done->outcome : ST_DONE_NONE;
    struct reserve_arg a = {w,           done,  now_ms,
                            out != NULL, false, {NULL, NULL, 0, false}};
    int64_t id = 0;
    int rc;

    c->op = "reserve";
    if (out) *out = a.got;
    if (!w || !w->name)
        return st_fail(e, STELLAR_EINVAL, "sqlite reserve: no worker name");
    if ((oc == ST_DONE_FAILED && !done->failed_entry) ||
        (oc == ST_DONE_REQUEUE && (!done->queue || !done->payload)))
        return st_fail(e, STELLAR_EINVAL,
                       "sqlite reserve: done without its failed entry or "
                       "payload");
    if (oc == ST_DONE_NONE) {
        if (!out) return STELLAR_OK;
        /* Idle polling: look without the write lock first. */
        if ((rc = head(c, w, &id, NULL, e)) <= 0)
            return rc < 0 ? rc : no_job(w, e);
    }
    if ((rc = sq_txn(c, "reserve", SQ_WRITE, reserve_body, &a, e)) < 0) {
        st_reserved_clear(&a.got);
        return rc;
    }
    if (!a.found) return out ? no_job(w, e) : STELLAR_OK;
    *out = a.got;
    return STELLAR_OK;
}

/* One row of S_WORKERS as {"queues", "started", "ping", "working_on"}, or
 * NULL on allocation failure. */
static json_t *worker_json(sqlite3_stmt *s)
{
    json_t *one = json_object(), *job;
    bool ok;

    if (sqlite3_column_type(s, 5) == SQLITE_NULL) {
        job = json_null();
    } else if ((job = json_object()) &&
               (sq_jset(job, "run_at", sq_col_int(s, 6)) < 0 ||
                sq_jset(job, "queue", sq_col_str(s, 4)) < 0 ||
                sq_jset(job, "payload", sq_col_str(s, 5)) < 0)) {
        json_decref(job);
        job = NULL;
    }
    ok = one && job && sq_jset(one, "queues", sq_col_str(s, 1)) == 0 &&
         sq_jset(one, "started", sq_col_int(s, 2)) == 0 &&
         sq_jset(one, "ping", sq_col_int(s, 3)) == 0;
    if (ok) {
        ok = sq_jset(one, "working_on", job) == 0; /* takes job */
        job = NULL;
    }
    json_decref(job);
    if (ok) return one;
    json_decref(one);
    return NULL;
}

int sq_workers(st_backend *b, json_t **out, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    json_t *all;
    sqlite3_stmt *s;
    int rc;

    c->op = "workers";
    *out = NULL;
    if ((rc = sq_prep(c, S_WORKERS, &s, e, "")) < 0) return rc;
    if (!(all = json_object())) {
        sqlite3_reset(s);
        return sq_oom(c, e);
    }
    while ((rc = sq_step(c, s, e)) == 1) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        if (name && sq_jset(all, name, worker_json(s)) < 0) {
            sqlite3_reset(s);
            rc = sq_oom(c, e);
            break;
        }
    }
    if (rc < 0) {
        json_decref(all);
        return rc;
    }
    *out = all;
    return STELLAR_OK;
}

/* The §2.6 entry node-resque's forceCleanWorker writes, for a caller of
 * clean_worker that gave none. New string, NULL on allocation failure. */
static char *timeout_entry(const char *name, const char *queue,
                           const char *payload)
{
    static const char why[] = "Worker Timeout (killed manually)";
    char host[256], date[80], *line, *entry = NULL;
    int64_t now = st_now_ms();
    json_t *bt = NULL;

    if (gethostname(host, sizeof host) != 0) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    st_js_date(now, date);
    line = st_asprintf("killed by %s at %s", host, date);
    if (line)
        bt = json_pack("[s, s, s]", line, "queue#forceCleanWorker",
                       "node-resque");
    if (bt) entry = st_failed_entry(name, queue, payload, why, why, bt, now);
    json_decref(bt);
    st_free(line);
    return entry;
}

struct clean_arg {
    const char *name;
    enum st_clean_mode mode;
    const char *failed_entry; /* or NULL: timeout_entry builds one */
    char *queue, *held;       /* the job it held (owned), or NULL */
    char *built;              /* timeout_entry's (owned), or NULL */
};

static int clean_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct clean_arg *a = arg;
    sqlite3_stmt *s;
    int rc;

    if ((rc = sq_prep(c, S_WORKER_JOB, &s, e, "t", a->name)) < 0) return rc;
    if ((rc = sq_step(c, s, e)) < 0) return rc;
    if (rc == 0)
        return st_fail(e, STELLAR_ENOTFOUND, "no worker named %s", a->name);
    if (sqlite3_column_type(s, 1) != SQLITE_NULL) {
        const char *q = (const char *)sqlite3_column_text(s, 0);
        a->queue = st_strdup(q ? q : "default");
        a->held = st_strndup((const char *)sqlite3_column_text(s, 1),
                             (size_t)sqlite3_column_bytes(s, 1));
        if (!a->queue || !a->held) {
            sqlite3_reset(s);
            return sq_oom(c, e);
        }
    }
    sqlite3_reset(s);
    if (a->held && a->mode == ST_CLEAN_REQUEUE) {
        if ((rc = sq_push_head(c, a->queue, a->held, e)) < 0) return rc;
    } else if (a->held) {
        /* As node-resque's forceCleanWorker, except that an idle worker
         * does not count as a failure (the Redis backend does the same). */
        if (!a->failed_entry &&
            !(a->built = timeout_entry(a->name, a->queue, a->held)))
            return sq_oom(c, e);
        rc = sq_exec(c, S_STAT_INCR, e, "ti", "failed", (int64_t)1);
        if (rc < 0) return rc;
        rc = sq_exec(c, S_FAILED_ADD, e, "t",
                     a->failed_entry ? a->failed_entry : a->built);
        if (rc < 0) return rc;
    }
    return forget_worker(c, a->name, e);
}

int sq_clean_worker(st_backend *b, const char *name, enum st_clean_mode mode,
                    const char *failed_entry, char **payload, stellar_error *e)
{
    struct clean_arg a = {name, mode, failed_entry, NULL, NULL, NULL};
    int rc;

    if (payload) *payload = NULL;
    if (!name)
        return st_fail(e, STELLAR_EINVAL, "sqlite clean_worker: no name");
    rc = sq_txn((sq_conn *)b, "clean_worker", SQ_WRITE, clean_body, &a, e);
    st_free(a.built);
    st_free(a.queue);
    if (rc == STELLAR_OK && payload)
        *payload = a.held;
    else
        st_free(a.held);
    return rc;
}

/* ---------------------------------------------------------------- Wait --- */

/* Without a watch on the WAL, how often wait looks (ms); with one, how
 * often it looks anyway. */
#define WAIT_POLL_MS  1
#define WAIT_CHECK_MS 25

/*
 * Waits until one of w's queues may hold a job or timeout_ms pass: after
 * each write to the WAL (every WAIT_POLL_MS without a watch, and every
 * WAIT_CHECK_MS anyway), compares PRAGMA data_version (it changes when
 * another connection commits) and looks at w's queues when it changed.
 * A commit shows in data_version only once its last WAL write is done, so
 * a write that changed nothing yet is looked at again 1 ms later. Events
 * left from before this call are not dropped but looked at: one may be
 * the write of a commit the first look below came too early to see.
 * Returns STELLAR_OK either way.
 */
int sq_wait(st_backend *b, const st_worker_id *w, int64_t timeout_ms,
            stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    int64_t deadline = st_mono_ms() + timeout_ms, seen = 0, v = 0, id, now;
    int64_t check_at;
    enum sq_wake why;
    bool watched;
    int rc;

    c->op = "wait";
    if (!w) return st_fail(e, STELLAR_EINVAL, "sqlite wait: no worker");
    watched = sq_watch_open(c);
    if ((rc = sq_int(c, S_DATA_VERSION, &seen, e, "")) < 0) return rc;
    if ((rc = head(c, w, &id, NULL, e)) != 0) return rc < 0 ? rc : STELLAR_OK;
    check_at = st_mono_ms() + WAIT_CHECK_MS;
    while ((now = st_mono_ms()) < deadline) {
        int64_t nap = watched ? check_at - now : WAIT_POLL_MS;
        if (nap > deadline - now) nap = deadline - now;
        why = sq_watch_wait(c, nap < 0 ? 0 : nap);
        now = st_mono_ms();
        if (why == SQ_WAKE_OTHER && now < check_at) continue;
        if ((rc = sq_int(c, S_DATA_VERSION, &v, e, "")) < 0) return rc;
        check_at = now + (v == seen && why == SQ_WAKE_WAL ? 1 : WAIT_CHECK_MS);
        if (v == seen) continue;
        seen = v;
        if ((rc = head(c, w, &id, NULL, e)) != 0)
            return rc < 0 ? rc : STELLAR_OK;
    }
    return STELLAR_OK;
}

/* ------------------------------------------------------- Stats, failed --- */

int sq_stats(st_backend *b, json_t **out, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    json_t *all;
    sqlite3_stmt *s;
    int rc;

    c->op = "stats";
    *out = NULL;
    if ((rc = sq_prep(c, S_STATS, &s, e, "")) < 0) return rc;
    if (!(all = json_object())) {
        sqlite3_reset(s);
        return sq_oom(c, e);
    }
    while ((rc = sq_step(c, s, e)) == 1) {
        const char *key = (const char *)sqlite3_column_text(s, 0);
        if (key && sq_jset(all, key, sq_col_int(s, 1)) < 0) {
            sqlite3_reset(s);
            rc = sq_oom(c, e);
            break;
        }
    }
    if (rc < 0) {
        json_decref(all);
        return rc;
    }
    *out = all;
    return STELLAR_OK;
}

struct incr_arg {
    const char *key;
    int64_t by;
};

static int stat_incr_body(sq_conn *c, void *arg, stellar_error *e)
{
    const struct incr_arg *a = arg;

    return sq_exec(c, S_STAT_INCR, e, "ti", a->key, a->by);
}

int sq_stat_incr(st_backend *b, const char *key, int64_t by, stellar_error *e)
{
    struct incr_arg a = {key, by};

    if (!key) return st_fail(e, STELLAR_EINVAL, "sqlite stat_incr: no key");
    return sq_txn((sq_conn *)b, "stat_incr", SQ_WRITE, stat_incr_body, &a, e);
}

int sq_failed_count(st_backend *b, int64_t *n, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    int rc;

    c->op = "failed_count";
    *n = 0;
    rc = sq_int(c, S_FAILED_COUNT, n, e, "");
    return rc < 0 ? rc : STELLAR_OK;
}

int sq_failed_range(st_backend *b, int64_t start, int64_t stop,
                    json_t **entries, stellar_error *e)
{
    return sq_range((sq_conn *)b, "failed_range", S_FAILED_COUNT,
                    S_FAILED_RANGE, NULL, start, stop, entries, e);
}

struct failed_remove_arg {
    const char *entry;
    const st_done *requeue; /* its job goes back to its queue, or NULL */
    int64_t removed;
};

static int failed_remove_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct failed_remove_arg *a = arg;
    const st_done *r = a->requeue;
    int rc;

    if ((rc = sq_exec(c, S_FAILED_DEL, e, "t", a->entry)) < 0) return rc;
    a->removed = sq_changes(c);
    if (a->removed > 0 && r) {
        if ((rc = sq_exec(c, S_QUEUE_ADD, e, "t", r->queue)) < 0) return rc;
        return sq_exec(c, S_JOB_PUSH, e, "tt", r->queue, r->payload);
    }
    return STELLAR_OK;
}

int sq_failed_remove(st_backend *b, const char *entry, const st_done *requeue,
                     int64_t *removed, stellar_error *e)
{
    struct failed_remove_arg a = {entry, requeue, 0};
    int rc;

    *removed = 0;
    if (!entry || (requeue && (!requeue->queue || !requeue->payload)))
        return st_fail(e, STELLAR_EINVAL,
                       "sqlite failed_remove: no entry, queue or payload");
    rc = sq_txn((sq_conn *)b, "failed_remove", SQ_WRITE, failed_remove_body, &a,
                e);
    if (rc == STELLAR_OK) *removed = a.removed;
    return rc;
}

/* ------------------------------------------------------------------ KV --- */

/*
 * Expired rows (expires_ms <= now) read as absent everywhere; every write
 * below first deletes all of them (cheap: kv_expires index), so they do
 * not pile up.
 */

/* Reads the live value of key: 1 with *value (new string) and *expires (0:
 * none), 0 if absent, or an error. */
static int kv_read(sq_conn *c, const char *key, int64_t now, char **value,
                   int64_t *expires, stellar_error *e)
{
    sqlite3_stmt *s;
    int rc;

    *value = NULL;
    if ((rc = sq_prep(c, S_KV_GET, &s, e, "ti", key, now)) < 0) return rc;
    if ((rc = sq_step(c, s, e)) != 1) return rc;
    *value = st_strndup((const char *)sqlite3_column_text(s, 0),
                        (size_t)sqlite3_column_bytes(s, 0));
    if (expires) *expires = sqlite3_column_int64(s, 1); /* NULL reads 0 */
    sqlite3_reset(s);
    return *value ? 1 : sq_oom(c, e);
}

/* The arguments and results of a kv write; each runs in one write
 * transaction that first deletes the keys expired by now. */
struct kv_arg {
    const char *key, *value; /* value NULL: any (del, expire) */
    int64_t now, ttl_ms, by; /* ttl_ms <= 0: no expiry */
    bool nx;                 /* set: only if key is absent */
    bool set;                /* set: written; expire: expiry changed */
    int64_t n;               /* del: rows removed; incr: the new value */
};

/* Deletes the keys expired by now: every kv write does, first. */
static int kv_purge(sq_conn *c, int64_t now, stellar_error *e)
{
    return sq_exec(c, S_KV_PURGE, e, "i", now);
}

static int kv_set_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct kv_arg *a = arg;
    char *old = NULL;
    int rc;

    if ((rc = kv_purge(c, a->now, e)) < 0) return rc;
    if (a->nx && (rc = kv_read(c, a->key, a->now, &old, NULL, e)) != 0) {
        st_free(old);
        return rc < 0 ? rc : STELLAR_OK; /* taken: commits the purge */
    }
    rc = sq_exec(c, S_KV_PUT, e, "tti", a->key, a->value,
                 a->ttl_ms > 0 ? a->now + a->ttl_ms : (int64_t)0);
    if (rc < 0) return rc;
    a->set = true;
    return STELLAR_OK;
}

int sq_kv_set(st_backend *b, const char *key, const char *value, int64_t ttl_ms,
              bool nx, bool *set, stellar_error *e)
{
    struct kv_arg a = {key, value, st_now_ms(), ttl_ms, 0, nx, false, 0};
    int rc;

    if (set) *set = false;
    if (!key || !value)
        return st_fail(e, STELLAR_EINVAL, "sqlite kv_set: no key or value");
    rc = sq_txn((sq_conn *)b, "kv_set", SQ_WRITE, kv_set_body, &a, e);
    if (rc == STELLAR_OK && set) *set = a.set;
    return rc;
}

int sq_kv_get(st_backend *b, const char *key, char **value, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    int rc;

    c->op = "kv_get";
    rc = kv_read(c, key, st_now_ms(), value, NULL, e);
    return rc < 0 ? rc : STELLAR_OK;
}

static int kv_del_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct kv_arg *a = arg;
    int rc;

    if ((rc = kv_purge(c, a->now, e)) < 0) return rc;
    if ((rc = sq_exec(c, S_KV_DEL, e, "tt", a->key, a->value)) < 0) return rc;
    a->n = sq_changes(c);
    return STELLAR_OK;
}

int sq_kv_del(st_backend *b, const char *key, const char *value,
              int64_t *removed, stellar_error *e)
{
    struct kv_arg a = {key, value, st_now_ms(), 0, 0, false, false, 0};
    int rc;

    if (removed) *removed = 0;
    rc = sq_txn((sq_conn *)b, "kv_del", SQ_WRITE, kv_del_body, &a, e);
    if (rc == STELLAR_OK && removed) *removed = a.n;
    return rc;
}

static int kv_expire_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct kv_arg *a = arg;
    int rc;

    if ((rc = kv_purge(c, a->now, e)) < 0) return rc;
    rc = sq_exec(c, S_KV_EXPIRE, e, "tti", a->key, a->value,
                 a->ttl_ms > 0 ? a->now + a->ttl_ms : (int64_t)0);
    if (rc < 0) return rc;
    a->set = sq_changes(c) > 0;
    return STELLAR_OK;
}

/* ttl_ms <= 0 removes the expiry (as kv_set's 0: none). value NULL: any. */
int sq_kv_expire(st_backend *b, const char *key, const char *value,
                 int64_t ttl_ms, bool *set, stellar_error *e)
{
    struct kv_arg a = {key, value, st_now_ms(), ttl_ms, 0, false, false, 0};
    int rc;

    if (set) *set = false;
    rc = sq_txn((sq_conn *)b, "kv_expire", SQ_WRITE, kv_expire_body, &a, e);
    if (rc == STELLAR_OK && set) *set = a.set;
    return rc;
}

static int kv_incr_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct kv_arg *a = arg;
    int64_t expires = 0, v = 0, by = a->by;
    char *old = NULL, num[24];
    int rc;

    if ((rc = kv_purge(c, a->now, e)) < 0) return rc;
    if ((rc = kv_read(c, a->key, a->now, &old, &expires, e)) < 0) return rc;
    if (old) {
        char *end;
        long long ll;
        errno = 0;
        ll = strtoll(old, &end, 10);
        if (errno || end == old || *end) {
            rc = st_fail(e, STELLAR_EINVAL,
                         "sqlite kv_incr: %s holds '%.40s', not an integer",
                         a->key, old);
            st_free(old);
            return rc;
        }
        v = (int64_t)ll;
        st_free(old);
    }
    if ((by > 0 && v > INT64_MAX - by) || (by < 0 && v < INT64_MIN - by))
        return st_fail(e, STELLAR_EINVAL, "sqlite kv_incr: %s would overflow",
                       a->key);
    v += by;
    if (a->ttl_ms > 0) expires = a->now + a->ttl_ms;
    snprintf(num, sizeof num, "%lld", (long long)v);
    if ((rc = sq_exec(c, S_KV_PUT, e, "tti", a->key, num, expires)) < 0)
        return rc;
    a->n = v;
    return STELLAR_OK;
}

/* As Redis INCRBY: the value must be a decimal integer; the expiry is kept
 * unless ttl_ms > 0 sets a new one. */
int sq_kv_incr(st_backend *b, const char *key, int64_t by, int64_t ttl_ms,
               int64_t *out, stellar_error *e)
{
    struct kv_arg a = {key, NULL, st_now_ms(), ttl_ms, by, false, false, 0};
    int rc;

    if (out) *out = 0;
    if (!key) return st_fail(e, STELLAR_EINVAL, "sqlite kv_incr: no key");
    rc = sq_txn((sq_conn *)b, "kv_incr", SQ_WRITE, kv_incr_body, &a, e);
    if (rc == STELLAR_OK && out) *out = a.n;
    return rc;
}

int sq_kv_scan(st_backend *b, const char *prefix, json_t **out,
               stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    json_t *all = NULL, *one = NULL;
    sqlite3_stmt *s;
    size_t n = prefix ? strlen(prefix) : 0;
    char *upper = NULL;
    int rc;

    c->op = "kv_scan";
    *out = NULL;
    if (!prefix) prefix = "";
    /* Keys with the prefix sort in [prefix, upper): upper is the prefix
     * with its last byte below 0xff bumped, the rest cut off. */
    while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
        n--;
    if (n > 0) {
        if (!(upper = st_strndup(prefix, n))) return sq_oom(c, e);
        upper[n - 1] = (char)((unsigned char)upper[n - 1] + 1);
    }
    rc = sq_prep(c, S_KV_SCAN, &s, e, "tti", prefix, upper, st_now_ms());
    if (rc < 0) goto fail;
    if (!(all = json_object())) goto nomem;
    while ((rc = sq_step(c, s, e)) == 1) {
        const char *key = (const char *)sqlite3_column_text(s, 0);
        if (!key) continue;
        if (!(one = json_object()) ||
            sq_jset(one, "value", sq_col_str(s, 1)) < 0 ||
            sq_jset(one, "expires", sq_col_int(s, 2)) < 0)
            goto nomem;
        rc = json_object_set_new(all, key, one);
        one = NULL;
        if (rc < 0) goto nomem;
    }
    if (rc < 0) goto fail;
    st_free(upper);
    *out = all;
    return STELLAR_OK;
nomem:
    sqlite3_reset(s);
    rc = sq_oom(c, e);
fail:
    json_decref(one);
    json_decref(all);
    st_free(upper);
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
    .wait = sq_wait,
};
