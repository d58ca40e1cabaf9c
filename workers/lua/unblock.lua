-- Put dead-lettered targets back in pending (operator replay). A target whose
-- desired version moved past the dead-lettered one is left alone: newer wins.
-- KEYS: 1 dver, 2 pending, 3 dead, 4 nonce, 5 attention index of pending work (zset business -> ms)
-- ARGV: 1 now_ms, 2 bump_nonce ("1" | "0"), 3 business id, then pairs: target, version
-- Returns the number of targets put back.
local now = tonumber(ARGV[1])
local back = 0
for i = 4, #ARGV, 2 do
  local target, version = ARGV[i], ARGV[i + 1]
  local desired = redis.call('HGET', KEYS[1], target)
  if desired == version then
    redis.call('HDEL', KEYS[3], target)
    if redis.call('ZADD', KEYS[2], 'NX', now, target) == 1 then redis.call('ZADD', KEYS[5], 'LT', now, ARGV[3]) end
    if ARGV[2] == '1' then redis.call('HINCRBY', KEYS[4], target, 1) end
    back = back + 1
  end
end
return back
