import type { Redis } from 'ioredis';

/** The state of a claim: just taken by this caller, still being worked on by another, or finished. */
export type Claim = 'claimed' | 'pending' | 'done';

/**
 * Claims `key` for `ttlSeconds` with SET NX: 'claimed' for the first caller only, across every process
 * sharing the Redis. Why Redis rather than memory: Slack's retries may reach another API replica.
 * Later callers learn whether the first one finished ('done', see markDone) or is still at it ('pending').
 */
export async function claimOnce(redis: Redis, key: string, ttlSeconds: number): Promise<Claim> {
  if ((await redis.set(key, 'pending', 'EX', ttlSeconds, 'NX')) === 'OK') return 'claimed';
  return (await redis.get(key)) === 'done' ? 'done' : 'pending';
}

/** Marks a claim finished, keeping its expiry. */
export async function markDone(redis: Redis, key: string): Promise<void> {
  await redis.set(key, 'done', 'KEEPTTL', 'XX');
}

/** Gives a claim back, so the sender's retry is processed (used when the work could not be queued). */
export async function releaseClaim(redis: Redis, key: string): Promise<void> {
  await redis.del(key);
}
