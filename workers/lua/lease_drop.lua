-- Give a lease up at once, if (and only if) the caller still holds it.
-- KEYS: 1 lease; ARGV: 1 token. Returns 1 released, 0 not ours (expired or taken).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
