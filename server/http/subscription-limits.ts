import { and, inArray, isNull } from 'drizzle-orm';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Database } from '../../drizzle/client.js';
import { apiTokens } from '../../drizzle/tables.js';
import type { Logger } from '../infrastructure/logger.js';
import type { Context } from './context.js';

/** How often open subscriptions' tokens are checked for revocation. */
const REVOCATION_CHECK_MS = 1_000;

interface OpenSubscription {
  tokenId: string;
  stop(): void;
}

export interface SubscriptionRegistry {
  /** Takes a slot for the token, or null when it holds `maxPerToken` already. */
  reserve(tokenId: string): OpenSubscription | null;
  /** Gives a slot back (when the subscription ends or never started). */
  release(subscription: OpenSubscription): void;
  /** The token's open subscriptions in this process. */
  count(tokenId: string): number;
}

/**
 * The subscriptions (SSE and graphql-ws alike) open in this process, by token: at most
 * `maxPerToken` each, and every second, while any is open, their tokens are checked against
 * the database, so a revoked token's subscriptions end within a second of the revocation
 * (without the token cache: it may answer for a token for TOKEN_CACHE_SECONDS).
 */
export function createSubscriptionRegistry(options: {
  db: Database;
  maxPerToken: number;
  logger: Logger;
}): SubscriptionRegistry {
  const open = new Map<string, Set<OpenSubscription>>();
  let timer: NodeJS.Timeout | null = null;
  let checking = false;

  const checkTokens = async () => {
    if (checking || open.size === 0) return;
    checking = true;
    try {
      const ids = [...open.keys()];
      const live = await options.db
        .select({ id: apiTokens.id })
        .from(apiTokens)
        .where(and(inArray(apiTokens.id, ids), isNull(apiTokens.revokedAt)));
      const liveIds = new Set(live.map((row) => row.id));
      for (const id of ids) {
        if (liveIds.has(id)) continue;
        for (const subscription of open.get(id) ?? []) subscription.stop();
        open.delete(id);
      }
    } catch (error) {
      options.logger.warn('checking the tokens of open subscriptions failed', {
        error: String(error),
      });
    } finally {
      checking = false;
      if (open.size === 0 && timer) {
        clearInterval(timer);
        timer = null;
      }
    }
  };

  return {
    reserve(tokenId) {
      const held = open.get(tokenId) ?? new Set<OpenSubscription>();
      if (held.size >= options.maxPerToken) return null;
      const subscription: OpenSubscription = { tokenId, stop: () => {} };
      held.add(subscription);
      open.set(tokenId, held);
      timer ??= setInterval(() => void checkTokens(), REVOCATION_CHECK_MS).unref();
      return subscription;
    },
    release(subscription) {
      const held = open.get(subscription.tokenId);
      held?.delete(subscription);
      if (held?.size === 0) open.delete(subscription.tokenId);
    },
    count: (tokenId) => open.get(tokenId)?.size ?? 0,
  };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/**
 * The subscription's events until it ends or `subscription.stop()` is called: then the
 * source is closed and the client sees the subscription complete.
 */
function stoppable<T>(
  source: AsyncIterable<T>,
  subscription: OpenSubscription,
  onEnd: () => void,
): AsyncIterableIterator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let ended = false;
  let wakeStopped: () => void = () => {};
  const stopped = new Promise<IteratorResult<T>>((resolveStop) => {
    wakeStopped = () => resolveStop({ done: true, value: undefined });
  });
  const end = async (): Promise<IteratorResult<T>> => {
    if (!ended) {
      ended = true;
      onEnd();
      wakeStopped();
      await iterator.return?.();
    }
    return { done: true, value: undefined };
  };
  subscription.stop = () => void end();
  return {
    next: () => (ended ? end() : Promise.race([iterator.next(), stopped])),
    return: end,
    throw: async (error: unknown) => {
      await end();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** Yoga plugin: every subscription takes a slot of its token (see createSubscriptionRegistry). */
export function subscriptionLimitPlugin(registry: SubscriptionRegistry): Plugin<Context> {
  return {
    onSubscribe({ args, setResultAndStopExecution }) {
      const { auth, config } = args.contextValue as Context;
      const subscription = registry.reserve(auth.tokenId);
      if (!subscription) {
        setResultAndStopExecution({
          errors: [
            new GraphQLError(
              `This token has ${config.MAX_SUBSCRIPTIONS_PER_TOKEN} subscriptions open, the most it may: close one first.`,
              { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } },
            ),
          ],
        });
        return;
      }
      return {
        onSubscribeResult({ result, setResult }) {
          if (!isAsyncIterable(result)) {
            registry.release(subscription);
            return;
          }
          setResult(stoppable(result, subscription, () => registry.release(subscription)));
        },
        onSubscribeError() {
          registry.release(subscription);
        },
      };
    },
  };
}
