/*
 * auth.c: who may ask the HTTP server what: checks 1 to 4 of server.c,
 * run on a request's first call before any body is read, with the
 * sessions that the dashboard's cookie names and the back-off of
 * addresses that sent a wrong token.
 *
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
 * 3. Methods: reads are GET/HEAD, changes POST/PUT/DELETE; else 405.
 *    The read token may only read: a change answers 403 (EREADONLY).
 * 4. CSRF: a POST, PUT or DELETE needs "X-Stellar-CSRF: 1", a header that a
 *    cross-site form cannot send and a cross-site script cannot send
 *    without a CORS preflight this server never grants; an Origin header,
 *    if present, must be this server's own (scheme://Host), and
 *    Sec-Fetch-Site must not be cross-site.
 *
 * Sessions and failures live in the server's state under its lock
 * (server.h), held only for short loops over them.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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
bool st_http_session_new(stellar_http *s, enum auth_kind kind, char *id)
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

/* ------------------------------------------------------------- Checks --- */

static bool is_page(const char *url)
{
    return strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0;
}

const char *st_http_kind_name(enum auth_kind k)
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
int st_http_check_request(stellar_http *s, struct MHD_Connection *c,
                          const char *method, const char *url, req_state *rs,
                          const char **code, const char **msg, int *retry_s)
{
    bool change = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                  strcmp(method, "DELETE") == 0;
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
            offered = st_http_query_arg(c, "token");
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
        *msg = "only GET and HEAD (to read), POST, PUT and DELETE (to "
               "change) are served";
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
            *msg = "a POST, PUT or DELETE needs the header X-Stellar-CSRF: 1";
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
