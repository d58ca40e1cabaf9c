-- The sweeper re-sends a stranded publish: move its "scheduled" time to now, only if the publish
-- state still exists (a publish may have cleared it meanwhile), so one is re-sent at most once.
-- KEYS: 1 publish state hash; ARGV: 1 now_ms
-- Returns 1 moved (send the publish), 0 nothing pending any more.
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HEXISTS', KEYS[1], 'scheduled') == 1 then
  redis.call('HSET', KEYS[1], 'scheduled', ARGV[1])
  return 1
end
return 0
