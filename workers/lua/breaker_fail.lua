-- One transient klikit failure of a business. At `threshold` failures in a row the breaker
-- opens for open_ms, doubling per further failure up to max_open_ms; the first opening starts
-- the business's klikit outage (kept until a success closes the breaker).
-- KEYS: 1 breaker hash (fails, open_until, outage_since)
-- ARGV: 1 now_ms, 2 threshold, 3 open_ms, 4 max_open_ms, 5 keep_ms (hash lifetime after a failure)
-- Returns {fails, ms open from now (0: closed), outage start ms (0: none), 1 if the outage started now}
local now = tonumber(ARGV[1])
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
local open = 0
local started = 0
if fails >= tonumber(ARGV[2]) then
  local doublings = math.min(fails - tonumber(ARGV[2]), 20)
  open = math.floor(math.min(tonumber(ARGV[3]) * (2 ^ doublings), tonumber(ARGV[4])))
  redis.call('HSET', KEYS[1], 'open_until', now + open)
  if redis.call('HSETNX', KEYS[1], 'outage_since', now) == 1 then started = 1 end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local since = redis.call('HGET', KEYS[1], 'outage_since') or 0
return {fails, open, tonumber(since), started}
