/*
 * main.c: the fault suite's program: the one table of tests (the list in
 * faults.h) handed to the harness's runner.
 */
#include "faults.h"

static const struct test tests[] = {
#define X(fn, timeout_s) TEST(fn, timeout_s),
    FAULTS_TESTS(X)
#undef X
};
TEST_MAIN(tests)
