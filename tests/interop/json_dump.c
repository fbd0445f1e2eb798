/*
 * json_dump.c: reads one JSON text per line from a file and prints, one per
 * line, what st_json_dumps(st_json_parse(line)) gives, or "ERROR <msg>".
 * json_node.js compares that with node's JSON.stringify(JSON.parse(line)).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    char line[65536];
    FILE *f;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CASES_FILE\n", argv[0]);
        return 2;
    }
    if (!(f = fopen(argv[1], "r"))) {
        perror(argv[1]);
        return 1;
    }
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\n");
        stellar_error e = {0};
        json_t *v;
        char *out;

        line[n] = '\0';
        if (n == 0) continue;
        v = st_json_parse(line, n, &e);
        if (!v) {
            printf("ERROR %s\n", e.msg);
            continue;
        }
        out = st_json_dumps(v);
        printf("%s\n", out ? out : "ERROR out of memory");
        st_free(out);
        json_decref(v);
    }
    fclose(f);
    return 0;
}
