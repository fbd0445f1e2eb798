/*
 * stats.c: the counters (NS:stat:*), the failed list, and the kv calls the
 * locks (jobLock, queueLock, the scheduler leader) and limits are built on:
 * plain SET/GET/DEL/PEXPIRE, and compare-and-delete/expire as scripts.
 */
#include "rd.h"

#include <string.h>

/* ---------------------------------------------------- Stats, failed --- */

int rd_stats(st_backend *base, json_t **out, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    char **keys = NULL;
    size_t n = 0, i, skip = strlen(b->prefix) + strlen("stat:");
    redisReply **r = NULL;
    json_t *o = NULL;
    int rc;

    *out = NULL;
    rc = rd_scan_read(b, "stat:", false, &keys, &n, &r, e);
    if (rc == STELLAR_OK && !(o = json_object())) rc = rd_oom(e);
    for (i = 0; rc == STELLAR_OK && i < n; i++) {
        const redisReply *x = rd_str_reply(r[i]);
        int64_t val;
        if (!x || strlen(keys[i]) <= skip ||
            !rd_parse_i64(x->str, x->len, &val))
            continue;
        if (json_object_set_new(o, keys[i] + skip, json_integer(val)) != 0)
            rc = rd_oom(e);
    }
    rd_scan_read_free(keys, n, r, false);
    if (rc != STELLAR_OK) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return STELLAR_OK;
}

int rd_stat_incr(st_backend *base, const char *k, int64_t by, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;

    rd_cmd_init(&c);
    rd_arg(&c, "INCRBY");
    rd_arg_own(&c, rd_key(b, "stat", k, NULL));
    rd_arg_int(&c, by);
    return rd_cmd_int(b, &c, false, NULL, e);
}

int rd_failed_count(st_backend *base, int64_t *n, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;

    rd_cmd_init(&c);
    rd_arg(&c, "LLEN");
    rd_arg_own(&c, rd_key(b, "failed", NULL));
    return rd_cmd_int(b, &c, true, n, e);
}

int rd_failed_range(st_backend *base, int64_t start, int64_t stop,
                    json_t **entries, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;

    return rd_lrange(b, rd_key(b, "failed", NULL), start, stop, entries, e);
}

int rd_failed_remove(st_backend *base, const char *entry,
                     const st_done *requeue, int64_t *removed, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;
    int rc;

    if (requeue && (!requeue->queue || !requeue->payload))
        return st_fail(e, STELLAR_EINVAL,
                       "failed_remove: requeue needs a queue and a payload");
    rd_script(b, &c, RD_S_FAILED_REMOVE);
    rd_arg(&c, entry);
    rd_arg(&c, requeue ? "1" : "0");
    rd_arg(&c, requeue ? requeue->queue : "");
    rd_arg(&c, requeue ? requeue->payload : "");
    rc = rd_eval_int(b, RD_S_FAILED_REMOVE, &c, false, removed, e);
    return rc;
}

/* --------------------------------------------------------------- KV --- */

int rd_kv_set(st_backend *base, const char *k, const char *value,
              int64_t ttl_ms, bool nx, bool *set, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;

    rd_cmd_init(&c);
    rd_arg(&c, "SET");
    rd_arg_own(&c, rd_key1(b, k, ""));
    rd_arg(&c, value);
    if (ttl_ms > 0) {
        rd_arg(&c, "PX");
        rd_arg_int(&c, ttl_ms);
    }
    if (nx) rd_arg(&c, "NX");
    return rd_cmd_status(b, &c, false, set, e);
}

int rd_kv_get(st_backend *base, const char *k, char **value, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;

    rd_cmd_init(&c);
    rd_arg(&c, "GET");
    rd_arg_own(&c, rd_key1(b, k, ""));
    return rd_cmd_string(b, &c, true, value, e);
}

int rd_kv_del(st_backend *base, const char *k, const char *value,
              int64_t *removed, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;
    int rc;

    if (!value) {
        rd_cmd_init(&c);
        rd_arg(&c, "DEL");
        rd_arg_own(&c, rd_key1(b, k, ""));
        return rd_cmd_int(b, &c, false, removed, e);
    }
    rd_script(b, &c, RD_S_KV_DEL);
    rd_arg(&c, k);
    rd_arg(&c, value);
    rc = rd_eval_int(b, RD_S_KV_DEL, &c, false, removed, e);
    return rc;
}

int rd_kv_expire(st_backend *base, const char *k, const char *value,
                 int64_t ttl_ms, bool *set, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    int64_t n = 0;
    rd_cmd c;
    int rc;

    if (!value) { /* any value: PEXPIRE / PERSIST say whether it was set */
        rd_cmd_init(&c);
        rd_arg(&c, ttl_ms > 0 ? "PEXPIRE" : "PERSIST");
        rd_arg_own(&c, rd_key1(b, k, ""));
        if (ttl_ms > 0) rd_arg_int(&c, ttl_ms);
        rc = rd_cmd_int(b, &c, false, &n, e);
        if (set) *set = rc == STELLAR_OK && n == 1;
        return rc;
    }
    rd_script(b, &c, RD_S_KV_EXPIRE);
    rd_arg(&c, k);
    rd_arg(&c, value);
    rd_arg_int(&c, ttl_ms);
    rc = rd_eval_int(b, RD_S_KV_EXPIRE, &c, false, &n, e);
    if (set) *set = rc == STELLAR_OK && n == 1;
    return rc;
}

int rd_kv_incr(st_backend *base, const char *k, int64_t by, int64_t ttl_ms,
               int64_t *out, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c[2], *i = &c[0], *x = &c[1];
    redisReply *r = NULL;
    int rc;

    rd_cmd_init(i);
    rd_arg(i, "INCRBY");
    rd_arg_own(i, rd_key1(b, k, ""));
    rd_arg_int(i, by);
    if (ttl_ms > 0) {
        rd_cmd_init(x);
        rd_arg(x, "PEXPIRE");
        rd_arg_own(x, rd_key1(b, k, ""));
        rd_arg_int(x, ttl_ms);
    }
    rc = rd_multi_cmds(b, c, ttl_ms > 0 ? 2 : 1, &r, e);
    if (rc != STELLAR_OK) return rc;
    if (out) *out = r->element[0]->integer;
    freeReplyObject(r);
    return STELLAR_OK;
}

int rd_kv_scan(st_backend *base, const char *prefix, json_t **out,
               stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    char **keys = NULL;
    size_t n = 0, i, skip = strlen(b->prefix);
    redisReply **r = NULL;
    json_t *o = NULL;
    int64_t now;
    int rc;

    *out = NULL;
    rc = rd_scan_read(b, prefix, true, &keys, &n, &r, e);
    now = st_now_ms();
    if (rc == STELLAR_OK && !(o = json_object())) rc = rd_oom(e);
    for (i = 0; rc == STELLAR_OK && i < n; i++) {
        const redisReply *v = rd_str_reply(r[i * 2]), *t = r[i * 2 + 1];
        json_t *ent;
        /* PTTL answers for a key of any type: an error reply (a user
         * without +pttl, say) is an error, not "no expiry". */
        if (!t || t->type == REDIS_REPLY_ERROR) {
            rc = rd_reply_fail(e, "kv scan", t);
            break;
        }
        /* Other types (lists, sets) under the prefix are not kv keys. */
        if (!v || strlen(keys[i]) < skip) continue;
        ent = json_object();
        /* expires: absolute time in ms since the epoch, as PTTL + now. */
        if (!ent ||
            json_object_set_new(ent, "value", rd_jstrn(v->str, v->len)) ||
            json_object_set_new(ent, "expires",
                                t && t->type == REDIS_REPLY_INTEGER &&
                                        t->integer >= 0
                                    ? json_integer(now + t->integer)
                                    : json_null())) {
            json_decref(ent);
            rc = rd_oom(e);
            break;
        }
        if (json_object_set_new(o, keys[i] + skip, ent) != 0) {
            rc = rd_oom(e);
            break;
        }
    }
    rd_scan_read_free(keys, n, r, true);
    if (rc != STELLAR_OK) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return STELLAR_OK;
}
