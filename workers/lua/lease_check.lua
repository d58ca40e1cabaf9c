-- Is the lease still the caller's? (The fence before a write; the heartbeat alone extends it,
-- so that a dead holder's lease expires 2/3 to 1 TTL after its last beat.)
-- KEYS: 1 lease; ARGV: 1 token. Returns 1 held, 0 lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
