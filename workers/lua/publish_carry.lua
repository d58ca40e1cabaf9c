-- A read-back about to start while a write has already landed since the last publish would be
-- discarded: hand its stores to the pending publish instead (whose read-back reads them), and
-- skip the reads. Atomic with the existence check, so the stores never join a finished publish.
-- KEYS: 1 publish state hash, 2 publish stores set; ARGV: store keys
-- Returns 1 when handed over (skip the read-back), 0 when no publish is pending (read now).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
return 1
