/**
 * Pending offers of a private answer: when a channel answer had to leave out sources the asker alone
 * may read, the asker gets a button; its value names an offer kept here until it is clicked or expires.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';

const OfferSchema = z.object({
  workspaceId: z.string(),
  teamId: z.string(),
  /** The conversation and thread the question was asked in. */
  channelId: z.string(),
  threadTs: z.string(),
  /** Only this Slack user may redeem it. */
  slackUserId: z.string(),
  principalId: z.number().int(),
  /** The question as sent to the worker (thread context included). */
  question: z.string(),
});
export type PrivateOffer = z.infer<typeof OfferSchema>;

/** Offer ids: 128 random bits, URL-safe; the shape the endpoint accepts from a button value. */
export const OFFER_ID = /^[A-Za-z0-9_-]{22}$/;

/** Options of {@link Offers}. */
export interface OffersOptions {
  /** How long an offer can be redeemed, in seconds (default 3600). */
  ttlSeconds?: number;
  /** Redis key prefix (default `astry:slack`). */
  keyPrefix?: string;
}

export class Offers {
  readonly #redis: Redis;
  readonly #ttl: number;
  readonly #prefix: string;

  constructor(redis: Redis, options: OffersOptions = {}) {
    this.#redis = redis;
    this.#ttl = options.ttlSeconds ?? 3600;
    this.#prefix = options.keyPrefix ?? 'astry:slack';
  }

  /** Stores an offer and returns its id (the button's value). */
  async create(offer: PrivateOffer): Promise<string> {
    const id = randomBytes(16).toString('base64url');
    await this.#redis.set(`${this.#prefix}:offer:${id}`, JSON.stringify(offer), 'EX', this.#ttl);
    return id;
  }

  /** Redeems an offer once (GETDEL): null when unknown, expired or already redeemed. */
  async take(id: string): Promise<PrivateOffer | null> {
    if (!OFFER_ID.test(id)) return null;
    const raw = await this.#redis.getdel(`${this.#prefix}:offer:${id}`);
    if (raw === null) return null;
    const parsed = OfferSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }
}
