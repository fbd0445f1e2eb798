/*
 * main.c: the oom suite's program: the one table of tests (the list in
 * oom.h) handed to the harness's runner.
 */
#include "oom.h"

static const struct test tests[] = {
#define X(fn, name, timeout_s) {name, fn, timeout_s},
    OOM_TESTS(X)
#undef X
};
TEST_MAIN(tests)
