-- del_delayed_at.lua: removes every job delayed at the given seconds, with
-- their timestamps: members and schedule entries.
-- ARGV: P, all ("1": also every member of the schedule), seconds...
-- Returns the number of jobs removed.

--#include lib/prelude.lua

local sched = key('delayed_queue_schedule')
local list = {}
for i = 3, #ARGV do list[#list + 1] = ARGV[i] end
if ARGV[2] == '1' then
  local z = redis.call('ZRANGE', sched, 0, -1)
  for i = 1, #z do list[#list + 1] = z[i] end
end
local removed, seen = 0, {}
for i = 1, #list do
  local ts = list[i]
  if not seen[ts] then
    seen[ts] = true
    local dkey = key('delayed:' .. ts)
    local items = redis.call('LRANGE', dkey, 0, -1)
    for j = 1, #items do
      redis.call('SREM', key('timestamps:' .. items[j]),
                 'delayed:' .. ts)
    end
    removed = removed + #items
    redis.call('DEL', dkey)
    redis.call('ZREM', sched, ts)
  end
end
return removed
