/*
 * threads.c: calls back into the API from hooks, tasks and log functions, and
 * stop/close from several threads or from a task.
 */
#include "conformance.h"

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

void hooks_and_tasks_call_the_api_on_their_own_handle(struct test_ctx *t)
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

void a_slow_log_function_that_calls_back_does_not_stall_processors(
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

void stop_and_close_from_a_task_are_refused_not_a_hang(struct test_ctx *t)
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

void two_threads_stopping_at_once_stop_once(struct test_ctx *t)
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
