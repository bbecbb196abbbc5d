/**
 * API tokens: `sk_chorus_` + 32 random bytes, shown once at creation and stored only as a SHA-256
 * hash with scopes, an optional key/id prefix, an optional user and an optional expiry.
 * Verification looks the hash up (cached for a couple of seconds, so a revocation takes effect
 * everywhere within that time) and compares in constant time.
 * @module
 */
import { newUlid } from "../random.ts";
import { ChorusError } from "../errors.ts";
import { throttledWarn } from "../log.ts";
import type { Clock } from "../clock.ts";
import type { Store } from "../storage/store.ts";
import {
  TOKEN_BOOTSTRAP_KEY,
  TOKEN_PREFIX,
  tokenHashKey,
  tokenKey,
  tokenUsedKey,
} from "../storage/keys.ts";
import { ID_PATTERN } from "../actors/reel_api.ts";
import { TicketStore } from "./tickets.ts";

/**
 * Every scope a token can hold; `admin` implies all others. `users:impersonate` lets a token act
 * for users other than its own (interactions, comments, presence).
 */
export const SCOPES = [
  "kv:read",
  "kv:write",
  "contexts:read",
  "contexts:write",
  "reels:read",
  "reels:write",
  "users:impersonate",
  "admin",
] as const;

/** One scope. */
export type Scope = typeof SCOPES[number];

/** A token as stored (never the secret itself). */
export interface TokenRecord {
  id: string;
  name?: string;
  /** SHA-256 of the secret, hex. */
  hash: string;
  scopes: Scope[];
  /** Keys / ids the token is limited to (a string prefix), if any. */
  prefix?: string;
  /** The user the token acts for; absent: the token id. */
  user_id?: string;
  /** Expiry, ms since epoch. */
  expires_at?: number;
  created_at: number;
}

/** A token as shown by the API (no hash, no secret). */
export interface TokenInfo {
  id: string;
  name?: string;
  scopes: Scope[];
  prefix?: string;
  user_id?: string;
  expires_at?: number;
  created_at: number;
  last_used_at?: number;
}

/** Who is calling: a stored token, the bootstrap admin token, or nobody (auth off). */
export interface Principal {
  /** Token id, `admin` for the bootstrap token, `anonymous` when auth is off. */
  id: string;
  scopes: ReadonlySet<Scope>;
  prefix?: string;
  /**
   * The user the principal acts for: its interactions, comments and presence, and the key of its
   * sockets' presence. The token's `user_id`, else the token id (`admin`, `anonymous`).
   */
  userId: string;
}

/** Options of {@linkcode TokenStore.create}. */
export interface CreateTokenOptions {
  scopes: Scope[];
  prefix?: string;
  /** Seconds until the token expires. */
  ttl?: number;
  name?: string;
  /** The user the token acts for (a reel/user id); default the token id. */
  user_id?: string;
}

const TOKEN_PREFIX_TEXT = "sk_chorus_";
const CACHE_MS = 2000;
const USED_EVERY_MS = 60_000;
const encoder = new TextEncoder();

/** SHA-256 of a string, as lowercase hex. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Compares two strings in time that depends only on their length. */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** A new secret: `sk_chorus_` + 32 bytes from `crypto.getRandomValues`, base64url. */
export function newSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const b64 = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
  return TOKEN_PREFIX_TEXT + b64;
}

/** Whether a principal holds a scope (`admin` holds all). */
export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.has("admin") || principal.scopes.has(scope);
}

/** Validates a scope list. @throws {ChorusError} `invalid_request` */
export function parseScopes(scopes: unknown): Scope[] {
  if (!Array.isArray(scopes) || scopes.length === 0) {
    throw new ChorusError(
      "invalid_request",
      "Cannot create a token: scopes must be a non-empty list",
    );
  }
  for (const s of scopes) {
    if (!SCOPES.includes(s)) {
      throw new ChorusError("invalid_request", `Cannot create a token: unknown scope "${s}"`, {
        details: { allowed: [...SCOPES] },
      });
    }
  }
  return [...new Set(scopes as Scope[])];
}

/** Stores, verifies, lists and revokes tokens. */
export class TokenStore {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #adminHash?: Promise<string>;
  readonly #cache = new Map<string, { record: TokenRecord | null; at: number }>();
  readonly #usedAt = new Map<string, number>();
  readonly #touchWarn = throttledWarn(60_000, () => this.#clock.now());
  readonly #verified = new Map<
    string,
    { principal: Principal | null; at: number; expiresAt?: number }
  >();
  readonly #expiry = new Map<string, number>();
  /** Short-lived, single-use stream tickets issued for these tokens (kept in the same store). */
  readonly tickets: TicketStore;

  /** Tokens kept in `store`; `adminToken` (CHORUS_ADMIN_TOKEN) is accepted as an admin token. */
  constructor(store: Store, clock: Clock, adminToken?: string) {
    this.#store = store;
    this.#clock = clock;
    if (adminToken) this.#adminHash = sha256Hex(adminToken);
    this.tickets = new TicketStore(store, clock, (id) => this.live(id));
  }

  /**
   * Whether the token with this id is still valid (not revoked, not expired), read from KV: the
   * configured admin token (`admin`) and the anonymous principal (auth off) always are.
   */
  async live(id: string): Promise<boolean> {
    if (id === "anonymous" || (id === "admin" && this.#adminHash)) return true;
    const record = (await this.#store.get<TokenRecord>(tokenKey(id), "strong")).value;
    return record !== null && (record.expires_at === undefined ||
      record.expires_at > this.#clock.now());
  }

  /**
   * Creates a token and returns its secret — the only time the secret is available.
   * @throws {ChorusError} `invalid_request` for bad scopes, prefix or ttl
   */
  async create(options: CreateTokenOptions): Promise<{ token: string; info: TokenInfo }> {
    const scopes = parseScopes(options.scopes);
    if (options.prefix !== undefined && (typeof options.prefix !== "string" || !options.prefix)) {
      throw new ChorusError("invalid_request", "Cannot create a token: prefix must be non-empty");
    }
    if (
      options.ttl !== undefined && (!Number.isFinite(options.ttl) || options.ttl <= 0)
    ) {
      throw new ChorusError("invalid_request", "Cannot create a token: ttl must be above 0");
    }
    if (
      options.user_id !== undefined &&
      (typeof options.user_id !== "string" || !ID_PATTERN.test(options.user_id) ||
        options.user_id === "." || options.user_id === "..")
    ) {
      throw new ChorusError(
        "invalid_request",
        "Cannot create a token: user_id must be a user id (1 to 128 characters of A-Z a-z 0-9 _ . : -)",
      );
    }
    const secret = newSecret();
    const now = this.#clock.now();
    const record: TokenRecord = {
      id: newUlid(now),
      hash: await sha256Hex(secret),
      scopes,
      created_at: now,
    };
    if (options.name) record.name = options.name;
    if (options.prefix) record.prefix = options.prefix;
    if (options.user_id) record.user_id = options.user_id;
    if (options.ttl) record.expires_at = now + options.ttl * 1000;
    const result = await this.#store.commit({
      checks: [{ key: tokenHashKey(record.hash), versionstamp: null }],
      mutations: [
        { type: "set", key: tokenKey(record.id), value: record },
        { type: "set", key: tokenHashKey(record.hash), value: record.id },
      ],
      bytes: 512,
    });
    if (!result.ok) throw new ChorusError("conflict", "Cannot create a token: try again");
    return { token: secret, info: infoOf(record) };
  }

  /** Lists tokens (never their secrets or hashes). */
  async list(): Promise<TokenInfo[]> {
    const out: TokenInfo[] = [];
    for await (const entry of this.#store.list<TokenRecord>({ prefix: [...TOKEN_PREFIX] })) {
      const info = infoOf(entry.value);
      const used = await this.#store.get<number>(tokenUsedKey(entry.value.id), "eventual");
      if (used.value) info.last_used_at = used.value;
      out.push(info);
    }
    return out;
  }

  /** Revokes a token. @throws {ChorusError} `not_found` */
  async revoke(id: string): Promise<void> {
    // Token ids are ULIDs: anything else names no token (and could be too long for a KV key).
    const entry = /^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)
      ? await this.#store.get<TokenRecord>(tokenKey(id))
      : { value: null };
    if (!entry.value) {
      throw new ChorusError("not_found", `Cannot revoke token "${id}": no such token`);
    }
    await this.#store.commit({
      checks: [],
      mutations: [
        { type: "delete", key: tokenKey(id) },
        { type: "delete", key: tokenHashKey(entry.value.hash) },
        { type: "delete", key: tokenUsedKey(id) },
      ],
      bytes: 256,
    });
    this.#cache.delete(entry.value.hash);
    for (const [secret, v] of this.#verified) {
      if (v.principal?.id === id) this.#verified.delete(secret);
    }
  }

  /**
   * Resolves a presented secret to a principal, or null when it is unknown, revoked or expired.
   * Lookups are cached for two seconds per hash.
   */
  async verify(secret: string): Promise<Principal | null> {
    if (typeof secret !== "string" || secret.length > 256) return null;
    // Recently verified secrets skip hashing (memory only, for the cache time): the hot path.
    const now = this.#clock.now();
    const recent = this.#verified.get(secret);
    if (recent && now - recent.at <= CACHE_MS) {
      const p = recent.principal;
      if (p && (recent.expiresAt === undefined || recent.expiresAt > now)) {
        this.#touch(p.id, now);
        return p;
      }
      if (!p) return null;
    }
    const principal = await this.#verifyHashed(secret, now);
    this.#verified.set(secret, {
      principal,
      at: now,
      expiresAt: principal ? this.#expiry.get(principal.id) : undefined,
    });
    if (this.#verified.size > 10_000) this.#verified.delete(this.#verified.keys().next().value!);
    return principal;
  }

  async #verifyHashed(secret: string, now: number): Promise<Principal | null> {
    const hash = await sha256Hex(secret);
    if (this.#adminHash && timingSafeEqual(hash, await this.#adminHash)) {
      return { id: "admin", scopes: new Set(["admin"]), userId: "admin" };
    }
    if (!secret.startsWith(TOKEN_PREFIX_TEXT)) return null;
    let cached = this.#cache.get(hash);
    if (!cached || now - cached.at > CACHE_MS) {
      const index = await this.#store.get<string>(tokenHashKey(hash), "strong");
      const record = index.value
        ? (await this.#store.get<TokenRecord>(tokenKey(index.value), "strong")).value
        : null;
      cached = { record, at: now };
      this.#cache.set(hash, cached);
      if (this.#cache.size > 10_000) this.#cache.delete(this.#cache.keys().next().value!);
    }
    const record = cached.record;
    if (!record || !timingSafeEqual(record.hash, hash)) return null;
    if (record.expires_at !== undefined && record.expires_at <= now) return null;
    if (record.expires_at !== undefined) this.#expiry.set(record.id, record.expires_at);
    this.#touch(record.id, now);
    return {
      id: record.id,
      scopes: new Set(record.scopes),
      prefix: record.prefix,
      userId: record.user_id ?? record.id,
    };
  }

  /** Records use at most once a minute per token, off the request path. */
  #touch(id: string, now: number): void {
    const last = this.#usedAt.get(id) ?? 0;
    if (now - last < USED_EVERY_MS) return;
    this.#usedAt.set(id, now);
    this.#store.commit({
      checks: [],
      mutations: [{ type: "set", key: tokenUsedKey(id), value: now }],
      bytes: 64,
    }).catch((error) => {
      this.#touchWarn("token last-used time not recorded", { error, id, usedAt: now });
    });
  }

  /**
   * With auth on and no configured admin token, issues one admin token the first time any
   * instance starts on this KV (claimed atomically) and returns it; otherwise null.
   */
  /** When the first admin token was made (ms since epoch), or null if it never was. */
  async bootstrappedAt(): Promise<number | null> {
    return (await this.#store.get<number>(TOKEN_BOOTSTRAP_KEY)).value;
  }

  async bootstrap(): Promise<string | null> {
    if (this.#adminHash) return null;
    const claimed = await this.#store.get(TOKEN_BOOTSTRAP_KEY);
    if (claimed.value) return null;
    const claim = await this.#store.commit({
      checks: [{ key: TOKEN_BOOTSTRAP_KEY, versionstamp: null }],
      mutations: [{ type: "set", key: TOKEN_BOOTSTRAP_KEY, value: this.#clock.now() }],
      bytes: 64,
    });
    if (!claim.ok) return null;
    const { token } = await this.create({ scopes: ["admin"], name: "bootstrap admin" });
    return token;
  }
}

function infoOf(record: TokenRecord): TokenInfo {
  const info: TokenInfo = { id: record.id, scopes: record.scopes, created_at: record.created_at };
  if (record.name) info.name = record.name;
  if (record.prefix) info.prefix = record.prefix;
  if (record.user_id) info.user_id = record.user_id;
  if (record.expires_at) info.expires_at = record.expires_at;
  return info;
}
