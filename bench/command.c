/*
 * command.c: the benchmark row of command tasks (issue 13). In one run, on
 * one machine, with the same parallelism P:
 *   - spawn: P threads each spawn `true` and wait for it, in a loop: the
 *     rate at which this machine can run `true` at all;
 *   - command: P TaskProcessors run N jobs of a command task whose command
 *     is `true` (SQLite, in a temporary folder), from start to the last ack.
 * Prints one JSON object: both rates and their ratio (the target is at
 * least 0.7: supervising a command costs little beside spawning it).
 *
 *   stellar_bench_command DIR [N] [P]     (defaults 2000 and 8)
 */
#include "stellar.h"

#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int per_thread;

static void *spawner(void *arg)
{
    char name[] = "true", *argv[] = {name, NULL};
    (void)arg;
    for (int i = 0; i < per_thread; i++) {
        pid_t pid;
        int status;
        if (posix_spawnp(&pid, "true", NULL, NULL, argv, environ) != 0) {
            perror("posix_spawnp true");
            exit(1);
        }
        waitpid(pid, &status, 0);
    }
    return NULL;
}

static double spawn_rate(int n, int p)
{
    pthread_t *t = calloc((size_t)p, sizeof *t);
    double t0;

    per_thread = n / p;
    t0 = now_s();
    for (int i = 0; i < p; i++)
        pthread_create(&t[i], NULL, spawner, NULL);
    for (int i = 0; i < p; i++)
        pthread_join(t[i], NULL);
    free(t);
    return (double)(per_thread * p) / (now_s() - t0);
}

static int64_t processed(stellar *h)
{
    json_t *stats = NULL;
    stellar_error e;
    int64_t n = -1;
    if (stellar_stats(h, &stats, &e) == STELLAR_OK)
        n = (int64_t)json_integer_value(json_object_get(stats, "processed"));
    json_decref(stats);
    return n;
}

static double command_rate(const char *dir, int n, int p)
{
    char path[4096], url[4200];
    stellar_options o = {0};
    stellar_error e;
    stellar *h = NULL;
    const char **params = calloc((size_t)n, sizeof *params);
    double t0, rate;
    FILE *f;

    snprintf(path, sizeof path, "%s/true.json", dir);
    f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fprintf(f, "{\"name\": \"true\", \"description\": \"does nothing\", "
               "\"queue\": \"bench\", \"command\": [\"true\"]}\n");
    fclose(f);
    snprintf(url, sizeof url, "sqlite:%s/command.db", dir);
    o.url = url;
    o.processors = p;
    o.no_scheduler = true;
    if (stellar_open(&h, &o, &e) ||
        stellar_command_task_load(h, path, dir, &e)) {
        fprintf(stderr, "command bench: %s\n", e.msg);
        exit(1);
    }
    for (int i = 0; i < n; i++)
        params[i] = "{}";
    if (stellar_enqueue_many(h, "true", params, (size_t)n, NULL, &e) < 0) {
        fprintf(stderr, "command bench: enqueue: %s\n", e.msg);
        exit(1);
    }
    t0 = now_s();
    if (stellar_start(h, &e)) {
        fprintf(stderr, "command bench: start: %s\n", e.msg);
        exit(1);
    }
    while (processed(h) < n) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    rate = (double)n / (now_s() - t0);
    stellar_close(h);
    free(params);
    return rate;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : NULL;
    int n = argc > 2 ? atoi(argv[2]) : 2000, p = argc > 3 ? atoi(argv[3]) : 8;
    double spawn, command;

    if (!dir || n < 1 || p < 1) {
        fprintf(stderr, "usage: stellar_bench_command DIR [N] [P]\n");
        return 2;
    }
    spawn = spawn_rate(n, p);
    command = command_rate(dir, n, p);
    printf("{\"jobs\":%d,\"parallelism\":%d,\"command_rate\":%.1f,"
           "\"spawn_rate\":%.1f,\"ratio\":%.3f}\n",
           n, p, command, spawn, command / spawn);
    return 0;
}
