/*
 * main.c: the plugins suite's program: the one table of tests (the list in
 * plugins.h) handed to the harness's runner.
 */
#include "plugins.h"

static const struct test tests[] = {
#define X(fn, name, timeout_s) {name, fn, timeout_s},
    PLUGINS_TESTS(X)
#undef X
};
TEST_MAIN(tests)
