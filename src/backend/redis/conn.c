/*
 * conn.c: the connection to Redis. Dialing (timeouts, keepalive), AUTH,
 * SELECT, the connection test key and SCRIPT LOAD in one round trip; the
 * writer that sends a round trip's commands as RESP with MSG_NOSIGNAL; the
 * SIGPIPE guard for what hiredis writes itself; and rd_exchange(), the one
 * round trip every call goes through, which reconnects a dropped link once
 * and resends only what is safe to repeat: read-only commands, and the
 * writes whose callers say a second run is harmless (the schedule scripts:
 * a claimed tick is found taken). Any other write that may have reached
 * Redis is never resent: the caller gets STELLAR_ECONNECT and decides. A
 * -READONLY reply (Sentinel: the server became a replica) means nothing
 * was written, so that round trip goes again, to the new primary.
 */
#include "rd.h"
#include "sentinel.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#define CONNECT_TIMEOUT_S 10

/* ------------------------------------------------------- Connection --- */

void rd_conn_free(rd_conn *b)
{
    if (!b) return;
    if (b->c) redisFree(b->c);
    if (b->sub) redisFree(b->sub);
    rd_rcache_free(b->rc);
    st_sentinel_close(b->sn);
    st_free(b->out);
    st_free(b->sub_refused);
    st_free(b->host);
    st_free(b->path);
    st_free(b->user);
    st_free(b->password);
    st_free(b->prefix);
    st_free(b->where);
    st_free(b);
}

int rd_reply_fail(stellar_error *e, const char *what, const redisReply *r)
{
    int code = STELLAR_EBACKEND;

    if (!r) return st_fail(e, code, "redis %s: no reply", what);
    if (r->type != REDIS_REPLY_ERROR)
        return st_fail(e, code, "redis %s: unexpected reply (type %d)", what,
                       r->type);
    if (strncmp(r->str, "OOM", 3) == 0)
        code = STELLAR_EFULL;
    else if (strncmp(r->str, "BUSY", 4) == 0 ||
             strncmp(r->str, "LOADING", 7) == 0)
        code = STELLAR_EBUSY;
    return st_fail(e, code, "redis %s: %s", what, r->str);
}

/* Whether context c failed because the reply did not come in time (the
 * socket's receive timeout): the server is stopped or overloaded, and
 * another try would wait as long again. */
static bool timed_out(const redisContext *c)
{
#ifdef REDIS_ERR_TIMEOUT
    if (c->err == REDIS_ERR_TIMEOUT) return true;
#endif
    return c->err == REDIS_ERR_IO &&
           (strstr(c->errstr, "temporarily unavailable") ||
            strstr(c->errstr, "timed out") || strstr(c->errstr, "timeout") ||
            strstr(c->errstr, "would block"));
}

/* "redis at X did not answer within N s", for a timed-out call. */
static int timeout_fail(stellar_error *e, const rd_conn *b, const char *who)
{
    return st_fail(e, STELLAR_ECONNECT,
                   "%sredis at %s did not answer within %.3g s (stopped or "
                   "overloaded?)",
                   who, b->where, (double)b->timeout_ms / 1000);
}

void rd_free_replies(redisReply **r, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (r[i]) freeReplyObject(r[i]);
        r[i] = NULL;
    }
}

/*
 * hiredis writes with write(2): writing to a socket the server has closed
 * raises SIGPIPE, whose default action ends the process. A library must not
 * do that to its host, so socket I/O runs with SIGPIPE blocked in the
 * calling thread (the signal is thread-directed), and a SIGPIPE that our
 * writes left pending is consumed before the old mask comes back. That is
 * four system calls, so only what writes with hiredis runs under it
 * (connecting, and the wait op's subscriber connection); the round trips
 * of every operation send with MSG_NOSIGNAL instead (resp_send). When the
 * process ignores SIGPIPE (as `stellar run` does) one call remains.
 */
void rd_nopipe_enter(rd_nopipe *np)
{
    sigset_t set, pend;
    struct sigaction sa;

    np->skip = sigaction(SIGPIPE, NULL, &sa) == 0 &&
               !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN;
    if (np->skip) return;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &np->old);
    np->pending_before =
        sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE) == 1;
}

void rd_nopipe_leave(rd_nopipe *np)
{
    if (np->skip) return;
    if (!np->pending_before) {
        sigset_t set, pend;
        struct timespec zero = {0, 0};
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        if (sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE) == 1)
            sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &np->old, NULL);
}

/* Connects a new context to b's server with its timeouts (and TCP
 * keepalive), and appends AUTH if b has a password (its reply is the
 * caller's to read). who prefixes the error message. */
int rd_dial(rd_conn *b, const char *who, redisContext **out, stellar_error *e)
{
    struct timeval tv = {CONNECT_TIMEOUT_S, 0};
    redisContext *c;
    int rc;

    *out = NULL;
    if (b->timeout_ms < CONNECT_TIMEOUT_S * 1000) {
        tv.tv_sec = (time_t)(b->timeout_ms / 1000);
        tv.tv_usec = (suseconds_t)(b->timeout_ms % 1000 * 1000);
    }
    c = b->path ? redisConnectUnixWithTimeout(b->path, tv)
                : redisConnectWithTimeout(b->host, b->port, tv);
    if (!c) return rd_oom(e);
    if (c->err) {
        rc = st_fail(e, STELLAR_ECONNECT, "%scannot connect to redis at %s: %s",
                     who, b->where, c->errstr);
        redisFree(c);
        return rc;
    }
    tv.tv_sec = (time_t)(b->timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)(b->timeout_ms % 1000 * 1000);
    redisSetTimeout(c, tv);
    if (!b->path) redisEnableKeepAlive(c);
    if (b->password) {
        if (b->user)
            redisAppendCommand(c, "AUTH %s %s", b->user, b->password);
        else
            redisAppendCommand(c, "AUTH %s", b->password);
    }
    *out = c;
    return STELLAR_OK;
}

/*
 * Opens the socket, authenticates, selects the database, writes
 * connection_test_key as node-resque does and loads the scripts, in one
 * round trip. On success b->c is the new context.
 */
static int connect_io(rd_conn *b, stellar_error *e)
{
    redisContext *c;
    redisReply *r = NULL;
    char *test = NULL;
    int rc = STELLAR_OK, i;
    int sent = 0, auth = -1, sel = -1, set, load, role = -1;

    if (b->sn && (rc = st_sentinel_locate(b->sn, &b->host, &b->port, &b->where,
                                          e)) != STELLAR_OK)
        return rc; /* sentinel: where the primary is now */
    if ((rc = rd_dial(b, "", &c, e)) != STELLAR_OK) return rc;
    if (b->password) auth = sent++;
    if (b->sn) { /* sentinel: is it a primary (yet)? */
        redisAppendCommand(c, "ROLE");
        role = sent++;
    }
    if (b->db) {
        redisAppendCommand(c, "SELECT %d", b->db);
        sel = sent++;
    }
    test = st_asprintf("%sconnection_test_key", b->prefix);
    if (!test) {
        redisFree(c);
        return rd_oom(e);
    }
    redisAppendCommand(c, "SET %s ok", test);
    set = sent++;
    st_free(test);
    load = sent;
    for (i = 0; i < RD_S_COUNT; i++, sent++)
        redisAppendCommand(c, "SCRIPT LOAD %s", rd_lua[i]);

    for (i = 0; i < sent; i++) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            if (rc == STELLAR_OK && timed_out(c))
                rc = timeout_fail(e, b, "cannot connect: ");
            else if (rc == STELLAR_OK)
                rc = st_fail(e, STELLAR_ECONNECT,
                             "cannot connect to redis at %s: %s", b->where,
                             c->errstr[0] ? c->errstr : "connection lost");
            break;
        }
        if (rc == STELLAR_OK) {
            if (i == auth && r->type == REDIS_REPLY_ERROR)
                rc = st_fail(e, STELLAR_ECONNECT,
                             "redis at %s refused AUTH: %s", b->where, r->str);
            else if (i == role)
                rc = st_sentinel_check_role(r, b->where, e);
            else if (r->type == REDIS_REPLY_ERROR && i == sel)
                rc = st_fail(e, STELLAR_ECONNECT,
                             "redis at %s: SELECT %d failed: %s", b->where,
                             b->db, r->str);
            else if (r->type == REDIS_REPLY_ERROR)
                rc = st_fail(
                    e,
                    strncmp(r->str, "NOAUTH", 6) == 0 ? STELLAR_ECONNECT
                                                      : STELLAR_EBACKEND,
                    "redis at %s: %s: %s", b->where,
                    i == set ? "SET connection_test_key" : "SCRIPT LOAD",
                    r->str);
            else if (i >= load) {
                if (r->type != REDIS_REPLY_STRING || r->len != 40)
                    rc = st_fail(e, STELLAR_EBACKEND,
                                 "redis at %s: SCRIPT LOAD: unexpected reply",
                                 b->where);
                else
                    memcpy(b->sha[i - load], r->str, 41);
            }
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (rc != STELLAR_OK) {
        redisFree(c);
        return rc;
    }
    b->c = c;
    return STELLAR_OK;
}

int rd_connect(rd_conn *b, stellar_error *e)
{
    rd_nopipe np;
    int rc;

    rd_nopipe_enter(&np);
    rc = connect_io(b, e);
    rd_nopipe_leave(&np);
    return rc;
}

static void drop(rd_conn *b)
{
    if (b->c) redisFree(b->c);
    b->c = NULL;
}

/* Writes "<lead><v>\r\n" at p; returns the end. */
static char *put_size(char *p, char lead, size_t v)
{
    char t[24];
    int n = 0;

    *p++ = lead;
    do
        t[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        *p++ = t[--n];
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/*
 * Writes cv[0..n) as RESP into b->out and sends it, whole, with
 * MSG_NOSIGNAL. hiredis' own formatting (redisAppendCommandArgv) goes
 * through sdscatfmt for every argument, which cost a tenth of a job's
 * instructions; and its write(2) raises SIGPIPE on a closed socket, which
 * every round trip had to guard against with four system calls (see
 * nopipe). Replies are read by hiredis, whose output buffer stays empty.
 */
static bool resp_send(rd_conn *b, rd_cmd *const *cv, size_t n)
{
    size_t need = 0, k, len;
    const char *q;
    char *p;
    int i;

    for (k = 0; k < n; k++) {
        need += 24 + 2;
        for (i = 0; i < cv[k]->argc; i++)
            need += 1 + 20 + 2 + cv[k]->len[i] + 2;
    }
    if (need > b->out_cap) {
        char *np = st_realloc(b->out, need);
        if (!np) {
            b->c->err = REDIS_ERR_OOM;
            snprintf(b->c->errstr, sizeof b->c->errstr, "Out of memory");
            return false;
        }
        b->out = np;
        b->out_cap = need;
    }
    p = b->out;
    for (k = 0; k < n; k++) {
        p = put_size(p, '*', (size_t)cv[k]->argc);
        for (i = 0; i < cv[k]->argc; i++) {
            p = put_size(p, '$', cv[k]->len[i]);
            memcpy(p, cv[k]->argv[i], cv[k]->len[i]);
            p += cv[k]->len[i];
            *p++ = '\r';
            *p++ = '\n';
        }
    }
    for (q = b->out, len = (size_t)(p - b->out); len > 0;) {
        ssize_t w = send(b->c->fd, q, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            b->c->err = REDIS_ERR_IO;
            snprintf(b->c->errstr, sizeof b->c->errstr, "%s",
                     w < 0 ? strerror(errno) : "connection lost");
            return false;
        }
        q += w;
        len -= (size_t)w;
    }
    return true;
}

/* sentinel: Sentinel announced a new primary (+switch-master): drop the
 * link to the old one; the next round trip locates the new one. The wait
 * op's subscriber link is left alone (it may be in use, as in the wait op):
 * a replica gets the primary's PUBLISHes too, and Sentinel closes the
 * subscribers of a primary it demotes. */
static void sentinel_follow(rd_conn *b)
{
    if (b->sn && st_sentinel_switched(b->sn)) drop(b);
}

/*
 * sentinel: whether replies r[0..n) say the server is a replica now. Each
 * round trip is one atomic unit (MULTI/EXEC or a script, and a PUBLISH),
 * so a replica wrote none of it: drop the link and return 1 (the caller
 * sends it again, to the primary Sentinel names now), unless the link was
 * new (then fail; the caller backs off while the failover completes).
 * 0 (STELLAR_OK): no -READONLY.
 */
static int readonly_again(rd_conn *b, redisReply **r, size_t n, bool fresh,
                          stellar_error *e)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (st_sentinel_readonly(r[i])) break;
    if (i == n) return STELLAR_OK;
    rd_free_replies(r, n);
    drop(b);
    if (fresh)
        return st_fail(e, STELLAR_ECONNECT,
                       "redis at %s is read-only (a replica): failover under "
                       "way",
                       b->where);
    return 1;
}

/*
 * Sends n commands in one round trip and reads their n replies into r[]
 * (each may be an error reply; the caller checks). Reconnects first if the
 * link is down. retry: the commands are read-only, so after an I/O error on
 * an old link they are resent once on a new one.
 */
static int exchange_io(rd_conn *b, rd_cmd *const *cv, size_t n, redisReply **r,
                       bool retry, stellar_error *e)
{
    size_t i;
    bool fresh = false;
    char msg[128];
    int rc;

    for (i = 0; i < n; i++) {
        r[i] = NULL;
        if (cv[i]->oom) return rd_oom(e);
    }
    for (;;) {
        bool ok = true;
        sentinel_follow(b);
        if (!b->c || b->c->err) {
            drop(b);
            rc = rd_connect(b, e);
            if (rc != STELLAR_OK) return rc;
            fresh = true;
        }
        ok = resp_send(b, cv, n);
        for (i = 0; i < n && ok; i++)
            if (redisGetReply(b->c, (void **)&r[i]) != REDIS_OK) ok = false;
        if (ok && b->sn) { /* sentinel: -READONLY, a replica now? */
            if ((rc = readonly_again(b, r, n, fresh, e)) != 1) return rc;
            continue;
        }
        if (ok) return STELLAR_OK;
        rd_free_replies(r, n);
        if (b->c->err == REDIS_ERR_OOM) {
            drop(b);
            return rd_oom(e);
        }
        if (timed_out(b->c)) { /* a new link would wait as long */
            drop(b);
            return timeout_fail(e, b, "");
        }
        snprintf(msg, sizeof msg, "%s",
                 b->c->errstr[0] ? b->c->errstr : "connection lost");
        drop(b);
        if (!retry || fresh)
            return st_fail(e, STELLAR_ECONNECT,
                           "redis connection to %s lost: %s", b->where, msg);
        retry = false;
    }
}

/* exchange_io; only a reconnection writes with hiredis (and so needs
 * rd_nopipe, which rd_connect brings). */
int rd_exchange(rd_conn *b, rd_cmd *const *cv, size_t n, redisReply **r,
                bool retry, stellar_error *e)
{
    return exchange_io(b, cv, n, r, retry, e);
}
