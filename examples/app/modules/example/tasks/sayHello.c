/*
 * sayHello: a periodic task that logs "Hello!!!" every second, as in
 * Stellar's guide.
 */
#include <stellar.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)params;
    (void)next;
    stellar_log(api, STELLAR_LOG_INFO, "Hello!!!");
    return STELLAR_OK;
}

STELLAR_TASK(sayHello) = {
    .name = "sayHello",
    .description = "I say hello",
    .queue = "default",
    .frequency = 1000, /* ms: runs once every second */
    .plugins = NULL,
    .plugin_options = NULL,
    .run = run,
};
