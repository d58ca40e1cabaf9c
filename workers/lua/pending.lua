-- Read the pending targets of ONE business, oldest first, with each one's desired value,
-- version, change id and nonce taken in the same step. Reading them apart lets a record
-- land in between and pair an older value with a newer version (the flush would then
-- write the old value and settle the new version as applied).
-- KEYS: 1 pending(zset), 2 desired, 3 dver, 4 cid, 5 nonce
-- ARGV: 1 limit
-- Returns a flat array of 6-tuples: target, pending since ms, value, version, change id, nonce.
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #members, 2 do
  local target = members[i]
  local value = redis.call('HGET', KEYS[2], target)
  local version = redis.call('HGET', KEYS[3], target)
  if value and version then
    table.insert(out, target)
    table.insert(out, members[i + 1])
    table.insert(out, value)
    table.insert(out, version)
    table.insert(out, redis.call('HGET', KEYS[4], target) or '')
    table.insert(out, redis.call('HGET', KEYS[5], target) or '0')
  end
end
return out
