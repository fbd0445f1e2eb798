/*
 * handle.c: opening a handle, registering a task and starting the
 * processors under failed allocations: each fails cleanly, and start
 * unregisters the processors it registered.
 */
#include "oom.h"

/* -------------------------------------------- Open, register, start --- */

static int call_open(struct fx *f, stellar_error *e)
{
    static const char *const qs[] = {"q", "r", NULL};
    stellar_options o = {0};
    o.url = f->t->url;
    o.queues = qs;
    o.name = "oom";
    return stellar_open(&f->h2, &o, e);
}

static void close_h2(struct fx *f, int rc)
{
    (void)rc;
    stellar_close(f->h2);
    f->h2 = NULL;
}

static void setup_h2(struct fx *f)
{
    stellar_options o = {0};
    o.processors = 2;
    o.poll_ms = 10;
    f->h2 = open_h_at(f->t, &o, STELLAR_LOG_DEBUG);
}

static const stellar_task task_opts = {
    .name = "opts",
    .description = "with plugins and their options",
    .queue = "q",
    .frequency = 1000,
    .plugins = queue_lock,
    .plugin_options = "{\"queueLock\":{\"lockTimeout\":10},\"x\":[1,2]}",
    .run = noop_run};

static int call_register_task(struct fx *f, stellar_error *e)
{
    return stellar_task_register(f->h2, &task_opts, e);
}

static void collect_tasks(struct fx *f)
{
    f->out = stellar_tasks_json(f->h2);
}

static int call_start(struct fx *f, stellar_error *e)
{
    return stellar_start(f->h2, e);
}

static void setup_start(struct fx *f)
{
    setup_h2(f);
    register_tasks(f->h2);
}

static const struct op handle_ops[] = {
    {.name = "open", .setup = setup_all, .call = call_open, .done = close_h2},
    {.name = "register a task",
     .setup = setup_h2,
     .call = call_register_task,
     .done = close_h2,
     .collect = collect_tasks},
    /* Unregisters the processors it registered. */
    {.name = "start",
     .setup = setup_start,
     .call = call_start,
     .done = close_h2,
     .async = true,
     .undoes = true},
};

void open_register_and_start_fail_cleanly(struct test_ctx *t)
{
    oom_loop_all(t, handle_ops, sizeof handle_ops / sizeof handle_ops[0]);
}
