/*
 * fixture.h: the few steps every suite takes on its backend, written once:
 * open a handle on the test's URL logging to the test's log, register a
 * task, start, enqueue, open the backend raw (backend.h), compare JSON, read
 * a file. Each step asserts that it worked, so a test reads as its story.
 *
 * harness.h runs the tests; this file is what they share above it. Both
 * are compiled into one static library (stellar_test_harness) that every
 * test program links.
 */
#ifndef STELLAR_TEST_FIXTURE_H
#define STELLAR_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "backend.h"
#include "harness.h"
#include "internal.h"
#include "stellar.h"

/* True when the test runs on the Redis backend (--backend redis). */
bool is_redis(const struct test_ctx *t);

/*
 * Opens a handle on the test's backend with options o (NULL: defaults).
 * o->url becomes the test's URL, o->log_fn test_log_fn unless the caller
 * set one, o->log_level log_level (open_h: STELLAR_LOG_INFO).
 */
stellar *open_h_at(const struct test_ctx *t, stellar_options *o, int log_level);
stellar *open_h(const struct test_ctx *t, stellar_options *o);

void reg(stellar *h, const stellar_task *task); /* stellar_task_register */
void start(stellar *h);                         /* stellar_start */
void enqueue(stellar *h, const char *task, const char *params,
             const char *queue); /* stellar_enqueue */

/* The test's backend opened raw, through backend.h (st_backend_close). */
st_backend *raw_open(const struct test_ctx *t);
/* Raw payloads queued in queue / raw failed entries, as a JSON array of
 * strings (new reference). */
json_t *raw_queued(st_backend *b, const char *queue);
json_t *raw_failed(st_backend *b);

/* Fails the test unless got equals the JSON text want (any JSON value). */
void assert_json_eq(const char *file, int line, const char *want_txt,
                    const json_t *got);
#define ASSERT_JSON_EQ(want, got) assert_json_eq(__FILE__, __LINE__, want, got)

/* A file's bytes (a new buffer, *n its length), NULL if it cannot be read. */
char *slurp(const char *path, size_t *n);
/* True if path exists / has a line containing needle. */
bool file_exists(const char *path);
bool file_contains(const char *path, const char *needle);

#endif /* STELLAR_TEST_FIXTURE_H */
