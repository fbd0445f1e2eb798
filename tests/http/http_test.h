/*
 * http_test.h: what the HTTP suite's files share. The suite tests the HTTP
 * server (issue #7) over real sockets, once per backend (http.sqlite,
 * http.redis): the JSON API against the C API's documents, management
 * calls, errors, the security checks (token, Host, CSRF, methods, sizes,
 * paths), and /metrics parsed as Prometheus text.
 *
 * The client (common.c) is a few lines of sockets: one request per
 * connection ("Connection: close"), the whole reply read to EOF. Raw
 * requests let the tests send what a browser would not (odd paths, forged
 * headers). The tests live in one file per topic (reads.c, security.c,
 * ...); the list below is the suite's one table, in the order the tests
 * run.
 *
 * Named http_test.h, not http.h: tests/ is on every test's include path,
 * where a tests/http/http.h would shadow src/http/http.h for the
 * "http/http.h" that tests/unit/parsers.c includes.
 */
#ifndef STELLAR_TEST_HTTP_TEST_H
#define STELLAR_TEST_HTTP_TEST_H

#include "fixture.h"
#include "harness.h"

#include "stellar.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ------------------------------------------------------------ Client --- */

typedef struct reply {
    int status;
    char *head; /* status line and headers */
    char *body;
    size_t len;
    json_t *json; /* the body parsed, if it is JSON */
} reply;

extern reply last; /* the reply of the latest request; freed by the next */

/* A TCP socket connected to 127.0.0.1:port from the address src (NULL:
 * any), or -1 with errno. */
int connect_from(const char *src, int port);
/* Sends raw bytes to 127.0.0.1:port and reads the reply to EOF. */
reply *raw(int port, const char *req, size_t n);
/* raw() from the local address src (127.0.0.2: another client). */
reply *raw_from(const char *src, int port, const char *req, size_t n);
/* A request with the usual headers; extra is "Name: value\r\n" lines. */
reply *req(int port, const char *method, const char *path, const char *extra,
           const char *body);
/* req() from the local address src. */
reply *req_from(const char *src, int port, const char *method, const char *path,
                const char *extra, const char *body);

#define CSRF "X-Stellar-CSRF: 1\r\n"
/* Tokens long enough for a listen off loopback; TOKEN_Q is TOKEN in a
 * query. */
#define TOKEN       "s3cret+/=0123456789"
#define TOKEN_Q     "s3cret%2B%2F%3D0123456789"
#define BEARER      "Authorization: Bearer " TOKEN "\r\n"
#define READ_TOKEN  "reader-0123456789abcdef"
#define READ_BEARER "Authorization: Bearer " READ_TOKEN "\r\n"

reply *get(int port, const char *path);
reply *post(int port, const char *path, const char *body); /* with CSRF */
reply *del(int port, const char *path, const char *body);  /* with CSRF */
/* A header's value (static buffer), or NULL. */
const char *hdr(const reply *r, const char *name);
/* The request again while it answers 429 (an address in its backoff after
 * a wrong token), waiting as Retry-After says; up to 60 s in all. */
reply *req_past_backoff(const char *src, int port, const char *method,
                        const char *path, const char *extra, const char *body);
/* Whether the file at path has a line holding all of the words given. */
bool log_has(const char *path, const char *w1, const char *w2, const char *w3);

#define ASSERT_STATUS(r, want)                                                 \
    do {                                                                       \
        const reply *r_ = (r);                                                 \
        if (r_->status != (want))                                              \
            FAIL("status %d, expected %d; body: %s", r_->status, (want),       \
                 r_->body);                                                    \
    } while (0)

/* The reply is the JSON error {"error": ..., "code": code}. */
void assert_error(const char *file, int line, const reply *r, int status,
                  const char *code);
#define ASSERT_ERROR(r, status, code)                                          \
    assert_error(__FILE__, __LINE__, (r), (status), (code))

/* The reply body is doc, byte for byte as the CLI's --json prints it (but
 * for latency_ms), with status 200. Takes the reference to doc. */
void assert_doc(const char *file, int line, const reply *r, json_t *doc);
#define ASSERT_DOC(r, doc) assert_doc(__FILE__, __LINE__, (r), (doc))

/* ------------------------------------------------------------- Setup --- */

/* A handle with the suite's tasks (echo, flaky, boom, tick, locked),
 * started with processors (0: not started) on queues (NULL: all). */
stellar *open_app(const struct test_ctx *t, int processors,
                  const char *const *queues);
/* A server on listen (NULL: 127.0.0.1:0) with token; its port in *port. */
stellar_http *serve(stellar *h, const char *listen, const char *token,
                    int *port);
/* Stops the server, closes the handle and frees the last reply. */
void finish(stellar_http *s, stellar *h);

/* ------------------------------------------------------- The table --- */

/*
 * Every test, in the order they run: X(function, time limit in s, 0 for the
 * runner's default). A test is named by its function, written once; main.c
 * turns this list into the harness's table.
 */
#define HTTP_TESTS(X)                                                          \
    X(reads_answer_the_documents_of_the_c_api, 0)                              \
    X(enqueue_over_http_queues_and_runs_jobs, 0)                               \
    X(state_changes_need_post_or_delete_and_the_csrf_header, 0)                \
    X(a_token_is_required_off_loopback_and_checked_on_every_request, 0)        \
    X(a_loopback_server_without_a_token_answers_only_loopback_hosts, 0)        \
    X(listen_strings_are_checked, 0)                                           \
    X(static_files_come_only_from_the_embedded_table, 0)                       \
    X(errors_are_json_with_a_code_and_a_status, 0)                             \
    X(failed_jobs_are_listed_retried_and_removed_over_http, 0)                 \
    X(queues_locks_delayed_and_periodic_tasks_are_managed_over_http, 0)        \
    X(periodic_tasks_show_their_next_run, 0)                                   \
    X(metrics_are_prometheus_text_and_counters_move, 0)                        \
    X(a_read_token_reads_everything_and_changes_nothing, 0)                    \
    X(wrong_tokens_are_logged_and_slowed_per_address, 120)                     \
    X(every_change_over_http_is_audited, 0)                                    \
    X(slow_clients_do_not_starve_other_addresses, 120)                         \
    X(a_request_head_must_arrive_within_the_deadline, 0)                       \
    X(delayed_jobs_are_paged, 0)                                               \
    X(schedules_are_listed_paused_and_measured, 0)                             \
    X(queues_are_paused_and_limits_set_over_http, 0)

#define X(fn, timeout_s) void fn(struct test_ctx *t);
HTTP_TESTS(X)
#undef X

#endif /* STELLAR_TEST_HTTP_TEST_H */
