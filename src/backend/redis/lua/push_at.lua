-- push_at.lua: enqueueAt. ARGV: P, seconds (decimal text), payload,
-- "later" to take the first later second that does not hold the payload
-- instead of failing. Returns 1, or 0 (already delayed at that second).

--#include lib/prelude.lua
--#include lib/push_at.lua

local s = tonumber(ARGV[2])
while push_at(s, ARGV[3]) == 0 do
  if ARGV[4] ~= 'later' then return 0 end
  s = s + 1
end
return 1
