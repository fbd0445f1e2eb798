/*
 * examples/embed: Stellar inside a C program of its own, no daemon.
 *
 * The program registers a task, starts TaskProcessors and the scheduler in
 * background threads (stellar_start() returns at once) and goes on with its
 * own work: it sums 1..N itself while it enqueues one job per number, plus
 * one delayed job. The task adds each job's number to a counter. Then main
 * waits, with a deadline, until every job has run, checks that both sums
 * agree, and stops the processors gracefully.
 *
 *   embed [SQLITE_PATH]          (default ./embed.db)
 *
 * Exit code 0 when all of that worked, 1 otherwise, 2 on bad usage.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stellar.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JOBS        50
#define DELAYED_N   1000 /* the delayed job's number */
#define DELAY_MS    200
#define DEADLINE_MS 20000 /* how long main waits for the jobs */

/* Shared between main and the task (through stellar_api_userdata()). */
struct state {
    char run_id[64];  /* marks this run's jobs in a reused file */
    atomic_llong sum; /* of the numbers the task saw */
    atomic_int done;  /* jobs of this run that ran */
};

static int add_number(stellar_api *api, const json_t *params,
                      stellar_next *next)
{
    struct state *s = stellar_api_userdata(api);
    const char *run = json_string_value(json_object_get(params, "run"));
    const json_t *n = json_object_get(params, "n");

    if (!json_is_integer(n))
        return stellar_fail(next, "params.n must be an integer");
    if (!run || strcmp(run, s->run_id) != 0)
        return STELLAR_OK; /* left over from an earlier, interrupted run */
    atomic_fetch_add(&s->sum, (long long)json_integer_value(n));
    atomic_fetch_add(&s->done, 1);
    return STELLAR_OK;
}

static const stellar_task add_task = {
    .name = "addNumber",
    .description = "Adds params.n to the program's counter",
    .queue = "embed",
    .frequency = 0,
    .plugins = NULL,
    .plugin_options = NULL,
    .run = add_number,
};

static void log_stderr(void *ud, int level, const char *msg)
{
    (void)ud;
    fprintf(stderr, "embed: %s: %s\n",
            level >= STELLAR_LOG_ERROR  ? "error"
            : level >= STELLAR_LOG_WARN ? "warning"
                                        : "info",
            msg);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int main(int argc, char **argv)
{
    static const char *const queues[] = {"embed", NULL};
    static struct state s;
    const char *path = argc > 1 ? argv[1] : "./embed.db";
    char url[4096], params[256];
    stellar_options o = {0};
    stellar_error e = {0};
    stellar *h = NULL;
    long long own_sum = 0;
    int64_t deadline;
    int i, ok = 0;

    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: embed [SQLITE_PATH]\n");
        return 2;
    }
    snprintf(s.run_id, sizeof s.run_id, "%ld-%lld", (long)getpid(),
             (long long)now_ms());
    snprintf(url, sizeof url, "sqlite:%s", path);

    o.url = url;
    o.log_fn = log_stderr;
    o.log_level = STELLAR_LOG_WARN;
    o.userdata = &s;
    o.processors = 2;
    o.queues = queues;
    o.poll_ms = 20;
    if (stellar_open(&h, &o, &e) != STELLAR_OK ||
        stellar_task_register(h, &add_task, &e) != STELLAR_OK ||
        stellar_start(h, &e) != STELLAR_OK) {
        fprintf(stderr, "embed: %s\n", e.msg);
        stellar_close(h);
        return 1;
    }

    /* The program's own work, while its jobs run in the background. */
    for (i = 1; i <= JOBS; i++) {
        own_sum += i;
        snprintf(params, sizeof params, "{\"run\":\"%s\",\"n\":%d}", s.run_id,
                 i);
        if (stellar_enqueue(h, "addNumber", params, NULL, &e) < 0) {
            fprintf(stderr, "embed: enqueue: %s\n", e.msg);
            goto done;
        }
    }
    own_sum += DELAYED_N;
    snprintf(params, sizeof params, "{\"run\":\"%s\",\"n\":%d}", s.run_id,
             DELAYED_N);
    if (stellar_enqueue_in(h, DELAY_MS, "addNumber", params, NULL, &e) < 0) {
        fprintf(stderr, "embed: enqueueIn: %s\n", e.msg);
        goto done;
    }

    deadline = now_ms() + DEADLINE_MS;
    while (atomic_load(&s.done) < JOBS + 1 && now_ms() < deadline)
        sleep_ms(10);
    printf("embed: %d of %d jobs ran in the background; sum %lld, "
           "expected %lld\n",
           atomic_load(&s.done), JOBS + 1, (long long)atomic_load(&s.sum),
           own_sum);
    ok = atomic_load(&s.done) == JOBS + 1 && atomic_load(&s.sum) == own_sum;
done:
    stellar_stop(h, -1);
    stellar_close(h);
    return ok ? 0 : 1;
}
