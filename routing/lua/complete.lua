-- The contact ended: wrap-up (the slot stays taken, leased) or free the slot now and
-- run the agent-first decision in the same step. ARGV: tid, now, lease_grace, then the
-- take_for_agent.lua arguments from position 4 (aid placeholder, owner, now, ...).
-- Wrap-up seconds come from the task's 'wrap' field.
local tkey = P .. ':t:' .. ARGV[1]
local f = redis.call('HMGET', tkey, 'st', 'wrap', 'agent', 'ch', 'tk', 'ep')
if f[1] ~= 'assigned' then return {'state', f[1] or 'gone'} end
local wrap = tonumber(f[2] or '0')
if wrap > 0 then
  redis.call('HSET', tkey, 'st', 'wrap_up')
  redis.call('ZADD', P .. ':leases', tonumber(ARGV[2]) + wrap + tonumber(ARGV[3]),
             'w:' .. ARGV[1])
  return {'wrap_up', f[3], tostring(wrap)}
end
local agent, idx, v = finish(ARGV[1], {st = f[1], agent = f[3], ch = f[4], tk = f[5], ep = f[6]})
local A = {}
for i = 4, #ARGV do A[#A + 1] = ARGV[i] end
return {'done', agent, take_for_agent(agent, A, idx, v)}
