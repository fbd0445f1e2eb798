/*
 * hostile.c: hostile input: bad queue, task and worker names, and times past
 * the year 9999, refused everywhere with nothing stored.
 */
#include "conformance.h"

/* ------------------------------------------------- Hostile input --- */

/* Queue and task names: non-blank valid UTF-8 without control characters,
 * at most 256 bytes; refused with EINVAL everywhere, nothing stored. */
void bad_names_are_refused_everywhere_and_good_ones_kept(struct test_ctx *t)
{
    char long_ok[257], long_bad[258];
    const char *bad[] = {" ",
                         "   ",
                         "a\tb",
                         "new\nline",
                         "del\x7f",
                         "c1\xc2\x85",
                         "\xff\xfe",
                         "trunc\xe2\x82",
                         "\xc0\xaf overlong",
                         "\xed\xa0\x80 surrogate",
                         long_bad};
    const char *good[] = {"a b",         " lead",
                          "caf\xc3\xa9", "rocket \xf0\x9f\x9a\x80",
                          "jobs:high",   long_ok};
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *q = NULL;
    int64_t n;
    size_t i;

    memset(long_ok, 'q', 256);
    long_ok[256] = '\0';
    memset(long_bad, 'q', 257);
    long_bad[257] = '\0';
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *const queues[] = {bad[i], NULL};
        stellar_options o = {.url = t->url, .queues = queues};
        stellar_task task = task_record;
        stellar *h2 = NULL;

        test_note("bad name %zu", i);
        ASSERT_EQ(STELLAR_EINVAL,
                  stellar_enqueue(h, "record", NULL, bad[i], &e));
        ASSERT_TRUE(strstr(e.msg, "queue name") != NULL);
        ASSERT_EQ(STELLAR_EINVAL, stellar_enqueue(h, bad[i], NULL, "q", &e));
        ASSERT_TRUE(strstr(e.msg, "task name") != NULL);
        ASSERT_EQ(STELLAR_EINVAL,
                  stellar_enqueue_in(h, 1000, "record", NULL, bad[i], &e));
        ASSERT_EQ(STELLAR_EINVAL,
                  stellar_enqueue_many(h, "record", NULL, 1, bad[i], &e));
        ASSERT_EQ(STELLAR_EINVAL, stellar_length(h, bad[i], &n, &e));
        ASSERT_EQ(STELLAR_EINVAL, stellar_del_queue(h, bad[i], &e));
        ASSERT_EQ(STELLAR_EINVAL,
                  stellar_del(h, bad[i], "record", NULL, 0, &n, &e));
        ASSERT_EQ(STELLAR_EINVAL, stellar_open(&h2, &o, &e));
        ASSERT_TRUE(h2 == NULL);
        task.queue = bad[i];
        ASSERT_EQ(STELLAR_EINVAL, stellar_task_register(h, &task, &e));
        task = task_record;
        task.name = bad[i];
        ASSERT_EQ(STELLAR_EINVAL, stellar_task_register(h, &task, &e));
    }
    ASSERT_OK(stellar_queues(h, &q, &e), &e);
    ASSERT_EQ(0, json_array_size(q));
    json_decref(q);

    /* Valid names, as another Resque client may write them, are kept
     * apart and listed. */
    for (i = 0; i < sizeof good / sizeof good[0]; i++)
        enqueue(h, "record", NULL, good[i]);
    ASSERT_OK(stellar_queues(h, &q, &e), &e);
    ASSERT_EQ(sizeof good / sizeof good[0], json_array_size(q));
    json_decref(q);
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        ASSERT_OK(stellar_length(h, good[i], &n, &e), &e);
        ASSERT_EQ(1, n);
    }

    /* A queue another client wrote under a name we refuse is still shown
     * (details, /api/queues), not an error for every queue. */
    {
        st_backend *b = raw_open(t);
        const char *p = "{\"class\":\"record\",\"queue\":\"bell\\u0007\","
                        "\"args\":[{}]}";
        json_t *d = NULL;
        ASSERT_OK(b->ops->push(b, "bell\a", &p, 1, &e), &e);
        st_backend_close(b);
        ASSERT_OK(stellar_details(h, &d, &e), &e);
        ASSERT_EQ(1,
                  json_integer_value(json_object_get(
                      json_object_get(json_object_get(d, "queues"), "bell\a"),
                      "length")));
        json_decref(d);
    }
    stellar_close(h);
}

/* Times: 0 to STELLAR_TIME_MAX (year 9999); past it, or a delay that
 * reaches past it (no overflow of now + delay), is EINVAL, nothing stored. */
void times_past_the_year_9999_are_refused_and_nothing_stored(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *ts = NULL;

    reg(h, &task_record);
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_enqueue_at(h, INT64_MAX, "record", NULL, NULL, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_enqueue_at(h, STELLAR_TIME_MAX + 1,
                                                 "record", NULL, NULL, &e));
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_enqueue_in(h, INT64_MAX, "record", NULL, NULL, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_enqueue_in(h, STELLAR_TIME_MAX, "record",
                                                 NULL, NULL, &e));
    ASSERT_TRUE(strstr(e.msg, "9999") != NULL);
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_enqueue_at(h, -1, "record", NULL, NULL, &e));
    ts = timestamps_of(h);
    ASSERT_EQ(0, json_array_size(ts));
    json_decref(ts);
    ASSERT_EQ(0, test_length(h, "default"));

    /* The last valid time is stored where timestamps sees it. */
    ASSERT_OK(stellar_enqueue_at(h, STELLAR_TIME_MAX, "record", NULL, NULL, &e),
              &e);
    ts = timestamps_of(h);
    ASSERT_EQ(1, json_array_size(ts));
    ASSERT_TRUE(json_integer_value(json_array_get(ts, 0)) >=
                STELLAR_TIME_MAX - 1000);
    json_decref(ts);
    stellar_close(h);
}
