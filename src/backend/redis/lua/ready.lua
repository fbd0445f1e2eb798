-- ready.lua: whether any of a worker's queues holds a job it may start
-- (the wait op's look after it subscribes). ARGV: P, n, then n pairs
-- (queue name, queue key); n = 0: every queue in NS:queues. Returns 1 or 0.
-- A queue that a pause or a full limit holds back (lib/control.lua) does
-- not count, so an idle worker waits for a wake-up instead of spinning.

--#include lib/control.lua

local P, n = ARGV[1], tonumber(ARGV[2])
local pau = redis.call('EXISTS', CP .. 'paused') == 1
local ctl = ctl_load() or pau
local function ready(q, k)
  if not ctl then
    local len = redis.pcall('LLEN', k)
    return type(len) == 'number' and len > 0
  end
  local h = redis.pcall('LINDEX', k, 0)
  return type(h) == 'string' and ctl_may(q, h, {}, pau)
end
if n == 0 then
  local names = redis.call('SMEMBERS', P .. 'queues')
  for i = 1, #names do
    local k = P .. 'queue'
    if string.find(names[i], '%S') then k = k .. ':' .. names[i] end
    if ready(names[i], k) then return 1 end
  end
  return 0
end
for i = 1, n do
  if ready(ARGV[1 + 2 * i], ARGV[2 + 2 * i]) then return 1 end
end
return 0
