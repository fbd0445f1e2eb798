/*
 * taskfile.c: loading a command task file, modules/<module>/tasks/<name>.json
 * (docs/tasks.md), into an st_command and a registered task. Running the
 * command is command.c's; the two meet in command.h.
 *
 * The file is checked as a C task is (name, description, queue, frequency
 * or cron and timezone, plugins), plus `command` (a non-empty array of
 * strings whose program must exist and be executable: known at load, so
 * said then), `timeout` (ms), `env` (an object of strings) and `limits`
 * (resource limits, integers > 0: memoryMiB, cpuSeconds, openFiles). Any
 * other key, in the file or in `limits`, is refused with the file and the
 * key.
 */
#include "command.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        st_free(v[i]);
    st_free(v);
}

void st_command_free(st_command *c)
{
    if (!c) return;
    strv_free(c->argv);
    strv_free(c->env);
    st_free(c->exec_path);
    st_free(c->dir);
    st_free(c->app_dir);
    st_free(c);
}

json_t *st_command_argv_json(const st_command *c)
{
    json_t *a = json_array();
    for (size_t i = 0; a && c->argv[i]; i++)
        if (json_array_append_new(a, json_string(c->argv[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

int64_t st_command_timeout(const st_command *c)
{
    return c->timeout;
}

const char *const st_limit_keys[ST_NLIMITS] = {"memoryMiB", "cpuSeconds",
                                               "openFiles"};
static const char *const limit_units[ST_NLIMITS] = {"MiB", "s", "files"};
#define LIMIT_MAX ((int64_t)1 << 40) /* MiB of it still fit in an rlim_t */

bool st_command_has_limits(const st_command *c)
{
    for (size_t i = 0; i < ST_NLIMITS; i++)
        if (c->limits[i]) return true;
    return false;
}

json_t *st_command_limits_json(const st_command *c)
{
    json_t *o = NULL;
    for (size_t i = 0; i < ST_NLIMITS; i++) {
        if (!c->limits[i]) continue;
        if ((!o && !(o = json_object())) ||
            json_object_set_new(o, st_limit_keys[i],
                                json_integer(c->limits[i]))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static const char *const known_keys[] = {
    "name",      "description", "queue",    "command", "timeout",
    "frequency", "cron",        "timezone", "plugins", "pluginOptions",
    "env",       "limits",      NULL};

/* The file's "limits" object, v (not null), into c. */
static int parse_limits(const char *path, json_t *v, st_command *c,
                        stellar_error *e)
{
    const char *key;
    json_t *n;
    size_t i;

    if (!json_is_object(v))
        return st_fail(e, STELLAR_EINVAL,
                       "%s: key 'limits' must be an object (of memoryMiB, "
                       "cpuSeconds, openFiles)",
                       path);
    json_object_foreach(v, key, n)
    {
        for (i = 0; i < ST_NLIMITS; i++)
            if (strcmp(key, st_limit_keys[i]) == 0) break;
        if (i == ST_NLIMITS)
            return st_fail(e, STELLAR_EINVAL,
                           "%s: key 'limits': '%s' is not a limit (memoryMiB, "
                           "cpuSeconds, openFiles)",
                           path, key);
        if (!json_is_integer(n) || json_integer_value(n) < 1 ||
            json_integer_value(n) > LIMIT_MAX)
            return st_fail(e, STELLAR_EINVAL,
                           "%s: key 'limits': '%s' must be an integer from 1 "
                           "to %lld (%s)",
                           path, key, (long long)LIMIT_MAX, limit_units[i]);
        c->limits[i] = json_integer_value(n);
    }
    return STELLAR_OK;
}

char *st_command_which(const char *prog)
{
    const char *path = getenv("PATH"), *p;
    char *found = NULL;

    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    for (p = path; !found;) {
        size_t n = strcspn(p, ":");
        char *f = st_asprintf("%.*s/%s", (int)n, n ? p : ".", prog);
        struct stat st;
        if (f && stat(f, &st) == 0 && S_ISREG(st.st_mode) &&
            access(f, X_OK) == 0)
            found = f;
        else
            st_free(f);
        if (!p[n]) break;
        p += n + 1;
    }
    return found;
}

static char *dir_of(const char *path)
{
    char *abs = realpath(path, NULL), *slash, *d;
    if (!abs) return NULL;
    slash = strrchr(abs, '/');
    d = slash == abs ? st_strdup("/") : st_strndup(abs, (size_t)(slash - abs));
    free(abs);
    return d;
}

/* Fills c from the file's object; EINVAL names path and the key. */
static int parse_spec(const char *path, json_t *doc, st_command *c,
                      stellar_error *e)
{
    const char *key;
    json_t *v, *cmd = json_object_get(doc, "command");
    size_t i, n;

    json_object_foreach(doc, key, v)
    {
        bool ok = false;
        for (i = 0; known_keys[i]; i++)
            ok = ok || strcmp(key, known_keys[i]) == 0;
        if (!ok)
            return st_fail(e, STELLAR_EINVAL,
                           "%s: key '%s' is not a property of a command task "
                           "(name, description, queue, command, timeout, "
                           "frequency, cron, timezone, plugins, "
                           "pluginOptions, env, limits)",
                           path, key);
    }
    if (!cmd)
        return st_fail(e, STELLAR_EINVAL, "%s: key 'command' is required",
                       path);
    if (!json_is_array(cmd) || !(n = json_array_size(cmd)))
        return st_fail(e, STELLAR_EINVAL,
                       "%s: key 'command' must be a non-empty array of "
                       "strings (the program and its arguments)",
                       path);
    if (!(c->argv = st_calloc(n + 1, sizeof *c->argv))) goto oom;
    json_array_foreach(cmd, i, v)
    {
        if (!json_is_string(v) || (i == 0 && !*json_string_value(v)))
            return st_fail(e, STELLAR_EINVAL,
                           "%s: key 'command' must be a non-empty array of "
                           "strings (item %zu is not)",
                           path, i);
        if (!(c->argv[i] = st_strdup(json_string_value(v)))) goto oom;
    }
    v = json_object_get(doc, "timeout");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return st_fail(e, STELLAR_EINVAL,
                           "%s: key 'timeout' must be an integer >= 0 (ms)",
                           path);
        c->timeout = json_integer_value(v);
    }
    v = json_object_get(doc, "env");
    if (v && !json_is_null(v)) {
        json_t *s;
        if (!json_is_object(v))
            return st_fail(e, STELLAR_EINVAL,
                           "%s: key 'env' must be an object of strings", path);
        c->env = st_calloc(json_object_size(v) + 1, sizeof *c->env);
        if (!c->env) goto oom;
        i = 0;
        json_object_foreach(v, key, s)
        {
            if (!json_is_string(s) || !*key || strchr(key, '='))
                return st_fail(e, STELLAR_EINVAL,
                               "%s: key 'env': '%s' must be a name without "
                               "'=' with a string value",
                               path, key);
            if (!(c->env[i++] =
                      st_asprintf("%s=%s", key, json_string_value(s))))
                goto oom;
        }
    }
    v = json_object_get(doc, "limits");
    if (v && !json_is_null(v)) return parse_limits(path, v, c, e);
    return STELLAR_OK;
oom:
    return st_fail(e, STELLAR_ENOMEM, "out of memory");
}

/* The program must exist and be executable now: said at load. */
static int check_program(const char *path, st_command *c, stellar_error *e)
{
    const char *prog = c->argv[0];
    struct stat st;

    if (!strchr(prog, '/')) {
        char *f = st_command_which(prog);
        bool found = f != NULL;
        st_free(f);
        if (!found)
            return st_fail(e, STELLAR_EINVAL,
                           "%s: key 'command': '%s' is not found on PATH", path,
                           prog);
        return STELLAR_OK;
    }
    c->exec_path =
        prog[0] == '/' ? st_strdup(prog) : st_asprintf("%s/%s", c->dir, prog);
    if (!c->exec_path) return st_fail(e, STELLAR_ENOMEM, "out of memory");
    if (stat(c->exec_path, &st) != 0)
        return st_fail(e, STELLAR_EINVAL, "%s: key 'command': %s: %s", path,
                       prog, strerror(errno));
    if (!S_ISREG(st.st_mode) || access(c->exec_path, X_OK) != 0)
        return st_fail(e, STELLAR_EINVAL,
                       "%s: key 'command': %s is not an executable file "
                       "(chmod +x it, or name its interpreter first)",
                       path, prog);
    return STELLAR_OK;
}

int stellar_command_task_load(stellar *h, const char *path, const char *app_dir,
                              stellar_error *e)
{
    st_command *c = st_calloc(1, sizeof *c);
    stellar_task t = {0};
    json_error_t jerr;
    json_t *doc = NULL, *v;
    char **plugins = NULL, *plugin_options = NULL;
    int rc = STELLAR_OK;
    size_t i;

    st_err_clear(e);
    if (!c) return st_fail(e, STELLAR_ENOMEM, "out of memory");
    doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        rc = st_fail(e, STELLAR_EINVAL, "%s:%d:%d: %s", path, jerr.line,
                     jerr.column, jerr.text);
        goto done;
    }
    if (!json_is_object(doc)) {
        rc = st_fail(e, STELLAR_EINVAL, "%s: expected a JSON object", path);
        goto done;
    }
    if (!(c->dir = dir_of(path))) {
        rc = st_fail(e, STELLAR_EINVAL, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (app_dir) {
        char *abs = realpath(app_dir, NULL);
        c->app_dir = st_strdup(abs ? abs : app_dir);
        free(abs);
    } else {
        c->app_dir = st_asprintf("%s/../..", c->dir); /* modules/<m>/tasks */
        if (c->app_dir) {
            char *abs = realpath(c->app_dir, NULL);
            if (abs) {
                st_free(c->app_dir);
                c->app_dir = st_strdup(abs);
                free(abs);
            }
        }
    }
    if (!c->app_dir) {
        rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = parse_spec(path, doc, c, e)) || (rc = check_program(path, c, e)))
        goto done;

        /* The properties a C task has, checked by the registry. */
#define STR_KEY(k, field)                                                      \
    v = json_object_get(doc, k);                                               \
    if (v && !json_is_null(v) && !json_is_string(v)) {                         \
        rc = st_fail(e, STELLAR_EINVAL, "%s: key '%s' must be a string", path, \
                     k);                                                       \
        goto done;                                                             \
    }                                                                          \
    t.field = json_string_value(v)
    STR_KEY("name", name);
    STR_KEY("description", description);
    STR_KEY("queue", queue);
    STR_KEY("cron", cron);
    STR_KEY("timezone", timezone);
#undef STR_KEY
    v = json_object_get(doc, "frequency");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v)) {
            rc = st_fail(e, STELLAR_EINVAL,
                         "%s: key 'frequency' must be an integer (ms)", path);
            goto done;
        }
        t.frequency = json_integer_value(v);
    }
    v = json_object_get(doc, "plugins");
    if (v && !json_is_null(v)) {
        json_t *p;
        if (!json_is_array(v) ||
            !(plugins = st_calloc(json_array_size(v) + 1, sizeof *plugins))) {
            rc = json_is_array(v)
                     ? st_fail(e, STELLAR_ENOMEM, "out of memory")
                     : st_fail(e, STELLAR_EINVAL,
                               "%s: key 'plugins' must be an array of names",
                               path);
            goto done;
        }
        json_array_foreach(v, i, p)
        {
            if (!json_is_string(p)) {
                rc = st_fail(e, STELLAR_EINVAL,
                             "%s: key 'plugins' must be an array of names",
                             path);
                goto done;
            }
            if (!(plugins[i] = st_strdup(json_string_value(p)))) {
                rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
                goto done;
            }
        }
        t.plugins = (const char *const *)plugins;
    }
    v = json_object_get(doc, "pluginOptions");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v)) {
            rc = st_fail(e, STELLAR_EINVAL,
                         "%s: key 'pluginOptions' must be an object", path);
            goto done;
        }
        if (!(plugin_options = json_dumps(v, JSON_COMPACT))) {
            rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
            goto done;
        }
        t.plugin_options = plugin_options;
    }
    t.run = st_command_run;
    t.timeout = 0; /* the run enforces it, on the whole process group */
    t.isolation = STELLAR_ISOLATION_THREAD; /* a command is its own process */
    rc = st_task_register_command(h, &t, c, e);
    if (rc == STELLAR_OK) {
        c = NULL; /* the task owns it */
    } else if (e) {
        char msg[sizeof e->msg + PATH_MAX];
        snprintf(msg, sizeof msg, "%s: %s", path, e->msg);
        memcpy(e->msg, msg, sizeof e->msg - 1);
        e->msg[sizeof e->msg - 1] = '\0';
    }
done:
    strv_free(plugins);
    free(plugin_options);
    json_decref(doc);
    st_command_free(c);
    return rc;
}
