/*
 * interop_driver.c: Stellar's side of the node-resque interop suite
 * (tests/interop/interop.test.js drives it).
 *
 *     interop_driver
 *
 * Reads one JSON request per line on stdin, answers one JSON line on
 * stdout: {"ok":true,"result":...} or {"ok":false,"code":"ENOTFOUND",
 * "error":"..."}. Answers are written with libstellar's own encoder, which
 * writes what JavaScript's JSON.stringify writes, so the test can compare
 * bytes. Requests ({"cmd": ..., ...}):
 *
 *   open {url, record, log?, processors?, queues?, scheduler?, name?,
 *         poll_ms?}     opens the handle and registers the tasks below;
 *                       processors 0 (the default here) means none
 *   start, stop {timeout_ms?}, close, quit
 *   enqueue {task, params?, queue?, at?, in?}   params is JSON *text*;
 *                       result {"rc": 0 | 1 (vetoed)}
 *   gate {open}         opens / closes the gate the blocking tasks wait on
 *   stats, failed_count, failed {start, stop}, queues, length {queue},
 *   workers, timestamps, queued {queue, start, stop},
 *   del {queue, task, params, count}, del_delayed {queue, task, params},
 *   del_queue {queue}, scheduled_at {queue, task, params},
 *   delayed_at {ts}, all_delayed, del_delayed_at {ts}, del_all_delayed,
 *   details, working_on {worker}, all_working_on, locks, del_lock {name},
 *   remove_failed {entry}, retry_and_remove_failed {entry},
 *   clean_old_workers {age, requeue}
 *                       the C API call of that name; result is its JSON
 *                       (or {"removed": n} for counts)
 *
 * Tasks (each appends one JSON line per run to the record file:
 * {"task","queue","worker","at":ms,"phase","params":"<params as JSON>"}):
 *   record    (queue q)      succeeds
 *   fail      (queue q)      always fails with "stellar says no"
 *   failonce  (queue q)      fails the first time it sees given params
 *   block     (queue slow)   phase "start", waits for the gate, phase "end"
 *   qlocked   (queue locks)  queueLock; succeeds
 *   jlocked   (queue locks)  jobLock; waits for the gate like block
 *   retried   (queue retry)  retry {retryLimit 3, retryDelay 1000}; fails
 *   mixed     (queue mixed)  succeeds
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static stellar *h;
static char *record_path;
static FILE *log_file;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open = true;

static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char **seen;
static size_t nseen, seencap;

static char **queue_names; /* NULL-terminated, for stellar_options.queues */

/* ------------------------------------------------------------- Tasks --- */

static void record(stellar_api *api, const json_t *params, const char *phase)
{
    st_buf b = {0};
    char *p = st_json_dumps(params), *line;
    const char *w = stellar_api_worker(api);
    int fd;

    st_buf_puts(&b, "{\"task\":");
    st_json_put_string(&b, stellar_api_task(api),
                       strlen(stellar_api_task(api)));
    st_buf_puts(&b, ",\"queue\":");
    st_json_put_string(&b, stellar_api_queue(api),
                       strlen(stellar_api_queue(api)));
    st_buf_puts(&b, ",\"worker\":");
    st_json_put_string(&b, w ? w : "", w ? strlen(w) : 0);
    st_buf_printf(&b, ",\"at\":%lld,\"phase\":", (long long)st_now_ms());
    st_json_put_string(&b, phase, strlen(phase));
    st_buf_puts(&b, ",\"params\":");
    st_json_put_string(&b, p ? p : "", p ? strlen(p) : 0);
    st_buf_puts(&b, "}\n");
    line = st_buf_take(&b);
    st_free(p);
    if (!line) return;
    /* One write(2) with O_APPEND: lines of concurrent runs never mix. */
    fd = open(record_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
        ssize_t n = write(fd, line, strlen(line));
        if (n < 0) perror("interop_driver: record");
        close(fd);
    }
    st_free(line);
}

static int run_record(stellar_api *api, const json_t *params, stellar_next *n)
{
    (void)n;
    record(api, params, "run");
    return STELLAR_OK;
}

static int run_fail(stellar_api *api, const json_t *params, stellar_next *n)
{
    record(api, params, "run");
    return stellar_fail(n, "stellar says no");
}

static int run_failonce(stellar_api *api, const json_t *params, stellar_next *n)
{
    char *key = st_json_dumps(params);
    bool first = true;
    size_t i;

    pthread_mutex_lock(&seen_mu);
    for (i = 0; key && i < nseen; i++)
        if (strcmp(seen[i], key) == 0) first = false;
    if (first && key) {
        if (nseen == seencap) {
            size_t cap = seencap ? seencap * 2 : 16;
            char **v = st_realloc(seen, cap * sizeof *v);
            if (v) {
                seen = v;
                seencap = cap;
            }
        }
        if (nseen < seencap) {
            seen[nseen++] = key;
            key = NULL;
        }
    }
    pthread_mutex_unlock(&seen_mu);
    st_free(key);
    record(api, params, first ? "fail" : "run");
    if (first) return stellar_fail(n, "failonce: the first try fails");
    return STELLAR_OK;
}

/* Waits for the gate (or for the processor to stop), on a condition
 * variable with a deadline per round so should_stop is seen. */
static void wait_gate(stellar_api *api)
{
    pthread_mutex_lock(&gate_mu);
    while (!gate_open && !stellar_should_stop(api)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&gate_cv, &gate_mu, &ts);
    }
    pthread_mutex_unlock(&gate_mu);
}

static int run_block(stellar_api *api, const json_t *params, stellar_next *n)
{
    (void)n;
    record(api, params, "start");
    wait_gate(api);
    record(api, params, "end");
    return STELLAR_OK;
}

static const char *const plug_queue[] = {"queueLock", NULL};
static const char *const plug_job[] = {"jobLock", NULL};
static const char *const plug_retry[] = {"retry", NULL};

static const stellar_task tasks[] = {
    {.name = "record",
     .description = "records its params",
     .queue = "q",
     .run = run_record},
    {.name = "fail",
     .description = "always fails",
     .queue = "q",
     .run = run_fail},
    {.name = "failonce",
     .description = "fails once per params",
     .queue = "q",
     .run = run_failonce},
    {.name = "block",
     .description = "waits for the gate",
     .queue = "slow",
     .run = run_block},
    {.name = "qlocked",
     .description = "queueLock",
     .queue = "locks",
     .plugins = plug_queue,
     .run = run_record},
    {.name = "jlocked",
     .description = "jobLock, waits for the gate",
     .queue = "locks",
     .plugins = plug_job,
     .run = run_block},
    {.name = "retried",
     .description = "retry, always fails",
     .queue = "retry",
     .plugins = plug_retry,
     .plugin_options = "{\"retry\":{\"retryLimit\":3,\"retryDelay\":1000}}",
     .run = run_fail},
    {.name = "mixed",
     .description = "the mixed deployment's job",
     .queue = "mixed",
     .run = run_record},
};

/* ----------------------------------------------------------- Replies --- */

static void reply(json_t *result) /* steals result */
{
    json_t *o = json_object();
    char *s;

    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "result", result ? result : json_null());
    s = st_json_dumps(o);
    printf("%s\n", s ? s : "{\"ok\":false,\"error\":\"out of memory\"}");
    fflush(stdout);
    st_free(s);
    json_decref(o);
}

static void reply_err(int code, const char *msg)
{
    json_t *o = json_pack("{s:b, s:s, s:i, s:s}", "ok", 0, "code",
                          stellar_err_name(code), "rc", code, "error", msg);
    char *s = st_json_dumps(o);
    printf("%s\n", s ? s : "{\"ok\":false,\"error\":\"out of memory\"}");
    fflush(stdout);
    st_free(s);
    json_decref(o);
}

/* Replies with *out (or the error) for a call returning rc. */
static void reply_json(int rc, json_t *out, const stellar_error *e)
{
    if (rc < 0) {
        json_decref(out);
        reply_err(rc, e->msg);
    } else {
        reply(out);
    }
}

static void reply_removed(int rc, int64_t removed, const stellar_error *e)
{
    if (rc < 0)
        reply_err(rc, e->msg);
    else
        reply(json_pack("{s:I}", "removed", (json_int_t)removed));
}

static void log_fn(void *ud, int level, const char *msg)
{
    (void)ud;
    pthread_mutex_lock(&log_mu);
    if (log_file) {
        fprintf(log_file, "%lld %d %s\n", (long long)st_now_ms(), level, msg);
        fflush(log_file);
    }
    pthread_mutex_unlock(&log_mu);
}

/* ---------------------------------------------------------- Requests --- */

static const char *str(const json_t *req, const char *k)
{
    return json_string_value(json_object_get(req, k));
}

static int64_t num(const json_t *req, const char *k, int64_t dflt)
{
    const json_t *v = json_object_get(req, k);
    return json_is_number(v) ? (int64_t)json_number_value(v) : dflt;
}

static void free_queue_names(void)
{
    size_t i;
    for (i = 0; queue_names && queue_names[i]; i++)
        st_free(queue_names[i]);
    st_free(queue_names);
    queue_names = NULL;
}

static void cmd_open(const json_t *req)
{
    stellar_options o = {0};
    stellar_error e = {0};
    const json_t *qs = json_object_get(req, "queues");
    const char *logp = str(req, "log");
    size_t i;
    int rc;

    if (h) {
        reply_err(STELLAR_ESTATE, "already open");
        return;
    }
    st_free(record_path);
    record_path =
        st_strdup(str(req, "record") ? str(req, "record") : "/dev/null");
    if (logp && !log_file) log_file = fopen(logp, "a");
    free_queue_names();
    if (json_is_array(qs)) {
        queue_names = st_calloc(json_array_size(qs) + 1, sizeof *queue_names);
        for (i = 0; queue_names && i < json_array_size(qs); i++)
            queue_names[i] =
                st_strdup(json_string_value(json_array_get(qs, i)));
    }
    o.url = str(req, "url");
    o.log_fn = log_fn;
    o.log_level = STELLAR_LOG_DEBUG;
    o.processors = (int)num(req, "processors", 0);
    if (o.processors == 0) o.processors = -1;
    o.queues = (const char *const *)queue_names;
    o.no_scheduler = !json_is_true(json_object_get(req, "scheduler"));
    o.name = str(req, "name");
    o.poll_ms = num(req, "poll_ms", 50);
    o.shutdown_timeout_ms = 5000;
    rc = stellar_open(&h, &o, &e);
    for (i = 0; rc == STELLAR_OK && i < sizeof tasks / sizeof tasks[0]; i++)
        rc = stellar_task_register(h, &tasks[i], &e);
    if (rc != STELLAR_OK) {
        stellar_close(h);
        h = NULL;
        reply_err(rc, e.msg);
        return;
    }
    reply(json_pack("{s:s}", "url", stellar_url(h)));
}

static void cmd_enqueue(const json_t *req)
{
    stellar_error e = {0};
    const char *task = str(req, "task"), *params = str(req, "params"),
               *queue = str(req, "queue");
    int rc;

    if (json_is_number(json_object_get(req, "at")))
        rc = stellar_enqueue_at(h, num(req, "at", 0), task, params, queue, &e);
    else if (json_is_number(json_object_get(req, "in")))
        rc = stellar_enqueue_in(h, num(req, "in", 0), task, params, queue, &e);
    else
        rc = stellar_enqueue(h, task, params, queue, &e);
    if (rc < 0)
        reply_err(rc, e.msg);
    else
        reply(json_pack("{s:i}", "rc", rc));
}

/* Handles one request; returns false on quit. */
static bool handle(const json_t *req)
{
    const char *cmd = str(req, "cmd");
    stellar_error e = {0};
    json_t *out = NULL;
    int64_t n = 0;
    int rc;

    if (!cmd) {
        reply_err(STELLAR_EINVAL, "request has no cmd");
        return true;
    }
    if (strcmp(cmd, "quit") == 0) {
        reply(NULL);
        return false;
    }
    if (strcmp(cmd, "open") == 0) {
        cmd_open(req);
        return true;
    }
    if (strcmp(cmd, "gate") == 0) {
        pthread_mutex_lock(&gate_mu);
        gate_open = json_is_true(json_object_get(req, "open"));
        pthread_cond_broadcast(&gate_cv);
        pthread_mutex_unlock(&gate_mu);
        reply(NULL);
        return true;
    }
    if (!h) {
        reply_err(STELLAR_ESTATE, "not open");
        return true;
    }
    if (strcmp(cmd, "close") == 0) {
        stellar_close(h);
        h = NULL;
        reply(NULL);
    } else if (strcmp(cmd, "start") == 0) {
        rc = stellar_start(h, &e);
        reply_json(rc, NULL, &e);
    } else if (strcmp(cmd, "stop") == 0) {
        stellar_stop(h, num(req, "timeout_ms", -1));
        reply(NULL);
    } else if (strcmp(cmd, "enqueue") == 0) {
        cmd_enqueue(req);
    } else if (strcmp(cmd, "stats") == 0) {
        rc = stellar_stats(h, &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "failed_count") == 0) {
        rc = stellar_failed_count(h, &n, &e);
        reply_json(rc, rc < 0 ? NULL : json_integer(n), &e);
    } else if (strcmp(cmd, "failed") == 0) {
        rc = stellar_failed(h, num(req, "start", 0), num(req, "stop", -1), &out,
                            &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "queues") == 0) {
        rc = stellar_queues(h, &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "length") == 0) {
        rc = stellar_length(h, str(req, "queue"), &n, &e);
        reply_json(rc, rc < 0 ? NULL : json_integer(n), &e);
    } else if (strcmp(cmd, "workers") == 0) {
        rc = stellar_workers(h, &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "timestamps") == 0) {
        rc = stellar_timestamps(h, &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "queued") == 0) {
        rc = stellar_queued(h, str(req, "queue"), num(req, "start", 0),
                            num(req, "stop", -1), &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "del") == 0) {
        rc = stellar_del(h, str(req, "queue"), str(req, "task"),
                         str(req, "params"), num(req, "count", 0), &n, &e);
        reply_removed(rc, n, &e);
    } else if (strcmp(cmd, "del_delayed") == 0) {
        rc = stellar_del_delayed(h, str(req, "queue"), str(req, "task"),
                                 str(req, "params"), &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "del_queue") == 0) {
        rc = stellar_del_queue(h, str(req, "queue"), &e);
        reply_json(rc, NULL, &e);
    } else if (strcmp(cmd, "scheduled_at") == 0) {
        rc = stellar_scheduled_at(h, str(req, "queue"), str(req, "task"),
                                  str(req, "params"), &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "delayed_at") == 0) {
        rc = stellar_delayed_at(h, num(req, "ts", 0), &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "all_delayed") == 0) {
        rc = stellar_all_delayed(h, &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "del_delayed_at") == 0) {
        rc = stellar_del_delayed_at(h, num(req, "ts", 0), &n, &e);
        reply_removed(rc, n, &e);
    } else if (strcmp(cmd, "del_all_delayed") == 0) {
        rc = stellar_del_all_delayed(h, &n, &e);
        reply_removed(rc, n, &e);
    } else if (strcmp(cmd, "details") == 0) {
        rc = stellar_details(h, &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "working_on") == 0) {
        rc = stellar_working_on(h, str(req, "worker"), &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "all_working_on") == 0) {
        rc = stellar_all_working_on(h, &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "locks") == 0) {
        rc = stellar_locks(h, &out, &e);
        reply_json(rc, out, &e);
    } else if (strcmp(cmd, "del_lock") == 0) {
        rc = stellar_del_lock(h, str(req, "name"), &n, &e);
        reply_removed(rc, n, &e);
    } else if (strcmp(cmd, "remove_failed") == 0) {
        rc = stellar_remove_failed(h, json_object_get(req, "entry"), &n, &e);
        reply_removed(rc, n, &e);
    } else if (strcmp(cmd, "retry_and_remove_failed") == 0) {
        rc = stellar_retry_and_remove_failed(h, json_object_get(req, "entry"),
                                             &e);
        reply_json(rc, NULL, &e);
    } else if (strcmp(cmd, "clean_old_workers") == 0) {
        rc = stellar_clean_old_workers(
            h, num(req, "age", 0),
            json_is_true(json_object_get(req, "requeue")), &out, &e);
        reply_json(rc, out, &e);
    } else {
        reply_err(STELLAR_EINVAL, "unknown cmd");
    }
    return true;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool go = true;

    while (go && (len = getline(&line, &cap, stdin)) > 0) {
        stellar_error e = {0};
        json_t *req;

        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0) continue;
        req = st_json_parse(line, (size_t)len, &e);
        if (!json_is_object(req))
            reply_err(STELLAR_EINVAL, req ? "request is not an object" : e.msg);
        else
            go = handle(req);
        json_decref(req);
    }
    free(line);
    if (h) stellar_close(h);
    free_queue_names();
    st_free(record_path);
    pthread_mutex_lock(&seen_mu);
    while (nseen)
        st_free(seen[--nseen]);
    st_free(seen);
    pthread_mutex_unlock(&seen_mu);
    if (log_file) fclose(log_file);
    return 0;
}
