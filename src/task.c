/*
 * task.c: the task registry of a handle, task validation, and task modules
 * (shared objects whose STELLAR_TASK definitions register themselves in a
 * process-wide list when they are loaded).
 */
#include "command.h"
#include "core.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ Registry --- */

static void task_free(st_task *t)
{
    size_t i;
    if (!t) return;
    st_free((char *)(uintptr_t)t->def.name);
    st_free((char *)(uintptr_t)t->def.description);
    st_free((char *)(uintptr_t)t->def.queue);
    st_free((char *)(uintptr_t)t->def.plugin_options);
    st_free((char *)(uintptr_t)t->def.cron);
    st_free((char *)(uintptr_t)t->def.timezone);
    for (i = 0; t->plugins && t->plugins[i]; i++)
        st_free(t->plugins[i]);
    st_free(t->plugins);
    json_decref(t->plugin_options);
    st_command_free(t->command);
    st_free(t);
}

void st_tasks_free(stellar *h)
{
    size_t i;
    for (i = 0; i < h->ntasks; i++)
        task_free(h->tasks[i]);
    st_free(h->tasks);
    h->tasks = NULL;
    h->ntasks = 0;
}

const st_task *st_task_find(const stellar *h, const char *name)
{
    size_t i;
    for (i = 0; i < h->ntasks; i++)
        if (strcmp(h->tasks[i]->def.name, name) == 0) return h->tasks[i];
    return NULL;
}

const st_task *st_task_lookup(stellar *h, const char *name, bool *any)
{
    const st_task *t;

    pthread_mutex_lock(&h->lock);
    t = name ? st_task_find(h, name) : NULL;
    if (any) *any = h->ntasks == 0;
    pthread_mutex_unlock(&h->lock);
    return t;
}

int st_name_check(const char *what, const char *name, stellar_error *e)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t n = name ? strlen(name) : 0, off = 0;
    bool blank = true;

    if (n == 0)
        return st_fail(e, STELLAR_EINVAL, "a %s name is required", what);
    if (n > ST_NAME_MAX)
        return st_fail(e, STELLAR_EINVAL,
                       "a %s name may have at most %d bytes (got %zu)", what,
                       ST_NAME_MAX, n);
    while (off < n) {
        uint32_t c = 0;
        size_t len = st_utf8_char(s + off, n - off, &c);
        if (!len)
            return st_fail(e, STELLAR_EINVAL,
                           "a %s name must be valid UTF-8 (bad byte at "
                           "offset %zu)",
                           what, off);
        if (c < 0x20 || (c >= 0x7F && c <= 0x9F))
            return st_fail(e, STELLAR_EINVAL,
                           "a %s name may not contain control characters "
                           "(U+%04X at offset %zu)",
                           what, (unsigned)c, off);
        if (c != ' ') blank = false;
        off += len;
    }
    if (blank)
        return st_fail(e, STELLAR_EINVAL, "a %s name may not be blank", what);
    return STELLAR_OK;
}

static int validate(const stellar *h, const stellar_task *t, stellar_error *e)
{
    const char *n = t->name && *t->name ? t->name : "(unnamed)";
    stellar_error ne;
    size_t i;

    if (!t->name || !*t->name)
        return st_fail(e, STELLAR_EINVAL, "task %s: field 'name' is required",
                       n);
    if (st_name_check("task", t->name, &ne))
        return st_fail(e, STELLAR_EINVAL, "task: field 'name': %s", ne.msg);
    if (t->queue && *t->queue && st_name_check("queue", t->queue, &ne))
        return st_fail(e, STELLAR_EINVAL, "task '%s': field 'queue': %s", n,
                       ne.msg);
    if (!t->description || !*t->description)
        return st_fail(e, STELLAR_EINVAL,
                       "task '%s': field 'description' is required", n);
    if (!t->run)
        return st_fail(e, STELLAR_EINVAL, "task '%s': field 'run' is required",
                       n);
    if (t->frequency < 0)
        return st_fail(e, STELLAR_EINVAL,
                       "task '%s': field 'frequency' must be >= 0 (got %lld)",
                       n, (long long)t->frequency);
    if (t->timeout < 0)
        return st_fail(e, STELLAR_EINVAL,
                       "task '%s': field 'timeout' must be >= 0", n);
    if (t->cron && *t->cron && t->frequency > 0)
        return st_fail(e, STELLAR_EINVAL,
                       "task '%s': fields 'cron' and 'frequency' exclude each "
                       "other: a task is queued either at the times of its "
                       "cron expression or every frequency ms",
                       n);
    if ((!t->cron || !*t->cron) && t->timezone && *t->timezone)
        return st_fail(e, STELLAR_EINVAL,
                       "task '%s': field 'timezone' needs a field 'cron'", n);
    if (t->isolation < 0 || t->isolation > STELLAR_ISOLATION_FORK)
        return st_fail(e, STELLAR_EINVAL,
                       "task '%s': field 'isolation' is not a "
                       "STELLAR_ISOLATION_* value",
                       n);
    if (t->queue && (!*t->queue || strchr(t->queue, ',')))
        return st_fail(e, STELLAR_EINVAL,
                       "task '%s': field 'queue' must be a non-empty name "
                       "without ','",
                       n);
    for (i = 0; t->plugins && t->plugins[i]; i++)
        if (!*t->plugins[i])
            return st_fail(e, STELLAR_EINVAL,
                           "task '%s': field 'plugins' holds an empty name", n);
    if (st_task_find(h, t->name))
        return st_fail(e, STELLAR_EEXISTS,
                       "task '%s': field 'name' is not unique: a task of that "
                       "name is already registered",
                       n);
    return STELLAR_OK;
}

static int task_copy(st_task **out, const stellar_task *src, stellar_error *e)
{
    st_task *t = st_calloc(1, sizeof *t);
    size_t n = 0, i;
    stellar_error pe;

    *out = NULL;
    if (!t) return st_fail(e, STELLAR_ENOMEM, "out of memory");
    t->def = *src;
    t->def.name = st_strdup(src->name);
    t->def.description = st_strdup(src->description);
    t->def.queue = st_strdup(src->queue ? src->queue : "default");
    t->def.plugin_options = NULL;
    t->def.plugins = NULL;
    t->def.cron = src->cron && *src->cron ? st_strdup(src->cron) : NULL;
    t->def.timezone =
        src->timezone && *src->timezone ? st_strdup(src->timezone) : NULL;
    if ((src->cron && *src->cron && !t->def.cron) ||
        (src->timezone && *src->timezone && !t->def.timezone))
        goto oom;
    while (src->plugins && src->plugins[n])
        n++;
    /* Periodic tasks get the three locks, as the Stellar framework does, so
     * that many servers never run or queue one twice. */
    t->plugins = st_calloc(n + 4, sizeof *t->plugins);
    if (!t->plugins) goto oom;
    for (i = 0; i < n; i++)
        if (!(t->plugins[i] = st_strdup(src->plugins[i]))) goto oom;
    for (size_t k = 0; src->frequency > 0 && k < 3; k++) {
        static const char *const locks[] = {"jobLock", "queueLock",
                                            "delayQueueLock"};
        bool listed = false;
        for (size_t j = 0; j < n; j++)
            listed |= strcasecmp(src->plugins[j], locks[k]) == 0;
        if (!listed && !(t->plugins[i++] = st_strdup(locks[k]))) goto oom;
    }
    t->def.plugins = (const char *const *)t->plugins;
    if (!t->def.name || !t->def.description || !t->def.queue) goto oom;
    if (src->plugin_options && *src->plugin_options) {
        t->plugin_options = st_json_parse(src->plugin_options,
                                          strlen(src->plugin_options), &pe);
        if (!t->plugin_options && pe.code == STELLAR_ENOMEM) goto oom;
        if (!t->plugin_options || !json_is_object(t->plugin_options)) {
            int rc = st_fail(e, STELLAR_EINVAL,
                             "task '%s': field 'pluginOptions' must be a JSON "
                             "object%s%s",
                             src->name, t->plugin_options ? "" : ": ",
                             t->plugin_options ? "" : pe.msg);
            task_free(t);
            return rc;
        }
        t->def.plugin_options = st_strdup(src->plugin_options);
        if (!t->def.plugin_options) goto oom;
    }
    *out = t;
    return STELLAR_OK;
oom:
    task_free(t);
    return st_fail(e, STELLAR_ENOMEM, "out of memory");
}

/* cmd: a command task's (command.c), owned by the task on success. */
static int task_register(stellar *h, const stellar_task *t, st_command *cmd,
                         stellar_error *e)
{
    st_task *copy, **grown;
    int rc;

    st_err_clear(e);
    if (!t) return st_fail(e, STELLAR_EINVAL, "task: NULL definition");
    pthread_mutex_lock(&h->lock);
    if (h->pool || h->busy) {
        rc = st_fail(e, STELLAR_ESTATE,
                     "task '%s': cannot register while processors run",
                     t->name ? t->name : "");
        goto out;
    }
    if ((rc = validate(h, t, e)) || (rc = task_copy(&copy, t, e))) goto out;
    grown = st_realloc(h->tasks, (h->ntasks + 1) * sizeof *grown);
    if (!grown) {
        task_free(copy);
        rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
        goto out;
    }
    h->tasks = grown;
    if (copy->def.cron) { /* the task's schedule, named as the task */
        char what[300];
        stellar_schedule s = {.name = copy->def.name,
                              .cron = copy->def.cron,
                              .timezone = copy->def.timezone,
                              .queue = copy->def.queue};
        snprintf(what, sizeof what, "task '%.256s'", copy->def.name);
        if ((rc = st_schedule_new(h, &s, true, what, e))) {
            task_free(copy);
            goto out;
        }
    }
    h->tasks = grown;
    copy->command = cmd;
    h->tasks[h->ntasks++] = copy;
out:
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int stellar_task_register(stellar *h, const stellar_task *t, stellar_error *e)
{
    return task_register(h, t, NULL, e);
}

int st_task_register_command(stellar *h, const stellar_task *t, st_command *cmd,
                             stellar_error *e)
{
    return task_register(h, t, cmd, e);
}

json_t *stellar_tasks_json(stellar *h)
{
    json_t *arr = json_array();
    size_t i, j;

    pthread_mutex_lock(&h->lock);
    for (i = 0; arr && i < h->ntasks; i++) {
        const st_task *t = h->tasks[i];
        json_t *plugins = json_array();
        for (j = 0; plugins && t->plugins && t->plugins[j]; j++)
            if (json_array_append_new(plugins, json_string(t->plugins[j]))) {
                json_decref(plugins);
                plugins = NULL;
            }
        if (json_array_append_new(
                arr,
                json_pack("{s:s, s:s, s:s, s:I, s:o}", "name", t->def.name,
                          "description", t->def.description, "queue",
                          t->def.queue, "frequency",
                          (json_int_t)t->def.frequency, "plugins", plugins)) ||
            /* Command tasks (command.c): the kind, and what runs. */
            json_object_set_new(json_array_get(arr, i), "kind",
                                json_string(t->command ? "command" : "c")) ||
            (t->def.cron &&
             (json_object_set_new(json_array_get(arr, i), "cron",
                                  json_string(t->def.cron)) ||
              json_object_set_new(json_array_get(arr, i), "timezone",
                                  t->def.timezone ? json_string(t->def.timezone)
                                                  : json_null()))) ||
            (t->command &&
             (json_object_set_new(json_array_get(arr, i), "command",
                                  st_command_argv_json(t->command)) ||
              json_object_set_new(
                  json_array_get(arr, i), "timeout",
                  json_integer(st_command_timeout(t->command))))) ||
            (t->command && st_command_has_limits(t->command) &&
             json_object_set_new(json_array_get(arr, i), "limits",
                                 st_command_limits_json(t->command)))) {
            json_decref(arr); /* out of memory: no half list */
            arr = NULL;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return arr;
}

/* ------------------------------------------------------------- Modules --- */

/* Every STELLAR_TASK definition seen in this process, in load order. A
 * module's entries are those added while it was being dlopen()ed. */
static struct {
    pthread_mutex_t lock;      /* guards the list */
    pthread_mutex_t load_lock; /* one dlopen at a time */
    const stellar_task **defs;
    bool *builtin; /* added outside any stellar_module_load() */
    size_t n;
    bool loading;
} mods = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, false};

void stellar_module_add(const stellar_task *t)
{
    const stellar_task **d;
    bool *b;

    pthread_mutex_lock(&mods.lock);
    d = st_realloc(mods.defs, (mods.n + 1) * sizeof *d);
    if (d) mods.defs = d;
    b = st_realloc(mods.builtin, (mods.n + 1) * sizeof *b);
    if (b) mods.builtin = b;
    if (d && b) {
        mods.defs[mods.n] = t;
        mods.builtin[mods.n] = !mods.loading;
        mods.n++;
    }
    pthread_mutex_unlock(&mods.lock);
}

static int register_range(stellar *h, size_t from, size_t to, bool builtin,
                          const char *origin, stellar_error *e)
{
    size_t i;
    int rc = STELLAR_OK;

    for (i = from; i < to && rc == STELLAR_OK; i++) {
        const stellar_task *t;
        bool b;
        pthread_mutex_lock(&mods.lock);
        t = mods.defs[i];
        b = mods.builtin[i];
        pthread_mutex_unlock(&mods.lock);
        if (builtin && !b) continue;
        rc = stellar_task_register(h, t, e);
        if (rc && e && origin) {
            char msg[sizeof e->msg + 1024];
            snprintf(msg, sizeof msg, "%s: %s", origin, e->msg);
            memcpy(e->msg, msg, sizeof e->msg - 1);
            e->msg[sizeof e->msg - 1] = '\0';
        }
    }
    return rc;
}

int stellar_module_load(stellar *h, const char *path, stellar_error *e)
{
    size_t before, after;
    void *dl;
    int rc;

    st_err_clear(e);
    pthread_mutex_lock(&mods.load_lock);
    pthread_mutex_lock(&mods.lock);
    before = mods.n;
    mods.loading = true;
    pthread_mutex_unlock(&mods.lock);
    /* Never closed: registered tasks point into the module. */
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    pthread_mutex_lock(&mods.lock);
    mods.loading = false;
    after = mods.n;
    pthread_mutex_unlock(&mods.lock);
    pthread_mutex_unlock(&mods.load_lock);
    if (!dl) return st_fail(e, STELLAR_ECOMPILE, "%s", dlerror());
    if (after == before)
        return st_fail(e, STELLAR_EINVAL,
                       "%s: defines no task (use STELLAR_TASK)", path);
    rc = register_range(h, before, after, false, path, e);
    return rc;
}

int stellar_task_register_builtin(stellar *h, stellar_error *e)
{
    size_t n;
    st_err_clear(e);
    pthread_mutex_lock(&mods.lock);
    n = mods.n;
    pthread_mutex_unlock(&mods.lock);
    return register_range(h, 0, n, true, NULL, e);
}
