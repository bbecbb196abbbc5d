/**
 * Rate limits per token (or per client IP without one): a token bucket of `CHORUS_RATE_LIMIT`
 * requests/s with `CHORUS_RATE_BURST` capacity, per instance; or, with
 * `CHORUS_RATE_LIMIT_SCOPE=global`, a one-second window counted in KV across instances.
 * Answers carry `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`; refusals are 429 with
 * `Retry-After`.
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { ChorusError } from "../errors.ts";
import type { Store } from "../storage/store.ts";
import { rateWindowKey } from "../storage/keys.ts";

/** The outcome of taking one request from a limiter. */
export interface Take {
  ok: boolean;
  limit: number;
  remaining: number;
  /** Seconds until a request would be allowed again (when refused) or the bucket refills. */
  resetSeconds: number;
}

/** Options of {@linkcode RateLimiter}. */
export interface RateLimiterOptions {
  /** Sustained requests per second. */
  rate: number;
  /** Bucket size (defaults to the rate). */
  burst?: number;
  /** Time source (ms since epoch). */
  clock: { now(): number };
  /** When set, counts in KV per one-second window across instances. */
  globalStore?: Store;
}

/** Token buckets per principal, or KV-shared windows. */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #clock: { now(): number };
  readonly #store?: Store;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(options: RateLimiterOptions) {
    this.#rate = options.rate;
    this.#burst = Math.max(1, options.burst ?? options.rate);
    this.#clock = options.clock;
    this.#store = options.globalStore;
  }

  /** Takes one request for `key`. */
  async take(key: string): Promise<Take> {
    return this.#store ? await this.#takeGlobal(key) : this.#takeLocal(key);
  }

  #takeLocal(key: string): Take {
    const now = this.#clock.now();
    const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, at: now };
    bucket.tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.at) / 1000 * this.#rate);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > 100_000) this.#buckets.delete(this.#buckets.keys().next().value!);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return {
        ok: true,
        limit: this.#burst,
        remaining: Math.floor(bucket.tokens),
        resetSeconds: Math.ceil((this.#burst - bucket.tokens) / this.#rate),
      };
    }
    return {
      ok: false,
      limit: this.#burst,
      remaining: 0,
      resetSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.#rate)),
    };
  }

  async #takeGlobal(key: string): Promise<Take> {
    const now = this.#clock.now();
    const window = Math.floor(now / 1000);
    const counterKey = rateWindowKey(key, window);
    // KV's sum cannot expire, so each count also removes this principal's earlier windows: one
    // counter per principal is left behind at most.
    await this.#store!.commit({
      checks: [],
      mutations: [
        { type: "sum", key: counterKey, value: 1n },
        { type: "delete", key: rateWindowKey(key, window - 1) },
        { type: "delete", key: rateWindowKey(key, window - 2) },
      ],
      bytes: 192,
    });
    const count = Number(
      ((await this.#store!.get<Deno.KvU64>(counterKey, "strong")).value?.value) ?? 1n,
    );
    const limit = Math.max(this.#burst, this.#rate);
    return {
      ok: count <= limit,
      limit,
      remaining: Math.max(0, limit - count),
      resetSeconds: Math.max(1, Math.ceil(((window + 1) * 1000 - now) / 1000)),
    };
  }
}

/** The middleware: `keyOf` names the principal (token id, or `ip:<address>`). */
export function rateLimitMiddleware(
  limiter: RateLimiter,
  keyOf: (c: Parameters<MiddlewareHandler>[0]) => string,
): MiddlewareHandler {
  return async (c, next) => {
    const result = await limiter.take(keyOf(c));
    const headers = {
      "RateLimit-Limit": String(result.limit),
      "RateLimit-Remaining": String(result.remaining),
      "RateLimit-Reset": String(result.resetSeconds),
    };
    if (!result.ok) {
      throw new ChorusError("rate_limited", "Cannot serve the request: rate limit exceeded", {
        headers: { ...headers, "Retry-After": String(result.resetSeconds) },
        details: { retry_after: result.resetSeconds },
      });
    }
    await next();
    for (const [k, v] of Object.entries(headers)) c.header(k, v);
  };
}
