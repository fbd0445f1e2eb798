-- failed_remove.lua: removeFailed, plus the push of retryAndRemoveFailed
-- when asked, atomically. ARGV: P, entry, requeue ("1"/"0"), queue,
-- payload. Returns the number of entries removed (0 or 1).

--#include lib/prelude.lua

local n = redis.call('LREM', key('failed'), 1, ARGV[2])
if n > 0 and ARGV[3] == '1' then
  redis.call('SADD', key('queues'), ARGV[4])
  redis.call('RPUSH', key('queue', ARGV[4]), ARGV[5])
  redis.pcall('PUBLISH', P .. 'stellar:wake', ARGV[4])
end
return n
