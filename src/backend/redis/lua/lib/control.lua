-- lib/control.lua: queue control (issue 15), shared by reserve, ready and
-- clean. Keys, all under NS:stellar: (node-resque never reads them):
--   paused             hash queue -> until (epoch ms; "0": until resumed)
--   limits             hash target -> "<concurrency> <rate> <window ms>"
--   permits:<target>   hash worker -> 1, one field per job of the target
--                      that a worker holds (a lease: dropped with the
--                      worker's working-on record)
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
-- ctl_rel: the targets whose permits the calling worker holds for the job
-- it has just ended (reserve.lua), not yet released: its own permit does
-- not count against it, and taking a job of the same target keeps it.
-- Whether target t has room for one more start (no write); a limited t
-- goes into took, for ctl_take.
local ctl_rel = {}
local function ctl_room(t, took)
  local l = ctl_lims[t]
  if not l then return true end
  local c, r, w = l[1], l[2], l[3]
  if c > 0 then
    local n = redis.call('HLEN', CP .. 'permits:' .. t)
    if ctl_rel[t] then n = n - 1 end
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
-- Takes a permit and records a start for each limited target of took
-- (a permit in ctl_rel is kept); uid makes the start's member unique.
-- Returns the targets it holds permits of, each after a newline.
local function ctl_take(took, name, uid)
  local held = ''
  for i = 1, #took do
    local t, c, r, w = took[i][1], took[i][2], took[i][3], took[i][4]
    if c > 0 then
      if ctl_rel[t] then
        ctl_rel[t] = nil
      else
        redis.call('HSET', CP .. 'permits:' .. t, name, 1)
      end
      held = held .. '\n' .. t
    end
    if r > 0 then
      local zk = CP .. 'starts:' .. t
      redis.call('ZREMRANGEBYSCORE', zk, '-inf', ctl_now() - w)
      redis.call('ZADD', zk, ctl_now(), ctl_now() .. ':' .. name .. ':' .. uid)
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
-- HDEL per limit: the dead-worker clean-up); a limit that was full wakes
-- the waiting workers.
local function ctl_release(name)
  if not ctl_load() then return end
  for t, l in pairs(ctl_lims) do
    local pk = CP .. 'permits:' .. t
    if l[1] > 0 and redis.call('HDEL', pk, name) == 1 and
        redis.call('HLEN', pk) + 1 >= l[1] then
      redis.pcall('PUBLISH', CP .. 'wake', '*')
    end
  end
end
