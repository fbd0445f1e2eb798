-- lib/jstr.lua: jstr(s), a JSON string literal as JSON.stringify writes it
-- (reference §2.1): only '"', '\' and control characters are escaped;
-- UTF-8 goes out raw. The common case (nothing to escape) costs one
-- string.find.
local JPAT = '[%z\1-\31"\\]'
local function esc1(c)
  local t = {['"'] = '\\"', ['\\'] = '\\\\',
    ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n',
    ['\r'] = '\\r', ['\t'] = '\\t'}
  return t[c] or string.format('\\u%04x', string.byte(c))
end
local function jstr(s)
  if not string.find(s, JPAT) then return '"' .. s .. '"' end
  return '"' .. string.gsub(s, JPAT, esc1) .. '"'
end
