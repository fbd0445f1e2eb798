/*
 * schema.c: the SQLite backend's schema: whose a file is, which schema
 * version it has, and the migrations that bring it to this build's.
 *
 * One file meets older and newer builds, and a file of another program may
 * be given by mistake: the rules for telling ours and for changing the
 * schema sit here, in one place, apart from the code that uses the tables.
 * open.c calls sq_schema_version before it writes anything, and sq_schema_init
 * once the file is open.
 */
#include "sq.h"

/*
 * The schema version, kept in meta('schema_version'). The shape of `meta`
 * itself never changes, so any version can read any file's version.
 *
 * To change the schema:
 *   1. bump SCHEMA_VERSION;
 *   2. append to migrations[] the script that turns version N-1 into N
 *      (never edit a script that has shipped: files in the field were made
 *      by it);
 *   3. add a test that opens a file written by the old version (keep one as
 *      a fixture, with data in every table) and checks that the data reads
 *      back and every operation works.
 * open() runs every missing step, in order, in one BEGIN IMMEDIATE
 * transaction; a new file starts at version 0 and runs them all, so the
 * migration path is exercised by every test. A file with a newer version
 * than this build knows is refused.
 */
#define SCHEMA_VERSION 4

/*
 * The oldest version a read-only connection reads as it is (it cannot
 * migrate): every statement but those of reserve reads a file of this
 * version the same (versions 3 and 4 only added the schedules and control
 * tables, which sched_list and the controls op look for, and a column no
 * reader selects). Raise it when a
 * migration changes what readers select.
 */
#define SCHEMA_READABLE 2

/*
 * PRAGMA application_id of a Stellar file ("Stel"). open() writes nothing
 * to a file that is not ours: ours has this id, or (made before the id
 * existed) our meta table with a schema_version, and is marked on open; an
 * empty file (no tables) is taken. Any other file is refused with EINVAL,
 * untouched: not even switched to WAL.
 */
#define APPLICATION_ID 1400137068 /* 0x5374656C */

static const char *const migrations[SCHEMA_VERSION] = {
    /* 0 -> 1: the first schema. */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
    " WITHOUT ROWID;"
    /* The queue set: names ever pushed to, until del_queue. */
    "CREATE TABLE queues(name TEXT PRIMARY KEY) WITHOUT ROWID;"
    /* Every queued job; a queue is its rows in id order (FIFO). */
    "CREATE TABLE jobs(id INTEGER PRIMARY KEY, queue TEXT NOT NULL,"
    " payload TEXT NOT NULL);"
    "CREATE INDEX jobs_queue ON jobs(queue, id);"
    /* Delayed jobs: due at at_ms (epoch ms), FIFO by id within at_ms. */
    "CREATE TABLE delayed(id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL,"
    " queue TEXT NOT NULL, payload TEXT NOT NULL);"
    "CREATE INDEX delayed_at ON delayed(at_ms, id);"
    "CREATE INDEX delayed_payload ON delayed(payload, at_ms);"
    /* One row per worker (or per ping of an unregistered one: a ghost,
     * started_ms NULL). job_*: its working-on record, NULL when idle. */
    "CREATE TABLE workers(name TEXT PRIMARY KEY, queues TEXT,"
    " started_ms INTEGER, ping_ms INTEGER, job_queue TEXT,"
    " job_payload TEXT, job_run_ms INTEGER);"
    "CREATE TABLE stats(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    /* The failed list, oldest first. */
    "CREATE TABLE failed(id INTEGER PRIMARY KEY, entry TEXT NOT NULL);"
    /* Locks and counters; expires_ms NULL: no expiry. A row whose
     * expires_ms <= now is absent; writers purge such rows. */
    "CREATE TABLE kv(key TEXT PRIMARY KEY, value TEXT NOT NULL,"
    " expires_ms INTEGER) WITHOUT ROWID;"
    "CREATE INDEX kv_expires ON kv(expires_ms);",
    /* 1 -> 2: when each job entered its queue (NULL for older rows). */
    "ALTER TABLE jobs ADD COLUMN enqueued_ms INTEGER;",
    /* 2 -> 3: cron schedules (sched.c): the last tick that queued a job,
     * paused (0/1), the first sight. */
    ("CREATE TABLE schedules(name TEXT PRIMARY KEY, last_ms INTEGER,"
     " paused INTEGER NOT NULL DEFAULT 0, seen_ms INTEGER) WITHOUT ROWID;"),
    /* 3 -> 4: queue control (issue 15; control.c). The class of the job
     * each worker holds, so that a task's running jobs are a count over
     * workers (no write per job beyond the record reserve writes anyway;
     * no index either: one row per worker is a short scan, and an index
     * would be written on every reserve, limits or not); pauses (until_ms
     * 0: until resumed); limits (0: none); and the start times of targets
     * with a rate limit (a sliding window). */
    "ALTER TABLE workers ADD COLUMN job_class TEXT;"
    "CREATE TABLE pauses(queue TEXT PRIMARY KEY, until_ms INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE limits(target TEXT PRIMARY KEY,"
    " concurrency INTEGER NOT NULL, rate INTEGER NOT NULL,"
    " window_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE starts(id INTEGER PRIMARY KEY, target TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL);"
    "CREATE INDEX starts_target ON starts(target, at_ms);",
};

/* ---------------------------------------------------------- Whose file --- */

/* Column 0 of the first row of sql (one int bound as ?1 if arg >= 0), or
 * def if there is no row. A SQLite result code. */
static int query_int(sq_conn *c, const char *sql, int64_t *v, int64_t def)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);

    *v = def;
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_type(s, 0) != SQLITE_NULL)
            *v = sqlite3_column_int64(s, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/*
 * Whose the file is (see APPLICATION_ID), with no write: *v is its schema
 * version (0: empty, ours to take) and *marked whether it has our id.
 * EINVAL naming the file and why if it is another program's; sqlite_rc
 * gets the SQLite code of a failed read (for the read-only fallback).
 */
int sq_schema_version(sq_conn *c, int64_t *v, bool *marked, int *sqlite_rc,
                      stellar_error *e)
{
    int64_t id = 0, meta = 0, tables = 0;
    int rc;

    *v = 0;
    *marked = false;
    *sqlite_rc = SQLITE_OK;
    rc = query_int(c, "PRAGMA application_id", &id, 0);
    if (rc == SQLITE_OK)
        rc = query_int(c,
                       "SELECT count(*) FROM sqlite_master WHERE type IN"
                       " ('table', 'view') AND name NOT LIKE 'sqlite\\_%'"
                       " ESCAPE '\\'",
                       &tables, 0);
    if (rc == SQLITE_OK)
        rc = query_int(c,
                       "SELECT count(*) FROM sqlite_master"
                       " WHERE type = 'table' AND name = 'meta'",
                       &meta, 0);
    if (rc == SQLITE_OK && meta)
        rc = query_int(c,
                       "SELECT CAST(value AS INTEGER) FROM meta"
                       " WHERE key = 'schema_version'",
                       v, -1);
    if (rc != SQLITE_OK) {
        *sqlite_rc = rc;
        return sq_fail(c, rc, e);
    }
    *marked = id == APPLICATION_ID;
    if (id != 0 && !*marked)
        return st_fail(e, STELLAR_EINVAL,
                       "sqlite open: %s is not a Stellar database (its "
                       "application_id is 0x%08llx, another program's); "
                       "left untouched: give Stellar a file of its own",
                       c->path, (unsigned long long)(uint32_t)id);
    if (*v < 0)
        return st_fail(e, STELLAR_EINVAL,
                       "sqlite open: %s has a meta table but no "
                       "schema_version: not a Stellar database; left "
                       "untouched",
                       c->path);
    if (tables && !meta && !*marked)
        return st_fail(e, STELLAR_EINVAL,
                       "sqlite open: %s is not a Stellar database (it has "
                       "another program's tables and no Stellar mark); left "
                       "untouched: give Stellar a file of its own",
                       c->path);
    return STELLAR_OK;
}

/* ---------------------------------------------------------- Migrations --- */

/* Inside the write transaction: reads the version again (another process
 * may have migrated the file meanwhile), runs the missing migrations and
 * marks the file as ours. */
static int migrate(sq_conn *c, void *arg, stellar_error *e)
{
    int64_t v;
    bool marked;
    int rc, ignored;
    char *msg = NULL;

    (void)arg;
    c->op = "open (reading the schema version)";
    if ((rc = sq_schema_version(c, &v, &marked, &ignored, e)) < 0) return rc;
    if (v > SCHEMA_VERSION)
        return st_fail(e, STELLAR_EBACKEND,
                       "sqlite open: %s has schema version %lld, but this "
                       "Stellar knows versions up to %d: use a newer Stellar",
                       c->path, (long long)v, SCHEMA_VERSION);
    for (; v < SCHEMA_VERSION; v++) {
        rc = sqlite3_exec(c->db, migrations[v], NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            rc = st_fail(e, STELLAR_EBACKEND,
                         "sqlite open: %s: migrating schema %lld -> %lld: %s",
                         c->path, (long long)v, (long long)v + 1,
                         msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            return rc;
        }
    }
    rc = sqlite3_exec(
        c->db,
        "INSERT OR REPLACE INTO meta(key, value)"
        " VALUES('schema_version', '" SQ_XSTR(
            SCHEMA_VERSION) "');"
                            " PRAGMA application_id = " SQ_XSTR(APPLICATION_ID),
        NULL, NULL, NULL);
    return rc == SQLITE_OK ? STELLAR_OK : sq_fail(c, rc, e);
}

/* Brings the file to SCHEMA_VERSION (see the procedure at the top) and
 * marks it as ours; v and marked: what sq_schema_version() read. */
int sq_schema_init(sq_conn *c, int64_t v, bool marked, stellar_error *e)
{
    if (v == SCHEMA_VERSION && (marked || c->ro_why)) return STELLAR_OK;
    if (c->ro_why && v >= SCHEMA_READABLE && v < SCHEMA_VERSION)
        return STELLAR_OK;
    if (c->ro_why)
        return st_fail(e, STELLAR_EBACKEND,
                       "sqlite open: %s has schema version %lld and this "
                       "Stellar needs %d, but it is open read-only (%s): "
                       "open it once with write access",
                       c->path, (long long)v, SCHEMA_VERSION, c->ro_why);
    /* Two processes may open a new file at once: the write lock makes one
     * create the schema and the other then see it. */
    return sq_txn(c, "open (creating or migrating the schema)", SQ_WRITE,
                  migrate, NULL, e);
}
