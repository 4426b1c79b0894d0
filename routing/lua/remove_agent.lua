local akey = P .. ':a:' .. ARGV[1]
local a = redis.call('HMGET', akey, 'sk', 'cap')
if a[1] then unindex_all(ARGV[1], a[1], a[2]) end
redis.call('DEL', akey)
return 1
