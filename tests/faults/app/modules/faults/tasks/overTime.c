/*
 * overTime: sleeps 30 s in fork isolation with a 500 ms timeout. The child
 * does nothing about signals: SIGTERM at the timeout must end it.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stellar.h>

#include <time.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    struct timespec ts = {30, 0};
    (void)api;
    (void)params;
    while (nanosleep(&ts, &ts) != 0)
        continue;
    return stellar_fail(next, "overTime was not stopped");
}

STELLAR_TASK(overTime) = {
    .name = "overTime",
    .description = "Sleeps 30 s; timeout 500 ms (fork isolation)",
    .queue = "default",
    .run = run,
    .timeout = 500,
    .isolation = STELLAR_ISOLATION_FORK,
};
