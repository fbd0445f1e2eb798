/*
 * tasks.c: the plugins suite's tasks: runs that log their spans, fail,
 * hang, wait for a gate or count themselves, and the tasks made of them
 * with their plugins and pluginOptions.
 */
#include "plugins.h"

/* ------------------------------------------------------------ Tasks --- */

#define TICK_RUN_MS 50

/* Periodic, 1000 ms; runs TICK_RUN_MS and logs its span to <dir>/ticks. */
static int tick_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    int64_t start = test_now_ms();
    char path[600];
    (void)api;
    (void)params;
    (void)next;
    test_sleep_ms(TICK_RUN_MS);
    log_span(dir_file(path, sizeof path, "ticks"), start);
    return STELLAR_OK;
}

/* Sleeps params.ms and logs its span to params.path. */
int slow_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    int64_t start = test_now_ms();
    (void)api;
    (void)next;
    test_sleep_ms(json_integer_value(json_object_get(params, "ms")));
    log_span(json_string_value(json_object_get(params, "path")), start);
    return STELLAR_OK;
}

/* Fails while params.path holds fewer than params.failures lines; every
 * attempt appends its span there. */
static int flaky_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    int64_t start = test_now_ms();
    const char *path = json_string_value(json_object_get(params, "path"));
    int before = test_count_lines(path);
    (void)api;
    log_span(path, start);
    if (before < json_integer_value(json_object_get(params, "failures")))
        return stellar_fail(next, "flaky failure %d", before + 1);
    return STELLAR_OK;
}

int doomed_runs; /* atomic */

static int doomed_run(stellar_api *api, const json_t *params,
                      stellar_next *next)
{
    (void)api;
    (void)params;
    __atomic_add_fetch(&doomed_runs, 1, __ATOMIC_SEQ_CST);
    return stellar_fail(next, "doomed attempt");
}

/* Appends "S <ms> <pid>" to <dir>/hang; the first run ever then hangs (its
 * process is killed), later ones append "E <ms> <pid>" and return. */
static int hang_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    char path[600], line[96];
    int64_t deadline = test_mono_ms() + 60000;
    (void)params;
    (void)next;
    dir_file(path, sizeof path, "hang");
    snprintf(line, sizeof line, "S %lld %ld", (long long)test_now_ms(),
             (long)getpid());
    test_append_line(path, line);
    if (test_count_lines(path) == 1)
        while (test_mono_ms() < deadline && !stellar_should_stop(api))
            test_sleep_ms(20);
    snprintf(line, sizeof line, "E %lld %ld", (long long)test_now_ms(),
             (long)getpid());
    test_append_line(path, line);
    return STELLAR_OK;
}

static int gated_started, gated_ended; /* atomic */

/* Counts its start, waits for the gate named "go-<task>", counts its end. */
static int gated_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    char gate[160];
    (void)params;
    (void)next;
    __atomic_add_fetch(&gated_started, 1, __ATOMIC_SEQ_CST);
    snprintf(gate, sizeof gate, "go-%s", stellar_api_task(api));
    wait_gate(api, gate);
    __atomic_add_fetch(&gated_ended, 1, __ATOMIC_SEQ_CST);
    return STELLAR_OK;
}

static int plain_runs; /* atomic */

int plain_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api;
    (void)params;
    (void)next;
    __atomic_add_fetch(&plain_runs, 1, __ATOMIC_SEQ_CST);
    return STELLAR_OK;
}

/* Fails with params.why. */
int failing_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    const char *why = json_string_value(json_object_get(params, "why"));
    (void)api;
    __atomic_add_fetch(&plain_runs, 1, __ATOMIC_SEQ_CST);
    return stellar_fail(next, "%s", why ? why : "failed");
}

int gated(void)
{
    return __atomic_load_n(&gated_started, __ATOMIC_SEQ_CST);
}
int gated_done(void)
{
    return __atomic_load_n(&gated_ended, __ATOMIC_SEQ_CST);
}
int plain(void)
{
    return __atomic_load_n(&plain_runs, __ATOMIC_SEQ_CST);
}

const stellar_task task_tick = {.name = "tick",
                                .description = "periodic, 1000 ms",
                                .frequency = 1000,
                                .run = tick_run};
const stellar_task task_flaky = {
    .name = "flaky",
    .description = "fails params.failures times, then succeeds",
    .plugins = (const char *const[]){"retry", NULL},
    .plugin_options =
        "{\"retry\":{\"retryLimit\":4,\"backoffStrategy\":[100,200,400]}}",
    .run = flaky_run};
const stellar_task task_doomed = {
    .name = "doomed",
    .description = "always fails, two attempts",
    .plugins = (const char *const[]){"retry", NULL},
    .plugin_options = "{\"retry\":{\"retryLimit\":2,\"retryDelay\":100}}",
    .run = doomed_run};
const stellar_task task_retried = {
    .name = "retried",
    .description = "always fails, retried a minute later",
    .plugins = (const char *const[]){"retry", NULL},
    .plugin_options = "{\"Retry\":{\"retryLimit\":3,\"retryDelay\":60000}}",
    .run = failing_run};
const stellar_task task_hang = {
    .name = "hang",
    .description = "hangs the first time (killed), then returns",
    .plugins = (const char *const[]){"jobLock", NULL},
    .plugin_options = "{\"jobLock\":{\"lockTimeout\":5}}",
    .run = hang_run};
const stellar_task task_held = {
    .name = "held",
    .description = "jobLock with a 2 s lockTimeout; waits for its gate",
    .plugins = (const char *const[]){"jobLock", NULL},
    .plugin_options = "{\"jobLock\":{\"lockTimeout\":2}}",
    .run = gated_run};
const stellar_task task_qlocked = {
    .name = "qlocked",
    .description = "queueLock; waits for its gate",
    .plugins = (const char *const[]){"queueLock", NULL},
    .run = gated_run};
const stellar_task task_dlocked = {
    .name = "dlocked",
    .description = "delayQueueLock",
    .plugins = (const char *const[]){"delayQueueLock", NULL},
    .run = plain_run};
const stellar_task task_quiet = {.name = "quiet",
                                 .description = "noop; always fails",
                                 .plugins = (const char *const[]){"noop", NULL},
                                 .run = failing_run};
const stellar_task task_lock_a = {
    .name = "lockA",
    .description = "jobLock, options keyed JobLock",
    .plugins = (const char *const[]){"jobLock", NULL},
    .plugin_options = "{\"JobLock\":{\"lockTimeout\":77}}",
    .run = gated_run};
const stellar_task task_lock_b = {
    .name = "lockB",
    .description = "jobLock, options keyed jobLock",
    .plugins = (const char *const[]){"jobLock", NULL},
    .plugin_options = "{\"jobLock\":{\"lockTimeout\":88}}",
    .run = gated_run};
