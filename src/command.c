/*
 * command.c: command tasks, tasks in any language. A task file
 * modules/<module>/tasks/<name>.json names an executable; its run spawns it
 * and supervises it, so that the pool, plugins, retries, periodic runs, the
 * poison-pill count and metrics treat it as any other task.
 *
 * Loading the task file is taskfile.c's.
 *
 * DESIGN
 * - Run: posix_spawn (vfork-fast, even from a big process) into a process
 *   group of its own, in the file's folder, signals unblocked and at their
 *   defaults (the daemon blocks SIGTERM and ignores SIGPIPE), every fd but
 *   the three pipes closed. The params go to stdin, then EOF; stdout and
 *   stderr are read line by line into the log (stderr as warnings), each
 *   line cut at LINE_MAX bytes and at most LOG_BURST lines then LOG_RATE a
 *   second logged (the rest are counted, and the count logged), so a flood
 *   cannot fill the disk, and the pipes are always drained, so it cannot
 *   stall the processor or the command. A pidfd (or a short poll) tells
 *   the exit, not the pipes' EOF, since a grandchild may hold them.
 * - Limits: posix_spawn cannot set an rlimit, so a task with "limits" is
 *   started by fork and execve instead (spawn_limited), the child doing
 *   what posix_spawn's attributes do, then setrlimit, with async-signal-safe
 *   calls only (the server has threads): the path, the rlimits and the
 *   rest are made before the fork. A failure there comes back on a
 *   close-on-exec pipe and reads as posix_spawn's would ("cannot start").
 * - Outcome: exit 0 is success; another status fails the job with the last
 *   non-empty stderr line (at most 900 bytes, made valid UTF-8) or "exit
 *   status N"; a signal is "killed by SIGNAME", plus "(cpu limit N s)"
 *   when it is the cpu limit's doing (SIGXCPU, or SIGKILL once the command
 *   had used its cpuSeconds). Nothing is guessed for memory or files:
 *   running out of them is the program's own error (a failed allocation or
 *   open).
 * - Timeout and stop: past the task's timeout, or once a stop has put the
 *   job back (st_api_abandoned: the pool's stop deadline), the whole
 *   process group gets SIGTERM, then SIGKILL after GRACE_MS; the group is
 *   sent SIGKILL again before the leader is reaped, so that no grandchild
 *   outlives it and the group id cannot have been reused.
 * - No lock of Stellar's is held here: this is the task's run.
 */
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np, closefrom */
#include "command.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define LINE_MAX_BYTES                                                         \
    900                /* a longer output line is cut (the log takes 1 KiB) */
#define LOG_BURST 200  /* lines logged at once per run ... */
#define LOG_RATE  50   /* ... then per second */
#define NOTICE_MS 5000 /* the count of unlogged lines, at most every */
#define GRACE_MS  2000 /* SIGTERM to SIGKILL */
#define DRAIN_MS  200  /* output read after the exit, at most */
#define CHUNK     65536

/* ----------------------------------------------------------------- Run --- */

/* One output stream of the command: its pipe and its partial line. */
typedef struct stream {
    int fd;    /* -1 once at EOF */
    int level; /* STELLAR_LOG_INFO (stdout) or _WARN (stderr) */
    char line[LINE_MAX_BYTES + 1];
    size_t len;
    bool cutting; /* the current line passed LINE_MAX_BYTES: skip to \n */
} stream;

typedef struct run {
    stellar_api *api;
    stream out, err;
    double tokens;   /* log lines that may be logged now */
    int64_t refill;  /* ms of the last refill */
    int64_t dropped; /* lines not logged (over the rate) */
    int64_t noticed; /* ms of the last count of them logged */
    /* The failed entry's error: the last non-empty stderr line. */
    char last_err[LINE_MAX_BYTES + 1];
    int64_t cpu_ms; /* the command's cpu time (user + system), at its end */
} run;

/* Makes s (n bytes) printable, valid UTF-8 in place: control characters
 * and bytes of invalid sequences become '?'. Binary junk stays harmless in
 * the log and in the failed entry (JSON wants valid UTF-8). */
static void sanitize(char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t len = st_utf8_char((const unsigned char *)s + i, n - i, &cp);
        if (!len || (c < 0x20 && c != '\t') || c == 0x7F) {
            s[i++] = '?';
            continue;
        }
        i += len;
    }
}

/* How many lines went unlogged, said at most every NOTICE_MS and at the
 * end. */
static void log_dropped(run *r, int64_t now, bool last)
{
    if (!r->dropped || (!last && now - r->noticed < NOTICE_MS)) return;
    r->noticed = now;
    stellar_log(r->api, STELLAR_LOG_WARN,
                "(%lld lines of output not logged: more than %d a second)",
                (long long)r->dropped, LOG_RATE);
    r->dropped = 0;
}

/* Logs one line, within the rate. */
static void log_line(run *r, int level, const char *line)
{
    int64_t now = st_mono_ms();

    r->tokens += (double)(now - r->refill) * LOG_RATE / 1000.0;
    if (r->tokens > LOG_BURST) r->tokens = LOG_BURST;
    r->refill = now;
    if (r->tokens < 1) {
        r->dropped++;
        log_dropped(r, now, false);
        return;
    }
    r->tokens -= 1;
    stellar_log(r->api, level, "%s", line);
}

/* A whole line (or the first LINE_MAX_BYTES of one) of s. */
static void line_done(run *r, stream *s, bool cut)
{
    size_t n = s->len, b = 0;

    while (n && (s->line[n - 1] == '\r')) /* CRLF */
        n--;
    s->line[n] = '\0';
    sanitize(s->line, n);
    while (b < n && (s->line[b] == ' ' || s->line[b] == '\t'))
        b++;
    if (b < n) {
        if (s->level == STELLAR_LOG_WARN) {
            /* The last non-empty stderr line: already cut at
             * LINE_MAX_BYTES and made valid UTF-8 (sanitize). */
            memcpy(r->last_err, s->line, n);
            r->last_err[n] = '\0';
        }
        if (cut) {
            char *l =
                st_asprintf("%s [cut at %d bytes]", s->line, LINE_MAX_BYTES);
            log_line(r, s->level, l ? l : s->line);
            st_free(l);
        } else {
            log_line(r, s->level, s->line);
        }
    }
    s->len = 0;
}

static void feed(run *r, stream *s, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            if (s->cutting)
                s->cutting = false;
            else
                line_done(r, s, false);
            continue;
        }
        if (s->cutting) continue;
        if (s->len == LINE_MAX_BYTES) {
            line_done(r, s, true);
            s->cutting = true;
            continue;
        }
        s->line[s->len++] = buf[i];
    }
}

/* Reads what s has (a bounded amount); at EOF or an error, logs the last
 * partial line and closes s->fd (-1). */
static void drain(run *r, stream *s)
{
    char buf[CHUNK];
    for (int rounds = 0; s->fd >= 0 && rounds < 16; rounds++) {
        ssize_t n = read(s->fd, buf, sizeof buf);
        if (n > 0) {
            feed(r, s, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (s->len && !s->cutting) line_done(r, s, false); /* no final \n */
        close(s->fd);
        s->fd = -1;
    }
}

static const char *sig_name(int sig, char buf[32])
{
    static const struct {
        int sig;
        const char *name;
    } names[] = {
        {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
        {SIGILL, "SIGILL"},       {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
        {SIGBUS, "SIGBUS"},       {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
        {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
        {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
        {SIGCHLD, "SIGCHLD"},     {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},
        {SIGTSTP, "SIGTSTP"},     {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},
        {SIGURG, "SIGURG"},       {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
        {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"},
        {SIGSYS, "SIGSYS"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == sig) return names[i].name;
    snprintf(buf, 32, "signal %d", sig);
    return buf;
}

/* The command's environment: the server's, then the file's "env", then
 * STELLAR_*; a later one replaces an earlier one of the same name. */
static char **build_env(stellar_api *api, const st_command *c)
{
    char *own[5];
    size_t n = 0, k = 0, i, j;
    char **envp;

    own[0] = st_asprintf("STELLAR_TASK=%s", stellar_api_task(api));
    own[1] = st_asprintf("STELLAR_QUEUE=%s", stellar_api_queue(api));
    own[2] = st_asprintf("STELLAR_WORKER=%s", stellar_api_worker(api));
    own[3] =
        st_asprintf("STELLAR_BACKEND=%s", stellar_url(stellar_api_handle(api)));
    own[4] = st_asprintf("STELLAR_APP=%s", c->app_dir);
    while (environ && environ[n])
        n++;
    for (i = 0; c->env && c->env[i]; i++)
        n++;
    envp = st_calloc(n + 6, sizeof *envp);
    for (i = 0; i < 5; i++)
        if (!own[i]) {
            st_free(envp);
            envp = NULL;
            break;
        }
    if (!envp) {
        for (i = 0; i < 5; i++)
            st_free(own[i]);
        return NULL;
    }
    /* Borrowed server and file entries, then our own (owned) at the end. */
    for (int pass = 0; pass < 2; pass++) {
        char **src = pass ? c->env : environ;
        for (i = 0; src && src[i]; i++) {
            size_t len = strcspn(src[i], "=");
            bool shadowed = false;
            for (j = 0; j < 5 && !shadowed; j++)
                shadowed = strncmp(own[j], src[i], len + 1) == 0;
            for (j = 0; !pass && c->env && c->env[j] && !shadowed; j++)
                shadowed = strncmp(c->env[j], src[i], len + 1) == 0;
            if (!shadowed) envp[k++] = src[i];
        }
    }
    for (i = 0; i < 5; i++)
        envp[k++] = own[i];
    envp[k] = NULL;
    return envp;
}

static void env_free(char **envp)
{
    size_t n = 0;
    while (envp && envp[n])
        n++;
    for (size_t i = n >= 5 ? n - 5 : 0; i < n; i++) /* our own five */
        st_free(envp[i]);
    st_free(envp);
}

/* ----------------------------------------------------- Spawn, limits --- */

/* What the child of spawn_limited does, all made before the fork. */
typedef struct plan {
    const char *path;                /* for execve */
    char *const *argv, *const *envp; /* borrowed */
    const char *dir;                 /* the cwd */
    int fds[3];                      /* become its stdin, stdout, stderr */
    int report;                      /* write end of the report pipe */
    int max_fd;                      /* without close_range: close below */
    int resource[ST_NLIMITS];        /* RLIMIT_*, or -1: not set */
    struct rlimit rl[ST_NLIMITS];
} plan;

/* Why the child did not reach its program: errno, and at which limit
 * (-1: another step). */
typedef struct report {
    int limit;
    int err;
} report;

/* The child, between fork and exec: async-signal-safe calls only (setrlimit
 * and syscall are not on POSIX's list but are bare system calls in glibc
 * and musl). Does not return. */
static _Noreturn void child_exec(const plan *p)
{
    struct sigaction dfl;
    report rep = {-1, 0};
    sigset_t none;
    ssize_t n;
    int fd;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) /* KILL, STOP, glibc's own: EINVAL */
        sigaction(sig, &dfl, NULL);
    if (setpgid(0, 0)) goto fail;
    for (fd = 0; fd < 3; fd++) {
        /* A dup2 onto itself would leave it close-on-exec. */
        int r = p->fds[fd] == fd ? fcntl(fd, F_SETFD, 0) : dup2(p->fds[fd], fd);
        if (r < 0) goto fail;
    }
    fd = 3; /* every fd from 3 closed, but the report's */
#ifdef SYS_close_range
    if ((p->report == 3 ||
         syscall(SYS_close_range, 3u, (unsigned)p->report - 1, 0u) == 0) &&
        syscall(SYS_close_range, (unsigned)p->report + 1, ~0u, 0u) == 0)
        fd = p->max_fd; /* done: no loop */
#endif
    for (; fd < p->max_fd; fd++)
        if (fd != p->report) close(fd);
    if (chdir(p->dir)) goto fail;
    for (rep.limit = 0; rep.limit < ST_NLIMITS; rep.limit++)
        if (p->resource[rep.limit] >= 0 &&
            setrlimit(p->resource[rep.limit], &p->rl[rep.limit]))
            goto fail;
    rep.limit = -1;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* handlers are defaults now */
    execve(p->path, p->argv, p->envp);
fail:
    rep.err = errno;
    n = write(p->report, &rep, sizeof rep); /* the parent reads it */
    (void)n;
    _exit(127);
}

/* spawn() for a command with limits: fork, set up, setrlimit, execve.
 * *limit: the limit that could not be set, or -1. */
static int spawn_limited(const st_command *c, char **envp, const int child[3],
                         pid_t *pid, int *limit)
{
    static const int resources[ST_NLIMITS] = {RLIMIT_AS, RLIMIT_CPU,
                                              RLIMIT_NOFILE};
    plan p = {.argv = c->argv, .envp = envp, .dir = c->dir};
    char *found = NULL;
    report rep;
    int rp[2], rc = 0;
    sigset_t all, old;
    ssize_t n = 0;

    *limit = -1;
    if (!(p.path = c->exec_path)) {
        /* As posix_spawnp: the server's PATH. */
        if (!(p.path = found = st_command_which(c->argv[0]))) return ENOENT;
    }
    for (int i = 0; i < ST_NLIMITS; i++) {
        rlim_t n_max, v = (rlim_t)c->limits[i];
        struct rlimit cur;
        p.resource[i] = c->limits[i] ? resources[i] : -1;
        if (!c->limits[i]) continue;
        if (i == ST_LIMIT_MEMORY) v *= 1024 * 1024;
        /* The hard limit too, or the command could raise its own; for the
         * cpu 1 s more, so that SIGXCPU comes first and SIGKILL later. */
        n_max = i == ST_LIMIT_CPU ? v + 1 : v;
        if (getrlimit(resources[i], &cur) == 0 &&
            cur.rlim_max != RLIM_INFINITY && cur.rlim_max < n_max &&
            cur.rlim_max >= v)
            n_max = cur.rlim_max;
        p.rl[i] = (struct rlimit){v, n_max};
    }
    for (int fd = 0; fd < 3; fd++)
        p.fds[fd] = child[fd];
    p.max_fd = (int)sysconf(_SC_OPEN_MAX);
    if (p.max_fd < 0 || p.max_fd > 1 << 20) p.max_fd = 1 << 20;
    /* The three pipes were made first: this one's fds are above 2. */
    if (pipe2(rp, O_CLOEXEC)) {
        rc = errno;
        st_free(found);
        return rc;
    }
    p.report = rp[1];
    /* No handler of the server's may run in the child before the reset. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if ((*pid = fork()) == 0) child_exec(&p);
    rc = *pid < 0 ? errno : 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(rp[1]);
    /* EOF: the exec closed it. A report: the child gives up; reap it. */
    while (!rc && (n = read(rp[0], &rep, sizeof rep)) < 0 && errno == EINTR)
        ;
    if (!rc && n == (ssize_t)sizeof rep) {
        while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
            ;
        *limit = rep.limit;
        rc = rep.err ? rep.err : EIO;
    }
    close(rp[0]);
    st_free(found);
    return rc;
}

/* Starts the command with its stdin, stdout and stderr on the three given
 * fds (the child's ends), in a process group of its own. *limit: as
 * spawn_limited's. */
static int spawn(const st_command *c, char **envp, const int child[3],
                 pid_t *pid, int *limit)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    int rc;

    *limit = -1;
    if (st_command_has_limits(c))
        return spawn_limited(c, envp, child, pid, limit);
    if ((rc = posix_spawn_file_actions_init(&fa))) return rc;
    if ((rc = posix_spawnattr_init(&at))) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    sigemptyset(&none);
    sigfillset(&all);
    for (int fd = 0; fd < 3 && !rc; fd++)
        rc = posix_spawn_file_actions_adddup2(&fa, child[fd], fd);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
    /* Nothing of the server's (sockets, the SQLite file) reaches it. */
    if (!rc) rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    if (!rc) rc = posix_spawn_file_actions_addchdir_np(&fa, c->dir);
    if (!rc)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
                                               POSIX_SPAWN_SETSIGMASK |
                                               POSIX_SPAWN_SETSIGDEF);
    if (!rc) rc = posix_spawnattr_setpgroup(&at, 0);
    if (!rc) rc = posix_spawnattr_setsigmask(&at, &none);
    if (!rc) rc = posix_spawnattr_setsigdefault(&at, &all);
    if (!rc)
        rc = c->exec_path
                 ? posix_spawn(pid, c->exec_path, &fa, &at, c->argv, envp)
                 : posix_spawnp(pid, c->argv[0], &fa, &at, c->argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    return -1;
#endif
}

/* Whether pid has ended, without reaping it (so that its id, which is
 * its group's, stays taken while the group is killed). */
static bool has_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD; /* reaped elsewhere (SIGCHLD ignored) */
    return si.si_pid == pid;
}

enum ending { END_EXIT, END_TIMEOUT, END_STOP };

/* Supervises the started command until it ends: feeds stdin, logs output,
 * enforces the timeout and the stop. Returns how it ended; *status, and
 * r->cpu_ms. */
static enum ending supervise(run *r, const st_command *c, pid_t pid, int in_fd,
                             const char *input, size_t input_len, int *status)
{
    int pidfd = open_pidfd(pid);
    struct rusage ru;
    int64_t start = st_mono_ms(), killing = 0, exited_at = 0, next_check = 0;
    size_t off = 0;
    enum ending how = END_EXIT;
    bool exited = false, killed = false;

    for (;;) {
        struct pollfd pf[4];
        int nf = 0, wait_ms = 100, at_in = -1, at_out = -1, at_err = -1,
            at_pid = -1;
        int64_t now = st_mono_ms();

        if (exited &&
            ((r->out.fd < 0 && r->err.fd < 0) || now - exited_at >= DRAIN_MS))
            break;
        if (in_fd >= 0 && !exited) {
            at_in = nf;
            pf[nf++] = (struct pollfd){in_fd, POLLOUT, 0};
        }
        if (r->out.fd >= 0) {
            at_out = nf;
            pf[nf++] = (struct pollfd){r->out.fd, POLLIN, 0};
        }
        if (r->err.fd >= 0) {
            at_err = nf;
            pf[nf++] = (struct pollfd){r->err.fd, POLLIN, 0};
        }
        if (pidfd >= 0 && !exited) {
            at_pid = nf;
            pf[nf++] = (struct pollfd){pidfd, POLLIN, 0};
        } else if (!exited) {
            wait_ms = 10; /* no pidfd: the exit is polled */
        }
        if (exited) wait_ms = (int)(DRAIN_MS - (now - exited_at));
        if (!exited && c->timeout && !killing) {
            int64_t left = start + c->timeout - now;
            if (left < wait_ms) wait_ms = left > 0 ? (int)left : 0;
        }
        if (poll(pf, (nfds_t)nf, wait_ms) < 0 && errno != EINTR)
            st_sleep_ms(10); /* out of resources: the checks below go on */

        if (at_in >= 0 && pf[at_in].revents) {
            ssize_t n = 0;
            if (pf[at_in].revents & POLLOUT) {
                size_t want = input_len - off < CHUNK ? input_len - off : CHUNK;
                n = write(in_fd, input + off, want);
            }
            if (n > 0) off += (size_t)n;
            /* All written, or the command closed its stdin (EPIPE): that
             * is its business; its exit status tells. */
            if (off >= input_len ||
                (n < 0 && errno != EAGAIN && errno != EINTR) ||
                (pf[at_in].revents & (POLLERR | POLLHUP))) {
                close(in_fd);
                in_fd = -1;
            }
        }
        if (at_out >= 0 && pf[at_out].revents) drain(r, &r->out);
        if (at_err >= 0 && pf[at_err].revents) drain(r, &r->err);

        now = st_mono_ms();
        if (!exited && (at_pid < 0 || pf[at_pid].revents) && has_exited(pid)) {
            exited = true;
            exited_at = now;
            if (in_fd >= 0) close(in_fd);
            in_fd = -1;
            /* Before the leader is reaped, its group cannot be another's:
             * after a kill, nothing of it outlives it. */
            if (killing) kill(-pid, SIGKILL);
            continue;
        }
        if (exited) continue;
        if (!killing && c->timeout && now - start >= c->timeout) {
            how = END_TIMEOUT;
            killing = now;
            kill(-pid, SIGTERM);
        }
        if (!killing && now >= next_check) {
            next_check = now + 100;
            if (st_api_abandoned(r->api)) {
                how = END_STOP;
                killing = now;
                kill(-pid, SIGTERM);
            }
        }
        if (killing && !killed && now - killing >= GRACE_MS) {
            killed = true;
            kill(-pid, SIGKILL);
        }
    }
    if (in_fd >= 0) close(in_fd);
    if (pidfd >= 0) close(pidfd);
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, status, 0, &ru) < 0) {
        if (errno != EINTR) {
            *status = -1; /* reaped elsewhere: unknown */
            break;
        }
    }
    r->cpu_ms = (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
    return how;
}

/* " (cpu limit N s)" when the signal sig that ended the command was the cpu
 * limit's doing, else "". */
static const char *limit_hit(const st_command *c, const run *r, int sig,
                             char buf[64])
{
    int64_t cpu = c->limits[ST_LIMIT_CPU];
    buf[0] = '\0';
    if (cpu && (sig == SIGXCPU || (sig == SIGKILL && r->cpu_ms >= cpu * 1000)))
        snprintf(buf, 64, " (cpu limit %lld s)", (long long)cpu);
    return buf;
}

int st_command_run(stellar_api *api, const json_t *params, stellar_next *next)
{
    const st_task *t = st_api_task_def(api);
    const st_command *c = t ? t->command : NULL;
    run *r = NULL;
    char *input = NULL, **envp = NULL, sigbuf[32], hit[64];
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, status = 0;
    int rc = STELLAR_OK;
    sigset_t pipe_set, old;
    pid_t pid;
    enum ending how;

    if (!c)
        return stellar_fail(next, "%s is not a command task",
                            stellar_api_task(api));
    /* A write to a stdin the command closed must not raise SIGPIPE in a
     * program that embeds the library and did not ignore it. */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);

    input = st_json_dumps(params);
    r = st_calloc(1, sizeof *r);
    envp = build_env(api, c);
    if (!input || !r || !envp) {
        rc = stellar_fail(next, "out of memory");
        goto done;
    }
    r->api = api;
    r->tokens = LOG_BURST;
    r->refill = st_mono_ms();
    r->out = (stream){.fd = -1, .level = STELLAR_LOG_INFO};
    r->err = (stream){.fd = -1, .level = STELLAR_LOG_WARN};
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) ||
        pipe2(err, O_CLOEXEC)) {
        rc = stellar_fail(next, "cannot start %s: pipe: %s", c->argv[0],
                          strerror(errno));
        goto done;
    }
    {
        int child[3] = {in[0], out[1], err[1]}, e, lim;
        if ((e = spawn(c, envp, child, &pid, &lim))) {
            rc = lim < 0
                     ? stellar_fail(next, "cannot start %s: %s", c->argv[0],
                                    strerror(e))
                     : stellar_fail(next, "cannot start %s: limit %s %lld: %s",
                                    c->argv[0], st_limit_keys[lim],
                                    (long long)c->limits[lim], strerror(e));
            goto done;
        }
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in[0] = out[1] = err[1] = -1;
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    r->out.fd = out[0];
    r->err.fd = err[0];
    out[0] = err[0] = -1;
    how = supervise(r, c, pid, in[1], input, strlen(input), &status);
    in[1] = -1; /* closed by supervise */
    if (r->out.fd >= 0) close(r->out.fd);
    if (r->err.fd >= 0) close(r->err.fd);
    if (r->out.len && !r->out.cutting) line_done(r, &r->out, false);
    if (r->err.len && !r->err.cutting) line_done(r, &r->err, false);
    log_dropped(r, st_mono_ms(), true);

    if (how == END_TIMEOUT)
        rc = stellar_fail(next, "timed out after %lld ms",
                          (long long)c->timeout);
    else if (how == END_STOP)
        rc = stellar_fail(next, "stopped: the job went back to its queue");
    else if (status == -1)
        rc = stellar_fail(next, "exit status unknown (reaped elsewhere)");
    else if (WIFSIGNALED(status))
        rc = stellar_fail(next, "killed by %s%s",
                          sig_name(WTERMSIG(status), sigbuf),
                          limit_hit(c, r, WTERMSIG(status), hit));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        rc = r->last_err[0]
                 ? stellar_fail(next, "%s", r->last_err)
                 : stellar_fail(next, "exit status %d", WEXITSTATUS(status));
done:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0) close(in[i]);
        if (out[i] >= 0) close(out[i]);
        if (err[i] >= 0) close(err[i]);
    }
    st_free(input);
    st_free(r);
    env_free(envp);
    if (!sigismember(&old, SIGPIPE)) {
        /* A SIGPIPE raised by a write above is taken, not left pending. */
        struct timespec zero = {0, 0};
        sigset_t pending;
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE))
            sigtimedwait(&pipe_set, NULL, &zero);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return rc;
}
