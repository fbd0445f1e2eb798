/*
 * conns.c: the HTTP server's connections (issue #17): the list of open
 * ones, and the watchdog thread that closes those whose request head is
 * late. Check 0 of server.c:
 *
 * 0. Connections (issue #17): one client address may hold at most
 *    per_ip_connections (16) at once, all clients max_connections (256);
 *    the request head (request line and headers) must arrive within
 *    head_timeout_ms (5 s) of the connection's accept (or of the previous
 *    request's end, on a kept-alive connection), however steadily its
 *    bytes trickle in. libmicrohttpd's own timeout is an idle timeout,
 *    reset by every byte, so a watchdog thread here closes (408, then
 *    shutdown) the connections whose head is late: slow clients cannot
 *    hold every slot before anyone has authenticated.
 *
 * The two limits are libmicrohttpd's options, set where server.c starts
 * the daemon; the deadline is kept here. The watchdog sends a 408 and shuts
 * down a dup of the socket taken at accept, so a number reused by a new
 * connection is never hit. The server's lock guards the list (server.h).
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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
void st_http_on_connection(void *cls, struct MHD_Connection *c,
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

conn *st_http_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

/* The head is in: no deadline while the request is answered. False if the
 * watchdog has cut the connection meanwhile. */
bool st_http_conn_head_done(stellar_http *s, conn *cn)
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
void *st_http_watchdog_main(void *arg)
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
