/*
 * cmd_delayed.c: the delayed jobs: timestamps, delayedAt, allDelayed and
 * scheduledAt list them; delDelayed, delDelayedAt (the guide's
 * delDelayesAt) and delAllDelayed remove them.
 *
 * Timestamps are milliseconds since the epoch on the command line and in
 * JSON, as everywhere in the API. The Redis layout keeps delayed jobs by
 * second, so there a timestamp names its whole second.
 *
 * A delayed job is named by queue + task + params, matched as the whole
 * payload (member order counts). A task that is neither one of the app's
 * nor the class of any delayed job is a typo, not a job that ran already:
 * that is "not found" (exit 3), checked before anything is removed.
 */
#include "cli.h"
#include "internal.h"

#include <string.h>

/* A TS_MS argument: a whole number >= 0. */
static int parse_ts(cli *c, const char *s, int64_t *ts)
{
    if (!cli_parse_int(s, ts))
        return cli_usage(c,
                         "TS_MS must be a whole number of milliseconds "
                         "since the epoch, not '%s'",
                         s);
    if (*ts < 0) return cli_usage(c, "TS_MS must not be negative");
    return CLI_OK;
}

/* ------------------------------------------------------- timestamps --- */

static int timestamps_table(cli *c, json_t *stamps)
{
    out_table *t = out_table_new(2, ">TIMESTAMP_MS", "WHEN");
    int64_t now = st_now_ms();
    json_t *ts;
    size_t i;

    (void)c;
    if (json_array_size(stamps) == 0) {
        out_table_free(t);
        printf("no delayed jobs\n");
        return CLI_OK;
    }
    json_array_foreach(stamps, i, ts)
    {
        char raw[32], when[64];
        int64_t ms = (int64_t)json_number_value(ts);
        snprintf(raw, sizeof raw, "%lld", (long long)ms);
        out_when(ms, now, when);
        out_table_row(t, raw, when);
    }
    return out_print(t);
}

int cmd_timestamps(cli *c)
{
    stellar_error e = {0};
    json_t *stamps = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_timestamps(c->h, &stamps, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_show(c, stamps, timestamps_table);
}

/* -------------------------------------------- delayedAt, allDelayed --- */

/* Adds one row per job of a timestamp: TIMESTAMP_MS, WHEN, QUEUE, TASK,
 * PARAMS. */
static void delayed_rows(out_table *t, int64_t ms, const json_t *jobs,
                         int64_t now)
{
    json_t *job;
    size_t i;

    json_array_foreach(jobs, i, job)
    {
        const char *task, *queue;
        char raw[32], when[64], *params = out_payload(job, &task, &queue);
        snprintf(raw, sizeof raw, "%lld", (long long)ms);
        out_when(ms, now, when);
        out_table_row(t, raw, when, queue, task, params);
        st_free(params);
    }
}

static out_table *delayed_table_new(void)
{
    out_table *t =
        out_table_new(5, ">TIMESTAMP_MS", "WHEN", "QUEUE", "TASK", "PARAMS");
    out_table_set_limit(t, 4, 100);
    return t;
}

static int delayed_at_table(cli *c, json_t *jobs)
{
    out_table *t;
    int64_t ts = 0;

    if (json_array_size(jobs) == 0) {
        printf("no delayed jobs at %s\n", c->argv[0]);
        return CLI_OK;
    }
    cli_parse_int(c->argv[0], &ts);
    t = delayed_table_new();
    delayed_rows(t, ts, jobs, st_now_ms());
    return out_print(t);
}

int cmd_delayed_at(cli *c)
{
    stellar_error e = {0};
    json_t *jobs = NULL;
    int64_t ts;
    int rc;

    if ((rc = parse_ts(c, c->argv[0], &ts)) != CLI_OK) return rc;
    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_delayed_at(c->h, ts, &jobs, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_show(c, jobs, delayed_at_table);
}

static int all_delayed_table(cli *c, json_t *all)
{
    out_table *t;
    int64_t now = st_now_ms();
    const char *key;
    json_t *jobs;

    (void)c;
    if (json_object_size(all) == 0) {
        printf("no delayed jobs\n");
        return CLI_OK;
    }
    t = delayed_table_new();
    json_object_foreach(all, key, jobs)
    {
        int64_t ms = 0;
        cli_parse_int(key, &ms);
        delayed_rows(t, ms, jobs, now);
    }
    return out_print(t);
}

int cmd_all_delayed(cli *c)
{
    stellar_error e = {0};
    json_t *all = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_all_delayed(c->h, &all, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_show(c, all, all_delayed_table);
}

/* ------------------------------------------ scheduledAt, delDelayed --- */

/* Checks QUEUE TASK [PARAMS], opens the handle (with the app's tasks, to
 * know their names) and refuses a task that is unknown. */
static int named_delayed_job(cli *c, const char **queue, const char **task,
                             const char **params)
{
    stellar_error e = {0};
    json_t *all = NULL, *jobs = NULL, *v;
    const char *key;
    bool known;
    int rc;

    *queue = c->argv[0];
    *task = c->argv[1];
    *params = c->argc > 2 ? c->argv[2] : NULL;
    if (!**queue) return cli_usage(c, "QUEUE is empty");
    if (!**task) return cli_usage(c, "TASK is empty");
    if ((rc = cli_check_params(c, params)) != CLI_OK) return rc;
    if ((rc = cli_open(c, NULL, true)) != CLI_OK) return rc;
    if ((rc = stellar_all_delayed(c->h, &all, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    jobs = json_array();
    json_object_foreach(all, key, v) json_array_extend(jobs, v);
    known = cli_task_known(c, *task, jobs);
    json_decref(jobs);
    json_decref(all);
    if (!known)
        return cli_notfound(c,
                            "unknown task '%s': not a task of the app and "
                            "no delayed job of it",
                            *task);
    return CLI_OK;
}

static int stamps_table(cli *c, json_t *stamps)
{
    if (json_array_size(stamps) == 0) {
        printf("%s is not delayed on %s with these params\n", c->argv[1],
               c->argv[0]);
        return CLI_OK;
    }
    return timestamps_table(c, stamps);
}

int cmd_scheduled_at(cli *c)
{
    const char *queue, *task, *params;
    stellar_error e = {0};
    json_t *stamps = NULL;
    int rc;

    if ((rc = named_delayed_job(c, &queue, &task, &params)) != CLI_OK)
        return rc;
    rc = stellar_scheduled_at(c->h, queue, task, params, &stamps, &e);
    if (rc != STELLAR_OK) return cli_error(c, rc, &e);
    return out_show(c, stamps, stamps_table);
}

static int del_delayed_table(cli *c, json_t *stamps)
{
    size_t n = json_array_size(stamps);
    if (n == 0) {
        printf("no delayed job of %s on %s with these params (params must "
               "be given as enqueued, member order included)\n",
               c->argv[1], c->argv[0]);
        return CLI_OK;
    }
    printf("removed %s from %zu timestamp%s:\n", c->argv[1], n,
           n == 1 ? "" : "s");
    return timestamps_table(c, stamps);
}

int cmd_del_delayed(cli *c)
{
    const char *queue, *task, *params;
    stellar_error e = {0};
    json_t *stamps = NULL;
    int rc;

    if ((rc = named_delayed_job(c, &queue, &task, &params)) != CLI_OK)
        return rc;
    rc = stellar_del_delayed(c->h, queue, task, params, &stamps, &e);
    if (rc != STELLAR_OK) return cli_error(c, rc, &e);
    return out_show(c, stamps, del_delayed_table);
}

/* ------------------------------------- delDelayedAt, delAllDelayed --- */

/* Prints {"removed": n} (as the HTTP API answers) or a sentence. */
static int removed(cli *c, int64_t n, const char *what)
{
    if (c->json) {
        json_t *doc = json_pack("{s:I}", "removed", (json_int_t)n);
        int rc = doc ? out_json(doc) : cli_fail(c, "out of memory");
        json_decref(doc);
        return rc;
    }
    printf("removed %lld delayed job%s%s\n", (long long)n, n == 1 ? "" : "s",
           what);
    return CLI_OK;
}

int cmd_del_delayed_at(cli *c)
{
    stellar_error e = {0};
    int64_t ts, n = 0;
    char iso[32], what[64];
    int rc;

    if ((rc = parse_ts(c, c->argv[0], &ts)) != CLI_OK) return rc;
    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_del_delayed_at(c->h, ts, &n, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    out_iso(ts, iso);
    if (n == 0)
        return cli_notfound(c, "no delayed jobs at %lld (%s)", (long long)ts,
                            iso);
    snprintf(what, sizeof what, " at %s", iso);
    return removed(c, n, what);
}

int cmd_del_all_delayed(cli *c)
{
    stellar_error e = {0};
    int64_t n = 0;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_del_all_delayed(c->h, &n, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return removed(c, n, "");
}
