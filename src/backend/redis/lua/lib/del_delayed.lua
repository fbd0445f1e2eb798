-- lib/del_delayed.lua: del_delayed(payload), delDelayed (reference §3).
-- Returns the seconds (text) it removed the payload from, and how many
-- copies it removed. Unlike node-resque it also drops stale timestamps:
-- members, and tidies the schedule entry of a list it emptied (node's
-- scheduler would do that on its next pass anyway). Needs prelude.lua.
local function del_delayed(payload)
  local tkey = key('timestamps:' .. payload)
  local sched = key('delayed_queue_schedule')
  local out, n = {}, 0
  local members = redis.call('SMEMBERS', tkey)
  for i = 1, #members do
    local m = members[i]
    local ts = string.match(m, '[^:]*$')
    local dkey = key(m)
    local k = redis.call('LREM', dkey, 0, payload)
    if k > 0 then out[#out + 1] = ts n = n + k end
    redis.call('SREM', tkey, m)
    if redis.call('EXISTS', dkey) == 0 then
      redis.call('ZREM', sched, ts)
    end
  end
  return out, n
end
