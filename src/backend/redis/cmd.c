/*
 * cmd.c: building a Redis command (rd_cmd: argv and lengths, mostly
 * borrowed, integers formatted in place) and the key names of node-resque's
 * layout (rd_key: connection.key()'s rule), plus the small conversions the
 * other files share (seconds, numbers, replies as JSON). No I/O here.
 */
#include "rd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------- Command argv --- */

void rd_cmd_init(rd_cmd *c)
{
    c->argc = 0;
    c->cap = RD_CMD_INLINE;
    c->argv = c->argv_in;
    c->len = c->len_in;
    c->nnum = 0;
    c->own = NULL;
    c->nown = c->owncap = 0;
    c->oom = false;
}

void rd_cmd_free(rd_cmd *c)
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
    rd_cmd_init(c);
}

static bool cmd_grow(rd_cmd *c)
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

void rd_argn(rd_cmd *c, const char *s, size_t n)
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

void rd_arg(rd_cmd *c, const char *s)
{
    rd_argn(c, s, s ? strlen(s) : 0);
}

void rd_arg_own(rd_cmd *c, char *s)
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
    rd_arg(c, s);
}

void rd_arg_int(rd_cmd *c, int64_t v)
{
    if (c->nnum < RD_CMD_NUMS) {
        char *p = c->num[c->nnum++];
        snprintf(p, sizeof c->num[0], "%lld", (long long)v);
        rd_arg(c, p);
    } else {
        rd_arg_own(c, st_asprintf("%lld", (long long)v));
    }
}

rd_cmd *rd_cmds_new(size_t n, rd_cmd ***cv)
{
    rd_cmd *cs = st_calloc(n ? n : 1, sizeof *cs);
    size_t i;

    *cv = st_calloc(n ? n : 1, sizeof **cv);
    if (!cs || !*cv) {
        st_free(cs);
        st_free(*cv);
        *cv = NULL;
        return NULL;
    }
    for (i = 0; i < n; i++) {
        rd_cmd_init(&cs[i]);
        (*cv)[i] = &cs[i];
    }
    return cs;
}

void rd_cmds_free(rd_cmd *cs, rd_cmd **cv, size_t n)
{
    size_t i;
    if (cs)
        for (i = 0; i < n; i++)
            rd_cmd_free(&cs[i]);
    st_free(cs);
    st_free(cv);
}

/* ---------------------------------------------------------- Keys --- */

bool rd_blank(const char *s)
{
    for (; *s; s++)
        if (!strchr(" \t\n\v\f\r", *s)) return false;
    return true;
}

/* NS:part:part... as node-resque's connection.key(): blank parts are
 * dropped. Parts end with NULL. New string or NULL. */
char *rd_key(const rd_conn *b, const char *first, ...)
{
    st_buf k = {0};
    va_list ap;
    const char *s;
    bool any = false;

    st_buf_puts(&k, b->prefix);
    va_start(ap, first);
    for (s = first; s; s = va_arg(ap, const char *)) {
        if (rd_blank(s)) continue;
        if (any) st_buf_putc(&k, ':');
        st_buf_puts(&k, s);
        any = true;
    }
    va_end(ap);
    return st_buf_take(&k);
}

/* NS:<head><tail> as one key part ("delayed:" + ts, "timestamps:" +
 * payload), which node-resque never splits. */
char *rd_key1(const rd_conn *b, const char *head, const char *tail)
{
    return st_asprintf("%s%s%s", b->prefix, head, tail);
}

/* A SCAN MATCH pattern matching keys that start with NS:<head>. */
char *rd_scan_pattern(const rd_conn *b, const char *head)
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
int64_t rd_ms_to_s(int64_t ms)
{
    int64_t x = ms + 500;
    return x >= 0 ? x / 1000 : -((-x + 999) / 1000);
}

/* ---------------------------------------------------------- JSON --- */

/* A JSON string of raw bytes; bytes that are not UTF-8 are kept as is. */
json_t *rd_jstrn(const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    return v ? v : json_stringn_nocheck(s, n);
}

int rd_oom(stellar_error *e)
{
    return st_fail(e, STELLAR_ENOMEM, "redis backend: out of memory");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts v[0..n) ascending, drops repeats, and returns them as a JSON array
 * (or NULL). */
json_t *rd_sorted_ints(int64_t *v, size_t n)
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
bool rd_parse_i64(const char *s, size_t n, int64_t *out)
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
bool rd_parse_s_as_ms(const char *s, size_t n, int64_t *ms)
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

/* A reply that is an array of strings, as a JSON array of strings. */
int rd_strings_json(const redisReply *r, json_t **out, stellar_error *e)
{
    json_t *a;
    size_t i;

    if (r->type != REDIS_REPLY_ARRAY)
        return st_fail(e, STELLAR_EBACKEND, "redis: unexpected reply type %d",
                       r->type);
    a = json_array();
    if (!a) return rd_oom(e);
    for (i = 0; i < r->elements; i++) {
        const redisReply *x = r->element[i];
        if (x->type != REDIS_REPLY_STRING) continue;
        if (json_array_append_new(a, rd_jstrn(x->str, x->len)) != 0) {
            json_decref(a);
            return rd_oom(e);
        }
    }
    *out = a;
    return STELLAR_OK;
}

/* A GET reply as a string value, or NULL (nil, error, other type). */
const redisReply *rd_str_reply(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING ? r : NULL;
}

void rd_free_strv(char **v, size_t n)
{
    size_t i;
    if (!v) return;
    for (i = 0; i < n; i++)
        st_free(v[i]);
    st_free(v);
}

/* NULL, an empty list or {"*"}: every queue. */
bool rd_wildcard(const char *const *queues)
{
    return !queues || !queues[0] || (strcmp(queues[0], "*") == 0 && !queues[1]);
}
