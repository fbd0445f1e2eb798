/*
 * stellar.c: the handle (open on a backend URL, options, close), its
 * connections for API calls, start/stop of its processors, and waking
 * them when a job is enqueued (st_wake). Enqueue itself and every other
 * call on queues and jobs live in tasks.c.
 *
 * An API call checks out a backend connection of its own for its length
 * (st_conn_get), so calls from any number of threads (the embedding
 * program, HTTP handlers, tasks, plugin hooks) run at once and never wait
 * for each other on a handle-wide lock. TaskProcessors and the scheduler
 * have their own connections (pool.c, scheduler.c).
 *
 * Start and stop log and wait for tasks, so they run without h->lock:
 * `busy` marks one under way, and a second stop waits for the first.
 */
#include "core.h"

#include <string.h>
#include <unistd.h>

#define DEFAULT_URL "sqlite:./stellar.db"

/* The API's connections (every stellar_* call, so every HTTP request):
 * a store that does not answer fails a call after 10 s, saying so, rather
 * than after the 30 s the processors allow. */
static const st_backend_cfg api_cfg = {.command_timeout_ms = 10000};

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
    pthread_mutex_init(&h->conns_lock, NULL);
    pthread_cond_init(&h->settled, NULL);
    h->log.fn = o->log_fn;
    h->log.ud = o->log_ud;
    h->log.level = o->log_level;
    h->userdata = o->userdata;
    h->processors =
        o->processors == 0 ? 1 : (o->processors < 0 ? 0 : o->processors);
    h->no_scheduler = o->no_scheduler;
    h->poll_ms = o->poll_ms > 0 ? o->poll_ms : 100;
    h->shutdown_timeout_ms =
        o->shutdown_timeout_ms > 0 ? o->shutdown_timeout_ms : 30000;
    /* Pings come every second (whole seconds on Redis): a shorter timeout
     * would take live workers for dead ones. */
    h->stuck_worker_timeout_ms = o->stuck_worker_timeout_ms == 0  ? 60000
                                 : o->stuck_worker_timeout_ms < 0 ? -1
                                 : o->stuck_worker_timeout_ms < 3000
                                     ? 3000
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
    for (char **q = h->queues; q[0] && strcmp(q[0], "*") != 0; q++)
        if ((rc = st_name_check("queue", *q, e))) goto fail;
    if (strchr(h->name, ':')) {
        rc = st_fail(e, STELLAR_EINVAL, "worker name '%s' may not contain ':'",
                     h->name);
        goto fail;
    }
    if (!(h->metrics = st_metrics_new())) {
        rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
        goto fail;
    }
    /* The first connection proves the URL works; it becomes the first
     * idle one. */
    rc = st_backend_open(&h->idle[0], h->url, &api_cfg, e);
    if (rc) goto fail;
    h->nidle = 1;
    *out = h;
    return STELLAR_OK;
fail:
    stellar_close(h);
    return rc;
}

/* The handle whose own thread this is (st_thread_mark), or NULL. */
static __thread const stellar *own_thread;

void st_thread_mark(const stellar *h)
{
    own_thread = h;
}

/* stellar_stop() or stellar_close() on a thread of h's own would wait for
 * itself: refused, loudly. */
static bool refused_inside(stellar *h, const char *call)
{
    if (own_thread != h) return false;
    st_log(&h->log, STELLAR_LOG_ERROR,
           "%s called from a task, a hook or the log callback of the same "
           "handle: ignored (it would wait for itself)",
           call);
    return true;
}

void stellar_close(stellar *h)
{
    if (!h) return;
    if (refused_inside(h, "stellar_close")) return;
    stellar_stop(h, -1);
    while (h->nidle > 0)
        st_backend_close(h->idle[--h->nidle]);
    st_metrics_free(h->metrics);
    st_schedules_free(h);
    st_tasks_free(h);
    strv_free(h->queues);
    st_free(h->queues_str);
    st_free(h->name);
    st_free(h->url);
    pthread_cond_destroy(&h->settled);
    pthread_mutex_destroy(&h->conns_lock);
    pthread_mutex_destroy(&h->lock);
    st_free(h);
}

const char *stellar_url(const stellar *h)
{
    return h->url;
}

/* -------------------------------------------------------- Connections --- */

int st_conn_get(stellar *h, st_backend **out, stellar_error *e)
{
    *out = NULL;
    pthread_mutex_lock(&h->conns_lock);
    if (h->nidle > 0) *out = h->idle[--h->nidle];
    pthread_mutex_unlock(&h->conns_lock);
    if (*out) return STELLAR_OK;
    return st_backend_open(out, h->url, &api_cfg, e);
}

void st_conn_put(stellar *h, st_backend *b)
{
    size_t cap = sizeof h->idle / sizeof h->idle[0];

    pthread_mutex_lock(&h->conns_lock);
    if (h->nidle < cap) {
        h->idle[h->nidle++] = b;
        b = NULL;
    }
    pthread_mutex_unlock(&h->conns_lock);
    st_backend_close(b); /* enough are idle */
}

/* --------------------------------------------------------- Processors --- */

int stellar_start(stellar *h, stellar_error *e)
{
    st_pool *p = NULL;
    int rc = STELLAR_OK;

    st_err_clear(e);
    pthread_mutex_lock(&h->lock);
    if (h->pool || h->busy) {
        pthread_mutex_unlock(&h->lock);
        return st_fail(e, STELLAR_ESTATE,
                       h->busy ? "a start or stop is under way"
                               : "already started");
    }
    h->busy = true; /* the task table is frozen from here */
    pthread_mutex_unlock(&h->lock);

    st_thread_mark(h);
    for (size_t i = 0; i < h->ntasks && rc == STELLAR_OK; i++)
        rc = st_plugins_check(h->tasks[i], e);
    if (rc == STELLAR_OK) rc = st_pool_start(h, &p, e);
    st_thread_mark(NULL);

    pthread_mutex_lock(&h->lock);
    h->pool = p;
    h->busy = false;
    pthread_cond_broadcast(&h->settled);
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void stellar_stop(stellar *h, int64_t timeout_ms)
{
    st_pool *p;

    if (refused_inside(h, "stellar_stop")) return;
    pthread_mutex_lock(&h->lock);
    while (h->busy) /* another start or stop: wait for its end */
        pthread_cond_wait(&h->settled, &h->lock);
    p = h->pool;
    h->busy = p != NULL;
    pthread_mutex_unlock(&h->lock);
    if (!p) return;

    /* Without h->lock: tasks may call the API meanwhile. */
    st_thread_mark(h);
    st_pool_stop(p, timeout_ms < 0 ? h->shutdown_timeout_ms : timeout_ms);
    st_thread_mark(NULL);

    pthread_mutex_lock(&h->lock);
    h->pool = NULL;
    h->busy = false;
    pthread_cond_broadcast(&h->settled);
    pthread_mutex_unlock(&h->lock);
    /* Nobody can reach the pool now: st_wake() reads h->pool under lock. */
    st_pool_free(p);
}

void stellar_stop_now(stellar *h)
{
    pthread_mutex_lock(&h->lock);
    if (h->pool) st_pool_stop_now(h->pool);
    pthread_mutex_unlock(&h->lock);
}

void st_wake(stellar *h)
{
    pthread_mutex_lock(&h->lock);
    if (h->pool) st_pool_wake(h->pool);
    pthread_mutex_unlock(&h->lock);
}
