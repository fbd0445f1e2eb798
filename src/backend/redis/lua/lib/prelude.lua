-- lib/prelude.lua: shared by the scripts but reserve: P, blank(), key().
-- key() is node-resque's connection.key() for up to four parts: blank
-- parts are dropped, the rest joined with ':' after the prefix P.
local P = ARGV[1]
local function blank(s) return not string.find(s, '%S') end
local function part(k, s)
  if s == nil or blank(s) then return k end
  if k == nil then return s end
  return k .. ':' .. s
end
local function key(a, b, c, d)
  return P .. (part(part(part(part(nil, a), b), c), d) or '')
end
