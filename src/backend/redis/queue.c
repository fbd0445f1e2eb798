/*
 * queue.c: queues and delayed jobs in node-resque's layout (reference
 * §2-§3): push (MULTI/EXEC as node-resque's enqueue, plus the wake-up),
 * enqueueAt, listing, deleting, and the scheduler's promotion of due jobs
 * (lua/promote.lua). Times: the API speaks ms, Redis keeps seconds.
 */
#include "rd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUSH_CHUNK 1000 /* payloads per RPUSH inside one MULTI */

/* ----------------------------------------------------------- Queues --- */

int rd_push(st_backend *base, const char *queue, const char *const *payloads,
            size_t n, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    size_t nchunks = (n + PUSH_CHUNK - 1) / PUSH_CHUNK, ncmd = 1 + nchunks;
    size_t i, j;
    rd_cmd *cs, **cv, pub;
    int rc;

    if (n == 0) return STELLAR_OK;
    if (!(cs = rd_cmds_new(ncmd, &cv))) return rd_oom(e);
    /* node-resque's enqueue: MULTI; SADD queues q; RPUSH queue:q p; EXEC. */
    rd_arg(&cs[0], "SADD");
    rd_arg_own(&cs[0], rd_key(b, "queues", NULL));
    rd_arg(&cs[0], queue);
    for (i = 0; i < nchunks; i++) {
        rd_cmd *c = &cs[1 + i];
        rd_arg(c, "RPUSH");
        rd_arg_own(c, rd_key(b, "queue", queue, NULL));
        for (j = i * PUSH_CHUNK; j < n && j < (i + 1) * PUSH_CHUNK; j++)
            rd_arg(c, payloads[j]);
    }
    /* Ours, after EXEC: wakes idle workers waiting on the channel (see
     * the top), the job being there by then. */
    rd_cmd_init(&pub);
    rd_arg(&pub, "PUBLISH");
    rd_arg_own(&pub, rd_key1(b, "stellar:wake", ""));
    rd_arg(&pub, queue);
    rc = rd_multi(b, cv, ncmd, &pub, NULL, e);
    rd_cmd_free(&pub);
    rd_cmds_free(cs, cv, ncmd);
    return rc;
}

int rd_push_at(st_backend *base, int64_t at_ms, const char *queue,
               const char *payload, bool later, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    int64_t s = rd_ms_to_s(at_ms);
    redisReply *r = NULL;
    rd_cmd c;
    int rc;

    (void)queue; /* the payload names its queue */
    rd_script(b, &c, RD_S_PUSH_AT);
    rd_arg_int(&c, s);
    rd_arg(&c, payload);
    rd_arg(&c, later ? "later" : "");
    rc = rd_eval_reply(b, RD_S_PUSH_AT, &c, false, &r, e);
    if (rc != STELLAR_OK) return rc;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        rc = st_fail(e, STELLAR_EEXISTS,
                     "Job already enqueued at this time with same arguments "
                     "(second %lld)",
                     (long long)s);
    freeReplyObject(r);
    return rc;
}

static int cmp_reply_str(const void *a, const void *b)
{
    const redisReply *x = *(redisReply *const *)a, *y = *(redisReply *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->str, y->str, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

int rd_queues(st_backend *base, json_t **names, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    redisReply *r = NULL;
    int rc;

    *names = NULL;
    rc = rd_smembers(b, rd_key(b, "queues", NULL), &r, e);
    if (rc != STELLAR_OK) return rc;
    /* Byte order, as JS sorts ASCII names. */
    if (r->elements > 1)
        qsort(r->element, r->elements, sizeof *r->element, cmp_reply_str);
    rc = rd_strings_json(r, names, e);
    freeReplyObject(r);
    return rc;
}

int rd_length(st_backend *base, const char *queue, int64_t *n, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;

    rd_cmd_init(&c);
    rd_arg(&c, "LLEN");
    rd_arg_own(&c, rd_key(b, "queue", queue, NULL));
    return rd_cmd_int(b, &c, true, n, e);
}

int rd_queued(st_backend *base, const char *queue, int64_t start, int64_t stop,
              json_t **payloads, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;

    return rd_lrange(b, rd_key(b, "queue", queue, NULL), start, stop, payloads,
                     e);
}

int rd_del(st_backend *base, const char *queue, const char *payload,
           int64_t count, int64_t *removed, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;

    rd_cmd_init(&c);
    rd_arg(&c, "LREM");
    rd_arg_own(&c, rd_key(b, "queue", queue, NULL));
    rd_arg_int(&c, count);
    rd_arg(&c, payload);
    return rd_cmd_int(b, &c, false, removed, e);
}

int rd_del_queue(st_backend *base, const char *queue, int64_t *removed,
                 stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c[2], *d = &c[0], *s = &c[1];
    redisReply *x = NULL;
    int rc;

    /* node-resque's delQueue: MULTI; DEL queue:q; SREM queues q; EXEC. */
    rd_cmd_init(d);
    rd_cmd_init(s);
    rd_arg(d, "DEL");
    rd_arg_own(d, rd_key(b, "queue", queue, NULL));
    rd_arg(s, "SREM");
    rd_arg_own(s, rd_key(b, "queues", NULL));
    rd_arg(s, queue);
    rc = rd_multi_cmds(b, c, 2, &x, e);
    if (rc != STELLAR_OK) return rc;
    if (removed)
        *removed = (x->element[0]->integer > 0 || x->element[1]->integer > 0);
    freeReplyObject(x);
    return STELLAR_OK;
}

/* ---------------------------------------------------------- Delayed --- */

/* An array of seconds (strings or integers) as sorted ms. */
static int seconds_json(const redisReply *r, bool after_colon, json_t **out,
                        stellar_error *e)
{
    int64_t *v;
    size_t i, n = 0;

    *out = NULL;
    if (r->type != REDIS_REPLY_ARRAY) return rd_reply_fail(e, "script", r);
    v = st_calloc(r->elements ? r->elements : 1, sizeof *v);
    if (!v) return rd_oom(e);
    for (i = 0; i < r->elements; i++) {
        const redisReply *x = r->element[i];
        const char *s = x->str;
        size_t len = x->len;
        int64_t ms;
        if (x->type == REDIS_REPLY_INTEGER) {
            v[n++] = (int64_t)x->integer * 1000;
            continue;
        }
        if (x->type != REDIS_REPLY_STRING) continue;
        if (after_colon) {
            const char *c = s + len;
            while (c > s && c[-1] != ':')
                c--;
            len -= (size_t)(c - s);
            s = c;
        }
        if (rd_parse_s_as_ms(s, len, &ms)) v[n++] = ms;
    }
    *out = rd_sorted_ints(v, n);
    st_free(v);
    return *out ? STELLAR_OK : rd_oom(e);
}

int rd_del_delayed(st_backend *base, const char *payload, json_t **ts_ms,
                   stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    redisReply *r = NULL;
    rd_cmd c;
    int rc;

    *ts_ms = NULL;
    rd_script(b, &c, RD_S_DEL_DELAYED);
    rd_arg(&c, payload);
    rc = rd_eval_reply(b, RD_S_DEL_DELAYED, &c, false, &r, e);
    if (rc != STELLAR_OK) return rc;
    rc = seconds_json(r, false, ts_ms, e);
    freeReplyObject(r);
    return rc;
}

int rd_replace(st_backend *base, const char *queue, const char *payload,
               int64_t at_ms, int64_t *removed, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;
    int rc;

    rd_script(b, &c, RD_S_REPLACE);
    rd_arg(&c, payload);
    rd_arg(&c, queue);
    if (at_ms == ST_REPLACE_NOW)
        rd_arg(&c, "now");
    else if (at_ms > 0)
        rd_arg_int(&c, rd_ms_to_s(at_ms));
    else
        rd_arg(&c, "none");
    /* Safe to send again after a lost reply: a second run leaves the same
     * one copy (only *removed may then read 1 for our own push). */
    rc = rd_eval_int(b, RD_S_REPLACE, &c, true, removed, e);
    return rc;
}

int rd_scheduled_at(st_backend *base, const char *payload, json_t **ts_ms,
                    stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    redisReply *r = NULL;
    int rc;

    *ts_ms = NULL;
    /* SMEMBERS timestamps:<payload>: members "delayed:<s>". */
    rc = rd_smembers(b, rd_key1(b, "timestamps:", payload), &r, e);
    if (rc != STELLAR_OK) return rc;
    rc = seconds_json(r, true, ts_ms, e);
    freeReplyObject(r);
    return rc;
}

/* The <s> of every NS:delayed:<s> key (not delayed_queue_schedule: the
 * pattern needs the ':'; and only integer suffixes count). */
static int delayed_seconds(rd_conn *b, char ***sv, size_t *n, stellar_error *e)
{
    char **keys = NULL;
    size_t nk = 0, i, j = 0, skip = strlen(b->prefix) + strlen("delayed:");
    int rc;

    *sv = NULL;
    *n = 0;
    rc = rd_scan(b, "delayed:", &keys, &nk, e);
    if (rc != STELLAR_OK) return rc;
    for (i = 0; i < nk; i++) {
        int64_t s;
        const char *suffix = keys[i] + skip;
        if (strlen(keys[i]) > skip &&
            rd_parse_i64(suffix, strlen(suffix), &s)) {
            memmove(keys[i], suffix, strlen(suffix) + 1);
            keys[j++] = keys[i];
        } else {
            st_free(keys[i]);
        }
    }
    *sv = keys;
    *n = j;
    return STELLAR_OK;
}

int rd_timestamps(st_backend *base, json_t **ts_ms, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    char **sv = NULL;
    size_t n = 0, i;
    int64_t *v;
    int rc;

    *ts_ms = NULL;
    rc = delayed_seconds(b, &sv, &n, e);
    if (rc != STELLAR_OK) return rc;
    v = st_calloc(n ? n : 1, sizeof *v);
    if (!v) {
        rd_free_strv(sv, n);
        return rd_oom(e);
    }
    for (i = 0; i < n; i++) {
        int64_t s = 0;
        rd_parse_i64(sv[i], strlen(sv[i]), &s);
        v[i] = s * 1000;
    }
    /* Numeric order (node-resque sorts the text; same for today's 10-digit
     * timestamps). */
    *ts_ms = rd_sorted_ints(v, n);
    st_free(v);
    rd_free_strv(sv, n);
    return *ts_ms ? STELLAR_OK : rd_oom(e);
}

int rd_delayed_at(st_backend *base, int64_t ts_ms, json_t **payloads,
                  stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    char s[24];

    snprintf(s, sizeof s, "%lld", (long long)rd_ms_to_s(ts_ms));
    return rd_lrange(b, rd_key1(b, "delayed:", s), 0, -1, payloads, e);
}

int rd_del_delayed_at(st_backend *base, int64_t ts_ms, int64_t *removed,
                      stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    char **sv = NULL;
    size_t n = 0, i;
    rd_cmd c;
    int rc;

    if (ts_ms < 0) {
        rc = delayed_seconds(b, &sv, &n, e);
        if (rc != STELLAR_OK) return rc;
    }
    rd_script(b, &c, RD_S_DEL_DELAYED_AT);
    rd_arg(&c, ts_ms < 0 ? "1" : "0");
    if (ts_ms >= 0) rd_arg_int(&c, rd_ms_to_s(ts_ms));
    for (i = 0; i < n; i++)
        rd_arg(&c, sv[i]);
    rc = rd_eval_int(b, RD_S_DEL_DELAYED_AT, &c, false, removed, e);
    rd_free_strv(sv, n);
    return rc;
}

int rd_promote_due(st_backend *base, int64_t now_ms, int64_t max,
                   int64_t *moved, int64_t *next_ms, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    redisReply *r = NULL;
    rd_cmd c;
    int rc;

    /* Due means second * 1000 <= now_ms, i.e. second <= floor(now / 1000).
     * node-resque's scheduler compares with round(now / 1000), so it may
     * move a job up to half a second before its (rounded) time; backend.h
     * promises at <= now_ms, and the ms the API reports are second * 1000. */
    rd_script(b, &c, RD_S_PROMOTE);
    rd_arg_int(&c, now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000));
    rd_arg_int(&c, max);
    rc = rd_eval_reply(b, RD_S_PROMOTE, &c, false, &r, e);
    if (rc != STELLAR_OK) return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        rc = rd_reply_fail(e, "promote script", r);
    } else {
        int64_t nx = -1;
        if (moved) *moved = r->element[0]->integer;
        if (strcmp(r->element[1]->str, "-1") != 0 &&
            !rd_parse_s_as_ms(r->element[1]->str, r->element[1]->len, &nx))
            nx = -1;
        if (next_ms) *next_ms = nx;
    }
    freeReplyObject(r);
    return rc;
}
