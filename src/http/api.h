/*
 * api.h: what the files of the JSON API share (api.c, the router, and the
 * route files api_inspect.c, api_jobs.c and api_control.c): a request in
 * progress, a route, the argument helpers and the route tables.
 */
#ifndef STELLAR_HTTP_API_H
#define STELLAR_HTTP_API_H

#include "http/http.h"

/* One request, as a route sees it. */
typedef struct st_api_call {
    stellar *h;
    const st_http_req *req;
    char *cap[2]; /* the wildcard segments, decoded */
    json_t *body; /* the request body parsed, or NULL if empty */
    json_t *out;  /* the reply document */
    int status;   /* 0: 200 */
} st_api_call;

/* A route sets c->out (and c->status if not 200), or fails with e set. */
typedef int (*st_api_fn)(st_api_call *c, stellar_error *e);

typedef struct st_api_route {
    const char *method;  /* GET also answers HEAD; NULL ends a table */
    const char *pattern; /* segments; "*" matches one */
    st_api_fn fn;
} st_api_route;

extern const st_api_route st_api_inspect_routes[];
extern const st_api_route st_api_jobs_routes[];
extern const st_api_route st_api_control_routes[];

/* Query argument `name` as an integer, def when absent. */
int st_api_arg_i64(st_api_call *c, const char *name, int64_t def, int64_t *out,
                   stellar_error *e);
/* A path segment as an integer (a failed index, a timestamp). */
int st_api_seg_i64(const char *s, const char *what, int64_t *out,
                   stellar_error *e);
/* EINVAL unless the body is a JSON object. */
int st_api_need_body(st_api_call *c, stellar_error *e);
/* Optional string member; EINVAL if present and not a non-empty string. */
int st_api_body_str(st_api_call *c, const char *name, const char **out,
                    stellar_error *e);
/* Optional "params" member as JSON text (JSON.stringify-exact, member
 * order kept, since jobs are matched as whole payloads). */
int st_api_body_params(st_api_call *c, char **out, stellar_error *e);

#endif
