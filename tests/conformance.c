/*
 * conformance.c: the one suite every storage backend must pass. ctest runs
 * it once per backend (conformance.sqlite, conformance.redis) with
 * --backend; the harness hands each test a fresh backend URL.
 *
 * The tests drive the public API (stellar.h) with tasks defined here, and
 * read raw storage through backend.h only where the stored bytes are the
 * point (payload layout, failed entries) or where a test needs to put
 * something there that the API refuses to write (a payload that is not
 * JSON).
 *
 * Timing: the SQLite backend keeps milliseconds, so a delayed job must run
 * no sooner than its time and well under a second late. The Redis layout
 * keeps delayed jobs by second (node-resque stores round(ms/1000)), so
 * there a job may start as early as that second and as late as the next
 * second boundary after its time, plus slack.
 */
#include "harness.h"

#include "backend.h"
#include "internal.h"
#include "stellar.h"

#ifdef STELLAR_HAVE_REDIS
#include <hiredis/hiredis.h>
#endif

#include <grp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LATE_MS  500 /* allowed lateness of a delayed job on SQLite */
#define SLACK_MS 500 /* allowed lateness past the second on Redis */

/* ------------------------------------------------ What the tasks saw --- */

struct run {
    char task[32];
    char queue[64];
    char worker[128];
    char *params;             /* compact JSON of the params object */
    int64_t start_ms, end_ms; /* wall clock; end 0 while running */
};

static pthread_mutex_t runs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct run runs[1024];
static int nruns;
static int in_flight, max_in_flight; /* of periodic "tick" runs */
static int tick_ms = 200;            /* how long one "tick" run takes */

static int run_begin(stellar_api *api, const json_t *params)
{
    struct run *r;
    int i;
    pthread_mutex_lock(&runs_mu);
    if (nruns == (int)(sizeof runs / sizeof runs[0]))
        FAIL("more than %d runs", nruns);
    i = nruns++;
    r = &runs[i];
    snprintf(r->task, sizeof r->task, "%s", stellar_api_task(api));
    snprintf(r->queue, sizeof r->queue, "%s", stellar_api_queue(api));
    snprintf(r->worker, sizeof r->worker, "%s", stellar_api_worker(api));
    r->params = params ? json_dumps(params, JSON_COMPACT) : NULL;
    r->start_ms = test_now_ms();
    pthread_mutex_unlock(&runs_mu);
    return i;
}

static void run_end(int i)
{
    pthread_mutex_lock(&runs_mu);
    runs[i].end_ms = test_now_ms();
    pthread_mutex_unlock(&runs_mu);
}

/* Runs of task that have started (ended: that have ended). */
static int runs_of(const char *task, bool ended)
{
    int n = 0;
    pthread_mutex_lock(&runs_mu);
    for (int i = 0; i < nruns; i++)
        n += strcmp(runs[i].task, task) == 0 && (!ended || runs[i].end_ms);
    pthread_mutex_unlock(&runs_mu);
    return n;
}

/* A copy of the k-th run of task (k from 0). */
static struct run run_of(const char *task, int k)
{
    struct run r = {0};
    int left = k;
    pthread_mutex_lock(&runs_mu);
    for (int i = 0; i < nruns; i++)
        if (strcmp(runs[i].task, task) == 0 && left-- == 0) {
            r = runs[i];
            r.params = r.params ? strdup(r.params) : NULL;
            break;
        }
    pthread_mutex_unlock(&runs_mu);
    if (!r.task[0]) FAIL("no run %d of %s", k, task);
    return r;
}

/* ------------------------------------------------------------ Tasks --- */

/* Records its params and returns. */
static int record_run(stellar_api *api, const json_t *params,
                      stellar_next *next)
{
    (void)next;
    run_end(run_begin(api, params));
    return STELLAR_OK;
}

/* Fails with a message built from params.why. */
static int boom_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    const char *why = json_string_value(json_object_get(params, "why"));
    run_end(run_begin(api, params));
    return stellar_fail(next, "boom: %s", why ? why : "(no reason)");
}

/* Sleeps params.ms without looking at stellar_should_stop(). */
static int slow_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    int i = run_begin(api, params);
    (void)next;
    test_sleep_ms(json_integer_value(json_object_get(params, "ms")));
    run_end(i);
    return STELLAR_OK;
}

/* Runs until the processor stops, then params.after_ms longer. */
static int linger_run(stellar_api *api, const json_t *params,
                      stellar_next *next)
{
    int i = run_begin(api, params);
    int64_t deadline = test_mono_ms() + 30000;
    (void)next;
    while (!stellar_should_stop(api) && test_mono_ms() < deadline)
        test_sleep_ms(5);
    test_sleep_ms(json_integer_value(json_object_get(params, "after_ms")));
    run_end(i);
    return STELLAR_OK;
}

/* The periodic task: takes tick_ms (200), so that a sample of storage
 * cannot see one job both queued and re-delayed. */
static int tick_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    int i = run_begin(api, params);
    (void)next;
    pthread_mutex_lock(&runs_mu);
    if (++in_flight > max_in_flight) max_in_flight = in_flight;
    pthread_mutex_unlock(&runs_mu);
    test_sleep_ms(tick_ms);
    pthread_mutex_lock(&runs_mu);
    in_flight--;
    pthread_mutex_unlock(&runs_mu);
    run_end(i);
    return STELLAR_OK;
}

/* Appends "<params.i> <pid>" to params.path. */
static int append_run(stellar_api *api, const json_t *params,
                      stellar_next *next)
{
    char line[64];
    (void)api;
    (void)next;
    snprintf(line, sizeof line, "%lld %ld",
             (long long)json_integer_value(json_object_get(params, "i")),
             (long)getpid());
    test_append_line(json_string_value(json_object_get(params, "path")), line);
    test_sleep_ms(2); /* give the other process a chance at the queue */
    return STELLAR_OK;
}

static const stellar_task task_record = {
    .name = "record", .description = "records its params", .run = record_run};
static const stellar_task task_boom = {
    .name = "boom", .description = "always fails", .run = boom_run};
static const stellar_task task_slow = {
    .name = "slow", .description = "sleeps params.ms", .run = slow_run};
static const stellar_task task_linger = {.name = "linger",
                                         .description =
                                             "outlives the grace period",
                                         .run = linger_run};
static const stellar_task task_append = {
    .name = "append", .description = "appends a line", .run = append_run};

/* ---------------------------------------------------------- Helpers --- */

static bool is_redis(const struct test_ctx *t)
{
    return strcmp(t->backend, "redis") == 0;
}

/* Opens a handle on the test's backend with options o (NULL: defaults),
 * logging to the test's log file. */
static stellar *open_h(const struct test_ctx *t, stellar_options *o)
{
    stellar_options d = {0};
    stellar_error e = {0};
    stellar *h = NULL;
    if (!o) o = &d;
    o->url = t->url;
    o->log_fn = test_log_fn;
    o->log_level = STELLAR_LOG_INFO;
    ASSERT_OK(stellar_open(&h, o, &e), &e);
    ASSERT_TRUE(h != NULL);
    return h;
}

static void reg(stellar *h, const stellar_task *task)
{
    stellar_error e = {0};
    ASSERT_OK(stellar_task_register(h, task, &e), &e);
}

static void start(stellar *h)
{
    stellar_error e = {0};
    ASSERT_OK(stellar_start(h, &e), &e);
}

static void enqueue(stellar *h, const char *task, const char *params,
                    const char *queue)
{
    stellar_error e = {0};
    ASSERT_OK(stellar_enqueue(h, task, params, queue, &e), &e);
}

static st_backend *raw_open(const struct test_ctx *t)
{
    st_backend_cfg cfg = {0};
    stellar_error e = {0};
    st_backend *b = NULL;
    ASSERT_OK(st_backend_open(&b, t->url, &cfg, &e), &e);
    return b;
}

/* Raw payloads queued in queue, as a JSON array of strings. */
static json_t *raw_queued(st_backend *b, const char *queue)
{
    stellar_error e = {0};
    json_t *a = NULL;
    ASSERT_OK(b->ops->queued(b, queue, 0, -1, &a, &e), &e);
    ASSERT_TRUE(json_is_array(a));
    return a;
}

/* Raw failed entries, as a JSON array of strings. */
static json_t *raw_failed(st_backend *b)
{
    stellar_error e = {0};
    json_t *a = NULL;
    ASSERT_OK(b->ops->failed_range(b, 0, -1, &a, &e), &e);
    ASSERT_TRUE(json_is_array(a));
    return a;
}

/* The one failed entry (new reference); fails unless there is exactly one. */
static json_t *the_failed_entry(stellar *h)
{
    stellar_error e = {0};
    json_t *a = NULL, *entry;
    ASSERT_OK(stellar_failed(h, 0, -1, &a, &e), &e);
    ASSERT_TRUE(json_is_array(a));
    ASSERT_EQ(1, json_array_size(a));
    entry = json_incref(json_array_get(a, 0));
    json_decref(a);
    ASSERT_TRUE(json_is_object(entry));
    return entry;
}

static void assert_json_eq(const char *file, int line, const char *want_txt,
                           const json_t *got)
{
    json_error_t je;
    json_t *want = json_loads(want_txt, JSON_DECODE_ANY, &je);
    char *got_txt =
        got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!want)
        test_fail(file, line, "bad expected JSON %s: %s", want_txt, je.text);
    if (!got || !json_equal(want, got))
        test_fail(file, line, "JSON differs\n  want: %s\n  got:  %s", want_txt,
                  got_txt ? got_txt : "NULL");
    json_decref(want);
    free(got_txt);
}
#define ASSERT_JSON_EQ(want, got) assert_json_eq(__FILE__, __LINE__, want, got)

/* A run's params, parsed (new reference). */
static json_t *params_of(const struct run *r)
{
    json_t *p = r->params ? json_loads(r->params, 0, NULL) : NULL;
    if (!p) FAIL("run of %s had no params object", r->task);
    return p;
}

/* Where a job due at at_ms may start: [*lo, *hi] (see the top comment). */
static void due_window(const struct test_ctx *t, int64_t at_lo, int64_t at_hi,
                       int64_t *lo, int64_t *hi)
{
    if (is_redis(t)) {
        *lo = (at_lo + 500) / 1000 * 1000;
        *hi = (at_hi + 999) / 1000 * 1000 + SLACK_MS;
    } else {
        *lo = at_lo;
        *hi = at_hi + LATE_MS;
    }
}

/* ------------------------------------------------- Enqueue, process --- */

static void an_enqueued_job_runs_its_task_with_the_params(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    json_t *p;
    struct run r;

    reg(h, &task_record);
    enqueue(h, "record",
            "{\"to\":\"a@b.c\",\"n\":[1,2.5,null],\"s\":\"\xc3\xa9\"}", "q");
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    r = run_of("record", 0);
    p = params_of(&r);
    ASSERT_JSON_EQ("{\"to\":\"a@b.c\",\"n\":[1,2.5,null],\"s\":\"\xc3\xa9\"}",
                   p);
    ASSERT_STR_EQ("q", r.queue);
    ASSERT_STR_EQ("record", r.task);
    ASSERT_WAIT(test_stat(h, "processed") == 1, 5000);
    {
        char key[160];
        snprintf(key, sizeof key, "processed:%s", r.worker);
        ASSERT_EQ(1, test_stat(h, key));
    }
    ASSERT_EQ(0, test_stat(h, "failed"));
    ASSERT_EQ(0, test_length(h, "q"));
    json_decref(p);
    free(r.params);
    stellar_close(h);
    ASSERT_EQ(1, runs_of("record", false)); /* ran once, not again */
}

static void a_job_without_params_gets_an_empty_object(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    struct run r;
    json_t *p;

    reg(h, &task_record);
    enqueue(h, "record", NULL, NULL);
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    r = run_of("record", 0);
    p = params_of(&r);
    ASSERT_JSON_EQ("{}", p);
    ASSERT_STR_EQ("default", r.queue);
    json_decref(p);
    free(r.params);
    stellar_close(h);
}

static void a_job_without_a_queue_goes_to_its_tasks_queue(struct test_ctx *t)
{
    static const stellar_task mailer = {.name = "record",
                                        .description = "d",
                                        .queue = "mail",
                                        .run = record_run};
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    json_t *q;

    reg(h, &mailer);
    enqueue(h, "record", "{\"k\":1}", NULL);
    ASSERT_EQ(1, test_length(h, "mail"));
    ASSERT_EQ(0, test_length(h, "default"));
    q = raw_queued(b, "mail");
    ASSERT_STR_EQ(
        "{\"class\":\"record\",\"queue\":\"mail\",\"args\":[{\"k\":1}]}",
        json_string_value(json_array_get(q, 0)));
    json_decref(q);
    st_backend_close(b);
    stellar_close(h);
}

static void
the_stored_payload_is_the_resque_json_byte_for_byte(struct test_ctx *t)
{
    /* A pure client (no tasks registered) accepts any task name. */
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *q, *ts = NULL, *delayed = NULL;
    /* Member order kept, "/" and U+2028 raw, non-ASCII raw, numbers as JS. */
    const char *params = "{\"b\":1,\"a\":\"x/\xc3\xa9\xe2\x80\xa8\",\"f\":1.50,"
                         "\"e\":1E3,\"z\":-0.0,\"u\":\"\\u0041\\u0001\"}";
    const char *want = "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"b\":1,"
                       "\"a\":\"x/\xc3\xa9\xe2\x80\xa8\",\"f\":1.5,\"e\":1000,"
                       "\"z\":0,\"u\":\"A\\u0001\"}]}";
    int64_t at = (test_now_ms() / 1000 + 3600) * 1000; /* a whole second */

    enqueue(h, "t", params, "q");
    enqueue(h, "t", NULL, "q");
    q = raw_queued(b, "q");
    ASSERT_EQ(2, json_array_size(q));
    ASSERT_STR_EQ(want, json_string_value(json_array_get(q, 0)));
    ASSERT_STR_EQ("{\"class\":\"t\",\"queue\":\"q\",\"args\":[{}]}",
                  json_string_value(json_array_get(q, 1)));

    /* A delayed job is stored as the very same bytes. */
    ASSERT_OK(stellar_enqueue_at(h, at, "t", params, "q", &e), &e);
    ASSERT_OK(b->ops->timestamps(b, &ts, &e), &e);
    ASSERT_EQ(1, json_array_size(ts));
    ASSERT_EQ(at, json_integer_value(json_array_get(ts, 0)));
    ASSERT_OK(b->ops->delayed_at(b, at, &delayed, &e), &e);
    ASSERT_EQ(1, json_array_size(delayed));
    ASSERT_STR_EQ(want, json_string_value(json_array_get(delayed, 0)));
    json_decref(q);
    json_decref(ts);
    json_decref(delayed);
    st_backend_close(b);
    stellar_close(h);
}

static void queues_and_lengths_are_readable_through_the_api(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *names = NULL;

    enqueue(h, "x", NULL, "b");
    enqueue(h, "x", "{\"n\":1}", "a");
    enqueue(h, "x", "{\"n\":2}", "a");
    ASSERT_OK(stellar_queues(h, &names, &e), &e);
    ASSERT_JSON_EQ("[\"a\",\"b\"]", names);
    ASSERT_EQ(2, test_length(h, "a"));
    ASSERT_EQ(1, test_length(h, "b"));
    ASSERT_EQ(0, test_length(h, "nothing"));
    json_decref(names);
    stellar_close(h);
}

static void queues_are_taken_in_priority_order(struct test_ctx *t)
{
    static const char *const queues[] = {"high", "low", NULL};
    stellar_options o = {.queues = queues, .processors = 1};
    stellar *h = open_h(t, &o);
    int want[] = {3, 4, 1, 2};

    reg(h, &task_record);
    enqueue(h, "record", "{\"n\":1}", "low");
    enqueue(h, "record", "{\"n\":2}", "low");
    enqueue(h, "record", "{\"n\":3}", "high");
    enqueue(h, "record", "{\"n\":4}", "high");
    enqueue(h, "record", "{\"n\":5}", "other"); /* not one of ours */
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 4, 5000);
    for (int i = 0; i < 4; i++) {
        struct run r = run_of("record", i);
        json_t *p = params_of(&r);
        ASSERT_EQ(want[i], json_integer_value(json_object_get(p, "n")));
        json_decref(p);
        free(r.params);
    }
    ASSERT_EQ(1, test_length(h, "other"));
    stellar_close(h);
    ASSERT_EQ(4, runs_of("record", false));
}

static void
a_wildcard_worker_takes_every_queue_in_name_order(struct test_ctx *t)
{
    stellar_options o = {.processors = 1}; /* queues NULL: "*" */
    stellar *h = open_h(t, &o);
    const char *want[] = {"alpha", "alpha", "beta", "gamma"};

    reg(h, &task_record);
    enqueue(h, "record", NULL, "gamma");
    enqueue(h, "record", NULL, "beta");
    enqueue(h, "record", NULL, "alpha");
    enqueue(h, "record", NULL, "alpha");
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 4, 5000);
    for (int i = 0; i < 4; i++) {
        struct run r = run_of("record", i);
        ASSERT_STR_EQ(want[i], r.queue);
        free(r.params);
    }
    stellar_close(h);
}

/* ----------------------------------------------------------- Delayed --- */

static void enqueue_at_runs_the_job_not_before_its_time(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *ts = NULL;
    int64_t at = test_now_ms() + 1300, lo, hi;
    struct run r;

    reg(h, &task_record);
    start(h);
    ASSERT_OK(
        stellar_enqueue_at(h, at, "record", "{\"when\":\"at\"}", NULL, &e), &e);
    due_window(t, at, at, &lo, &hi);
    /* Waiting in the delayed set, listed by timestamp, not in its queue. */
    ASSERT_OK(stellar_timestamps(h, &ts, &e), &e);
    ASSERT_EQ(1, json_array_size(ts));
    ASSERT_EQ(is_redis(t) ? lo : at, json_integer_value(json_array_get(ts, 0)));
    json_decref(ts);
    ASSERT_EQ(0, test_length(h, "default"));

    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    r = run_of("record", 0);
    test_note("enqueueAt: started %+lld ms from its time",
              (long long)(r.start_ms - at));
    if (r.start_ms < lo || r.start_ms > hi)
        FAIL("due at %lld: started at %+lld ms, allowed [%+lld, %+lld]",
             (long long)at, (long long)(r.start_ms - at), (long long)(lo - at),
             (long long)(hi - at));
    ASSERT_OK(stellar_timestamps(h, &ts, &e), &e);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    free(r.params);
    stellar_close(h);
}

static void enqueue_at_a_past_time_runs_the_job_at_once(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t t0;
    struct run r;

    reg(h, &task_record);
    start(h);
    t0 = test_now_ms();
    ASSERT_OK(stellar_enqueue_at(h, t0 - 60000, "record", NULL, NULL, &e), &e);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    r = run_of("record", 0);
    test_note("a past-due job started %lld ms after enqueueAt",
              (long long)(r.start_ms - t0));
    if (r.start_ms - t0 > (is_redis(t) ? 1000 + SLACK_MS : LATE_MS))
        FAIL("a past-due job started %lld ms after enqueueAt",
             (long long)(r.start_ms - t0));
    free(r.params);
    stellar_close(h);
}

static void
enqueue_in_runs_the_job_after_its_delay_and_not_before(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t t0, t1, lo, hi;
    struct run r;

    reg(h, &task_record);
    start(h);
    t0 = test_now_ms();
    ASSERT_OK(
        stellar_enqueue_in(h, 1500, "record", "{\"when\":\"in\"}", NULL, &e),
        &e);
    t1 = test_now_ms();
    due_window(t, t0 + 1500, t1 + 1500, &lo, &hi);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    r = run_of("record", 0);
    test_note("enqueueIn(1500): started %lld..%lld ms after the call",
              (long long)(r.start_ms - t1), (long long)(r.start_ms - t0));
    if (r.start_ms < lo || r.start_ms > hi)
        FAIL("enqueueIn(1500): started %lld ms after, allowed [%lld, %lld]",
             (long long)(r.start_ms - t0), (long long)(lo - t0),
             (long long)(hi - t0));
    free(r.params);
    stellar_close(h);
}

static void enqueue_in_with_a_negative_delay_is_refused(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *ts = NULL;

    ASSERT_EQ(STELLAR_EINVAL, stellar_enqueue_in(h, -1, "x", NULL, NULL, &e));
    ASSERT_EQ(STELLAR_EINVAL, e.code);
    ASSERT_TRUE(e.msg[0] != '\0');
    ASSERT_OK(stellar_timestamps(h, &ts, &e), &e);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    stellar_close(h);
}

static void delayed_jobs_run_in_time_order(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    stellar_error e = {0};
    /* Whole seconds apart, so the order holds on the seconds layout too. */
    int64_t base = (test_now_ms() / 1000 + 2) * 1000;

    reg(h, &task_record);
    ASSERT_OK(
        stellar_enqueue_at(h, base + 1000, "record", "{\"n\":2}", NULL, &e),
        &e);
    ASSERT_OK(stellar_enqueue_at(h, base, "record", "{\"n\":1}", NULL, &e), &e);
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 2, 6000);
    for (int i = 0; i < 2; i++) {
        struct run r = run_of("record", i);
        json_t *p = params_of(&r);
        ASSERT_EQ(i + 1, json_integer_value(json_object_get(p, "n")));
        ASSERT_TRUE(r.start_ms >= base + 1000 * i);
        json_decref(p);
        free(r.params);
    }
    stellar_close(h);
}

/* ---------------------------------------------------------- Periodic --- */

/* Jobs of class cls now queued in queue plus now delayed. Reads the queue
 * first: a job leaves the queue, runs (200 ms) and comes back delayed, so
 * one read cannot see it twice. */
static int copies_stored(st_backend *b, const char *queue, const char *cls)
{
    stellar_error e = {0};
    json_t *q = raw_queued(b, queue), *ts = NULL, *v;
    char pat[64];
    size_t i, j;
    int n = 0;

    snprintf(pat, sizeof pat, "\"class\":\"%s\"", cls);
    json_array_foreach(q, i, v) n += strstr(json_string_value(v), pat) != NULL;
    json_decref(q);
    ASSERT_OK(b->ops->timestamps(b, &ts, &e), &e);
    json_array_foreach(ts, i, v)
    {
        json_t *d = NULL, *p;
        ASSERT_OK(b->ops->delayed_at(b, json_integer_value(v), &d, &e), &e);
        json_array_foreach(d, j, p) n +=
            strstr(json_string_value(p), pat) != NULL;
        json_decref(d);
    }
    json_decref(ts);
    return n;
}

/* Checks, while the periodic task "tick" runs until it has ended `until`
 * runs, that storage never holds two copies of it. */
static void watch_ticks(st_backend *b, int until)
{
    int64_t deadline = test_mono_ms() + 30000;
    while (runs_of("tick", true) < until) {
        int n = copies_stored(b, "default", "tick");
        if (n > 1) FAIL("%d copies of the periodic job stored at once", n);
        if (test_mono_ms() > deadline)
            FAIL("periodic task ran %d times in 30 s", runs_of("tick", true));
        test_sleep_ms(20);
    }
}

/* Each of runs [from, to) started `frequency` after the previous one ended. */
static void check_gaps(const struct test_ctx *t, int64_t freq, int from, int to)
{
    int64_t lo = is_redis(t) ? freq - 500 : freq;
    int64_t hi = is_redis(t) ? freq + 1000 + SLACK_MS : freq + LATE_MS;
    for (int i = from; i < to; i++) {
        struct run a = run_of("tick", i - 1), c = run_of("tick", i);
        int64_t gap = c.start_ms - a.end_ms;
        test_note("periodic run %d started %lld ms after run %d ended", i,
                  (long long)gap, i - 1);
        if (gap < lo || gap > hi)
            FAIL("run %d started %lld ms after run %d ended; frequency %lld, "
                 "allowed [%lld, %lld]",
                 i, (long long)gap, i - 1, (long long)freq, (long long)lo,
                 (long long)hi);
        free(a.params);
        free(c.params);
    }
}

static void a_periodic_task_runs_again_after_each_run_and_is_never_stored_twice(
    struct test_ctx *t)
{
    /* Two handles, as two servers: each runs processors and a scheduler. */
    const int64_t freq = is_redis(t) ? 1000 : 400;
    const stellar_task tick = {.name = "tick",
                               .description = "periodic",
                               .frequency = freq,
                               .run = tick_run};
    stellar *h1 = open_h(t, NULL), *h2 = open_h(t, NULL);
    st_backend *b = raw_open(t);

    reg(h1, &tick);
    reg(h2, &tick);
    start(h1);
    start(h2);
    watch_ticks(b, 4);
    check_gaps(t, freq, 1, 4);

    /* The first server (the leader: it started first) leaves. The other
     * takes office and enqueues every periodic task at once (replacing the
     * waiting copy): still one copy, and the period holds from then on. */
    stellar_close(h1);
    watch_ticks(b, 8);
    check_gaps(t, freq, 6, 8);
    stellar_close(h2);
    ASSERT_EQ(1, max_in_flight);
    st_backend_close(b);
}

static int ticks_in_flight(void)
{
    int n;
    pthread_mutex_lock(&runs_mu);
    n = in_flight;
    pthread_mutex_unlock(&runs_mu);
    return n;
}

static void a_periodic_task_never_runs_twice_at_once_when_the_leader_changes(
    struct test_ctx *t)
{
    /* A scheduler-only server, and a server with two idle processors.
     * While a run is going on, the scheduler server is replaced; the new
     * leader enqueues the periodic task at once, and the second processor
     * takes that copy: the task's automatic jobLock must hold it back. */
    const stellar_task tick = {.name = "tick",
                               .description = "periodic",
                               .frequency = is_redis(t) ? 1000 : 300,
                               .run = tick_run};
    stellar_options sched = {.processors = -1};
    stellar_options procs = {.processors = 2, .no_scheduler = true};
    stellar *h1 = open_h(t, &sched), *hw = open_h(t, &procs), *h3;

    tick_ms = 1500;
    reg(h1, &tick);
    reg(hw, &tick);
    start(hw);
    start(h1);
    ASSERT_WAIT(ticks_in_flight() == 1, 10000);
    stellar_close(h1);
    h3 = open_h(t, &sched);
    reg(h3, &tick);
    start(h3);
    ASSERT_WAIT(runs_of("tick", true) >= 3, 30000);
    stellar_close(h3);
    stellar_close(hw);
    if (max_in_flight != 1)
        FAIL("the periodic task ran %d times at once", max_in_flight);
}

/* ------------------------------------------------------------ Failure --- */

static void
a_failing_task_is_recorded_in_failed_with_counters(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    json_t *entry, *raw;
    const char *txt,
        *order[] = {
            "\"worker\":", "\"queue\":",     "\"payload\":",  "\"exception\":",
            "\"error\":",  "\"backtrace\":", "\"failed_at\":"};
    const char *last;
    char key[160];
    struct run r;

    reg(h, &task_boom);
    reg(h, &task_record);
    enqueue(h, "boom", "{\"why\":\"disk on fire\"}", "q");
    start(h);
    ASSERT_WAIT(test_failed_count(h) == 1, 5000);
    r = run_of("boom", 0);
    entry = the_failed_entry(h);
    ASSERT_STR_EQ(r.worker,
                  json_string_value(json_object_get(entry, "worker")));
    ASSERT_STR_EQ("q", json_string_value(json_object_get(entry, "queue")));
    ASSERT_JSON_EQ("{\"class\":\"boom\",\"queue\":\"q\",\"args\":[{\"why\":"
                   "\"disk on fire\"}]}",
                   json_object_get(entry, "payload"));
    ASSERT_TRUE(json_string_length(json_object_get(entry, "exception")) > 0);
    ASSERT_TRUE(strstr(json_string_value(json_object_get(entry, "error"))
                           ? json_string_value(json_object_get(entry, "error"))
                           : "",
                       "boom: disk on fire") != NULL);
    ASSERT_TRUE(json_is_array(json_object_get(entry, "backtrace")) ||
                json_is_null(json_object_get(entry, "backtrace")));
    ASSERT_TRUE(json_string_length(json_object_get(entry, "failed_at")) > 0);

    /* The stored entry has the Resque member order (§2.6). */
    raw = raw_failed(b);
    txt = json_string_value(json_array_get(raw, 0));
    ASSERT_TRUE(txt != NULL);
    last = txt;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *at = strstr(txt, order[i]);
        if (!at || at < last)
            FAIL("failed entry member %s out of order: %s", order[i], txt);
        last = at;
    }
    ASSERT_TRUE(strncmp(txt, "{\"worker\":", 10) == 0);

    ASSERT_WAIT(test_stat(h, "failed") == 1, 5000);
    snprintf(key, sizeof key, "failed:%s", r.worker);
    ASSERT_EQ(1, test_stat(h, key));
    ASSERT_EQ(0, test_stat(h, "processed"));

    /* The worker keeps going. */
    enqueue(h, "record", NULL, "q");
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    ASSERT_EQ(1, runs_of("boom", false));
    ASSERT_EQ(1, test_failed_count(h));
    json_decref(raw);
    json_decref(entry);
    free(r.params);
    st_backend_close(b);
    stellar_close(h);
}

static void
an_unknown_task_fails_the_job_and_the_worker_keeps_going(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL), *client = open_h(t, NULL);
    json_t *entry;
    const char *err;

    reg(h, &task_record);
    start(h);
    enqueue(client, "noSuchTask", "{\"a\":1}", "default");
    enqueue(client, "record", NULL, "default");
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    ASSERT_WAIT(test_failed_count(h) == 1, 5000);
    entry = the_failed_entry(h);
    err = json_string_value(json_object_get(entry, "error"));
    if (!err || !strstr(err, "noSuchTask"))
        FAIL("the error does not name the task: %s", err ? err : "NULL");
    ASSERT_JSON_EQ(
        "{\"class\":\"noSuchTask\",\"queue\":\"default\",\"args\":[{\"a\":1}]}",
        json_object_get(entry, "payload"));
    ASSERT_EQ(0, test_length(h, "default"));
    ASSERT_WAIT(test_stat(h, "processed") == 1, 5000);
    ASSERT_EQ(1, test_stat(h, "failed"));
    json_decref(entry);
    stellar_close(client);
    stellar_close(h);
}

static void
enqueue_of_an_unknown_task_on_a_handle_with_tasks_is_refused(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};

    reg(h, &task_record);
    ASSERT_EQ(STELLAR_ENOTASK, stellar_enqueue(h, "nope", NULL, NULL, &e));
    ASSERT_TRUE(strstr(e.msg, "nope") != NULL);
    ASSERT_EQ(STELLAR_ENOTASK,
              stellar_enqueue_in(h, 10, "nope", NULL, NULL, &e));
    ASSERT_EQ(0, test_length(h, "default"));
    stellar_close(h);
}

static void
an_invalid_payload_fails_with_a_clear_error_and_is_kept(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    const char *bad[] = {"not json {", "{\"queue\":\"default\",\"args\":[{}]}"};
    json_t *raw, *entries = NULL, *v;
    size_t i;

    reg(h, &task_record);
    ASSERT_OK(b->ops->push(b, "default", bad, 2, &e), &e);
    enqueue(h, "record", NULL, "default");
    start(h);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    ASSERT_WAIT(test_failed_count(h) == 2, 5000);
    ASSERT_OK(stellar_failed(h, 0, -1, &entries, &e), &e);
    json_array_foreach(entries, i, v)
    {
        const char *err = json_string_value(json_object_get(v, "error"));
        if (!err || strlen(err) < 8)
            FAIL("failed entry %zu: no clear error", i);
        ASSERT_STR_EQ("default",
                      json_string_value(json_object_get(v, "queue")));
    }
    /* The first names the problem; the job's bytes are kept in the entry. */
    {
        const char *err = json_string_value(
            json_object_get(json_array_get(entries, 0), "error"));
        if (!test_contains_ci(err, "json") && !test_contains_ci(err, "payload"))
            FAIL("error for a non-JSON payload says neither JSON nor payload: "
                 "%s",
                 err);
    }
    raw = raw_failed(b);
    ASSERT_EQ(2, json_array_size(raw));
    ASSERT_TRUE(strstr(json_string_value(json_array_get(raw, 0)),
                       "not json {") != NULL);
    ASSERT_TRUE(strstr(json_string_value(json_array_get(raw, 1)),
                       "\"args\":[{}]") != NULL);
    ASSERT_WAIT(test_stat(h, "failed") == 2, 5000);
    json_decref(raw);
    json_decref(entries);
    st_backend_close(b);
    stellar_close(h);
}

/* ----------------------------------------------------- Workers, stop --- */

static void
a_running_job_shows_in_workers_with_what_it_works_on(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *ws = NULL, *w, *on;
    struct run r;
    char *txt;

    reg(h, &task_slow);
    enqueue(h, "slow", "{\"ms\":1500}", "default");
    start(h);
    ASSERT_WAIT(runs_of("slow", false) == 1, 5000);
    r = run_of("slow", 0);
    ASSERT_OK(stellar_workers(h, &ws, &e), &e);
    w = json_object_get(ws, r.worker);
    txt = json_dumps(ws, JSON_COMPACT);
    if (!json_is_object(w)) FAIL("worker %s not listed in %s", r.worker, txt);
    on = json_object_get(w, "working_on");
    if (!json_is_object(on) || !strstr(txt, "slow"))
        FAIL("worker %s is not working on the slow job: %s", r.worker, txt);
    ASSERT_STR_EQ("default", json_string_value(json_object_get(on, "queue")));
    free(txt);
    json_decref(ws);
    free(r.params);
    stellar_stop(h, -1);
    ASSERT_OK(stellar_workers(h, &ws, &e), &e);
    ASSERT_JSON_EQ("{}", ws); /* unregistered at stop */
    json_decref(ws);
    stellar_close(h);
}

static void
graceful_stop_lets_the_running_job_finish_and_leaves_the_rest_queued(
    struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    struct run r;

    reg(h, &task_slow);
    reg(h, &task_record);
    enqueue(h, "slow", "{\"ms\":800}", "default");
    for (int i = 0; i < 3; i++)
        enqueue(h, "record", NULL, "default");
    start(h);
    ASSERT_WAIT(runs_of("slow", false) == 1, 5000);
    stellar_stop(h, 10000);
    r = run_of("slow", 0);
    ASSERT_TRUE(r.end_ms != 0); /* it finished before stop returned */
    ASSERT_TRUE(r.end_ms - r.start_ms >= 800);
    ASSERT_EQ(0, runs_of("record", false));
    ASSERT_EQ(3, test_length(h, "default"));
    ASSERT_EQ(1, test_stat(h, "processed"));
    ASSERT_EQ(0, test_failed_count(h));
    free(r.params);
    stellar_close(h);
    ASSERT_EQ(0, runs_of("record", false));
}

static void graceful_stop_puts_a_job_running_past_the_grace_back_at_the_head(
    struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    st_backend *b = raw_open(t);
    json_t *before, *after;

    reg(h, &task_linger);
    reg(h, &task_record);
    enqueue(h, "linger", "{\"after_ms\":800}", "default");
    enqueue(h, "record", "{\"n\":1}", "default");
    enqueue(h, "record", "{\"n\":2}", "default");
    before = raw_queued(b, "default");
    start(h);
    ASSERT_WAIT(runs_of("linger", false) == 1, 5000);
    stellar_stop(h, 200);
    after = raw_queued(b, "default");
    if (!json_equal(before, after)) {
        char *x = json_dumps(before, JSON_COMPACT),
             *y = json_dumps(after, JSON_COMPACT);
        FAIL("queue after stop differs\n  before start: %s\n  after stop:   %s",
             x, y);
    }
    ASSERT_EQ(0, runs_of("record", false));
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_EQ(0, test_stat(h, "processed"));
    json_decref(before);
    json_decref(after);
    st_backend_close(b);
    stellar_close(h);
}

static void stop_before_start_and_twice_is_harmless(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};

    reg(h, &task_record);
    stellar_stop(h, -1);
    start(h);
    ASSERT_EQ(STELLAR_ESTATE, stellar_start(h, &e));
    enqueue(h, "record", NULL, NULL);
    ASSERT_WAIT(runs_of("record", true) == 1, 5000);
    stellar_stop(h, -1);
    stellar_stop(h, -1);
    stellar_close(h);
}

/* backend.h: kv_expire with value NULL sets the expiry whatever the key
 * holds (the Redis backend refused NULL: the suspects' keys need it). */
static void kv_expire_without_a_value_applies_to_any_value(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *keys = NULL;
    int64_t exp, now = test_now_ms();
    bool set = false;

    ASSERT_OK(b->ops->kv_set(b, "lock:any", "v1", 0, false, &set, &e), &e);
    ASSERT_OK(b->ops->kv_expire(b, "lock:any", NULL, 60000, &set, &e), &e);
    ASSERT_TRUE(set);
    ASSERT_OK(b->ops->kv_scan(b, "lock:", &keys, &e), &e);
    exp = json_integer_value(
        json_object_get(json_object_get(keys, "lock:any"), "expires"));
    json_decref(keys);
    ASSERT_TRUE(exp >= now + 59000 && exp <= test_now_ms() + 61000);
    ASSERT_OK(b->ops->kv_expire(b, "lock:none", NULL, 60000, &set, &e), &e);
    ASSERT_TRUE(!set);
    st_backend_close(b);
}

/* ------------------------------------------------- Hostile input --- */

/* Queue and task names: non-blank valid UTF-8 without control characters,
 * at most 256 bytes; refused with EINVAL everywhere, nothing stored. */
static void
bad_names_are_refused_everywhere_and_good_ones_kept(struct test_ctx *t)
{
    char long_ok[257], long_bad[258];
    const char *bad[] = {" ",
                         "   ",
                         "a\tb",
                         "new\nline",
                         "del\x7f",
                         "c1\xc2\x85",
                         "\xff\xfe",
                         "trunc\xe2\x82",
                         "\xc0\xaf overlong",
                         "\xed\xa0\x80 surrogate",
                         long_bad};
    const char *good[] = {"a b",         " lead",
                          "caf\xc3\xa9", "rocket \xf0\x9f\x9a\x80",
                          "jobs:high",   long_ok};
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *q = NULL;
    int64_t n;
    size_t i;

    memset(long_ok, 'q', 256);
    long_ok[256] = '\0';
    memset(long_bad, 'q', 257);
    long_bad[257] = '\0';
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *const queues[] = {bad[i], NULL};
        stellar_options o = {.url = t->url, .queues = queues};
        stellar_task task = task_record;
        stellar *h2 = NULL;

        test_note("bad name %zu", i);
        ASSERT_EQ(STELLAR_EINVAL,
                  stellar_enqueue(h, "record", NULL, bad[i], &e));
        ASSERT_TRUE(strstr(e.msg, "queue name") != NULL);
        ASSERT_EQ(STELLAR_EINVAL, stellar_enqueue(h, bad[i], NULL, "q", &e));
        ASSERT_TRUE(strstr(e.msg, "task name") != NULL);
        ASSERT_EQ(STELLAR_EINVAL,
                  stellar_enqueue_in(h, 1000, "record", NULL, bad[i], &e));
        ASSERT_EQ(STELLAR_EINVAL,
                  stellar_enqueue_many(h, "record", NULL, 1, bad[i], &e));
        ASSERT_EQ(STELLAR_EINVAL, stellar_length(h, bad[i], &n, &e));
        ASSERT_EQ(STELLAR_EINVAL, stellar_del_queue(h, bad[i], &e));
        ASSERT_EQ(STELLAR_EINVAL,
                  stellar_del(h, bad[i], "record", NULL, 0, &n, &e));
        ASSERT_EQ(STELLAR_EINVAL, stellar_open(&h2, &o, &e));
        ASSERT_TRUE(h2 == NULL);
        task.queue = bad[i];
        ASSERT_EQ(STELLAR_EINVAL, stellar_task_register(h, &task, &e));
        task = task_record;
        task.name = bad[i];
        ASSERT_EQ(STELLAR_EINVAL, stellar_task_register(h, &task, &e));
    }
    ASSERT_OK(stellar_queues(h, &q, &e), &e);
    ASSERT_EQ(0, json_array_size(q));
    json_decref(q);

    /* Valid names, as another Resque client may write them, are kept
     * apart and listed. */
    for (i = 0; i < sizeof good / sizeof good[0]; i++)
        enqueue(h, "record", NULL, good[i]);
    ASSERT_OK(stellar_queues(h, &q, &e), &e);
    ASSERT_EQ(sizeof good / sizeof good[0], json_array_size(q));
    json_decref(q);
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        ASSERT_OK(stellar_length(h, good[i], &n, &e), &e);
        ASSERT_EQ(1, n);
    }

    /* A queue another client wrote under a name we refuse is still shown
     * (details, /api/queues), not an error for every queue. */
    {
        st_backend *b = raw_open(t);
        const char *p = "{\"class\":\"record\",\"queue\":\"bell\\u0007\","
                        "\"args\":[{}]}";
        json_t *d = NULL;
        ASSERT_OK(b->ops->push(b, "bell\a", &p, 1, &e), &e);
        st_backend_close(b);
        ASSERT_OK(stellar_details(h, &d, &e), &e);
        ASSERT_EQ(1,
                  json_integer_value(json_object_get(
                      json_object_get(json_object_get(d, "queues"), "bell\a"),
                      "length")));
        json_decref(d);
    }
    stellar_close(h);
}

static json_t *timestamps_of(stellar *h);

/* Times: 0 to STELLAR_TIME_MAX (year 9999); past it, or a delay that
 * reaches past it (no overflow of now + delay), is EINVAL, nothing stored. */
static void
times_past_the_year_9999_are_refused_and_nothing_stored(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *ts = NULL;

    reg(h, &task_record);
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_enqueue_at(h, INT64_MAX, "record", NULL, NULL, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_enqueue_at(h, STELLAR_TIME_MAX + 1,
                                                 "record", NULL, NULL, &e));
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_enqueue_in(h, INT64_MAX, "record", NULL, NULL, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_enqueue_in(h, STELLAR_TIME_MAX, "record",
                                                 NULL, NULL, &e));
    ASSERT_TRUE(strstr(e.msg, "9999") != NULL);
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_enqueue_at(h, -1, "record", NULL, NULL, &e));
    ts = timestamps_of(h);
    ASSERT_EQ(0, json_array_size(ts));
    json_decref(ts);
    ASSERT_EQ(0, test_length(h, "default"));

    /* The last valid time is stored where timestamps sees it. */
    ASSERT_OK(stellar_enqueue_at(h, STELLAR_TIME_MAX, "record", NULL, NULL, &e),
              &e);
    ts = timestamps_of(h);
    ASSERT_EQ(1, json_array_size(ts));
    ASSERT_TRUE(json_integer_value(json_array_get(ts, 0)) >=
                STELLAR_TIME_MAX - 1000);
    json_decref(ts);
    stellar_close(h);
}

/* ------------------------------------------ Calls back into the API --- */

/* A plugin hook and a task that call the API on their own handle: the
 * hook reads a length and enqueues a follow-up before each enqueue, the
 * task does the same when it runs. Nothing of the handle may be locked
 * while they run (include/stellar.h, "Threads"). */
enum { REENTER_THREADS = 8, REENTER_JOBS = 25 };

static void call_back(stellar *h, const char *from)
{
    stellar_error e = {0};
    int64_t n = -1;
    char params[64];

    ASSERT_OK(stellar_length(h, "reenter", &n, &e), &e);
    ASSERT_TRUE(n >= 0);
    snprintf(params, sizeof params, "{\"from\":\"%s\"}", from);
    ASSERT_OK(stellar_enqueue(h, "followup", params, "followups", &e), &e);
}

static int reenter_before_enqueue(stellar_job *job, const json_t *options)
{
    (void)options;
    call_back(stellar_job_handle(job), "hook");
    return STELLAR_OK;
}

static int reenter_run(stellar_api *api, const json_t *params,
                       stellar_next *next)
{
    int i = run_begin(api, params);
    (void)next;
    call_back(stellar_api_handle(api), "task");
    run_end(i);
    return STELLAR_OK;
}

static const stellar_plugin plugin_reenter = {"reenter", reenter_before_enqueue,
                                              NULL, NULL, NULL};
static const char *const reenter_plugins[] = {"reenter", NULL};
static const stellar_task task_reenter = {.name = "reenter",
                                          .description = "calls back in",
                                          .queue = "reenter",
                                          .plugins = reenter_plugins,
                                          .run = reenter_run};
static const stellar_task task_followup = {.name = "followup",
                                           .description = "records",
                                           .queue = "followups",
                                           .run = record_run};

static void *enqueue_reenter(void *arg)
{
    stellar *h = arg;
    stellar_error e = {0};
    for (int i = 0; i < REENTER_JOBS; i++)
        ASSERT_OK(stellar_enqueue(h, "reenter", NULL, NULL, &e), &e);
    return NULL;
}

static void hooks_and_tasks_call_the_api_on_their_own_handle(struct test_ctx *t)
{
    static const char *const queues[] = {"reenter", "followups", NULL};
    stellar_options o = {.processors = 4, .queues = queues};
    stellar_error e = {0};
    pthread_t th[REENTER_THREADS];
    stellar *h;
    int i, jobs = REENTER_THREADS * REENTER_JOBS;

    ASSERT_OK(stellar_plugin_register(&plugin_reenter, &e), &e);
    h = open_h(t, &o);
    reg(h, &task_reenter);
    reg(h, &task_followup);
    start(h);
    for (i = 0; i < REENTER_THREADS; i++)
        ASSERT_EQ(0, pthread_create(&th[i], NULL, enqueue_reenter, h));
    for (i = 0; i < REENTER_THREADS; i++)
        pthread_join(th[i], NULL);
    /* Every job ran, and so did both follow-ups of each. */
    ASSERT_WAIT(runs_of("reenter", true) == jobs &&
                    runs_of("followup", true) == 2 * jobs,
                60000);
    stellar_close(h);
    ASSERT_EQ(jobs, runs_of("reenter", true));
    ASSERT_EQ(2 * jobs, runs_of("followup", true));
}

/* A log function that is slow and calls back into the handle it logs for,
 * at every level (processors log each job at DEBUG). */
static stellar *_Atomic logging_h;
static _Atomic int slow_logs;

static void slow_reentrant_log(void *ud, int level, const char *msg)
{
    stellar *h = atomic_load(&logging_h);
    stellar_error e = {0};
    int64_t n;

    test_log_fn(ud, level, msg);
    atomic_fetch_add(&slow_logs, 1);
    test_sleep_ms(5);
    if (h) ASSERT_OK(stellar_length(h, "default", &n, &e), &e);
}

static void a_slow_log_function_that_calls_back_does_not_stall_processors(
    struct test_ctx *t)
{
    stellar_options o = {.processors = 2};
    stellar_error e = {0};
    stellar *h;

    o.url = t->url;
    o.log_fn = slow_reentrant_log;
    o.log_level = STELLAR_LOG_DEBUG;
    ASSERT_OK(stellar_open(&h, &o, &e), &e);
    atomic_store(&logging_h, h);
    reg(h, &task_record);
    start(h);
    for (int i = 0; i < 50; i++)
        enqueue(h, "record", NULL, NULL);
    ASSERT_WAIT(runs_of("record", true) == 50, 60000);
    stellar_close(h);
    atomic_store(&logging_h, NULL);
    ASSERT_TRUE(atomic_load(&slow_logs) >= 50);
}

/* stellar_stop() and stellar_close() from a task would wait for the task
 * itself: refused with an error in the log, and the task goes on. */
static int stop_self_run(stellar_api *api, const json_t *params,
                         stellar_next *next)
{
    int i = run_begin(api, params);
    (void)next;
    stellar_stop(stellar_api_handle(api), 1000);
    stellar_close(stellar_api_handle(api));
    run_end(i);
    return STELLAR_OK;
}

static const stellar_task task_stop_self = {.name = "stopSelf",
                                            .description = "stops its handle",
                                            .run = stop_self_run};

static void
stop_and_close_from_a_task_are_refused_not_a_hang(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);

    reg(h, &task_stop_self);
    reg(h, &task_record);
    start(h);
    enqueue(h, "stopSelf", NULL, NULL);
    ASSERT_WAIT(runs_of("stopSelf", true) == 1, 10000);
    /* The processors still run. */
    enqueue(h, "record", NULL, NULL);
    ASSERT_WAIT(runs_of("record", true) == 1, 10000);
    ASSERT_WAIT(test_stat(h, "processed") == 2, 10000);
    stellar_close(h);
}

/* Two threads stop one handle at once: one stops, the other waits for that
 * stop to end; the pool is stopped and freed once (ASan sees a second). */
static void *stop_h(void *arg)
{
    stellar_stop(arg, 2000);
    return NULL;
}

static void two_threads_stopping_at_once_stop_once(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    pthread_t a, b;

    reg(h, &task_slow);
    for (int round = 0; round < 3; round++) {
        start(h);
        enqueue(h, "slow", "{\"ms\":200}", NULL);
        ASSERT_WAIT(runs_of("slow", false) == round + 1, 10000);
        ASSERT_EQ(0, pthread_create(&a, NULL, stop_h, h));
        ASSERT_EQ(0, pthread_create(&b, NULL, stop_h, h));
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        ASSERT_EQ(round + 1, runs_of("slow", true));
    }
    ASSERT_OK(stellar_start(h, &e), &e);
    stellar_close(h);
}

/* ------------------------------------------------ Two processes --- */

#define N_SHARED 200

static void process_jobs_until_told(const struct test_ctx *t)
{
    stellar_options o = {.processors = 2};
    stellar *h = open_h(t, &o);
    char stop_file[600];
    struct stat st;
    int64_t deadline = test_mono_ms() + 60000;

    snprintf(stop_file, sizeof stop_file, "%s/stop", t->dir);
    reg(h, &task_append);
    start(h);
    test_append_line(test_path(t, "ready"), "ready");
    while (stat(stop_file, &st) != 0) {
        if (test_mono_ms() > deadline) FAIL("never told to stop");
        test_sleep_ms(10);
    }
    stellar_close(h);
    exit(0);
}

static void
two_processes_sharing_a_backend_run_every_job_exactly_once(struct test_ctx *t)
{
    static int seen[N_SHARED];
    char out[600], params[700], pid_a[32] = "", pid_b[32] = "";
    pid_t kids[2];
    stellar *h;
    FILE *f;
    int lines = 0, st;
    long i_seen, pid;

    snprintf(out, sizeof out, "%s", test_path(t, "out.txt"));
    for (int k = 0; k < 2; k++) {
        fflush(NULL);
        kids[k] = fork();
        ASSERT_TRUE(kids[k] >= 0);
        if (kids[k] == 0) process_jobs_until_told(t);
    }
    ASSERT_WAIT(test_count_lines(test_path(t, "ready")) == 2, 10000);
    snprintf(pid_a, sizeof pid_a, "%ld", (long)kids[0]);
    snprintf(pid_b, sizeof pid_b, "%ld", (long)kids[1]);

    h = open_h(t, NULL);
    for (int i = 0; i < N_SHARED; i++) {
        snprintf(params, sizeof params, "{\"path\":\"%s\",\"i\":%d}", out, i);
        enqueue(h, "append", params, NULL);
    }
    ASSERT_WAIT(test_count_lines(out) >= N_SHARED, 60000);
    ASSERT_WAIT(test_stat(h, "processed") >= N_SHARED, 10000);
    ASSERT_EQ(0, test_length(h, "default"));
    test_append_line(test_path(t, "stop"), "stop");
    for (int k = 0; k < 2; k++) {
        ASSERT_EQ(kids[k], waitpid(kids[k], &st, 0));
        if (WIFSIGNALED(st))
            FAIL("worker process %d killed by signal %d", (int)kids[k],
                 WTERMSIG(st));
        if (WEXITSTATUS(st) != 0)
            FAIL("worker process %d exited %d (66: a sanitizer report, above)",
                 (int)kids[k], WEXITSTATUS(st));
    }
    ASSERT_EQ(N_SHARED, test_stat(h, "processed"));
    ASSERT_EQ(0, test_failed_count(h));

    f = fopen(out, "r");
    ASSERT_TRUE(f != NULL);
    bool by_a = false, by_b = false;
    while (fscanf(f, "%ld %ld", &i_seen, &pid) == 2) {
        ASSERT_TRUE(i_seen >= 0 && i_seen < N_SHARED);
        if (seen[i_seen]++) FAIL("job %ld ran twice", i_seen);
        by_a |= pid == (long)kids[0];
        by_b |= pid == (long)kids[1];
        lines++;
    }
    fclose(f);
    ASSERT_EQ(N_SHARED, lines);
    if (!by_a || !by_b)
        FAIL("one process did all the work (a %s: %d, b %s: %d)", pid_a, by_a,
             pid_b, by_b);
    stellar_close(h);
}

/* ------------------------------------------------------ Management --- */
/*
 * The management calls of the guide (issue #4), with the same expectations
 * on every backend. Delayed jobs sit at whole seconds an hour ahead, so the
 * Redis layout (seconds) keeps the very timestamps given and no scheduler
 * moves them meanwhile.
 */

/* A whole second an hour from now, in ms. */
static int64_t later_s(void)
{
    return (test_now_ms() / 1000 + 3600) * 1000;
}

static void enqueue_at(stellar *h, int64_t at, const char *task,
                       const char *params, const char *queue)
{
    stellar_error e = {0};
    ASSERT_OK(stellar_enqueue_at(h, at, task, params, queue, &e), &e);
}

/* stellar_queued(queue, 0, -1) as compact JSON text, for ASSERT_JSON_EQ. */
static json_t *queued_all(stellar *h, const char *queue)
{
    stellar_error e = {0};
    json_t *a = NULL;
    ASSERT_OK(stellar_queued(h, queue, 0, -1, &a, &e), &e);
    ASSERT_TRUE(json_is_array(a));
    return a;
}

static json_t *timestamps_of(stellar *h)
{
    stellar_error e = {0};
    json_t *a = NULL;
    ASSERT_OK(stellar_timestamps(h, &a, &e), &e);
    ASSERT_TRUE(json_is_array(a));
    return a;
}

/* "[a,b,...]" of int64s, for comparing with ASSERT_JSON_EQ. */
static const char *ms_list(int n, const int64_t *v)
{
    static char buf[512];
    size_t off = 0;
    buf[off++] = '[';
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%lld",
                                i ? "," : "", (long long)v[i]);
    snprintf(buf + off, sizeof buf - off, "]");
    return buf;
}

static int cmp_json_int(const void *a, const void *b)
{
    json_int_t x = json_integer_value(*(json_t *const *)a);
    json_int_t y = json_integer_value(*(json_t *const *)b);
    return x < y ? -1 : x > y;
}

/* A copy of an array of integers, sorted. */
static json_t *sorted_ints(const json_t *a)
{
    size_t n = json_array_size(a), i;
    json_t **v = calloc(n + 1, sizeof *v), *out = json_array();
    for (i = 0; i < n; i++)
        v[i] = json_array_get(a, i);
    qsort(v, n, sizeof *v, cmp_json_int);
    for (i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    return out;
}

static void
del_removes_up_to_count_matching_jobs_and_says_how_many(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *q;
    int64_t n = -1;

    for (int i = 0; i < 3; i++)
        enqueue(h, "t", "{\"a\":1}", "q");
    enqueue(h, "t", "{\"a\":2}", "q");
    enqueue(h, "u", "{\"a\":1}", "q");
    enqueue(h, "t", "{\"a\":1}", "q");
    enqueue(h, "t", "{\"a\":1}", "other");

    ASSERT_OK(stellar_del(h, "q", "t", "{\"a\":1}", 2, &n, &e), &e);
    ASSERT_EQ(2, n);
    q = queued_all(h, "q");
    /* The first two went; the rest keep their order. */
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"a\":1}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"a\":2}]},"
                   "{\"class\":\"u\",\"queue\":\"q\",\"args\":[{\"a\":1}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"a\":1}]}]",
                   q);
    json_decref(q);
    ASSERT_OK(stellar_del(h, "q", "t", "{\"a\":1}", 0, &n, &e), &e);
    ASSERT_EQ(2, n); /* count 0: all */
    ASSERT_OK(stellar_del(h, "q", "t", "{\"b\":1}", 0, &n, &e), &e);
    ASSERT_EQ(0, n);
    ASSERT_EQ(2, test_length(h, "q"));
    ASSERT_EQ(1, test_length(h, "other")); /* another queue is untouched */

    /* Params match as enqueued, member order included. */
    enqueue(h, "t", "{\"x\":1,\"y\":2}", "q");
    ASSERT_OK(stellar_del(h, "q", "t", "{\"y\":2,\"x\":1}", 0, &n, &e), &e);
    ASSERT_EQ(0, n);
    ASSERT_OK(stellar_del(h, "q", "t", "{\"x\":1,\"y\":2}", 0, &n, &e), &e);
    ASSERT_EQ(1, n);

    /* Bad input removes nothing. */
    ASSERT_EQ(STELLAR_EINVAL, stellar_del(h, "q", "t", "{bad", 0, &n, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_del(h, "q", "t", "[1]", 0, &n, &e));
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_del(h, "q", "t", "{\"a\":2}", -1, &n, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_del(h, "q", "", NULL, 0, &n, &e));
    ASSERT_EQ(2, test_length(h, "q"));
    stellar_close(h);
}

static void
del_delayed_returns_the_timestamps_it_removed_from(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t base = later_s(), want[2] = {base, base + 2000};
    json_t *ts = NULL, *sorted;

    enqueue_at(h, base + 2000, "t", "{\"a\":1}", "q");
    enqueue_at(h, base, "t", "{\"a\":1}", "q");
    enqueue_at(h, base + 1000, "t", "{\"a\":2}", "q");
    enqueue_at(h, base + 3000, "t", "{\"a\":1}", "elsewhere");

    ASSERT_OK(stellar_del_delayed(h, "q", "t", "{\"a\":1}", &ts, &e), &e);
    sorted = sorted_ints(ts);
    ASSERT_JSON_EQ(ms_list(2, want), sorted);
    json_decref(sorted);
    json_decref(ts);
    ASSERT_OK(stellar_scheduled_at(h, "q", "t", "{\"a\":1}", &ts, &e), &e);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    ts = timestamps_of(h);
    want[0] = base + 1000;
    want[1] = base + 3000;
    ASSERT_JSON_EQ(ms_list(2, want), ts);
    json_decref(ts);

    /* Nothing left to match: an empty list, nothing else touched. */
    ASSERT_OK(stellar_del_delayed(h, "q", "t", "{\"a\":1}", &ts, &e), &e);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_del_delayed(h, "q", "t", "{nope", &ts, &e));
    ts = timestamps_of(h);
    ASSERT_EQ(2, json_array_size(ts));
    json_decref(ts);
    stellar_close(h);
}

static void del_queue_removes_the_queue_and_its_jobs(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *names = NULL;

    enqueue(h, "t", NULL, "doomed");
    enqueue(h, "t", "{\"n\":2}", "doomed");
    enqueue(h, "t", NULL, "kept");
    ASSERT_OK(stellar_del_queue(h, "doomed", &e), &e);
    ASSERT_OK(stellar_queues(h, &names, &e), &e);
    ASSERT_JSON_EQ("[\"kept\"]", names);
    json_decref(names);
    ASSERT_EQ(0, test_length(h, "doomed"));
    ASSERT_EQ(1, test_length(h, "kept"));
    ASSERT_EQ(STELLAR_ENOTFOUND, stellar_del_queue(h, "doomed", &e));
    ASSERT_TRUE(strstr(e.msg, "doomed") != NULL);
    ASSERT_EQ(STELLAR_EINVAL, stellar_del_queue(h, "", &e));
    ASSERT_EQ(1, test_length(h, "kept"));
    stellar_close(h);
}

static void
a_recurrent_job_is_restarted_without_duplicates_and_stopped(struct test_ctx *t)
{
    static const stellar_task every = {.name = "every",
                                       .description = "periodic",
                                       .queue = "clock",
                                       .frequency = 60000,
                                       .run = record_run};
    const char *payload = "{\"class\":\"every\",\"queue\":\"clock\","
                          "\"args\":[{}]}";
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    int64_t removed = -1;
    const char *two[] = {payload, payload};

    reg(h, &every);
    reg(h, &task_record);
    /* Start from a mess: two queued copies and a delayed one. */
    ASSERT_OK(b->ops->push(b, "clock", two, 2, &e), &e);
    ASSERT_OK(b->ops->push_at(b, later_s(), "clock", payload, false, &e), &e);
    ASSERT_EQ(3, copies_stored(b, "clock", "every"));

    ASSERT_OK(stellar_enqueue_recurrent(h, "every", &e), &e);
    ASSERT_EQ(1, copies_stored(b, "clock", "every"));
    ASSERT_EQ(1, test_length(h, "clock")); /* queued now, not delayed */
    ASSERT_OK(stellar_enqueue_recurrent(h, "every", &e), &e);
    ASSERT_EQ(1, copies_stored(b, "clock", "every"));

    ASSERT_OK(stellar_stop_recurrent(h, "every", &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_EQ(0, copies_stored(b, "clock", "every"));
    ASSERT_OK(stellar_stop_recurrent(h, "every", &removed, &e), &e);
    ASSERT_EQ(0, removed);

    /* A delayed copy counts as one too. */
    ASSERT_OK(b->ops->push_at(b, later_s(), "clock", payload, false, &e), &e);
    ASSERT_OK(stellar_stop_recurrent(h, "every", &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_EQ(0, copies_stored(b, "clock", "every"));

    ASSERT_EQ(STELLAR_ENOTASK, stellar_enqueue_recurrent(h, "nope", &e));
    ASSERT_EQ(STELLAR_ENOTASK, stellar_stop_recurrent(h, "nope", &removed, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_enqueue_recurrent(h, "record", &e));
    ASSERT_EQ(0, test_length(h, "default"));
    st_backend_close(b);
    stellar_close(h);
}

/* Four clients race on one periodic task, round after round: two restart
 * it (stellar_enqueue_recurrent), one re-enqueues it as a processor does
 * after a run (replace with a due time) and one promotes due jobs. After
 * every round exactly one copy is stored. Done as separate steps (delete
 * delayed, delete queued, push), two restarts interleave into two copies. */
enum { RACE_ROUNDS = 100, RACERS = 4 };

static const stellar_task race_every = {.name = "every",
                                        .description = "periodic",
                                        .queue = "clock",
                                        .frequency = 60000,
                                        .run = record_run};

struct racer {
    const struct test_ctx *t;
    pthread_barrier_t *go, *done;
    int id;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    const char *payload = "{\"class\":\"every\",\"queue\":\"clock\","
                          "\"args\":[{}]}";
    stellar *h = NULL;
    st_backend *b = NULL;
    stellar_error e = {0};
    int64_t n, next;
    int round;

    if (r->id < 2) {
        h = open_h(r->t, NULL);
        reg(h, &race_every);
    } else {
        b = raw_open(r->t);
    }
    for (round = 0; round < RACE_ROUNDS; round++) {
        pthread_barrier_wait(r->go);
        if (r->id < 2)
            ASSERT_OK(stellar_enqueue_recurrent(h, "every", &e), &e);
        else if (r->id == 2)
            ASSERT_OK(b->ops->replace(b, "clock", payload, test_now_ms() - 2000,
                                      &n, &e),
                      &e);
        else
            ASSERT_OK(b->ops->promote_due(b, test_now_ms(), 0, &n, &next, &e),
                      &e);
        pthread_barrier_wait(r->done);
    }
    if (h) stellar_close(h);
    if (b) st_backend_close(b);
    return NULL;
}

static void
racing_restarts_of_a_recurrent_job_leave_one_copy(struct test_ctx *t)
{
    pthread_barrier_t go, done;
    pthread_t th[RACERS];
    struct racer r[RACERS];
    st_backend *b = raw_open(t);
    int i, round, bad = 0;

    pthread_barrier_init(&go, NULL, RACERS + 1);
    pthread_barrier_init(&done, NULL, RACERS + 1);
    for (i = 0; i < RACERS; i++) {
        r[i] = (struct racer){t, &go, &done, i};
        ASSERT_EQ(0, pthread_create(&th[i], NULL, race, &r[i]));
    }
    for (round = 0; round < RACE_ROUNDS; round++) {
        int n;
        pthread_barrier_wait(&go);
        pthread_barrier_wait(&done);
        n = copies_stored(b, "clock", "every");
        if (n != 1 && bad++ == 0)
            test_note("round %d: %d copies stored", round, n);
    }
    for (i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&done);
    ASSERT_EQ(0, bad);
    st_backend_close(b);
}

/* Four writers delay one payload at one timestamp, fifty times each, as
 * blocked jobLock runs and retries do: with `later` each copy takes the next
 * free timestamp in the same atomic step, so none fails however the writers
 * interleave (a read of the free slots then a push lost copies: CI saw it). */
enum { DELAY_WRITERS = 4, DELAY_COPIES = 50 };
#define PAYLOAD_Q "{\"class\":\"record\",\"queue\":\"q\",\"args\":[{}]}"

struct delayer {
    const struct test_ctx *t;
    pthread_barrier_t *go;
    int64_t at_ms;
};

static void *delay_copies(void *arg)
{
    struct delayer *d = arg;
    st_backend *b = raw_open(d->t);
    stellar_error e = {0};

    pthread_barrier_wait(d->go);
    for (int i = 0; i < DELAY_COPIES; i++)
        ASSERT_OK(b->ops->push_at(b, d->at_ms, "q", PAYLOAD_Q, true, &e), &e);
    st_backend_close(b);
    return NULL;
}

static void
racing_writers_each_delay_their_copy_of_one_payload(struct test_ctx *t)
{
    pthread_barrier_t go;
    pthread_t th[DELAY_WRITERS];
    struct delayer d = {t, &go, later_s()};
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *ts = NULL;
    size_t i;

    pthread_barrier_init(&go, NULL, DELAY_WRITERS);
    for (i = 0; i < DELAY_WRITERS; i++)
        ASSERT_EQ(0, pthread_create(&th[i], NULL, delay_copies, &d));
    for (i = 0; i < DELAY_WRITERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);

    ASSERT_OK(b->ops->scheduled_at(b, PAYLOAD_Q, &ts, &e), &e);
    ASSERT_EQ(DELAY_WRITERS * DELAY_COPIES, (int)json_array_size(ts));
    /* One copy per timestamp, from the asked one on, with no gap. */
    for (i = 0; i < json_array_size(ts); i++)
        ASSERT_EQ(d.at_ms + (int64_t)i * (is_redis(t) ? 1000 : 1),
                  json_integer_value(json_array_get(ts, i)));
    json_decref(ts);
    /* Without `later`, the taken timestamp is refused and nothing stored. */
    ASSERT_EQ(STELLAR_EEXISTS,
              b->ops->push_at(b, d.at_ms, "q", PAYLOAD_Q, false, &e));
    ASSERT_TRUE(strstr(e.msg, "already enqueued") != NULL);
    ASSERT_OK(b->ops->scheduled_at(b, PAYLOAD_Q, &ts, &e), &e);
    ASSERT_EQ(DELAY_WRITERS * DELAY_COPIES, (int)json_array_size(ts));
    json_decref(ts);
    st_backend_close(b);
}

static int64_t latency(stellar *h, const char *queue)
{
    stellar_error e = {0};
    int64_t ms = -2;
    ASSERT_OK(stellar_latency(h, queue, &ms, &e), &e);
    return ms;
}

/* A latency of at least min_ms (and not absurdly more); -1 on Redis. */
static void assert_latency(const struct test_ctx *t, int64_t ms, int64_t min_ms)
{
    if (is_redis(t))
        ASSERT_EQ(-1, ms);
    else if (ms < min_ms || ms > min_ms + 10000)
        FAIL("latency %lld ms, want %lld ms or a little more", (long long)ms,
             (long long)min_ms);
}

/* The age of a queue's oldest job: since its enqueue, or since it was due
 * for a promoted one. Redis cannot tell (no enqueue time in a Resque
 * payload): always -1 there. */
static void queue_latency_is_the_age_of_the_oldest_job(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    int64_t ms, moved, next, now;
    json_t *d = NULL, *age;

    reg(h, &task_record);
    ASSERT_EQ(-1, latency(h, "lat"));
    enqueue(h, "record", "{\"n\":1}", "lat");
    test_sleep_ms(300);
    enqueue(h, "record", "{\"n\":2}", "lat");
    ms = latency(h, "lat");
    test_note("latency after 300 ms: %lld ms", (long long)ms);
    assert_latency(t, ms, 300);
    ASSERT_OK(stellar_details(h, &d, &e), &e);
    age = json_object_get(json_object_get(json_object_get(d, "queues"), "lat"),
                          "latency_ms");
    assert_latency(t, json_is_null(age) ? -1 : json_integer_value(age), 300);
    json_decref(d);

    /* A job due 5 s ago, promoted now, has waited 5 s. */
    now = test_now_ms();
    ASSERT_OK(b->ops->push_at(b, now - 5000, "due",
                              "{\"class\":\"record\",\"queue\":\"due\","
                              "\"args\":[{}]}",
                              false, &e),
              &e);
    ASSERT_OK(b->ops->promote_due(b, now, 0, &moved, &next, &e), &e);
    ASSERT_EQ(1, moved);
    ms = latency(h, "due");
    test_note("latency of a job promoted 5 s late: %lld ms", (long long)ms);
    assert_latency(t, ms, 5000);
    ASSERT_EQ(STELLAR_EINVAL, stellar_latency(h, "", &ms, &e));
    st_backend_close(b);
    stellar_close(h);
}

/* What a Stellar SQLite file has as PRAGMA application_id ("Stel"). */
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
static void
a_schema_1_sqlite_file_is_migrated_and_keeps_its_data(struct test_ctx *t)
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
        ASSERT_STR_EQ("2", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    ASSERT_EQ(STELLAR_APPLICATION_ID, sqlite_application_id(path));
}

/* A file's bytes (a new buffer, *n its length), NULL if it cannot be read. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;

    *n = 0;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0) {
        rewind(f);
        buf = calloc(1, (size_t)len + 1);
        if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len)
            *n = (size_t)len;
    }
    fclose(f);
    return buf;
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
static void
a_foreign_sqlite_file_is_refused_and_left_untouched(struct test_ctx *t)
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
static void a_read_only_sqlite_store_can_be_inspected(struct test_ctx *t)
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
static void
redis_with_a_password_is_opened_or_refused_clearly(struct test_ctx *t)
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

static void delayed_jobs_are_listed_by_ascending_timestamp(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t base = later_s(), want[3] = {base, base + 1000, base + 2000};
    json_t *ts, *at = NULL, *all = NULL;
    char key[3][32];

    enqueue_at(h, base + 2000, "t", "{\"n\":1}", "q");
    enqueue_at(h, base, "t", "{\"n\":2}", "q");
    enqueue_at(h, base + 1000, "u", NULL, "r");
    enqueue_at(h, base, "t", "{\"n\":3}", "q");

    ts = timestamps_of(h);
    ASSERT_JSON_EQ(ms_list(3, want), ts);
    json_decref(ts);

    /* One timestamp's jobs, parsed, in the order they were delayed. */
    ASSERT_OK(stellar_delayed_at(h, base, &at, &e), &e);
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":2}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":3}]}]",
                   at);
    json_decref(at);
    ASSERT_OK(stellar_delayed_at(h, base + 5000, &at, &e), &e);
    ASSERT_JSON_EQ("[]", at);
    json_decref(at);

    ASSERT_OK(stellar_all_delayed(h, &all, &e), &e);
    for (int i = 0; i < 3; i++)
        snprintf(key[i], sizeof key[i], "%lld", (long long)want[i]);
    ASSERT_EQ(3, json_object_size(all));
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":2}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":3}]}]",
                   json_object_get(all, key[0]));
    ASSERT_JSON_EQ("[{\"class\":\"u\",\"queue\":\"r\",\"args\":[{}]}]",
                   json_object_get(all, key[1]));
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":1}]}]",
                   json_object_get(all, key[2]));
    json_decref(all);
    stellar_close(h);
}

static void
scheduled_at_lists_every_time_a_job_is_delayed_to(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t base = later_s(), want[2] = {base, base + 3000};
    json_t *ts = NULL;

    enqueue_at(h, base + 3000, "t", "{\"k\":\"v\"}", "q");
    enqueue_at(h, base, "t", "{\"k\":\"v\"}", "q");
    enqueue_at(h, base + 1000, "t", "{\"k\":\"w\"}", "q");
    enqueue_at(h, base + 2000, "t", NULL, NULL); /* "default", {} */

    ASSERT_OK(stellar_scheduled_at(h, "q", "t", "{\"k\":\"v\"}", &ts, &e), &e);
    ASSERT_JSON_EQ(ms_list(2, want), ts);
    json_decref(ts);
    want[0] = base + 2000;
    ASSERT_OK(stellar_scheduled_at(h, NULL, "t", NULL, &ts, &e), &e);
    ASSERT_JSON_EQ(ms_list(1, want), ts);
    json_decref(ts);
    ASSERT_OK(stellar_scheduled_at(h, "other", "t", "{\"k\":\"v\"}", &ts, &e),
              &e);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    stellar_close(h);
}

static void
del_delayed_at_removes_every_job_at_one_timestamp(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t base = later_s(), removed = -1, want[1] = {base + 1000};
    json_t *ts;

    enqueue_at(h, base, "t", "{\"n\":1}", "q");
    enqueue_at(h, base, "u", "{\"n\":2}", "r");
    enqueue_at(h, base + 1000, "t", "{\"n\":3}", "q");
    ASSERT_OK(stellar_del_delayed_at(h, base, &removed, &e), &e);
    ASSERT_EQ(2, removed);
    ts = timestamps_of(h);
    ASSERT_JSON_EQ(ms_list(1, want), ts);
    json_decref(ts);
    ASSERT_OK(stellar_del_delayed_at(h, base, &removed, &e), &e);
    ASSERT_EQ(0, removed);
    ASSERT_EQ(STELLAR_EINVAL, stellar_del_delayed_at(h, -1000, &removed, &e));
    ts = timestamps_of(h);
    ASSERT_EQ(1, json_array_size(ts));
    json_decref(ts);
    stellar_close(h);
}

static void del_all_delayed_removes_every_delayed_job(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t base = later_s(), removed = -1;
    json_t *ts;

    enqueue_at(h, base, "t", "{\"n\":1}", "q");
    enqueue_at(h, base, "t", "{\"n\":2}", "q");
    enqueue_at(h, base + 5000, "u", NULL, "r");
    enqueue(h, "t", NULL, "q");
    ASSERT_OK(stellar_del_all_delayed(h, &removed, &e), &e);
    ASSERT_EQ(3, removed);
    ts = timestamps_of(h);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    ASSERT_EQ(1, test_length(h, "q")); /* queued jobs stay */
    ASSERT_OK(stellar_del_all_delayed(h, &removed, &e), &e);
    ASSERT_EQ(0, removed);
    stellar_close(h);
}

/* A worker as a processor records it, registered straight in storage. */
static void fake_worker(st_backend *b, const char *name, const char *queue,
                        int64_t at_ms, bool reserve)
{
    const char *queues[] = {queue, NULL};
    st_worker_id w = {name, queue, queues};
    st_done none = {ST_DONE_NONE, NULL, NULL, NULL};
    st_reserved got = {0};
    stellar_error e = {0};

    ASSERT_OK(b->ops->worker_register(b, &w, at_ms, &e), &e);
    if (!reserve) return;
    ASSERT_OK(b->ops->reserve(b, &w, &none, at_ms, &got, &e), &e);
    st_reserved_clear(&got);
}

static void details_lists_queues_with_lengths_and_workers(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *d = NULL, *w;

    ASSERT_OK(stellar_details(h, &d, &e), &e);
    ASSERT_JSON_EQ("{\"queues\":{},\"workers\":{}}", d);
    json_decref(d);

    enqueue(h, "t", NULL, "a");
    enqueue(h, "t", "{\"n\":2}", "a");
    enqueue(h, "t", NULL, "b");
    fake_worker(b, "host:42+1", "a", test_now_ms(), false);
    ASSERT_OK(stellar_details(h, &d, &e), &e);
    /* latency_ms: see queue_latency_is_the_age_of_the_oldest_job. */
    json_object_del(json_object_get(json_object_get(d, "queues"), "a"),
                    "latency_ms");
    json_object_del(json_object_get(json_object_get(d, "queues"), "b"),
                    "latency_ms");
    ASSERT_JSON_EQ("{\"a\":{\"length\":2},\"b\":{\"length\":1}}",
                   json_object_get(d, "queues"));
    ASSERT_EQ(1, json_object_size(json_object_get(d, "workers")));
    w = json_object_get(json_object_get(d, "workers"), "host:42+1");
    ASSERT_TRUE(json_is_object(w));
    ASSERT_STR_EQ("a", json_string_value(json_object_get(w, "queues")));
    ASSERT_TRUE(json_is_null(json_object_get(w, "working_on")));
    json_decref(d);
    st_backend_close(b);
    stellar_close(h);
}

static void queued_returns_a_range_of_a_queues_jobs(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *a = NULL;
    char params[32];

    for (int i = 0; i < 5; i++) {
        snprintf(params, sizeof params, "{\"n\":%d}", i);
        enqueue(h, "t", params, "q");
    }
    a = queued_all(h, "q");
    ASSERT_EQ(5, json_array_size(a));
    for (int i = 0; i < 5; i++) {
        json_t *args = json_object_get(json_array_get(a, (size_t)i), "args");
        ASSERT_EQ(i, json_integer_value(
                         json_object_get(json_array_get(args, 0), "n")));
    }
    json_decref(a);
    ASSERT_OK(stellar_queued(h, "q", 1, 2, &a, &e), &e);
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":1}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":2}]}]",
                   a);
    json_decref(a);
    ASSERT_OK(stellar_queued(h, "q", -1, -1, &a, &e), &e);
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":4}]}]",
                   a);
    json_decref(a);
    ASSERT_OK(stellar_queued(h, "q", 10, 20, &a, &e), &e);
    ASSERT_JSON_EQ("[]", a);
    json_decref(a);
    ASSERT_OK(stellar_queued(h, "nothing", 0, -1, &a, &e), &e);
    ASSERT_JSON_EQ("[]", a);
    json_decref(a);
    ASSERT_EQ(STELLAR_EINVAL, stellar_queued(h, "", 0, -1, &a, &e));
    ASSERT_EQ(5, test_length(h, "q")); /* reading takes nothing */
    stellar_close(h);
}

static bool worker_idle(stellar *h, const char *worker)
{
    stellar_error e = {0};
    json_t *on = NULL;
    bool idle;
    ASSERT_OK(stellar_working_on(h, worker, &on, &e), &e);
    idle = json_is_null(on);
    json_decref(on);
    return idle;
}

static void working_on_shows_the_job_a_worker_is_running(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    stellar_error e = {0};
    json_t *on = NULL, *all = NULL;
    int64_t t0 = test_now_ms(), run_at;
    struct run r;

    reg(h, &task_slow);
    enqueue(h, "slow", "{\"ms\":1500}", "default");
    start(h);
    ASSERT_WAIT(runs_of("slow", false) == 1, 5000);
    r = run_of("slow", 0);
    ASSERT_OK(stellar_working_on(h, r.worker, &on, &e), &e);
    ASSERT_TRUE(json_is_object(on));
    ASSERT_STR_EQ("default", json_string_value(json_object_get(on, "queue")));
    ASSERT_JSON_EQ(
        "{\"class\":\"slow\",\"queue\":\"default\",\"args\":[{\"ms\":1500}]}",
        json_object_get(on, "payload"));
    ASSERT_TRUE(json_is_integer(json_object_get(on, "run_at")));
    run_at = json_integer_value(json_object_get(on, "run_at"));
    if (run_at < t0 - 1000 || run_at > test_now_ms() + 1000)
        FAIL("run_at %lld is not the time the job started (%lld..now)",
             (long long)run_at, (long long)t0);

    ASSERT_OK(stellar_all_working_on(h, &all, &e), &e);
    ASSERT_EQ(1, json_object_size(all));
    ASSERT_TRUE(json_equal(on, json_object_get(all, r.worker)));
    json_decref(all);
    json_decref(on);

    /* When it is done, the worker is idle: null, and "started" in all. */
    ASSERT_WAIT(runs_of("slow", true) == 1, 5000);
    ASSERT_WAIT(worker_idle(h, r.worker), 5000);
    ASSERT_OK(stellar_all_working_on(h, &all, &e), &e);
    ASSERT_STR_EQ("started", json_string_value(json_object_get(all, r.worker)));
    json_decref(all);
    ASSERT_EQ(STELLAR_ENOTFOUND, stellar_working_on(h, "nobody", &on, &e));
    free(r.params);
    stellar_close(h);
}

static void locks_lists_a_queue_lock_and_del_lock_removes_it(struct test_ctx *t)
{
    static const char *const plugins[] = {"queueLock", NULL};
    static const stellar_task locked = {.name = "locked",
                                        .description = "one queued at once",
                                        .plugins = plugins,
                                        .run = record_run};
    const char *name = "lock:locked:default:[{\"k\":1}]";
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *locks = NULL, *l;
    int64_t removed = -1, now = test_now_ms(), exp;

    reg(h, &locked);
    ASSERT_OK(stellar_locks(h, &locks, &e), &e);
    ASSERT_JSON_EQ("{}", locks);
    json_decref(locks);
    enqueue(h, "locked", "{\"k\":1}", NULL);
    ASSERT_EQ(STELLAR_VETOED,
              stellar_enqueue(h, "locked", "{\"k\":1}", NULL, &e));

    ASSERT_OK(stellar_locks(h, &locks, &e), &e);
    ASSERT_EQ(1, json_object_size(locks));
    l = json_object_get(locks, name);
    if (!json_is_object(l)) {
        char *txt = json_dumps(locks, JSON_COMPACT);
        FAIL("no lock %s in %s", name, txt);
    }
    ASSERT_TRUE(json_is_string(json_object_get(l, "value")));
    ASSERT_TRUE(json_is_integer(json_object_get(l, "expires")));
    exp = json_integer_value(json_object_get(l, "expires"));
    /* queueLock's default lockTimeout: an hour. */
    if (exp < now + 3590000 || exp > test_now_ms() + 3601000)
        FAIL("lock expires at %lld, not an hour after %lld", (long long)exp,
             (long long)now);
    json_decref(locks);

    ASSERT_OK(stellar_del_lock(h, name, &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_OK(stellar_locks(h, &locks, &e), &e);
    ASSERT_JSON_EQ("{}", locks);
    json_decref(locks);
    ASSERT_OK(stellar_del_lock(h, name, &removed, &e), &e);
    ASSERT_EQ(0, removed);
    ASSERT_EQ(STELLAR_EINVAL, stellar_del_lock(h, "not-a-lock", &removed, &e));
    /* Unlocked: the same job may be queued again. */
    enqueue(h, "locked", "{\"k\":1}", NULL);
    ASSERT_EQ(2, test_length(h, "default"));
    stellar_close(h);
}

static const char *why_of(const json_t *entry)
{
    json_t *args = json_object_get(json_object_get(entry, "payload"), "args");
    return json_string_value(json_object_get(json_array_get(args, 0), "why"));
}

static void failed_jobs_are_ranged_removed_and_retried(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    stellar_error e = {0};
    json_t *all = NULL, *some = NULL, *q;
    int64_t removed = -1;

    reg(h, &task_boom);
    enqueue(h, "boom", "{\"why\":\"one\"}", "q");
    enqueue(h, "boom", "{\"why\":\"two\"}", "q");
    enqueue(h, "boom", "{\"why\":\"three\"}", "q");
    start(h);
    ASSERT_WAIT(test_failed_count(h) == 3, 10000);
    stellar_stop(h, -1);

    ASSERT_OK(stellar_failed(h, 0, -1, &all, &e), &e);
    ASSERT_EQ(3, json_array_size(all));
    ASSERT_STR_EQ("one", why_of(json_array_get(all, 0)));
    ASSERT_STR_EQ("two", why_of(json_array_get(all, 1)));
    ASSERT_STR_EQ("three", why_of(json_array_get(all, 2)));
    ASSERT_OK(stellar_failed(h, 1, 2, &some, &e), &e);
    ASSERT_EQ(2, json_array_size(some));
    ASSERT_TRUE(json_equal(json_array_get(all, 1), json_array_get(some, 0)));
    ASSERT_TRUE(json_equal(json_array_get(all, 2), json_array_get(some, 1)));
    json_decref(some);
    ASSERT_OK(stellar_failed(h, -1, -1, &some, &e), &e);
    ASSERT_STR_EQ("three", why_of(json_array_get(some, 0)));
    json_decref(some);
    ASSERT_OK(stellar_failed(h, 5, 9, &some, &e), &e);
    ASSERT_JSON_EQ("[]", some);
    json_decref(some);

    /* removeFailed takes exactly that entry, once. */
    ASSERT_OK(stellar_remove_failed(h, json_array_get(all, 1), &removed, &e),
              &e);
    ASSERT_EQ(1, removed);
    ASSERT_EQ(2, test_failed_count(h));
    ASSERT_OK(stellar_remove_failed(h, json_array_get(all, 1), &removed, &e),
              &e);
    ASSERT_EQ(0, removed);
    ASSERT_EQ(2, test_failed_count(h));

    /* retryAndRemoveFailed queues the job again, as it was. */
    ASSERT_OK(stellar_retry_and_remove_failed(h, json_array_get(all, 0), &e),
              &e);
    ASSERT_EQ(1, test_failed_count(h));
    q = queued_all(h, "q");
    ASSERT_JSON_EQ("[{\"class\":\"boom\",\"queue\":\"q\",\"args\":[{\"why\":"
                   "\"one\"}]}]",
                   q);
    json_decref(q);
    ASSERT_EQ(STELLAR_ENOTFOUND,
              stellar_retry_and_remove_failed(h, json_array_get(all, 0), &e));
    if (!test_contains_ci(e.msg, "not in failed"))
        FAIL("the error does not say the job is not in failed: %s", e.msg);
    ASSERT_EQ(1, test_length(h, "q")); /* not queued twice */
    ASSERT_EQ(1, test_failed_count(h));

    /* A string names an entry that is not JSON, by its text: none here.
     * What is neither an object nor a string is refused. */
    {
        json_t *s = json_string("nope"), *n = json_integer(1);
        ASSERT_EQ(STELLAR_OK, stellar_remove_failed(h, s, &removed, &e));
        ASSERT_EQ(0, removed);
        ASSERT_EQ(STELLAR_EINVAL, stellar_remove_failed(h, n, &removed, &e));
        ASSERT_EQ(STELLAR_EINVAL, stellar_retry_and_remove_failed(h, s, &e));
        json_decref(s);
        json_decref(n);
    }
    ASSERT_EQ(1, test_failed_count(h));
    json_decref(all);
    stellar_close(h);
}

static void
clean_old_workers_fails_the_job_of_a_silent_worker(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *cleaned = NULL, *ws = NULL, *entry;
    int64_t now = test_now_ms();

    enqueue(h, "t", "{\"n\":1}", "q");
    fake_worker(b, "dead:1+1", "q", now - 120000, true);
    fake_worker(b, "idle:2+1", "q", now - 120000, false);
    fake_worker(b, "live:3+1", "q", now, false);
    ASSERT_EQ(0, test_length(h, "q"));

    ASSERT_OK(stellar_clean_old_workers(h, 60000, false, &cleaned, &e), &e);
    ASSERT_JSON_EQ("{\"dead:1+1\":{\"class\":\"t\",\"queue\":\"q\",\"args\":"
                   "[{\"n\":1}]},\"idle:2+1\":null}",
                   cleaned);
    json_decref(cleaned);
    ASSERT_OK(stellar_workers(h, &ws, &e), &e);
    ASSERT_EQ(1, json_object_size(ws));
    ASSERT_TRUE(json_is_object(json_object_get(ws, "live:3+1")));
    json_decref(ws);

    entry = the_failed_entry(h);
    ASSERT_STR_EQ("dead:1+1",
                  json_string_value(json_object_get(entry, "worker")));
    ASSERT_STR_EQ("q", json_string_value(json_object_get(entry, "queue")));
    ASSERT_JSON_EQ("{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":1}]}",
                   json_object_get(entry, "payload"));
    if (!test_contains_ci(
            json_string_value(json_object_get(entry, "exception")),
            "Worker Timeout"))
        FAIL("exception is not a worker timeout: %s",
             json_string_value(json_object_get(entry, "exception")));
    json_decref(entry);
    ASSERT_EQ(0, test_length(h, "q"));
    ASSERT_EQ(1, test_stat(h, "failed"));

    /* Done once: nothing more to clean. */
    ASSERT_OK(stellar_clean_old_workers(h, 60000, false, &cleaned, &e), &e);
    ASSERT_JSON_EQ("{}", cleaned);
    json_decref(cleaned);
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_clean_old_workers(h, -1, false, &cleaned, &e));
    st_backend_close(b);
    stellar_close(h);
}

static void
clean_old_workers_with_requeue_puts_the_job_back_at_the_head(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *cleaned = NULL, *q, *ws = NULL;
    int64_t now = test_now_ms();

    enqueue(h, "t", "{\"n\":1}", "q");
    enqueue(h, "t", "{\"n\":2}", "q");
    fake_worker(b, "dead:1+1", "q", now - 120000, true);
    ASSERT_EQ(1, test_length(h, "q"));

    ASSERT_OK(stellar_clean_old_workers(h, 60000, true, &cleaned, &e), &e);
    ASSERT_JSON_EQ("{\"dead:1+1\":{\"class\":\"t\",\"queue\":\"q\",\"args\":"
                   "[{\"n\":1}]}}",
                   cleaned);
    json_decref(cleaned);
    q = queued_all(h, "q");
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":1}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":2}]}]",
                   q);
    json_decref(q);
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_OK(stellar_workers(h, &ws, &e), &e);
    ASSERT_JSON_EQ("{}", ws);
    json_decref(ws);
    st_backend_close(b);
    stellar_close(h);
}

/* reserve() says whether the job it pops is a suspect (core.h): its crash
 * counter, the kv key ST_CRASHES_PREFIX<payload>, is live. Read in the
 * same atomic step as the pop, with the key built as every kv key is (on
 * Redis, in the namespace); an expired counter is no mark. */
static void
reserve_tells_a_suspect_by_its_live_crash_counter(struct test_ctx *t)
{
    static const char *const payloads[] = {
        "{\"class\":\"t\",\"queue\":\"q\",\"args\":[1]}",
        "{\"class\":\"t\",\"queue\":\"q\",\"args\":[2]}",
        "{\"class\":\"t\",\"queue\":\"q\",\"args\":[3]}",
    };
    /* Marked (live), unmarked, marked but expired. */
    static const bool suspect[] = {true, false, false};
    const char *queues[] = {"q", NULL};
    st_worker_id w = {"host:1+1", "q", queues};
    st_done ok = {ST_DONE_NONE, NULL, NULL, NULL};
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    st_reserved got = {0};
    char *k1 = st_asprintf(ST_CRASHES_PREFIX "%s", payloads[0]);
    char *k3 = st_asprintf(ST_CRASHES_PREFIX "%s", payloads[2]);
    int64_t n = 0, removed = 0;
    bool set = false;
    size_t i;

    ASSERT_TRUE(k1 && k3);
    ASSERT_OK(b->ops->worker_register(b, &w, test_now_ms(), &e), &e);
    ASSERT_OK(b->ops->push(b, "q", payloads, 3, &e), &e);
    ASSERT_OK(b->ops->kv_incr(b, k1, 1, 86400000, &n, &e), &e);
    ASSERT_EQ(1, n);
    ASSERT_OK(b->ops->kv_set(b, k3, "1", 1, false, &set, &e), &e);
    ASSERT_TRUE(set);
    test_sleep_ms(20);
    for (i = 0; i < 3; i++) {
        ASSERT_OK(b->ops->reserve(b, &w, &ok, test_now_ms(), &got, &e), &e);
        ASSERT_STR_EQ(payloads[i], got.payload);
        ASSERT_EQ(suspect[i], got.suspect);
        st_reserved_clear(&got);
        ASSERT_EQ(false, got.suspect);
        ok.outcome = ST_DONE_OK;
    }

    /* Its mark deleted (as a processor does after the run), the same job
     * is no suspect any more. */
    ASSERT_OK(b->ops->kv_del(b, k1, NULL, &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_OK(b->ops->push(b, "q", payloads, 1, &e), &e);
    ASSERT_OK(b->ops->reserve(b, &w, &ok, test_now_ms(), &got, &e), &e);
    ASSERT_STR_EQ(payloads[0], got.payload);
    ASSERT_EQ(false, got.suspect);
    st_reserved_clear(&got);
    ASSERT_EQ(STELLAR_ENOTFOUND,
              b->ops->reserve(b, &w, &ok, test_now_ms(), &got, &e));
    ASSERT_EQ(false, got.suspect);
    st_free(k1);
    st_free(k3);
    st_backend_close(b);
}

/* A process died running a periodic task; the next leader, finding no copy
 * waiting, queued a fresh one. Requeueing the dead worker's copy must not
 * make two: the periodic task keeps one copy, queued. */
static void
recovering_a_periodic_job_keeps_one_copy_of_the_task(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *cleaned = NULL;
    int64_t now = test_now_ms();

    reg(h, &race_every);
    ASSERT_OK(stellar_enqueue_recurrent(h, "every", &e), &e);
    fake_worker(b, "dead:1+1", "clock", now - 120000, true);  /* takes it */
    ASSERT_OK(stellar_enqueue_recurrent(h, "every", &e), &e); /* the fresh */
    ASSERT_EQ(1, copies_stored(b, "clock", "every"));

    ASSERT_OK(stellar_clean_old_workers(h, 60000, true, &cleaned, &e), &e);
    ASSERT_EQ(1, json_object_size(cleaned));
    json_decref(cleaned);
    ASSERT_EQ(1, copies_stored(b, "clock", "every"));
    ASSERT_EQ(1, test_length(h, "clock"));
    st_backend_close(b);
    stellar_close(h);
}

/* ------------------------------------------------------ Validation --- */

static void expect_refusal(const struct test_ctx *t, const stellar_task *task,
                           int code, const char *name, const char *field)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *list;

    reg(h, &task_record);
    ASSERT_EQ(code, stellar_task_register(h, task, &e));
    ASSERT_EQ(code, e.code);
    if (name && !strstr(e.msg, name))
        FAIL("message does not name task %s: %s", name, e.msg);
    if (field && !strstr(e.msg, field))
        FAIL("message does not name field %s: %s", field, e.msg);
    list = stellar_tasks_json(h);
    ASSERT_EQ(1, json_array_size(list)); /* only "record" */
    json_decref(list);
    stellar_close(h);
}

static void a_task_without_a_name_is_refused(struct test_ctx *t)
{
    stellar_task x = {.description = "d", .run = record_run};
    expect_refusal(t, &x, STELLAR_EINVAL, NULL, "name");
}

static void a_task_without_a_description_is_refused(struct test_ctx *t)
{
    stellar_task x = {.name = "undescribed", .run = record_run};
    expect_refusal(t, &x, STELLAR_EINVAL, "undescribed", "description");
}

static void a_task_without_run_is_refused(struct test_ctx *t)
{
    stellar_task x = {.name = "lazy", .description = "d"};
    expect_refusal(t, &x, STELLAR_EINVAL, "lazy", "run");
}

static void a_task_with_a_negative_frequency_is_refused(struct test_ctx *t)
{
    stellar_task x = {.name = "backwards",
                      .description = "d",
                      .frequency = -5,
                      .run = record_run};
    expect_refusal(t, &x, STELLAR_EINVAL, "backwards", "frequency");
}

static void a_second_task_with_the_same_name_is_refused(struct test_ctx *t)
{
    stellar_task x = {
        .name = "record", .description = "again", .run = record_run};
    expect_refusal(t, &x, STELLAR_EEXISTS, "record", "name");
}

static void
registered_tasks_are_listed_with_their_properties(struct test_ctx *t)
{
    stellar_task x = {.name = "every",
                      .description = "each second",
                      .queue = "clock",
                      .frequency = 1000,
                      .run = record_run};
    stellar *h = open_h(t, NULL);
    json_t *list, *a, *c;

    reg(h, &task_record);
    reg(h, &x);
    list = stellar_tasks_json(h);
    ASSERT_EQ(2, json_array_size(list));
    a = json_array_get(list, 0);
    c = json_array_get(list, 1);
    if (strcmp(json_string_value(json_object_get(a, "name")), "every") != 0) {
        json_t *tmp = a;
        a = c;
        c = tmp;
    }
    ASSERT_STR_EQ("every", json_string_value(json_object_get(a, "name")));
    ASSERT_STR_EQ("each second",
                  json_string_value(json_object_get(a, "description")));
    ASSERT_STR_EQ("clock", json_string_value(json_object_get(a, "queue")));
    ASSERT_EQ(1000, json_integer_value(json_object_get(a, "frequency")));
    ASSERT_STR_EQ("record", json_string_value(json_object_get(c, "name")));
    ASSERT_STR_EQ("default", json_string_value(json_object_get(c, "queue")));
    ASSERT_EQ(0, json_integer_value(json_object_get(c, "frequency")));
    json_decref(list);
    stellar_close(h);
}

static void opening_an_unknown_backend_fails_with_a_message(struct test_ctx *t)
{
    stellar_options o = {.url = "nosuch://x"};
    stellar_error e = {0};
    stellar *h = (stellar *)&o; /* must be reset to NULL */

    (void)t;
    ASSERT_TRUE(stellar_open(&h, &o, &e) < 0);
    ASSERT_TRUE(h == NULL);
    ASSERT_TRUE(e.msg[0] != '\0');
}

static const struct test tests[] = {
    {"an enqueued job runs its task with the params",
     an_enqueued_job_runs_its_task_with_the_params, 0},
    {"a job without params gets an empty object",
     a_job_without_params_gets_an_empty_object, 0},
    {"a job without a queue goes to its task's queue",
     a_job_without_a_queue_goes_to_its_tasks_queue, 0},
    {"the stored payload is the Resque JSON byte for byte",
     the_stored_payload_is_the_resque_json_byte_for_byte, 0},
    {"queues and lengths are readable through the API",
     queues_and_lengths_are_readable_through_the_api, 0},
    {"queues are taken in priority order", queues_are_taken_in_priority_order,
     0},
    {"a wildcard worker takes every queue in name order",
     a_wildcard_worker_takes_every_queue_in_name_order, 0},
    {"enqueueAt runs the job not before its time",
     enqueue_at_runs_the_job_not_before_its_time, 0},
    {"enqueueAt a past time runs the job at once",
     enqueue_at_a_past_time_runs_the_job_at_once, 0},
    {"enqueueIn runs the job after its delay and not before",
     enqueue_in_runs_the_job_after_its_delay_and_not_before, 0},
    {"enqueueIn with a negative delay is refused",
     enqueue_in_with_a_negative_delay_is_refused, 0},
    {"delayed jobs run in time order", delayed_jobs_run_in_time_order, 0},
    {"a periodic task runs again after each run and is never stored twice",
     a_periodic_task_runs_again_after_each_run_and_is_never_stored_twice, 0},
    {"a periodic task never runs twice at once when the leader changes",
     a_periodic_task_never_runs_twice_at_once_when_the_leader_changes, 0},
    {"a failing task is recorded in failed with counters",
     a_failing_task_is_recorded_in_failed_with_counters, 0},
    {"an unknown task fails the job and the worker keeps going",
     an_unknown_task_fails_the_job_and_the_worker_keeps_going, 0},
    {"enqueue of an unknown task on a handle with tasks is refused",
     enqueue_of_an_unknown_task_on_a_handle_with_tasks_is_refused, 0},
    {"an invalid payload fails with a clear error and is kept",
     an_invalid_payload_fails_with_a_clear_error_and_is_kept, 0},
    {"a running job shows in workers with what it works on",
     a_running_job_shows_in_workers_with_what_it_works_on, 0},
    {"graceful stop lets the running job finish and leaves the rest queued",
     graceful_stop_lets_the_running_job_finish_and_leaves_the_rest_queued, 0},
    {"graceful stop puts a job running past the grace back at the head",
     graceful_stop_puts_a_job_running_past_the_grace_back_at_the_head, 0},
    {"stop before start and twice is harmless",
     stop_before_start_and_twice_is_harmless, 0},
    {"two processes sharing a backend run every job exactly once",
     two_processes_sharing_a_backend_run_every_job_exactly_once, 120},
    {"del removes up to count matching jobs and says how many",
     del_removes_up_to_count_matching_jobs_and_says_how_many, 0},
    {"delDelayed returns the timestamps it removed from",
     del_delayed_returns_the_timestamps_it_removed_from, 0},
    {"delQueue removes the queue and its jobs",
     del_queue_removes_the_queue_and_its_jobs, 0},
    {"a recurrent job is restarted without duplicates and stopped",
     a_recurrent_job_is_restarted_without_duplicates_and_stopped, 0},
    {"racing restarts of a recurrent job leave one copy",
     racing_restarts_of_a_recurrent_job_leave_one_copy, 0},
    {"racing writers each delay their copy of one payload",
     racing_writers_each_delay_their_copy_of_one_payload, 0},
    {"queue latency is the age of the oldest job",
     queue_latency_is_the_age_of_the_oldest_job, 0},
    {"a schema 1 SQLite file is migrated and keeps its data",
     a_schema_1_sqlite_file_is_migrated_and_keeps_its_data, 0},
    {"a foreign SQLite file is refused and left untouched",
     a_foreign_sqlite_file_is_refused_and_left_untouched, 0},
    {"a read-only SQLite store can be inspected",
     a_read_only_sqlite_store_can_be_inspected, 0},
    {"Redis with a password is opened or refused clearly",
     redis_with_a_password_is_opened_or_refused_clearly, 0},
    {"delayed jobs are listed by ascending timestamp",
     delayed_jobs_are_listed_by_ascending_timestamp, 0},
    {"scheduledAt lists every time a job is delayed to",
     scheduled_at_lists_every_time_a_job_is_delayed_to, 0},
    {"delDelayedAt removes every job at one timestamp",
     del_delayed_at_removes_every_job_at_one_timestamp, 0},
    {"delAllDelayed removes every delayed job",
     del_all_delayed_removes_every_delayed_job, 0},
    {"details lists queues with lengths and workers",
     details_lists_queues_with_lengths_and_workers, 0},
    {"queued returns a range of a queue's jobs",
     queued_returns_a_range_of_a_queues_jobs, 0},
    {"workingOn shows the job a worker is running",
     working_on_shows_the_job_a_worker_is_running, 0},
    {"locks lists a queue lock and delLock removes it",
     locks_lists_a_queue_lock_and_del_lock_removes_it, 0},
    {"failed jobs are ranged, removed and retried",
     failed_jobs_are_ranged_removed_and_retried, 0},
    {"cleanOldWorkers fails the job of a silent worker",
     clean_old_workers_fails_the_job_of_a_silent_worker, 0},
    {"cleanOldWorkers with requeue puts the job back at the head",
     clean_old_workers_with_requeue_puts_the_job_back_at_the_head, 0},
    {"reserve tells a suspect by its live crash counter",
     reserve_tells_a_suspect_by_its_live_crash_counter, 0},
    {"recovering a periodic job keeps one copy of the task",
     recovering_a_periodic_job_keeps_one_copy_of_the_task, 0},
    {"a task without a name is refused", a_task_without_a_name_is_refused, 0},
    {"a task without a description is refused",
     a_task_without_a_description_is_refused, 0},
    {"a task without run is refused", a_task_without_run_is_refused, 0},
    {"a task with a negative frequency is refused",
     a_task_with_a_negative_frequency_is_refused, 0},
    {"a second task with the same name is refused",
     a_second_task_with_the_same_name_is_refused, 0},
    {"registered tasks are listed with their properties",
     registered_tasks_are_listed_with_their_properties, 0},
    {"opening an unknown backend fails with a message",
     opening_an_unknown_backend_fails_with_a_message, 0},
    {"kv_expire without a value applies to any value",
     kv_expire_without_a_value_applies_to_any_value, 0},
    {"bad names are refused everywhere and good ones kept",
     bad_names_are_refused_everywhere_and_good_ones_kept, 0},
    {"times past the year 9999 are refused and nothing stored",
     times_past_the_year_9999_are_refused_and_nothing_stored, 0},
    {"hooks and tasks call the API on their own handle",
     hooks_and_tasks_call_the_api_on_their_own_handle, 120},
    {"a slow log function that calls back does not stall processors",
     a_slow_log_function_that_calls_back_does_not_stall_processors, 120},
    {"stop and close from a task are refused, not a hang",
     stop_and_close_from_a_task_are_refused_not_a_hang, 60},
    {"two threads stopping at once stop once",
     two_threads_stopping_at_once_stop_once, 60},
};
TEST_MAIN(tests)
