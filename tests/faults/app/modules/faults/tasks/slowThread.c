/*
 * slowThread: runs in the processor's thread with a 200 ms timeout, until
 * stellar_should_stop() says the time is up (the cooperative timeout), then
 * returns success: the job must still fail as timed out.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stellar.h>

#include <time.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    struct timespec ts = {0, 5000000L};
    int slices = 0;
    (void)params;
    while (!stellar_should_stop(api)) {
        nanosleep(&ts, NULL);
        if (++slices > 2000) /* 10 s: the limit never came */
            return stellar_fail(next,
                                "stellar_should_stop() never turned true");
    }
    return STELLAR_OK;
}

STELLAR_TASK(slowThread) = {
    .name = "slowThread",
    .description = "Loops until stellar_should_stop(); timeout 200 ms (thread)",
    .queue = "default",
    .run = run,
    .timeout = 200,
    .isolation = STELLAR_ISOLATION_THREAD,
};
