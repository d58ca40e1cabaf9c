-- A successful write asks for a publish of its business.
-- KEYS: 1 state hash, 2 stores set, 3 generation counter (never reset: keys stay unique),
--       4 attention index of publishes (zset business -> newest sign of life, ms; see sweeper.py)
-- ARGV: 1 now_ms, 2 quiet_ms, 3 business id, then store keys ("brand:branch", or "*" for every store)
-- Returns 1 when the caller must send the (single) publish message, 0 when one is pending.
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'gen', redis.call('INCR', KEYS[3]))
redis.call('HSETNX', KEYS[1], 'first', now)
redis.call('HSET', KEYS[1], 'due', now + tonumber(ARGV[2]), 'last_write', now)
for i = 4, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
if redis.call('HSETNX', KEYS[1], 'scheduled', now) == 1 then
  redis.call('ZADD', KEYS[4], 'LT', now, ARGV[3])  -- the earliest time wins: never late
  return 1
end
return 0
