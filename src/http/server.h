/*
 * server.h: what the HTTP server's files (server.c, auth.c, conns.c) share
 * and nothing else includes: the server's limits, its state and the
 * functions one file calls in another. libmicrohttpd's types appear here,
 * unlike in http.h, which api.c and prom.c see.
 *
 * Threads and locks: libmicrohttpd's threads call the handlers; one
 * watchdog thread enforces the head deadline. `lock` guards the
 * connection list, the sessions and the failed-login table; it is held
 * only for short loops over them, never while logging or calling the
 * library.
 */
#ifndef ST_HTTP_SERVER_H
#define ST_HTTP_SERVER_H

#include "http/http.h"

#include <microhttpd.h>
#include <pthread.h>

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

/* ------------------------------------------------- server.c (routing) --- */

/* Query argument name of the request ud (an MHD_Connection), decoded; new
 * string (st_free) or NULL. */
char *st_http_query_arg(void *ud, const char *name);

/* --------------------------------------------- auth.c (who may ask) --- */

/* Opens a session of kind for a new cookie: its id (32 hex digits) in id.
 * False if there is no randomness to be had. */
bool st_http_session_new(stellar_http *s, enum auth_kind kind, char *id);
/* "admin token", "read token" or "no token", for the audit log. */
const char *st_http_kind_name(enum auth_kind k);
/* Checks 1-4 of server.c on a request's first call: 0 if it may go on,
 * else the error status (*code, *msg filled; *retry_s with 429). Fills
 * rs->auth, rs->via and rs->new_session. */
int st_http_check_request(stellar_http *s, struct MHD_Connection *c,
                          const char *method, const char *url, req_state *rs,
                          const char **code, const char **msg, int *retry_s);

/* ------------------------------- conns.c (connections and the watchdog) --- */

/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback (cls: the server):
 * keeps the list of open connections with their head deadlines. */
void st_http_on_connection(void *cls, struct MHD_Connection *c,
                           void **socket_context,
                           enum MHD_ConnectionNotificationCode toe);
/* The conn of c; NULL if there is none (out of memory at accept). */
conn *st_http_conn_of(struct MHD_Connection *c);
/* The head is in: no deadline while the request is answered. False if the
 * watchdog has cut the connection meanwhile. */
bool st_http_conn_head_done(stellar_http *s, conn *cn);
/* The watchdog thread (arg: the server): closes connections whose request
 * head is late, until s->stopping. */
void *st_http_watchdog_main(void *arg);

#endif /* ST_HTTP_SERVER_H */
