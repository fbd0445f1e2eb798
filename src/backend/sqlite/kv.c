/*
 * kv.c: the SQLite backend's keys with an optional expiry (table `kv`): the
 * job and queue locks, the scheduler leader lock, retry and crash counters.
 *
 * These have Redis's semantics (SET NX PX, DEL if the value matches,
 * PEXPIRE, INCRBY, a prefix scan), which the plugins and the scheduler rely
 * on across backends.
 */
#include "sq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ KV --- */

/*
 * Expired rows (expires_ms <= now) read as absent everywhere; every write
 * below first deletes all of them (cheap: kv_expires index), so they do
 * not pile up.
 */

/* Reads the live value of key: 1 with *value (new string) and *expires (0:
 * none), 0 if absent, or an error. */
static int kv_read(sq_conn *c, const char *key, int64_t now, char **value,
                   int64_t *expires, stellar_error *e)
{
    sqlite3_stmt *s;
    int rc;

    *value = NULL;
    if ((rc = sq_prep(c, S_KV_GET, &s, e, "ti", key, now)) < 0) return rc;
    if ((rc = sq_step(c, s, e)) != 1) return rc;
    *value = st_strndup((const char *)sqlite3_column_text(s, 0),
                        (size_t)sqlite3_column_bytes(s, 0));
    if (expires) *expires = sqlite3_column_int64(s, 1); /* NULL reads 0 */
    sqlite3_reset(s);
    return *value ? 1 : sq_oom(c, e);
}

/* The arguments and results of a kv write; each runs in one write
 * transaction that first deletes the keys expired by now. */
struct kv_arg {
    const char *key, *value; /* value NULL: any (del, expire) */
    int64_t now, ttl_ms, by; /* ttl_ms <= 0: no expiry */
    bool nx;                 /* set: only if key is absent */
    bool set;                /* set: written; expire: expiry changed */
    int64_t n;               /* del: rows removed; incr: the new value */
};

/* Deletes the keys expired by now: every kv write does, first. */
static int kv_purge(sq_conn *c, int64_t now, stellar_error *e)
{
    return sq_exec(c, S_KV_PURGE, e, "i", now);
}

static int kv_set_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct kv_arg *a = arg;
    char *old = NULL;
    int rc;

    if ((rc = kv_purge(c, a->now, e)) < 0) return rc;
    if (a->nx && (rc = kv_read(c, a->key, a->now, &old, NULL, e)) != 0) {
        st_free(old);
        return rc < 0 ? rc : STELLAR_OK; /* taken: commits the purge */
    }
    rc = sq_exec(c, S_KV_PUT, e, "tti", a->key, a->value,
                 a->ttl_ms > 0 ? a->now + a->ttl_ms : (int64_t)0);
    if (rc < 0) return rc;
    a->set = true;
    return STELLAR_OK;
}

int sq_kv_set(st_backend *b, const char *key, const char *value, int64_t ttl_ms,
              bool nx, bool *set, stellar_error *e)
{
    struct kv_arg a = {key, value, st_now_ms(), ttl_ms, 0, nx, false, 0};
    int rc;

    if (set) *set = false;
    if (!key || !value)
        return st_fail(e, STELLAR_EINVAL, "sqlite kv_set: no key or value");
    rc = sq_txn((sq_conn *)b, "kv_set", SQ_WRITE, kv_set_body, &a, e);
    if (rc == STELLAR_OK && set) *set = a.set;
    return rc;
}

int sq_kv_get(st_backend *b, const char *key, char **value, stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    int rc;

    c->op = "kv_get";
    rc = kv_read(c, key, st_now_ms(), value, NULL, e);
    return rc < 0 ? rc : STELLAR_OK;
}

static int kv_del_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct kv_arg *a = arg;
    int rc;

    if ((rc = kv_purge(c, a->now, e)) < 0) return rc;
    if ((rc = sq_exec(c, S_KV_DEL, e, "tt", a->key, a->value)) < 0) return rc;
    a->n = sq_changes(c);
    return STELLAR_OK;
}

int sq_kv_del(st_backend *b, const char *key, const char *value,
              int64_t *removed, stellar_error *e)
{
    struct kv_arg a = {key, value, st_now_ms(), 0, 0, false, false, 0};
    int rc;

    if (removed) *removed = 0;
    rc = sq_txn((sq_conn *)b, "kv_del", SQ_WRITE, kv_del_body, &a, e);
    if (rc == STELLAR_OK && removed) *removed = a.n;
    return rc;
}

static int kv_expire_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct kv_arg *a = arg;
    int rc;

    if ((rc = kv_purge(c, a->now, e)) < 0) return rc;
    rc = sq_exec(c, S_KV_EXPIRE, e, "tti", a->key, a->value,
                 a->ttl_ms > 0 ? a->now + a->ttl_ms : (int64_t)0);
    if (rc < 0) return rc;
    a->set = sq_changes(c) > 0;
    return STELLAR_OK;
}

/* ttl_ms <= 0 removes the expiry (as kv_set's 0: none). value NULL: any. */
int sq_kv_expire(st_backend *b, const char *key, const char *value,
                 int64_t ttl_ms, bool *set, stellar_error *e)
{
    struct kv_arg a = {key, value, st_now_ms(), ttl_ms, 0, false, false, 0};
    int rc;

    if (set) *set = false;
    rc = sq_txn((sq_conn *)b, "kv_expire", SQ_WRITE, kv_expire_body, &a, e);
    if (rc == STELLAR_OK && set) *set = a.set;
    return rc;
}

static int kv_incr_body(sq_conn *c, void *arg, stellar_error *e)
{
    struct kv_arg *a = arg;
    int64_t expires = 0, v = 0, by = a->by;
    char *old = NULL, num[24];
    int rc;

    if ((rc = kv_purge(c, a->now, e)) < 0) return rc;
    if ((rc = kv_read(c, a->key, a->now, &old, &expires, e)) < 0) return rc;
    if (old) {
        char *end;
        long long ll;
        errno = 0;
        ll = strtoll(old, &end, 10);
        if (errno || end == old || *end) {
            rc = st_fail(e, STELLAR_EINVAL,
                         "sqlite kv_incr: %s holds '%.40s', not an integer",
                         a->key, old);
            st_free(old);
            return rc;
        }
        v = (int64_t)ll;
        st_free(old);
    }
    if ((by > 0 && v > INT64_MAX - by) || (by < 0 && v < INT64_MIN - by))
        return st_fail(e, STELLAR_EINVAL, "sqlite kv_incr: %s would overflow",
                       a->key);
    v += by;
    if (a->ttl_ms > 0) expires = a->now + a->ttl_ms;
    snprintf(num, sizeof num, "%lld", (long long)v);
    if ((rc = sq_exec(c, S_KV_PUT, e, "tti", a->key, num, expires)) < 0)
        return rc;
    a->n = v;
    return STELLAR_OK;
}

/* As Redis INCRBY: the value must be a decimal integer; the expiry is kept
 * unless ttl_ms > 0 sets a new one. */
int sq_kv_incr(st_backend *b, const char *key, int64_t by, int64_t ttl_ms,
               int64_t *out, stellar_error *e)
{
    struct kv_arg a = {key, NULL, st_now_ms(), ttl_ms, by, false, false, 0};
    int rc;

    if (out) *out = 0;
    if (!key) return st_fail(e, STELLAR_EINVAL, "sqlite kv_incr: no key");
    rc = sq_txn((sq_conn *)b, "kv_incr", SQ_WRITE, kv_incr_body, &a, e);
    if (rc == STELLAR_OK && out) *out = a.n;
    return rc;
}

/* One row of S_KV_SCAN as {"value", "expires"}, or NULL if out of memory. */
static json_t *kv_json(sqlite3_stmt *s)
{
    json_t *one = json_object();

    if (one && (sq_jset(one, "value", sq_col_str(s, 1)) < 0 ||
                sq_jset(one, "expires", sq_col_int(s, 2)) < 0)) {
        json_decref(one);
        one = NULL;
    }
    return one;
}

int sq_kv_scan(st_backend *b, const char *prefix, json_t **out,
               stellar_error *e)
{
    sq_conn *c = (sq_conn *)b;
    sqlite3_stmt *s;
    size_t n = prefix ? strlen(prefix) : 0;
    char *upper = NULL;
    int rc;

    c->op = "kv_scan";
    *out = NULL;
    if (!prefix) prefix = "";
    /* Keys with the prefix sort in [prefix, upper): upper is the prefix
     * with its last byte below 0xff bumped, the rest cut off. */
    while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
        n--;
    if (n > 0) {
        if (!(upper = st_strndup(prefix, n))) return sq_oom(c, e);
        upper[n - 1] = (char)((unsigned char)upper[n - 1] + 1);
    }
    rc = sq_prep(c, S_KV_SCAN, &s, e, "tti", prefix, upper, st_now_ms());
    if (rc >= 0) rc = sq_rows(c, s, true, kv_json, out, e);
    st_free(upper);
    return rc;
}
