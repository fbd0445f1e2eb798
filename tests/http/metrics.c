/*
 * metrics.c: /metrics parsed as Prometheus text (the rules a linter
 * checks) with counters that move, and the schedules listed, paused and
 * measured there.
 */
#include "http_test.h"

/* ----------------------------------------------------------- Metrics --- */

/* A parsed exposition: families with HELP and TYPE, and samples. */
struct family {
    char name[128], type[16];
    bool help;
};
struct sample {
    char name[128], labels[512];
    double value;
};
struct expo {
    struct family fam[64];
    int nfam;
    struct sample smp[1024];
    int nsmp;
};

static bool metric_name_ok(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_' || *s == ':')) return false;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == ':'))
            return false;
    return true;
}

static struct family *family_of(struct expo *x, const char *name)
{
    for (int i = 0; i < x->nfam; i++)
        if (strcmp(x->fam[i].name, name) == 0) return &x->fam[i];
    return NULL;
}

/* Parses Prometheus text 0.0.4 and checks the rules a linter checks:
 * names, HELP and TYPE before samples, one TYPE per family, counters named
 * _total, histogram samples (_bucket with le, _sum, _count), label syntax
 * and escapes, values as numbers. */
static void parse_exposition(const char *text, struct expo *x)
{
    const char *line = text;
    memset(x, 0, sizeof *x);
    if (!*text || text[strlen(text) - 1] != '\n')
        FAIL("the exposition must end with a line feed");
    while (*line) {
        const char *end = strchr(line, '\n');
        char buf[2048];
        size_t len = (size_t)(end - line);
        if (len >= sizeof buf) FAIL("line too long");
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = end + 1;
        if (!len) FAIL("empty line in the exposition");
        if (strncmp(buf, "# HELP ", 7) == 0 ||
            strncmp(buf, "# TYPE ", 7) == 0) {
            char name[128], rest[512];
            struct family *f;
            if (sscanf(buf + 7, "%127s %511[^\n]", name, rest) != 2)
                FAIL("bad comment: %s", buf);
            if (!metric_name_ok(name)) FAIL("bad metric name: %s", name);
            if (!(f = family_of(x, name))) {
                if (x->nfam == 64) FAIL("too many families");
                f = &x->fam[x->nfam++];
                snprintf(f->name, sizeof f->name, "%s", name);
            }
            if (buf[2] == 'H') {
                if (f->help) FAIL("two HELP lines for %s", name);
                f->help = true;
            } else {
                if (f->type[0]) FAIL("two TYPE lines for %s", name);
                if (strcmp(rest, "counter") && strcmp(rest, "gauge") &&
                    strcmp(rest, "histogram") && strcmp(rest, "summary") &&
                    strcmp(rest, "untyped"))
                    FAIL("bad TYPE: %s", buf);
                if (strcmp(rest, "counter") == 0 &&
                    (strlen(name) < 6 ||
                     strcmp(name + strlen(name) - 6, "_total") != 0))
                    FAIL("counter %s does not end in _total", name);
                snprintf(f->type, sizeof f->type, "%.15s", rest);
            }
            continue;
        }
        if (buf[0] == '#') continue;
        {
            struct sample *sm;
            const char *p = buf;
            char base[128], *endv;
            struct family *f;
            size_t nl = strcspn(buf, "{ ");
            if (x->nsmp == 1024) FAIL("too many samples");
            sm = &x->smp[x->nsmp++];
            if (nl >= sizeof sm->name) FAIL("name too long: %s", buf);
            memcpy(sm->name, buf, nl);
            sm->name[nl] = '\0';
            if (!metric_name_ok(sm->name)) FAIL("bad sample name: %s", buf);
            p = buf + nl;
            if (*p == '{') {
                const char *q = p + 1;
                char *o = sm->labels;
                /* name="value" pairs, comma separated; \\ \" \n escapes. */
                while (*q != '}') {
                    const char *ln = q;
                    while (isalnum((unsigned char)*q) || *q == '_')
                        q++;
                    if (q == ln || *q != '=' || q[1] != '"')
                        FAIL("bad label in: %s", buf);
                    q += 2;
                    while (*q != '"') {
                        if (!*q) FAIL("unterminated label value: %s", buf);
                        if (*q == '\\') {
                            if (q[1] != '\\' && q[1] != '"' && q[1] != 'n')
                                FAIL("bad escape in: %s", buf);
                            q++;
                        }
                        q++;
                    }
                    q++;
                    if (*q == ',')
                        q++;
                    else if (*q != '}')
                        FAIL("bad label list: %s", buf);
                }
                len = (size_t)(q - (p + 1));
                if (len >= sizeof sm->labels) FAIL("labels too long");
                memcpy(o, p + 1, len);
                o[len] = '\0';
                p = q + 1;
            }
            if (*p != ' ') FAIL("no value in: %s", buf);
            sm->value = strtod(p + 1, &endv);
            if (endv == p + 1 || *endv) FAIL("bad value in: %s", buf);
            /* The family: the name, or for a histogram its base. */
            snprintf(base, sizeof base, "%s", sm->name);
            f = family_of(x, base);
            if (!f) {
                static const char *const sfx[] = {"_bucket", "_sum", "_count"};
                for (int i = 0; i < 3 && !f; i++) {
                    size_t bl = strlen(base), sl = strlen(sfx[i]);
                    if (bl > sl && strcmp(base + bl - sl, sfx[i]) == 0) {
                        base[bl - sl] = '\0';
                        f = family_of(x, base);
                        if (f && strcmp(f->type, "histogram") != 0) f = NULL;
                        if (!f) base[bl - sl] = sfx[i][0];
                    }
                }
            }
            if (!f || !f->type[0] || !f->help)
                FAIL("sample %s has no HELP and TYPE before it", sm->name);
            if (strcmp(f->type, "histogram") == 0 &&
                strstr(sm->name, "_bucket") && !strstr(sm->labels, "le=\""))
                FAIL("histogram bucket without le: %s", buf);
        }
    }
}

/* The value of the sample name{labels} (labels exactly as written). */
static double sample(const struct expo *x, const char *name, const char *labels)
{
    for (int i = 0; i < x->nsmp; i++)
        if (strcmp(x->smp[i].name, name) == 0 &&
            strcmp(x->smp[i].labels, labels) == 0)
            return x->smp[i].value;
    return -1;
}

static void scrape(int port, struct expo *x)
{
    get(port, "/metrics");
    ASSERT_STATUS(&last, 200);
    ASSERT_TRUE(strncmp(hdr(&last, "Content-Type"), "text/plain; version=0.0.4",
                        25) == 0);
    parse_exposition(last.body, x);
}

void metrics_are_prometheus_text_and_counters_move(struct test_ctx *t)
{
    static const char *const queues[] = {"default", NULL};
    static struct expo x;
    stellar *h = open_app(t, 2, queues);
    stellar_error e = {0};
    int port;
    stellar_http *s = serve(h, NULL, NULL, &port);
    static const char *const fams[][2] = {
        {"stellar_jobs_processed_total", "counter"},
        {"stellar_jobs_failed_total", "counter"},
        {"stellar_queue_depth", "gauge"},
        {"stellar_job_duration_seconds", "histogram"},
        {"stellar_scheduler_lag_seconds", "histogram"},
        {"stellar_workers_alive", "gauge"},
        {"stellar_recovered_jobs_total", "counter"},
        {"stellar_backend_up", "gauge"},
        {"stellar_queue_paused", "gauge"},
        {"stellar_limit_permits_in_use", "gauge"},
    };
    double prev;

    ASSERT_WAIT(test_stat(h, "processed") >= 0, 1000);
    scrape(port, &x);
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        struct family *f = family_of(&x, fams[i][0]);
        if (!f) FAIL("no family %s", fams[i][0]);
        ASSERT_STR_EQ(fams[i][1], f->type);
    }
    ASSERT_TRUE(sample(&x, "stellar_jobs_processed_total",
                       "task=\"echo\",queue=\"default\"") < 0);
    ASSERT_EQ(1, (int64_t)sample(&x, "stellar_backend_up", ""));

    /* Due in 1.5 s: the scheduler sees it waiting, then moves it (how
     * late goes to stellar_scheduler_lag_seconds). */
    ASSERT_OK(
        stellar_enqueue_in(h, 1500, "echo", "{\"late\":1}", "default", &e), &e);
    for (int i = 0; i < 3; i++)
        enqueue(h, "echo", NULL, "default");
    enqueue(h, "boom", NULL, "default");
    enqueue(h, "boom", NULL, "default");
    /* Parked (no processor takes it); its name needs escaping. */
    enqueue(h, "echo", NULL, "pa\"rk\\ed q");
    enqueue(h, "echo", "{\"i\":2}", "pa\"rk\\ed q");
    /* Four echo jobs and the periodic tick's first run. */
    ASSERT_WAIT(test_stat(h, "processed") == 5 && test_stat(h, "failed") == 2,
                10000);
    /* Counters are bumped after the backend acks; wait for the scrape. */
    for (int tries = 0; tries < 500; tries++) {
        scrape(port, &x);
        if (sample(&x, "stellar_jobs_processed_total",
                   "task=\"echo\",queue=\"default\"") == 4)
            break;
        test_sleep_ms(10);
    }
    ASSERT_EQ(4, (int64_t)sample(&x, "stellar_jobs_processed_total",
                                 "task=\"echo\",queue=\"default\""));
    ASSERT_EQ(2, (int64_t)sample(&x, "stellar_jobs_failed_total",
                                 "task=\"boom\",queue=\"default\""));
    ASSERT_EQ(0, (int64_t)sample(&x, "stellar_jobs_failed_total",
                                 "task=\"echo\",queue=\"default\""));
    ASSERT_EQ(4, (int64_t)sample(&x, "stellar_job_duration_seconds_count",
                                 "task=\"echo\""));
    ASSERT_EQ(4, (int64_t)sample(&x, "stellar_job_duration_seconds_bucket",
                                 "task=\"echo\",le=\"+Inf\""));
    ASSERT_EQ(2, (int64_t)sample(&x, "stellar_job_duration_seconds_count",
                                 "task=\"boom\""));
    ASSERT_TRUE(
        sample(&x, "stellar_job_duration_seconds_sum", "task=\"echo\"") >= 0);
    /* Buckets are cumulative. */
    prev = 0;
    for (int i = 0; i < x.nsmp; i++) {
        if (strcmp(x.smp[i].name, "stellar_job_duration_seconds_bucket") ||
            strncmp(x.smp[i].labels, "task=\"echo\"", 11))
            continue;
        ASSERT_TRUE(x.smp[i].value >= prev);
        prev = x.smp[i].value;
    }
    ASSERT_EQ(2, (int64_t)sample(&x, "stellar_queue_depth",
                                 "queue=\"pa\\\"rk\\\\ed q\""));
    ASSERT_EQ(0,
              (int64_t)sample(&x, "stellar_queue_depth", "queue=\"default\""));
    ASSERT_EQ(2, (int64_t)sample(&x, "stellar_workers_alive", ""));
    ASSERT_EQ(2, (int64_t)sample(&x, "stellar_failed_jobs", ""));
    ASSERT_TRUE(sample(&x, "stellar_scheduler_lag_seconds_count", "") >= 1);
    ASSERT_EQ(0, (int64_t)sample(&x, "stellar_recovered_jobs_total", ""));
    ASSERT_EQ(0,
              (int64_t)sample(&x, "stellar_queue_paused", "queue=\"default\""));

    /* Issue 15: a paused queue and a limit's permits. */
    {
        stellar_limit l = {1, 0, 0};
        ASSERT_OK(stellar_pause(h, "pa\"rk\\ed q", 0, &e), &e);
        ASSERT_OK(stellar_limit_set(h, "task:echo", &l, &e), &e);
    }
    scrape(port, &x);
    ASSERT_EQ(1, (int64_t)sample(&x, "stellar_queue_paused",
                                 "queue=\"pa\\\"rk\\\\ed q\""));
    ASSERT_EQ(0, (int64_t)sample(&x, "stellar_limit_permits_in_use",
                                 "target=\"task:echo\""));
    ASSERT_EQ(1, (int64_t)sample(&x, "stellar_limit_concurrency",
                                 "target=\"task:echo\""));

    /* promtool's linter, where it is installed. */
    if (system("command -v promtool >/dev/null 2>&1") == 0) {
        char cmd[600];
        FILE *f = fopen(test_path(t, "metrics.txt"), "w");
        fputs(last.body, f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'",
                 test_path(t, "metrics.txt"));
        ASSERT_EQ(0, system(cmd));
        test_note("promtool check metrics: ok");
    }
    finish(s, h);
}

/* ---------------------------------------------------------- Schedules --- */

void schedules_are_listed_paused_and_measured(struct test_ctx *t)
{
    static struct expo x;
    stellar *h = open_app(t, 0, NULL);
    stellar_error e = {0};
    stellar_schedule daily = {.name = "daily",
                              .cron = "0 3 * * *",
                              .timezone = "Europe/Berlin",
                              .task = "echo",
                              .params = "{\"kind\":\"daily\"}"};
    json_t *doc = NULL;
    int64_t next;
    int port, found = 0;
    stellar_http *s;

    ASSERT_OK(stellar_schedule_add(h, &daily, &e), &e);
    s = serve(h, NULL, NULL, &port);
    ASSERT_OK(stellar_schedules(h, &doc, &e), &e);
    next = json_integer_value(
        json_object_get(json_object_get(doc, "daily"), "next"));
    ASSERT_TRUE(next > test_now_ms());
    ASSERT_DOC(get(port, "/api/schedules"), doc);
    ASSERT_DOC(post(port, "/api/schedules/daily/pause", NULL),
               json_pack("{s:s, s:b}", "schedule", "daily", "paused", 1));
    get(port, "/api/schedules");
    ASSERT_TRUE(json_is_true(
        json_object_get(json_object_get(last.json, "daily"), "paused")));
    ASSERT_DOC(post(port, "/api/schedules/daily/resume", NULL),
               json_pack("{s:s, s:b}", "schedule", "daily", "paused", 0));
    ASSERT_ERROR(post(port, "/api/schedules/nope/pause", NULL), 404,
                 "ENOTFOUND");
    /* /metrics: the next fire time (it never fired: no last series). */
    scrape(port, &x);
    for (int i = 0; i < x.nsmp; i++) {
        if (strstr(x.smp[i].name, "stellar_schedule_last_fire"))
            FAIL("a last fire time for a schedule that never fired");
        if (strcmp(x.smp[i].name,
                   "stellar_schedule_next_fire_timestamp_seconds") == 0) {
            ASSERT_TRUE(strstr(x.smp[i].labels, "schedule=\"daily\"") != NULL);
            ASSERT_EQ(next / 1000, (int64_t)x.smp[i].value);
            found++;
        }
    }
    ASSERT_EQ(1, found);
    finish(s, h);
}
