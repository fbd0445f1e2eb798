/*
 * failAlways: a task that always fails, to show (and test) how failures
 * are recorded: see `stellar failed`.
 */
#include <stellar.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api;
    (void)params;
    return stellar_fail(next, "I always fail");
}

STELLAR_TASK(failAlways) = {
    .name = "failAlways",
    .description = "Fails every time, with the message \"I always fail\"",
    .queue = "default",
    .frequency = 0,
    .plugins = NULL,
    .plugin_options = NULL,
    .run = run,
};
