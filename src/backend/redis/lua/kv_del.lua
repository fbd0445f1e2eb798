-- kv_del.lua: kv_del with a value, compare-and-delete.
-- ARGV: P, key, value. Returns the number of keys deleted.

local k = ARGV[1] .. ARGV[2]
if redis.call('GET', k) == ARGV[3] then return redis.call('DEL', k) end
return 0
