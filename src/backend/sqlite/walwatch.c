/*
 * walwatch.c: the SQLite backend's wake-up on a write to the WAL, a
 * platform seam (as Redis keeps ae_epoll.c apart from ae.c).
 *
 * Every commit, from any process, appends to the WAL file, so a waiting
 * worker (sq_wait, workers.c) can sleep until the WAL is written instead of
 * polling the file. How to sleep so is the only platform-specific part of
 * the backend, and it is all here, behind three calls:
 *
 *   sq_watch_open   make the watch (on first use; kept until close)
 *   sq_watch_wait   sleep up to ms, or until the WAL is written
 *   sq_watch_close  drop it
 *
 * On Linux the watch is inotify on the WAL's folder. Elsewhere, or when
 * the watch cannot be made, the portable fallback below has no watch:
 * sq_watch_wait sleeps the time asked, and sq_wait then polls every
 * millisecond. sq_wait itself is portable and does not care which it got:
 * it always checks PRAGMA data_version after a wake-up.
 */
#include "sq.h"

#include <unistd.h>

#ifdef __linux__
#include <poll.h>
#include <string.h>
#include <sys/inotify.h>
#endif

#ifdef __linux__
/* ------------------------------------------------------ Linux: inotify --- */

/*
 * A watch of the WAL's folder (a watch on the file itself would miss a WAL
 * deleted and made again) for writes and creations. It is made on the
 * first wait and kept until close: closing an inotify descriptor costs
 * milliseconds (the kernel waits for a grace period), too much between a
 * wake-up and its reserve. Sets c->watch_fd to the descriptor, or to -1
 * (no watch).
 */
static void watch_make(sq_conn *c)
{
    const char *dbf = sqlite3_db_filename(c->db, "main");
    const char *walf = dbf && *dbf ? sqlite3_filename_wal(dbf) : NULL;
    const char *slash = walf ? strrchr(walf, '/') : NULL;
    char dir[4096];
    size_t n;
    int fd;

    c->watch_fd = -1;
    if (!slash || (n = (size_t)(slash - walf)) >= sizeof dir) return;
    memcpy(dir, walf, n);
    dir[n] = '\0';
    if (!(c->watch_name = st_strdup(slash + 1))) return;
    fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return;
    if (inotify_add_watch(fd, n ? dir : "/", IN_MODIFY | IN_CREATE) < 0) {
        close(fd);
        return;
    }
    c->watch_fd = fd;
}

/* Reads the pending events of the watch: whether one was a write to the
 * WAL (or the queue overflowed). */
static bool watch_events(sq_conn *c)
{
    _Alignas(struct inotify_event) char buf[4096];
    bool hit = false;
    ssize_t n;

    while ((n = read(c->watch_fd, buf, sizeof buf)) > 0) {
        char *q = buf;
        while (q < buf + n) {
            const struct inotify_event *ev = (const void *)q;
            if ((ev->mask & IN_Q_OVERFLOW) ||
                (ev->len && strcmp(ev->name, c->watch_name) == 0))
                hit = true;
            q += sizeof *ev + ev->len;
        }
    }
    return hit;
}

/* Sleeps on the watch (c->watch_fd >= 0) up to ms. */
static enum sq_wake watch_poll(sq_conn *c, int64_t ms)
{
    struct pollfd p = {c->watch_fd, POLLIN, 0};

    if (poll(&p, 1, (int)ms) <= 0) return SQ_WAKE_TIME;
    return watch_events(c) ? SQ_WAKE_WAL : SQ_WAKE_OTHER;
}

#else
/* ------------------------------------------ Portable fallback: no watch --- */

static void watch_make(sq_conn *c)
{
    c->watch_fd = -1;
}

/* Never called (there is no watch); sleeps, as sq_watch_wait does. */
static enum sq_wake watch_poll(sq_conn *c, int64_t ms)
{
    (void)c;
    st_sleep_ms(ms);
    return SQ_WAKE_TIME;
}
#endif

/* ---------------------------------------------------------- The seam --- */

/* Makes c's watch if no wait has tried yet; whether c has one (false: the
 * caller polls). */
bool sq_watch_open(sq_conn *c)
{
    if (c->watch_fd == -2) watch_make(c);
    return c->watch_fd >= 0;
}

/* Sleeps up to ms, or until the WAL is written: SQ_WAKE_TIME (ms passed,
 * or there is no watch: a plain sleep), SQ_WAKE_WAL, or SQ_WAKE_OTHER
 * (only other files of the folder changed). */
enum sq_wake sq_watch_wait(sq_conn *c, int64_t ms)
{
    if (c->watch_fd >= 0) return watch_poll(c, ms);
    st_sleep_ms(ms);
    return SQ_WAKE_TIME;
}

void sq_watch_close(sq_conn *c)
{
    if (c->watch_fd >= 0) close(c->watch_fd);
    c->watch_fd = -1;
    st_free(c->watch_name);
    c->watch_name = NULL;
}
