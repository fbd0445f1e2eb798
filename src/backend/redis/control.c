/*
 * control.c: the Redis backend's queue control (issue 15): pause, resume,
 * limits and the controls listing. The keys and the check reserve makes
 * are lua/lib/control.lua's: hashes under NS:stellar:, which node-resque
 * never reads (docs/compat.md). A change that may let a held-back job run
 * (resume, a limit removed or changed) publishes a wake-up, so idle
 * workers look again at once.
 */
#include "rd.h"

#include <stdio.h>
#include <string.h>

/* Runs c in MULTI, then a wake-up naming queue ("*": every worker). *n
 * (if not NULL): the integer reply of c. */
static int run_and_wake(rd_conn *b, rd_cmd *c, rd_cmd *c2, const char *queue,
                        int64_t *n, stellar_error *e)
{
    rd_cmd pub;
    rd_cmd *cv[2] = {c, c2};
    redisReply *r = NULL;
    int rc;

    rd_cmd_init(&pub);
    rd_arg(&pub, "PUBLISH");
    rd_arg_own(&pub, rd_key1(b, "stellar:wake", ""));
    rd_arg(&pub, queue);
    rc = rd_multi(b, cv, c2 ? 2 : 1, &pub, &r, e);
    if (rc == STELLAR_OK && n) {
        *n = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                     r->element[0]->type == REDIS_REPLY_INTEGER
                 ? r->element[0]->integer
                 : 0;
    }
    if (r) freeReplyObject(r);
    rd_cmd_free(&pub);
    return rc;
}

int rd_pause(st_backend *base, const char *queue, int64_t for_ms,
             stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;

    /* The until time is the server's (lua/pause.lua), as the check's. */
    rd_script(b, &c, RD_S_PAUSE);
    rd_arg(&c, queue);
    rd_arg_int(&c, for_ms);
    return rd_eval_int(b, RD_S_PAUSE, &c, true, NULL, e);
}

int rd_resume(st_backend *base, const char *queue, int64_t *removed,
              stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    json_t *ctl = NULL;
    rd_cmd c;
    int rc;

    /* Whether a live pause was there: the listing's answer, read first. */
    if (removed) {
        *removed = 0;
        if ((rc = rd_controls(base, 0, &ctl, e)) != STELLAR_OK) return rc;
        *removed =
            json_object_get(json_object_get(ctl, "paused"), queue) != NULL;
        json_decref(ctl);
    }
    rd_cmd_init(&c);
    rd_arg(&c, "HDEL");
    rd_arg_own(&c, rd_key(b, "stellar", "paused", NULL));
    rd_arg(&c, queue);
    rc = run_and_wake(b, &c, NULL, queue, NULL, e);
    rd_cmd_free(&c);
    return rc;
}

int rd_limit_set(st_backend *base, const char *target, int64_t concurrency,
                 int64_t rate, int64_t window_ms, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    char spec[96];
    rd_cmd c, d;
    int rc;

    snprintf(spec, sizeof spec, "%lld %lld %lld", (long long)concurrency,
             (long long)rate, (long long)window_ms);
    rd_cmd_init(&c);
    rd_arg(&c, "HSET");
    rd_arg_own(&c, rd_key(b, "stellar", "limits", NULL));
    rd_arg(&c, target);
    rd_arg(&c, spec);
    /* Without a rate the start times are of no use. */
    rd_cmd_init(&d);
    rd_arg(&d, rate > 0 ? "EXISTS" : "DEL");
    rd_arg_own(&d, rd_key(b, "stellar", "starts", target, NULL));
    rc = run_and_wake(b, &c, &d, "*", NULL, e);
    rd_cmd_free(&c);
    rd_cmd_free(&d);
    return rc;
}

int rd_limit_del(st_backend *base, const char *target, int64_t *removed,
                 stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c, d;
    int rc;

    rd_cmd_init(&c);
    rd_arg(&c, "HDEL");
    rd_arg_own(&c, rd_key(b, "stellar", "limits", NULL));
    rd_arg(&c, target);
    rd_cmd_init(&d);
    rd_arg(&d, "DEL");
    rd_arg_own(&d, rd_key(b, "stellar", "permits", target, NULL));
    rd_arg_own(&d, rd_key(b, "stellar", "starts", target, NULL));
    rc = run_and_wake(b, &c, &d, "*", removed, e);
    rd_cmd_free(&c);
    rd_cmd_free(&d);
    return rc;
}

/* An integer element of a script's reply, or 0. */
static int64_t int_at(const redisReply *a, size_t i)
{
    return i < a->elements && a->element[i]->type == REDIS_REPLY_INTEGER
               ? a->element[i]->integer
               : 0;
}

/* {"paused": ..., "limits": ...} from controls.lua's reply. */
static json_t *controls_json(const redisReply *r)
{
    const redisReply *ps = r->element[1], *ls = r->element[2];
    json_t *paused = json_object(), *limits = json_object();
    json_t *doc = json_pack("{s:o, s:o}", "paused", paused, "limits", limits);
    size_t i;

    if (!doc) return NULL;
    for (i = 0; ps->type == REDIS_REPLY_ARRAY && i + 1 < ps->elements; i += 2) {
        int64_t until = 0;
        const redisReply *k = ps->element[i], *v = ps->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        rd_parse_i64(v->str, v->len, &until);
        if (json_object_set_new(paused, k->str, json_integer(until)) < 0)
            goto fail;
    }
    for (i = 0; ls->type == REDIS_REPLY_ARRAY && i + 3 < ls->elements; i += 4) {
        const redisReply *k = ls->element[i], *v = ls->element[i + 1];
        long long conc = 0, rate = 0, window = 0;
        json_t *one;
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            sscanf(v->str, "%lld %lld %lld", &conc, &rate, &window) != 3)
            continue;
        one = json_pack("{s:I, s:I, s:I, s:I, s:I}", "concurrency",
                        (json_int_t)conc, "rate", (json_int_t)rate, "window_ms",
                        (json_int_t)window, "running",
                        (json_int_t)int_at(ls, i + 2), "started",
                        (json_int_t)int_at(ls, i + 3));
        if (!one || json_object_set_new(limits, k->str, one) < 0) goto fail;
    }
    return doc;
fail:
    json_decref(doc);
    return NULL;
}

int rd_controls(st_backend *base, int64_t now_ms, json_t **out,
                stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    redisReply *r = NULL;
    rd_cmd c;
    int rc;

    (void)now_ms; /* the server's clock decides (lua/lib/control.lua) */
    *out = NULL;
    rd_script(b, &c, RD_S_CONTROLS);
    rc = rd_eval_reply(b, RD_S_CONTROLS, &c, true, &r, e);
    if (rc != STELLAR_OK) return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        rc = rd_reply_fail(e, "controls script", r);
    } else if (!(*out = controls_json(r))) {
        rc = rd_oom(e);
    }
    freeReplyObject(r);
    return rc;
}
