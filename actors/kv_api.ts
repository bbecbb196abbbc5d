/**
 * The kv product as a typed API over kv actors: what `chorus.kv` exposes to embedding programs and
 * what the HTTP routes call. It validates input, encodes values before they enter a mailbox, and
 * picks the read path for each consistency mode.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { throttledWarn } from "../log.ts";
import type { Consistency, ResolvedConfig } from "../config.ts";
import type { Registry } from "./registry.ts";
import type { Store } from "../storage/store.ts";
import {
  assertStorableJson,
  compressionOptions,
  type CompressionReport,
  compressionReport,
  compressionStatsOf,
  type EncodedValue,
  encodeValue,
  frozenJsonCopy,
} from "../storage/codec.ts";
import { KV_HEAD_PREFIX, kvHeadKey } from "../storage/keys.ts";
import { decodeKvHead } from "../storage/kv_head.ts";
import { writeTogether } from "./write_together.ts";
import {
  isLive,
  type KvActor,
  type KvChange,
  type KvEntry,
  type KvTx,
  loadKvRecord,
  logCost,
  readKvLog,
} from "./kv_actor.ts";
import type { Clock } from "../clock.ts";
import type { WriterAnswer } from "../storage/one_writer.ts";
import { HandOver } from "./hand_over.ts";

export type { KvChange, KvEntry };

/** Most items in one bulk request. */
export const MAX_BULK_ITEMS = 500;
/** Most items in one list page. */
export const MAX_LIST_LIMIT = 1000;
/** Longest TTL accepted: ten years, in seconds. */
export const MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;
const MAX_KEY_BYTES = 1024;
/** Longest JSON of a safe integer (`-9007199254740991`): what an incr's change can carry. */
const MAX_INTEGER_JSON = 17;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const encoder = new TextEncoder();

/**
 * Checks a key: UTF-8, 1–1024 bytes, no control characters.
 * @throws {ChorusError} `invalid_key`
 */
export function validateKey(key: unknown): string {
  if (typeof key !== "string" || key.length === 0) {
    throw new ChorusError("invalid_key", `Cannot use key "${key}": a key is 1 to 1024 bytes`);
  }
  if (CONTROL.test(key)) {
    throw new ChorusError(
      "invalid_key",
      `Cannot use key ${JSON.stringify(key)}: it has a control character`,
    );
  }
  if (key.isWellFormed && !key.isWellFormed()) {
    throw new ChorusError("invalid_key", `Cannot use key ${JSON.stringify(key)}: not valid UTF-8`);
  }
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short keys need no encoding to check.
  const bytes = key.length * 3 <= MAX_KEY_BYTES ? 0 : encoder.encode(key).byteLength;
  if (bytes > MAX_KEY_BYTES) {
    throw new ChorusError(
      "invalid_key",
      `Cannot use key "${key.slice(0, 32)}…": ${bytes} bytes is over the 1024-byte limit`,
    );
  }
  return key;
}

/**
 * Checks a TTL in seconds: a positive finite number up to ten years.
 * @throws {ChorusError} `invalid_request`
 */
export function validateTtl(ttl: unknown): number {
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0 || ttl > MAX_TTL_SECONDS) {
    throw new ChorusError(
      "invalid_request",
      `Cannot use ttl ${JSON.stringify(ttl)}: it must be a number of seconds above 0`,
    );
  }
  return ttl;
}

/** A read result: the entry with its remaining TTL in seconds (null = no expiry). */
export interface KvValue {
  /** The key. */
  key: string;
  /** The stored JSON value (shared and frozen: do not change it). */
  value: unknown;
  /** The key's version (its ETag and fencing token). */
  version: number;
  /** Remaining seconds to live, or null when the key does not expire. */
  ttl: number | null;
  /** Expiry in ms since epoch, or null. */
  expires_at: number | null;
}

/** Result of a write. */
export interface KvWriteResult {
  /** The key written. */
  key: string;
  /** The version the write produced. */
  version: number;
  /** Expiry in ms since epoch, when the key has a TTL. */
  expires_at?: number;
}

/** Options of {@linkcode KvApi.put}. */
export interface KvPutOptions {
  /** Seconds to live. */
  ttl?: number;
  /** Force (true) or forbid (false) compression; default per configuration. */
  compress?: boolean;
  /** Write only if the current version is this (CAS, `If-Match`). */
  ifMatch?: number;
  /** Write only if the key is absent (`If-None-Match: *`); with `ttl`, a lease. */
  ifNoneMatch?: boolean;
  /** Write only if the key exists (`If-Match: *`). */
  ifExists?: boolean;
  /**
   * The caller hands `value` over (say, it was just parsed from a request and nothing else holds
   * it): it is deep-frozen in place instead of copied first. Default false: the value is copied
   * as JSON stores it (`toJSON` applied, `undefined` members left out), so the caller may go on
   * changing its own object and reads return the same value before and after a reload.
   */
  handOver?: boolean;
}

/** Options every embedded read and write takes. */
export interface KvCallOptions {
  /**
   * Milliseconds to wait for the answer (Concord's per-call `timeout`); past it the call rejects
   * with ChorusError `timeout`. A write may still land after that (read its version to find out),
   * as with an HTTP 504. Default: no limit (HTTP requests have `CHORUS_REQUEST_TIMEOUT`).
   */
  timeout?: number;
}

/** One live entry of {@linkcode KvApi.getAll} and {@linkcode KvApi.entries}. */
export interface KvListedEntry {
  /** The key. */
  key: string;
  /** The stored JSON value. */
  value: unknown;
  /** The key's version. */
  version: number;
  /** Remaining seconds to live (rounded up), or null when the key does not expire. */
  ttl: number | null;
}

/** A page of {@linkcode KvApi.list}. */
export interface KvListPage {
  /** Live keys in key order, with their values when asked for. */
  items: { key: string; version: number; ttl: number | null; value?: unknown }[];
  /** Pass back to get the next page; null at the end. */
  cursor: string | null;
}

/** Dependencies of {@linkcode KvApi}. */
export interface KvApiDeps {
  registry: Registry;
  store: Store;
  config: ResolvedConfig;
  clock: Clock;
  /**
   * Where writes go when the workers of one process on one KV file write through one of them
   * (see storage/one_writer.ts); the instance routes the writes handed to this one to
   * {@linkcode KvApi.serveHandedOver}.
   */
  handOver?: HandOver;
}

/** One item of {@linkcode KvApi.putMany}. */
interface PutItem {
  key: string;
  value: unknown;
  ttl?: number;
  compress?: boolean;
}

/** The kv writes that go through the writer. */
type HandedWrite = "put" | "delete" | "touch" | "incr" | "putMany" | "deleteMany" | "touchMany";

/** The kv product: strongly consistent keys with TTL, CAS, bulk, compression, list and watch. */
export class KvApi {
  readonly #deps: KvApiDeps;
  readonly #warmWarn: ReturnType<typeof throttledWarn>;

  /** Builds the API over an instance's registry, store, configuration and clock. */
  constructor(deps: KvApiDeps) {
    this.#deps = deps;
    this.#warmWarn = throttledWarn(60_000, () => deps.clock.now());
  }

  /** The worker that writes, when it is another one (see storage/one_writer.ts). */
  #elsewhere(): string | null {
    return this.#deps.handOver?.elsewhere() ?? null;
  }

  /** Hands a write of `keys` to `writer`, or runs it `here` when it cannot cross (hand_over.ts). */
  #handOver<T>(
    writer: string,
    op: HandedWrite,
    keys: string[],
    args: unknown[],
    here: () => Promise<T>,
  ): Promise<T> {
    return this.#deps.handOver!.call<T>(writer, `kv.${op}`, HandOver.of("kv", keys), args, here);
  }

  /**
   * Runs a kv write another worker handed over, here, and answers with the keys' head
   * versionstamps after it.
   * @internal Not part of the embedding API; the instance's writers' channel calls it.
   */
  async serveHandedOver(op: string, args: unknown[]): Promise<WriterAnswer> {
    let result: unknown;
    let keys: string[];
    switch (op.slice("kv.".length) as HandedWrite) {
      case "put":
        keys = [args[0] as string];
        result = await this.#put(keys[0], args[1], args[2] as KvPutOptions, true);
        break;
      case "delete":
        keys = [args[0] as string];
        result = await this.#delete(keys[0], args[1] as { ifMatch?: number }, true);
        break;
      case "touch":
        keys = [args[0] as string];
        result = await this.#touch(keys[0], args[1] as number, true);
        break;
      case "incr":
        keys = [args[0] as string];
        result = await this.#incr(keys[0], args[1] as { by?: number; ttl?: number }, true);
        break;
      case "putMany": {
        const items = args[0] as PutItem[];
        keys = items.map((item) => item.key);
        result = await this.#putMany(items, true);
        break;
      }
      case "deleteMany":
        keys = args[0] as string[];
        result = await this.#deleteMany(keys, true);
        break;
      case "touchMany": {
        const items = args[0] as { key: string; ttl: number }[];
        keys = items.map((item) => item.key);
        result = await this.#touchMany(items, true);
        break;
      }
      default:
        throw new ChorusError("internal", `Cannot run "${op}" for another worker: not a kv write`);
    }
    return this.#deps.handOver!.answer(HandOver.of("kv", keys), result);
  }

  #actor(key: string): KvActor {
    return this.#deps.registry.get<KvActor>("kv", key);
  }

  #ttlOf(expiresAt: number | null): number | null {
    if (expiresAt === null) return null;
    return Math.max(0, Math.ceil((expiresAt - this.#deps.clock.now()) / 1000));
  }

  #value(entry: KvEntry | undefined): KvValue | null {
    if (!entry) return null;
    return {
      key: entry.key,
      value: entry.value,
      version: entry.version,
      ttl: this.#ttlOf(entry.expiresAt),
      expires_at: entry.expiresAt,
    };
  }

  /**
   * Compression figures of the values this instance encoded for storage (kv values, contexts,
   * delta pages and export snapshots): how many, how many stored compressed, bytes before and
   * after, their ratio and the bytes saved. Also in `GET /api/v1/system/stats` and `/metrics`.
   *
   * @example
   * ```ts
   * import { Chorus } from "../mod.ts";
   * const chorus = await Chorus.open({ path: ":memory:" });
   * await chorus.kv.put("big", "x".repeat(4096));
   * const { compressed, ratio } = chorus.kv.compressionStats();
   * console.log(compressed, ratio); // 1, about 0.01
   * await chorus.close();
   * ```
   */
  compressionStats(): CompressionReport {
    return compressionReport(compressionStatsOf(this.#deps.config));
  }

  #encode(value: unknown, compress?: boolean): EncodedValue {
    return encodeValue(value, compressionOptions(this.#deps.config, compress));
  }

  /**
   * Reads a key; null when absent or expired.
   * @param options.consistency `strong`, `leader` (default from config) or `eventual`
   */
  get(
    key: string,
    options: { consistency?: Consistency } & KvCallOptions = {},
  ): Promise<KvValue | null> {
    // The hottest calls skip the timer wrapper (and the text it needs) when there is no timeout.
    if (options.timeout === undefined) return this.#get(key, options);
    return this.#timed(options, `get "${key}"`, () => this.#get(key, options));
  }

  /** Not `async`: a read served from the cache makes one promise, not three. */
  #get(key: string, options: { consistency?: Consistency } = {}): Promise<KvValue | null> {
    try {
      validateKey(key);
      const mode = options.consistency ?? this.#deps.config.readConsistency;
      if (mode === "eventual") {
        const loaded = this.#deps.registry.peek<KvActor>("kv", key);
        if (loaded?.status === "started") {
          return Promise.resolve(this.#value(loaded.peek(() => loaded.current())));
        }
        return this.#getEventual(key);
      }
      const actor = this.#actor(key);
      if (mode !== "strong" && actor.servesNow()) {
        return Promise.resolve(this.#value(actor.current()));
      }
      const read = () => this.#value(actor.current());
      return mode === "strong" ? actor.readStrong(read) : actor.read(read);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** An eventual read of a key whose actor is not loaded: from KV, loading the actor meanwhile. */
  async #getEventual(key: string): Promise<KvValue | null> {
    // Answer from KV without waiting, and load the actor (watched, as a leader read would) so the
    // key's next reads are served from memory.
    this.#actor(key).read(() => undefined).catch((error) => {
      this.#warmWarn("kv actor load after an eventual read failed; reads go to KV until it loads", {
        error,
        key,
      });
    });
    const loaded = await loadKvRecord(this.#deps.store, key, "eventual");
    if (!isLive(loaded.record, this.#deps.clock.now())) return null;
    return this.#value({
      key,
      value: loaded.value,
      version: loaded.record.v,
      expiresAt: loaded.record.e,
    });
  }

  /**
   * Writes a value.
   * @throws {ChorusError} `conflict` when `ifMatch`/`ifNoneMatch` fails, `payload_too_large`
   */
  put(
    key: string,
    value: unknown,
    options: KvPutOptions & KvCallOptions = {},
  ): Promise<KvWriteResult> {
    if (options.timeout === undefined) return this.#put(key, value, options);
    return this.#timed(options, `put "${key}"`, () => this.#put(key, value, options));
  }

  /** Not `async`, and answered by the op itself: a put makes one promise, the actor's. */
  #put(
    key: string,
    value: unknown,
    options: KvPutOptions = {},
    here = false,
  ): Promise<KvWriteResult> {
    try {
      validateKey(key);
      if (options.ttl !== undefined) validateTtl(options.ttl);
      const writer = here ? null : this.#elsewhere();
      if (writer) {
        // Copied here as JSON stores it (what the writer would store), so the clone is plain JSON.
        const json = options.handOver ? value : frozenJsonCopy(value);
        const args = [key, json, { ...options, handOver: true }];
        return this.#handOver(
          writer,
          "put",
          [key],
          args,
          () => this.#put(key, value, options, true),
        );
      }
      let owned: unknown;
      if (options.handOver) {
        assertStorableJson(value);
        owned = deepFreezeOwned(value);
      } else owned = frozenJsonCopy(value);
      const encoded = this.#encode(owned, options.compress);
      const actor = this.#actor(key);
      return actor.write(
        (tx) => writeResult(actor.putOp(tx, owned, encoded, options)),
        encoded.bytes.byteLength + logCost(key, encoded.rawSize),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Deletes a key.
   * @throws {ChorusError} `not_found` when absent, `conflict` when `ifMatch` fails
   */
  delete(
    key: string,
    options: { ifMatch?: number } & KvCallOptions = {},
  ): Promise<{ deleted: true }> {
    return this.#timed(options, `delete "${key}"`, () => this.#delete(key, options));
  }

  async #delete(
    key: string,
    options: { ifMatch?: number } = {},
    here = false,
  ): Promise<{ deleted: true }> {
    validateKey(key);
    const writer = here ? null : this.#elsewhere();
    if (writer) {
      const args = [key, { ifMatch: options.ifMatch }];
      return this.#handOver(writer, "delete", [key], args, () => this.#delete(key, options, true));
    }
    const actor = this.#actor(key);
    await actor.write((tx) => actor.deleteOp(tx, options), logCost(key, Infinity));
    return { deleted: true };
  }

  /**
   * Sets a new TTL on a live key, keeping its version.
   * @throws {ChorusError} `not_found`
   */
  touch(key: string, ttl: number, options: KvCallOptions = {}): Promise<KvWriteResult> {
    return this.#timed(options, `touch "${key}"`, () => this.#touch(key, ttl));
  }

  async #touch(key: string, ttl: number, here = false): Promise<KvWriteResult> {
    validateKey(key);
    validateTtl(ttl);
    const writer = here ? null : this.#elsewhere();
    if (writer) {
      return this.#handOver(writer, "touch", [key], [key, ttl], () => this.#touch(key, ttl, true));
    }
    const actor = this.#actor(key);
    const entry = await actor.write((tx) => actor.touchOp(tx, ttl));
    return writeResult(entry!);
  }

  /** Remaining seconds to live: null when the key has no expiry. @throws `not_found` */
  async ttl(key: string, options: { consistency?: Consistency } = {}): Promise<number | null> {
    const found = await this.get(key, options);
    if (!found) throw new ChorusError("not_found", `Cannot read the ttl of "${key}": no such key`);
    return found.ttl;
  }

  /**
   * Adds `by` (default 1) to an integer value atomically, creating it at 0 when absent; `ttl`
   * applies when the key is created (a fixed window, as rate limiters want).
   * @throws {ChorusError} `conflict` when the value is not an integer
   */
  incr(
    key: string,
    options: { by?: number; ttl?: number } & KvCallOptions = {},
  ): Promise<{ key: string; value: number; version: number }> {
    return this.#timed(options, `incr "${key}"`, () => this.#incr(key, options));
  }

  async #incr(
    key: string,
    options: { by?: number; ttl?: number } = {},
    here = false,
  ): Promise<{ key: string; value: number; version: number }> {
    validateKey(key);
    const by = options.by ?? 1;
    if (!Number.isSafeInteger(by)) {
      throw new ChorusError("invalid_request", `Cannot incr "${key}" by ${by}: not an integer`);
    }
    if (options.ttl !== undefined) validateTtl(options.ttl);
    const writer = here ? null : this.#elsewhere();
    if (writer) {
      const args = [key, { by, ttl: options.ttl }];
      return this.#handOver(writer, "incr", [key], args, () => this.#incr(key, options, true));
    }
    const actor = this.#actor(key);
    const r = await actor.write(
      (tx) => actor.incrOp(tx, by, options.ttl, (n) => this.#encode(n)),
      logCost(key, MAX_INTEGER_JSON),
    );
    return { key, value: r.value, version: r.version };
  }

  /** Writes up to 500 items, all or nothing. */
  putMany(
    items: { key: string; value: unknown; ttl?: number; compress?: boolean }[],
    options: KvCallOptions = {},
  ): Promise<{ items: KvWriteResult[] }> {
    return this.#timed(options, "write the items", () => this.#putMany(items));
  }

  async #putMany(items: PutItem[], here = false): Promise<{ items: KvWriteResult[] }> {
    checkBulk(items.length);
    const writer = here ? null : this.#elsewhere();
    // Handed over as JSON copies; encoded here (sizes checked item by item) when written here.
    const plain: PutItem[] = [];
    const prepared: { key: string; value: unknown; encoded: EncodedValue; ttl?: number }[] = [];
    items.forEach((item, i) => {
      validateKey(item.key);
      if (item.ttl !== undefined) validateTtl(item.ttl);
      const value = frozenJsonCopy(item.value, `item ${i}`);
      if (writer) plain.push({ key: item.key, value, ttl: item.ttl, compress: item.compress });
      else {
        const encoded = this.#encodeItem(value, item.compress, i);
        prepared.push({ key: item.key, value, encoded, ttl: item.ttl });
      }
    });
    if (writer) {
      const keys = items.map((item) => item.key);
      return this.#handOver(writer, "putMany", keys, [plain], () => this.#putMany(items, true));
    }
    const results = await writeTogether(
      this.#deps.store,
      prepared.map((p) => {
        const actor = this.#actor(p.key);
        return { actor, op: (tx: KvTx) => actor.putOp(tx, p.value, p.encoded, { ttl: p.ttl }) };
      }),
    ) as KvEntry[];
    return { items: results.map(writeResult) };
  }

  #encodeItem(value: unknown, compress: boolean | undefined, index: number): EncodedValue {
    try {
      return this.#encode(value, compress);
    } catch (e) {
      if (e instanceof ChorusError) {
        throw new ChorusError(e.code, `Item ${index}: ${e.message}`, {
          details: { ...e.details, index },
        });
      }
      throw e;
    }
  }

  /** Reads up to 500 keys; each result says whether it was found. */
  getMany(
    keys: string[],
    options: { consistency?: Consistency } & KvCallOptions = {},
  ): Promise<{ items: (KvValue & { found: true } | { key: string; found: false })[] }> {
    return this.#timed(options, "read the keys", () => this.#getMany(keys, options));
  }

  async #getMany(
    keys: string[],
    options: { consistency?: Consistency } = {},
  ): Promise<{ items: (KvValue & { found: true } | { key: string; found: false })[] }> {
    checkBulk(keys.length);
    keys.forEach(validateKey);
    const found = await Promise.all(keys.map((k) => this.#get(k, options)));
    return {
      items: found.map((v, i) =>
        v ? { ...v, found: true as const } : { key: keys[i], found: false }
      ),
    };
  }

  /** Deletes up to 500 keys, all or nothing; absent keys are skipped and not counted. */
  deleteMany(
    keys: string[],
    options: KvCallOptions = {},
  ): Promise<{ deleted: number; keys: string[] }> {
    return this.#timed(options, "delete the keys", () => this.#deleteMany(keys));
  }

  async #deleteMany(keys: string[], here = false): Promise<{ deleted: number; keys: string[] }> {
    checkBulk(keys.length);
    keys.forEach(validateKey);
    const writer = here ? null : this.#elsewhere();
    if (writer) {
      return this.#handOver(writer, "deleteMany", keys, [keys], () => this.#deleteMany(keys, true));
    }
    const results = await writeTogether(
      this.#deps.store,
      keys.map((key) => {
        const actor = this.#actor(key);
        return { actor, op: (tx: KvTx) => actor.deleteOp(tx, { missingOk: true }) };
      }),
    ) as boolean[];
    const deleted = keys.filter((_, i) => results[i]);
    return { deleted: deleted.length, keys: deleted };
  }

  /** Sets TTLs on up to 500 keys, all or nothing; absent keys are skipped and not counted. */
  touchMany(
    items: { key: string; ttl: number }[],
    options: KvCallOptions = {},
  ): Promise<{ touched: number; items: KvWriteResult[] }> {
    return this.#timed(options, "touch the keys", () => this.#touchMany(items));
  }

  async #touchMany(
    items: { key: string; ttl: number }[],
    here = false,
  ): Promise<{ touched: number; items: KvWriteResult[] }> {
    checkBulk(items.length);
    for (const item of items) {
      validateKey(item.key);
      validateTtl(item.ttl);
    }
    const writer = here ? null : this.#elsewhere();
    if (writer) {
      const plain = items.map(({ key, ttl }) => ({ key, ttl }));
      const keys = plain.map((item) => item.key);
      return this.#handOver(writer, "touchMany", keys, [plain], () => this.#touchMany(items, true));
    }
    const results = await writeTogether(
      this.#deps.store,
      items.map((item) => {
        const actor = this.#actor(item.key);
        return { actor, op: (tx: KvTx) => actor.touchOp(tx, item.ttl, { missingOk: true }) };
      }),
    ) as (KvEntry | undefined)[];
    const touched = results.filter((r): r is KvEntry => r !== undefined).map(writeResult);
    return { touched: touched.length, items: touched };
  }

  /**
   * Lists live keys in key order.
   * @param options.prefix only keys starting with this
   * @param options.limit page size, 1–1000 (default 100)
   * @param options.cursor from the previous page
   * @param options.values include values
   */
  async list(
    options: {
      prefix?: string;
      limit?: number;
      cursor?: string;
      values?: boolean;
      consistency?: Consistency;
    } = {},
  ): Promise<KvListPage> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new ChorusError("invalid_request", `Cannot list with limit ${limit}: use 1 to 1000`);
    }
    const prefix = options.prefix ?? "";
    const selector: Deno.KvListSelector = prefix
      ? { start: kvHeadKey(prefix), end: kvHeadKey(prefix + "\u{10FFFF}") }
      : { prefix: [...KV_HEAD_PREFIX] };
    const consistency = options.consistency === "eventual" ? "eventual" : "strong";
    const now = this.#deps.clock.now();
    const items: KvListPage["items"] = [];
    let cursor = options.cursor;
    // Deno KV cursors are base64 (standard or url-safe alphabet, with padding).
    if (cursor !== undefined && !/^[A-Za-z0-9+/_=-]+$/.test(cursor)) badCursor(cursor);
    // Dead entries (tombstones, expired) are skipped, so a page may take more than one KV read.
    let more = true;
    while (more && items.length < limit) {
      const want = limit - items.length;
      const iter = this.#deps.store.list(selector, { limit: want, cursor, consistency });
      let seen = 0;
      try {
        for await (const entry of iter) {
          seen++;
          const item = await this.#listItem(entry, now, options.values === true, consistency);
          if (item) items.push(item);
        }
      } catch (e) {
        if (e instanceof ChorusError) throw e;
        // KV refuses a malformed cursor with a TypeError; anything else is KV failing.
        if (e instanceof TypeError && /cursor/i.test(e.message)) badCursor(cursor ?? "");
        throw new ChorusError("unavailable", "Cannot list: KV is not reachable", { cause: e });
      }
      more = seen === want;
      cursor = iter.cursor || cursor;
    }
    return { items, cursor: more ? cursor ?? null : null };
  }

  /**
   * Every live entry under `prefix` (all keys when empty), with values and TTLs, in key order, as
   * one array: Concord's `getAll(prefix)`. It reads page after page of {@linkcode KvApi.entries};
   * for large sets iterate those pages instead.
   *
   * @example
   * ```ts
   * import { Chorus } from "../mod.ts";
   * const chorus = await Chorus.open({ path: ":memory:" });
   * await chorus.kv.put("user:1", { name: "Ada" }, { ttl: 60 });
   * await chorus.kv.put("user:2", { name: "Lin" });
   * const all = await chorus.kv.getAll("user:");
   * // [{ key: "user:1", value: { name: "Ada" }, version: 1, ttl: 60 },
   * //  { key: "user:2", value: { name: "Lin" }, version: 1, ttl: null }]
   * await chorus.close();
   * ```
   * @param options.pageSize entries read per KV page, 1–1000 (default 1000)
   * @param options.timeout milliseconds for the whole call before rejecting with `timeout`
   * @throws {ChorusError} `invalid_request` for a bad option; `timeout`
   */
  getAll(
    prefix = "",
    options: { pageSize?: number; consistency?: Consistency } & KvCallOptions = {},
  ): Promise<KvListedEntry[]> {
    return this.#timed(options, `get all of "${prefix}"`, async () => {
      const out: KvListedEntry[] = [];
      for await (const page of this.entries(prefix, options)) out.push(...page);
      return out;
    });
  }

  /**
   * The live entries under `prefix`, with values and TTLs, one page (an array) at a time in key
   * order — the embedded form of `GET /api/v1/kv?prefix=&values=true` followed cursor by cursor.
   *
   * @example
   * ```ts
   * import { Chorus } from "../mod.ts";
   * const chorus = await Chorus.open({ path: ":memory:" });
   * for (let i = 0; i < 250; i++) await chorus.kv.put(`log:${i}`, i);
   * for await (const page of chorus.kv.entries("log:", { pageSize: 100 })) {
   *   console.log(page.length); // 100, 100, 50
   * }
   * await chorus.close();
   * ```
   * @param options.pageSize entries per page, 1–1000 (default 1000)
   * @throws {ChorusError} `invalid_request` for a bad page size
   */
  async *entries(
    prefix = "",
    options: { pageSize?: number; consistency?: Consistency } = {},
  ): AsyncGenerator<KvListedEntry[], void, undefined> {
    let cursor: string | undefined;
    do {
      const page = await this.list({
        prefix,
        limit: options.pageSize ?? MAX_LIST_LIMIT,
        cursor,
        values: true,
        consistency: options.consistency,
      });
      const items = page.items.map(({ key, value, version, ttl }) => ({
        key,
        value,
        version,
        ttl,
      }));
      if (items.length) yield items;
      cursor = page.cursor ?? undefined;
    } while (cursor !== undefined);
  }

  /** Runs `work`, rejecting with `timeout` when `options.timeout` ms pass first. */
  #timed<T>(options: KvCallOptions, what: string, work: () => Promise<T>): Promise<T> {
    const ms = options.timeout;
    if (ms === undefined) return work();
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0) {
      return Promise.reject(
        new ChorusError(
          "invalid_request",
          `Cannot ${what}: timeout must be a number of ms above 0`,
        ),
      );
    }
    const clock = this.#deps.clock;
    return new Promise<T>((resolve, reject) => {
      const timer = clock.setTimeout(() => {
        reject(
          new ChorusError("timeout", `Cannot ${what}: no answer within ${ms} ms`, {
            details: { timeout_ms: ms, concord: "TIMEOUT" },
          }),
        );
      }, ms);
      work().then(resolve, reject).finally(() => clock.clearTimeout(timer));
    });
  }

  async #listItem(
    entry: Deno.KvEntry<unknown>,
    now: number,
    values: boolean,
    consistency: "strong" | "eventual",
  ): Promise<KvListPage["items"][number] | undefined> {
    const rec = decodeKvHead(entry.value);
    if (!isLive(rec, now)) return undefined;
    const key = entry.key[1] as string;
    if (!values) return { key, version: rec.v, ttl: this.#ttlOf(rec.e) };
    const loaded = await loadKvRecord(this.#deps.store, key, consistency);
    if (!isLive(loaded.record, now)) return undefined;
    return {
      key,
      version: loaded.record.v,
      ttl: this.#ttlOf(loaded.record.e),
      value: loaded.value,
    };
  }

  /**
   * The key's current version — counting deletes and expiries, which a read of the value does not
   * show — with its live entry, if any: where a subscriber's stream of changes starts.
   * @param options.consistency `strong`, `leader` (default) or `eventual`: the loaded actor as it
   *   stands, with no KV confirmation (an actor not yet loaded is loaded, as for `leader`)
   */
  async head(
    key: string,
    options: { consistency?: Consistency } = {},
  ): Promise<{ version: number; entry: KvValue | null }> {
    validateKey(key);
    const actor = this.#actor(key);
    const read = () => ({ version: actor.version(), entry: this.#value(actor.current()) });
    if (options.consistency === "eventual" && actor.status === "started") return actor.peek(read)!;
    return options.consistency === "strong" ? await actor.readStrong(read) : await actor.read(read);
  }

  /**
   * The retained changes of `key` after version `since`, in order; null when the log no longer
   * holds all of them (they were made while nobody watched the key, or have aged out), so a
   * caller must start again from the current value.
   */
  async history(key: string, since: number): Promise<KvChange[] | null> {
    validateKey(key);
    const actor = this.#actor(key);
    const current = await actor.readStrong(() => actor.version());
    if (since >= current) return [];
    const changes = await readKvLog(this.#deps.store, key, since, current);
    const complete = changes[0]?.version === since + 1 && changes.at(-1)?.version === current;
    return complete ? changes : null;
  }

  /**
   * Calls `listener` for every change of `key` (set, delete, expire), on this instance or any
   * other on the same KV. With `since`, first replays retained changes after that version.
   * @returns a function that stops watching
   */
  async watch(
    key: string,
    listener: (change: KvChange) => void,
    options: { since?: number } = {},
  ): Promise<() => void> {
    validateKey(key);
    const actor = this.#actor(key);
    // Mark the key watched before subscribing: from the mark's commit on, every instance logs
    // this key's changes, so nothing after this point can be missed.
    await actor.markWatched();
    let last = options.since ?? Infinity;
    const buffered: KvChange[] = [];
    let replaying = options.since !== undefined;
    const unsubscribe = actor.subscribe((change) => {
      if (replaying) buffered.push(change);
      else if (change.version > last || last === Infinity) {
        last = change.version;
        listener(change);
      }
    });
    if (options.since !== undefined) {
      const logged = await this.history(key, options.since);
      if (logged === null) {
        // Changes made while nobody watched (or older than the log keeps) are not in the log: say
        // so with one event carrying the current state instead of a partial replay.
        const current = await actor.read(() => actor.snapshot());
        last = current.version;
        listener(current);
      } else {
        for (const change of logged) {
          if (change.version > last) {
            last = change.version;
            listener(change);
          }
        }
      }
      replaying = false;
      for (const change of buffered) {
        if (change.version > last) {
          last = change.version;
          listener(change);
        }
      }
    }
    return unsubscribe;
  }
}

function deepFreezeOwned<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreezeOwned(v);
  }
  return value;
}

function writeResult(entry: KvEntry): KvWriteResult {
  const out: KvWriteResult = { key: entry.key, version: entry.version };
  if (entry.expiresAt !== null) out.expires_at = entry.expiresAt;
  return out;
}

function checkBulk(count: number): void {
  if (count < 1 || count > MAX_BULK_ITEMS) {
    // Concord's name for this, for its users' error handling (README, "Coming from Concord").
    throw new ChorusError(
      "invalid_request",
      `Cannot run a bulk request of ${count} items: send 1 to ${MAX_BULK_ITEMS}`,
      { details: { concord: count < 1 ? "INVALID_REQUEST" : "BATCH_TOO_LARGE" } },
    );
  }
}

function badCursor(cursor: string): never {
  throw new ChorusError(
    "invalid_request",
    `Cannot list from cursor "${cursor}": not a valid cursor`,
  );
}
