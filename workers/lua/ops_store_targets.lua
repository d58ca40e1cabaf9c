-- After klikit reset the store overrides of some stores: the ledger's store-level targets of
-- those stores no longer describe klikit. In one step, for every target whose scope is one of
-- the stores named:
--   mode "reapply": put it back in pending under a new idempotency key (nonce bump), so that
--                   menusync's own override is written again; a dead-lettered target stays set
--                   aside (counted apart); the flush is nudged (dirty and scheduled flags);
--   mode "forget":  remove it from the ledger (value, versions, change id, nonce, pending,
--                   suspect, dead mark, drift count): the business-level menu wins.
-- KEYS: 1 desired, 2 dver, 3 cid, 4 aver, 5 pending(zset), 6 nonce, 7 dead, 8 drift, 9 suspect(zset),
--       10 flush dirty flag, 11 flush scheduled flag, 12 attention index of pending work (zset business -> ms)
-- ARGV: 1 now_ms, 2 mode, 3 flag ttl ms, 4 business id, then store scopes ("brand:branch")
-- Returns {send, count, dead count, targets...}: send is "send" when the caller must send the
-- flush message; count the targets re-pended or forgotten; dead count the targets left aside.
local now, mode, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local scopes = {}
for i = 5, #ARGV do scopes[ARGV[i]] = true end
local done, dead = {}, 0
for _, target in ipairs(redis.call('HKEYS', KEYS[1])) do
  local scope = string.match(target, '^[^|]*|([^|]*)|')
  if scope and scopes[scope] then
    if mode == 'forget' then
      for k = 1, 8 do
        if k ~= 5 then redis.call('HDEL', KEYS[k], target) end
      end
      redis.call('ZREM', KEYS[5], target)
      redis.call('ZREM', KEYS[9], target)
      table.insert(done, target)
    elseif redis.call('HEXISTS', KEYS[7], target) == 1 then
      dead = dead + 1
    else
      redis.call('HINCRBY', KEYS[6], target, 1)
      if redis.call('ZADD', KEYS[5], 'NX', now, target) == 1 then redis.call('ZADD', KEYS[12], 'LT', now, ARGV[4]) end
      table.insert(done, target)
    end
  end
end
local send = ''
if mode == 'reapply' and #done > 0 then
  redis.call('SET', KEYS[10], 1, 'PX', ttl * 4)
  if redis.call('SET', KEYS[11], now, 'NX', 'PX', ttl) then send = 'send' end
end
local out = {send, #done, dead}
for _, t in ipairs(done) do table.insert(out, t) end
return out
