/*
 * prom.c: GET /metrics in the Prometheus text exposition format 0.0.4.
 *
 * Two kinds of series:
 * - this process's counters and histograms (metrics.c): jobs processed,
 *   failed and dropped by task and queue, job durations by task, scheduler
 *   lag, recovered jobs;
 * - gauges read from the backend at scrape time, the same for every
 *   process of a cluster: queue depth and latency, workers alive and busy,
 *   failed jobs, the last and next fire time of each cron schedule.
 *   failed jobs, paused queues, and the permits each limit has in use
 *   (issue 15).
 *   If the backend cannot be read, stellar_backend_up is 0 and those gauges
 *   are left out (the scrape still succeeds, so the counters are kept).
 *
 * Queue latency (the age of a queue's oldest job) is exported where the
 * backend knows it (SQLite); not on Redis: a Resque payload carries no
 * enqueue time, and inventing one would break the byte layout other Resque
 * clients read.
 */
#include "http/http.h"

#include <string.h>

static void gauge_line(st_buf *b, const char *name, const char *label,
                       const char *value, int64_t v)
{
    st_buf_puts(b, name);
    if (label) {
        st_buf_printf(b, "{%s=\"", label);
        st_prom_label_value(b, value);
        st_buf_puts(b, "\"}");
    }
    st_buf_printf(b, " %lld\n", (long long)v);
}

/* A gauge family with a series per member of obj, labelled with its
 * name: the member's field, an integer (divided by div) or a boolean (1
 * or 0). A member whose field is not an integer is left out if skip. */
static void member_gauges(st_buf *b, const char *name, const char *help,
                          const char *label, json_t *obj, const char *field,
                          int64_t div, bool skip)
{
    const char *key;
    json_t *m;

    st_prom_family(b, name, "gauge", help);
    json_object_foreach(obj, key, m)
    {
        json_t *v = json_object_get(m, field);
        if (skip && !json_is_integer(v)) continue;
        gauge_line(b, name, label, key,
                   json_is_boolean(v) ? json_is_true(v)
                                      : json_integer_value(v) / div);
    }
}

/* Per cron schedule: the last tick that queued a job (from the backend:
 * the same for every process) and the next fire time, in seconds since the
 * epoch, as Prometheus's *_timestamp_seconds gauges. A schedule that never
 * fired has no last series. */
static bool schedule_gauges(stellar *h, st_buf *b)
{
    json_t *all = NULL;
    stellar_error e = {0};

    if (stellar_schedules(h, &all, &e)) {
        st_log(&h->log, STELLAR_LOG_WARN, "http: /metrics: %s", e.msg);
        return false;
    }
    if (json_object_size(all)) {
        member_gauges(b, "stellar_schedule_last_fire_timestamp_seconds",
                      "The last tick of each cron schedule that queued a "
                      "job (every process).",
                      "schedule", all, "last", 1000, true);
        member_gauges(b, "stellar_schedule_next_fire_timestamp_seconds",
                      "The next fire time of each cron schedule.", "schedule",
                      all, "next", 1000, true);
    }
    json_decref(all);
    return true;
}

/* Appends the backend gauges; false if the backend failed. */
static bool backend_gauges(stellar *h, st_buf *b)
{
    json_t *doc = NULL, *limits = NULL, *queues, *workers, *q, *w;
    stellar_error e = {0};
    int64_t nfailed = 0, busy = 0;
    const char *name;

    if (stellar_details(h, &doc, &e) || stellar_failed_count(h, &nfailed, &e) ||
        stellar_limits(h, &limits, &e)) {
        st_log(&h->log, STELLAR_LOG_WARN, "http: /metrics: %s", e.msg);
        json_decref(doc);
        json_decref(limits);
        return false;
    }
    queues = json_object_get(doc, "queues");
    workers = json_object_get(doc, "workers");
    member_gauges(b, "stellar_queue_depth",
                  "Jobs waiting in each queue (not counting delayed jobs).",
                  "queue", queues, "length", 1, false);
    st_prom_family(b, "stellar_queue_latency_seconds", "gauge",
                   "Age of the oldest job waiting in each queue (queues "
                   "whose age is known: not on Redis).");
    json_object_foreach(queues, name, q)
    {
        json_t *age = json_object_get(q, "latency_ms");
        if (!json_is_integer(age)) continue;
        st_buf_puts(b, "stellar_queue_latency_seconds{queue=\"");
        st_prom_label_value(b, name);
        st_buf_printf(b, "\"} %.3f\n", (double)json_integer_value(age) / 1000);
    }
    member_gauges(b, "stellar_queue_paused",
                  "1 if no TaskProcessor takes jobs from the queue now "
                  "(stellar pause), else 0.",
                  "queue", queues, "paused", 1, false);
    member_gauges(b, "stellar_limit_permits_in_use",
                  "Jobs of each limited target running now (concurrency "
                  "permits held, every process).",
                  "target", limits, "running", 1, false);
    member_gauges(b, "stellar_limit_concurrency",
                  "The concurrency limit of each target that has one.",
                  "target", limits, "concurrency", 1, true);
    json_decref(limits);
    json_object_foreach(workers, name, w)
    {
        if (json_is_object(json_object_get(w, "working_on"))) busy++;
    }
    st_prom_family(b, "stellar_workers_alive", "gauge",
                   "Workers registered in the backend (every process).");
    gauge_line(b, "stellar_workers_alive", NULL, NULL,
               (int64_t)json_object_size(workers));
    st_prom_family(b, "stellar_workers_busy", "gauge",
                   "Workers running a job now (every process).");
    gauge_line(b, "stellar_workers_busy", NULL, NULL, busy);
    st_prom_family(b, "stellar_failed_jobs", "gauge",
                   "Entries in the failed list.");
    gauge_line(b, "stellar_failed_jobs", NULL, NULL, nfailed);
    json_decref(doc);
    return schedule_gauges(h, b);
}

void st_http_metrics(stellar *h, st_http_reply *r)
{
    st_buf b = {0};
    bool up;

    memset(r, 0, sizeof *r);
    st_metrics_write(h->metrics, &b);
    up = backend_gauges(h, &b);
    st_prom_family(&b, "stellar_backend_up", "gauge",
                   "1 if the backend answered this scrape, else 0.");
    st_buf_printf(&b, "stellar_backend_up %d\n", up ? 1 : 0);
    r->len = b.len;
    if (!(r->body = st_buf_take(&b))) {
        st_http_error(r, 500, "ENOMEM", "out of memory");
        return;
    }
    r->status = 200;
    r->type = "text/plain; version=0.0.4; charset=utf-8";
}
