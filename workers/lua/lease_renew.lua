-- Extend the lease if (and only if) the caller still holds it.
-- KEYS: 1 lease; ARGV: 1 token, 2 ttl_ms. Returns 1 renewed, 0 lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
