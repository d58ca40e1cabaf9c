-- Claim the businesses whose periodic read-back is due, and move each to its next time, in one
-- step, so that two schedulers never both send one. Businesses not yet in the index join it at
-- their spread first time (ZADD NX: a known business keeps its place). A claimed business moves
-- on by whole intervals from its own due time, so the spread survives a scheduler's downtime.
-- When the interval changed, the index is rebuilt from the spread first times.
-- KEYS: 1 due index (zset business -> ms), 2 the interval the index was built with
-- ARGV: 1 now_ms, 2 interval ms, 3 limit, then pairs: business id, first due ms
-- Returns the business ids claimed.
local now, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('GET', KEYS[2]) ~= ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[2])
end
for i = 4, #ARGV, 2 do redis.call('ZADD', KEYS[1], 'NX', ARGV[i + 1], ARGV[i]) end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i = 1, #due, 2 do
  local business, at = due[i], tonumber(due[i + 1])
  local nxt = at + interval * (math.floor((now - at) / interval) + 1)
  redis.call('ZADD', KEYS[1], nxt, business)
  table.insert(out, business)
end
return out
