-- Put back in pending every target whose ambiguous write (timed out, connection dropped)
-- has had time to land late at klikit: it is written again, under a new key (nonce bump),
-- so that a late landing of the old write cannot leave klikit on an older value.
-- KEYS: 1 suspect(zset target -> due ms), 2 desired, 3 pending, 4 nonce,
--       5 attention index of pending work, 6 attention index of suspects (zset business -> ms)
-- ARGV: 1 now_ms, 2 business id
-- The suspect index entry of the business moves to its earliest remaining due time (or goes).
-- Returns the number of targets put back.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local back = 0
for _, target in ipairs(due) do
  if redis.call('HEXISTS', KEYS[2], target) == 1 then
    redis.call('HINCRBY', KEYS[4], target, 1)
    if redis.call('ZADD', KEYS[3], 'NX', ARGV[1], target) == 1 then
      redis.call('ZADD', KEYS[5], 'LT', ARGV[1], ARGV[2])
    end
    back = back + 1
  end
  redis.call('ZREM', KEYS[1], target)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then redis.call('ZADD', KEYS[6], first[2], ARGV[2]) else redis.call('ZREM', KEYS[6], ARGV[2]) end
return back
