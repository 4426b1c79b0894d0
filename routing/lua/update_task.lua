-- An escalation step or the end of the preferred-agent window, computed by the caller
-- from the task as read at version v: write it only if nobody changed the task since
-- (else {'stale'}: read again and recompute), then, if waiting, reposition it and run
-- the task-first decision. ARGV: tid, v, rid, owner, limit, lease, strategy, fields
-- (JSON object). Returns {'gone'}, {'stale'}, {'state', st} or {'ok', st[, agent, key,
-- scanned]}.
local tid = ARGV[1]
local tkey = P .. ':t:' .. tid
local t = hgetall(tkey)
if t.st == nil then return {'gone'} end
if t.v ~= ARGV[2] then return {'stale'} end
if t.st ~= 'waiting' and t.st ~= 'reserved' then return {'state', t.st} end
local hset = {'HSET', tkey, 'v', tostring(tonumber(t.v) + 1)}
put_fields(t, cjson.decode(ARGV[8]), hset)
redis.call(unpack(hset))
if t.st == 'waiting' then
  redis.call('ZADD', P .. ':q:' .. t.q, t.key, tid)
  local r = take_task(tid, t, ARGV[3], ARGV[6], ARGV[4], ARGV[7], tonumber(ARGV[5]))
  if r then return {'ok', 'waiting', r[1], r[2], r[3]} end
end
return {'ok', t.st}
