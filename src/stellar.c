/*
 * stellar.c: the handle (open on a backend URL, options, close), enqueue and
 * the inspection calls, written against backend.h only.
 *
 * The handle's own backend connection serves API calls from any thread,
 * one at a time under h->lock; TaskProcessors and the scheduler have their
 * own connections (pool.c, scheduler.c).
 */
#include "core.h"

#include <string.h>
#include <unistd.h>

#define DEFAULT_URL "sqlite:./stellar.db"

static char **strv_copy(const char *const *v)
{
    size_t n = 0, i;
    char **c;

    while (v && v[n])
        n++;
    c = st_calloc(n + 2, sizeof *c);
    if (!c) return NULL;
    if (n == 0) {
        c[0] = st_strdup("*");
        if (!c[0]) goto fail;
        return c;
    }
    for (i = 0; i < n; i++)
        if (!(c[i] = st_strdup(v[i]))) goto fail;
    return c;
fail:
    for (i = 0; c[i]; i++)
        st_free(c[i]);
    st_free(c);
    return NULL;
}

static void strv_free(char **v)
{
    size_t i;
    for (i = 0; v && v[i]; i++)
        st_free(v[i]);
    st_free(v);
}

static char *strv_join(char **v)
{
    st_buf b = {0};
    size_t i;
    for (i = 0; v[i]; i++) {
        if (i) st_buf_putc(&b, ',');
        st_buf_puts(&b, v[i]);
    }
    return st_buf_take(&b);
}

static char *host_name(void)
{
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    /* Worker names may hold at most one colon (reference §2.5). */
    for (char *p = host; *p; p++)
        if (*p == ':') *p = '-';
    return st_strdup(host);
}

int stellar_open(stellar **out, const stellar_options *o, stellar_error *e)
{
    stellar_options zero = {0};
    stellar *h;
    int rc;

    *out = NULL;
    st_err_clear(e);
    if (!o) o = &zero;
    h = st_calloc(1, sizeof *h);
    if (!h) return st_fail(e, STELLAR_ENOMEM, "out of memory");
    pthread_mutex_init(&h->lock, NULL);
    h->log.fn = o->log_fn;
    h->log.ud = o->log_ud;
    h->log.level = o->log_level;
    h->userdata = o->userdata;
    h->processors = o->processors == 0 ? 1 : (o->processors < 0 ? 0 : o->processors);
    h->no_scheduler = o->no_scheduler;
    h->poll_ms = o->poll_ms > 0 ? o->poll_ms : 100;
    h->shutdown_timeout_ms =
        o->shutdown_timeout_ms > 0 ? o->shutdown_timeout_ms : 30000;
    /* Pings come every second (whole seconds on Redis): a shorter timeout
     * would take live workers for dead ones. */
    h->stuck_worker_timeout_ms =
        o->stuck_worker_timeout_ms == 0  ? 60000
        : o->stuck_worker_timeout_ms < 0 ? -1
        : o->stuck_worker_timeout_ms < 3000 ? 3000
                                            : o->stuck_worker_timeout_ms;
    h->max_crashes = o->max_crashes > 0 ? o->max_crashes : 3;
    h->isolation = o->isolation == STELLAR_ISOLATION_FORK
                       ? STELLAR_ISOLATION_FORK
                       : STELLAR_ISOLATION_THREAD;
    h->url = st_strdup(o->url && *o->url ? o->url : DEFAULT_URL);
    h->queues = strv_copy(o->queues);
    h->name = o->name && *o->name ? st_strdup(o->name) : host_name();
    if (!h->url || !h->queues || !h->name ||
        !(h->queues_str = strv_join(h->queues))) {
        rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
        goto fail;
    }
    if (strchr(h->name, ':')) {
        rc = st_fail(e, STELLAR_EINVAL,
                     "worker name '%s' may not contain ':'", h->name);
        goto fail;
    }
    if (!(h->metrics = st_metrics_new())) {
        rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
        goto fail;
    }
    rc = st_backend_open(&h->conn, h->url, NULL, e);
    if (rc) goto fail;
    *out = h;
    return STELLAR_OK;
fail:
    stellar_close(h);
    return rc;
}

void stellar_close(stellar *h)
{
    if (!h) return;
    stellar_stop(h, -1);
    st_backend_close(h->conn);
    st_metrics_free(h->metrics);
    st_tasks_free(h);
    strv_free(h->queues);
    st_free(h->queues_str);
    st_free(h->name);
    st_free(h->url);
    pthread_mutex_destroy(&h->lock);
    st_free(h);
}

const char *stellar_url(const stellar *h)
{
    return h->url;
}

/* --------------------------------------------------------- Processors --- */

int stellar_start(stellar *h, stellar_error *e)
{
    int rc;

    st_err_clear(e);
    pthread_mutex_lock(&h->lock);
    if (h->pool) {
        pthread_mutex_unlock(&h->lock);
        return st_fail(e, STELLAR_ESTATE, "already started");
    }
    for (size_t i = 0; i < h->ntasks; i++)
        if ((rc = st_plugins_check(h->tasks[i], e))) goto out;
    rc = st_pool_start(h, &h->pool, e);
out:
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void stellar_stop(stellar *h, int64_t timeout_ms)
{
    st_pool *p;

    pthread_mutex_lock(&h->lock);
    p = h->pool;
    pthread_mutex_unlock(&h->lock);
    if (!p) return;
    /* The pool stops without h->lock: tasks may call the API meanwhile. */
    st_pool_stop(p, timeout_ms < 0 ? h->shutdown_timeout_ms : timeout_ms);
    pthread_mutex_lock(&h->lock);
    h->pool = NULL;
    pthread_mutex_unlock(&h->lock);
}

void stellar_stop_now(stellar *h)
{
    pthread_mutex_lock(&h->lock);
    if (h->pool) st_pool_stop_now(h->pool);
    pthread_mutex_unlock(&h->lock);
}
