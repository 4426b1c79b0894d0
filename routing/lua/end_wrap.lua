-- ARGV: tid
local tkey = P .. ':t:' .. ARGV[1]
if redis.call('HGET', tkey, 'st') ~= 'wrap_up' then return false end
return (finish(ARGV[1]))
