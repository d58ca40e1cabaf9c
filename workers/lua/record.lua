-- Record a batch of changes for ONE business. Keeps, per target, the newest
-- desired value by version; an older (or equal) change is dropped and counted.
-- When a change won, it also nudges the business's flush in the same step: it sets the
-- dirty flag and, if no flush is scheduled, the scheduled flag.
-- KEYS: 1 desired, 2 dver, 3 cid, 4 aver, 5 pending(zset), 6 seq, 7 stats, 8 dead, 9 businesses,
--       10 flush dirty flag, 11 flush scheduled flag, 12 history stream,
--       13 attention index of pending work (zset business -> oldest pending since, ms; see sweeper.py),
--       14.. (optional) the delivery marks of webhook deliveries (producers/dedupe.py), one each
-- ARGV: 1 now_ms, 2 business_id, 3 flag ttl ms, 4 history max entries (0: no history),
--       5 source, 6 actor, 7 received ms, 8 delivery mark ttl s (read only with KEYS[14..]),
--       9 attention hold ms (a business that becomes pending while its flush flag holds time t is
--         filed in the pending index at max(now, t + hold): the sweeper cannot help it before its
--         flag stops being trusted; workers/sweep_decision.py attention_hold_ms),
--       10 with delivery marks: how many changes each delivery has, in order, comma-separated
--          (together every change of the call); '' without,
--       then groups of 5: target, event_ms, value_json, change_id, expect_version|""
-- With delivery marks: the changes of a delivery already marked (before, or by an earlier copy in
-- this same call) are not looked at and answer "#"; the others are recorded and their delivery
-- marked, in this one step (no claim to expire).
-- Every change looked at also appends one history entry (workers/history.py: the field set and
-- its bounds) with its outcome: recorded, superseded or duplicate.
-- A change with the stored change's event time and value is a duplicate: no new version, no write.
-- Returns one entry per change (the assigned version if it won, "=" for a duplicate, "" if
-- superseded, "#" for a delivery recorded before), then "send" if the caller must send the flush
-- message, "" otherwise.
-- Which delivery each change belongs to, and whether that delivery was recorded before.
local owner, seen = {}, {}
if KEYS[14] then
  local c = 0
  local d = 13
  for count in string.gmatch(ARGV[10], '%d+') do
    d = d + 1
    for _ = 1, tonumber(count) do
      c = c + 1
      owner[c] = d
    end
  end
end
local now = tonumber(ARGV[1])
local out = {}
local won, lost, same = 0, 0, 0
local hmax = tonumber(ARGV[4])
-- One XADD per change, the stream trimmed once at the end (MAXLEN ~ on every XADD costs a third more).
local function history(target, value, cid, event_ms, outcome, version)
  if hmax > 0 then
    redis.call('XADD', KEYS[12], '*', 't', target, 'v', string.sub(value, 1, 512), 'src', ARGV[5],
      'by', ARGV[6], 'cid', cid, 'ev', event_ms, 'rx', ARGV[7], 'out', outcome, 'ver', version)
  end
end
local filed = false
local n = 0
for i = 11, #ARGV, 5 do
  n = n + 1
  local mark = owner[n]
  if mark and seen[mark] == nil then
    seen[mark] = redis.call('EXISTS', KEYS[mark]) == 1
    if not seen[mark] then redis.call('SET', KEYS[mark], 1, 'EX', tonumber(ARGV[8])) end
  end
  if mark and seen[mark] then
    table.insert(out, '#')
  else
    local target, event_ms, value, cid, expect = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local current = redis.call('HGET', KEYS[2], target)
    local ok = true
    if expect ~= '' and current ~= expect then ok = false end
    local version = ''
    if ok and current and string.sub(current, 1, 15) == string.format('%015d', event_ms)
        and redis.call('HGET', KEYS[1], target) == value then
      ok = false
      version = '='
    end
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
        if redis.call('ZADD', KEYS[5], 'NX', now, target) == 1 then filed = true end
      end
      won = won + 1
      table.insert(out, version)
      history(target, value, cid, ARGV[i + 1], 'recorded', version)
    elseif version == '=' then
      same = same + 1
      table.insert(out, '=')
      history(target, value, cid, ARGV[i + 1], 'duplicate', current or '')
    else
      lost = lost + 1
      table.insert(out, '')
      history(target, value, cid, ARGV[i + 1], 'superseded', current or '')
    end
  end
end
if won > 0 then redis.call('HINCRBY', KEYS[7], 'recorded', won) end
if lost > 0 then redis.call('HINCRBY', KEYS[7], 'superseded', lost) end
if same > 0 then redis.call('HINCRBY', KEYS[7], 'duplicate', same) end
redis.call('SADD', KEYS[9], ARGV[2])
if hmax > 0 then redis.call('XTRIM', KEYS[12], 'MAXLEN', '~', hmax) end
local send = ''
if won > 0 then
  local ttl = tonumber(ARGV[3])
  redis.call('SET', KEYS[10], 1, 'PX', ttl * 4)
  if redis.call('SET', KEYS[11], now, 'NX', 'PX', ttl) then send = 'send' end
end
if filed then
  -- The sweeper's pending index: the earliest time wins (ZADD LT), so an entry is early, never late.
  local at = now
  local flag = tonumber(redis.call('GET', KEYS[11]) or '')
  if flag then at = math.max(now, flag + tonumber(ARGV[9])) end
  redis.call('ZADD', KEYS[13], 'LT', at, ARGV[2])
end
table.insert(out, send)
return out
