/*
 * control.c: queue control (issue 15), the rules: pause and resume, global
 * concurrency and rate limits, their targets ("queue:NAME", "task:NAME")
 * and rates ("100/1m"), checked here once for the C API, the CLI, the
 * HTTP API and stellar.json.
 *
 * Enforcement is the backend's (backend.h, Controls): its atomic reserve
 * looks at each queue's head and skips the queue while a pause or a full
 * limit holds it back, so the check and the take can never race between
 * processes, and a held-back job is never popped. What this file stores
 * is therefore all there is: a pause is an until time (an expired one is
 * absent, so --for needs no process to resume it), a limit three numbers.
 */
#include "core.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ Parsing --- */

int stellar_target_check(const char *target, stellar_error *e)
{
    const char *name;
    stellar_error ne;

    st_err_clear(e);
    if (!target || !*target)
        return st_fail(e, STELLAR_EINVAL,
                       "a limit target is required: queue:NAME or "
                       "task:NAME");
    if (strncmp(target, "queue:", 6) == 0)
        name = target + 6;
    else if (strncmp(target, "task:", 5) == 0)
        name = target + 5;
    else
        return st_fail(e, STELLAR_EINVAL,
                       "limit target '%s' must be queue:NAME or task:NAME",
                       target);
    if (st_name_check(*target == 'q' ? "queue" : "task", name, &ne))
        return st_fail(e, STELLAR_EINVAL, "limit target '%s': %s", target,
                       ne.msg);
    return STELLAR_OK;
}

/* A whole number >= 1 at *s, advancing *s: false if none or too big. */
static bool whole(const char **s, int64_t *v)
{
    const char *p = *s;
    int64_t n = 0;

    if (*p < '0' || *p > '9') return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (INT64_MAX - 9) / 10) return false;
        n = n * 10 + (*p - '0');
    }
    *s = p;
    *v = n;
    return n >= 1;
}

int stellar_rate_parse(const char *text, int64_t *n, int64_t *window_ms,
                       stellar_error *e)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    const char *p = text;
    int64_t count = 0, d = 0;
    size_t i;

    st_err_clear(e);
    *n = *window_ms = 0;
    if (!p || !whole(&p, &count) || *p != '/')
        return st_fail(e, STELLAR_EINVAL,
                       "rate '%s' must be N/DURATION with N >= 1, as "
                       "100/1m",
                       text ? text : "");
    p++;
    if (!whole(&p, &d))
        return st_fail(e, STELLAR_EINVAL,
                       "rate '%s': the duration must be a whole number >= 1 "
                       "with ms, s, m or h, as 100/1m",
                       text);
    for (i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].unit) != 0) continue;
        if (d > INT64_MAX / units[i].ms)
            return st_fail(e, STELLAR_EINVAL, "rate '%s': too long", text);
        *n = count;
        *window_ms = d * units[i].ms;
        return STELLAR_OK;
    }
    return st_fail(e, STELLAR_EINVAL,
                   "rate '%s': the duration needs a unit: ms, s, m or h (as "
                   "100/1m)",
                   text);
}

void stellar_rate_format(int64_t n, int64_t window_ms, char *out, size_t cap)
{
    if (window_ms > 0 && window_ms % 3600000 == 0)
        snprintf(out, cap, "%lld/%lldh", (long long)n,
                 (long long)(window_ms / 3600000));
    else if (window_ms > 0 && window_ms % 60000 == 0)
        snprintf(out, cap, "%lld/%lldm", (long long)n,
                 (long long)(window_ms / 60000));
    else if (window_ms > 0 && window_ms % 1000 == 0)
        snprintf(out, cap, "%lld/%llds", (long long)n,
                 (long long)(window_ms / 1000));
    else
        snprintf(out, cap, "%lld/%lldms", (long long)n, (long long)window_ms);
}

/* ------------------------------------------------------------- Calls --- */

/* The backend's controls document (backend.h). */
static int controls(stellar *h, json_t **out, stellar_error *e)
{
    int rc;

    *out = NULL;
    WITH_CONN(h, b, b->ops->controls(b, st_now_ms(), out, e));
    return rc;
}

int stellar_pause(stellar *h, const char *queue, int64_t for_ms,
                  stellar_error *e)
{
    int rc;

    st_err_clear(e);
    if (st_name_check("queue", queue, e)) return STELLAR_EINVAL;
    if (for_ms < 0)
        return st_fail(e, STELLAR_EINVAL,
                       "pause %s: --for must be >= 0 ms (got %lld)", queue,
                       (long long)for_ms);
    if (for_ms > INT64_MAX / 2)
        return st_fail(e, STELLAR_EINVAL, "pause %s: --for is too long", queue);
    /* The backend adds for_ms to the clock its check reads (Redis: the
     * server's), so a client whose clock is off pauses for as long. */
    WITH_CONN(h, b, b->ops->pause(b, queue, for_ms, e));
    return rc;
}

int stellar_resume(stellar *h, const char *queue, bool *was_paused,
                   stellar_error *e)
{
    int64_t n = 0;
    int rc;

    st_err_clear(e);
    if (was_paused) *was_paused = false;
    if (st_name_check("queue", queue, e)) return STELLAR_EINVAL;
    WITH_CONN(h, b, b->ops->resume(b, queue, &n, e));
    if (rc == STELLAR_OK && was_paused) *was_paused = n > 0;
    return rc;
}

int stellar_pauses(stellar *h, json_t **out, stellar_error *e)
{
    json_t *doc = NULL, *paused, *v, *res;
    const char *q;
    int rc;

    st_err_clear(e);
    *out = NULL;
    if ((rc = controls(h, &doc, e)) != STELLAR_OK) return rc;
    paused = json_object_get(doc, "paused");
    if (!(res = json_object())) goto oom;
    json_object_foreach(paused, q, v)
    {
        json_int_t until = json_integer_value(v);
        if (json_object_set_new(res, q,
                                until ? json_integer(until) : json_null()) < 0)
            goto oom;
    }
    json_decref(doc);
    *out = res;
    return STELLAR_OK;
oom:
    json_decref(res);
    json_decref(doc);
    return st_fail(e, STELLAR_ENOMEM, "pauses: out of memory");
}

int stellar_limit_set(stellar *h, const char *target,
                      const stellar_limit *limit, stellar_error *e)
{
    int rc;

    st_err_clear(e);
    if ((rc = stellar_target_check(target, e)) != STELLAR_OK) return rc;
    if (!limit || limit->concurrency < 0 || limit->rate < 0 ||
        (limit->rate > 0 && limit->window_ms <= 0))
        return st_fail(e, STELLAR_EINVAL,
                       "limit %s: concurrency and rate must be >= 0, and a "
                       "rate needs a window > 0 ms",
                       target);
    if (limit->concurrency == 0 && limit->rate == 0)
        return st_fail(e, STELLAR_EINVAL,
                       "limit %s: give a concurrency or a rate (or clear "
                       "the limit)",
                       target);
    WITH_CONN(h, b,
              b->ops->limit_set(b, target, limit->concurrency, limit->rate,
                                limit->rate ? limit->window_ms : 0, e));
    return rc;
}

int stellar_limit_clear(stellar *h, const char *target, int64_t *removed,
                        stellar_error *e)
{
    int64_t n = 0;
    int rc;

    st_err_clear(e);
    if (removed) *removed = 0;
    if ((rc = stellar_target_check(target, e)) != STELLAR_OK) return rc;
    WITH_CONN(h, b, b->ops->limit_del(b, target, &n, e));
    if (rc == STELLAR_OK && removed) *removed = n;
    return rc;
}

/* One backend limit as the API shows it. */
static json_t *limit_json(const json_t *l)
{
    int64_t conc = json_integer_value(json_object_get(l, "concurrency"));
    int64_t rate = json_integer_value(json_object_get(l, "rate"));
    int64_t window = json_integer_value(json_object_get(l, "window_ms"));
    char text[64];

    stellar_rate_format(rate, window, text, sizeof text);
    return json_pack("{s:o, s:o, s:O, s:O}", "concurrency",
                     conc > 0 ? json_integer(conc) : json_null(), "rate",
                     rate > 0 ? json_string(text) : json_null(), "running",
                     json_object_get(l, "running"), "started",
                     json_object_get(l, "started"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int stellar_limits(stellar *h, json_t **out, stellar_error *e)
{
    json_t *doc = NULL, *res = NULL, *all, *v;
    const char *t, **keys = NULL;
    size_t n = 0, i;
    int rc;

    st_err_clear(e);
    *out = NULL;
    if ((rc = controls(h, &doc, e)) != STELLAR_OK) return rc;
    /* In target order, whatever order the backend lists them in. */
    all = json_object_get(doc, "limits");
    if (!(res = json_object()) ||
        !(keys = st_calloc(json_object_size(all) + 1, sizeof *keys)))
        goto oom;
    json_object_foreach(all, t, v) keys[n++] = t;
    qsort(keys, n, sizeof *keys, cmp_str);
    for (i = 0; i < n; i++)
        if (json_object_set_new(res, keys[i],
                                limit_json(json_object_get(all, keys[i]))) < 0)
            goto oom;
    st_free(keys);
    json_decref(doc);
    *out = res;
    return STELLAR_OK;
oom:
    st_free(keys);
    json_decref(res);
    json_decref(doc);
    return st_fail(e, STELLAR_ENOMEM, "limits: out of memory");
}
