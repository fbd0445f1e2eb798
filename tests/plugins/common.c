/*
 * common.c: what the plugins suite's files share: the test's directory and
 * its gates, run spans logged to files, enqueue and inspection helpers,
 * the lock and retry keys read back raw (through backend.h and, on Redis,
 * with hiredis), server processes, and warnings captured from the log.
 */
#include "plugins.h"

/* The test's directory, for tasks that take no params (periodic ones).
 * Set before any fork, so child processes have it too. */
char g_dir[512];

/* "<g_dir>/<name>" into buf. */
const char *dir_file(char *buf, size_t n, const char *name)
{
    if ((size_t)snprintf(buf, n, "%s/%s", g_dir, name) >= n)
        FAIL("path too long: %s/%s", g_dir, name);
    return buf;
}

/* Waits for <g_dir>/<name> (a gate the test opens), at most 30 s. */
void wait_gate(stellar_api *api, const char *name)
{
    char path[600];
    int64_t deadline = test_mono_ms() + 30000;
    dir_file(path, sizeof path, name);
    while (!file_exists(path) && test_mono_ms() < deadline &&
           !stellar_should_stop(api))
        test_sleep_ms(5);
}

void open_gate(const char *name)
{
    char path[600];
    test_append_line(dir_file(path, sizeof path, name), "open");
}

/* ------------------------------------------------------------ Spans --- */

void log_span(const char *path, int64_t start)
{
    char line[96];
    snprintf(line, sizeof line, "%lld %lld %ld", (long long)start,
             (long long)test_now_ms(), (long)getpid());
    test_append_line(path, line);
}

static int by_start(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Reads the spans of path, sorted by start. */
int read_spans(const char *path, struct span *out, int max)
{
    FILE *f = fopen(path, "r");
    int n = 0;
    if (!f) return 0;
    while (n < max && fscanf(f, "%lld %lld %ld", &out[n].start, &out[n].end,
                             &out[n].pid) == 3)
        n++;
    fclose(f);
    qsort(out, (size_t)n, sizeof *out, by_start);
    return n;
}

/* Fails if two runs overlap in time. */
void assert_one_at_a_time(const struct span *s, int n)
{
    for (int i = 1; i < n; i++)
        if (s[i].start < s[i - 1].end)
            FAIL("two runs at once: [%lld, %lld] (pid %ld) and [%lld, %lld] "
                 "(pid %ld)",
                 s[i - 1].start, s[i - 1].end, s[i - 1].pid, s[i].start,
                 s[i].end, s[i].pid);
}

/* ---------------------------------------------------------- Helpers --- */

/* stellar_enqueue, expecting rc (STELLAR_OK or STELLAR_VETOED). */
void enqueue_expect(stellar *h, int want, const char *task, const char *params)
{
    stellar_error e = {0};
    int rc = stellar_enqueue(h, task, params, NULL, &e);
    if (rc != want)
        FAIL("enqueue %s %s: got %d (%s), want %d", task,
             params ? params : "{}", rc, rc < 0 ? e.msg : "", want);
}

void enqueue_in_expect(stellar *h, int want, int64_t ms, const char *task,
                       const char *params)
{
    stellar_error e = {0};
    int rc = stellar_enqueue_in(h, ms, task, params, NULL, &e);
    if (rc != want)
        FAIL("enqueueIn %lld %s: got %d (%s), want %d", (long long)ms, task, rc,
             rc < 0 ? e.msg : "", want);
}

void enqueue_at_expect(stellar *h, int want, int64_t at, const char *task,
                       const char *params)
{
    stellar_error e = {0};
    int rc = stellar_enqueue_at(h, at, task, params, NULL, &e);
    if (rc != want)
        FAIL("enqueueAt %lld %s: got %d (%s), want %d", (long long)at, task, rc,
             rc < 0 ? e.msg : "", want);
}

/* The sum of the per-worker counters "<kind>:<worker>". */
int64_t worker_stats_sum(stellar *h, const char *kind)
{
    stellar_error e = {0};
    json_t *s = NULL, *v;
    const char *k;
    size_t n = strlen(kind);
    int64_t sum = 0;
    ASSERT_OK(stellar_stats(h, &s, &e), &e);
    json_object_foreach(s, k, v)
    {
        if (strncmp(k, kind, n) == 0 && k[n] == ':')
            sum += json_integer_value(v);
    }
    json_decref(s);
    return sum;
}

size_t timestamps(stellar *h)
{
    stellar_error e = {0};
    json_t *ts = NULL;
    size_t n;
    ASSERT_OK(stellar_timestamps(h, &ts, &e), &e);
    n = json_array_size(ts);
    json_decref(ts);
    return n;
}

/* How many delayed copies of task+params there are. */
size_t scheduled(stellar *h, const char *task, const char *params)
{
    stellar_error e = {0};
    json_t *ts = NULL;
    size_t n;
    ASSERT_OK(stellar_scheduled_at(h, NULL, task, params, &ts, &e), &e);
    n = json_array_size(ts);
    json_decref(ts);
    return n;
}

/* True when no worker of h's backend is working on anything. */
bool workers_idle(stellar *h)
{
    stellar_error e = {0};
    json_t *w = NULL, *v;
    const char *name;
    bool idle = true;
    ASSERT_OK(stellar_workers(h, &w, &e), &e);
    json_object_foreach(w, name, v)
    {
        if (!json_is_null(json_object_get(v, "working_on"))) idle = false;
    }
    json_decref(w);
    return idle;
}

size_t locks_count(stellar *h)
{
    stellar_error e = {0};
    json_t *l = NULL;
    size_t n;
    ASSERT_OK(stellar_locks(h, &l, &e), &e);
    n = json_object_size(l);
    json_decref(l);
    return n;
}

/* --------------------------------------------------- Raw keys (§6) --- */

#ifdef STELLAR_HAVE_REDIS
/* GET and PTTL of "resque:<key>" straight from the private redis-server. */
static char *redis_raw(const struct test_ctx *t, const char *key, int64_t *pttl)
{
    char sock[600];
    redisContext *c;
    redisReply *r;
    char *v = NULL;

    snprintf(sock, sizeof sock, "%s/redis.sock", t->dir);
    c = redisConnectUnix(sock);
    if (!c || c->err) FAIL("connect to %s: %s", sock, c ? c->errstr : "oom");
    r = redisCommand(c, "GET resque:%s", key);
    if (r && r->type == REDIS_REPLY_STRING) v = strdup(r->str);
    freeReplyObject(r);
    r = redisCommand(c, "PTTL resque:%s", key);
    *pttl = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
    freeReplyObject(r);
    redisFree(c);
    return v;
}
#endif

/*
 * The value of kv key (malloc'd, NULL if absent) and the ms left before it
 * expires (-1: no expiry), through backend.h. On Redis the same key is also
 * read raw, under node-resque's namespace, and must agree.
 */
char *kv_read(const struct test_ctx *t, const char *key, int64_t *ttl_ms)
{
    st_backend *b = raw_open(t);
    stellar_error e = {0};
    json_t *all = NULL, *ent, *exp;
    char *v = NULL;

    ASSERT_OK(b->ops->kv_scan(b, key, &all, &e), &e);
    ent = json_object_get(all, key);
    exp = json_object_get(ent, "expires");
    *ttl_ms = -1;
    if (ent) {
        v = strdup(json_string_value(json_object_get(ent, "value")));
        if (json_is_integer(exp))
            *ttl_ms = json_integer_value(exp) - test_now_ms();
    }
    json_decref(all);
    st_backend_close(b);
#ifdef STELLAR_HAVE_REDIS
    if (is_redis(t)) {
        int64_t pttl;
        char *raw = redis_raw(t, key, &pttl);
        if ((raw == NULL) != (v == NULL) || (raw && strcmp(raw, v) != 0))
            FAIL("resque:%s holds %s, backend.h read %s", key,
                 raw ? raw : "(nothing)", v ? v : "(nothing)");
        if (raw) *ttl_ms = pttl;
        free(raw);
    }
#endif
    return v;
}

/* A lock as node-resque writes it: value now_s + timeout + 1, a TTL of
 * timeout seconds. */
void assert_lock_key(const struct test_ctx *t, const char *key,
                     int64_t timeout_s)
{
    int64_t ttl, now_s = test_now_ms() / 1000, val;
    char *v = kv_read(t, key, &ttl);

    if (!v) FAIL("no lock %s", key);
    val = strtoll(v, NULL, 10);
    test_note("%s = %s, ttl %lld ms", key, v, (long long)ttl);
    if (val < now_s + timeout_s || val > now_s + timeout_s + 2)
        FAIL("%s = %s, want now_s + %lld + 1 = %lld", key, v,
             (long long)timeout_s, (long long)(now_s + timeout_s + 1));
    if (ttl <= (timeout_s - 5) * 1000 || ttl > timeout_s * 1000)
        FAIL("%s expires in %lld ms, want about %lld s", key, (long long)ttl,
             (long long)timeout_s);
    free(v);
}

bool kv_absent(const struct test_ctx *t, const char *key)
{
    int64_t ttl;
    char *v = kv_read(t, key, &ttl);
    free(v);
    return v == NULL;
}

/* ------------------------------------------------ Other processes --- */

/* A child process: a handle with processors (and a scheduler unless told
 * not to) until <dir>/stop exists. Announces itself in <dir>/ready. */
_Noreturn static void serve_until_told(const struct test_ctx *t,
                                       const struct server_cfg *c)
{
    stellar_options o = {.processors = c->processors,
                         .no_scheduler = c->no_scheduler};
    stellar *h = open_h(t, &o);
    int64_t deadline = test_mono_ms() + 170000;
    char stop[600];

    for (int i = 0; i < 4 && c->tasks[i]; i++)
        reg(h, c->tasks[i]);
    start(h);
    test_append_line(test_path(t, "ready"), "ready");
    dir_file(stop, sizeof stop, "stop");
    while (!file_exists(stop)) {
        if (test_mono_ms() > deadline) FAIL("never told to stop");
        test_sleep_ms(10);
    }
    stellar_close(h);
    fflush(NULL);
    exit(0);
}

/* Forks n servers (call before this process starts any thread) and waits
 * until all have started. */
void spawn_servers(const struct test_ctx *t, const struct server_cfg *c,
                   pid_t *pids, int n)
{
    int before = test_count_lines(test_path(t, "ready"));
    for (int k = 0; k < n; k++) {
        fflush(NULL);
        pids[k] = fork();
        ASSERT_TRUE(pids[k] >= 0);
        if (pids[k] == 0) serve_until_told(t, c);
    }
    ASSERT_WAIT(test_count_lines(test_path(t, "ready")) == before + n, 20000);
}

void stop_servers(const struct test_ctx *t, const pid_t *pids, int n)
{
    int st;
    test_append_line(test_path(t, "stop"), "stop");
    for (int k = 0; k < n; k++) {
        ASSERT_EQ(pids[k], waitpid(pids[k], &st, 0));
        if (WIFSIGNALED(st))
            FAIL("server %d killed by signal %d", (int)pids[k], WTERMSIG(st));
        if (WEXITSTATUS(st) != 0)
            FAIL("server %d exited %d (66: a sanitizer report, above)",
                 (int)pids[k], WEXITSTATUS(st));
    }
}

/* ---------------------------------------------------- Log capture --- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char warn_log[16384];
static size_t warn_len;

/* test_log_fn, plus warnings kept in memory for log_has(). */
void capture_log(void *ud, int level, const char *msg)
{
    size_t n = strlen(msg);
    test_log_fn(ud, level, msg);
    if (level < STELLAR_LOG_WARN) return;
    pthread_mutex_lock(&log_mu);
    if (warn_len + n + 2 < sizeof warn_log) {
        memcpy(warn_log + warn_len, msg, n);
        warn_len += n;
        warn_log[warn_len++] = '\n';
        warn_log[warn_len] = '\0';
    }
    pthread_mutex_unlock(&log_mu);
}

bool log_has(const char *needle)
{
    bool found;
    pthread_mutex_lock(&log_mu);
    found = strstr(warn_log, needle) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}
