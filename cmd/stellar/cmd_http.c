/*
 * cmd_http.c: the HTTP server (JSON API, /metrics, dashboard) in `stellar
 * run`, and `stellar dashboard`, which serves it without TaskProcessors.
 *
 * Where it listens: --http HOST:PORT, else the app config's "http" section
 * ({"listen": "127.0.0.1:8080", "token": "...", "readToken": "..."}),
 * where `run` starts it only if the section is there and `dashboard`
 * always (default 127.0.0.1:8080). --no-http turns it off for `run`. The
 * token: --http-token, else $STELLAR_HTTP_TOKEN (kept out of `ps`), else
 * the config's; the read-only token likewise: --http-read-token, else
 * $STELLAR_HTTP_READ_TOKEN, else readToken. The library refuses a
 * non-loopback address without a token, or with one under 16 characters.
 * Tokens are never printed: messages show "***".
 *
 * A second `stellar run` of an app (more processors on one machine) finds
 * the config's address taken by the first: when the address comes from
 * stellar.json and another socket listens there, `run` says so in one line
 * and goes on without HTTP. An address given with --http, and `stellar
 * dashboard`, whose only work is serving, fail instead.
 *
 * The server is started after stellar_start() and stopped before
 * stellar_stop() (cli_cleanup() stops it on every other path), so it
 * never serves over a handle being torn down. Without libmicrohttpd
 * (STELLAR_HAVE_HTTP undefined) asking for it is an error, and the
 * config's section is ignored with a warning.
 */
#include "cli.h"
#include "internal.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:8080"

/* What was asked for. */
typedef struct http_want {
    bool on;
    const char *listen;     /* borrowed from argv or the config */
    bool from_config;       /* stellar.json's http section chose it */
    const char *token;      /* NULL: none */
    const char *read_token; /* NULL: none */
} http_want;

/* http.KEY of stellar.json, a string, into *out (unchanged if absent). */
static int config_token(cli *c, json_t *sec, const char *key, const char **out)
{
    json_t *v = json_object_get(sec, key);
    char name[32];

    if (!v || json_is_null(v)) return CLI_OK;
    snprintf(name, sizeof name, "http.%s", key);
    if (!json_is_string(v)) return cli_config_fail(c, name, "must be a string");
    *out = json_string_value(v);
    return CLI_OK;
}

/* A token from --NAME (which needs HTTP on), else from the environment's
 * env, over what stellar.json gave. */
static int flag_token(cli *c, bool on, const char *name, const char *flag,
                      const char *env, const char **out)
{
    if (flag) {
        if (!on)
            return cli_usage(c,
                             "--%s needs --http HOST:PORT (or http in "
                             "stellar.json)",
                             name);
        *out = flag;
    } else if (env && *env) {
        *out = env;
    }
    return CLI_OK;
}

static int resolve(cli *c, bool dashboard, http_want *w)
{
    json_t *sec = c->config ? json_object_get(c->config, "http") : NULL;
    const char *flag = cli_flag_get(c, "http");
    const char *token = cli_flag_get(c, "http-token");
    const char *read_token = cli_flag_get(c, "http-read-token");
    const char *env = getenv("STELLAR_HTTP_TOKEN");
    const char *read_env = getenv("STELLAR_HTTP_READ_TOKEN");
    json_t *v;
    int rc;

    w->on = dashboard;
    w->listen = DEFAULT_LISTEN;
    w->from_config = false;
    w->token = w->read_token = NULL;
    if (sec && !json_is_null(sec) && !json_is_false(sec)) {
        if (!json_is_object(sec))
            return cli_config_fail(c, "http",
                                   "must be an object such as {\"listen\": "
                                   "\"127.0.0.1:8080\"}, or false");
        v = json_object_get(sec, "listen");
        if (v && !json_is_null(v)) {
            if (!json_is_string(v) || !*json_string_value(v))
                return cli_config_fail(c, "http.listen",
                                       "must be \"HOST:PORT\"");
            w->listen = json_string_value(v);
        }
        if ((rc = config_token(c, sec, "token", &w->token)) ||
            (rc = config_token(c, sec, "readToken", &w->read_token)))
            return rc;
        w->on = true;
        w->from_config = true;
    }
    if (cli_flag_has(c, "no-http")) {
        if (flag || token || read_token)
            return cli_usage(c, "--no-http contradicts --http, --http-token "
                                "and --http-read-token");
        w->on = false;
        return CLI_OK;
    }
    if (flag) {
        if (!*flag) return cli_usage(c, "--http wants HOST:PORT");
        w->listen = flag;
        w->from_config = false;
        w->on = true;
    }
    if ((rc = flag_token(c, w->on, "http-token", token, env, &w->token)) ||
        (rc = flag_token(c, w->on, "http-read-token", read_token, read_env,
                         &w->read_token)))
        return rc;
    if (w->token && !*w->token) w->token = NULL;
    if (w->read_token && !*w->read_token) w->read_token = NULL;
#ifndef STELLAR_HAVE_HTTP
    if (w->on && (flag || dashboard))
        return cli_fail(c, "this stellar was built without HTTP support "
                           "(libmicrohttpd)");
#endif
    return CLI_OK;
}

#ifdef STELLAR_HAVE_HTTP
/* The host of a listen string, for the address in the log. */
static void host_of(const char *listen, char *out, size_t n)
{
    const char *colon = strrchr(listen, ':');
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        snprintf(out, n, "%.*s", end ? (int)(end - listen + 1) : 0, listen);
    } else if (colon && colon != listen) {
        snprintf(out, n, "%.*s", (int)(colon - listen), listen);
    } else {
        snprintf(out, n, "127.0.0.1");
    }
}

/* Whether another socket listens on `listen`, a string the library has
 * parsed already ("host:port", "[v6]:port", ":port", "port"): a bind of
 * our own there, with the library's options, fails with EADDRINUSE. Asked
 * only after the library failed to listen, to tell that case from the
 * others. */
static bool address_in_use(const char *listen)
{
    char host[128], port[16];
    const char *colon = strrchr(listen, ':');
    struct addrinfo hints, *res = NULL;
    bool in_use = false;
    int fd, one = 1;

    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (!end) return false;
        snprintf(host, sizeof host, "%.*s", (int)(end - listen - 1),
                 listen + 1);
    } else if (colon && colon != listen) {
        snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    } else {
        snprintf(host, sizeof host, "127.0.0.1");
    }
    snprintf(port, sizeof port, "%s", colon ? colon + 1 : listen);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res) return false;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
        bind(fd, res->ai_addr, res->ai_addrlen) < 0)
        in_use = errno == EADDRINUSE;
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return in_use;
}
#endif

int cli_http_check(cli *c, bool dashboard)
{
    http_want w;
    return resolve(c, dashboard, &w);
}

int cli_http_start(cli *c, bool dashboard)
{
    http_want w;
    int rc;

    if ((rc = resolve(c, dashboard, &w)) != CLI_OK) return rc;
    if (!w.on) return CLI_OK;
#ifdef STELLAR_HAVE_HTTP
    {
        stellar_http_options ho = {0};
        stellar_error e = {0};
        char host[128];

        ho.listen = w.listen;
        ho.token = w.token;
        ho.read_token = w.read_token;
        rc = stellar_http_start(c->h, &ho, &c->http, &e);
        if (rc != STELLAR_OK) {
            c->http = NULL;
            if (rc == STELLAR_EIO && address_in_use(w.listen)) {
                if (w.from_config && !dashboard) {
                    cli_logf(STELLAR_LOG_WARN,
                             "http: %s (from stellar.json) is in use by "
                             "another process (another `stellar run` of "
                             "this app serving the dashboard?); this "
                             "process runs without HTTP",
                             w.listen);
                    return CLI_OK;
                }
                return cli_fail(c,
                                "%s%s: the address is in use (another "
                                "process listens there); choose another "
                                "port, or port 0 for any free one",
                                cli_flag_get(c, "http") ? "--http " : "",
                                w.listen);
            }
            return cli_fail(c, "cannot serve HTTP on %s: %s", w.listen,
                            e.msg[0] ? e.msg : stellar_strerror(rc));
        }
        host_of(w.listen, host, sizeof host);
        cli_logf(STELLAR_LOG_INFO, "dashboard and API on http://%s:%d/%s%s",
                 host, stellar_http_port(c->http),
                 w.token ? " (token ***)" : "",
                 w.read_token ? " (read token ***)" : "");
        return CLI_OK;
    }
#else
    /* Only the config's section gets here (resolve() refused the rest). */
    cli_logf(STELLAR_LOG_WARN, "stellar.json has an http section, but this "
                               "stellar was built without HTTP support");
    return CLI_OK;
#endif
}

void cli_http_stop(cli *c)
{
#ifdef STELLAR_HAVE_HTTP
    stellar_http_stop(c->http);
#endif
    c->http = NULL;
}

/* ---------------------------------------------------------- dashboard --- */

int cmd_dashboard(cli *c)
{
    stellar_options o = {0};
    sigset_t set;
    char *shown;
    int rc, sig = 0;

    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    c->log_level = STELLAR_LOG_INFO;
    if ((rc = cli_app_find(c, false)) != CLI_OK) return rc;
    /* Build (with signals still default), then block them before any
     * thread starts, so that only sigwait() below sees them. */
    if ((rc = cli_backend_resolve(c)) != CLI_OK) return rc;
    if (c->app_dir && (rc = cli_build_tasks(c)) != CLI_OK) return rc;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    o.processors = -1; /* serve only: no TaskProcessors, no scheduler */
    o.no_scheduler = true;
    if ((rc = cli_open(c, &o, true)) != CLI_OK) return rc;
    if ((rc = cli_http_start(c, true)) != CLI_OK) return rc;
    shown = st_url_redact(stellar_url(c->h));
    cli_logf(STELLAR_LOG_INFO, "serving %s%s%s until SIGINT or SIGTERM",
             shown ? shown : "the backend", c->app_dir ? " for the app " : "",
             c->app_dir ? c->app_dir : "");
    st_free(shown);
    do {
        if (sigwait(&set, &sig) != 0) sig = 0;
    } while (sig != SIGINT && sig != SIGTERM);
    cli_logf(STELLAR_LOG_INFO, "%s: stopping",
             sig == SIGINT ? "SIGINT" : "SIGTERM");
    cli_http_stop(c);
    return CLI_OK;
}
