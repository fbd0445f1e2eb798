/*
 * taskapi.c: what a running task sees of Stellar, and how its run is
 * called.
 *
 * A task gets a stellar_api (its handle, userdata, queue, name, worker,
 * whether to stop) and a stellar_next. Its run either returns (sync) or
 * returns STELLAR_PENDING and calls stellar_next_done() later, from any
 * thread (async, as Stellar's next(error)); st_task_call() waits for
 * whichever comes. stellar_fail() records a message and counts the run as
 * failed, whatever run then returns.
 *
 * These are the public calls of include/stellar.h that only a task makes;
 * they are kept apart from the processors (worker.c) so that the contract
 * a task is written against reads in one place.
 */
#include "command.h"
#include "pool.h"

#include <stdio.h>

struct stellar_next {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;   /* stellar_next_done() was called */
    char *error; /* failure message, or NULL */
};

int stellar_fail(stellar_next *next, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&next->lock);
    st_free(next->error);
    next->error = st_strdup(msg);
    pthread_mutex_unlock(&next->lock);
    return STELLAR_ETASK;
}

void stellar_next_done(stellar_next *next, const char *error)
{
    pthread_mutex_lock(&next->lock);
    if (error) {
        st_free(next->error);
        next->error = st_strdup(error);
    }
    next->done = true;
    pthread_cond_broadcast(&next->cond);
    pthread_mutex_unlock(&next->lock);
}

void stellar_log(stellar_api *api, int level, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];

    if (!api->h->log.fn || level < api->h->log.level) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st_logf(&api->h->log, level, "[%s] %s", api->task, msg);
}

/* No handle crosses fork(): a child gets its own, with the same tasks. */
static stellar *child_handle(stellar_api *api)
{
    stellar_options o = {0};
    stellar_error err;
    size_t i;

    if (api->child_h) return api->child_h;
    o.url = api->h->url;
    o.log_fn = api->h->log.fn;
    o.log_ud = api->h->log.ud;
    o.log_level = api->h->log.level;
    o.userdata = api->h->userdata;
    if (stellar_open(&api->child_h, &o, &err)) return NULL;
    for (i = 0; i < api->h->ntasks; i++)
        stellar_task_register(api->child_h, &api->h->tasks[i]->def, &err);
    return api->child_h;
}

stellar *stellar_api_handle(stellar_api *api)
{
    return api->in_child ? child_handle(api) : api->h;
}

void *stellar_api_userdata(stellar_api *api)
{
    return api->h->userdata;
}

const char *stellar_api_queue(stellar_api *api)
{
    return api->queue;
}

const char *stellar_api_task(stellar_api *api)
{
    return api->task;
}

const char *stellar_api_worker(stellar_api *api)
{
    return api->proc->name;
}

bool stellar_should_stop(stellar_api *api)
{
    bool s;
    if (api->deadline_ms && st_mono_ms() >= api->deadline_ms) return true;
    if (api->in_child) return false; /* the parent signals a stop */
    pthread_mutex_lock(&api->proc->pool->lock);
    s = api->proc->pool->stopping;
    pthread_mutex_unlock(&api->proc->pool->lock);
    return s;
}

/* The params a task sees: Stellar enqueues args = [params]; a job written by
 * another Resque client may carry other shapes (see docs/compat.md). */
static json_t *params_of(json_t *args)
{
    if (!args) return json_object();
    if (!json_is_array(args)) return json_incref(args);
    if (json_array_size(args) == 0) return json_object();
    if (json_array_size(args) == 1) return json_incref(json_array_get(args, 0));
    return json_incref(args);
}

char *st_task_call(stellar_api *api, const st_task *t, json_t *args)
{
    stellar_next next = {.done = false, .error = NULL};
    json_t *params = params_of(args);
    char *error;
    int rc;

    pthread_mutex_init(&next.lock, NULL);
    pthread_cond_init(&next.cond, NULL);
    rc = t->def.run(api, params, &next);
    pthread_mutex_lock(&next.lock);
    if (rc == STELLAR_PENDING) {
        while (!next.done)
            pthread_cond_wait(&next.cond, &next.lock);
    } else if (rc < 0 && !next.error) {
        next.error = st_asprintf("%s returned %s (%s)", t->def.name,
                                 stellar_err_name(rc), stellar_strerror(rc));
    }
    /* stellar_fail() then a return of STELLAR_OK still counts as failed. */
    error = next.error;
    pthread_mutex_unlock(&next.lock);
    pthread_cond_destroy(&next.cond);
    pthread_mutex_destroy(&next.lock);
    json_decref(params);
    return error;
}

/* Command tasks (command.c): the task being run, and whether a stop's
 * deadline put its job back (st_proc_requeue), so the command must end. */
const st_task *st_api_task_def(stellar_api *api)
{
    return st_task_find(api->h, api->task);
}

bool st_api_abandoned(stellar_api *api)
{
    bool a;
    if (api->in_child) return false; /* the parent ends the child */
    pthread_mutex_lock(&api->proc->lock);
    a = api->proc->abandoned;
    pthread_mutex_unlock(&api->proc->lock);
    return a;
}
