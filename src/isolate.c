/*
 * isolate.c: fork isolation, one run of a task in a child process of its
 * own, with a hard timeout.
 *
 * A processor runs a job here when its task (or the handle) asks for
 * isolation = fork, and always for a suspect (core.h), so that a job that
 * crashes its process dies alone and fails with its signal. The child runs
 * the task as a thread would (st_task_call), writes its error, if any, on
 * a pipe and exits: 0 for success, 1 for a failure. The parent reads the
 * pipe until it closes or the task's timeout passes; at the timeout the
 * child gets SIGTERM, then SIGKILL 2 s later, and the job fails. A crash,
 * a non-zero exit or a timeout fails the job, never the process.
 *
 * No handle crosses fork(): a task in the child that asks for its handle
 * gets one of its own (taskapi.c), closed here before the child exits.
 */
#include "pool.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KILL_GRACE_MS 2000 /* from SIGTERM to SIGKILL at a timeout */

/* In the child: runs the task, reports on fd, never returns. */
static _Noreturn void child_main(stellar_api *api, const st_task *t,
                                 json_t *args, int fd)
{
    char *err;
    size_t off = 0, len;
    sigset_t none;

    /* A daemon blocks SIGTERM and SIGINT in every thread (it takes them
     * with sigwait): the child must not inherit that, or the SIGTERM
     * sent at its timeout waits for the SIGKILL (tests/faults). */
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    api->in_child = true;
    err = st_task_call(api, t, args);
    len = err ? strlen(err) : 0;
    while (off < len) {
        ssize_t n = write(fd, err + off, len - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    stellar_close(api->child_h);
    _exit(err ? 1 : 0);
}

/* Ends a child that ran out of time: SIGTERM, then SIGKILL after the
 * grace period; reaps it. */
static void kill_child(pid_t pid)
{
    int64_t grace = st_mono_ms() + KILL_GRACE_MS;
    int status;

    kill(pid, SIGTERM);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (st_mono_ms() >= grace) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        st_sleep_ms(10);
    }
}

char *st_isolate_run(stellar_api *api, const st_task *t, json_t *args)
{
    int fds[2], status = 0;
    bool timed_out = false;
    st_buf msg = {0};
    pid_t pid;
    char *error;

    if (pipe(fds))
        return st_asprintf("fork isolation: pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return st_asprintf("fork isolation: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(api, t, args, fds[1]);
    }
    close(fds[1]);
    for (;;) {
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int64_t left = api->deadline_ms ? api->deadline_ms - st_mono_ms() : -1;
        char buf[512];
        ssize_t n;

        if (api->deadline_ms && left <= 0) {
            timed_out = true;
            break;
        }
        if (poll(&pfd, 1, left < 0 || left > 1000 ? 1000 : (int)left) <= 0)
            continue;
        n = read(fds[0], buf, sizeof buf);
        if (n == 0) break;
        if (n < 0 && errno != EINTR) break;
        if (n > 0) st_buf_put(&msg, buf, (size_t)n);
    }
    close(fds[0]);
    if (timed_out) {
        kill_child(pid);
        st_buf_free(&msg);
        return st_asprintf("timed out after %lld ms: the child was killed",
                           (long long)t->def.timeout);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    error = st_buf_take(&msg);
    if (WIFSIGNALED(status)) {
        st_free(error);
        return st_asprintf("the child running %s was killed by signal %d (%s)",
                           t->def.name, WTERMSIG(status),
                           strsignal(WTERMSIG(status)));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && (!error || !*error)) {
        st_free(error);
        return st_asprintf("the child running %s exited with status %d",
                           t->def.name, WEXITSTATUS(status));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        st_free(error);
        return NULL;
    }
    return error;
}
