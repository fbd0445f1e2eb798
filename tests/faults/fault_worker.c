/*
 * fault_worker.c: a small program on libstellar for the fault tests (the
 * other files of tests/faults/) and the valgrind run
 * (tests/faults/valgrind.sh).
 *
 *   fault_worker --url URL [--processors N] [--no-scheduler] [--stuck MS]
 *                [--max-crashes N] [--shutdown MS] [--log FILE]
 *       Runs TaskProcessors (and the scheduler) until SIGTERM or SIGINT,
 *       then stops gracefully and exits 0. Tasks: faultJob (the app's, see
 *       app/modules/faults/tasks/faultJob.c), crashThread (kills the whole
 *       process with SIGSEGV: it runs in the processor's thread, unless it
 *       is a suspect), killWorker (SIGKILLs this process, even from a child
 *       of its own), count.
 *
 *   fault_worker --url URL --run-jobs N [--processors N]
 *       Enqueues N count jobs, runs them, stops, checks the stats, closes
 *       and exits 0 (1 on any mismatch): the valgrind workload.
 *
 * Signals are blocked in every thread and taken with sigwait() in main, as
 * `stellar run` does (STYLE.md §5).
 */
#include <stellar.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long counted;

static int count_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api;
    (void)params;
    (void)next;
    atomic_fetch_add(&counted, 1);
    return STELLAR_OK;
}

STELLAR_TASK(count) = {
    .name = "count",
    .description = "Counts its runs in memory",
    .queue = "default",
    .run = count_run,
};

static int crash_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    uintptr_t addr =
        (uintptr_t)json_integer_value(json_object_get(params, "addr"));
    (void)api;
    (void)next;
    *(volatile int *)(addr + 8) = 1; /* SIGSEGV: the process dies */
    return STELLAR_OK;
}

STELLAR_TASK(crashThread) = {
    .name = "crashThread",
    .description = "Crashes the process (thread isolation)",
    .queue = "default",
    .run = crash_run,
    .isolation = STELLAR_ISOLATION_THREAD,
};

/* This process, for killWorker in a child (fork isolation). */
static pid_t worker_pid;

static int kill_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    (void)api;
    (void)params;
    (void)next;
    kill(worker_pid, SIGKILL);
    _exit(9); /* in a child: its worker is gone */
}

STELLAR_TASK(killWorker) = {
    .name = "killWorker",
    .description = "Kills the worker process, even run in a child",
    .queue = "default",
    .run = kill_run,
    .isolation = STELLAR_ISOLATION_THREAD,
};

static FILE *log_file;

static void log_fn(void *ud, int level, const char *msg)
{
    struct timespec ts;
    (void)ud;
    if (!log_file) return;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(log_file, "%lld.%03ld %ld %d %s\n", (long long)ts.tv_sec,
            ts.tv_nsec / 1000000, (long)getpid(), level, msg);
    fflush(log_file);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: fault_worker --url URL [--processors N] [--no-scheduler] "
            "[--stuck MS] [--max-crashes N] [--shutdown MS] [--log FILE] "
            "[--run-jobs N]\n");
    return 2;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        continue;
}

static long long stat_of(stellar *h, const char *key)
{
    json_t *stats = NULL;
    long long n = -1;
    if (stellar_stats(h, &stats, NULL) == STELLAR_OK)
        n = json_integer_value(json_object_get(stats, key));
    json_decref(stats);
    return n;
}

/* The valgrind workload: n count jobs through the processors. */
static int run_jobs(stellar *h, long n)
{
    stellar_error e = {0};
    const char **params = calloc((size_t)n, sizeof *params);
    long i, waited = 0;
    int rc = 0;

    if (!params) return 1;
    for (i = 0; i < n; i++)
        params[i] = "{}";
    for (i = 0; i < n; i += 1000) {
        size_t chunk = (size_t)(n - i < 1000 ? n - i : 1000);
        if (stellar_enqueue_many(h, "count", params + i, chunk, NULL, &e)) {
            fprintf(stderr, "fault_worker: enqueue: %s\n", e.msg);
            free(params);
            return 1;
        }
    }
    free(params);
    if (stellar_start(h, &e)) {
        fprintf(stderr, "fault_worker: start: %s\n", e.msg);
        return 1;
    }
    /* Under valgrind 10,000 jobs take minutes: wait up to 30. */
    while (atomic_load(&counted) < n || stat_of(h, "processed") < n) {
        if (waited > 30 * 60 * 1000) {
            fprintf(stderr, "fault_worker: only %ld of %ld jobs ran\n",
                    (long)atomic_load(&counted), n);
            rc = 1;
            break;
        }
        nap_ms(20);
        waited += 20;
    }
    stellar_stop(h, -1);
    if (atomic_load(&counted) != n || stat_of(h, "processed") != n ||
        stat_of(h, "failed") > 0) {
        fprintf(stderr,
                "fault_worker: ran %ld, processed %lld, failed %lld "
                "(want %ld, %ld, 0)\n",
                (long)atomic_load(&counted), stat_of(h, "processed"),
                stat_of(h, "failed"), n, n);
        rc = 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    stellar_options o = {0};
    stellar_error e = {0};
    stellar *h = NULL;
    sigset_t set;
    long jobs = 0;
    int sig = 0, rc = 0, i;

    worker_pid = getpid();

    o.processors = 4;
    o.poll_ms = 50;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-scheduler") == 0) {
            o.no_scheduler = true;
            continue;
        }
        if (!v) return usage();
        i++;
        if (strcmp(a, "--url") == 0)
            o.url = v;
        else if (strcmp(a, "--processors") == 0)
            o.processors = atoi(v);
        else if (strcmp(a, "--stuck") == 0)
            o.stuck_worker_timeout_ms = atoll(v);
        else if (strcmp(a, "--max-crashes") == 0)
            o.max_crashes = atoi(v);
        else if (strcmp(a, "--shutdown") == 0)
            o.shutdown_timeout_ms = atoll(v);
        else if (strcmp(a, "--run-jobs") == 0)
            jobs = atol(v);
        else if (strcmp(a, "--log") == 0)
            log_file = fopen(v, "a");
        else
            return usage();
    }
    if (!o.url) return usage();
    o.log_fn = log_fn;
    o.log_level = STELLAR_LOG_INFO;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (stellar_open(&h, &o, &e) ||
        stellar_task_register_builtin(h, &e) != STELLAR_OK) {
        fprintf(stderr, "fault_worker: %s\n", e.msg);
        stellar_close(h);
        return 1;
    }
    if (jobs > 0) {
        rc = run_jobs(h, jobs);
    } else if (stellar_start(h, &e) != STELLAR_OK) {
        fprintf(stderr, "fault_worker: start: %s\n", e.msg);
        rc = 1;
    } else {
        do {
            if (sigwait(&set, &sig) != 0) sig = 0;
        } while (sig != SIGINT && sig != SIGTERM);
        stellar_stop(h, -1);
    }
    stellar_close(h);
    if (log_file) fclose(log_file);
    return rc;
}
