/*
 * plugin.c: the Resque plugin hook chain and the built-in plugins jobLock,
 * queueLock, delayQueueLock, retry and noop (reference §6), written against
 * backend.h's kv operations so they work on every backend; on Redis their
 * keys and values are node-resque's, so both sides see each other's locks.
 */
#include "core.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_PLUGINS 64

/* ------------------------------------------------------------ Registry --- */

#define NBUILTIN 5
static const stellar_plugin builtin[NBUILTIN];

static struct {
    pthread_mutex_t lock; /* guards the table */
    const stellar_plugin *p[MAX_PLUGINS];
    size_t n;
} reg = {PTHREAD_MUTEX_INITIALIZER, {NULL}, 0};

static const stellar_plugin *plugin_find(const char *name)
{
    const stellar_plugin *found = NULL;
    size_t i;

    for (i = 0; i < NBUILTIN; i++)
        if (strcasecmp(builtin[i].name, name) == 0) return &builtin[i];
    pthread_mutex_lock(&reg.lock);
    for (i = 0; i < reg.n && !found; i++)
        if (strcasecmp(reg.p[i]->name, name) == 0) found = reg.p[i];
    pthread_mutex_unlock(&reg.lock);
    return found;
}

int stellar_plugin_register(const stellar_plugin *p, stellar_error *e)
{
    int rc = STELLAR_OK;

    st_err_clear(e);
    if (!p || !p->name || !*p->name)
        return st_fail(e, STELLAR_EINVAL, "plugin: a name is required");
    if (plugin_find(p->name))
        return st_fail(e, STELLAR_EEXISTS, "plugin '%s' is already registered",
                       p->name);
    pthread_mutex_lock(&reg.lock);
    if (reg.n == MAX_PLUGINS)
        rc = st_fail(e, STELLAR_ENOMEM, "plugin '%s': too many plugins",
                     p->name);
    else
        reg.p[reg.n++] = p;
    pthread_mutex_unlock(&reg.lock);
    return rc;
}

int st_plugins_check(const st_task *t, stellar_error *e)
{
    size_t i;
    for (i = 0; t->plugins && t->plugins[i]; i++)
        if (!plugin_find(t->plugins[i]))
            return st_fail(
                e, STELLAR_EINVAL,
                "task '%s': field 'plugins' names unknown plugin '%s'",
                t->def.name, t->plugins[i]);
    return STELLAR_OK;
}

/* pluginOptions[name], matched ignoring case ("JobLock" = "jobLock"). */
static const json_t *options_of(const st_task *t, const char *name)
{
    const char *key;
    json_t *v;
    json_object_foreach(t->plugin_options, key, v)
    {
        if (strcasecmp(key, name) == 0) return v;
    }
    return NULL;
}

/* The options a plugin sees when the task gives none: one shared empty
 * object, made once, never freed, never written. */
static json_t *no_options;
static pthread_once_t no_options_once = PTHREAD_ONCE_INIT;

static void make_no_options(void)
{
    no_options = json_object();
}

static int job_lock_after_perform(stellar_job *job, const json_t *o);

/* A run that will not happen (a beforePerform hook said no or failed, so
 * no afterPerform runs): the jobLocks that the plugins before that hook
 * took are released now, or they would hold back every run of the same
 * params until lockTimeout (1 h by default). */
static void release_job_locks(stellar_job *job, size_t upto)
{
    for (size_t j = 0; j < upto; j++) {
        const stellar_plugin *p = plugin_find(job->task->plugins[j]);
        const json_t *opts;
        if (p != &builtin[0]) continue; /* jobLock */
        opts = options_of(job->task, p->name);
        job_lock_after_perform(job, opts ? opts : no_options);
    }
}

int st_hooks_run(st_hook which, stellar_job *job, stellar_error *e)
{
    size_t i;

    if (!job->task) return STELLAR_OK;
    pthread_once(&no_options_once, make_no_options);
    for (i = 0; job->task->plugins && job->task->plugins[i]; i++) {
        const char *name = job->task->plugins[i];
        const stellar_plugin *p = plugin_find(name);
        const json_t *opts;
        stellar_hook_fn fn;
        int rc;

        if (!p)
            return st_fail(e, STELLAR_EINVAL, "task '%s': unknown plugin '%s'",
                           job->task->def.name, name);
        fn = which == ST_HOOK_BEFORE_ENQUEUE   ? p->before_enqueue
             : which == ST_HOOK_AFTER_ENQUEUE  ? p->after_enqueue
             : which == ST_HOOK_BEFORE_PERFORM ? p->before_perform
                                               : p->after_perform;
        if (!fn) continue;
        opts = options_of(job->task, p->name);
        rc = fn(job, opts ? opts : no_options);
        if (rc != STELLAR_VETOED && rc >= 0) continue;
        if (which == ST_HOOK_BEFORE_PERFORM) release_job_locks(job, i);
        if (rc == STELLAR_VETOED) return rc;
        return st_fail(e, rc, "plugin %s: %s", p->name,
                       job->error ? job->error : stellar_strerror(rc));
    }
    return STELLAR_OK;
}

/* ----------------------------------------------------------- Job view --- */

stellar *stellar_job_handle(stellar_job *job)
{
    return job->h;
}

const char *stellar_job_task(stellar_job *job)
{
    return job->task->def.name;
}

const char *stellar_job_queue(stellar_job *job)
{
    return job->queue;
}

const json_t *stellar_job_args(stellar_job *job)
{
    return job->args;
}

const char *stellar_job_worker(stellar_job *job)
{
    return job->worker;
}

const char *stellar_job_error(stellar_job *job)
{
    return job->error;
}

void stellar_job_set_error(stellar_job *job, const char *error)
{
    char *copy = error ? st_strdup(error) : NULL;
    st_free(job->error);
    job->error = copy;
}

/* ------------------------------------------------------------ Helpers --- */

static int64_t opt_int(const json_t *o, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? (int64_t)json_number_value(v) : dflt;
}

/* "<prefix>:<class>:<queue>:<JSON(args)>", or options.key as given. */
static char *lock_key(stellar_job *job, const char *prefix, const json_t *o)
{
    const char *custom = json_string_value(json_object_get(o, "key"));
    char *args, *key;

    if (custom) return st_strdup(custom);
    args = st_json_dumps(job->args);
    key = args ? st_asprintf("%s:%s:%s:%s", prefix, job->task->def.name,
                             job->queue, args)
               : NULL;
    st_free(args);
    return key;
}

/* --------------------------------------------------------- queueLock --- */

/* Value: the second the lock expires + 1, as node-resque writes it. */
static int queue_lock_before_enqueue(stellar_job *job, const json_t *o)
{
    int64_t timeout_s = opt_int(o, "lockTimeout", 3600);
    int64_t now_s = st_now_ms() / 1000;
    char *key = lock_key(job, "lock", o), *cur = NULL, val[32];
    stellar_error e;
    bool set = false;
    int rc;

    if (!key) return STELLAR_ENOMEM;
    if (job->delayed) {
        /* A delayed copy only checks the lock: the lock is taken when the
         * job reaches its queue. node-resque's scheduler runs QueueLock
         * when it promotes a job, and would drop one whose lock we took
         * now (docs/compat.md). */
        rc = job->b->ops->kv_get(job->b, key, &cur, &e);
        if (rc == STELLAR_OK && cur && now_s <= strtoll(cur, NULL, 10))
            rc = STELLAR_VETOED;
        goto out;
    }
    snprintf(val, sizeof val, "%lld", (long long)(now_s + timeout_s + 1));
    rc =
        job->b->ops->kv_set(job->b, key, val, timeout_s * 1000, true, &set, &e);
    if (rc == STELLAR_OK && !set) {
        rc = job->b->ops->kv_get(job->b, key, &cur, &e);
        if (rc == STELLAR_OK && cur && now_s <= strtoll(cur, NULL, 10))
            rc = STELLAR_VETOED;
        else if (rc == STELLAR_OK) /* stale: take it over */
            rc = job->b->ops->kv_set(job->b, key, val, timeout_s * 1000, false,
                                     &set, &e);
    }
out:
    if (rc < 0) stellar_job_set_error(job, e.msg);
    st_free(cur);
    st_free(key);
    return rc;
}

/* The lock is dropped when the job starts, so the next enqueue succeeds. */
static int queue_lock_before_perform(stellar_job *job, const json_t *o)
{
    char *key = lock_key(job, "lock", o);
    stellar_error e;
    int64_t removed;
    int rc;

    if (!key) return STELLAR_ENOMEM;
    rc = job->b->ops->kv_del(job->b, key, NULL, &removed, &e);
    if (rc) stellar_job_set_error(job, e.msg);
    st_free(key);
    return rc;
}

/* An enqueue whose write failed after its before_enqueue hooks passed:
 * the queue locks they took are released, or every enqueue of that job
 * would be refused until lockTimeout, for a job that is not there. (A
 * delayed enqueue takes none.) */
void st_hooks_enqueue_failed(stellar_job *job)
{
    size_t i;

    if (!job->task || job->delayed) return;
    pthread_once(&no_options_once, make_no_options);
    for (i = 0; job->task->plugins && job->task->plugins[i]; i++) {
        const stellar_plugin *p = plugin_find(job->task->plugins[i]);
        const json_t *opts;
        stellar_error e;
        int64_t removed;
        char *key;

        if (p != &builtin[1]) continue; /* queueLock */
        opts = options_of(job->task, p->name);
        key = lock_key(job, "lock", opts ? opts : no_options);
        if (key) job->b->ops->kv_del(job->b, key, NULL, &removed, &e);
        st_free(key);
    }
}

/* ----------------------------------------------------------- jobLock --- */

/* jobLock's lock is renewed by the heartbeat while its run lasts, so
 * lockTimeout is how long it outlives a crashed run (docs/plugins.md). */
static int job_lock_before_perform(stellar_job *job, const json_t *o)
{
    int64_t timeout_s = opt_int(o, "lockTimeout", 60);
    int64_t delay = opt_int(o, "enqueueTimeout", 1001);
    const json_t *re = json_object_get(o, "reEnqueue");
    char *key = lock_key(job, "workerslock", o), val[32];
    stellar_error e;
    bool set = false;
    int rc;

    if (!key) return STELLAR_ENOMEM;
    snprintf(val, sizeof val, "%lld",
             (long long)(st_now_ms() / 1000 + timeout_s + 1));
    rc =
        job->b->ops->kv_set(job->b, key, val, timeout_s * 1000, true, &set, &e);
    if (rc == STELLAR_OK && !set) {
        /* Another run holds it: put this one back for later (not lost). */
        if (!json_is_false(re))
            rc = job->b->ops->push_at(job->b, st_now_ms() + delay, job->queue,
                                      job->payload, true, &e);
        if (rc == STELLAR_OK) rc = STELLAR_VETOED;
    } else if (rc == STELLAR_OK && job->proc) {
        st_proc_hold(job->proc, key, val, timeout_s * 1000);
    }
    if (rc < 0) stellar_job_set_error(job, e.msg);
    st_free(key);
    return rc;
}

static int job_lock_after_perform(stellar_job *job, const json_t *o)
{
    char *key = lock_key(job, "workerslock", o);
    stellar_error e;
    int64_t removed;
    int rc;

    if (!key) return STELLAR_ENOMEM;
    if (job->proc) st_proc_hold(job->proc, NULL, NULL, 0);
    rc = job->b->ops->kv_del(job->b, key, NULL, &removed, &e);
    st_free(key);
    /* Failing to release is logged by the expiry, not the job's fault. */
    (void)rc;
    return STELLAR_OK;
}

/* ---------------------------------------------------- delayQueueLock --- */

static int delay_queue_lock_before_enqueue(stellar_job *job, const json_t *o)
{
    json_t *ts = NULL;
    stellar_error e;
    int rc;

    (void)o;
    rc = job->b->ops->scheduled_at(job->b, job->payload, &ts, &e);
    if (rc == STELLAR_OK && json_array_size(ts) > 0) rc = STELLAR_VETOED;
    if (rc < 0) stellar_job_set_error(job, e.msg);
    json_decref(ts);
    return rc;
}

/* ------------------------------------------------------------- retry --- */

/* argsKey: each arg as text (JSON for objects, arrays and null), joined by
 * "-"; then, as node-resque does, the first whitespace character of the
 * whole key is removed (reference §6.5). */
static char *retry_key(stellar_job *job, const char *prefix, bool trailing)
{
    st_buf b = {0};
    size_t i;
    char *k, *p;

    st_buf_printf(&b, "%s:%s", prefix, job->task->def.name);
    if (json_array_size(job->args) || trailing) st_buf_putc(&b, ':');
    for (i = 0; i < json_array_size(job->args); i++) {
        const json_t *a = json_array_get(job->args, i);
        if (i) st_buf_putc(&b, '-');
        if (json_is_string(a))
            st_buf_puts(&b, json_string_value(a));
        else /* numbers and booleans print as JSON does */
            st_json_stringify(&b, a);
    }
    k = st_buf_take(&b);
    for (p = k; p && *p; p++)
        if (isspace((unsigned char)*p)) {
            memmove(p, p + 1, strlen(p));
            break;
        }
    return k;
}

static int64_t jitter(int64_t ms, const json_t *o)
{
    double j = json_number_value(json_object_get(o, "jitter"));
    if (j <= 0 || ms <= 0) return ms;
    /* +/- j * ms, uniformly. */
    return ms + (int64_t)(((double)rand() / RAND_MAX * 2 - 1) * j * (double)ms);
}

static int retry_after_perform(stellar_job *job, const json_t *o)
{
    int64_t limit = opt_int(o, "retryLimit", 1);
    int64_t delay = opt_int(o, "retryDelay", 5000), max_delay = delay;
    const json_t *backoff = json_object_get(o, "backoffStrategy");
    char *counter = retry_key(job, "resque-retry", false);
    char *errkey = retry_key(job, "failure-resque-retry", true);
    char *msg = NULL, *errjson = NULL, date[32];
    int64_t n = 0, removed, remaining, ttl_ms;
    stellar_error e;
    bool set;
    size_t i;
    int rc = STELLAR_OK;
    st_backend *b = job->b;
    time_t t = (time_t)(st_now_ms() / 1000);
    struct tm tm;

    if (!counter || !errkey) {
        rc = STELLAR_ENOMEM;
        goto out;
    }
    if (!job->error) { /* success: forget earlier attempts */
        b->ops->kv_del(b, counter, NULL, &removed, &e);
        b->ops->kv_del(b, errkey, NULL, &removed, &e);
        goto out;
    }
    for (i = 0; i < json_array_size(backoff); i++)
        if (json_number_value(json_array_get(backoff, i)) > (double)max_delay)
            max_delay = (int64_t)json_number_value(json_array_get(backoff, i));
    /* node-resque hands this ms figure to EXPIRE as seconds (§6.5); we
     * keep its value: too long a TTL is harmless, too short loses count. */
    ttl_ms = max_delay * 1000;
    if ((rc = b->ops->kv_set(b, counter, "-1", ttl_ms, true, &set, &e)) ||
        (rc = b->ops->kv_incr(b, counter, 1, ttl_ms, &n, &e)))
        goto fail;
    remaining = limit - n - 1;

    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y/%m/%d %H:%M:%S", &tm);
    msg = st_asprintf("Error: %s", job->error);
    {
        json_t *v =
            json_pack("{s:s, s:O, s:s, s:s, s:[s], s:s, s:s}", "failed_at",
                      date, "payload", job->args, "exception", msg ? msg : "",
                      "error", msg ? msg : "", "backtrace", msg ? msg : "",
                      "worker", job->task->def.name, "queue", job->queue);
        errjson = v ? st_json_dumps(v) : NULL;
        json_decref(v);
    }
    if (errjson &&
        (rc = b->ops->kv_set(b, errkey, errjson, ttl_ms, false, &set, &e)))
        goto fail;
    if (remaining <= 0) {
        char *last = st_asprintf("%s (attempt %lld of %lld)", job->error,
                                 (long long)(n + 1), (long long)limit);
        b->ops->kv_del(b, counter, NULL, &removed, &e);
        b->ops->kv_del(b, errkey, NULL, &removed, &e);
        if (last) stellar_job_set_error(job, last);
        st_free(last);
        goto out;
    }
    if (json_array_size(backoff)) {
        size_t k = (size_t)n < json_array_size(backoff)
                       ? (size_t)n
                       : json_array_size(backoff) - 1;
        delay = (int64_t)json_number_value(json_array_get(backoff, k));
    }
    rc = b->ops->push_at(b, st_now_ms() + jitter(delay, o), job->queue,
                         job->payload, true, &e);
    if (rc) goto fail;
    /* A retried attempt counts as failed, not processed, and is not put on
     * the failed list (node-resque's totals, §6.5). */
    if (job->worker) {
        char *wkey = st_asprintf("failed:%s", job->worker);
        b->ops->stat_incr(b, "failed", 1, &e);
        if (wkey) b->ops->stat_incr(b, wkey, 1, &e);
        st_free(wkey);
    }
    job->retried = true;
    stellar_job_set_error(job, NULL);
    goto out;
fail:
    stellar_job_set_error(job, e.msg);
out:
    st_free(counter);
    st_free(errkey);
    st_free(msg);
    st_free(errjson);
    return rc;
}

/* -------------------------------------------------------------- noop --- */

static int noop_after_perform(stellar_job *job, const json_t *o)
{
    (void)o;
    if (!job->error) return STELLAR_OK;
    st_log(&job->h->log, STELLAR_LOG_WARN, "noop: %s on %s failed: %s",
           job->task->def.name, job->queue, job->error);
    stellar_job_set_error(job, NULL);
    return STELLAR_OK;
}

static const stellar_plugin builtin[NBUILTIN] = {
    {"jobLock", NULL, NULL, job_lock_before_perform, job_lock_after_perform},
    {"queueLock", queue_lock_before_enqueue, NULL, queue_lock_before_perform,
     NULL},
    {"delayQueueLock", delay_queue_lock_before_enqueue, NULL, NULL, NULL},
    {"retry", NULL, NULL, NULL, retry_after_perform},
    {"noop", NULL, NULL, NULL, noop_after_perform},
};
