/*
 * cmd_control.c: queue control (issue 15): `stellar pause QUEUE [--for
 * MS]`, `stellar resume QUEUE`, `stellar limit TARGET [--concurrency N]
 * [--rate N/DURATION] | --clear`, `stellar limits`; and the "limits"
 * section of stellar.json, which `stellar run` applies at start. The rules
 * and their messages are the library's (src/control.c).
 */
#include "cli.h"
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------ pause, resume --- */

int cmd_pause(cli *c)
{
    const char *queue = c->argv[0], *f = cli_flag_get(c, "for");
    stellar_error e = {0};
    int64_t for_ms = 0;
    int rc;

    if (f && (!cli_parse_int(f, &for_ms) || for_ms <= 0))
        return cli_usage(c, "--for must be a whole number of ms > 0 (got '%s')",
                         f);
    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_pause(c->h, queue, for_ms, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    if (for_ms)
        return out_result(c,
                          json_pack("{s:s, s:b, s:I}", "queue", queue, "paused",
                                    1, "paused_until",
                                    (json_int_t)(st_now_ms() + for_ms)),
                          "paused %s for %lld ms", queue, (long long)for_ms);
    return out_result(c,
                      json_pack("{s:s, s:b, s:n}", "queue", queue, "paused", 1,
                                "paused_until"),
                      "paused %s until resumed", queue);
}

int cmd_resume(cli *c)
{
    const char *queue = c->argv[0];
    stellar_error e = {0};
    bool was = false;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_resume(c->h, queue, &was, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_result(c,
                      json_pack("{s:s, s:b, s:b}", "queue", queue, "paused", 0,
                                "was_paused", was),
                      was ? "resumed %s" : "%s was not paused", queue);
}

/* ------------------------------------------------------ limit, limits --- */

/* Reads --concurrency and --rate (or a stellar.json entry's values) into
 * l; fills e and returns EINVAL on a bad value. */
static int limit_from(const char *target, const char *conc, const char *rate,
                      stellar_limit *l, stellar_error *e)
{
    memset(l, 0, sizeof *l);
    if (conc && (!cli_parse_int(conc, &l->concurrency) || l->concurrency < 1))
        return st_fail(e, STELLAR_EINVAL,
                       "limit %s: concurrency must be a whole number >= 1 "
                       "(got '%s')",
                       target, conc);
    if (rate) return stellar_rate_parse(rate, &l->rate, &l->window_ms, e);
    return STELLAR_OK;
}

int cmd_limit(cli *c)
{
    const char *target = c->argv[0];
    const char *conc = cli_flag_get(c, "concurrency");
    const char *rate = cli_flag_get(c, "rate");
    stellar_error e = {0};
    stellar_limit l;
    char text[64];
    int64_t n = 0;
    int rc;

    if ((rc = stellar_target_check(target, &e)) != STELLAR_OK)
        return cli_usage(c, "%s", e.msg);
    if (cli_flag_has(c, "clear")) {
        if (conc || rate)
            return cli_usage(c, "--clear takes no --concurrency or --rate");
        if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
        if ((rc = stellar_limit_clear(c->h, target, &n, &e)) != STELLAR_OK)
            return cli_error(c, rc, &e);
        if (!n)
            return cli_notfound(c, "no limit on %s (see 'stellar limits')",
                                target);
        return out_result(
            c,
            json_pack("{s:s, s:I}", "target", target, "removed", (json_int_t)n),
            "removed the limit on %s", target);
    }
    if (!conc && !rate)
        return cli_usage(c, "give --concurrency N and/or --rate N/DURATION, "
                            "or --clear");
    if (limit_from(target, conc, rate, &l, &e) != STELLAR_OK)
        return cli_usage(c, "%s", e.msg);
    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_limit_set(c->h, target, &l, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    stellar_rate_format(l.rate, l.window_ms, text, sizeof text);
    return out_result(
        c,
        json_pack("{s:s, s:o, s:o}", "target", target, "concurrency",
                  l.concurrency ? json_integer(l.concurrency) : json_null(),
                  "rate", l.rate ? json_string(text) : json_null()),
        "limit %s: concurrency %s, rate %s", target, conc ? conc : "-",
        l.rate ? text : "-");
}

static int limits_table(cli *c, json_t *limits)
{
    out_table *t = out_table_new(5, "TARGET", ">CONCURRENCY", ">RUNNING",
                                 "RATE", ">STARTED");
    const char *target;
    json_t *l;

    (void)c;
    if (json_object_size(limits) == 0) {
        out_table_free(t);
        printf("no limits\n");
        return CLI_OK;
    }
    json_object_foreach(limits, target, l)
    {
        char b1[64], b2[64], b3[64];
        out_table_row(t, target,
                      out_scalar(json_object_get(l, "concurrency"), b1),
                      out_scalar(json_object_get(l, "running"), b2),
                      json_string_value(json_object_get(l, "rate")),
                      out_scalar(json_object_get(l, "started"), b3));
    }
    return out_print(t);
}

int cmd_limits(cli *c)
{
    stellar_error e = {0};
    json_t *limits = NULL;
    int rc;

    if ((rc = cli_open(c, NULL, false)) != CLI_OK) return rc;
    if ((rc = stellar_limits(c->h, &limits, &e)) != STELLAR_OK)
        return cli_error(c, rc, &e);
    return out_show(c, limits, limits_table);
}

/* ------------------------------------------------ stellar.json limits --- */

int cli_apply_limits(cli *c)
{
    json_t *all = c->config ? json_object_get(c->config, "limits") : NULL, *v;
    const char *target;
    stellar_error e = {0};
    int rc;

    if (!all) return CLI_OK;
    if (!json_is_object(all))
        return cli_config_fail(c, "limits",
                               "must be an object: {\"task:NAME\": "
                               "{\"concurrency\": N, \"rate\": \"N/1m\"}}");
    json_object_foreach(all, target, v)
    {
        json_t *conc = json_object_get(v, "concurrency");
        json_t *rate = json_object_get(v, "rate");
        char path[300], num[32];
        stellar_limit l;
        const char *key;
        json_t *x;

        snprintf(path, sizeof path, "limits.%s", target);
        if (stellar_target_check(target, &e) != STELLAR_OK)
            return cli_config_fail(c, path, "%s", e.msg);
        if (!json_is_object(v))
            return cli_config_fail(c, path,
                                   "must be an object with concurrency "
                                   "and/or rate");
        json_object_foreach(v, key, x)
        {
            if (strcmp(key, "concurrency") && strcmp(key, "rate"))
                return cli_config_fail(c, path,
                                       "has '%s': a limit has concurrency "
                                       "and rate",
                                       key);
        }
        if ((conc && !json_is_integer(conc)) || (rate && !json_is_string(rate)))
            return cli_config_fail(c, path,
                                   "wants concurrency a number and rate a "
                                   "string (\"100/1m\")");
        if (!conc && !rate)
            return cli_config_fail(c, path, "needs concurrency or rate");
        snprintf(num, sizeof num, "%lld",
                 (long long)(conc ? json_integer_value(conc) : 0));
        if (limit_from(target, conc ? num : NULL,
                       rate ? json_string_value(rate) : NULL, &l,
                       &e) != STELLAR_OK)
            return cli_config_fail(c, path, "%s", e.msg);
        if ((rc = stellar_limit_set(c->h, target, &l, &e)) != STELLAR_OK)
            return cli_error(c, rc, &e);
        cli_logf(STELLAR_LOG_INFO, "limit %s from stellar.json", target);
    }
    return CLI_OK;
}
