/*
 * app_plugins.c: a plugin of the app's own: vetoes of an enqueue and of a
 * run, afterPerform clearing an error, hook order, enqueueAt/enqueueIn;
 * pluginOptions keys in both spellings; jobLock with a later veto and
 * behind many delayed copies; an unknown plugin name.
 */
#include "plugins.h"

/* ------------------------------------------------ The app's plugins --- */

static pthread_mutex_t hooks_mu = PTHREAD_MUTEX_INITIALIZER;
static char hook_trail[2048];  /* "B.beforeEnqueue A.beforeEnqueue ..." */
static char seen_error[256];   /* what the gate's afterPerform saw */
static char seen_options[256]; /* what the probe saw */
static int gate_perform_calls; /* the gate's beforePerform */
static bool worker_in_enqueue, worker_in_perform;

static void trail(const char *what)
{
    pthread_mutex_lock(&hooks_mu);
    if (strlen(hook_trail) + strlen(what) + 2 < sizeof hook_trail) {
        if (hook_trail[0]) strcat(hook_trail, " ");
        strcat(hook_trail, what);
    }
    pthread_mutex_unlock(&hooks_mu);
}

static void assert_trail(const char *want)
{
    pthread_mutex_lock(&hooks_mu);
    if (strcmp(hook_trail, want) != 0)
        FAIL("hook calls\n  got:  %s\n  want: %s", hook_trail, want);
    pthread_mutex_unlock(&hooks_mu);
}

/* params.<flag> of the job's args [params]. */
static bool flag(stellar_job *job, const char *name)
{
    return json_is_true(
        json_object_get(json_array_get(stellar_job_args(job), 0), name));
}

static int gate_before_enqueue(stellar_job *job, const json_t *o)
{
    (void)o;
    pthread_mutex_lock(&hooks_mu);
    worker_in_enqueue |= stellar_job_worker(job) != NULL;
    pthread_mutex_unlock(&hooks_mu);
    trail("gate.beforeEnqueue");
    return flag(job, "veto_enqueue") ? STELLAR_VETOED : STELLAR_OK;
}

static int gate_after_enqueue(stellar_job *job, const json_t *o)
{
    (void)job;
    (void)o;
    trail("gate.afterEnqueue");
    return STELLAR_OK;
}

/* gate_perform_calls, read under the lock the hooks write it under. */
static int gate_calls(void)
{
    int n;
    pthread_mutex_lock(&hooks_mu);
    n = gate_perform_calls;
    pthread_mutex_unlock(&hooks_mu);
    return n;
}

static int gate_before_perform(stellar_job *job, const json_t *o)
{
    (void)o;
    pthread_mutex_lock(&hooks_mu);
    gate_perform_calls++;
    worker_in_perform = stellar_job_worker(job) != NULL;
    pthread_mutex_unlock(&hooks_mu);
    return flag(job, "veto_perform") ? STELLAR_VETOED : STELLAR_OK;
}

static int gate_after_perform(stellar_job *job, const json_t *o)
{
    const char *err = stellar_job_error(job);
    (void)o;
    pthread_mutex_lock(&hooks_mu);
    snprintf(seen_error, sizeof seen_error, "%s", err ? err : "(none)");
    pthread_mutex_unlock(&hooks_mu);
    if (flag(job, "clear")) stellar_job_set_error(job, NULL);
    return STELLAR_OK;
}

static const stellar_plugin plugin_gate = {
    "gate", gate_before_enqueue, gate_after_enqueue, gate_before_perform,
    gate_after_perform};

#define TRAIL_HOOK(P, H)                                                       \
    static int P##_##H(stellar_job *job, const json_t *o)                      \
    {                                                                          \
        (void)job;                                                             \
        (void)o;                                                               \
        trail(#P "." #H);                                                      \
        return STELLAR_OK;                                                     \
    }
TRAIL_HOOK(orderA, beforeEnqueue)
TRAIL_HOOK(orderA, afterEnqueue)
TRAIL_HOOK(orderA, beforePerform)
TRAIL_HOOK(orderA, afterPerform)
TRAIL_HOOK(orderB, beforeEnqueue)
TRAIL_HOOK(orderB, afterEnqueue)
TRAIL_HOOK(orderB, beforePerform)
TRAIL_HOOK(orderB, afterPerform)

static const stellar_plugin plugin_order_a = {
    "orderA", orderA_beforeEnqueue, orderA_afterEnqueue, orderA_beforePerform,
    orderA_afterPerform};
static const stellar_plugin plugin_order_b = {
    "orderB", orderB_beforeEnqueue, orderB_afterEnqueue, orderB_beforePerform,
    orderB_afterPerform};

static int probe_before_perform(stellar_job *job, const json_t *o)
{
    char *txt = json_dumps(o, JSON_COMPACT);
    (void)job;
    pthread_mutex_lock(&hooks_mu);
    snprintf(seen_options, sizeof seen_options, "%s", txt ? txt : "");
    pthread_mutex_unlock(&hooks_mu);
    free(txt);
    return STELLAR_OK;
}

static const stellar_plugin plugin_probe = {"probe", NULL, NULL,
                                            probe_before_perform, NULL};

static void register_plugin(const stellar_plugin *p)
{
    stellar_error e = {0};
    ASSERT_OK(stellar_plugin_register(p, &e), &e);
}

static const stellar_task task_gated_by_app = {
    .name = "guarded",
    .description = "under the app's plugin 'gate'",
    .plugins = (const char *const[]){"gate", NULL},
    .run = failing_run};

void an_apps_plugin_can_veto_an_enqueue_and_nothing_is_stored(
    struct test_ctx *t)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *queues = NULL;

    register_plugin(&plugin_gate);
    /* Names are unique, ignoring case, built-ins included. */
    ASSERT_EQ(STELLAR_EEXISTS, stellar_plugin_register(&plugin_gate, &e));
    {
        static const stellar_plugin clash = {"JobLock", NULL, NULL, NULL, NULL};
        ASSERT_EQ(STELLAR_EEXISTS, stellar_plugin_register(&clash, &e));
    }
    reg(h, &task_gated_by_app);
    enqueue_expect(h, STELLAR_VETOED, "guarded", "{\"veto_enqueue\":true}");
    enqueue_in_expect(h, STELLAR_VETOED, 1000, "guarded",
                      "{\"veto_enqueue\":true}");
    enqueue_at_expect(h, STELLAR_VETOED, test_now_ms() + 1000, "guarded",
                      "{\"veto_enqueue\":true}");
    ASSERT_EQ(0, test_length(h, "default"));
    ASSERT_EQ(0, timestamps(h));
    ASSERT_OK(stellar_queues(h, &queues, &e), &e);
    ASSERT_EQ(0, json_array_size(queues));
    json_decref(queues);
    /* Every hook call above stopped at the veto: no afterEnqueue. */
    assert_trail("gate.beforeEnqueue gate.beforeEnqueue gate.beforeEnqueue");
    enqueue_expect(h, STELLAR_OK, "guarded", "{\"why\":\"x\"}");
    ASSERT_EQ(1, test_length(h, "default"));
    ASSERT_TRUE(!worker_in_enqueue); /* no worker in enqueue hooks */
    stellar_close(h);
}

void an_apps_plugin_vetoing_a_run_drops_the_job_uncounted(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);

    register_plugin(&plugin_gate);
    reg(h, &task_gated_by_app);
    enqueue_expect(h, STELLAR_OK, "guarded", "{\"veto_perform\":true}");
    start(h);
    ASSERT_WAIT(gate_calls() == 1 && workers_idle(h), 5000);
    ASSERT_EQ(0, plain()); /* the task never ran */
    ASSERT_EQ(0, test_stat(h, "processed"));
    ASSERT_EQ(0, test_stat(h, "failed"));
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_EQ(0, test_length(h, "default"));
    ASSERT_EQ(0, timestamps(h));
    pthread_mutex_lock(&hooks_mu);
    ASSERT_TRUE(worker_in_perform);
    pthread_mutex_unlock(&hooks_mu);
    stellar_close(h);
}

void an_apps_after_perform_sees_the_error_and_may_clear_it(struct test_ctx *t)
{
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    stellar_error e = {0};
    json_t *f = NULL;

    register_plugin(&plugin_gate);
    reg(h, &task_gated_by_app);
    start(h);
    enqueue_expect(h, STELLAR_OK, "guarded",
                   "{\"why\":\"oops 42\",\"clear\":true}");
    ASSERT_WAIT(test_stat(h, "processed") == 1, 5000);
    pthread_mutex_lock(&hooks_mu);
    ASSERT_STR_EQ("oops 42", seen_error);
    pthread_mutex_unlock(&hooks_mu);
    ASSERT_EQ(0, test_stat(h, "failed"));
    ASSERT_EQ(0, test_failed_count(h));

    /* Not cleared: the job fails with the task's error. */
    enqueue_expect(h, STELLAR_OK, "guarded", "{\"why\":\"oops 43\"}");
    ASSERT_WAIT(test_failed_count(h) == 1, 5000);
    pthread_mutex_lock(&hooks_mu);
    ASSERT_STR_EQ("oops 43", seen_error);
    pthread_mutex_unlock(&hooks_mu);
    ASSERT_OK(stellar_failed(h, 0, 0, &f, &e), &e);
    ASSERT_STR_EQ("oops 43", json_string_value(json_object_get(
                                 json_array_get(f, 0), "error")));
    json_decref(f);
    ASSERT_EQ(1, test_stat(h, "processed"));
    ASSERT_WAIT(test_stat(h, "failed") == 1, 5000);
    stellar_close(h);
}

void hooks_run_in_the_order_the_task_lists_its_plugins(struct test_ctx *t)
{
    const stellar_task ordered = {
        .name = "ordered",
        .description = "orderB then orderA",
        .plugins = (const char *const[]){"orderB", "orderA", NULL},
        .run = plain_run};
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);

    register_plugin(&plugin_order_a);
    register_plugin(&plugin_order_b);
    reg(h, &ordered);
    /* Enqueued before the processors start: a running processor may take
     * a job while its afterEnqueue hooks still run (as in node-resque). */
    enqueue_expect(h, STELLAR_OK, "ordered", NULL);
    start(h);
    /* Counted when the processor acks the job: after afterPerform. */
    ASSERT_WAIT(test_stat(h, "processed") == 1, 5000);
    assert_trail("orderB.beforeEnqueue orderA.beforeEnqueue "
                 "orderB.afterEnqueue orderA.afterEnqueue "
                 "orderB.beforePerform orderA.beforePerform "
                 "orderB.afterPerform orderA.afterPerform");
    stellar_close(h);
}

void enqueue_hooks_run_for_enqueue_at_and_enqueue_in_too(struct test_ctx *t)
{
    const stellar_task ordered = {.name = "ordered",
                                  .description = "orderA",
                                  .plugins =
                                      (const char *const[]){"orderA", NULL},
                                  .run = plain_run};
    stellar *h = open_h(t, NULL);

    register_plugin(&plugin_order_a);
    reg(h, &ordered);
    enqueue_in_expect(h, STELLAR_OK, 60000, "ordered", "{\"n\":1}");
    assert_trail("orderA.beforeEnqueue orderA.afterEnqueue");
    enqueue_at_expect(h, STELLAR_OK, test_now_ms() + 120000, "ordered",
                      "{\"n\":2}");
    assert_trail("orderA.beforeEnqueue orderA.afterEnqueue "
                 "orderA.beforeEnqueue orderA.afterEnqueue");
    ASSERT_EQ(2, timestamps(h));
    stellar_close(h);
}

void plugin_options_apply_under_either_spelling_of_the_name(struct test_ctx *t)
{
    const stellar_task probed_a = {.name = "probedA",
                                   .description = "options keyed Probe",
                                   .plugins =
                                       (const char *const[]){"probe", NULL},
                                   .plugin_options = "{\"Probe\":{\"x\":1}}",
                                   .run = plain_run};
    const stellar_task probed_b = {.name = "probedB",
                                   .description = "options keyed probe",
                                   .plugins =
                                       (const char *const[]){"PROBE", NULL},
                                   .plugin_options = "{\"probe\":{\"x\":2}}",
                                   .run = plain_run};
    stellar_options o = {.processors = 2};
    stellar *h = open_h(t, &o);

    snprintf(g_dir, sizeof g_dir, "%s", t->dir);
    register_plugin(&plugin_probe);
    reg(h, &task_lock_a);
    reg(h, &task_lock_b);
    reg(h, &probed_a);
    reg(h, &probed_b);
    start(h);

    /* jobLock's lockTimeout, given as "JobLock" (node-resque's class name)
     * and as "jobLock": both show in the lock's value and TTL. */
    enqueue_expect(h, STELLAR_OK, "lockA", NULL);
    enqueue_expect(h, STELLAR_OK, "lockB", NULL);
    ASSERT_WAIT(gated() == 2, 5000);
    assert_lock_key(t, "workerslock:lockA:default:[{}]", 77);
    assert_lock_key(t, "workerslock:lockB:default:[{}]", 88);
    open_gate("go-lockA");
    open_gate("go-lockB");
    ASSERT_WAIT(test_stat(h, "processed") == 2, 5000);
    ASSERT_EQ(0, locks_count(h));

    enqueue_expect(h, STELLAR_OK, "probedA", NULL);
    ASSERT_WAIT(test_stat(h, "processed") == 3, 5000);
    pthread_mutex_lock(&hooks_mu);
    ASSERT_STR_EQ("{\"x\":1}", seen_options);
    pthread_mutex_unlock(&hooks_mu);
    enqueue_expect(h, STELLAR_OK, "probedB", NULL);
    ASSERT_WAIT(test_stat(h, "processed") == 4, 5000);
    pthread_mutex_lock(&hooks_mu);
    ASSERT_STR_EQ("{\"x\":2}", seen_options);
    pthread_mutex_unlock(&hooks_mu);
    stellar_close(h);
}

void a_joblock_taken_is_released_when_a_later_plugin_vetoes_the_run(
    struct test_ctx *t)
{
    const stellar_task locked_gate = {
        .name = "lockedGate",
        .description = "jobLock, then the app's gate",
        .plugins = (const char *const[]){"jobLock", "gate", NULL},
        .run = plain_run};
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);

    register_plugin(&plugin_gate);
    reg(h, &locked_gate);
    enqueue_expect(h, STELLAR_OK, "lockedGate", "{\"veto_perform\":true}");
    start(h);
    ASSERT_WAIT(gate_calls() == 1 && workers_idle(h), 5000);
    ASSERT_EQ(0, plain());
    /* The run did not happen: the lock it took must not outlive it (it
     * would hold back every run of these params for lockTimeout, 1 h). */
    ASSERT_TRUE(kv_absent(
        t, "workerslock:lockedGate:default:[{\"veto_perform\":true}]"));
    ASSERT_EQ(0, locks_count(h));
    ASSERT_EQ(0, test_stat(h, "processed"));
    ASSERT_EQ(0, test_stat(h, "failed"));
    stellar_close(h);
}

#define N_WAITING 70

void a_blocked_joblock_run_waits_behind_any_number_of_delayed_copies(
    struct test_ctx *t)
{
    const stellar_task held = {.name = "held",
                               .description = "jobLock",
                               .plugins =
                                   (const char *const[]){"jobLock", NULL},
                               .run = plain_run};
    stellar_options po = {.processors = 1, .no_scheduler = true};
    stellar *client = open_h(t, NULL), *h;
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    int64_t first_s = test_now_ms() / 1000 + 1;
    bool set = false;

    /* 70 copies of the job wait, one in each of the next 70 seconds (the
     * most the Redis layout allows: one identical payload a second), and
     * another run holds the lock. */
    for (int k = 0; k < N_WAITING; k++)
        enqueue_at_expect(client, STELLAR_OK, (first_s + k) * 1000, "held",
                          NULL);
    ASSERT_OK(b->ops->kv_set(b, "workerslock:held:default:[{}]", "1", 60000,
                             true, &set, &e),
              &e);
    ASSERT_TRUE(set);
    enqueue_expect(client, STELLAR_OK, "held", NULL);

    /* The queued copy is blocked: it must go back to the delayed set,
     * after the others, and not fail. */
    h = open_h(t, &po);
    reg(h, &held);
    start(h);
    ASSERT_WAIT(test_length(h, "default") == 0 && workers_idle(h), 10000);
    ASSERT_EQ(0, test_failed_count(h));
    ASSERT_EQ(0, plain());
    ASSERT_EQ(N_WAITING + 1, scheduled(h, "held", NULL));
    stellar_close(h);
    stellar_close(client);
    st_backend_close(b);
}

void a_task_naming_an_unknown_plugin_stops_start_naming_the_task(
    struct test_ctx *t)
{
    const stellar_task bad = {
        .name = "misconfigured",
        .description = "names a plugin nobody registered",
        .plugins = (const char *const[]){"jobLock", "noSuchPlugin", NULL},
        .run = plain_run};
    stellar_options o = {.processors = 1};
    stellar *h = open_h(t, &o);
    stellar_error e = {0};

    reg(h, &task_quiet);
    reg(h, &bad);
    ASSERT_EQ(STELLAR_EINVAL, stellar_start(h, &e));
    test_note("stellar_start: %s", e.msg);
    ASSERT_TRUE(strstr(e.msg, "'misconfigured'") != NULL);
    ASSERT_TRUE(strstr(e.msg, "noSuchPlugin") != NULL);
    /* Nothing started: no workers registered. */
    ASSERT_TRUE(workers_idle(h));
    {
        json_t *w = NULL;
        ASSERT_OK(stellar_workers(h, &w, &e), &e);
        ASSERT_EQ(0, json_object_size(w));
        json_decref(w);
    }
    stellar_close(h);
}
