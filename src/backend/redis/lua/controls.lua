-- controls.lua: the controls op (backend.h): live pauses and each limit
-- with its use, read at the server's time. ARGV: P.
-- Returns {now, {queue, until, ...}, {target, spec, running, started, ...}}.
-- running counts the permits of registered workers only: one left by a
-- worker that is gone is dropped by the next check that finds the limit
-- full (lib/control.lua, ctl_prune); this listing writes nothing.

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
  local h, n = redis.call('HGETALL', CP .. 'permits:' .. t), 0
  for i = 1, #h, 2 do
    if ctl_live(h[i], h[i + 1]) then n = n + 1 end
  end
  ls[#ls + 1] = n
  if l[2] > 0 then
    ls[#ls + 1] = redis.call('ZCOUNT', CP .. 'starts:' .. t,
                             '(' .. (now - l[3]), '+inf')
  else
    ls[#ls + 1] = 0
  end
end
return {now, ps, ls}
