/*
 * backend.c: the table of compiled-in backends, looked up by URL scheme.
 */
#include "backend.h"
#include "internal.h"

#include <string.h>

static const st_backend_ops *const backends[] = {
    &st_sqlite_ops,
#ifdef STELLAR_HAVE_REDIS
    &st_redis_ops,
#endif
};

const st_backend_ops *st_backend_find(const char *url)
{
    size_t i, n;
    const char *colon = strchr(url, ':');

    if (!colon) return NULL;
    n = (size_t)(colon - url);
    /* "redis+unix" is served by the redis backend. */
    if (n == 10 && strncmp(url, "redis+unix", 10) == 0) n = 5;
    if (n == 14 && strncmp(url, "redis+sentinel", 14) == 0) n = 5;
    for (i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (strlen(backends[i]->scheme) == n &&
            strncmp(url, backends[i]->scheme, n) == 0)
            return backends[i];
    return NULL;
}

int st_backend_open(st_backend **out, const char *url,
                    const st_backend_cfg *cfg, stellar_error *e)
{
    const st_backend_ops *ops = st_backend_find(url);
    st_backend_cfg zero = {0};

    *out = NULL;
    st_alloc_init(); /* jansson through st_malloc (internal.h) */
    if (!ops) {
        char *shown = st_url_redact(url);
        int rc =
            st_fail(e, STELLAR_EINVAL,
                    "unsupported backend URL '%s' (expected sqlite:PATH, "
                    "redis://..., redis+unix://... or redis+sentinel://...)",
                    shown ? shown : "(redacted)");
        st_free(shown);
        return rc;
    }
    return ops->open(out, url, cfg ? cfg : &zero, e);
}

void st_backend_close(st_backend *b)
{
    if (b) b->ops->close(b);
}

void st_reserved_clear(st_reserved *r)
{
    st_free(r->queue);
    st_free(r->payload);
    r->queue = r->payload = NULL;
    r->payload_len = 0;
    r->suspect = false;
}
