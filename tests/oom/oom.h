/*
 * oom.h: what the oom suite's files share. The suite tests the
 * out-of-memory paths (issue 11), once per backend (oom.sqlite, oom.redis).
 *
 * Each test runs calls under the allocation-failure hook (internal.h): for
 * n = 1, 2, 3, ... the nth allocation of the call fails, either once or,
 * in a second pass, along with every allocation after it, until a round
 * passes with no allocation failed. Every round must end cleanly:
 *   - the call returns STELLAR_OK or STELLAR_ENOMEM, and on an error fills
 *     stellar_error with that code and a message;
 *   - a call that returned STELLAR_OK changed storage exactly as a run
 *     without failures does, and handed out the same result;
 *   - a call that failed changed nothing, or all that a call without
 *     failures changes (its reply lost after the atomic write, as when a
 *     connection drops; Redis builds replies after its script ran): never
 *     a part of it;
 *   - nothing leaks (ASan's leak checker runs when each test's process
 *     exits: `make asan`), nothing crashes.
 * Storage is compared through a dump of everything the backend holds,
 * taken on a connection of the test's own; before each round it is wiped
 * and set up again, so every round starts from the same state.
 *
 * The hook fails Stellar's allocations and jansson's (which allocates
 * through Stellar's; its parser fails as a whole, see json.c); SQLite and
 * hiredis allocate on their own and are not hooked. The hook is per
 * thread: a test fails allocations in the thread it runs on, and the worker
 * cycle test in the processor's thread, from inside a task. Not covered:
 * the scheduler's thread (its backend calls are, in backend_calls.c) and
 * the HTTP API.
 *
 * The loop and the fixture are in common.c; the tests live in one file
 * per kind of call (enqueue.c, inspection.c, management.c,
 * backend_calls.c, handle.c, cycle.c), each with its table of calls (struct
 * op); the list at the bottom is the suite's one table, in the order the
 * tests run.
 */
#ifndef STELLAR_TEST_OOM_H
#define STELLAR_TEST_OOM_H

#include "fixture.h"
#include "harness.h"

#include "backend.h"
#include "internal.h"
#include "stellar.h"

#ifdef STELLAR_HAVE_REDIS
#include <hiredis/hiredis.h>
#endif

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS 1800000000000LL /* the clock of raw backend calls */
#define WORKER "host:7+1"
#define AT_MS  1900000000000LL /* a delayed job's time */

/* ---------------------------------------------------------- Fixture --- */

struct fx {
    const struct test_ctx *t;
    stellar *h;    /* a handle with register_tasks()' tasks, not started */
    st_backend *b; /* the test's own connection: setup and dumps */
    stellar *h2;   /* a handle a round opens (open, register, start) */
    /* What a call takes, made by the setup. */
    json_t *in;
    char *entry;
    /* What the call under test handed out. */
    json_t *out;
    int64_t n;
    st_reserved got;
};

/* A task that does nothing and succeeds. */
int noop_run(stellar_api *api, const json_t *params, stellar_next *next);
extern const char *const queue_lock[]; /* plugins: {"queueLock", NULL} */
/* Registers the tasks "job", "tick" (periodic) and "locked" (queueLock). */
void register_tasks(stellar *h);

/* --------------------------------------------------------- The loop --- */

/* One call under test. */
struct op {
    const char *name;
    /* Before each round (hook off): the state the call starts from. */
    void (*setup)(struct fx *f);
    /* The call, with the hook armed; its results go to f->out, f->n and
     * f->got. */
    int (*call)(struct fx *f, stellar_error *e);
    /* Optional: blanks what changes from run to run in f->out. */
    void (*norm)(json_t *out);
    /* Optional: after each round (hook off), e.g. closes f->h2. */
    void (*done)(struct fx *f, int rc);
    /* Optional: after the call (hook off), reads what it did into f->out. */
    void (*collect)(struct fx *f);
    bool loose_times; /* the call delays a job to a time of its own */
    bool async;       /* on success, threads change storage: compare it
                         only after an error */
    bool retried;     /* an error may leave work half done, for the retry
                         of the same call to finish (a processor's
                         reserve): after an error, the call runs again
                         without the hook and must then do what a call
                         without failures does */
    bool no_dump;     /* storage is not compared (the call has no effect on
                         it, or one that needs its own check) */
    bool undoes;      /* on an error it undoes what it did so far, which
                         takes memory too: when every allocation after the
                         failed one fails as well, that may not be possible,
                         and only the error is checked (what is left behind
                         is what a crash there would leave) */
};

/* The loop, for each of the n calls of ops: a reference round, then
 * rounds failing the 1st, 2nd, ... allocation, once and then with all
 * that follow it, until a round needs no more allocations than were let
 * through; on a fixture of its own. */
void oom_loop_all(const struct test_ctx *t, const struct op *ops, size_t n);

/* A call of the API or the backend that changes storage (or reads it),
 * from the state `setup` makes. */
#define OP(name_, setup_, call_)                                               \
    {                                                                          \
        .name = name_, .setup = setup_, .call = call_                          \
    }

/* ------------------------------------------------------------ Setup --- */

/* WORKER, registered as taking queues "q" and "r". */
extern const st_worker_id worker;
/* Something of everything: jobs on q and r, two delayed jobs, WORKER
 * holding a job, a failed job, a queue lock. */
void setup_all(struct fx *f);
/* The same and the periodic task "tick", queued and delayed. */
void setup_tick(struct fx *f);
/* The same as setup_all, and the failed entry as stellar_failed() hands it
 * out, in f->in. */
void setup_failed(struct fx *f);

/* ------------------------------------------------------- The table --- */

/*
 * Every test, in the order they run: X(function, name, time limit in s).
 * main.c turns this list into the harness's table.
 */
#define OOM_TESTS(X)                                                           \
    X(enqueue_calls_store_the_job_or_nothing,                                  \
      "enqueue calls store the job or nothing", 300)                           \
    X(inspection_calls_answer_in_full_or_fail_cleanly,                         \
      "inspection calls answer in full or fail cleanly", 300)                  \
    X(management_calls_change_all_or_nothing,                                  \
      "management calls change all or nothing", 300)                           \
    X(worker_and_scheduler_backend_calls_are_atomic,                           \
      "worker and scheduler backend calls are atomic", 300)                    \
    X(open_register_and_start_fail_cleanly,                                    \
      "open, register and start fail cleanly", 300)                            \
    X(a_processor_survives_failed_allocations_after_a_run,                     \
      "a processor survives failed allocations after a run", 300)

#define X(fn, name, timeout_s) void fn(struct test_ctx *t);
OOM_TESTS(X)
#undef X

#endif /* STELLAR_TEST_OOM_H */
