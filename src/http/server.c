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
 * 1. Host: on a loopback listen without a token, the Host header must name
 *    a loopback host (or the listen host), so a web page cannot reach the
 *    API through DNS rebinding.
 * 2. Token: when one is set (required unless listening on loopback), every
 *    request must carry it as "Authorization: Bearer T", "?token=T", or the
 *    cookie this server sets when a page is opened with ?token=T (HttpOnly,
 *    SameSite=Strict, holding the token's hex, never the raw token).
 * 3. Methods: reads are GET/HEAD, changes POST/DELETE; anything else 405.
 * 4. CSRF: a POST or DELETE needs "X-Stellar-CSRF: 1", a header that a
 *    cross-site form cannot send and a cross-site script cannot send
 *    without a CORS preflight this server never grants; an Origin header,
 *    if present, must be this server's own (scheme://Host), and
 *    Sec-Fetch-Site must not be cross-site.
 * 5. Size: a body over max_body is refused with 413 (from Content-Length
 *    at once, or while it streams); headers are limited by the connection
 *    memory limit; idle connections time out.
 * Files are served only from the embedded table, looked up by exact path:
 * there is no file system path to traverse. Every reply carries nosniff,
 * no framing, no referrer, and a Content-Security-Policy that allows only
 * this origin's script and style (no inline script).
 */
#include "http/http.h"
#include "stellar.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_LISTEN   "127.0.0.1:8080"
#define DEFAULT_MAX_BODY (64 * 1024)
#define THREADS          4
#define MAX_CONNECTIONS  128
#define IDLE_TIMEOUT_S   30
#define HEADER_MEMORY    (32 * 1024)
#define CSRF_HEADER      "X-Stellar-CSRF"
#define COOKIE_NAME      "stellar_token"

static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

struct stellar_http {
    stellar *h;
    struct MHD_Daemon *d;
    int port;      /* the bound port */
    bool loopback; /* listening on a loopback address */
    char *host;    /* the listen host as given (for the Host check) */
    char *token;   /* NULL: none */
    size_t token_len;
    char *cookie_hex; /* hex of the token: the cookie's value */
    size_t max_body;
};

/* One request's state, from its first call to its completion. */
typedef struct req_state {
    st_buf body;
    bool too_big;  /* the body passed max_body: answer 413 */
    bool by_query; /* authorized by ?token=: set the cookie */
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
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    stellar_http *s = cls;
    st_logv(&s->h->log, STELLAR_LOG_WARN, fmt, ap);
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
    if (rs && rs->by_query && s->cookie_hex) {
        char *cookie = st_asprintf("%s=%s; Path=/; HttpOnly; SameSite=Strict",
                                   COOKIE_NAME, s->cookie_hex);
        if (cookie)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
        st_free(cookie);
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
                                  const char *allow)
{
    st_http_reply r = {0};
    enum MHD_Result ret;
    st_http_error(&r, status, code, "%s", msg);
    if (allow) snprintf(r.allow, sizeof r.allow, "%s", allow);
    ret = send_reply(s, c, NULL, method, url, &r, NULL);
    st_free(r.body);
    return ret;
}

/* ------------------------------------------------------------- Checks --- */

/* 0 if the request may go on, else the error status (msg, code filled). */
static int check_request(stellar_http *s, struct MHD_Connection *c,
                         const char *method, req_state *rs, const char **code,
                         const char **msg)
{
    bool change = strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0;
    const char *v;

    /* 1. Host, against DNS rebinding. */
    if (s->loopback && !s->token && (v = header(c, MHD_HTTP_HEADER_HOST))) {
        char host[256];
        host_part(v, host, sizeof host);
        if (!is_loopback_name(s, host)) {
            *code = "EHOST";
            *msg = "this server answers only to a loopback Host (localhost, "
                   "127.0.0.1, [::1]); set a token to serve other names";
            return 403;
        }
    }

    /* 2. The token. */
    if (s->token) {
        bool ok = false;
        if ((v = header(c, MHD_HTTP_HEADER_AUTHORIZATION)) &&
            strncasecmp(v, "Bearer ", 7) == 0) {
            v += 7;
            while (*v == ' ')
                v++;
            ok = same_secret(v, strlen(v), s->token, s->token_len);
        }
        if (!ok &&
            (v = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE_NAME)))
            ok =
                same_secret(v, strlen(v), s->cookie_hex, strlen(s->cookie_hex));
        if (!ok) {
            char *q = query_arg(c, "token");
            if (q) {
                ok = rs->by_query =
                    same_secret(q, strlen(q), s->token, s->token_len);
                st_free(q);
            }
        }
        if (!ok) {
            *code = "EAUTH";
            *msg = "a token is required: send \"Authorization: Bearer "
                   "<token>\", or open the dashboard with ?token=<token>";
            return 401;
        }
    }

    /* 3. Methods. */
    if (!change && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        *code = "EMETHOD";
        *msg = "only GET and HEAD (to read), POST and DELETE (to change) are "
               "served";
        return 405;
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
                              "/metrics is read with GET", "GET, HEAD");
        st_http_metrics(s->h, &r);
    } else {
        const st_http_asset *a = find_asset(url);
        if (a && !read)
            return send_error(s, c, method, url, 405, "EMETHOD",
                              "files are read with GET", "GET, HEAD");
        if (a) return send_reply(s, c, rs, method, url, NULL, a);
        st_http_error(&r, 404, "ENOTFOUND", "no such page");
    }
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
        int status;
        if (!(rs = st_calloc(1, sizeof *rs))) return MHD_NO;
        *con_cls = rs;
        /* Refuse before reading a byte of the body (and before MHD sends
         * "100 Continue" to a client that asked). */
        if ((status = check_request(s, c, method, rs, &code, &msg)))
            return send_error(s, c, method, url, status, code, msg,
                              status == 405 ? "GET, HEAD, POST, DELETE" : NULL);
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
                          NULL);
    if (rs->body.oom)
        return send_error(s, c, method, url, 500, "ENOMEM", "out of memory",
                          NULL);
    return dispatch(s, c, rs, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_state *rs = *con_cls;
    (void)cls, (void)c, (void)toe;
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

/* Binds and listens: *fd is the socket, or -1 with the code returned. */
static int open_listener(const char *listen_str, const char *host,
                         const char *port, bool have_token, bool *loopback,
                         int *bound_port, int *fdp, stellar_error *e)
{
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd, one = 1, gai;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    *fdp = -1;
    if ((gai = getaddrinfo(host, port, &hints, &res)) || !res)
        return st_fail(e, STELLAR_EINVAL, "listen '%s': %s", listen_str,
                       gai ? gai_strerror(gai) : "no address");
    *loopback = addr_is_loopback(res->ai_addr);
    if (!*loopback && !have_token) {
        freeaddrinfo(res);
        return st_fail(e, STELLAR_EINVAL,
                       "listen %s: an address other than loopback needs a "
                       "token (anyone who can reach it could manage jobs)",
                       listen_str);
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        int rc = st_fail(e, STELLAR_EIO, "cannot listen on %s: %s", listen_str,
                         strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return rc;
    }
    *bound_port = ntohs(ss.ss_family == AF_INET6
                            ? ((struct sockaddr_in6 *)(void *)&ss)->sin6_port
                            : ((struct sockaddr_in *)(void *)&ss)->sin_port);
    freeaddrinfo(res);
    *fdp = fd;
    return STELLAR_OK;
}

static char *hex_of(const char *s, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *out = st_malloc(n * 2 + 1);
    size_t i;
    if (!out) return NULL;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[(unsigned char)s[i] >> 4];
        out[2 * i + 1] = digits[(unsigned char)s[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

int stellar_http_start(stellar *h, const stellar_http_options *o,
                       stellar_http **out, stellar_error *e)
{
    const char *listen_str =
        o && o->listen && *o->listen ? o->listen : DEFAULT_LISTEN;
    const char *token = o && o->token && *o->token ? o->token : NULL;
    stellar_http *s = NULL;
    char *port = NULL;
    int fd = -1, rc;

    st_err_clear(e);
    if (out) *out = NULL;
    if (!h || !out)
        return st_fail(e, STELLAR_EINVAL, "http: a handle and out are needed");
    if (!(s = st_calloc(1, sizeof *s)))
        return st_fail(e, STELLAR_ENOMEM, "out of memory");
    s->h = h;
    s->max_body = o && o->max_body ? o->max_body : DEFAULT_MAX_BODY;
    if ((rc = parse_listen(listen_str, &s->host, &port, e))) goto fail;
    if (token) {
        s->token_len = strlen(token);
        if (!(s->token = st_strdup(token)) ||
            !(s->cookie_hex = hex_of(token, s->token_len))) {
            rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
            goto fail;
        }
    }
    if ((rc = open_listener(listen_str, s->host, port, s->token != NULL,
                            &s->loopback, &s->port, &fd, e)))
        goto fail;
    /* One option and its arguments a line. */
    /* clang-format off */
    s->d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first, to catch all */
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)THREADS,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, s,
        MHD_OPTION_END);
    /* clang-format on */
    if (!s->d) {
        rc = st_fail(e, STELLAR_EIO, "http: cannot start the server on %s",
                     listen_str);
        goto fail;
    }
    /* MHD owns the socket now and closes it at stop. */
    st_log(&h->log, STELLAR_LOG_INFO, "http: listening on %s (port %d)%s",
           listen_str, s->port, s->token ? ", token required" : "");
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
    if (s->d) MHD_stop_daemon(s->d);
    st_free(s->host);
    if (s->token) memset(s->token, 0, s->token_len);
    st_free(s->token);
    st_free(s->cookie_hex);
    st_free(s);
}
