/*
 * sched.c: the Redis backend's cron schedule records: the claim of a tick
 * together with its job, pause and first sight, and the listing, each one
 * Lua script (lua/sched_*.lua, which describe the keys). The keys are
 * Stellar's own (<ns>:stellar:schedule:<name>, <ns>:stellar:schedules):
 * node-resque never reads them, and a node-resque worker simply runs the
 * jobs a claim pushed, as any job of its queues.
 */
#include "rd.h"

#include <string.h>

int rd_sched_claim(st_backend *base, const char *name, int64_t tick_ms,
                   const char *queue, const char *payload, bool *claimed,
                   stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    int64_t n = 0;
    rd_cmd c;
    int rc;

    *claimed = false;
    if (!name || !queue || !payload)
        return st_fail(e, STELLAR_EINVAL,
                       "redis sched_claim: no name, queue or payload");
    rd_script(b, &c, RD_S_SCHED_CLAIM);
    rd_arg(&c, name);
    rd_arg_int(&c, tick_ms);
    rd_arg(&c, queue);
    rd_arg(&c, payload);
    /* Safe to send again after a lost reply: the second run finds the tick
     * taken (the job was stored once) and answers 0. */
    rc = rd_eval_int(b, RD_S_SCHED_CLAIM, &c, true, &n, e);
    if (rc == STELLAR_OK) *claimed = n == 1;
    return rc;
}

int rd_sched_set(st_backend *base, const char *name, int paused,
                 int64_t seen_ms, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;

    if (!name) return st_fail(e, STELLAR_EINVAL, "redis sched_set: no name");
    rd_script(b, &c, RD_S_SCHED_SET);
    rd_arg(&c, name);
    rd_arg_int(&c, paused < 0 ? -1 : paused > 0);
    rd_arg_int(&c, seen_ms < 0 ? -1 : seen_ms);
    return rd_eval_int(b, RD_S_SCHED_SET, &c, true, NULL, e);
}

/* A field of the listing: "" is unset (null), else an integer. */
static json_t *ms_or_null(const redisReply *r)
{
    int64_t v;

    if (r->type != REDIS_REPLY_STRING || r->len == 0 ||
        !rd_parse_i64(r->str, r->len, &v))
        return json_null();
    return json_integer((json_int_t)v);
}

int rd_sched_list(st_backend *base, json_t **out, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    redisReply *r = NULL;
    json_t *all = NULL, *one;
    rd_cmd c;
    size_t i;
    int rc;

    *out = NULL;
    rd_script(b, &c, RD_S_SCHED_LIST);
    if ((rc = rd_eval_reply(b, RD_S_SCHED_LIST, &c, true, &r, e))) return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 4) {
        freeReplyObject(r);
        return st_fail(e, STELLAR_EBACKEND,
                       "redis sched_list: unexpected reply");
    }
    if (!(all = json_object())) goto nomem;
    for (i = 0; i < r->elements; i += 4) {
        redisReply **f = r->element + i;
        char *name;
        if (f[0]->type != REDIS_REPLY_STRING) continue;
        if (!(one = json_object())) goto nomem;
        if (json_object_set_new(one, "last", ms_or_null(f[1])) ||
            json_object_set_new(one, "paused",
                                json_boolean(f[2]->type == REDIS_REPLY_STRING &&
                                             f[2]->len == 1 &&
                                             f[2]->str[0] == '1')) ||
            json_object_set_new(one, "seen", ms_or_null(f[3]))) {
            json_decref(one);
            goto nomem;
        }
        if (!(name = st_strndup(f[0]->str, f[0]->len))) {
            json_decref(one);
            goto nomem;
        }
        rc = json_object_set_new(all, name, one);
        st_free(name);
        if (rc) goto nomem;
    }
    freeReplyObject(r);
    *out = all;
    return STELLAR_OK;
nomem:
    json_decref(all);
    freeReplyObject(r);
    return rd_oom(e);
}
