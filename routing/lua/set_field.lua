-- ARGV: aid, field, value [, field, value]: presence / reason / softphone changes.
local akey = P .. ':a:' .. ARGV[1]
if redis.call('EXISTS', akey) == 0 then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', akey, ARGV[i], ARGV[i + 1]) end
reindex(ARGV[1], false)
return 1
