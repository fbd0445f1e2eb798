/*
 * cmd_inspect.c: the read-only commands: tasks, stats, failed, failedCount,
 * queues, length, queued, details, workers, workingOn, allWorkingOn, locks.
 * (The delayed-job listings are in cmd_delayed.c.)
 *
 * Each asks the library for its JSON document; `--json` prints it as is,
 * otherwise it becomes a table (output.c) with times shown as ISO-8601 plus
 * "2m ago" / "in 3s".
 */
#include "cli.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------------- tasks --- */

static int tasks_table(cli *c, json_t *tasks)
{
    out_table *t = out_table_new(6, "NAME", "KIND", "QUEUE", ">FREQUENCY",
                                 "COMMAND", "DESCRIPTION");
    json_t *task;
    size_t i;

    (void)c;
    if (json_array_size(tasks) == 0) {
        printf("no tasks (add one with 'stellar makeTask NAME "
               "--module=MODULE')\n");
        out_table_free(t);
        return CLI_OK;
    }
    json_array_foreach(tasks, i, task)
    {
        json_int_t f = json_integer_value(json_object_get(task, "frequency"));
        json_t *argv = json_object_get(task, "command"), *a;
        const char *kind = json_string_value(json_object_get(task, "kind"));
        st_buf cmd = {0};
        size_t j;
        char freq[32];
        /* A command task's argv, as a shell would take it back: words
         * with spaces or quotes in single quotes. */
        json_array_foreach(argv, j, a)
        {
            const char *w = json_string_value(a);
            if (j) st_buf_putc(&cmd, ' ');
            if (w && *w && !strpbrk(w, " \t'\"\\$")) {
                st_buf_puts(&cmd, w);
                continue;
            }
            st_buf_putc(&cmd, '\'');
            for (; w && *w; w++) {
                if (*w == '\'')
                    st_buf_puts(&cmd, "'\\''");
                else
                    st_buf_putc(&cmd, *w);
            }
            st_buf_putc(&cmd, '\'');
        }
        if (json_is_string(json_object_get(task, "cron")))
            snprintf(freq, sizeof freq, "cron %s",
                     json_string_value(json_object_get(task, "cron")));
        else if (f > 0)
            snprintf(freq, sizeof freq, "%lldms", (long long)f);
        else
            snprintf(freq, sizeof freq, "-");
        out_table_row(t, json_string_value(json_object_get(task, "name")),
                      kind ? kind : "c",
                      json_string_value(json_object_get(task, "queue")), freq,
                      cmd.p, /* NULL (a C task) prints as "-" */
                      json_string_value(json_object_get(task, "description")));
        st_buf_free(&cmd);
    }
    return out_print(t);
}

int cmd_tasks(cli *c)
{
    json_t *tasks;
    int rc;

    if ((rc = cli_app_find(c, true)) != CLI_OK) return rc;
    if ((rc = cli_open(c, NULL, true)) != CLI_OK) return rc;
    tasks = stellar_tasks_json(c->h);
    if (!tasks) return cli_fail(c, "out of memory");
    return out_show(c, tasks, tasks_table);
}

/* -------------------------------------------------------------- stats --- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Totals first, in the library's order; then one row per worker, from the
 * "processed:<worker>" and "failed:<worker>" counters. */
static int stats_table(cli *c, json_t *stats)
{
    out_table *totals = out_table_new(2, "STAT", ">VALUE");
    out_table *workers = out_table_new(3, "WORKER", ">PROCESSED", ">FAILED");
    const char **names = st_calloc(json_object_size(stats) + 1, sizeof *names);
    const char *key;
    json_t *v;
    size_t n = 0, i;
    char buf[64];

    (void)c;
    if (!totals || !workers || !names) {
        out_table_free(totals);
        out_table_free(workers);
        st_free(names);
        return out_print(NULL);
    }
    json_object_foreach(stats, key, v)
    {
        const char *colon = strchr(key, ':');
        if (colon && (strncmp(key, "processed:", 10) == 0 ||
                      strncmp(key, "failed:", 7) == 0)) {
            const char *w = colon + 1;
            for (i = 0; i < n && strcmp(names[i], w) != 0; i++)
                ;
            if (i == n) names[n++] = w;
            continue;
        }
        out_table_row(totals, key, out_scalar(v, buf));
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (i = 0; i < n; i++) {
        char *pk = st_asprintf("processed:%s", names[i]);
        char *fk = st_asprintf("failed:%s", names[i]);
        char pb[64], fb[64];
        const char *p = pk ? out_scalar(json_object_get(stats, pk), pb) : NULL;
        const char *f = fk ? out_scalar(json_object_get(stats, fk), fb) : NULL;
        out_table_row(workers, names[i], p ? p : "0", f ? f : "0");
        st_free(pk);
        st_free(fk);
    }
    out_print(totals);
    if (n) {
        printf("\n");
        out_print(workers);
    } else {
        out_table_free(workers);
    }
    st_free(names);
    return CLI_OK;
}

int cmd_stats(cli *c)
{
    stellar_error e = {0};
    json_t *stats = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_stats(c->h, &stats, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_show(c, stats, stats_table);
}

/* ------------------------------------------------------------- failed --- */

static int64_t failed_first; /* index of the first entry shown */

static int failed_table(cli *c, json_t *list)
{
    out_table *t =
        out_table_new(6, ">#", "FAILED AT", "QUEUE", "TASK", "WORKER", "ERROR");
    int64_t now = st_now_ms();
    json_t *f;
    size_t i;

    (void)c;
    if (json_array_size(list) == 0) {
        out_table_free(t);
        printf("no failed jobs\n");
        return CLI_OK;
    }
    out_table_set_limit(t, 5, 80);
    json_array_foreach(list, i, f)
    {
        json_t *payload = json_object_get(f, "payload");
        const char *ex = json_string_value(json_object_get(f, "exception"));
        const char *err = json_string_value(json_object_get(f, "error"));
        char idx[32], when[64], *msg;
        int64_t ms;

        snprintf(idx, sizeof idx, "%lld",
                 (long long)failed_first + (long long)i);
        if (out_parse_time(json_object_get(f, "failed_at"), &ms))
            out_when(ms, now, when);
        else
            snprintf(when, sizeof when, "%s",
                     json_string_value(json_object_get(f, "failed_at"))
                         ? json_string_value(json_object_get(f, "failed_at"))
                         : "-");
        msg = st_asprintf("%s: %s", ex ? ex : "Error", err ? err : "");
        out_table_row(t, idx, when,
                      json_string_value(json_object_get(f, "queue")),
                      json_string_value(json_object_get(payload, "class")),
                      json_string_value(json_object_get(f, "worker")), msg);
        st_free(msg);
    }
    return out_print(t);
}

int cmd_failed(cli *c)
{
    stellar_error e = {0};
    int64_t start = 0, stop = -1, count = 0;
    json_t *list = NULL;
    int rc;

    if (c->argc > 0 && !cli_parse_int(c->argv[0], &start))
        return cli_usage(c, "START must be a whole number, not '%s'",
                         c->argv[0]);
    if (c->argc > 1 && !cli_parse_int(c->argv[1], &stop))
        return cli_usage(c, "STOP must be a whole number, not '%s'",
                         c->argv[1]);
    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_failed_count(c->h, &count, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    failed_first = start < 0 ? count + start : start;
    if (failed_first < 0) failed_first = 0;
    if (c->argc > 0 && (start >= count || start < -count))
        return cli_notfound(c, "no failed job at index %lld (there %s %lld)",
                            (long long)start, count == 1 ? "is" : "are",
                            (long long)count);
    if ((rc = stellar_failed(c->h, start, stop, &list, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_show(c, list, failed_table);
}

/* ------------------------------------------------------ queues, length --- */

/* The LATENCY cell: how long the oldest job has waited ("12s"), "-" when
 * unknown (Redis) or the queue is empty. */
static const char *latency_cell(int64_t age_ms, char out[32])
{
    char rel[32];
    if (age_ms < 0) return NULL;
    out_rel(0, age_ms, rel); /* "12s ago" */
    snprintf(out, 32, "%.*s", (int)strcspn(rel, " "), rel);
    return out;
}

static int queues_table(cli *c, json_t *queues)
{
    out_table *t = out_table_new(4, "QUEUE", ">LENGTH", ">LATENCY", "PAUSED");
    json_t *q;
    size_t i;

    (void)c;
    if (json_array_size(queues) == 0) {
        out_table_free(t);
        printf("no queues\n");
        return CLI_OK;
    }
    json_array_foreach(queues, i, q)
    {
        json_t *lat = json_object_get(q, "latency_ms");
        json_t *until = json_object_get(q, "paused_until");
        char buf[64], cell[32], when[48];
        const char *paused = "no";

        if (json_is_true(json_object_get(q, "paused"))) {
            paused = "yes";
            if (json_is_integer(until)) {
                char rel[32];
                out_rel(json_integer_value(until), st_now_ms(), rel);
                snprintf(when, sizeof when, "until %s", rel); /* "in 3m" */
                paused = when;
            }
        }
        out_table_row(
            t, json_string_value(json_object_get(q, "queue")),
            out_scalar(json_object_get(q, "length"), buf),
            latency_cell(json_is_integer(lat) ? json_integer_value(lat) : -1,
                         cell),
            paused);
    }
    return out_print(t);
}

/* [{"queue", "length", "latency_ms" (null: unknown), "paused",
 *   "paused_until" (ms, or null: until resumed or not paused)}]. */
static int queues_doc(cli *c, json_t *names, json_t **out, stellar_error *e)
{
    json_t *pauses = NULL, *doc = json_array(), *q;
    size_t i;
    int rc;

    *out = NULL;
    if (!doc) return st_fail(e, STELLAR_ENOMEM, "out of memory");
    if ((rc = stellar_pauses(c->h, &pauses, e)) != STELLAR_OK) goto fail;
    json_array_foreach(names, i, q)
    {
        const char *name = json_string_value(q);
        json_t *p = json_object_get(pauses, name);
        int64_t n = 0, age = -1;

        if ((rc = stellar_length(c->h, name, &n, e)) != STELLAR_OK ||
            (rc = stellar_latency(c->h, name, &age, e)) != STELLAR_OK)
            goto fail;
        if (json_array_append_new(
                doc, json_pack("{s:s, s:I, s:o, s:b, s:O}", "queue", name,
                               "length", (json_int_t)n, "latency_ms",
                               age >= 0 ? json_integer(age) : json_null(),
                               "paused", p != NULL, "paused_until",
                               p ? p : json_null())) < 0) {
            rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
            goto fail;
        }
    }
    json_decref(pauses);
    *out = doc;
    return STELLAR_OK;
fail:
    json_decref(pauses);
    json_decref(doc);
    return rc;
}

int cmd_queues(cli *c)
{
    stellar_error e = {0};
    json_t *queues = NULL, *doc = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_queues(c->h, &queues, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    rc = queues_doc(c, queues, &doc, &e);
    json_decref(queues);
    if (rc != STELLAR_OK) return cli_error(c, rc, &e);
    return out_show(c, doc, queues_table);
}

int cmd_length(cli *c)
{
    const char *queue = c->argv[0];
    stellar_error e = {0};
    int64_t n = 0;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = cli_queue_exists(c, queue)) != CLI_OK) return rc;
    if ((rc = stellar_length(c->h, queue, &n, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    if (c->json) {
        json_t *doc =
            json_pack("{s:s, s:I}", "queue", queue, "length", (json_int_t)n);
        rc = doc ? out_json(doc) : cli_fail(c, "out of memory");
        json_decref(doc);
        return rc;
    }
    printf("%lld\n", (long long)n);
    return CLI_OK;
}

/* ------------------------------------------------------------ workers --- */

static int workers_table(cli *c, json_t *workers)
{
    out_table *t =
        out_table_new(5, "WORKER", "QUEUES", "STARTED", "PING", "WORKING ON");
    int64_t now = st_now_ms();
    const char *name;
    json_t *w;

    (void)c;
    if (json_object_size(workers) == 0) {
        out_table_free(t);
        printf("no workers\n");
        return CLI_OK;
    }
    json_object_foreach(workers, name, w)
    {
        json_t *on = json_object_get(w, "working_on");
        char started[32] = "-", ping[32] = "-", since[32] = "";
        char *doing = NULL;
        int64_t ms;

        if (out_parse_time(json_object_get(w, "started"), &ms))
            out_rel(ms, now, started);
        if (out_parse_time(json_object_get(w, "ping"), &ms))
            out_rel(ms, now, ping);
        if (json_is_object(on)) {
            json_t *payload = json_object_get(on, "payload"), *parsed = NULL;
            const char *klass;
            /* The payload may be the stored JSON text or its object. */
            if (json_is_string(payload))
                payload = parsed =
                    json_loads(json_string_value(payload), 0, NULL);
            klass = json_string_value(json_object_get(payload, "class"));
            const char *q = json_string_value(json_object_get(on, "queue"));
            if (out_parse_time(json_object_get(on, "run_at"), &ms))
                out_rel(ms, now, since);
            doing = st_asprintf("%s on %s%s%s", klass ? klass : "?",
                                q ? q : "?", *since ? ", started " : "", since);
            json_decref(parsed);
        }
        out_table_row(t, name, json_string_value(json_object_get(w, "queues")),
                      started, ping, doing ? doing : "idle");
        st_free(doing);
    }
    return out_print(t);
}

int cmd_workers(cli *c)
{
    stellar_error e = {0};
    json_t *workers = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_workers(c->h, &workers, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_show(c, workers, workers_table);
}

int cmd_failed_count(cli *c)
{
    stellar_error e = {0};
    int64_t n = 0;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_failed_count(c->h, &n, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    if (c->json) {
        /* As GET /api/failed/count answers. */
        json_t *doc = json_pack("{s:I}", "count", (json_int_t)n);
        rc = doc ? out_json(doc) : cli_fail(c, "out of memory");
        json_decref(doc);
        return rc;
    }
    printf("%lld\n", (long long)n);
    return CLI_OK;
}

/* ------------------------------------------------------------- queued --- */

static int64_t queued_first; /* index of the first job shown */

static int queued_table(cli *c, json_t *jobs)
{
    out_table *t = out_table_new(3, ">#", "TASK", "PARAMS");
    json_t *job;
    size_t i;

    if (json_array_size(jobs) == 0) {
        out_table_free(t);
        printf("no jobs in %s in that range\n", c->argv[0]);
        return CLI_OK;
    }
    out_table_set_limit(t, 2, 100);
    json_array_foreach(jobs, i, job)
    {
        const char *task, *queue;
        char idx[32], *params = out_payload(job, &task, &queue);
        snprintf(idx, sizeof idx, "%lld",
                 (long long)queued_first + (long long)i);
        out_table_row(t, idx, task, params);
        st_free(params);
    }
    return out_print(t);
}

int cmd_queued(cli *c)
{
    const char *queue = c->argv[0];
    stellar_error e = {0};
    int64_t start = 0, stop = -1, len = 0;
    json_t *jobs = NULL;
    int rc;

    if (c->argc > 1 && !cli_parse_int(c->argv[1], &start))
        return cli_usage(c, "START must be a whole number, not '%s'",
                         c->argv[1]);
    if (c->argc > 2 && !cli_parse_int(c->argv[2], &stop))
        return cli_usage(c, "STOP must be a whole number, not '%s'",
                         c->argv[2]);
    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = cli_queue_exists(c, queue)) != CLI_OK) return rc;
    if ((rc = stellar_length(c->h, queue, &len, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    queued_first = start < 0 ? len + start : start;
    if (queued_first < 0) queued_first = 0;
    if ((rc = stellar_queued(c->h, queue, start, stop, &jobs, &e)) !=
        STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_show(c, jobs, queued_table);
}

/* ------------------------------------------------------------ details --- */

static int details_table(cli *c, json_t *details)
{
    out_table *t = out_table_new(3, "QUEUE", ">LENGTH", ">LATENCY");
    json_t *queues = json_object_get(details, "queues"), *q;
    const char *name;
    char buf[64], lat[32];

    if (json_object_size(queues) == 0) {
        out_table_free(t);
        printf("no queues\n");
    } else {
        json_object_foreach(queues, name, q)
        {
            json_t *age = json_object_get(q, "latency_ms");
            out_table_row(
                t, name, out_scalar(json_object_get(q, "length"), buf),
                latency_cell(
                    json_is_integer(age) ? json_integer_value(age) : -1, lat));
        }
        out_print(t);
    }
    printf("\n");
    return workers_table(c, json_object_get(details, "workers"));
}

int cmd_details(cli *c)
{
    stellar_error e = {0};
    json_t *doc = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_details(c->h, &doc, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_show(c, doc, details_table);
}

/* ---------------------------------------------- workingOn, allWorkingOn --- */

/* One row of WORKER, TASK, QUEUE, STARTED, PARAMS for a working-on record
 * ({run_at, queue, payload}); anything else is an idle worker. */
static void working_row(out_table *t, const char *worker, const json_t *on,
                        int64_t now)
{
    const char *task, *queue;
    char when[64] = "-", *params;
    int64_t ms;

    if (!json_is_object(on)) {
        out_table_row(t, worker, "(idle)", NULL, NULL, NULL);
        return;
    }
    params = out_payload(json_object_get(on, "payload"), &task, &queue);
    if (out_parse_time(json_object_get(on, "run_at"), &ms))
        out_when(ms, now, when);
    if (json_string_value(json_object_get(on, "queue")))
        queue = json_string_value(json_object_get(on, "queue"));
    out_table_row(t, worker, task, queue, when, params);
    st_free(params);
}

static int working_table(cli *c, json_t *all)
{
    out_table *t =
        out_table_new(5, "WORKER", "TASK", "QUEUE", "STARTED", "PARAMS");
    int64_t now = st_now_ms();
    const char *name;
    json_t *on;

    (void)c;
    if (json_object_size(all) == 0) {
        out_table_free(t);
        printf("no workers\n");
        return CLI_OK;
    }
    json_object_foreach(all, name, on) working_row(t, name, on, now);
    return out_print(t);
}

static int working_on_table(cli *c, json_t *on)
{
    out_table *t;

    if (!json_is_object(on)) {
        printf("%s is idle\n", c->argv[0]);
        return CLI_OK;
    }
    t = out_table_new(5, "WORKER", "TASK", "QUEUE", "STARTED", "PARAMS");
    working_row(t, c->argv[0], on, st_now_ms());
    return out_print(t);
}

int cmd_working_on(cli *c)
{
    stellar_error e = {0};
    json_t *on = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    rc = stellar_working_on(c->h, c->argv[0], &on, &e);
    if (rc == STELLAR_ENOTFOUND)
        return cli_notfound(c,
                            "no worker named '%s' (see 'stellar workers' "
                            "for the names)",
                            c->argv[0]);
    if (rc != STELLAR_OK) return cli_error(c, rc, &e);
    return out_show(c, on, working_on_table);
}

int cmd_all_working_on(cli *c)
{
    stellar_error e = {0};
    json_t *all = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_all_working_on(c->h, &all, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_show(c, all, working_table);
}

/* -------------------------------------------------------------- locks --- */

static int locks_table(cli *c, json_t *locks)
{
    out_table *t = out_table_new(3, "LOCK", "VALUE", "EXPIRES");
    int64_t now = st_now_ms();
    const char *name;
    json_t *l;

    (void)c;
    if (json_object_size(locks) == 0) {
        out_table_free(t);
        printf("no locks\n");
        return CLI_OK;
    }
    out_table_set_limit(t, 0, 100);
    json_object_foreach(locks, name, l)
    {
        json_t *exp = json_object_get(l, "expires");
        char when[64] = "never", buf[64];
        if (json_is_integer(exp)) out_when(json_integer_value(exp), now, when);
        out_table_row(t, name, out_scalar(json_object_get(l, "value"), buf),
                      when);
    }
    return out_print(t);
}

int cmd_locks(cli *c)
{
    stellar_error e = {0};
    json_t *locks = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_locks(c->h, &locks, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_show(c, locks, locks_table);
}
