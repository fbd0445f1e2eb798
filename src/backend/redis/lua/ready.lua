-- ready.lua: whether any of a worker's queues holds a job (the wait op's
-- look after it subscribes). ARGV: P, n, then n queue keys; n = 0: every
-- queue in NS:queues. Returns 1 or 0.

local P, n = ARGV[1], tonumber(ARGV[2])
if n == 0 then
  local names = redis.call('SMEMBERS', P .. 'queues')
  for i = 1, #names do
    local k = P .. 'queue'
    if string.find(names[i], '%S') then k = k .. ':' .. names[i] end
    local len = redis.pcall('LLEN', k)
    if type(len) == 'number' and len > 0 then return 1 end
  end
  return 0
end
for i = 1, n do
  local len = redis.pcall('LLEN', ARGV[2 + i])
  if type(len) == 'number' and len > 0 then return 1 end
end
return 0
