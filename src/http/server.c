/*
 * server.c: the HTTP server of libstellar (issue #7): the JSON API under
 * /api/ (api.c), Prometheus /metrics (prom.c) and the dashboard, whose
 * files are compiled in (cmake/embed.cmake). This file holds the
 * libmicrohttpd daemon: start and stop, the request handler that reads
 * bodies and routes each request, and the replies with their headers.
 *
 * libmicrohttpd runs it in its own threads (a small pool, so one slow
 * backend call does not hold every client); handlers only call the public,
 * thread-safe API of the handle.
 *
 * Security, in the order a request meets it (first call of the handler,
 * before any body is read):
 * 0. Connections (issue #17): per-address and total limits, and a
 *    deadline for the request head that a watchdog enforces: conns.c.
 * 1-4. Host, tokens and sessions, methods, CSRF: auth.c.
 * 5. Size: a body over max_body is refused with 413 (from Content-Length
 *    at once, or while it streams); headers are limited by the connection
 *    memory limit; idle connections time out.
 * Every change that reaches the API is logged (INFO, "http audit: ...")
 * with its status, the kind of token and the client address. Tokens are
 * never logged or echoed.
 *
 * Files are served only from the embedded table, looked up by exact path:
 * there is no file system path to traverse. Every reply carries nosniff,
 * no framing, no referrer, and a Content-Security-Policy that allows only
 * this origin's script and style (no inline script).
 */
#include "http/server.h"
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

static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

/* ----------------------------------------------------------- Helpers --- */

/* Query arguments, for api.c: MHD leaves them percent-encoded (see
 * keep_escapes), so decode here. */
char *st_http_query_arg(void *ud, const char *name)
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
        if (!st_http_session_new(s, rs->new_session, id)) {
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
        st_http_req req = {method, url + 5,    st_http_query_arg,
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
               r.status, st_http_kind_name(rs->auth), *rs->via ? " via " : "",
               rs->via, rs->addr);
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
        conn *cn = st_http_conn_of(c);
        int status, retry_s = 0;
        if (!st_http_conn_head_done(s, cn)) return MHD_NO; /* too late: cut */
        if (!(rs = st_calloc(1, sizeof *rs))) return MHD_NO;
        *con_cls = rs;
        rs->addr = cn ? cn->addr : "?";
        /* Refuse before reading a byte of the body (and before MHD sends
         * "100 Continue" to a client that asked). */
        if ((status = st_http_check_request(s, c, method, url, rs, &code, &msg,
                                            &retry_s)))
            return send_error(
                s, c, method, url, status, code, msg,
                status == 405 ? "GET, HEAD, POST, PUT, DELETE" : NULL, retry_s);
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
    conn *cn = st_http_conn_of(c);
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
    if (pthread_create(&s->watchdog, NULL, st_http_watchdog_main, s)) {
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
        MHD_OPTION_NOTIFY_CONNECTION, st_http_on_connection, s,
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
    /* Closes every connection: st_http_on_connection() frees each conn. */
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
