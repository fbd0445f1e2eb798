/*
 * redis.c: the Redis backend, in node-resque 9's layout byte for byte
 * (shared/reference/resque-protocol.md), on hiredis' blocking API. This
 * file parses the URL, opens and closes a backend and holds the ops table;
 * rd.h lists the files that do the rest, one concern each.
 *
 * DESIGN
 * - One st_backend is one redisContext, used by one thread (backend.h).
 * - Every state change is one atomic step: a MULTI/EXEC pipeline where
 *   node-resque uses one (push, registration, ping), otherwise a Lua script
 *   (lua/, embedded at build time) run with EVALSHA. Scripts are loaded with
 * SCRIPT LOAD on every (re)connection and reloaded if Redis answers NOSCRIPT.
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
#include "rd.h"
#include "sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_NAMESPACE "resque"
#define DEFAULT_PORT      6379
#define COMMAND_TIMEOUT_S 30 /* a reply that takes longer drops the link */

/* ------------------------------------------------------------- Open --- */

/* userinfo "[user]:password" or "password", percent-encoded. */
static int set_userinfo(rd_conn *b, const char *s, size_t n)
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
    if (!rd_parse_i64(s, n, &v) || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

/* shown: url as error messages may show it (no password). */
static int parse_url(rd_conn *b, const char *url, const char *shown,
                     stellar_error *e)
{
    const char *p, *query, *end, *at;
    char *ns = NULL, *v = NULL;

    if (strncmp(url, "redis+unix://", 13) == 0) {
        p = url + 13;
        query = strchr(p, '?');
        end = query ? query : p + strlen(p);
        if (*p != '/' && (at = memchr(p, '@', (size_t)(end - p))) != NULL) {
            if (set_userinfo(b, p, (size_t)(at - p))) return rd_oom(e);
            p = at + 1;
        }
        if (p == end)
            return st_fail(e, STELLAR_EINVAL,
                           "redis+unix URL '%s' has no socket path", shown);
        b->path = st_url_decode(p, (size_t)(end - p));
        if (!b->path) return rd_oom(e);
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
            if (set_userinfo(b, p, (size_t)(at - 1 - p))) return rd_oom(e);
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
        if (!b->host) return rd_oom(e);
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
            if (set_userinfo(b, p, (size_t)(at - 1 - p))) return rd_oom(e);
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
    if (!b->where) return rd_oom(e);

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
    if (!ns) return rd_oom(e);
    /* An empty (or blank) namespace gives bare keys (reference §1). */
    b->prefix = rd_blank(ns) ? st_strdup("") : st_asprintf("%s:", ns);
    st_free(ns);
    if (!b->prefix) return rd_oom(e);
    return STELLAR_OK;
}

static int redis_open(st_backend **out, const char *url,
                      const st_backend_cfg *cfg, stellar_error *e)
{
    rd_conn *b;
    char *shown;
    int rc;

    *out = NULL;
    b = st_calloc(1, sizeof *b);
    if (!b) return rd_oom(e);
    b->base.ops = &st_redis_ops;
    b->timeout_ms = cfg && cfg->command_timeout_ms > 0
                        ? cfg->command_timeout_ms
                        : COMMAND_TIMEOUT_S * 1000;
    shown = st_url_redact(url);
    rc = parse_url(b, url, shown ? shown : "(redacted)", e);
    st_free(shown);
    if (rc == STELLAR_OK) rc = rd_connect(b, e);
    if (rc != STELLAR_OK) {
        rd_conn_free(b);
        return rc;
    }
    *out = &b->base;
    return STELLAR_OK;
}

static void redis_close(st_backend *base)
{
    rd_conn_free((rd_conn *)base);
}

/* ------------------------------------------------------------ Table --- */

/* Serves "redis://..." and "redis+unix://..." (st_backend_find maps the
 * second scheme to this table). */
const st_backend_ops st_redis_ops = {
    .scheme = "redis",
    .open = redis_open,
    .close = redis_close,
    .push = rd_push,
    .push_at = rd_push_at,
    .queues = rd_queues,
    .length = rd_length,
    .queued = rd_queued,
    .del = rd_del,
    .del_queue = rd_del_queue,
    .del_delayed = rd_del_delayed,
    .replace = rd_replace,
    .scheduled_at = rd_scheduled_at,
    .timestamps = rd_timestamps,
    .delayed_at = rd_delayed_at,
    .del_delayed_at = rd_del_delayed_at,
    .promote_due = rd_promote_due,
    .worker_register = rd_worker_register,
    .worker_unregister = rd_worker_unregister,
    .ping = rd_ping,
    .reserve = rd_reserve,
    .workers = rd_workers,
    .clean_worker = rd_clean_worker,
    .stats = rd_stats,
    .stat_incr = rd_stat_incr,
    .failed_count = rd_failed_count,
    .failed_range = rd_failed_range,
    .failed_remove = rd_failed_remove,
    .kv_set = rd_kv_set,
    .kv_get = rd_kv_get,
    .kv_del = rd_kv_del,
    .kv_expire = rd_kv_expire,
    .kv_incr = rd_kv_incr,
    .kv_scan = rd_kv_scan,
    .sched_claim = rd_sched_claim,
    .sched_set = rd_sched_set,
    .sched_list = rd_sched_list,
    .pause = rd_pause,
    .resume = rd_resume,
    .limit_set = rd_limit_set,
    .limit_del = rd_limit_del,
    .controls = rd_controls,
    .wait = rd_wait,
};
