-- unregister.lua: the worker_unregister op (backend.h): node-resque's
-- end (reference §4.6: SREM workers and the worker's records), with our
-- reserve id, and the worker's permits released in the same step
-- (lib/control.lua): the id key is their only record, and a worker that
-- leaves holding one (its final ack failed) would otherwise keep it.
-- ARGV: P, name, workers-set member, then the keys to delete. Returns 1.

--#include lib/control.lua

redis.call('SREM', ARGV[1] .. 'workers', ARGV[3])
redis.call('DEL', unpack(ARGV, 4))
ctl_release(ARGV[2])
return 1
