/*
 * api.c: the JSON API under /api/ (issue #7): the router, the arguments
 * and the replies. The routes are in api_inspect.c (the store looked at
 * and cleaned up), api_jobs.c (failed jobs, enqueue, recurrent) and
 * api_control.c (schedules, paused queues, limits), each with its table.
 *
 * Every document is the one the C API hands out (and the CLI prints with
 * --json), encoded compactly as the CLI does; where a route needs more than
 * one call it says what it adds. Errors are {"error": text, "code": name}
 * with the STELLAR_E* name and a fitting status (see status_of).
 *
 * Paths are matched segment by segment after percent-decoding each one, so
 * a queue named "a/b" is "queues/a%2Fb". When a literal segment matches
 * (failed/count) it wins over a wildcard (failed/<index>); a path that
 * matches a route under another method answers 405 with Allow.
 *
 * These files see no socket: server.c has checked the token, the Host and
 * the CSRF header, and limited the body, before it calls st_http_api().
 */
#include "http/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGS 6

/* The route tables; within one, routes are tried in order. */
static const st_api_route *const tables[] = {
    st_api_inspect_routes,
    st_api_jobs_routes,
    st_api_control_routes,
};

/* --------------------------------------------------------- Arguments --- */

/* Parses a whole decimal int64. */
static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;
    if (!s || !*s) return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* Query argument `name` as an integer, def when absent. */
int st_api_arg_i64(st_api_call *c, const char *name, int64_t def, int64_t *out,
                   stellar_error *e)
{
    char *v = c->req->arg ? c->req->arg(c->req->arg_ud, name) : NULL;
    bool ok;
    if (!v) {
        *out = def;
        return STELLAR_OK;
    }
    ok = parse_i64(v, out);
    st_free(v);
    if (!ok)
        return st_fail(e, STELLAR_EINVAL, "%s must be a whole number", name);
    return STELLAR_OK;
}

/* A path segment as an integer (a failed index, a timestamp). */
int st_api_seg_i64(const char *s, const char *what, int64_t *out,
                   stellar_error *e)
{
    if (!parse_i64(s, out))
        return st_fail(e, STELLAR_EINVAL, "%s must be a whole number, not '%s'",
                       what, s);
    return STELLAR_OK;
}

int st_api_need_body(st_api_call *c, stellar_error *e)
{
    if (!json_is_object(c->body))
        return st_fail(e, STELLAR_EINVAL, "the body must be a JSON object");
    return STELLAR_OK;
}

/* Optional string member; EINVAL if present and not a non-empty string. */
int st_api_body_str(st_api_call *c, const char *name, const char **out,
                    stellar_error *e)
{
    json_t *v = json_object_get(c->body, name);
    *out = NULL;
    if (!v || json_is_null(v)) return STELLAR_OK;
    if (!json_is_string(v) || !*json_string_value(v))
        return st_fail(e, STELLAR_EINVAL, "%s must be a non-empty string",
                       name);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return st_fail(e, STELLAR_EINVAL, "%s must not contain a NUL (\\u0000)",
                       name);
    *out = json_string_value(v);
    return STELLAR_OK;
}

/* Optional "params" member as JSON text (JSON.stringify-exact, member
 * order kept, since jobs are matched as whole payloads). */
int st_api_body_params(st_api_call *c, char **out, stellar_error *e)
{
    json_t *p = json_object_get(c->body, "params");
    *out = NULL;
    if (!p || json_is_null(p)) return STELLAR_OK;
    if (!json_is_object(p))
        return st_fail(
            e, STELLAR_EINVAL,
            "params must be a JSON object, such as {\"to\":\"a@b.c\"}");
    if (!(*out = st_json_dumps(p)))
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    return STELLAR_OK;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes one segment; false on a bad escape or a NUL byte. */
static bool decode_seg(const char *s, size_t n, char **out)
{
    char *d = st_malloc(n + 1), *o = d;
    size_t i;
    *out = d;
    if (!d) return false;
    for (i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        if (i + 2 >= n) return false;
        if (hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) return false;
        *o = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
        if (!*o++) return false;
        i += 2;
    }
    *o = '\0';
    return true;
}

/* Splits and decodes path; returns the number of segments, -1 if bad. */
static int split(const char *path, char **seg)
{
    int n = 0;
    const char *p = path;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n == MAX_SEGS || !decode_seg(p, len, &seg[n++])) return -1;
        if (!end) return n;
        p = end + 1;
    }
}

/* Matches a pattern against segments: -1 if not, else the number of
 * literal segments (the more, the more specific). */
static int match(const char *pattern, char **seg, int nseg, char **cap)
{
    const char *p = pattern;
    int i, lit = 0, ncap = 0;
    for (i = 0; i < nseg; i++) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!*p && !end) return -1; /* pattern shorter */
        if (len == 1 && *p == '*') {
            if (!*seg[i]) return -1; /* an empty segment names nothing */
            if (cap && ncap < 2) cap[ncap] = seg[i];
            ncap++;
        } else if (strlen(seg[i]) == len && memcmp(p, seg[i], len) == 0) {
            lit++;
        } else {
            return -1;
        }
        p = end ? end + 1 : p + len;
        if (!end && i + 1 < nseg) return -1;
    }
    return *p ? -1 : lit;
}

static int status_of(int rc)
{
    switch (rc) {
    case STELLAR_EINVAL: return 400;
    case STELLAR_ENOTFOUND:
    case STELLAR_ENOTASK: return 404;
    case STELLAR_EEXISTS:
    case STELLAR_ESTATE: return 409;
    case STELLAR_EBUSY:
    case STELLAR_ECONNECT: return 503;
    case STELLAR_ETIMEDOUT: return 504;
    default: return 500;
    }
}

void st_http_api(stellar *h, const st_http_req *req, st_http_reply *r)
{
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    char *seg[MAX_SEGS] = {0};
    const st_api_route *found = NULL, *rt;
    stellar_error e = {0};
    st_api_call c = {h, req, {NULL, NULL}, NULL, NULL, 0};
    int nseg, best = -1, rc;
    size_t i, t;

    memset(r, 0, sizeof *r);
    nseg = split(req->path, seg);
    if (nseg < 0) {
        st_http_error(r, 400, "EINVAL",
                      "bad path: a segment has a bad "
                      "percent escape, a NUL, or there are "
                      "too many");
        goto out;
    }
    for (t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (rt = tables[t]; rt->method; rt++) {
            int m = match(rt->pattern, seg, nseg, NULL);
            if (m > best) best = m;
        }
    if (best < 0) {
        st_http_error(r, 404, "ENOTFOUND", "no such API route: /api/%s",
                      req->path);
        goto out;
    }
    for (t = 0; t < sizeof tables / sizeof tables[0] && !found; t++)
        for (rt = tables[t]; rt->method && !found; rt++) {
            if (match(rt->pattern, seg, nseg, NULL) != best) continue;
            if (strcmp(rt->method, method) == 0) {
                found = rt;
                match(found->pattern, seg, nseg, c.cap);
            } else if (strlen(r->allow) + strlen(rt->method) + 8 <
                       sizeof r->allow) {
                if (*r->allow) strcat(r->allow, ", ");
                strcat(r->allow, rt->method);
                if (strcmp(rt->method, "GET") == 0) strcat(r->allow, ", HEAD");
            }
        }
    if (!found) {
        st_http_error(r, 405, "EMETHOD", "%s is not allowed here (allowed: %s)",
                      req->method, r->allow);
        goto out;
    }
    r->allow[0] = '\0';
    if (req->body_len) {
        c.body = st_json_parse(req->body, req->body_len, &e);
        if (!c.body) {
            st_http_error(r, 400, "EINVAL", "the body is not JSON: %s", e.msg);
            goto out;
        }
    }
    rc = found->fn(&c, &e);
    if (rc < 0) {
        st_http_error(r, status_of(rc), stellar_err_name(rc), "%s",
                      e.msg[0] ? e.msg : stellar_strerror(rc));
        json_decref(c.out);
    } else {
        st_http_json(r, c.out);
    }
    json_decref(c.body);
out:
    for (i = 0; i < MAX_SEGS; i++)
        st_free(seg[i]);
}

/* ------------------------------------------------------------ Replies --- */

void st_http_error(st_http_reply *r, int status, const char *code,
                   const char *fmt, ...)
{
    char msg[512];
    json_t *doc;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st_free(r->body);
    r->body = NULL;
    r->len = 0;
    r->status = status;
    r->type = "application/json";
    doc = json_pack("{s:s, s:s}", "error", msg, "code", code);
    if (doc) {
        char *s = json_dumps(doc, JSON_COMPACT);
        if (s) {
            r->body = st_strdup(s);
            r->len = r->body ? strlen(r->body) : 0;
            free(s);
        }
        json_decref(doc);
    }
}

void st_http_json(st_http_reply *r, json_t *doc)
{
    char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(doc);
    if (!s) {
        st_http_error(r, 500, "ENOMEM", "out of memory");
        return;
    }
    st_free(r->body);
    r->len = strlen(s);
    r->body = st_malloc(r->len + 1);
    if (!r->body) {
        free(s);
        r->len = 0;
        st_http_error(r, 500, "ENOMEM", "out of memory");
        return;
    }
    memcpy(r->body, s, r->len + 1);
    free(s);
    r->status = 200;
    r->type = "application/json";
}
