/*
 * consumer: a program outside Stellar's build, built against an installed
 * Stellar by tests/package/run.sh (with pkg-config, and with CMake's
 * find_package). It queues one job in a SQLite file, reads the queue back
 * through jansson (stellar.h's JSON type, so jansson must come with
 * Stellar's flags) and prints the header's version.
 *
 *   consumer SQLITE_PATH        exit 0 when all of that worked, else 1
 */
#include <stellar.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    char url[4200];
    stellar_options o = {0};
    stellar *h = NULL;
    stellar_error e = {0};
    json_t *queues = NULL;
    int64_t n = -1;
    int ok;

    if (argc != 2 || strlen(argv[1]) > 4096) {
        fprintf(stderr, "usage: consumer SQLITE_PATH\n");
        return 1;
    }
    snprintf(url, sizeof url, "sqlite:%s", argv[1]);
    o.url = url;
    if (stellar_open(&h, &o, &e) != STELLAR_OK ||
        stellar_enqueue(h, "packageCheck", "{\"n\":1}", "package", &e) !=
            STELLAR_OK ||
        stellar_length(h, "package", &n, &e) != STELLAR_OK ||
        stellar_queues(h, &queues, &e) != STELLAR_OK) {
        fprintf(stderr, "consumer: %s\n", e.msg);
        stellar_close(h);
        return 1;
    }
    ok = n == 1 && json_array_size(queues) == 1 &&
         strcmp(json_string_value(json_array_get(queues, 0)), "package") == 0;
    if (!ok)
        fprintf(stderr, "consumer: queue 'package' holds %lld jobs\n",
                (long long)n);
    json_decref(queues);
    stellar_close(h);
    if (ok) printf("stellar %s\n", STELLAR_VERSION);
    return ok ? 0 : 1;
}
