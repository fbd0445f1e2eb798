/*
 * leaderTick: a periodic task (every 1000 ms) that sleeps 200 ms and
 * appends "<start_ms> <end_ms>\n" (CLOCK_MONOTONIC, shared by every process
 * of the machine) to periodic.txt in the app folder with one O_APPEND
 * write. Not under modules/: only the leader-failover test copies it into
 * its app copy's modules/faults/tasks/, so the other tests' runs never
 * schedule it.
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

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int run(stellar_api *api, const json_t *params, stellar_next *next)
{
    struct timespec nap = {0, 200000000L};
    long long start = mono_ms();
    char line[64];
    int fd, n;

    (void)api;
    (void)params;
    while (nanosleep(&nap, &nap) != 0 && errno == EINTR)
        continue;
    n = snprintf(line, sizeof line, "%lld %lld\n", start, mono_ms());
    fd = open("periodic.txt", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        int err = errno;
        if (fd >= 0) close(fd);
        return stellar_fail(next, "cannot append to periodic.txt: %s",
                            strerror(err));
    }
    close(fd);
    return STELLAR_OK;
}

STELLAR_TASK(leaderTick) = {
    .name = "leaderTick",
    .description = "Every second: appends its start and end to periodic.txt",
    .queue = "default",
    .frequency = 1000,
    .run = run,
};
