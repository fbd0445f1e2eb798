/*
 * live.c: the worker names this process runs right now, across all its
 * handles. The leader's dead-worker check (tasks.c, st_clean_workers)
 * skips them: a process never declares its own live workers dead, however
 * old their last ping looks (a frozen store delays pings without killing
 * anyone). A name is added when its pool makes it and removed when the
 * pool is freed, after the worker has unregistered.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static char **live; /* the names, unordered */
static size_t nlive, caplive;

void st_live_add(const char *name)
{
    char *copy = st_strdup(name);

    if (!copy) return; /* out of memory: the name is only not protected */
    pthread_mutex_lock(&live_lock);
    if (nlive == caplive) {
        size_t cap = caplive ? caplive * 2 : 16;
        char **v = st_realloc(live, cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&live_lock);
            st_free(copy);
            return;
        }
        live = v;
        caplive = cap;
    }
    live[nlive++] = copy;
    pthread_mutex_unlock(&live_lock);
}

void st_live_del(const char *name)
{
    size_t i;

    pthread_mutex_lock(&live_lock);
    for (i = 0; i < nlive; i++)
        if (strcmp(live[i], name) == 0) {
            st_free(live[i]);
            live[i] = live[--nlive];
            break;
        }
    if (nlive == 0) { /* nothing left for a leak checker to see */
        st_free(live);
        live = NULL;
        caplive = 0;
    }
    pthread_mutex_unlock(&live_lock);
}

bool st_live_has(const char *name)
{
    bool found = false;
    size_t i;

    pthread_mutex_lock(&live_lock);
    for (i = 0; i < nlive && !found; i++)
        found = strcmp(live[i], name) == 0;
    pthread_mutex_unlock(&live_lock);
    return found;
}
