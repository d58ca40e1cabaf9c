-- Settle targets after a klikit call: mark them applied (or dead-lettered) at a
-- version, and drop them from pending unless a newer change arrived meanwhile.
-- The business leaves the sweeper's pending index once nothing is pending (a later change files it
-- again), so an idle business that was busy a moment ago is not claimed for nothing.
-- KEYS: 1 dver, 2 aver, 3 pending, 4 stats, 5 dead, 6 attention index of pending work
-- ARGV: 1 now_ms, 2 mode ("applied" | "dead"), 3 dead_letter_id, 4 business id,
--       then pairs: target, version
-- Returns, per target, the age in ms since it became pending (-1 if it stays pending).
local now = tonumber(ARGV[1])
local mode = ARGV[2]
local out = {}
local settled = 0
for i = 5, #ARGV, 2 do
  local target, version = ARGV[i], ARGV[i + 1]
  if mode == 'applied' then
    local applied = redis.call('HGET', KEYS[2], target)
    if (not applied) or applied < version then redis.call('HSET', KEYS[2], target, version) end
  end
  local desired = redis.call('HGET', KEYS[1], target)
  local age = -1
  if (not desired) or desired <= version then
    local since = redis.call('ZSCORE', KEYS[3], target)
    if since then age = now - tonumber(since) end
    redis.call('ZREM', KEYS[3], target)
    if mode == 'dead' then redis.call('HSET', KEYS[5], target, ARGV[3]) end
    settled = settled + 1
  end
  table.insert(out, age)
end
if settled > 0 then
  redis.call('HINCRBY', KEYS[4], mode, settled)
  if redis.call('ZCARD', KEYS[3]) == 0 then redis.call('ZREM', KEYS[6], ARGV[4]) end
end
return out
