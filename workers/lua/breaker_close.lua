-- A klikit call of the business succeeded: close its breaker, ending any outage.
-- KEYS: 1 breaker hash. Returns the start ms of the outage that ended (0: there was none).
local since = redis.call('HGET', KEYS[1], 'outage_since')
redis.call('DEL', KEYS[1])
return tonumber(since or 0)
