/*
 * conformance.h: what the conformance suite's files share. The suite is the
 * one every storage backend must pass: ctest runs it once per backend
 * (conformance.sqlite, conformance.redis) with --backend; the harness hands
 * each test a fresh backend URL.
 *
 * The tests drive the public API (stellar.h) with the tasks of common.c,
 * and read raw storage through backend.h only where the stored bytes are
 * the point (payload layout, failed entries) or where a test needs to put
 * something there that the API refuses to write (a payload that is not
 * JSON). They live in one file per topic (enqueue.c, delayed.c, ...); the
 * list below is the suite's one table, in the order the tests run.
 *
 * Timing: the SQLite backend keeps milliseconds, so a delayed job must run
 * no sooner than its time and well under a second late. The Redis layout
 * keeps delayed jobs by second (node-resque stores round(ms/1000)), so
 * there a job may start as early as that second and as late as the next
 * second boundary after its time, plus slack.
 */
#ifndef STELLAR_TEST_CONFORMANCE_H
#define STELLAR_TEST_CONFORMANCE_H

#include "fixture.h"
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

extern pthread_mutex_t runs_mu; /* guards everything below */
extern struct run runs[1024];
extern int nruns;
extern int in_flight, max_in_flight; /* of periodic "tick" runs */
extern int tick_ms;                  /* how long one "tick" run takes */

int run_begin(stellar_api *api, const json_t *params); /* index of the run */
void run_end(int i);
/* Runs of task that have started (ended: that have ended). */
int runs_of(const char *task, bool ended);
/* A copy of the k-th run of task (k from 0); its params are strdup'ed. */
struct run run_of(const char *task, int k);

/* ------------------------------------------------------------ Tasks --- */

int record_run(stellar_api *api, const json_t *params, stellar_next *next);
int tick_run(stellar_api *api, const json_t *params, stellar_next *next);

extern const stellar_task task_record; /* records its params */
extern const stellar_task task_boom;   /* always fails with params.why */
extern const stellar_task task_slow;   /* sleeps params.ms */
extern const stellar_task task_linger; /* outlives the grace period */
extern const stellar_task task_append; /* appends a line to params.path */
extern const stellar_task race_every;  /* periodic (1 min) on "clock" */

/* ---------------------------------------------------------- Helpers --- */

/* The one failed entry (new reference); fails unless there is exactly one. */
json_t *the_failed_entry(stellar *h);
/* A run's params, parsed (new reference). */
json_t *params_of(const struct run *r);
/* Where a job due at at_ms may start: [*lo, *hi] (see the top comment). */
void due_window(const struct test_ctx *t, int64_t at_lo, int64_t at_hi,
                int64_t *lo, int64_t *hi);
/* A whole second an hour from now, in ms. */
int64_t later_s(void);
void enqueue_at(stellar *h, int64_t at, const char *task, const char *params,
                const char *queue);
/* stellar_queued(queue, 0, -1) / stellar_timestamps (new references). */
json_t *queued_all(stellar *h, const char *queue);
json_t *timestamps_of(stellar *h);
/* "[a,b,...]" of int64s in a static buffer, for ASSERT_JSON_EQ. */
const char *ms_list(int n, const int64_t *v);
/* A copy of an array of integers, sorted. */
json_t *sorted_ints(const json_t *a);
/* Jobs of class cls now queued in queue plus now delayed. Reads the queue
 * first: a job leaves the queue, runs (200 ms) and comes back delayed, so
 * one read cannot see it twice. */
int copies_stored(st_backend *b, const char *queue, const char *cls);
/* A worker as a processor records it, registered straight in storage. */
void fake_worker(st_backend *b, const char *name, const char *queue,
                 int64_t at_ms, bool reserve);
int64_t latency(stellar *h, const char *queue);

/* ------------------------------------------------------- The table --- */

/*
 * Every test, in the order they run: X(function, time limit in s, 0 for the
 * runner's default). A test is named by its function, written once; main.c
 * turns this list into the harness's table.
 */
#define CONFORMANCE_TESTS(X)                                                   \
    X(an_enqueued_job_runs_its_task_with_the_params, 0)                        \
    X(a_job_without_params_gets_an_empty_object, 0)                            \
    X(a_job_without_a_queue_goes_to_its_tasks_queue, 0)                        \
    X(the_stored_payload_is_the_resque_json_byte_for_byte, 0)                  \
    X(queues_and_lengths_are_readable_through_the_api, 0)                      \
    X(queues_are_taken_in_priority_order, 0)                                   \
    X(a_wildcard_worker_takes_every_queue_in_name_order, 0)                    \
    X(enqueue_at_runs_the_job_not_before_its_time, 0)                          \
    X(enqueue_at_a_past_time_runs_the_job_at_once, 0)                          \
    X(enqueue_in_runs_the_job_after_its_delay_and_not_before, 0)               \
    X(enqueue_in_with_a_negative_delay_is_refused, 0)                          \
    X(delayed_jobs_run_in_time_order, 0)                                       \
    X(a_periodic_task_runs_again_after_each_run_and_is_never_stored_twice, 0)  \
    X(a_periodic_task_never_runs_twice_at_once_when_the_leader_changes, 0)     \
    X(a_failing_task_is_recorded_in_failed_with_counters, 0)                   \
    X(an_unknown_task_fails_the_job_and_the_worker_keeps_going, 0)             \
    X(enqueue_of_an_unknown_task_on_a_handle_with_tasks_is_refused, 0)         \
    X(an_invalid_payload_fails_with_a_clear_error_and_is_kept, 0)              \
    X(a_running_job_shows_in_workers_with_what_it_works_on, 0)                 \
    X(graceful_stop_lets_the_running_job_finish_and_leaves_the_rest_queued, 0) \
    X(graceful_stop_puts_a_job_running_past_the_grace_back_at_the_head, 0)     \
    X(stop_before_start_and_twice_is_harmless, 0)                              \
    X(two_processes_sharing_a_backend_run_every_job_exactly_once, 120)         \
    X(del_removes_up_to_count_matching_jobs_and_says_how_many, 0)              \
    X(del_delayed_returns_the_timestamps_it_removed_from, 0)                   \
    X(del_queue_removes_the_queue_and_its_jobs, 0)                             \
    X(a_recurrent_job_is_restarted_without_duplicates_and_stopped, 0)          \
    X(racing_restarts_of_a_recurrent_job_leave_one_copy, 0)                    \
    X(racing_writers_each_delay_their_copy_of_one_payload, 0)                  \
    X(queue_latency_is_the_age_of_the_oldest_job, 0)                           \
    X(a_schema_1_sqlite_file_is_migrated_and_keeps_its_data, 0)                \
    X(a_foreign_sqlite_file_is_refused_and_left_untouched, 0)                  \
    X(a_read_only_sqlite_store_can_be_inspected, 0)                            \
    X(redis_with_a_password_is_opened_or_refused_clearly, 0)                   \
    X(delayed_jobs_are_listed_by_ascending_timestamp, 0)                       \
    X(scheduled_at_lists_every_time_a_job_is_delayed_to, 0)                    \
    X(del_delayed_at_removes_every_job_at_one_timestamp, 0)                    \
    X(del_all_delayed_removes_every_delayed_job, 0)                            \
    X(details_lists_queues_with_lengths_and_workers, 0)                        \
    X(queued_returns_a_range_of_a_queues_jobs, 0)                              \
    X(working_on_shows_the_job_a_worker_is_running, 0)                         \
    X(locks_lists_a_queue_lock_and_del_lock_removes_it, 0)                     \
    X(failed_jobs_are_ranged_removed_and_retried, 0)                           \
    X(clean_old_workers_fails_the_job_of_a_silent_worker, 0)                   \
    X(clean_old_workers_with_requeue_puts_the_job_back_at_the_head, 0)         \
    X(reserve_tells_a_suspect_by_its_live_crash_counter, 0)                    \
    X(recovering_a_periodic_job_keeps_one_copy_of_the_task, 0)                 \
    X(a_task_without_a_name_is_refused, 0)                                     \
    X(a_task_without_a_description_is_refused, 0)                              \
    X(a_task_without_run_is_refused, 0)                                        \
    X(a_task_with_a_negative_frequency_is_refused, 0)                          \
    X(a_second_task_with_the_same_name_is_refused, 0)                          \
    X(registered_tasks_are_listed_with_their_properties, 0)                    \
    X(opening_an_unknown_backend_fails_with_a_message, 0)                      \
    X(kv_expire_without_a_value_applies_to_any_value, 0)                       \
    X(bad_names_are_refused_everywhere_and_good_ones_kept, 0)                  \
    X(times_past_the_year_9999_are_refused_and_nothing_stored, 0)              \
    X(hooks_and_tasks_call_the_api_on_their_own_handle, 120)                   \
    X(a_slow_log_function_that_calls_back_does_not_stall_processors, 120)      \
    X(a_paused_queue_is_held_back_in_place_and_resumed, 0)                     \
    X(a_pause_for_a_while_ends_by_itself, 0)                                   \
    X(a_concurrency_limit_holds_permits_released_by_ack_fail_requeue, 0)       \
    X(a_queue_limit_holds_its_queue_back_and_others_run, 0)                    \
    X(a_dead_workers_permit_is_freed_by_its_clean_up, 0)                       \
    X(a_limit_cleared_and_set_again_while_a_job_runs_still_binds, 0)           \
    X(a_job_that_outlived_its_permit_takes_a_new_one_for_its_next_job, 0)      \
    X(a_worker_unregistered_while_holding_a_permit_frees_it, 0)                \
    X(a_permit_of_a_worker_no_longer_registered_does_not_count, 0)             \
    X(a_rate_limit_is_an_exact_sliding_window, 0)                              \
    X(controls_are_checked_and_listed_through_the_api, 0)                      \
    X(processors_skip_a_paused_queue_and_run_it_after_resume, 0)               \
    X(stop_and_close_from_a_task_are_refused_not_a_hang, 60)                   \
    X(two_threads_stopping_at_once_stop_once, 60)                              \
    X(a_schedule_claims_each_tick_once_with_its_job, 0)                        \
    X(a_paused_schedule_claims_nothing_until_resumed, 0)                       \
    X(a_resume_stores_its_time_so_paused_ticks_are_not_missed, 0)              \
    X(racing_connections_claim_each_tick_exactly_once, 60)                     \
    X(a_cron_schedule_queues_one_job_per_tick_across_handles, 60)              \
    X(missed_ticks_are_skipped_or_queued_once, 60)                             \
    X(a_new_schedule_has_missed_nothing, 60)                                   \
    X(ticks_passed_while_paused_are_not_missed_at_resume, 60)                  \
    X(schedules_are_listed_paused_and_resumed, 0)                              \
    X(bad_schedules_are_refused_at_load_naming_the_field, 0)

#define X(fn, timeout_s) void fn(struct test_ctx *t);
CONFORMANCE_TESTS(X)
#undef X

#endif /* STELLAR_TEST_CONFORMANCE_H */
