-- controls.lua: the controls op (backend.h): live pauses and each limit
-- with its use, read at the server's time. ARGV: P.
-- Returns {now, {queue, until, ...}, {target, spec, running, started, ...}}.

--#include lib/control.lua

local now, ps, ls = ctl_now(), {}, {}
local p = redis.call('HGETALL', CP .. 'paused')
for i = 1, #p, 2 do
  if p[i + 1] == '0' or (tonumber(p[i + 1]) or 0) > now then
    ps[#ps + 1] = p[i]
    ps[#ps + 1] = p[i + 1]
  end
end
local l = redis.call('HGETALL', CP .. 'limits')
for i = 1, #l, 2 do
  local t = l[i]
  local c, r, w = ctl_limit(t)
  ls[#ls + 1] = t
  ls[#ls + 1] = l[i + 1]
  ls[#ls + 1] = redis.call('HLEN', CP .. 'permits:' .. t)
  if c and r > 0 then
    ls[#ls + 1] = redis.call('ZCOUNT', CP .. 'starts:' .. t,
                             '(' .. (now - w), '+inf')
  else
    ls[#ls + 1] = 0
  end
end
return {now, ps, ls}
