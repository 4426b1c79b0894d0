-- A waiting task leaves its queue (max wait, an escalation step's move_to) for the first
-- queue of the chain with room, keeping its age; with no room anywhere (or an empty
-- chain) it leaves routing. Written only if the task is still at version v.
-- ARGV: tid, v, rid, owner, limit, fields (JSON object: priority, notes...), chain.
-- Returns {'gone'}, {'stale'}, {'state', st}, {'dropped'} or {'moved', entry[, agent,
-- key, scanned]}.
local tid = ARGV[1]
local tkey = P .. ':t:' .. tid
local t = hgetall(tkey)
if t.st == nil then return {'gone'} end
if t.v ~= ARGV[2] then return {'stale'} end
if t.st ~= 'waiting' then return {'state', t.st} end
local chain = cjson.decode(ARGV[7])
redis.call('ZREM', P .. ':q:' .. t.q, tid)
local pick = choose(chain)
if pick == nil then
  drop_waiting(tid, t)
  return {'dropped'}
end
clear_timers(tid, t)
local hset = {'HSET', tkey, 'v', tostring(tonumber(t.v) + 1)}
put_fields(t, cjson.decode(ARGV[6]), hset)
local e = chain[pick]
enter(tid, t, e, hset)
local r = take_task(tid, t, ARGV[3], e.lease, ARGV[4], e.strategy, tonumber(ARGV[5]), hset)
queue_if_waiting(tid, t, hset)
if r == nil then return {'moved', pick} end
return {'moved', pick, r[1], r[2], r[3]}
