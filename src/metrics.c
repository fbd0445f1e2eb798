/*
 * metrics.c: in-process counters and histograms behind /metrics (issue #7).
 *
 * The pool feeds one call per finished job (st_metrics_job), the scheduler
 * leader one per batch of delayed jobs it moved (st_metrics_delayed_lag) and
 * one per recovery of dead workers' jobs (st_metrics_recovered). The HTTP
 * server renders them with st_metrics_write() in the Prometheus text
 * exposition format (version 0.0.4); the gauges read from the backend
 * (queue depth, workers) are added by src/http/prom.c.
 *
 * These are this process's numbers since it started, as Prometheus expects
 * of counters: a restart resets them and rate() copes. The cluster-wide
 * totals are the backend's stats ("processed", "failed"), in /api/stats.
 *
 * Series are keyed by task and queue names that come from job payloads, so
 * a client enqueueing random class names could grow them without bound: past
 * MAX_SERIES distinct keys, further ones are counted under OTHER.
 *
 * One mutex guards everything; no user code runs under it.
 */
#include "metrics.h"

#include <string.h>

#define MAX_SERIES 512
#define OTHER      "_other"

/* Upper bounds (le) of the histogram buckets in ms (written as seconds),
 * as Prometheus client libraries default to, widened for long jobs. */
static const int64_t job_le[] = {5,    10,   25,   50,    100,   250,   500,
                                 1000, 2500, 5000, 10000, 30000, 60000, 300000};
static const int64_t lag_le[] = {10,   50,   100,   250,   500,  1000,
                                 2500, 5000, 10000, 30000, 60000};
#define JOB_NB (sizeof job_le / sizeof job_le[0])
#define LAG_NB (sizeof lag_le / sizeof lag_le[0])

/* Counters of one (task, queue) pair. */
typedef struct job_series {
    char *task, *queue;
    uint64_t processed, failed, dropped;
} job_series;

/* Run-time histogram of one task: per-bucket counts, not cumulative (the
 * writer sums them), plus the sum in ms and the count. */
typedef struct dur_series {
    char *task;
    uint64_t bucket[JOB_NB]; /* the last bucket (+Inf) is count - sum */
    uint64_t count;
    int64_t sum_ms;
} dur_series;

struct st_metrics {
    pthread_mutex_t lock; /* guards every field below */
    job_series *jobs;
    size_t njobs, capjobs;
    dur_series *durs;
    size_t ndurs, capdurs;
    uint64_t lag_bucket[LAG_NB]; /* non-cumulative, as dur_series */
    uint64_t lag_count;
    int64_t lag_sum_ms;
    uint64_t recovered;
};

st_metrics *st_metrics_new(void)
{
    st_metrics *m = st_calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->lock, NULL);
    return m;
}

void st_metrics_free(st_metrics *m)
{
    size_t i;
    if (!m) return;
    for (i = 0; i < m->njobs; i++) {
        st_free(m->jobs[i].task);
        st_free(m->jobs[i].queue);
    }
    for (i = 0; i < m->ndurs; i++)
        st_free(m->durs[i].task);
    st_free(m->jobs);
    st_free(m->durs);
    pthread_mutex_destroy(&m->lock);
    st_free(m);
}

/* Grows an array of `size`-byte items to hold one more. */
static bool grow(void **arr, size_t n, size_t *cap, size_t size)
{
    void *p;
    size_t ncap;
    if (n < *cap) return true;
    ncap = *cap ? *cap * 2 : 16;
    if (!(p = st_realloc(*arr, ncap * size))) return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* The series of task+queue, created if new; NULL if out of memory. Called
 * with m->lock held. */
static job_series *job_series_of(st_metrics *m, const char *task,
                                 const char *queue)
{
    job_series *s;
    size_t i;
    for (i = 0; i < m->njobs; i++)
        if (strcmp(m->jobs[i].task, task) == 0 &&
            strcmp(m->jobs[i].queue, queue) == 0)
            return &m->jobs[i];
    if (m->njobs >= MAX_SERIES && strcmp(task, OTHER) != 0)
        return job_series_of(m, OTHER, OTHER);
    if (!grow((void **)&m->jobs, m->njobs, &m->capjobs, sizeof *m->jobs))
        return NULL;
    s = &m->jobs[m->njobs];
    memset(s, 0, sizeof *s);
    s->task = st_strdup(task);
    s->queue = st_strdup(queue);
    if (!s->task || !s->queue) {
        st_free(s->task);
        st_free(s->queue);
        return NULL;
    }
    m->njobs++;
    return s;
}

static dur_series *dur_series_of(st_metrics *m, const char *task)
{
    dur_series *s;
    size_t i;
    for (i = 0; i < m->ndurs; i++)
        if (strcmp(m->durs[i].task, task) == 0) return &m->durs[i];
    if (m->ndurs >= MAX_SERIES && strcmp(task, OTHER) != 0)
        return dur_series_of(m, OTHER);
    if (!grow((void **)&m->durs, m->ndurs, &m->capdurs, sizeof *m->durs))
        return NULL;
    s = &m->durs[m->ndurs];
    memset(s, 0, sizeof *s);
    if (!(s->task = st_strdup(task))) return NULL;
    m->ndurs++;
    return s;
}

/* Index of the first bucket whose bound holds ms, or nb for +Inf. */
static size_t bucket_of(const int64_t *le, size_t nb, int64_t ms)
{
    size_t i;
    for (i = 0; i < nb; i++)
        if (ms <= le[i]) return i;
    return nb;
}

void st_metrics_job(st_metrics *m, const char *task, const char *queue,
                    enum st_metric_outcome outcome, int64_t duration_ms)
{
    job_series *j;
    dur_series *d;
    size_t b;

    if (!m) return;
    if (!task) task = "";
    if (!queue) queue = "";
    if (duration_ms < 0) duration_ms = 0;
    pthread_mutex_lock(&m->lock);
    if ((j = job_series_of(m, task, queue))) {
        if (outcome == ST_METRIC_OK)
            j->processed++;
        else if (outcome == ST_METRIC_FAILED)
            j->failed++;
        else
            j->dropped++;
    }
    /* A dropped job (a plugin vetoed the run) did not run: no duration. */
    if (outcome != ST_METRIC_DROPPED && (d = dur_series_of(m, task))) {
        b = bucket_of(job_le, JOB_NB, duration_ms);
        if (b < JOB_NB) d->bucket[b]++;
        d->count++;
        d->sum_ms += duration_ms;
    }
    pthread_mutex_unlock(&m->lock);
}

void st_metrics_delayed_lag(st_metrics *m, int64_t lag_ms, int64_t jobs)
{
    size_t b;
    if (!m || jobs <= 0) return;
    if (lag_ms < 0) lag_ms = 0;
    b = bucket_of(lag_le, LAG_NB, lag_ms);
    pthread_mutex_lock(&m->lock);
    if (b < LAG_NB) m->lag_bucket[b] += (uint64_t)jobs;
    m->lag_count += (uint64_t)jobs;
    m->lag_sum_ms += lag_ms * jobs;
    pthread_mutex_unlock(&m->lock);
}

void st_metrics_recovered(st_metrics *m, int64_t jobs)
{
    if (!m || jobs <= 0) return;
    pthread_mutex_lock(&m->lock);
    m->recovered += (uint64_t)jobs;
    pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------ Writing --- */

void st_prom_label_value(st_buf *b, const char *s)
{
    /* Exposition format: backslash, double quote and line feed are the
     * three characters escaped in a label value. */
    for (; *s; s++) {
        if (*s == '\\')
            st_buf_puts(b, "\\\\");
        else if (*s == '"')
            st_buf_puts(b, "\\\"");
        else if (*s == '\n')
            st_buf_puts(b, "\\n");
        else
            st_buf_putc(b, *s);
    }
}

void st_prom_family(st_buf *b, const char *name, const char *type,
                    const char *help)
{
    st_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Writes ms as seconds ("0.005", "2.5", "300") without printf's %g or
 * %f, whose decimal point follows the locale. */
static void put_seconds(st_buf *b, int64_t ms)
{
    int64_t frac = ms % 1000;
    st_buf_printf(b, "%lld", (long long)(ms / 1000));
    if (frac) {
        char d[4] = {(char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                     (char)('0' + frac % 10), '\0'};
        int n = 3;
        while (n > 0 && d[n - 1] == '0')
            n--;
        st_buf_printf(b, ".%.*s", n, d);
    }
}

/* One histogram's _bucket, _sum and _count lines. label is "" or a
 * `name="value",` prefix already escaped. */
static void write_histogram(st_buf *b, const char *name, const char *label,
                            const int64_t *le, const uint64_t *bucket,
                            size_t nb, uint64_t count, int64_t sum_ms)
{
    uint64_t cum = 0;
    size_t i;
    for (i = 0; i < nb; i++) {
        cum += bucket[i];
        st_buf_printf(b, "%s_bucket{%sle=\"", name, label);
        put_seconds(b, le[i]);
        st_buf_printf(b, "\"} %llu\n", (unsigned long long)cum);
    }
    st_buf_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, label,
                  (unsigned long long)count);
    /* No trailing comma inside braces: "{task="x"}" or no braces at all. */
    if (*label) {
        size_t n = strlen(label) - 1; /* drop the trailing comma */
        st_buf_printf(b, "%s_sum{%.*s} ", name, (int)n, label);
        put_seconds(b, sum_ms);
        st_buf_putc(b, '\n');
        st_buf_printf(b, "%s_count{%.*s} %llu\n", name, (int)n, label,
                      (unsigned long long)count);
    } else {
        st_buf_printf(b, "%s_sum ", name);
        put_seconds(b, sum_ms);
        st_buf_putc(b, '\n');
        st_buf_printf(b, "%s_count %llu\n", name, (unsigned long long)count);
    }
}

/* The task/queue counter family `name`, reading field `off` of each
 * series. */
static void write_job_counter(st_buf *b, const st_metrics *m, const char *name,
                              const char *help, size_t off)
{
    size_t i;
    st_prom_family(b, name, "counter", help);
    for (i = 0; i < m->njobs; i++) {
        const job_series *s = &m->jobs[i];
        uint64_t v;
        memcpy(&v, (const char *)s + off, sizeof v);
        st_buf_printf(b, "%s{task=\"", name);
        st_prom_label_value(b, s->task);
        st_buf_puts(b, "\",queue=\"");
        st_prom_label_value(b, s->queue);
        st_buf_printf(b, "\"} %llu\n", (unsigned long long)v);
    }
}

void st_metrics_write(st_metrics *m, st_buf *b)
{
    size_t i;
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    write_job_counter(b, m, "stellar_jobs_processed_total",
                      "Jobs that ended successfully in this process.",
                      offsetof(job_series, processed));
    write_job_counter(b, m, "stellar_jobs_failed_total",
                      "Jobs that failed in this process.",
                      offsetof(job_series, failed));
    write_job_counter(b, m, "stellar_jobs_dropped_total",
                      "Jobs whose run a plugin vetoed in this process.",
                      offsetof(job_series, dropped));

    st_prom_family(b, "stellar_job_duration_seconds", "histogram",
                   "Run time of the jobs this process ran, by task.");
    for (i = 0; i < m->ndurs; i++) {
        const dur_series *s = &m->durs[i];
        st_buf label = {0};
        char *l;
        st_buf_puts(&label, "task=\"");
        st_prom_label_value(&label, s->task);
        st_buf_puts(&label, "\",");
        if ((l = st_buf_take(&label))) {
            write_histogram(b, "stellar_job_duration_seconds", l, job_le,
                            s->bucket, JOB_NB, s->count, s->sum_ms);
            st_free(l);
        } else {
            b->oom = true;
        }
    }

    st_prom_family(b, "stellar_scheduler_lag_seconds", "histogram",
                   "How late the scheduler leader in this process moved "
                   "delayed jobs to their queues, per job.");
    write_histogram(b, "stellar_scheduler_lag_seconds", "", lag_le,
                    m->lag_bucket, LAG_NB, m->lag_count, m->lag_sum_ms);

    st_prom_family(b, "stellar_recovered_jobs_total", "counter",
                   "Jobs of dead workers recovered by the scheduler leader "
                   "in this process.");
    st_buf_printf(b, "stellar_recovered_jobs_total %llu\n",
                  (unsigned long long)m->recovered);
    pthread_mutex_unlock(&m->lock);
}
