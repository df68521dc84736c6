-- routec's shared provider state. Each operation is one script that runs
-- atomically in Redis, so a check and its take cannot interleave with
-- another instance's.
--
-- Layout (all keys of a provider share one hash tag):
--   KEYS[1] = <prefix>:{provider:<p>}:pace          hash r t at: rpm and tpm bucket levels
--   KEYS[2] = <prefix>:{provider:<p>}:inflight      sorted set: lease id -> expiry (ms)
--   KEYS[3] = <prefix>:{provider:<p>}:cooldown      a provider's cool-down (PX)
--   KEYS[4] = <prefix>:{provider:<p>}:cooldown:<m>  model m's cool-down (PX)
--   KEYS[5] = <prefix>:{provider:<p>}:ejected:<m>   model m's ejection (PX)
--
-- Time is Redis's own: `TIME` for the buckets and leases, `PX` for
-- cool-downs. The caller sends only durations, never an instant, so a
-- router on a manual clock never meets the server's wall clock.
--
-- Buckets hold levels in units of 1/60,000 of a request or token, so a
-- limit of N per minute refills exactly N units per millisecond: integers
-- below 2^53, exact in Lua's doubles. A missing level is a full bucket.

local MINUTE = 60000

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int(x)
  return string.format('%.0f', x)
end

-- A bucket's level at `now`: what it held at `at`, refilled, capped.
local function level(stored, cap, now, at)
  local full = cap * MINUTE
  local v = tonumber(stored)
  if v == nil then return full end
  if now > at then v = v + (now - at) * cap end
  if v > full then v = full end
  return v
end

local function pace(now)
  local v = redis.call('HMGET', KEYS[1], 'r', 't', 'at')
  local at = tonumber(v[3]) or now
  return v[1], v[2], at
end

local function save(r, t, now)
  local fields = {'at', int(now)}
  if r then table.insert(fields, 'r'); table.insert(fields, int(r)) end
  if t then table.insert(fields, 't'); table.insert(fields, int(t)) end
  redis.call('HSET', KEYS[1], unpack(fields))
  -- Idle for a minute, every bucket is full again: the key may go.
  redis.call('PEXPIRE', KEYS[1], MINUTE)
end

local op = ARGV[1]

if op == 'admit' then
  -- ARGV: op, rpm|'', tpm|'', tokens, concurrency|'', lease id, lease ttl ms
  for i, name in ipairs({'cooling', 'model_cooling', 'ejected'}) do
    local ttl = redis.call('PTTL', KEYS[i + 2])
    if ttl > 0 then return {name, tostring(ttl)} end
  end
  local now = now_ms()
  local rpm, tpm, tokens = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local r, t
  if rpm or tpm then
    local rs, ts, at = pace(now)
    if rpm then
      if rpm < 1 then return {'rpm', ''} end
      r = level(rs, rpm, now, at)
      if r < MINUTE then return {'rpm', tostring(math.ceil((MINUTE - r) / rpm))} end
    end
    if tpm then
      if tokens > tpm then return {'tpm', ''} end
      t = level(ts, tpm, now, at)
      local want = tokens * MINUTE
      if t < want then return {'tpm', tostring(math.ceil((want - t) / tpm))} end
    end
  end
  local conc = tonumber(ARGV[5])
  if conc then
    local ttl = tonumber(ARGV[7])
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    if redis.call('ZCARD', KEYS[2]) >= conc then return {'concurrency', ''} end
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[6])
    if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
  end
  if rpm or tpm then
    if r then r = r - MINUTE end
    if t then t = t - tokens * MINUTE end
    save(r, t, now)
  end
  return {'ok'}
end

if op == 'refund' then
  -- ARGV: op, rpm|'', tpm|'', tokens, lease id|''
  -- An attempt admitted here and then not sent gives back what it took.
  local now = now_ms()
  local rpm, tpm, tokens = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if rpm or tpm then
    local rs, ts, at = pace(now)
    local r, t
    if rpm then r = math.min(rpm * MINUTE, level(rs, rpm, now, at) + MINUTE) end
    if tpm then t = math.min(tpm * MINUTE, level(ts, tpm, now, at) + tokens * MINUTE) end
    save(r, t, now)
  end
  if ARGV[5] ~= '' then redis.call('ZREM', KEYS[2], ARGV[5]) end
  return {'ok'}
end

if op == 'renew' then
  -- ARGV: op, lease id, ttl ms. A lease that already expired stays gone.
  local now, ttl = now_ms(), tonumber(ARGV[3])
  local n = redis.call('ZADD', KEYS[2], 'XX', 'CH', now + ttl, ARGV[2])
  if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
  return {tostring(n)}
end

if op == 'release' then
  -- ARGV: op, lease id
  redis.call('ZREM', KEYS[2], ARGV[2])
  return {'ok'}
end

if op == 'publish' then
  -- ARGV: op, key index (3 cooling, 4 model_cooling, 5 ejected), ttl ms.
  -- A longer cool-down already there is kept.
  local key, ttl = KEYS[tonumber(ARGV[2])], tonumber(ARGV[3])
  if redis.call('PTTL', key) < ttl then redis.call('SET', key, '1', 'PX', ttl) end
  return {'ok'}
end

return redis.error_reply('unknown operation ' .. tostring(op))
