/*
 * harness.h: a small test runner in the manner of beanstalkd's ct and
 * libuv's runner (STYLE.md §8).
 *
 * Each test runs in its own forked child, in its own process group, with a
 * fresh temporary directory and a time limit. A child that exits 0 passed,
 * 77 was skipped, anything else (or a signal, or the time limit) failed.
 * Assertions print both sides and end the child at once.
 *
 * The program takes --backend sqlite|redis. For redis, the runner starts a
 * private redis-server on a unix socket inside the test's directory
 * (--port 0 --save '') for every test, and hands the test its URL. With no
 * redis-server on PATH, redis tests are skipped, unless the environment has
 * STELLAR_REQUIRE_REDIS=1, where that is a failure.
 *
 * Tests are static functions, listed in a table at the bottom of the file:
 *
 *     static const struct test tests[] = {
 *         TEST(enqueued_job_runs, 0),
 *     };
 *     TEST_MAIN(tests)
 *
 * TEST names a test by its function, written once (0: default time limit).
 *
 * Other options: --list, --only SUBSTRING, --keep (keep temp dirs),
 * --timeout SECONDS (default per test: 60).
 */
#ifndef STELLAR_TEST_HARNESS_H
#define STELLAR_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stellar.h"

struct test_ctx {
    const char *name;    /* the test's name */
    const char *dir;     /* its private temporary directory (absolute) */
    const char *backend; /* "sqlite" or "redis" */
    const char *url;     /* a backend URL inside dir, fresh for this test */
};

struct test {
    const char *name;
    void (*fn)(struct test_ctx *t);
    int timeout_s; /* 0: the runner's default */
};

#define TEST(fn, timeout_s)                                                    \
    {                                                                          \
#fn, fn, timeout_s                                                     \
    }

int test_main(const struct test *tests, size_t n, int argc, char **argv);
#define TEST_MAIN(table)                                                       \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        return test_main(table, sizeof(table) / sizeof(table[0]), argc, argv); \
    }

/* ------------------------------------------------------- Assertions --- */

/* Print the message and end the test as failed / skipped. */
_Noreturn void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void test_skip(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

void test_assert_int(const char *file, int line, const char *xs, const char *ys,
                     int64_t x, int64_t y);
void test_assert_str(const char *file, int line, const char *xs, const char *ys,
                     const char *x, const char *y);

#define ASSERT_TRUE(c)                                                         \
    do {                                                                       \
        if (!(c)) test_fail(__FILE__, __LINE__, "expected true: %s", #c);      \
    } while (0)
#define ASSERT_EQ(x, y)                                                        \
    test_assert_int(__FILE__, __LINE__, #x, #y, (int64_t)(x), (int64_t)(y))
#define ASSERT_STR_EQ(x, y)                                                    \
    test_assert_str(__FILE__, __LINE__, #x, #y, (x), (y))
/* rc is a STELLAR_* code returned by a call that filled *err. */
#define ASSERT_OK(rc, err)                                                     \
    do {                                                                       \
        int rc_ = (rc);                                                        \
        if (rc_ != 0)                                                          \
            test_fail(__FILE__, __LINE__, "%s\n  returned %d: %s", #rc, rc_,   \
                      (err)->msg);                                             \
    } while (0)
#define FAIL(...) test_fail(__FILE__, __LINE__, __VA_ARGS__)
#define SKIP(...) test_skip(__VA_ARGS__)

/* ------------------------------------------------------------ Time --- */

int64_t test_now_ms(void);  /* wall clock, ms since the epoch */
int64_t test_mono_ms(void); /* monotonic, ms */
void test_sleep_ms(int64_t ms);

/*
 * Polls cond(ud) every 5 ms until it is true (returns true) or timeout_ms
 * have passed (returns false). Never a blind sleep: a test waits for a
 * condition with a deadline.
 */
bool wait_for(bool (*cond)(void *ud), void *ud, int64_t timeout_ms);

/* The same for an expression, failing the test on timeout. */
#define ASSERT_WAIT(cond, timeout_ms)                                          \
    do {                                                                       \
        int64_t dl_ = test_mono_ms() + (timeout_ms);                           \
        while (!(cond)) {                                                      \
            if (test_mono_ms() > dl_)                                          \
                test_fail(__FILE__, __LINE__,                                  \
                          "timed out after %d ms waiting for %s",              \
                          (int)(timeout_ms), #cond);                           \
            test_sleep_ms(10);                                                 \
        }                                                                      \
    } while (0)

/* ---------------------------------------------------------- Helpers --- */

/* Prints "    # <text>" on stdout: a measurement worth reading in the log. */
void test_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "<dir>/<name>" in a static buffer that the next call overwrites. */
const char *test_path(const struct test_ctx *t, const char *name);
/* Appends one line to a file with one write(2) (atomic between processes
 * for short lines, O_APPEND). */
void test_append_line(const char *path, const char *line);
/* Number of lines in a file (0 if it does not exist). */
int test_count_lines(const char *path);
/* Case-insensitive substring test; NULL haystack is false. */
bool test_contains_ci(const char *haystack, const char *needle);
/* A log callback (stellar_log_fn) writing "<level> <msg>" lines to
 * <dir>/stellar.log; the runner prints its tail when a test fails. */
void test_log_fn(void *ud, int level, const char *msg);

/* Backend counters through the public API; each asserts the call worked. */
int64_t test_stat(stellar *h, const char *key); /* stats[key], 0 if absent */
int64_t test_failed_count(stellar *h);
int64_t test_length(stellar *h, const char *queue);

#endif /* STELLAR_TEST_HARNESS_H */
