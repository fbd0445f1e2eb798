-- pause.lua: the pause op (backend.h): pauses queue ARGV[2] until resumed
-- (ARGV[3] "0") or for ARGV[3] ms from now, by the server's clock (TIME),
-- the one the check reads (lib/control.lua): a client's clock that is off
-- would shorten or stretch the pause. ARGV: P, queue, for_ms. Returns 1.

--#include lib/control.lua

local f, u = tonumber(ARGV[3]), '0'
-- %.0f: the digits of the sum, which tostring() would cut to 14.
if f > 0 then u = string.format('%.0f', ctl_now() + f) end
redis.call('HSET', CP .. 'paused', ARGV[2], u)
return 1
