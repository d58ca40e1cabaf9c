-- Release a business's flush lease, unless a nudge arrived while it was held.
-- KEYS: 1 lease, 2 dirty flag, 3 flush-scheduled flag
-- ARGV: 1 token
-- Returns 1 released, 0 "dirty: flush again" (lease kept, flag cleared), -1 not ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('DEL', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[3])
return 1
