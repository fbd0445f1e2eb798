/*
 * flaky: a task under retry that fails params.failures times (default 2)
 * before it succeeds. It counts its attempts in the file params.path, one
 * line per attempt, so the count survives between attempts (and processes).
 *
 *   stellar enqueue flaky '{"path":"/tmp/flaky.txt","failures":2}'
 *
 * retry re-enqueues a failed attempt as a delayed job after the next
 * backoffStrategy delay (1 s, then 2 s, then 4 s ...), up to retryLimit
 * attempts in all (4). A retried attempt counts as failed and goes on no
 * list; after the last attempt the job lands in the failed list with
 * " (attempt 4 of 4)" after its error.
 */
#include <stellar.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Lines in path: the attempts made so far (0 if it does not exist). */
static int attempts(const char *path)
{
    FILE *f = fopen(path, "r");
    int c, n = 0;
    if (!f) return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    const char *path = json_string_value(json_object_get(params, "path"));
    const json_t *fj = json_object_get(params, "failures");
    long long failures = json_is_integer(fj) ? json_integer_value(fj) : 2;
    int before;
    FILE *f;

    if (!path || !*path)
        return stellar_fail(next, "flaky needs params.path, a file name");
    before = attempts(path);
    f = fopen(path, "a");
    if (!f || fprintf(f, "attempt %d\n", before + 1) < 0 || fclose(f) != 0)
        return stellar_fail(next, "cannot write %s: %s", path, strerror(errno));
    if (before < failures)
        return stellar_fail(next, "flaky: attempt %d of the %lld that fail",
                            before + 1, failures);
    stellar_log(api, STELLAR_LOG_INFO, "succeeded at attempt %d", before + 1);
    return STELLAR_OK;
}

STELLAR_TASK(flaky) = {
    .name = "flaky",
    .description = "Fails params.failures times, then succeeds (retry)",
    .queue = "default",
    .frequency = 0,
    .plugins = (const char *const[]){"retry", NULL},
    .plugin_options = "{\"retry\":{\"retryLimit\":4,"
                      "\"backoffStrategy\":[1000,2000,4000]}}",
    .run = run,
};
