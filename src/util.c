/*
 * util.c: memory, buffers, errors, time, logging and URL helpers shared by
 * every file in src/ (declared in internal.h).
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ Memory --- */

/*
 * The allocation-failure hook (internal.h). Its state is per thread, so a
 * test that arms it fails allocations on its own thread only, never in the
 * processors, the heartbeat or the scheduler running beside it. Disarmed,
 * it costs one thread-local load per allocation.
 */
static _Thread_local int64_t fail_in;     /* fail the allocation this many
                                              from now; 0: disarmed */
static _Thread_local bool fail_repeat;    /* and every one after it */
static _Thread_local int64_t fail_count;  /* failed since last armed */
static _Thread_local int64_t fail_paused; /* fail_in, while paused */

void st_alloc_fail_after(int64_t n, bool repeat)
{
    st_alloc_init();
    fail_in = n > 0 ? n : 0;
    fail_repeat = repeat;
    fail_count = 0;
}

int64_t st_alloc_failures(void)
{
    return fail_count;
}

static bool alloc_fails(void)
{
    if (--fail_in > 0) return false;
    fail_count++;
    fail_in = fail_repeat ? 1 : 0;
    return true;
}

bool st_alloc_ok(void)
{
    return !(fail_in && alloc_fails());
}

void st_alloc_pause(bool pause)
{
    if (pause) {
        fail_paused = fail_in;
        fail_in = 0;
    } else {
        fail_in = fail_paused;
        fail_paused = 0;
    }
}

void *st_malloc(size_t n)
{
    if (fail_in && alloc_fails()) return NULL;
    return malloc(n ? n : 1);
}

void *st_calloc(size_t n, size_t size)
{
    if (fail_in && alloc_fails()) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *st_realloc(void *p, size_t n)
{
    if (fail_in && alloc_fails()) return NULL;
    return realloc(p, n ? n : 1);
}

void st_free(void *p)
{
    free(p);
}

void stellar_free(void *p)
{
    st_free(p);
}

/* jansson's own allocations go through st_malloc and st_free, so that the
 * hook fails them too. Its functions are process-wide: they are set once,
 * and only while they are still jansson's defaults (libc's malloc and
 * free), never over a program's own. Values jansson allocated before the
 * switch are freed by st_free, which is libc's free as well. */
static pthread_once_t json_alloc_once = PTHREAD_ONCE_INIT;

static void json_alloc_init(void)
{
    json_malloc_t m = NULL;
    json_free_t f = NULL;

    json_get_alloc_funcs(&m, &f);
    if (m == malloc && f == free) json_set_alloc_funcs(st_malloc, st_free);
}

void st_alloc_init(void)
{
    pthread_once(&json_alloc_once, json_alloc_init);
}

char *st_strndup(const char *s, size_t n)
{
    char *d;
    if (!s) return NULL;
    d = st_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *st_strdup(const char *s)
{
    return s ? st_strndup(s, strlen(s)) : NULL;
}

char *st_asprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    s = st_malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* ------------------------------------------------------------ Buffer --- */

static bool buf_reserve(st_buf *b, size_t extra)
{
    size_t want;
    char *p;

    if (b->oom) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    want = b->cap ? b->cap * 2 : 64;
    while (want < b->len + extra + 1)
        want *= 2;
    p = st_realloc(b->p, want);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = want;
    return true;
}

void st_buf_put(st_buf *b, const void *s, size_t n)
{
    if (!buf_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void st_buf_puts(st_buf *b, const char *s)
{
    st_buf_put(b, s, strlen(s));
}

void st_buf_putc(st_buf *b, char c)
{
    st_buf_put(b, &c, 1);
}

void st_buf_printf(st_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *st_buf_take(st_buf *b)
{
    char *p = b->p;
    if (b->oom) {
        st_buf_free(b);
        return NULL;
    }
    if (!p) p = st_strdup("");
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void st_buf_free(st_buf *b)
{
    st_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

/* ------------------------------------------------------------ Errors --- */

static const struct {
    int code;
    const char *name, *text;
} errors[] = {
#define X(name, code, text) {code, #name, text},
    STELLAR_ERRNO_MAP(X)
#undef X
};

const char *stellar_strerror(int code)
{
    size_t i;
    if (code == STELLAR_OK) return "ok";
    if (code == STELLAR_VETOED) return "vetoed by a plugin";
    if (code == STELLAR_PENDING) return "pending";
    for (i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == code) return errors[i].text;
    return "unknown error";
}

const char *stellar_err_name(int code)
{
    size_t i;
    if (code == STELLAR_OK) return "OK";
    if (code == STELLAR_VETOED) return "VETOED";
    if (code == STELLAR_PENDING) return "PENDING";
    for (i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == code) return errors[i].name;
    return "EUNKNOWN";
}

int st_fail(stellar_error *e, int code, const char *fmt, ...)
{
    va_list ap;
    if (!e) return code;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

void st_err_clear(stellar_error *e)
{
    if (!e) return;
    e->code = STELLAR_OK;
    e->msg[0] = '\0';
}

/* -------------------------------------------------------------- Time --- */

int64_t st_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t st_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec st_deadline_ts(int64_t ms)
{
    struct timespec ts;
    int64_t ns;

    clock_gettime(CLOCK_REALTIME, &ts);
    ns = ts.tv_nsec + (ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return ts;
}

void st_sleep_ms(int64_t ms)
{
    struct timespec ts;
    if (ms <= 0) return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static void utc(int64_t ms, struct tm *tm)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    gmtime_r(&t, tm);
}

void st_js_date(int64_t ms, char out[80])
{
    struct tm tm;
    utc(ms, &tm);
    strftime(out, 80,
             "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", &tm);
}

void st_iso_date(int64_t ms, char out[32])
{
    struct tm tm;
    char base[24];
    utc(ms, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", base, (int)(((ms % 1000) + 1000) % 1000));
}

/* ----------------------------------------------------------- Logging --- */

void st_logv(const st_logger *l, int level, const char *fmt, va_list ap)
{
    char msg[1024];
    if (!l || !l->fn || level < l->level) return;
    vsnprintf(msg, sizeof msg, fmt, ap);
    l->fn(l->ud, level, msg);
}

void st_logf(const st_logger *l, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_logv(l, level, fmt, ap);
    va_end(ap);
}

/* -------------------------------------------------------------- URLs --- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *st_url_decode(const char *s, size_t n)
{
    char *d = st_malloc(n + 1), *o = d;
    size_t i;
    if (!d) return NULL;
    for (i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 0 + 1 && i + 2 <= n - 1 &&
            hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return d;
}

char *st_url_param(const char *query, const char *name)
{
    size_t nl = strlen(name);
    const char *p = query;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
            return st_url_decode(p + nl + 1, len - nl - 1);
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

/* The length of the UTF-8 sequence at s (at most n bytes), or 0 if it is
 * not valid UTF-8 (overlong, surrogate, above U+10FFFF, truncated); *cp:
 * its code point. */
size_t st_utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len, i;
    uint32_t c = s[0], min;

    if (c < 0x80)
        len = 1, min = 0;
    else if ((c & 0xE0) == 0xC0)
        len = 2, c &= 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        len = 3, c &= 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        len = 4, c &= 0x07, min = 0x10000;
    else
        return 0;
    if (len > n) return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}
