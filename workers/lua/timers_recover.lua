-- Move timers claimed at or before a cut-off (their scheduler died) back to due.
-- KEYS: 1 processing(zset), 2 due(zset); ARGV: 1 cut-off ms, 2 now_ms (their new due time)
-- Returns how many were moved.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], 'NX', ARGV[2], id)
end
return #ids
