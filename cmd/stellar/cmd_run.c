/*
 * cmd_run.c: `stellar run`, the daemon: build and load the app's tasks,
 * start the TaskProcessors and the scheduler, wait for a signal, stop.
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread before anything
 * starts (threads inherit the mask), and the main thread takes them with
 * sigwait(). The first one starts a graceful stop in a helper thread,
 * because stellar_stop() blocks while running jobs finish; a second one,
 * while that stop waits, calls stellar_stop_now(). The helper tells the
 * main thread that the stop is over with SIGUSR1, which is blocked and
 * waited for the same way, so the main thread only ever waits in sigwait().
 * A third signal exits at once (exit code 1), for a task that never
 * returns: stellar_stop() waits for its thread even after stop_now.
 *
 * With HTTP on (cmd_http.c), the server starts after stellar_start() and
 * stops at the first signal, before stellar_stop().
 */
#include "cli.h"
#include "internal.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What `run` resolved from stellar.json and the flags. */
typedef struct run_config {
    int processors; /* 0: none */
    char **queues;  /* NULL-terminated; owned */
    bool scheduler;
    int64_t poll_ms; /* 0: the library's default */
    /* Reliability (issue #6); 0: the library's defaults. */
    int64_t shutdown_timeout_ms, stuck_worker_timeout_ms, max_crashes;
    int isolation;
} run_config;

static void run_config_free(run_config *rc)
{
    size_t i;
    for (i = 0; rc->queues && rc->queues[i]; i++)
        st_free(rc->queues[i]);
    st_free(rc->queues);
}

/* Adds one queue name; false on an empty name or no memory. */
static bool add_queue(run_config *r, const char *s, size_t n)
{
    size_t count = 0;
    char **v;
    while (r->queues && r->queues[count])
        count++;
    if (n == 0) return false;
    v = st_realloc(r->queues, (count + 2) * sizeof *v);
    if (!v) return false;
    r->queues = v;
    v[count] = st_strndup(s, n);
    v[count + 1] = NULL;
    return v[count] != NULL;
}

static bool split_queues(run_config *r, const char *s)
{
    while (*s) {
        size_t n = strcspn(s, ",");
        if (!add_queue(r, s, n)) return false;
        s += n;
        if (*s == ',') s++;
    }
    return true;
}

/* A config integer >= min, or an error naming the key. */
static int config_int(cli *c, json_t *tasks, const char *key, int64_t min,
                      int64_t *out, bool *found)
{
    json_t *v = json_object_get(tasks, key);
    *found = false;
    if (!v || json_is_null(v)) return CLI_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min) {
        char path[96];
        snprintf(path, sizeof path, "tasks.%s", key);
        return cli_config_fail(c, path, "must be an integer >= %lld",
                               (long long)min);
    }
    *out = json_integer_value(v);
    *found = true;
    return CLI_OK;
}

/*
 * The number of TaskProcessors is fixed for the life of the process:
 * --processors, else tasks.maxTaskProcessors, else tasks.workers (another
 * name of the same setting), else 1. Stellar does not grow and shrink them
 * with the backlog as the Stellar framework does, so minTaskProcessors is
 * accepted only where it changes nothing, equal to that number; any other
 * value is refused rather than ignored. More processors on one machine:
 * raise the number, or start another `stellar run` of the app.
 */
static int resolve_processors(cli *c, json_t *tasks, run_config *r)
{
    int64_t n = 1, workers = 0, max = 0, min = 0;
    bool has_workers, has_max, has_min;
    const char *flag;
    int rc;

    if ((rc = config_int(c, tasks, "workers", 0, &workers, &has_workers)) !=
            CLI_OK ||
        (rc = config_int(c, tasks, "maxTaskProcessors", 0, &max, &has_max)) !=
            CLI_OK ||
        (rc = config_int(c, tasks, "minTaskProcessors", 0, &min, &has_min)) !=
            CLI_OK)
        return rc;
    if (has_workers && has_max && workers != max)
        return cli_config_fail(c, "tasks.workers",
                               "is %lld but maxTaskProcessors is %lld: they "
                               "are two names of one setting; keep one",
                               (long long)workers, (long long)max);
    if (has_max)
        n = max;
    else if (has_workers)
        n = workers;
    if (n > 1024)
        return cli_config_fail(
            c, has_max ? "tasks.maxTaskProcessors" : "tasks.workers",
            "must be at most 1024");
    if (has_min && min != n)
        return cli_config_fail(
            c, "tasks.minTaskProcessors",
            "is %lld, but stellar runs a fixed number of TaskProcessors "
            "(%s: %lld) and does not scale them with the backlog; remove "
            "minTaskProcessors or set it to %lld",
            (long long)min,
            has_max       ? "maxTaskProcessors"
            : has_workers ? "workers"
                          : "maxTaskProcessors, 1 when not set",
            (long long)n, (long long)n);
    if ((flag = cli_flag_get(c, "processors")) &&
        (!cli_parse_int(flag, &n) || n < 0 || n > 1024))
        return cli_usage(c, "--processors must be an integer from 0 to 1024");
    r->processors = (int)n;
    return CLI_OK;
}

static int resolve(cli *c, run_config *r)
{
    json_t *tasks = cli_tasks_config(c), *v;
    const char *flag;
    int64_t poll = 0;
    bool found;
    int rc;

    if ((rc = resolve_processors(c, tasks, r)) != CLI_OK ||
        (rc = config_int(c, tasks, "timeout", 1, &poll, &found)) != CLI_OK)
        return rc;
    r->poll_ms = poll;

    /* Queues: --queues a,b, else tasks.queues (an array or "a,b"). */
    v = json_object_get(tasks, "queues");
    if ((flag = cli_flag_get(c, "queues"))) {
        if (!split_queues(r, flag))
            return cli_usage(c, "--queues wants names separated by commas");
    } else if (json_is_string(v)) {
        if (!split_queues(r, json_string_value(v)))
            return cli_config_fail(c, "tasks.queues", "has an empty name");
    } else if (json_is_array(v)) {
        json_t *q;
        size_t i;
        json_array_foreach(v, i, q)
        {
            if (!json_is_string(q) || !add_queue(r, json_string_value(q),
                                                 strlen(json_string_value(q))))
                return cli_config_fail(c, "tasks.queues",
                                       "must be non-empty strings");
        }
    } else if (v && !json_is_null(v)) {
        return cli_config_fail(c, "tasks.queues", "must be an array of names");
    }

    /* Reliability: how long running jobs get at stop, when a silent
     * worker is dead, after how many deaths a job is a poison pill, and
     * whether jobs run in a child process. */
    if ((rc = config_int(c, tasks, "shutdownTimeout", 1,
                         &r->shutdown_timeout_ms, &found)) != CLI_OK ||
        /* The library would raise less than 3 s (workers ping once a
         * second) to 3 s: refused here rather than changed quietly. */
        (rc = config_int(c, tasks, "stuckWorkerTimeout", 3000,
                         &r->stuck_worker_timeout_ms, &found)) != CLI_OK ||
        (rc = config_int(c, tasks, "maxCrashes", 1, &r->max_crashes, &found)) !=
            CLI_OK)
        return rc;
    v = json_object_get(tasks, "isolation");
    if (json_is_string(v) && strcmp(json_string_value(v), "fork") == 0)
        r->isolation = STELLAR_ISOLATION_FORK;
    else if (json_is_string(v) && strcmp(json_string_value(v), "thread") == 0)
        r->isolation = STELLAR_ISOLATION_THREAD;
    else if (v && !json_is_null(v))
        return cli_config_fail(c, "tasks.isolation",
                               "must be \"thread\" or \"fork\"");

    /* Scheduler: on unless --no-scheduler or tasks.scheduler is false. */
    v = json_object_get(tasks, "scheduler");
    if (v && !json_is_boolean(v) && !json_is_null(v))
        return cli_config_fail(c, "tasks.scheduler", "must be true or false");
    r->scheduler = !cli_flag_has(c, "no-scheduler") && !json_is_false(v);
    return CLI_OK;
}

/* -------------------------------------------------------- Stop thread --- */

/* After a second signal, the stop may take this long: putting running
 * jobs back is a few round trips, unless the store does not answer. */
#define HURRY_MS 5000

typedef struct stopper {
    cli *c;
    pthread_t main;
} stopper;

/* The HTTP server goes first: it must not serve over a stopping handle.
 * Both run here, so that a stop held up (a request or a round trip
 * waiting for a store that does not answer) never keeps the main thread
 * from seeing a second signal. */
static void *stop_thread(void *arg)
{
    stopper *s = arg;
    cli_http_stop(s->c);
    stellar_stop(s->c->h, -1);
    pthread_kill(s->main, SIGUSR1);
    return NULL;
}

static const char *signame(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal";
}

/* Waits for SIGINT/SIGTERM, then stops; a second one hurries the stop,
 * and if that still waits for the store after HURRY_MS, exits. */
static int wait_and_stop(cli *c, const sigset_t *set)
{
    stopper s = {c, pthread_self()};
    pthread_t t;
    int sig = 0, hurried = 0;
    int64_t deadline = 0;

    do {
        if (sigwait(set, &sig) != 0) sig = 0;
    } while (sig != SIGINT && sig != SIGTERM);
    cli_logf(STELLAR_LOG_INFO,
             "%s: stopping; running jobs may finish "
             "(send it again to stop now)",
             signame(sig));
    if (pthread_create(&t, NULL, stop_thread, &s) != 0) {
        cli_http_stop(c);
        stellar_stop(c->h, -1);
        return CLI_OK;
    }
    for (;;) {
        if (hurried) {
            int64_t left = deadline - st_mono_ms();
            struct timespec ts;
            if (left <= 0) {
                cli_logf(STELLAR_LOG_ERROR,
                         "still stopping %d s after the second signal: the "
                         "backend does not answer, or a task does not "
                         "return; exiting without waiting (jobs still "
                         "recorded as running are recovered once their "
                         "worker's pings are stuckWorkerTimeout old)",
                         HURRY_MS / 1000);
                fflush(NULL);
                _exit(CLI_FAIL);
            }
            ts.tv_sec = (time_t)(left / 1000);
            ts.tv_nsec = (long)(left % 1000) * 1000000L;
            sig = sigtimedwait(set, NULL, &ts);
            if (sig < 0) continue;
        } else if (sigwait(set, &sig) != 0) {
            continue;
        }
        if (sig == SIGUSR1) break;
        if (++hurried == 1) {
            cli_logf(STELLAR_LOG_WARN,
                     "%s again: stopping now; unfinished jobs go back to "
                     "their queues (exits within %d s; a third signal "
                     "exits at once)",
                     signame(sig), HURRY_MS / 1000);
            deadline = st_mono_ms() + HURRY_MS;
            stellar_stop_now(c->h);
            continue;
        }
        cli_logf(STELLAR_LOG_ERROR,
                 "%s a third time: exiting without "
                 "waiting for running tasks",
                 signame(sig));
        fflush(NULL);
        _exit(CLI_FAIL);
    }
    pthread_join(t, NULL);
    return CLI_OK;
}

/* Command tasks may run `stellar enqueue` for follow-ups (docs/tasks.md):
 * this program's own folder goes at the end of PATH, which the commands
 * inherit, unless PATH already names it. Earlier folders still come first,
 * so a `stellar` installed there is the one found. Linux's /proc; elsewhere
 * PATH is left as it is. Called before any thread starts (setenv). */
static void path_add_self(void)
{
    char exe[PATH_MAX], *slash;
    const char *path = getenv("PATH");
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    size_t len;
    char *grown;

    if (n <= 0) return;
    exe[n] = '\0';
    if (!(slash = strrchr(exe, '/'))) return;
    *slash = '\0';
    len = strlen(exe);
    for (const char *p = path; p && *p;) {
        const char *end = strchr(p, ':');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        if (plen == len && !memcmp(p, exe, len)) return;
        p = end ? end + 1 : NULL;
    }
    grown = path && *path ? st_asprintf("%s:%s", path, exe) : st_strdup(exe);
    if (grown) setenv("PATH", grown, 1);
    st_free(grown);
}

int cmd_run(cli *c)
{
    run_config r = {0};
    stellar_options o = {0};
    stellar_error e = {0};
    sigset_t set;
    json_t *tasks;
    st_buf names = {0};
    char *shown;
    size_t i;
    json_t *t;
    int rc;

    /* A shell starts `stellar run &` with SIGINT ignored, and an ignored
     * signal is dropped even while blocked: sigwait() would never see it.
     * Until the signals are blocked below, they end the build as usual. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    c->log_level =
        cli_flag_has(c, "verbose") ? STELLAR_LOG_DEBUG : STELLAR_LOG_INFO;
    if ((rc = cli_app_find(c, true)) != CLI_OK) return rc;
    if ((rc = resolve(c, &r)) != CLI_OK) goto done;
    if ((rc = cli_http_check(c, false)) != CLI_OK) goto done;
    if ((rc = cli_backend_resolve(c)) != CLI_OK) goto done;
    path_add_self();
    /* Build first, with signals still default, so ^C ends a slow build. */
    if ((rc = cli_build_tasks(c)) != CLI_OK) goto done;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    o.processors = r.processors > 0 ? r.processors : -1;
    o.queues = (const char *const *)r.queues;
    o.no_scheduler = !r.scheduler;
    o.poll_ms = r.poll_ms;
    o.shutdown_timeout_ms = r.shutdown_timeout_ms;
    o.stuck_worker_timeout_ms = r.stuck_worker_timeout_ms;
    o.max_crashes = (int)r.max_crashes;
    o.isolation = r.isolation;
    if ((rc = cli_open(c, &o, true)) != CLI_OK) goto done;

    tasks = stellar_tasks_json(c->h);
    json_array_foreach(tasks, i, t)
    {
        st_buf_puts(&names, i ? ", " : "");
        st_buf_puts(&names, json_string_value(json_object_get(t, "name")));
    }
    shown = st_url_redact(stellar_url(c->h));
    cli_logf(STELLAR_LOG_INFO, "stellar %s: app %s, backend %s",
             STELLAR_VERSION, c->app_dir, shown ? shown : "(out of memory)");
    st_free(shown);
    cli_logf(STELLAR_LOG_INFO, "%zu task%s: %s", json_array_size(tasks),
             json_array_size(tasks) == 1 ? "" : "s",
             names.p ? names.p : "(none: add one with stellar makeTask)");
    json_decref(tasks);
    st_buf_free(&names);
    if ((rc = cli_apply_limits(c)) != CLI_OK) goto done;
    if ((rc = stellar_start(c->h, &e)) != STELLAR_OK) {
        rc = cli_fail(c, "cannot start: %s",
                      e.msg[0] ? e.msg : stellar_strerror(rc));
        goto done;
    }
    if ((rc = cli_http_start(c, false)) != CLI_OK) goto done;
    rc = wait_and_stop(c, &set);
done:
    run_config_free(&r);
    return rc;
}
