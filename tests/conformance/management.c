/*
 * management.c: management calls (issue #4): del, delDelayed, delQueue,
 * recurrent jobs and their races, and queue latency.
 */
#include "conformance.h"

/* ------------------------------------------------------ Management --- */
/*
 * The management calls of the guide (issue #4), with the same expectations
 * on every backend. Delayed jobs sit at whole seconds an hour ahead, so the
 * Redis layout (seconds) keeps the very timestamps given and no scheduler
 * moves them meanwhile.
 */
void del_removes_up_to_count_matching_jobs_and_says_how_many(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *q;
    int64_t n = -1;

    for (int i = 0; i < 3; i++)
        enqueue(h, "t", "{\"a\":1}", "q");
    enqueue(h, "t", "{\"a\":2}", "q");
    enqueue(h, "u", "{\"a\":1}", "q");
    enqueue(h, "t", "{\"a\":1}", "q");
    enqueue(h, "t", "{\"a\":1}", "other");

    ASSERT_OK(stellar_del(h, "q", "t", "{\"a\":1}", 2, &n, &e), &e);
    ASSERT_EQ(2, n);
    q = queued_all(h, "q");
    /* The first two went; the rest keep their order. */
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"a\":1}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"a\":2}]},"
                   "{\"class\":\"u\",\"queue\":\"q\",\"args\":[{\"a\":1}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"a\":1}]}]",
                   q);
    json_decref(q);
    ASSERT_OK(stellar_del(h, "q", "t", "{\"a\":1}", 0, &n, &e), &e);
    ASSERT_EQ(2, n); /* count 0: all */
    ASSERT_OK(stellar_del(h, "q", "t", "{\"b\":1}", 0, &n, &e), &e);
    ASSERT_EQ(0, n);
    ASSERT_EQ(2, test_length(h, "q"));
    ASSERT_EQ(1, test_length(h, "other")); /* another queue is untouched */

    /* Params match as enqueued, member order included. */
    enqueue(h, "t", "{\"x\":1,\"y\":2}", "q");
    ASSERT_OK(stellar_del(h, "q", "t", "{\"y\":2,\"x\":1}", 0, &n, &e), &e);
    ASSERT_EQ(0, n);
    ASSERT_OK(stellar_del(h, "q", "t", "{\"x\":1,\"y\":2}", 0, &n, &e), &e);
    ASSERT_EQ(1, n);

    /* Bad input removes nothing. */
    ASSERT_EQ(STELLAR_EINVAL, stellar_del(h, "q", "t", "{bad", 0, &n, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_del(h, "q", "t", "[1]", 0, &n, &e));
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_del(h, "q", "t", "{\"a\":2}", -1, &n, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_del(h, "q", "", NULL, 0, &n, &e));
    ASSERT_EQ(2, test_length(h, "q"));
    stellar_close(h);
}

void del_delayed_returns_the_timestamps_it_removed_from(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t base = later_s(), want[2] = {base, base + 2000};
    json_t *ts = NULL, *sorted;

    enqueue_at(h, base + 2000, "t", "{\"a\":1}", "q");
    enqueue_at(h, base, "t", "{\"a\":1}", "q");
    enqueue_at(h, base + 1000, "t", "{\"a\":2}", "q");
    enqueue_at(h, base + 3000, "t", "{\"a\":1}", "elsewhere");

    ASSERT_OK(stellar_del_delayed(h, "q", "t", "{\"a\":1}", &ts, &e), &e);
    sorted = sorted_ints(ts);
    ASSERT_JSON_EQ(ms_list(2, want), sorted);
    json_decref(sorted);
    json_decref(ts);
    ASSERT_OK(stellar_scheduled_at(h, "q", "t", "{\"a\":1}", &ts, &e), &e);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    ts = timestamps_of(h);
    want[0] = base + 1000;
    want[1] = base + 3000;
    ASSERT_JSON_EQ(ms_list(2, want), ts);
    json_decref(ts);

    /* Nothing left to match: an empty list, nothing else touched. */
    ASSERT_OK(stellar_del_delayed(h, "q", "t", "{\"a\":1}", &ts, &e), &e);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    ASSERT_EQ(STELLAR_EINVAL,
              stellar_del_delayed(h, "q", "t", "{nope", &ts, &e));
    ts = timestamps_of(h);
    ASSERT_EQ(2, json_array_size(ts));
    json_decref(ts);
    stellar_close(h);
}

void del_queue_removes_the_queue_and_its_jobs(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *names = NULL;

    enqueue(h, "t", NULL, "doomed");
    enqueue(h, "t", "{\"n\":2}", "doomed");
    enqueue(h, "t", NULL, "kept");
    ASSERT_OK(stellar_del_queue(h, "doomed", &e), &e);
    ASSERT_OK(stellar_queues(h, &names, &e), &e);
    ASSERT_JSON_EQ("[\"kept\"]", names);
    json_decref(names);
    ASSERT_EQ(0, test_length(h, "doomed"));
    ASSERT_EQ(1, test_length(h, "kept"));
    ASSERT_EQ(STELLAR_ENOTFOUND, stellar_del_queue(h, "doomed", &e));
    ASSERT_TRUE(strstr(e.msg, "doomed") != NULL);
    ASSERT_EQ(STELLAR_EINVAL, stellar_del_queue(h, "", &e));
    ASSERT_EQ(1, test_length(h, "kept"));
    stellar_close(h);
}

void a_recurrent_job_is_restarted_without_duplicates_and_stopped(
    struct test_ctx *t)
{
    static const stellar_task every = {.name = "every",
                                       .description = "periodic",
                                       .queue = "clock",
                                       .frequency = 60000,
                                       .run = record_run};
    const char *payload = "{\"class\":\"every\",\"queue\":\"clock\","
                          "\"args\":[{}]}";
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    int64_t removed = -1;
    const char *two[] = {payload, payload};

    reg(h, &every);
    reg(h, &task_record);
    /* Start from a mess: two queued copies and a delayed one. */
    ASSERT_OK(b->ops->push(b, "clock", two, 2, &e), &e);
    ASSERT_OK(b->ops->push_at(b, later_s(), "clock", payload, false, &e), &e);
    ASSERT_EQ(3, copies_stored(b, "clock", "every"));

    ASSERT_OK(stellar_enqueue_recurrent(h, "every", &e), &e);
    ASSERT_EQ(1, copies_stored(b, "clock", "every"));
    ASSERT_EQ(1, test_length(h, "clock")); /* queued now, not delayed */
    ASSERT_OK(stellar_enqueue_recurrent(h, "every", &e), &e);
    ASSERT_EQ(1, copies_stored(b, "clock", "every"));

    ASSERT_OK(stellar_stop_recurrent(h, "every", &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_EQ(0, copies_stored(b, "clock", "every"));
    ASSERT_OK(stellar_stop_recurrent(h, "every", &removed, &e), &e);
    ASSERT_EQ(0, removed);

    /* A delayed copy counts as one too. */
    ASSERT_OK(b->ops->push_at(b, later_s(), "clock", payload, false, &e), &e);
    ASSERT_OK(stellar_stop_recurrent(h, "every", &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_EQ(0, copies_stored(b, "clock", "every"));

    ASSERT_EQ(STELLAR_ENOTASK, stellar_enqueue_recurrent(h, "nope", &e));
    ASSERT_EQ(STELLAR_ENOTASK, stellar_stop_recurrent(h, "nope", &removed, &e));
    ASSERT_EQ(STELLAR_EINVAL, stellar_enqueue_recurrent(h, "record", &e));
    ASSERT_EQ(0, test_length(h, "default"));
    st_backend_close(b);
    stellar_close(h);
}

/* Four clients race on one periodic task, round after round: two restart
 * it (stellar_enqueue_recurrent), one re-enqueues it as a processor does
 * after a run (replace with a due time) and one promotes due jobs. After
 * every round exactly one copy is stored. Done as separate steps (delete
 * delayed, delete queued, push), two restarts interleave into two copies. */
enum { RACE_ROUNDS = 100, RACERS = 4 };

struct racer {
    const struct test_ctx *t;
    pthread_barrier_t *go, *done;
    int id;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    const char *payload = "{\"class\":\"every\",\"queue\":\"clock\","
                          "\"args\":[{}]}";
    stellar *h = NULL;
    st_backend *b = NULL;
    stellar_error e = {0};
    int64_t n, next;
    int round;

    if (r->id < 2) {
        h = open_h(r->t, NULL);
        reg(h, &race_every);
    } else {
        b = raw_open(r->t);
    }
    for (round = 0; round < RACE_ROUNDS; round++) {
        pthread_barrier_wait(r->go);
        if (r->id < 2)
            ASSERT_OK(stellar_enqueue_recurrent(h, "every", &e), &e);
        else if (r->id == 2)
            ASSERT_OK(b->ops->replace(b, "clock", payload, test_now_ms() - 2000,
                                      &n, &e),
                      &e);
        else
            ASSERT_OK(b->ops->promote_due(b, test_now_ms(), 0, &n, &next, &e),
                      &e);
        pthread_barrier_wait(r->done);
    }
    if (h) stellar_close(h);
    if (b) st_backend_close(b);
    return NULL;
}

void racing_restarts_of_a_recurrent_job_leave_one_copy(struct test_ctx *t)
{
    pthread_barrier_t go, done;
    pthread_t th[RACERS];
    struct racer r[RACERS];
    st_backend *b = raw_open(t);
    int i, round, bad = 0;

    pthread_barrier_init(&go, NULL, RACERS + 1);
    pthread_barrier_init(&done, NULL, RACERS + 1);
    for (i = 0; i < RACERS; i++) {
        r[i] = (struct racer){t, &go, &done, i};
        ASSERT_EQ(0, pthread_create(&th[i], NULL, race, &r[i]));
    }
    for (round = 0; round < RACE_ROUNDS; round++) {
        int n;
        pthread_barrier_wait(&go);
        pthread_barrier_wait(&done);
        n = copies_stored(b, "clock", "every");
        if (n != 1 && bad++ == 0)
            test_note("round %d: %d copies stored", round, n);
    }
    for (i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&done);
    ASSERT_EQ(0, bad);
    st_backend_close(b);
}

/* Four writers delay one payload at one timestamp, fifty times each, as
 * blocked jobLock runs and retries do: with `later` each copy takes the next
 * free timestamp in the same atomic step, so none fails however the writers
 * interleave (a read of the free slots then a push lost copies: CI saw it). */
enum { DELAY_WRITERS = 4, DELAY_COPIES = 50 };
#define PAYLOAD_Q "{\"class\":\"record\",\"queue\":\"q\",\"args\":[{}]}"

struct delayer {
    const struct test_ctx *t;
    pthread_barrier_t *go;
    int64_t at_ms;
};

static void *delay_copies(void *arg)
{
    struct delayer *d = arg;
    st_backend *b = raw_open(d->t);
    stellar_error e = {0};

    pthread_barrier_wait(d->go);
    for (int i = 0; i < DELAY_COPIES; i++)
        ASSERT_OK(b->ops->push_at(b, d->at_ms, "q", PAYLOAD_Q, true, &e), &e);
    st_backend_close(b);
    return NULL;
}

void racing_writers_each_delay_their_copy_of_one_payload(struct test_ctx *t)
{
    pthread_barrier_t go;
    pthread_t th[DELAY_WRITERS];
    struct delayer d = {t, &go, later_s()};
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *ts = NULL;
    size_t i;

    pthread_barrier_init(&go, NULL, DELAY_WRITERS);
    for (i = 0; i < DELAY_WRITERS; i++)
        ASSERT_EQ(0, pthread_create(&th[i], NULL, delay_copies, &d));
    for (i = 0; i < DELAY_WRITERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);

    ASSERT_OK(b->ops->scheduled_at(b, PAYLOAD_Q, &ts, &e), &e);
    ASSERT_EQ(DELAY_WRITERS * DELAY_COPIES, (int)json_array_size(ts));
    /* One copy per timestamp, from the asked one on, with no gap. */
    for (i = 0; i < json_array_size(ts); i++)
        ASSERT_EQ(d.at_ms + (int64_t)i * (is_redis(t) ? 1000 : 1),
                  json_integer_value(json_array_get(ts, i)));
    json_decref(ts);
    /* Without `later`, the taken timestamp is refused and nothing stored. */
    ASSERT_EQ(STELLAR_EEXISTS,
              b->ops->push_at(b, d.at_ms, "q", PAYLOAD_Q, false, &e));
    ASSERT_TRUE(strstr(e.msg, "already enqueued") != NULL);
    ASSERT_OK(b->ops->scheduled_at(b, PAYLOAD_Q, &ts, &e), &e);
    ASSERT_EQ(DELAY_WRITERS * DELAY_COPIES, (int)json_array_size(ts));
    json_decref(ts);
    st_backend_close(b);
}

/* A latency of at least min_ms (and not absurdly more); -1 on Redis. */
static void assert_latency(const struct test_ctx *t, int64_t ms, int64_t min_ms)
{
    if (is_redis(t))
        ASSERT_EQ(-1, ms);
    else if (ms < min_ms || ms > min_ms + 10000)
        FAIL("latency %lld ms, want %lld ms or a little more", (long long)ms,
             (long long)min_ms);
}

/* The age of a queue's oldest job: since its enqueue, or since it was due
 * for a promoted one. Redis cannot tell (no enqueue time in a Resque
 * payload): always -1 there. */
void queue_latency_is_the_age_of_the_oldest_job(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    int64_t ms, moved, next, now;
    json_t *d = NULL, *age;

    reg(h, &task_record);
    ASSERT_EQ(-1, latency(h, "lat"));
    enqueue(h, "record", "{\"n\":1}", "lat");
    test_sleep_ms(300);
    enqueue(h, "record", "{\"n\":2}", "lat");
    ms = latency(h, "lat");
    test_note("latency after 300 ms: %lld ms", (long long)ms);
    assert_latency(t, ms, 300);
    ASSERT_OK(stellar_details(h, &d, &e), &e);
    age = json_object_get(json_object_get(json_object_get(d, "queues"), "lat"),
                          "latency_ms");
    assert_latency(t, json_is_null(age) ? -1 : json_integer_value(age), 300);
    json_decref(d);

    /* A job due 5 s ago, promoted now, has waited 5 s. */
    now = test_now_ms();
    ASSERT_OK(b->ops->push_at(b, now - 5000, "due",
                              "{\"class\":\"record\",\"queue\":\"due\","
                              "\"args\":[{}]}",
                              false, &e),
              &e);
    ASSERT_OK(b->ops->promote_due(b, now, 0, &moved, &next, &e), &e);
    ASSERT_EQ(1, moved);
    ms = latency(h, "due");
    test_note("latency of a job promoted 5 s late: %lld ms", (long long)ms);
    assert_latency(t, ms, 5000);
    ASSERT_EQ(STELLAR_EINVAL, stellar_latency(h, "", &ms, &e));
    st_backend_close(b);
    stellar_close(h);
}

/* What a Stellar SQLite file has as PRAGMA application_id ("Stel"). */
