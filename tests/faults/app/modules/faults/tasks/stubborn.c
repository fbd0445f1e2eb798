/*
 * stubborn: ignores SIGTERM and sleeps 30 s in fork isolation with a 300 ms
 * timeout: only the SIGKILL after the grace ends it.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stellar.h>

#include <signal.h>
#include <time.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    struct timespec ts = {30, 0};
    (void)api;
    (void)params;
    signal(SIGTERM, SIG_IGN);
    while (nanosleep(&ts, &ts) != 0)
        continue;
    return stellar_fail(next, "stubborn was not killed");
}

STELLAR_TASK(stubborn) = {
    .name = "stubborn",
    .description = "Ignores SIGTERM, sleeps 30 s; timeout 300 ms (fork)",
    .queue = "default",
    .run = run,
    .timeout = 300,
    .isolation = STELLAR_ISOLATION_FORK,
};
