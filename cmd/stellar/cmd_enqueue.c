/*
 * cmd_enqueue.c: `stellar enqueue`, `enqueueAt` and `enqueueIn`, with the
 * seed's argument order (api.tasks.enqueueAt(timestamp, taskName, args,
 * queue)).
 *
 * Arguments are checked before anything is opened: params must be a JSON
 * object, times whole numbers, a delay not negative (exit 2). With an app,
 * its tasks are loaded first, so the library refuses an unknown task (exit
 * 3) and fills in the task's own queue; without one, any name is accepted,
 * as a pure Resque client would.
 */
#include "cli.h"
#include "internal.h"

#include <string.h>

enum when_kind { NOW, AT, IN };

/* The queue the job went to: the one given, else the task's, else
 * "default" (what the library chose; it does not tell). */
static const char *queue_used(cli *c, const char *task, const char *queue,
                              json_t **tasks_out)
{
    json_t *tasks, *t;
    size_t i;

    if (queue) return queue;
    tasks = c->tasks_loaded ? stellar_tasks_json(c->h) : NULL;
    *tasks_out = tasks;
    json_array_foreach(tasks, i, t)
    {
        const char *q = json_string_value(json_object_get(t, "queue"));
        const char *n = json_string_value(json_object_get(t, "name"));
        if (q && n && strcmp(n, task) == 0) return q;
    }
    return "default";
}

static int enqueue(cli *c, enum when_kind kind, int64_t when, char **rest,
                   int nrest)
{
    const char *task = rest[0];
    const char *params = nrest > 1 ? rest[1] : NULL;
    const char *queue = nrest > 2 ? rest[2] : NULL;
    json_t *tasks = NULL;
    stellar_error e = {0};
    int64_t at;
    int rc;

    if (!*task) return cli_usage(c, "TASK is empty");
    if (queue && !*queue) return cli_usage(c, "QUEUE is empty");
    if ((rc = cli_check_params(c, &params)) != CLI_OK) return rc;
    if ((rc = cli_open(c, NULL, true)) != CLI_OK) return rc;

    switch (kind) {
    case NOW:
        at = st_now_ms();
        rc = stellar_enqueue(c->h, task, params, queue, &e);
        break;
    case AT:
        at = when;
        rc = stellar_enqueue_at(c->h, when, task, params, queue, &e);
        break;
    default:
        at = st_now_ms();
        rc = stellar_enqueue_in(c->h, when, task, params, queue, &e);
        if (rc >= 0) at += when; /* in range: no overflow */
        break;
    }
    if (rc < 0) return cli_error(c, rc, &e);

    queue = queue_used(c, task, queue, &tasks);
    if (c->json) {
        json_t *out = json_pack("{s:b, s:s, s:s, s:O, s:I}", "enqueued",
                                rc == STELLAR_OK, "task", task, "queue", queue,
                                "params", json_null(), "at", (json_int_t)at);
        if (out && params)
            json_object_set_new(out, "params",
                                st_json_parse(params, strlen(params), NULL));
        rc = out ? out_json(out) : cli_fail(c, "out of memory");
        json_decref(out);
    } else if (rc == STELLAR_VETOED) {
        printf("not enqueued: a plugin of %s said no\n", task);
        rc = CLI_OK;
    } else if (kind == NOW) {
        printf("enqueued %s on %s\n", task, queue);
        rc = CLI_OK;
    } else {
        char w[64];
        out_when(at, st_now_ms(), w);
        printf("enqueued %s on %s for %s\n", task, queue, w);
        rc = CLI_OK;
    }
    json_decref(tasks);
    return rc;
}

int cmd_enqueue(cli *c)
{
    return enqueue(c, NOW, 0, c->argv, c->argc);
}

int cmd_enqueue_at(cli *c)
{
    int64_t at;
    if (!cli_parse_int(c->argv[0], &at))
        return cli_usage(c,
                         "TIMESTAMP_MS must be a whole number of "
                         "milliseconds, not '%s'",
                         c->argv[0]);
    if (at < 0) return cli_usage(c, "TIMESTAMP_MS must not be negative");
    if (at > 0 && at < 100000000000LL) {
        char iso[32];
        out_iso(at, iso);
        fprintf(stderr,
                "stellar enqueueAt: note: %lld ms is %s; for "
                "seconds, multiply by 1000\n",
                (long long)at, iso);
    }
    return enqueue(c, AT, at, c->argv + 1, c->argc - 1);
}

int cmd_enqueue_in(cli *c)
{
    int64_t delay;
    if (!cli_parse_int(c->argv[0], &delay))
        return cli_usage(c,
                         "DELAY_MS must be a whole number of "
                         "milliseconds, not '%s'",
                         c->argv[0]);
    if (delay < 0)
        return cli_usage(c, "DELAY_MS must not be negative (got %lld)",
                         (long long)delay);
    return enqueue(c, IN, delay, c->argv + 1, c->argc - 1);
}
