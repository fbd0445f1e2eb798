-- lib/push_at.lua: push_at(s, payload), enqueueAt at second s with
-- node-resque's duplicate check made atomic. Returns 1, or 0 if the payload
-- is already delayed at that second (nothing written). Needs prelude.lua.
local function push_at(s, payload)
  local tkey = key('timestamps:' .. payload)
  local m = 'delayed:' .. s
  if redis.call('SISMEMBER', tkey, m) == 1 then return 0 end
  redis.call('RPUSH', key('delayed:' .. s), payload)
  redis.call('SADD', tkey, m)
  redis.call('ZADD', key('delayed_queue_schedule'), s, s)
  return 1
end
