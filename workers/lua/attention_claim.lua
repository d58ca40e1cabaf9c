-- The sweeper's pass: claim the businesses that need its attention now, from the attention
-- indexes (design.md section 1.5). Each index holds, per business, a raw time: the oldest pending
-- since (pending), the earliest suspect repeat due (suspect), the newest sign of life of a
-- scheduled publish (publish); the sweeper's settings turn them into due times here, so an entry
-- never depends on the settings of the process that wrote it. An entry may be early, never late.
-- A claimed business moves to come due again after the re-check delay, so that a sweeper that
-- dies mid-pass loses nothing; the sweeper then re-files it at its real times (attention_refile).
-- KEYS: 1 pending index, 2 suspect index, 3 publish index (zsets business -> ms)
-- ARGV: 1 now_ms, 2 stale after ms (pending), 3 publish stale ms, 4 limit per index, 5 re-check ms
-- Returns the business ids claimed (each once).
local now, limit, recheck = tonumber(ARGV[1]), tonumber(ARGV[4]), tonumber(ARGV[5])
local offsets = {tonumber(ARGV[2]), 0, tonumber(ARGV[3])}
local seen, out = {}, {}
for k = 1, 3 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[k], '-inf', now - offsets[k], 'LIMIT', 0, limit)
  for _, business in ipairs(due) do
    redis.call('ZADD', KEYS[k], now + recheck - offsets[k], business)
    if not seen[business] then
      seen[business] = true
      table.insert(out, business)
    end
  end
end
return out
