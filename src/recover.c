/*
 * recover.c: the dead-worker clean-up that cleanOldWorkers and the
 * scheduler share, against backend.h only.
 *
 * A worker whose last ping is older than the timeout is dead (the
 * scheduler decides when a ping could have arrived, scheduler.c; this
 * process's own workers are never judged, live.c). Its in-flight job goes
 * to failed, or back to its queue as a suspect: before it goes back its
 * crash counter (kv ST_CRASHES_PREFIX<payload>) is raised, which is what
 * makes the next reserve run it in a child of its own (perform.c,
 * isolate.c), and a job held by max_crashes dead workers is failed as a
 * poison pill.
 */
#include "core.h"

#include <string.h>

/* A dead worker's periodic job is back in its queue, and the leader may
 * have queued a fresh copy when it took office (nothing was waiting then):
 * if held is this process's periodic task, keep one copy, queued now. */
static void one_periodic_copy(stellar *h, st_backend *b, const json_t *held,
                              const char *raw)
{
    const char *name = json_string_value(json_object_get(held, "class"));
    const st_task *t = st_task_lookup(h, name, NULL);
    stellar_error e;
    char *own;

    if (!t || t->def.frequency <= 0) return;
    own = st_payload_build(t->def.name, t->def.queue, NULL, &e);
    if (own && strcmp(own, raw) == 0 &&
        st_recurrent(h, b, t, ST_RECUR_NOW, NULL, &e))
        st_log(&h->log, STELLAR_LOG_WARN, "periodic %s after recovery: %s",
               t->def.name, e.msg);
    st_free(own);
}

int st_clean_workers(stellar *h, st_backend *b, int64_t age_ms, bool requeue,
                     json_t **cleaned, stellar_error *e)
{
    json_t *all = NULL, *w, *res;
    const char *name;
    int64_t now = st_now_ms();
    int rc;

    *cleaned = NULL;
    if ((rc = b->ops->workers(b, &all, e))) return rc;
    if (!(res = json_object()))
        rc = st_fail(e, STELLAR_ENOMEM, "cleanOldWorkers: out of memory");
    json_object_foreach(res ? all : NULL, name, w)
    {
        json_t *ping = json_object_get(w, "ping");
        json_t *on = json_object_get(w, "working_on");
        const char *held_raw =
            json_string_value(json_object_get(on, "payload"));
        int64_t seen = json_is_integer(ping)
                           ? json_integer_value(ping)
                           : json_integer_value(json_object_get(w, "started"));
        enum st_clean_mode mode = requeue ? ST_CLEAN_REQUEUE : ST_CLEAN_FAIL;
        char *entry = NULL, *held = NULL, *crash_key = NULL, *error = NULL;
        int64_t crashes = 0, removed;
        bool counted = false;
        stellar_error pe;
        json_t *v;

        if (now - seen <= age_ms) continue;
        if (st_live_has(name)) continue; /* ours, running: not dead */
        /* Its line in the result is made first: once the worker is
         * cleaned, running out of memory must not hide that it was. */
        v = held_raw ? st_json_parse(held_raw, strlen(held_raw), &pe)
                     : json_null();
        if (!v && pe.code != STELLAR_ENOMEM)
            v = json_string(held_raw); /* not JSON: keep the text */
        if (!v || json_object_set(res, name, json_null()) < 0) {
            json_decref(v);
            rc = st_fail(e, STELLAR_ENOMEM, "cleanOldWorkers: out of memory");
            break;
        }
        if (held_raw && requeue && h->max_crashes > 0) {
            /* Count how many workers died holding this job: its key marks
             * it a suspect; a job that kills workers even when it runs
             * alone in a child is a poison pill, not bad luck. Unless the
             * mark is written, the job stays with its dead worker. */
            crash_key = st_asprintf(ST_CRASHES_PREFIX "%s", held_raw);
            rc = crash_key ? b->ops->kv_incr(b, crash_key, 1, ST_CRASHES_TTL_MS,
                                             &crashes, e)
                           : st_fail(e, STELLAR_ENOMEM, "out of memory");
            if (rc) { /* not cleaned: the job stays with it, unmarked */
                st_free(crash_key);
                json_object_del(res, name);
                json_decref(v);
                break;
            }
            counted = true;
            if (crashes >= h->max_crashes) {
                mode = ST_CLEAN_FAIL;
                error = st_asprintf("Worker Timeout (killed manually): the job "
                                    "was in flight on %lld workers that died "
                                    "(maxCrashes %d): poison pill",
                                    (long long)crashes, h->max_crashes);
                if (!error) rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
            }
        }
        if (rc == STELLAR_OK && held_raw && mode == ST_CLEAN_FAIL &&
            !(entry = st_timeout_entry(
                  name, json_string_value(json_object_get(on, "queue")),
                  held_raw, h->name, error, now)))
            rc = st_fail(e, STELLAR_ENOMEM, "out of memory");
        if (rc == STELLAR_OK)
            rc = b->ops->clean_worker(b, name, mode, entry, &held, e);
        if (rc == STELLAR_OK && mode == ST_CLEAN_FAIL && crash_key)
            b->ops->kv_del(b, crash_key, NULL, &removed, e);
        if (rc && counted) { /* not cleaned: that was no crash */
            stellar_error ignored;
            if (b->ops->kv_del(b, crash_key, "1", &removed, &ignored) ||
                !removed)
                b->ops->kv_incr(b, crash_key, -1, ST_CRASHES_TTL_MS, &crashes,
                                &ignored);
        }
        st_free(entry);
        st_free(error);
        st_free(crash_key);
        if (rc == STELLAR_ENOTFOUND) { /* cleaned by someone else meanwhile */
            rc = STELLAR_OK;
            json_object_del(res, name);
            json_decref(v);
            continue;
        }
        if (rc) {
            json_decref(v);
            break;
        }
        st_log(&h->log, STELLAR_LOG_WARN,
               "cleaned dead worker %s (no ping for %lld ms)%s", name,
               (long long)(now - seen),
               held ? (mode == ST_CLEAN_FAIL ? ": its job is in failed"
                                             : ": its job is back in its queue")
                    : "");
        if (!held || !held_raw || strcmp(held, held_raw) != 0) {
            /* It took or ended a job since it was listed. */
            json_decref(v);
            v = held ? st_json_parse(held, strlen(held), NULL) : json_null();
            if (held && !v) v = json_string(held);
        }
        if (held && json_is_object(v) && mode == ST_CLEAN_REQUEUE)
            one_periodic_copy(h, b, v, held);
        json_object_set_new(res, name, v ? v : json_null());
        st_free(held);
    }
    json_decref(all);
    if (rc) {
        json_decref(res);
        return rc;
    }
    *cleaned = res;
    return STELLAR_OK;
}
