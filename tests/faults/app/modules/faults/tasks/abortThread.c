/*
 * abortThread: calls abort() in the processor's thread, so it kills the
 * whole process (a poison pill); params.n only makes each pill's payload
 * its own.
 */
#include <stellar.h>

#include <stdlib.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api;
    (void)params;
    (void)next;
    abort();
}

STELLAR_TASK(abortThread) = {
    .name = "abortThread",
    .description = "Aborts its process (thread isolation)",
    .queue = "default",
    .run = run,
    .isolation = STELLAR_ISOLATION_THREAD,
};
