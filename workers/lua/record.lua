-- Record a batch of changes for ONE business. Keeps, per target, the newest
-- desired value by version; an older (or equal) change is dropped and counted.
-- KEYS: 1 desired, 2 dver, 3 cid, 4 aver, 5 pending(zset), 6 seq, 7 stats, 8 dead, 9 businesses
-- ARGV: 1 now_ms, 2 business_id, then groups of 5: target, event_ms, value_json, change_id, expect_version|""
-- Returns one version per change: the assigned version if it won, "" if it was superseded.
local now = tonumber(ARGV[1])
local out = {}
local won, lost = 0, 0
for i = 3, #ARGV, 5 do
  local target, event_ms, value, cid, expect = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local current = redis.call('HGET', KEYS[2], target)
  local ok = true
  if expect ~= '' and current ~= expect then ok = false end
  local version = ''
  if ok then
    local seq = redis.call('INCR', KEYS[6])
    version = string.format('%015d.%012d', event_ms, seq)
    if current and current >= version then ok = false end
  end
  if ok then
    redis.call('HSET', KEYS[1], target, value)
    redis.call('HSET', KEYS[2], target, version)
    redis.call('HSET', KEYS[3], target, cid)
    redis.call('HDEL', KEYS[8], target)
    local applied = redis.call('HGET', KEYS[4], target)
    if (not applied) or applied < version then
      redis.call('ZADD', KEYS[5], 'NX', now, target)
    end
    won = won + 1
    table.insert(out, version)
  else
    lost = lost + 1
    table.insert(out, '')
  end
end
if won > 0 then redis.call('HINCRBY', KEYS[7], 'recorded', won) end
if lost > 0 then redis.call('HINCRBY', KEYS[7], 'superseded', lost) end
redis.call('SADD', KEYS[9], ARGV[2])
return out
