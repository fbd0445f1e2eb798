/*
 * scripts.h: the Lua scripts of the Redis backend, as C string literals.
 *
 * Every script is run with EVALSHA and numkeys 0: key names are built inside
 * the script from ARGV[1], the namespace prefix ("resque:" or "" for an
 * empty namespace), with the same rule as node-resque's connection.key()
 * (reference §1: blank parts are dropped, the rest joined with ':'). Keys
 * that are not declared in KEYS are fine on a single Redis server (and on
 * replicas, scripts being replicated by effects since Redis 5), not on
 * Redis Cluster, which node-resque's script path does not support either.
 *
 * Included once, by redis.c, after backend.h (ST_CRASHES_PREFIX).
 */
#ifndef ST_REDIS_SCRIPTS_H
#define ST_REDIS_SCRIPTS_H

/* Lua reads better as written than as clang-format would wrap it. */
/* clang-format off */

/* JSON string literal as JSON.stringify writes it (reference §2.1): only
 * '"', '\' and control characters are escaped; UTF-8 goes out raw. The
 * common case (nothing to escape) costs one string.find. */
#define ST_LUA_JSTR                                                            \
    "local JPAT = '[%z\\1-\\31\"\\\\]'\n"                                      \
    "local function esc1(c)\n"                                                 \
    "  local t = {['\"'] = '\\\\\"', ['\\\\'] = '\\\\\\\\',\n"                 \
    "    ['\\b'] = '\\\\b', ['\\f'] = '\\\\f', ['\\n'] = '\\\\n',\n"           \
    "    ['\\r'] = '\\\\r', ['\\t'] = '\\\\t'}\n"                              \
    "  return t[c] or string.format('\\\\u%04x', string.byte(c))\n"            \
    "end\n"                                                                    \
    "local function jstr(s)\n"                                                 \
    "  if not string.find(s, JPAT) then return '\"' .. s .. '\"' end\n"        \
    "  return '\"' .. string.gsub(s, JPAT, esc1) .. '\"'\n"                    \
    "end\n"

/* Shared by the scripts but reserve: P, blank(), key(). key() is
 * connection.key() for up to four parts: blank parts are dropped. */
#define ST_LUA_PRELUDE                                                         \
    "local P = ARGV[1]\n"                                                      \
    "local function blank(s) return not string.find(s, '%S') end\n"            \
    "local function part(k, s)\n"                                              \
    "  if s == nil or blank(s) then return k end\n"                            \
    "  if k == nil then return s end\n"                                        \
    "  return k .. ':' .. s\n"                                                 \
    "end\n"                                                                    \
    "local function key(a, b, c, d)\n"                                         \
    "  return P .. (part(part(part(part(nil, a), b), c), d) or '')\n"          \
    "end\n"

/*
 * reserve: the hot path, one call per job. The caller builds every key it
 * can, so the script does little more than its Redis calls.
 * ARGV:
 *   1  P, the namespace prefix
 *   2  the working-on key NS:worker:<name>:<queues>
 *   3  the record's head: {"run_at":"<JS date>","queue":
 *   4  the record's tail: ,"worker":"<name>"}
 *   5  how the held job ended: "0" nothing held; "1" INCR a, INCR b;
 *      "2" INCR a, INCR b, RPUSH c d; "3" dropped; "4" SADD a b, LPUSH c d
 *   6..9  a, b, c, d
 *   10 the call-id key NS:stellar:reserve:<name>
 *   11 this call's id (decimal; a retry of a call sends the same id)
 *   12 "1": pop the next job; "0": only apply 5
 *   13 n, the number of queues; 0: every queue in NS:queues, by name
 *   14.. n pairs (queue name, queue key)
 * Returns {queue, payload, suspect} or nil; suspect is 1 if the kv key
 * NS:stellar:crashes:<payload> (backend.h, ST_CRASHES_PREFIX) exists,
 * which EXISTS answers as GET would (an expired key is absent), else 0.
 *
 * The working-on record is built by string concatenation with the popped
 * payload spliced in raw: {run_at, queue, payload, worker}, the member
 * order of node-resque's cluster path. node-resque's own script re-encodes
 * the payload with cjson, which reorders members, escapes '/' as '\/',
 * turns [] into {} and rounds numbers to 14 digits; splicing keeps the
 * exact bytes, and JSON.parse (allWorkingOn, cleanOldWorkers) reads both
 * alike. The payload is decoded (never re-encoded) only to check that it is
 * JSON: if it is not, it goes in as a JSON string so that the record stays
 * parseable, and the job is still handed out (node-resque's script would
 * lose it) so that the worker fails it where people can see it.
 *
 * A reply can be lost after the script ran (the connection drops between
 * the two): the caller then sends the same call again, with the same id.
 * The id key holds the id of the last call that changed something, and a
 * flag: "n" nothing held after it, "r" the job it popped is in the record
 * as is, "j" as a JSON string. A call whose id is there already ran: it
 * applies nothing again and hands out the job it popped, read back from
 * the record (or, if no job is wanted now, puts it back at the head of its
 * queue), so that no ack counts twice and no popped job is lost.
 */
static const char lua_reserve[] =
    ST_LUA_JSTR
    /* Byte order, as JS sorts ASCII names; Lua's < would use strcoll(),
     * and Redis sets LC_COLLATE from the environment. */
    "local function bytelt(a, b)\n"
    "  local n = math.min(#a, #b)\n"
    "  for i = 1, n do\n"
    "    local x, y = string.byte(a, i), string.byte(b, i)\n"
    "    if x ~= y then return x < y end\n"
    "  end\n"
    "  return #a < #b\n"
    "end\n"
    "local P, won, oc, idk, id = ARGV[1], ARGV[2], ARGV[5], ARGV[10], ARGV[11]\n"
    /* Whether payload v is a suspect: its crash counter stands. */
    "local function suspect(v)\n"
    "  return redis.call('EXISTS', P .. '" ST_CRASHES_PREFIX "' .. v)\n"
    "end\n"
    "local last = redis.call('GET', idk)\n"
    "if last and string.sub(last, 1, -2) == id then\n"
    "  local flag, rec = string.sub(last, -1), redis.call('GET', won)\n"
    "  if flag == 'n' or not rec then return false end\n"
    "  local at = string.find(rec, ',\"payload\":', 1, true)\n"
    "  if not at then return false end\n"
    "  local v = string.sub(rec, at + 11, #rec - #ARGV[4])\n"
    "  if flag == 'j' then v = cjson.decode(v) end\n"
    "  local q = cjson.decode(rec).queue\n"
    "  if ARGV[12] == '1' then return {q, v, suspect(v)} end\n"
    "  local qk = P .. 'queue'\n"
    "  if string.find(q, '%S') then qk = qk .. ':' .. q end\n"
    "  redis.call('SADD', P .. 'queues', q)\n"
    "  redis.call('LPUSH', qk, v)\n"
    "  redis.call('DEL', won)\n"
    "  redis.call('SET', idk, id .. 'n')\n"
    "  return false\n"
    "end\n"
    "if oc == '1' or oc == '2' then\n"
    "  redis.call('INCR', ARGV[6])\n"
    "  redis.call('INCR', ARGV[7])\n"
    "  if oc == '2' then redis.call('RPUSH', ARGV[8], ARGV[9]) end\n"
    "elseif oc == '4' then\n"
    "  redis.call('SADD', ARGV[6], ARGV[7])\n"
    "  redis.call('LPUSH', ARGV[8], ARGV[9])\n"
    "  redis.pcall('PUBLISH', P .. 'stellar:wake', ARGV[7])\n"
    "end\n"
    "if ARGV[12] == '1' then\n"
    "  local n = tonumber(ARGV[13])\n"
    "  local names, keys = {}, {}\n"
    "  if n == 0 then\n"
    "    names = redis.call('SMEMBERS', P .. 'queues')\n"
    "    table.sort(names, bytelt)\n"
    "    for i = 1, #names do\n"
    "      local q = names[i]\n"
    "      keys[i] = P .. 'queue'\n"
    "      if string.find(q, '%S') then keys[i] = keys[i] .. ':' .. q end\n"
    "    end\n"
    "  else\n"
    "    for i = 1, n do\n"
    "      names[i], keys[i] = ARGV[12 + 2 * i], ARGV[13 + 2 * i]\n"
    "    end\n"
    "  end\n"
    "  for i = 1, #names do\n"
    /* pcall: a foreign key of another type must not abort the script
     * after the held job's outcome was applied (it would be applied
     * again by the caller's retry). */
    "    local v = redis.pcall('LPOP', keys[i])\n"
    "    if type(v) == 'string' then\n"
    "      local body, flag = v, 'r'\n"
    "      if not pcall(cjson.decode, v) then body, flag = jstr(v), 'j' end\n"
    "      redis.call('SET', won, ARGV[3] .. jstr(names[i]) ..\n"
    "                 ',\"payload\":' .. body .. ARGV[4])\n"
    "      redis.call('SET', idk, id .. flag)\n"
    "      return {names[i], v, suspect(v)}\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if oc ~= '0' then\n"
    "  redis.call('DEL', won)\n"
    "  redis.call('SET', idk, id .. 'n')\n"
    "end\n"
    "return false\n";

/* push_at(s, payload): enqueueAt at second s, with node-resque's
 * duplicate check made atomic. Returns 1, or 0 if the payload is already
 * delayed at that second (nothing written). */
#define ST_LUA_PUSH_AT                                                         \
    "local function push_at(s, payload)\n"                                     \
    "  local tkey = key('timestamps:' .. payload)\n"                           \
    "  local m = 'delayed:' .. s\n"                                            \
    "  if redis.call('SISMEMBER', tkey, m) == 1 then return 0 end\n"           \
    "  redis.call('RPUSH', key('delayed:' .. s), payload)\n"                   \
    "  redis.call('SADD', tkey, m)\n"                                          \
    "  redis.call('ZADD', key('delayed_queue_schedule'), s, s)\n"              \
    "  return 1\n"                                                             \
    "end\n"

/* del_delayed(payload): delDelayed (reference §3). Returns the seconds
 * (text) it removed the payload from, and how many copies it removed.
 * Unlike node-resque it also drops stale timestamps: members, and tidies
 * the schedule entry of a list it emptied (node's scheduler would do that
 * on its next pass anyway). */
#define ST_LUA_DEL_DELAYED                                                     \
    "local function del_delayed(payload)\n"                                    \
    "  local tkey = key('timestamps:' .. payload)\n"                           \
    "  local sched = key('delayed_queue_schedule')\n"                          \
    "  local out, n = {}, 0\n"                                                 \
    "  local members = redis.call('SMEMBERS', tkey)\n"                         \
    "  for i = 1, #members do\n"                                               \
    "    local m = members[i]\n"                                               \
    "    local ts = string.match(m, '[^:]*$')\n"                               \
    "    local dkey = key(m)\n"                                                \
    "    local k = redis.call('LREM', dkey, 0, payload)\n"                     \
    "    if k > 0 then out[#out + 1] = ts n = n + k end\n"                     \
    "    redis.call('SREM', tkey, m)\n"                                        \
    "    if redis.call('EXISTS', dkey) == 0 then\n"                            \
    "      redis.call('ZREM', sched, ts)\n"                                    \
    "    end\n"                                                                \
    "  end\n"                                                                  \
    "  return out, n\n"                                                        \
    "end\n"

/* push_at: ARGV: P, seconds (decimal text), payload, "later" to take the
 * first later second that does not hold the payload instead of failing. */
static const char lua_push_at[] =
    ST_LUA_PRELUDE ST_LUA_PUSH_AT
    "local s = tonumber(ARGV[2])\n"
    "while push_at(s, ARGV[3]) == 0 do\n"
    "  if ARGV[4] ~= 'later' then return 0 end\n"
    "  s = s + 1\n"
    "end\n"
    "return 1\n";

/*
 * promote: the scheduler's move of due delayed jobs (reference §5.2), all
 * in one atomic step, so several schedulers (even node-resque's, whose
 * LPOPs are atomic too) move each job exactly once.
 * ARGV: P, now (seconds), max (<= 0: no limit).
 * Returns {moved, next} with next the earliest remaining timestamp in
 * seconds (score text) or -1.
 *
 * The payload is decoded with cjson only to read .queue, then pushed with
 * its original bytes. A payload that is not JSON, or has no string queue,
 * goes to queue "default": node-resque would lose it (its JSON.parse throws
 * after the LPOP); here it reaches a worker, whose payload check fails it
 * into the failed list where people can see it.
 */
static const char lua_promote[] =
    ST_LUA_PRELUDE
    "local now, max = ARGV[2], tonumber(ARGV[3])\n"
    "local sched = key('delayed_queue_schedule')\n"
    "local moved = 0\n"
    "while max <= 0 or moved < max do\n"
    "  local due = redis.call('ZRANGEBYSCORE', sched, '-inf', now,\n"
    "                         'LIMIT', 0, 1)\n"
    "  if #due == 0 then break end\n"
    "  local ts = due[1]\n"
    "  local dkey = key('delayed:' .. ts)\n"
    "  local bad = false\n"
    "  while max <= 0 or moved < max do\n"
    "    local v = redis.pcall('LPOP', dkey)\n"
    "    if type(v) == 'table' then bad = true break end\n"
    "    if not v then break end\n"
    "    redis.call('SREM', key('timestamps:' .. v), 'delayed:' .. ts)\n"
    "    local q = 'default'\n"
    "    local ok, job = pcall(cjson.decode, v)\n"
    "    if ok and type(job) == 'table' and type(job.queue) == 'string'\n"
    "       and job.queue ~= '' then q = job.queue end\n"
    "    redis.call('SADD', key('queues'), q)\n"
    "    redis.call('RPUSH', key('queue', q), v)\n"
    "    moved = moved + 1\n"
    "  end\n"
    /* A foreign key of another type: forget the schedule entry only. */
    "  if bad then redis.call('ZREM', sched, ts)\n"
    "  elseif redis.call('LLEN', dkey) == 0 then\n"
    "    redis.call('DEL', dkey)\n"
    "    redis.call('ZREM', sched, ts)\n"
    "  else break end\n"
    "end\n"
    "if moved > 0 then redis.pcall('PUBLISH', P .. 'stellar:wake', '*') end\n"
    "local nxt = redis.call('ZRANGE', sched, 0, 0, 'WITHSCORES')\n"
    "if #nxt == 0 then return {moved, '-1'} end\n"
    "return {moved, nxt[2]}\n";

/* del_delayed: ARGV: P, payload. Returns the seconds (text). */
static const char lua_del_delayed[] =
    ST_LUA_PRELUDE ST_LUA_DEL_DELAYED
    "return (del_delayed(ARGV[2]))\n";

/*
 * replace: a periodic task's (re)start, re-enqueue and stop in one atomic
 * step, so that no interleaving with a scheduler's promotion or another
 * process leaves two copies. Removes every delayed copy of the payload and
 * every copy in its queue, then pushes one: "now" at the tail of the queue
 * (with the wake-up), a number of seconds as push_at, "none" nothing.
 * ARGV: P, payload, queue, what. Returns how many copies it removed.
 */
static const char lua_replace[] =
    ST_LUA_PRELUDE ST_LUA_PUSH_AT ST_LUA_DEL_DELAYED
    "local payload, q, what = ARGV[2], ARGV[3], ARGV[4]\n"
    "local _, n = del_delayed(payload)\n"
    "n = n + redis.call('LREM', key('queue', q), 0, payload)\n"
    "if what == 'now' then\n"
    "  redis.call('SADD', key('queues'), q)\n"
    "  redis.call('RPUSH', key('queue', q), payload)\n"
    "  redis.pcall('PUBLISH', P .. 'stellar:wake', q)\n"
    "elseif what ~= 'none' then\n"
    "  push_at(what, payload)\n"
    "end\n"
    "return n\n";

/*
 * del_delayed_at: removes every job delayed at the given seconds, with
 * their timestamps: members and schedule entries.
 * ARGV: P, all ("1": also every member of the schedule), seconds...
 * Returns the number of jobs removed.
 */
static const char lua_del_delayed_at[] =
    ST_LUA_PRELUDE
    "local sched = key('delayed_queue_schedule')\n"
    "local list = {}\n"
    "for i = 3, #ARGV do list[#list + 1] = ARGV[i] end\n"
    "if ARGV[2] == '1' then\n"
    "  local z = redis.call('ZRANGE', sched, 0, -1)\n"
    "  for i = 1, #z do list[#list + 1] = z[i] end\n"
    "end\n"
    "local removed, seen = 0, {}\n"
    "for i = 1, #list do\n"
    "  local ts = list[i]\n"
    "  if not seen[ts] then\n"
    "    seen[ts] = true\n"
    "    local dkey = key('delayed:' .. ts)\n"
    "    local items = redis.call('LRANGE', dkey, 0, -1)\n"
    "    for j = 1, #items do\n"
    "      redis.call('SREM', key('timestamps:' .. items[j]),\n"
    "                 'delayed:' .. ts)\n"
    "    end\n"
    "    removed = removed + #items\n"
    "    redis.call('DEL', dkey)\n"
    "    redis.call('ZREM', sched, ts)\n"
    "  end\n"
    "end\n"
    "return removed\n";

/*
 * clean: forceCleanWorker (reference §3), atomic, with two fixes: the
 * working-on key NS:worker:<name>:<queues> is deleted (node-resque deletes
 * NS:worker:<name> instead and leaves the record behind), and stat:failed
 * is only incremented when a held job goes to the failed list (node-resque
 * increments it even for an idle worker).
 * ARGV: P, name, holder (1-based index of the (member, queues) pair whose
 * working-on record was read, 0: none), that record, action ("0" none,
 * "1" RPUSH failed a1 + INCR failed, "2" LPUSH a2 back to queue a1), a1, a2,
 * then pairs of (workers-set member, queues string).
 * Returns 1, or -1 if a working-on record changed since it was read (the
 * caller reads again and retries).
 */
static const char lua_clean[] =
    ST_LUA_PRELUDE
    "local name, holder = ARGV[2], tonumber(ARGV[3])\n"
    "local npairs = (#ARGV - 7) / 2\n"
    "for i = 1, npairs do\n"
    "  local cur = redis.call('GET', key('worker', name, ARGV[7 + 2 * i]))\n"
    "  if i == holder then\n"
    "    if cur ~= ARGV[4] then return -1 end\n"
    "  elseif cur then return -1 end\n"
    "end\n"
    "local act = ARGV[5]\n"
    "if act == '1' then\n"
    "  redis.call('INCR', key('stat', 'failed'))\n"
    "  redis.call('RPUSH', key('failed'), ARGV[6])\n"
    "elseif act == '2' then\n"
    "  redis.call('SADD', key('queues'), ARGV[6])\n"
    "  redis.call('LPUSH', key('queue', ARGV[6]), ARGV[7])\n"
    "  redis.pcall('PUBLISH', P .. 'stellar:wake', ARGV[6])\n"
    "end\n"
    "redis.call('DEL', key('stat', 'failed', name),\n"
    "           key('stat', 'processed', name), key('worker', 'ping', name),\n"
    "           key('stellar', 'reserve', name))\n"
    "for i = 1, npairs do\n"
    "  local qs = ARGV[7 + 2 * i]\n"
    "  redis.call('SREM', key('workers'), ARGV[6 + 2 * i])\n"
    "  redis.call('DEL', key('worker', name, qs, 'started'),\n"
    "             key('worker', name, qs))\n"
    "end\n"
    "return 1\n";

/*
 * failed_remove: removeFailed, plus the push of retryAndRemoveFailed when
 * asked, atomically. ARGV: P, entry, requeue ("1"/"0"), queue, payload.
 * Returns the number of entries removed (0 or 1).
 */
static const char lua_failed_remove[] =
    ST_LUA_PRELUDE
    "local n = redis.call('LREM', key('failed'), 1, ARGV[2])\n"
    "if n > 0 and ARGV[3] == '1' then\n"
    "  redis.call('SADD', key('queues'), ARGV[4])\n"
    "  redis.call('RPUSH', key('queue', ARGV[4]), ARGV[5])\n"
    "  redis.pcall('PUBLISH', P .. 'stellar:wake', ARGV[4])\n"
    "end\n"
    "return n\n";

/* kv_del with a value: compare-and-delete. ARGV: P, key, value. */
static const char lua_kv_del[] =
    "local k = ARGV[1] .. ARGV[2]\n"
    "if redis.call('GET', k) == ARGV[3] then return redis.call('DEL', k) end\n"
    "return 0\n";

/* kv_expire: compare-and-expire. ARGV: P, key, value, ttl ms (<= 0:
 * persist). Returns 1 if the key held value. */
static const char lua_kv_expire[] =
    "local k = ARGV[1] .. ARGV[2]\n"
    "if redis.call('GET', k) ~= ARGV[3] then return 0 end\n"
    "if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', k, ARGV[4])\n"
    "else redis.call('PERSIST', k) end\n"
    "return 1\n";

/*
 * ready: whether any of a worker's queues holds a job (the wait op's look
 * after it subscribes). ARGV: P, n, then n queue keys; n = 0: every queue
 * in NS:queues. Returns 1 or 0.
 */
static const char lua_ready[] =
    "local P, n = ARGV[1], tonumber(ARGV[2])\n"
    "if n == 0 then\n"
    "  local names = redis.call('SMEMBERS', P .. 'queues')\n"
    "  for i = 1, #names do\n"
    "    local k = P .. 'queue'\n"
    "    if string.find(names[i], '%S') then k = k .. ':' .. names[i] end\n"
    "    local len = redis.pcall('LLEN', k)\n"
    "    if type(len) == 'number' and len > 0 then return 1 end\n"
    "  end\n"
    "  return 0\n"
    "end\n"
    "for i = 1, n do\n"
    "  local len = redis.pcall('LLEN', ARGV[2 + i])\n"
    "  if type(len) == 'number' and len > 0 then return 1 end\n"
    "end\n"
    "return 0\n";

enum {
    S_RESERVE,
    S_PUSH_AT,
    S_PROMOTE,
    S_DEL_DELAYED,
    S_DEL_DELAYED_AT,
    S_REPLACE,
    S_CLEAN,
    S_FAILED_REMOVE,
    S_KV_DEL,
    S_KV_EXPIRE,
    S_READY,
    S_COUNT
};

static const char *const lua_scripts[S_COUNT] = {
    lua_reserve,     lua_push_at,       lua_promote,
    lua_del_delayed, lua_del_delayed_at, lua_replace,
    lua_clean,
    lua_failed_remove, lua_kv_del,      lua_kv_expire,
    lua_ready,
};

/* clang-format on */

#endif /* ST_REDIS_SCRIPTS_H */
