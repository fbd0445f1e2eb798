-- promote.lua: the scheduler's move of due delayed jobs (reference §5.2),
-- all in one atomic step, so several schedulers (even node-resque's, whose
-- LPOPs are atomic too) move each job exactly once.
-- ARGV: P, now (seconds), max (<= 0: no limit).
-- Returns {moved, next} with next the earliest remaining timestamp in
-- seconds (score text) or -1.
--
-- The payload is decoded with cjson only to read .queue, then pushed with
-- its original bytes. A payload that is not JSON, or has no string queue,
-- goes to queue "default": node-resque would lose it (its JSON.parse throws
-- after the LPOP); here it reaches a worker, whose payload check fails it
-- into the failed list where people can see it.

--#include lib/prelude.lua

local now, max = ARGV[2], tonumber(ARGV[3])
local sched = key('delayed_queue_schedule')
local moved = 0
while max <= 0 or moved < max do
  local due = redis.call('ZRANGEBYSCORE', sched, '-inf', now,
                         'LIMIT', 0, 1)
  if #due == 0 then break end
  local ts = due[1]
  local dkey = key('delayed:' .. ts)
  local bad = false
  while max <= 0 or moved < max do
    local v = redis.pcall('LPOP', dkey)
    if type(v) == 'table' then bad = true break end
    if not v then break end
    redis.call('SREM', key('timestamps:' .. v), 'delayed:' .. ts)
    local q = 'default'
    local ok, job = pcall(cjson.decode, v)
    if ok and type(job) == 'table' and type(job.queue) == 'string'
       and job.queue ~= '' then q = job.queue end
    redis.call('SADD', key('queues'), q)
    redis.call('RPUSH', key('queue', q), v)
    moved = moved + 1
  end
  -- A foreign key of another type: forget the schedule entry only.
  if bad then redis.call('ZREM', sched, ts)
  elseif redis.call('LLEN', dkey) == 0 then
    redis.call('DEL', dkey)
    redis.call('ZREM', sched, ts)
  else break end
end
if moved > 0 then redis.pcall('PUBLISH', P .. 'stellar:wake', '*') end
local nxt = redis.call('ZRANGE', sched, 0, 0, 'WITHSCORES')
if #nxt == 0 then return {moved, '-1'} end
return {moved, nxt[2]}
