/*
 * open.c: opening and closing a connection of the SQLite backend.
 *
 * Opening is most of the ways a file can be unusable: a bad URL, a file or
 * folder without write access (then read-only, or read as an unchanging
 * file), another program's file (refused untouched, see schema.c), several
 * processes making a new file at once (WAL switch, schema creation). Each
 * is decided here, once, so that every operation after it can assume an
 * open, WAL-mode file with this build's schema.
 */
#include "sq.h"

#include <string.h>
#include <unistd.h>

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
