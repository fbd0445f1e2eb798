/*
 * slowJob: a slow task under jobLock. It sleeps params.ms (default 2000)
 * milliseconds; jobLock lets only one run with the same params happen at a
 * time, across every process and machine on the backend. A run that finds
 * the lock taken goes back to the delayed set and is tried again about a
 * second later (enqueueTimeout), so nothing is lost.
 *
 *   stellar enqueue slowJob '{"ms":3000}'
 *   stellar enqueue slowJob '{"ms":3000}'   # waits for the first to end
 *   stellar enqueue slowJob '{"ms":500}'    # other params: runs at once
 *
 * The lock expires after lockTimeout seconds (30 here), so a process
 * killed mid-run never leaves it for ever.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c11 */

#include <stellar.h>

#include <time.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    const json_t *ms = json_object_get(params, "ms");
    long long left = json_is_integer(ms) ? json_integer_value(ms) : 2000;

    (void)next;
    stellar_log(api, STELLAR_LOG_INFO, "sleeping %lld ms", left);
    /* In slices, so that a stop (or the task's timeout) is seen soon. */
    while (left > 0 && !stellar_should_stop(api)) {
        long slice = left < 100 ? (long)left : 100;
        struct timespec ts = {0, slice * 1000000L};
        nanosleep(&ts, NULL);
        left -= slice;
    }
    return STELLAR_OK;
}

STELLAR_TASK(slowJob) = {
    .name = "slowJob",
    .description = "Sleeps params.ms (default 2000); one run per params at "
                   "a time (jobLock)",
    .queue = "default",
    .frequency = 0,
    .plugins = (const char *const[]){"jobLock", NULL},
    .plugin_options = "{\"jobLock\":{\"lockTimeout\":30}}",
    .run = run,
};
