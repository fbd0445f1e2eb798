/*
 * internal.h: helpers shared across src/ (st_ names; never exported).
 */
#ifndef ST_INTERNAL_H
#define ST_INTERNAL_H

#include "stellar.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ------------------------------------------------------------ Memory --- */

/* All allocation goes through these, so tests can fail the Nth one. */
void *st_malloc(size_t n);
void *st_calloc(size_t n, size_t size);
void *st_realloc(void *p, size_t n);
char *st_strdup(const char *s);
char *st_strndup(const char *s, size_t n);
void st_free(void *p);

/*
 * The allocation-failure hook, for tests (tests/oom/), compiled in always:
 * disarmed, it costs one thread-local check per allocation.
 *
 * st_alloc_fail_after(n, repeat) arms it on the calling thread only: the
 * nth st_malloc/st_calloc/st_realloc from now (st_strdup and the rest
 * count through these) returns NULL, and with repeat every one after it
 * too, until it is armed again; n = 0 disarms it. Other threads never see
 * a failure (processors, the heartbeat and the scheduler allocate on their
 * own), so a test looping over n fails the same allocation every time.
 * st_alloc_failures() is how many allocations it has failed on this thread
 * since it was armed: 0 after a call means the call got through untouched.
 *
 * jansson allocates through st_malloc/st_free as well, once st_alloc_init()
 * has run (the first backend open, or the first arming; it does nothing
 * if the program installed allocators of its own with
 * json_set_alloc_funcs). SQLite and hiredis allocate on their own and are
 * not hooked.
 */
void st_alloc_fail_after(int64_t n, bool repeat);
int64_t st_alloc_failures(void);
void st_alloc_init(void);
/* For a call into code whose own allocation failures are not safe to
 * simulate one by one (jansson's parser, json.c): st_alloc_ok() counts as
 * one allocation and is false if the hook fails it (fail the call as a
 * whole then); st_alloc_pause(true) ... (false) around the call lets its
 * allocations through. */
bool st_alloc_ok(void);
void st_alloc_pause(bool pause);
/* malloc'ed printf. NULL on failure. */
char *st_asprintf(const char *fmt, ...) STELLAR_PRINTF(1, 2);

/* A growable byte buffer, always NUL-terminated once non-empty. */
typedef struct st_buf {
    char *p;
    size_t len, cap;
    bool oom; /* an append failed: the content is incomplete */
} st_buf;
void st_buf_put(st_buf *b, const void *s, size_t n);
void st_buf_puts(st_buf *b, const char *s);
void st_buf_putc(st_buf *b, char c);
void st_buf_printf(st_buf *b, const char *fmt, ...) STELLAR_PRINTF(2, 3);
/* Hands the string out (caller frees with st_free); the buffer is reset.
 * NULL if an append failed. */
char *st_buf_take(st_buf *b);
void st_buf_free(st_buf *b);

/* ------------------------------------------------------------ Errors --- */

/* Fills e (if not NULL) and returns code. */
int st_fail(stellar_error *e, int code, const char *fmt, ...)
    STELLAR_PRINTF(3, 4);
/* Clears e to OK. */
void st_err_clear(stellar_error *e);

/* -------------------------------------------------------------- Time --- */

int64_t st_now_ms(void);      /* wall clock, ms since the epoch */
int64_t st_mono_ms(void);     /* monotonic, ms */
void st_sleep_ms(int64_t ms); /* nanosleep, restarted on EINTR */
/* The absolute CLOCK_REALTIME time ms from now, for the timed waits of
 * pthreads (pthread_cond_timedwait on a default condvar,
 * pthread_mutex_timedlock): the one place that deadline is computed. */
struct timespec st_deadline_ts(int64_t ms);
/* JavaScript's Date.prototype.toString() of ms, in UTC:
 * "Sun Nov 29 2026 02:20:19 GMT+0000 (Coordinated Universal Time)". */
void st_js_date(int64_t ms, char out[80]);
/* Reads a date as Date.parse does, to the ms, for the forms Resque clients
 * write (date.c): Date.prototype.toString() with any "GMT+hhmm" offset
 * (none: UTC), ISO-8601 with optional fraction and offset (none: UTC),
 * and resque-retry's "YYYY/MM/DD HH:MM:SS" (UTC). false: none of them. */
bool st_js_date_parse(const char *s, int64_t *ms);

/* The length of the UTF-8 sequence at s (at most n bytes, n >= 1), or 0 if
 * it is not valid UTF-8 (overlong, surrogate, above U+10FFFF, truncated);
 * *cp: its code point. */
size_t st_utf8_char(const unsigned char *s, size_t n, uint32_t *cp);
/* ISO-8601 UTC with milliseconds: "2026-11-29T02:20:19.123Z". */
void st_iso_date(int64_t ms, char out[32]);

/* -------------------------------------------------------------- JSON --- */

/*
 * Encodes v exactly as ECMAScript JSON.stringify does (reference §2.1): no
 * whitespace, members in insertion order, only the required escapes, raw
 * UTF-8, numbers in their shortest round-trip form, -0 as 0, integers beyond
 * 2^53 rounded to the double they denote. Appends to b.
 */
void st_json_stringify(st_buf *b, const json_t *v);
/* The same, as a new string (st_free). NULL on allocation failure. */
char *st_json_dumps(const json_t *v);
/* Encodes one string as a JSON string literal into b. */
void st_json_put_string(st_buf *b, const char *s, size_t n);
/* Encodes a double as JSON.stringify does into b. */
void st_json_put_number(st_buf *b, double d);
/* Parses JSON text as JSON.parse would accept it; integers too large for
 * 64 bits are read as doubles. NULL with e filled on failure: EINVAL, or
 * ENOMEM (then the text may well be JSON). */
json_t *st_json_parse(const char *s, size_t n, stellar_error *e);

/* ---------------------------------------------------------------- Job --- */

/*
 * Builds the Resque payload {"class":task,"queue":queue,"args":[params]}.
 * params may be NULL ({}). Returns a new string, or NULL with e filled.
 */
char *st_payload_build(const char *task, const char *queue,
                       const json_t *params, stellar_error *e);

/* The same with args given whole: an array is used as is, anything else
 * is wrapped in one, NULL gives []. */
char *st_payload_build_args(const char *task, const char *queue,
                            const json_t *args, stellar_error *e);

/* A decoded payload. class and queue are borrowed from root. */
typedef struct st_payload {
    json_t *root;      /* owned */
    const char *klass; /* "class" member */
    const char *queue; /* "queue" member, may be NULL */
    json_t *args;      /* borrowed: the args array (or the single value) */
} st_payload;
/* Decodes and checks a payload read from storage. EINVAL with a clear
 * message if it is not JSON, not an object, lacks class, ... */
int st_payload_parse(st_payload *p, const char *s, size_t n, stellar_error *e);
void st_payload_clear(st_payload *p);
/* The class of payload (NUL-terminated) copied into out (cap bytes): true,
 * or false if it has none that fits (not JSON, no string class). Cheap for
 * the payloads job.c writes ({"class":"..." first): reserve calls it on
 * every job. */
bool st_payload_class(const char *payload, char *out, size_t cap);

/* The §2.6 failed entry; payload_raw is re-serialised when it parses. */
char *st_failed_entry(const char *worker, const char *queue,
                      const char *payload_raw, const char *exception,
                      const char *error, const json_t *backtrace,
                      int64_t now_ms);
/* The §2.6 failed entry node-resque's forceCleanWorker writes for the job
 * a dead worker held: exception "Worker Timeout (killed manually)",
 * backtrace ["killed by <killer> at <JS date>", "queue#forceCleanWorker",
 * "node-resque"], failed_at now_ms. killer NULL: this host's name (as
 * node-resque's os.hostname); error NULL: the exception's text; queue
 * NULL: ""; payload_raw NULL: "{}". New string, NULL if out of memory. */
char *st_timeout_entry(const char *worker, const char *queue,
                       const char *payload_raw, const char *killer,
                       const char *error, int64_t now_ms);

/* ------------------------------------------------------------ Logging --- */

typedef struct st_logger {
    stellar_log_fn fn;
    void *ud;
    int level;
} st_logger;
void st_logf(const st_logger *l, int level, const char *fmt, ...)
    STELLAR_PRINTF(3, 4);
void st_logv(const st_logger *l, int level, const char *fmt, va_list ap)
    STELLAR_PRINTF(3, 0);
#define st_log(l, lvl, ...)                                                    \
    do {                                                                       \
        if ((l)->fn && (lvl) >= (l)->level) st_logf((l), (lvl), __VA_ARGS__);  \
    } while (0)

/* ---------------------------------------------------------- URL bits --- */

/* Percent-decodes s[0..n) into a new string. */
char *st_url_decode(const char *s, size_t n);
/* Finds `name` in a query string "a=1&b=2" and returns its decoded value
 * (new string) or NULL. */
char *st_url_param(const char *query, const char *name);
/* url as it may be shown: each password (userinfo, ?password=) reads
 * "***" (url.c). New string; NULL if url is NULL or out of memory. */
char *st_url_redact(const char *url);

/* ------------------------------------------------------ Live workers --- */

/* The worker names this process runs now, across handles (live.c): the
 * dead-worker check never cleans them. */
void st_live_add(const char *name);
void st_live_del(const char *name);
bool st_live_has(const char *name);

#endif /* ST_INTERNAL_H */
