/*
 * inspect.c: inspection: delayed jobs by timestamp, scheduledAt, delDelayedAt,
 * delAllDelayed, details, queued, workingOn, locks and delLock.
 */
#include "conformance.h"

void delayed_jobs_are_listed_by_ascending_timestamp(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t base = later_s(), want[3] = {base, base + 1000, base + 2000};
    json_t *ts, *at = NULL, *all = NULL;
    char key[3][32];

    enqueue_at(h, base + 2000, "t", "{\"n\":1}", "q");
    enqueue_at(h, base, "t", "{\"n\":2}", "q");
    enqueue_at(h, base + 1000, "u", NULL, "r");
    enqueue_at(h, base, "t", "{\"n\":3}", "q");

    ts = timestamps_of(h);
    ASSERT_JSON_EQ(ms_list(3, want), ts);
    json_decref(ts);

    /* One timestamp's jobs, parsed, in the order they were delayed. */
    ASSERT_OK(stellar_delayed_at(h, base, &at, &e), &e);
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":2}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":3}]}]",
                   at);
    json_decref(at);
    ASSERT_OK(stellar_delayed_at(h, base + 5000, &at, &e), &e);
    ASSERT_JSON_EQ("[]", at);
    json_decref(at);

    ASSERT_OK(stellar_all_delayed(h, &all, &e), &e);
    for (int i = 0; i < 3; i++)
        snprintf(key[i], sizeof key[i], "%lld", (long long)want[i]);
    ASSERT_EQ(3, json_object_size(all));
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":2}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":3}]}]",
                   json_object_get(all, key[0]));
    ASSERT_JSON_EQ("[{\"class\":\"u\",\"queue\":\"r\",\"args\":[{}]}]",
                   json_object_get(all, key[1]));
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":1}]}]",
                   json_object_get(all, key[2]));
    json_decref(all);
    stellar_close(h);
}

void scheduled_at_lists_every_time_a_job_is_delayed_to(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t base = later_s(), want[2] = {base, base + 3000};
    json_t *ts = NULL;

    enqueue_at(h, base + 3000, "t", "{\"k\":\"v\"}", "q");
    enqueue_at(h, base, "t", "{\"k\":\"v\"}", "q");
    enqueue_at(h, base + 1000, "t", "{\"k\":\"w\"}", "q");
    enqueue_at(h, base + 2000, "t", NULL, NULL); /* "default", {} */

    ASSERT_OK(stellar_scheduled_at(h, "q", "t", "{\"k\":\"v\"}", &ts, &e), &e);
    ASSERT_JSON_EQ(ms_list(2, want), ts);
    json_decref(ts);
    want[0] = base + 2000;
    ASSERT_OK(stellar_scheduled_at(h, NULL, "t", NULL, &ts, &e), &e);
    ASSERT_JSON_EQ(ms_list(1, want), ts);
    json_decref(ts);
    ASSERT_OK(stellar_scheduled_at(h, "other", "t", "{\"k\":\"v\"}", &ts, &e),
              &e);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    stellar_close(h);
}

void del_delayed_at_removes_every_job_at_one_timestamp(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t base = later_s(), removed = -1, want[1] = {base + 1000};
    json_t *ts;

    enqueue_at(h, base, "t", "{\"n\":1}", "q");
    enqueue_at(h, base, "u", "{\"n\":2}", "r");
    enqueue_at(h, base + 1000, "t", "{\"n\":3}", "q");
    ASSERT_OK(stellar_del_delayed_at(h, base, &removed, &e), &e);
    ASSERT_EQ(2, removed);
    ts = timestamps_of(h);
    ASSERT_JSON_EQ(ms_list(1, want), ts);
    json_decref(ts);
    ASSERT_OK(stellar_del_delayed_at(h, base, &removed, &e), &e);
    ASSERT_EQ(0, removed);
    ASSERT_EQ(STELLAR_EINVAL, stellar_del_delayed_at(h, -1000, &removed, &e));
    ts = timestamps_of(h);
    ASSERT_EQ(1, json_array_size(ts));
    json_decref(ts);
    stellar_close(h);
}

void del_all_delayed_removes_every_delayed_job(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    int64_t base = later_s(), removed = -1;
    json_t *ts;

    enqueue_at(h, base, "t", "{\"n\":1}", "q");
    enqueue_at(h, base, "t", "{\"n\":2}", "q");
    enqueue_at(h, base + 5000, "u", NULL, "r");
    enqueue(h, "t", NULL, "q");
    ASSERT_OK(stellar_del_all_delayed(h, &removed, &e), &e);
    ASSERT_EQ(3, removed);
    ts = timestamps_of(h);
    ASSERT_JSON_EQ("[]", ts);
    json_decref(ts);
    ASSERT_EQ(1, test_length(h, "q")); /* queued jobs stay */
    ASSERT_OK(stellar_del_all_delayed(h, &removed, &e), &e);
    ASSERT_EQ(0, removed);
    stellar_close(h);
}

void details_lists_queues_with_lengths_and_workers(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *d = NULL, *w;

    ASSERT_OK(stellar_details(h, &d, &e), &e);
    ASSERT_JSON_EQ("{\"queues\":{},\"workers\":{}}", d);
    json_decref(d);

    enqueue(h, "t", NULL, "a");
    enqueue(h, "t", "{\"n\":2}", "a");
    enqueue(h, "t", NULL, "b");
    fake_worker(b, "host:42+1", "a", test_now_ms(), false);
    ASSERT_OK(stellar_details(h, &d, &e), &e);
    /* latency_ms: see queue_latency_is_the_age_of_the_oldest_job. */
    json_object_del(json_object_get(json_object_get(d, "queues"), "a"),
                    "latency_ms");
    json_object_del(json_object_get(json_object_get(d, "queues"), "b"),
                    "latency_ms");
    ASSERT_JSON_EQ("{\"a\":{\"length\":2,\"paused\":false,\"paused_until\":"
                   "null},\"b\":{\"length\":1,\"paused\":false,"
                   "\"paused_until\":null}}",
                   json_object_get(d, "queues"));
    ASSERT_EQ(1, json_object_size(json_object_get(d, "workers")));
    w = json_object_get(json_object_get(d, "workers"), "host:42+1");
    ASSERT_TRUE(json_is_object(w));
    ASSERT_STR_EQ("a", json_string_value(json_object_get(w, "queues")));
    ASSERT_TRUE(json_is_null(json_object_get(w, "working_on")));
    json_decref(d);
    st_backend_close(b);
    stellar_close(h);
}

void queued_returns_a_range_of_a_queues_jobs(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *a = NULL;
    char params[32];

    for (int i = 0; i < 5; i++) {
        snprintf(params, sizeof params, "{\"n\":%d}", i);
        enqueue(h, "t", params, "q");
    }
    a = queued_all(h, "q");
    ASSERT_EQ(5, json_array_size(a));
    for (int i = 0; i < 5; i++) {
        json_t *args = json_object_get(json_array_get(a, (size_t)i), "args");
        ASSERT_EQ(i, json_integer_value(
                         json_object_get(json_array_get(args, 0), "n")));
    }
    json_decref(a);
    ASSERT_OK(stellar_queued(h, "q", 1, 2, &a, &e), &e);
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":1}]},"
                   "{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":2}]}]",
                   a);
    json_decref(a);
    ASSERT_OK(stellar_queued(h, "q", -1, -1, &a, &e), &e);
    ASSERT_JSON_EQ("[{\"class\":\"t\",\"queue\":\"q\",\"args\":[{\"n\":4}]}]",
                   a);
    json_decref(a);
    ASSERT_OK(stellar_queued(h, "q", 10, 20, &a, &e), &e);
    ASSERT_JSON_EQ("[]", a);
    json_decref(a);
    ASSERT_OK(stellar_queued(h, "nothing", 0, -1, &a, &e), &e);
    ASSERT_JSON_EQ("[]", a);
    json_decref(a);
    ASSERT_EQ(STELLAR_EINVAL, stellar_queued(h, "", 0, -1, &a, &e));
    ASSERT_EQ(5, test_length(h, "q")); /* reading takes nothing */
    stellar_close(h);
}

static bool worker_idle(stellar *h, const char *worker)
{
    stellar_error e = {0};
    json_t *on = NULL;
    bool idle;
    ASSERT_OK(stellar_working_on(h, worker, &on, &e), &e);
    idle = json_is_null(on);
    json_decref(on);
    return idle;
}

void working_on_shows_the_job_a_worker_is_running(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    stellar_error e = {0};
    json_t *on = NULL, *all = NULL;
    int64_t t0 = test_now_ms(), run_at;
    struct run r;

    reg(h, &task_slow);
    enqueue(h, "slow", "{\"ms\":1500}", "default");
    start(h);
    ASSERT_WAIT(runs_of("slow", false) == 1, 5000);
    r = run_of("slow", 0);
    ASSERT_OK(stellar_working_on(h, r.worker, &on, &e), &e);
    ASSERT_TRUE(json_is_object(on));
    ASSERT_STR_EQ("default", json_string_value(json_object_get(on, "queue")));
    ASSERT_JSON_EQ(
        "{\"class\":\"slow\",\"queue\":\"default\",\"args\":[{\"ms\":1500}]}",
        json_object_get(on, "payload"));
    ASSERT_TRUE(json_is_integer(json_object_get(on, "run_at")));
    run_at = json_integer_value(json_object_get(on, "run_at"));
    if (run_at < t0 - 1000 || run_at > test_now_ms() + 1000)
        FAIL("run_at %lld is not the time the job started (%lld..now)",
             (long long)run_at, (long long)t0);

    ASSERT_OK(stellar_all_working_on(h, &all, &e), &e);
    ASSERT_EQ(1, json_object_size(all));
    ASSERT_TRUE(json_equal(on, json_object_get(all, r.worker)));
    json_decref(all);
    json_decref(on);

    /* When it is done, the worker is idle: null, and "started" in all. */
    ASSERT_WAIT(runs_of("slow", true) == 1, 5000);
    ASSERT_WAIT(worker_idle(h, r.worker), 5000);
    ASSERT_OK(stellar_all_working_on(h, &all, &e), &e);
    ASSERT_STR_EQ("started", json_string_value(json_object_get(all, r.worker)));
    json_decref(all);
    ASSERT_EQ(STELLAR_ENOTFOUND, stellar_working_on(h, "nobody", &on, &e));
    free(r.params);
    stellar_close(h);
}

void locks_lists_a_queue_lock_and_del_lock_removes_it(struct test_ctx *t)
{
    static const char *const plugins[] = {"queueLock", NULL};
    static const stellar_task locked = {.name = "locked",
                                        .description = "one queued at once",
                                        .plugins = plugins,
                                        .run = record_run};
    const char *name = "lock:locked:default:[{\"k\":1}]";
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *locks = NULL, *l;
    int64_t removed = -1, now = test_now_ms(), exp;

    reg(h, &locked);
    ASSERT_OK(stellar_locks(h, &locks, &e), &e);
    ASSERT_JSON_EQ("{}", locks);
    json_decref(locks);
    enqueue(h, "locked", "{\"k\":1}", NULL);
    ASSERT_EQ(STELLAR_VETOED,
              stellar_enqueue(h, "locked", "{\"k\":1}", NULL, &e));

    ASSERT_OK(stellar_locks(h, &locks, &e), &e);
    ASSERT_EQ(1, json_object_size(locks));
    l = json_object_get(locks, name);
    if (!json_is_object(l)) {
        char *txt = json_dumps(locks, JSON_COMPACT);
        FAIL("no lock %s in %s", name, txt);
    }
    ASSERT_TRUE(json_is_string(json_object_get(l, "value")));
    ASSERT_TRUE(json_is_integer(json_object_get(l, "expires")));
    exp = json_integer_value(json_object_get(l, "expires"));
    /* queueLock's default lockTimeout: an hour. */
    if (exp < now + 3590000 || exp > test_now_ms() + 3601000)
        FAIL("lock expires at %lld, not an hour after %lld", (long long)exp,
             (long long)now);
    json_decref(locks);

    ASSERT_OK(stellar_del_lock(h, name, &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_OK(stellar_locks(h, &locks, &e), &e);
    ASSERT_JSON_EQ("{}", locks);
    json_decref(locks);
    ASSERT_OK(stellar_del_lock(h, name, &removed, &e), &e);
    ASSERT_EQ(0, removed);
    ASSERT_EQ(STELLAR_EINVAL, stellar_del_lock(h, "not-a-lock", &removed, &e));
    /* Unlocked: the same job may be queued again. */
    enqueue(h, "locked", "{\"k\":1}", NULL);
    ASSERT_EQ(2, test_length(h, "default"));
    stellar_close(h);
}
