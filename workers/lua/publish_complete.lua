-- After a successful publish of generation G: clear the state if no write landed
-- meanwhile (compare-and-set). Otherwise keep it, restart the max_wait clock, and
-- tell the caller to publish once more.
-- KEYS: 1 state hash, 2 stores set; ARGV: 1 generation published, 2 now_ms
-- Returns 1 cleared, 0 another publish is needed (the message stays "scheduled").
if redis.call('HGET', KEYS[1], 'gen') == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
redis.call('HSET', KEYS[1], 'first', ARGV[2])
return 0
