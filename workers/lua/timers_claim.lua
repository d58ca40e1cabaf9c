-- Claim the timers due now: move them from due to processing (scored by the claim time) and
-- answer each id with its data, in one step, so that two schedulers never fire one timer twice.
-- KEYS: 1 due(zset), 2 processing(zset), 3 data(hash); ARGV: 1 now_ms, 2 limit, 3 claim ms
-- Returns a flat array: id, data JSON, id, data JSON, ...
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[3], id)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[3], id)
end
return out
