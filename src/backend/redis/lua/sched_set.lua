-- sched_set.lua: creates a cron schedule's record if missing, and sets
-- its paused flag (ARGV[3] '0' or '1'; '-1' leaves it) and its first-seen
-- time if unset (ARGV[4] ms; '-1' leaves it). ARGV: P, name, paused, seen.
-- The record's keys: see sched_claim.lua.

--#include lib/prelude.lua

local name, paused, seen = ARGV[2], ARGV[3], ARGV[4]
local k = key('stellar:schedule', name)
redis.call('SADD', key('stellar:schedules'), name)
if paused ~= '-1' then
  redis.call('HSET', k, 'paused', paused)
else
  redis.call('HSETNX', k, 'paused', '0')
end
if seen ~= '-1' then redis.call('HSETNX', k, 'seen', seen) end
return 1
