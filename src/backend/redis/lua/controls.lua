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
ctl_load()
for t, l in pairs(ctl_lims) do
  ls[#ls + 1] = t
  ls[#ls + 1] = l[1] .. ' ' .. l[2] .. ' ' .. l[3]
  ls[#ls + 1] = redis.call('HLEN', CP .. 'permits:' .. t)
  if l[2] > 0 then
    ls[#ls + 1] = redis.call('ZCOUNT', CP .. 'starts:' .. t,
                             '(' .. (now - l[3]), '+inf')
  else
    ls[#ls + 1] = 0
  end
end
return {now, ps, ls}
