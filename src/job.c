/*
 * job.c: the Resque job payload and failed entry (reference §2.2, §2.6).
 *
 * A payload is {"class":<task>,"queue":<queue>,"args":[<params>]}, members in
 * that order, encoded as JSON.stringify does (json.c), so that Stellar and
 * node-resque write the very same bytes for the same job.
 *
 * A failed entry is §2.6's {"worker","queue","payload","exception","error",
 * "backtrace","failed_at"}; st_timeout_entry is the one node-resque's
 * forceCleanWorker writes for a dead worker's job, shared by the dead-worker
 * clean-up (recover.c) and the backends' clean_worker.
 */
#include "internal.h"

#include <string.h>
#include <unistd.h> /* gethostname */

char *st_payload_build_args(const char *task, const char *queue,
                            const json_t *args, stellar_error *e)
{
    st_buf b = {0};
    char *s;

    st_buf_puts(&b, "{\"class\":");
    st_json_put_string(&b, task, strlen(task));
    st_buf_puts(&b, ",\"queue\":");
    st_json_put_string(&b, queue, strlen(queue));
    st_buf_puts(&b, ",\"args\":");
    if (json_is_array(args)) {
        st_json_stringify(&b, args);
    } else { /* node-resque wraps what is not an array */
        st_buf_putc(&b, '[');
        if (args) st_json_stringify(&b, args);
        st_buf_putc(&b, ']');
    }
    st_buf_putc(&b, '}');
    s = st_buf_take(&b);
    if (!s) st_fail(e, STELLAR_ENOMEM, "out of memory building a payload");
    return s;
}

char *st_payload_build(const char *task, const char *queue,
                       const json_t *params, stellar_error *e)
{
    json_t *empty = params ? NULL : json_object();
    char *s;

    if (!params && !empty) { /* NULL args would build "args":[] */
        st_fail(e, STELLAR_ENOMEM, "out of memory building a payload");
        return NULL;
    }
    s = st_payload_build_args(task, queue, params ? params : empty, e);
    json_decref(empty);
    return s;
}

int st_payload_parse(st_payload *p, const char *s, size_t n, stellar_error *e)
{
    json_t *klass, *queue;
    stellar_error pe;

    memset(p, 0, sizeof *p);
    p->root = st_json_parse(s, n, &pe);
    if (!p->root && pe.code == STELLAR_ENOMEM)
        return st_fail(e, STELLAR_ENOMEM, "payload: %s", pe.msg);
    if (!p->root)
        return st_fail(e, STELLAR_EINVAL, "payload is not valid JSON (%s)",
                       pe.msg);
    if (!json_is_object(p->root)) {
        st_payload_clear(p);
        return st_fail(e, STELLAR_EINVAL, "payload is not a JSON object");
    }
    klass = json_object_get(p->root, "class");
    if (!json_is_string(klass)) {
        st_payload_clear(p);
        return st_fail(e, STELLAR_EINVAL,
                       "payload has no \"class\" string naming its task");
    }
    p->klass = json_string_value(klass);
    queue = json_object_get(p->root, "queue");
    p->queue = json_is_string(queue) ? json_string_value(queue) : NULL;
    p->args = json_object_get(p->root, "args");
    return STELLAR_OK;
}

bool st_payload_class(const char *payload, char *out, size_t cap)
{
    static const char lead[] = "{\"class\":\"";
    const char *p = payload, *c;
    st_payload pl;
    stellar_error e;
    size_t n;
    bool ok;

    if (cap == 0) return false;
    if (strncmp(p, lead, sizeof lead - 1) == 0) {
        /* The fast path: a class without escapes, as st_name_check
         * allows; anything else goes through the parser. */
        p += sizeof lead - 1;
        for (c = p; *c && *c != '"' && *c != '\\'; c++)
            ;
        if (*c == '"' && (size_t)(c - p) < cap) {
            memcpy(out, p, (size_t)(c - p));
            out[c - p] = '\0';
            return true;
        }
    }
    if (st_payload_parse(&pl, payload, strlen(payload), &e) != STELLAR_OK)
        return false;
    n = strlen(pl.klass);
    ok = n < cap;
    if (ok) memcpy(out, pl.klass, n + 1);
    st_payload_clear(&pl);
    return ok;
}

void st_payload_clear(st_payload *p)
{
    json_decref(p->root);
    memset(p, 0, sizeof *p);
}

char *st_failed_entry(const char *worker, const char *queue,
                      const char *payload_raw, const char *exception,
                      const char *error, const json_t *backtrace,
                      int64_t now_ms)
{
    st_buf b = {0};
    char date[80];
    stellar_error pe;
    json_t *payload = st_json_parse(payload_raw, strlen(payload_raw), &pe);

    if (!payload && pe.code == STELLAR_ENOMEM) return NULL;
    st_js_date(now_ms, date);
    st_buf_puts(&b, "{\"worker\":");
    st_json_put_string(&b, worker, strlen(worker));
    st_buf_puts(&b, ",\"queue\":");
    st_json_put_string(&b, queue, strlen(queue));
    st_buf_puts(&b, ",\"payload\":");
    /* A payload that is not JSON is kept whole, as a string. */
    if (payload)
        st_json_stringify(&b, payload);
    else
        st_json_put_string(&b, payload_raw, strlen(payload_raw));
    json_decref(payload);
    st_buf_puts(&b, ",\"exception\":");
    st_json_put_string(&b, exception, strlen(exception));
    st_buf_puts(&b, ",\"error\":");
    st_json_put_string(&b, error, strlen(error));
    st_buf_puts(&b, ",\"backtrace\":");
    if (backtrace)
        st_json_stringify(&b, backtrace);
    else
        st_buf_puts(&b, "null");
    st_buf_puts(&b, ",\"failed_at\":");
    st_json_put_string(&b, date, strlen(date));
    st_buf_putc(&b, '}');
    return st_buf_take(&b);
}

char *st_timeout_entry(const char *worker, const char *queue,
                       const char *payload_raw, const char *killer,
                       const char *error, int64_t now_ms)
{
    static const char why[] = "Worker Timeout (killed manually)";
    char host[256], date[80], *line, *entry = NULL;
    json_t *bt = json_array(), *first = NULL;

    if (!killer) {
        if (gethostname(host, sizeof host) != 0) strcpy(host, "localhost");
        host[sizeof host - 1] = '\0';
        killer = host;
    }
    st_js_date(now_ms, date);
    line = st_asprintf("killed by %s at %s", killer, date);
    /* A name that is not UTF-8 is kept as its bytes, not refused. */
    if (line && !(first = json_string(line)))
        first = json_stringn_nocheck(line, strlen(line));
    /* json_array_append_new consumes its value even when it fails. */
    if (json_array_append_new(bt, first) == 0 &&
        json_array_append_new(bt, json_string("queue#forceCleanWorker")) == 0 &&
        json_array_append_new(bt, json_string("node-resque")) == 0)
        entry = st_failed_entry(worker, queue ? queue : "",
                                payload_raw ? payload_raw : "{}", why,
                                error ? error : why, bt, now_ms);
    json_decref(bt);
    st_free(line);
    return entry;
}
