/*
 * appendLine: appends params.line and a newline to the file params.path.
 *
 *   stellar enqueue appendLine '{"path":"/tmp/out.txt","line":"hi"}'
 *
 * Missing or non-string params, or an I/O error, fail the job with a
 * message that says which; the failure is recorded with the failed jobs.
 */
#include <stellar.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    const char *path = json_string_value(json_object_get(params, "path"));
    const char *line = json_string_value(json_object_get(params, "line"));
    FILE *f;
    int ok;

    if (!path || !*path)
        return stellar_fail(next, "appendLine needs params.path, a file name");
    if (!line)
        return stellar_fail(next, "appendLine needs params.line, a string");
    f = fopen(path, "a");
    if (!f)
        return stellar_fail(next, "cannot open %s: %s", path, strerror(errno));
    ok = fputs(line, f) >= 0 && fputc('\n', f) != EOF;
    if (fclose(f) != 0) ok = 0;
    if (!ok)
        return stellar_fail(next, "cannot write to %s: %s", path,
                            strerror(errno));
    stellar_log(api, STELLAR_LOG_DEBUG, "appended a line to %s", path);
    return STELLAR_OK;
}

STELLAR_TASK(appendLine) = {
    .name = "appendLine",
    .description = "Appends params.line to the file params.path",
    .queue = "default",
    .frequency = 0,
    .plugins = NULL,
    .plugin_options = NULL,
    .run = run,
};
