/*
 * server.c: the HTTP server of libstellar (issue #7): the JSON API under
 * /api/ (api.c), Prometheus /metrics (prom.c) and the dashboard, whose
 * files are compiled in (cmake/embed.cmake).
 *
 * libmicrohttpd runs it in its own threads (a small pool, so one slow
 * backend call does not hold every client); handlers only call the public,
 * thread-safe API of the handle.
 *
 * Security, in the order a request meets it (first call of the handler,
 * before any body is read):
 * 0. Connections (issue #17): one client address may hold at most
 *    per_ip_connections (16) at once, all clients max_connections (256);
 *    the request head (request line and headers) must arrive within
 *    head_timeout_ms (5 s) of the connection's accept (or of the previous
 *    request's end, on a kept-alive connection), however steadily its
 *    bytes trickle in. libmicrohttpd's own timeout is an idle timeout,
 *    reset by every byte, so a watchdog thread here closes (408, then
 *    shutdown) the connections whose head is late: slow clients cannot
 *    hold every slot before anyone has authenticated.
 * 1. Host: on a loopback listen without a token, the Host header must name
 *    a loopback host (or the listen host), so a web page cannot reach the
 *    API through DNS rebinding.
 * 2. Tokens: when a token or a read token is set (one is required unless
 *    listening on loopback; off loopback each must be at least 16
 *    characters), every request must carry one as "Authorization: Bearer
 *    T" or the session cookie. "?token=T" is taken only by a GET of the
 *    dashboard's page (/ or /index.html), which then sets the cookie: a
 *    random session id (128 bits) mapped here to the token's kind, never
 *    the token, HttpOnly, SameSite=Strict, Max-Age 12 h; sessions live in
 *    this process only. A wrong token is logged with the client address,
 *    and that address must then wait before its next try (250 ms, doubling
 *    per failure up to 30 s; 429 meanwhile, without checking): nothing
 *    sleeps, so no server thread is held.
 * 3. Methods: reads are GET/HEAD, changes POST/DELETE; anything else 405.
 *    The read token may only read: a change answers 403 (EREADONLY).
 * 4. CSRF: a POST or DELETE needs "X-Stellar-CSRF: 1", a header that a
 *    cross-site form cannot send and a cross-site script cannot send
 *    without a CORS preflight this server never grants; an Origin header,
 *    if present, must be this server's own (scheme://Host), and
 *    Sec-Fetch-Site must not be cross-site.
 * 5. Size: a body over max_body is refused with 413 (from Content-Length
 *    at once, or while it streams); headers are limited by the connection
 *    memory limit; idle connections time out.
 * Every change that reaches the API is logged (INFO, "http audit: ...")
 * with its status, the kind of token and the client address. Tokens are
 * never logged or echoed.
 *
 * Threads and locks: libmicrohttpd's threads call the handlers; one
 * watchdog thread enforces the head deadline. `lock` guards the
 * connection list, the sessions and the failed-login table; it is held
 * only for short loops over them, never while logging or calling the
 * library.
 * Files are served only from the embedded table, looked up by exact path:
 * there is no file system path to traverse. Every reply carries nosniff,
 * no framing, no referrer, and a Content-Security-Policy that allows only
 * this origin's script and style (no inline script).
 */
#include "http/http.h"
#include "stellar.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_LISTEN   "127.0.0.1:8080"
#define DEFAULT_MAX_BODY (64 * 1024)
#define THREADS          4
#define MAX_CONNECTIONS  256
#define PER_IP_CONNS     16
#define HEAD_TIMEOUT_MS  5000
#define WATCH_EVERY_MS   100
#define IDLE_TIMEOUT_S   30
#define HEADER_MEMORY    (32 * 1024)
#define CSRF_HEADER      "X-Stellar-CSRF"
#define COOKIE_NAME      "stellar_session"
#define SESSION_MAX_AGE  (12 * 3600) /* s */
#define MAX_SESSIONS     256
#define MIN_TOKEN_LEN    16 /* off loopback */
#define MAX_FAILS        64 /* addresses remembered for the backoff */
#define BACKOFF_MIN_MS   250
#define BACKOFF_MAX_MS   30000
#define FAIL_FORGET_MS   (15 * 60 * 1000)
#define ADDR_LEN         64

static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

/* Who a request is: the credential that let it in. */
enum auth_kind { AUTH_OPEN, AUTH_ADMIN, AUTH_READ };

/* One open connection (libmicrohttpd's socket context), from accept to
 * close. */
typedef struct conn {
    struct conn *prev, *next; /* in stellar_http.conns */
    int fd;                   /* a dup of the socket: shutdown() by the
                                 watchdog can never hit a reused number */
    int64_t head_by_ms;       /* monotonic deadline of the request head
                                 being received; 0: none (a request is
                                 being answered) */
    bool cut;                 /* the watchdog closed it */
    char addr[ADDR_LEN];      /* the client's address, as text */
} conn;

typedef struct session {
    char id[33];         /* 32 hex digits; "" : free slot */
    enum auth_kind kind; /* AUTH_ADMIN or AUTH_READ */
    int64_t expires_ms;  /* monotonic */
} session;

/* An address that sent a wrong token lately. */
typedef struct failure {
    char addr[ADDR_LEN]; /* "": free slot */
    unsigned n;          /* wrong tokens in a row */
    int64_t until_ms;    /* monotonic: no new try before */
    int64_t last_ms;     /* monotonic: the latest failure */
} failure;

struct stellar_http {
    stellar *h;
    struct MHD_Daemon *d;
    int port;      /* the bound port */
    bool loopback; /* listening on a loopback address */
    char *host;    /* the listen host as given (for the Host check) */
    char *token;   /* NULL: none */
    size_t token_len;
    char *read_token; /* NULL: none */
    size_t read_token_len;
    size_t max_body;
    int64_t head_timeout_ms;

    pthread_t watchdog;
    bool watchdog_on;     /* the thread was started */
    pthread_mutex_t lock; /* guards every field below it */
    pthread_cond_t wake;  /* signalled when stopping is set */
    bool stopping;
    conn *conns;
    session sessions[MAX_SESSIONS];
    failure fails[MAX_FAILS];
};

/* One request's state, from its first call to its completion. */
typedef struct req_state {
    st_buf body;
    bool too_big;               /* the body passed max_body: answer 413 */
    enum auth_kind auth;        /* what let it in */
    const char *via;            /* "bearer", "session", "?token", "" */
    enum auth_kind new_session; /* by ?token=: set a cookie of this kind */
    const char *addr;           /* the client's address (its conn's) */
} req_state;

/* ----------------------------------------------------------- Helpers --- */

/* Compares a secret without an early exit on the first differing byte. */
static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char d = 0;
    size_t i;
    if (alen != blen) return false;
    for (i = 0; i < alen; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Query arguments, for api.c: MHD leaves them percent-encoded (see
 * keep_escapes), so decode here. */
static char *query_arg(void *ud, const char *name)
{
    const char *v =
        MHD_lookup_connection_value(ud, MHD_GET_ARGUMENT_KIND, name);
    return v ? st_url_decode(v, strlen(v)) : NULL;
}

/* MHD's unescape callback: keep the URL as sent, so that api.c can split
 * the path before decoding each segment ("a%2Fb" is one queue name). */
static size_t keep_escapes(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    return strlen(s);
}

/* fmt comes from libmicrohttpd, not a literal: the format attribute tells
 * the compiler (clang's -Wformat-nonliteral) to trust it as a format. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
    STELLAR_PRINTF(2, 0);

/* libmicrohttpd's messages, with the value of any "token=" shown as ***:
 * one may quote a URL. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    stellar_http *s = cls;
    char msg[1024], out[1024];
    const char *p = msg, *t;
    size_t o = 0;
    vsnprintf(msg, sizeof msg, fmt, ap);
    while ((t = strstr(p, "token=")) && o + (size_t)(t - p) + 10 < sizeof out) {
        memcpy(out + o, p, (size_t)(t - p) + 6);
        o += (size_t)(t - p) + 6;
        memcpy(out + o, "***", 3);
        o += 3;
        p = t + 6 + strcspn(t + 6, "&# \r\n");
    }
    snprintf(out + o, sizeof out - o, "%s", t ? "..." : p);
    st_log(&s->h->log, STELLAR_LOG_WARN, "%s", out);
}

/* The host part of a Host header or of an origin's authority: "[::1]:80"
 * gives "[::1]", "a.b:80" gives "a.b". Writes at most n bytes. */
static void host_part(const char *hp, char *out, size_t n)
{
    size_t len;
    const char *colon;
    if (*hp == '[') {
        const char *end = strchr(hp, ']');
        len = end ? (size_t)(end - hp) + 1 : strlen(hp);
    } else {
        colon = strchr(hp, ':');
        len = colon ? (size_t)(colon - hp) : strlen(hp);
    }
    if (len >= n) len = n - 1;
    memcpy(out, hp, len);
    out[len] = '\0';
}

static bool is_loopback_name(const stellar_http *s, const char *host)
{
    struct in_addr a4;
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return s->host && strcasecmp(host, s->host) == 0;
}

/* ---------------------------------------------------------- Sessions --- */

/* n random bytes as hex (2n + 1 bytes in out); false if there is no
 * randomness to be had. */
static bool random_hex(char *out, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char b[32];
    size_t i, got = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || n > sizeof b) {
        if (fd >= 0) close(fd);
        return false;
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got < n) return false;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return true;
}

/* A new session of kind: its id in id (33 bytes). The oldest session
 * makes room when the table is full. */
static bool session_new(stellar_http *s, enum auth_kind kind, char *id)
{
    int64_t now = st_mono_ms();
    size_t i, pick = 0;
    if (!random_hex(id, 16)) return false;
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < MAX_SESSIONS; i++) {
        session *x = &s->sessions[i];
        if (!x->id[0] || x->expires_ms <= now) {
            pick = i;
            break;
        }
        if (x->expires_ms < s->sessions[pick].expires_ms) pick = i;
    }
    memcpy(s->sessions[pick].id, id, 33);
    s->sessions[pick].kind = kind;
    s->sessions[pick].expires_ms = now + SESSION_MAX_AGE * (int64_t)1000;
    pthread_mutex_unlock(&s->lock);
    return true;
}

/* The kind of the live session id, or AUTH_OPEN if there is none. */
static enum auth_kind session_find(stellar_http *s, const char *id)
{
    enum auth_kind kind = AUTH_OPEN;
    int64_t now = st_mono_ms();
    size_t i, n = strlen(id);
    if (n != 32) return AUTH_OPEN;
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < MAX_SESSIONS; i++) {
        session *x = &s->sessions[i];
        if (x->id[0] && x->expires_ms > now && same_secret(x->id, 32, id, n))
            kind = x->kind;
    }
    pthread_mutex_unlock(&s->lock);
    return kind;
}

/* ---------------------------------------------------- Failed logins --- */

/* ms the address must still wait before a new try (0: none). */
static int64_t backoff_left(stellar_http *s, const char *addr)
{
    int64_t now = st_mono_ms(), left = 0;
    size_t i;
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < MAX_FAILS; i++)
        if (s->fails[i].addr[0] && strcmp(s->fails[i].addr, addr) == 0 &&
            s->fails[i].until_ms > now)
            left = s->fails[i].until_ms - now;
    pthread_mutex_unlock(&s->lock);
    return left;
}

/* Counts a wrong token from addr; returns the failures in a row and sets
 * *wait_ms to the wait before the next try. */
static unsigned fail_note(stellar_http *s, const char *addr, int64_t *wait_ms)
{
    int64_t now = st_mono_ms(), wait;
    size_t i, pick = MAX_FAILS, oldest = 0;
    unsigned n;
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < MAX_FAILS; i++) {
        failure *f = &s->fails[i];
        if (f->addr[0] && now - f->last_ms > FAIL_FORGET_MS) f->addr[0] = 0;
        if (f->addr[0] && strcmp(f->addr, addr) == 0) pick = i;
        if (f->last_ms < s->fails[oldest].last_ms) oldest = i;
    }
    if (pick == MAX_FAILS) {
        for (i = 0; i < MAX_FAILS && s->fails[i].addr[0]; i++)
            ;
        pick = i < MAX_FAILS ? i : oldest;
        memset(&s->fails[pick], 0, sizeof s->fails[pick]);
        snprintf(s->fails[pick].addr, ADDR_LEN, "%s", addr);
    }
    n = ++s->fails[pick].n;
    wait = n > 8 ? BACKOFF_MAX_MS : (int64_t)BACKOFF_MIN_MS << (n - 1);
    if (wait > BACKOFF_MAX_MS) wait = BACKOFF_MAX_MS;
    s->fails[pick].until_ms = now + wait;
    s->fails[pick].last_ms = now;
    pthread_mutex_unlock(&s->lock);
    *wait_ms = wait;
    return n;
}

static void fail_clear(stellar_http *s, const char *addr)
{
    size_t i;
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < MAX_FAILS; i++)
        if (s->fails[i].addr[0] && strcmp(s->fails[i].addr, addr) == 0)
            s->fails[i].addr[0] = 0;
    pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------- Connections --- */

static void addr_text(const struct sockaddr *sa, char *out, size_t n)
{
    const void *a = NULL;
    if (sa && sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa && sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (!a || !inet_ntop(sa->sa_family, a, out, (socklen_t)n))
        snprintf(out, n, "?");
}

/* libmicrohttpd tells of each connection opened and closed. */
static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    stellar_http *s = cls;
    conn *cn = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fdi =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!(cn = st_calloc(1, sizeof *cn))) return; /* then: no deadline */
        cn->fd = fdi ? fcntl(fdi->connect_fd, F_DUPFD_CLOEXEC, 0) : -1;
        addr_text(ai ? ai->client_addr : NULL, cn->addr, sizeof cn->addr);
        cn->head_by_ms = st_mono_ms() + s->head_timeout_ms;
        pthread_mutex_lock(&s->lock);
        cn->next = s->conns;
        if (s->conns) s->conns->prev = cn;
        s->conns = cn;
        pthread_mutex_unlock(&s->lock);
        *socket_context = cn;
        return;
    }
    if (!cn) return;
    pthread_mutex_lock(&s->lock);
    if (cn->prev)
        cn->prev->next = cn->next;
    else
        s->conns = cn->next;
    if (cn->next) cn->next->prev = cn->prev;
    pthread_mutex_unlock(&s->lock);
    if (cn->fd >= 0) close(cn->fd);
    st_free(cn);
    *socket_context = NULL;
}

static conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

/* The head is in: no deadline while the request is answered. False if the
 * watchdog has cut the connection meanwhile. */
static bool conn_head_done(stellar_http *s, conn *cn)
{
    bool ok;
    if (!cn) return true;
    pthread_mutex_lock(&s->lock);
    ok = !cn->cut;
    cn->head_by_ms = 0;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* The watchdog: closes connections whose request head is late. */
static void *watchdog_main(void *arg)
{
    static const char late[] = "HTTP/1.1 408 Request Timeout\r\n"
                               "Connection: close\r\nContent-Length: 0\r\n\r\n";
    stellar_http *s = arg;
    struct timespec until;

    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t now = st_mono_ms();
        unsigned cut = 0;
        conn *cn;
        for (cn = s->conns; cn; cn = cn->next) {
            if (cn->cut || !cn->head_by_ms || now < cn->head_by_ms) continue;
            cn->cut = true;
            cut++;
            if (cn->fd < 0) continue;
            /* libmicrohttpd is only reading from it: the 408 cannot mix
             * with a reply. shutdown() wakes its thread, which closes. */
            (void)!send(cn->fd, late, sizeof late - 1,
                        MSG_DONTWAIT | MSG_NOSIGNAL);
            shutdown(cn->fd, SHUT_RDWR);
        }
        if (cut) {
            pthread_mutex_unlock(&s->lock);
            st_log(&s->h->log, STELLAR_LOG_DEBUG,
                   "http: closed %u connection(s) whose request head took "
                   "over %lld ms",
                   cut, (long long)s->head_timeout_ms);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += WATCH_EVERY_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->wake, &s->lock, &until);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* -------------------------------------------------------------- Reply --- */

static enum MHD_Result send_reply(stellar_http *s, struct MHD_Connection *c,
                                  const req_state *rs, const char *method,
                                  const char *url, st_http_reply *r,
                                  const st_http_asset *asset)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (asset) /* Embedded data lives as long as the program: no copy. */
        resp = MHD_create_response_from_buffer(
            asset->len, (void *)(uintptr_t)asset->data, MHD_RESPMEM_PERSISTENT);
    else
        resp = MHD_create_response_from_buffer(r->len, r->body,
                                               MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            asset ? asset->mime : r->type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            asset ? "no-cache" : "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    if (r && r->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r && r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"stellar\"");
    if (r && r->retry_after_s) {
        char v[24];
        snprintf(v, sizeof v, "%d", r->retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (rs && rs->new_session != AUTH_OPEN) {
        char id[33], cookie[128];
        if (!session_new(s, rs->new_session, id)) {
            MHD_destroy_response(resp);
            st_log(&s->h->log, STELLAR_LOG_ERROR,
                   "http: no randomness for a session id (/dev/urandom)");
            return MHD_NO;
        }
        snprintf(cookie, sizeof cookie,
                 "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict",
                 COOKIE_NAME, id, SESSION_MAX_AGE);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    }
    ret = MHD_queue_response(c, asset ? 200 : (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    st_log(&s->h->log, STELLAR_LOG_DEBUG, "http: %s %s %d", method, url,
           asset ? 200 : r->status);
    return ret;
}

/* An error reply; allow is the Allow header of a 405 (else NULL). */
static enum MHD_Result send_error(stellar_http *s, struct MHD_Connection *c,
                                  const char *method, const char *url,
                                  int status, const char *code, const char *msg,
                                  const char *allow, int retry_after_s)
{
    st_http_reply r = {0};
    enum MHD_Result ret;
    st_http_error(&r, status, code, "%s", msg);
    if (allow) snprintf(r.allow, sizeof r.allow, "%s", allow);
    r.retry_after_s = retry_after_s;
    ret = send_reply(s, c, NULL, method, url, &r, NULL);
    st_free(r.body);
    return ret;
}

/* ------------------------------------------------------------- Checks --- */

static bool is_page(const char *url)
{
    return strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0;
}

static const char *kind_name(enum auth_kind k)
{
    return k == AUTH_ADMIN  ? "admin token"
           : k == AUTH_READ ? "read token"
                            : "no token";
}

/* The token a request offers: which kind it is, if any. */
static enum auth_kind token_kind(const stellar_http *s, const char *v)
{
    size_t n = strlen(v);
    bool admin = s->token && same_secret(v, n, s->token, s->token_len);
    bool read =
        s->read_token && same_secret(v, n, s->read_token, s->read_token_len);
    return admin ? AUTH_ADMIN : read ? AUTH_READ : AUTH_OPEN;
}

/* 0 if the request may go on, else the error status (msg, code filled;
 * *retry_s with 429). */
static int check_request(stellar_http *s, struct MHD_Connection *c,
                         const char *method, const char *url, req_state *rs,
                         const char **code, const char **msg, int *retry_s)
{
    bool change = strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0;
    bool read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    const char *v;

    rs->auth = AUTH_OPEN;
    rs->via = "";
    /* 1. Host, against DNS rebinding. */
    if (s->loopback && !s->token && !s->read_token &&
        (v = header(c, MHD_HTTP_HEADER_HOST))) {
        char host[256];
        host_part(v, host, sizeof host);
        if (!is_loopback_name(s, host)) {
            *code = "EHOST";
            *msg = "this server answers only to a loopback Host (localhost, "
                   "127.0.0.1, [::1]); set a token to serve other names";
            return 403;
        }
    }

    /* 2. The tokens. A bearer token, if sent, decides; else a live
     * session; else ?token= on the page. */
    if (s->token || s->read_token) {
        char *offered = NULL;
        enum auth_kind kind = AUTH_OPEN;
        int64_t wait = 0;

        if ((v = header(c, MHD_HTTP_HEADER_AUTHORIZATION)) &&
            strncasecmp(v, "Bearer ", 7) == 0) {
            v += 7;
            while (*v == ' ')
                v++;
            offered = st_strdup(v);
            rs->via = "bearer";
        } else if ((v = MHD_lookup_connection_value(c, MHD_COOKIE_KIND,
                                                    COOKIE_NAME)) &&
                   (kind = session_find(s, v)) != AUTH_OPEN) {
            rs->via = "session";
        } else if (read && is_page(url)) {
            offered = query_arg(c, "token");
            rs->via = "?token";
        }
        if (offered) {
            if ((wait = backoff_left(s, rs->addr)) > 0) {
                st_free(offered);
                *retry_s = (int)((wait + 999) / 1000);
                *code = "EBACKOFF";
                *msg = "too many wrong tokens from this address: wait "
                       "(Retry-After) before the next try";
                return 429;
            }
            kind = token_kind(s, offered);
            st_free(offered);
            if (kind == AUTH_OPEN) {
                unsigned n = fail_note(s, rs->addr, &wait);
                st_log(&s->h->log, STELLAR_LOG_WARN,
                       "http: wrong token (%s) from %s for %s %s: %u in a "
                       "row; next try in %lld ms",
                       rs->via, rs->addr, method, url, n, (long long)wait);
            } else {
                fail_clear(s, rs->addr);
                if (strcmp(rs->via, "?token") == 0) rs->new_session = kind;
            }
        }
        if (kind == AUTH_OPEN) {
            *code = "EAUTH";
            *msg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                               "token") &&
                           !is_page(url)
                       ? "?token= is taken only when opening the dashboard "
                         "(/?token=...); send \"Authorization: Bearer "
                         "<token>\""
                       : "a token is required: send \"Authorization: "
                         "Bearer <token>\", or open the dashboard with "
                         "?token=<token>";
            return 401;
        }
        rs->auth = kind;
    }

    /* 3. Methods. */
    if (!change && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        *code = "EMETHOD";
        *msg = "only GET and HEAD (to read), POST and DELETE (to change) are "
               "served";
        return 405;
    }

    if (change && rs->auth == AUTH_READ) {
        *code = "EREADONLY";
        *msg = "the read-only token may not change anything";
        return 403;
    }

    /* 4. CSRF. */
    if (change) {
        v = header(c, CSRF_HEADER);
        if (!v || strcmp(v, "1") != 0) {
            *code = "ECSRF";
            *msg = "a POST or DELETE needs the header X-Stellar-CSRF: 1";
            return 403;
        }
        if ((v = header(c, "Sec-Fetch-Site")) &&
            strcasecmp(v, "cross-site") == 0) {
            *code = "ECSRF";
            *msg = "cross-site requests may not change anything";
            return 403;
        }
        if ((v = header(c, "Origin"))) {
            const char *host = header(c, MHD_HTTP_HEADER_HOST);
            const char *auth = strstr(v, "://");
            if (!host || !auth || strcasecmp(auth + 3, host) != 0) {
                *code = "ECSRF";
                *msg = "the Origin of this request is not this server";
                return 403;
            }
        }
    }

    /* 5. The announced body size. */
    if ((v = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH))) {
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        if (*end || n > s->max_body) {
            *code = "ETOOBIG";
            *msg = "the request body is larger than the server accepts";
            return 413;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ Handler --- */

static const st_http_asset *find_asset(const char *url)
{
    size_t i;
    if (strcmp(url, "/") == 0) url = "/index.html";
    for (i = 0; i < st_http_nassets; i++)
        if (strcmp(st_http_assets[i].path, url) == 0) return &st_http_assets[i];
    return NULL;
}

static enum MHD_Result dispatch(stellar_http *s, struct MHD_Connection *c,
                                req_state *rs, const char *method,
                                const char *url)
{
    bool read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    st_http_reply r = {0};
    enum MHD_Result ret;

    if (strncmp(url, "/api/", 5) == 0) {
        st_http_req req = {method, url + 5,    query_arg,
                           c,      rs->body.p, rs->body.len};
        st_http_api(s->h, &req, &r);
    } else if (strcmp(url, "/metrics") == 0) {
        if (!read)
            return send_error(s, c, method, url, 405, "EMETHOD",
                              "/metrics is read with GET", "GET, HEAD", 0);
        st_http_metrics(s->h, &r);
    } else {
        const st_http_asset *a = find_asset(url);
        if (a && !read)
            return send_error(s, c, method, url, 405, "EMETHOD",
                              "files are read with GET", "GET, HEAD", 0);
        if (a) return send_reply(s, c, rs, method, url, NULL, a);
        st_http_error(&r, 404, "ENOTFOUND", "no such page");
    }
    if (!read)
        st_log(&s->h->log, STELLAR_LOG_INFO,
               "http audit: %s %s -> %d, by %s%s%s from %s", method, url,
               r.status, kind_name(rs->auth), *rs->via ? " via " : "", rs->via,
               rs->addr);
    ret = send_reply(s, c, rs, method, url, &r, NULL);
    st_free(r.body);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    stellar_http *s = cls;
    req_state *rs = *con_cls;

    (void)version;
    if (!rs) {
        const char *code = NULL, *msg = NULL;
        conn *cn = conn_of(c);
        int status, retry_s = 0;
        if (!conn_head_done(s, cn)) return MHD_NO; /* too late: cut */
        if (!(rs = st_calloc(1, sizeof *rs))) return MHD_NO;
        *con_cls = rs;
        rs->addr = cn ? cn->addr : "?";
        /* Refuse before reading a byte of the body (and before MHD sends
         * "100 Continue" to a client that asked). */
        if ((status =
                 check_request(s, c, method, url, rs, &code, &msg, &retry_s)))
            return send_error(s, c, method, url, status, code, msg,
                              status == 405 ? "GET, HEAD, POST, DELETE" : NULL,
                              retry_s);
        return MHD_YES;
    }
    if (*upload_size) {
        if (!rs->too_big && rs->body.len + *upload_size > s->max_body) {
            rs->too_big = true;
            st_buf_free(&rs->body);
        }
        if (!rs->too_big) st_buf_put(&rs->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (rs->too_big)
        return send_error(s, c, method, url, 413, "ETOOBIG",
                          "the request body is larger than the server "
                          "accepts",
                          NULL, 0);
    if (rs->body.oom)
        return send_error(s, c, method, url, 500, "ENOMEM", "out of memory",
                          NULL, 0);
    return dispatch(s, c, rs, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    stellar_http *s = cls;
    req_state *rs = *con_cls;
    conn *cn = conn_of(c);
    (void)toe;
    /* A kept-alive connection has the same time again for its next head
     * (the wait for it included). */
    if (cn) {
        pthread_mutex_lock(&s->lock);
        cn->head_by_ms = st_mono_ms() + s->head_timeout_ms;
        pthread_mutex_unlock(&s->lock);
    }
    if (!rs) return;
    st_buf_free(&rs->body);
    st_free(rs);
    *con_cls = NULL;
}

/* ------------------------------------------------------- Start, stop --- */

/* Splits "host:port", "[v6]:port", ":port" or "port" (the last two mean
 * 127.0.0.1). New strings in *host, *port. */
static int parse_listen(const char *listen, char **host, char **port,
                        stellar_error *e)
{
    const char *colon, *p;
    *host = *port = NULL;
    if (*listen == '[') {
        const char *end = strchr(listen, ']');
        if (!end || end[1] != ':')
            return st_fail(e, STELLAR_EINVAL,
                           "listen '%s': write an IPv6 address as [::1]:8080",
                           listen);
        *host = st_strndup(listen + 1, (size_t)(end - listen - 1));
        colon = end + 1;
    } else if ((colon = strrchr(listen, ':'))) {
        if (strchr(listen, ':') != colon)
            return st_fail(e, STELLAR_EINVAL,
                           "listen '%s': write an IPv6 address as [::1]:8080",
                           listen);
        *host = colon == listen ? st_strdup("127.0.0.1")
                                : st_strndup(listen, (size_t)(colon - listen));
    } else {
        *host = st_strdup("127.0.0.1");
        colon = listen - 1;
    }
    for (p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9') break;
    if (*p || !colon[1] || atoi(colon + 1) > 65535) {
        st_free(*host);
        *host = NULL;
        return st_fail(e, STELLAR_EINVAL,
                       "listen '%s': expected host:port, such as "
                       "127.0.0.1:8080",
                       listen);
    }
    *port = st_strdup(colon + 1);
    if (!*host || !*port) {
        st_free(*host);
        st_free(*port);
        *host = *port = NULL;
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    }
    return STELLAR_OK;
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in =
            (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 =
            (const struct sockaddr_in6 *)(const void *)sa;
        const unsigned char *b = in6->sin6_addr.s6_addr;
        static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                                   0, 0, 0, 0, 0xff, 0xff};
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
        return memcmp(b, v4mapped, 12) == 0 && b[12] == 127;
    }
    return false;
}

/* Refuses tokens that would not protect a listen off loopback. */
static int check_tokens(const stellar_http *s, const char *listen_str,
                        stellar_error *e)
{
    if (s->loopback) return STELLAR_OK;
    if (!s->token && !s->read_token)
        return st_fail(e, STELLAR_EINVAL,
                       "listen %s: an address other than loopback needs a "
                       "token (anyone who can reach it could manage jobs)",
                       listen_str);
    if ((s->token && s->token_len < MIN_TOKEN_LEN) ||
        (s->read_token && s->read_token_len < MIN_TOKEN_LEN))
        return st_fail(
            e, STELLAR_EINVAL,
            "listen %s: the %s is %zu characters: off loopback a "
            "token needs at least %d (a random one: openssl rand "
            "-hex 16)",
            listen_str,
            s->token && s->token_len < MIN_TOKEN_LEN ? "token" : "read token",
            s->token && s->token_len < MIN_TOKEN_LEN ? s->token_len
                                                     : s->read_token_len,
            MIN_TOKEN_LEN);
    return STELLAR_OK;
}

/* Binds and listens: *fd is the socket, or -1 with the code returned. */
static int open_listener(stellar_http *s, const char *listen_str,
                         const char *port, int *fdp, stellar_error *e)
{
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd, one = 1, gai, rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    *fdp = -1;
    if ((gai = getaddrinfo(s->host, port, &hints, &res)) || !res)
        return st_fail(e, STELLAR_EINVAL, "listen '%s': %s", listen_str,
                       gai ? gai_strerror(gai) : "no address");
    s->loopback = addr_is_loopback(res->ai_addr);
    if ((rc = check_tokens(s, listen_str, e))) {
        freeaddrinfo(res);
        return rc;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        rc = st_fail(e, STELLAR_EIO, "cannot listen on %s: %s", listen_str,
                     strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return rc;
    }
    s->port = ntohs(ss.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)(void *)&ss)->sin6_port
                        : ((struct sockaddr_in *)(void *)&ss)->sin_port);
    freeaddrinfo(res);
    *fdp = fd;
    return STELLAR_OK;
}

/* Copies a token option ("" is none). */
static int copy_token(const char *t, char **out, size_t *len, stellar_error *e)
{
    if (!t || !*t) return STELLAR_OK;
    *len = strlen(t);
    if (!(*out = st_strdup(t)))
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    return STELLAR_OK;
}

int stellar_http_start(stellar *h, const stellar_http_options *o,
                       stellar_http **out, stellar_error *e)
{
    const char *listen_str =
        o && o->listen && *o->listen ? o->listen : DEFAULT_LISTEN;
    unsigned max_conns =
        o && o->max_connections ? o->max_connections : MAX_CONNECTIONS;
    unsigned per_ip =
        o && o->per_ip_connections ? o->per_ip_connections : PER_IP_CONNS;
    stellar_http *s = NULL;
    pthread_condattr_t ca;
    char *port = NULL;
    int fd = -1, rc;

    st_err_clear(e);
    if (out) *out = NULL;
    if (!h || !out)
        return st_fail(e, STELLAR_EINVAL, "http: a handle and out are needed");
    if (per_ip > max_conns)
        return st_fail(e, STELLAR_EINVAL,
                       "http: per_ip_connections (%u) is more than "
                       "max_connections (%u)",
                       per_ip, max_conns);
    if (max_conns < THREADS)
        return st_fail(e, STELLAR_EINVAL,
                       "http: max_connections (%u) must be at least %d",
                       max_conns, THREADS);
    if (!(s = st_calloc(1, sizeof *s)))
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    s->h = h;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    s->max_body = o && o->max_body ? o->max_body : DEFAULT_MAX_BODY;
    s->head_timeout_ms =
        o && o->head_timeout_ms ? (int64_t)o->head_timeout_ms : HEAD_TIMEOUT_MS;
    if ((rc = parse_listen(listen_str, &s->host, &port, e)) ||
        (rc = copy_token(o ? o->token : NULL, &s->token, &s->token_len, e)) ||
        (rc = copy_token(o ? o->read_token : NULL, &s->read_token,
                         &s->read_token_len, e)))
        goto fail;
    if (s->token && s->read_token && strcmp(s->token, s->read_token) == 0) {
        rc = st_fail(e, STELLAR_EINVAL,
                     "http: the read token must differ from the token");
        goto fail;
    }
    if ((rc = open_listener(s, listen_str, port, &fd, e))) goto fail;
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s)) {
        rc = st_fail(e, STELLAR_EIO, "http: cannot start a thread");
        goto fail;
    }
    s->watchdog_on = true;
    /* One option and its arguments a line. */
    /* clang-format off */
    s->d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first, to catch all */
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)THREADS,
        MHD_OPTION_CONNECTION_LIMIT, max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, s,
        MHD_OPTION_END);
    /* clang-format on */
    if (!s->d) {
        rc = st_fail(e, STELLAR_EIO, "http: cannot start the server on %s",
                     listen_str);
        goto fail;
    }
    /* MHD owns the socket now and closes it at stop. */
    st_log(&h->log, STELLAR_LOG_INFO,
           "http: listening on %s (port %d)%s%s; at most %u connections, %u "
           "per client address, %lld ms for a request head",
           listen_str, s->port, s->token ? ", token ***" : "",
           s->read_token ? ", read token ***" : "", max_conns, per_ip,
           (long long)s->head_timeout_ms);
    st_free(port);
    *out = s;
    return STELLAR_OK;

fail:
    if (fd >= 0) close(fd);
    st_free(port);
    s->d = NULL;
    stellar_http_stop(s);
    return rc;
}

int stellar_http_port(const stellar_http *s)
{
    return s ? s->port : 0;
}

void stellar_http_stop(stellar_http *s)
{
    if (!s) return;
    if (s->watchdog_on) {
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->watchdog, NULL);
    }
    /* Closes every connection: on_connection() frees each conn. */
    if (s->d) MHD_stop_daemon(s->d);
    st_free(s->host);
    if (s->token) memset(s->token, 0, s->token_len);
    if (s->read_token) memset(s->read_token, 0, s->read_token_len);
    st_free(s->token);
    st_free(s->read_token);
    memset(s->sessions, 0, sizeof s->sessions);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    st_free(s);
}
