-- kv_expire.lua: compare-and-expire. ARGV: P, key, value, ttl ms (<= 0:
-- persist). Returns 1 if the key held value.

local k = ARGV[1] .. ARGV[2]
if redis.call('GET', k) ~= ARGV[3] then return 0 end
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', k, ARGV[4])
else redis.call('PERSIST', k) end
return 1
