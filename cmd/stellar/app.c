/*
 * app.c: finding the app and its config, choosing the backend, opening the
 * handle, and the stderr logger.
 *
 * An app is a folder with a stellar.json: `--app DIR`, else the current
 * folder if it has one. The backend is `--backend`, else $STELLAR_BACKEND,
 * else the config's tasks.backend, else sqlite:./stellar.db. A relative
 * SQLite path in the config is relative to the app folder, so that `stellar
 * run` in the app and `stellar enqueue --app DIR` elsewhere meet in the same
 * file; a relative path given on the command line or in the environment is
 * relative to the current folder, as any path typed in a shell.
 */
#include "cli.h"
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_BACKEND "sqlite:./stellar.db"

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The line of stellar.json where `key` ("tasks.queues") is written: each
 * part's first quoted occurrence after the previous part's, 0 if not found
 * (jansson keeps no positions of values). */
static int config_line(const cli *c, const char *key)
{
    char *path = st_asprintf("%s/stellar.json", c->app_dir);
    char text[64 * 1024] = "";
    const char *at = text, *part = key;
    int line = 0;
    FILE *f = path ? fopen(path, "r") : NULL;

    if (f) {
        text[fread(text, 1, sizeof text - 1, f)] = '\0';
        fclose(f);
    }
    while (at && *part) {
        size_t n = strcspn(part, ".");
        char *quoted = st_asprintf("\"%.*s\"", (int)n, part);
        at = quoted ? strstr(at, quoted) : NULL;
        st_free(quoted);
        part += n + (part[n] == '.');
    }
    if (at)
        for (line = 1; at > text; at--)
            line += at[-1] == '\n';
    st_free(path);
    return line;
}

int cli_config_fail(const cli *c, const char *key, const char *fmt, ...)
{
    char what[512];
    int line = config_line(c, key);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (line > 0)
        return cli_fail(c, "%s/stellar.json:%d: %s %s", c->app_dir, line, key,
                        what);
    return cli_fail(c, "%s/stellar.json: %s %s", c->app_dir, key, what);
}

/* The keys stellar.json may hold (README.md's table says what each does).
 * Any other key is refused, naming its line: a misspelt setting, or one of
 * the Stellar framework's that stellar does not have, must not look as if
 * it worked. */
static const char *const top_keys[] = {"tasks", "http", "schedules", "limits",
                                       NULL};
static const char *const tasks_keys[] = {"backend",
                                         "queues",
                                         "maxTaskProcessors",
                                         "workers",
                                         "minTaskProcessors",
                                         "scheduler",
                                         "timeout",
                                         "shutdownTimeout",
                                         "stuckWorkerTimeout",
                                         "maxCrashes",
                                         "isolation",
                                         NULL};
static const char *const http_keys[] = {"listen", "token", NULL};
static const char *const schedule_keys[] = {
    "cron", "timezone", "task", "params", "queue", "missed", NULL};

/* CLI_OK if every key of obj is in known, else the error naming the first
 * one that is not; section is "" for the top level. */
static int check_keys(const cli *c, json_t *obj, const char *section,
                      const char *const *known)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v)
    {
        char path[160];
        st_buf list = {0};
        size_t i;
        bool ok = false;
        int rc;

        for (i = 0; known[i]; i++)
            ok = ok || strcmp(key, known[i]) == 0;
        if (ok) continue;
        for (i = 0; known[i]; i++) {
            st_buf_puts(&list, i ? ", " : "");
            st_buf_puts(&list, known[i]);
        }
        snprintf(path, sizeof path, "%s%s%s", section, *section ? "." : "",
                 key);
        rc = cli_config_fail(
            c, path, "is not a setting of stellar (%s has: %s)",
            *section ? section : "the top level", list.p ? list.p : "");
        st_buf_free(&list);
        return rc;
    }
    return CLI_OK;
}

/* The "schedules" section's shape: {"<name>": {"cron": str, "task": str,
 * "timezone": str, "params": {...}, "queue": str, "missed": "skip" |
 * "once"}}. What the values mean (the expression, the zone, the task) is
 * checked when they are added to the handle (cli_load_schedules). */
static int check_schedules(const cli *c)
{
    json_t *all = json_object_get(c->config, "schedules"), *s, *v;
    const char *name;
    int rc;

    if (!all || json_is_null(all)) return CLI_OK;
    if (!json_is_object(all))
        return cli_config_fail(c, "schedules",
                               "must be an object of schedules by name");
    json_object_foreach(all, name, s)
    {
        char sec[300], key[320];
        static const char *const strs[] = {"cron", "task", "timezone", "queue",
                                           "missed"};
        snprintf(sec, sizeof sec, "schedules.%.256s", name);
        if (!json_is_object(s))
            return cli_config_fail(c, sec,
                                   "must be an object (cron, task, timezone, "
                                   "params, queue, missed)");
        if ((rc = check_keys(c, s, sec, schedule_keys)) != CLI_OK) return rc;
        for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
            v = json_object_get(s, strs[i]);
            snprintf(key, sizeof key, "%s.%s", sec, strs[i]);
            if (!v && i < 2) return cli_config_fail(c, key, "is required");
            if (v && !json_is_string(v))
                return cli_config_fail(c, key, "must be a string");
        }
        v = json_object_get(s, "params");
        snprintf(key, sizeof key, "%s.params", sec);
        if (v && !json_is_object(v))
            return cli_config_fail(c, key, "must be an object");
        v = json_object_get(s, "missed");
        snprintf(key, sizeof key, "%s.missed", sec);
        if (v && strcmp(json_string_value(v), "skip") != 0 &&
            strcmp(json_string_value(v), "once") != 0)
            return cli_config_fail(c, key, "must be \"skip\" or \"once\"");
    }
    return CLI_OK;
}

static int check_config(const cli *c)
{
    json_t *http = json_object_get(c->config, "http");
    int rc;

    if ((rc = check_keys(c, c->config, "", top_keys)) != CLI_OK ||
        (rc = check_keys(c, cli_tasks_config(c), "tasks", tasks_keys)) !=
            CLI_OK ||
        (rc = check_schedules(c)) != CLI_OK)
        return rc;
    return json_is_object(http) ? check_keys(c, http, "http", http_keys)
                                : CLI_OK;
}

/* Adds stellar.json's schedules to c->h (after its tasks): the library
 * checks the expression, the zone and the task, naming the field. */
static int cli_load_schedules(cli *c)
{
    json_t *all = json_object_get(c->config, "schedules"), *s;
    const char *name;

    json_object_foreach(all, name, s)
    {
        stellar_error e = {0};
        const char *missed = json_string_value(json_object_get(s, "missed"));
        json_t *p = json_object_get(s, "params");
        char *params = p ? json_dumps(p, JSON_COMPACT) : NULL;
        stellar_schedule sc = {
            .name = name,
            .cron = json_string_value(json_object_get(s, "cron")),
            .timezone = json_string_value(json_object_get(s, "timezone")),
            .task = json_string_value(json_object_get(s, "task")),
            .params = params,
            .queue = json_string_value(json_object_get(s, "queue")),
            .missed = missed && strcmp(missed, "once") == 0
                          ? STELLAR_MISSED_ONCE
                          : STELLAR_MISSED_SKIP};
        int rc =
            p && !params ? STELLAR_ENOMEM : stellar_schedule_add(c->h, &sc, &e);
        free(params);
        if (rc != STELLAR_OK) {
            char key[300];
            snprintf(key, sizeof key, "schedules.%.256s", name);
            return cli_config_fail(c, key, "is refused: %s",
                                   e.msg[0] ? e.msg : stellar_strerror(rc));
        }
    }
    return CLI_OK;
}

int cli_app_find(cli *c, bool required)
{
    const char *dir = c->app_opt ? c->app_opt : ".";
    char *cfg, *abs;
    json_error_t jerr;

    if (c->app_dir) return CLI_OK;
    cfg = st_asprintf("%s/stellar.json", dir);
    if (!cfg) return cli_fail(c, "out of memory");
    if (!is_file(cfg)) {
        st_free(cfg);
        if (c->app_opt)
            return cli_fail(c,
                            "%s is not a Stellar app (no stellar.json); "
                            "create one with 'stellar new %s'",
                            dir, dir);
        if (required)
            return cli_fail(c, "no app here (no stellar.json in the current "
                               "folder); use --app DIR, or create one with "
                               "'stellar new DIR'");
        return CLI_OK;
    }
    c->config = json_load_file(cfg, 0, &jerr);
    if (!c->config) {
        int rc =
            cli_fail(c, "%s:%d:%d: %s", cfg, jerr.line, jerr.column, jerr.text);
        st_free(cfg);
        return rc;
    }
    if (!json_is_object(c->config) ||
        (json_object_get(c->config, "tasks") &&
         !json_is_object(json_object_get(c->config, "tasks")))) {
        int rc =
            cli_fail(c, "%s: expected an object with a \"tasks\" object", cfg);
        st_free(cfg);
        return rc;
    }
    st_free(cfg);
    abs = realpath(dir, NULL);
    if (!abs) return cli_fail(c, "%s: %s", dir, strerror(errno));
    c->app_dir = st_strdup(abs);
    free(abs);
    if (!c->app_dir) return cli_fail(c, "out of memory");
    return check_config(c);
}

json_t *cli_tasks_config(const cli *c)
{
    return c->config ? json_object_get(c->config, "tasks") : NULL;
}

/* A relative sqlite: path from the config is taken from the app folder. */
static char *config_url(const cli *c, const char *url)
{
    const char *path;

    if (strncmp(url, "sqlite:", 7) != 0) return st_strdup(url);
    path = url + 7;
    if (!*path || path[0] == '/' || path[0] == ':') return st_strdup(url);
    if (path[0] == '.' && path[1] == '/') path += 2;
    return st_asprintf("sqlite:%s/%s", c->app_dir, path);
}

int cli_backend_resolve(cli *c)
{
    const char *env = getenv("STELLAR_BACKEND");
    json_t *tasks, *b;
    int rc;

    if (c->backend) return CLI_OK;
    if ((rc = cli_app_find(c, false)) != CLI_OK) return rc;
    tasks = cli_tasks_config(c);
    b = tasks ? json_object_get(tasks, "backend") : NULL;
    if (c->backend_opt) {
        if (!*c->backend_opt) return cli_usage(c, "--backend is empty");
        c->backend = st_strdup(c->backend_opt);
    } else if (env && *env) {
        c->backend = st_strdup(env);
    } else if (b && !json_is_null(b)) {
        if (!json_is_string(b) || !*json_string_value(b))
            return cli_config_fail(c, "tasks.backend", "must be a URL string");
        c->backend = config_url(c, json_string_value(b));
    } else {
        c->backend = st_strdup(DEFAULT_BACKEND);
    }
    return c->backend ? CLI_OK : cli_fail(c, "out of memory");
}

int cli_open(cli *c, stellar_options *o, bool load_tasks)
{
    stellar_options opts = {0};
    stellar_error e = {0};
    int rc;

    if ((rc = cli_backend_resolve(c)) != CLI_OK) return rc;
    if (load_tasks && c->app_dir && (rc = cli_build_tasks(c)) != CLI_OK)
        return rc;
    if (o) opts = *o;
    opts.url = c->backend;
    opts.log_fn = cli_log;
    opts.log_ud = c;
    opts.log_level = c->log_level;
    rc = stellar_open(&c->h, &opts, &e);
    if (rc != STELLAR_OK) {
        char *shown = st_url_redact(c->backend);
        c->h = NULL;
        rc = cli_fail(c, "cannot open %s: %s", shown ? shown : "the backend",
                      e.msg[0] ? e.msg : stellar_strerror(rc));
        st_free(shown);
        return rc;
    }
    if (load_tasks && c->app_dir) {
        if ((rc = cli_load_tasks(c)) != CLI_OK) return rc;
        return cli_load_schedules(c);
    }
    return CLI_OK;
}

int cli_queue_exists(cli *c, const char *queue)
{
    stellar_error e = {0};
    json_t *queues = NULL, *q;
    bool known = false;
    size_t i;
    int rc;

    if ((rc = stellar_queues(c->h, &queues, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    json_array_foreach(queues, i, q)
    {
        if (json_is_string(q) && strcmp(json_string_value(q), queue) == 0)
            known = true;
    }
    json_decref(queues);
    return known ? CLI_OK : cli_notfound(c, "no queue named '%s'", queue);
}

bool cli_task_known(const cli *c, const char *task, const json_t *jobs)
{
    json_t *tasks = c->tasks_loaded ? stellar_tasks_json(c->h) : NULL, *v;
    bool known = false;
    size_t i;

    json_array_foreach(tasks, i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (name && strcmp(name, task) == 0) known = true;
    }
    json_decref(tasks);
    json_array_foreach(jobs, i, v)
    {
        const char *cls = json_string_value(json_object_get(v, "class"));
        if (cls && strcmp(cls, task) == 0) known = true;
    }
    return known;
}

void cli_cleanup(cli *c)
{
    size_t i;
    cli_http_stop(c); /* it serves over c->h */
    stellar_close(c->h);
    c->h = NULL;
    json_decref(c->config);
    c->config = NULL;
    st_free(c->app_dir);
    st_free(c->backend);
    st_free(c->params_text);
    c->params_text = NULL;
    for (i = 0; i < c->nflags; i++)
        st_free(c->flags[i].name);
    st_free(c->flags);
    st_free(c->argv);
    c->app_dir = c->backend = NULL;
    c->flags = NULL;
    c->argv = NULL;
}

/* ------------------------------------------------------------ Logging --- */

static const char *level_name(int level)
{
    switch (level) {
    case STELLAR_LOG_DEBUG: return "DEBUG";
    case STELLAR_LOG_INFO: return "INFO";
    case STELLAR_LOG_WARN: return "WARN";
    default: return "ERROR";
    }
}

/* One line per event: a message's own newlines become spaces. One fprintf
 * call, so that lines from different threads never mix (stdio locks the
 * stream for the call). */
void cli_log(void *ud, int level, const char *msg)
{
    char when[32], line[2048];
    size_t i;

    (void)ud;
    st_iso_date(st_now_ms(), when);
    snprintf(line, sizeof line, "%s", msg);
    for (i = 0; line[i]; i++)
        if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
    fprintf(stderr, "%s %ld %s %s\n", when, (long)getpid(), level_name(level),
            line);
}

void cli_logf(int level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_log(NULL, level, msg);
}
