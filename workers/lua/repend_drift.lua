-- After a read-back of klikit's published menus: put drifted targets back in pending under a
-- new idempotency key (nonce bump) and count the repairs of each: a repair within the window
-- of the previous one at the same version counts on, otherwise the count starts again. All of it
-- only if the read-back still describes the ledger: nothing was
-- written since the publish whose snapshot was read (no publish state), and each target is
-- still applied at the version that was compared (not pending, not dead-lettered, no newer
-- change). Otherwise the target is left alone: the stores read are added to the pending publish,
-- so that the read-back after it reads them again (else a write to another store could hide this
-- drift until the periodic read-back).
-- KEYS: 1 dver, 2 aver, 3 pending(zset), 4 nonce, 5 drift(hash target -> "version|repairs|last ms"),
--       6 dead, 7 publish state hash, 8 flush dirty flag, 9 flush scheduled flag, 10 publish stores set,
--       11 attention index of pending work (zset business -> ms), 12 write generation counter
-- ARGV: 1 now_ms, 2 max repairs, 3 flag ttl ms, 4 repair window ms, 5 number of stores read S,
--       6 business id, 7 write generation when the reading started ("" = unknown), then S store
--       keys, then pairs: target, version
-- Returns {"busy"} when a write landed since the publish; {"stale"} when a write landed and was
-- published while the menus were being read (the reading may predate it); else {send, repended count,
-- repended targets..., persistent targets...}: send is "send" when the caller must send the
-- flush message; a persistent target drifted again after max repairs and is not re-pended.
local stores = tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[7]) == 1 then
  for i = 8, 7 + stores do redis.call('SADD', KEYS[10], ARGV[i]) end
  return {'busy'}
end
if ARGV[7] ~= '' and (redis.call('GET', KEYS[12]) or '0') ~= ARGV[7] then return {'stale'} end
local now, max_repairs, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local repended, persistent = {}, {}
for i = 8 + stores, #ARGV, 2 do
  local target, version = ARGV[i], ARGV[i + 1]
  local settled = redis.call('HGET', KEYS[1], target) == version
    and redis.call('HGET', KEYS[2], target) == version
    and redis.call('HEXISTS', KEYS[6], target) == 0
    and not redis.call('ZSCORE', KEYS[3], target)
  if settled then
    local repairs = 1
    local seen = redis.call('HGET', KEYS[5], target)
    if seen then
      local seen_version, count, last = string.match(seen, '^([^|]+)|(%d+)|(%d+)$')
      if seen_version == version and now - tonumber(last) <= window then repairs = tonumber(count) + 1 end
    end
    if repairs > max_repairs then
      redis.call('HDEL', KEYS[5], target)
      table.insert(persistent, target)
    else
      redis.call('HSET', KEYS[5], target, version .. '|' .. repairs .. '|' .. now)
      redis.call('HINCRBY', KEYS[4], target, 1)
      if redis.call('ZADD', KEYS[3], 'NX', now, target) == 1 then redis.call('ZADD', KEYS[11], 'LT', now, ARGV[6]) end
      table.insert(repended, target)
    end
  end
end
local send = ''
if #repended > 0 then
  local ttl = tonumber(ARGV[3])
  redis.call('SET', KEYS[8], 1, 'PX', ttl * 4)
  if redis.call('SET', KEYS[9], now, 'NX', 'PX', ttl) then send = 'send' end
end
local out = {send, #repended}
for _, t in ipairs(repended) do table.insert(out, t) end
for _, t in ipairs(persistent) do table.insert(out, t) end
return out
