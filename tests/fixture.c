/*
 * fixture.c: the steps every suite takes on its backend (fixture.h): open,
 * register, start, enqueue, raw backend reads, JSON comparison and file
 * reads. They were copied into each suite before; one copy here keeps the
 * suites telling the same story the same way.
 */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool is_redis(const struct test_ctx *t)
{
    return strcmp(t->backend, "redis") == 0;
}

stellar *open_h_at(const struct test_ctx *t, stellar_options *o, int log_level)
{
    stellar_options d = {0};
    stellar_error e = {0};
    stellar *h = NULL;
    if (!o) o = &d;
    o->url = t->url;
    if (!o->log_fn) o->log_fn = test_log_fn;
    o->log_level = log_level;
    ASSERT_OK(stellar_open(&h, o, &e), &e);
    ASSERT_TRUE(h != NULL);
    return h;
}

stellar *open_h(const struct test_ctx *t, stellar_options *o)
{
    return open_h_at(t, o, STELLAR_LOG_INFO);
}

void reg(stellar *h, const stellar_task *task)
{
    stellar_error e = {0};
    ASSERT_OK(stellar_task_register(h, task, &e), &e);
}

void start(stellar *h)
{
    stellar_error e = {0};
    ASSERT_OK(stellar_start(h, &e), &e);
}

void enqueue(stellar *h, const char *task, const char *params,
             const char *queue)
{
    stellar_error e = {0};
    ASSERT_OK(stellar_enqueue(h, task, params, queue, &e), &e);
}

st_backend *raw_open(const struct test_ctx *t)
{
    st_backend_cfg cfg = {0};
    stellar_error e = {0};
    st_backend *b = NULL;
    ASSERT_OK(st_backend_open(&b, t->url, &cfg, &e), &e);
    return b;
}

json_t *raw_queued(st_backend *b, const char *queue)
{
    stellar_error e = {0};
    json_t *a = NULL;
    ASSERT_OK(b->ops->queued(b, queue, 0, -1, &a, &e), &e);
    ASSERT_TRUE(json_is_array(a));
    return a;
}

json_t *raw_failed(st_backend *b)
{
    stellar_error e = {0};
    json_t *a = NULL;
    ASSERT_OK(b->ops->failed_range(b, 0, -1, &a, &e), &e);
    ASSERT_TRUE(json_is_array(a));
    return a;
}

void assert_json_eq(const char *file, int line, const char *want_txt,
                    const json_t *got)
{
    json_error_t je;
    json_t *want = json_loads(want_txt, JSON_DECODE_ANY, &je);
    char *got_txt =
        got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!want)
        test_fail(file, line, "bad expected JSON %s: %s", want_txt, je.text);
    if (!got || !json_equal(want, got))
        test_fail(file, line, "JSON differs\n  want: %s\n  got:  %s", want_txt,
                  got_txt ? got_txt : "NULL");
    json_decref(want);
    free(got_txt);
}

char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;

    *n = 0;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0) {
        rewind(f);
        buf = calloc(1, (size_t)len + 1);
        if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len)
            *n = (size_t)len;
    }
    fclose(f);
    return buf;
}

bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;

    if (!f) return false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}
