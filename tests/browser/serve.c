/*
 * serve.c: a Stellar server for the browser tests (tests/browser/).
 *
 *     stellar_http_serve PORT BACKEND_URL [TOKEN]
 *
 * Opens the backend, registers a few tasks, starts two processors (on the
 * queues "critical" and "default" only, so that jobs put anywhere else stay
 * queued for the dashboard to show) and the HTTP server on 127.0.0.1:PORT
 * (0: a free port). Prints "listening on http://127.0.0.1:<port>/" once it
 * serves, and runs until SIGTERM or SIGINT.
 *
 * Tasks:
 *   echo   succeeds
 *   flaky  fails on its first run for given params, succeeds after (so a
 *          retried job runs and leaves the failed list)
 *   boom   always fails; the error repeats the params
 *   slow   succeeds after params.ms milliseconds (default 3000)
 *   tick   periodic, every minute
 *   locked echo with the queueLock plugin, on the queue "parked" (no
 *          processor takes it, so its lock stays for the Locks page)
 */
#include "stellar.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char *seen[256];
static int nseen;

static int run_echo(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api, (void)params, (void)next;
    return STELLAR_OK;
}

static int run_flaky(stellar_api *api, const json_t *params, stellar_next *next)
{
    char *key = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    bool first = true;
    int i;

    (void)api;
    pthread_mutex_lock(&seen_mu);
    for (i = 0; key && i < nseen; i++)
        if (strcmp(seen[i], key) == 0) first = false;
    if (first && key && nseen < 256) {
        seen[nseen++] = key;
        key = NULL;
    }
    pthread_mutex_unlock(&seen_mu);
    free(key);
    if (first) return stellar_fail(next, "flaky: the first try fails");
    return STELLAR_OK;
}

static int run_boom(stellar_api *api, const json_t *params, stellar_next *next)
{
    char *p = json_dumps(params, JSON_COMPACT);
    int rc;
    (void)api;
    rc = stellar_fail(next, "boom with %s", p ? p : "{}");
    free(p);
    return rc;
}

static int run_slow(stellar_api *api, const json_t *params, stellar_next *next)
{
    json_t *ms = json_object_get(params, "ms");
    long long left = json_is_integer(ms) ? json_integer_value(ms) : 3000;
    (void)next;
    while (left > 0 && !stellar_should_stop(api)) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        left -= 50;
    }
    return STELLAR_OK;
}

static void log_stderr(void *ud, int level, const char *msg)
{
    (void)ud;
    fprintf(stderr, "serve: [%d] %s\n", level, msg);
}

int main(int argc, char **argv)
{
    static const char *const queues[] = {"critical", "default", NULL};
    static const char *const lock_plugins[] = {"queueLock", NULL};
    const stellar_task tasks[] = {
        {.name = "echo", .description = "succeeds", .run = run_echo},
        {.name = "flaky",
         .description = "fails once per params, then succeeds",
         .run = run_flaky},
        {.name = "boom", .description = "always fails", .run = run_boom},
        {.name = "slow", .description = "takes params.ms", .run = run_slow},
        {.name = "tick",
         .description = "runs every minute",
         .frequency = 60000,
         .run = run_echo},
        {.name = "locked",
         .description = "holds a queue lock while queued",
         .queue = "parked",
         .plugins = lock_plugins,
         .run = run_echo},
    };
    const stellar_task nightly = {.name = "nightly",
                                  .description = "runs at 03:00 in New York",
                                  .cron = "0 3 * * *",
                                  .timezone = "America/New_York",
                                  .run = run_echo};
    const stellar_schedule every_minute = {.name = "every-minute",
                                           .cron = "* * * * *",
                                           .timezone = "UTC",
                                           .task = "echo",
                                           .params = "{\"from\":\"cron\"}"};
    stellar_options o = {0};
    stellar_http_options ho = {0};
    stellar_error e = {0};
    stellar_http *srv = NULL;
    stellar *h = NULL;
    char listen[64];
    sigset_t set;
    int sig = 0;
    size_t i;

    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s PORT BACKEND_URL [TOKEN]\n", argv[0]);
        return 2;
    }
    /* Signals go to sigwait() below, in no other thread. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    o.url = argv[2];
    o.processors = 2;
    o.queues = queues;
    o.poll_ms = 50;
    o.name = "serve";
    if (getenv("STELLAR_SERVE_VERBOSE")) {
        o.log_fn = log_stderr;
        o.log_level = STELLAR_LOG_DEBUG;
    }
    if (stellar_open(&h, &o, &e)) goto fail;
    for (i = 0; i < sizeof tasks / sizeof tasks[0]; i++)
        if (stellar_task_register(h, &tasks[i], &e)) goto fail;
    /* A cron task and a schedule, for the Tasks page's Schedules. */
    if (stellar_task_register(h, &nightly, &e) ||
        stellar_schedule_add(h, &every_minute, &e))
        goto fail;
    if (stellar_start(h, &e)) goto fail;
    snprintf(listen, sizeof listen, "127.0.0.1:%s", argv[1]);
    ho.listen = listen;
    ho.token = argc == 4 ? argv[3] : NULL;
    if (stellar_http_start(h, &ho, &srv, &e)) goto fail;
    printf("listening on http://127.0.0.1:%d/\n", stellar_http_port(srv));
    fflush(stdout);

    sigwait(&set, &sig);
    stellar_http_stop(srv);
    stellar_stop(h, 5000);
    stellar_close(h);
    return 0;

fail:
    fprintf(stderr, "serve: %s\n", e.msg);
    stellar_http_stop(srv);
    stellar_close(h);
    return 1;
}
