/*
 * wake.c: the wait op, on the wake-up channel NS:stellar:wake (redis.c's
 * header says why): an idle worker subscribes on a second connection,
 * looks at its queues once, then blocks until a message names one of its
 * queues or its time is up. Pub/sub replies are read without blocking the
 * main connection, with poll(2) for the deadline.
 */
#include "rd.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>

/* ------------------------------------------------------------- Wait --- */

/* Opens the subscriber connection: AUTH, no SELECT (channels ignore the
 * database number). */
static int sub_open(rd_conn *b, stellar_error *e)
{
    redisContext *c;
    redisReply *r = NULL;
    int rc;

    if ((rc = rd_dial(b, "wait: ", &c, e)) != STELLAR_OK) return rc;
    if (b->password) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK) r = NULL;
        if (!r || r->type == REDIS_REPLY_ERROR) {
            rc = st_fail(e, STELLAR_ECONNECT,
                         "wait: redis at %s refused AUTH: %s", b->where,
                         r ? r->str : c->errstr);
            if (r) freeReplyObject(r);
            redisFree(c);
            return rc;
        }
        freeReplyObject(r);
    }
    b->sub = c;
    return STELLAR_OK;
}

static int sub_lost(rd_conn *b, stellar_error *e)
{
    int rc = st_fail(e, STELLAR_ECONNECT,
                     "wait: redis connection to %s "
                     "lost: %s",
                     b->where,
                     b->sub->errstr[0] ? b->sub->errstr : "connection lost");
    redisFree(b->sub);
    b->sub = NULL;
    return rc;
}

/* Sends "<verb> <channel>" on the subscriber connection, not waiting for
 * the reply. */
static int sub_send(rd_conn *b, const char *verb, const char *chan,
                    stellar_error *e)
{
    int done = 0;

    if (redisAppendCommand(b->sub, "%s %s", verb, chan) != REDIS_OK)
        return sub_lost(b, e);
    do {
        if (redisBufferWrite(b->sub, &done) != REDIS_OK) return sub_lost(b, e);
    } while (!done);
    return STELLAR_OK;
}

/* The next reply on the subscriber connection, waiting until deadline
 * (monotonic ms): 1 with *r (free it), 0 at the deadline, or an error. */
static int sub_read(rd_conn *b, int64_t deadline, redisReply **r,
                    stellar_error *e)
{
    for (;;) {
        void *reply = NULL;
        struct pollfd pfd;
        int64_t left;
        int n;

        if (redisGetReplyFromReader(b->sub, &reply) != REDIS_OK)
            return sub_lost(b, e);
        if (reply) {
            *r = reply;
            return 1;
        }
        if ((left = deadline - st_mono_ms()) <= 0) return 0;
        pfd.fd = b->sub->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n < 0 && errno != EINTR) return sub_lost(b, e);
        if (n > 0 && redisBufferRead(b->sub) != REDIS_OK) return sub_lost(b, e);
    }
}

/* A pub/sub reply ["kind", channel, x] is of this kind. */
static bool push_is(const redisReply *r, const char *kind)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
           r->element[0]->type == REDIS_REPLY_STRING &&
           strcmp(r->element[0]->str, kind) == 0;
}

/* A wake message names one of w's queues (or "*"). */
static bool wakes(const redisReply *r, const st_worker_id *w)
{
    const redisReply *q = r->element[2];
    size_t i;

    if (q->type != REDIS_REPLY_STRING || rd_wildcard(w->queues) ||
        strcmp(q->str, "*") == 0)
        return true;
    for (i = 0; w->queues[i]; i++)
        if (strcmp(w->queues[i], q->str) == 0) return true;
    return false;
}

/* *ready: whether one of w's queues holds a job now. */
static int queues_ready(rd_conn *b, const st_worker_id *w, bool *ready,
                        stellar_error *e)
{
    redisReply *r = NULL;
    size_t nq = 0, i;
    rd_cmd c;
    int rc;

    *ready = false;
    if (!rd_wildcard(w->queues))
        while (w->queues[nq])
            nq++;
    rd_script(b, &c, RD_S_READY);
    rd_arg_int(&c, (int64_t)nq);
    for (i = 0; i < nq; i++) {
        rd_arg(&c, w->queues[i]);
        rd_arg_own(&c, rd_key(b, "queue", w->queues[i], NULL));
    }
    rc = rd_eval_reply(b, RD_S_READY, &c, true, &r, e);
    if (rc != STELLAR_OK) return rc;
    *ready = r->type == REDIS_REPLY_INTEGER && r->integer != 0;
    freeReplyObject(r);
    return STELLAR_OK;
}

/*
 * The wait op (see the top): subscribe, look once, block until a message
 * names one of w's queues or timeout_ms pass, unsubscribe. The reply to
 * that UNSUBSCRIBE, and any message that came before it, are read and
 * dropped by the next call, before its own subscription is confirmed.
 */
int rd_wait(st_backend *base, const st_worker_id *w, int64_t timeout_ms,
            stellar_error *e)
{
    rd_conn *b = (rd_conn *)base;
    int64_t deadline = st_mono_ms() + timeout_ms;
    char *chan = rd_key1(b, "stellar:wake", "");
    redisReply *r = NULL;
    bool subscribed = false, ready = false;
    stellar_error ignored;
    rd_nopipe np;
    int rc = STELLAR_OK;

    if (!chan) return rd_oom(e);
    if (b->sub_refused) {
        rc = st_fail(e, STELLAR_EBACKEND,
                     "wait: redis at %s refused "
                     "SUBSCRIBE: %s",
                     b->where, b->sub_refused);
        goto out_free;
    }
    if (timeout_ms <= 0) goto out_free;
    rd_nopipe_enter(&np);
    if (!b->sub && (rc = sub_open(b, e)) != STELLAR_OK) goto out;
    if ((rc = sub_send(b, "SUBSCRIBE", chan, e)) != STELLAR_OK) goto out;
    for (;;) {
        rc = sub_read(b, st_mono_ms() + b->timeout_ms, &r, e);
        if (rc < 0) goto out;
        if (rc == 0) {
            rc = st_fail(e, STELLAR_ECONNECT,
                         "wait: redis at %s did not confirm SUBSCRIBE",
                         b->where);
            redisFree(b->sub);
            b->sub = NULL;
            goto out;
        }
        if (r->type == REDIS_REPLY_ERROR) { /* e.g. NOPERM: no channels */
            b->sub_refused = st_strdup(r->str);
            rc = st_fail(e, STELLAR_EBACKEND,
                         "wait: redis at %s refused SUBSCRIBE: %s", b->where,
                         r->str);
            freeReplyObject(r);
            goto out;
        }
        subscribed = push_is(r, "subscribe");
        freeReplyObject(r);
        if (subscribed) break;
    }
    /* A job pushed before the subscription took effect sent its message
     * to nobody: look. */
    if ((rc = queues_ready(b, w, &ready, e)) != STELLAR_OK || ready) goto out;
    while ((rc = sub_read(b, deadline, &r, e)) > 0) {
        bool hit = push_is(r, "message") && wakes(r, w);
        freeReplyObject(r);
        if (hit) break;
    }
    if (rc > 0) rc = STELLAR_OK;
out:
    if (subscribed && b->sub) sub_send(b, "UNSUBSCRIBE", chan, &ignored);
    rd_nopipe_leave(&np);
out_free:
    st_free(chan);
    return rc;
}
