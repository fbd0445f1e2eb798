/*
 * clean.c: the workers listing and the clean-up of a dead worker
 * (forceCleanWorker, lua/clean.lua): reading workers-set members, pings and
 * working-on records, written by us or by node-resque, and recovering the
 * job a dead worker held. The dates node-resque writes are read by
 * st_js_date_parse and the failed entry forceCleanWorker writes is built by
 * st_timeout_entry (both shared with the core).
 */
#include "rd.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CLEAN_ATTEMPTS 5

/* Parses a workers-set member as node-resque's Queue#workers (§2.5):
 * "name" / "name:queues" / "host:pid:queues,with:colons". */
static int parse_member(const char *m, size_t n, char **name, char **qs)
{
    const char *c1 = memchr(m, ':', n), *c2;

    *name = *qs = NULL;
    if (!c1) {
        *name = st_strndup(m, n);
        return *name ? 0 : -1;
    }
    c2 = memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - m));
    if (!c2) c2 = c1;
    *name = st_strndup(m, (size_t)(c2 - m));
    *qs = st_strndup(c2 + 1, n - (size_t)(c2 + 1 - m));
    if (!*name || !*qs) {
        st_free(*name);
        st_free(*qs);
        *name = *qs = NULL;
        return -1;
    }
    return 0;
}

/* The in-flight job of a working-on record: queue and raw payload (new
 * strings). Our records carry the payload's own bytes; node-resque's
 * carry a cjson re-encoding, which is re-serialised as JSON.stringify. */
typedef struct held {
    json_t *rec;
    const char *queue; /* borrowed from rec, may be NULL */
    char *payload;     /* new string, may be NULL */
    bool has_run_at;
    int64_t run_at_ms;
} held;

static void held_clear(held *h)
{
    json_decref(h->rec);
    st_free(h->payload);
    memset(h, 0, sizeof *h);
}

/* Skips one JSON value at p (of a text already known to be valid JSON). */
static const char *skip_json(const char *p, const char *end)
{
    int depth = 0;

    do {
        if (p >= end) return NULL;
        if (*p == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\') p++;
            if (p >= end) return NULL;
            p++;
        } else if (*p == '{' || *p == '[') {
            depth++;
            p++;
        } else if (*p == '}' || *p == ']') {
            if (depth == 0) return NULL;
            depth--;
            p++;
        } else if (depth > 0) {
            p++;
        } else {
            while (p < end && !strchr(",}] \t\r\n", *p))
                p++;
        }
    } while (depth > 0);
    return p;
}

/* In a record reserve() wrote ({"run_at":..,"queue":..,"payload":<raw>,..}),
 * the payload's own bytes. */
static bool own_payload(const char *s, size_t n, const char **ps, size_t *pn)
{
    static const char *const heads[] = {
        "{\"run_at\":", ",\"queue\":", ",\"payload\":"};
    const char *p = s, *end = s + n;
    size_t i, hl;

    for (i = 0; i < 3; i++) {
        hl = strlen(heads[i]);
        if ((size_t)(end - p) < hl || memcmp(p, heads[i], hl) != 0)
            return false;
        p += hl;
        if (i == 2) break;
        if (*p != '"' || !(p = skip_json(p, end))) return false;
    }
    *ps = p;
    if (!(p = skip_json(p, end))) return false;
    *pn = (size_t)(p - *ps);
    return true;
}

/* False if out of memory (h is then cleared). */
static bool held_parse(held *h, const char *s, size_t n)
{
    json_t *v;
    const char *raw;
    size_t rawn;
    stellar_error pe;

    memset(h, 0, sizeof *h);
    h->rec = st_json_parse(s, n, &pe);
    if (!h->rec) return pe.code != STELLAR_ENOMEM;
    if (!json_is_object(h->rec)) return true;
    h->queue = json_string_value(json_object_get(h->rec, "queue"));
    v = json_object_get(h->rec, "payload");
    if (!json_is_string(v) && own_payload(s, n, &raw, &rawn))
        h->payload = st_strndup(raw, rawn);
    else if (json_is_string(v))
        h->payload = st_strndup(json_string_value(v), json_string_length(v));
    else if (v)
        h->payload = st_json_dumps(v);
    if (v && !h->payload) {
        held_clear(h);
        return false;
    }
    v = json_object_get(h->rec, "run_at");
    if (json_is_string(v))
        h->has_run_at = st_js_date_parse(json_string_value(v), &h->run_at_ms);
    else if (json_is_number(v)) {
        h->has_run_at = true;
        h->run_at_ms = (int64_t)json_number_value(v);
    }
    return true;
}

/* {"run_at": ms, "queue": q, "payload": raw} or null; NULL if out of
 * memory. */
static json_t *held_json(const held *h)
{
    json_t *o;
    if (!json_is_object(h->rec)) return json_null();
    o = json_object();
    if (!o) return NULL;
    if (json_object_set_new(o, "run_at",
                            h->has_run_at ? json_integer(h->run_at_ms)
                                          : json_null()) ||
        json_object_set_new(o, "queue",
                            h->queue ? json_string(h->queue) : json_null()) ||
        json_object_set_new(o, "payload",
                            h->payload
                                ? rd_jstrn(h->payload, strlen(h->payload))
                                : json_null())) {
        json_decref(o);
        return NULL;
    }
    return o;
}

typedef struct wrow {
    char *name, *qs; /* qs NULL: unknown */
    bool ghost;      /* a ping record without a workers-set member */
} wrow;

static void wrows_free(wrow *v, size_t n)
{
    size_t i;
    if (!v) return;
    for (i = 0; i < n; i++) {
        st_free(v[i].name);
        st_free(v[i].qs);
    }
    st_free(v);
}

/* The ping record's time (ms) and queues (new string, may be NULL). False
 * if out of memory. */
static bool ping_parse(const redisReply *r, bool *has, int64_t *ms, char **qs)
{
    json_t *p, *t, *q;
    stellar_error pe;
    bool ok = true;

    *has = false;
    if (qs) *qs = NULL;
    if (!rd_str_reply(r)) return true;
    p = st_json_parse(r->str, r->len, &pe);
    if (!p) return pe.code != STELLAR_ENOMEM;
    t = json_object_get(p, "time");
    q = json_object_get(p, "queues");
    if (json_is_number(t)) {
        *has = true;
        *ms = (int64_t)(json_number_value(t) * 1000.0);
    }
    if (qs && json_is_string(q))
        ok = (*qs = st_strdup(json_string_value(q))) != NULL;
    json_decref(p);
    return ok;
}

/* Rows for every workers-set member, then for every ping record whose
 * name has no member (ghost; queues still unknown). */
static int worker_rows(rd_conn *b, const char *only, wrow **rows, size_t *nrows,
                       stellar_error *e)
{
    redisReply *r = NULL;
    char **pk = NULL;
    size_t npk = 0, i, j, n = 0, cap;
    size_t skip = strlen(b->prefix) + strlen("worker:ping:");
    wrow *v = NULL;
    int rc;

    *rows = NULL;
    *nrows = 0;
    rc = rd_smembers(b, rd_key(b, "workers", NULL), &r, e);
    if (rc != STELLAR_OK) return rc;
    rc = rd_scan(b, "worker:ping:", &pk, &npk, e);
    cap = r->elements + npk;
    if (rc == STELLAR_OK && !(v = st_calloc(cap ? cap : 1, sizeof *v)))
        rc = rd_oom(e);
    for (i = 0; rc == STELLAR_OK && i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING) continue;
        if (parse_member(m->str, m->len, &v[n].name, &v[n].qs)) {
            rc = rd_oom(e);
            break;
        }
        if (only && strcmp(only, v[n].name) != 0) {
            st_free(v[n].name);
            st_free(v[n].qs);
            v[n].name = v[n].qs = NULL;
            continue;
        }
        n++;
    }
    for (i = 0; rc == STELLAR_OK && i < npk; i++) {
        const char *name = pk[i] + skip;
        bool known = false;
        if (strlen(pk[i]) <= skip) continue;
        if (only && strcmp(only, name) != 0) continue;
        for (j = 0; j < n && !known; j++)
            known = !v[j].ghost && strcmp(v[j].name, name) == 0;
        if (known) continue;
        v[n].name = st_strdup(name);
        v[n].ghost = true;
        if (!v[n].name)
            rc = rd_oom(e);
        else
            n++;
    }
    freeReplyObject(r);
    rd_free_strv(pk, npk);
    if (rc != STELLAR_OK) {
        wrows_free(v, n);
        return rc;
    }
    *rows = v;
    *nrows = n;
    return STELLAR_OK;
}

/*
 * For each row: started, ping and working-on records. Ghosts get their
 * queues from their ping record first, then their working-on record, so
 * two round trips. vals[i*3 + {0,1,2}] = started, ping, working-on.
 */
static int worker_vals(rd_conn *b, wrow *v, size_t n, redisReply ***vals,
                       stellar_error *e)
{
    char **keys = st_calloc(n * 3 + 1, sizeof *keys);
    redisReply **r = st_calloc(n * 3 + 1, sizeof *r);
    size_t i;
    int rc = STELLAR_OK;

    *vals = NULL;
    if (!keys || !r) {
        st_free(keys);
        st_free(r);
        return rd_oom(e);
    }
    /* Round one: every ping record, and members' started and working-on. */
    for (i = 0; i < n && rc == STELLAR_OK; i++) {
        keys[i * 3 + 1] = rd_key(b, "worker", "ping", v[i].name, NULL);
        if (!v[i].ghost) {
            keys[i * 3] = rd_key(b, "worker", v[i].name, v[i].qs ? v[i].qs : "",
                                 "started", NULL);
            keys[i * 3 + 2] =
                rd_key(b, "worker", v[i].name, v[i].qs ? v[i].qs : "", NULL);
        } else {
            keys[i * 3] = st_strdup("");
            keys[i * 3 + 2] = st_strdup("");
        }
        if (!keys[i * 3] || !keys[i * 3 + 1] || !keys[i * 3 + 2])
            rc = rd_oom(e);
    }
    if (rc == STELLAR_OK) rc = rd_get_many(b, keys, n * 3, r, e);
    /* Round two: ghosts whose ping names their queues. */
    if (rc == STELLAR_OK) {
        size_t ng = 0;
        char **gk = st_calloc(n * 2 + 1, sizeof *gk);
        size_t *gi = st_calloc(n + 1, sizeof *gi);
        redisReply **gr = st_calloc(n * 2 + 1, sizeof *gr);
        if (!gk || !gi || !gr) rc = rd_oom(e);
        for (i = 0; rc == STELLAR_OK && i < n; i++) {
            bool has;
            int64_t ms;
            if (!v[i].ghost) continue;
            if (!ping_parse(r[i * 3 + 1], &has, &ms, &v[i].qs)) {
                rc = rd_oom(e);
                break;
            }
            if (!v[i].qs) continue;
            gk[ng * 2] =
                rd_key(b, "worker", v[i].name, v[i].qs, "started", NULL);
            gk[ng * 2 + 1] = rd_key(b, "worker", v[i].name, v[i].qs, NULL);
            gi[ng++] = i;
            if (!gk[ng * 2 - 2] || !gk[ng * 2 - 1]) rc = rd_oom(e);
        }
        if (rc == STELLAR_OK && ng) rc = rd_get_many(b, gk, ng * 2, gr, e);
        for (i = 0; rc == STELLAR_OK && i < ng; i++) {
            size_t k = gi[i];
            if (r[k * 3]) freeReplyObject(r[k * 3]);
            if (r[k * 3 + 2]) freeReplyObject(r[k * 3 + 2]);
            r[k * 3] = gr[i * 2];
            r[k * 3 + 2] = gr[i * 2 + 1];
            gr[i * 2] = gr[i * 2 + 1] = NULL;
        }
        if (gr) rd_free_replies(gr, n * 2);
        rd_free_strv(gk, n * 2);
        st_free(gi);
        st_free(gr);
    }
    rd_free_strv(keys, n * 3);
    if (rc != STELLAR_OK) {
        rd_free_replies(r, n * 3);
        st_free(r);
        return rc;
    }
    *vals = r;
    return STELLAR_OK;
}

int rd_workers(st_backend *base, json_t **out, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    wrow *v = NULL;
    size_t n = 0, i;
    redisReply **r = NULL;
    json_t *all = NULL;
    int rc;

    *out = NULL;
    rc = worker_rows(b, NULL, &v, &n, e);
    if (rc == STELLAR_OK) rc = worker_vals(b, v, n, &r, e);
    if (rc == STELLAR_OK && !(all = json_object())) rc = rd_oom(e);
    for (i = 0; rc == STELLAR_OK && i < n; i++) {
        const redisReply *st = rd_str_reply(r[i * 3]),
                         *wo = rd_str_reply(r[i * 3 + 2]);
        json_t *o = json_object(), *prev, *won;
        int64_t ms;
        bool has;
        held h;

        if (!o ||
            json_object_set_new(o, "queues",
                                v[i].qs ? json_string(v[i].qs) : json_null()) ||
            json_object_set_new(o, "started",
                                st && rd_parse_s_as_ms(st->str, st->len, &ms)
                                    ? json_integer(ms)
                                    : json_null()) ||
            !ping_parse(r[i * 3 + 1], &has, &ms, NULL) ||
            json_object_set_new(o, "ping",
                                has ? json_integer(ms) : json_null())) {
            json_decref(o);
            rc = rd_oom(e);
            break;
        }
        memset(&h, 0, sizeof h);
        won = !wo || held_parse(&h, wo->str, wo->len) ? held_json(&h) : NULL;
        held_clear(&h);
        if (json_object_set_new(o, "working_on", won)) {
            json_decref(o);
            rc = rd_oom(e);
            break;
        }
        /* Two members with one name (a stale registration): keep the one
         * holding a job. */
        prev = json_object_get(all, v[i].name);
        if (prev && !json_is_null(json_object_get(prev, "working_on")) &&
            json_is_null(json_object_get(o, "working_on"))) {
            json_decref(o);
            continue;
        }
        if (json_object_set_new(all, v[i].name, o) != 0) rc = rd_oom(e);
    }
    if (r) rd_free_replies(r, n * 3);
    st_free(r);
    wrows_free(v, n);
    if (rc != STELLAR_OK) {
        json_decref(all);
        return rc;
    }
    *out = all;
    return STELLAR_OK;
}

/* The queue a held payload goes back to: the record's, else the
 * payload's own, else "default". New string; NULL if out of memory. */
static char *held_queue(const held *h)
{
    json_t *p;
    char *q = NULL;
    stellar_error pe;

    if (h->queue && h->queue[0]) return st_strdup(h->queue);
    p = h->payload ? st_json_parse(h->payload, strlen(h->payload), &pe) : NULL;
    if (h->payload && !p && pe.code == STELLAR_ENOMEM) return NULL;
    q = st_strdup(json_is_string(json_object_get(p, "queue"))
                      ? json_string_value(json_object_get(p, "queue"))
                      : "default");
    json_decref(p);
    return q;
}

static int clean_once(rd_conn *b, const char *name, enum st_clean_mode mode,
                      const char *failed_entry, char **payload, bool *again,
                      stellar_error *e)
{
    wrow *v = NULL;
    size_t n = 0, i, hidx = 0;
    redisReply **r = NULL, *sr = NULL;
    held h;
    rd_cmd c;
    int rc;

    *again = false;
    memset(&h, 0, sizeof h);
    rc = worker_rows(b, name, &v, &n, e);
    if (rc == STELLAR_OK && n == 0)
        rc = st_fail(e, STELLAR_ENOTFOUND, "no worker named '%s'", name);
    if (rc == STELLAR_OK) rc = worker_vals(b, v, n, &r, e);
    if (rc != STELLAR_OK) {
        wrows_free(v, n);
        return rc;
    }
    for (i = 0; i < n && !hidx; i++) {
        const redisReply *wo = rd_str_reply(r[i * 3 + 2]);
        if (wo) {
            hidx = i + 1;
            if (!held_parse(&h, wo->str, wo->len)) rc = rd_oom(e);
        }
    }
    if (rc != STELLAR_OK) {
        rd_free_replies(r, n * 3);
        st_free(r);
        wrows_free(v, n);
        return rc;
    }

    rd_script(b, &c, RD_S_CLEAN);
    rd_arg(&c, name);
    rd_arg_int(&c, (int64_t)hidx);
    if (hidx)
        rd_argn(&c, r[(hidx - 1) * 3 + 2]->str, r[(hidx - 1) * 3 + 2]->len);
    else
        rd_arg(&c, "");
    if (!hidx) {
        rd_arg(&c, "0");
        rd_arg(&c, "");
        rd_arg(&c, "");
    } else if (mode == ST_CLEAN_REQUEUE && h.payload) {
        rd_arg(&c, "2");
        rd_arg_own(&c, held_queue(&h));
        rd_arg(&c, h.payload);
    } else {
        rd_arg(&c, "1");
        if (failed_entry)
            rd_arg(&c, failed_entry);
        else
            rd_arg_own(&c, st_timeout_entry(name, h.queue, h.payload, NULL,
                                            NULL, st_now_ms()));
        rd_arg(&c, "");
    }
    /* Pairs (workers-set member, queues string); a ghost's member may not
     * exist, and SREM of it is harmless. */
    for (i = 0; i < n; i++) {
        if (!v[i].qs) {
            /* A member without queues (or a ghost with an unreadable
             * ping): its keys are the name-only ones. */
            rd_arg(&c, v[i].name);
            rd_arg(&c, "");
            continue;
        }
        rd_arg_own(&c, st_asprintf("%s:%s", v[i].name, v[i].qs));
        rd_arg(&c, v[i].qs);
    }
    rc = rd_eval_reply(b, RD_S_CLEAN, &c, false, &sr, e);
    if (rc == STELLAR_OK) {
        if (sr->type != REDIS_REPLY_INTEGER)
            rc = rd_reply_fail(e, "clean script", sr);
        else if (sr->integer < 0)
            *again = true;
        else if (payload && h.payload) {
            *payload = h.payload;
            h.payload = NULL;
        }
        freeReplyObject(sr);
    }
    held_clear(&h);
    rd_free_replies(r, n * 3);
    st_free(r);
    wrows_free(v, n);
    return rc;
}

int rd_clean_worker(st_backend *base, const char *name, enum st_clean_mode mode,
                    const char *failed_entry, char **payload, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    int attempt, rc = STELLAR_OK;
    bool again = true;

    if (payload) *payload = NULL;
    /* The worker may finish its job or take another between our reads and
     * the script; the script notices and we read again. */
    for (attempt = 0; again && attempt < CLEAN_ATTEMPTS; attempt++) {
        rc = clean_once(b, name, mode, failed_entry, payload, &again, e);
        if (rc != STELLAR_OK) return rc;
    }
    if (again)
        return st_fail(e, STELLAR_EBUSY,
                       "worker '%s' kept changing while being cleaned", name);
    return STELLAR_OK;
}
