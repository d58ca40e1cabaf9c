-- Whether one shard's read-back index needs seeding: it was built with another interval, or its
-- shard knows more businesses than it holds. Read in one step, so the two counts agree.
-- KEYS: 1 the interval the index was built with, 2 the shard's businesses set, 3 the due index
-- ARGV: 1 interval ms
-- Returns 1 (seed it) or 0.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 1 end
if redis.call('SCARD', KEYS[2]) > redis.call('ZCARD', KEYS[3]) then return 1 end
return 0
