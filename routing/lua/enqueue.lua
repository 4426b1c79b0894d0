-- A task arrives: store it in the first queue of its overflow chain with room, and run
-- the task-first decision, in one step. ARGV: tid, rid, owner, limit, the task's own
-- fields (JSON list field, value, ...), the chain (JSON, see enter). Returns {0} (task
-- exists), {2} (every queue full: refused, nothing stored), {1, entry} (waiting) or
-- {1, entry, agent, key, scanned} (offered).
local tid = ARGV[1]
local tkey = P .. ':t:' .. tid
if redis.call('EXISTS', tkey) == 1 then return {0} end
local chain = cjson.decode(ARGV[6])
local pick = choose(chain)
if pick == nil then return {2} end
-- One HSET for every field, and the task table built from the same arguments (no
-- read-back): each redis.call costs, and this script runs for every arrival.
local t = {st = 'waiting', v = '1'}
local hset = {'HSET', tkey, 'st', 'waiting', 'v', '1'}
local own = cjson.decode(ARGV[5])
for i = 1, #own, 2 do
  t[own[i]] = own[i + 1]
  hset[#hset + 1] = own[i]
  hset[#hset + 1] = own[i + 1]
end
local e = chain[pick]
enter(tid, t, e, hset)
audit('enq', tid, e.q)
local r = take_task(tid, t, ARGV[2], e.lease, ARGV[3], e.strategy, tonumber(ARGV[4]), hset)
queue_if_waiting(tid, t, hset)
if r == nil then return {1, pick} end
return {1, pick, r[1], r[2], r[3]}
