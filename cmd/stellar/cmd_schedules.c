/*
 * cmd_schedules.c: `stellar schedules [--json]`, the cron schedules of the
 * app (those of its tasks with "cron", and stellar.json's "schedules") with
 * their next fire time in their zone and in UTC, their last fire and
 * whether they are paused; `stellar schedules pause NAME` / `resume NAME`,
 * stored in the backend for every process (stellar_schedule_pause).
 */
#include "cli.h"
#include "internal.h"

#include <string.h>

static int schedules_table(cli *c, json_t *all)
{
    out_table *t = out_table_new(8, "NAME", "CRON", "ZONE", "TASK",
                                 "NEXT (ZONE)", "NEXT (UTC)", "LAST", "PAUSED");
    int64_t now = st_now_ms();
    const char *name;
    json_t *s;

    (void)c;
    if (json_object_size(all) == 0) {
        out_table_free(t);
        printf("no schedules (give a task \"cron\", or add \"schedules\" to "
               "stellar.json)\n");
        return CLI_OK;
    }
    json_object_foreach(all, name, s)
    {
        json_t *last = json_object_get(s, "last");
        char when[64] = "never", rel[32], next_utc[64] = "-";
        if (json_is_integer(last))
            out_when(json_integer_value(last), now, when);
        if (json_is_integer(json_object_get(s, "next"))) {
            int64_t n = json_integer_value(json_object_get(s, "next"));
            out_rel(n, now, rel);
            snprintf(next_utc, sizeof next_utc, "%s (%s)",
                     json_string_value(json_object_get(s, "next_utc")), rel);
        }
        out_table_row(
            t, name, json_string_value(json_object_get(s, "cron")),
            json_string_value(json_object_get(s, "timezone")),
            json_string_value(json_object_get(s, "task")),
            json_string_value(json_object_get(s, "next_local")), next_utc, when,
            json_is_true(json_object_get(s, "paused")) ? "yes" : "no");
    }
    return out_print(t);
}

int cmd_schedules(cli *c)
{
    stellar_error e = {0};
    json_t *all = NULL;
    bool pause = false;
    int rc;

    if (c->argc == 1)
        return cli_usage(c, "'%s' needs a schedule NAME", c->argv[0]);
    if (c->argc == 2) {
        if (cli_name_eq(c->argv[0], "pause"))
            pause = true;
        else if (cli_name_eq(c->argv[0], "resume"))
            pause = false;
        else
            return cli_usage(c, "unknown subcommand '%s' (want: pause, resume)",
                             c->argv[0]);
    }
    if ((rc = cli_app_find(c, true)) != CLI_OK) return rc;
    if ((rc = cli_open(c, NULL, true)) != CLI_OK) return rc;
    if (c->argc == 0) {
        if ((rc = stellar_schedules(c->h, &all, &e)) != STELLAR_OK)
            return cli_error(c, rc, &e);
        return out_show(c, all, schedules_table);
    }
    if ((rc = stellar_schedule_pause(c->h, c->argv[1], pause, &e)) !=
        STELLAR_OK)
        return cli_error(c, rc, &e);
    if (c->json) {
        json_t *r =
            json_pack("{s:s, s:b}", "schedule", c->argv[1], "paused", pause);
        rc = r ? out_json(r) : cli_fail(c, "out of memory");
        json_decref(r);
        return rc;
    }
    printf("%s %s\n", pause ? "paused" : "resumed", c->argv[1]);
    return CLI_OK;
}
