-- routec idempotency script. Each operation runs atomically in Redis: two
-- gateways racing on one key cannot both lead it.
--
--   KEYS[1] = <prefix>:idem:{<workload>}:<c|h>:<key>   hash:
--     s  'p' (claimed, in flight) or 'd' (done, answer stored)
--     b  the request body's hash (a different body is a reused key)
--     t  the claim's token (only its holder may finish, release or renew it)
--     v  the stored answer (when s = 'd')
--
-- Every expiry is a TTL (PEXPIRE): Redis's own clock, never the router's.

local key = KEYS[1]
local op = ARGV[1]

if op == 'claim' then
  -- ARGV: op, body, token, claim_ttl_ms
  local cur = redis.call('HMGET', key, 's', 'b')
  if not cur[1] then
    redis.call('DEL', key)
    redis.call('HSET', key, 's', 'p', 'b', ARGV[2], 't', ARGV[3])
    redis.call('PEXPIRE', key, ARGV[4])
    return {'lead'}
  end
  if cur[2] ~= ARGV[2] then
    return {'reused', cur[1]}
  end
  if cur[1] == 'd' then
    return {'done', redis.call('HGET', key, 'v') or ''}
  end
  return {'pending', tostring(redis.call('PTTL', key))}
elseif op == 'finish' then
  -- ARGV: op, body, token, answer, window_ms. Stores over its own claim,
  -- or over nothing (the claim expired and nobody took the key since).
  local cur = redis.call('HMGET', key, 's', 't')
  if cur[1] and not (cur[1] == 'p' and cur[2] == ARGV[3]) then
    return {'kept'}
  end
  redis.call('DEL', key)
  redis.call('HSET', key, 's', 'd', 'b', ARGV[2], 'v', ARGV[4])
  redis.call('PEXPIRE', key, ARGV[5])
  return {'stored'}
elseif op == 'release' then
  -- ARGV: op, token. Frees the claim (the call failed or was cancelled).
  local cur = redis.call('HMGET', key, 's', 't')
  if cur[1] == 'p' and cur[2] == ARGV[2] then
    redis.call('DEL', key)
    return {'released'}
  end
  return {'kept'}
elseif op == 'renew' then
  -- ARGV: op, token, claim_ttl_ms. Extends the claim while its leader's
  -- call is in flight; a finished, released or expired key, or another
  -- leader's claim, is left as it is (never brought back).
  local cur = redis.call('HMGET', key, 's', 't')
  if cur[1] == 'p' and cur[2] == ARGV[2] then
    redis.call('PEXPIRE', key, ARGV[3])
    return {'renewed'}
  end
  return {'gone'}
end
return redis.error_reply('unknown idempotency operation')
