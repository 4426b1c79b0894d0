"""Lua scripts behind :mod:`routing.redis_store`. Each runs atomically inside Redis.

Every state change of a shared agent or task happens in one of these scripts,
so two server processes can never reserve the same agent slot or hand one task
to two agents: a script re-checks the task's status and the agent's free
capacity under Redis' single-threaded execution before it writes.

Key layout (P is the prefix, wrapped in a {hash tag} so every key of one
deployment lives in one cluster slot):

    P:a:<agent>          hash  s:<skill>=level per skill, sk="skill=level,..." (for the
                               index upkeep), grp="g1,g2", cap="voice=1,web=3"
                               pres, reason, soft (0/1), l:<channel> (slots used),
                               idle (idle sequence), idx (channels indexed on), cnt, rona
    P:av:<ch>:<skill>    zset  routable agents having <skill>, scored by idle sequence
    P:av:<ch>:           zset  every routable agent of the channel
    P:avl:<ch>:<skill>:<level>
                         zset  routable agents with exactly that level, scored by idle
                               sequence (only for skills that longest-idle and
                               most-skilled queues require)
    P:t:<task>           hash  st (waiting/reserved/assigned/wrap_up), q, ch, req, pref,
                               grp, pri, created, seq, key, res, agent, rej, pa, ans
    P:q:<queue>          zset  waiting task ids by sort key (smaller = served first)
    P:r:<reservation>    hash  task, agent, ch, q, owner
    P:leases             zset  reservation ids (and "w:<task>" wrap-ups) by expiry time
    P:seq                counter for idle sequence numbers
    P:rr:<queue>         round-robin position (last agent ordinal) of a queue
    P:log                list  audit trail (only when auditing is on)
"""

from __future__ import annotations

COMMON = r"""
local P = KEYS[1]
local EXCL = {__EXCL__}
-- skills ('' = none) required by round-robin queues: they get an ordinal-ordered index
local RRS = {__RRS__}
-- skills required by longest-idle or most-skilled queues: per-level buckets in idle order
local LVS = {__LVS__}
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
      for s, lvl in pairs(skills) do
        redis.call('ZREM', P .. ':av:' .. ch .. ':' .. s, aid)
        if LVS[s] then redis.call('ZREM', P .. ':avl:' .. ch .. ':' .. s .. ':' .. lvl, aid) end
      end
      if RRS[''] then redis.call('ZREM', P .. ':ao:' .. ch .. ':', aid) end
      for s, _ in pairs(skills) do
        if RRS[s] then redis.call('ZREM', P .. ':ao:' .. ch .. ':' .. s, aid) end
      end
    end
  end
  local list = {}
  for ch, _ in pairs(new) do
    list[#list + 1] = ch
    if moved or not old[ch] then
      redis.call('ZADD', P .. ':av:' .. ch .. ':', seq, aid)
      for s, lvl in pairs(skills) do
        redis.call('ZADD', P .. ':av:' .. ch .. ':' .. s, seq, aid)
        if LVS[s] then
          redis.call('ZADD', P .. ':avl:' .. ch .. ':' .. s .. ':' .. lvl, seq, aid)
        end
      end
    end
    if not old[ch] then
      local ord = tonumber(a.ord or '0')
      if RRS[''] then redis.call('ZADD', P .. ':ao:' .. ch .. ':', ord, aid) end
      for s, _ in pairs(skills) do
        if RRS[s] then redis.call('ZADD', P .. ':ao:' .. ch .. ':' .. s, ord, aid) end
      end
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

local function less(a, b)
  for i = 1, #a do
    if a[i] < b[i] then return true end
    if a[i] > b[i] then return false end
  end
  return false
end

-- Task-first decision for every strategy, server side. Candidates come in idle order:
-- one required skill -> its bucket; several -> ZINTER of their buckets (scored by the
-- idle sequence); none -> the channel's bucket. An agent reaching the strategy's lowest
-- possible key prefix wins outright (later agents are idle for less time).
local function take_task(tid, t, rid, lease, owner, strategy, limit)
  local names, levels, fields = {}, {}, {}
  for s, lvl in pairs(kv(t.req)) do
    names[#names + 1] = s; levels[#levels + 1] = lvl; fields[#fields + 1] = 's:' .. s
  end
  local pref = kv(t.pref)
  local pnames = {}
  for s, lvl in pairs(pref) do pnames[#pnames + 1] = s; fields[#fields + 1] = 's:' .. s end
  local nreq, npref = #names, #pnames
  local base = #fields
  for _, f in ipairs({'grp', 'idle', 'cnt', 'ord', 'cap', 'l:voice', 'l:web', 'l:email',
                      'l:fax'}) do
    fields[#fields + 1] = f
  end
  local tgrp, rej = set(t.grp), set(t.rej)
  local has_grp = next(tgrp) ~= nil
  local only = t.only or ''
  local rr_last = 0
  if strategy == 'round_robin' then
    rr_last = tonumber(redis.call('GET', P .. ':rr:' .. t.q) or '0')
  end

  local function check(aid)
    if rej[aid] or (only ~= '' and only ~= aid) then return nil end
    local v = redis.call('HMGET', P .. ':a:' .. aid, unpack(fields))
    for i = 1, nreq do
      if (tonumber(v[i]) or 0) < levels[i] then return nil end
    end
    if has_grp then
      local ok = false
      for g, _ in pairs(set(v[base + 1])) do if tgrp[g] then ok = true break end end
      if not ok then return nil end
    end
    local pm, score = 0, 0
    for i = 1, nreq do score = score + 2 * tonumber(v[i]) end
    for j = 1, npref do
      local lvl = tonumber(v[nreq + j]) or 0
      score = score + lvl
      if lvl >= pref[pnames[j]] then pm = pm + 1 end
    end
    local idle = tonumber(v[base + 2]) or 0
    if strategy == 'longest_idle' then return {-pm, idle} end
    if strategy == 'most_skilled' then return {-score, idle} end
    if strategy == 'fewest_contacts' then return {-pm, tonumber(v[base + 3]) or 0, idle} end
    if strategy == 'least_occupied' then
      local occ, cap = 0, kv(v[base + 5])
      local loads = {voice = v[base + 6], web = v[base + 7], email = v[base + 8],
                     fax = v[base + 9]}
      for ch, c in pairs(cap) do
        if c > 0 then occ = occ + (tonumber(loads[ch]) or 0) / c end
      end
      return {-pm, occ, idle}
    end
    local ord = tonumber(v[base + 4]) or 0
    return {-pm, ord > rr_last and 0 or 1, ord}
  end

  local floor
  if strategy == 'most_skilled' then floor = {-(20 * nreq + 10 * npref)}
  elseif strategy == 'round_robin' then floor = {-npref, 0, rr_last + 1}
  elseif strategy == 'longest_idle' then floor = {-npref}
  else floor = {-npref, 0} end

  local best, bestkey, scanned = nil, nil, 0
  local function consider(aid)
    scanned = scanned + 1
    local key = check(aid)
    if key and (bestkey == nil or less(key, bestkey)) then
      best, bestkey = aid, key
      for i = 1, #floor do
        if key[i] > floor[i] then return false end
        if key[i] < floor[i] then return true end
      end
      return true
    end
    return false
  end

  -- round robin without preferred skills: walk the ordinal index from the last pick
  local rr_index = nil
  if strategy == 'round_robin' and npref == 0 then
    if nreq == 0 and RRS[''] then rr_index = P .. ':ao:' .. t.ch .. ':' end
    for i = 1, nreq do
      if RRS[names[i]] then rr_index = P .. ':ao:' .. t.ch .. ':' .. names[i] break end
    end
  end

  -- the preferred agent first, when free and eligible
  if t.pa and t.pa ~= '' and agent_routable_on(t.pa, t.ch) and check(t.pa) then
    best, bestkey = t.pa, {0}
  elseif only ~= '' then
    return nil
  elseif rr_index then
    -- the first eligible agent after the last pick, wrapping around, is the answer
    for _, range in ipairs({{'(' .. rr_last, '+inf'}, {'-inf', rr_last}}) do
      local offset = 0
      while best == nil and scanned < limit do
        local ids = redis.call('ZRANGE', rr_index, range[1], range[2], 'BYSCORE', 'LIMIT',
                               offset, 100)
        if #ids == 0 then break end
        for _, aid in ipairs(ids) do
          scanned = scanned + 1
          local key = check(aid)
          if key then best, bestkey = aid, key break end
        end
        offset = offset + 100
      end
      if best ~= nil then break end
    end
  elseif nreq == 1 and npref == 0 and strategy == 'longest_idle' and LVS[names[1]] then
    -- one level-indexed skill: the first eligible agent of each level bucket from the
    -- minimum up (each in idle order); the lowest idle sequence among them wins. Agents
    -- below the minimum level, who stay idle longest, are never examined.
    local bestidle = nil
    for lvl = levels[1], 10 do
      local bucket = P .. ':avl:' .. t.ch .. ':' .. names[1] .. ':' .. lvl
      local start, done = 0, false
      while not done and scanned < limit do
        local ids = redis.call('ZRANGE', bucket, start, start + 15, 'WITHSCORES')
        if #ids == 0 then break end
        for i = 1, #ids, 2 do
          if bestidle ~= nil and tonumber(ids[i + 1]) > bestidle then done = true break end
          scanned = scanned + 1
          local key = check(ids[i])
          if key then
            if bestkey == nil or less(key, bestkey) then
              best, bestkey, bestidle = ids[i], key, key[2]
            end
            done = true
            break
          end
          if scanned >= limit then done = true break end
        end
        start = start + 16
      end
    end
  elseif nreq == 1 and npref == 0 and strategy == 'most_skilled' and LVS[names[1]] then
    -- one level-indexed skill, score = 2 x level: the first eligible agent (idle order)
    -- of the highest level that has one wins; lower levels are never examined.
    for lvl = 10, levels[1], -1 do
      local bucket = P .. ':avl:' .. t.ch .. ':' .. names[1] .. ':' .. lvl
      local start = 0
      while best == nil and scanned < limit do
        local ids = redis.call('ZRANGE', bucket, start, start + 15)
        if #ids == 0 then break end
        for _, aid in ipairs(ids) do
          scanned = scanned + 1
          local key = check(aid)
          if key then best, bestkey = aid, key break end
          if scanned >= limit then break end
        end
        start = start + 16
      end
      if best ~= nil or scanned >= limit then break end
    end
  elseif nreq >= 2 and strategy ~= 'longest_idle' then
    -- full-scan strategies: only agents holding every required skill
    local keys = {}
    for i = 1, nreq do keys[i] = P .. ':av:' .. t.ch .. ':' .. names[i] end
    local ids = redis.call('ZINTER', nreq, unpack(keys))
    for _, aid in ipairs(ids) do
      if consider(aid) or scanned >= limit then break end
    end
  else
    -- idle order, first eligible wins: scan the smallest required bucket
    local bucket = P .. ':av:' .. t.ch .. ':' .. (names[1] or '')
    if nreq >= 2 then
      local size = redis.call('ZCARD', bucket)
      for i = 2, nreq do
        local k = P .. ':av:' .. t.ch .. ':' .. names[i]
        local n = redis.call('ZCARD', k)
        if n < size then bucket, size = k, n end
      end
    end
    local start, done = 0, false
    while not done and scanned < limit do
      local ids = redis.call('ZRANGE', bucket, start, start + 99)
      if #ids == 0 then break end
      for _, aid in ipairs(ids) do
        if consider(aid) or scanned >= limit then done = true break end
      end
      start = start + 100
    end
  end
  if best == nil then return nil end
  if strategy == 'round_robin' then
    redis.call('SET', P .. ':rr:' .. t.q, redis.call('HGET', P .. ':a:' .. best, 'ord'))
  end
  do_reserve(tid, t, best, rid, lease, owner)
  local parts = {}
  for i = 1, #bestkey do parts[i] = tostring(bestkey[i]) end
  return {best, table.concat(parts, ','), scanned}
end

-- Agent-first decision (see TAKE_FOR_AGENT for the arguments A).
local function take_for_agent(aid, A)
  local akey = P .. ':a:' .. aid
  if redis.call('EXISTS', akey) == 0 then return {} end
  local sk = redis.call('HMGET', akey, 'sk', 'grp')
  local skills, groups = kv(sk[1]), set(sk[2])
  local now, limit, max_takes = tonumber(A[3]), tonumber(A[4]), tonumber(A[5])
  local out = {}
  for take = 1, max_takes do
    local chans = set(redis.call('HGET', akey, 'idx'))
    if next(chans) == nil then break end
    local best, bt, beff, bq, blease = nil, nil, nil, nil, nil
    local considered = 0
    for i = 7, #A, 4 do
      local q, rate, weight = A[i], tonumber(A[i + 1]), tonumber(A[i + 2])
      local start, scanned, found = 0, 0, false
      while not found and scanned < limit do
        local ids = redis.call('ZRANGE', P .. ':q:' .. q, start, start + 49)
        if #ids == 0 then break end
        for _, tid in ipairs(ids) do
          scanned = scanned + 1
          local f = redis.call('HMGET', P .. ':t:' .. tid, 'ch', 'req', 'grp', 'rej', 'only',
                               'pri', 'created', 'seq')
          local t = {ch = f[1], req = f[2], grp = f[3], rej = f[4], only = f[5]}
          if t.ch and chans[t.ch] and eligible(skills, groups, aid, t) then
            local pri, created = tonumber(f[6]), tonumber(f[7])
            local eff = pri + rate * math.max(0, now - created) + weight
            local key = {-eff, created, tonumber(f[8])}
            considered = considered + 1
            if best == nil or less(key, best) then
              best, bt, beff, bq, blease = key, tid, eff, q, A[i + 3]
            end
            found = true
            break
          end
        end
        start = start + 50
      end
    end
    if best == nil then break end
    local t = hgetall(P .. ':t:' .. bt)
    local rid = A[6] .. '-' .. take
    do_reserve(bt, t, aid, rid, blease, A[2])
    out[#out + 1] = {bt, bq, tostring(beff), considered, rid, t.ch, t.req, t.pref or '', t.pri}
  end
  return out
end
"""

UPSERT_AGENT = r"""
-- ARGV: aid, sk, grp, cap, ordinal, then skill/level pairs. Static fields are (re)written;
-- state is kept, so every process may register the same configured agents at start.
local akey = P .. ':a:' .. ARGV[1]
redis.call('HSET', akey, 'sk', ARGV[2], 'grp', ARGV[3], 'cap', ARGV[4], 'ord', ARGV[5])
for i = 6, #ARGV, 2 do redis.call('HSET', akey, 's:' .. ARGV[i], ARGV[i + 1]) end
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
-- A task arrives: store it, queue it, and run the task-first decision, in one step.
-- ARGV: tid, queue, sortkey, rid, lease, owner, strategy, limit, then field/value pairs.
local tid = ARGV[1]
local tkey = P .. ':t:' .. tid
if redis.call('EXISTS', tkey) == 1 then return {0} end
-- One HSET for every field, and the task table built from the same arguments (no
-- read-back): each redis.call costs, and this script runs for every arrival.
local t = {st = 'waiting', q = ARGV[2], key = ARGV[3]}
local hset = {'HSET', tkey, 'st', 'waiting', 'q', ARGV[2], 'key', ARGV[3]}
for i = 9, #ARGV, 2 do
  t[ARGV[i]] = ARGV[i + 1]
  hset[#hset + 1] = ARGV[i]
  hset[#hset + 1] = ARGV[i + 1]
end
redis.call(unpack(hset))
redis.call('ZADD', P .. ':q:' .. ARGV[2], ARGV[3], tid)
audit('enq', tid, ARGV[2])
local r = take_task(tid, t, ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]))
if r == nil then return {1} end
return {1, r[1], r[2], r[3]}
"""

TAKE_FOR_TASK = r"""
-- Task-first decision for a task already waiting (back after a reject, RONA, expiry).
-- ARGV: tid, rid, lease, owner, strategy, limit
local t = hgetall(P .. ':t:' .. ARGV[1])
if t.st ~= 'waiting' then return {'task'} end
local r = take_task(ARGV[1], t, ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]))
if r == nil then return {'none'} end
return {'ok', r[1], r[2], r[3]}
"""

TAKE_FOR_AGENT = r"""
-- Agent-first decision, entirely server side, repeated while the agent has free slots:
-- the first eligible waiting task of each queue (queues are kept in priority order),
-- then the best of those by effective priority (priority + aging + queue weight), then
-- age, then arrival. ARGV: aid, owner, now, scan_limit, max_takes, rid_base (reservation
-- ids are rid_base-1, rid_base-2...), then (queue, rate, weight, lease) quadruples.
return take_for_agent(ARGV[1], ARGV)
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
return r.agent
"""

COMPLETE = r"""
-- The contact ended: wrap-up (the slot stays taken, leased) or free the slot now and
-- run the agent-first decision in the same step. ARGV: tid, now, lease_grace, then the
-- TAKE_FOR_AGENT arguments from position 4 (aid placeholder, owner, now, ...).
-- Wrap-up seconds come from the task's 'wrap' field.
local tkey = P .. ':t:' .. ARGV[1]
local f = redis.call('HMGET', tkey, 'st', 'wrap', 'agent')
if f[1] ~= 'assigned' then return {'state', f[1] or 'gone'} end
local wrap = tonumber(f[2] or '0')
if wrap > 0 then
  redis.call('HSET', tkey, 'st', 'wrap_up')
  redis.call('ZADD', P .. ':leases', tonumber(ARGV[2]) + wrap + tonumber(ARGV[3]),
             'w:' .. ARGV[1])
  return {'wrap_up', f[3], tostring(wrap)}
end
local agent = finish(ARGV[1])
local A = {}
for i = 4, #ARGV do A[#A + 1] = ARGV[i] end
return {'done', agent, take_for_agent(agent, A)}
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


def build(
    body: str,
    exclusive: frozenset[str],
    audit: bool,
    rr_skills: frozenset[str] = frozenset(),
    level_skills: frozenset[str] = frozenset(),
) -> str:
    """One script: the shared functions, configured, followed by ``body``."""
    excl = ", ".join(f"[{ch!r}] = true" for ch in sorted(exclusive))
    rrs = ", ".join(f"[{s!r}] = true" for s in sorted(rr_skills))
    lvs = ", ".join(f"[{s!r}] = true" for s in sorted(level_skills))
    common = (
        COMMON.replace("__EXCL__", excl)
        .replace("__RRS__", rrs)
        .replace("__LVS__", lvs)
        .replace("__AUDIT__", "true" if audit else "false")
    )
    return common + body
