-- lib/control.lua: queue control (issue 15), shared by the scripts that
-- check or change it: reserve, ready, clean, controls, pause, register and
-- unregister. Keys, all under NS:stellar: (node-resque never reads them):
--   paused             hash queue -> until (epoch ms; "0": until resumed)
--   limits             hash target -> "<concurrency> <rate> <window ms>"
--   permits:<target>   hash worker name -> its member of node-resque's
--                      workers set NS:workers ("<name>:<queues>"; "1" if
--                      an older version wrote it), one field per job of
--                      the target that a worker holds (a lease: dropped
--                      with the worker's working-on record, and by the
--                      check once the worker is no longer registered)
--   pruned:<target>    set for a second after a full limit's permits were
--                      checked against the workers set (ctl_prune)
--   starts:<target>    sorted set of start times (a sliding window)
-- Times are the server's (TIME), so every process counts on one clock.
local CP = ARGV[1] .. 'stellar:'
local ctl_ms
local function ctl_now()
  if not ctl_ms then
    local t = redis.call('TIME')
    ctl_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return ctl_ms
end
-- Every limit, read once per script call: ctl_lims[target] = {c, r, w}.
-- Returns whether there is any.
local ctl_lims
local function ctl_load()
  if not ctl_lims then
    ctl_lims = {}
    local l = redis.call('HGETALL', CP .. 'limits')
    for i = 1, #l, 2 do
      local c, r, w = string.match(l[i + 1], '^(%d+) (%d+) (%d+)$')
      if c then ctl_lims[l[i]] = {tonumber(c), tonumber(r), tonumber(w)} end
    end
  end
  return next(ctl_lims) ~= nil
end
-- ctl_rel: the targets whose permits the calling worker ctl_me held for
-- the job it has just ended (reserve.lua), as its id key lists them, not
-- yet released. The list can be out of date: the limit may have been
-- cleared (its permits with it) and set again, or the permit pruned. So
-- the worker's own permit is not counted against it only if its field is
-- there, and a next job of the same target keeps it if it is there and
-- takes a new one if not. ctl_mem: the worker's workers-set member, the
-- value of the permits it takes.
local ctl_rel, ctl_me, ctl_mem = {}, nil, nil
-- Whether the worker of permit field f, value v, is still registered: v
-- is its workers-set member; "1" (older versions) names none, and the
-- worker's ping record, dropped with it, stands in.
local function ctl_live(f, v)
  if v == '1' then
    return redis.call('EXISTS', ARGV[1] .. 'worker:ping:' .. f) == 1
  end
  return redis.call('SISMEMBER', ARGV[1] .. 'workers', v) == 1
end
-- Drops the permits of t whose workers are no longer registered (a worker
-- that died and was cleaned up by node-resque, which knows nothing of
-- permits, or whose records went away without a release). Only a full
-- limit calls it, and it checks at most once a second per target, so
-- workers that a binding limit holds back do not pay a look per permit
-- on every try. Returns how many it dropped.
local function ctl_prune(t)
  if not redis.call('SET', CP .. 'pruned:' .. t, 1, 'PX', 1000, 'NX') then
    return 0
  end
  local pk, n = CP .. 'permits:' .. t, 0
  local h = redis.call('HGETALL', pk)
  for i = 1, #h, 2 do
    if not ctl_live(h[i], h[i + 1]) then
      n = n + redis.call('HDEL', pk, h[i])
    end
  end
  if n > 0 then redis.pcall('PUBLISH', CP .. 'wake', '*') end
  return n
end
-- The permits of t that count against the caller: its own, if there, does
-- not. Whether it is there only matters when n == c (below c there is
-- room either way, above it none), so only then is it looked up.
local function ctl_used(t, pk, c)
  local n = redis.call('HLEN', pk)
  if n == c and ctl_rel[t] and redis.call('HGET', pk, ctl_me) then
    n = n - 1
  end
  return n
end
-- Whether target t has room for one more start; a limited t goes into
-- took, for ctl_take. Writes nothing but a full limit's pruning.
local function ctl_room(t, took)
  local l = ctl_lims[t]
  if not l then return true end
  local c, r, w = l[1], l[2], l[3]
  if c > 0 then
    local pk = CP .. 'permits:' .. t
    local n = ctl_used(t, pk, c)
    if n >= c and ctl_prune(t) > 0 then n = ctl_used(t, pk, c) end
    if n >= c then return false end
  end
  if r > 0 and redis.call('ZCOUNT', CP .. 'starts:' .. t,
                          '(' .. (ctl_now() - w), '+inf') >= r then
    return false
  end
  took[#took + 1] = {t, c, r, w}
  return true
end
-- The class of payload v: read straight off the payloads Stellar and
-- node-resque write ({"class":"..." first), else decoded.
local function ctl_class(v)
  local c = string.match(v, '^{"class":"([^"\\]*)"')
  if c then return c end
  local ok, j = pcall(cjson.decode, v)
  if ok and type(j) == 'table' and type(j.class) == 'string' then
    return j.class
  end
  return nil
end
-- Whether the job v at the head of queue q may start now: its queue is
-- not paused (pau: a pause exists) and no limit of its queue or its task
-- is full (ctl_load() first).
local function ctl_may(q, v, took, pau)
  if pau then
    local u = redis.call('HGET', CP .. 'paused', q)
    if u and (u == '0' or tonumber(u) > ctl_now()) then return false end
  end
  if next(ctl_lims) == nil then return true end
  if not ctl_room('queue:' .. q, took) then return false end
  local c = ctl_class(v)
  return c == nil or ctl_room('task:' .. c, took)
end
-- Takes a permit (worker ctl_me) and records a start for each limited
-- target of took; a permit in ctl_rel is kept if it is still there
-- (HSETNX writes nothing then), else taken anew. uid makes the start's
-- member unique. Returns the targets it holds permits of, each after a
-- newline.
local function ctl_take(took, uid)
  local held = ''
  for i = 1, #took do
    local t, c, r, w = took[i][1], took[i][2], took[i][3], took[i][4]
    if c > 0 then
      local pk = CP .. 'permits:' .. t
      if ctl_rel[t] then
        ctl_rel[t] = nil
        redis.call('HSETNX', pk, ctl_me, ctl_mem)
      else
        redis.call('HSET', pk, ctl_me, ctl_mem)
      end
      held = held .. '\n' .. t
    end
    if r > 0 then
      local zk = CP .. 'starts:' .. t
      redis.call('ZREMRANGEBYSCORE', zk, '-inf', ctl_now() - w)
      redis.call('ZADD', zk, ctl_now(), ctl_now() .. ':' .. ctl_me .. ':' .. uid)
      redis.call('PEXPIRE', zk, w + 1000)
    end
  end
  return held
end
-- Releases the permits left in ctl_rel (a limit that was full wakes the
-- waiting workers).
local function ctl_drop(name)
  for t in pairs(ctl_rel) do
    local pk, l = CP .. 'permits:' .. t, ctl_lims and ctl_lims[t]
    if redis.call('HDEL', pk, name) == 1 and l and l[1] > 0 and
        redis.call('HLEN', pk) + 1 >= l[1] then
      redis.pcall('PUBLISH', CP .. 'wake', '*')
    end
  end
  ctl_rel = {}
end
-- Releases every permit worker name holds, whatever its record says (one
-- HDEL per limit, a concurrency of 0 included: a permit taken before the
-- limit changed): the dead-worker clean-up, registration and unregistration.
-- A limit that was full wakes the waiting workers.
local function ctl_release(name)
  if not ctl_load() then return end
  for t, l in pairs(ctl_lims) do
    local pk = CP .. 'permits:' .. t
    if redis.call('HDEL', pk, name) == 1 and l[1] > 0 and
        redis.call('HLEN', pk) + 1 >= l[1] then
      redis.pcall('PUBLISH', CP .. 'wake', '*')
    end
  end
end
