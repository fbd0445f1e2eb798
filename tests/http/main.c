/*
 * main.c: the HTTP suite's program: the one table of tests (the list in
 * http_test.h) handed to the harness's runner.
 */
#include "http_test.h"

static const struct test tests[] = {
#define X(fn, timeout_s) TEST(fn, timeout_s),
    HTTP_TESTS(X)
#undef X
};
TEST_MAIN(tests)
