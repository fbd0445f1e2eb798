/*
 * call.c: the typed calls the operations are written with: one command
 * whose reply must be an integer, a status, a string or a list of strings;
 * a script (EVALSHA, reloaded once on NOSCRIPT); MULTI/EXEC; SCAN, alone
 * or with the values of the keys it finds; a batch of GETs. Each checks the
 * reply's type, turns an error reply into a stellar_error with the same texts
 * everywhere, and frees what it used, so that an operation is its arguments and
 * what it does with the answer.
 */
#include "rd.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_COUNT "100"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---------------------------------------------------- One command --- */

/* One command; an error reply becomes an error. c stays the caller's. */
static int run(rd_conn *b, rd_cmd *c, redisReply **r, bool retry,
               stellar_error *e)
{
    int rc = rd_exchange(b, &c, 1, r, retry, e);
    if (rc != STELLAR_OK) return rc;
    if ((*r)->type == REDIS_REPLY_ERROR) {
        rc = rd_reply_fail(e, c->argv[0], *r);
        freeReplyObject(*r);
        *r = NULL;
    }
    return rc;
}

int rd_cmd_reply(rd_conn *b, rd_cmd *c, bool retry, redisReply **r,
                 stellar_error *e)
{
    int rc = run(b, c, r, retry, e);

    rd_cmd_free(c);
    return rc;
}

int rd_cmd_int(rd_conn *b, rd_cmd *c, bool retry, int64_t *out,
               stellar_error *e)
{
    redisReply *r = NULL;
    int rc = rd_cmd_reply(b, c, retry, &r, e);

    if (rc != STELLAR_OK) return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = rd_reply_fail(e, "command", r);
    else if (out)
        *out = r->integer;
    freeReplyObject(r);
    return rc;
}

int rd_cmd_status(rd_conn *b, rd_cmd *c, bool retry, bool *ok, stellar_error *e)
{
    redisReply *r = NULL;
    int rc = rd_cmd_reply(b, c, retry, &r, e);

    if (rc != STELLAR_OK) return rc;
    if (ok) *ok = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return STELLAR_OK;
}

int rd_cmd_string(rd_conn *b, rd_cmd *c, bool retry, char **out,
                  stellar_error *e)
{
    redisReply *r = NULL;
    int rc = rd_cmd_reply(b, c, retry, &r, e);

    *out = NULL;
    if (rc != STELLAR_OK) return rc;
    if (r->type == REDIS_REPLY_STRING) {
        *out = st_strndup(r->str, r->len);
        if (!*out) rc = rd_oom(e);
    }
    freeReplyObject(r);
    return rc;
}

int rd_cmd_strings(rd_conn *b, rd_cmd *c, json_t **out, stellar_error *e)
{
    redisReply *r = NULL;
    int rc = rd_cmd_reply(b, c, true, &r, e);

    *out = NULL;
    if (rc != STELLAR_OK) return rc;
    rc = rd_strings_json(r, out, e);
    freeReplyObject(r);
    return rc;
}

int rd_lrange(rd_conn *b, char *key, int64_t start, int64_t stop, json_t **out,
              stellar_error *e)
{
    rd_cmd c;

    rd_cmd_init(&c);
    rd_arg(&c, "LRANGE");
    rd_arg_own(&c, key);
    rd_arg_int(&c, start);
    rd_arg_int(&c, stop);
    return rd_cmd_strings(b, &c, out, e);
}

int rd_smembers(rd_conn *b, char *key, redisReply **r, stellar_error *e)
{
    rd_cmd c;
    int rc;

    rd_cmd_init(&c);
    rd_arg(&c, "SMEMBERS");
    rd_arg_own(&c, key);
    if ((rc = rd_cmd_reply(b, &c, true, r, e)) != STELLAR_OK) return rc;
    if ((*r)->type != REDIS_REPLY_ARRAY) {
        rc = rd_reply_fail(e, "SMEMBERS", *r);
        freeReplyObject(*r);
        *r = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------- Scripts --- */

void rd_script(const rd_conn *b, rd_cmd *c, int s)
{
    rd_cmd_init(c);
    rd_arg(c, "EVALSHA");
    rd_arg(c, b->sha[s]);
    rd_arg(c, "0");
    rd_arg(c, b->prefix);
}

/* Runs a script call built with rd_script(); reloads it on NOSCRIPT. c
 * stays the caller's. */
static int eval(rd_conn *b, int s, rd_cmd *c, redisReply **r, bool retry,
                stellar_error *e)
{
    int rc = rd_exchange(b, &c, 1, r, retry, e);

    if (rc == STELLAR_OK && (*r)->type == REDIS_REPLY_ERROR &&
        strncmp((*r)->str, "NOSCRIPT", 8) == 0) {
        rd_cmd load, *lp = &load;
        redisReply *lr = NULL;
        freeReplyObject(*r);
        *r = NULL;
        rd_cmd_init(&load);
        rd_arg(&load, "SCRIPT");
        rd_arg(&load, "LOAD");
        rd_arg(&load, rd_lua[s]);
        rc = rd_exchange(b, &lp, 1, &lr, false, e);
        rd_cmd_free(&load);
        if (rc != STELLAR_OK) return rc;
        if (lr->type != REDIS_REPLY_STRING || lr->len != 40) {
            rc = rd_reply_fail(e, "SCRIPT LOAD", lr);
            freeReplyObject(lr);
            return rc;
        }
        memcpy(b->sha[s], lr->str, 41);
        freeReplyObject(lr);
        rc = rd_exchange(b, &c, 1, r, false, e);
    }
    if (rc == STELLAR_OK && (*r)->type == REDIS_REPLY_ERROR) {
        rc = rd_reply_fail(e, "script", *r);
        freeReplyObject(*r);
        *r = NULL;
    }
    return rc;
}

int rd_eval_reply(rd_conn *b, int s, rd_cmd *c, bool retry, redisReply **r,
                  stellar_error *e)
{
    int rc = eval(b, s, c, r, retry, e);

    rd_cmd_free(c);
    return rc;
}

int rd_eval_int(rd_conn *b, int s, rd_cmd *c, bool retry, int64_t *out,
                stellar_error *e)
{
    redisReply *r = NULL;
    int rc = rd_eval_reply(b, s, c, retry, &r, e);

    if (rc != STELLAR_OK) return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = rd_reply_fail(e, "script", r);
    else if (out)
        *out = r->integer;
    freeReplyObject(r);
    return rc;
}

/* ----------------------------------------------------- MULTI, SCAN --- */

int rd_multi(rd_conn *b, rd_cmd *const *cv, size_t n, rd_cmd *after,
             redisReply **exec, stellar_error *e)
{
    rd_cmd m, x;
    rd_cmd **all = NULL;
    redisReply **r = NULL;
    size_t i;
    int rc;

    if (exec) *exec = NULL;
    all = st_calloc(n + 3, sizeof *all);
    r = st_calloc(n + 3, sizeof *r);
    if (!all || !r) {
        st_free(all);
        st_free(r);
        return rd_oom(e);
    }
    rd_cmd_init(&m);
    rd_cmd_init(&x);
    rd_arg(&m, "MULTI");
    rd_arg(&x, "EXEC");
    all[0] = &m;
    for (i = 0; i < n; i++)
        all[i + 1] = cv[i];
    all[n + 1] = &x;
    all[n + 2] = after;
    rc = rd_exchange(b, all, n + 2 + (after != NULL), r, false, e);
    for (i = 0; rc == STELLAR_OK && i < n + 1; i++)
        if (r[i]->type == REDIS_REPLY_ERROR)
            rc = rd_reply_fail(e, all[i]->argv[0], r[i]);
    if (rc == STELLAR_OK) {
        redisReply *xr = r[n + 1];
        if (xr->type != REDIS_REPLY_ARRAY || xr->elements != n)
            rc = rd_reply_fail(e, "EXEC", xr);
        for (i = 0; rc == STELLAR_OK && i < n; i++)
            if (xr->element[i]->type == REDIS_REPLY_ERROR)
                rc = rd_reply_fail(e, cv[i]->argv[0], xr->element[i]);
        if (rc == STELLAR_OK && exec) {
            *exec = xr;
            r[n + 1] = NULL;
        }
    }
    rd_free_replies(r, n + 2 + (after != NULL));
    st_free(all);
    st_free(r);
    return rc;
}

int rd_multi_cmds(rd_conn *b, rd_cmd *cs, size_t n, redisReply **exec,
                  stellar_error *e)
{
    rd_cmd *cv[RD_MULTI_CMDS] = {0};
    size_t i;
    int rc;

    assert(n <= RD_MULTI_CMDS);
    for (i = 0; i < n; i++)
        cv[i] = &cs[i];
    rc = rd_multi(b, cv, n, NULL, exec, e);
    for (i = 0; i < n; i++)
        rd_cmd_free(&cs[i]);
    return rc;
}

int rd_scan(rd_conn *b, const char *head, char ***keys, size_t *nkeys,
            stellar_error *e)
{
    char cursor[32] = "0";
    char *pattern = rd_scan_pattern(b, head);
    char **v = NULL;
    size_t n = 0, cap = 0, i, j;
    int rc = STELLAR_OK;

    *keys = NULL;
    *nkeys = 0;
    if (!pattern) return rd_oom(e);
    do {
        rd_cmd c;
        redisReply *r = NULL, *list;
        rd_cmd_init(&c);
        rd_arg(&c, "SCAN");
        rd_arg(&c, cursor);
        rd_arg(&c, "MATCH");
        rd_arg(&c, pattern);
        rd_arg(&c, "COUNT");
        rd_arg(&c, SCAN_COUNT);
        rc = rd_cmd_reply(b, &c, true, &r, e);
        if (rc != STELLAR_OK) break;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[0]->len >= sizeof cursor ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            rc = rd_reply_fail(e, "SCAN", r);
            freeReplyObject(r);
            break;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
        list = r->element[1];
        for (i = 0; i < list->elements && rc == STELLAR_OK; i++) {
            if (list->element[i]->type != REDIS_REPLY_STRING) continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                char **nv = st_realloc(v, sizeof *nv * nc);
                if (!nv) {
                    rc = rd_oom(e);
                    break;
                }
                v = nv;
                cap = nc;
            }
            v[n] = st_strndup(list->element[i]->str, list->element[i]->len);
            if (!v[n])
                rc = rd_oom(e);
            else
                n++;
        }
        freeReplyObject(r);
    } while (rc == STELLAR_OK && strcmp(cursor, "0") != 0);
    st_free(pattern);
    if (rc != STELLAR_OK) {
        rd_free_strv(v, n);
        return rc;
    }
    if (n) qsort(v, n, sizeof *v, cmp_str);
    for (i = j = 0; i < n; i++) {
        if (j && strcmp(v[i], v[j - 1]) == 0) {
            st_free(v[i]);
            continue;
        }
        v[j++] = v[i];
    }
    *keys = v;
    *nkeys = j;
    return STELLAR_OK;
}

int rd_get_many(rd_conn *b, char **keys, size_t n, redisReply **r,
                stellar_error *e)
{
    rd_cmd *cs, **cv;
    size_t i;
    int rc;

    if (n == 0) return STELLAR_OK;
    if (!(cs = rd_cmds_new(n, &cv))) return rd_oom(e);
    for (i = 0; i < n; i++) {
        rd_arg(&cs[i], "GET");
        rd_arg(&cs[i], keys[i]);
    }
    rc = rd_exchange(b, cv, n, r, true, e);
    rd_cmds_free(cs, cv, n);
    return rc;
}

int rd_scan_read(rd_conn *b, const char *head, bool ttl, char ***keys,
                 size_t *nkeys, redisReply ***r, stellar_error *e)
{
    size_t per = ttl ? 2 : 1, n = 0, i;
    rd_cmd *cs = NULL, **cv = NULL;
    redisReply **rv = NULL;
    char **k = NULL;
    int rc;

    *keys = NULL;
    *nkeys = 0;
    *r = NULL;
    if ((rc = rd_scan(b, head, &k, &n, e)) != STELLAR_OK) return rc;
    cs = rd_cmds_new(n * per, &cv);
    rv = st_calloc(n * per + 1, sizeof *rv);
    if (!cs || !rv) rc = rd_oom(e);
    for (i = 0; rc == STELLAR_OK && i < n * per; i++) {
        rd_arg(&cs[i], i % per ? "PTTL" : "GET");
        rd_arg(&cs[i], k[i / per]);
    }
    if (rc == STELLAR_OK && n) rc = rd_exchange(b, cv, n * per, rv, true, e);
    rd_cmds_free(cs, cv, n * per);
    if (rc != STELLAR_OK) {
        rd_scan_read_free(k, n, rv, ttl);
        return rc;
    }
    *keys = k;
    *nkeys = n;
    *r = rv;
    return STELLAR_OK;
}

void rd_scan_read_free(char **keys, size_t nkeys, redisReply **r, bool ttl)
{
    if (r) rd_free_replies(r, nkeys * (ttl ? 2 : 1));
    st_free(r);
    rd_free_strv(keys, nkeys);
}
