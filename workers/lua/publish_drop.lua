-- Give up the pending publish (nothing to publish, or it was dead-lettered) if the
-- state is still at generation G; a newer write keeps it and its message.
-- KEYS: 1 state hash, 2 stores set; ARGV: 1 generation ("" = whatever it is)
-- Returns 1 dropped, 0 kept.
local gen = redis.call('HGET', KEYS[1], 'gen')
if ARGV[1] == '' or gen == ARGV[1] or not gen then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
