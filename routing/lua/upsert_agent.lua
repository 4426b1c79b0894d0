-- ARGV: aid, sk, grp, cap, ordinal, then skill/level pairs. Static fields are (re)written;
-- state is kept, so every process may register the same configured agents at start. A
-- changed skill set or capacity takes the agent out of every old bucket first.
local akey = P .. ':a:' .. ARGV[1]
local old = redis.call('HMGET', akey, 'sk', 'grp', 'cap')
if old[1] and (old[1] ~= ARGV[2] or old[2] ~= ARGV[3] or old[3] ~= ARGV[4]) then
  unindex_all(ARGV[1], old[1], old[3])
  for s, _ in pairs(kv(old[1])) do redis.call('HDEL', akey, 's:' .. s) end
  redis.call('HSET', akey, 'idx', '')
end
redis.call('HSET', akey, 'sk', ARGV[2], 'grp', ARGV[3], 'cap', ARGV[4], 'ord', ARGV[5])
for i = 6, #ARGV, 2 do
  redis.call('HSET', akey, 's:' .. ARGV[i], ARGV[i + 1])
  redis.call('ZADD', P .. ':has:' .. ARGV[i], ARGV[i + 1], ARGV[1])
end
redis.call('HSETNX', akey, 'pres', 'offline')
redis.call('HSETNX', akey, 'soft', '0')
redis.call('HSETNX', akey, 'cnt', '0')
reindex(ARGV[1], false)
return 1
