-- ARGV: rid, now
local r = hgetall(P .. ':r:' .. ARGV[1])
if r.task == nil then return 0 end
redis.call('HSET', P .. ':t:' .. r.task, 'st', 'assigned', 'res', '', 'ans', ARGV[2])
redis.call('DEL', P .. ':r:' .. ARGV[1])
redis.call('ZREM', P .. ':leases', ARGV[1])
redis.call('HINCRBY', P .. ':a:' .. r.agent, 'cnt', 1)
audit('acc', ARGV[1], r.task, r.agent)
return r.agent
