-- Release a lease if it is still ours, without the dirty check (the flush hands its work to a
-- retry). Compare and delete in one step: a GET then DEL could delete a lease that expired in
-- between and was taken by another worker.
-- KEYS: 1 lease; ARGV: 1 token
-- Returns 1 released, 0 not ours (any more).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
