/*
 * sentinel.c: Redis Sentinel for the Redis backend (issue 16). A URL
 * "redis+sentinel://[user:pw@]h1:p1,h2:p2/MASTER[/db][?...]" names no
 * Redis server: it names sentinels, which know which server is the
 * primary of MASTER now.
 *
 * DESIGN
 * - Locating: every (re)connection asks the sentinels in turn for the
 *   primary (SENTINEL get-master-addr-by-name), the one that answered
 *   first next time (the order Redis's client guidelines ask for). The
 *   connection code then checks the server with ROLE, in its connect
 *   round trip, and refuses one that is not (yet) a primary.
 * - Noticing a failover: three ways, whichever comes first. (1) The link
 *   breaks: Sentinel kills the clients of a primary it demotes, or the
 *   primary died. (2) A reply is -READONLY: the server is a replica now;
 *   nothing was written, so the connection code may resend once on the new
 *   primary. (3) +switch-master: one watch thread per process and set of
 *   sentinels stays SUBSCRIBEd on a sentinel and bumps an epoch when this
 *   master moves; each connection compares the epoch before a round trip
 *   (an atomic load) and reconnects if it moved. So an idle worker, whose
 *   link to the old primary still works, finds the new one at once.
 * - The watch is shared (a registry keyed by master name, sentinels and
 *   credentials; reference counted) so a process with 50 connections
 *   holds one subscription, not 50. Its thread blocks all signals, waits
 *   in poll() on its sentinel and a pipe, and is joined by the last close
 *   (a byte on the pipe wakes it). A child of fork() starts its own: it
 *   never joins its parent's thread.
 * - Nothing here holds a password in a message: errors name sentinels by
 *   host:port and the master by name.
 */
#include "sentinel.h"
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#define DEFAULT_SENTINEL_PORT 26379
#define SENTINEL_TIMEOUT_MS   2000 /* a sentinel answers at once or is down */
#define WATCH_RETRY_MS        1000 /* pause between watch reconnections */

typedef struct addr {
    char *host;
    int port;
} addr;

/* One subscription to +switch-master, shared by the process's
 * connections to one master through one set of sentinels. */
typedef struct watch {
    struct watch *next; /* registry list; guarded by reg_lock */
    char *key;          /* identity; immutable */
    int refs;           /* guarded by reg_lock */
    pid_t pid;          /* the process whose thread this is */
    bool running;       /* the thread was started */
    pthread_t thread;
    int pipefd[2];          /* a byte on [1] stops the thread */
    _Atomic uint64_t epoch; /* bumped at each switch of this master */
    /* The thread's own copies (immutable while it runs). */
    char *name, *user, *password;
    addr *sv;
    size_t nsv;
} watch;

struct st_sentinel {
    char *name; /* the master name */
    addr *sv;   /* sentinels; the last to answer first */
    size_t nsv;
    char *user, *password; /* AUTH to the sentinels, or NULL */
    int64_t timeout_ms;
    watch *w;
    uint64_t seen; /* w->epoch when last looked at */
};

/* ------------------------------------------------------------ Parsing --- */

static void addrs_free(addr *v, size_t n)
{
    size_t i;
    if (!v) return;
    for (i = 0; i < n; i++)
        st_free(v[i].host);
    st_free(v);
}

static int oom(stellar_error *e)
{
    return st_fail(e, STELLAR_ENOMEM, "out of memory");
}

static bool parse_port(const char *s, size_t n, int *out)
{
    long v = 0;
    size_t i;

    if (n == 0 || n > 5) return false;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535) return false;
    *out = (int)v;
    return true;
}

/* "host[:port]" or "[v6][:port]" in s[0..n). */
static int parse_addr(addr *a, const char *s, size_t n, const char *shown,
                      stellar_error *e)
{
    const char *h = s, *colon = NULL, *end = s + n;
    size_t hl;

    a->port = DEFAULT_SENTINEL_PORT;
    if (n && *s == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) goto bad;
        h = s + 1;
        hl = (size_t)(close - h);
        if (close + 1 < end) {
            if (close[1] != ':') goto bad;
            colon = close + 1;
        }
    } else {
        colon = memchr(s, ':', n);
        hl = (size_t)((colon ? colon : end) - s);
    }
    if (hl == 0) goto bad;
    if (colon && !parse_port(colon + 1, (size_t)(end - colon - 1), &a->port))
        goto bad;
    a->host = st_url_decode(h, hl);
    return a->host ? STELLAR_OK : oom(e);
bad:
    return st_fail(e, STELLAR_EINVAL,
                   "bad sentinel address '%.*s' in redis+sentinel URL '%s' "
                   "(expected host:port)",
                   (int)n, s, shown);
}

static int parse_hosts(st_sentinel *s, const char *p, size_t n,
                       const char *shown, stellar_error *e)
{
    const char *end = p + n;
    size_t count = 1, i;

    for (i = 0; i < n; i++)
        if (p[i] == ',') count++;
    s->sv = st_calloc(count, sizeof *s->sv);
    if (!s->sv) return oom(e);
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        int rc = parse_addr(&s->sv[s->nsv], p, (size_t)(stop - p), shown, e);
        if (rc != STELLAR_OK) return rc;
        s->nsv++;
        p = stop + 1;
    }
    return STELLAR_OK;
}

/* ------------------------------------------------------- Sentinel I/O --- */

static struct timeval tv_ms(int64_t ms)
{
    struct timeval tv;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
    return tv;
}

/*
 * Connects to sentinel a and authenticates. NULL on failure, with why in
 * why[] (no password in it).
 */
static redisContext *sentinel_dial(const addr *a, const char *user,
                                   const char *password, int64_t timeout_ms,
                                   char *why, size_t whylen)
{
    redisContext *c =
        redisConnectWithTimeout(a->host, a->port, tv_ms(timeout_ms));
    redisReply *r;

    if (!c) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(why, whylen, "%s", c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv_ms(timeout_ms));
    if (!password) return c;
    r = user ? redisCommand(c, "AUTH %s %s", user, password)
             : redisCommand(c, "AUTH %s", password);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "refused AUTH: %s",
                 r ? r->str : (c->errstr[0] ? c->errstr : "no reply"));
        if (r) freeReplyObject(r);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(r);
    return c;
}

int st_sentinel_locate(st_sentinel *s, char **host, int *port, char **where,
                       stellar_error *e)
{
    int64_t t = s->timeout_ms < SENTINEL_TIMEOUT_MS ? s->timeout_ms
                                                    : SENTINEL_TIMEOUT_MS;
    st_buf notes = {0};
    size_t i, unknown = 0, down = 0;
    int rc;

    for (i = 0; i < s->nsv; i++) {
        char why[160];
        redisReply *r;
        redisContext *c =
            sentinel_dial(&s->sv[i], s->user, s->password, t, why, sizeof why);
        if (c) {
            r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", s->name);
            if (!r) {
                snprintf(why, sizeof why, "%s",
                         c->errstr[0] ? c->errstr : "no reply");
            } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                       r->element[0]->type == REDIS_REPLY_STRING &&
                       r->element[1]->type == REDIS_REPLY_STRING) {
                char *h = st_strdup(r->element[0]->str);
                int p = 0;
                char *wh = NULL;
                if (!parse_port(r->element[1]->str, r->element[1]->len, &p))
                    p = 0;
                if (h && p)
                    wh = st_asprintf(strchr(h, ':') ? "[%s]:%d (primary of %s)"
                                                    : "%s:%d (primary of %s)",
                                     h, p, s->name);
                freeReplyObject(r);
                redisFree(c);
                if (!h || !wh) {
                    st_free(h);
                    st_free(wh);
                    st_buf_free(&notes);
                    return p ? oom(e)
                             : st_fail(e, STELLAR_EBACKEND,
                                       "sentinel %s:%d: bad port for master "
                                       "'%s'",
                                       s->sv[i].host, s->sv[i].port, s->name);
                }
                if (i) { /* ask this one first next time */
                    addr first = s->sv[i];
                    memmove(s->sv + 1, s->sv, i * sizeof *s->sv);
                    s->sv[0] = first;
                }
                st_free(*host);
                st_free(*where);
                *host = h;
                *port = p;
                *where = wh;
                st_buf_free(&notes);
                return STELLAR_OK;
            } else if (r->type == REDIS_REPLY_NIL) {
                snprintf(why, sizeof why, "does not know master '%s'", s->name);
                unknown++;
            } else if (r->type == REDIS_REPLY_ERROR) {
                snprintf(why, sizeof why, "%s", r->str);
            } else {
                snprintf(why, sizeof why, "unexpected reply (type %d)",
                         r->type);
            }
            if (r) freeReplyObject(r);
            redisFree(c);
        } else {
            down++;
        }
        st_buf_printf(&notes, "%s%s:%d: %s", i ? "; " : "", s->sv[i].host,
                      s->sv[i].port, why);
    }
    if (notes.oom) {
        st_buf_free(&notes);
        return oom(e);
    }
    if (unknown == s->nsv)
        rc = st_fail(e, STELLAR_ECONNECT,
                     "no sentinel knows master '%s' (check the name in the "
                     "URL): %s",
                     s->name, notes.p);
    else if (down == s->nsv)
        rc = st_fail(e, STELLAR_ECONNECT,
                     "all sentinels are down or unreachable (master '%s'): %s",
                     s->name, notes.p);
    else
        rc = st_fail(e, STELLAR_ECONNECT,
                     "no sentinel gave the primary of master '%s': %s", s->name,
                     notes.p);
    st_buf_free(&notes);
    return rc;
}

int st_sentinel_check_role(const redisReply *r, const char *where,
                           stellar_error *e)
{
    if (r->type == REDIS_REPLY_ERROR)
        return st_fail(e,
                       strncmp(r->str, "NOPERM", 6) == 0 ? STELLAR_EBACKEND
                                                         : STELLAR_ECONNECT,
                       "redis at %s: ROLE (checking the server Sentinel named "
                       "is a primary; an ACL user needs +role): %s",
                       where, r->str);
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[0]->str, "master") == 0)
        return STELLAR_OK;
    return st_fail(e, STELLAR_ECONNECT,
                   "redis at %s is not a primary (role %s): failover under "
                   "way",
                   where,
                   r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                           r->element[0]->type == REDIS_REPLY_STRING
                       ? r->element[0]->str
                       : "unknown");
}

bool st_sentinel_readonly(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           (strncmp(r->str, "READONLY", 8) == 0 ||
            /* a script's write, as Redis 6 words it */
            strstr(r->str, "-READONLY") != NULL);
}

/* -------------------------------------------------------------- Watch --- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static watch *registry; /* guarded by reg_lock */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void reg_prepare(void)
{
    pthread_mutex_lock(&reg_lock);
}

static void reg_release(void)
{
    pthread_mutex_unlock(&reg_lock);
}

static void reg_atfork(void)
{
    pthread_atfork(reg_prepare, reg_release, reg_release);
}

static void watch_free(watch *w)
{
    if (!w) return;
    if (w->pipefd[0] >= 0) close(w->pipefd[0]);
    if (w->pipefd[1] >= 0) close(w->pipefd[1]);
    st_free(w->key);
    st_free(w->name);
    st_free(w->user);
    st_free(w->password);
    addrs_free(w->sv, w->nsv);
    st_free(w);
}

/* Waits up to ms for the stop byte: true if it came. */
static bool watch_stopped(watch *w, int64_t ms)
{
    struct pollfd p = {.fd = w->pipefd[0], .events = POLLIN};
    return poll(&p, 1, (int)ms) > 0;
}

/* A "+switch-master" message for our master: "<name> <old ip> <old port>
 * <new ip> <new port>". */
static bool is_switch(const watch *w, const redisReply *r)
{
    size_t n = strlen(w->name);
    const redisReply *m;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) return false;
    if (r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "message") != 0)
        return false;
    m = r->element[2];
    return m->type == REDIS_REPLY_STRING && m->len > n &&
           strncmp(m->str, w->name, n) == 0 && m->str[n] == ' ';
}

/* Subscribed on c until the link fails (false) or stop (true). */
static bool watch_listen(watch *w, redisContext *c)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = w->pipefd[0], .events = POLLIN},
                              {.fd = c->fd, .events = POLLIN}};
        void *reply = NULL;
        int n = poll(p, 2, -1);

        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (p[0].revents) return true;
        if (redisBufferRead(c) != REDIS_OK) return false;
        for (;;) {
            if (redisGetReplyFromReader(c, &reply) != REDIS_OK) return false;
            if (!reply) break;
            if (is_switch(w, reply)) atomic_fetch_add(&w->epoch, 1);
            freeReplyObject(reply);
        }
    }
}

static void *watch_main(void *arg)
{
    watch *w = arg;
    size_t i = 0;
    bool ever = false;

    for (;;) {
        char why[160];
        redisContext *c = sentinel_dial(&w->sv[i], w->user, w->password,
                                        SENTINEL_TIMEOUT_MS, why, sizeof why);
        if (c) {
            redisReply *r = redisCommand(c, "SUBSCRIBE +switch-master");
            bool ok = r && r->type == REDIS_REPLY_ARRAY;
            if (r) freeReplyObject(r);
            if (ok) {
                /* A switch may have gone by while no sentinel was
                 * listened to: have the connections look again. */
                if (ever) atomic_fetch_add(&w->epoch, 1);
                ever = true;
                redisSetTimeout(c, tv_ms(0));
                /* A sentinel cut off without a reset: TCP keepalive ends
                 * the link (about 30 s), and another sentinel is asked. */
                redisEnableKeepAlive(c);
                if (watch_listen(w, c)) {
                    redisFree(c);
                    return NULL;
                }
            }
            redisFree(c);
        }
        i = (i + 1) % w->nsv;
        if (watch_stopped(w, WATCH_RETRY_MS)) return NULL;
    }
}

static char *watch_key(const st_sentinel *s)
{
    st_buf b = {0};
    size_t i;

    st_buf_printf(&b, "%s\n%s\n%s\n", s->name, s->user ? s->user : "",
                  s->password ? s->password : "");
    for (i = 0; i < s->nsv; i++)
        st_buf_printf(&b, "%s:%d,", s->sv[i].host, s->sv[i].port);
    return st_buf_take(&b);
}

static int watch_start(watch *w, stellar_error *e)
{
    sigset_t all, old;
    int rc;

    if (pipe(w->pipefd) != 0) {
        w->pipefd[0] = w->pipefd[1] = -1;
        return st_fail(e, STELLAR_EBACKEND, "sentinel watch: pipe: %s",
                       strerror(errno));
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, watch_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return st_fail(e, STELLAR_EBACKEND, "sentinel watch: thread: %s",
                       strerror(rc));
    w->running = true;
    return STELLAR_OK;
}

/* The registry's watch for s, started if new. */
static int watch_get(st_sentinel *s, stellar_error *e)
{
    char *k = watch_key(s);
    watch *w;
    size_t i;
    int rc;

    if (!k) return oom(e);
    pthread_once(&atfork_once, reg_atfork);
    pthread_mutex_lock(&reg_lock);
    for (w = registry; w; w = w->next)
        if (w->pid == getpid() && strcmp(w->key, k) == 0) break;
    if (w) {
        w->refs++;
        pthread_mutex_unlock(&reg_lock);
        st_free(k);
        s->w = w;
        s->seen = atomic_load(&w->epoch);
        return STELLAR_OK;
    }
    w = st_calloc(1, sizeof *w);
    if (!w) goto nomem;
    w->pipefd[0] = w->pipefd[1] = -1;
    w->key = k;
    k = NULL;
    w->name = st_strdup(s->name);
    w->user = s->user ? st_strdup(s->user) : NULL;
    w->password = s->password ? st_strdup(s->password) : NULL;
    w->sv = st_calloc(s->nsv, sizeof *w->sv);
    if (!w->name || (s->user && !w->user) || (s->password && !w->password) ||
        !w->sv)
        goto nomem;
    for (i = 0; i < s->nsv; i++, w->nsv++) {
        w->sv[i].host = st_strdup(s->sv[i].host);
        w->sv[i].port = s->sv[i].port;
        if (!w->sv[i].host) goto nomem;
    }
    w->pid = getpid();
    w->refs = 1;
    atomic_init(&w->epoch, 0);
    if ((rc = watch_start(w, e)) != STELLAR_OK) {
        pthread_mutex_unlock(&reg_lock);
        watch_free(w);
        return rc;
    }
    w->next = registry;
    registry = w;
    pthread_mutex_unlock(&reg_lock);
    s->w = w;
    s->seen = 0;
    return STELLAR_OK;
nomem:
    pthread_mutex_unlock(&reg_lock);
    st_free(k);
    watch_free(w);
    return oom(e);
}

static void watch_put(watch *w)
{
    watch **pp;
    bool last;

    if (!w) return;
    pthread_mutex_lock(&reg_lock);
    last = --w->refs == 0;
    if (last)
        for (pp = &registry; *pp; pp = &(*pp)->next)
            if (*pp == w) {
                *pp = w->next;
                break;
            }
    pthread_mutex_unlock(&reg_lock);
    if (!last) return;
    if (w->running && w->pid == getpid()) {
        ssize_t n;
        do
            n = write(w->pipefd[1], "x", 1);
        while (n < 0 && errno == EINTR);
        pthread_join(w->thread, NULL);
        watch_free(w);
    }
    /* In a child of fork() the thread is the parent's: leave it all. */
}

bool st_sentinel_switched(st_sentinel *s)
{
    uint64_t now;

    if (!s->w) return false;
    now = atomic_load(&s->w->epoch);
    if (now == s->seen) return false;
    s->seen = now;
    return true;
}

/* --------------------------------------------------------- Open/close --- */

int st_sentinel_open(st_sentinel **out, const char *p, size_t n,
                     const char *query, int64_t timeout_ms, int *db,
                     const char *shown, stellar_error *e)
{
    st_sentinel *s;
    const char *end = p + n, *slash, *name, *name_end;
    int rc;

    *out = NULL;
    s = st_calloc(1, sizeof *s);
    if (!s) return oom(e);
    s->timeout_ms = timeout_ms;
    slash = memchr(p, '/', n);
    if (!slash || slash == p) {
        rc = st_fail(e, STELLAR_EINVAL,
                     "redis+sentinel URL '%s' needs sentinels and a master "
                     "name: redis+sentinel://host:port,.../MASTER_NAME",
                     shown);
        goto fail;
    }
    name = slash + 1;
    name_end = memchr(name, '/', (size_t)(end - name));
    if (!name_end) name_end = end;
    if (name_end == name) {
        rc = st_fail(e, STELLAR_EINVAL,
                     "redis+sentinel URL '%s' has no master name", shown);
        goto fail;
    }
    if (name_end + 1 < end) {
        long v = 0;
        const char *d;
        for (d = name_end + 1; d < end && *d >= '0' && *d <= '9'; d++)
            if ((v = v * 10 + (*d - '0')) > (1L << 20)) break;
        if (d != end) {
            rc = st_fail(e, STELLAR_EINVAL,
                         "bad database number in redis+sentinel URL '%s'",
                         shown);
            goto fail;
        }
        *db = (int)v;
    }
    s->name = st_url_decode(name, (size_t)(name_end - name));
    if (!s->name) goto nomem;
    if ((rc = parse_hosts(s, p, (size_t)(slash - p), shown, e)) != STELLAR_OK)
        goto fail;
    if (query) {
        s->user = st_url_param(query, "sentinelUser");
        s->password = st_url_param(query, "sentinelPassword");
        if (s->password && !s->password[0]) {
            st_free(s->password);
            s->password = NULL;
        }
    }
    if ((rc = watch_get(s, e)) != STELLAR_OK) goto fail;
    *out = s;
    return STELLAR_OK;
nomem:
    rc = oom(e);
fail:
    st_sentinel_close(s);
    return rc;
}

void st_sentinel_close(st_sentinel *s)
{
    if (!s) return;
    watch_put(s->w);
    st_free(s->name);
    addrs_free(s->sv, s->nsv);
    st_free(s->user);
    st_free(s->password);
    st_free(s);
}
