/*
 * plugins.h: what the plugins suite's files share. The suite holds the
 * proofs of issue #5, Resque plugins, run once per backend
 * (plugins.sqlite, plugins.redis) with the same expectations:
 *
 * - Periodic tasks on three processes: a 1000 ms task runs 5 to 7 times in
 *   6 s, never twice at once, never stored twice (periodic.c).
 * - jobLock: 50 enqueues of one slow job on 4 processors in 2 processes run
 *   one at a time, and all 50 run (the blocked copies go through the delayed
 *   set and the scheduler); a jobLock left by a process killed with SIGKILL
 *   expires, and the job comes back through dead-worker recovery and runs;
 *   queueLock, delayQueueLock (locks.c).
 * - retry: backoffStrategy spacing and counters; retryLimit ends in failed;
 *   noop (retry.c).
 * - A plugin of the app's own (vetoes, afterPerform clearing an error, hook
 *   order, enqueueAt/enqueueIn); pluginOptions keys in both spellings; an
 *   unknown plugin name (app_plugins.c).
 * - The keys and values the reference (§6) defines, read back raw: through
 *   backend.h on both backends and, on Redis, with hiredis under the
 *   "resque:" namespace (GET and PTTL), as node-resque would see them.
 *
 * Runs are recorded by the tasks (tasks.c) in files opened O_APPEND (one
 * write(2) per line), so runs in several processes land in one log; every
 * wait polls a condition with a deadline. The helpers are in common.c; the
 * list at the bottom is the suite's one table, in the order the tests run.
 *
 * Timing on Redis: delayed jobs are kept by the second (node-resque stores
 * round(ms / 1000)), so a delay of d ms becomes d - 500 .. d + 500 ms there,
 * and one payload can be delayed at most once per second: 49 identical
 * blocked copies of a jobLock job drain at one a second.
 */
#ifndef STELLAR_TEST_PLUGINS_H
#define STELLAR_TEST_PLUGINS_H

#include "fixture.h"
#include "harness.h"

#include "backend.h"
#include "internal.h"
#include "stellar.h"

#ifdef STELLAR_HAVE_REDIS
#include <hiredis/hiredis.h>
#endif

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SPANS 512

/* --------------------------------------------------- Directory, gates --- */

/* The test's directory, for tasks that take no params (periodic ones).
 * Set before any fork, so child processes have it too. */
extern char g_dir[512];

/* "<g_dir>/<name>" into buf. */
const char *dir_file(char *buf, size_t n, const char *name);
/* Waits for <g_dir>/<name> (a gate the test opens), at most 30 s. */
void wait_gate(stellar_api *api, const char *name);
void open_gate(const char *name);

/* ------------------------------------------------------------ Spans --- */

/* One run as a task logged it: "<start_ms> <end_ms> <pid>". */
struct span {
    long long start, end;
    long pid;
};

void log_span(const char *path, int64_t start);
/* Reads the spans of path, sorted by start. */
int read_spans(const char *path, struct span *out, int max);
/* Fails if two runs overlap in time. */
void assert_one_at_a_time(const struct span *s, int n);

/* ------------------------------------------------------------ Tasks --- */

extern int doomed_runs; /* atomic; runs of doomed_run */

/* Sleeps params.ms and logs its span to params.path. */
int slow_run(stellar_api *api, const json_t *params, stellar_next *next);
/* Counts its run (plain()). */
int plain_run(stellar_api *api, const json_t *params, stellar_next *next);
/* Fails with params.why; counts its run (plain()). */
int failing_run(stellar_api *api, const json_t *params, stellar_next *next);
int gated(void);      /* gated runs started */
int gated_done(void); /* gated runs ended */
int plain(void);      /* runs of plain_run and failing_run */

extern const stellar_task task_tick;    /* periodic, 1000 ms */
extern const stellar_task task_flaky;   /* retry with a backoffStrategy */
extern const stellar_task task_doomed;  /* always fails, two attempts */
extern const stellar_task task_retried; /* fails, retried a minute later */
extern const stellar_task task_hang;    /* jobLock; hangs the first time */
extern const stellar_task task_held;    /* jobLock 2 s; waits for its gate */
extern const stellar_task task_qlocked; /* queueLock; waits for its gate */
extern const stellar_task task_dlocked; /* delayQueueLock */
extern const stellar_task task_quiet;   /* noop; always fails */
extern const stellar_task task_lock_a;  /* jobLock, options keyed JobLock */
extern const stellar_task task_lock_b;  /* jobLock, options keyed jobLock */

/* ---------------------------------------------------------- Helpers --- */

/* stellar_enqueue, expecting rc (STELLAR_OK or STELLAR_VETOED). */
void enqueue_expect(stellar *h, int want, const char *task, const char *params);
void enqueue_in_expect(stellar *h, int want, int64_t ms, const char *task,
                       const char *params);
void enqueue_at_expect(stellar *h, int want, int64_t at, const char *task,
                       const char *params);
/* The sum of the per-worker counters "<kind>:<worker>". */
int64_t worker_stats_sum(stellar *h, const char *kind);
size_t timestamps(stellar *h);
/* How many delayed copies of task+params there are. */
size_t scheduled(stellar *h, const char *task, const char *params);
/* True when no worker of h's backend is working on anything. */
bool workers_idle(stellar *h);
size_t locks_count(stellar *h);

/* --------------------------------------------------- Raw keys (§6) --- */

/* The value of kv key (malloc'd, NULL if absent) and the ms left before it
 * expires (-1: no expiry), through backend.h; on Redis also read raw. */
char *kv_read(const struct test_ctx *t, const char *key, int64_t *ttl_ms);
/* A lock as node-resque writes it: value now_s + timeout + 1, a TTL of
 * timeout seconds. */
void assert_lock_key(const struct test_ctx *t, const char *key,
                     int64_t timeout_s);
bool kv_absent(const struct test_ctx *t, const char *key);

/* ------------------------------------------------ Other processes --- */

struct server_cfg {
    int processors;
    bool no_scheduler;
    const stellar_task *tasks[4];
};

/* Forks n servers (call before this process starts any thread) and waits
 * until all have started. */
void spawn_servers(const struct test_ctx *t, const struct server_cfg *c,
                   pid_t *pids, int n);
void stop_servers(const struct test_ctx *t, const pid_t *pids, int n);

/* ---------------------------------------------------- Log capture --- */

/* test_log_fn, plus warnings kept in memory for log_has(). */
void capture_log(void *ud, int level, const char *msg);
bool log_has(const char *needle);

/* ------------------------------------------------------- The table --- */

/*
 * Every test, in the order they run: X(function, name, time limit in s, 0
 * for the runner's default). main.c turns this list into the harness's
 * table.
 */
#define PLUGINS_TESTS(X)                                                       \
    X(a_periodic_task_on_three_processes_runs_once_a_second_one_at_a_time,     \
      "a periodic task on three processes runs once a second, one at a time",  \
      60)                                                                      \
    X(fifty_copies_of_a_job_under_joblock_run_one_at_a_time_and_all_run,       \
      "fifty copies of a job under jobLock run one at a time and all run",     \
      300)                                                                     \
    X(retry_with_a_backoff_strategy_runs_four_attempts_spaced_by_it,           \
      "retry with a backoff strategy runs four attempts spaced by it", 0)      \
    X(retry_limit_two_ends_in_failed_with_the_attempt_count,                   \
      "retry limit two ends in failed with the attempt count", 0)              \
    X(retry_writes_node_resques_counter_and_error_keys_after_a_failure,        \
      "retry writes node-resque's counter and error keys after a failure", 0)  \
    X(a_joblock_left_by_a_killed_process_expires_and_the_job_runs,             \
      "a jobLock left by a killed process expires and the job runs", 0)        \
    X(a_joblock_outlives_its_lock_timeout_while_its_run_lasts,                 \
      "a jobLock outlives its lockTimeout while its run lasts", 0)             \
    X(queuelock_refuses_a_second_copy_until_the_first_starts,                  \
      "queueLock refuses a second copy until the first starts", 0)             \
    X(delayqueuelock_refuses_an_enqueue_while_the_same_job_is_delayed,         \
      "delayQueueLock refuses an enqueue while the same job is delayed", 0)    \
    X(noop_logs_a_failure_and_counts_the_job_processed,                        \
      "noop logs a failure and counts the job processed", 0)                   \
    X(an_apps_plugin_can_veto_an_enqueue_and_nothing_is_stored,                \
      "an app's plugin can veto an enqueue and nothing is stored", 0)          \
    X(an_apps_plugin_vetoing_a_run_drops_the_job_uncounted,                    \
      "an app's plugin vetoing a run drops the job uncounted", 0)              \
    X(an_apps_after_perform_sees_the_error_and_may_clear_it,                   \
      "an app's afterPerform sees the error and may clear it", 0)              \
    X(hooks_run_in_the_order_the_task_lists_its_plugins,                       \
      "hooks run in the order the task lists its plugins", 0)                  \
    X(enqueue_hooks_run_for_enqueue_at_and_enqueue_in_too,                     \
      "enqueue hooks run for enqueueAt and enqueueIn too", 0)                  \
    X(plugin_options_apply_under_either_spelling_of_the_name,                  \
      "pluginOptions apply under either spelling of the name", 0)              \
    X(a_joblock_taken_is_released_when_a_later_plugin_vetoes_the_run,          \
      "a jobLock taken is released when a later plugin vetoes the run", 0)     \
    X(a_blocked_joblock_run_waits_behind_any_number_of_delayed_copies,         \
      "a blocked jobLock run waits behind any number of delayed copies", 0)    \
    X(a_task_naming_an_unknown_plugin_stops_start_naming_the_task,             \
      "a task naming an unknown plugin stops start, naming the task", 0)

#define X(fn, name, timeout_s) void fn(struct test_ctx *t);
PLUGINS_TESTS(X)
#undef X

#endif /* STELLAR_TEST_PLUGINS_H */
