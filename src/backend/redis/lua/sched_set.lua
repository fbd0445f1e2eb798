-- sched_set.lua: creates a cron schedule's record if missing, and sets
-- its paused flag (ARGV[3] '0' or '1'; '-1' leaves it). ARGV[4] (ms; '-1'
-- none) is, with paused '-1' (a sync), the first-seen time, set if unset;
-- with paused '0' (a resume), the resume's time, stored as seen if the
-- schedule was paused and has been seen (seen or last set), so that the
-- ticks of its pause are not missed. ARGV: P, name, paused, seen. The
-- record's keys: see sched_claim.lua.

--#include lib/prelude.lua

local name, paused, seen = ARGV[2], ARGV[3], ARGV[4]
local k = key('stellar:schedule', name)
redis.call('SADD', key('stellar:schedules'), name)
if paused == '-1' then
  redis.call('HSETNX', k, 'paused', '0')
  if seen ~= '-1' then redis.call('HSETNX', k, 'seen', seen) end
  return 1
end
local rec = redis.call('HMGET', k, 'paused', 'last', 'seen')
redis.call('HSET', k, 'paused', paused)
if paused == '0' and seen ~= '-1' and rec[1] == '1' and (rec[2] or rec[3])
   and (not rec[3] or tonumber(rec[3]) < tonumber(seen)) then
  redis.call('HSET', k, 'seen', seen)
end
return 1
