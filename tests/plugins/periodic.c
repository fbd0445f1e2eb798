/*
 * periodic.c: a periodic task on three processes: a 1000 ms task runs 5 to
 * 7 times in 6 s, never twice at once, never stored twice.
 */
#include "plugins.h"

/* ------------------------------------------------ Periodic, 3 procs --- */

#define WINDOW_MS 6000

/* Earliest start logged in path, or -1. */
static int64_t first_start(const char *path)
{
    static struct span s[MAX_SPANS];
    int n = read_spans(path, s, MAX_SPANS);
    return n ? s[0].start : -1;
}

void a_periodic_task_on_three_processes_runs_once_a_second_one_at_a_time(
    struct test_ctx *t)
{
    static struct span s[MAX_SPANS];
    struct server_cfg cfg = {.processors = 2, .tasks = {&task_tick}};
    pid_t pids[3];
    stellar_error e = {0};
    stellar *h;
    json_t *tasks;
    char ticks[600];
    int64_t t0 = -1, deadline, max_copies = 0, samples = 0;
    int n, in_window = 0;

    snprintf(g_dir, sizeof g_dir, "%s", t->dir);
    dir_file(ticks, sizeof ticks, "ticks");
    spawn_servers(t, &cfg, pids, 3);

    /* A client on the side, to watch storage. */
    h = open_h(t, NULL);
    reg(h, &task_tick);
    tasks = stellar_tasks_json(h);
    ASSERT_TRUE(tasks != NULL);
    {
        char *pl = json_dumps(
            json_object_get(json_array_get(tasks, 0), "plugins"), JSON_COMPACT);
        ASSERT_STR_EQ("[\"jobLock\",\"queueLock\",\"delayQueueLock\"]", pl);
        free(pl);
    }
    json_decref(tasks);

    /* Sample storage until 6 s after the first run started: queued plus
     * delayed copies, read in that order (a promotion between the two
     * reads can only hide a copy, never count one twice). */
    deadline = test_mono_ms() + 30000;
    while (t0 < 0 || test_now_ms() < t0 + WINDOW_MS + 300) {
        json_t *ts = NULL;
        int64_t q = test_length(h, "default"), copies;
        ASSERT_OK(stellar_scheduled_at(h, NULL, "tick", NULL, &ts, &e), &e);
        copies = q + (int64_t)json_array_size(ts);
        json_decref(ts);
        if (copies > 1)
            FAIL("%lld copies of the periodic task stored (%lld queued)",
                 (long long)copies, (long long)q);
        if (copies > max_copies) max_copies = copies;
        samples++;
        if (t0 < 0) t0 = first_start(ticks);
        if (test_mono_ms() > deadline) FAIL("the periodic task never ran");
        test_sleep_ms(10);
    }
    stop_servers(t, pids, 3);

    n = read_spans(ticks, s, MAX_SPANS);
    assert_one_at_a_time(s, n);
    for (int i = 0; i < n; i++)
        in_window += s[i].start < t0 + WINDOW_MS;
    for (int i = 1; i < n && s[i].start < t0 + WINDOW_MS; i++)
        test_note("run %d started %lld ms after run %d ended (pid %ld)", i,
                  s[i].start - s[i - 1].end, i - 1, s[i].pid);
    test_note("%d runs in %d ms on 3 processes; %lld storage samples, at "
              "most %lld copy stored",
              in_window, WINDOW_MS, (long long)samples, (long long)max_copies);
    if (in_window < 5 || in_window > 7)
        FAIL("the 1000 ms task ran %d times in %d ms, want 5 to 7", in_window,
             WINDOW_MS);
    ASSERT_EQ(n, test_stat(h, "processed"));
    ASSERT_EQ(0, test_stat(h, "failed"));
    stellar_close(h);
}
