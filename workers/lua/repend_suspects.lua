-- Put back in pending every target whose ambiguous write (timed out, connection dropped)
-- has had time to land late at klikit: it is written again, under a new key (nonce bump),
-- so that a late landing of the old write cannot leave klikit on an older value.
-- KEYS: 1 suspect(zset target -> due ms), 2 desired, 3 pending, 4 nonce
-- ARGV: 1 now_ms
-- Returns the number of targets put back.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local back = 0
for _, target in ipairs(due) do
  if redis.call('HEXISTS', KEYS[2], target) == 1 then
    redis.call('HINCRBY', KEYS[4], target, 1)
    redis.call('ZADD', KEYS[3], 'NX', ARGV[1], target)
    back = back + 1
  end
  redis.call('ZREM', KEYS[1], target)
end
return back
