import { lt } from 'drizzle-orm';
import { RateLimiterDrizzle, RateLimiterRes } from 'rate-limiter-flexible';
import type { Database } from '../../drizzle/client.js';
import { rateLimits } from '../../drizzle/tables.js';
import { RateLimitedError } from '../errors.js';

/**
 * The per-token budget of mutations that start background work or send mail (startImport,
 * emailImportReport). rate-limiter-flexible keeps the counters in the `rate_limits` table, so
 * every process on one database shares them, and PGlite works the same way.
 */
export interface WorkRateLimiter {
  /** Takes one unit of the token's budget, or throws RateLimitedError when it is spent. */
  consume(tokenId: string): Promise<void>;
}

export function createWorkRateLimiter(db: Database, perMinute: number): WorkRateLimiter {
  const limiter = new RateLimiterDrizzle({
    storeClient: db,
    schema: rateLimits,
    keyPrefix: 'work',
    points: perMinute,
    duration: 60,
    // Expired counters are purged with old imports (jobs/retention.ts), not by a timer here.
    clearExpiredByTimeout: false,
  });
  return {
    consume: async (tokenId) => {
      try {
        await limiter.consume(tokenId);
      } catch (error) {
        // The library rejects with a RateLimiterRes when the budget is spent, with an Error
        // when its store fails (that one is a bug or an outage: let it be masked and logged).
        if (error instanceof RateLimiterRes) {
          throw new RateLimitedError(Math.max(1, Math.ceil(error.msBeforeNext / 1000)), perMinute);
        }
        throw error;
      }
    },
  };
}

/**
 * A company's budget of report emails (one per recipient) per hour, apart from the work rate
 * limit: a token's imports do not spend it, and several tokens of one company share it.
 */
export interface MailBudget {
  /** Takes `messages` of the company's budget, or throws RateLimitedError when it is spent. */
  consume(companyId: string, messages: number): Promise<void>;
}

export function createMailBudget(db: Database, perHour: number): MailBudget {
  const limiter = new RateLimiterDrizzle({
    storeClient: db,
    schema: rateLimits,
    keyPrefix: 'mail',
    points: perHour,
    duration: 60 * 60,
    clearExpiredByTimeout: false,
  });
  return {
    consume: async (companyId, messages) => {
      try {
        await limiter.consume(companyId, messages);
      } catch (error) {
        if (error instanceof RateLimiterRes) {
          const retryAfter = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
          throw new RateLimitedError(
            retryAfter,
            Math.max(1, Math.floor(perHour / 60)),
            `Your company sent the ${perHour} report emails it may send in an hour (one per recipient); nothing was sent. Try again in ${retryAfter} s.`,
          );
        }
        throw error;
      }
    },
  };
}

/** Deletes counters whose window ended more than an hour ago. */
export async function purgeExpiredRateLimits(db: Database, now = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - 60 * 60 * 1000);
  const deleted = await db
    .delete(rateLimits)
    .where(lt(rateLimits.expire, cutoff))
    .returning({ key: rateLimits.key });
  return deleted.length;
}
