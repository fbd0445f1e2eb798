/*
 * cmd_inspect.c: the read-only commands: tasks, stats, failed, queues,
 * length, workers, timestamps.
 *
 * Each asks the library for its JSON document; `--json` prints it as is,
 * otherwise it becomes a table (output.c) with times shown as ISO-8601 plus
 * "2m ago" / "in 3s".
 */
#include "cli.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* A JSON scalar as text, for a table cell. */
static const char *scalar(const json_t *v, char buf[64])
{
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, 64, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, 64, "%g", json_real_value(v));
        return buf;
    }
    if (json_is_true(v)) return "true";
    if (json_is_false(v)) return "false";
    return NULL;
}

/* Prints the document, or hands it to print_table. Takes ownership. */
static int show(cli *c, json_t *doc, int (*print_table)(cli *, json_t *))
{
    int rc = c->json ? out_json(doc) : print_table(c, doc);
    json_decref(doc);
    return rc;
}

static int print(out_table *t)
{
    if (!t) {
        fprintf(stderr, "stellar: out of memory\n");
        return CLI_FAIL;
    }
    out_table_print(t, stdout);
    out_table_free(t);
    return CLI_OK;
}

/* -------------------------------------------------------------- tasks --- */

static int tasks_table(cli *c, json_t *tasks)
{
    out_table *t =
        out_table_new(4, "NAME", "QUEUE", ">FREQUENCY", "DESCRIPTION");
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
        char freq[32];
        if (f > 0)
            snprintf(freq, sizeof freq, "%lldms", (long long)f);
        else
            snprintf(freq, sizeof freq, "-");
        out_table_row(t, json_string_value(json_object_get(task, "name")),
                      json_string_value(json_object_get(task, "queue")), freq,
                      json_string_value(json_object_get(task, "description")));
    }
    return print(t);
}

int cmd_tasks(cli *c)
{
    json_t *tasks;
    int rc;

    if ((rc = cli_app_find(c, true)) != CLI_OK) return rc;
    if ((rc = cli_open(c, NULL, true)) != CLI_OK) return rc;
    tasks = stellar_tasks_json(c->h);
    if (!tasks) return cli_fail(c, "out of memory");
    return show(c, tasks, tasks_table);
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
        return print(NULL);
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
        out_table_row(totals, key, scalar(v, buf));
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (i = 0; i < n; i++) {
        char *pk = st_asprintf("processed:%s", names[i]);
        char *fk = st_asprintf("failed:%s", names[i]);
        char pb[64], fb[64];
        const char *p = pk ? scalar(json_object_get(stats, pk), pb) : NULL;
        const char *f = fk ? scalar(json_object_get(stats, fk), fb) : NULL;
        out_table_row(workers, names[i], p ? p : "0", f ? f : "0");
        st_free(pk);
        st_free(fk);
    }
    print(totals);
    if (n) {
        printf("\n");
        print(workers);
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
    return show(c, stats, stats_table);
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
    return print(t);
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
    return show(c, list, failed_table);
}

/* ------------------------------------------------------ queues, length --- */

static int queues_table(cli *c, json_t *queues)
{
    out_table *t = out_table_new(2, "QUEUE", ">LENGTH");
    json_t *q;
    size_t i;

    if (json_array_size(queues) == 0) {
        out_table_free(t);
        printf("no queues\n");
        return CLI_OK;
    }
    json_array_foreach(queues, i, q)
    {
        stellar_error e = {0};
        int64_t n = 0;
        char buf[32];
        int rc = stellar_length(c->h, json_string_value(q), &n, &e);
        if (rc != STELLAR_OK) {
            out_table_free(t);
            return cli_error(c, rc, &e);
        }
        snprintf(buf, sizeof buf, "%lld", (long long)n);
        out_table_row(t, json_string_value(q), buf);
    }
    return print(t);
}

int cmd_queues(cli *c)
{
    stellar_error e = {0};
    json_t *queues = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_queues(c->h, &queues, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return show(c, queues, queues_table);
}

int cmd_length(cli *c)
{
    const char *queue = c->argv[0];
    stellar_error e = {0};
    json_t *queues = NULL, *q;
    int64_t n = 0;
    size_t i;
    bool known = false;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_queues(c->h, &queues, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    json_array_foreach(queues, i, q)
    {
        if (json_is_string(q) && strcmp(json_string_value(q), queue) == 0)
            known = true;
    }
    json_decref(queues);
    if (!known) return cli_notfound(c, "no queue named '%s'", queue);
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
    return print(t);
}

int cmd_workers(cli *c)
{
    stellar_error e = {0};
    json_t *workers = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_workers(c->h, &workers, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return show(c, workers, workers_table);
}

/* --------------------------------------------------------- timestamps --- */

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
    return print(t);
}

int cmd_timestamps(cli *c)
{
    stellar_error e = {0};
    json_t *stamps = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_timestamps(c->h, &stamps, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return show(c, stamps, timestamps_table);
}
