/*
 * segv: a task that crashes with SIGSEGV, run in fork isolation: the crash
 * must fail the job, not the process.
 */
#include <stellar.h>

#include <stdint.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    /* An address the compiler cannot prove is null: a real fault. */
    uintptr_t addr =
        (uintptr_t)json_integer_value(json_object_get(params, "addr"));
    (void)api;
    (void)next;
    *(volatile int *)(addr + 8) = 1;
    return STELLAR_OK;
}

STELLAR_TASK(segv) = {
    .name = "segv",
    .description = "Writes to an unmapped address (fork isolation)",
    .queue = "default",
    .run = run,
    .isolation = STELLAR_ISOLATION_FORK,
};
