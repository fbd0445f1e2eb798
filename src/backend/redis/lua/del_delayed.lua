-- del_delayed.lua: delDelayed. ARGV: P, payload. Returns the seconds (text)
-- the payload was removed from.

--#include lib/prelude.lua
--#include lib/del_delayed.lua

return (del_delayed(ARGV[2]))
