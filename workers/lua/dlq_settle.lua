-- Take a dead letter out of the open list (drop or replay), once. Two operators acting on the
-- same record at once must not both count it down: only the call that removes it from the
-- index adjusts the per-code counts and rewrites or deletes the record.
-- KEYS: 1 item, 2 index, 3 codes, 4 business index, 5 business codes
-- ARGV: 1 id, 2 error code, 3 mode ("drop" | "replay"), 4 replayed record JSON, 5 keep seconds,
--       6 has business (1 | 0)
-- Returns 1 when this call settled it, 0 when it was no longer open.
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
if ARGV[6] == '1' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('HINCRBY', KEYS[5], ARGV[2], -1)
end
if ARGV[3] == 'replay' then
  redis.call('SET', KEYS[1], ARGV[4], 'EX', tonumber(ARGV[5]))
else
  redis.call('DEL', KEYS[1])
end
return 1
