/*
 * cmd_cron.c: `stellar cron next EXPR [--tz ZONE] [--from MS] [--count N]`,
 * the next fire times of a cron expression, without a backend or an app.
 *
 * It prints what the scheduler will use (src/cron.c, src/tz.c), so that a
 * schedule can be checked before it is deployed: one line per fire time,
 * "MS LOCAL_ISO_8601_WITH_OFFSET", or with --json an array of ms numbers.
 * Bad usage, a bad expression or an unknown zone: one line on stderr and
 * exit status 2.
 */
#include "cli.h"
#include "cron.h"
#include "internal.h"
#include "tz.h"

#include <string.h>

#define COUNT_MAX 10000

int cmd_cron(cli *c)
{
    const char *tz_opt = cli_flag_get(c, "tz"), *s;
    stellar_error e = {0};
    st_cron expr;
    st_tz *z = NULL;
    int64_t from, count = 5, i, t;
    json_t *arr = NULL;
    int rc = CLI_OK;

    if (!cli_name_eq(c->argv[0], "next"))
        return cli_usage(c, "unknown subcommand '%s' (want: next)", c->argv[0]);
    if (st_cron_parse(&expr, c->argv[1], &e) != STELLAR_OK)
        return cli_usage(c, "%s", e.msg);
    if ((s = cli_flag_get(c, "from"))) {
        if (!cli_parse_int(s, &from))
            return cli_usage(c, "--from must be a whole number of milliseconds "
                                "since the epoch");
    } else {
        from = st_now_ms();
    }
    if ((s = cli_flag_get(c, "count")) &&
        (!cli_parse_int(s, &count) || count < 1 || count > COUNT_MAX))
        return cli_usage(c, "--count must be a whole number from 1 to %d",
                         COUNT_MAX);
    if (st_tz_open(tz_opt, &z, &e) != STELLAR_OK)
        return e.code == STELLAR_ENOMEM ? cli_fail(c, "%s", e.msg)
                                        : cli_usage(c, "--tz: %s", e.msg);
    if (c->json && !(arr = json_array())) {
        st_tz_free(z);
        return cli_fail(c, "out of memory");
    }
    for (i = 0, t = from; i < count; i++) {
        if (!st_cron_next(&expr, z, t, &t)) break;
        if (arr) {
            if (json_array_append_new(arr, json_integer(t)) != 0) {
                rc = cli_fail(c, "out of memory");
                break;
            }
        } else {
            char iso[48];
            st_tz_iso(z, t / 1000, iso);
            printf("%lld %s\n", (long long)t, iso);
        }
    }
    if (i < count && rc == CLI_OK)
        fprintf(stderr,
                "stellar cron: no more fire times (none within 400 years, "
                "or past the year 9999)\n");
    if (arr && rc == CLI_OK) rc = out_json(arr);
    json_decref(arr);
    st_tz_free(z);
    return rc;
}
