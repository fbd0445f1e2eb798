-- sched_list.lua: every cron schedule's record in one consistent read:
-- a flat array name, last, paused, seen, name, ... (nil for a field not
-- set). ARGV: P. The record's keys: see sched_claim.lua.

--#include lib/prelude.lua

local out = {}
local names = redis.call('SMEMBERS', key('stellar:schedules'))
table.sort(names)
for _, name in ipairs(names) do
  local rec = redis.call('HMGET', key('stellar:schedule', name), 'last',
                         'paused', 'seen')
  out[#out + 1] = name
  out[#out + 1] = rec[1] or ''
  out[#out + 1] = rec[2] or '0'
  out[#out + 1] = rec[3] or ''
end
return out
