/*
 * storage.c: storage that cannot take a write: the SQLite write lock held
 * by another connection (a bounded wait, then a clear EBUSY), a full disk
 * (a small tmpfs; Redis at maxmemory) and a file size limit: the enqueue
 * fails clearly and everything stored before it is kept, intact.
 */
#include "faults.h"

/* ------------------------------------------------- SQLite busy, full --- */

struct holder {
    sqlite3 *db;
    int64_t hold_ms;
};

static void *release_later(void *arg)
{
    struct holder *hd = arg;
    test_sleep_ms(hd->hold_ms);
    sqlite3_exec(hd->db, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

/* Another connection holds the write lock: an enqueue waits (bounded by
 * the 5 s busy timeout), then fails with EBUSY and a clear message; a lock
 * released within the timeout only delays it. */
void sqlite_busy_waits_with_a_bound_then_fails_clearly(struct test_ctx *t)
{
    stellar *h;
    stellar_error e = {0};
    struct holder hd = {NULL, 1000};
    pthread_t th;
    int64_t t0, ms;
    int rc;

    if (is_redis(t)) SKIP("SQLite only");
    h = open_handle(t, NULL, -1, false);
    ASSERT_OK(stellar_enqueue(h, "faultJob", NULL, NULL, &e), &e);
    ASSERT_EQ(sqlite3_open(test_path(t, "stellar.db"), &hd.db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(hd.db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
              SQLITE_OK);
    t0 = test_mono_ms();
    rc = stellar_enqueue(h, "faultJob", NULL, NULL, &e);
    ms = test_mono_ms() - t0;
    test_note("enqueue under a held lock: %s after %lld ms: %s",
              stellar_err_name(rc), (long long)ms, e.msg);
    ASSERT_EQ(rc, STELLAR_EBUSY);
    ASSERT_TRUE(ms >= 4500 && ms < 15000);
    ASSERT_TRUE(test_contains_ci(e.msg, "locked"));
    ASSERT_TRUE(test_contains_ci(e.msg, "busy timeout"));
    ASSERT_EQ(sqlite3_exec(hd.db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    ASSERT_OK(stellar_enqueue(h, "faultJob", NULL, NULL, &e), &e);
    ASSERT_EQ(test_length(h, "default"), 2);

    /* Held for 1 s, less than the timeout: the enqueue waits it out. */
    ASSERT_EQ(sqlite3_exec(hd.db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
              SQLITE_OK);
    pthread_create(&th, NULL, release_later, &hd);
    t0 = test_mono_ms();
    ASSERT_OK(stellar_enqueue(h, "faultJob", NULL, NULL, &e), &e);
    ms = test_mono_ms() - t0;
    pthread_join(th, NULL);
    test_note("enqueue under a lock held 1 s: OK after %lld ms", (long long)ms);
    ASSERT_TRUE(ms >= 800);
    ASSERT_EQ(test_length(h, "default"), 3);
    sqlite3_close(hd.db);
    stellar_close(h);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* "ok" if PRAGMA integrity_check passes on the SQLite file at path. */
static bool sqlite_intact(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    bool ok = false;

    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        ok = strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ok;
}

/* What a filling child saw. */
struct fill {
    int rc;      /* the code of the enqueue that failed */
    int stored;  /* jobs it stored before that */
    int counted; /* queue "fill" re-opened afterwards (-1: not counted) */
    int intact;  /* integrity_check passed (-1: not checked) */
    char msg[300];
};

/* In a child: enqueues `before` small jobs, then 1 KiB jobs until one
 * fails; with recount, closes, re-opens and counts queue "fill" and checks
 * the file at db_path. Reports a struct fill on fd. */
static void fill_up(const char *url, int before, bool recount,
                    const char *db_path, int fd)
{
    stellar_options o = {0};
    stellar_error e = {0};
    stellar *h = NULL;
    char params[1100];
    struct fill f = {STELLAR_OK, 0, -1, -1, ""};
    int64_t n = 0;
    int i;

    o.url = url;
    o.processors = -1;
    o.no_scheduler = true;
    snprintf(params, sizeof params, "{\"pad\":\"%01000d\"}", 0);
    if ((f.rc = stellar_open(&h, &o, &e)) == STELLAR_OK) {
        for (i = 0; i < before && f.rc == STELLAR_OK; i++)
            f.rc = stellar_enqueue(h, "faultJob", "{}", "fill", &e);
        while (f.rc == STELLAR_OK && f.stored < 200000 &&
               (f.rc = stellar_enqueue(h, "faultJob", params, "fill", &e)) ==
                   STELLAR_OK)
            f.stored++;
    }
    snprintf(f.msg, sizeof f.msg, "%s", e.msg);
    stellar_close(h);
    if (recount) {
        h = NULL;
        if (stellar_open(&h, &o, &e) == STELLAR_OK &&
            stellar_length(h, "fill", &n, &e) == STELLAR_OK)
            f.counted = (int)n;
        stellar_close(h);
        f.intact = sqlite_intact(db_path);
    }
    (void)!write(fd, &f, sizeof f);
}

/* A private mount namespace (as root, or else as root of a new user
 * namespace) with a tmpfs of size bytes on dir. False if not allowed. */
static bool mount_small_tmpfs(const char *dir, long size)
{
    char opts[64], map[64];
    uid_t uid = getuid();
    gid_t gid = getgid();
    int fd;

    if (uid != 0) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
        if ((fd = open("/proc/self/setgroups", O_WRONLY)) >= 0) {
            (void)!write(fd, "deny", 4);
            close(fd);
        }
        snprintf(map, sizeof map, "0 %ld 1", (long)uid);
        if ((fd = open("/proc/self/uid_map", O_WRONLY)) < 0) return false;
        if (write(fd, map, strlen(map)) < 0) {
            close(fd);
            return false;
        }
        close(fd);
        snprintf(map, sizeof map, "0 %ld 1", (long)gid);
        if ((fd = open("/proc/self/gid_map", O_WRONLY)) < 0) return false;
        if (write(fd, map, strlen(map)) < 0) {
            close(fd);
            return false;
        }
        close(fd);
    } else if (unshare(CLONE_NEWNS) != 0) {
        return false;
    }
    /* Keep the mount to ourselves. */
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return false;
    snprintf(opts, sizeof opts, "size=%ld", size);
    return mount("stellar-full", dir, "tmpfs", 0, opts) == 0;
}

/* Runs fill_up in a child: under RLIMIT_FSIZE = limit if limit > 0, on a
 * tmpfs of tmpfs_size bytes mounted on tmpfs_dir if tmpfs_dir. Returns
 * false if the tmpfs could not be mounted. */
static bool fill_in_child(const char *url, int before, int64_t limit,
                          const char *tmpfs_dir, long tmpfs_size,
                          const char *db_path, struct fill *f)
{
    int fds[2], status;
    ssize_t n;
    pid_t pid;

    ASSERT_EQ(pipe(fds), 0);
    fflush(NULL);
    if ((pid = fork()) == 0) {
        close(fds[0]);
        if (tmpfs_dir && !mount_small_tmpfs(tmpfs_dir, tmpfs_size)) _exit(77);
        if (limit > 0) {
            struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
            signal(SIGXFSZ, SIG_IGN); /* write() fails with EFBIG instead */
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        fill_up(url, before, tmpfs_dir != NULL, db_path, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    n = read(fds[0], f, sizeof *f);
    close(fds[0]);
    if ((status = wait_exit(pid, 120000)) == -1)
        FAIL("the filling child hangs");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) return false;
    if (n != (ssize_t)sizeof *f)
        FAIL("the filling child reported nothing (status %d)", status);
    return true;
}

/*
 * A full disk: a tmpfs of 512 KiB (in a private mount namespace: as root,
 * or in a user namespace) holds the database; a child enqueues 100 jobs,
 * then 1 KiB jobs until one fails. That enqueue fails with EFULL and a
 * clear message; re-opened, the file passes integrity_check and holds
 * every job stored. Redis: maxmemory just above what is used, no eviction:
 * a clear error, and everything stored is there.
 */
void full_disk_fails_enqueue_and_keeps_what_was_stored(struct test_ctx *t)
{
    struct fill f;

    if (!is_redis(t)) {
        char dir[600], url[800], db[700];
        snprintf(dir, sizeof dir, "%s/small", t->dir);
        snprintf(db, sizeof db, "%s/stellar.db", dir);
        snprintf(url, sizeof url, "sqlite:%s", db);
        mkdir(dir, 0755);
        if (!fill_in_child(url, 100, 0, dir, 512 * 1024, db, &f))
            SKIP("cannot mount a small tmpfs (no root, no user namespaces)");
        test_note("SQLite on a full 512 KiB tmpfs: %s after %d jobs: %s; "
                  "re-opened: %d jobs, integrity %s",
                  stellar_err_name(f.rc), 100 + f.stored, f.msg, f.counted,
                  f.intact ? "ok" : "FAILED");
        if (f.rc != STELLAR_EFULL)
            FAIL("enqueue on a full disk returned %s (%s): %s",
                 stellar_err_name(f.rc), stellar_strerror(f.rc), f.msg);
        ASSERT_TRUE(f.stored > 0);
        ASSERT_EQ(f.counted, 100 + f.stored);
        ASSERT_EQ(f.intact, 1);
        return;
    }
#ifdef STELLAR_HAVE_REDIS
    {
        stellar *h = open_handle(t, NULL, -1, false);
        stellar_error e = {0};
        char sock[600];
        redisContext *c;
        redisReply *r;
        long long used = 0;
        int i;

        for (i = 0; i < 100; i++)
            ASSERT_OK(stellar_enqueue(h, "faultJob", "{}", "fill", &e), &e);
        snprintf(sock, sizeof sock, "%s/redis.sock", t->dir);
        c = redisConnectUnix(sock);
        ASSERT_TRUE(c && !c->err);
        r = redisCommand(c, "INFO memory");
        ASSERT_TRUE(r && r->type == REDIS_REPLY_STRING);
        sscanf(strstr(r->str, "used_memory:") + 12, "%lld", &used);
        freeReplyObject(r);
        freeReplyObject(redisCommand(c, "CONFIG SET maxmemory-policy "
                                        "noeviction"));
        freeReplyObject(
            redisCommand(c, "CONFIG SET maxmemory %lld", used + (2 << 20)));
        fill_in_child(t->url, 0, 0, NULL, 0, NULL, &f);
        test_note("Redis at maxmemory: %s after %d more jobs: %s",
                  stellar_err_name(f.rc), f.stored, f.msg);
        if (f.rc != STELLAR_EFULL && !test_contains_ci(f.msg, "maxmemory"))
            FAIL("enqueue on a full Redis returned %s: %s",
                 stellar_err_name(f.rc), f.msg);
        ASSERT_TRUE(f.stored > 0);
        ASSERT_EQ(test_length(h, "fill"), 100 + f.stored);
        freeReplyObject(redisCommand(c, "CONFIG SET maxmemory 0"));
        redisFree(c);
        ASSERT_OK(stellar_enqueue(h, "faultJob", NULL, "fill", &e), &e);
        ASSERT_EQ(test_length(h, "fill"), 100 + f.stored + 1);
        stellar_close(h);
    }
#else
    SKIP("libstellar was built without hiredis");
#endif
}

/*
 * The same where no tmpfs can be had: a child may write only 64 KiB past
 * what the files hold (RLIMIT_FSIZE, SIGXFSZ ignored: write() fails with
 * EFBIG, as with a disk quota). The enqueue fails with EFULL or EIO, and
 * re-opened, the file is intact and holds every job stored.
 */
void file_size_limit_fails_enqueue_and_keeps_what_was_stored(struct test_ctx *t)
{
    stellar *h;
    stellar_error e = {0};
    struct fill f;
    int64_t db, wal;
    int i;

    if (is_redis(t)) SKIP("SQLite only");
    h = open_handle(t, NULL, -1, false);
    for (i = 0; i < 200; i++)
        ASSERT_OK(stellar_enqueue(h, "faultJob", "{}", "fill", &e), &e);
    stellar_close(h);
    db = file_size(test_path(t, "stellar.db"));
    wal = file_size(test_path(t, "stellar.db-wal"));
    fill_in_child(t->url, 0, (db > wal ? db : wal) + 64 * 1024, NULL, 0, NULL,
                  &f);
    test_note("SQLite under RLIMIT_FSIZE: %s after %d more jobs: %s",
              stellar_err_name(f.rc), f.stored, f.msg);
    h = open_handle(t, NULL, -1, false);
    ASSERT_TRUE(f.stored > 0);
    ASSERT_EQ(test_length(h, "fill"), 200 + f.stored);
    ASSERT_TRUE(sqlite_intact(test_path(t, "stellar.db")));
    ASSERT_OK(stellar_enqueue(h, "faultJob", NULL, "fill", &e), &e);
    stellar_close(h);
    if (f.rc != STELLAR_EFULL && f.rc != STELLAR_EIO)
        FAIL("enqueue past the file size limit returned %s (%s), expected "
             "EFULL or EIO: %s",
             stellar_err_name(f.rc), stellar_strerror(f.rc), f.msg);
}
