-- sched_claim.lua: claims one tick of a cron schedule and queues its job
-- in one atomic step (backend.h sched_claim). The schedule's record is the
-- hash stellar:schedule:<name> (fields last, paused, seen), listed in the
-- set stellar:schedules: Stellar's own keys, beside node-resque's. The
-- claim is a compare-and-set of last: only a tick later than the last one
-- claimed, and only while not paused. ARGV: P, name, tick (ms), queue,
-- payload. Returns 1 if claimed (and the job pushed), else 0.

--#include lib/prelude.lua

local name, tick, q, payload = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local k = key('stellar:schedule', name)
local rec = redis.call('HMGET', k, 'last', 'paused')
if rec[2] == '1' then return 0 end
if rec[1] and tonumber(rec[1]) >= tick then return 0 end
redis.call('HSET', k, 'last', ARGV[3])
redis.call('SADD', key('stellar:schedules'), name)
redis.call('SADD', key('queues'), q)
redis.call('RPUSH', key('queue', q), payload)
redis.pcall('PUBLISH', P .. 'stellar:wake', q)
return 1
