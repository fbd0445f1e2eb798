/*
 * quiet: a task under noop. It always fails; noop logs the failure and
 * swallows it, so the job counts as processed and the failed list stays
 * empty.
 *
 *   stellar enqueue quiet '{"why":"nothing to worry about"}'
 */
#include <stellar.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    const char *why = json_string_value(json_object_get(params, "why"));
    (void)api;
    return stellar_fail(next, "quiet: %s", why ? why : "failed, quietly");
}

STELLAR_TASK(quiet) = {
    .name = "quiet",
    .description = "Always fails; noop logs and swallows the failure",
    .queue = "default",
    .frequency = 0,
    .plugins = (const char *const[]){"noop", NULL},
    .plugin_options = NULL,
    .run = run,
};
