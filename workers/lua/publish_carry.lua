-- A read-back about to start while a write has already landed since the last publish would be
-- discarded: hand its stores to the pending publish instead (whose read-back reads them), and
-- skip the reads. Atomic with the existence check, so the stores never join a finished publish.
-- Otherwise every write so far is published: answer the write generation, so that the repair
-- can tell whether a write landed while the menus were being read.
-- KEYS: 1 publish state hash, 2 publish stores set, 3 write generation counter; ARGV: store keys
-- Returns -1 when handed over (skip the read-back), else the write generation now (read now).
if redis.call('EXISTS', KEYS[1]) == 0 then return tonumber(redis.call('GET', KEYS[3]) or '0') end
for i = 1, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
return -1
