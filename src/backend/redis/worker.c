/*
 * worker.c: a worker's registration, pings and reserve, the hot path: one
 * EVALSHA (lua/reserve.lua) finishes the previous job and pops the next.
 * What reserve sends for a worker is built once and kept (rd_rcache), only
 * the date of its working-on record changing, once a second.
 */
#include "rd.h"

#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------- Reserve cache --- */

/*
 * What reserve() sends for one worker, built once: only the date in the
 * working-on record changes, once a second. A connection serves one
 * TaskProcessor, so this holds one worker (another worker's call rebuilds
 * it).
 */
typedef struct rd_rcache {
    char *name, *queues_str; /* the worker it was built for */
    char *wkey;              /* NS:worker:<name>:<queues> */
    char *tail;              /* ,"worker":"<name>"} */
    char *stat[4];  /* NS:stat:processed[:<name>], NS:stat:failed[:<name>] */
    char *failed;   /* NS:failed */
    size_t nq;      /* 0: every queue */
    char **qkeys;   /* NS:queue:<q> for each of its queues */
    int64_t head_s; /* the second head was made for */
    char *head;     /* {"run_at":"<that second as JS dates go>","queue": */
    char *idkey;    /* NS:stellar:reserve:<name>, the last call's id */
    uint64_t id;    /* the id of the last call (lua/reserve.lua) */
    bool resend;    /* that call failed: the next one is its retry */
} rd_rcache;

void rd_rcache_free(rd_rcache *r)
{
    size_t i;
    if (!r) return;
    st_free(r->name);
    st_free(r->queues_str);
    st_free(r->wkey);
    st_free(r->tail);
    for (i = 0; i < 4; i++)
        st_free(r->stat[i]);
    st_free(r->failed);
    for (i = 0; i < r->nq; i++)
        st_free(r->qkeys[i]);
    st_free(r->qkeys);
    st_free(r->head);
    st_free(r->idkey);
    st_free(r);
}

/* ---------------------------------------------------------- Workers --- */

/* {"time":<s>,"name":"<name>","queues":"<queues>"} (reference §2.4). */
static char *ping_json(const st_worker_id *w, int64_t now_ms)
{
    st_buf j = {0};
    st_buf_printf(&j,
                  "{\"time\":%lld,\"name\":", (long long)rd_ms_to_s(now_ms));
    st_json_put_string(&j, w->name, strlen(w->name));
    st_buf_puts(&j, ",\"queues\":");
    st_json_put_string(&j, w->queues_str, strlen(w->queues_str));
    st_buf_putc(&j, '}');
    return st_buf_take(&j);
}

int rd_worker_register(st_backend *base, const st_worker_id *w, int64_t now_ms,
                       stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;

    /* node-resque's init: SADD workers, SET :started, ping. The DEL of a
     * working-on record left under this identity (node-resque's
     * forceCleanWorker leaves them behind) is ours: a worker that has just
     * registered holds no job; so is the DEL of the id of its last reserve
     * (lua/reserve.lua), and the release of permits held under its name
     * (lua/register.lua). */
    rd_script(b, &c, RD_S_REGISTER);
    rd_arg(&c, w->name);
    rd_arg_own(&c, st_asprintf("%s:%s", w->name, w->queues_str));
    rd_arg_own(&c,
               rd_key(b, "worker", w->name, w->queues_str, "started", NULL));
    rd_arg_int(&c, rd_ms_to_s(now_ms));
    rd_arg_own(&c, rd_key(b, "worker", "ping", w->name, NULL));
    rd_arg_own(&c, ping_json(w, now_ms));
    rd_arg_own(&c, rd_key(b, "worker", w->name, w->queues_str, NULL));
    rd_arg_own(&c, rd_key(b, "stellar", "reserve", w->name, NULL));
    return rd_eval_int(b, RD_S_REGISTER, &c, true, NULL, e);
}

int rd_worker_unregister(st_backend *base, const st_worker_id *w,
                         stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd c;

    /* Reference §4.6, with the five DELs as one, our reserve id, and the
     * release of the worker's permits, whose only record is that id
     * (lua/unregister.lua): a worker whose final ack failed leaves holding
     * them. */
    rd_script(b, &c, RD_S_UNREGISTER);
    rd_arg(&c, w->name);
    rd_arg_own(&c, st_asprintf("%s:%s", w->name, w->queues_str));
    rd_arg_own(&c, rd_key(b, "worker", "ping", w->name, NULL));
    rd_arg_own(&c, rd_key(b, "worker", w->name, w->queues_str, NULL));
    rd_arg_own(&c,
               rd_key(b, "worker", w->name, w->queues_str, "started", NULL));
    rd_arg_own(&c, rd_key(b, "stat", "failed", w->name, NULL));
    rd_arg_own(&c, rd_key(b, "stat", "processed", w->name, NULL));
    rd_arg_own(&c, rd_key(b, "stellar", "reserve", w->name, NULL));
    return rd_eval_int(b, RD_S_UNREGISTER, &c, true, NULL, e);
}

int rd_ping(st_backend *base, const st_worker_id *const *ws, size_t n,
            int64_t now_ms, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    rd_cmd *cs, **cv;
    size_t i;
    int rc;

    if (n == 0) return STELLAR_OK;
    if (!(cs = rd_cmds_new(n, &cv))) return rd_oom(e);
    for (i = 0; i < n; i++) {
        rd_arg(&cs[i], "SET");
        rd_arg_own(&cs[i], rd_key(b, "worker", "ping", ws[i]->name, NULL));
        rd_arg_own(&cs[i], ping_json(ws[i], now_ms));
    }
    rc = rd_multi(b, cv, n, NULL, NULL, e);
    rd_cmds_free(cs, cv, n);
    return rc;
}

/* The reserve cache for w, (re)built if it was made for another worker,
 * with its head for now_ms's second; NULL if out of memory. */
static rd_rcache *reserve_cache(rd_conn *b, const st_worker_id *w,
                                int64_t now_ms)
{
    rd_rcache *r = b->rc;
    int64_t sec = now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
    st_buf t = {0};
    size_t i;

    if (r &&
        (strcmp(r->name, w->name) || strcmp(r->queues_str, w->queues_str))) {
        rd_rcache_free(r);
        r = b->rc = NULL;
    }
    if (!r) {
        if (!(r = st_calloc(1, sizeof *r))) return NULL;
        b->rc = r;
        r->head_s = INT64_MIN;
        if (!rd_wildcard(w->queues))
            while (w->queues[r->nq])
                r->nq++;
        r->qkeys = st_calloc(r->nq + 1, sizeof *r->qkeys);
        st_buf_puts(&t, ",\"worker\":");
        st_json_put_string(&t, w->name, strlen(w->name));
        st_buf_putc(&t, '}');
        r->name = st_strdup(w->name);
        r->queues_str = st_strdup(w->queues_str);
        r->wkey = rd_key(b, "worker", w->name, w->queues_str, NULL);
        r->tail = st_buf_take(&t);
        r->stat[0] = rd_key(b, "stat", "processed", NULL);
        r->stat[1] = rd_key(b, "stat", "processed", w->name, NULL);
        r->stat[2] = rd_key(b, "stat", "failed", NULL);
        r->stat[3] = rd_key(b, "stat", "failed", w->name, NULL);
        r->failed = rd_key(b, "failed", NULL);
        r->idkey = rd_key(b, "stellar", "reserve", w->name, NULL);
        /* Ids grow across restarts too, so a new process never meets its
         * predecessor's last id (registration deletes it anyway). */
        r->id = (uint64_t)st_now_ms() * 1000;
        for (i = 0; r->qkeys && i < r->nq; i++)
            if (!(r->qkeys[i] = rd_key(b, "queue", w->queues[i], NULL))) break;
        if (!r->name || !r->queues_str || !r->wkey || !r->tail || !r->stat[0] ||
            !r->stat[1] || !r->stat[2] || !r->stat[3] || !r->failed ||
            !r->idkey || !r->qkeys || i < r->nq) {
            rd_rcache_free(r);
            b->rc = NULL;
            return NULL;
        }
    }
    if (r->head_s != sec) {
        char date[80];
        st_js_date(now_ms, date);
        st_buf_puts(&t, "{\"run_at\":");
        st_json_put_string(&t, date, strlen(date));
        st_buf_puts(&t, ",\"queue\":");
        st_free(r->head);
        if (!(r->head = st_buf_take(&t))) {
            rd_rcache_free(r);
            b->rc = NULL;
            return NULL;
        }
        r->head_s = sec;
    }
    return r;
}

int rd_reserve(st_backend *base, const st_worker_id *w, const st_done *done,
               int64_t now_ms, st_reserved *out, stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    enum st_outcome oc = done ? done->outcome : ST_DONE_NONE;
    redisReply *r = NULL;
    rd_rcache *k;
    rd_cmd c;
    int rc;
    size_t i;

    if (out) {
        out->queue = out->payload = NULL;
        out->payload_len = 0;
        out->suspect = false;
    }
    if ((oc == ST_DONE_FAILED && !done->failed_entry) ||
        (oc == ST_DONE_REQUEUE && (!done->queue || !done->payload)))
        return st_fail(e, STELLAR_EINVAL,
                       "reserve: the finished job lacks its %s",
                       oc == ST_DONE_FAILED ? "failed entry" : "queue/payload");
    if (!(k = reserve_cache(b, w, now_ms))) return rd_oom(e);

    /* The working-on record is head + queue + payload + tail (lua/reserve.lua).
     */
    rd_script(b, &c, RD_S_RESERVE);
    rd_arg(&c, k->wkey);
    rd_arg(&c, k->head);
    rd_arg(&c, k->tail);
    switch (oc) {
    case ST_DONE_OK:
    case ST_DONE_FAILED:
        rd_arg(&c, oc == ST_DONE_OK ? "1" : "2");
        rd_arg(&c, k->stat[oc == ST_DONE_OK ? 0 : 2]);
        rd_arg(&c, k->stat[oc == ST_DONE_OK ? 1 : 3]);
        if (oc == ST_DONE_FAILED) {
            rd_arg(&c, k->failed);
            rd_arg(&c, done->failed_entry);
        } else {
            rd_arg(&c, "");
            rd_arg(&c, "");
        }
        break;
    case ST_DONE_REQUEUE:
        /* Back at the head of its queue, which is listed again in case
         * the queue was deleted meanwhile. */
        rd_arg(&c, "4");
        rd_arg_own(&c, rd_key(b, "queues", NULL));
        rd_arg(&c, done->queue);
        rd_arg_own(&c, rd_key(b, "queue", done->queue, NULL));
        rd_arg(&c, done->payload);
        break;
    case ST_DONE_DROPPED:
    case ST_DONE_NONE:
    default:
        rd_arg(&c, oc == ST_DONE_NONE ? "0" : "3");
        for (i = 0; i < 4; i++)
            rd_arg(&c, "");
        break;
    }
    /* A call that failed may have run, its reply lost: the retry (the
     * caller's next call, with the same done) carries the same id. */
    if (!k->resend) k->id++;
    rd_arg(&c, k->idkey);
    rd_arg_int(&c, (int64_t)k->id);
    rd_arg(&c, out ? "1" : "0");
    rd_arg_int(&c, (int64_t)k->nq);
    for (i = 0; i < k->nq; i++) {
        rd_arg(&c, w->queues[i]);
        rd_arg(&c, k->qkeys[i]);
    }
    rc = rd_eval_reply(b, RD_S_RESERVE, &c, false, &r, e);
    k->resend = rc != STELLAR_OK;
    if (rc != STELLAR_OK) return rc;
    if (r->type == REDIS_REPLY_NIL) {
        rc = out ? st_fail(e, STELLAR_ENOTFOUND, "no job in %s's queues",
                           w->name)
                 : STELLAR_OK;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
               r->element[0]->type != REDIS_REPLY_STRING ||
               r->element[1]->type != REDIS_REPLY_STRING ||
               r->element[2]->type != REDIS_REPLY_INTEGER) {
        rc = rd_reply_fail(e, "reserve script", r);
    } else if (out) {
        /* {queue, payload, suspect (0/1)}: lua/reserve.lua. */
        out->queue = st_strndup(r->element[0]->str, r->element[0]->len);
        out->payload = st_strndup(r->element[1]->str, r->element[1]->len);
        out->payload_len = r->element[1]->len;
        out->suspect = r->element[2]->integer != 0;
        if (!out->queue || !out->payload) {
            /* The job is popped and recorded as working-on: the retry
             * (the same id) hands it out, and does not apply done twice. */
            st_reserved_clear(out);
            k->resend = true;
            rc = rd_oom(e);
        }
    }
    freeReplyObject(r);
    return rc;
}
