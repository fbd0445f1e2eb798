/*
 * slow_clients.c: slow clients: a slowloris from one address does not
 * starve other addresses, and a request head must arrive within the
 * deadline.
 */
#include "http_test.h"

/* ------------------------------------------------------- Slow clients --- */

#define SLOW_CONNS 140

/* A slowloris: SLOW_CONNS connections from 127.0.0.1 that each send one
 * header line every 2 s and never end their head; a connection the
 * server closes is opened again at its next turn. */
typedef struct slowloris {
    int port;
    int fd[SLOW_CONNS];
    pthread_mutex_t lock;
    bool stop; /* guarded by lock */
    pthread_t thread;
    int reconnects; /* for the note */
} slowloris;

static void *slowloris_main(void *arg)
{
    slowloris *sl = arg;
    char line[64];
    int i, round = 0;
    for (;;) {
        pthread_mutex_lock(&sl->lock);
        if (sl->stop) {
            pthread_mutex_unlock(&sl->lock);
            break;
        }
        pthread_mutex_unlock(&sl->lock);
        for (i = 0; i < SLOW_CONNS; i++) {
            if (sl->fd[i] >= 0) {
                int n =
                    snprintf(line, sizeof line, "X-Slow-%d: %d\r\n", round, i);
                if (send(sl->fd[i], line, (size_t)n,
                         MSG_NOSIGNAL | MSG_DONTWAIT) == n)
                    continue;
                close(sl->fd[i]);
                sl->fd[i] = -1;
            }
            if ((sl->fd[i] = connect_from("127.0.0.1", sl->port)) >= 0) {
                const char *head = "GET /api/stats HTTP/1.1\r\nHost: "
                                   "127.0.0.1\r\n";
                (void)!send(sl->fd[i], head, strlen(head),
                            MSG_NOSIGNAL | MSG_DONTWAIT);
                sl->reconnects++;
            }
        }
        round++;
        /* About 2 s between lines, in steps so that stop is quick. */
        for (i = 0; i < 20; i++) {
            pthread_mutex_lock(&sl->lock);
            if (sl->stop) i = 20;
            pthread_mutex_unlock(&sl->lock);
            if (i < 20) test_sleep_ms(100);
        }
    }
    for (i = 0; i < SLOW_CONNS; i++)
        if (sl->fd[i] >= 0) close(sl->fd[i]);
    return NULL;
}

void slow_clients_do_not_starve_other_addresses(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    int port, i, answered = 0;
    stellar_http *s = serve(h, "127.0.0.1:0", TOKEN, &port);
    slowloris *sl = calloc(1, sizeof *sl);
    int64_t start, worst = 0, attack_until;

    /* 127.0.0.2 must be a local address (it is on Linux's lo). */
    {
        int fd = connect_from("127.0.0.2", port);
        if (fd < 0)
            test_skip("cannot connect from 127.0.0.2: %s", strerror(errno));
        close(fd);
    }
    sl->port = port;
    for (i = 0; i < SLOW_CONNS; i++)
        sl->fd[i] = -1;
    pthread_mutex_init(&sl->lock, NULL);
    ASSERT_EQ(0, pthread_create(&sl->thread, NULL, slowloris_main, sl));
    /* Let the attack open its connections, then ask from another address
     * for 12 s (past two head deadlines): every answer comes within the
     * 5 s head deadline. */
    test_sleep_ms(1500);
    attack_until = test_now_ms() + 12000;
    while (test_now_ms() < attack_until) {
        start = test_now_ms();
        ASSERT_STATUS(
            req_from("127.0.0.2", port, "GET", "/api/stats", BEARER, NULL),
            200);
        if (test_now_ms() - start > worst) worst = test_now_ms() - start;
        answered++;
        test_sleep_ms(500);
    }
    pthread_mutex_lock(&sl->lock);
    sl->stop = true;
    pthread_mutex_unlock(&sl->lock);
    pthread_join(sl->thread, NULL);
    test_note("%d answers to 127.0.0.2 during the attack, the slowest in "
              "%lld ms; %d slow connections opened",
              answered, (long long)worst, sl->reconnects);
    ASSERT_TRUE(worst < 5000);
    ASSERT_TRUE(sl->reconnects > SLOW_CONNS); /* the server closed some */
    pthread_mutex_destroy(&sl->lock);
    free(sl);
    finish(s, h);
}

void a_request_head_must_arrive_within_the_deadline(struct test_ctx *t)
{
    stellar *h = open_app(t, 0, NULL);
    int port, fd, i = 0;
    stellar_http *s = serve(h, NULL, NULL, &port);
    int64_t start = test_now_ms(), closed_at = 0;
    char buf[512];

    /* One header line every 500 ms: never idle, never done. */
    ASSERT_TRUE((fd = connect_from(NULL, port)) >= 0);
    ASSERT_TRUE(send(fd, "GET /api/stats HTTP/1.1\r\n", 25, MSG_NOSIGNAL) ==
                25);
    while (test_now_ms() - start < 30000) {
        char line[32];
        ssize_t got;
        int n = snprintf(line, sizeof line, "X-Slow: %d\r\n", i++);
        if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) break;
        test_sleep_ms(500);
        got = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        if (got > 0) {
            buf[got] = '\0';
            ASSERT_TRUE(strncmp(buf, "HTTP/1.1 408", 12) == 0);
        }
    }
    closed_at = test_now_ms() - start;
    close(fd);
    test_note("a head trickling in was cut after %lld ms",
              (long long)closed_at);
    ASSERT_TRUE(closed_at >= 4500); /* the deadline is 5 s */
    ASSERT_TRUE(closed_at < 20000); /* and it is kept, loaded or not */
    /* The server still answers. */
    ASSERT_STATUS(get(port, "/api/stats"), 200);
    finish(s, h);
}
