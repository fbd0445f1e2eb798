/*
 * metrics.c: in-process counters for /metrics. (Filled in by the HTTP work;
 * until then it only counts, so the pool and scheduler can feed it.)
 */
#include "core.h"

struct st_metrics {
    pthread_mutex_t lock; /* guards every field below */
    int64_t processed, failed, dropped, recovered, lag_ms_sum, lag_jobs;
};

st_metrics *st_metrics_new(void)
{
    st_metrics *m = st_calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->lock, NULL);
    return m;
}

void st_metrics_free(st_metrics *m)
{
    if (!m) return;
    pthread_mutex_destroy(&m->lock);
    st_free(m);
}

void st_metrics_job(st_metrics *m, const char *task, const char *queue,
                    enum st_metric_outcome outcome, int64_t duration_ms)
{
    (void)task, (void)queue, (void)duration_ms;
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    if (outcome == ST_METRIC_OK) m->processed++;
    else if (outcome == ST_METRIC_FAILED) m->failed++;
    else m->dropped++;
    pthread_mutex_unlock(&m->lock);
}

void st_metrics_delayed_lag(st_metrics *m, int64_t lag_ms, int64_t jobs)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    m->lag_ms_sum += lag_ms * jobs;
    m->lag_jobs += jobs;
    pthread_mutex_unlock(&m->lock);
}

void st_metrics_recovered(st_metrics *m, int64_t jobs)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    m->recovered += jobs;
    pthread_mutex_unlock(&m->lock);
}
