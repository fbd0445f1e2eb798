-- replace.lua: a periodic task's (re)start, re-enqueue and stop in one
-- atomic step, so that no interleaving with a scheduler's promotion or
-- another process leaves two copies. Removes every delayed copy of the
-- payload and every copy in its queue, then pushes one: "now" at the tail
-- of the queue (with the wake-up), a number of seconds as push_at, "none"
-- nothing. ARGV: P, payload, queue, what. Returns how many copies it
-- removed.

--#include lib/prelude.lua
--#include lib/push_at.lua
--#include lib/del_delayed.lua

local payload, q, what = ARGV[2], ARGV[3], ARGV[4]
local _, n = del_delayed(payload)
n = n + redis.call('LREM', key('queue', q), 0, payload)
if what == 'now' then
  redis.call('SADD', key('queues'), q)
  redis.call('RPUSH', key('queue', q), payload)
  redis.pcall('PUBLISH', P .. 'stellar:wake', q)
elseif what ~= 'none' then
  push_at(what, payload)
end
return n
