-- What the sweeper needs to decide about ONE business it claimed, read in one step
-- (workers/sweep_decision.py decides; nothing is written here).
-- KEYS: 1 pending (zset), 2 credential block flag, 3 flush lease, 4 lease watch flag,
--       5 flush-scheduled flag, 6 the sweeper's re-nudge mark, 7 publish state hash
-- ARGV: 1 lease ttl ms (for a lease without expiry, which should not exist)
-- Returns {oldest pending score or '', blocked 0/1, lease remaining ms (0: free), watched 0/1,
--          flush-scheduled flag or '', re-nudge mark remaining ms (0: none),
--          publish "scheduled" or '', publish "first" or ''}
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or ''
local lease = redis.call('PTTL', KEYS[3])
if lease == -2 then lease = 0 elseif lease == -1 then lease = tonumber(ARGV[1]) end
local renudged = redis.call('PTTL', KEYS[6])
if renudged < 0 then renudged = 0 end
local scheduled, first = unpack(redis.call('HMGET', KEYS[7], 'scheduled', 'first'))
return {
  oldest,
  redis.call('EXISTS', KEYS[2]),
  lease,
  redis.call('EXISTS', KEYS[4]),
  redis.call('GET', KEYS[5]) or '',
  renudged,
  scheduled or '',
  first or '',
}
