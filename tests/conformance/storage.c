/*
 * storage.c: what each store holds besides jobs: SQLite schema migration, a
 * foreign or read-only SQLite file, and Redis with a password.
 */
#include "conformance.h"

#define STELLAR_APPLICATION_ID 0x5374656C

/* PRAGMA application_id of the SQLite file at path. */
static int64_t sqlite_application_id(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t id = -1;

    ASSERT_EQ(SQLITE_OK, sqlite3_open(path, &db));
    ASSERT_EQ(SQLITE_OK,
              sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &st, NULL));
    if (sqlite3_step(st) == SQLITE_ROW) id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return id;
}

/* A store written by schema version 1 (tests/fixtures/schema-v1.sql, with a
 * row in every table) is migrated on open and keeps everything. */
void a_schema_1_sqlite_file_is_migrated_and_keeps_its_data(struct test_ctx *t)
{
    char path[512], url[600], *sql = NULL;
    stellar_options o = {0};
    stellar_error e = {0};
    json_t *v = NULL;
    sqlite3 *db = NULL;
    stellar *h = NULL;
    long len;
    FILE *f;

    if (is_redis(t)) SKIP("SQLite's schema");
    f = fopen(STELLAR_FIXTURES "/schema-v1.sql", "rb");
    ASSERT_TRUE(f != NULL);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    sql = calloc(1, (size_t)len + 1);
    ASSERT_TRUE(sql && fread(sql, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    snprintf(path, sizeof path, "%s/v1.db", t->dir);
    ASSERT_EQ(SQLITE_OK, sqlite3_open(path, &db));
    ASSERT_EQ(SQLITE_OK, sqlite3_exec(db, sql, NULL, NULL, NULL));
    sqlite3_close(db);
    free(sql);

    snprintf(url, sizeof url, "sqlite:%s", path);
    o.url = url;
    ASSERT_OK(stellar_open(&h, &o, &e), &e);
    reg(h, &task_record);
    ASSERT_EQ(1, test_length(h, "old"));
    ASSERT_EQ(-1, latency(h, "old")); /* a row from before: time unknown */
    ASSERT_EQ(7, test_stat(h, "processed"));
    ASSERT_EQ(1, test_failed_count(h));
    ASSERT_OK(stellar_timestamps(h, &v, &e), &e);
    ASSERT_JSON_EQ("[4102444800000]", v);
    json_decref(v);
    ASSERT_OK(stellar_locks(h, &v, &e), &e);
    ASSERT_EQ(1, json_object_size(v));
    json_decref(v);
    ASSERT_OK(stellar_workers(h, &v, &e), &e);
    ASSERT_TRUE(json_object_get(v, "host:1+1") != NULL);
    json_decref(v);

    /* It works on: a new job has a known age (asked before the processors
     * start, which would take it at once), and both run. */
    enqueue(h, "record", "{\"n\":4}", "fresh");
    ASSERT_TRUE(latency(h, "fresh") >= 0);
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 2, 10000);
    ASSERT_WAIT(test_length(h, "old") == 0, 5000);
    stellar_close(h);

    ASSERT_EQ(SQLITE_OK, sqlite3_open(path, &db));
    {
        sqlite3_stmt *st = NULL;
        ASSERT_EQ(SQLITE_OK,
                  sqlite3_prepare_v2(db,
                                     "SELECT value FROM meta WHERE key ="
                                     " 'schema_version'",
                                     -1, &st, NULL));
        ASSERT_EQ(SQLITE_ROW, sqlite3_step(st));
        ASSERT_STR_EQ("4", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    ASSERT_EQ(STELLAR_APPLICATION_ID, sqlite_application_id(path));
}

/* Runs sql on a new SQLite file at path (another program's). */
static void make_sqlite_file(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    ASSERT_EQ(SQLITE_OK, sqlite3_open(path, &db));
    ASSERT_EQ(SQLITE_OK, sqlite3_exec(db, sql, NULL, NULL, NULL));
    sqlite3_close(db);
}

/* --backend sqlite:app.db on another program's database: refused with
 * EINVAL naming the file and why, and not one byte of it changes (no WAL
 * switch, no tables). An empty file is taken, and marked as ours. */
void a_foreign_sqlite_file_is_refused_and_left_untouched(struct test_ctx *t)
{
    static const char *const sqls[] = {
        ("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);"
         "INSERT INTO users VALUES(1, 'ann');"),
        "PRAGMA application_id = 42;",
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);",
    };
    stellar_options o = {0};
    stellar_error e = {0};
    stellar *h = NULL;
    char path[512], url[600], wal[600];
    size_t i;

    if (is_redis(t)) SKIP("SQLite files");
    for (i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
        char *before, *after;
        size_t n0, n1;

        snprintf(path, sizeof path, "%s/app%zu.db", t->dir, i);
        snprintf(url, sizeof url, "sqlite:%s", path);
        snprintf(wal, sizeof wal, "%s-wal", path);
        make_sqlite_file(path, sqls[i]);
        before = slurp(path, &n0);
        ASSERT_TRUE(before && n0 > 0);
        o.url = url;
        ASSERT_EQ(STELLAR_EINVAL, stellar_open(&h, &o, &e));
        ASSERT_TRUE(h == NULL);
        test_note("%s", e.msg);
        ASSERT_TRUE(strstr(e.msg, path) != NULL);
        ASSERT_TRUE(strstr(e.msg, "not a Stellar database") != NULL);
        after = slurp(path, &n1);
        ASSERT_TRUE(after != NULL);
        ASSERT_EQ(n0, n1);
        ASSERT_TRUE(memcmp(before, after, n0) == 0);
        ASSERT_TRUE(access(wal, F_OK) != 0);
        free(before);
        free(after);
    }

    /* An empty file is ours to take; it is marked. */
    snprintf(path, sizeof path, "%s/empty.db", t->dir);
    snprintf(url, sizeof url, "sqlite:%s", path);
    fclose(fopen(path, "wb"));
    o.url = url;
    ASSERT_OK(stellar_open(&h, &o, &e), &e);
    reg(h, &task_record);
    enqueue(h, "record", "{\"n\":1}", "q");
    stellar_close(h);
    ASSERT_EQ(STELLAR_APPLICATION_ID, sqlite_application_id(path));
    h = NULL;
    ASSERT_OK(stellar_open(&h, &o, &e), &e); /* and opened again */
    ASSERT_EQ(1, test_length(h, "q"));
    stellar_close(h);
}

/* In a forked child, as nobody if we are root (root writes whatever the
 * mode bits say): opens the store at url, which the child must not be able
 * to write (why: the file or its folder), and inspects it. Exit 0: read
 * fine and refused writes; 77: could not drop the rights. */
static int inspect_read_only(const char *url, const char *path, const char *dir)
{
    pid_t pid;
    int status = 0;

    fflush(NULL);
    if ((pid = fork()) == 0) {
        stellar_options o = {0};
        stellar_error e = {0};
        stellar *h = NULL;
        json_t *stats = NULL;

        if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 ||
                               setuid(65534) != 0))
            _exit(77);
        if (access(path, R_OK) != 0 ||
            (access(path, W_OK) == 0 && access(dir, W_OK) == 0))
            _exit(77); /* cannot read it, or can still write it */
        o.url = url;
        ASSERT_OK(stellar_open(&h, &o, &e), &e);
        reg(h, &task_record);
        ASSERT_OK(stellar_stats(h, &stats, &e), &e);
        json_decref(stats);
        ASSERT_EQ(2, test_length(h, "q"));
        /* Queue control reads too (a file of schema 2 has none). */
        ASSERT_OK(stellar_pauses(h, &stats, &e), &e);
        ASSERT_JSON_EQ("{}", stats);
        json_decref(stats);
        ASSERT_OK(stellar_limits(h, &stats, &e), &e);
        ASSERT_JSON_EQ("{}", stats);
        json_decref(stats);
        /* And schedules (none here; the listing reads their records). */
        ASSERT_OK(stellar_schedules(h, &stats, &e), &e);
        ASSERT_JSON_EQ("{}", stats);
        json_decref(stats);
        ASSERT_TRUE(stellar_enqueue(h, "record", "{}", "q", &e) < 0);
        test_note("a write: %s", e.msg);
        ASSERT_TRUE(strstr(e.msg, "read-only") != NULL);
        stellar_close(h);
        fflush(NULL);
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A store that cannot be written (the file read-only; its folder
 * read-only) still opens, read-only: stats and queues work, a write fails
 * saying why. Runs the reader as nobody when the test runs as root. */
void a_read_only_sqlite_store_can_be_inspected(struct test_ctx *t)
{
    char dir[512], path[600], url[700];
    stellar_options o = {0};
    stellar_error e = {0};
    stellar *h = NULL;
    int rc1, rc2;

    if (is_redis(t)) SKIP("SQLite files");
    snprintf(dir, sizeof dir, "%s/ro", t->dir);
    snprintf(path, sizeof path, "%s/stellar.db", dir);
    snprintf(url, sizeof url, "sqlite:%s", path);
    ASSERT_EQ(0, chmod(t->dir, 0755));
    ASSERT_EQ(0, mkdir(dir, 0755));
    o.url = url;
    ASSERT_OK(stellar_open(&h, &o, &e), &e);
    reg(h, &task_record);
    enqueue(h, "record", "{\"n\":1}", "q");
    enqueue(h, "record", "{\"n\":2}", "q");
    stellar_close(h);

    ASSERT_EQ(0, chmod(path, 0444)); /* the file */
    rc1 = inspect_read_only(url, path, dir);
    ASSERT_EQ(0, chmod(path, 0644));
    ASSERT_EQ(0, chmod(dir, 0555)); /* the folder */
    rc2 = inspect_read_only(url, path, dir);
    ASSERT_EQ(0, chmod(dir, 0755));
    if (rc1 == 77 || rc2 == 77)
        SKIP("cannot take away write access here (no user nobody, or "
             "TMPDIR not reachable by it)");
    ASSERT_EQ(0, rc1);
    ASSERT_EQ(0, rc2);
    /* Untouched: it opens read-write again, with its two jobs. */
    ASSERT_OK(stellar_open(&h, &o, &e), &e);
    ASSERT_EQ(2, test_length(h, "q"));
    stellar_close(h);

    /* A file of schema 2 (before schedules and queue control) that this
     * build may not migrate still answers. */
    make_sqlite_file(path, "DROP TABLE pauses; DROP TABLE limits;"
                           " DROP TABLE starts; DROP TABLE schedules;"
                           " ALTER TABLE workers DROP COLUMN job_class;"
                           " UPDATE meta SET value = '2'"
                           " WHERE key = 'schema_version';");
    ASSERT_EQ(0, chmod(path, 0444));
    rc1 = inspect_read_only(url, path, dir);
    ASSERT_EQ(0, chmod(path, 0644));
    ASSERT_EQ(0, rc1);
    /* Opened read-write, it is migrated to 4 again. */
    ASSERT_OK(stellar_open(&h, &o, &e), &e);
    ASSERT_OK(stellar_pause(h, "q", 0, &e), &e);
    stellar_close(h);
}

#ifdef STELLAR_HAVE_REDIS
/* One command on the test's redis-server, raw; true if it did not fail. */
static bool raw_redis(const struct test_ctx *t, const char *password,
                      const char *cmd, const char *want_in_reply)
{
    redisContext *c = redisConnectUnix(t->url + strlen("redis+unix://"));
    redisReply *r = NULL;
    bool ok = false;

    if (c && !c->err && password)
        freeReplyObject(redisCommand(c, "AUTH %s", password));
    if (c && !c->err) r = redisCommand(c, cmd);
    ok = r && r->type != REDIS_REPLY_ERROR &&
         (!want_in_reply ||
          (r->type == REDIS_REPLY_STRING && strstr(r->str, want_in_reply)));
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

static bool wait_connection_subscribed(void *ud)
{
    return raw_redis(ud, "s3cret", "CLIENT LIST", "sub=1");
}
#endif

/* A Redis that wants a password: a wrong or missing one is ECONNECT naming
 * AUTH; the right one opens, and the idle processors' second connection
 * (the wake-up subscriber) authenticates too. */
void redis_with_a_password_is_opened_or_refused_clearly(struct test_ctx *t)
{
#ifdef STELLAR_HAVE_REDIS
    stellar_options o = {.processors = 2};
    stellar_error e = {0};
    stellar *h = NULL;
    char url[700];

    if (!is_redis(t)) SKIP("Redis AUTH");
    if (strchr(t->url, '@')) SKIP("an ACL user's URL (STELLAR_TEST_REDIS_ACL)");
    ASSERT_TRUE(raw_redis(t, NULL, "CONFIG SET requirepass s3cret", NULL));

    snprintf(url, sizeof url, "%s?password=nope", t->url);
    o.url = url;
    ASSERT_EQ(STELLAR_ECONNECT, stellar_open(&h, &o, &e));
    ASSERT_TRUE(strstr(e.msg, "refused AUTH") != NULL);
    o.url = t->url;
    ASSERT_EQ(STELLAR_ECONNECT, stellar_open(&h, &o, &e));
    ASSERT_TRUE(strstr(e.msg, "NOAUTH") != NULL);

    snprintf(url, sizeof url, "%s?password=s3cret", t->url);
    o.url = url;
    o.log_fn = test_log_fn;
    ASSERT_OK(stellar_open(&h, &o, &e), &e);
    reg(h, &task_record);
    start(h);
    ASSERT_WAIT(wait_connection_subscribed((void *)t), 10000);
    enqueue(h, "record", "{\"n\":1}", NULL);
    ASSERT_WAIT(runs_of("record", true) == 1, 10000);
    stellar_close(h);
#else
    (void)t;
    SKIP("built without Redis");
#endif
}
