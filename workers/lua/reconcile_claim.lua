-- Claim the businesses whose periodic read-back is due, and move each to its next time, in one
-- step, so that two schedulers never both send one. Businesses not yet in the index join it at
-- their spread first time (ZADD NX: a known business keeps its place).
-- KEYS: 1 due index (zset business -> ms)
-- ARGV: 1 now_ms, 2 interval ms, 3 limit, then pairs: business id, first due ms
-- Returns the business ids claimed.
local now, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 4, #ARGV, 2 do redis.call('ZADD', KEYS[1], 'NX', ARGV[i + 1], ARGV[i]) end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, business in ipairs(due) do redis.call('ZADD', KEYS[1], now + interval, business) end
return due
