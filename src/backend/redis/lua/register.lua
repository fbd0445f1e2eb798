-- register.lua: the worker_register op (backend.h): node-resque's init
-- (SADD workers, SET <name>:<queues>:started, the first ping), then the
-- DEL of a working-on record and a reserve id left under this identity
-- (node-resque's forceCleanWorker leaves the record behind): a worker that
-- has just registered holds no job, so it holds no permit either, and
-- any it held under this name before (a process killed, restarted with
-- the same pid) is released (lib/control.lua).
-- ARGV: P, name, workers-set member, started key, started (s), ping key,
-- ping record, then the keys to delete. Returns 1.

--#include lib/control.lua

redis.call('SADD', ARGV[1] .. 'workers', ARGV[3])
redis.call('SET', ARGV[4], ARGV[5])
redis.call('SET', ARGV[6], ARGV[7])
redis.call('DEL', unpack(ARGV, 8))
ctl_release(ARGV[2])
return 1
