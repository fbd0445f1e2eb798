/*
 * lost_reply.c: a reserve's reply lost after Redis ran it (a unix-socket
 * proxy drops the connection between the two): every job still runs once
 * and is acked once. Redis only; on SQLite the test skips.
 */
#include "faults.h"

/* ---------------------------------------------------- A lost reply --- */

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
void redis_reply_lost_after_a_reserve_loses_and_repeats_nothing(
    struct test_ctx *t)
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
