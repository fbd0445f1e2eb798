-- reserve.lua: the hot path, one call per job. The caller builds every key
-- it can, so the script does little more than its Redis calls.
-- ARGV:
--   1  P, the namespace prefix
--   2  the working-on key NS:worker:<name>:<queues>
--   3  the record's head: {"run_at":"<JS date>","queue":
--   4  the record's tail: ,"worker":"<name>"}
--   5  how the held job ended: "0" nothing held; "1" INCR a, INCR b;
--      "2" INCR a, INCR b, RPUSH c d; "3" dropped; "4" SADD a b, LPUSH c d
--   6..9  a, b, c, d
--   10 the call-id key NS:stellar:reserve:<name>
--   11 this call's id (decimal; a retry of a call sends the same id)
--   12 "1": pop the next job; "0": only apply 5
--   13 n, the number of queues; 0: every queue in NS:queues, by name
--   14.. n pairs (queue name, queue key)
-- Returns {queue, payload, suspect} or nil; suspect is 1 if the kv key
-- NS:stellar:crashes:<payload> (backend.h, ST_CRASHES_PREFIX, spliced in at
-- build time) exists, which EXISTS answers as GET would (an expired key is
-- absent), else 0.
--
-- The working-on record is built by string concatenation with the popped
-- payload spliced in raw: {run_at, queue, payload, worker}, the member
-- order of node-resque's cluster path. node-resque's own script re-encodes
-- the payload with cjson, which reorders members, escapes '/' as '\/',
-- turns [] into {} and rounds numbers to 14 digits; splicing keeps the
-- exact bytes, and JSON.parse (allWorkingOn, cleanOldWorkers) reads both
-- alike. The payload is decoded (never re-encoded) only to check that it is
-- JSON: if it is not, it goes in as a JSON string so that the record stays
-- parseable, and the job is still handed out (node-resque's script would
-- lose it) so that the worker fails it where people can see it.
--
-- A reply can be lost after the script ran (the connection drops between
-- the two): the caller then sends the same call again, with the same id.
-- The id key holds the id of the last call that changed something, and a
-- flag: "n" nothing held after it, "r" the job it popped is in the record
-- as is, "j" as a JSON string. A call whose id is there already ran: it
-- applies nothing again and hands out the job it popped, read back from
-- the record (or, if no job is wanted now, puts it back at the head of its
-- queue), so that no ack counts twice and no popped job is lost.

--#include lib/jstr.lua
--#include lib/control.lua

-- Byte order, as JS sorts ASCII names; Lua's < would use strcoll(), and
-- Redis sets LC_COLLATE from the environment.
local function bytelt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local P, won, oc, idk, id = ARGV[1], ARGV[2], ARGV[5], ARGV[10], ARGV[11]
-- Whether payload v is a suspect: its crash counter stands.
local function suspect(v)
  return redis.call('EXISTS', P .. '@ST_CRASHES_PREFIX@' .. v)
end
local wname = string.sub(idk, #P + 17)
-- The permits it takes name it and hold its workers-set member, the
-- working-on key's tail (NS:worker:<name>:<queues>).
ctl_me, ctl_mem = wname, string.sub(won, #P + 8)
local last = redis.call('GET', idk)
-- The id key: "<id><flag>", then "\n<target>" per permit the job holds.
local lhead, lheld = last, nil
if last then
  local nl = string.find(last, '\n', 1, true)
  if nl then lhead, lheld = string.sub(last, 1, nl - 1), string.sub(last, nl) end
end
if lheld then
  for t in string.gmatch(lheld, '\n([^\n]+)') do ctl_rel[t] = true end
end
if last and string.sub(lhead, 1, -2) == id then
  local flag, rec = string.sub(lhead, -1), redis.call('GET', won)
  if flag == 'n' or not rec then return false end
  local at = string.find(rec, ',"payload":', 1, true)
  if not at then return false end
  local v = string.sub(rec, at + 11, #rec - #ARGV[4])
  if flag == 'j' then v = cjson.decode(v) end
  local q = cjson.decode(rec).queue
  if ARGV[12] == '1' then return {q, v, suspect(v)} end
  local qk = P .. 'queue'
  if string.find(q, '%S') then qk = qk .. ':' .. q end
  redis.call('SADD', P .. 'queues', q)
  redis.call('LPUSH', qk, v)
  ctl_load()
  ctl_drop(wname)
  redis.call('DEL', won)
  redis.call('SET', idk, id .. 'n')
  return false
end
if oc == '1' or oc == '2' then
  redis.call('INCR', ARGV[6])
  redis.call('INCR', ARGV[7])
  if oc == '2' then redis.call('RPUSH', ARGV[8], ARGV[9]) end
elseif oc == '4' then
  redis.call('SADD', ARGV[6], ARGV[7])
  redis.call('LPUSH', ARGV[8], ARGV[9])
  redis.pcall('PUBLISH', P .. 'stellar:wake', ARGV[7])
end
-- A held job ended: its permits (ctl_rel) are released below, unless the
-- next job takes them over; nothing held, nothing to release.
if oc == '0' then ctl_rel = {} end
if ARGV[12] == '1' then
  local lim = ctl_load()
  local pau = redis.call('EXISTS', CP .. 'paused') == 1
  local ctl = lim or pau
  local n = tonumber(ARGV[13])
  local names, keys = {}, {}
  if n == 0 then
    names = redis.call('SMEMBERS', P .. 'queues')
    table.sort(names, bytelt)
    for i = 1, #names do
      local q = names[i]
      keys[i] = P .. 'queue'
      if string.find(q, '%S') then keys[i] = keys[i] .. ':' .. q end
    end
  else
    for i = 1, n do
      names[i], keys[i] = ARGV[12 + 2 * i], ARGV[13 + 2 * i]
    end
  end
  for i = 1, #names do
    -- pcall: a foreign key of another type must not abort the script
    -- after the held job's outcome was applied (it would be applied
    -- again by the caller's retry).
    local v, took = nil, {}
    if ctl then
      local h = redis.pcall('LINDEX', keys[i], 0)
      if type(h) == 'string' and ctl_may(names[i], h, took, pau) then
        v = redis.call('LPOP', keys[i])
      end
    else
      v = redis.pcall('LPOP', keys[i])
    end
    if type(v) == 'string' then
      local held = ''
      if ctl then held = ctl_take(took, id) end
      if next(ctl_rel) then ctl_load(); ctl_drop(wname) end
      local body, flag = v, 'r'
      if not pcall(cjson.decode, v) then body, flag = jstr(v), 'j' end
      redis.call('SET', won, ARGV[3] .. jstr(names[i]) ..
                 ',"payload":' .. body .. ARGV[4])
      redis.call('SET', idk, id .. flag .. held)
      return {names[i], v, suspect(v)}
    end
  end
end
if oc ~= '0' then
  if next(ctl_rel) then ctl_load(); ctl_drop(wname) end
  redis.call('DEL', won)
  redis.call('SET', idk, id .. 'n')
end
return false
