/**
 * Rate limits per token (or per client IP without one): a token bucket of `CHORUS_RATE_LIMIT`
 * requests/s with `CHORUS_RATE_BURST` capacity, per instance; or, with
 * `CHORUS_RATE_LIMIT_SCOPE=global`, a one-second window counted in KV across instances.
 * Answers carry `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`; refusals are 429 with
 * `Retry-After`. The same limiter and budget cover socket joins and pushes (see
 * {@linkcode socketRateLimit}).
 *
 * Failed authentication is limited per client address whenever auth is on
 * ({@linkcode AuthFailureGuard}): after {@linkcode AUTH_FAILURE_BURST} failures (HTTP 401s,
 * refused socket connects), refilled at {@linkcode AUTH_FAILURE_RATE} per second, an address gets
 * 429 before its token is even looked at.
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { ChorusError } from "../errors.ts";
import type { Store } from "../storage/store.ts";
import { rateWindowKey } from "../storage/keys.ts";
import type { ResolvedConfig } from "../config.ts";
import type { SocketRateLimit } from "../realtime/topics.ts";

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
    return this.#store ? await this.#takeGlobal(key) : this.#takeLocal(key, true);
  }

  /**
   * Whether one request for `key` would be allowed now, without taking it (this instance's
   * buckets only: a global limiter answers for its local buckets, which it never fills).
   */
  peek(key: string): Take {
    return this.#takeLocal(key, false);
  }

  #takeLocal(key: string, consume: boolean): Take {
    const now = this.#clock.now();
    const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, at: now };
    bucket.tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.at) / 1000 * this.#rate);
    bucket.at = now;
    if (!consume && bucket.tokens >= this.#burst) {
      // A full bucket is the default: nothing to remember.
      this.#buckets.delete(key);
    } else {
      this.#buckets.set(key, bucket);
      if (this.#buckets.size > 100_000) this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    if (bucket.tokens >= 1) {
      if (consume) bucket.tokens -= 1;
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

/**
 * The budget a request or socket frame counts against: its token's (`token:<id>`), or its client
 * address's (`ip:<address>`) when there is no token (auth off, open routes).
 */
export function rateKey(principalId: string | null, address: string): string {
  return principalId === null || principalId === "anonymous"
    ? `ip:${address}`
    : `token:${principalId}`;
}

/** The 429 of a refused request, with `Retry-After` and `details.retry_after` in seconds. */
export function rateLimited(
  retryAfter: number,
  headers: Record<string, string> = {},
  message = "Cannot serve the request: rate limit exceeded",
): ChorusError {
  return new ChorusError("rate_limited", message, {
    headers: { ...headers, "Retry-After": String(retryAfter) },
    details: { retry_after: retryAfter },
  });
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
    if (!result.ok) throw rateLimited(result.resetSeconds, headers);
    await next();
    for (const [k, v] of Object.entries(headers)) c.header(k, v);
  };
}

/** A socket's share of `limiter`: the same budget (`key`, see {@linkcode rateKey}) as HTTP. */
export function socketRateLimit(limiter: RateLimiter, key: string): SocketRateLimit {
  return {
    async take() {
      const result = await limiter.take(key);
      return result.ok ? null : result.resetSeconds;
    },
  };
}

/** Failed authentications an address may make in a burst before it is refused. */
export const AUTH_FAILURE_BURST = 10;
/** Failed authentications per second an address regains after its burst. */
export const AUTH_FAILURE_RATE = 1;

/**
 * The brute-force guard: failed authentications per client address, in a token bucket of
 * {@linkcode AUTH_FAILURE_BURST} refilled at {@linkcode AUTH_FAILURE_RATE}/s, per instance. An
 * address with an empty bucket is refused (429) before its credentials are checked, so a
 * guess costs nothing but time; successful requests never take from the bucket.
 */
export class AuthFailureGuard {
  readonly #limiter: RateLimiter;

  /** A guard on `clock` with the default burst and rate (or the ones given). */
  constructor(clock: { now(): number }, options: { burst?: number; rate?: number } = {}) {
    this.#limiter = new RateLimiter({
      rate: options.rate ?? AUTH_FAILURE_RATE,
      burst: options.burst ?? AUTH_FAILURE_BURST,
      clock,
    });
  }

  /**
   * Refuses an address that used up its failures.
   * @throws {ChorusError} `rate_limited` with `Retry-After`
   */
  check(address: string): void {
    const result = this.#limiter.peek(`ip:${address}`);
    if (!result.ok) {
      throw rateLimited(
        result.resetSeconds,
        {},
        "Cannot authenticate: too many failed attempts from this address",
      );
    }
  }

  /** Records one failed authentication of `address`. */
  fail(address: string): void {
    void this.#limiter.take(`ip:${address}`);
  }
}

/** The limiters of one instance, shared by HTTP and the socket. */
export interface Limits {
  /** Requests per token or address (`CHORUS_RATE_LIMIT`); null when unset. */
  requests: RateLimiter | null;
  /** Failed authentications per address; null with auth off. */
  failures: AuthFailureGuard | null;
}

/** The limiters `config` asks for. */
export function createLimits(
  config: Pick<ResolvedConfig, "auth" | "rateLimit" | "rateBurst" | "rateLimitScope">,
  clock: { now(): number },
  store: Store,
): Limits {
  return {
    requests: config.rateLimit === undefined ? null : new RateLimiter({
      rate: config.rateLimit,
      burst: config.rateBurst,
      clock,
      globalStore: config.rateLimitScope === "global" ? store : undefined,
    }),
    failures: config.auth ? new AuthFailureGuard(clock) : null,
  };
}

/** Client addresses of socket upgrade requests, noted by the app (the upgrade sees only the request). */
const addresses = new WeakMap<Request, string>();

/** Notes the client address of a request, for {@linkcode addressOf}. */
export function noteAddress(request: Request, address: string): void {
  addresses.set(request, address);
}

/** The client address noted for a request, or `unknown`. */
export function addressOf(request: Request | undefined): string {
  return (request && addresses.get(request)) ?? "unknown";
}
