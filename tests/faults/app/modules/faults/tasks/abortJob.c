/* abortJob: calls abort() in fork isolation (SIGABRT fails the job). */
#include <stellar.h>

#include <stdlib.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api;
    (void)params;
    (void)next;
    abort();
}

STELLAR_TASK(abortJob) = {
    .name = "abortJob",
    .description = "Aborts (fork isolation)",
    .queue = "default",
    .run = run,
    .isolation = STELLAR_ISOLATION_FORK,
};
