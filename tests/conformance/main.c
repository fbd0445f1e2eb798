/*
 * main.c: the conformance suite's program: the one table of tests (the
 * list in conformance.h) handed to the harness's runner.
 */
#include "conformance.h"

static const struct test tests[] = {
#define X(fn, timeout_s) TEST(fn, timeout_s),
    CONFORMANCE_TESTS(X)
#undef X
};
TEST_MAIN(tests)
