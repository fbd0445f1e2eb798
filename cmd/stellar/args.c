/*
 * args.c: the command line, and the one-line errors with their exit codes.
 *
 * Global options may appear anywhere, before or after the command name; a
 * command's own flags are those listed in its table row. `--name=value` and
 * `--name value` are the same; flag names, like command names, ignore case,
 * '-' and '_'. `--` ends the options. An argument such as `-5` is a number,
 * not an option, so that a negative delay reaches the command and gets its
 * own message.
 */
#include "cli.h"
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char global_spec[] = "backend=,app=,json,help,h,version";

/* Looks `name` (n bytes) up in a spec such as "module=,force". On a match,
 * returns the spec entry as a new string (without '=') and sets *value. */
static char *spec_find(const char *spec, const char *name, size_t n,
                       bool *value)
{
    char want[64];
    const char *p = spec;

    if (n >= sizeof want) return NULL;
    memcpy(want, name, n);
    want[n] = '\0';
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        bool takes = len > 0 && p[len - 1] == '=';
        char entry[64];
        size_t elen = takes ? len - 1 : len;
        if (elen < sizeof entry) {
            memcpy(entry, p, elen);
            entry[elen] = '\0';
            if (cli_name_eq(entry, want)) {
                *value = takes;
                return st_strdup(entry);
            }
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

static bool is_option(const char *a)
{
    if (a[0] != '-' || a[1] == '\0') return false;
    return !isdigit((unsigned char)a[1]) && a[1] != '.';
}

/* The index of the command name in argv, skipping global options and their
 * values, or 0 if there is none. */
static int find_command(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) return i + 1 < argc ? i + 1 : 0;
        if (is_option(a)) {
            const char *name = a + (a[1] == '-' ? 2 : 1);
            size_t n = strcspn(name, "=");
            bool takes = false;
            char *g = spec_find(global_spec, name, n, &takes);
            st_free(g);
            if (g && takes && !name[n]) i++;
            continue;
        }
        return i;
    }
    return 0;
}

static void set_global(cli *c, const char *name, const char *value)
{
    if (strcmp(name, "backend") == 0)
        c->backend_opt = value;
    else if (strcmp(name, "app") == 0)
        c->app_opt = value;
    else if (strcmp(name, "json") == 0)
        c->json = true;
    else if (strcmp(name, "help") == 0 || strcmp(name, "h") == 0)
        c->help = true;
    else if (strcmp(name, "version") == 0)
        c->version = true;
}

int cli_parse(cli *c, int argc, char **argv)
{
    int i, cmd_at = find_command(argc, argv);
    bool dashdash = false;

    c->argv = st_calloc((size_t)argc + 1, sizeof *c->argv);
    c->flags = st_calloc((size_t)argc + 1, sizeof *c->flags);
    if (!c->argv || !c->flags) return cli_fail(c, "out of memory");
    if (cmd_at && strcmp(argv[cmd_at], "help") == 0) {
        /* `stellar help [COMMAND]` is `stellar [COMMAND] --help`. */
        c->help = true;
        if (cmd_at + 1 < argc && !is_option(argv[cmd_at + 1]))
            cmd_at++;
        else
            cmd_at = 0;
    }
    if (cmd_at) {
        c->cmd = cli_find(argv[cmd_at]);
        if (!c->cmd) return cli_usage(c, "unknown command '%s'", argv[cmd_at]);
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *name, *value = NULL;
        size_t n;
        bool takes = false, global;
        char *canon;

        if (i == cmd_at) continue;
        if (!dashdash && strcmp(a, "--") == 0) {
            dashdash = true;
            continue;
        }
        if (dashdash || !is_option(a)) {
            c->argv[c->argc++] = argv[i];
            continue;
        }
        if (a[1] != '-' && strcmp(a, "-h") != 0)
            return cli_usage(c, "unknown option '%s'", a);
        name = a + (a[1] == '-' ? 2 : 1);
        n = strcspn(name, "=");
        if (name[n] == '=') value = name + n + 1;
        canon = spec_find(global_spec, name, n, &takes);
        global = canon != NULL;
        if (!canon && c->cmd) canon = spec_find(c->cmd->flags, name, n, &takes);
        if (!canon)
            return cli_usage(c, "unknown option '--%.*s'", (int)n, name);
        if (takes && !value) {
            if (i + 1 >= argc || i + 1 == cmd_at) {
                cli_usage(c, "option '--%s' needs a value", canon);
                st_free(canon);
                return CLI_USAGE;
            }
            value = argv[++i];
        } else if (!takes && value) {
            cli_usage(c, "option '--%s' takes no value", canon);
            st_free(canon);
            return CLI_USAGE;
        }
        if (global) {
            set_global(c, canon, value);
            st_free(canon);
        } else {
            c->flags[c->nflags].name = canon; /* freed by cli_cleanup() */
            c->flags[c->nflags].value = value ? value : "";
            c->nflags++;
        }
    }
    if (c->cmd && !c->help && !c->version) {
        if (c->argc < c->cmd->min_args)
            return cli_usage(c, "missing arguments; usage: stellar %s %s",
                             c->cmd->name, c->cmd->args);
        if (c->cmd->max_args >= 0 && c->argc > c->cmd->max_args)
            return cli_usage(c, "too many arguments; usage: stellar %s %s",
                             c->cmd->name, c->cmd->args);
    }
    return CLI_OK;
}

const char *cli_flag_get(const cli *c, const char *name)
{
    size_t i = c->nflags;
    while (i-- > 0)
        if (cli_name_eq(c->flags[i].name, name)) return c->flags[i].value;
    return NULL;
}

bool cli_flag_has(const cli *c, const char *name)
{
    return cli_flag_get(c, name) != NULL;
}

bool cli_parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!s || !*s || isspace((unsigned char)*s)) return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = (int64_t)v;
    return true;
}

/* ------------------------------------------------------------ Errors --- */

static void vreport(const cli *c, bool hint, const char *fmt, va_list ap)
    STELLAR_PRINTF(3, 0);

static void vreport(const cli *c, bool hint, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (c && c->cmd)
        fprintf(stderr, "stellar %s: %s", c->cmd->name, msg);
    else
        fprintf(stderr, "stellar: %s", msg);
    if (hint)
        fprintf(stderr, " (see 'stellar %s%s--help')",
                c && c->cmd ? c->cmd->name : "", c && c->cmd ? " " : "");
    fputc('\n', stderr);
}

int cli_usage(const cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, true, fmt, ap);
    va_end(ap);
    return CLI_USAGE;
}

int cli_fail(const cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, false, fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_notfound(const cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, false, fmt, ap);
    va_end(ap);
    return CLI_NOTFOUND;
}

int cli_error(const cli *c, int rc, const stellar_error *e)
{
    const char *msg = e && e->msg[0] ? e->msg : stellar_strerror(rc);
    const char *colon = strstr(msg, ": ");

    /* "stellar delLock: delLock: ..." says the name once too often. */
    if (c && c->cmd && colon) {
        char head[64];
        size_t n = (size_t)(colon - msg);
        if (n < sizeof head) {
            memcpy(head, msg, n);
            head[n] = '\0';
            if (cli_name_eq(head, c->cmd->name)) msg = colon + 2;
        }
    }
    switch (rc) {
    case STELLAR_ENOTFOUND:
    case STELLAR_ENOTASK: return cli_notfound(c, "%s", msg);
    case STELLAR_EINVAL: return cli_usage(c, "%s", msg);
    default: return cli_fail(c, "%s", msg);
    }
}

/* Reads all of f into a new string; *n its length. NULL with errno set on
 * failure. */
static char *read_all(FILE *f, size_t *n)
{
    st_buf b = {0};
    char chunk[65536];
    size_t got;

    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        st_buf_put(&b, chunk, got);
    if (ferror(f)) {
        int saved = errno ? errno : EIO;
        st_buf_free(&b);
        errno = saved;
        return NULL;
    }
    *n = b.len;
    if (b.oom) errno = ENOMEM;
    return st_buf_take(&b);
}

/* "@FILE", "-" or "@-": the params text, into c->params_text. */
static int read_params(cli *c, const char **params)
{
    const char *path = **params == '@' ? *params + 1 : NULL;
    bool in = strcmp(*params, "-") == 0 || (path && strcmp(path, "-") == 0);
    const char *what = in ? "standard input" : path;
    FILE *f = in ? stdin : fopen(path, "rb");
    size_t n = 0;
    char *s;

    if (!in && !*path) return cli_usage(c, "PARAMS_JSON '@' names no file");
    if (!f)
        return cli_usage(c, "cannot read PARAMS_JSON from %s: %s", path,
                         strerror(errno));
    errno = 0;
    s = read_all(f, &n);
    if (!s) {
        int err = errno;
        if (!in) fclose(f);
        return cli_usage(c, "cannot read PARAMS_JSON from %s: %s", what,
                         strerror(err));
    }
    if (!in) fclose(f);
    if (memchr(s, '\0', n)) {
        st_free(s);
        return cli_usage(c, "PARAMS_JSON from %s holds a NUL byte", what);
    }
    st_free(c->params_text);
    c->params_text = s;
    *params = s;
    return CLI_OK;
}

int cli_check_params(cli *c, const char **params)
{
    stellar_error e = {0};
    json_t *p;
    bool object;
    int rc;

    if (!*params) return CLI_OK;
    if ((**params == '@' || strcmp(*params, "-") == 0) &&
        (rc = read_params(c, params)) != CLI_OK)
        return rc;
    /* The library's parser, so that what passes here passes there. */
    p = st_json_parse(*params, strlen(*params), &e);
    if (!p) return cli_usage(c, "PARAMS_JSON is not valid JSON: %s", e.msg);
    object = json_is_object(p);
    json_decref(p);
    if (!object)
        return cli_usage(c, "PARAMS_JSON must be a JSON object, such as "
                            "'{\"to\":\"a@b.c\"}'");
    return CLI_OK;
}
