/*
 * exitJob: ends its process with status 3 in fork isolation (the status
 * fails the job). _exit, not exit: the child is a copy of a threaded
 * daemon, whose atexit handlers (LeakSanitizer's, in a sanitizer build)
 * are not the task's to run.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stellar.h>

#include <unistd.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api;
    (void)params;
    (void)next;
    _exit(3);
}

STELLAR_TASK(exitJob) = {
    .name = "exitJob",
    .description = "Exits with status 3 (fork isolation)",
    .queue = "default",
    .run = run,
    .isolation = STELLAR_ISOLATION_FORK,
};
