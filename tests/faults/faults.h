/*
 * faults.h: what the fault suite's files share. The suite is the
 * fault-injection proof of issue #6 ("never lose a job"), run once per
 * backend (faults.sqlite, faults.redis) with --backend.
 *
 * Every test breaks something for real: it SIGKILLs the real `stellar run`
 * program (STELLAR_BIN) or a small program on the library (FAULT_WORKER,
 * fault_worker.c; both default to the ones built beside this binary) and
 * restarts it, crashes tasks, stops or restarts Redis,
 * pushes bad payloads past the API, holds the SQLite write lock, or runs
 * out of file space. Jobs are faultJob (app/modules/faults/tasks/), which
 * appends "<id>\n" to a file with O_APPEND when it ends: the file says how
 * many times each job ran, the stats say how many times it was acked.
 *
 * Sizes: short by default (the whole suite in a few minutes on two cores);
 * STELLAR_LONG_TESTS=1 runs the full sizes (10,000 jobs, 5 kills).
 *
 * The processes a test starts are in its process group, which the harness
 * kills when the test ends, whatever happened.
 *
 * The tests live in one file per topic, by what they break (kills.c,
 * poison.c, isolation.c, stop.c, payloads.c, storage.c, redis.c,
 * lost_reply.c, leader.c); the helpers several topics use are in common.c
 * and the list at the bottom is the suite's one table, in the order the
 * tests run. Every file includes this header first: _GNU_SOURCE must come
 * before any system header.
 */
#ifndef STELLAR_TEST_FAULTS_H
#define STELLAR_TEST_FAULTS_H

#define _GNU_SOURCE /* unshare(), for a private tmpfs (disk full) */
#include "fixture.h"
#include "harness.h"

#include "backend.h"
#include "internal.h"
#include "stellar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef STELLAR_HAVE_REDIS
#include <hiredis/hiredis.h>
#endif

#ifndef FAULTS_APP_DIR
#error "FAULTS_APP_DIR (the test app's source folder) must be defined"
#endif

/* The dead-worker timeout of the tests' scheduler leader: five missed pings
 * (one a second), so a live process on a loaded machine is never taken for
 * a dead one. */
#define STUCK_MS 5000
#define PROCS    4 /* TaskProcessors per worker process */

/* True with STELLAR_LONG_TESTS=1: the full sizes. */
bool long_mode(void);
/* STELLAR_BIN or FAULT_WORKER: from the environment, else the one this
 * build made; skips the test if it is not an executable. */
const char *program(const char *var);

/* ------------------------------------------------------- Processes --- */

/* Starts argv in cwd with stdout and stderr appended to log. */
pid_t spawn(const char *const argv[], const char *cwd, const char *log);
/* Waits up to ms for pid to end; its wait status, or -1 if still running. */
int wait_exit(pid_t pid, int64_t ms);
/* Fails the test if pid has ended (naming its log). */
void assert_alive(pid_t pid, const char *what);
/* SIGTERM, then the exit status within ms (fails if it does not end). */
int stop_process(pid_t pid, int64_t ms);
void assert_exit_0(int status, const char *what);
/* Copies the test app (FAULTS_APP_DIR) to <dir>/app; returns that path. */
char *copy_app(struct test_ctx *t);
/* `stellar run` on the app copy with n processors and no scheduler (the
 * test runs the scheduler leader), output in <dir>/<tag>.log. */
pid_t start_run(struct test_ctx *t, const char *app, int n, const char *tag);
/* fault_worker with n processors and its own scheduler (stuck timeout
 * STUCK_MS), or none (no_scheduler), logging to <dir>/<tag>.log. */
pid_t start_worker(struct test_ctx *t, int n, bool no_scheduler,
                   const char *tag);

/* --------------------------------------------------------- Library --- */

/* A handle on the test's backend (url NULL: the test's URL): processors
 * < 0 is a pure client; with lead, it is started as a scheduler-only
 * process (the leader that recovers dead workers' jobs after STUCK_MS). */
stellar *open_handle(struct test_ctx *t, const char *url, int processors,
                     bool lead);
#ifdef STELLAR_HAVE_REDIS
/* test_stat(), 0 while the backend is unreachable (during an outage). */
int64_t stat_try(stellar *h, const char *key);
#endif
/* Workers of process pid ("<host>:<pid>+<n>"), or of every process if pid
 * is 0; *busy: how many of them hold a job. */
int workers_of(stellar *h, pid_t pid, int *busy);
/* Queues faultJobs id first..first+n-1 on "default", each sleeping
 * ms_min + (id * 37) % ms_span ms, appending to path (with starts, to
 * starts too as it begins; coop: it gives up once its processor stops). */
void enqueue_jobs_ex(stellar *h, int first, int n, int ms_min, int ms_span,
                     const char *path, const char *starts, bool coop);
void enqueue_jobs(stellar *h, int first, int n, int ms_min, int ms_span,
                  const char *path, bool coop);

/* ------------------------------------------------------ Runs files --- */

/* counts[id] += 1 per line of the runs file for ids in [0, n); fails on
 * any other line. Returns the number of lines. */
int read_runs(const char *path, int *counts, int n);
/* Every job ran at least once: returns how many extra runs there were,
 * and how many jobs ran more than once. */
int extra_runs(const char *path, int n, int *jobs_twice);
/* Every job in [0, n) ran exactly `times` times. */
void assert_runs(const char *path, int n, int times);

/* ---------------------------------------------------- Failed list --- */

/* The failed entries, parsed: new reference. */
json_t *failed_entries(stellar *h);
/* How many failed entries of task klass have an error containing text. */
int failed_with(json_t *entries, const char *klass, const char *text);
/* Prints every failed entry's error (for a failing assertion's context). */
void note_failed(stellar *h);

/* ------------------------------------------------------- The table --- */

/*
 * Every test, in the order they run: X(function, time limit in s). A test
 * is named by its function, written once; main.c turns this list into the
 * harness's table.
 */
#define FAULTS_TESTS(X)                                                        \
    X(stellar_run_killed_and_restarted_loses_no_job, 1200)                     \
    X(library_process_killed_and_restarted_loses_no_job, 1200)                 \
    X(job_that_kills_its_process_three_times_is_a_poison_pill, 120)            \
    X(innocent_jobs_beside_a_poison_pill_never_fail, 600)                      \
    X(fork_isolation_fails_crashed_and_timed_out_jobs_only, 120)               \
    X(sigterm_lets_eight_running_jobs_finish, 120)                             \
    X(second_sigterm_puts_running_jobs_back, 120)                              \
    X(bad_payloads_fail_clearly_and_the_worker_carries_on, 300)                \
    X(sqlite_busy_waits_with_a_bound_then_fails_clearly, 60)                   \
    X(full_disk_fails_enqueue_and_keeps_what_was_stored, 180)                  \
    X(file_size_limit_fails_enqueue_and_keeps_what_was_stored, 120)            \
    X(redis_paused_for_5s_loses_and_repeats_nothing, 300)                      \
    X(redis_frozen_longer_than_stuck_timeout_cleans_no_live_worker, 180)       \
    X(second_sigterm_exits_promptly_while_redis_is_frozen, 120)                \
    X(redis_restarted_after_5s_loses_and_repeats_nothing, 300)                 \
    X(redis_killed_and_restarted_loses_and_repeats_nothing, 300)               \
    X(redis_reply_lost_after_a_reserve_loses_and_repeats_nothing, 120)         \
    X(killing_the_scheduler_leader_keeps_periodic_and_delayed_jobs, 120)

#define X(fn, timeout_s) void fn(struct test_ctx *t);
FAULTS_TESTS(X)
#undef X

#endif /* STELLAR_TEST_FAULTS_H */
