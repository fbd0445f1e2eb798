/*
 * fuzz_payload.c: a libFuzzer target for the payload decoder and the
 * JSON.stringify-compatible encoder (issue #6). Built only with clang and
 * -DSTELLAR_FUZZ=ON (see fuzz/run.sh).
 *
 * For every input:
 * - st_payload_parse() either accepts it (then class is a string) or
 *   rejects it with a message; it never crashes, leaks or hangs;
 * - st_failed_entry() on it (what a worker writes for a payload it cannot
 *   run) is well formed whenever the input is valid UTF-8;
 * - if the input is JSON, st_json_dumps() is a fixed point after one
 *   round: dumps(parse(dumps(parse(x)))) == dumps(parse(x)), and that
 *   text parses.
 */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what, const char *a, const char *b)
{
    if (ok) return;
    fprintf(stderr, "fuzz_payload: %s\n  first:  %.400s\n  second: %.400s\n",
            what, a ? a : "(null)", b ? b : "(null)");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    stellar_error e;
    st_payload p;
    json_t *v, *v2, *bt;
    char *once, *twice, *entry, *raw;

    if (st_payload_parse(&p, s, size, &e) == STELLAR_OK) {
        check(p.root && p.klass, "parsed payload without a class", NULL, NULL);
        st_payload_clear(&p);
    } else {
        check(e.code == STELLAR_EINVAL && e.msg[0], "rejected without EINVAL",
              e.msg, NULL);
    }

    /* The failed entry of a payload that may not be JSON at all. */
    raw = st_strndup(s, size);
    if (raw && strlen(raw) == size) {
        bt = json_pack("[s]", "    at fuzz");
        entry = st_failed_entry("host:1+1", "q", raw, "Error", "boom", bt,
                                1700000000000LL);
        json_decref(bt);
        check(entry != NULL, "no failed entry", raw, NULL);
        /* Valid UTF-8 in (jansson refuses any other string), valid JSON
         * out. */
        v = json_stringn(raw, size);
        if (v) {
            json_t *ev = st_json_parse(entry, strlen(entry), NULL);
            check(ev != NULL, "failed entry is not JSON", raw, entry);
            json_decref(ev);
        }
        json_decref(v);
        st_free(entry);
    }
    st_free(raw);

    v = st_json_parse(s, size, NULL);
    if (!v) return 0;
    once = st_json_dumps(v);
    check(once != NULL, "dumps failed", NULL, NULL);
    v2 = st_json_parse(once, strlen(once), &e);
    check(v2 != NULL, "dumps output does not parse", once, e.msg);
    twice = st_json_dumps(v2);
    check(twice && strcmp(once, twice) == 0, "dumps is not a fixed point", once,
          twice);
    st_free(once);
    st_free(twice);
    json_decref(v);
    json_decref(v2);
    return 0;
}
