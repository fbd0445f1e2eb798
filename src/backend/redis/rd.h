/*
 * rd.h: what the Redis backend's files share, and nothing else: the
 * backend handle (rd_conn), the command builder (rd_cmd), key names, and
 * the typed calls that run a command or a script and check its reply.
 * Prefix rd_; nothing here leaves src/backend/redis/ (the rest of the
 * library sees only st_redis_ops, through backend.h).
 *
 * The files, one concern each (redis.c's header says how they work
 * together):
 *   redis.c   URL parsing, open/close, the st_backend_ops table
 *   conn.c    the connection: dial, AUTH/SELECT, SCRIPT LOAD, reconnect,
 *             the MSG_NOSIGNAL writer, SIGPIPE guard, round trips
 *   call.c    typed calls: one command, a script (NOSCRIPT reload),
 *             MULTI/EXEC, SCAN, batches of GETs
 *   cmd.c     argv building, key names, reply and number conversions
 *   queue.c   queues and delayed jobs
 *   worker.c  registration, pings and reserve
 *   clean.c   the workers listing and the dead-worker clean-up
 *   control.c pauses and limits (issue 15); the check is in the scripts
 *             (lua/lib/control.lua)
 *   stats.c   stats, the failed list, kv (locks)
 *   wake.c    the wake-up channel (the wait op)
 *   lua/      the scripts, embedded at build time (cmake/lua.cmake)
 */
#ifndef ST_REDIS_RD_H
#define ST_REDIS_RD_H

#include "backend.h"
#include "internal.h"

#include <hiredis/hiredis.h>

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The scripts, one per lua/<name>.lua (RD_S_<NAME>): rd_lua[] is generated
 * from them, and the build fails if a name has no file or the reverse. */
enum {
    RD_S_CLEAN,
    RD_S_CONTROLS,
    RD_S_DEL_DELAYED,
    RD_S_DEL_DELAYED_AT,
    RD_S_FAILED_REMOVE,
    RD_S_KV_DEL,
    RD_S_KV_EXPIRE,
    RD_S_PAUSE,
    RD_S_PROMOTE,
    RD_S_PUSH_AT,
    RD_S_READY,
    RD_S_REGISTER,
    RD_S_REPLACE,
    RD_S_RESERVE,
    RD_S_SCHED_CLAIM,
    RD_S_SCHED_LIST,
    RD_S_SCHED_SET,
    RD_S_UNREGISTER,
    RD_S_COUNT
};

/* The text of each script, as sent with SCRIPT LOAD. */
extern const char *const rd_lua[RD_S_COUNT];

/* worker.c: reserve's arguments for the last worker, built once. */
typedef struct rd_rcache rd_rcache;

typedef struct rd_conn {
    st_backend base;
    redisContext *c; /* NULL while disconnected */
    char *host;      /* TCP host, or NULL for a unix socket */
    int port;
    char *path;     /* unix socket path, or NULL */
    char *user;     /* AUTH user (Redis 6 ACL), or NULL */
    char *password; /* NULL: no AUTH */
    int db;
    char *prefix;       /* namespace + ":" or "" (empty namespace) */
    char *where;        /* "host:port" or the socket path, for messages */
    int64_t timeout_ms; /* how long a reply may take (st_backend_cfg) */
    char sha[RD_S_COUNT][41];
    redisContext *sub; /* the wait op's subscriber connection, or NULL */
    char
        *sub_refused; /* why SUBSCRIBE was refused (then wait fails), or NULL */
    char *out;        /* the commands of one round trip in RESP (resp_send) */
    size_t out_cap;
    rd_rcache *rc; /* reserve's arguments for the last worker, or NULL */
    struct st_sentinel *sn; /* redis+sentinel: finds the primary (sentinel.c) */
} rd_conn;

/* ------------------------------------------------- cmd.c: argv, keys --- */

/*
 * One command's argv. Arguments are borrowed unless added with
 * rd_arg_own(); the struct points into itself, so it is never copied once
 * initialised. A failed allocation marks it oom, and running it fails.
 */
#define RD_CMD_INLINE 24
#define RD_CMD_NUMS   4

typedef struct rd_cmd {
    int argc, cap;
    const char **argv;
    size_t *len;
    const char *argv_in[RD_CMD_INLINE];
    size_t len_in[RD_CMD_INLINE];
    char num[RD_CMD_NUMS][24]; /* integer arguments, formatted in place */
    int nnum;
    char **own; /* arguments to free */
    int nown, owncap;
    bool oom;
} rd_cmd;

void rd_cmd_init(rd_cmd *c);
void rd_cmd_free(rd_cmd *c);
void rd_argn(rd_cmd *c, const char *s, size_t n);
void rd_arg(rd_cmd *c, const char *s);
/* Adds s and takes ownership of it; NULL (a failed allocation) marks oom. */
void rd_arg_own(rd_cmd *c, char *s);
void rd_arg_int(rd_cmd *c, int64_t v);
/* n commands, initialised, and *cv pointing at each; NULL if out of
 * memory. Free with rd_cmds_free(). */
rd_cmd *rd_cmds_new(size_t n, rd_cmd ***cv);
void rd_cmds_free(rd_cmd *cs, rd_cmd **cv, size_t n);

bool rd_blank(const char *s);
/* NS:part:part... as node-resque's connection.key(): blank parts are
 * dropped. Parts end with NULL. New string or NULL. */
char *rd_key(const rd_conn *b, const char *first, ...);
/* NS:<head><tail> as one key part ("delayed:" + ts, "timestamps:" +
 * payload), which node-resque never splits. */
char *rd_key1(const rd_conn *b, const char *head, const char *tail);
/* A SCAN MATCH pattern matching keys that start with NS:<head>. */
char *rd_scan_pattern(const rd_conn *b, const char *head);

/* Math.round(ms / 1000): round half up, also for negative times. */
int64_t rd_ms_to_s(int64_t ms);
/* A JSON string of raw bytes; bytes that are not UTF-8 are kept as is. */
json_t *rd_jstrn(const char *s, size_t n);
int rd_oom(stellar_error *e);
json_t *rd_sorted_ints(int64_t *v, size_t n);
bool rd_parse_i64(const char *s, size_t n, int64_t *out);
bool rd_parse_s_as_ms(const char *s, size_t n, int64_t *ms);
int rd_strings_json(const redisReply *r, json_t **out, stellar_error *e);
const redisReply *rd_str_reply(const redisReply *r);
void rd_free_strv(char **v, size_t n);
bool rd_wildcard(const char *const *queues);

/* --------------------------------------------- conn.c: the connection --- */

void rd_conn_free(rd_conn *b);
/* Connects b->c: AUTH, SELECT, connection_test_key, SCRIPT LOAD. */
int rd_connect(rd_conn *b, stellar_error *e);
/* A new context to b's server with its timeouts, AUTH appended (its reply
 * is the caller's to read). who prefixes the error message. */
int rd_dial(rd_conn *b, const char *who, redisContext **out, stellar_error *e);
int rd_reply_fail(stellar_error *e, const char *what, const redisReply *r);
void rd_free_replies(redisReply **r, size_t n);
/*
 * Sends n commands in one round trip and reads their n replies into r[]
 * (each may be an error reply; the caller checks). Reconnects first if
 * the link is down. retry: the commands are read-only, so after an I/O
 * error on an old link they are resent once on a new one; a write is
 * never resent (it may have reached Redis).
 */
int rd_exchange(rd_conn *b, rd_cmd *const *cv, size_t n, redisReply **r,
                bool retry, stellar_error *e);

/* SIGPIPE blocked around hiredis' own writes (conn.c says why). */
typedef struct rd_nopipe {
    sigset_t old;
    bool skip;           /* SIGPIPE is ignored: nothing to do */
    bool pending_before; /* someone else's SIGPIPE: leave it pending */
} rd_nopipe;

void rd_nopipe_enter(rd_nopipe *np);
void rd_nopipe_leave(rd_nopipe *np);

/* ------------------------------------------------ call.c: typed calls --- */

/*
 * Every rd_cmd_* and rd_eval_* call takes ownership of c (frees it, also
 * on failure). retry as rd_exchange(): true only for read-only calls. An
 * error reply becomes an error (rd_reply_fail: OOM -> STELLAR_EFULL,
 * BUSY/LOADING -> STELLAR_EBUSY, else STELLAR_EBACKEND).
 */
/* The reply, never an error reply; free it with freeReplyObject(). */
int rd_cmd_reply(rd_conn *b, rd_cmd *c, bool retry, redisReply **r,
                 stellar_error *e);
/* An integer reply: *out (if not NULL). */
int rd_cmd_int(rd_conn *b, rd_cmd *c, bool retry, int64_t *out,
               stellar_error *e);
/* A status reply: *ok true; anything else (a nil from SET NX): false. */
int rd_cmd_status(rd_conn *b, rd_cmd *c, bool retry, bool *ok,
                  stellar_error *e);
/* A bulk string: *out a new string; nil (or any other type): NULL. */
int rd_cmd_string(rd_conn *b, rd_cmd *c, bool retry, char **out,
                  stellar_error *e);
/* A list of strings, read-only (resent once): a JSON array. */
int rd_cmd_strings(rd_conn *b, rd_cmd *c, json_t **out, stellar_error *e);
/* LRANGE key start stop, read-only, as rd_cmd_strings; takes ownership of
 * key (NULL: out of memory). */
int rd_lrange(rd_conn *b, char *key, int64_t start, int64_t stop, json_t **out,
              stellar_error *e);
/* SMEMBERS key, read-only; takes ownership of key (NULL: out of memory).
 * *r: the reply, an array; free it with freeReplyObject(). */
int rd_smembers(rd_conn *b, char *key, redisReply **r, stellar_error *e);

/* Starts a script call: EVALSHA <sha> 0 <prefix> (ARGV[1] = the prefix);
 * add its arguments, then run it with rd_eval_*. */
void rd_script(const rd_conn *b, rd_cmd *c, int s);
/* Runs script s; reloads it once if Redis answers NOSCRIPT. */
int rd_eval_reply(rd_conn *b, int s, rd_cmd *c, bool retry, redisReply **r,
                  stellar_error *e);
int rd_eval_int(rd_conn *b, int s, rd_cmd *c, bool retry, int64_t *out,
                stellar_error *e);

/*
 * Runs cv[0..n) inside MULTI/EXEC, then `after` (if not NULL) outside it,
 * all in one round trip. *exec (if not NULL): the EXEC reply, an array
 * with one reply per command (none of them an error). The reply to `after`
 * is not looked at: it is a best-effort extra (the wake-up PUBLISH). The
 * commands stay the caller's.
 */
int rd_multi(rd_conn *b, rd_cmd *const *cv, size_t n, rd_cmd *after,
             redisReply **exec, stellar_error *e);
/* rd_multi of cs[0..n) (n <= RD_MULTI_CMDS), which it then frees, as the
 * rd_cmd_* calls do. */
#define RD_MULTI_CMDS 4
int rd_multi_cmds(rd_conn *b, rd_cmd *cs, size_t n, redisReply **exec,
                  stellar_error *e);
/* The keys that start with NS:<head> (SCAN MATCH), read-only. *keys:
 * sorted, without repeats (SCAN may return a key twice); free with
 * rd_free_strv(). */
int rd_scan(rd_conn *b, const char *head, char ***keys, size_t *nkeys,
            stellar_error *e);
/* rd_scan, then for each key its GET and, if ttl, its PTTL, in one round
 * trip: (*r)[i * (1 + ttl)] the value (string or nil), the next its PTTL.
 * Free both with rd_scan_read_free(). */
int rd_scan_read(rd_conn *b, const char *head, bool ttl, char ***keys,
                 size_t *nkeys, redisReply ***r, stellar_error *e);
void rd_scan_read_free(char **keys, size_t nkeys, redisReply **r, bool ttl);
/* GETs keys[0..n) in one round trip; r[i] is the reply (string or nil). */
int rd_get_many(rd_conn *b, char **keys, size_t n, redisReply **r,
                stellar_error *e);

/* ------------------------------------------------- The ops, per file --- */

/* control.c */
int rd_pause(st_backend *base, const char *queue, int64_t for_ms,
             stellar_error *e);
int rd_resume(st_backend *base, const char *queue, int64_t *removed,
              stellar_error *e);
int rd_limit_set(st_backend *base, const char *target, int64_t concurrency,
                 int64_t rate, int64_t window_ms, stellar_error *e);
int rd_limit_del(st_backend *base, const char *target, int64_t *removed,
                 stellar_error *e);
int rd_controls(st_backend *base, int64_t now_ms, json_t **out,
                stellar_error *e);

/* queue.c */
int rd_push(st_backend *base, const char *queue, const char *const *payloads,
            size_t n, stellar_error *e);
int rd_push_at(st_backend *base, int64_t at_ms, const char *queue,
               const char *payload, bool later, stellar_error *e);
int rd_queues(st_backend *base, json_t **names, stellar_error *e);
int rd_length(st_backend *base, const char *queue, int64_t *n,
              stellar_error *e);
int rd_queued(st_backend *base, const char *queue, int64_t start, int64_t stop,
              json_t **payloads, stellar_error *e);
int rd_del(st_backend *base, const char *queue, const char *payload,
           int64_t count, int64_t *removed, stellar_error *e);
int rd_del_queue(st_backend *base, const char *queue, int64_t *removed,
                 stellar_error *e);
int rd_del_delayed(st_backend *base, const char *payload, json_t **ts_ms,
                   stellar_error *e);
int rd_replace(st_backend *base, const char *queue, const char *payload,
               int64_t at_ms, int64_t *removed, stellar_error *e);
int rd_scheduled_at(st_backend *base, const char *payload, json_t **ts_ms,
                    stellar_error *e);
int rd_timestamps(st_backend *base, json_t **ts_ms, stellar_error *e);
int rd_delayed_at(st_backend *base, int64_t ts_ms, json_t **payloads,
                  stellar_error *e);
int rd_del_delayed_at(st_backend *base, int64_t ts_ms, int64_t *removed,
                      stellar_error *e);
int rd_promote_due(st_backend *base, int64_t now_ms, int64_t max,
                   int64_t *moved, int64_t *next_ms, stellar_error *e);

/* worker.c */
void rd_rcache_free(rd_rcache *r);
int rd_worker_register(st_backend *base, const st_worker_id *w, int64_t now_ms,
                       stellar_error *e);
int rd_worker_unregister(st_backend *base, const st_worker_id *w,
                         stellar_error *e);
int rd_ping(st_backend *base, const st_worker_id *const *ws, size_t n,
            int64_t now_ms, stellar_error *e);
int rd_reserve(st_backend *base, const st_worker_id *w, const st_done *done,
               int64_t now_ms, st_reserved *out, stellar_error *e);

/* clean.c */
int rd_workers(st_backend *base, json_t **out, stellar_error *e);
int rd_clean_worker(st_backend *base, const char *name, enum st_clean_mode mode,
                    const char *failed_entry, char **payload, stellar_error *e);

/* stats.c */
int rd_stats(st_backend *base, json_t **out, stellar_error *e);
int rd_stat_incr(st_backend *base, const char *k, int64_t by, stellar_error *e);
int rd_failed_count(st_backend *base, int64_t *n, stellar_error *e);
int rd_failed_range(st_backend *base, int64_t start, int64_t stop,
                    json_t **entries, stellar_error *e);
int rd_failed_remove(st_backend *base, const char *entry,
                     const st_done *requeue, int64_t *removed,
                     stellar_error *e);
int rd_kv_set(st_backend *base, const char *k, const char *value,
              int64_t ttl_ms, bool nx, bool *set, stellar_error *e);
int rd_kv_get(st_backend *base, const char *k, char **value, stellar_error *e);
int rd_kv_del(st_backend *base, const char *k, const char *value,
              int64_t *removed, stellar_error *e);
int rd_kv_expire(st_backend *base, const char *k, const char *value,
                 int64_t ttl_ms, bool *set, stellar_error *e);
int rd_kv_incr(st_backend *base, const char *k, int64_t by, int64_t ttl_ms,
               int64_t *out, stellar_error *e);
int rd_kv_scan(st_backend *base, const char *prefix, json_t **out,
               stellar_error *e);

/* sched.c */
int rd_sched_claim(st_backend *base, const char *name, int64_t tick_ms,
                   const char *queue, const char *payload, bool *claimed,
                   stellar_error *e);
int rd_sched_set(st_backend *base, const char *name, int paused,
                 int64_t seen_ms, stellar_error *e);
int rd_sched_list(st_backend *base, json_t **out, stellar_error *e);

/* wake.c */
int rd_wait(st_backend *base, const st_worker_id *w, int64_t timeout_ms,
            stellar_error *e);

#endif /* ST_REDIS_RD_H */
