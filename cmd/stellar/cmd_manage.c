/*
 * cmd_manage.c: the commands that change state: del, delQueue,
 * enqueueRecurrentJob, stopRecurrentJob, delLock, removeFailed,
 * retryAndRemoveFailed, cleanOldWorkers. (The delayed-job removals are in
 * cmd_delayed.c.)
 *
 * Every argument is checked, and every name looked up, before anything is
 * changed, so bad input changes nothing: exit 2 for a malformed argument,
 * 3 for an unknown queue, task, lock, worker or index. `--json` prints the
 * document the HTTP API answers for the same change ({"removed": n}, ...).
 *
 * A failed job is named by its index in `stellar failed`, and removed by
 * its content (the library matches the whole entry), so a list that moved
 * between the two can never make it remove another job. `--all` works in
 * batches from the head of the list until nothing is left to do: entries
 * added meanwhile are done too, and entries another client took are
 * skipped, not counted.
 */
#include "cli.h"
#include "internal.h"

#include <stdarg.h>
#include <string.h>

/* ---------------------------------------------------- del, delQueue --- */

int cmd_del(cli *c)
{
    const char *queue = c->argv[0], *task = c->argv[1], *params = NULL;
    stellar_error e = {0};
    json_t *jobs = NULL;
    int64_t count = 0, n = 0;
    bool known;
    int rc;

    if (!*queue) return cli_usage(c, "QUEUE is empty");
    if (!*task) return cli_usage(c, "TASK is empty");
    if (c->argc == 3 && cli_parse_int(c->argv[2], &count)) {
        /* `del QUEUE TASK 2`: a number is never params, so it is COUNT. */
    } else if (c->argc > 2) {
        params = c->argv[2];
        if (c->argc > 3 && !cli_parse_int(c->argv[3], &count))
            return cli_usage(c, "COUNT must be a whole number, not '%s'",
                             c->argv[3]);
    }
    if (count < 0)
        return cli_usage(c, "COUNT must be 0 (all) or more, not %lld",
                         (long long)count);
    if ((rc = cli_check_params(c, &params)) != CLI_OK) return rc;
    if ((rc = cli_open(c, NULL, true)) != CLI_OK) return rc;
    if ((rc = cli_queue_exists(c, queue)) != CLI_OK) return rc;
    if ((rc = stellar_queued(c->h, queue, 0, -1, &jobs, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    known = cli_task_known(c, task, jobs);
    json_decref(jobs);
    if (!known)
        return cli_notfound(c,
                            "unknown task '%s': not a task of the app and "
                            "no job of it in queue '%s'",
                            task, queue);
    rc = stellar_del(c->h, queue, task, params, count, &n, &e);
    if (rc != STELLAR_OK) return cli_error(c, rc, &e);
    return out_result(c, json_pack("{s:I}", "removed", (json_int_t)n),
                      "removed %lld job%s of %s from %s%s", (long long)n,
                      n == 1 ? "" : "s", task, queue,
                      n ? ""
                        : " (params must be given as enqueued, member order "
                          "included)");
}

int cmd_del_queue(cli *c)
{
    const char *queue = c->argv[0];
    stellar_error e = {0};
    int64_t n = 0;
    int rc;

    if (!*queue) return cli_usage(c, "QUEUE is empty");
    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    /* Its length, only to tell the user what went. */
    if (stellar_length(c->h, queue, &n, &e) != STELLAR_OK) n = 0;
    rc = stellar_del_queue(c->h, queue, &e);
    if (rc == STELLAR_ENOTFOUND)
        return cli_notfound(c, "no queue named '%s'", queue);
    if (rc != STELLAR_OK) return cli_error(c, rc, &e);
    return out_result(c, json_pack("{s:s, s:b}", "queue", queue, "deleted", 1),
                      "deleted queue %s and its %lld job%s", queue,
                      (long long)n, n == 1 ? "" : "s");
}

/* ------------------------------------------------- Recurrent jobs --- */

/* Periodic tasks are defined by the app: it must be there. */
static int open_with_tasks(cli *c)
{
    int rc;
    if ((rc = cli_app_find(c, true)) != CLI_OK) return rc;
    return cli_open(c, NULL, true);
}

int cmd_enqueue_recurrent(cli *c)
{
    const char *task = c->argv[0];
    stellar_error e = {0};
    int rc;

    if ((rc = open_with_tasks(c)) != CLI_OK) return rc;
    rc = stellar_enqueue_recurrent(c->h, task, &e);
    if (rc != STELLAR_OK) return cli_error(c, rc, &e);
    return out_result(c, json_pack("{s:s, s:b}", "task", task, "enqueued", 1),
                      "enqueued %s now; it repeats while `stellar run` runs",
                      task);
}

int cmd_stop_recurrent(cli *c)
{
    const char *task = c->argv[0];
    stellar_error e = {0};
    int64_t n = 0;
    int rc;

    if ((rc = open_with_tasks(c)) != CLI_OK) return rc;
    rc = stellar_stop_recurrent(c->h, task, &n, &e);
    if (rc != STELLAR_OK) return cli_error(c, rc, &e);
    return out_result(
        c, json_pack("{s:s, s:I}", "task", task, "removed", (json_int_t)n),
        "stopped %s: removed %lld queued or delayed cop%s", task, (long long)n,
        n == 1 ? "y" : "ies");
}

/* ------------------------------------------------------------ delLock --- */

int cmd_del_lock(cli *c)
{
    const char *name = c->argv[0];
    stellar_error e = {0};
    int64_t n = 0;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_del_lock(c->h, name, &n, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    if (!n)
        return cli_notfound(c, "no lock named '%s' (see 'stellar locks')",
                            name);
    return out_result(
        c, json_pack("{s:s, s:I}", "lock", name, "removed", (json_int_t)n),
        "removed lock %s", name);
}

/* ------------------------------------------------------- Failed jobs --- */

#define FAILED_BATCH 100

/* Removes, or retries and removes, one failed entry by content. *taken:
 * whether it was there. STELLAR_EINVAL: the entry cannot be named (it is
 * not a JSON object, or has no payload to retry). */
static int take(cli *c, const json_t *entry, bool retry, bool *taken,
                stellar_error *e)
{
    int64_t n = 0;
    int rc;

    *taken = false;
    if (retry) {
        rc = stellar_retry_and_remove_failed(c->h, entry, e);
        if (rc == STELLAR_ENOTFOUND) return STELLAR_OK;
        *taken = rc == STELLAR_OK;
        return rc;
    }
    rc = stellar_remove_failed(c->h, entry, &n, e);
    *taken = rc == STELLAR_OK && n > 0;
    return rc;
}

static const char *entry_task(const json_t *entry)
{
    const char *t = json_string_value(
        json_object_get(json_object_get(entry, "payload"), "class"));
    return t ? t : "?";
}

/* One failed job, by its index (negative: from the end). */
static int failed_one(cli *c, bool retry)
{
    stellar_error e = {0};
    json_t *list = NULL, *entry;
    int64_t i, count = 0;
    bool taken = false;
    char what[300];
    int rc;

    if (!cli_parse_int(c->argv[0], &i))
        return cli_usage(c, "INDEX must be a whole number, not '%s'",
                         c->argv[0]);
    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_failed_count(c->h, &count, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    if (i >= count || i < -count)
        return cli_notfound(c, "no failed job at index %lld (there %s %lld)",
                            (long long)i, count == 1 ? "is" : "are",
                            (long long)count);
    if ((rc = stellar_failed(c->h, i, i, &list, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    entry = json_array_get(list, 0);
    if (!entry) {
        json_decref(list);
        return cli_notfound(c, "no failed job at index %lld any more",
                            (long long)i);
    }
    snprintf(what, sizeof what, "failed job %lld (%.100s on %.100s)",
             (long long)i, entry_task(entry),
             json_string_value(json_object_get(entry, "queue"))
                 ? json_string_value(json_object_get(entry, "queue"))
                 : "?");
    rc = take(c, entry, retry, &taken, &e);
    json_decref(list);
    if (rc != STELLAR_OK) return cli_error(c, rc, &e);
    if (!taken)
        return cli_notfound(c,
                            "%s was removed by someone else meanwhile; "
                            "nothing done",
                            what);
    if (retry)
        return out_result(c, json_pack("{s:i}", "retried", 1),
                          "retried %s: it is queued again", what);
    return out_result(c, json_pack("{s:i}", "removed", 1), "removed %s", what);
}

/* The state of a --all run. */
typedef struct sweep {
    bool retry;
    json_t *missed;  /* entries not found once: gone, or not matchable */
    json_t *stuck;   /* entries not found twice, or not nameable: left */
    json_t *retried; /* {"<payload JSON>": ms of our retry} */
    int64_t done, again;
} sweep;

static bool has_equal(const json_t *arr, const json_t *v)
{
    json_t *x;
    size_t i;
    json_array_foreach(arr, i, x)
    {
        if (json_equal(x, v)) return true;
    }
    return false;
}

/* Whether to leave an entry alone: it is stuck, or (when retrying) it is a
 * job this run retried that failed again since, which would otherwise be
 * retried for ever while processors run. failed_at has whole seconds, so
 * "since" starts at the second of the retry, less 2 s for clocks of other
 * hosts. */
static bool leave(sweep *s, const json_t *entry)
{
    json_t *when;
    char *key;
    int64_t failed_ms;

    if (has_equal(s->stuck, entry)) return true;
    if (!s->retry) return false;
    key = st_json_dumps(json_object_get(entry, "payload"));
    when = key ? json_object_get(s->retried, key) : NULL;
    st_free(key);
    if (!when) return false;
    if (!out_parse_time(json_object_get(entry, "failed_at"), &failed_ms))
        return true;
    return failed_ms >= json_integer_value(when) / 1000 * 1000 - 2000;
}

static void remember_retry(sweep *s, const json_t *entry)
{
    char *key = st_json_dumps(json_object_get(entry, "payload"));
    if (key) json_object_set_new(s->retried, key, json_integer(st_now_ms()));
    st_free(key);
}

/* One batch from the head: the entries left alone sit there, so the window
 * is their number plus a batch. *more: whether to go on. */
static int sweep_batch(cli *c, sweep *s, size_t *nleft, bool *more)
{
    stellar_error e = {0};
    json_t *list = NULL, *entry;
    size_t i, window = *nleft + FAILED_BATCH, left = 0, acted = 0;
    int rc;

    *more = false;
    rc = stellar_failed(c->h, 0, (int64_t)window - 1, &list, &e);
    if (rc != STELLAR_OK) return cli_error(c, rc, &e);
    json_array_foreach(list, i, entry)
    {
        bool taken = false;
        if (leave(s, entry)) {
            left++;
            continue;
        }
        acted++;
        rc = take(c, entry, s->retry, &taken, &e);
        if (rc == STELLAR_EINVAL) { /* cannot be named: leave it */
            json_array_append(s->stuck, entry);
            left++;
            continue;
        }
        if (rc != STELLAR_OK) {
            json_decref(list);
            return cli_error(c, rc, &e);
        }
        if (taken) {
            s->done++;
            if (s->retry) remember_retry(s, entry);
        } else if (has_equal(s->missed, entry)) {
            /* Still listed after a miss: its stored text is not what the
             * library writes (another client's?), so it cannot be
             * matched. */
            json_array_append(s->stuck, entry);
            left++;
        } else {
            json_array_append(s->missed, entry);
        }
    }
    /* Go on while this batch did something, or was all left-alone entries
     * with possibly more behind them. */
    *more = acted > 0 || json_array_size(list) == window;
    *nleft = left;
    json_decref(list);
    return CLI_OK;
}

static int failed_all(cli *c, bool retry)
{
    sweep s = {retry, json_array(), json_array(), json_object(), 0, 0};
    size_t nleft = 0;
    bool more = true;
    int rc = CLI_OK;

    if (!s.missed || !s.stuck || !s.retried) {
        rc = cli_fail(c, "out of memory");
        goto done;
    }
    if ((rc = cli_open(c, NULL, false)) != CLI_OK) goto done;
    while (more && rc == CLI_OK)
        rc = sweep_batch(c, &s, &nleft, &more);
    if (rc != CLI_OK) goto done;
    /* Entries left because they failed again after our retry. */
    s.again = (int64_t)nleft - (int64_t)json_array_size(s.stuck);
    rc = out_result(
        c,
        json_pack("{s:I}", retry ? "retried" : "removed", (json_int_t)s.done),
        "%s %lld failed job%s%s", retry ? "retried" : "removed",
        (long long)s.done, s.done == 1 ? "" : "s",
        retry ? " (queued again)" : "");
    if (rc == CLI_OK && retry && s.again > 0)
        fprintf(stderr,
                "stellar %s: note: %lld job%s failed again after the retry "
                "and %s left in failed\n",
                c->cmd->name, (long long)s.again, s.again == 1 ? "" : "s",
                s.again == 1 ? "is" : "are");
    if (rc == CLI_OK && json_array_size(s.stuck) > 0)
        rc = cli_fail(c,
                      "%zu failed entr%s could not be matched (stored by "
                      "another client in another form?) and %s left",
                      json_array_size(s.stuck),
                      json_array_size(s.stuck) == 1 ? "y" : "ies",
                      json_array_size(s.stuck) == 1 ? "was" : "were");
done:
    json_decref(s.missed);
    json_decref(s.stuck);
    json_decref(s.retried);
    return rc;
}

static int failed_cmd(cli *c, bool retry)
{
    bool all = cli_flag_has(c, "all");
    if (all && c->argc > 0)
        return cli_usage(c, "give INDEX or --all, not both");
    if (!all && c->argc == 0)
        return cli_usage(c, "missing INDEX (or --all); usage: stellar %s %s",
                         c->cmd->name, c->cmd->args);
    return all ? failed_all(c, retry) : failed_one(c, retry);
}

int cmd_remove_failed(cli *c)
{
    return failed_cmd(c, false);
}

int cmd_retry_failed(cli *c)
{
    return failed_cmd(c, true);
}

/* ---------------------------------------------------- cleanOldWorkers --- */

static int cleaned_table(cli *c, json_t *cleaned)
{
    bool requeue = cli_flag_has(c, "requeue");
    out_table *t;
    const char *name;
    json_t *job;

    if (json_object_size(cleaned) == 0) {
        printf("no worker has been silent for longer than %s ms\n", c->argv[0]);
        return CLI_OK;
    }
    t = out_table_new(4, "WORKER", "JOB", "QUEUE", "NOW");
    json_object_foreach(cleaned, name, job)
    {
        const char *task, *queue;
        char *params = NULL, *what = NULL;
        if (!json_is_null(job)) {
            params = out_payload(job, &task, &queue);
            what =
                st_asprintf("%s %s", task ? task : "?", params ? params : "");
        }
        out_table_row(t, name, what ? what : "(idle)", what ? queue : NULL,
                      what ? (requeue ? "queued again" : "in failed") : NULL);
        st_free(params);
        st_free(what);
    }
    return out_print(t);
}

int cmd_clean_old_workers(cli *c)
{
    stellar_error e = {0};
    json_t *cleaned = NULL;
    int64_t age;
    int rc;

    if (!cli_parse_int(c->argv[0], &age) || age < 0)
        return cli_usage(c,
                         "AGE_MS must be a whole number of milliseconds "
                         ">= 0, not '%s'",
                         c->argv[0]);
    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    rc = stellar_clean_old_workers(c->h, age, cli_flag_has(c, "requeue"),
                                   &cleaned, &e);
    if (rc != STELLAR_OK) return cli_error(c, rc, &e);
    return out_show(c, cleaned, cleaned_table);
}
