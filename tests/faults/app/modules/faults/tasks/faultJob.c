/*
 * faultJob: the fault tests' unit of work. Sleeps params.ms, then appends
 * "<params.id>\n" to the file params.path with one O_APPEND write, so that
 * the test can count how many times each job ran, across processes.
 *
 * With params.starts (a file name), it first appends "<params.id>\n" there
 * too: the test sees which jobs started more than once. With params.coop
 * true it sleeps in 10 ms slices and gives up (failing, without appending)
 * once stellar_should_stop() is true.
 *
 * Also compiled into the fault tests' own programs (tests/faults/), which
 * register it with stellar_task_register_builtin().
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stellar.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void nap_ms(long long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        continue;
}

/* Appends line (n bytes) to path with one write; 0 or an errno. */
static int append(const char *path, const char *line, int n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644), err = 0;

    if (fd < 0) return errno;
    if (write(fd, line, (size_t)n) != n) err = errno ? errno : EIO;
    close(fd);
    return err;
}

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    json_t *id = json_object_get(params, "id");
    const char *path = json_string_value(json_object_get(params, "path"));
    const char *starts = json_string_value(json_object_get(params, "starts"));
    long long ms = json_integer_value(json_object_get(params, "ms"));
    int coop = json_is_true(json_object_get(params, "coop"));
    char line[32];
    int n, err;

    if (!json_is_integer(id) || !path)
        return stellar_fail(next, "faultJob needs params.id (an integer) "
                                  "and params.path (a file name)");
    n = snprintf(line, sizeof line, "%lld\n",
                 (long long)json_integer_value(id));
    if (starts && (err = append(starts, line, n)) != 0)
        return stellar_fail(next, "cannot append to %s: %s", starts,
                            strerror(err));
    while (coop && ms > 0) {
        if (stellar_should_stop(api))
            return stellar_fail(next, "faultJob %lld: stopped early",
                                (long long)json_integer_value(id));
        nap_ms(ms < 10 ? ms : 10);
        ms -= 10;
    }
    if (ms > 0) nap_ms(ms);
    if ((err = append(path, line, n)) != 0)
        return stellar_fail(next, "cannot append to %s: %s", path,
                            strerror(err));
    return STELLAR_OK;
}

STELLAR_TASK(faultJob) = {
    .name = "faultJob",
    .description = "Sleeps params.ms, then appends params.id to params.path",
    .queue = "default",
    .run = run,
};
