"""Lua scripts behind :mod:`routing.redis_store`. Each runs atomically inside Redis.

Every state change of a shared agent or task happens in one of these scripts,
so two server processes can never reserve the same agent slot or hand one task
to two agents: a script re-checks the task's status and the agent's free
capacity under Redis' single-threaded execution before it writes.

Key layout (P is the prefix, wrapped in a {hash tag} so every key of one
deployment lives in one cluster slot):

    P:a:<agent>          hash  sk="skill=level,..." grp="g1,g2" cap="voice=1,web=3"
                               pres, reason, soft (0/1), l:<channel> (slots used),
                               idle (idle sequence), idx (channels indexed on), cnt, rona
    P:av:<ch>:<skill>    zset  routable agents having <skill>, scored by idle sequence
    P:av:<ch>:           zset  every routable agent of the channel
    P:t:<task>           hash  st (waiting/reserved/assigned/wrap_up), q, ch, req, pref,
                               grp, pri, created, seq, key, res, agent, rej, pa, ans
    P:q:<queue>          zset  waiting task ids by sort key (smaller = served first)
    P:r:<reservation>    hash  task, agent, ch, q, owner
    P:leases             zset  reservation ids (and "w:<task>" wrap-ups) by expiry time
    P:seq                counter for idle sequence numbers
    P:log                list  audit trail (only when auditing is on)
"""

from __future__ import annotations

COMMON = r"""
local P = KEYS[1]
local EXCL = {__EXCL__}
local AUDIT = __AUDIT__

local function kv(s)
  local t = {}
  if s and s ~= '' then
    for k, v in string.gmatch(s, '([^,=]+)=([^,]+)') do t[k] = tonumber(v) end
  end
  return t
end

local function set(s)
  local t = {}
  if s and s ~= '' then for x in string.gmatch(s, '[^,]+') do t[x] = true end end
  return t
end

local function hgetall(key)
  local r = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #r, 2 do t[r[i]] = r[i + 1] end
  return t
end

local function audit(...)
  if AUDIT then redis.call('RPUSH', P .. ':log', table.concat({...}, ' ')) end
end

local function routable(a)
  local out = {}
  if a.pres ~= 'available' then return out end
  local cap = kv(a.cap)
  local busy = false
  for ch, _ in pairs(cap) do
    local l = tonumber(a['l:' .. ch] or '0')
    if l > 0 then
      busy = true
      if EXCL[ch] then return {} end
    end
  end
  for ch, c in pairs(cap) do
    local l = tonumber(a['l:' .. ch] or '0')
    if c > l and not (EXCL[ch] and busy) and not (ch == 'voice' and a.soft ~= '1') then
      out[ch] = true
    end
  end
  return out
end

local function reindex(aid, restart)
  local akey = P .. ':a:' .. aid
  local a = hgetall(akey)
  if a.cap == nil then return end
  local old = set(a.idx)
  local new = routable(a)
  local moved = restart
  for ch, _ in pairs(new) do if not old[ch] then moved = true end end
  local skills = kv(a.sk)
  local seq = tonumber(a.idle or '0')
  if moved then
    seq = redis.call('INCR', P .. ':seq')
    redis.call('HSET', akey, 'idle', seq)
  end
  for ch, _ in pairs(old) do
    if not new[ch] then
      redis.call('ZREM', P .. ':av:' .. ch .. ':', aid)
      for s, _ in pairs(skills) do redis.call('ZREM', P .. ':av:' .. ch .. ':' .. s, aid) end
    end
  end
  local list = {}
  for ch, _ in pairs(new) do
    list[#list + 1] = ch
    if moved or not old[ch] then
      redis.call('ZADD', P .. ':av:' .. ch .. ':', seq, aid)
      for s, _ in pairs(skills) do redis.call('ZADD', P .. ':av:' .. ch .. ':' .. s, seq, aid) end
    end
  end
  table.sort(list)
  redis.call('HSET', akey, 'idx', table.concat(list, ','))
end

local function eligible(skills, groups, aid, t)
  for s, lvl in pairs(kv(t.req)) do
    if (skills[s] or 0) < lvl then return false end
  end
  if t.grp and t.grp ~= '' then
    local ok = false
    for g, _ in pairs(set(t.grp)) do if groups[g] then ok = true break end end
    if not ok then return false end
  end
  if t.rej and t.rej ~= '' and set(t.rej)[aid] then return false end
  if t.only and t.only ~= '' and t.only ~= aid then return false end
  return true
end

local function agent_routable_on(aid, ch)
  local idx = redis.call('HGET', P .. ':a:' .. aid, 'idx')
  return idx and set(idx)[ch] or false
end

local function do_reserve(tid, t, aid, rid, lease, owner)
  redis.call('HSET', P .. ':t:' .. tid, 'st', 'reserved', 'res', rid, 'agent', aid)
  redis.call('ZREM', P .. ':q:' .. t.q, tid)
  redis.call('HINCRBY', P .. ':a:' .. aid, 'l:' .. t.ch, 1)
  reindex(aid, false)
  redis.call('HSET', P .. ':r:' .. rid, 'task', tid, 'agent', aid, 'ch', t.ch, 'q', t.q,
             'owner', owner)
  redis.call('ZADD', P .. ':leases', lease, rid)
  audit('res', rid, tid, aid, t.ch)
end

local function release(rid, mode, now)
  local r = hgetall(P .. ':r:' .. rid)
  if r.task == nil then return nil end
  local akey = P .. ':a:' .. r.agent
  local tkey = P .. ':t:' .. r.task
  redis.call('DEL', P .. ':r:' .. rid)
  redis.call('ZREM', P .. ':leases', rid)
  redis.call('HINCRBY', akey, 'l:' .. r.ch, -1)
  audit('rel', rid, r.task, r.agent, r.ch, mode)
  if mode == 'rona' then
    redis.call('HSET', akey, 'pres', 'not_ready', 'reason', 'rona')
    redis.call('HINCRBY', akey, 'rona', 1)
  end
  if mode == 'cancel' then
    redis.call('DEL', tkey)
  else
    local t = hgetall(tkey)
    local rej = t.rej or ''
    if mode == 'reject' then
      if rej == '' then rej = r.agent else rej = rej .. ',' .. r.agent end
    end
    redis.call('HSET', tkey, 'st', 'waiting', 'res', '', 'agent', '', 'rej', rej)
    redis.call('ZADD', P .. ':q:' .. t.q, t.key, r.task)
  end
  reindex(r.agent, false)
  return {r.task, r.agent}
end

local function finish(tid)
  local tkey = P .. ':t:' .. tid
  local t = hgetall(tkey)
  if t.st ~= 'assigned' and t.st ~= 'wrap_up' then return nil end
  redis.call('HINCRBY', P .. ':a:' .. t.agent, 'l:' .. t.ch, -1)
  redis.call('ZREM', P .. ':leases', 'w:' .. tid)
  redis.call('DEL', tkey)
  audit('end', tid, t.agent, t.ch)
  reindex(t.agent, true)
  return t.agent
end
"""

UPSERT_AGENT = r"""
-- ARGV: aid, sk, grp, cap, ordinal. Static fields are (re)written; state is kept,
-- so every process may register the same configured agents at start.
local akey = P .. ':a:' .. ARGV[1]
redis.call('HSET', akey, 'sk', ARGV[2], 'grp', ARGV[3], 'cap', ARGV[4], 'ord', ARGV[5])
redis.call('HSETNX', akey, 'pres', 'offline')
redis.call('HSETNX', akey, 'soft', '0')
redis.call('HSETNX', akey, 'cnt', '0')
reindex(ARGV[1], false)
return 1
"""

REMOVE_AGENT = r"""
local akey = P .. ':a:' .. ARGV[1]
redis.call('HSET', akey, 'pres', 'offline')
reindex(ARGV[1], false)
redis.call('DEL', akey)
return 1
"""

SET_FIELD = r"""
-- ARGV: aid, field, value [, field, value]: presence / reason / softphone changes.
local akey = P .. ':a:' .. ARGV[1]
if redis.call('EXISTS', akey) == 0 then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', akey, ARGV[i], ARGV[i + 1]) end
reindex(ARGV[1], false)
return 1
"""

ENQUEUE = r"""
-- ARGV: tid, queue, sortkey, then field/value pairs of the task hash.
local tkey = P .. ':t:' .. ARGV[1]
if redis.call('EXISTS', tkey) == 1 then return 0 end
redis.call('HSET', tkey, 'st', 'waiting', 'q', ARGV[2], 'key', ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', tkey, ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', P .. ':q:' .. ARGV[2], ARGV[3], ARGV[1])
audit('enq', ARGV[1], ARGV[2])
return 1
"""

TAKE_FOR_TASK = r"""
-- Longest-idle task-first decision, entirely server side.
-- ARGV: tid, rid, lease, owner, scan_limit
local tid = ARGV[1]
local t = hgetall(P .. ':t:' .. tid)
if t.st ~= 'waiting' then return {'task'} end
local function try(aid)
  local a = redis.call('HMGET', P .. ':a:' .. aid, 'sk', 'grp')
  return a[1] and eligible(kv(a[1]), set(a[2]), aid, t)
end
if t.pa and t.pa ~= '' and agent_routable_on(t.pa, t.ch) and try(t.pa) then
  do_reserve(tid, t, t.pa, ARGV[2], ARGV[3], ARGV[4])
  return {'ok', t.pa, 'preferred', 1}
end
if t.only and t.only ~= '' then return {'none', 0} end
local best = P .. ':av:' .. t.ch .. ':'
local bestn = redis.call('ZCARD', best)
for s, _ in pairs(kv(t.req)) do
  local k = P .. ':av:' .. t.ch .. ':' .. s
  local n = redis.call('ZCARD', k)
  if n < bestn then best = k; bestn = n end
end
local limit = tonumber(ARGV[5])
local start, scanned = 0, 0
while scanned < limit do
  local ids = redis.call('ZRANGE', best, start, start + 99)
  if #ids == 0 then break end
  for _, aid in ipairs(ids) do
    scanned = scanned + 1
    if try(aid) then
      do_reserve(tid, t, aid, ARGV[2], ARGV[3], ARGV[4])
      return {'ok', aid, 'longest_idle', scanned}
    end
  end
  start = start + 100
end
return {'none', scanned}
"""

ELIGIBLE_AGENTS = r"""
-- For the other strategies: every eligible routable agent (up to a limit) with the
-- dynamic fields the strategies need; the caller ranks, then RESERVE re-checks.
-- ARGV: tid, limit
local t = hgetall(P .. ':t:' .. ARGV[1])
if t.st ~= 'waiting' then return {} end
local best = P .. ':av:' .. t.ch .. ':'
local bestn = redis.call('ZCARD', best)
for s, _ in pairs(kv(t.req)) do
  local k = P .. ':av:' .. t.ch .. ':' .. s
  local n = redis.call('ZCARD', k)
  if n < bestn then best = k; bestn = n end
end
local out = {}
local ids = redis.call('ZRANGE', best, 0, tonumber(ARGV[2]) - 1)
for _, aid in ipairs(ids) do
  local a = hgetall(P .. ':a:' .. aid)
  if a.sk and eligible(kv(a.sk), set(a.grp), aid, t) then
    local load = {}
    for ch, _ in pairs(kv(a.cap)) do load[#load + 1] = ch .. '=' .. (a['l:' .. ch] or '0') end
    out[#out + 1] = {aid, a.idle or '0', a.cnt or '0', table.concat(load, ','), a.ord or '0'}
  end
end
return out
"""

RESERVE = r"""
-- ARGV: tid, aid, rid, lease, owner. Re-checks everything under the script's atomicity.
local tid, aid = ARGV[1], ARGV[2]
local t = hgetall(P .. ':t:' .. tid)
if t.st ~= 'waiting' then return 'task' end
if not agent_routable_on(aid, t.ch) then return 'agent' end
local a = redis.call('HMGET', P .. ':a:' .. aid, 'sk', 'grp')
if not eligible(kv(a[1]), set(a[2]), aid, t) then return 'agent' end
do_reserve(tid, t, aid, ARGV[3], ARGV[4], ARGV[5])
return 'ok'
"""

TAKE_FOR_AGENT = r"""
-- Agent-first decision, entirely server side: the first eligible waiting task of
-- each queue (queues are kept in priority order), then the best of those by
-- effective priority (priority + aging + queue weight), then age, then arrival.
-- ARGV: aid, rid, lease, owner, now, scan_limit, then (queue, rate, weight) triples
local aid = ARGV[1]
local a = hgetall(P .. ':a:' .. aid)
if a.sk == nil then return {'none'} end
local chans = set(a.idx)
if next(chans) == nil then return {'none'} end
local skills, groups = kv(a.sk), set(a.grp)
local now, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
local best, bt, beff, bq = nil, nil, nil, nil
local considered = 0
for i = 7, #ARGV, 3 do
  local q, rate, weight = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local start, scanned, found = 0, 0, false
  while not found and scanned < limit do
    local ids = redis.call('ZRANGE', P .. ':q:' .. q, start, start + 49)
    if #ids == 0 then break end
    for _, tid in ipairs(ids) do
      scanned = scanned + 1
      local f = redis.call('HMGET', P .. ':t:' .. tid, 'ch', 'req', 'grp', 'rej', 'only', 'pri',
                           'created', 'seq')
      local t = {ch = f[1], req = f[2], grp = f[3], rej = f[4], only = f[5]}
      if t.ch and chans[t.ch] and eligible(skills, groups, aid, t) then
        local pri, created = tonumber(f[6]), tonumber(f[7])
        local eff = pri + rate * math.max(0, now - created) + weight
        local key = {-eff, created, tonumber(f[8])}
        considered = considered + 1
        if best == nil or key[1] < best[1] or (key[1] == best[1] and (key[2] < best[2]
            or (key[2] == best[2] and key[3] < best[3]))) then
          best, bt, beff, bq = key, tid, eff, q
        end
        found = true
        break
      end
    end
    start = start + 50
  end
end
if best == nil then return {'none'} end
local t = hgetall(P .. ':t:' .. bt)
do_reserve(bt, t, aid, ARGV[2], ARGV[3], ARGV[4])
return {'ok', bt, bq, tostring(beff), considered}
"""

RELEASE = r"""
-- ARGV: rid, mode (reject | rona | revoke | cancel | expire), now
local r = release(ARGV[1], ARGV[2], ARGV[3])
if r == nil then return {} end
return r
"""

ACCEPT = r"""
-- ARGV: rid, now
local r = hgetall(P .. ':r:' .. ARGV[1])
if r.task == nil then return 0 end
redis.call('HSET', P .. ':t:' .. r.task, 'st', 'assigned', 'res', '', 'ans', ARGV[2])
redis.call('DEL', P .. ':r:' .. ARGV[1])
redis.call('ZREM', P .. ':leases', ARGV[1])
redis.call('HINCRBY', P .. ':a:' .. r.agent, 'cnt', 1)
audit('acc', ARGV[1], r.task, r.agent)
return 1
"""

COMPLETE = r"""
-- ARGV: tid, wrap_lease ('' = no wrap-up: the slot frees now)
local tkey = P .. ':t:' .. ARGV[1]
local st = redis.call('HGET', tkey, 'st')
if st ~= 'assigned' then return {'state', st or 'gone'} end
if ARGV[2] ~= '' then
  redis.call('HSET', tkey, 'st', 'wrap_up')
  redis.call('ZADD', P .. ':leases', ARGV[2], 'w:' .. ARGV[1])
  return {'wrap_up', redis.call('HGET', tkey, 'agent')}
end
return {'done', finish(ARGV[1])}
"""

END_WRAP = r"""
-- ARGV: tid
local tkey = P .. ':t:' .. ARGV[1]
if redis.call('HGET', tkey, 'st') ~= 'wrap_up' then return false end
return finish(ARGV[1])
"""

CANCEL = r"""
-- ARGV: tid, now. Returns {phase, agent or ''}.
local tkey = P .. ':t:' .. ARGV[1]
local t = hgetall(tkey)
if t.st == nil then return {'gone', ''} end
if t.st == 'waiting' then
  redis.call('ZREM', P .. ':q:' .. t.q, ARGV[1])
  redis.call('DEL', tkey)
  audit('can', ARGV[1])
  return {'waiting', ''}
end
if t.st == 'reserved' then
  local r = release(t.res, 'cancel', ARGV[2])
  return {'reserved', r and r[2] or ''}
end
return {t.st, finish(ARGV[1]) or ''}
"""

EXPIRE = r"""
-- Leases past due belong to a process that died: reservations go back to their
-- queue (the agent keeps their presence), wrap-ups end. ARGV: now, limit
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
return out
"""


def build(body: str, exclusive: frozenset[str], audit: bool) -> str:
    excl = ", ".join(f"[{ch!r}] = true" for ch in sorted(exclusive))
    common = COMMON.replace("__EXCL__", excl).replace("__AUDIT__", "true" if audit else "false")
    return common + body
