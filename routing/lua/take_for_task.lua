-- Task-first decision for a task already waiting (back after a reject, RONA, expiry).
-- ARGV: tid, rid, lease, owner, strategy, limit
local t = hgetall(P .. ':t:' .. ARGV[1])
if t.st ~= 'waiting' then return {'task'} end
local r = take_task(ARGV[1], t, ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]))
if r == nil then return {'none'} end
return {'ok', r[1], r[2], r[3]}
