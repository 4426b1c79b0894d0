-- ARGV: tid, now. Returns {phase, agent or ''}.
local tkey = P .. ':t:' .. ARGV[1]
local t = hgetall(tkey)
if t.st == nil then return {'gone', ''} end
if t.st == 'waiting' then
  drop_waiting(ARGV[1], t)
  return {'waiting', ''}
end
if t.st == 'reserved' then
  local r = release(t.res, 'cancel', ARGV[2])
  return {'reserved', r and r[2] or ''}
end
return {t.st, finish(ARGV[1]) or ''}
