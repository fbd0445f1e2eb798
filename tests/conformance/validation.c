/*
 * validation.c: task validation: what stellar_task_register refuses, what it
 * lists, and opening an unknown backend.
 */
#include "conformance.h"

/* ------------------------------------------------------ Validation --- */

static void expect_refusal(const struct test_ctx *t, const stellar_task *task,
                           int code, const char *name, const char *field)
{
    stellar *h = open_h(t, NULL);
    stellar_error e = {0};
    json_t *list;

    reg(h, &task_record);
    ASSERT_EQ(code, stellar_task_register(h, task, &e));
    ASSERT_EQ(code, e.code);
    if (name && !strstr(e.msg, name))
        FAIL("message does not name task %s: %s", name, e.msg);
    if (field && !strstr(e.msg, field))
        FAIL("message does not name field %s: %s", field, e.msg);
    list = stellar_tasks_json(h);
    ASSERT_EQ(1, json_array_size(list)); /* only "record" */
    json_decref(list);
    stellar_close(h);
}

void a_task_without_a_name_is_refused(struct test_ctx *t)
{
    stellar_task x = {.description = "d", .run = record_run};
    expect_refusal(t, &x, STELLAR_EINVAL, NULL, "name");
}

void a_task_without_a_description_is_refused(struct test_ctx *t)
{
    stellar_task x = {.name = "undescribed", .run = record_run};
    expect_refusal(t, &x, STELLAR_EINVAL, "undescribed", "description");
}

void a_task_without_run_is_refused(struct test_ctx *t)
{
    stellar_task x = {.name = "lazy", .description = "d"};
    expect_refusal(t, &x, STELLAR_EINVAL, "lazy", "run");
}

void a_task_with_a_negative_frequency_is_refused(struct test_ctx *t)
{
    stellar_task x = {.name = "backwards",
                      .description = "d",
                      .frequency = -5,
                      .run = record_run};
    expect_refusal(t, &x, STELLAR_EINVAL, "backwards", "frequency");
}

void a_second_task_with_the_same_name_is_refused(struct test_ctx *t)
{
    stellar_task x = {
        .name = "record", .description = "again", .run = record_run};
    expect_refusal(t, &x, STELLAR_EEXISTS, "record", "name");
}

void registered_tasks_are_listed_with_their_properties(struct test_ctx *t)
{
    stellar_task x = {.name = "every",
                      .description = "each second",
                      .queue = "clock",
                      .frequency = 1000,
                      .run = record_run};
    stellar *h = open_h(t, NULL);
    json_t *list, *a, *c;

    reg(h, &task_record);
    reg(h, &x);
    list = stellar_tasks_json(h);
    ASSERT_EQ(2, json_array_size(list));
    a = json_array_get(list, 0);
    c = json_array_get(list, 1);
    if (strcmp(json_string_value(json_object_get(a, "name")), "every") != 0) {
        json_t *tmp = a;
        a = c;
        c = tmp;
    }
    ASSERT_STR_EQ("every", json_string_value(json_object_get(a, "name")));
    ASSERT_STR_EQ("each second",
                  json_string_value(json_object_get(a, "description")));
    ASSERT_STR_EQ("clock", json_string_value(json_object_get(a, "queue")));
    ASSERT_EQ(1000, json_integer_value(json_object_get(a, "frequency")));
    ASSERT_STR_EQ("record", json_string_value(json_object_get(c, "name")));
    ASSERT_STR_EQ("default", json_string_value(json_object_get(c, "queue")));
    ASSERT_EQ(0, json_integer_value(json_object_get(c, "frequency")));
    json_decref(list);
    stellar_close(h);
}

void opening_an_unknown_backend_fails_with_a_message(struct test_ctx *t)
{
    stellar_options o = {.url = "nosuch://x"};
    stellar_error e = {0};
    stellar *h = (stellar *)&o; /* must be reset to NULL */

    (void)t;
    ASSERT_TRUE(stellar_open(&h, &o, &e) < 0);
    ASSERT_TRUE(h == NULL);
    ASSERT_TRUE(e.msg[0] != '\0');
}
