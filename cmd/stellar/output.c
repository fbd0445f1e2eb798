/*
 * output.c: how the `stellar` program prints: JSON for machines, aligned
 * tables and readable times for people.
 *
 * `--json` prints the library's JSON document unchanged, compact, on one
 * line (the same document the HTTP API serves). Tables have a header row,
 * columns padded to the widest cell (counted in characters, not bytes), no
 * trailing spaces, and cells cut at a limit so one long error message does
 * not push every other column off the screen; --json has the full text.
 */
#include "cli.h"
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int out_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) {
        fprintf(stderr, "stellar: cannot encode the result as JSON\n");
        return CLI_FAIL;
    }
    printf("%s\n", s);
    free(s);
    return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
}

int out_show(cli *c, json_t *doc, int (*print_table)(cli *, json_t *))
{
    int rc;
    if (!doc) return cli_fail(c, "out of memory");
    rc = c->json ? out_json(doc) : print_table(c, doc);
    json_decref(doc);
    return rc;
}

const char *out_scalar(const json_t *v, char buf[64])
{
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, 64, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, 64, "%g", json_real_value(v));
        return buf;
    }
    if (json_is_true(v)) return "true";
    if (json_is_false(v)) return "false";
    return NULL;
}

/* The params of a payload are args[0] (node-resque passes one object);
 * other args arrays are shown whole. A payload that is not JSON (the
 * library hands it out as its text) has no task: the text is the cell. */
char *out_payload(const json_t *payload, const char **task, const char **queue)
{
    const json_t *args = json_object_get(payload, "args");

    *task = json_string_value(json_object_get(payload, "class"));
    *queue = json_string_value(json_object_get(payload, "queue"));
    if (json_is_string(payload)) return st_strdup(json_string_value(payload));
    if (json_is_array(args) && json_array_size(args) == 1)
        args = json_array_get(args, 0);
    if (!args) return st_strdup("-");
    return st_json_dumps(args);
}

/* ------------------------------------------------------------- Tables --- */

#define DEFAULT_LIMIT 60

struct out_table {
    size_t ncols, nrows, cap;
    char **cells;  /* (nrows + 1) * ncols; row 0 is the header */
    size_t *limit; /* per column, in characters */
    bool *right;   /* per column: right-aligned */
};

/* Characters in a UTF-8 string (continuation bytes do not count). */
static size_t width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* A copy of s cut to max characters ("..." marks the cut), one line. */
static char *cell(const char *s, size_t max)
{
    st_buf b = {0};
    size_t chars = 0, total = width(s);
    const char *p;

    for (p = s; *p; p++) {
        bool lead = ((unsigned char)*p & 0xC0) != 0x80;
        if (lead && total > max && chars == max - 3) {
            st_buf_puts(&b, "...");
            break;
        }
        if (lead) chars++;
        st_buf_putc(&b, *p == '\n' || *p == '\t' || *p == '\r' ? ' ' : *p);
    }
    if (!b.len) return st_strdup("");
    return st_buf_take(&b);
}

out_table *out_table_new(size_t ncols, ...)
{
    out_table *t = st_calloc(1, sizeof *t);
    va_list ap;
    size_t i;

    if (!t) return NULL;
    t->ncols = ncols;
    t->cap = 16;
    t->cells = st_calloc(t->cap * ncols, sizeof *t->cells);
    t->limit = st_calloc(ncols, sizeof *t->limit);
    t->right = st_calloc(ncols, sizeof *t->right);
    if (!t->cells || !t->limit || !t->right) {
        out_table_free(t);
        return NULL;
    }
    va_start(ap, ncols);
    for (i = 0; i < ncols; i++) {
        const char *h = va_arg(ap, const char *);
        t->right[i] = h[0] == '>';
        t->limit[i] = DEFAULT_LIMIT;
        t->cells[i] = st_strdup(h + t->right[i]);
    }
    va_end(ap);
    t->nrows = 1;
    return t;
}

void out_table_set_limit(out_table *t, size_t col, size_t max_chars)
{
    if (t && col < t->ncols) t->limit[col] = max_chars < 4 ? 4 : max_chars;
}

void out_table_row(out_table *t, ...)
{
    va_list ap;
    size_t i;

    if (!t) return;
    if (t->nrows == t->cap) {
        char **c = st_realloc(t->cells, t->cap * 2 * t->ncols * sizeof *c);
        if (!c) return;
        memset(c + t->cap * t->ncols, 0, t->cap * t->ncols * sizeof *c);
        t->cells = c;
        t->cap *= 2;
    }
    va_start(ap, t);
    for (i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->nrows * t->ncols + i] = cell(s ? s : "-", t->limit[i]);
    }
    va_end(ap);
    t->nrows++;
}

void out_table_print(out_table *t, FILE *f)
{
    size_t r, i, *w;

    if (!t) {
        fprintf(stderr, "stellar: out of memory\n");
        return;
    }
    w = st_calloc(t->ncols, sizeof *w);
    if (!w) return;
    for (r = 0; r < t->nrows; r++)
        for (i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            size_t n = s ? width(s) : 0;
            if (n > w[i]) w[i] = n;
        }
    for (r = 0; r < t->nrows; r++) {
        for (i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            size_t n, pad;
            bool last = i + 1 == t->ncols;
            if (!s) s = "";
            n = width(s);
            pad = w[i] - n;
            if (t->right[i]) fprintf(f, "%*s", (int)pad, "");
            fputs(s, f);
            if (!last && !t->right[i]) fprintf(f, "%*s", (int)pad, "");
            fputs(last ? "\n" : "  ", f);
        }
    }
    st_free(w);
}

int out_print(out_table *t)
{
    if (!t) {
        fprintf(stderr, "stellar: out of memory\n");
        return CLI_FAIL;
    }
    out_table_print(t, stdout);
    out_table_free(t);
    return CLI_OK;
}

void out_table_free(out_table *t)
{
    size_t i;
    if (!t) return;
    if (t->cells)
        for (i = 0; i < t->nrows * t->ncols; i++)
            st_free(t->cells[i]);
    st_free(t->cells);
    st_free(t->limit);
    st_free(t->right);
    st_free(t);
}

/* -------------------------------------------------------------- Times --- */

void out_iso(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 32, "%lld", (long long)ms);
        return;
    }
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void out_rel(int64_t ms, int64_t now_ms, char out[32])
{
    int64_t d = ms - now_ms, a = d < 0 ? -d : d;
    const char *unit;
    int64_t n;

    if (a < 1000) {
        snprintf(out, 32, "now");
        return;
    }
    a /= 1000;
    if (a < 60)
        n = a, unit = "s";
    else if (a < 3600)
        n = a / 60, unit = "m";
    else if (a < 86400)
        n = a / 3600, unit = "h";
    else
        n = a / 86400, unit = "d";
    if (d < 0)
        snprintf(out, 32, "%lld%s ago", (long long)n, unit);
    else
        snprintf(out, 32, "in %lld%s", (long long)n, unit);
}

void out_when(int64_t ms, int64_t now_ms, char out[64])
{
    char iso[32], rel[32];
    out_iso(ms, iso);
    out_rel(ms, now_ms, rel);
    snprintf(out, 64, "%.30s (%.29s)", iso, rel);
}

bool out_parse_time(const json_t *v, int64_t *ms)
{
    if (json_is_number(v)) {
        double x = json_number_value(v);
        /* Seconds (Resque's started/ping times) are below 1e11, which as
         * milliseconds would be early 1973. */
        *ms = (int64_t)(x < 1e11 ? x * 1000 : x);
        return true;
    }
    /* Date strings: JavaScript's toString(), ISO-8601, resque-retry's. */
    return json_is_string(v) && st_js_date_parse(json_string_value(v), ms);
}

/* The result of a change: doc with --json, else the sentence. */
int out_result(cli *c, json_t *doc, const char *fmt, ...)
{
    int rc = CLI_OK;
    va_list ap;

    if (!doc) return cli_fail(c, "out of memory");
    if (c->json) {
        rc = out_json(doc);
    } else {
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
    }
    json_decref(doc);
    return rc;
}
