import type { Redis } from 'ioredis';

/** Options of {@link RateLimiter}. */
export interface RateLimitOptions {
  /** Questions allowed per window and subject (default 10). */
  limit?: number;
  /** Length of the sliding window, in seconds (default 60). */
  windowSeconds?: number;
  /** Redis key prefix (default `astry:slack`). */
  keyPrefix?: string;
}

/** The verdict on one question. */
export interface RateDecision {
  allowed: boolean;
  /** When refused: seconds until the oldest counted question leaves the window. */
  retryAfterSeconds: number;
  /** When refused: true for the first refusal of the window only, so the user is told once, not per message. */
  notify: boolean;
}

// A sliding log in a sorted set, atomically in Redis with Redis's own clock: every API and bot process
// agrees, and refused attempts are not counted (a user hammering the bot is not locked out for longer).
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
local first = redis.call('SET', KEYS[2], '1', 'PX', math.max(wait, 1), 'NX')
return {0, wait, first and 1 or 0}
`;

/** Per-user question rate limit, shared by every process through Redis. */
export class RateLimiter {
  readonly #redis: Redis;
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #prefix: string;

  constructor(redis: Redis, options: RateLimitOptions = {}) {
    const limit = options.limit ?? 10;
    const windowSeconds = options.windowSeconds ?? 60;
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`rate limit must be a positive integer, got ${limit}`);
    if (!(windowSeconds > 0)) throw new RangeError(`rate window must be positive, got ${windowSeconds}`);
    this.#redis = redis;
    this.#limit = limit;
    this.#windowMs = Math.round(windowSeconds * 1000);
    this.#prefix = options.keyPrefix ?? 'astry:slack';
  }

  /** Counts one question of `subject` (e.g. a principal id) if it is within the limit. */
  async take(subject: string, attemptId: string): Promise<RateDecision> {
    const key = `${this.#prefix}:rate:${subject}`;
    const raw: unknown = await this.#redis.eval(TAKE, 2, key, `${key}:told`, this.#windowMs, this.#limit, attemptId);
    const [allowed, waitMs, first] = Array.isArray(raw) ? raw.map(Number) : [];
    if (allowed === 1) return { allowed: true, retryAfterSeconds: 0, notify: false };
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((waitMs ?? this.#windowMs) / 1000)), notify: first === 1 };
  }
}
