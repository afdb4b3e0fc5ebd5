/**
 * The Lua scripts behind every write. A script runs atomically (Redis runs nothing else meanwhile),
 * so a precondition it checks still holds when it writes, and the record, its indexes, the
 * generation, the expiry and the dedupe record change together or not at all.
 *
 * Records are built in TypeScript and passed in as JSON text; the scripts never decode them
 * (Redis' cjson writes an empty array as `{}` and rounds numbers to 14 digits). Where a record
 * depends on the current one, the caller passes the generation it read and the script refuses
 * with `stale` when that is no longer the generation stored: compare-and-set, retried by the caller.
 *
 * Every script returns a flat array of strings whose first element names the outcome. An absent
 * value is returned as "" because a nil would end a Lua array early.
 */
import { createHash } from "node:crypto";
import type { RedisClient } from "@ovntap/runtime";

type Redis = RedisClient["redis"];

export interface LuaScript {
  readonly name: string;
  readonly keys: number;
  run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<string[]>;
}

function script(name: string, keys: number, source: string): LuaScript {
  const sha = createHash("sha1").update(source).digest("hex");
  return {
    name,
    keys,
    async run(redis, k, a) {
      if (k.length !== keys) throw new Error(`script ${name} takes ${keys} keys, got ${k.length}`);
      let result: unknown;
      try {
        result = await redis.evalsha(sha, keys, ...k, ...a);
      } catch (err) {
        // The script cache is empty after a restart or SCRIPT FLUSH: send the source once.
        if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
        result = await redis.eval(source, keys, ...k, ...a);
      }
      if (!Array.isArray(result)) throw new Error(`script ${name} returned ${typeof result}`);
      return result.map((v) => (typeof v === "string" ? v : String(v)));
    },
  };
}

/** Dedupe check shared by the mutating scripts; KEYS[req] is the request key, ARGV[1] the body hash. */
const DEDUPE = (req: number) => `
local prior = redis.call('HMGET', KEYS[${req}], 'hash', 'reply', 'published', 'events')
if prior[1] then
  if prior[1] == ARGV[1] then
    return {'duplicate', prior[2] or '', prior[3] or '0', prior[4] or '[]'}
  end
  return {'conflict', prior[1]}
end
`;

/** Writes the dedupe record; `reply`, `gen` are Lua locals; ARGV[1] hash, ARGV[2] retention s, ARGV[3] events. */
const REMEMBER = (req: number) => `
redis.call('HSET', KEYS[${req}], 'hash', ARGV[1], 'reply', reply, 'namespace', ARGV[4], 'name', ARGV[5],
  'generation', gen, 'events', ARGV[3], 'published', '0')
redis.call('EXPIRE', KEYS[${req}], ARGV[2])
`;

/**
 * KEYS: 1 mirror, 2 generation, 3 mirrors, 4 ns, 5 active, 6 expiries, 7 request
 * ARGV: 1 hash, 2 retention s, 3 events, 4 namespace, 5 name, 6 expected previous generation,
 *       7 record JSON, 8 status JSON, 9 expiresAt ms, 10 quota (-1: none), 11 mirror id
 */
export const CREATE = script(
  "create",
  7,
  `${DEDUPE(7)}
if redis.call('EXISTS', KEYS[1]) == 1 then
  local cur = redis.call('HMGET', KEYS[1], 'record', 'status')
  return {'already_exists', cur[1] or '', cur[2] or ''}
end
local limit = tonumber(ARGV[10])
if limit >= 0 then
  local n = redis.call('SCARD', KEYS[5])
  if n >= limit then return {'quota_exceeded', tostring(n)} end
end
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
if prev ~= tonumber(ARGV[6]) then return {'stale', tostring(prev)} end
local gen = prev + 1
redis.call('SET', KEYS[2], gen)
redis.call('HSET', KEYS[1], 'record', ARGV[7], 'generation', gen, 'expiresAtMs', ARGV[9],
  'status', ARGV[8], 'statusGeneration', gen, 'observedGeneration', 0)
redis.call('SADD', KEYS[3], ARGV[11])
redis.call('SADD', KEYS[4], ARGV[5])
redis.call('SADD', KEYS[5], ARGV[5])
redis.call('ZADD', KEYS[6], ARGV[9], ARGV[11])
local reply = '{"ok":true,"mirror":' .. ARGV[7] .. ',"status":' .. ARGV[8] .. '}'
${REMEMBER(7)}
return {'created', reply, tostring(gen)}
`,
);

/**
 * KEYS: 1 mirror, 2 generation, 3 active, 4 expiries, 5 request
 * ARGV: 1 hash, 2 retention s, 3 events, 4 namespace, 5 name, 6 expected generation,
 *       7 new record JSON, 8 fallback status JSON, 9 delete reason, 10 mirror id
 */
export const DELETE = script(
  "delete",
  5,
  `${DEDUPE(5)}
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local cur = redis.call('HMGET', KEYS[1], 'generation', 'deleting', 'record', 'status')
if cur[2] == '1' then return {'already_deleting', cur[3] or '', cur[4] or ''} end
if tonumber(cur[1]) ~= tonumber(ARGV[6]) then return {'stale', cur[1] or ''} end
local gen = tonumber(cur[1]) + 1
redis.call('SET', KEYS[2], gen)
redis.call('HSET', KEYS[1], 'record', ARGV[7], 'generation', gen, 'deleting', '1', 'deleteReason', ARGV[9])
redis.call('SREM', KEYS[3], ARGV[5])
redis.call('ZREM', KEYS[4], ARGV[10])
local status = cur[4] or ARGV[8]
local reply = '{"ok":true,"mirror":' .. ARGV[7] .. ',"status":' .. status .. '}'
${REMEMBER(5)}
return {'deleted', reply, tostring(gen), status}
`,
);

/**
 * KEYS: 1 mirror, 2 generation, 3 expiries, 4 request
 * ARGV: 1 hash, 2 retention s, 3 events, 4 namespace, 5 name, 6 expected generation,
 *       7 new record JSON, 8 fallback status JSON, 9 expiresAt ms, 10 mirror id
 */
export const EXTEND = script(
  "extend",
  4,
  `${DEDUPE(4)}
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local cur = redis.call('HMGET', KEYS[1], 'generation', 'deleting', 'record', 'status')
if cur[2] == '1' then return {'deleting', cur[3] or '', cur[4] or ''} end
if tonumber(cur[1]) ~= tonumber(ARGV[6]) then return {'stale', cur[1] or ''} end
local gen = tonumber(cur[1]) + 1
redis.call('SET', KEYS[2], gen)
redis.call('HSET', KEYS[1], 'record', ARGV[7], 'generation', gen, 'expiresAtMs', ARGV[9])
redis.call('ZADD', KEYS[3], ARGV[9], ARGV[10])
local status = cur[4] or ARGV[8]
local reply = '{"ok":true,"mirror":' .. ARGV[7] .. ',"status":' .. status .. '}'
${REMEMBER(4)}
return {'extended', reply, tostring(gen), status}
`,
);

/**
 * Marks an expired mirror for deletion (no request, so no dedupe record).
 * KEYS: 1 mirror, 2 generation, 3 active, 4 expiries
 * ARGV: 1 now ms, 2 expected generation, 3 new record JSON, 4 name, 5 mirror id
 */
export const EXPIRE = script(
  "expire",
  4,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[4], ARGV[5])
  return {'not_found'}
end
local cur = redis.call('HMGET', KEYS[1], 'generation', 'deleting', 'expiresAtMs')
if cur[2] == '1' then return {'already_deleting'} end
if tonumber(cur[3]) > tonumber(ARGV[1]) then return {'not_due', cur[3]} end
if tonumber(cur[1]) ~= tonumber(ARGV[2]) then return {'stale', cur[1] or ''} end
local gen = tonumber(cur[1]) + 1
redis.call('SET', KEYS[2], gen)
redis.call('HSET', KEYS[1], 'record', ARGV[3], 'generation', gen, 'deleting', '1', 'deleteReason', 'expired')
redis.call('SREM', KEYS[3], ARGV[4])
redis.call('ZREM', KEYS[4], ARGV[5])
return {'expired', tostring(gen)}
`,
);

/**
 * KEYS: 1 mirror
 * ARGV: 1 status JSON, 2 status generation, 3 observedGeneration
 */
export const SET_STATUS = script(
  "setStatus",
  1,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local cur = redis.call('HMGET', KEYS[1], 'generation', 'statusGeneration')
local g = tonumber(ARGV[2])
if g > tonumber(cur[1]) then return {'ahead', cur[1]} end
if g < tonumber(cur[2] or '0') then return {'stale', cur[2]} end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'statusGeneration', g, 'observedGeneration', ARGV[3])
return {'updated'}
`,
);

/**
 * KEYS: 1 mirror, 2 generation, 3 mirrors, 4 ns, 5 active, 6 expiries
 * ARGV: 1 generation, 2 tombstone retention s, 3 name, 4 mirror id
 */
export const PURGE = script(
  "purge",
  6,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local cur = redis.call('HMGET', KEYS[1], 'generation', 'deleting', 'record', 'status')
if tonumber(cur[1]) ~= tonumber(ARGV[1]) then return {'generation_mismatch', cur[1] or ''} end
if cur[2] ~= '1' then return {'not_deleting'} end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[4])
redis.call('SREM', KEYS[4], ARGV[3])
redis.call('SREM', KEYS[5], ARGV[3])
redis.call('ZREM', KEYS[6], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {'purged', cur[3] or '', cur[4] or ''}
`,
);

/** KEYS: 1 request. Sets `published` only if the record still exists (never recreates it without a TTL). */
export const MARK_PUBLISHED = script(
  "markPublished",
  1,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
redis.call('HSET', KEYS[1], 'published', '1')
return {'updated'}
`,
);
