/*
 * payloads.c: bad payloads pushed past the API (not JSON, no class,
 * non-array args, 16 MiB, nested 100,000 deep, invalid UTF-8): each fails
 * with a clear error and the worker carries on; the API refuses the same
 * at enqueue.
 */
#include "faults.h"

/* ------------------------------------------------------- Bad input --- */

/* Pushes one raw payload to queue past the API, as another client may. */
static void push_raw(struct test_ctx *t, const char *queue, const char *payload)
{
    st_backend *b = NULL;
    stellar_error e = {0};
    const char *one[1] = {payload};

    ASSERT_OK(st_backend_open(&b, t->url, NULL, &e), &e);
    ASSERT_OK(b->ops->push(b, queue, one, 1, &e), &e);
    st_backend_close(b);
}

/* What a raw payload must come to. */
struct bad {
    const char *what;
    char *payload;
    const char *error; /* expected in the failed entry's error; NULL: runs */
};

/*
 * Payloads that are not JSON, lack class, have non-array args, are 16 MiB,
 * nest 100,000 deep, carry invalid UTF-8: each fails with a clear error in
 * the failed list, in order, the worker carries on, and jobs on another
 * queue are not affected. The API refuses the same at enqueue.
 */
void bad_payloads_fail_clearly_and_the_worker_carries_on(struct test_ctx *t)
{
    enum { DEEP = 100000, BIG = 16 << 20 };
    char *runs = st_strdup(test_path(t, "runs.txt"));
    stellar *h = open_handle(t, NULL, 1, false);
    stellar_error e = {0};
    struct bad bad[16];
    st_buf deep = {0}, big = {0}, junk = {0};
    json_t *failed, *workers = NULL;
    char *unparsed = NULL;
    size_t i, nbad = 0, nfail = 0;
    int rc;

    ASSERT_OK(stellar_task_register_builtin(h, &e), &e);

    /* The API refuses them at enqueue. */
    rc = stellar_enqueue(h, "faultJob", "{\"id\": 1", NULL, &e);
    ASSERT_EQ(rc, STELLAR_EINVAL);
    test_note("enqueue of broken JSON: %s", e.msg);
    rc = stellar_enqueue(h, "faultJob", "{\"id\":\"\xff\xfe\"}", NULL, &e);
    ASSERT_EQ(rc, STELLAR_EINVAL);
    test_note("enqueue of invalid UTF-8: %s", e.msg);
    for (i = 0; i < DEEP; i++)
        st_buf_putc(&deep, '[');
    for (i = 0; i < DEEP; i++)
        st_buf_putc(&deep, ']');
    rc = stellar_enqueue(h, "faultJob", deep.p, NULL, &e);
    ASSERT_EQ(rc, STELLAR_EINVAL);
    test_note("enqueue of params nested %d deep: %s", DEEP, e.msg);
    ASSERT_EQ(test_length(h, "default"), 0);

    /* Raw payloads, as another client could write them. */
#define BAD(w, p, err) (bad[nbad++] = (struct bad){w, p, err})
    BAD("not JSON", st_strdup("this is not JSON {"), "not valid JSON");
    BAD("not an object", st_strdup("[1,2,3]"), "not a JSON object");
    BAD("no class", st_strdup("{\"queue\":\"bad\",\"args\":[{}]}"), "class");
    BAD("class not a string",
        st_strdup("{\"class\":42,\"queue\":\"bad\",\"args\":[{}]}"), "class");
    BAD("unknown class",
        st_strdup("{\"class\":\"noSuchTask\",\"queue\":\"bad\",\"args\":[]}"),
        "No job defined");
    BAD("non-array args",
        st_strdup("{\"class\":\"faultJob\",\"queue\":\"bad\",\"args\":"
                  "\"id=1\"}"),
        "args");
    BAD("args an object",
        st_asprintf("{\"class\":\"faultJob\",\"queue\":\"bad\",\"args\":"
                    "{\"id\":901,\"ms\":0,\"path\":\"%s\"}}",
                    runs),
        "args");
    st_buf_puts(&deep, "");
    {
        st_buf d = {0};
        st_buf_puts(&d, "{\"class\":\"faultJob\",\"queue\":\"bad\",\"args\":");
        st_buf_put(&d, deep.p, deep.len);
        st_buf_putc(&d, '}');
        BAD("nested 100,000 deep", st_buf_take(&d), "not valid JSON");
    }
    BAD("invalid UTF-8",
        st_asprintf("{\"class\":\"faultJob\",\"queue\":\"bad\",\"args\":"
                    "[{\"id\":902,\"ms\":0,\"path\":\"%s\",\"s\":\"\xff\xfe"
                    "\xc3\"}]}",
                    runs),
        "not valid JSON");
    BAD("truncated UTF-8 in class",
        st_strdup("{\"class\":\"fault\xe2\x82\",\"queue\":\"bad\","
                  "\"args\":[]}"),
        "not valid JSON");
    st_buf_putc(&junk, '[');
    for (i = 0; i < BIG; i++)
        st_buf_putc(&junk, 'x');
    BAD("16 MiB, not JSON", st_buf_take(&junk), "not valid JSON");
    /* A valid 16 MiB job runs (there is no size limit) and its task sees
     * all of it. */
    st_buf_printf(&big,
                  "{\"class\":\"faultJob\",\"queue\":\"bad\",\"args\":[{"
                  "\"id\":903,\"ms\":0,\"path\":\"%s\",\"pad\":\"",
                  runs);
    for (i = 0; i < BIG; i++)
        st_buf_putc(&big, 'p');
    st_buf_puts(&big, "\"}]}");
    BAD("16 MiB, valid", st_buf_take(&big), NULL);
    BAD("good",
        st_asprintf("{\"class\":\"faultJob\",\"queue\":\"bad\","
                    "\"args\":[{\"id\":904,\"ms\":0,\"path\":\"%s\"}]}",
                    runs),
        NULL);
#undef BAD
    st_buf_free(&deep);

    /* Work on another queue, queued first, is not affected. */
    enqueue_jobs(h, 0, 20, 0, 0, runs, false);
    for (i = 0; i < nbad; i++) {
        ASSERT_TRUE(bad[i].payload != NULL);
        push_raw(t, "bad", bad[i].payload);
        nfail += bad[i].error != NULL;
    }
    ASSERT_OK(stellar_start(h, &e), &e);
    /* 300 s: the two 16 MiB payloads take about 2 s here, but under
     * ThreadSanitizer 40 s each with 3 suites at once (CI), 58 s each with
     * a core busy besides, and 80 s each with both cores busy. */
    ASSERT_WAIT(test_stat(h, "processed") + test_stat(h, "failed") >=
                    (int64_t)nbad + 20,
                300000);
    failed = failed_entries(h);
    {
        size_t k = 0;
        for (i = 0; i < nbad; i++) {
            json_t *entry;
            const char *err;
            if (!bad[i].error) continue;
            entry = json_array_get(failed, k++);
            err = json_string_value(json_object_get(entry, "error"));
            test_note("%-24s -> %.150s", bad[i].what,
                      err ? err : "(entry is not a JSON object)");
            if (!json_is_object(entry)) {
                /* Checked last, so the other checks still run. */
                if (!unparsed)
                    unparsed = st_asprintf(
                        "%s: its failed entry is not valid JSON (raw bytes "
                        "of the payload in it): %.160s",
                        bad[i].what,
                        json_is_string(entry) ? json_string_value(entry)
                                              : "(missing)");
                continue;
            }
            if (!err || !test_contains_ci(err, bad[i].error))
                FAIL("%s: failed with '%.300s', expected an error about '%s'",
                     bad[i].what, err ? err : "(no error)", bad[i].error);
            ASSERT_STR_EQ(json_string_value(json_object_get(entry, "queue")),
                          "bad");
        }
    }
    json_decref(failed);
    ASSERT_EQ(test_failed_count(h), (int64_t)nfail);
    ASSERT_EQ(test_stat(h, "processed"), (int64_t)(nbad - nfail + 20));
    /* The good jobs ran, each once; the worker is the same one. */
    {
        int counts[905];
        read_runs(runs, counts, 905);
        for (i = 0; i < 20; i++)
            ASSERT_EQ(counts[i], 1);
        ASSERT_EQ(counts[903], 1);
        ASSERT_EQ(counts[904], 1);
        ASSERT_EQ(counts[901] + counts[902], 0);
    }
    ASSERT_OK(stellar_workers(h, &workers, &e), &e);
    ASSERT_EQ(json_object_size(workers), 1);
    json_decref(workers);
    ASSERT_EQ(test_length(h, "bad"), 0);
    for (i = 0; i < nbad; i++)
        st_free(bad[i].payload);
    stellar_close(h);
    st_free(runs);
    if (unparsed) FAIL("%s", unparsed);
}
