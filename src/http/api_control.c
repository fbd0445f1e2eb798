/*
 * api_control.c: the /api/ routes of cron schedules (docs/schedules.md)
 * and of queue control: paused queues, concurrency and rate limits. The
 * route table at the end is read by api.c's router.
 */
#include "http/api.h"

#include <string.h>

/* ---------------------------------------------------------- Schedules --- */

static int get_schedules(st_api_call *c, stellar_error *e)
{
    return stellar_schedules(c->h, &c->out, e);
}

static int pause_schedule(st_api_call *c, bool paused, stellar_error *e)
{
    int rc = stellar_schedule_pause(c->h, c->cap[0], paused, e);
    if (rc == STELLAR_OK)
        c->out =
            json_pack("{s:s, s:b}", "schedule", c->cap[0], "paused", paused);
    return rc;
}

static int post_schedule_pause(st_api_call *c, stellar_error *e)
{
    return pause_schedule(c, true, e);
}

static int post_schedule_resume(st_api_call *c, stellar_error *e)
{
    return pause_schedule(c, false, e);
}

/* ------------------------------------------------------ Queue control --- */

/* POST queues/<q>/pause, body {} or {"for": ms}: as `stellar pause --json`
 * ({"queue", "paused": true, "paused_until": ms or null}). */
static int post_pause(st_api_call *c, stellar_error *e)
{
    json_t *f = json_object_get(c->body, "for"), *p = NULL;
    int64_t for_ms = 0;
    int rc;

    if (c->body && !json_is_object(c->body))
        return st_fail(e, STELLAR_EINVAL, "the body must be a JSON object");
    if (f && !json_is_null(f)) {
        if (!json_is_integer(f) || json_integer_value(f) <= 0)
            return st_fail(e, STELLAR_EINVAL,
                           "for must be a whole number of ms > 0");
        for_ms = json_integer_value(f);
    }
    if ((rc = stellar_pause(c->h, c->cap[0], for_ms, e))) return rc;
    if ((rc = stellar_pauses(c->h, &p, e))) return rc;
    c->out = json_pack(
        "{s:s, s:b, s:O}", "queue", c->cap[0], "paused", 1, "paused_until",
        json_object_get(p, c->cap[0]) ? json_object_get(p, c->cap[0])
                                      : json_null());
    json_decref(p);
    return STELLAR_OK;
}

/* POST queues/<q>/resume: {"queue", "paused": false, "was_paused"}. */
static int post_resume(st_api_call *c, stellar_error *e)
{
    bool was = false;
    int rc = stellar_resume(c->h, c->cap[0], &was, e);
    if (rc == STELLAR_OK)
        c->out = json_pack("{s:s, s:b, s:b}", "queue", c->cap[0], "paused", 0,
                           "was_paused", was);
    return rc;
}

/* GET limits: stellar_limits(). */
static int get_limits(st_api_call *c, stellar_error *e)
{
    return stellar_limits(c->h, &c->out, e);
}

/* GET limits/<target>: {"concurrency", "rate", "running", "started"} as
 * stellar_limits() lists it; 404 if the target has no limit. */
static int get_limit(st_api_call *c, stellar_error *e)
{
    json_t *all = NULL;
    int rc;

    if ((rc = stellar_target_check(c->cap[0], e))) return rc;
    if ((rc = stellar_limits(c->h, &all, e))) return rc;
    c->out = json_incref(json_object_get(all, c->cap[0]));
    json_decref(all);
    if (!c->out)
        return st_fail(e, STELLAR_ENOTFOUND, "no limit on '%s'", c->cap[0]);
    return STELLAR_OK;
}

/* PUT limits/<target>, body {"concurrency": n, "rate": "N/DURATION"} (one
 * or both, as in stellar.json): sets the limit and answers as GET. */
static int put_limit(st_api_call *c, stellar_error *e)
{
    json_t *conc = json_object_get(c->body, "concurrency");
    json_t *rate = json_object_get(c->body, "rate");
    stellar_limit l = {0};
    int rc;

    if ((rc = st_api_need_body(c, e))) return rc;
    if (conc && !json_is_null(conc)) {
        if (!json_is_integer(conc) || json_integer_value(conc) < 1)
            return st_fail(e, STELLAR_EINVAL,
                           "concurrency must be a whole number >= 1");
        l.concurrency = json_integer_value(conc);
    }
    if (rate && !json_is_null(rate)) {
        if (!json_is_string(rate))
            return st_fail(e, STELLAR_EINVAL,
                           "rate must be a string N/DURATION, as \"100/1m\"");
        rc = stellar_rate_parse(json_string_value(rate), &l.rate, &l.window_ms,
                                e);
        if (rc) return rc;
    }
    if ((rc = stellar_limit_set(c->h, c->cap[0], &l, e))) return rc;
    return get_limit(c, e);
}

/* DELETE limits/<target>: {"target", "removed": 1}; 404 if none. */
static int del_limit(st_api_call *c, stellar_error *e)
{
    int64_t removed = 0;
    int rc = stellar_limit_clear(c->h, c->cap[0], &removed, e);
    if (rc) return rc;
    if (!removed)
        return st_fail(e, STELLAR_ENOTFOUND, "no limit on '%s'", c->cap[0]);
    c->out = json_pack("{s:s, s:I}", "target", c->cap[0], "removed",
                       (json_int_t)removed);
    return STELLAR_OK;
}

/* ------------------------------------------------------------- Routes --- */

const st_api_route st_api_control_routes[] = {
    {"GET", "schedules", get_schedules},
    {"POST", "schedules/*/pause", post_schedule_pause},
    {"POST", "schedules/*/resume", post_schedule_resume},
    {"POST", "queues/*/pause", post_pause},
    {"POST", "queues/*/resume", post_resume},
    {"GET", "limits", get_limits},
    {"GET", "limits/*", get_limit},
    {"PUT", "limits/*", put_limit},
    {"DELETE", "limits/*", del_limit},
    {NULL, NULL, NULL},
};
