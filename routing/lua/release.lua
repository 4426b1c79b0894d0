-- ARGV: rid, mode (reject | rona | revoke | cancel | expire), now
local r = release(ARGV[1], ARGV[2], ARGV[3])
if r == nil then return {} end
return r
