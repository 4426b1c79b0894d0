-- Functions shared by every routing script (see routing/redis_lua.py for the key layout).
-- The loader puts this file after a generated header of per-deployment constants and
-- before one script's body, so these are in scope here:
--   EXCL  channels that take the whole agent (a call), as a set
--   RRS   skills ('' = none) required by round-robin queues: ordinal-ordered indexes
--   LVS   skills required by longest-idle or most-skilled queues: per-level buckets
--   ANY   whether any queue can route a task without required skills (P:av:<ch>: buckets)
--   IDX   skills that queues require: only these have agent buckets. Every task requires
--         at least one of them (or none at all, then ANY holds); a task's other required
--         skills (a language from the IVR) are matched through the holder sets P:has:<skill>
--   AUDIT whether decisions are appended to P:log
--   W_REQ, W_PREF, MAX_LEVEL  the most-skilled score's weights (routing.matching, the
--         formula's one definition) and the top skill level (routing.config)
local P = KEYS[1]

-- Parsed "k=v,..." strings, memoised for this script call: a scan parses the same few
-- capacity and requirement strings for every agent or task it examines, and pattern
-- matching is slow next to a table lookup. Callers never modify the tables returned.
local KV = {}
local function kv(s)
  if not s then return {} end
  local t = KV[s]
  if t then return t end
  t = {}
  if s ~= '' then
    for k, v in string.gmatch(s, '([^,=]+)=([^,]+)') do t[k] = tonumber(v) end
  end
  KV[s] = t
  return t
end

local SETS = {}  -- the same for "a,b,..." strings
local function set(s)
  if not s then return {} end
  local t = SETS[s]
  if t then return t end
  t = {}
  if s ~= '' then for x in string.gmatch(s, '[^,]+') do t[x] = true end end
  SETS[s] = t
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

local AFIELDS = {'pres', 'cap', 'soft', 'sk', 'idx', 'ord', 'l:voice', 'l:web', 'l:email',
                 'l:fax', 'grp'}

-- Bring the agent's routable channels (idx) up to date. Joining a channel, or a
-- restart of the idle time (a contact ended), gives a new idle sequence and adds the
-- agent to every bucket of each routable channel; leaving one only updates idx.
-- Returns the new idx and the AFIELDS values read, so that an agent-first decision in
-- the same script need not read the agent again (nil for an unknown agent).
local function reindex(aid, restart)
  local akey = P .. ':a:' .. aid
  local v = redis.call('HMGET', akey, unpack(AFIELDS))
  if not v[2] then return nil end
  local a = {pres = v[1], cap = v[2], soft = v[3], ['l:voice'] = v[7], ['l:web'] = v[8],
             ['l:email'] = v[9], ['l:fax'] = v[10]}
  local old = set(v[5])
  local new = routable(a)
  local moved = restart
  local list = {}
  for ch, _ in pairs(new) do
    list[#list + 1] = ch
    if not old[ch] then moved = true end
  end
  table.sort(list)
  local idx = table.concat(list, ',')
  if not moved then
    if idx ~= (v[5] or '') then redis.call('HSET', akey, 'idx', idx) end
    return idx, v
  end
  local seq = redis.call('INCR', P .. ':seq')
  redis.call('HSET', akey, 'idle', seq, 'idx', idx)
  local skills = kv(v[4])
  for ch, _ in pairs(new) do
    local base = P .. ':av:' .. ch .. ':'
    if ANY then redis.call('ZADD', base, seq, aid) end
    for s, lvl in pairs(skills) do
      if IDX[s] then
        redis.call('ZADD', base .. s, seq, aid)
        if LVS[s] then
          redis.call('ZADD', P .. ':avl:' .. ch .. ':' .. s .. ':' .. lvl, seq, aid)
        end
      end
    end
    if not old[ch] then
      local ord = tonumber(v[6] or '0')
      if RRS[''] then redis.call('ZADD', P .. ':ao:' .. ch .. ':', ord, aid) end
      for s, _ in pairs(skills) do
        if RRS[s] then redis.call('ZADD', P .. ':ao:' .. ch .. ':' .. s, ord, aid) end
      end
    end
  end
  return idx, v
end

-- Remove the agent from every bucket and holder set (agent removed, or skills/capacity
-- changed).
local function unindex_all(aid, sk, cap)
  local skills = kv(sk)
  for s, _ in pairs(skills) do redis.call('ZREM', P .. ':has:' .. s, aid) end
  for ch, _ in pairs(kv(cap)) do
    redis.call('ZREM', P .. ':av:' .. ch .. ':', aid)
    redis.call('ZREM', P .. ':ao:' .. ch .. ':', aid)
    for s, lvl in pairs(skills) do
      redis.call('ZREM', P .. ':av:' .. ch .. ':' .. s, aid)
      redis.call('ZREM', P .. ':ao:' .. ch .. ':' .. s, aid)
      redis.call('ZREM', P .. ':avl:' .. ch .. ':' .. s .. ':' .. lvl, aid)
    end
  end
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

local function clear_timers(tid, t)
  if t.tk and t.tk ~= '' then
    local members = {}
    for kind in string.gmatch(t.tk, '[^,]+') do
      members[#members + 1] = tid .. '|' .. (t.ep or '0') .. '|' .. kind
    end
    redis.call('ZREM', P .. ':timers', unpack(members))
  end
end

-- Append a decoded JSON object of task fields to the pending HSET and to t.
local function put_fields(t, fields, hset)
  for k, v in pairs(fields) do
    t[k] = v
    hset[#hset + 1] = k
    hset[#hset + 1] = v
  end
end

-- hset: the pending HSET of a task that is entering its queue in this script (see
-- enter): the reservation joins that one write, and the task was never queued.
local function do_reserve(tid, t, aid, rid, lease, owner, hset)
  if hset then
    put_fields(t, {st = 'reserved', res = rid, agent = aid}, hset)
  else
    redis.call('HSET', P .. ':t:' .. tid, 'st', 'reserved', 'res', rid, 'agent', aid)
    redis.call('ZREM', P .. ':q:' .. t.q, tid)
  end
  redis.call('HINCRBY', P .. ':a:' .. aid, 'l:' .. t.ch, 1)
  local idx = reindex(aid, false)
  redis.call('HSET', P .. ':r:' .. rid, 'task', tid, 'agent', aid, 'ch', t.ch, 'q', t.q,
             'owner', owner)
  redis.call('ZADD', P .. ':leases', lease, rid)
  audit('res', rid, tid, aid, t.ch)
  return idx
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
    local f = redis.call('HMGET', tkey, 'tk', 'ep')
    clear_timers(r.task, {tk = f[1], ep = f[2]})
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

-- The contact of task tid ended: free its slot. t: the task's st, agent, ch, tk and ep
-- fields when the caller has read them already. Returns the agent, then what reindex
-- returns.
local function finish(tid, t)
  local tkey = P .. ':t:' .. tid
  if not t then
    local f = redis.call('HMGET', tkey, 'st', 'agent', 'ch', 'tk', 'ep')
    t = {st = f[1], agent = f[2], ch = f[3], tk = f[4], ep = f[5]}
  end
  if t.st ~= 'assigned' and t.st ~= 'wrap_up' then return nil end
  redis.call('HINCRBY', P .. ':a:' .. t.agent, 'l:' .. t.ch, -1)
  if t.st == 'wrap_up' then redis.call('ZREM', P .. ':leases', 'w:' .. tid) end
  clear_timers(tid, t)
  redis.call('DEL', tkey)
  audit('end', tid, t.agent, t.ch)
  local idx, v = reindex(t.agent, true)
  return t.agent, idx, v
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
local function take_task(tid, t, rid, lease, owner, strategy, limit, hset)
  local names, levels = {}, {}
  for s, lvl in pairs(kv(t.req)) do names[#names + 1] = s; levels[#levels + 1] = lvl end
  local pref = kv(t.pref)
  local pnames = {}
  for s, _ in pairs(pref) do pnames[#pnames + 1] = s end
  local nreq, npref = #names, #pnames
  local inames = {}
  for i = 1, nreq do if IDX[names[i]] then inames[#inames + 1] = names[i] end end
  local tgrp, rej = set(t.grp), set(t.rej)
  local has_grp = next(tgrp) ~= nil
  local only = t.only or ''
  local rr_last = 0
  if strategy == 'round_robin' then
    rr_last = tonumber(redis.call('GET', P .. ':rr:' .. t.q) or '0')
  end
  -- One read per agent: the eligibility fields (f1), then the preferred skills and what
  -- the strategy's key needs (all of it: fall), or f1 alone when the bucket score is the
  -- key. Each redis.call has a fixed cost that dwarfs a few extra fields, so a second
  -- HMGET for the agents that pass eligibility would cost more than reading their key
  -- fields up front for everyone scanned.
  local f1 = {}
  for i = 1, nreq do f1[i] = 's:' .. names[i] end
  f1[nreq + 1] = 'idx'
  local n1 = nreq + 1
  if has_grp then f1[nreq + 2] = 'grp'; n1 = nreq + 2 end
  local extra = {'idle'}
  if strategy == 'least_occupied' then
    extra = {'idle', 'cap', 'l:voice', 'l:web', 'l:email', 'l:fax'}
  elseif strategy == 'fewest_contacts' then extra = {'idle', 'cnt'}
  elseif strategy == 'round_robin' then extra = {'ord'} end
  local fall = {}
  for i = 1, n1 do fall[i] = f1[i] end
  for j = 1, npref do fall[#fall + 1] = 's:' .. pnames[j] end
  for _, f in ipairs(extra) do fall[#fall + 1] = f end
  -- longest idle without preferred skills: the key is the bucket score (idle sequence)
  local score_is_key = strategy == 'longest_idle' and npref == 0

  local chpat = ',' .. t.ch .. ','
  -- The agent's sort key, or nil when not eligible; stale = no longer routable on the
  -- channel (the buckets are lazy), so the caller may drop it from the bucket it scans.
  -- `idle`: the agent's score in an idle-ordered bucket, when the caller has it.
  local function check(aid, idle)
    if rej[aid] or (only ~= '' and only ~= aid) then return nil end
    local short = score_is_key and idle
    local v = redis.call('HMGET', P .. ':a:' .. aid, unpack(short and f1 or fall))
    if not string.find(',' .. (v[nreq + 1] or '') .. ',', chpat, 1, true) then
      return nil, true
    end
    local score = 0
    for i = 1, nreq do
      local lvl = tonumber(v[i]) or 0
      if lvl < levels[i] then return nil end
      score = score + W_REQ * lvl
    end
    if has_grp then
      local ok = false
      for g, _ in pairs(set(v[nreq + 2])) do if tgrp[g] then ok = true break end end
      if not ok then return nil end
    end
    if short then return {0, idle} end
    local pm = 0
    for j = 1, npref do
      local lvl = tonumber(v[n1 + j]) or 0
      score = score + W_PREF * lvl
      if lvl >= pref[pnames[j]] then pm = pm + 1 end
    end
    local x = n1 + npref
    if strategy == 'round_robin' then
      local ord = tonumber(v[x + 1]) or 0
      return {-pm, ord > rr_last and 0 or 1, ord}
    end
    local own_idle = tonumber(v[x + 1]) or 0
    if strategy == 'longest_idle' then return {-pm, own_idle} end
    if strategy == 'most_skilled' then return {-score, own_idle} end
    if strategy == 'fewest_contacts' then return {-pm, tonumber(v[x + 2]) or 0, own_idle} end
    local occ, cap = 0, kv(v[x + 2])
    local loads = {voice = v[x + 3], web = v[x + 4], email = v[x + 5], fax = v[x + 6]}
    for ch, c in pairs(cap) do
      if c > 0 then occ = occ + (tonumber(loads[ch]) or 0) / c end
    end
    return {-pm, occ, own_idle}
  end

  local floor
  if strategy == 'most_skilled' then floor = {-MAX_LEVEL * (W_REQ * nreq + W_PREF * npref)}
  elseif strategy == 'round_robin' then floor = {-npref, 0, rr_last + 1}
  elseif strategy == 'longest_idle' then floor = {-npref}
  else floor = {-npref, 0} end

  local best, bestkey, scanned, dropped = nil, nil, 0, 0
  local function consider(aid, bucket, idle)
    scanned = scanned + 1
    local key, stale = check(aid, idle)
    if stale and bucket then
      redis.call('ZREM', bucket, aid)
      dropped = dropped + 1
    end
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
        local dropped = 0
        for _, aid in ipairs(ids) do
          scanned = scanned + 1
          local key, stale = check(aid)
          if key then best, bestkey = aid, key break end
          if stale then
            redis.call('ZREM', rr_index, aid)
            dropped = dropped + 1
          end
        end
        offset = offset + 100 - dropped
      end
      if best ~= nil then break end
    end
  elseif npref == 0 and strategy == 'longest_idle' and #inames == 1 and LVS[inames[1]] then
    -- one level-indexed skill: the first eligible agent of each level bucket from the
    -- minimum up (each in idle order); the lowest idle sequence among them wins. Agents
    -- below the minimum level, who stay idle longest, are never examined. Once a level
    -- has given a candidate, the next levels are read only below its idle sequence
    -- (BYSCORE), and the first read of a level is short: its head usually decides.
    -- Other required skills (a language from the IVR) have no buckets: each level
    -- bucket is intersected, in C, with their holder sets, which is far cheaper than
    -- intersecting the skill's whole bucket (every level) and keeps idle order. (Checking
    -- only the entries below the best idle sequence one by one instead, once a level has
    -- given a candidate, measured slower: most of them lack the other skill.)
    local minlvl, others = 1, nil
    for i = 1, nreq do
      if names[i] == inames[1] then
        minlvl = levels[i]
      else
        others = others or {}
        others[#others + 1] = P .. ':has:' .. names[i]
      end
    end
    local bestidle = nil
    for lvl = minlvl, MAX_LEVEL do
      if scanned >= limit then break end
      local bucket = P .. ':avl:' .. t.ch .. ':' .. inames[1] .. ':' .. lvl
      local start, size, done = 0, 4, false
      while not done and scanned < limit do
        local ids
        if others then
          local cmd = {'ZINTER', 1 + #others, bucket}
          for _, k in ipairs(others) do cmd[#cmd + 1] = k end
          cmd[#cmd + 1] = 'WEIGHTS'
          cmd[#cmd + 1] = 1
          for _ = 1, #others do cmd[#cmd + 1] = 0 end
          cmd[#cmd + 1] = 'WITHSCORES'
          ids = redis.call(unpack(cmd))
          done = true  -- the intersection comes whole: one pass
        elseif bestidle then
          ids = redis.call('ZRANGE', bucket, '-inf', '(' .. bestidle, 'BYSCORE', 'LIMIT', start,
                           size, 'WITHSCORES')
        else
          ids = redis.call('ZRANGE', bucket, start, start + size - 1, 'WITHSCORES')
        end
        if #ids == 0 then break end
        local dropped = 0
        for i = 1, #ids, 2 do
          local idle = tonumber(ids[i + 1])
          if bestidle ~= nil and idle > bestidle then done = true break end
          scanned = scanned + 1
          local key, stale = check(ids[i], idle)
          if key then
            if bestkey == nil or less(key, bestkey) then
              best, bestkey, bestidle = ids[i], key, key[2]
            end
            done = true
            break
          end
          if stale then
            redis.call('ZREM', bucket, ids[i])
            dropped = dropped + 1
          end
          if scanned >= limit then done = true break end
        end
        start = start + size - dropped
        size = 16
      end
    end
  elseif nreq == 1 and npref == 0 and strategy == 'most_skilled' and LVS[names[1]] then
    -- one level-indexed skill, score = W_REQ x level: the first eligible agent (idle order)
    -- of the highest level that has one wins; lower levels are never examined.
    for lvl = MAX_LEVEL, levels[1], -1 do
      local bucket = P .. ':avl:' .. t.ch .. ':' .. names[1] .. ':' .. lvl
      local start = 0
      while best == nil and scanned < limit do
        local ids = redis.call('ZRANGE', bucket, start, start + 15)
        if #ids == 0 then break end
        local dropped = 0
        for _, aid in ipairs(ids) do
          scanned = scanned + 1
          local key, stale = check(aid)
          if key then best, bestkey = aid, key break end
          if stale then
            redis.call('ZREM', bucket, aid)
            dropped = dropped + 1
          end
          if scanned >= limit then break end
        end
        start = start + 16 - dropped
      end
      if best ~= nil or scanned >= limit then break end
    end
  elseif nreq >= 2 or #inames < nreq then
    -- several required skills: intersect, in C, the routable agents of an indexed skill
    -- (the smallest bucket; its scores give the idle order) with the other indexed
    -- buckets and the static holder sets (P:has:<skill>) of the skills without buckets,
    -- so only agents holding every required skill are examined one by one
    local first = P .. ':av:' .. t.ch .. ':' .. (inames[1] or '')
    local size = redis.call('ZCARD', first)
    for i = 2, #inames do
      local k = P .. ':av:' .. t.ch .. ':' .. inames[i]
      local n = redis.call('ZCARD', k)
      if n < size then first, size = k, n end
    end
    local keys, weights = {first}, {1}
    for i = 1, #inames do
      local k = P .. ':av:' .. t.ch .. ':' .. inames[i]
      if k ~= first then keys[#keys + 1] = k; weights[#weights + 1] = 0 end
    end
    for i = 1, nreq do
      if not IDX[names[i]] then
        keys[#keys + 1] = P .. ':has:' .. names[i]; weights[#weights + 1] = 0
      end
    end
    local cmd = {'ZINTER', #keys}
    for _, k in ipairs(keys) do cmd[#cmd + 1] = k end
    cmd[#cmd + 1] = 'WEIGHTS'
    for _, w in ipairs(weights) do cmd[#cmd + 1] = w end
    -- The result comes in idle order either way; the scores (formatted as text, one per
    -- member) are only worth fetching when the idle sequence is the strategy's key.
    local step = 1
    if score_is_key then
      cmd[#cmd + 1] = 'WITHSCORES'
      step = 2
    end
    local ids = redis.call(unpack(cmd))
    for i = 1, #ids, step do
      local idle = step == 2 and tonumber(ids[i + 1]) or nil
      if consider(ids[i], first, idle) or scanned >= limit then break end
    end
  else
    -- one indexed required skill, or none: its bucket (or the channel's) in idle order;
    -- longest idle takes the first eligible agent
    local bucket = P .. ':av:' .. t.ch .. ':' .. (inames[1] or '')
    local start, done = 0, false
    while not done and scanned < limit do
      local ids = redis.call('ZRANGE', bucket, start, start + 99, 'WITHSCORES')
      if #ids == 0 then break end
      local before = dropped
      for i = 1, #ids, 2 do
        if consider(ids[i], bucket, tonumber(ids[i + 1])) or scanned >= limit then
          done = true
          break
        end
      end
      start = start + 100 - (dropped - before)
    end
  end
  if best == nil then return nil end
  if strategy == 'round_robin' then
    redis.call('SET', P .. ':rr:' .. t.q, redis.call('HGET', P .. ':a:' .. best, 'ord'))
  end
  do_reserve(tid, t, best, rid, lease, owner, hset)
  local parts = {}
  for i = 1, #bestkey do parts[i] = tostring(bestkey[i]) end
  return {best, table.concat(parts, ','), scanned}
end

-- Agent-first decision (see take_for_agent.lua for the arguments A). idx, v: what reindex
-- returned for the agent in this script, if it ran (saves reading the agent again).
local function take_for_agent(aid, A, idx, v)
  local akey = P .. ':a:' .. aid
  if not v then
    local r = redis.call('HMGET', akey, 'sk', 'idx', 'grp')
    if not r[1] then return {} end  -- unknown agent
    v, idx = {[4] = r[1], [11] = r[3]}, r[2]
  end
  local skills, groups = kv(v[4]), set(v[11])
  local now, limit, max_takes = tonumber(A[3]), tonumber(A[4]), tonumber(A[5])
  local out = {}
  for take = 1, max_takes do
    local chans = set(idx)
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
    idx = do_reserve(bt, t, aid, rid, blease, A[2])
    out[#out + 1] = {bt, bq, tostring(beff), considered, rid, t.ch, t.req, t.pref or '', t.pri,
                     t.notes or '', t.qat or '0'}
  end
  return out
end

-- Queue entry (arrival, overflow, move). A chain entry (decoded JSON) names a queue and
-- everything the task needs there: {q, max (max size, -1 = none), key, req, pref, grp,
-- strategy, lease, wrap, qat, only, hops, timers = {{due, kind}, ...}}. The first entry
-- whose queue has room wins; nil when every queue of the chain is full.
local function choose(chain)
  for i, e in ipairs(chain) do
    if e.max < 0 or redis.call('ZCARD', P .. ':q:' .. e.q) < e.max then return i end
  end
  return nil
end

-- Put the task in entry e's queue: appends the fields to the pending HSET command,
-- updates t and arms its timers under a new queue epoch. The caller adds the task to the
-- queue's sorted set (queue_if_waiting) after its task-first decision: a task offered at
-- once never enters the set, which saves a ZADD and a ZREM on most arrivals.
local function enter(tid, t, e, hset)
  local ep = tostring(tonumber(t.ep or '0') + 1)
  local kinds = {}
  for _, tm in ipairs(e.timers) do
    redis.call('ZADD', P .. ':timers', tm[1], tid .. '|' .. ep .. '|' .. tm[2])
    kinds[#kinds + 1] = tm[2]
  end
  put_fields(t, {q = e.q, key = e.key, req = e.req, pref = e.pref, grp = e.grp, wrap = e.wrap,
                 qat = e.qat, only = e.only, hops = tostring(e.hops), ep = ep, steps = '0',
                 rej = '', tk = table.concat(kinds, ',')}, hset)
end

-- Write the pending HSET of an entering task and queue it unless it was reserved.
local function queue_if_waiting(tid, t, hset)
  redis.call(unpack(hset))
  if t.st == 'waiting' then redis.call('ZADD', P .. ':q:' .. t.q, t.key, tid) end
end

local function drop_waiting(tid, t)
  redis.call('ZREM', P .. ':q:' .. t.q, tid)
  clear_timers(tid, t)
  redis.call('DEL', P .. ':t:' .. tid)
  audit('drop', tid)
end
