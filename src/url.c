/*
 * url.c: backend URLs as shown to people. A URL may carry a password, in
 * its userinfo ("redis://user:pw@host", "redis://pw@host") or as a query
 * parameter ("?password=pw", "?sentinelPassword=pw"); whatever shows a URL
 * (logs, error messages, the CLI) shows st_url_redact()'s copy, where each
 * password reads "***".
 *
 * The userinfo is taken generously: everything after "//" up to the last
 * "@" before the query, unless that part starts with "/" (a socket path).
 * A password holding an unencoded "/" or "@" is still hidden whole; at
 * worst part of a socket path is hidden too.
 */
#include "internal.h"

#include <string.h>

#define MASK "***"

/* The query "a=1&password=x&b": each password value masked. */
static void put_query(st_buf *b, const char *q)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        bool pw =
            eq && (((size_t)(eq - q) == 8 && strncmp(q, "password", 8) == 0) ||
                   ((size_t)(eq - q) == 16 &&
                    strncmp(q, "sentinelPassword", 16) == 0));
        if (pw && eq + 1 < q + n) {
            st_buf_put(b, q, (size_t)(eq + 1 - q));
            st_buf_put(b, MASK, 3);
        } else {
            st_buf_put(b, q, n);
        }
        q += n;
        if (*q == '&') st_buf_put(b, q++, 1);
    }
}

char *st_url_redact(const char *url)
{
    const char *auth, *query, *end, *at = NULL, *p;
    st_buf b = {0};

    if (!url) return NULL;
    auth = strstr(url, "://");
    query = strchr(url, '?');
    if (auth && (!query || auth < query)) {
        auth += 3;
        end = query ? query : auth + strlen(auth);
        if (*auth != '/')
            for (p = auth; p < end; p++)
                if (*p == '@') at = p;
    } else {
        auth = NULL;
        end = query ? query : url + strlen(url);
    }
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        st_buf_put(&b, url, (size_t)(auth - url));
        if (colon) { /* user:password */
            st_buf_put(&b, auth, (size_t)(colon + 1 - auth));
            if (colon + 1 < at) st_buf_put(&b, MASK, 3);
        } else if (at > auth) { /* the password alone */
            st_buf_put(&b, MASK, 3);
        }
        st_buf_put(&b, at, (size_t)(end - at));
    } else {
        st_buf_put(&b, url, (size_t)(end - url));
    }
    if (query) {
        st_buf_put(&b, "?", 1);
        put_query(&b, query + 1);
    }
    return st_buf_take(&b);
}
