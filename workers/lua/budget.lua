-- GCRA request budget for one credential, shared by every worker process.
-- KEYS: 1 theoretical arrival time (ms)
-- ARGV: 1 now_ms, 2 emission interval ms (60000 / rate per minute), 3 burst, 4 penalty_ms
-- With penalty_ms > 0 the budget is pushed back (klikit answered 429) and 0 is returned.
-- Otherwise returns 0 when a request may go now (and consumes it), or the ms to wait.
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local penalty = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if penalty > 0 then
  local until_ms = now + penalty
  if until_ms > tat then tat = until_ms end
  redis.call('SET', KEYS[1], tat, 'PX', math.ceil(tat - now + interval * burst + 1000))
  return 0
end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then return math.ceil(allow_at - now) end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now + interval * burst + 1000))
return 0
