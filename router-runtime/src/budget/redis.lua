-- routec budget scripts. Each script runs atomically in Redis: the check
-- and the update cannot interleave with another router's.
--
-- Layout (all keys of a workload share one hash tag):
--   KEYS[1] = <prefix>:{<workload>}:res      sorted set: reservation id -> expires_at (ms)
--   KEYS[2] = <prefix>:{<workload>}:resdata  hash: reservation id -> "linekey\tamount\n..."
--   KEYS[3] = <prefix>:{<workload>}:seq      reservation id counter
--   KEYS[4..] = <prefix>:{<workload>}:line:<limit>:<period>  hash c r h u a
--
-- Amounts are decimal strings of integers below 2^63. Redis Lua numbers are
-- doubles, so sums and comparisons split values into base-1e9 halves and
-- updates use HINCRBY on the strings: no float decides whether a call fits.

local function split(s)
  s = tostring(s)
  local n = #s
  if n <= 9 then return 0, tonumber(s) end
  return tonumber(string.sub(s, 1, n - 9)), tonumber(string.sub(s, n - 8))
end

-- a + b + c > d
local function exceeds(a, b, c, d)
  local ah, al = split(a)
  local bh, bl = split(b)
  local ch, cl = split(c)
  local dh, dl = split(d)
  local lo = al + bl + cl
  local hi = ah + bh + ch + math.floor(lo / 1000000000)
  lo = lo % 1000000000
  if hi ~= dh then return hi > dh end
  return lo > dl
end

local function str(v)
  if v then return v end
  return '0'
end

local function free(id)
  local rec = redis.call('HGET', KEYS[2], id)
  if rec then
    for key, amount in string.gmatch(rec, '([^\t\n]+)\t(%d+)') do
      local left = redis.call('HINCRBY', key, 'r', '-' .. amount)
      if left < 0 then redis.call('HSET', key, 'r', '0') end
    end
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREM', KEYS[1], id)
end

local function expire(now)
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, id in ipairs(ids) do free(id) end
end

local op = ARGV[1]

if op == 'reserve' then
  -- ARGV: op, now, expires_at, res_ttl_ms, then per line: cap, amount, line_ttl_ms
  -- (every expiry is a TTL: the server's clock never meets the ledger's)
  expire(ARGV[2])
  local worst_rank, worst = 0, nil
  local states = {}
  for i = 4, #KEYS do
    local base = 5 + (i - 4) * 3
    local cap, amount = ARGV[base], ARGV[base + 1]
    local v = redis.call('HMGET', KEYS[i], 'c', 'r', 'h', 'u')
    local c, r, h, u = str(v[1]), str(v[2]), v[3] == '1', v[4] == '1'
    states[i] = {c, r}
    if not u then
      local reason, rank, newly = nil, 0, '0'
      if h then
        reason, rank = 'halted', 3
      elseif exceeds(amount, '0', '0', cap) then
        reason, rank = 'too_large', 2
      elseif (not exceeds(cap, '0', '0', c)) or (r == '0' and exceeds(c, amount, '0', cap)) then
        reason, rank, newly = 'halted', 3, '1'
        redis.call('HSET', KEYS[i], 'h', '1')
        redis.call('PEXPIRE', KEYS[i], ARGV[base + 2])
      elseif exceeds(c, r, amount, cap) then
        reason, rank = 'busy', 1
      end
      if reason and rank > worst_rank then
        worst_rank = rank
        worst = {'refused', reason, tostring(i - 3), newly, c, r}
      end
    end
  end
  if worst then return worst end
  local id = tostring(redis.call('INCR', KEYS[3]))
  local rec = ''
  for i = 4, #KEYS do
    local base = 5 + (i - 4) * 3
    redis.call('HINCRBY', KEYS[i], 'r', ARGV[base + 1])
    redis.call('PEXPIRE', KEYS[i], ARGV[base + 2])
    rec = rec .. KEYS[i] .. '\t' .. ARGV[base + 1] .. '\n'
  end
  redis.call('HSET', KEYS[2], id, rec)
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return {'granted', id}

elseif op == 'commit' then
  -- ARGV: op, id, then per line: cap, amount, alert_at ('' when none), line_ttl_ms
  free(ARGV[2])
  local out = {}
  for i = 4, #KEYS do
    local base = 3 + (i - 4) * 4
    local cap, amount, at = ARGV[base], ARGV[base + 1], ARGV[base + 2]
    redis.call('HINCRBY', KEYS[i], 'c', amount)
    local v = redis.call('HMGET', KEYS[i], 'c', 'r', 'h', 'u', 'a')
    local c, r, h, u, a = str(v[1]), str(v[2]), v[3] == '1', v[4] == '1', v[5] == '1'
    local halted, alert = '0', '0'
    if (not u) and (not h) and not exceeds(cap, '0', '0', c) then
      redis.call('HSET', KEYS[i], 'h', '1')
      h, halted = true, '1'
    end
    if at ~= '' and (not a) and not exceeds(at, '0', '0', c) then
      redis.call('HSET', KEYS[i], 'a', '1')
      a, alert = true, '1'
    end
    redis.call('PEXPIRE', KEYS[i], ARGV[base + 3])
    local flag = function(b) if b then return '1' end return '0' end
    table.insert(out, alert)
    table.insert(out, halted)
    table.insert(out, c)
    table.insert(out, r)
    table.insert(out, flag(h))
    table.insert(out, flag(u))
    table.insert(out, flag(a))
  end
  return out

elseif op == 'release' then
  -- ARGV: op, id
  free(ARGV[2])
  return {}

elseif op == 'unlock' then
  -- ARGV: op
  local lifted = {}
  for i = 4, #KEYS do
    if redis.call('HGET', KEYS[i], 'h') == '1' then
      redis.call('HSET', KEYS[i], 'h', '0', 'u', '1')
      table.insert(lifted, tostring(i - 3))
    end
  end
  return lifted

elseif op == 'status' then
  -- ARGV: op, now
  expire(ARGV[2])
  local out = {}
  for i = 4, #KEYS do
    local v = redis.call('HMGET', KEYS[i], 'c', 'r', 'h', 'u', 'a')
    table.insert(out, str(v[1]))
    table.insert(out, str(v[2]))
    table.insert(out, str(v[3]))
    table.insert(out, str(v[4]))
    table.insert(out, str(v[5]))
  end
  return out
end

return redis.error_reply('routec: unknown budget operation')
