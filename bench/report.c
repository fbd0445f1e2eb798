/*
 * report.c: `stellar_bench report RESULTS OUT`: reads run.sh's results
 * (one JSON object a line: {"sys", "test", "res": {...}}), takes the median
 * of each figure over the runs, prints a Markdown table with every Stellar
 * figure as a ratio to node-resque's from the same run, and writes the
 * medians and ratios as JSON.
 */
#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bench_report(const char *results, const char *out_json);

/* One figure of the table. */
typedef struct row {
    const char *label;
    const char *test, *field; /* in res */
    const char *node_label;   /* what node-resque ran instead, or NULL */
    int kind;                 /* K_RATE, K_MS, K_MIB */
} row;

enum { K_RATE, K_MS, K_MIB };

static const row rows[] = {
    {"enqueue, one at a time", "enqueue1", "rate", NULL, K_RATE},
    {"enqueue, 8 threads", "enqueue8", "rate", "8 in flight", K_RATE},
    {"enqueue, batches of 1000", "batch", "rate", "1000 in flight", K_RATE},
    {"process, 1 TaskProcessor", "process1", "rate", "1 worker", K_RATE},
    {"process, 4 TaskProcessors", "process4", "rate", "4 workers", K_RATE},
    {"process, 8 TaskProcessors", "process8", "rate", "8 workers", K_RATE},
    {"process, 8 TaskProcessors, a limit that never binds", "process8lim",
     "rate", NULL, K_RATE},
    {"enqueue-to-start latency p50", "latency", "p50_ms", NULL, K_MS},
    {"enqueue-to-start latency p99", "latency", "p99_ms", NULL, K_MS},
    {"delayed job start, off its time, p50", "delayed", "p50_ms", NULL, K_MS},
    {"delayed job start, off its time, p99", "delayed", "p99_ms", NULL, K_MS},
    {"RSS of `stellar run`, 8 processors, idle", "rss", "idle_mib", NULL,
     K_MIB},
    {"RSS of `stellar run`, 8 processors, peak under load", "rss", "peak_mib",
     NULL, K_MIB},
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of field over every result line of sys/test; NAN if none. */
static double median(json_t *all, const char *sys, const char *test,
                     const char *field, int *nruns)
{
    double v[64];
    size_t i, n = 0;
    json_t *line;

    json_array_foreach(all, i, line)
    {
        json_t *x;
        if (strcmp(json_string_value(json_object_get(line, "sys")), sys) ||
            strcmp(json_string_value(json_object_get(line, "test")), test))
            continue;
        x = json_object_get(json_object_get(line, "res"), field);
        if (json_is_number(x) && n < 64) v[n++] = json_number_value(x);
    }
    if (nruns) *nruns = (int)n;
    if (n == 0) return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void fmt(char *buf, size_t n, double v, int kind)
{
    if (isnan(v))
        snprintf(buf, n, "n/a");
    else if (kind == K_RATE)
        snprintf(buf, n, v >= 10000 ? "%.1fk/s" : "%.2fk/s", v / 1000);
    else if (kind == K_MS)
        snprintf(buf, n, v < 10 ? "%.2f ms" : "%.0f ms", v);
    else
        snprintf(buf, n, "%.1f MiB", v);
}

static void fmt_ratio(char *buf, size_t n, double a, double b)
{
    double r = a / b;
    if (isnan(a) || isnan(b) || b == 0)
        snprintf(buf, n, "n/a");
    else
        snprintf(buf, n, r >= 10 ? "%.0fx" : r >= 0.1 ? "%.2fx" : "%.3fx", r);
}

static json_t *num(double v)
{
    return isnan(v) ? json_null() : json_real(round(v * 1000) / 1000);
}

int bench_report(const char *results, const char *out_json)
{
    static const char *const sys[] = {"sqlite", "redis", "node"};
    json_t *all = json_array(), *out = json_object(), *med = json_object(),
           *ratios = json_object(), *limits = json_object(), *meta;
    char line[65536], a[32], b[32], c[32], ra[32], rb[32];
    FILE *f = fopen(results, "r");
    size_t i, s;
    int runs = 0;
    double lim_lpush, lim_lpushp, lim_lua, lim_tx1, lim_tx100, lim_txp, v;

    if (!f) {
        perror(results);
        return 1;
    }
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (json_is_object(j))
            json_array_append_new(all, j);
        else
            json_decref(j);
    }
    fclose(f);
    meta = json_object();
    for (i = 0; i < json_array_size(all); i++) {
        json_t *l = json_array_get(all, i);
        if (strcmp(json_string_value(json_object_get(l, "sys")), "meta") == 0)
            json_object_update(meta, json_object_get(l, "res"));
    }
    median(all, "sqlite", "enqueue1", "rate", &runs);

    printf("\nStellar %s vs node-resque %s, Redis %s, %s, %s CPUs, %s; "
           "medians of %d run(s).\n\n",
           json_string_value(json_object_get(meta, "stellar")),
           json_string_value(json_object_get(meta, "node_resque")),
           json_string_value(json_object_get(meta, "redis")),
           json_string_value(json_object_get(meta, "os")),
           json_string_value(json_object_get(meta, "cpus")),
           json_string_value(json_object_get(meta, "date")), runs);
    printf("| no-op jobs | Stellar, SQLite | x node-resque | Stellar, Redis "
           "| x node-resque | node-resque 9 (Redis) |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        double m[3];
        char key[96];
        for (s = 0; s < 3; s++) {
            json_t *o;
            m[s] = median(all, sys[s], r->test, r->field, NULL);
            snprintf(key, sizeof key, "%s.%s", r->test, r->field);
            if (!(o = json_object_get(med, sys[s])))
                json_object_set_new(med, sys[s], o = json_object());
            json_object_set_new(o, key, num(m[s]));
        }
        fmt(a, sizeof a, m[0], r->kind);
        fmt(b, sizeof b, m[1], r->kind);
        fmt(c, sizeof c, m[2], r->kind);
        fmt_ratio(ra, sizeof ra, m[0], m[2]);
        fmt_ratio(rb, sizeof rb, m[1], m[2]);
        snprintf(key, sizeof key, "%s.%s", r->test, r->field);
        json_object_set_new(ratios, key,
                            json_pack("{s:o, s:o}", "sqlite", num(m[0] / m[2]),
                                      "redis", num(m[1] / m[2])));
        printf("| %s | %s | %s | %s | %s | %s%s%s%s |\n", r->label, a, ra, b,
               rb, c, r->node_label ? " (" : "",
               r->node_label ? r->node_label : "", r->node_label ? ")" : "");
    }

    lim_lpush = median(all, "limit", "lpush", "rate", NULL);
    lim_lpushp = median(all, "limit", "lpush_pipelined", "rate", NULL);
    lim_lua = median(all, "limit", "lua", "rate", NULL);
    lim_tx1 = median(all, "limit", "sqlite", "tx1", NULL);
    lim_tx100 = median(all, "limit", "sqlite", "tx100", NULL);
    lim_txp = median(all, "limit", "sqlite", "process", NULL);
    json_object_set_new(limits, "redis_lpush_8conns", num(lim_lpush));
    json_object_set_new(limits, "redis_lpush_pipelined_8conns",
                        num(lim_lpushp));
    json_object_set_new(limits, "redis_lua_bookkeeping_8conns", num(lim_lua));
    json_object_set_new(limits, "sqlite_tx_per_job", num(lim_tx1));
    json_object_set_new(limits, "sqlite_100_jobs_per_tx", num(lim_tx100));
    json_object_set_new(limits, "sqlite_processing_tx_per_job", num(lim_txp));

    printf("\n| the limit | enqueue, one at a time | enqueue, bulk "
           "| process |\n|---|---:|---:|---:|\n");
    fmt(a, sizeof a, lim_lpush, K_RATE);
    fmt(b, sizeof b, lim_lpushp, K_RATE);
    fmt(c, sizeof c, lim_lua, K_RATE);
    printf("| Redis alone, 8 connections (redis-benchmark) | LPUSH %s "
           "| LPUSH, 100 pipelined, %s | the per-job bookkeeping as one Lua "
           "call: %s |\n",
           a, b, c);
    fmt(a, sizeof a, lim_tx1, K_RATE);
    fmt(b, sizeof b, lim_tx100, K_RATE);
    fmt(c, sizeof c, lim_txp, K_RATE);
    printf("| SQLite alone, one thread (WAL, synchronous=NORMAL) | one "
           "transaction per job: %s | 100 jobs per transaction: %s | "
           "take + record + count, one transaction per job: %s |\n",
           a, b, c);

    v = median(all, "redis", "process8", "rate", NULL);
    fmt_ratio(a, sizeof a, v, lim_lua);
    v = median(all, "sqlite", "process8", "rate", NULL);
    fmt_ratio(b, sizeof b, v, lim_txp);
    printf("\nProcessing with 8 TaskProcessors is %s the Redis limit and %s "
           "the SQLite limit.\n",
           a, b);
    json_object_set_new(
        ratios, "redis.process8_vs_limit",
        num(median(all, "redis", "process8", "rate", NULL) / lim_lua));
    json_object_set_new(
        ratios, "sqlite.process8_vs_limit",
        num(median(all, "sqlite", "process8", "rate", NULL) / lim_txp));

    /* Issue 15: what a limit that never binds costs the processing. */
    fmt_ratio(a, sizeof a, median(all, "redis", "process8lim", "rate", NULL),
              median(all, "redis", "process8", "rate", NULL));
    fmt_ratio(b, sizeof b, median(all, "sqlite", "process8lim", "rate", NULL),
              median(all, "sqlite", "process8", "rate", NULL));
    printf("\nWith a concurrency limit that never binds, processing with 8 "
           "TaskProcessors is %s the unlimited rate on Redis and %s on "
           "SQLite (issue 15 asks for 0.8x or more).\n",
           a, b);
    json_object_set_new(ratios, "redis.process8lim_vs_process8",
                        num(median(all, "redis", "process8lim", "rate", NULL) /
                            median(all, "redis", "process8", "rate", NULL)));
    json_object_set_new(ratios, "sqlite.process8lim_vs_process8",
                        num(median(all, "sqlite", "process8lim", "rate", NULL) /
                            median(all, "sqlite", "process8", "rate", NULL)));

    json_object_set_new(out, "meta", meta);
    json_object_set_new(out, "runs", json_integer(runs));
    json_object_set_new(out, "medians", med);
    json_object_set_new(out, "ratios_to_node_resque", ratios);
    json_object_set_new(out, "limits", limits);
    json_object_set_new(out, "raw", all);
    if (json_dump_file(out, out_json,
                       JSON_INDENT(2) | JSON_SORT_KEYS |
                           JSON_REAL_PRECISION(9))) {
        fprintf(stderr, "stellar_bench: cannot write %s\n", out_json);
        json_decref(out);
        return 1;
    }
    printf("\n(written to %s)\n", out_json);
    json_decref(out);
    return 0;
}
