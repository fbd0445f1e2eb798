/*
 * harness.c: runs each test in a forked child with a fresh temp dir, a time
 * limit and (for --backend redis) a private redis-server. See harness.h.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1; /* <dir>/stellar.log (child) */

/* ------------------------------------------------------- Assertions --- */

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(NULL);
    _exit(1); /* other threads may still run: no atexit handlers */
}

void test_skip(const char *fmt, ...)
{
    va_list ap;
    fputs("skip: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(NULL);
    _exit(77);
}

void test_assert_int(const char *file, int line, const char *xs, const char *ys,
                     int64_t x, int64_t y)
{
    if (x != y)
        test_fail(file, line, "ASSERT_EQ(%s, %s)\n  left:  %lld\n  right: %lld",
                  xs, ys, (long long)x, (long long)y);
}

void test_assert_str(const char *file, int line, const char *xs, const char *ys,
                     const char *x, const char *y)
{
    if (x == y || (x && y && strcmp(x, y) == 0)) return;
    test_fail(file, line,
              "ASSERT_STR_EQ(%s, %s)\n  left:  %s%s%s\n  right: %s%s%s", xs, ys,
              x ? "\"" : "", x ? x : "NULL", x ? "\"" : "", y ? "\"" : "",
              y ? y : "NULL", y ? "\"" : "");
}

/* ------------------------------------------------------------ Time --- */

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t test_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}
int64_t test_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

void test_sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        continue;
}

bool wait_for(bool (*cond)(void *ud), void *ud, int64_t timeout_ms)
{
    int64_t deadline = test_mono_ms() + timeout_ms;
    for (;;) {
        if (cond(ud)) return true;
        if (test_mono_ms() > deadline) return false;
        test_sleep_ms(5);
    }
}

/* ---------------------------------------------------------- Helpers --- */

void test_note(const char *fmt, ...)
{
    va_list ap;
    fputs("    # ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

const char *test_path(const struct test_ctx *t, const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", t->dir, name);
    return buf;
}

void test_append_line(const char *path, const char *line)
{
    char buf[4096];
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int n = snprintf(buf, sizeof buf, "%s\n", line);
    if (fd < 0 || n < 0 || (size_t)n >= sizeof buf ||
        write(fd, buf, (size_t)n) != n)
        test_fail(__FILE__, __LINE__, "append to %s: %s", path,
                  strerror(errno));
    close(fd);
}

int test_count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int c, n = 0;
    if (!f) return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

bool test_contains_ci(const char *h, const char *needle)
{
    size_t n = strlen(needle);
    for (; h && *h; h++)
        if (strncasecmp(h, needle, n) == 0) return true;
    return false;
}

void test_log_fn(void *ud, int level, const char *msg)
{
    char buf[2048];
    int64_t now = test_now_ms();
    int n = snprintf(buf, sizeof buf, "%02d:%02d.%03d %d %s\n",
                     (int)(now / 60000 % 60), (int)(now / 1000 % 60),
                     (int)(now % 1000), level, msg);
    (void)ud;
    if (log_fd >= 0 && n > 0)
        (void)!write(log_fd, buf,
                     (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* ------------------------------------------------------------- Redis --- */

static bool find_in_path(const char *prog, char *out, size_t n)
{
    const char *p = getenv("PATH");
    while (p && *p) {
        size_t len = strcspn(p, ":");
        snprintf(out, n, "%.*s/%s", (int)len, p, prog);
        if (access(out, X_OK) == 0) return true;
        p += len + (p[len] == ':');
    }
    return false;
}

/*
 * STELLAR_TEST_REDIS_ACL (issue 16): ACL rules, as after "ACL SETUSER
 * name"; each test's redis-server then has a user "stellar" with them and
 * password ACL_PASSWORD, and the test's URL logs in as that user.
 */
#define ACL_PASSWORD "stellar-acl-pw"

static const char *acl_rules(void)
{
    const char *v = getenv("STELLAR_TEST_REDIS_ACL");
    return v && *v ? v : NULL;
}

/* Starts redis-server on <dir>/redis.sock; returns its pid, or -1. */
static pid_t redis_start(const char *bin, const char *dir)
{
    char sock[512], log[512], acl[512] = "";
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int64_t deadline = test_mono_ms() + 10000;
    pid_t pid;

    if ((size_t)snprintf(sock, sizeof sock, "%s/redis.sock", dir) >=
            sizeof sock ||
        (size_t)snprintf(log, sizeof log, "%s/redis.log", dir) >= sizeof log ||
        strlen(sock) >= sizeof sa.sun_path)
        return -1;
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    if (acl_rules()) {
        FILE *f;
        if ((size_t)snprintf(acl, sizeof acl, "%s/users.acl", dir) >=
                sizeof acl ||
            !(f = fopen(acl, "w")))
            return -1;
        fprintf(f, "user default on nopass ~* &* +@all\n");
        fprintf(f, "user stellar on >%s %s\n", ACL_PASSWORD, acl_rules());
        if (fclose(f) != 0) return -1;
    }
    if ((pid = fork()) < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the runner */
        execl(bin, bin, "--port", "0", "--unixsocket", sock, "--save", "",
              "--appendonly", "no", "--dir", dir, "--logfile", log,
              acl_rules() ? "--aclfile" : (char *)NULL, acl, (char *)NULL);
        _exit(127);
    }
    while (test_mono_ms() < deadline) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0), ok;
        ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (fd >= 0) close(fd);
        if (ok) return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid) return -1;
        test_sleep_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void reap(pid_t pid, int sig, int64_t grace_ms)
{
    int64_t deadline = test_mono_ms() + grace_ms;
    kill(pid, sig);
    while (waitpid(pid, NULL, WNOHANG) == 0) {
        if (test_mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return;
        }
        test_sleep_ms(5);
    }
}

/* ------------------------------------------------------------ Runner --- */

static void print_tail(const char *path, int lines)
{
    char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n, start;
    int seen = 0;
    if (!f) return;
    if (fseek(f, -(long)(sizeof buf - 1), SEEK_END) != 0) rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n == 0) return;
    buf[n] = '\0';
    for (start = n; start > 0; start--)
        if (buf[start - 1] == '\n' && ++seen > lines) break;
    fprintf(stderr, "  --- last lines of %s ---\n%s", path, buf + start);
}

/* Runs one test; returns 0 pass, 77 skip, 1 fail. */
static int run_one(const struct test *tc, const char *backend,
                   const char *redis_bin, int timeout_s, bool keep)
{
    char dir[512], url[600];
    const char *tmp = getenv("TMPDIR");
    pid_t redis = 0, pid;
    int status = 0, rc;
    int64_t t0 = test_mono_ms(), deadline;

    snprintf(dir, sizeof dir, "%s/stellar-test-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (strcmp(backend, "redis") == 0) {
        if (acl_rules())
            snprintf(url, sizeof url, "redis+unix://stellar:%s@%s/redis.sock",
                     ACL_PASSWORD, dir);
        else
            snprintf(url, sizeof url, "redis+unix://%s/redis.sock", dir);
        if ((redis = redis_start(redis_bin, dir)) < 0) {
            fprintf(stderr, "cannot start %s in %s\n", redis_bin, dir);
            return 1;
        }
    } else {
        snprintf(url, sizeof url, "sqlite:%s/stellar.db", dir);
    }
    fflush(NULL);
    if ((pid = fork()) == 0) {
        struct test_ctx t = {tc->name, dir, backend, url};
        setpgid(0, 0);

        if (chdir(dir) != 0) _exit(1);
        log_fd = open("stellar.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
        tc->fn(&t);
        fflush(NULL);
        exit(0); /* exit, not _exit: sanitizers check for leaks here */
    }
    setpgid(pid, pid);
    deadline = t0 + (int64_t)timeout_s * 1000;
    while ((rc = waitpid(pid, &status, WNOHANG)) == 0) {
        if (test_mono_ms() > deadline) {
            fprintf(stderr, "%s: time limit of %d s exceeded\n", tc->name,
                    timeout_s);
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            status = -1;
            break;
        }
        test_sleep_ms(5);
    }
    kill(-pid, SIGKILL); /* whatever the test forked and left behind */
    if (redis > 0) reap(redis, SIGTERM, 5000);

    if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        rc = 0;
    else if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 77)
        rc = 77;
    else
        rc = 1;
    if (rc == 1 && status != -1 && WIFSIGNALED(status))
        fprintf(stderr, "%s: killed by signal %d\n", tc->name,
                WTERMSIG(status));
    if (rc == 1 && status != -1 && WIFEXITED(status) &&
        WEXITSTATUS(status) != 1)
        fprintf(stderr, "%s: exit code %d\n", tc->name, WEXITSTATUS(status));
    printf("%-4s %s (%lld ms)\n",
           rc == 0    ? "ok"
           : rc == 77 ? "SKIP"
                      : "FAIL",
           tc->name, (long long)(test_mono_ms() - t0));
    if (rc == 1) {
        char p[600];
        snprintf(p, sizeof p, "%s/stellar.log", dir);
        print_tail(p, 40);
        fprintf(stderr, "  (test directory kept: %s)\n", dir);
    } else if (!keep) {
        pid_t rm = fork();
        if (rm == 0) {
            execlp("rm", "rm", "-rf", dir, (char *)NULL);
            _exit(127);
        }
        if (rm > 0) waitpid(rm, NULL, 0);
    }
    fflush(NULL);
    return rc;
}

int test_main(const struct test *tests, size_t n, int argc, char **argv)
{
    const char *backend = "sqlite", *only = NULL;
    char redis_bin[1024] = "";
    int timeout_s = 60, passed = 0, failed = 0, skipped = 0;
    bool keep = false, list = false;
    const char *req = getenv("STELLAR_REQUIRE_REDIS");
    bool require_redis = req && strcmp(req, "1") == 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            backend = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout_s = atoi(argv[++i]);
        else if (strcmp(argv[i], "--keep") == 0)
            keep = true;
        else if (strcmp(argv[i], "--list") == 0)
            list = true;
        else {
            fprintf(stderr,
                    "usage: %s [--backend sqlite|redis] [--only SUBSTRING] "
                    "[--timeout S] [--keep] [--list]\n",
                    argv[0]);
            return 2;
        }
    }
    if (strcmp(backend, "sqlite") != 0 && strcmp(backend, "redis") != 0) {
        fprintf(stderr, "unknown backend %s\n", backend);
        return 2;
    }
    if (list) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (strcmp(backend, "redis") == 0) {
        const char *why = NULL;
#ifndef STELLAR_HAVE_REDIS
        why = "libstellar was built without hiredis";
#endif
        if (!why && !find_in_path("redis-server", redis_bin, sizeof redis_bin))
            why = "redis-server is not on PATH";
        if (why) {
            fprintf(stderr, "%s: %s\n", require_redis ? "FAIL" : "skip", why);
            return require_redis ? 1 : 77;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < n; i++) {
        if (only && !strstr(tests[i].name, only)) continue;
        int rc = run_one(
            &tests[i], backend, redis_bin,
            tests[i].timeout_s > 0 ? tests[i].timeout_s : timeout_s, keep);
        if (rc == 0)
            passed++;
        else if (rc == 77)
            skipped++;
        else
            failed++;
    }
    printf("%d passed, %d failed, %d skipped (%s)\n", passed, failed, skipped,
           backend);
    return failed ? 1 : passed == 0 && skipped > 0 ? 77 : 0;
}

/* ----------------------------------------------------- API shortcuts --- */

int64_t test_stat(stellar *h, const char *key)
{
    stellar_error e = {0};
    json_t *s = NULL, *v;
    int64_t n;

    ASSERT_OK(stellar_stats(h, &s, &e), &e);
    ASSERT_TRUE(json_is_object(s));
    v = json_object_get(s, key);
    if (v && !json_is_integer(v)) {
        char *txt = json_dumps(s, JSON_COMPACT);
        FAIL("stats[\"%s\"] is not an integer: %s", key, txt);
    }
    n = v ? json_integer_value(v) : 0;
    json_decref(s);
    return n;
}

int64_t test_failed_count(stellar *h)
{
    stellar_error e = {0};
    int64_t n = -1;
    ASSERT_OK(stellar_failed_count(h, &n, &e), &e);
    return n;
}

int64_t test_length(stellar *h, const char *queue)
{
    stellar_error e = {0};
    int64_t n = -1;
    ASSERT_OK(stellar_length(h, queue, &n, &e), &e);
    return n;
}
