/*
 * schedules.c: cron schedules. The backend's claim of a tick (sched_claim:
 * once per tick, never an older or equal one, nothing while paused, atomic
 * with its job under racing connections), and the schedules of the API:
 * one job per tick across handles, missed ticks, pause (whose ticks are
 * never missed), the recurrent calls on a cron task, and what load-time
 * validation refuses.
 */
#include "conformance.h"

/* ------------------------------------------------- The backend's claim --- */

static bool claim(st_backend *b, const char *name, int64_t tick,
                  const char *payload)
{
    stellar_error e = {0};
    bool claimed = true;
    ASSERT_OK(
        b->ops->sched_claim(b, name, tick, "crons", payload, &claimed, &e), &e);
    return claimed;
}

static json_t *record_of(st_backend *b, const char *name)
{
    stellar_error e = {0};
    json_t *all = NULL, *rec;
    ASSERT_OK(b->ops->sched_list(b, &all, &e), &e);
    rec = json_incref(json_object_get(all, name));
    json_decref(all);
    return rec;
}

static int64_t queued_n(st_backend *b, const char *queue)
{
    stellar_error e = {0};
    int64_t n = -1;
    ASSERT_OK(b->ops->length(b, queue, &n, &e), &e);
    return n;
}

void a_schedule_claims_each_tick_once_with_its_job(struct test_ctx *t)
{
    st_backend *b = raw_open(t), *b2 = raw_open(t);
    const char *p = "{\"class\":\"record\",\"queue\":\"crons\",\"args\":[{}]}";
    json_t *rec, *q;

    (void)t;
    ASSERT_TRUE(claim(b, "nightly", 60000, p));
    ASSERT_EQ(1, queued_n(b, "crons"));
    /* The same tick again, from another connection: refused, no job. */
    ASSERT_TRUE(!claim(b2, "nightly", 60000, p));
    /* An older tick: refused. */
    ASSERT_TRUE(!claim(b2, "nightly", 59000, p));
    ASSERT_EQ(1, queued_n(b, "crons"));
    /* Another schedule's record is its own. */
    ASSERT_TRUE(claim(b2, "other", 60000, p));
    ASSERT_TRUE(claim(b2, "nightly", 61000, p));
    ASSERT_EQ(3, queued_n(b, "crons"));
    q = raw_queued(b, "crons");
    ASSERT_STR_EQ(p, json_string_value(json_array_get(q, 0)));
    json_decref(q);
    rec = record_of(b, "nightly");
    ASSERT_JSON_EQ("{\"last\":61000,\"paused\":false,\"seen\":null}", rec);
    json_decref(rec);
    st_backend_close(b2);
    st_backend_close(b);
}

void a_paused_schedule_claims_nothing_until_resumed(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    const char *p = "{\"class\":\"record\",\"queue\":\"crons\",\"args\":[{}]}";
    stellar_error e = {0};
    json_t *rec;

    /* Pausing a schedule never seen creates its record. */
    ASSERT_OK(b->ops->sched_set(b, "p", 1, -1, &e), &e);
    ASSERT_TRUE(!claim(b, "p", 1000, p));
    ASSERT_EQ(0, queued_n(b, "crons"));
    /* The first sight is kept once set; a later one does not replace it. */
    ASSERT_OK(b->ops->sched_set(b, "p", -1, 500, &e), &e);
    ASSERT_OK(b->ops->sched_set(b, "p", -1, 900, &e), &e);
    rec = record_of(b, "p");
    ASSERT_JSON_EQ("{\"last\":null,\"paused\":true,\"seen\":500}", rec);
    json_decref(rec);
    ASSERT_OK(b->ops->sched_set(b, "p", 0, -1, &e), &e);
    ASSERT_TRUE(claim(b, "p", 2000, p));
    ASSERT_EQ(1, queued_n(b, "crons"));
    rec = record_of(b, "p");
    ASSERT_JSON_EQ("{\"last\":2000,\"paused\":false,\"seen\":500}", rec);
    json_decref(rec);
    st_backend_close(b);
}

/* A resume (paused 1 -> 0) stores its time as the schedule's seen: the
 * ticks up to it were paused, not missed. Only a real resume of a schedule
 * already seen moves it: a resume of a running schedule, or of one no
 * scheduler has seen yet, leaves it as it was. */
void a_resume_stores_its_time_so_paused_ticks_are_not_missed(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    const char *p = "{\"class\":\"record\",\"queue\":\"crons\",\"args\":[{}]}";
    stellar_error e = {0};
    json_t *rec;

    ASSERT_OK(b->ops->sched_set(b, "r", -1, 1000, &e), &e);
    ASSERT_TRUE(claim(b, "r", 2000, p));
    ASSERT_OK(b->ops->sched_set(b, "r", 1, -1, &e), &e);
    ASSERT_OK(b->ops->sched_set(b, "r", 0, 9000, &e), &e);
    rec = record_of(b, "r");
    ASSERT_JSON_EQ("{\"last\":2000,\"paused\":false,\"seen\":9000}", rec);
    json_decref(rec);
    /* Resuming a schedule that is not paused accounts for nothing. */
    ASSERT_OK(b->ops->sched_set(b, "r", 0, 12000, &e), &e);
    /* A later sight does not replace it either. */
    ASSERT_OK(b->ops->sched_set(b, "r", -1, 15000, &e), &e);
    rec = record_of(b, "r");
    ASSERT_JSON_EQ("{\"last\":2000,\"paused\":false,\"seen\":9000}", rec);
    json_decref(rec);
    /* The claim's compare-and-set is unchanged: any later tick. */
    ASSERT_TRUE(claim(b, "r", 3000, p));
    /* Never seen by a scheduler: its first sight is still to come. */
    ASSERT_OK(b->ops->sched_set(b, "n", 1, -1, &e), &e);
    ASSERT_OK(b->ops->sched_set(b, "n", 0, 9000, &e), &e);
    rec = record_of(b, "n");
    ASSERT_JSON_EQ("{\"last\":null,\"paused\":false,\"seen\":null}", rec);
    json_decref(rec);
    st_backend_close(b);
}

#define RACERS     4
#define RACE_TICKS 60

struct racer {
    const struct test_ctx *t;
    int won[RACE_TICKS];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    st_backend *b = raw_open(r->t);
    const char *p = "{\"class\":\"record\",\"queue\":\"crons\",\"args\":[{}]}";

    for (int i = 0; i < RACE_TICKS; i++)
        r->won[i] = claim(b, "race", (int64_t)(i + 1) * 1000, p);
    st_backend_close(b);
    return NULL;
}

/* Connections claiming the same ticks at once: each tick is won once, and
 * the queue holds exactly one job per tick won (claim and push are one
 * step). */
void racing_connections_claim_each_tick_exactly_once(struct test_ctx *t)
{
    struct racer r[RACERS];
    pthread_t th[RACERS];
    st_backend *b;
    int total = 0;

    for (int k = 0; k < RACERS; k++) {
        memset(&r[k], 0, sizeof r[k]);
        r[k].t = t;
        ASSERT_EQ(0, pthread_create(&th[k], NULL, race, &r[k]));
    }
    for (int k = 0; k < RACERS; k++)
        pthread_join(th[k], NULL);
    for (int i = 0; i < RACE_TICKS; i++) {
        int won = 0;
        for (int k = 0; k < RACERS; k++)
            won += r[k].won[i];
        if (won != 1) FAIL("tick %d was claimed %d times", i + 1, won);
        total += won;
    }
    b = raw_open(t);
    ASSERT_EQ(total, queued_n(b, "crons"));
    st_backend_close(b);
}

/* ------------------------------------------------ Schedules of the API --- */

/* The ticks the handles' schedulers logged as queued (see schedule.c). */
static pthread_mutex_t ticks_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t ticks[256];
static int nticks, nmissed;
static char missed_by[64]; /* the schedule of the last missed-tick job */

static void tick_log(void *ud, int level, const char *msg)
{
    const char *at = strstr(msg, " for tick ");
    test_log_fn(ud, level, msg);
    if (!at || strncmp(msg, "schedule '", 10) != 0) return;
    pthread_mutex_lock(&ticks_mu);
    if (nticks < 256) ticks[nticks++] = strtoll(at + 10, NULL, 10);
    if (strstr(msg, "for every missed tick")) {
        nmissed++;
        snprintf(missed_by, sizeof missed_by, "%.*s",
                 (int)strcspn(msg + 10, "'"), msg + 10);
    }
    pthread_mutex_unlock(&ticks_mu);
}

static int ticks_logged(void)
{
    int n;
    pthread_mutex_lock(&ticks_mu);
    n = nticks;
    pthread_mutex_unlock(&ticks_mu);
    return n;
}

static void ticks_reset(void)
{
    pthread_mutex_lock(&ticks_mu);
    nticks = nmissed = 0;
    missed_by[0] = '\0';
    pthread_mutex_unlock(&ticks_mu);
}

static stellar *open_sched(const struct test_ctx *t)
{
    stellar_options o = {.log_fn = tick_log};
    stellar *h = open_h(t, &o);
    reg(h, &task_record);
    return h;
}

static void add(stellar *h, const char *name, const char *cron, int missed)
{
    stellar_error e = {0};
    stellar_schedule s = {.name = name,
                          .cron = cron,
                          .timezone = "UTC",
                          .task = "record",
                          .params = "{\"from\":\"cron\"}",
                          .missed = missed};
    ASSERT_OK(stellar_schedule_add(h, &s, &e), &e);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Three handles (three servers) with one every-second schedule: each tick
 * queues one job, whichever handle claims it; none is missing between the
 * first and the last; and the jobs carry the schedule's params. */
void a_cron_schedule_queues_one_job_per_tick_across_handles(struct test_ctx *t)
{
    stellar *h[3];
    int n;

    ticks_reset();
    for (int i = 0; i < 3; i++) {
        h[i] = open_sched(t);
        add(h[i], "every-second", "* * * * * *", STELLAR_MISSED_SKIP);
        start(h[i]);
    }
    ASSERT_WAIT(ticks_logged() >= 4, 20000);
    ASSERT_WAIT(runs_of("record", true) >= 1, 10000);
    {
        struct run r = run_of("record", 0);
        ASSERT_STR_EQ("{\"from\":\"cron\"}", r.params);
        free(r.params);
    }
    for (int i = 0; i < 3; i++)
        stellar_close(h[i]);
    n = ticks_logged();
    pthread_mutex_lock(&ticks_mu);
    qsort(ticks, (size_t)n, sizeof ticks[0], cmp_i64);
    for (int i = 1; i < n; i++) {
        if (ticks[i] == ticks[i - 1])
            FAIL("tick %lld queued twice", (long long)ticks[i]);
        if (ticks[i] != ticks[i - 1] + 1000)
            FAIL("tick %lld missing", (long long)ticks[i - 1] + 1000);
    }
    pthread_mutex_unlock(&ticks_mu);
    test_note("%d ticks queued by 3 handles", n);
    /* One job per tick: each ran, or is still queued. */
    {
        st_backend *b = raw_open(t);
        ASSERT_EQ(n, runs_of("record", false) + queued_n(b, "default"));
        st_backend_close(b);
    }
}

/* A schedule whose last tick is a minute old: "skip" queues nothing for
 * the missed ticks, "once" queues one job for all of them, at start, with
 * the latest missed tick as its tick. */
void missed_ticks_are_skipped_or_queued_once(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    const char *p =
        "{\"class\":\"record\",\"queue\":\"elsewhere\",\"args\":[]}";
    int64_t now = test_now_ms(), old = (now / 1000 - 60) * 1000;
    stellar *h;

    ticks_reset();
    ASSERT_TRUE(claim(b, "skipper", old, p));
    ASSERT_TRUE(claim(b, "oncer", old, p));
    h = open_sched(t);
    add(h, "skipper", "* * * * * *", STELLAR_MISSED_SKIP);
    add(h, "oncer", "* * * * * *", STELLAR_MISSED_ONCE);
    start(h);
    ASSERT_WAIT(ticks_logged() >= 3, 20000);
    stellar_stop(h, -1);
    pthread_mutex_lock(&ticks_mu);
    ASSERT_EQ(1, nmissed);
    /* Every other tick logged is recent: within the grace of the start. */
    for (int i = 0; i < nticks; i++)
        if (ticks[i] < now - STELLAR_SCHEDULE_GRACE_MS - 1000)
            FAIL("tick %lld (%lld ms before the start) was queued",
                 (long long)ticks[i], (long long)(now - ticks[i]));
    pthread_mutex_unlock(&ticks_mu);
    stellar_close(h);
    st_backend_close(b);
}

/* A schedule seen for the first time has missed nothing: no job for the
 * ticks before it, and its first sight is stored. */
void a_new_schedule_has_missed_nothing(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    int64_t now = test_now_ms();
    stellar *h;
    json_t *rec;

    ticks_reset();
    h = open_sched(t);
    add(h, "fresh", "* * * * * *", STELLAR_MISSED_ONCE);
    start(h);
    ASSERT_WAIT(ticks_logged() >= 1, 20000);
    stellar_stop(h, -1);
    pthread_mutex_lock(&ticks_mu);
    ASSERT_EQ(0, nmissed);
    ASSERT_TRUE(ticks[0] > now - 1000);
    pthread_mutex_unlock(&ticks_mu);
    rec = record_of(b, "fresh");
    ASSERT_TRUE(json_integer_value(json_object_get(rec, "seen")) >= now - 1000);
    json_decref(rec);
    stellar_close(h);
    st_backend_close(b);
}

/* Two "once" schedules whose last tick is a minute old. "paused" is
 * paused, then resumed now through the API (the backend keeps the flag,
 * not when it was set: for the missed ticks, it was paused since its last
 * tick): its ticks up to the resume were skipped, not missed, so its start
 * queues no catch-up job. "downed" was resumed 30 s ago (the time given to
 * the backend) and then no scheduler ran: the ticks since its resume were
 * missed, one job. */
void ticks_passed_while_paused_are_not_missed_at_resume(struct test_ctx *t)
{
    st_backend *b = raw_open(t);
    const char *p =
        "{\"class\":\"record\",\"queue\":\"elsewhere\",\"args\":[]}";
    int64_t now = test_now_ms(), old = (now / 1000 - 60) * 1000;
    stellar_error e = {0};
    stellar *h;

    ticks_reset();
    ASSERT_OK(b->ops->sched_set(b, "paused", -1, old - 1000, &e), &e);
    ASSERT_OK(b->ops->sched_set(b, "downed", -1, old - 1000, &e), &e);
    ASSERT_TRUE(claim(b, "paused", old, p));
    ASSERT_TRUE(claim(b, "downed", old, p));
    ASSERT_OK(b->ops->sched_set(b, "downed", 1, -1, &e), &e);
    ASSERT_OK(b->ops->sched_set(b, "downed", 0, now - 30000, &e), &e);
    h = open_sched(t);
    add(h, "paused", "* * * * * *", STELLAR_MISSED_ONCE);
    add(h, "downed", "* * * * * *", STELLAR_MISSED_ONCE);
    ASSERT_OK(stellar_schedule_pause(h, "paused", true, &e), &e);
    ASSERT_OK(stellar_schedule_pause(h, "paused", false, &e), &e);
    start(h);
    ASSERT_WAIT(ticks_logged() >= 4, 20000);
    stellar_stop(h, -1);
    pthread_mutex_lock(&ticks_mu);
    ASSERT_EQ(1, nmissed);
    ASSERT_STR_EQ("downed", missed_by);
    pthread_mutex_unlock(&ticks_mu);
    stellar_close(h);
    st_backend_close(b);
}

static int64_t jobs_on(stellar *h, const char *queue)
{
    stellar_error e = {0};
    int64_t n = 0;
    ASSERT_OK(stellar_length(h, queue, &n, &e), &e);
    return n;
}

static int record_cron_run(stellar_api *api, const json_t *params,
                           stellar_next *next)
{
    return record_run(api, params, next);
}

/* Pause and resume through the API, the listing, and the recurrent calls
 * on a cron task: stop pauses its schedule (for every handle) and removes
 * its copies; enqueueRecurrent resumes it and queues one now. */
void schedules_are_listed_paused_and_resumed(struct test_ctx *t)
{
    const stellar_task cron_task = {.name = "nightly",
                                    .description = "a cron task",
                                    .queue = "night",
                                    .cron = "0 3 * * *",
                                    .timezone = "America/New_York",
                                    .run = record_cron_run};
    stellar *h = open_h(t, NULL), *h2 = open_h(t, NULL);
    stellar_error e = {0};
    json_t *all = NULL, *s;
    int64_t removed = -1;

    reg(h, &task_record);
    reg(h, &cron_task);
    reg(h2, &cron_task);
    add(h, "every-minute", "*/1 * * * *", STELLAR_MISSED_ONCE);
    ASSERT_OK(stellar_schedules(h, &all, &e), &e);
    ASSERT_EQ(2, json_object_size(all));
    s = json_object_get(all, "nightly");
    ASSERT_STR_EQ("task", json_string_value(json_object_get(s, "kind")));
    ASSERT_STR_EQ("America/New_York",
                  json_string_value(json_object_get(s, "timezone")));
    ASSERT_STR_EQ("night", json_string_value(json_object_get(s, "queue")));
    ASSERT_TRUE(json_is_null(json_object_get(s, "last")));
    ASSERT_TRUE(json_is_false(json_object_get(s, "paused")));
    ASSERT_EQ(5, json_array_size(json_object_get(s, "upcoming")));
    {
        /* 03:00 in New York is 07:00 or 08:00 UTC. */
        const char *utc = json_string_value(json_object_get(s, "next_utc"));
        const char *loc = json_string_value(json_object_get(s, "next_local"));
        ASSERT_TRUE(utc &&
                    (strstr(utc, "T07:00:00") || strstr(utc, "T08:00:00")));
        ASSERT_TRUE(loc && strstr(loc, "T03:00:00-0"));
    }
    s = json_object_get(all, "every-minute");
    ASSERT_STR_EQ("schedule", json_string_value(json_object_get(s, "kind")));
    ASSERT_STR_EQ("once", json_string_value(json_object_get(s, "missed")));
    ASSERT_JSON_EQ("{\"from\":\"cron\"}", json_object_get(s, "params"));
    json_decref(all);

    ASSERT_EQ(STELLAR_ENOTFOUND, stellar_schedule_pause(h, "nope", true, &e));
    ASSERT_OK(stellar_schedule_pause(h, "every-minute", true, &e), &e);
    ASSERT_OK(stellar_schedules(h, &all, &e), &e);
    ASSERT_TRUE(json_is_true(
        json_object_get(json_object_get(all, "every-minute"), "paused")));
    json_decref(all);

    /* stopRecurrent on a cron task: paused, seen so by the other handle. */
    ASSERT_OK(stellar_enqueue_recurrent(h, "nightly", &e), &e);
    ASSERT_EQ(1, jobs_on(h, "night"));
    ASSERT_OK(stellar_stop_recurrent(h, "nightly", &removed, &e), &e);
    ASSERT_EQ(1, removed);
    ASSERT_EQ(0, jobs_on(h, "night"));
    ASSERT_OK(stellar_schedules(h2, &all, &e), &e);
    ASSERT_TRUE(json_is_true(
        json_object_get(json_object_get(all, "nightly"), "paused")));
    json_decref(all);
    ASSERT_OK(stellar_enqueue_recurrent(h2, "nightly", &e), &e);
    ASSERT_EQ(1, jobs_on(h, "night"));
    ASSERT_OK(stellar_schedules(h, &all, &e), &e);
    ASSERT_TRUE(json_is_false(
        json_object_get(json_object_get(all, "nightly"), "paused")));
    json_decref(all);
    stellar_close(h2);
    stellar_close(h);
}

/* What load refuses: cron with frequency, a bad expression (the field
 * named), an unknown zone, timezone without cron; and for schedules an
 * unknown task, a taken name, a bad missed policy, params not an object. */
void bad_schedules_are_refused_at_load_naming_the_field(struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    stellar_task bad = {.name = "c",
                        .description = "d",
                        .run = record_cron_run,
                        .cron = "* * * * *",
                        .frequency = 1000};
    stellar_schedule s = {.name = "s", .cron = "0 3 * * *", .task = "record"};

    reg(h, &task_record);
    ASSERT_EQ(STELLAR_EINVAL, stellar_task_register(h, &bad, &e));
    ASSERT_TRUE(strstr(e.msg, "'cron'") && strstr(e.msg, "'frequency'"));
    bad.frequency = 0;
    bad.cron = "0 25 * * *";
    ASSERT_EQ(STELLAR_EINVAL, stellar_task_register(h, &bad, &e));
    ASSERT_TRUE(strstr(e.msg, "task 'c': field 'cron'") &&
                strstr(e.msg, "hour field"));
    bad.cron = "0 3 * * *";
    bad.timezone = "Mars/Olympus_Mons";
    ASSERT_TRUE(stellar_task_register(h, &bad, &e) < 0);
    ASSERT_TRUE(strstr(e.msg, "field 'timezone'") != NULL);
    bad.cron = NULL;
    bad.timezone = "UTC";
    ASSERT_EQ(STELLAR_EINVAL, stellar_task_register(h, &bad, &e));
    ASSERT_TRUE(strstr(e.msg, "'timezone'") != NULL);
    /* None of these left a task or a schedule behind. */
    bad.timezone = "UTC";
    bad.cron = "@daily";
    ASSERT_OK(stellar_task_register(h, &bad, &e), &e);

    s.task = "nobody";
    ASSERT_EQ(STELLAR_ENOTASK, stellar_schedule_add(h, &s, &e));
    s.task = "record";
    s.missed = 7;
    ASSERT_EQ(STELLAR_EINVAL, stellar_schedule_add(h, &s, &e));
    ASSERT_TRUE(strstr(e.msg, "'missed'") != NULL);
    s.missed = STELLAR_MISSED_SKIP;
    s.params = "[1]";
    ASSERT_EQ(STELLAR_EINVAL, stellar_schedule_add(h, &s, &e));
    ASSERT_TRUE(strstr(e.msg, "'params'") != NULL);
    s.params = NULL;
    s.cron = "* * * *";
    ASSERT_EQ(STELLAR_EINVAL, stellar_schedule_add(h, &s, &e));
    ASSERT_TRUE(strstr(e.msg, "schedule 's': field 'cron'") != NULL);
    s.cron = "0 3 * * *";
    s.name = "c"; /* the cron task's schedule has this name */
    ASSERT_EQ(STELLAR_EEXISTS, stellar_schedule_add(h, &s, &e));
    s.name = "s";
    ASSERT_OK(stellar_schedule_add(h, &s, &e), &e);
    stellar_close(h);
}
