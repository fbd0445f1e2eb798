/*
 * driver.c: the cron engine (src/cron.c, src/tz.c) over a pipe, for the
 * oracle in oracle.py, which asks thousands of questions: spawning
 * `stellar cron next` for each would take longer than the questions.
 *
 * Each line on stdin is "EXPR<TAB>ZONE<TAB>FROM_MS<TAB>COUNT"; the answer,
 * one line on stdout, is the next COUNT fire times as ms separated by
 * spaces (fewer if the engine finds no more), or "ERR <message>" when the
 * expression or the zone is refused.
 */
#include "cron.h"
#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char line[2048];

    while (fgets(line, sizeof line, stdin)) {
        char *expr = strtok(line, "\t\n"), *zone = strtok(NULL, "\t\n");
        char *from_s = strtok(NULL, "\t\n"), *count_s = strtok(NULL, "\t\n");
        stellar_error e = {0};
        st_cron c;
        st_tz *z = NULL;
        long long t;
        int count, i;

        if (!expr || !zone || !from_s || !count_s) {
            printf("ERR bad request line\n");
        } else if (st_cron_parse(&c, expr, &e) != STELLAR_OK ||
                   st_tz_open(zone, &z, &e) != STELLAR_OK) {
            printf("ERR %s\n", e.msg);
        } else {
            t = strtoll(from_s, NULL, 10);
            count = atoi(count_s);
            for (i = 0; i < count; i++) {
                int64_t next;
                if (!st_cron_next(&c, z, t, &next)) break;
                t = next;
                printf(i ? " %lld" : "%lld", t);
            }
            printf("\n");
        }
        st_tz_free(z);
        fflush(stdout);
    }
    return 0;
}
