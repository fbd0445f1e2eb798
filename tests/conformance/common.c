/*
 * common.c: what the conformance tests share: the record of what the tasks
 * saw (struct run), the tasks themselves (record, boom, slow, linger, tick,
 * append) and the helpers several topics use (conformance.h). The tests
 * live in one file per topic beside this one; main.c holds the table.
 */
#include "conformance.h"

/* ------------------------------------------------ What the tasks saw --- */

pthread_mutex_t runs_mu = PTHREAD_MUTEX_INITIALIZER;
struct run runs[1024];
int nruns;
int in_flight, max_in_flight; /* of periodic "tick" runs */
int tick_ms = 200;            /* how long one "tick" run takes */

int run_begin(stellar_api *api, const json_t *params)
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

void run_end(int i)
{
    pthread_mutex_lock(&runs_mu);
    runs[i].end_ms = test_now_ms();
    pthread_mutex_unlock(&runs_mu);
}

/* Runs of task that have started (ended: that have ended). */
int runs_of(const char *task, bool ended)
{
    int n = 0;
    pthread_mutex_lock(&runs_mu);
    for (int i = 0; i < nruns; i++)
        n += strcmp(runs[i].task, task) == 0 && (!ended || runs[i].end_ms);
    pthread_mutex_unlock(&runs_mu);
    return n;
}

/* A copy of the k-th run of task (k from 0). */
struct run run_of(const char *task, int k)
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
int record_run(stellar_api *api, const json_t *params, stellar_next *next)
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
int tick_run(stellar_api *api, const json_t *params, stellar_next *next)
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

const stellar_task task_record = {
    .name = "record", .description = "records its params", .run = record_run};
const stellar_task task_boom = {
    .name = "boom", .description = "always fails", .run = boom_run};
const stellar_task task_slow = {
    .name = "slow", .description = "sleeps params.ms", .run = slow_run};
const stellar_task task_linger = {.name = "linger",
                                  .description = "outlives the grace period",
                                  .run = linger_run};
const stellar_task task_append = {
    .name = "append", .description = "appends a line", .run = append_run};

/* ---------------------------------------------------------- Helpers --- */

/* The one failed entry (new reference); fails unless there is exactly one. */
json_t *the_failed_entry(stellar *h)
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

/* A run's params, parsed (new reference). */
json_t *params_of(const struct run *r)
{
    json_t *p = r->params ? json_loads(r->params, 0, NULL) : NULL;
    if (!p) FAIL("run of %s had no params object", r->task);
    return p;
}

/* Where a job due at at_ms may start: [*lo, *hi] (see the top comment). */
void due_window(const struct test_ctx *t, int64_t at_lo, int64_t at_hi,
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

/* A whole second an hour from now, in ms. */
int64_t later_s(void)
{
    return (test_now_ms() / 1000 + 3600) * 1000;
}

void enqueue_at(stellar *h, int64_t at, const char *task, const char *params,
                const char *queue)
{
    stellar_error e = {0};
    ASSERT_OK(stellar_enqueue_at(h, at, task, params, queue, &e), &e);
}

/* stellar_queued(queue, 0, -1) as compact JSON text, for ASSERT_JSON_EQ. */
json_t *queued_all(stellar *h, const char *queue)
{
    stellar_error e = {0};
    json_t *a = NULL;
    ASSERT_OK(stellar_queued(h, queue, 0, -1, &a, &e), &e);
    ASSERT_TRUE(json_is_array(a));
    return a;
}

json_t *timestamps_of(stellar *h)
{
    stellar_error e = {0};
    json_t *a = NULL;
    ASSERT_OK(stellar_timestamps(h, &a, &e), &e);
    ASSERT_TRUE(json_is_array(a));
    return a;
}

/* "[a,b,...]" of int64s, for comparing with ASSERT_JSON_EQ. */
const char *ms_list(int n, const int64_t *v)
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
json_t *sorted_ints(const json_t *a)
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

/* Jobs of class cls now queued in queue plus now delayed. Reads the queue
 * first: a job leaves the queue, runs (200 ms) and comes back delayed, so
 * one read cannot see it twice. */
int copies_stored(st_backend *b, const char *queue, const char *cls)
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

/* A worker as a processor records it, registered straight in storage. */
void fake_worker(st_backend *b, const char *name, const char *queue,
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

/* A periodic task on queue "clock" (every minute). */
const stellar_task race_every = {.name = "every",
                                 .description = "periodic",
                                 .queue = "clock",
                                 .frequency = 60000,
                                 .run = record_run};

int64_t latency(stellar *h, const char *queue)
{
    stellar_error e = {0};
    int64_t ms = -2;
    ASSERT_OK(stellar_latency(h, queue, &ms, &e), &e);
    return ms;
}
