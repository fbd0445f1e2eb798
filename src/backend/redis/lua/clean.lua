-- clean.lua: forceCleanWorker (reference §3), atomic, with two fixes: the
-- working-on key NS:worker:<name>:<queues> is deleted (node-resque deletes
-- NS:worker:<name> instead and leaves the record behind), and stat:failed
-- is only incremented when a held job goes to the failed list (node-resque
-- increments it even for an idle worker).
-- ARGV: P, name, holder (1-based index of the (member, queues) pair whose
-- working-on record was read, 0: none), that record, action ("0" none,
-- "1" RPUSH failed a1 + INCR failed, "2" LPUSH a2 back to queue a1), a1,
-- a2, then pairs of (workers-set member, queues string).
-- The worker's permits (lib/control.lua) are released with its record.
-- Returns 1, or -1 if a working-on record changed since it was read (the
-- caller reads again and retries).

--#include lib/prelude.lua
--#include lib/control.lua

local name, holder = ARGV[2], tonumber(ARGV[3])
local npairs = (#ARGV - 7) / 2
for i = 1, npairs do
  local cur = redis.call('GET', key('worker', name, ARGV[7 + 2 * i]))
  if i == holder then
    if cur ~= ARGV[4] then return -1 end
  elseif cur then return -1 end
end
local act = ARGV[5]
if act == '1' then
  redis.call('INCR', key('stat', 'failed'))
  redis.call('RPUSH', key('failed'), ARGV[6])
elseif act == '2' then
  redis.call('SADD', key('queues'), ARGV[6])
  redis.call('LPUSH', key('queue', ARGV[6]), ARGV[7])
  redis.pcall('PUBLISH', P .. 'stellar:wake', ARGV[6])
end
ctl_release(name)
redis.call('DEL', key('stat', 'failed', name),
           key('stat', 'processed', name), key('worker', 'ping', name),
           key('stellar', 'reserve', name))
for i = 1, npairs do
  local qs = ARGV[7 + 2 * i]
  redis.call('SREM', key('workers'), ARGV[6 + 2 * i])
  redis.call('DEL', key('worker', name, qs, 'started'),
             key('worker', name, qs))
end
return 1
