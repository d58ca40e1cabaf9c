-- After the sweeper looked at ONE business: file it again in each attention index at its real
-- raw time, read in the same step as the state it describes (so a change landing meanwhile is
-- never lost): the oldest pending since, the earliest suspect due, the newest sign of life of a
-- scheduled publish (max of "scheduled" and "first"). An index with nothing to say drops it.
-- KEYS: 1 pending(zset), 2 suspect(zset), 3 publish state hash,
--       4 pending index, 5 suspect index, 6 publish index
-- ARGV: 1 business id, 2 the pending entry's lowest score ('' for none: the sweeper holds back a
--       business whose flush it cannot help before then; a new pending target files it earlier)
local b = ARGV[1]
local function file(index, at)
  if at then redis.call('ZADD', index, at, b) else redis.call('ZREM', index, b) end
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
if oldest and ARGV[2] and ARGV[2] ~= '' then oldest = math.max(tonumber(oldest), tonumber(ARGV[2])) end
file(KEYS[4], oldest)
file(KEYS[5], redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2])
local scheduled, first = unpack(redis.call('HMGET', KEYS[3], 'scheduled', 'first'))
local life = nil
if scheduled then life = math.max(tonumber(scheduled), tonumber(first or 0) or 0) end
file(KEYS[6], life)
return 1
