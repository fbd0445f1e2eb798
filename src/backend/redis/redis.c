/*
 * redis.c: the Redis backend, in node-resque 9's layout byte for byte
 * (shared/reference/resque-protocol.md), on hiredis' blocking API.
 *
 * DESIGN
 * - One st_backend is one redisContext, used by one thread (backend.h).
 * - Every state change is one atomic step: a MULTI/EXEC pipeline where
 *   node-resque uses one (push, registration, ping), otherwise a Lua script
 *   (scripts.h) run with EVALSHA. Scripts are loaded with SCRIPT LOAD on
 *   every (re)connection and reloaded if Redis answers NOSCRIPT.
 * - reserve() is the hot path: one EVALSHA finishes the previous job and
 *   pops the next one, so a worker costs one round trip per job.
 * - Keys are built as node-resque's connection.key() does (reference §1):
 *   namespace and parts, blank parts dropped, joined with ':'. The scripts
 *   get the prefix ("NS:" or "") in ARGV[1] and build keys the same way.
 * - Connection loss: an operation that hits an I/O error drops the context
 *   and fails with STELLAR_ECONNECT (a write may or may not have reached
 *   Redis, so it is never resent). The next operation reconnects once
 *   (AUTH, SELECT, scripts) before failing; the caller retries with backoff.
 *   Read-only operations also reconnect and resend once by themselves.
 * - Times: Redis holds seconds where node-resque does; the API speaks ms.
 *   Seconds are Math.round(ms / 1000): round half up.
 * - Wake-ups (the wait op): whatever makes a job ready (push, the
 *   scheduler's promote, a requeue) also PUBLISHes the queue name ("*" for
 *   many) on the channel NS:stellar:wake, in the same round trip (after
 *   EXEC, or inside the script), best effort: a user without rights on
 *   channels still enqueues, and its workers poll. An idle
 *   worker SUBSCRIBEs on a second connection, looks at its queues once
 *   (so nothing published before the subscription is missed), then blocks
 *   on that connection until a message names one of its queues or its
 *   time is up, and unsubscribes. A channel is not a key: the keyspace
 *   stays node-resque's. node-resque publishes nothing, so its enqueues
 *   are seen by the workers' regular poll (docs/compat.md).
 */
#include "backend.h"
#include "internal.h"

#include "scripts.h"
#include "sentinel.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_NAMESPACE "resque"
#define DEFAULT_PORT      6379
#define CONNECT_TIMEOUT_S 10
#define COMMAND_TIMEOUT_S 30 /* a reply that takes longer drops the link */
#define SCAN_COUNT        "100"
#define PUSH_CHUNK        1000 /* payloads per RPUSH inside one MULTI */
#define CLEAN_ATTEMPTS    5

typedef struct rb {
    st_backend base;
    redisContext *c; /* NULL while disconnected */
    char *host;      /* TCP host, or NULL for a unix socket */
    int port;
    char *path;     /* unix socket path, or NULL */
    char *user;     /* AUTH user (Redis 6 ACL), or NULL */
    char *password; /* NULL: no AUTH */
    int db;
    char *prefix;       /* namespace + ":" or "" (empty namespace) */
    char *where;        /* "host:port" or the socket path, for messages */
    int64_t timeout_ms; /* how long a reply may take (st_backend_cfg) */
    char sha[S_COUNT][41];
    redisContext *sub; /* the wait op's subscriber connection, or NULL */
    char
        *sub_refused; /* why SUBSCRIBE was refused (then wait fails), or NULL */
    char *out;        /* the commands of one round trip in RESP (resp_send) */
    size_t out_cap;
    struct rcache *rc; /* reserve's arguments for the last worker, or NULL */
    st_sentinel *sn;   /* redis+sentinel: finds the primary (sentinel.c) */
} rb;

/* ----------------------------------------------------- Command argv --- */

/*
 * One command's argv. Arguments are borrowed unless added with arg_own();
 * the struct points into itself, so it is never copied once initialised.
 */
#define CMD_INLINE 24
#define CMD_NUMS   4

typedef struct cmd {
    int argc, cap;
    const char **argv;
    size_t *len;
    const char *argv_in[CMD_INLINE];
    size_t len_in[CMD_INLINE];
    char num[CMD_NUMS][24]; /* integer arguments, formatted in place */
    int nnum;
    char **own; /* arguments to free */
    int nown, owncap;
    bool oom;
} cmd;

static void cmd_init(cmd *c)
{
    c->argc = 0;
    c->cap = CMD_INLINE;
    c->argv = c->argv_in;
    c->len = c->len_in;
    c->nnum = 0;
    c->own = NULL;
    c->nown = c->owncap = 0;
    c->oom = false;
}

static void cmd_free(cmd *c)
{
    int i;
    if (!c) return;
    for (i = 0; i < c->nown; i++)
        st_free(c->own[i]);
    st_free(c->own);
    if (c->argv != c->argv_in) {
        st_free(c->argv);
        st_free(c->len);
    }
    cmd_init(c);
}

static bool cmd_grow(cmd *c)
{
    int cap = c->cap * 2;
    const char **argv = st_malloc(sizeof *argv * (size_t)cap);
    size_t *len = st_malloc(sizeof *len * (size_t)cap);

    if (!argv || !len) {
        st_free(argv);
        st_free(len);
        c->oom = true;
        return false;
    }
    memcpy(argv, c->argv, sizeof *argv * (size_t)c->argc);
    memcpy(len, c->len, sizeof *len * (size_t)c->argc);
    if (c->argv != c->argv_in) {
        st_free(c->argv);
        st_free(c->len);
    }
    c->argv = argv;
    c->len = len;
    c->cap = cap;
    return true;
}

static void argn(cmd *c, const char *s, size_t n)
{
    if (c->oom) return;
    if (!s) {
        c->oom = true;
        return;
    }
    if (c->argc == c->cap && !cmd_grow(c)) return;
    c->argv[c->argc] = s;
    c->len[c->argc] = n;
    c->argc++;
}

static void arg(cmd *c, const char *s)
{
    argn(c, s, s ? strlen(s) : 0);
}

/* Adds s and takes ownership of it; NULL (a failed allocation) marks oom. */
static void arg_own(cmd *c, char *s)
{
    if (!s || c->oom) {
        st_free(s);
        c->oom = true;
        return;
    }
    if (c->nown == c->owncap) {
        int cap = c->owncap ? c->owncap * 2 : 8;
        char **own = st_realloc(c->own, sizeof *own * (size_t)cap);
        if (!own) {
            st_free(s);
            c->oom = true;
            return;
        }
        c->own = own;
        c->owncap = cap;
    }
    c->own[c->nown++] = s;
    arg(c, s);
}

static void arg_int(cmd *c, int64_t v)
{
    if (c->nnum < CMD_NUMS) {
        char *p = c->num[c->nnum++];
        snprintf(p, sizeof c->num[0], "%lld", (long long)v);
        arg(c, p);
    } else {
        arg_own(c, st_asprintf("%lld", (long long)v));
    }
}

/* ---------------------------------------------------------- Keys --- */

static bool blank(const char *s)
{
    for (; *s; s++)
        if (!strchr(" \t\n\v\f\r", *s)) return false;
    return true;
}

/* NS:part:part... as node-resque's connection.key(): blank parts are
 * dropped. Parts end with NULL. New string or NULL. */
static char *key(const rb *b, const char *first, ...)
{
    st_buf k = {0};
    va_list ap;
    const char *s;
    bool any = false;

    st_buf_puts(&k, b->prefix);
    va_start(ap, first);
    for (s = first; s; s = va_arg(ap, const char *)) {
        if (blank(s)) continue;
        if (any) st_buf_putc(&k, ':');
        st_buf_puts(&k, s);
        any = true;
    }
    va_end(ap);
    return st_buf_take(&k);
}

/* NS:<head><tail> as one key part ("delayed:" + ts, "timestamps:" +
 * payload), which node-resque never splits. */
static char *key1(const rb *b, const char *head, const char *tail)
{
    return st_asprintf("%s%s%s", b->prefix, head, tail);
}

/* A SCAN MATCH pattern matching keys that start with NS:<head>. */
static char *scan_pattern(const rb *b, const char *head)
{
    st_buf p = {0};
    const char *parts[2];
    int i;

    parts[0] = b->prefix;
    parts[1] = head;
    for (i = 0; i < 2; i++) {
        const char *s;
        for (s = parts[i]; *s; s++) {
            if (strchr("*?[]\\", *s)) st_buf_putc(&p, '\\');
            st_buf_putc(&p, *s);
        }
    }
    st_buf_putc(&p, '*');
    return st_buf_take(&p);
}

/* Math.round(ms / 1000): round half up, also for negative times. */
static int64_t ms_to_s(int64_t ms)
{
    int64_t x = ms + 500;
    return x >= 0 ? x / 1000 : -((-x + 999) / 1000);
}

/* ---------------------------------------------------------- JSON --- */

/* A JSON string of raw bytes; bytes that are not UTF-8 are kept as is. */
static json_t *jstrn(const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    return v ? v : json_stringn_nocheck(s, n);
}

static int oom(stellar_error *e)
{
    return st_fail(e, STELLAR_ENOMEM, "redis backend: out of memory");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts v[0..n) ascending, drops repeats, and returns them as a JSON array
 * (or NULL). */
static json_t *sorted_ints(int64_t *v, size_t n)
{
    json_t *a = json_array();
    size_t i;

    if (!a) return NULL;
    if (n) qsort(v, n, sizeof *v, cmp_i64);
    for (i = 0; i < n; i++) {
        if (i && v[i] == v[i - 1]) continue;
        if (json_array_append_new(a, json_integer(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Parses "123" (the whole text) as an integer. */
static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    char buf[32], *end;
    long long v;

    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* Seconds as Redis keeps them (integer or decimal text) -> ms. */
static bool parse_s_as_ms(const char *s, size_t n, int64_t *ms)
{
    char buf[64], *end;
    double d;

    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    d = strtod(buf, &end);
    if (*end || d != d || d > 9.2e15 || d < -9.2e15) return false;
    *ms = (int64_t)(d * 1000.0 + (d < 0 ? -0.5 : 0.5));
    return true;
}

/* ----------------------------------------------------------- Dates --- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t civil_ms(int y, int mo, int d, int h, int mi, int s)
{
    return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
           (int64_t)s * 1000;
}

/*
 * Reads a working-on run_at as Date.parse would for the two forms written
 * in practice: JavaScript's Date.toString() ("Sun Nov 29 2026 02:20:19
 * GMT+0000 (...)", any offset) and ISO-8601 ("2026-11-29T02:20:19.123Z").
 */
static bool parse_date(const char *s, int64_t *ms)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int y, mo, d, h, mi, sec, n = 0;
    char wd[4], mon[4];

    if (sscanf(s, "%d-%d-%dT%d:%d:%d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 &&
        n > 0) {
        const char *p = s + n;
        int frac = 0, digits = 0, oh = 0, om = 0;
        int64_t t;
        if (*p == '.') {
            for (p++; *p >= '0' && *p <= '9'; p++, digits++)
                if (digits < 3) frac = frac * 10 + (*p - '0');
            while (digits > 0 && digits < 3) {
                frac *= 10;
                digits++;
            }
        }
        t = civil_ms(y, mo, d, h, mi, sec) + frac;
        if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) >= 1)
            t -= (*p == '+' ? 1 : -1) * ((int64_t)oh * 60 + om) * 60000;
        *ms = t;
        return true;
    }
    if (sscanf(s, "%3s %3s %d %d %d:%d:%d%n", wd, mon, &d, &y, &h, &mi, &sec,
               &n) == 7 &&
        n > 0) {
        const char *p = s + n, *m = strstr(months, mon);
        int64_t t;
        if (!m || strlen(mon) != 3 || (m - months) % 3) return false;
        mo = (int)(m - months) / 3 + 1;
        t = civil_ms(y, mo, d, h, mi, sec);
        while (*p == ' ')
            p++;
        if (strncmp(p, "GMT", 3) == 0 && (p[3] == '+' || p[3] == '-') &&
            strlen(p + 4) >= 4) {
            int off = 0, i;
            for (i = 4; i < 8 && p[i] >= '0' && p[i] <= '9'; i++)
                off = off * 10 + (p[i] - '0');
            t -= (p[3] == '+' ? 1 : -1) *
                 ((int64_t)(off / 100) * 60 + off % 100) * 60000;
        }
        *ms = t;
        return true;
    }
    return false;
}

/* ---------------------------------------------------- Reserve cache --- */

/*
 * What reserve() sends for one worker, built once: only the date in the
 * working-on record changes, once a second. A connection serves one
 * TaskProcessor, so this holds one worker (another worker's call rebuilds
 * it).
 */
typedef struct rcache {
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
    uint64_t id;    /* the id of the last call (scripts.h, reserve) */
    bool resend;    /* that call failed: the next one is its retry */
} rcache;

static void rcache_free(rcache *r)
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

/* ------------------------------------------------------- Connection --- */

static void rb_free(rb *b)
{
    if (!b) return;
    if (b->c) redisFree(b->c);
    if (b->sub) redisFree(b->sub);
    rcache_free(b->rc);
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

static int reply_fail(stellar_error *e, const char *what, const redisReply *r)
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
static int timeout_fail(stellar_error *e, const rb *b, const char *who)
{
    return st_fail(e, STELLAR_ECONNECT,
                   "%sredis at %s did not answer within %.3g s (stopped or "
                   "overloaded?)",
                   who, b->where, (double)b->timeout_ms / 1000);
}

static void free_replies(redisReply **r, size_t n)
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
typedef struct nopipe {
    sigset_t old;
    bool skip;           /* SIGPIPE is ignored: nothing to do */
    bool pending_before; /* someone else's SIGPIPE: leave it pending */
} nopipe;

static void nopipe_enter(nopipe *np)
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

static void nopipe_leave(nopipe *np)
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
static int dial(rb *b, const char *who, redisContext **out, stellar_error *e)
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
    if (!c) return oom(e);
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
static int connect_io(rb *b, stellar_error *e)
{
    redisContext *c;
    redisReply *r = NULL;
    char *test = NULL;
    int rc = STELLAR_OK, i;
    int sent = 0, auth = -1, sel = -1, set, load, role = -1;

    if (b->sn && (rc = st_sentinel_locate(b->sn, &b->host, &b->port, &b->where,
                                          e)) != STELLAR_OK)
        return rc; /* sentinel: where the primary is now */
    if ((rc = dial(b, "", &c, e)) != STELLAR_OK) return rc;
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
        return oom(e);
    }
    redisAppendCommand(c, "SET %s ok", test);
    set = sent++;
    st_free(test);
    load = sent;
    for (i = 0; i < S_COUNT; i++, sent++)
        redisAppendCommand(c, "SCRIPT LOAD %s", lua_scripts[i]);

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

static int connect_ctx(rb *b, stellar_error *e)
{
    nopipe np;
    int rc;

    nopipe_enter(&np);
    rc = connect_io(b, e);
    nopipe_leave(&np);
    return rc;
}

static void drop(rb *b)
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
static bool resp_send(rb *b, cmd *const *cv, size_t n)
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
 * op's subscriber link is left alone (it may be in use, as in r_wait): a
 * replica gets the primary's PUBLISHes too, and Sentinel closes the
 * subscribers of a primary it demotes. */
static void sentinel_follow(rb *b)
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
static int readonly_again(rb *b, redisReply **r, size_t n, bool fresh,
                          stellar_error *e)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (st_sentinel_readonly(r[i])) break;
    if (i == n) return STELLAR_OK;
    free_replies(r, n);
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
static int exchange_io(rb *b, cmd *const *cv, size_t n, redisReply **r,
                       bool retry, stellar_error *e)
{
    size_t i;
    bool fresh = false;
    char msg[128];
    int rc;

    for (i = 0; i < n; i++) {
        r[i] = NULL;
        if (cv[i]->oom) return oom(e);
    }
    for (;;) {
        bool ok = true;
        sentinel_follow(b);
        if (!b->c || b->c->err) {
            drop(b);
            rc = connect_ctx(b, e);
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
        free_replies(r, n);
        if (b->c->err == REDIS_ERR_OOM) {
            drop(b);
            return oom(e);
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
 * nopipe, which connect_ctx brings). */
static int exchange(rb *b, cmd *const *cv, size_t n, redisReply **r, bool retry,
                    stellar_error *e)
{
    return exchange_io(b, cv, n, r, retry, e);
}

/* One command; an error reply becomes an error. */
static int run(rb *b, cmd *c, redisReply **r, bool retry, stellar_error *e)
{
    int rc = exchange(b, &c, 1, r, retry, e);
    if (rc != STELLAR_OK) return rc;
    if ((*r)->type == REDIS_REPLY_ERROR) {
        rc = reply_fail(e, c->argv[0], *r);
        freeReplyObject(*r);
        *r = NULL;
    }
    return rc;
}

/* Starts a script call: EVALSHA <sha> 0 ... (ARGV[1] = the prefix). */
static void script_cmd(const rb *b, cmd *c, int s)
{
    cmd_init(c);
    arg(c, "EVALSHA");
    arg(c, b->sha[s]);
    arg(c, "0");
    arg(c, b->prefix);
}

/* Runs a script call built with script_cmd(); reloads it on NOSCRIPT. */
static int eval(rb *b, int s, cmd *c, redisReply **r, bool retry,
                stellar_error *e)
{
    int rc = exchange(b, &c, 1, r, retry, e);

    if (rc == STELLAR_OK && (*r)->type == REDIS_REPLY_ERROR &&
        strncmp((*r)->str, "NOSCRIPT", 8) == 0) {
        cmd load, *lp = &load;
        redisReply *lr = NULL;
        freeReplyObject(*r);
        *r = NULL;
        cmd_init(&load);
        arg(&load, "SCRIPT");
        arg(&load, "LOAD");
        arg(&load, lua_scripts[s]);
        rc = exchange(b, &lp, 1, &lr, false, e);
        cmd_free(&load);
        if (rc != STELLAR_OK) return rc;
        if (lr->type != REDIS_REPLY_STRING || lr->len != 40) {
            rc = reply_fail(e, "SCRIPT LOAD", lr);
            freeReplyObject(lr);
            return rc;
        }
        memcpy(b->sha[s], lr->str, 41);
        freeReplyObject(lr);
        rc = exchange(b, &c, 1, r, false, e);
    }
    if (rc == STELLAR_OK && (*r)->type == REDIS_REPLY_ERROR) {
        rc = reply_fail(e, "script", *r);
        freeReplyObject(*r);
        *r = NULL;
    }
    return rc;
}

/* eval() of a script that answers an integer: *out (if not NULL). */
static int eval_int(rb *b, int s, cmd *c, bool retry, int64_t *out,
                    stellar_error *e)
{
    redisReply *r = NULL;
    int rc = eval(b, s, c, &r, retry, e);

    if (rc != STELLAR_OK) return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = reply_fail(e, "script", r);
    else if (out)
        *out = r->integer;
    freeReplyObject(r);
    return rc;
}

/*
 * Runs cv[0..n) inside MULTI/EXEC, then `after` (if not NULL) outside it,
 * all in one round trip. *exec: the EXEC reply, an array with one reply per
 * command (none of them an error). The reply to `after` is not looked at:
 * it is a best-effort extra (the wake-up PUBLISH, which a user without
 * rights on channels may not send).
 */
static int multi_then(rb *b, cmd *const *cv, size_t n, cmd *after,
                      redisReply **exec, stellar_error *e)
{
    cmd m, x;
    cmd **all = NULL;
    redisReply **r = NULL;
    size_t i;
    int rc;

    *exec = NULL;
    all = st_calloc(n + 3, sizeof *all);
    r = st_calloc(n + 3, sizeof *r);
    if (!all || !r) {
        st_free(all);
        st_free(r);
        return oom(e);
    }
    cmd_init(&m);
    cmd_init(&x);
    arg(&m, "MULTI");
    arg(&x, "EXEC");
    all[0] = &m;
    for (i = 0; i < n; i++)
        all[i + 1] = cv[i];
    all[n + 1] = &x;
    all[n + 2] = after;
    rc = exchange(b, all, n + 2 + (after != NULL), r, false, e);
    for (i = 0; rc == STELLAR_OK && i < n + 1; i++)
        if (r[i]->type == REDIS_REPLY_ERROR)
            rc = reply_fail(e, all[i]->argv[0], r[i]);
    if (rc == STELLAR_OK) {
        redisReply *xr = r[n + 1];
        if (xr->type != REDIS_REPLY_ARRAY || xr->elements != n)
            rc = reply_fail(e, "EXEC", xr);
        for (i = 0; rc == STELLAR_OK && i < n; i++)
            if (xr->element[i]->type == REDIS_REPLY_ERROR)
                rc = reply_fail(e, cv[i]->argv[0], xr->element[i]);
        if (rc == STELLAR_OK) {
            *exec = xr;
            r[n + 1] = NULL;
        }
    }
    free_replies(r, n + 2 + (after != NULL));
    st_free(all);
    st_free(r);
    return rc;
}

/*
 * Runs cv[0..n) inside MULTI/EXEC, in one round trip. *exec: the EXEC
 * reply, an array with one reply per command (none of them an error).
 */
static int multi(rb *b, cmd *const *cv, size_t n, redisReply **exec,
                 stellar_error *e)
{
    return multi_then(b, cv, n, NULL, exec, e);
}

/*
 * SCAN MATCH pattern over the whole keyspace. *keys: sorted, without
 * repeats (SCAN may return a key twice); free with free_strv().
 */
static void free_strv(char **v, size_t n)
{
    size_t i;
    if (!v) return;
    for (i = 0; i < n; i++)
        st_free(v[i]);
    st_free(v);
}

static int scan(rb *b, const char *pattern, char ***keys, size_t *nkeys,
                stellar_error *e)
{
    char cursor[32] = "0";
    char **v = NULL;
    size_t n = 0, cap = 0, i, j;
    int rc = STELLAR_OK;

    *keys = NULL;
    *nkeys = 0;
    do {
        cmd c;
        redisReply *r = NULL, *list;
        cmd_init(&c);
        arg(&c, "SCAN");
        arg(&c, cursor);
        arg(&c, "MATCH");
        arg(&c, pattern);
        arg(&c, "COUNT");
        arg(&c, SCAN_COUNT);
        rc = run(b, &c, &r, true, e);
        cmd_free(&c);
        if (rc != STELLAR_OK) break;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[0]->len >= sizeof cursor ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            rc = reply_fail(e, "SCAN", r);
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
                    rc = oom(e);
                    break;
                }
                v = nv;
                cap = nc;
            }
            v[n] = st_strndup(list->element[i]->str, list->element[i]->len);
            if (!v[n])
                rc = oom(e);
            else
                n++;
        }
        freeReplyObject(r);
    } while (rc == STELLAR_OK && strcmp(cursor, "0") != 0);
    if (rc != STELLAR_OK) {
        free_strv(v, n);
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

/* ------------------------------------------------------------- Open --- */

/* userinfo "[user]:password" or "password", percent-encoded. */
static int set_userinfo(rb *b, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (colon) {
        if (colon > s) {
            b->user = st_url_decode(s, (size_t)(colon - s));
            if (!b->user) return -1;
        }
        b->password = st_url_decode(colon + 1, n - (size_t)(colon - s) - 1);
    } else {
        b->password = st_url_decode(s, n);
    }
    if (!b->password) return -1;
    if (!b->password[0]) {
        st_free(b->password);
        b->password = NULL;
    }
    return 0;
}

static bool parse_int_range(const char *s, size_t n, int lo, int hi, int *out)
{
    int64_t v;
    if (!parse_i64(s, n, &v) || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

/* shown: url as error messages may show it (no password). */
static int parse_url(rb *b, const char *url, const char *shown,
                     stellar_error *e)
{
    const char *p, *query, *end, *at;
    char *ns = NULL, *v = NULL;

    if (strncmp(url, "redis+unix://", 13) == 0) {
        p = url + 13;
        query = strchr(p, '?');
        end = query ? query : p + strlen(p);
        if (*p != '/' && (at = memchr(p, '@', (size_t)(end - p))) != NULL) {
            if (set_userinfo(b, p, (size_t)(at - p))) return oom(e);
            p = at + 1;
        }
        if (p == end)
            return st_fail(e, STELLAR_EINVAL,
                           "redis+unix URL '%s' has no socket path", shown);
        b->path = st_url_decode(p, (size_t)(end - p));
        if (!b->path) return oom(e);
        b->where = st_strdup(b->path);
    } else if (strncmp(url, "redis://", 8) == 0) {
        const char *slash, *hostend, *h, *colon = NULL;
        size_t hl;
        p = url + 8;
        query = strchr(p, '?');
        end = query ? query : p + strlen(p);
        slash = memchr(p, '/', (size_t)(end - p));
        hostend = slash ? slash : end;
        for (at = hostend; at > p && at[-1] != '@'; at--)
            ;
        if (at > p) {
            if (set_userinfo(b, p, (size_t)(at - 1 - p))) return oom(e);
            p = at;
        }
        b->port = DEFAULT_PORT;
        if (*p == '[') { /* [IPv6]:port */
            const char *close = memchr(p, ']', (size_t)(hostend - p));
            if (!close)
                return st_fail(e, STELLAR_EINVAL, "bad redis URL '%s'", shown);
            h = p + 1;
            hl = (size_t)(close - h);
            if (close + 1 < hostend && close[1] == ':') colon = close + 1;
        } else {
            colon = memchr(p, ':', (size_t)(hostend - p));
            h = p;
            hl = (size_t)((colon ? colon : hostend) - p);
        }
        if (colon && !parse_int_range(colon + 1, (size_t)(hostend - colon - 1),
                                      1, 65535, &b->port))
            return st_fail(e, STELLAR_EINVAL, "bad port in redis URL '%s'",
                           shown);
        b->host = hl ? st_url_decode(h, hl) : st_strdup("127.0.0.1");
        if (!b->host) return oom(e);
        if (slash && slash + 1 < end &&
            !parse_int_range(slash + 1, (size_t)(end - slash - 1), 0, 1 << 20,
                             &b->db))
            return st_fail(e, STELLAR_EINVAL,
                           "bad database number in redis URL '%s'", shown);
        b->where = strchr(b->host, ':')
                       ? st_asprintf("[%s]:%d", b->host, b->port)
                       : st_asprintf("%s:%d", b->host, b->port);
    } else if (strncmp(url, "redis+sentinel://", 17) == 0) {
        /* [user:pw@]h1:p1,h2:p2/MASTER[/db]: sentinel.c has the rest. */
        const char *slash;
        int rc;
        p = url + 17;
        query = strchr(p, '?');
        end = query ? query : p + strlen(p);
        slash = memchr(p, '/', (size_t)(end - p));
        for (at = slash ? slash : end; at > p && at[-1] != '@'; at--)
            ;
        if (at > p) {
            if (set_userinfo(b, p, (size_t)(at - 1 - p))) return oom(e);
            p = at;
        }
        rc = st_sentinel_open(&b->sn, p, (size_t)(end - p),
                              query ? query + 1 : NULL, b->timeout_ms, &b->db,
                              shown, e);
        if (rc != STELLAR_OK) return rc;
        b->where = st_strdup("(not located yet)");
    } else {
        return st_fail(e, STELLAR_EINVAL,
                       "not a redis URL: '%s' (expected redis://..., "
                       "redis+unix://... or redis+sentinel://...)",
                       shown);
    }
    if (!b->where) return oom(e);

    if (query) {
        v = st_url_param(query + 1, "db");
        if (v && !parse_int_range(v, strlen(v), 0, 1 << 20, &b->db)) {
            st_free(v);
            return st_fail(e, STELLAR_EINVAL,
                           "bad database number in redis URL '%s'", shown);
        }
        st_free(v);
        v = st_url_param(query + 1, "password");
        if (v && !b->password && v[0]) {
            b->password = v;
            v = NULL;
        }
        st_free(v);
        ns = st_url_param(query + 1, "namespace");
    }
    if (!ns) ns = st_strdup(DEFAULT_NAMESPACE);
    if (!ns) return oom(e);
    /* An empty (or blank) namespace gives bare keys (reference §1). */
    b->prefix = blank(ns) ? st_strdup("") : st_asprintf("%s:", ns);
    st_free(ns);
    if (!b->prefix) return oom(e);
    return STELLAR_OK;
}

static int r_open(st_backend **out, const char *url, const st_backend_cfg *cfg,
                  stellar_error *e)
{
    rb *b;
    char *shown;
    int rc;

    *out = NULL;
    b = st_calloc(1, sizeof *b);
    if (!b) return oom(e);
    b->base.ops = &st_redis_ops;
    b->timeout_ms = cfg && cfg->command_timeout_ms > 0
                        ? cfg->command_timeout_ms
                        : COMMAND_TIMEOUT_S * 1000;
    shown = st_url_redact(url);
    rc = parse_url(b, url, shown ? shown : "(redacted)", e);
    st_free(shown);
    if (rc == STELLAR_OK) rc = connect_ctx(b, e);
    if (rc != STELLAR_OK) {
        rb_free(b);
        return rc;
    }
    *out = &b->base;
    return STELLAR_OK;
}

static void r_close(st_backend *base)
{
    rb_free((rb *)base);
}

/* ----------------------------------------------------------- Queues --- */

static int r_push(st_backend *base, const char *queue,
                  const char *const *payloads, size_t n, stellar_error *e)
{
    rb *b = (rb *)base;
    size_t nchunks = (n + PUSH_CHUNK - 1) / PUSH_CHUNK, ncmd = 1 + nchunks;
    size_t i, j;
    cmd *cs = NULL, **cv = NULL, pub;
    redisReply *x = NULL;
    int rc;

    if (n == 0) return STELLAR_OK;
    cs = st_calloc(ncmd, sizeof *cs);
    cv = st_calloc(ncmd, sizeof *cv);
    if (!cs || !cv) {
        st_free(cs);
        st_free(cv);
        return oom(e);
    }
    for (i = 0; i < ncmd; i++) {
        cmd_init(&cs[i]);
        cv[i] = &cs[i];
    }
    /* node-resque's enqueue: MULTI; SADD queues q; RPUSH queue:q p; EXEC. */
    arg(&cs[0], "SADD");
    arg_own(&cs[0], key(b, "queues", NULL));
    arg(&cs[0], queue);
    for (i = 0; i < nchunks; i++) {
        cmd *c = &cs[1 + i];
        arg(c, "RPUSH");
        arg_own(c, key(b, "queue", queue, NULL));
        for (j = i * PUSH_CHUNK; j < n && j < (i + 1) * PUSH_CHUNK; j++)
            arg(c, payloads[j]);
    }
    /* Ours, after EXEC: wakes idle workers waiting on the channel (see
     * the top), the job being there by then. */
    cmd_init(&pub);
    arg(&pub, "PUBLISH");
    arg_own(&pub, key1(b, "stellar:wake", ""));
    arg(&pub, queue);
    rc = multi_then(b, cv, ncmd, &pub, &x, e);
    cmd_free(&pub);
    if (x) freeReplyObject(x);
    for (i = 0; i < ncmd; i++)
        cmd_free(&cs[i]);
    st_free(cs);
    st_free(cv);
    return rc;
}

static int r_push_at(st_backend *base, int64_t at_ms, const char *queue,
                     const char *payload, bool later, stellar_error *e)
{
    rb *b = (rb *)base;
    int64_t s = ms_to_s(at_ms);
    redisReply *r = NULL;
    cmd c;
    int rc;

    (void)queue; /* the payload names its queue */
    script_cmd(b, &c, S_PUSH_AT);
    arg_int(&c, s);
    arg(&c, payload);
    arg(&c, later ? "later" : "");
    rc = eval(b, S_PUSH_AT, &c, &r, false, e);
    cmd_free(&c);
    if (rc != STELLAR_OK) return rc;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        rc = st_fail(e, STELLAR_EEXISTS,
                     "Job already enqueued at this time with same arguments "
                     "(second %lld)",
                     (long long)s);
    freeReplyObject(r);
    return rc;
}

/* A reply that is an array of strings, as a JSON array of strings. */
static int strings_json(const redisReply *r, json_t **out, stellar_error *e)
{
    json_t *a;
    size_t i;

    if (r->type != REDIS_REPLY_ARRAY)
        return st_fail(e, STELLAR_EBACKEND, "redis: unexpected reply type %d",
                       r->type);
    a = json_array();
    if (!a) return oom(e);
    for (i = 0; i < r->elements; i++) {
        const redisReply *x = r->element[i];
        if (x->type != REDIS_REPLY_STRING) continue;
        if (json_array_append_new(a, jstrn(x->str, x->len)) != 0) {
            json_decref(a);
            return oom(e);
        }
    }
    *out = a;
    return STELLAR_OK;
}

static int cmp_reply_str(const void *a, const void *b)
{
    const redisReply *x = *(redisReply *const *)a, *y = *(redisReply *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->str, y->str, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int r_queues(st_backend *base, json_t **names, stellar_error *e)
{
    rb *b = (rb *)base;
    redisReply *r = NULL;
    cmd c;
    int rc;

    *names = NULL;
    cmd_init(&c);
    arg(&c, "SMEMBERS");
    arg_own(&c, key(b, "queues", NULL));
    rc = run(b, &c, &r, true, e);
    cmd_free(&c);
    if (rc != STELLAR_OK) return rc;
    /* Byte order, as JS sorts ASCII names. */
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 1)
        qsort(r->element, r->elements, sizeof *r->element, cmp_reply_str);
    rc = strings_json(r, names, e);
    freeReplyObject(r);
    return rc;
}

/* Runs a command that answers an integer. */
static int run_int(rb *b, cmd *c, int64_t *out, bool retry, stellar_error *e)
{
    redisReply *r = NULL;
    int rc = run(b, c, &r, retry, e);

    cmd_free(c);
    if (rc != STELLAR_OK) return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = reply_fail(e, "command", r);
    else if (out)
        *out = r->integer;
    freeReplyObject(r);
    return rc;
}

/* Runs a command that answers a list of strings, into a JSON array. */
static int run_strings(rb *b, cmd *c, json_t **out, stellar_error *e)
{
    redisReply *r = NULL;
    int rc = run(b, c, &r, true, e);

    cmd_free(c);
    *out = NULL;
    if (rc != STELLAR_OK) return rc;
    rc = strings_json(r, out, e);
    freeReplyObject(r);
    return rc;
}

static int r_length(st_backend *base, const char *queue, int64_t *n,
                    stellar_error *e)
{
    rb *b = (rb *)base;
    cmd c;

    cmd_init(&c);
    arg(&c, "LLEN");
    arg_own(&c, key(b, "queue", queue, NULL));
    return run_int(b, &c, n, true, e);
}

static int r_queued(st_backend *base, const char *queue, int64_t start,
                    int64_t stop, json_t **payloads, stellar_error *e)
{
    rb *b = (rb *)base;
    cmd c;

    cmd_init(&c);
    arg(&c, "LRANGE");
    arg_own(&c, key(b, "queue", queue, NULL));
    arg_int(&c, start);
    arg_int(&c, stop);
    return run_strings(b, &c, payloads, e);
}

static int r_del(st_backend *base, const char *queue, const char *payload,
                 int64_t count, int64_t *removed, stellar_error *e)
{
    rb *b = (rb *)base;
    cmd c;

    cmd_init(&c);
    arg(&c, "LREM");
    arg_own(&c, key(b, "queue", queue, NULL));
    arg_int(&c, count);
    arg(&c, payload);
    return run_int(b, &c, removed, false, e);
}

static int r_del_queue(st_backend *base, const char *queue, int64_t *removed,
                       stellar_error *e)
{
    rb *b = (rb *)base;
    cmd d, s;
    cmd *cv[2];
    redisReply *x = NULL;
    int rc;

    /* node-resque's delQueue: MULTI; DEL queue:q; SREM queues q; EXEC. */
    cmd_init(&d);
    cmd_init(&s);
    arg(&d, "DEL");
    arg_own(&d, key(b, "queue", queue, NULL));
    arg(&s, "SREM");
    arg_own(&s, key(b, "queues", NULL));
    arg(&s, queue);
    cv[0] = &d;
    cv[1] = &s;
    rc = multi(b, cv, 2, &x, e);
    cmd_free(&d);
    cmd_free(&s);
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
    if (r->type != REDIS_REPLY_ARRAY) return reply_fail(e, "script", r);
    v = st_calloc(r->elements ? r->elements : 1, sizeof *v);
    if (!v) return oom(e);
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
        if (parse_s_as_ms(s, len, &ms)) v[n++] = ms;
    }
    *out = sorted_ints(v, n);
    st_free(v);
    return *out ? STELLAR_OK : oom(e);
}

static int r_del_delayed(st_backend *base, const char *payload, json_t **ts_ms,
                         stellar_error *e)
{
    rb *b = (rb *)base;
    redisReply *r = NULL;
    cmd c;
    int rc;

    *ts_ms = NULL;
    script_cmd(b, &c, S_DEL_DELAYED);
    arg(&c, payload);
    rc = eval(b, S_DEL_DELAYED, &c, &r, false, e);
    cmd_free(&c);
    if (rc != STELLAR_OK) return rc;
    rc = seconds_json(r, false, ts_ms, e);
    freeReplyObject(r);
    return rc;
}

static int r_replace(st_backend *base, const char *queue, const char *payload,
                     int64_t at_ms, int64_t *removed, stellar_error *e)
{
    rb *b = (rb *)base;
    cmd c;
    int rc;

    script_cmd(b, &c, S_REPLACE);
    arg(&c, payload);
    arg(&c, queue);
    if (at_ms == ST_REPLACE_NOW)
        arg(&c, "now");
    else if (at_ms > 0)
        arg_int(&c, ms_to_s(at_ms));
    else
        arg(&c, "none");
    /* Safe to send again after a lost reply: a second run leaves the same
     * one copy (only *removed may then read 1 for our own push). */
    rc = eval_int(b, S_REPLACE, &c, true, removed, e);
    cmd_free(&c);
    return rc;
}

static int r_scheduled_at(st_backend *base, const char *payload, json_t **ts_ms,
                          stellar_error *e)
{
    rb *b = (rb *)base;
    redisReply *r = NULL;
    cmd c;
    int rc;

    *ts_ms = NULL;
    /* SMEMBERS timestamps:<payload>: members "delayed:<s>". */
    cmd_init(&c);
    arg(&c, "SMEMBERS");
    arg_own(&c, key1(b, "timestamps:", payload));
    rc = run(b, &c, &r, true, e);
    cmd_free(&c);
    if (rc != STELLAR_OK) return rc;
    rc = seconds_json(r, true, ts_ms, e);
    freeReplyObject(r);
    return rc;
}

/* The <s> of every NS:delayed:<s> key (not delayed_queue_schedule: the
 * pattern needs the ':'; and only integer suffixes count). */
static int delayed_seconds(rb *b, char ***sv, size_t *n, stellar_error *e)
{
    char *pat = scan_pattern(b, "delayed:");
    char **keys = NULL;
    size_t nk = 0, i, j = 0, skip = strlen(b->prefix) + strlen("delayed:");
    int rc;

    *sv = NULL;
    *n = 0;
    if (!pat) return oom(e);
    rc = scan(b, pat, &keys, &nk, e);
    st_free(pat);
    if (rc != STELLAR_OK) return rc;
    for (i = 0; i < nk; i++) {
        int64_t s;
        const char *suffix = keys[i] + skip;
        if (strlen(keys[i]) > skip && parse_i64(suffix, strlen(suffix), &s)) {
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

static int r_timestamps(st_backend *base, json_t **ts_ms, stellar_error *e)
{
    rb *b = (rb *)base;
    char **sv = NULL;
    size_t n = 0, i;
    int64_t *v;
    int rc;

    *ts_ms = NULL;
    rc = delayed_seconds(b, &sv, &n, e);
    if (rc != STELLAR_OK) return rc;
    v = st_calloc(n ? n : 1, sizeof *v);
    if (!v) {
        free_strv(sv, n);
        return oom(e);
    }
    for (i = 0; i < n; i++) {
        int64_t s = 0;
        parse_i64(sv[i], strlen(sv[i]), &s);
        v[i] = s * 1000;
    }
    /* Numeric order (node-resque sorts the text; same for today's 10-digit
     * timestamps). */
    *ts_ms = sorted_ints(v, n);
    st_free(v);
    free_strv(sv, n);
    return *ts_ms ? STELLAR_OK : oom(e);
}

static int r_delayed_at(st_backend *base, int64_t ts_ms, json_t **payloads,
                        stellar_error *e)
{
    rb *b = (rb *)base;
    char s[24];
    cmd c;

    snprintf(s, sizeof s, "%lld", (long long)ms_to_s(ts_ms));
    cmd_init(&c);
    arg(&c, "LRANGE");
    arg_own(&c, key1(b, "delayed:", s));
    arg(&c, "0");
    arg(&c, "-1");
    return run_strings(b, &c, payloads, e);
}

static int r_del_delayed_at(st_backend *base, int64_t ts_ms, int64_t *removed,
                            stellar_error *e)
{
    rb *b = (rb *)base;
    char **sv = NULL;
    size_t n = 0, i;
    cmd c;
    int rc;

    if (ts_ms < 0) {
        rc = delayed_seconds(b, &sv, &n, e);
        if (rc != STELLAR_OK) return rc;
    }
    script_cmd(b, &c, S_DEL_DELAYED_AT);
    arg(&c, ts_ms < 0 ? "1" : "0");
    if (ts_ms >= 0) arg_int(&c, ms_to_s(ts_ms));
    for (i = 0; i < n; i++)
        arg(&c, sv[i]);
    rc = eval_int(b, S_DEL_DELAYED_AT, &c, false, removed, e);
    cmd_free(&c);
    free_strv(sv, n);
    return rc;
}

static int r_promote_due(st_backend *base, int64_t now_ms, int64_t max,
                         int64_t *moved, int64_t *next_ms, stellar_error *e)
{
    rb *b = (rb *)base;
    redisReply *r = NULL;
    cmd c;
    int rc;

    /* Due means second * 1000 <= now_ms, i.e. second <= floor(now / 1000).
     * node-resque's scheduler compares with round(now / 1000), so it may
     * move a job up to half a second before its (rounded) time; backend.h
     * promises at <= now_ms, and the ms the API reports are second * 1000. */
    script_cmd(b, &c, S_PROMOTE);
    arg_int(&c, now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000));
    arg_int(&c, max);
    rc = eval(b, S_PROMOTE, &c, &r, false, e);
    cmd_free(&c);
    if (rc != STELLAR_OK) return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        rc = reply_fail(e, "promote script", r);
    } else {
        int64_t nx = -1;
        if (moved) *moved = r->element[0]->integer;
        if (strcmp(r->element[1]->str, "-1") != 0 &&
            !parse_s_as_ms(r->element[1]->str, r->element[1]->len, &nx))
            nx = -1;
        if (next_ms) *next_ms = nx;
    }
    freeReplyObject(r);
    return rc;
}

/* ---------------------------------------------------------- Workers --- */

/* {"time":<s>,"name":"<name>","queues":"<queues>"} (reference §2.4). */
static char *ping_json(const st_worker_id *w, int64_t now_ms)
{
    st_buf j = {0};
    st_buf_printf(&j, "{\"time\":%lld,\"name\":", (long long)ms_to_s(now_ms));
    st_json_put_string(&j, w->name, strlen(w->name));
    st_buf_puts(&j, ",\"queues\":");
    st_json_put_string(&j, w->queues_str, strlen(w->queues_str));
    st_buf_putc(&j, '}');
    return st_buf_take(&j);
}

static int r_worker_register(st_backend *base, const st_worker_id *w,
                             int64_t now_ms, stellar_error *e)
{
    rb *b = (rb *)base;
    cmd a, s, p, d;
    cmd *cv[4];
    redisReply *x = NULL;
    int rc;

    /* node-resque's init: SADD workers, SET :started, ping. The DEL of a
     * working-on record left under this identity (node-resque's
     * forceCleanWorker leaves them behind) is ours: a worker that has just
     * registered holds no job; so is the DEL of the id of its last reserve
     * (scripts.h). */
    cmd_init(&a);
    cmd_init(&s);
    cmd_init(&p);
    cmd_init(&d);
    arg(&a, "SADD");
    arg_own(&a, key(b, "workers", NULL));
    arg_own(&a, st_asprintf("%s:%s", w->name, w->queues_str));
    arg(&s, "SET");
    arg_own(&s, key(b, "worker", w->name, w->queues_str, "started", NULL));
    arg_int(&s, ms_to_s(now_ms));
    arg(&p, "SET");
    arg_own(&p, key(b, "worker", "ping", w->name, NULL));
    arg_own(&p, ping_json(w, now_ms));
    arg(&d, "DEL");
    arg_own(&d, key(b, "worker", w->name, w->queues_str, NULL));
    arg_own(&d, key(b, "stellar", "reserve", w->name, NULL));
    cv[0] = &a;
    cv[1] = &s;
    cv[2] = &p;
    cv[3] = &d;
    rc = multi(b, cv, 4, &x, e);
    if (x) freeReplyObject(x);
    cmd_free(&a);
    cmd_free(&s);
    cmd_free(&p);
    cmd_free(&d);
    return rc;
}

static int r_worker_unregister(st_backend *base, const st_worker_id *w,
                               stellar_error *e)
{
    rb *b = (rb *)base;
    cmd s, d;
    cmd *cv[2];
    redisReply *x = NULL;
    int rc;

    /* Reference §4.6, with the five DELs as one, and our reserve id. */
    cmd_init(&s);
    cmd_init(&d);
    arg(&s, "SREM");
    arg_own(&s, key(b, "workers", NULL));
    arg_own(&s, st_asprintf("%s:%s", w->name, w->queues_str));
    arg(&d, "DEL");
    arg_own(&d, key(b, "worker", "ping", w->name, NULL));
    arg_own(&d, key(b, "worker", w->name, w->queues_str, NULL));
    arg_own(&d, key(b, "worker", w->name, w->queues_str, "started", NULL));
    arg_own(&d, key(b, "stat", "failed", w->name, NULL));
    arg_own(&d, key(b, "stat", "processed", w->name, NULL));
    arg_own(&d, key(b, "stellar", "reserve", w->name, NULL));
    cv[0] = &s;
    cv[1] = &d;
    rc = multi(b, cv, 2, &x, e);
    if (x) freeReplyObject(x);
    cmd_free(&s);
    cmd_free(&d);
    return rc;
}

static int r_ping(st_backend *base, const st_worker_id *const *ws, size_t n,
                  int64_t now_ms, stellar_error *e)
{
    rb *b = (rb *)base;
    cmd *cs, **cv;
    redisReply *x = NULL;
    size_t i;
    int rc;

    if (n == 0) return STELLAR_OK;
    cs = st_calloc(n, sizeof *cs);
    cv = st_calloc(n, sizeof *cv);
    if (!cs || !cv) {
        st_free(cs);
        st_free(cv);
        return oom(e);
    }
    for (i = 0; i < n; i++) {
        cmd_init(&cs[i]);
        cv[i] = &cs[i];
        arg(&cs[i], "SET");
        arg_own(&cs[i], key(b, "worker", "ping", ws[i]->name, NULL));
        arg_own(&cs[i], ping_json(ws[i], now_ms));
    }
    rc = multi(b, cv, n, &x, e);
    if (x) freeReplyObject(x);
    for (i = 0; i < n; i++)
        cmd_free(&cs[i]);
    st_free(cs);
    st_free(cv);
    return rc;
}

/* NULL, an empty list or {"*"}: every queue. */
static bool wildcard(const char *const *queues)
{
    return !queues || !queues[0] || (strcmp(queues[0], "*") == 0 && !queues[1]);
}

/* The reserve cache for w, (re)built if it was made for another worker,
 * with its head for now_ms's second; NULL if out of memory. */
static rcache *reserve_cache(rb *b, const st_worker_id *w, int64_t now_ms)
{
    rcache *r = b->rc;
    int64_t sec = now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
    st_buf t = {0};
    size_t i;

    if (r &&
        (strcmp(r->name, w->name) || strcmp(r->queues_str, w->queues_str))) {
        rcache_free(r);
        r = b->rc = NULL;
    }
    if (!r) {
        if (!(r = st_calloc(1, sizeof *r))) return NULL;
        b->rc = r;
        r->head_s = INT64_MIN;
        if (!wildcard(w->queues))
            while (w->queues[r->nq])
                r->nq++;
        r->qkeys = st_calloc(r->nq + 1, sizeof *r->qkeys);
        st_buf_puts(&t, ",\"worker\":");
        st_json_put_string(&t, w->name, strlen(w->name));
        st_buf_putc(&t, '}');
        r->name = st_strdup(w->name);
        r->queues_str = st_strdup(w->queues_str);
        r->wkey = key(b, "worker", w->name, w->queues_str, NULL);
        r->tail = st_buf_take(&t);
        r->stat[0] = key(b, "stat", "processed", NULL);
        r->stat[1] = key(b, "stat", "processed", w->name, NULL);
        r->stat[2] = key(b, "stat", "failed", NULL);
        r->stat[3] = key(b, "stat", "failed", w->name, NULL);
        r->failed = key(b, "failed", NULL);
        r->idkey = key(b, "stellar", "reserve", w->name, NULL);
        /* Ids grow across restarts too, so a new process never meets its
         * predecessor's last id (registration deletes it anyway). */
        r->id = (uint64_t)st_now_ms() * 1000;
        for (i = 0; r->qkeys && i < r->nq; i++)
            if (!(r->qkeys[i] = key(b, "queue", w->queues[i], NULL))) break;
        if (!r->name || !r->queues_str || !r->wkey || !r->tail || !r->stat[0] ||
            !r->stat[1] || !r->stat[2] || !r->stat[3] || !r->failed ||
            !r->idkey || !r->qkeys || i < r->nq) {
            rcache_free(r);
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
            rcache_free(r);
            b->rc = NULL;
            return NULL;
        }
        r->head_s = sec;
    }
    return r;
}

static int r_reserve(st_backend *base, const st_worker_id *w,
                     const st_done *done, int64_t now_ms, st_reserved *out,
                     stellar_error *e)
{
    rb *b = (rb *)base;
    enum st_outcome oc = done ? done->outcome : ST_DONE_NONE;
    redisReply *r = NULL;
    rcache *k;
    cmd c;
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
    if (!(k = reserve_cache(b, w, now_ms))) return oom(e);

    /* The working-on record is head + queue + payload + tail (scripts.h). */
    script_cmd(b, &c, S_RESERVE);
    arg(&c, k->wkey);
    arg(&c, k->head);
    arg(&c, k->tail);
    switch (oc) {
    case ST_DONE_OK:
    case ST_DONE_FAILED:
        arg(&c, oc == ST_DONE_OK ? "1" : "2");
        arg(&c, k->stat[oc == ST_DONE_OK ? 0 : 2]);
        arg(&c, k->stat[oc == ST_DONE_OK ? 1 : 3]);
        if (oc == ST_DONE_FAILED) {
            arg(&c, k->failed);
            arg(&c, done->failed_entry);
        } else {
            arg(&c, "");
            arg(&c, "");
        }
        break;
    case ST_DONE_REQUEUE:
        /* Back at the head of its queue, which is listed again in case
         * the queue was deleted meanwhile. */
        arg(&c, "4");
        arg_own(&c, key(b, "queues", NULL));
        arg(&c, done->queue);
        arg_own(&c, key(b, "queue", done->queue, NULL));
        arg(&c, done->payload);
        break;
    case ST_DONE_DROPPED:
    case ST_DONE_NONE:
    default:
        arg(&c, oc == ST_DONE_NONE ? "0" : "3");
        for (i = 0; i < 4; i++)
            arg(&c, "");
        break;
    }
    /* A call that failed may have run, its reply lost: the retry (the
     * caller's next call, with the same done) carries the same id. */
    if (!k->resend) k->id++;
    arg(&c, k->idkey);
    arg_int(&c, (int64_t)k->id);
    arg(&c, out ? "1" : "0");
    arg_int(&c, (int64_t)k->nq);
    for (i = 0; i < k->nq; i++) {
        arg(&c, w->queues[i]);
        arg(&c, k->qkeys[i]);
    }
    rc = eval(b, S_RESERVE, &c, &r, false, e);
    cmd_free(&c);
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
        rc = reply_fail(e, "reserve script", r);
    } else if (out) {
        /* {queue, payload, suspect (0/1)}: scripts.h. */
        out->queue = st_strndup(r->element[0]->str, r->element[0]->len);
        out->payload = st_strndup(r->element[1]->str, r->element[1]->len);
        out->payload_len = r->element[1]->len;
        out->suspect = r->element[2]->integer != 0;
        if (!out->queue || !out->payload) {
            /* The job is popped and recorded as working-on: the retry
             * (the same id) hands it out, and does not apply done twice. */
            st_reserved_clear(out);
            k->resend = true;
            rc = oom(e);
        }
    }
    freeReplyObject(r);
    return rc;
}

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
        h->has_run_at = parse_date(json_string_value(v), &h->run_at_ms);
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
                            h->payload ? jstrn(h->payload, strlen(h->payload))
                                       : json_null())) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A GET reply as a string value, or NULL (nil, error, other type). */
static const redisReply *str_reply(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING ? r : NULL;
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
    if (!str_reply(r)) return true;
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
static int worker_rows(rb *b, const char *only, wrow **rows, size_t *nrows,
                       stellar_error *e)
{
    cmd c;
    redisReply *r = NULL;
    char *pat = NULL, **pk = NULL;
    size_t npk = 0, i, j, n = 0, cap;
    size_t skip = strlen(b->prefix) + strlen("worker:ping:");
    wrow *v = NULL;
    int rc;

    *rows = NULL;
    *nrows = 0;
    cmd_init(&c);
    arg(&c, "SMEMBERS");
    arg_own(&c, key(b, "workers", NULL));
    rc = run(b, &c, &r, true, e);
    cmd_free(&c);
    if (rc != STELLAR_OK) return rc;
    if (r->type != REDIS_REPLY_ARRAY) {
        rc = reply_fail(e, "SMEMBERS", r);
        freeReplyObject(r);
        return rc;
    }
    pat = scan_pattern(b, "worker:ping:");
    rc = pat ? scan(b, pat, &pk, &npk, e) : oom(e);
    st_free(pat);
    cap = r->elements + npk;
    if (rc == STELLAR_OK && !(v = st_calloc(cap ? cap : 1, sizeof *v)))
        rc = oom(e);
    for (i = 0; rc == STELLAR_OK && i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING) continue;
        if (parse_member(m->str, m->len, &v[n].name, &v[n].qs)) {
            rc = oom(e);
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
            rc = oom(e);
        else
            n++;
    }
    freeReplyObject(r);
    free_strv(pk, npk);
    if (rc != STELLAR_OK) {
        wrows_free(v, n);
        return rc;
    }
    *rows = v;
    *nrows = n;
    return STELLAR_OK;
}

/* GETs keys[0..n) in one round trip; r[i] is the reply (string or nil). */
static int get_many(rb *b, char **keys, size_t n, redisReply **r,
                    stellar_error *e)
{
    cmd *cs, **cv;
    size_t i;
    int rc;

    if (n == 0) return STELLAR_OK;
    cs = st_calloc(n, sizeof *cs);
    cv = st_calloc(n, sizeof *cv);
    if (!cs || !cv) {
        st_free(cs);
        st_free(cv);
        return oom(e);
    }
    for (i = 0; i < n; i++) {
        cmd_init(&cs[i]);
        cv[i] = &cs[i];
        arg(&cs[i], "GET");
        arg(&cs[i], keys[i]);
    }
    rc = exchange(b, cv, n, r, true, e);
    for (i = 0; i < n; i++)
        cmd_free(&cs[i]);
    st_free(cs);
    st_free(cv);
    return rc;
}

/*
 * For each row: started, ping and working-on records. Ghosts get their
 * queues from their ping record first, then their working-on record, so
 * two round trips. vals[i*3 + {0,1,2}] = started, ping, working-on.
 */
static int worker_vals(rb *b, wrow *v, size_t n, redisReply ***vals,
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
        return oom(e);
    }
    /* Round one: every ping record, and members' started and working-on. */
    for (i = 0; i < n && rc == STELLAR_OK; i++) {
        keys[i * 3 + 1] = key(b, "worker", "ping", v[i].name, NULL);
        if (!v[i].ghost) {
            keys[i * 3] = key(b, "worker", v[i].name, v[i].qs ? v[i].qs : "",
                              "started", NULL);
            keys[i * 3 + 2] =
                key(b, "worker", v[i].name, v[i].qs ? v[i].qs : "", NULL);
        } else {
            keys[i * 3] = st_strdup("");
            keys[i * 3 + 2] = st_strdup("");
        }
        if (!keys[i * 3] || !keys[i * 3 + 1] || !keys[i * 3 + 2]) rc = oom(e);
    }
    if (rc == STELLAR_OK) rc = get_many(b, keys, n * 3, r, e);
    /* Round two: ghosts whose ping names their queues. */
    if (rc == STELLAR_OK) {
        size_t ng = 0;
        char **gk = st_calloc(n * 2 + 1, sizeof *gk);
        size_t *gi = st_calloc(n + 1, sizeof *gi);
        redisReply **gr = st_calloc(n * 2 + 1, sizeof *gr);
        if (!gk || !gi || !gr) rc = oom(e);
        for (i = 0; rc == STELLAR_OK && i < n; i++) {
            bool has;
            int64_t ms;
            if (!v[i].ghost) continue;
            if (!ping_parse(r[i * 3 + 1], &has, &ms, &v[i].qs)) {
                rc = oom(e);
                break;
            }
            if (!v[i].qs) continue;
            gk[ng * 2] = key(b, "worker", v[i].name, v[i].qs, "started", NULL);
            gk[ng * 2 + 1] = key(b, "worker", v[i].name, v[i].qs, NULL);
            gi[ng++] = i;
            if (!gk[ng * 2 - 2] || !gk[ng * 2 - 1]) rc = oom(e);
        }
        if (rc == STELLAR_OK && ng) rc = get_many(b, gk, ng * 2, gr, e);
        for (i = 0; rc == STELLAR_OK && i < ng; i++) {
            size_t k = gi[i];
            if (r[k * 3]) freeReplyObject(r[k * 3]);
            if (r[k * 3 + 2]) freeReplyObject(r[k * 3 + 2]);
            r[k * 3] = gr[i * 2];
            r[k * 3 + 2] = gr[i * 2 + 1];
            gr[i * 2] = gr[i * 2 + 1] = NULL;
        }
        if (gr) free_replies(gr, n * 2);
        free_strv(gk, n * 2);
        st_free(gi);
        st_free(gr);
    }
    free_strv(keys, n * 3);
    if (rc != STELLAR_OK) {
        free_replies(r, n * 3);
        st_free(r);
        return rc;
    }
    *vals = r;
    return STELLAR_OK;
}

static int r_workers(st_backend *base, json_t **out, stellar_error *e)
{
    rb *b = (rb *)base;
    wrow *v = NULL;
    size_t n = 0, i;
    redisReply **r = NULL;
    json_t *all = NULL;
    int rc;

    *out = NULL;
    rc = worker_rows(b, NULL, &v, &n, e);
    if (rc == STELLAR_OK) rc = worker_vals(b, v, n, &r, e);
    if (rc == STELLAR_OK && !(all = json_object())) rc = oom(e);
    for (i = 0; rc == STELLAR_OK && i < n; i++) {
        const redisReply *st = str_reply(r[i * 3]),
                         *wo = str_reply(r[i * 3 + 2]);
        json_t *o = json_object(), *prev, *won;
        int64_t ms;
        bool has;
        held h;

        if (!o ||
            json_object_set_new(o, "queues",
                                v[i].qs ? json_string(v[i].qs) : json_null()) ||
            json_object_set_new(o, "started",
                                st && parse_s_as_ms(st->str, st->len, &ms)
                                    ? json_integer(ms)
                                    : json_null()) ||
            !ping_parse(r[i * 3 + 1], &has, &ms, NULL) ||
            json_object_set_new(o, "ping",
                                has ? json_integer(ms) : json_null())) {
            json_decref(o);
            rc = oom(e);
            break;
        }
        memset(&h, 0, sizeof h);
        won = !wo || held_parse(&h, wo->str, wo->len) ? held_json(&h) : NULL;
        held_clear(&h);
        if (json_object_set_new(o, "working_on", won)) {
            json_decref(o);
            rc = oom(e);
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
        if (json_object_set_new(all, v[i].name, o) != 0) rc = oom(e);
    }
    if (r) free_replies(r, n * 3);
    st_free(r);
    wrows_free(v, n);
    if (rc != STELLAR_OK) {
        json_decref(all);
        return rc;
    }
    *out = all;
    return STELLAR_OK;
}

/* The §2.6 entry node-resque's forceCleanWorker writes, for a caller that
 * gave none. */
static char *timeout_entry(const char *name, const held *h, int64_t now_ms)
{
    char host[256], date[80], *line, *entry;
    json_t *bt;

    if (gethostname(host, sizeof host) != 0) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    st_js_date(now_ms, date);
    line = st_asprintf("killed by %s at %s", host, date);
    bt = json_array();
    if (!line || !bt || json_array_append_new(bt, jstrn(line, strlen(line))) ||
        json_array_append_new(bt, json_string("queue#forceCleanWorker")) ||
        json_array_append_new(bt, json_string("node-resque"))) {
        st_free(line);
        json_decref(bt);
        return NULL;
    }
    entry = st_failed_entry(name, h->queue ? h->queue : "",
                            h->payload ? h->payload : "{}",
                            "Worker Timeout (killed manually)",
                            "Worker Timeout (killed manually)", bt, now_ms);
    st_free(line);
    json_decref(bt);
    return entry;
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

static int clean_once(rb *b, const char *name, enum st_clean_mode mode,
                      const char *failed_entry, char **payload, bool *again,
                      stellar_error *e)
{
    wrow *v = NULL;
    size_t n = 0, i, hidx = 0;
    redisReply **r = NULL, *sr = NULL;
    held h;
    cmd c;
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
        const redisReply *wo = str_reply(r[i * 3 + 2]);
        if (wo) {
            hidx = i + 1;
            if (!held_parse(&h, wo->str, wo->len)) rc = oom(e);
        }
    }
    if (rc != STELLAR_OK) {
        free_replies(r, n * 3);
        st_free(r);
        wrows_free(v, n);
        return rc;
    }

    script_cmd(b, &c, S_CLEAN);
    arg(&c, name);
    arg_int(&c, (int64_t)hidx);
    if (hidx)
        argn(&c, r[(hidx - 1) * 3 + 2]->str, r[(hidx - 1) * 3 + 2]->len);
    else
        arg(&c, "");
    if (!hidx) {
        arg(&c, "0");
        arg(&c, "");
        arg(&c, "");
    } else if (mode == ST_CLEAN_REQUEUE && h.payload) {
        arg(&c, "2");
        arg_own(&c, held_queue(&h));
        arg(&c, h.payload);
    } else {
        arg(&c, "1");
        if (failed_entry)
            arg(&c, failed_entry);
        else
            arg_own(&c, timeout_entry(name, &h, st_now_ms()));
        arg(&c, "");
    }
    /* Pairs (workers-set member, queues string); a ghost's member may not
     * exist, and SREM of it is harmless. */
    for (i = 0; i < n; i++) {
        if (!v[i].qs) {
            /* A member without queues (or a ghost with an unreadable
             * ping): its keys are the name-only ones. */
            arg(&c, v[i].name);
            arg(&c, "");
            continue;
        }
        arg_own(&c, st_asprintf("%s:%s", v[i].name, v[i].qs));
        arg(&c, v[i].qs);
    }
    rc = eval(b, S_CLEAN, &c, &sr, false, e);
    cmd_free(&c);
    if (rc == STELLAR_OK) {
        if (sr->type != REDIS_REPLY_INTEGER)
            rc = reply_fail(e, "clean script", sr);
        else if (sr->integer < 0)
            *again = true;
        else if (payload && h.payload) {
            *payload = h.payload;
            h.payload = NULL;
        }
        freeReplyObject(sr);
    }
    held_clear(&h);
    free_replies(r, n * 3);
    st_free(r);
    wrows_free(v, n);
    return rc;
}

static int r_clean_worker(st_backend *base, const char *name,
                          enum st_clean_mode mode, const char *failed_entry,
                          char **payload, stellar_error *e)
{
    rb *b = (rb *)base;
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

/* ---------------------------------------------------- Stats, failed --- */

static int r_stats(st_backend *base, json_t **out, stellar_error *e)
{
    rb *b = (rb *)base;
    char *pat = scan_pattern(b, "stat:");
    char **keys = NULL;
    size_t n = 0, i, skip = strlen(b->prefix) + strlen("stat:");
    redisReply **r = NULL;
    json_t *o = NULL;
    int rc;

    *out = NULL;
    if (!pat) return oom(e);
    rc = scan(b, pat, &keys, &n, e);
    st_free(pat);
    if (rc == STELLAR_OK && !(r = st_calloc(n + 1, sizeof *r))) rc = oom(e);
    if (rc == STELLAR_OK) rc = get_many(b, keys, n, r, e);
    if (rc == STELLAR_OK && !(o = json_object())) rc = oom(e);
    for (i = 0; rc == STELLAR_OK && i < n; i++) {
        const redisReply *x = str_reply(r[i]);
        int64_t val;
        if (!x || strlen(keys[i]) <= skip || !parse_i64(x->str, x->len, &val))
            continue;
        if (json_object_set_new(o, keys[i] + skip, json_integer(val)) != 0)
            rc = oom(e);
    }
    if (r) free_replies(r, n);
    st_free(r);
    free_strv(keys, n);
    if (rc != STELLAR_OK) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return STELLAR_OK;
}

static int r_stat_incr(st_backend *base, const char *k, int64_t by,
                       stellar_error *e)
{
    rb *b = (rb *)base;
    cmd c;

    cmd_init(&c);
    arg(&c, "INCRBY");
    arg_own(&c, key(b, "stat", k, NULL));
    arg_int(&c, by);
    return run_int(b, &c, NULL, false, e);
}

static int r_failed_count(st_backend *base, int64_t *n, stellar_error *e)
{
    rb *b = (rb *)base;
    cmd c;

    cmd_init(&c);
    arg(&c, "LLEN");
    arg_own(&c, key(b, "failed", NULL));
    return run_int(b, &c, n, true, e);
}

static int r_failed_range(st_backend *base, int64_t start, int64_t stop,
                          json_t **entries, stellar_error *e)
{
    rb *b = (rb *)base;
    cmd c;

    cmd_init(&c);
    arg(&c, "LRANGE");
    arg_own(&c, key(b, "failed", NULL));
    arg_int(&c, start);
    arg_int(&c, stop);
    return run_strings(b, &c, entries, e);
}

static int r_failed_remove(st_backend *base, const char *entry,
                           const st_done *requeue, int64_t *removed,
                           stellar_error *e)
{
    rb *b = (rb *)base;
    cmd c;
    int rc;

    if (requeue && (!requeue->queue || !requeue->payload))
        return st_fail(e, STELLAR_EINVAL,
                       "failed_remove: requeue needs a queue and a payload");
    script_cmd(b, &c, S_FAILED_REMOVE);
    arg(&c, entry);
    arg(&c, requeue ? "1" : "0");
    arg(&c, requeue ? requeue->queue : "");
    arg(&c, requeue ? requeue->payload : "");
    rc = eval_int(b, S_FAILED_REMOVE, &c, false, removed, e);
    cmd_free(&c);
    return rc;
}

/* --------------------------------------------------------------- KV --- */

static int r_kv_set(st_backend *base, const char *k, const char *value,
                    int64_t ttl_ms, bool nx, bool *set, stellar_error *e)
{
    rb *b = (rb *)base;
    redisReply *r = NULL;
    cmd c;
    int rc;

    cmd_init(&c);
    arg(&c, "SET");
    arg_own(&c, key1(b, k, ""));
    arg(&c, value);
    if (ttl_ms > 0) {
        arg(&c, "PX");
        arg_int(&c, ttl_ms);
    }
    if (nx) arg(&c, "NX");
    rc = run(b, &c, &r, false, e);
    cmd_free(&c);
    if (rc != STELLAR_OK) return rc;
    if (set) *set = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return STELLAR_OK;
}

static int r_kv_get(st_backend *base, const char *k, char **value,
                    stellar_error *e)
{
    rb *b = (rb *)base;
    redisReply *r = NULL;
    cmd c;
    int rc;

    *value = NULL;
    cmd_init(&c);
    arg(&c, "GET");
    arg_own(&c, key1(b, k, ""));
    rc = run(b, &c, &r, true, e);
    cmd_free(&c);
    if (rc != STELLAR_OK) return rc;
    if (r->type == REDIS_REPLY_STRING) {
        *value = st_strndup(r->str, r->len);
        if (!*value) rc = oom(e);
    }
    freeReplyObject(r);
    return rc;
}

static int r_kv_del(st_backend *base, const char *k, const char *value,
                    int64_t *removed, stellar_error *e)
{
    rb *b = (rb *)base;
    cmd c;
    int rc;

    if (!value) {
        cmd_init(&c);
        arg(&c, "DEL");
        arg_own(&c, key1(b, k, ""));
        return run_int(b, &c, removed, false, e);
    }
    script_cmd(b, &c, S_KV_DEL);
    arg(&c, k);
    arg(&c, value);
    rc = eval_int(b, S_KV_DEL, &c, false, removed, e);
    cmd_free(&c);
    return rc;
}

static int r_kv_expire(st_backend *base, const char *k, const char *value,
                       int64_t ttl_ms, bool *set, stellar_error *e)
{
    rb *b = (rb *)base;
    int64_t n = 0;
    cmd c;
    int rc;

    if (!value) { /* any value: PEXPIRE / PERSIST say whether it was set */
        cmd_init(&c);
        arg(&c, ttl_ms > 0 ? "PEXPIRE" : "PERSIST");
        arg_own(&c, key1(b, k, ""));
        if (ttl_ms > 0) arg_int(&c, ttl_ms);
        rc = run_int(b, &c, &n, false, e);
        if (set) *set = rc == STELLAR_OK && n == 1;
        return rc;
    }
    script_cmd(b, &c, S_KV_EXPIRE);
    arg(&c, k);
    arg(&c, value);
    arg_int(&c, ttl_ms);
    rc = eval_int(b, S_KV_EXPIRE, &c, false, &n, e);
    cmd_free(&c);
    if (set) *set = rc == STELLAR_OK && n == 1;
    return rc;
}

static int r_kv_incr(st_backend *base, const char *k, int64_t by,
                     int64_t ttl_ms, int64_t *out, stellar_error *e)
{
    rb *b = (rb *)base;
    cmd i, x;
    cmd *cv[2];
    redisReply *r = NULL;
    int rc;

    cmd_init(&i);
    cmd_init(&x);
    arg(&i, "INCRBY");
    arg_own(&i, key1(b, k, ""));
    arg_int(&i, by);
    arg(&x, "PEXPIRE");
    arg_own(&x, key1(b, k, ""));
    arg_int(&x, ttl_ms);
    cv[0] = &i;
    cv[1] = &x;
    rc = multi(b, cv, ttl_ms > 0 ? 2 : 1, &r, e);
    cmd_free(&i);
    cmd_free(&x);
    if (rc != STELLAR_OK) return rc;
    if (out) *out = r->element[0]->integer;
    freeReplyObject(r);
    return STELLAR_OK;
}

static int r_kv_scan(st_backend *base, const char *prefix, json_t **out,
                     stellar_error *e)
{
    rb *b = (rb *)base;
    char *pat = scan_pattern(b, prefix);
    char **keys = NULL;
    size_t n = 0, i, skip = strlen(b->prefix);
    cmd *cs = NULL, **cv = NULL;
    redisReply **r = NULL;
    json_t *o = NULL;
    int64_t now;
    int rc;

    *out = NULL;
    if (!pat) return oom(e);
    rc = scan(b, pat, &keys, &n, e);
    st_free(pat);
    if (rc == STELLAR_OK) {
        cs = st_calloc(n * 2 + 1, sizeof *cs);
        cv = st_calloc(n * 2 + 1, sizeof *cv);
        r = st_calloc(n * 2 + 1, sizeof *r);
        if (!cs || !cv || !r) rc = oom(e);
    }
    for (i = 0; rc == STELLAR_OK && i < n * 2; i++) {
        cmd_init(&cs[i]);
        cv[i] = &cs[i];
        arg(&cs[i], i % 2 ? "PTTL" : "GET");
        arg(&cs[i], keys[i / 2]);
    }
    if (rc == STELLAR_OK && n) rc = exchange(b, cv, n * 2, r, true, e);
    now = st_now_ms();
    if (rc == STELLAR_OK && !(o = json_object())) rc = oom(e);
    for (i = 0; rc == STELLAR_OK && i < n; i++) {
        const redisReply *v = str_reply(r[i * 2]), *t = r[i * 2 + 1];
        json_t *ent;
        /* Other types (lists, sets) under the prefix are not kv keys. */
        if (!v || strlen(keys[i]) < skip) continue;
        ent = json_object();
        /* expires: absolute time in ms since the epoch, as PTTL + now. */
        if (!ent || json_object_set_new(ent, "value", jstrn(v->str, v->len)) ||
            json_object_set_new(ent, "expires",
                                t && t->type == REDIS_REPLY_INTEGER &&
                                        t->integer >= 0
                                    ? json_integer(now + t->integer)
                                    : json_null())) {
            json_decref(ent);
            rc = oom(e);
            break;
        }
        if (json_object_set_new(o, keys[i] + skip, ent) != 0) {
            rc = oom(e);
            break;
        }
    }
    if (r) free_replies(r, n * 2);
    if (cs)
        for (i = 0; i < n * 2; i++)
            cmd_free(&cs[i]);
    st_free(cs);
    st_free(cv);
    st_free(r);
    free_strv(keys, n);
    if (rc != STELLAR_OK) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return STELLAR_OK;
}

/* ------------------------------------------------------------- Wait --- */

/* Opens the subscriber connection: AUTH, no SELECT (channels ignore the
 * database number). */
static int sub_open(rb *b, stellar_error *e)
{
    redisContext *c;
    redisReply *r = NULL;
    int rc;

    if ((rc = dial(b, "wait: ", &c, e)) != STELLAR_OK) return rc;
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

static int sub_lost(rb *b, stellar_error *e)
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
static int sub_send(rb *b, const char *verb, const char *chan, stellar_error *e)
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
static int sub_read(rb *b, int64_t deadline, redisReply **r, stellar_error *e)
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

    if (q->type != REDIS_REPLY_STRING || wildcard(w->queues) ||
        strcmp(q->str, "*") == 0)
        return true;
    for (i = 0; w->queues[i]; i++)
        if (strcmp(w->queues[i], q->str) == 0) return true;
    return false;
}

/* *ready: whether one of w's queues holds a job now. */
static int queues_ready(rb *b, const st_worker_id *w, bool *ready,
                        stellar_error *e)
{
    redisReply *r = NULL;
    size_t nq = 0, i;
    cmd c;
    int rc;

    *ready = false;
    if (!wildcard(w->queues))
        while (w->queues[nq])
            nq++;
    script_cmd(b, &c, S_READY);
    arg_int(&c, (int64_t)nq);
    for (i = 0; i < nq; i++)
        arg_own(&c, key(b, "queue", w->queues[i], NULL));
    rc = eval(b, S_READY, &c, &r, true, e);
    cmd_free(&c);
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
static int r_wait(st_backend *base, const st_worker_id *w, int64_t timeout_ms,
                  stellar_error *e)
{
    rb *b = (rb *)base;
    int64_t deadline = st_mono_ms() + timeout_ms;
    char *chan = key1(b, "stellar:wake", "");
    redisReply *r = NULL;
    bool subscribed = false, ready = false;
    stellar_error ignored;
    nopipe np;
    int rc = STELLAR_OK;

    if (!chan) return oom(e);
    if (b->sub_refused) {
        rc = st_fail(e, STELLAR_EBACKEND,
                     "wait: redis at %s refused "
                     "SUBSCRIBE: %s",
                     b->where, b->sub_refused);
        goto out_free;
    }
    if (timeout_ms <= 0) goto out_free;
    nopipe_enter(&np);
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
    nopipe_leave(&np);
out_free:
    st_free(chan);
    return rc;
}

/* ------------------------------------------------------------ Table --- */

/* Serves "redis://..." and "redis+unix://..." (st_backend_find maps the
 * second scheme to this table). */
const st_backend_ops st_redis_ops = {
    .scheme = "redis",
    .open = r_open,
    .close = r_close,
    .push = r_push,
    .push_at = r_push_at,
    .queues = r_queues,
    .length = r_length,
    .queued = r_queued,
    .del = r_del,
    .del_queue = r_del_queue,
    .del_delayed = r_del_delayed,
    .replace = r_replace,
    .scheduled_at = r_scheduled_at,
    .timestamps = r_timestamps,
    .delayed_at = r_delayed_at,
    .del_delayed_at = r_del_delayed_at,
    .promote_due = r_promote_due,
    .worker_register = r_worker_register,
    .worker_unregister = r_worker_unregister,
    .ping = r_ping,
    .reserve = r_reserve,
    .workers = r_workers,
    .clean_worker = r_clean_worker,
    .stats = r_stats,
    .stat_incr = r_stat_incr,
    .failed_count = r_failed_count,
    .failed_range = r_failed_range,
    .failed_remove = r_failed_remove,
    .kv_set = r_kv_set,
    .kv_get = r_kv_get,
    .kv_del = r_kv_del,
    .kv_expire = r_kv_expire,
    .kv_incr = r_kv_incr,
    .kv_scan = r_kv_scan,
    .wait = r_wait,
};
