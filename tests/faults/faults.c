/*
 * faults.c: the fault-injection proof of issue #6 ("never lose a job"),
 * run once per backend (faults.sqlite, faults.redis) with --backend.
 *
 * Every test breaks something for real: it SIGKILLs the real `stellar run`
 * program (STELLAR_BIN) or a small program on the library (FAULT_WORKER,
 * fault_worker.c; both default to the ones built beside this binary) and
 * restarts it, crashes tasks, stops or restarts Redis,
 * pushes bad payloads past the API, holds the SQLite write lock, or runs
 * out of file space. Jobs are faultJob (app/modules/faults/tasks/), which
 * appends "<id>\n" to a file with O_APPEND when it ends: the file says how
 * many times each job ran, the stats say how many times it was acked.
 *
 * Sizes: short by default (the whole suite in a few minutes on two cores);
 * STELLAR_LONG_TESTS=1 runs the issue's full sizes (10,000 jobs, 5 kills).
 *
 * The processes a test starts are in its process group, which the harness
 * kills when the test ends, whatever happened.
 */
#define _GNU_SOURCE /* unshare(), for a private tmpfs (disk full) */
#include "fixture.h"
#include "harness.h"

#include "backend.h"
#include "internal.h"
#include "stellar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef STELLAR_HAVE_REDIS
#include <hiredis/hiredis.h>
#endif

#ifndef FAULTS_APP_DIR
#error "FAULTS_APP_DIR (the test app's source folder) must be defined"
#endif

/* The dead-worker timeout of the tests' scheduler leader: five missed pings
 * (one a second), so a live process on a loaded machine is never taken for
 * a dead one. */
#define STUCK_MS 5000
#define PROCS    4 /* TaskProcessors per worker process */

static bool long_mode(void)
{
    const char *v = getenv("STELLAR_LONG_TESTS");
    return v && strcmp(v, "1") == 0;
}

/* A program the tests run, from the environment ctest sets. */
/*
 * The programs the tests run: STELLAR_BIN and FAULT_WORKER from the
 * environment, else the ones this build made (their paths are compiled in,
 * FAULTS_STELLAR_BIN and FAULTS_FAULT_WORKER), so that the binary also runs
 * alone. Crashes are on purpose: under a sanitizer, SIGSEGV must still kill
 * (the tests check the signal), so the programs started get handle_segv=0
 * unless the environment says otherwise (ctest sets it too).
 */
static const char *program(const char *var)
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
static pid_t spawn(const char *const argv[], const char *cwd, const char *log)
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
static int wait_exit(pid_t pid, int64_t ms)
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
static void assert_alive(pid_t pid, const char *what)
{
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid)
        FAIL("%s (pid %ld) ended unexpectedly: %s %d", what, (long)pid,
             WIFSIGNALED(status) ? "signal" : "exit status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/* SIGTERM, then the exit status within ms (fails if it does not end). */
static int stop_process(pid_t pid, int64_t ms)
{
    int status;
    kill(pid, SIGTERM);
    if ((status = wait_exit(pid, ms)) == -1)
        FAIL("pid %ld still running %lld ms after SIGTERM", (long)pid,
             (long long)ms);
    return status;
}

static void assert_exit_0(int status, const char *what)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("%s: %s %d, expected exit 0", what,
             WIFSIGNALED(status) ? "killed by signal" : "exit status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/* Number of live processes whose parent is pid (from /proc). */
static int children_of(pid_t pid)
{
    DIR *d = opendir("/proc");
    struct dirent *ent;
    int n = 0;

    if (!d) return 0;
    while ((ent = readdir(d))) {
        char path[300], buf[512], *p;
        long ppid = 0;
        char state = 0;
        FILE *f;
        if (ent->d_name[0] < '0' || ent->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", ent->d_name);
        if (!(f = fopen(path, "r"))) continue;
        p = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
        fclose(f);
        if (p && sscanf(p + 1, " %c %ld", &state, &ppid) == 2 &&
            ppid == (long)pid && state != 'Z')
            n++;
    }
    closedir(d);
    return n;
}

/* Copies the test app (FAULTS_APP_DIR) to <dir>/app; returns that path. */
static char *copy_app(struct test_ctx *t)
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
static pid_t start_run(struct test_ctx *t, const char *app, int n,
                       const char *tag)
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
static pid_t start_worker(struct test_ctx *t, int n, bool no_scheduler,
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
static stellar *open_handle(struct test_ctx *t, const char *url, int processors,
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
static int64_t stat_try(stellar *h, const char *key)
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
static int workers_of(stellar *h, pid_t pid, int *busy)
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
static void enqueue_jobs_ex(stellar *h, int first, int n, int ms_min,
                            int ms_span, const char *path, const char *starts,
                            bool coop)
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

static void enqueue_jobs(stellar *h, int first, int n, int ms_min, int ms_span,
                         const char *path, bool coop)
{
    enqueue_jobs_ex(h, first, n, ms_min, ms_span, path, NULL, coop);
}

/* Reads the runs file: counts[id] += 1 per line for ids in [0, n). Fails
 * on any other line. Returns the number of lines. */
static int read_runs(const char *path, int *counts, int n)
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
static int extra_runs(const char *path, int n, int *jobs_twice)
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
static void assert_runs(const char *path, int n, int times)
{
    int *counts = st_calloc((size_t)n, sizeof *counts), i;
    int lines = read_runs(path, counts, n);

    for (i = 0; i < n; i++)
        if (counts[i] != times)
            FAIL("job %d ran %d times, expected %d (%d runs in all)", i,
                 counts[i], times, lines);
    st_free(counts);
}

#ifdef STELLAR_HAVE_REDIS
/* Number of lines of a file containing needle (the Redis outage tests). */
static int count_matching(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;

    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}
#endif

/* The failed entries, parsed: new reference. */
static json_t *failed_entries(stellar *h)
{
    stellar_error e = {0};
    json_t *all = NULL;
    ASSERT_OK(stellar_failed(h, 0, -1, &all, &e), &e);
    return all;
}

/* How many failed entries of task klass have an error containing text. */
static int failed_with(json_t *entries, const char *klass, const char *text)
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
static void note_failed(stellar *h)
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

/* ------------------------------------------------ Kill and restart --- */

/*
 * N jobs of 20-100 ms across two worker processes of PROCS processors; one
 * of them is SIGKILLed and restarted `kills` times, spread over the run.
 * Every job must complete (appear in the runs file, be acked once: stat
 * processed = N), and only jobs in flight at a kill may run twice: at most
 * PROCS per kill.
 *
 * real_run: the processes are `stellar run` on the test app, and this test
 * process is the scheduler leader that recovers the dead workers' jobs
 * (`stellar run` takes no stuckWorkerTimeout from stellar.json yet). Else
 * they are fault_worker, each with its own scheduler (stuck timeout
 * STUCK_MS): the leader itself may be the one killed.
 */
static void kill_and_restart(struct test_ctx *t, bool real_run)
{
    int n = long_mode() ? 10000 : 1000, kills = long_mode() ? 5 : 3;
    int64_t t0 = test_mono_ms(), done_by = long_mode() ? 900000 : 150000;
    char *runs = st_strdup(test_path(t, "runs.txt")), *app = NULL, tag[16];
    char *starts = st_strdup(test_path(t, "starts.txt"));
    int restarts, started_twice;
    stellar *h = open_handle(t, NULL, -1, real_run);
    int k, busy_at_kills = 0, extra, twice, status;
    pid_t a, b;

    if (real_run) app = copy_app(t);
    enqueue_jobs_ex(h, 0, n, 20, 81, runs, starts, false);
    a = real_run ? start_run(t, app, PROCS, "a0")
                 : start_worker(t, PROCS, false, "a0");
    b = real_run ? start_run(t, app, PROCS, "b")
                 : start_worker(t, PROCS, false, "b");
    for (k = 1; k <= kills; k++) {
        int64_t target = (int64_t)n * k / (kills + 1), deadline;
        int busy = 0;

        /* Kill when the run has reached its k-th share and the process to
         * kill is registered and holding jobs. */
        deadline = test_mono_ms() + done_by;
        while (test_stat(h, "processed") < target ||
               workers_of(h, a, &busy) < PROCS || busy == 0) {
            assert_alive(a, "worker process a");
            assert_alive(b, "worker process b");
            if (test_mono_ms() > deadline)
                FAIL("kill %d: processed %lld of %lld, a has %d workers", k,
                     (long long)test_stat(h, "processed"), (long long)target,
                     workers_of(h, a, NULL));
            test_sleep_ms(10);
        }
        kill(a, SIGKILL);
        waitpid(a, NULL, 0);
        busy_at_kills += busy;
        snprintf(tag, sizeof tag, "a%d", k);
        a = real_run ? start_run(t, app, PROCS, tag)
                     : start_worker(t, PROCS, false, tag);
    }
    {
        int64_t deadline = test_mono_ms() + done_by;
        while (test_stat(h, "processed") < n) {
            assert_alive(a, "worker process a");
            assert_alive(b, "worker process b");
            if (test_mono_ms() > deadline)
                FAIL("processed %lld of %d jobs; %lld waiting, %lld failed",
                     (long long)test_stat(h, "processed"), n,
                     (long long)test_length(h, "default"),
                     (long long)test_failed_count(h));
            test_sleep_ms(20);
        }
    }
    /* The dead incarnations' workers are cleaned: only a's and b's are
     * left, and none of them holds a job. */
    ASSERT_WAIT(workers_of(h, 0, NULL) == 2 * PROCS, STUCK_MS * 3);
    ASSERT_EQ(workers_of(h, a, NULL), PROCS);
    ASSERT_EQ(test_length(h, "default"), 0);
    status = stop_process(a, 40000);
    assert_exit_0(status, "worker process a");
    status = stop_process(b, 40000);
    assert_exit_0(status, "worker process b");

    extra = extra_runs(runs, n, &twice);
    restarts = extra_runs(starts, n, &started_twice);
    test_note("%d jobs, %d kills of a %d-processor %s (%d busy at the "
              "kills): %d jobs started again after a kill, %d ran to the end "
              "twice (bound %d); %lld ms",
              n, kills, PROCS, real_run ? "`stellar run`" : "fault_worker",
              busy_at_kills, started_twice, twice, PROCS * kills,
              (long long)(test_mono_ms() - t0));
    /* The jobs in flight at the kills were recovered and started again,
     * and no others. */
    if (restarts > PROCS * kills || extra > PROCS * kills)
        FAIL("%d extra starts, %d extra runs: more than the %d jobs in "
             "flight at %d kills",
             restarts, extra, PROCS * kills, kills);
    ASSERT_TRUE(started_twice >= kills);
    ASSERT_EQ(test_stat(h, "processed"), n);
    if (test_failed_count(h)) note_failed(h);
    ASSERT_EQ(test_failed_count(h), 0);
    ASSERT_EQ(workers_of(h, 0, NULL), 0);
    stellar_close(h);
    st_free(runs);
    st_free(starts);
    st_free(app);
}

static void stellar_run_killed_and_restarted_loses_no_job(struct test_ctx *t)
{
    kill_and_restart(t, true);
}

static void
library_process_killed_and_restarted_loses_no_job(struct test_ctx *t)
{
    kill_and_restart(t, false);
}

/*
 * A job that kills its worker process (SIGKILL), even when it runs in a
 * child of its own as a suspect, is put back after each death, and after
 * max_crashes (3) deaths goes to failed as a poison pill; the next worker
 * process carries on. A job that crashes its process only from the
 * processor's thread (SIGSEGV) kills it once: put back as a suspect, it
 * runs in a child and fails there with its signal.
 */
static void
job_that_kills_its_process_three_times_is_a_poison_pill(struct test_ctx *t)
{
    stellar *h = open_handle(t, NULL, -1, true);
    stellar_error e = {0};
    json_t *failed;
    const char *err;
    char tag[16];
    int i, status;
    pid_t w;

    ASSERT_OK(stellar_enqueue(h, "killWorker", NULL, NULL, &e), &e);
    for (i = 1; i <= 3; i++) {
        snprintf(tag, sizeof tag, "w%d", i);
        w = start_worker(t, 1, true, tag);
        if ((status = wait_exit(w, 20000)) == -1)
            FAIL("death %d: the worker did not die", i);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            FAIL("death %d: status %d, expected SIGKILL", i, status);
        /* The leader sees the dead worker after STUCK_MS and puts its
         * job back at once, marked a suspect. */
        if (i < 3)
            ASSERT_WAIT(test_length(h, "default") == 1, STUCK_MS * 4);
        else
            ASSERT_WAIT(test_failed_count(h) == 1, STUCK_MS * 4);
    }
    ASSERT_EQ(test_length(h, "default"), 0);
    failed = failed_entries(h);
    err =
        json_string_value(json_object_get(json_array_get(failed, 0), "error"));
    test_note("failed: %s", err ? err : "(none)");
    ASSERT_EQ(failed_with(failed, "killWorker", "poison pill"), 1);
    ASSERT_EQ(failed_with(failed, "killWorker", "3 workers"), 1);
    json_decref(failed);

    /* SIGSEGV in the processor's thread: one death, then its signal. */
    ASSERT_OK(stellar_enqueue(h, "crashThread", "{\"addr\":0}", NULL, &e), &e);
    w = start_worker(t, 1, true, "w4");
    if ((status = wait_exit(w, 20000)) == -1)
        FAIL("crashThread: the worker did not crash");
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV)
        FAIL("crashThread: status %d, expected SIGSEGV", status);
    ASSERT_WAIT(test_length(h, "default") == 1, STUCK_MS * 4);
    w = start_worker(t, 1, true, "w5");
    ASSERT_WAIT(test_failed_count(h) == 2, 20000);
    failed = failed_entries(h);
    ASSERT_EQ(failed_with(failed, "crashThread", "signal 11"), 1);
    json_decref(failed);

    enqueue_jobs(h, 0, 1, 0, 0, test_path(t, "runs.txt"), false);
    ASSERT_WAIT(test_count_lines(test_path(t, "runs.txt")) == 1, 10000);
    assert_exit_0(stop_process(w, 10000), "fault_worker");
    ASSERT_EQ(test_failed_count(h), 2);
    stellar_close(h);
}

/*
 * Issue 17 item 9: two `stellar run` of 2 processors each (thread
 * isolation, maxCrashes 3), a stream of 40 ms jobs, and one job that aborts
 * its process. The jobs in flight on a dead process go back as suspects,
 * and a suspect runs in a child process of its own: the pill fails there
 * with SIGABRT, having killed a server once, and the jobs that ran beside
 * it simply run. Ten rounds, a pill of their own each; the test is the
 * scheduler leader (dead workers recovered after PILL_STUCK_MS) and
 * restarts a dead server, as a supervisor would, once its jobs are back:
 * so the recovered jobs meet again on the other server, as they did in the
 * issue (where, before suspects, a bystander died with the pill three
 * times and went to failed as a poison pill).
 */
#define PILL_ROUNDS   10
#define PILL_STUCK_MS 3000

/* The scheduler-only leader of open_handle(), with a stuck timeout. */
static stellar *open_leader(struct test_ctx *t, int64_t stuck_ms)
{
    stellar_options o = {0};
    stellar_error e = {0};
    stellar *h = NULL;

    o.url = t->url;
    o.log_fn = test_log_fn;
    o.log_level = STELLAR_LOG_INFO;
    o.processors = -1;
    o.poll_ms = 50;
    o.stuck_worker_timeout_ms = stuck_ms;
    ASSERT_OK(stellar_open(&h, &o, &e), &e);
    ASSERT_OK(stellar_start(h, &e), &e);
    return h;
}

/* One of the test's `stellar run` servers, as a supervisor sees it. */
struct server {
    char name; /* 'a' or 'b' */
    pid_t pid; /* running, or dead (down) */
    bool down; /* the pill killed it; restarted once its workers are gone */
};

/* Supervises server s: counts its death by the pill, and restarts it once
 * the leader has cleaned its dead workers, so that the jobs it held go
 * back while only the other server runs (they meet again there). */
static void supervise(struct test_ctx *t, stellar *h, const char *app,
                      struct server *s, int *deaths, int *spawned)
{
    char tag[32];
    int status;

    if (!s->down) {
        if (waitpid(s->pid, &status, WNOHANG) != s->pid) return;
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
            FAIL("server %c (pid %ld) ended with %s %d, expected SIGABRT",
                 s->name, (long)s->pid,
                 WIFSIGNALED(status) ? "signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        (*deaths)++;
        s->down = true;
    }
    if (workers_of(h, s->pid, NULL) > 0) return;
    snprintf(tag, sizeof tag, "%c%d", s->name, ++*spawned);
    s->pid = start_run(t, app, 2, tag);
    s->down = false;
}

/* Failed entries of task klass (any error). */
static int failed_of(stellar *h, const char *klass)
{
    json_t *all = failed_entries(h);
    int n = failed_with(all, klass, "");
    json_decref(all);
    return n;
}

static void innocent_jobs_beside_a_poison_pill_never_fail(struct test_ctx *t)
{
    char *app = copy_app(t), *runs = st_strdup(test_path(t, "runs.txt"));
    stellar *h = open_leader(t, PILL_STUCK_MS);
    stellar_error e = {0};
    int next_id = 0, round, spawned = 0, deaths_all = 0, twice, extra;
    int innocent = 0, bad_rounds = 0, unsignalled = 0, many_deaths = 0;
    int64_t t0 = test_mono_ms();
    json_t *failed;
    struct server a = {'a', 0, false}, b = {'b', 0, false};

    a.pid = start_run(t, app, 2, "a");
    b.pid = start_run(t, app, 2, "b");
    ASSERT_WAIT(workers_of(h, 0, NULL) == 4, 60000);
    for (round = 0; round < PILL_ROUNDS; round++) {
        int64_t deadline = test_mono_ms() + 120000, r0 = test_mono_ms();
        int deaths = 0, now_innocent;
        char params[32];

        enqueue_jobs(h, next_id, 4, 40, 0, runs, false);
        next_id += 4;
        snprintf(params, sizeof params, "{\"n\":%d}", round);
        ASSERT_OK(stellar_enqueue(h, "abortThread", params, NULL, &e), &e);
        /* The stream goes on until the pill is in failed. */
        while (failed_of(h, "abortThread") < round + 1) {
            supervise(t, h, app, &a, &deaths, &spawned);
            supervise(t, h, app, &b, &deaths, &spawned);
            if (test_length(h, "default") < 4) {
                enqueue_jobs(h, next_id, 4, 40, 0, runs, false);
                next_id += 4;
            }
            if (test_mono_ms() > deadline) {
                note_failed(h);
                FAIL("round %d: the pill is not in failed after 120 s "
                     "(%d deaths)",
                     round, deaths);
            }
            test_sleep_ms(10);
        }
        /* Then every job of the stream ends (in failed, if innocent). */
        while (test_stat(h, "processed") + failed_of(h, "faultJob") < next_id) {
            supervise(t, h, app, &a, &deaths, &spawned);
            supervise(t, h, app, &b, &deaths, &spawned);
            if (test_mono_ms() > deadline) {
                note_failed(h);
                FAIL("round %d: %lld of %d jobs processed; %lld waiting", round,
                     (long long)test_stat(h, "processed"), next_id,
                     (long long)test_length(h, "default"));
            }
            test_sleep_ms(10);
        }
        while (a.down || b.down || workers_of(h, 0, NULL) < 4) {
            supervise(t, h, app, &a, &deaths, &spawned);
            supervise(t, h, app, &b, &deaths, &spawned);
            if (test_mono_ms() > deadline)
                FAIL("round %d: the servers are not back", round);
            test_sleep_ms(10);
        }
        failed = failed_entries(h);
        now_innocent = failed_with(failed, "faultJob", "");
        test_note("round %d: the pill killed a server %d time(s); %d "
                  "bystander(s) in failed; %d jobs so far; %lld ms",
                  round, deaths, now_innocent - innocent, next_id,
                  (long long)(test_mono_ms() - r0));
        bad_rounds += now_innocent > innocent;
        innocent = now_innocent;
        unsignalled =
            round + 1 - failed_with(failed, "abortThread", "signal 6");
        json_decref(failed);
        /* A suspect never runs in a processor's thread: one death. */
        many_deaths += deaths != 1;
        deaths_all += deaths;
    }
    if (innocent) note_failed(h);
    test_note("%d rounds, %d jobs, %d deaths; %d bystander(s) in failed in "
              "%d round(s); %d pill(s) in failed without SIGABRT; %lld ms",
              PILL_ROUNDS, next_id, deaths_all, innocent, bad_rounds,
              unsignalled, (long long)(test_mono_ms() - t0));
    ASSERT_EQ(innocent, 0);
    ASSERT_EQ(unsignalled, 0);
    ASSERT_EQ(many_deaths, 0);
    ASSERT_EQ(test_failed_count(h), PILL_ROUNDS);
    ASSERT_EQ(test_length(h, "default"), 0);
    assert_exit_0(stop_process(a.pid, 40000), "server a");
    assert_exit_0(stop_process(b.pid, 40000), "server b");
    /* Every job ran; only a bystander killed after its line and before
     * its ack may have run twice: one at most per death. */
    extra = extra_runs(runs, next_id, &twice);
    test_note("%d job(s) ran twice", twice);
    ASSERT_TRUE(extra <= deaths_all);
    ASSERT_EQ(test_stat(h, "processed"), next_id);
    ASSERT_WAIT(workers_of(h, 0, NULL) == 0, PILL_STUCK_MS * 3);
    stellar_close(h);
    st_free(runs);
    st_free(app);
}

/* ------------------------------------------------------- Isolation --- */

/* Waits until the failed list has n entries; the ms it took. */
static int64_t wait_failed(stellar *h, int64_t n, int64_t timeout_ms, pid_t run)
{
    int64_t t0 = test_mono_ms();
    while (test_failed_count(h) < n) {
        assert_alive(run, "stellar run");
        if (test_mono_ms() - t0 > timeout_ms)
            FAIL("%lld failed entries after %lld ms, expected %lld",
                 (long long)test_failed_count(h), (long long)timeout_ms,
                 (long long)n);
        test_sleep_ms(5);
    }
    return test_mono_ms() - t0;
}

/*
 * Under the real `stellar run`: tasks with fork isolation that segfault (3
 * times), abort, exit(3), overrun their timeout (and one that ignores
 * SIGTERM), and a thread-mode task over its cooperative timeout: each job
 * is in failed with the signal, status or timeout; the process and its
 * processors survive, no child is left behind, and a good job still runs.
 */
static void
fork_isolation_fails_crashed_and_timed_out_jobs_only(struct test_ctx *t)
{
    char *app = copy_app(t);
    stellar *h = open_handle(t, NULL, -1, false);
    stellar_error e = {0};
    json_t *failed;
    int64_t ms;
    pid_t run = start_run(t, app, 2, "run");
    char names_before[2][128] = {{0}}, params[64];
    int i;

    ASSERT_WAIT(workers_of(h, run, NULL) == 2, 60000);

    /* SIGTERM at the timeout ends a child that does nothing about it. */
    ASSERT_OK(stellar_enqueue(h, "overTime", NULL, NULL, &e), &e);
    ms = wait_failed(h, 1, 10000, run);
    test_note("overTime (timeout 500 ms) failed after %lld ms", (long long)ms);
    if (ms >= 2000)
        FAIL("overTime took %lld ms to fail: its child ignored the SIGTERM "
             "sent at the 500 ms timeout and died only by the SIGKILL 2 s "
             "later (the forked child inherits the daemon's blocked "
             "signals)",
             (long long)ms);

    /* A child that ignores SIGTERM is killed after the 2 s grace. */
    ASSERT_OK(stellar_enqueue(h, "stubborn", NULL, NULL, &e), &e);
    ms = wait_failed(h, 2, 10000, run);
    test_note("stubborn (timeout 300 ms, ignores SIGTERM) failed after %lld "
              "ms",
              (long long)ms);
    ASSERT_TRUE(ms >= 2000 && ms < 6000);

    for (i = 0; i < 3; i++) {
        snprintf(params, sizeof params, "{\"addr\":0,\"n\":%d}", i);
        ASSERT_OK(stellar_enqueue(h, "segv", params, NULL, &e), &e);
    }
    ASSERT_OK(stellar_enqueue(h, "abortJob", NULL, NULL, &e), &e);
    ASSERT_OK(stellar_enqueue(h, "exitJob", NULL, NULL, &e), &e);
    ASSERT_OK(stellar_enqueue(h, "slowThread", NULL, NULL, &e), &e);
    wait_failed(h, 8, 20000, run);
    enqueue_jobs(h, 0, 1, 0, 0, test_path(t, "runs.txt"), false);
    ASSERT_WAIT(test_stat(h, "processed") == 1, 10000);
    assert_runs(test_path(t, "runs.txt"), 1, 1);

    failed = failed_entries(h);
    if (failed_with(failed, "segv", "signal 11") != 3) note_failed(h);
    ASSERT_EQ(failed_with(failed, "segv", "signal 11"), 3);
    ASSERT_EQ(failed_with(failed, "abortJob", "signal 6"), 1);
    ASSERT_EQ(failed_with(failed, "exitJob", "status 3"), 1);
    ASSERT_EQ(failed_with(failed, "overTime", "timed out"), 1);
    ASSERT_EQ(failed_with(failed, "stubborn", "timed out"), 1);
    ASSERT_EQ(failed_with(failed, "slowThread", "timed out"), 1);
    json_decref(failed);
    ASSERT_EQ(test_failed_count(h), 8);
    ASSERT_EQ(test_stat(h, "failed"), 8);

    /* The same process, with the same processors, and no child left. */
    assert_alive(run, "stellar run");
    ASSERT_EQ(workers_of(h, run, NULL), 2);
    {
        json_t *all = NULL, *w;
        const char *name;
        int k = 0;
        ASSERT_OK(stellar_workers(h, &all, &e), &e);
        json_object_foreach(all, name, w)
        {
            (void)w;
            if (k < 2) snprintf(names_before[k++], 128, "%s", name);
        }
        json_decref(all);
        ASSERT_TRUE(strstr(names_before[0], ":") != NULL);
    }
    ASSERT_WAIT(children_of(run) == 0, 5000);
    assert_exit_0(stop_process(run, 40000), "stellar run");
    ASSERT_EQ(workers_of(h, 0, NULL), 0);
    stellar_close(h);
    st_free(app);
}

/* ------------------------------------------------------ Graceful stop --- */

/* `stellar run` with 8 processors, once all 8 run a 2 s job, gets SIGTERM:
 * it exits 0 within the grace period, with all 8 acked. */
static void sigterm_lets_eight_running_jobs_finish(struct test_ctx *t)
{
    char *app = copy_app(t), *runs = st_strdup(test_path(t, "runs.txt"));
    stellar *h = open_handle(t, NULL, -1, false);
    pid_t run = start_run(t, app, 8, "run");
    int busy = 0, status;
    int64_t t0, ms;

    ASSERT_WAIT(workers_of(h, run, NULL) == 8, 60000);
    enqueue_jobs(h, 0, 8, 2000, 0, runs, false);
    ASSERT_WAIT(workers_of(h, run, &busy) == 8 && busy == 8, 10000);
    t0 = test_mono_ms();
    kill(run, SIGTERM);
    if ((status = wait_exit(run, 30000 + 5000)) == -1)
        FAIL("stellar run still running 35 s after SIGTERM");
    ms = test_mono_ms() - t0;
    test_note("exited %lld ms after SIGTERM (grace 30000 ms)", (long long)ms);
    assert_exit_0(status, "stellar run");
    ASSERT_TRUE(ms < 30000);
    ASSERT_EQ(test_stat(h, "processed"), 8);
    ASSERT_EQ(test_failed_count(h), 0);
    ASSERT_EQ(test_length(h, "default"), 0);
    ASSERT_EQ(workers_of(h, 0, NULL), 0);
    assert_runs(runs, 8, 1);
    stellar_close(h);
    st_free(runs);
    st_free(app);
}

/* A second SIGTERM puts the running jobs back at once and exits 0 when
 * their tasks return (their acks skipped); a new process runs them. */
static void second_sigterm_puts_running_jobs_back(struct test_ctx *t)
{
    char *app = copy_app(t), *runs = st_strdup(test_path(t, "runs.txt"));
    stellar *h = open_handle(t, NULL, -1, false);
    pid_t run = start_run(t, app, 8, "run");
    int busy = 0, status;

    ASSERT_WAIT(workers_of(h, run, NULL) == 8, 60000);
    enqueue_jobs(h, 0, 8, 2000, 0, runs, false);
    ASSERT_WAIT(workers_of(h, run, &busy) == 8 && busy == 8, 10000);
    kill(run, SIGTERM);
    ASSERT_WAIT(file_contains(test_path(t, "run.log"), "stopping"), 5000);
    kill(run, SIGTERM);
    ASSERT_WAIT(test_length(h, "default") == 8, 3000);
    if ((status = wait_exit(run, 10000)) == -1)
        FAIL("stellar run still running 10 s after a second SIGTERM");
    assert_exit_0(status, "stellar run");
    ASSERT_EQ(test_stat(h, "processed"), 0);
    ASSERT_EQ(test_failed_count(h), 0);
    ASSERT_EQ(workers_of(h, 0, NULL), 0);

    run = start_run(t, app, 8, "run2");
    ASSERT_WAIT(test_stat(h, "processed") == 8, 30000);
    assert_exit_0(stop_process(run, 40000), "stellar run");
    ASSERT_EQ(test_length(h, "default"), 0);
    /* The tasks ran to their end in the first process too (a put-back
     * job may run again: stellar.h, stellar_stop). */
    assert_runs(runs, 8, 2);
    stellar_close(h);
    st_free(runs);
    st_free(app);
}

/* ------------------------------------------------------- Bad input --- */

/* Pushes one raw payload to queue past the API, as another client may. */
static void push_raw(struct test_ctx *t, const char *queue, const char *payload)
{
    st_backend *b = NULL;
    stellar_error e = {0};
    const char *one[1] = {payload};

    ASSERT_OK(st_backend_open(&b, t->url, NULL, &e), &e);
    ASSERT_OK(b->ops->push(b, queue, one, 1, &e), &e);
    st_backend_close(b);
}

/* What a raw payload must come to. */
struct bad {
    const char *what;
    char *payload;
    const char *error; /* expected in the failed entry's error; NULL: runs */
};

/*
 * Payloads that are not JSON, lack class, have non-array args, are 16 MiB,
 * nest 100,000 deep, carry invalid UTF-8: each fails with a clear error in
 * the failed list, in order, the worker carries on, and jobs on another
 * queue are not affected. The API refuses the same at enqueue.
 */
static void
bad_payloads_fail_clearly_and_the_worker_carries_on(struct test_ctx *t)
{
    enum { DEEP = 100000, BIG = 16 << 20 };
    char *runs = st_strdup(test_path(t, "runs.txt"));
    stellar *h = open_handle(t, NULL, 1, false);
    stellar_error e = {0};
    struct bad bad[16];
    st_buf deep = {0}, big = {0}, junk = {0};
    json_t *failed, *workers = NULL;
    char *unparsed = NULL;
    size_t i, nbad = 0, nfail = 0;
    int rc;

    ASSERT_OK(stellar_task_register_builtin(h, &e), &e);

    /* The API refuses them at enqueue. */
    rc = stellar_enqueue(h, "faultJob", "{\"id\": 1", NULL, &e);
    ASSERT_EQ(rc, STELLAR_EINVAL);
    test_note("enqueue of broken JSON: %s", e.msg);
    rc = stellar_enqueue(h, "faultJob", "{\"id\":\"\xff\xfe\"}", NULL, &e);
    ASSERT_EQ(rc, STELLAR_EINVAL);
    test_note("enqueue of invalid UTF-8: %s", e.msg);
    for (i = 0; i < DEEP; i++)
        st_buf_putc(&deep, '[');
    for (i = 0; i < DEEP; i++)
        st_buf_putc(&deep, ']');
    rc = stellar_enqueue(h, "faultJob", deep.p, NULL, &e);
    ASSERT_EQ(rc, STELLAR_EINVAL);
    test_note("enqueue of params nested %d deep: %s", DEEP, e.msg);
    ASSERT_EQ(test_length(h, "default"), 0);

    /* Raw payloads, as another client could write them. */
#define BAD(w, p, err) (bad[nbad++] = (struct bad){w, p, err})
    BAD("not JSON", st_strdup("this is not JSON {"), "not valid JSON");
    BAD("not an object", st_strdup("[1,2,3]"), "not a JSON object");
    BAD("no class", st_strdup("{\"queue\":\"bad\",\"args\":[{}]}"), "class");
    BAD("class not a string",
        st_strdup("{\"class\":42,\"queue\":\"bad\",\"args\":[{}]}"), "class");
    BAD("unknown class",
        st_strdup("{\"class\":\"noSuchTask\",\"queue\":\"bad\",\"args\":[]}"),
        "No job defined");
    BAD("non-array args",
        st_strdup("{\"class\":\"faultJob\",\"queue\":\"bad\",\"args\":"
                  "\"id=1\"}"),
        "args");
    BAD("args an object",
        st_asprintf("{\"class\":\"faultJob\",\"queue\":\"bad\",\"args\":"
                    "{\"id\":901,\"ms\":0,\"path\":\"%s\"}}",
                    runs),
        "args");
    st_buf_puts(&deep, "");
    {
        st_buf d = {0};
        st_buf_puts(&d, "{\"class\":\"faultJob\",\"queue\":\"bad\",\"args\":");
        st_buf_put(&d, deep.p, deep.len);
        st_buf_putc(&d, '}');
        BAD("nested 100,000 deep", st_buf_take(&d), "not valid JSON");
    }
    BAD("invalid UTF-8",
        st_asprintf("{\"class\":\"faultJob\",\"queue\":\"bad\",\"args\":"
                    "[{\"id\":902,\"ms\":0,\"path\":\"%s\",\"s\":\"\xff\xfe"
                    "\xc3\"}]}",
                    runs),
        "not valid JSON");
    BAD("truncated UTF-8 in class",
        st_strdup("{\"class\":\"fault\xe2\x82\",\"queue\":\"bad\","
                  "\"args\":[]}"),
        "not valid JSON");
    st_buf_putc(&junk, '[');
    for (i = 0; i < BIG; i++)
        st_buf_putc(&junk, 'x');
    BAD("16 MiB, not JSON", st_buf_take(&junk), "not valid JSON");
    /* A valid 16 MiB job runs (there is no size limit) and its task sees
     * all of it. */
    st_buf_printf(&big,
                  "{\"class\":\"faultJob\",\"queue\":\"bad\",\"args\":[{"
                  "\"id\":903,\"ms\":0,\"path\":\"%s\",\"pad\":\"",
                  runs);
    for (i = 0; i < BIG; i++)
        st_buf_putc(&big, 'p');
    st_buf_puts(&big, "\"}]}");
    BAD("16 MiB, valid", st_buf_take(&big), NULL);
    BAD("good",
        st_asprintf("{\"class\":\"faultJob\",\"queue\":\"bad\","
                    "\"args\":[{\"id\":904,\"ms\":0,\"path\":\"%s\"}]}",
                    runs),
        NULL);
#undef BAD
    st_buf_free(&deep);

    /* Work on another queue, queued first, is not affected. */
    enqueue_jobs(h, 0, 20, 0, 0, runs, false);
    for (i = 0; i < nbad; i++) {
        ASSERT_TRUE(bad[i].payload != NULL);
        push_raw(t, "bad", bad[i].payload);
        nfail += bad[i].error != NULL;
    }
    ASSERT_OK(stellar_start(h, &e), &e);
    ASSERT_WAIT(test_stat(h, "processed") + test_stat(h, "failed") >=
                    (int64_t)nbad + 20,
                60000);
    failed = failed_entries(h);
    {
        size_t k = 0;
        for (i = 0; i < nbad; i++) {
            json_t *entry;
            const char *err;
            if (!bad[i].error) continue;
            entry = json_array_get(failed, k++);
            err = json_string_value(json_object_get(entry, "error"));
            test_note("%-24s -> %.150s", bad[i].what,
                      err ? err : "(entry is not a JSON object)");
            if (!json_is_object(entry)) {
                /* Checked last, so the other checks still run. */
                if (!unparsed)
                    unparsed = st_asprintf(
                        "%s: its failed entry is not valid JSON (raw bytes "
                        "of the payload in it): %.160s",
                        bad[i].what,
                        json_is_string(entry) ? json_string_value(entry)
                                              : "(missing)");
                continue;
            }
            if (!err || !test_contains_ci(err, bad[i].error))
                FAIL("%s: failed with '%.300s', expected an error about '%s'",
                     bad[i].what, err ? err : "(no error)", bad[i].error);
            ASSERT_STR_EQ(json_string_value(json_object_get(entry, "queue")),
                          "bad");
        }
    }
    json_decref(failed);
    ASSERT_EQ(test_failed_count(h), (int64_t)nfail);
    ASSERT_EQ(test_stat(h, "processed"), (int64_t)(nbad - nfail + 20));
    /* The good jobs ran, each once; the worker is the same one. */
    {
        int counts[905];
        read_runs(runs, counts, 905);
        for (i = 0; i < 20; i++)
            ASSERT_EQ(counts[i], 1);
        ASSERT_EQ(counts[903], 1);
        ASSERT_EQ(counts[904], 1);
        ASSERT_EQ(counts[901] + counts[902], 0);
    }
    ASSERT_OK(stellar_workers(h, &workers, &e), &e);
    ASSERT_EQ(json_object_size(workers), 1);
    json_decref(workers);
    ASSERT_EQ(test_length(h, "bad"), 0);
    for (i = 0; i < nbad; i++)
        st_free(bad[i].payload);
    stellar_close(h);
    st_free(runs);
    if (unparsed) FAIL("%s", unparsed);
}

/* ------------------------------------------------- SQLite busy, full --- */

struct holder {
    sqlite3 *db;
    int64_t hold_ms;
};

static void *release_later(void *arg)
{
    struct holder *hd = arg;
    test_sleep_ms(hd->hold_ms);
    sqlite3_exec(hd->db, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

/* Another connection holds the write lock: an enqueue waits (bounded by
 * the 5 s busy timeout), then fails with EBUSY and a clear message; a lock
 * released within the timeout only delays it. */
static void
sqlite_busy_waits_with_a_bound_then_fails_clearly(struct test_ctx *t)
{
    stellar *h;
    stellar_error e = {0};
    struct holder hd = {NULL, 1000};
    pthread_t th;
    int64_t t0, ms;
    int rc;

    if (is_redis(t)) SKIP("SQLite only");
    h = open_handle(t, NULL, -1, false);
    ASSERT_OK(stellar_enqueue(h, "faultJob", NULL, NULL, &e), &e);
    ASSERT_EQ(sqlite3_open(test_path(t, "stellar.db"), &hd.db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(hd.db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
              SQLITE_OK);
    t0 = test_mono_ms();
    rc = stellar_enqueue(h, "faultJob", NULL, NULL, &e);
    ms = test_mono_ms() - t0;
    test_note("enqueue under a held lock: %s after %lld ms: %s",
              stellar_err_name(rc), (long long)ms, e.msg);
    ASSERT_EQ(rc, STELLAR_EBUSY);
    ASSERT_TRUE(ms >= 4500 && ms < 15000);
    ASSERT_TRUE(test_contains_ci(e.msg, "locked"));
    ASSERT_TRUE(test_contains_ci(e.msg, "busy timeout"));
    ASSERT_EQ(sqlite3_exec(hd.db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    ASSERT_OK(stellar_enqueue(h, "faultJob", NULL, NULL, &e), &e);
    ASSERT_EQ(test_length(h, "default"), 2);

    /* Held for 1 s, less than the timeout: the enqueue waits it out. */
    ASSERT_EQ(sqlite3_exec(hd.db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
              SQLITE_OK);
    pthread_create(&th, NULL, release_later, &hd);
    t0 = test_mono_ms();
    ASSERT_OK(stellar_enqueue(h, "faultJob", NULL, NULL, &e), &e);
    ms = test_mono_ms() - t0;
    pthread_join(th, NULL);
    test_note("enqueue under a lock held 1 s: OK after %lld ms", (long long)ms);
    ASSERT_TRUE(ms >= 800);
    ASSERT_EQ(test_length(h, "default"), 3);
    sqlite3_close(hd.db);
    stellar_close(h);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* "ok" if PRAGMA integrity_check passes on the SQLite file at path. */
static bool sqlite_intact(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    bool ok = false;

    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        ok = strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ok;
}

/* What a filling child saw. */
struct fill {
    int rc;      /* the code of the enqueue that failed */
    int stored;  /* jobs it stored before that */
    int counted; /* queue "fill" re-opened afterwards (-1: not counted) */
    int intact;  /* integrity_check passed (-1: not checked) */
    char msg[300];
};

/* In a child: enqueues `before` small jobs, then 1 KiB jobs until one
 * fails; with recount, closes, re-opens and counts queue "fill" and checks
 * the file at db_path. Reports a struct fill on fd. */
static void fill_up(const char *url, int before, bool recount,
                    const char *db_path, int fd)
{
    stellar_options o = {0};
    stellar_error e = {0};
    stellar *h = NULL;
    char params[1100];
    struct fill f = {STELLAR_OK, 0, -1, -1, ""};
    int64_t n = 0;
    int i;

    o.url = url;
    o.processors = -1;
    o.no_scheduler = true;
    snprintf(params, sizeof params, "{\"pad\":\"%01000d\"}", 0);
    if ((f.rc = stellar_open(&h, &o, &e)) == STELLAR_OK) {
        for (i = 0; i < before && f.rc == STELLAR_OK; i++)
            f.rc = stellar_enqueue(h, "faultJob", "{}", "fill", &e);
        while (f.rc == STELLAR_OK && f.stored < 200000 &&
               (f.rc = stellar_enqueue(h, "faultJob", params, "fill", &e)) ==
                   STELLAR_OK)
            f.stored++;
    }
    snprintf(f.msg, sizeof f.msg, "%s", e.msg);
    stellar_close(h);
    if (recount) {
        h = NULL;
        if (stellar_open(&h, &o, &e) == STELLAR_OK &&
            stellar_length(h, "fill", &n, &e) == STELLAR_OK)
            f.counted = (int)n;
        stellar_close(h);
        f.intact = sqlite_intact(db_path);
    }
    (void)!write(fd, &f, sizeof f);
}

/* A private mount namespace (as root, or else as root of a new user
 * namespace) with a tmpfs of size bytes on dir. False if not allowed. */
static bool mount_small_tmpfs(const char *dir, long size)
{
    char opts[64], map[64];
    uid_t uid = getuid();
    gid_t gid = getgid();
    int fd;

    if (uid != 0) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
        if ((fd = open("/proc/self/setgroups", O_WRONLY)) >= 0) {
            (void)!write(fd, "deny", 4);
            close(fd);
        }
        snprintf(map, sizeof map, "0 %ld 1", (long)uid);
        if ((fd = open("/proc/self/uid_map", O_WRONLY)) < 0) return false;
        if (write(fd, map, strlen(map)) < 0) {
            close(fd);
            return false;
        }
        close(fd);
        snprintf(map, sizeof map, "0 %ld 1", (long)gid);
        if ((fd = open("/proc/self/gid_map", O_WRONLY)) < 0) return false;
        if (write(fd, map, strlen(map)) < 0) {
            close(fd);
            return false;
        }
        close(fd);
    } else if (unshare(CLONE_NEWNS) != 0) {
        return false;
    }
    /* Keep the mount to ourselves. */
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return false;
    snprintf(opts, sizeof opts, "size=%ld", size);
    return mount("stellar-full", dir, "tmpfs", 0, opts) == 0;
}

/* Runs fill_up in a child: under RLIMIT_FSIZE = limit if limit > 0, on a
 * tmpfs of tmpfs_size bytes mounted on tmpfs_dir if tmpfs_dir. Returns
 * false if the tmpfs could not be mounted. */
static bool fill_in_child(const char *url, int before, int64_t limit,
                          const char *tmpfs_dir, long tmpfs_size,
                          const char *db_path, struct fill *f)
{
    int fds[2], status;
    ssize_t n;
    pid_t pid;

    ASSERT_EQ(pipe(fds), 0);
    fflush(NULL);
    if ((pid = fork()) == 0) {
        close(fds[0]);
        if (tmpfs_dir && !mount_small_tmpfs(tmpfs_dir, tmpfs_size)) _exit(77);
        if (limit > 0) {
            struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
            signal(SIGXFSZ, SIG_IGN); /* write() fails with EFBIG instead */
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        fill_up(url, before, tmpfs_dir != NULL, db_path, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    n = read(fds[0], f, sizeof *f);
    close(fds[0]);
    if ((status = wait_exit(pid, 120000)) == -1)
        FAIL("the filling child hangs");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) return false;
    if (n != (ssize_t)sizeof *f)
        FAIL("the filling child reported nothing (status %d)", status);
    return true;
}

/*
 * A full disk: a tmpfs of 512 KiB (in a private mount namespace: as root,
 * or in a user namespace) holds the database; a child enqueues 100 jobs,
 * then 1 KiB jobs until one fails. That enqueue fails with EFULL and a
 * clear message; re-opened, the file passes integrity_check and holds
 * every job stored. Redis: maxmemory just above what is used, no eviction:
 * a clear error, and everything stored is there.
 */
static void
full_disk_fails_enqueue_and_keeps_what_was_stored(struct test_ctx *t)
{
    struct fill f;

    if (!is_redis(t)) {
        char dir[600], url[800], db[700];
        snprintf(dir, sizeof dir, "%s/small", t->dir);
        snprintf(db, sizeof db, "%s/stellar.db", dir);
        snprintf(url, sizeof url, "sqlite:%s", db);
        mkdir(dir, 0755);
        if (!fill_in_child(url, 100, 0, dir, 512 * 1024, db, &f))
            SKIP("cannot mount a small tmpfs (no root, no user namespaces)");
        test_note("SQLite on a full 512 KiB tmpfs: %s after %d jobs: %s; "
                  "re-opened: %d jobs, integrity %s",
                  stellar_err_name(f.rc), 100 + f.stored, f.msg, f.counted,
                  f.intact ? "ok" : "FAILED");
        if (f.rc != STELLAR_EFULL)
            FAIL("enqueue on a full disk returned %s (%s): %s",
                 stellar_err_name(f.rc), stellar_strerror(f.rc), f.msg);
        ASSERT_TRUE(f.stored > 0);
        ASSERT_EQ(f.counted, 100 + f.stored);
        ASSERT_EQ(f.intact, 1);
        return;
    }
#ifdef STELLAR_HAVE_REDIS
    {
        stellar *h = open_handle(t, NULL, -1, false);
        stellar_error e = {0};
        char sock[600];
        redisContext *c;
        redisReply *r;
        long long used = 0;
        int i;

        for (i = 0; i < 100; i++)
            ASSERT_OK(stellar_enqueue(h, "faultJob", "{}", "fill", &e), &e);
        snprintf(sock, sizeof sock, "%s/redis.sock", t->dir);
        c = redisConnectUnix(sock);
        ASSERT_TRUE(c && !c->err);
        r = redisCommand(c, "INFO memory");
        ASSERT_TRUE(r && r->type == REDIS_REPLY_STRING);
        sscanf(strstr(r->str, "used_memory:") + 12, "%lld", &used);
        freeReplyObject(r);
        freeReplyObject(redisCommand(c, "CONFIG SET maxmemory-policy "
                                        "noeviction"));
        freeReplyObject(
            redisCommand(c, "CONFIG SET maxmemory %lld", used + (2 << 20)));
        fill_in_child(t->url, 0, 0, NULL, 0, NULL, &f);
        test_note("Redis at maxmemory: %s after %d more jobs: %s",
                  stellar_err_name(f.rc), f.stored, f.msg);
        if (f.rc != STELLAR_EFULL && !test_contains_ci(f.msg, "maxmemory"))
            FAIL("enqueue on a full Redis returned %s: %s",
                 stellar_err_name(f.rc), f.msg);
        ASSERT_TRUE(f.stored > 0);
        ASSERT_EQ(test_length(h, "fill"), 100 + f.stored);
        freeReplyObject(redisCommand(c, "CONFIG SET maxmemory 0"));
        redisFree(c);
        ASSERT_OK(stellar_enqueue(h, "faultJob", NULL, "fill", &e), &e);
        ASSERT_EQ(test_length(h, "fill"), 100 + f.stored + 1);
        stellar_close(h);
    }
#else
    SKIP("libstellar was built without hiredis");
#endif
}

/*
 * The same where no tmpfs can be had: a child may write only 64 KiB past
 * what the files hold (RLIMIT_FSIZE, SIGXFSZ ignored: write() fails with
 * EFBIG, as with a disk quota). The enqueue fails with EFULL or EIO, and
 * re-opened, the file is intact and holds every job stored.
 */
static void
file_size_limit_fails_enqueue_and_keeps_what_was_stored(struct test_ctx *t)
{
    stellar *h;
    stellar_error e = {0};
    struct fill f;
    int64_t db, wal;
    int i;

    if (is_redis(t)) SKIP("SQLite only");
    h = open_handle(t, NULL, -1, false);
    for (i = 0; i < 200; i++)
        ASSERT_OK(stellar_enqueue(h, "faultJob", "{}", "fill", &e), &e);
    stellar_close(h);
    db = file_size(test_path(t, "stellar.db"));
    wal = file_size(test_path(t, "stellar.db-wal"));
    fill_in_child(t->url, 0, (db > wal ? db : wal) + 64 * 1024, NULL, 0, NULL,
                  &f);
    test_note("SQLite under RLIMIT_FSIZE: %s after %d more jobs: %s",
              stellar_err_name(f.rc), f.stored, f.msg);
    h = open_handle(t, NULL, -1, false);
    ASSERT_TRUE(f.stored > 0);
    ASSERT_EQ(test_length(h, "fill"), 200 + f.stored);
    ASSERT_TRUE(sqlite_intact(test_path(t, "stellar.db")));
    ASSERT_OK(stellar_enqueue(h, "faultJob", NULL, "fill", &e), &e);
    stellar_close(h);
    if (f.rc != STELLAR_EFULL && f.rc != STELLAR_EIO)
        FAIL("enqueue past the file size limit returned %s (%s), expected "
             "EFULL or EIO: %s",
             stellar_err_name(f.rc), stellar_strerror(f.rc), f.msg);
}

/* ---------------------------------------------------- Redis outages --- */

enum outage { PAUSED, RESTARTED, CRASHED };

#ifdef STELLAR_HAVE_REDIS
/* A redis-server of the test's own on <dir>/<sub>/redis.sock with an
 * append-only file fsynced at every write, so a restart keeps the data. */
static pid_t start_own_redis(struct test_ctx *t, const char *sub)
{
    char dir[600], sock[700], log[700];
    const char *argv[] = {"redis-server",
                          "--port",
                          "0",
                          "--unixsocket",
                          sock,
                          "--save",
                          "",
                          "--appendonly",
                          "yes",
                          "--appendfsync",
                          "always",
                          "--dir",
                          dir,
                          "--logfile",
                          log,
                          NULL};
    char bin[600] = "";
    const char *path = getenv("PATH");
    redisContext *c = NULL;
    int64_t deadline;
    pid_t pid;

    while (path && *path && !bin[0]) {
        size_t len = strcspn(path, ":");
        snprintf(bin, sizeof bin, "%.*s/redis-server", (int)len, path);
        if (access(bin, X_OK) != 0) bin[0] = '\0';
        path += len + (path[len] == ':');
    }
    if (!bin[0]) SKIP("redis-server is not on PATH");
    argv[0] = bin;
    snprintf(dir, sizeof dir, "%s/%s", t->dir, sub);
    snprintf(sock, sizeof sock, "%s/redis.sock", dir);
    snprintf(log, sizeof log, "%s/redis.log", dir);
    mkdir(dir, 0755);
    pid = spawn(argv, dir, test_path(t, "redis-out.log"));
    deadline = test_mono_ms() + 10000;
    for (;;) {
        redisReply *r = NULL;
        bool ready;
        c = redisConnectUnix(sock);
        /* Up, and done loading the append-only file. */
        if (c && !c->err) r = redisCommand(c, "PING");
        ready = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (ready) break;
        redisFree(c);
        assert_alive(pid, "redis-server");
        if (test_mono_ms() > deadline) FAIL("redis-server did not start");
        test_sleep_ms(10);
    }
    redisFree(c);
    return pid;
}

/* The pid of the harness's redis-server for this test. */
static pid_t redis_pid(struct test_ctx *t)
{
    char sock[600];
    redisContext *c;
    redisReply *r;
    long pid = 0;

    snprintf(sock, sizeof sock, "%s/redis.sock", t->dir);
    c = redisConnectUnix(sock);
    ASSERT_TRUE(c && !c->err);
    r = redisCommand(c, "INFO server");
    ASSERT_TRUE(r && r->type == REDIS_REPLY_STRING);
    sscanf(strstr(r->str, "process_id:") + 11, "%ld", &pid);
    freeReplyObject(r);
    redisFree(c);
    ASSERT_TRUE(pid > 0);
    return (pid_t)pid;
}

/* Per-worker processed counters, for "every processor still works". */
static json_t *per_worker_processed(stellar *h)
{
    stellar_error e = {0};
    json_t *stats = NULL, *out = json_object(), *v;
    const char *key;

    ASSERT_OK(stellar_stats(h, &stats, &e), &e);
    json_object_foreach(stats, key, v)
    {
        if (strncmp(key, "processed:", 10) == 0)
            json_object_set(out, key + 10, v);
    }
    json_decref(stats);
    return out;
}

/* How many workers pinged after since_ms (wall clock). */
static int fresh_pings(stellar *h, int64_t since_ms)
{
    stellar_error e = {0};
    json_t *all = NULL, *w;
    const char *name;
    int n = 0;

    ASSERT_OK(stellar_workers(h, &all, &e), &e);
    json_object_foreach(all, name, w)
    {
        (void)name;
        n += json_integer_value(json_object_get(w, "ping")) > since_ms;
    }
    json_decref(all);
    return n;
}
#endif

/*
 * Redis goes away for 5 s mid-run: PAUSED (SIGSTOP/SIGCONT: the server
 * hangs, connections stay), RESTARTED (SIGTERM, then a new server on the
 * same socket over the same append-only file), CRASHED (SIGKILL, then the
 * same). The run completes with every job acked once (stat processed) and
 * run once (the runs file), nothing failed, every processor still working.
 */
static void redis_outage(struct test_ctx *t, enum outage how)
{
#ifdef STELLAR_HAVE_REDIS
    int n = long_mode() ? 5000 : 1000;
    char url[700], *runs = st_strdup(test_path(t, "runs.txt"));
    pid_t server;
    stellar *h;
    stellar_error e = {0};
    json_t *before, *after, *v;
    const char *name;
    int64_t t_back, deadline;
    int alive = 0;

    if (!is_redis(t)) SKIP("Redis only");
    if (how == PAUSED) {
        server = redis_pid(t);
        snprintf(url, sizeof url, "%s", t->url);
    } else {
        server = start_own_redis(t, "r");
        snprintf(url, sizeof url, "redis+unix://%s/r/redis.sock", t->dir);
    }
    h = open_handle(t, url, PROCS, false);
    ASSERT_OK(stellar_task_register_builtin(h, &e), &e);
    enqueue_jobs(h, 0, n, 5, 20, runs, false);
    ASSERT_OK(stellar_start(h, &e), &e);
    ASSERT_WAIT(test_stat(h, "processed") >= n / 3, 60000);
    before = per_worker_processed(h);
    if (how == PAUSED) {
        kill(server, SIGSTOP);
        test_sleep_ms(5000); /* the outage itself */
        kill(server, SIGCONT);
    } else {
        kill(server, how == RESTARTED ? SIGTERM : SIGKILL);
        if (wait_exit(server, 10000) == -1) FAIL("redis-server did not stop");
        test_sleep_ms(5000); /* the outage itself */
        server = start_own_redis(t, "r");
    }
    t_back = test_now_ms();
    deadline = test_mono_ms() + 120000;
    while (stat_try(h, "processed") + stat_try(h, "failed") < n) {
        if (test_mono_ms() > deadline)
            FAIL("after the outage: processed %lld of %d, %lld waiting",
                 (long long)test_stat(h, "processed"), n,
                 (long long)test_length(h, "default"));
        test_sleep_ms(20);
    }
    /* Heartbeats resumed for every processor. */
    ASSERT_WAIT(fresh_pings(h, t_back) == PROCS, 5000);
    /* The scheduler backs off too, and says so once, not every tick. */
    if (how != PAUSED) {
        int lines =
            count_matching(test_path(t, "stellar.log"), "scheduler: election");
        test_note("scheduler election warnings during the outage: %d", lines);
        ASSERT_TRUE(lines <= 3);
    }
    after = per_worker_processed(h);
    json_object_foreach(after, name, v)
    {
        alive += json_integer_value(v) >
                 json_integer_value(json_object_get(before, name));
    }
    stellar_stop(h, -1);
    test_note("%d jobs, Redis %s for 5 s: processed %lld, failed %lld, "
              "%d of %d processors worked after it",
              n,
              how == PAUSED      ? "paused (SIGSTOP)"
              : how == RESTARTED ? "stopped (SIGTERM) and restarted"
                                 : "killed (SIGKILL) and restarted",
              (long long)test_stat(h, "processed"),
              (long long)test_stat(h, "failed"), alive, PROCS);
    if (test_failed_count(h)) note_failed(h);
    ASSERT_EQ(test_failed_count(h), 0);
    assert_runs(runs, n, 1);
    ASSERT_EQ(test_stat(h, "processed"), n);
    ASSERT_EQ(alive, PROCS);
    json_decref(before);
    json_decref(after);
    stellar_close(h);
    st_free(runs);
    if (how != PAUSED) {
        kill(server, SIGTERM);
        wait_exit(server, 10000);
    }
#else
    (void)how;
    SKIP("libstellar was built without hiredis (t: %s)", t->name);
#endif
}

#ifdef STELLAR_HAVE_REDIS
/*
 * A unix-socket proxy in front of the test's Redis that, once armed, lets
 * the next reserve (the script call carrying a working-on record,
 * '{"run_at":') reach Redis and run there, then drops the connection
 * instead of passing the reply on: a reply lost in a network failure.
 */
enum { PROXY_MAX = 32 };
struct proxy {
    int lfd;
    char target[600];
    int cfd[PROXY_MAX], sfd[PROXY_MAX]; /* client and server sides */
    bool drop[PROXY_MAX];               /* this pair's next reply is dropped */
    int n;
    pthread_mutex_t mu;
    bool armed, stop;
    int dropped;
};

static int unix_socket(const char *path, bool listen_on)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    if (fd < 0 || strlen(path) >= sizeof sa.sun_path) FAIL("socket %s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (listen_on) {
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
            listen(fd, 16) != 0)
            FAIL("listen on %s: %s", path, strerror(errno));
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void proxy_close(struct proxy *p, int i)
{
    close(p->cfd[i]);
    close(p->sfd[i]);
    p->n--;
    p->cfd[i] = p->cfd[p->n];
    p->sfd[i] = p->sfd[p->n];
    p->drop[i] = p->drop[p->n];
}

static void *proxy_main(void *arg)
{
    struct proxy *p = arg;
    char buf[65536];

    for (;;) {
        struct pollfd pf[1 + 2 * PROXY_MAX];
        int i, n = 0;
        bool stop;

        pthread_mutex_lock(&p->mu);
        stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop) break;
        pf[n++] = (struct pollfd){p->lfd, POLLIN, 0};
        for (i = 0; i < p->n; i++) {
            pf[n++] = (struct pollfd){p->cfd[i], POLLIN, 0};
            pf[n++] = (struct pollfd){p->sfd[i], POLLIN, 0};
        }
        if (poll(pf, (nfds_t)n, 50) <= 0) continue;
        if ((pf[0].revents & POLLIN) && p->n < PROXY_MAX) {
            int c = accept(p->lfd, NULL, NULL), sv;
            if (c >= 0 && (sv = unix_socket(p->target, false)) >= 0) {
                p->cfd[p->n] = c;
                p->sfd[p->n] = sv;
                p->drop[p->n++] = false;
            } else if (c >= 0) {
                close(c);
            }
            continue; /* the pairs moved: poll again */
        }
        for (i = 0; i < (n - 1) / 2; i++) {
            struct pollfd *c = &pf[1 + 2 * i], *sv = &pf[2 + 2 * i];
            ssize_t got;
            if (c->revents & (POLLIN | POLLHUP | POLLERR)) {
                got = read(p->cfd[i], buf, sizeof buf);
                if (got <= 0) {
                    proxy_close(p, i);
                    break;
                }
                pthread_mutex_lock(&p->mu);
                if (p->armed &&
                    memmem(buf, (size_t)got, "{\"run_at\":", 10) != NULL) {
                    p->armed = false;
                    p->drop[i] = true;
                }
                pthread_mutex_unlock(&p->mu);
                if (write(p->sfd[i], buf, (size_t)got) != got) {
                    proxy_close(p, i);
                    break;
                }
            }
            if (sv->revents & (POLLIN | POLLHUP | POLLERR)) {
                got = read(p->sfd[i], buf, sizeof buf);
                if (got <= 0 || p->drop[i]) {
                    if (p->drop[i]) {
                        pthread_mutex_lock(&p->mu);
                        p->dropped++;
                        pthread_mutex_unlock(&p->mu);
                    }
                    proxy_close(p, i);
                    break;
                }
                if (write(p->cfd[i], buf, (size_t)got) != got) {
                    proxy_close(p, i);
                    break;
                }
            }
        }
    }
    while (p->n)
        proxy_close(p, 0);
    close(p->lfd);
    return NULL;
}

static int proxy_dropped(struct proxy *p)
{
    int n;
    pthread_mutex_lock(&p->mu);
    n = p->dropped;
    pthread_mutex_unlock(&p->mu);
    return n;
}
#endif

/*
 * The reply to a reserve is lost after Redis ran it (the connection drops
 * between the two): the processor cannot know whether its ack was applied
 * and a job popped. Every job must still run once and be acked once.
 */
static void
redis_reply_lost_after_a_reserve_loses_and_repeats_nothing(struct test_ctx *t)
{
#ifdef STELLAR_HAVE_REDIS
    enum { N = 40 };
    struct proxy px = {0};
    char *runs = st_strdup(test_path(t, "runs.txt")), url[700];
    stellar *h;
    stellar_error e = {0};
    pthread_t th;
    int *counts = st_calloc(N, sizeof *counts), i, lost = 0, twice = 0;
    int64_t processed;

    if (!is_redis(t)) SKIP("Redis only");
    snprintf(px.target, sizeof px.target, "%s/redis.sock", t->dir);
    px.lfd = unix_socket(test_path(t, "proxy.sock"), true);
    pthread_mutex_init(&px.mu, NULL);
    pthread_create(&th, NULL, proxy_main, &px);
    snprintf(url, sizeof url, "redis+unix://%s/proxy.sock", t->dir);

    h = open_handle(t, url, 1, false);
    ASSERT_OK(stellar_task_register_builtin(h, &e), &e);
    enqueue_jobs(h, 0, N, 20, 0, runs, false);
    ASSERT_OK(stellar_start(h, &e), &e);
    ASSERT_WAIT(stat_try(h, "processed") >= 5, 20000);
    pthread_mutex_lock(&px.mu);
    px.armed = true;
    pthread_mutex_unlock(&px.mu);
    ASSERT_WAIT(proxy_dropped(&px) == 1, 10000);
    /* Done: every job ran, or the queue is empty and nothing is held. */
    ASSERT_WAIT(test_count_lines(runs) >= N ||
                    (test_length(h, "default") == 0 &&
                     workers_of(h, 0, &i) == 1 && i == 0),
                30000);
    stellar_stop(h, -1);
    processed = test_stat(h, "processed");
    read_runs(runs, counts, N);
    for (i = 0; i < N; i++) {
        lost += counts[i] == 0;
        twice += counts[i] > 1;
    }
    test_note("%d jobs, one reserve reply lost: processed %lld, %d jobs "
              "never ran, %d ran twice",
              N, (long long)processed, lost, twice);
    pthread_mutex_lock(&px.mu);
    px.stop = true;
    pthread_mutex_unlock(&px.mu);
    pthread_join(th, NULL);
    stellar_close(h);
    if (lost)
        FAIL("%d job(s) lost: the reserve whose reply was lost had popped "
             "a job; the retry applied the same ack again and popped "
             "another, overwriting the working-on record",
             lost);
    ASSERT_EQ(twice, 0);
    ASSERT_EQ(processed, N);
    st_free(counts);
    st_free(runs);
#else
    SKIP("libstellar was built without hiredis (%s)", t->name);
#endif
}

static void redis_paused_for_5s_loses_and_repeats_nothing(struct test_ctx *t)
{
    redis_outage(t, PAUSED);
}

/*
 * Redis frozen (SIGSTOP) for longer than stuckWorkerTimeout while two jobs
 * run: one on a processor of this process (which is also the scheduler
 * leader), one in a worker process. Pings sent during the freeze land
 * after it, stamped with the time they were sent, so every worker looks
 * long dead when Redis is back. Neither may be cleaned: the leader never
 * judges its own live workers, and judges others only once Redis has
 * answered it for longer than the timeout. Their records and counters
 * stay, each job runs and is acked once, and the log says nothing of dead
 * workers.
 */
static void
redis_frozen_longer_than_stuck_timeout_cleans_no_live_worker(struct test_ctx *t)
{
#ifdef STELLAR_HAVE_REDIS
    char *runs = st_strdup(test_path(t, "runs.txt"));
    stellar_error e = {0};
    json_t *before = NULL, *stats_before, *after = NULL, *stats_after, *w;
    const char *name;
    pid_t server, worker;
    stellar *h;
    int busy = 0;

    if (!is_redis(t))
        SKIP("Redis only: SIGSTOP freezes the Redis server; SQLite has no "
             "server to freeze");
    server = redis_pid(t);
    h = open_handle(t, NULL, 1, false); /* 1 processor and the scheduler */
    ASSERT_OK(stellar_task_register_builtin(h, &e), &e);
    ASSERT_OK(stellar_start(h, &e), &e);
    worker = start_worker(t, 1, true, "w");
    ASSERT_WAIT(workers_of(h, worker, NULL) == 1, 60000);
    ASSERT_WAIT(workers_of(h, getpid(), NULL) == 1, 10000);
    /* Counters for both workers (which takes which job is chance). */
    enqueue_jobs(h, 0, 8, 50, 0, runs, false);
    ASSERT_WAIT(test_stat(h, "processed") == 8, 30000);
    enqueue_jobs(h, 8, 2, 3 * STUCK_MS, 0, runs, false);
    ASSERT_WAIT(workers_of(h, 0, &busy) == 2 && busy == 2, 10000);
    ASSERT_OK(stellar_workers(h, &before, &e), &e);
    stats_before = per_worker_processed(h);

    kill(server, SIGSTOP);
    test_sleep_ms(STUCK_MS + 4000); /* longer than stuckWorkerTimeout */
    kill(server, SIGCONT);

    ASSERT_WAIT(stat_try(h, "processed") == 10, 60000);
    test_sleep_ms(2 * STUCK_MS); /* time enough for a wrong judgement */
    ASSERT_EQ(count_matching(test_path(t, "stellar.log"), "cleaned dead"), 0);
    ASSERT_EQ(test_stat(h, "processed"), 10);
    ASSERT_EQ(test_failed_count(h), 0);
    assert_runs(runs, 10, 1);
    ASSERT_OK(stellar_workers(h, &after, &e), &e);
    stats_after = per_worker_processed(h);
    json_object_foreach(before, name, w)
    {
        json_t *now = json_object_get(after, name);
        if (!now) FAIL("worker %s was removed", name);
        ASSERT_EQ(json_integer_value(json_object_get(w, "started")),
                  json_integer_value(json_object_get(now, "started")));
        if (json_object_get(stats_before, name))
            ASSERT_TRUE(
                json_integer_value(json_object_get(stats_after, name)) >=
                json_integer_value(json_object_get(stats_before, name)));
    }
    json_decref(before);
    json_decref(after);
    json_decref(stats_before);
    json_decref(stats_after);
    assert_exit_0(stop_process(worker, 30000), "fault_worker");
    stellar_stop(h, -1);
    stellar_close(h);
    st_free(runs);
#else
    SKIP("libstellar was built without hiredis (t: %s)", t->name);
#endif
}

/* With Redis frozen, a stop of `stellar run` waits on it (acks, putting
 * jobs back, unregistering: up to 30 s a call); a second SIGTERM makes it
 * exit within seconds, saying why. */
static void
second_sigterm_exits_promptly_while_redis_is_frozen(struct test_ctx *t)
{
#ifdef STELLAR_HAVE_REDIS
    char *app, *runs = st_strdup(test_path(t, "runs.txt"));
    stellar *h;
    pid_t server, run;
    int busy = 0, status;
    int64_t t0, ms;

    if (!is_redis(t)) SKIP("Redis only: SIGSTOP freezes the Redis server");
    app = copy_app(t);
    server = redis_pid(t);
    h = open_handle(t, NULL, -1, false);
    run = start_run(t, app, 2, "run");
    ASSERT_WAIT(workers_of(h, run, NULL) == 2, 60000);
    enqueue_jobs(h, 0, 2, 60000, 0, runs, false);
    ASSERT_WAIT(workers_of(h, run, &busy) == 2 && busy == 2, 10000);
    kill(server, SIGSTOP);
    kill(run, SIGTERM);
    ASSERT_WAIT(file_contains(test_path(t, "run.log"), "stopping"), 5000);
    t0 = test_mono_ms();
    kill(run, SIGTERM);
    status = wait_exit(run, 20000);
    ms = test_mono_ms() - t0;
    kill(server, SIGCONT);
    if (status == -1)
        FAIL("stellar run still running 20 s after a second "
             "SIGTERM with Redis frozen");
    test_note("exited %lld ms after the second SIGTERM", (long long)ms);
    ASSERT_TRUE(ms < 15000);
    ASSERT_TRUE(file_contains(test_path(t, "run.log"), "exiting without"));
    stellar_close(h);
    st_free(runs);
    st_free(app);
#else
    SKIP("libstellar was built without hiredis (t: %s)", t->name);
#endif
}

static void
redis_restarted_after_5s_loses_and_repeats_nothing(struct test_ctx *t)
{
    redis_outage(t, RESTARTED);
}

static void
redis_killed_and_restarted_loses_and_repeats_nothing(struct test_ctx *t)
{
    redis_outage(t, CRASHED);
}

/* ------------------------------------------------ Leader failover --- */

/* The pid in the leader lock's value "<host>:<pid>+s<n>", 0 if none. */
static pid_t leader_pid(st_backend *b)
{
    stellar_error e = {0};
    char *v = NULL, *colon;
    pid_t pid = 0;

    ASSERT_OK(b->ops->kv_get(b, "resque_scheduler_leader_lock", &v, &e), &e);
    if (v && (colon = strrchr(v, ':')))
        pid = (pid_t)strtol(colon + 1, NULL, 10);
    st_free(v);
    return pid;
}

/* periodic.txt: its "<start> <end>" lines, in file order; the count. */
static int read_ticks(const char *path, int64_t (*iv)[2], int max)
{
    FILE *f = fopen(path, "r");
    long long s, e;
    int n = 0;

    if (!f) return 0;
    while (n < max && fscanf(f, "%lld %lld\n", &s, &e) == 2) {
        iv[n][0] = s;
        iv[n][1] = e;
        n++;
    }
    fclose(f);
    return n;
}

static int cmp_start(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/*
 * Issue #3: two `stellar run` processes with their schedulers on one
 * backend, a periodic task (leaderTick: every 1000 ms, runs 200 ms) and N
 * delayed faultJobs due over the next ~15 s. The leader (the pid in the
 * lock) is SIGKILLed and not restarted, between two runs of the periodic
 * task and between two delayed jobs' due times (in-flight jobs are the
 * kill tests' business). The task never runs twice at once, resumes within
 * the lock's TTL + 2 periods, keeps its period under the new leader, and
 * every delayed job runs exactly once.
 */
static void
killing_the_scheduler_leader_keeps_periodic_and_delayed_jobs(struct test_ctx *t)
{
    enum { N = 30, MAXT = 256, FREQ = 1000, RUN = 200, TTL = 10000 };
    char *runs = st_strdup(test_path(t, "runs.txt")), *app = copy_app(t);
    char *ticks = st_asprintf("%s/periodic.txt", app), *dst, *cfg;
    static int64_t iv[MAXT][2];
    stellar *h = open_handle(t, NULL, -1, false);
    stellar_error e = {0};
    st_backend *b = NULL;
    int64_t base, kill_ms, gap = 0, lo, hi;
    pid_t a, c, leader, survivor;
    int i, n, before, after_first = -1;
    FILE *f;

    /* The copy gets the periodic task and runs its scheduler. */
    dst = st_asprintf("%s/modules/faults/tasks/leaderTick.c", app);
    {
        char *src = st_asprintf("%s/periodic/leaderTick.c", app);
        const char *argv[] = {"/bin/cp", src, dst, NULL};
        int st = wait_exit(spawn(argv, NULL, test_path(t, "cp.log")), 10000);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            FAIL("cp %s %s failed", src, dst);
        st_free(src);
    }
    cfg = st_asprintf("%s/stellar.json", app);
    if (!(f = fopen(cfg, "w"))) FAIL("%s: %s", cfg, strerror(errno));
    fprintf(f,
            "{\"tasks\": {\"queues\": [\"*\"], \"maxTaskProcessors\": 2, "
            "\"scheduler\": true, \"timeout\": 50, "
            "\"stuckWorkerTimeout\": %d, \"shutdownTimeout\": 30000}}\n",
            STUCK_MS);
    fclose(f);

    ASSERT_OK(st_backend_open(&b, t->url, NULL, &e), &e);
    {
        /* Each of `stellar run`'s own flags; scheduler on (stellar.json). */
        const char *av[] = {program("STELLAR_BIN"), "run", "--backend", t->url,
                            "--processors",         "2",   NULL};
        a = spawn(av, app, test_path(t, "a.log"));
        c = spawn(av, app, test_path(t, "c.log"));
    }
    /* Both up (two workers each), a leader elected, the task running. */
    ASSERT_WAIT((assert_alive(a, "process a"), assert_alive(c, "process c"),
                 workers_of(h, a, NULL) == 2 && workers_of(h, c, NULL) == 2 &&
                     test_count_lines(ticks) >= 2),
                60000);
    leader = leader_pid(b);
    if (leader != a && leader != c)
        FAIL("leader lock names pid %ld, neither process (%ld, %ld)",
             (long)leader, (long)a, (long)c);
    survivor = leader == a ? c : a;

    /* N delayed jobs, one every 500 ms from base + 1 s. */
    base = test_mono_ms();
    for (i = 0; i < N; i++) {
        char *p = st_asprintf("{\"id\":%d,\"ms\":0,\"path\":\"%s\"}", i, runs);
        ASSERT_OK(stellar_enqueue_in(h, 1000 + (int64_t)i * 500, "faultJob", p,
                                     "default", &e),
                  &e);
        st_free(p);
    }

    /* Kill after ~2 s, right after a periodic run ended (the next starts a
     * period later), at 200-400 ms past a job's due time. */
    ASSERT_WAIT(test_mono_ms() - base >= 2000, 5000);
    before = test_count_lines(ticks);
    ASSERT_WAIT(test_count_lines(ticks) > before, 10000);
    while ((test_mono_ms() - base) % 500 < 200)
        test_sleep_ms(5);
    ASSERT_EQ(leader_pid(b), leader);
    kill(leader, SIGKILL);
    kill_ms = test_mono_ms();
    if (wait_exit(leader, 5000) == -1) FAIL("leader did not die");
    before = test_count_lines(ticks);
    test_note("killed leader pid %ld at +%lld ms (%d periodic runs so far)",
              (long)leader, (long long)(kill_ms - base), before);

    /* The survivor takes the lock within the TTL; the task resumes; every
     * job runs; then 5 more periodic runs under the new leader. */
    ASSERT_WAIT((assert_alive(survivor, "survivor"), leader_pid(b) == survivor),
                TTL + 3000);
    test_note("survivor %ld leads at +%lld ms after the kill", (long)survivor,
              (long long)(test_mono_ms() - kill_ms));
    ASSERT_WAIT(test_count_lines(runs) >= N, 1000 + N * 500 + TTL + 5000);
    ASSERT_WAIT(test_count_lines(ticks) >= before + 6, 2 * TTL);
    assert_alive(survivor, "survivor");

    /* Never twice at once. */
    n = read_ticks(ticks, iv, MAXT);
    qsort(iv, (size_t)n, sizeof iv[0], cmp_start);
    for (i = 1; i < n; i++)
        if (iv[i][0] < iv[i - 1][1])
            FAIL("periodic runs overlap: [%lld, %lld] and [%lld, %lld]",
                 (long long)iv[i - 1][0], (long long)iv[i - 1][1],
                 (long long)iv[i][0], (long long)iv[i][1]);
    /* The gap around the kill: the last start before it to the first
     * start after it. */
    for (i = 1; i < n; i++)
        if (iv[i][0] > kill_ms && iv[i - 1][0] <= kill_ms) {
            gap = iv[i][0] - iv[i - 1][0];
            after_first = i;
        }
    if (after_first < 0) FAIL("no periodic run after the kill");
    test_note("periodic gap across the kill: %lld ms (start to start), "
              "first run %lld ms after the kill",
              (long long)gap, (long long)(iv[after_first][0] - kill_ms));
    if (gap > TTL + 2 * (FREQ + RUN) + 1000)
        FAIL("periodic task paused %lld ms across the leader's death; "
             "allowed %d",
             (long long)gap, TTL + 2 * (FREQ + RUN) + 1000);
    /* Its rhythm under the new leader: each start one frequency after the
     * previous end (Redis stores due times in seconds: 500 ms early). */
    lo = is_redis(t) ? FREQ - 500 : FREQ - 20;
    hi = FREQ + 1000;
    for (i = after_first + 1; i < n; i++) {
        int64_t d = iv[i][0] - iv[i - 1][1];
        if (d < lo || d > hi)
            FAIL("after takeover, run %d started %lld ms after run %d "
                 "ended; frequency %d, allowed [%lld, %lld]",
                 i, (long long)d, i - 1, FREQ, (long long)lo, (long long)hi);
    }
    test_note("%d periodic runs, %d after the kill", n, n - after_first);

    /* Every delayed job exactly once; a last look for late duplicates. */
    test_sleep_ms(500);
    assert_runs(runs, N, 1);

    assert_exit_0(stop_process(survivor, 30000), "survivor after SIGTERM");
    st_backend_close(b);
    stellar_close(h);
    st_free(cfg);
    st_free(dst);
    st_free(ticks);
    st_free(app);
    st_free(runs);
}

static const struct test tests[] = {
    {"stellar_run_killed_and_restarted_loses_no_job",
     stellar_run_killed_and_restarted_loses_no_job, 1200},
    {"library_process_killed_and_restarted_loses_no_job",
     library_process_killed_and_restarted_loses_no_job, 1200},
    {"job_that_kills_its_process_three_times_is_a_poison_pill",
     job_that_kills_its_process_three_times_is_a_poison_pill, 120},
    {"innocent_jobs_beside_a_poison_pill_never_fail",
     innocent_jobs_beside_a_poison_pill_never_fail, 600},
    {"fork_isolation_fails_crashed_and_timed_out_jobs_only",
     fork_isolation_fails_crashed_and_timed_out_jobs_only, 120},
    {"sigterm_lets_eight_running_jobs_finish",
     sigterm_lets_eight_running_jobs_finish, 120},
    {"second_sigterm_puts_running_jobs_back",
     second_sigterm_puts_running_jobs_back, 120},
    {"bad_payloads_fail_clearly_and_the_worker_carries_on",
     bad_payloads_fail_clearly_and_the_worker_carries_on, 180},
    {"sqlite_busy_waits_with_a_bound_then_fails_clearly",
     sqlite_busy_waits_with_a_bound_then_fails_clearly, 60},
    {"full_disk_fails_enqueue_and_keeps_what_was_stored",
     full_disk_fails_enqueue_and_keeps_what_was_stored, 180},
    {"file_size_limit_fails_enqueue_and_keeps_what_was_stored",
     file_size_limit_fails_enqueue_and_keeps_what_was_stored, 120},
    {"redis_paused_for_5s_loses_and_repeats_nothing",
     redis_paused_for_5s_loses_and_repeats_nothing, 300},
    {"redis_frozen_longer_than_stuck_timeout_cleans_no_live_worker",
     redis_frozen_longer_than_stuck_timeout_cleans_no_live_worker, 180},
    {"second_sigterm_exits_promptly_while_redis_is_frozen",
     second_sigterm_exits_promptly_while_redis_is_frozen, 120},
    {"redis_restarted_after_5s_loses_and_repeats_nothing",
     redis_restarted_after_5s_loses_and_repeats_nothing, 300},
    {"redis_killed_and_restarted_loses_and_repeats_nothing",
     redis_killed_and_restarted_loses_and_repeats_nothing, 300},
    {"redis_reply_lost_after_a_reserve_loses_and_repeats_nothing",
     redis_reply_lost_after_a_reserve_loses_and_repeats_nothing, 120},
    {"killing_the_scheduler_leader_keeps_periodic_and_delayed_jobs",
     killing_the_scheduler_leader_keeps_periodic_and_delayed_jobs, 120},
};
TEST_MAIN(tests)
