/*
 * json.c: JSON text exactly as JavaScript writes it.
 *
 * Redis matches jobs by whole strings (LREM, SISMEMBER, key names that embed
 * a payload), so a payload Stellar builds must be byte-identical to the one
 * node-resque builds for the same job: ECMAScript JSON.stringify's output
 * (reference/resque-protocol.md §2.1). jansson's own encoder differs (it
 * writes 1.0 for a real one, and 17 digits for 0.1), hence this file.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    uint32_t cp;

    if (s[0] < 0xc2 || s[0] > 0xf4) return 0;
    len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
    if (n < len) return 0;
    cp = s[0] & (0x7f >> len);
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

void st_json_put_string(st_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;

    st_buf_putc(b, '"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6];

        if (c >= 0x80) {
            /* Text that is not UTF-8 (a foreign payload kept whole) would
             * make the JSON invalid: each bad byte becomes U+FFFD, as a
             * UTF-8 decoder in node does. */
            size_t len = utf8_len((const unsigned char *)s + i, n - i);
            if (len) {
                i += len - 1;
                continue;
            }
            st_buf_put(b, s + run, i - run);
            st_buf_puts(b, "\xef\xbf\xbd");
            run = i + 1;
            continue;
        }
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c >= 0x20) continue; /* written raw, in the run */
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
            u[4] = hex[c >> 4], u[5] = hex[c & 15];
        }
        st_buf_put(b, s + run, i - run);
        if (esc)
            st_buf_puts(b, esc);
        else
            st_buf_put(b, u, 6);
        run = i + 1;
    }
    st_buf_put(b, s + run, n - run);
    st_buf_putc(b, '"');
}

/* Number::toString (ECMA-262 §6.1.6.1.20) for finite d: the shortest digit
 * string that reads back as d, placed by the exponent rules. */
void st_json_put_number(st_buf *b, double d)
{
    char tmp[40], digits[24];
    int prec, k = 0, n, i;
    const char *p;

    if (isnan(d) || isinf(d)) {
        st_buf_puts(b, "null");
        return;
    }
    if (d == 0) { /* covers -0 */
        st_buf_putc(b, '0');
        return;
    }
    if (d < 0) {
        st_buf_putc(b, '-');
        d = -d;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* tmp is "d.ddde[+-]xx": collect digits and exponent. */
    for (p = tmp; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[k++] = *p;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    n = atoi(p + 1) + 1; /* position of the decimal point */

    if (k <= n && n <= 21) {
        st_buf_put(b, digits, (size_t)k);
        for (i = k; i < n; i++)
            st_buf_putc(b, '0');
    } else if (0 < n && n <= 21) {
        st_buf_put(b, digits, (size_t)n);
        st_buf_putc(b, '.');
        st_buf_put(b, digits + n, (size_t)(k - n));
    } else if (-6 < n && n <= 0) {
        st_buf_puts(b, "0.");
        for (i = 0; i < -n; i++)
            st_buf_putc(b, '0');
        st_buf_put(b, digits, (size_t)k);
    } else {
        st_buf_putc(b, digits[0]);
        if (k > 1) {
            st_buf_putc(b, '.');
            st_buf_put(b, digits + 1, (size_t)(k - 1));
        }
        st_buf_printf(b, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
}

/* An array index as JavaScript sees one: "0", or no leading zero and a
 * value below 2^32 - 1. Such keys come first in an object, ascending. */
static bool index_key(const char *k, uint32_t *out)
{
    uint64_t n = 0;
    const char *p = k;

    if (!*k || (k[0] == '0' && k[1])) return false;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        n = n * 10 + (uint64_t)(*p - '0');
        if (n >= 4294967295u) return false;
    }
    *out = (uint32_t)n;
    return true;
}

static void put_member(st_buf *b, bool *first, const char *key,
                       const json_t *item)
{
    if (!*first) st_buf_putc(b, ',');
    *first = false;
    st_json_put_string(b, key, strlen(key));
    st_buf_putc(b, ':');
    st_json_stringify(b, item);
}

/* Members in JavaScript's order: integer-like keys ascending, then the
 * others in insertion order (jansson keeps it, as JSON.parse does). */
static void put_object(st_buf *b, const json_t *v)
{
    json_t *obj = (json_t *)(uintptr_t)v, *item;
    const char *key;
    bool first = true, any_index = false;
    uint32_t idx, last = 0;

    st_buf_putc(b, '{');
    json_object_foreach(obj, key, item)
    {
        if (index_key(key, &idx)) any_index = true;
    }
    /* Index keys: repeatedly take the smallest above the last one. */
    while (any_index) {
        const char *best = NULL;
        uint32_t best_idx = 0;
        json_object_foreach(obj, key, item)
        {
            if (index_key(key, &idx) && (first || idx > last) &&
                (!best || idx < best_idx))
                best = key, best_idx = idx;
        }
        if (!best) break;
        put_member(b, &first, best, json_object_get(obj, best));
        last = best_idx;
    }
    json_object_foreach(obj, key, item)
    {
        if (!index_key(key, &idx)) put_member(b, &first, key, item);
    }
    st_buf_putc(b, '}');
}

void st_json_stringify(st_buf *b, const json_t *v)
{
    size_t i;

    switch (json_typeof(v)) {
    case JSON_OBJECT: put_object(b, v); break;
    case JSON_ARRAY:
        st_buf_putc(b, '[');
        for (i = 0; i < json_array_size(v); i++) {
            if (i) st_buf_putc(b, ',');
            st_json_stringify(b, json_array_get(v, i));
        }
        st_buf_putc(b, ']');
        break;
    case JSON_STRING:
        st_json_put_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: {
        json_int_t n = json_integer_value(v);
        /* JavaScript numbers are doubles: beyond 2^53 the text changes. */
        if (n > 9007199254740992LL || n < -9007199254740992LL)
            st_json_put_number(b, (double)n);
        else
            st_buf_printf(b, "%" JSON_INTEGER_FORMAT, n);
        break;
    }
    case JSON_REAL: st_json_put_number(b, json_real_value(v)); break;
    case JSON_TRUE: st_buf_puts(b, "true"); break;
    case JSON_FALSE: st_buf_puts(b, "false"); break;
    case JSON_NULL: st_buf_puts(b, "null"); break;
    }
}

char *st_json_dumps(const json_t *v)
{
    st_buf b = {0};
    st_json_stringify(&b, v);
    return st_buf_take(&b);
}

json_t *st_json_parse(const char *s, size_t n, stellar_error *e)
{
    json_error_t je;
    json_t *v;

    /* jansson's parser does not survive an allocation failing inside it
     * (2.14 drops a byte from a string, leaks, or reports a syntax error):
     * under the hook (internal.h) a parse fails as a whole, up front. */
    if (!st_alloc_ok()) {
        st_fail(e, STELLAR_ENOMEM, "out of memory parsing JSON");
        return NULL;
    }
    st_alloc_pause(true);
    /* JSON.parse accepts "\u0000" in strings; so must we. */
    v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    /* JSON.parse reads any number; jansson refuses integers beyond 64
     * bits unless told to read every number as a double. */
    if (!v && strstr(je.text, "too big"))
        v = json_loadb(
            s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
            &je);
    st_alloc_pause(false);
    /* jansson names every syntax error; it fails without a word, or says
     * so, only when it is out of memory. */
    if (!v && (!je.text[0] || json_error_code(&je) == json_error_out_of_memory))
        st_fail(e, STELLAR_ENOMEM, "out of memory parsing JSON");
    else if (!v)
        st_fail(e, STELLAR_EINVAL, "invalid JSON at line %d, column %d: %s",
                je.line, je.column, je.text);
    return v;
}
