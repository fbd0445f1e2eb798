/*
 * common.c: what the fault tests share: the programs they run and how
 * (spawn, wait, stop, `stellar run` on a copy of the test app,
 * fault_worker), a handle on the test's backend, queuing faultJobs and
 * reading the runs file they append to, and the failed list. The tests
 * live in one file per topic beside this one; main.c holds the table.
 */
#include "faults.h"

bool long_mode(void)
{
    const char *v = getenv("STELLAR_LONG_TESTS");
    return v && strcmp(v, "1") == 0;
}

/*
 * The programs the tests run: STELLAR_BIN and FAULT_WORKER from the
 * environment, else the ones this build made (their paths are compiled in,
 * FAULTS_STELLAR_BIN and FAULTS_FAULT_WORKER), so that the binary also runs
 * alone. Crashes are on purpose: under a sanitizer, SIGSEGV must still kill
 * (the tests check the signal), so the programs started get handle_segv=0
 * unless the environment says otherwise (ctest sets it too).
 */
const char *program(const char *var)
{
    const char *p = getenv(var);
    if (!p || !*p) {
        if (strcmp(var, "STELLAR_BIN") == 0) p = FAULTS_STELLAR_BIN;
        if (strcmp(var, "FAULT_WORKER") == 0) p = FAULTS_FAULT_WORKER;
    }
    if (!p || !*p || access(p, X_OK) != 0)
        SKIP("%s (%s) is not an executable", var, p ? p : "unset");
    setenv("ASAN_OPTIONS", "handle_segv=0", 0);
    setenv("TSAN_OPTIONS", "handle_segv=0", 0);
    return p;
}

/* ------------------------------------------------------- Processes --- */

/* Starts argv in cwd with stdout and stderr appended to log. Between fork
 * and exec only async-signal-safe calls: the test may run threads. */
pid_t spawn(const char *const argv[], const char *cwd, const char *log)
{
    struct rlimit no_core = {0, 0};
    char *av[32];
    pid_t pid;
    int i;

    /* execv wants char *const[]: copies, made before fork. */
    for (i = 0; argv[i] && i < 31; i++)
        av[i] = st_strdup(argv[i]);
    av[i] = NULL;
    fflush(NULL);
    pid = fork();
    if (pid < 0) FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setrlimit(RLIMIT_CORE, &no_core); /* crashes here are on purpose */
        if (cwd && chdir(cwd) != 0) _exit(126);
        execv(av[0], av);
        _exit(127);
    }
    for (i = 0; av[i]; i++)
        st_free(av[i]);
    return pid;
}

/* Waits up to ms for pid to end; its wait status, or -1 if still running. */
int wait_exit(pid_t pid, int64_t ms)
{
    int64_t deadline = test_mono_ms() + ms;
    int status;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0) FAIL("waitpid %ld: %s", (long)pid, strerror(errno));
        if (test_mono_ms() > deadline) return -1;
        test_sleep_ms(10);
    }
}

/* Fails the test if pid has ended (naming its log). */
void assert_alive(pid_t pid, const char *what)
{
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid)
        FAIL("%s (pid %ld) ended unexpectedly: %s %d", what, (long)pid,
             WIFSIGNALED(status) ? "signal" : "exit status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/* SIGTERM, then the exit status within ms (fails if it does not end). */
int stop_process(pid_t pid, int64_t ms)
{
    int status;
    kill(pid, SIGTERM);
    if ((status = wait_exit(pid, ms)) == -1)
        FAIL("pid %ld still running %lld ms after SIGTERM", (long)pid,
             (long long)ms);
    return status;
}

void assert_exit_0(int status, const char *what)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("%s: %s %d, expected exit 0", what,
             WIFSIGNALED(status) ? "killed by signal" : "exit status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/* Copies the test app (FAULTS_APP_DIR) to <dir>/app; returns that path. */
char *copy_app(struct test_ctx *t)
{
    char *dst = st_strdup(test_path(t, "app"));
    const char *argv[] = {"/bin/cp", "-R", FAULTS_APP_DIR, dst, NULL};
    int status;
    pid_t pid = spawn(argv, NULL, test_path(t, "cp.log"));

    status = wait_exit(pid, 10000);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("cp -R %s %s failed", FAULTS_APP_DIR, dst);
    return dst;
}

/* `stellar run` on the app copy with n processors and no scheduler (the
 * test runs the scheduler leader), output in <dir>/<tag>.log. */
pid_t start_run(struct test_ctx *t, const char *app, int n, const char *tag)
{
    char procs[16], log[64];
    const char *argv[] = {
        program("STELLAR_BIN"), "run", "--backend",      t->url,
        "--processors",         procs, "--no-scheduler", NULL};
    snprintf(procs, sizeof procs, "%d", n);
    snprintf(log, sizeof log, "%s.log", tag);
    return spawn(argv, app, test_path(t, log));
}

/* fault_worker with n processors and its own scheduler (stuck timeout
 * STUCK_MS), or none (no_scheduler), logging to <dir>/<tag>.log. */
pid_t start_worker(struct test_ctx *t, int n, bool no_scheduler,
                   const char *tag)
{
    char procs[16], stuck[16], log[64], wlog[64];
    const char *argv[16];
    int i = 0;

    snprintf(procs, sizeof procs, "%d", n);
    snprintf(stuck, sizeof stuck, "%d", STUCK_MS);
    snprintf(log, sizeof log, "%s.log", tag);
    snprintf(wlog, sizeof wlog, "%s/%s.stellar.log", t->dir, tag);
    argv[i++] = program("FAULT_WORKER");
    argv[i++] = "--url";
    argv[i++] = t->url;
    argv[i++] = "--processors";
    argv[i++] = procs;
    argv[i++] = "--stuck";
    argv[i++] = stuck;
    argv[i++] = "--log";
    argv[i++] = wlog;
    if (no_scheduler) argv[i++] = "--no-scheduler";
    argv[i] = NULL;
    return spawn(argv, NULL, test_path(t, log));
}

/* --------------------------------------------------------- Library --- */

/* A handle on the test's backend: processors < 0 is a pure client; with
 * lead, it is started as a scheduler-only process (the leader that
 * recovers dead workers' jobs after STUCK_MS). */
stellar *open_handle(struct test_ctx *t, const char *url, int processors,
                     bool lead)
{
    stellar_options o = {0};
    stellar_error e = {0};
    stellar *h = NULL;

    o.url = url ? url : t->url;
    o.log_fn = test_log_fn;
    o.log_level = STELLAR_LOG_INFO;
    o.processors = processors;
    o.poll_ms = 50;
    o.stuck_worker_timeout_ms = STUCK_MS;
    o.no_scheduler = !lead && processors < 0;
    ASSERT_OK(stellar_open(&h, &o, &e), &e);
    if (lead) ASSERT_OK(stellar_start(h, &e), &e);
    return h;
}

#ifdef STELLAR_HAVE_REDIS
/* The same, 0 while the backend is unreachable (during an outage); the
 * Redis outage tests only. */
int64_t stat_try(stellar *h, const char *key)
{
    json_t *stats = NULL;
    int64_t n = 0;

    if (stellar_stats(h, &stats, NULL) == STELLAR_OK)
        n = json_integer_value(json_object_get(stats, key));
    json_decref(stats);
    return n;
}
#endif

/* Workers of process pid ("<host>:<pid>+<n>"), or of every process if pid
 * is 0; *busy: how many of them hold a job. */
int workers_of(stellar *h, pid_t pid, int *busy)
{
    stellar_error e = {0};
    json_t *all = NULL, *w;
    const char *name;
    char tag[32];
    int n = 0, b = 0;

    snprintf(tag, sizeof tag, ":%ld+", (long)pid);
    ASSERT_OK(stellar_workers(h, &all, &e), &e);
    json_object_foreach(all, name, w)
    {
        if (pid && !strstr(name, tag)) continue;
        n++;
        b += !json_is_null(json_object_get(w, "working_on")) &&
             json_object_get(w, "working_on") != NULL;
    }
    json_decref(all);
    if (busy) *busy = b;
    return n;
}

/* Queues faultJobs id first..first+n-1 on "default", each sleeping
 * ms_min + (id * 37) % ms_span ms, appending to path. */
void enqueue_jobs_ex(stellar *h, int first, int n, int ms_min, int ms_span,
                     const char *path, const char *starts, bool coop)
{
    enum { CHUNK = 500 };
    char *params[CHUNK];
    stellar_error e = {0};
    int i, k;

    for (i = 0; i < n; i += CHUNK) {
        int m = n - i < CHUNK ? n - i : CHUNK;
        for (k = 0; k < m; k++) {
            int id = first + i + k;
            params[k] = st_asprintf(
                "{\"id\":%d,\"ms\":%d,\"path\":\"%s\"%s%s%s%s}", id,
                ms_min + (ms_span > 0 ? (id * 37) % ms_span : 0), path,
                starts ? ",\"starts\":\"" : "", starts ? starts : "",
                starts ? "\"" : "", coop ? ",\"coop\":true" : "");
        }
        ASSERT_OK(stellar_enqueue_many(h, "faultJob",
                                       (const char *const *)params, (size_t)m,
                                       "default", &e),
                  &e);
        for (k = 0; k < m; k++)
            st_free(params[k]);
    }
}

void enqueue_jobs(stellar *h, int first, int n, int ms_min, int ms_span,
                  const char *path, bool coop)
{
    enqueue_jobs_ex(h, first, n, ms_min, ms_span, path, NULL, coop);
}

/* Reads the runs file: counts[id] += 1 per line for ids in [0, n). Fails
 * on any other line. Returns the number of lines. */
int read_runs(const char *path, int *counts, int n)
{
    FILE *f = fopen(path, "r");
    char line[64];
    int lines = 0;

    memset(counts, 0, sizeof *counts * (size_t)n);
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        char *end;
        long id = strtol(line, &end, 10);
        if (end == line || *end != '\n' || id < 0 || id >= n)
            FAIL("%s: unexpected line %d: '%s'", path, lines + 1, line);
        counts[id]++;
        lines++;
    }
    fclose(f);
    return lines;
}

/* Every job ran at least once: returns how many extra runs there were,
 * and how many jobs ran more than once. */
int extra_runs(const char *path, int n, int *jobs_twice)
{
    int *counts = st_calloc((size_t)n, sizeof *counts), i, extra = 0;

    read_runs(path, counts, n);
    *jobs_twice = 0;
    for (i = 0; i < n; i++) {
        if (counts[i] == 0) FAIL("job %d never ran (lost)", i);
        extra += counts[i] - 1;
        *jobs_twice += counts[i] > 1;
    }
    st_free(counts);
    return extra;
}

/* Every job in [0, n) ran exactly `times` times. */
void assert_runs(const char *path, int n, int times)
{
    int *counts = st_calloc((size_t)n, sizeof *counts), i;
    int lines = read_runs(path, counts, n);

    for (i = 0; i < n; i++)
        if (counts[i] != times)
            FAIL("job %d ran %d times, expected %d (%d runs in all)", i,
                 counts[i], times, lines);
    st_free(counts);
}

/* The failed entries, parsed: new reference. */
json_t *failed_entries(stellar *h)
{
    stellar_error e = {0};
    json_t *all = NULL;
    ASSERT_OK(stellar_failed(h, 0, -1, &all, &e), &e);
    return all;
}

/* How many failed entries of task klass have an error containing text. */
int failed_with(json_t *entries, const char *klass, const char *text)
{
    json_t *entry;
    size_t i;
    int n = 0;

    json_array_foreach(entries, i, entry)
    {
        json_t *payload = json_object_get(entry, "payload");
        const char *c = json_string_value(json_object_get(payload, "class"));
        const char *err = json_string_value(json_object_get(entry, "error"));
        if (c && strcmp(c, klass) == 0 && err && test_contains_ci(err, text))
            n++;
    }
    return n;
}

/* Prints every failed entry's error (for a failing assertion's context). */
void note_failed(stellar *h)
{
    json_t *all = failed_entries(h), *entry;
    size_t i;
    json_array_foreach(all, i, entry)
    {
        const char *err = json_string_value(json_object_get(entry, "error"));
        test_note("failed[%zu]: %.300s", i, err ? err : "(not an object)");
    }
    json_decref(all);
}
