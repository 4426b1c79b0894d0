-- What is due at `now`, for whichever process asks. Leases past due belong to a process
-- that died: reservations go back to their queue (the agent keeps their presence),
-- wrap-ups end. Queue timers (escalation steps, max wait, preferred-agent window) are
-- claimed here, once, by one process, which applies them; a timer of an earlier queue
-- epoch (the task moved on) is dropped. ARGV: now, limit. Returns
-- {{kind, task, agent}...} for leases and {{task, timer kind, task hash}...} for timers.
local due = redis.call('ZRANGEBYSCORE', P .. ':leases', '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, m in ipairs(due) do
  if string.sub(m, 1, 2) == 'w:' then
    local tid = string.sub(m, 3)
    local agent = finish(tid)
    redis.call('ZREM', P .. ':leases', m)
    if agent then out[#out + 1] = {'wrap', tid, agent} end
  else
    local r = release(m, 'expire', ARGV[1])
    if r then out[#out + 1] = {'res', r[1], r[2]} end
  end
end
local fired = {}
local timers = redis.call('ZRANGEBYSCORE', P .. ':timers', '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(timers) do
  redis.call('ZREM', P .. ':timers', m)
  local tid, ep, kind = string.match(m, '^(.*)|([^|]*)|([^|]*)$')
  if tid then
    local flat = redis.call('HGETALL', P .. ':t:' .. tid)
    for i = 1, #flat, 2 do
      if flat[i] == 'ep' then
        if flat[i + 1] == ep then fired[#fired + 1] = {tid, kind, flat} end
        break
      end
    end
  end
end
return {out, fired}
