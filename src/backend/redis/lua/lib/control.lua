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
-- The limit of target t: concurrency, rate, window (numbers), or nil.
local function ctl_limit(t)
  local v = redis.call('HGET', CP .. 'limits', t)
  if not v then return nil end
  local c, r, w = string.match(v, '^(%d+) (%d+) (%d+)$')
  if not c then return nil end
  return tonumber(c), tonumber(r), tonumber(w)
end
-- Whether target t has room for one more start (no write); a limited t
-- goes into took, for ctl_take.
local function ctl_room(t, took)
  local c, r, w = ctl_limit(t)
  if not c then return true end
  if c > 0 and redis.call('HLEN', CP .. 'permits:' .. t) >= c then
    return false
  end
  if r > 0 and redis.call('ZCOUNT', CP .. 'starts:' .. t,
                          '(' .. (ctl_now() - w), '+inf') >= r then
    return false
  end
  took[#took + 1] = {t, c, r, w}
  return true
end
-- Whether the job v at the head of queue q may start now: its queue is
-- not paused and no limit of its queue or its task is full.
local function ctl_may(q, v, took, lim)
  local u = redis.call('HGET', CP .. 'paused', q)
  if u and (u == '0' or tonumber(u) > ctl_now()) then return false end
  if not lim then return true end
  if not ctl_room('queue:' .. q, took) then return false end
  local ok, j = pcall(cjson.decode, v)
  if ok and type(j) == 'table' and type(j.class) == 'string' then
    return ctl_room('task:' .. j.class, took)
  end
  return true
end
-- Takes a permit and records a start for each limited target of took;
-- uid makes the start's member unique.
local function ctl_take(took, name, uid)
  for i = 1, #took do
    local t, c, r, w = took[i][1], took[i][2], took[i][3], took[i][4]
    if c > 0 then redis.call('HSET', CP .. 'permits:' .. t, name, 1) end
    if r > 0 then
      local zk = CP .. 'starts:' .. t
      redis.call('ZREMRANGEBYSCORE', zk, '-inf', ctl_now() - w)
      redis.call('ZADD', zk, ctl_now(), ctl_now() .. ':' .. name .. ':' .. uid)
      redis.call('PEXPIRE', zk, w + 1000)
    end
  end
end
-- Releases every permit worker name holds; a limit that was full wakes
-- the waiting workers.
local function ctl_release(name)
  if redis.call('EXISTS', CP .. 'limits') == 0 then return end
  local ts = redis.call('HKEYS', CP .. 'limits')
  for i = 1, #ts do
    local pk = CP .. 'permits:' .. ts[i]
    if redis.call('HDEL', pk, name) == 1 then
      local c = ctl_limit(ts[i])
      if c and c > 0 and redis.call('HLEN', pk) + 1 >= c then
        redis.pcall('PUBLISH', CP .. 'wake', '*')
      end
    end
  end
end
