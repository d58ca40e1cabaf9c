-- A flush found the business's lease taken: become the one watcher of its expiry, so that
-- a flush runs as soon as a dead holder's lease is gone (a live holder keeps renewing it,
-- and the watcher then watches again). The watch flag lives exactly as long as the lease
-- would without renewal.
-- KEYS: 1 lease, 2 watch flag; ARGV: 1 lease ttl ms (for a lease without expiry, which should not exist)
-- Returns the lease's remaining ms when the caller became the watcher, -1 when another
-- watcher exists, -2 when the lease is free (acquire it instead).
local remaining = redis.call('PTTL', KEYS[1])
if remaining == -2 then return -2 end
if remaining == -1 then remaining = tonumber(ARGV[1]) end
if remaining < 1 then remaining = 1 end
if redis.call('SET', KEYS[2], 1, 'NX', 'PX', remaining) then return remaining end
return -1
