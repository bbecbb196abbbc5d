/**
 * The actor that owns one kv key: its value (cached decoded), version, expiry and change log.
 * Writes are group-committed by the base; each op here validates first and then changes the
 * working copy, so a refused op leaves nothing behind.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { log } from "../log.ts";
import type { Intent, Mutation, Store } from "../storage/store.ts";
import { type BlobRef, dropBlob, layoutBlob, readBlob } from "../storage/chunked.ts";
import { kvChunkKey, kvHeadKey, kvLogKey, kvLogPrefix } from "../storage/keys.ts";
import { decodeKvHead, encodeKvHead, type KvRecord } from "../storage/kv_head.ts";
import {
  compressionOptions,
  deepFreeze,
  type EncodedValue,
  encodeValue,
} from "../storage/codec.ts";
import { Actor, type ActorContext } from "./actor.ts";
import { EmittedVersion } from "./emitted_version.ts";
import type { TimerId } from "../clock.ts";

/** How long a deleted or expired key's version is remembered, so versions keep rising. */
export const TOMBSTONE_MS = 24 * 3_600_000;
/** How long a watch mark lasts; instances with watchers renew it at a third of that. */
export const WATCH_MARK_MS = 60_000;
/** Values up to this many JSON bytes are copied into change-log entries and events. */
export const LOG_VALUE_BYTES = 8 * 1024;

/** The head record stored at `["kv", key]` (its stored layout: storage/kv_head.ts). */
export type { KvRecord };

/** A change of a key, as sent to watchers (SSE, sockets, in-process listeners). */
export interface KvChange {
  /** The key that changed. */
  key: string;
  /** What happened: a write (put or incr), a delete, or a TTL running out. */
  op: "set" | "delete" | "expire";
  /** The version the change produced; changes of a key arrive in version order. */
  version: number;
  /** The new value for `set`, when at most {@linkcode LOG_VALUE_BYTES} of JSON. */
  value?: unknown;
  /** True when the value was too large to include. */
  value_omitted?: true;
  /**
   * True on an event that stands for changes no longer in the log (made while nobody watched, or
   * older than its retention): it carries the current state.
   */
  resync?: true;
  /** The new expiry of a `set` (ms since epoch), or null for none. */
  expires_at?: number | null;
  /** When the change was made (ms since epoch). */
  at: number;
}

/** The cached state of a key. */
export interface KvState {
  record: KvRecord | null;
  value: unknown;
}

/** The working copy during one write batch. */
export interface KvTx {
  now: number;
  record: KvRecord | null;
  value: unknown;
  /** New bytes when the value changed in this batch. */
  bytes?: EncodedValue;
  changes: KvChange[];
  /** Each change's value size in JSON bytes, by position (`Infinity`: no value), to size log pages. */
  sizes: number[];
  dirty: boolean;
}

/** A value as returned by reads. */
export interface KvEntry {
  key: string;
  value: unknown;
  version: number;
  /** Expiry in ms since epoch, or null. */
  expiresAt: number | null;
}

/** Options of a put. */
export interface PutOptions {
  /** Seconds to live. */
  ttl?: number;
  /** Succeeds only when the current version equals this (`If-Match`). */
  ifMatch?: number;
  /** Succeeds only when the key is absent (`If-None-Match: *`). */
  ifNoneMatch?: boolean;
  /** Succeeds only when the key exists (`If-Match: *`). */
  ifExists?: boolean;
}

/** Whether a record holds a live value at `now`. */
export function isLive(record: KvRecord | null, now: number): record is KvRecord {
  return record !== null && !record.x && (record.e === null || record.e > now);
}

function notFound(action: string, key: string): ChorusError {
  return new ChorusError("not_found", `Cannot ${action} "${key}": no such key`);
}

/** The actor owning one kv key. */
export class KvActor extends Actor<KvTx, KvChange> {
  #state: KvState = { record: null, value: undefined };
  readonly #emitted = new EmittedVersion<KvChange>((c) => c.version);
  #renewal?: TimerId;

  constructor(id: string, ctx: ActorContext) {
    super("kv", id, ctx);
  }

  /** The live entry, or undefined when absent or expired. */
  current(): KvEntry | undefined {
    const { record, value } = this.#state;
    if (!isLive(record, this.ctx.clock.now())) return undefined;
    return { key: this.id, value, version: record.v, expiresAt: record.e };
  }

  /** The version of the key, live or not (0 when never written). */
  version(): number {
    return this.#state.record?.v ?? 0;
  }

  protected headKey(): Deno.KvKey {
    return kvHeadKey(this.id);
  }

  protected async onStart(consistency: "strong" | "eventual"): Promise<string | null> {
    const loaded = await loadKvRecord(this.ctx.store, this.id, consistency);
    this.#state = { record: loaded.record, value: loaded.value };
    this.#emitted.loaded(loaded.record?.v ?? 0);
    this.#armExpiry();
    return loaded.versionstamp;
  }

  protected begin(): KvTx {
    return {
      now: this.ctx.clock.now(),
      record: this.#state.record,
      value: this.#state.value,
      changes: [],
      sizes: [],
      dirty: false,
    };
  }

  protected intent(tx: KvTx): Intent | null {
    if (!tx.dirty || !tx.record) return null;
    const key = this.id;
    const old = this.#state.record;
    const rec: KvRecord = { ...tx.record };
    const mutations: Mutation[] = [];
    let bytes = 256;
    const expireIn = rec.x
      ? TOMBSTONE_MS
      : rec.e === null
      ? undefined
      : Math.max(1, Math.ceil(rec.e - tx.now)) + TOMBSTONE_MS; // KV takes whole ms only
    const oldChunks = old && old.n && old.cv !== undefined ? old : null;
    const valueReplaced = tx.bytes !== undefined || rec.x;
    if (rec.x) {
      delete rec.enc, delete rec.d, delete rec.n, delete rec.cv, delete rec.sz;
    } else if (tx.bytes) {
      delete rec.d, delete rec.n, delete rec.cv;
      const laid = layoutBlob(tx.bytes, (i) => kvChunkKey(key, rec.v, i), { expireIn });
      Object.assign(rec, laid.ref);
      if (rec.n) rec.cv = rec.v;
      mutations.push(...laid.mutations);
      bytes += tx.bytes.bytes.byteLength;
    } else if (rec.d) bytes += rec.d.byteLength;
    if (valueReplaced && oldChunks && oldChunks.cv !== rec.cv) {
      mutations.push(...dropBlob(oldChunks as BlobRef, (i) => kvChunkKey(key, oldChunks.cv!, i)));
    }
    mutations.push({ type: "set", key: kvHeadKey(key), value: encodeKvHead(rec), expireIn });
    // The change log exists for watchers; unwatched keys skip it (half the writes per change).
    const logging = this.subscriberCount > 0 || (rec.w ?? 0) > tx.now;
    for (const page of logging ? logPages(tx.changes, tx.sizes) : []) {
      mutations.push({
        type: "set",
        key: kvLogKey(key, page.last.version),
        value: page.changes.length === 1 ? page.last : page.changes,
        expireIn: this.ctx.config.kvLogTtlMs,
      });
      bytes += page.bytes;
    }
    tx.record = rec;
    return { checks: [this.headCheck()], mutations, bytes };
  }

  protected adopt(tx: KvTx, _versionstamp: string): KvChange[] {
    this.#state = { record: tx.record, value: tx.value };
    this.#armExpiry();
    return this.#emitted.fresh(tx.changes);
  }

  protected override async onRemoteChange(): Promise<KvChange[]> {
    const before = await this.#emitted.reloading(() => this.reload());
    const now = this.#state.record?.v ?? 0;
    if (now <= before) return [];
    if (this.subscriberCount === 0) {
      // Nobody to tell: skip reading the log (one KV list per refresh) and move the mark on.
      this.#emitted.passed(now);
      return [];
    }
    const changes = await readKvLog(this.ctx.store, this.id, before, now);
    const first = changes[0]?.version;
    if (first !== before + 1 || changes.at(-1)?.version !== now) {
      // Part of the log has expired: tell watchers the current state instead of a gap.
      changes.push(this.snapshot());
    }
    return this.#emitted.fresh(changes);
  }

  protected override onSubscribersChanged(): void {
    this.#armExpiry();
    this.#armMarkRenewal();
  }

  /**
   * Writes the watch mark (awaited by `KvApi.watch` before it subscribes), so no instance
   * commits a change to this key without logging it from then on.
   */
  markWatched(): Promise<void> {
    return this.write((tx) => this.markWatchedOp(tx, tx.now + WATCH_MARK_MS));
  }

  #armMarkRenewal(): void {
    if (this.subscriberCount === 0) {
      if (this.#renewal !== undefined) this.ctx.clock.clearTimeout(this.#renewal);
      this.#renewal = undefined;
      return;
    }
    if (this.#renewal !== undefined) return;
    this.#renewal = this.ctx.clock.setTimeout(() => {
      this.#renewal = undefined;
      if (this.subscriberCount === 0) return;
      this.markWatched().catch((error) => {
        log.warn("watch mark renewal failed; other instances may stop logging this key's changes", {
          error,
          key: this.id,
        });
      }).finally(() => this.#armMarkRenewal());
    }, WATCH_MARK_MS / 3);
  }

  override close(): void {
    if (this.#renewal !== undefined) this.ctx.clock.clearTimeout(this.#renewal);
    this.#renewal = undefined;
    super.close();
  }

  protected override onAlarm(): void {
    // Queued behind the alarm message, not awaited inside it (that would wait on itself).
    this.write((tx) => this.expireOp(tx)).catch((error) => {
      log.warn("key expiry failed; the expired key stays until its next read or write", {
        error,
        key: this.id,
      });
    });
  }

  /**
   * The current state as one change event marked `resync`: what a watcher that missed changes
   * (made while nobody watched, or past the log's retention) gets instead of a silent gap.
   */
  snapshot(): KvChange {
    const entry = this.current();
    const rec = this.#state.record;
    const now = this.ctx.clock.now();
    const change: KvChange = entry
      ? changeOf(this.id, "set", entry.version, entry.value, rec?.sz ?? 0, entry.expiresAt, now)
      : { key: this.id, op: "delete", version: rec?.v ?? 0, at: now };
    change.resync = true;
    return change;
  }

  #armExpiry(): void {
    const rec = this.#state.record;
    const due = this.subscriberCount > 0 && rec && !rec.x && rec.e !== null ? rec.e : null;
    this.setAlarm(due);
  }

  // ---- ops: validate, then change the working copy ----

  /** Put op. */
  putOp(tx: KvTx, value: unknown, encoded: EncodedValue, options: PutOptions): KvEntry {
    const live = isLive(tx.record, tx.now);
    const current = live ? tx.record!.v : undefined;
    if (options.ifNoneMatch && live) {
      throw new ChorusError("conflict", `Cannot put "${this.id}": the key exists`, {
        details: { version: current },
      });
    }
    if (options.ifExists && !live) {
      throw new ChorusError("conflict", `Cannot put "${this.id}": the key does not exist`, {
        details: { version: null },
      });
    }
    if (options.ifMatch !== undefined && current !== options.ifMatch) {
      throw new ChorusError(
        "conflict",
        `Cannot put "${this.id}": version is ${current ?? "absent"}, not ${options.ifMatch}`,
        { details: { version: current ?? null } },
      );
    }
    const version = (tx.record?.v ?? 0) + 1;
    const expiresAt = options.ttl === undefined ? null : tx.now + ttlMs(options.ttl);
    tx.record = withMark({ v: version, e: expiresAt }, tx.record);
    tx.value = value;
    tx.bytes = encoded;
    tx.dirty = true;
    addChange(
      tx,
      changeOf(this.id, "set", version, value, encoded.rawSize, expiresAt, tx.now),
      encoded.rawSize,
    );
    return { key: this.id, value, version, expiresAt };
  }

  /** Delete op; `missingOk` makes an absent key a no-op returning false (bulk delete). */
  deleteOp(tx: KvTx, options: { ifMatch?: number; missingOk?: boolean } = {}): boolean {
    const live = isLive(tx.record, tx.now);
    if (!live) {
      if (options.missingOk && options.ifMatch === undefined) return false;
      if (options.ifMatch !== undefined) {
        throw new ChorusError(
          "conflict",
          `Cannot delete "${this.id}": version is absent, not ${options.ifMatch}`,
          { details: { version: null } },
        );
      }
      throw notFound("delete", this.id);
    }
    if (options.ifMatch !== undefined && tx.record!.v !== options.ifMatch) {
      throw new ChorusError(
        "conflict",
        `Cannot delete "${this.id}": version is ${tx.record!.v}, not ${options.ifMatch}`,
        { details: { version: tx.record!.v } },
      );
    }
    const version = tx.record!.v + 1;
    tx.record = withMark({ v: version, e: null, x: true }, tx.record);
    tx.value = undefined;
    tx.bytes = undefined;
    tx.dirty = true;
    addChange(tx, { key: this.id, op: "delete", version, at: tx.now }, Infinity);
    return true;
  }

  /** Touch op: sets a new TTL; the version (a lease's fencing token) is unchanged. */
  touchOp(tx: KvTx, ttl: number, options: { missingOk?: boolean } = {}): KvEntry | undefined {
    if (!isLive(tx.record, tx.now)) {
      if (options.missingOk) return undefined;
      throw notFound("touch", this.id);
    }
    tx.record = { ...tx.record!, e: tx.now + ttlMs(ttl) };
    tx.dirty = true;
    if (tx.record.n && !tx.bytes) {
      // Chunks expire with the head, so chunked data is rewritten with the new expiry.
      tx.bytes = encodeValue(tx.value, compressionOptions(this.ctx.config));
    }
    return { key: this.id, value: tx.value, version: tx.record.v, expiresAt: tx.record.e };
  }

  /** Incr op: adds `by` to an integer value, creating it at 0 (with `ttl`) when absent. */
  incrOp(tx: KvTx, by: number, ttl: number | undefined, encode: (n: number) => EncodedValue) {
    const live = isLive(tx.record, tx.now);
    const current = live ? tx.value : 0;
    if (!Number.isSafeInteger(current)) {
      throw new ChorusError("conflict", `Cannot incr "${this.id}": the value is not an integer`);
    }
    const next = (current as number) + by;
    if (!Number.isSafeInteger(next)) {
      throw new ChorusError("conflict", `Cannot incr "${this.id}": the result overflows`);
    }
    const expiresAt = live ? tx.record!.e : ttl === undefined ? null : tx.now + ttlMs(ttl);
    const version = (tx.record?.v ?? 0) + 1;
    const encoded = encode(next);
    tx.record = withMark({ v: version, e: expiresAt }, tx.record);
    tx.value = next;
    tx.bytes = encoded;
    tx.dirty = true;
    addChange(
      tx,
      changeOf(this.id, "set", version, next, encoded.rawSize, expiresAt, tx.now),
      encoded.rawSize,
    );
    return { key: this.id, value: next, version, expiresAt };
  }

  /** Expire op: turns a value whose TTL has passed into a tombstone and logs an `expire`. */
  expireOp(tx: KvTx): void {
    const rec = tx.record;
    if (!rec || rec.x || rec.e === null || rec.e > tx.now) return;
    const version = rec.v + 1;
    tx.record = withMark({ v: version, e: null, x: true }, tx.record);
    tx.value = undefined;
    tx.bytes = undefined;
    tx.dirty = true;
    addChange(tx, { key: this.id, op: "expire", version, at: tx.now }, Infinity);
  }

  /**
   * Watch-mark op: records that this instance has watchers until `until`, so every writer on
   * every instance logs its changes for them. Keeps the version and the value.
   */
  markWatchedOp(tx: KvTx, until: number): void {
    const rec = tx.record ?? { v: 0, e: null, x: true as const };
    if ((rec.w ?? 0) >= until) return;
    tx.record = { ...rec, w: until };
    tx.dirty = true;
  }

  /** Freezes a value so the cached copy cannot be changed by a caller. */
  static own(value: unknown): unknown {
    return deepFreeze(value);
  }
}

/** A new record that keeps the old one's watch mark. */
function withMark(record: KvRecord, old: KvRecord | null): KvRecord {
  if (old?.w !== undefined) record.w = old.w;
  return record;
}

function changeOf(
  key: string,
  op: "set",
  version: number,
  value: unknown,
  rawSize: number,
  expiresAt: number | null,
  at: number,
): KvChange {
  const change: KvChange = { key, op, version, expires_at: expiresAt, at };
  if (rawSize <= LOG_VALUE_BYTES) change.value = value;
  else change.value_omitted = true;
  return change;
}

/**
 * Records a change of a batch with its value's size (`rawSize`: JSON bytes; `Infinity` for a
 * change without a value), which sizes its log page if the key is logged. Kept beside the change
 * rather than in a `WeakMap` keyed by it, which every put paid for whether or not it was logged.
 */
function addChange(tx: KvTx, change: KvChange, rawSize: number): void {
  tx.changes.push(change);
  tx.sizes.push(rawSize);
}

/**
 * Most bytes one log page may hold by {@linkcode logCost}'s worst-case estimate: a KV value holds
 * 64 KiB, so a page always fits.
 */
const LOG_PAGE_BYTES = 60 * 1024;

/**
 * The most a logged change of `key` whose value has `rawSize` bytes of JSON can take in KV: its
 * fields and key, and its value when it carries one (up to {@linkcode LOG_VALUE_BYTES}), counted
 * three times, because V8's stored form of a value can be three times its JSON (a frozen array
 * of small decimals is stored element by element with its index). Writes are weighed with it too,
 * so a batch of writes to a watched key stays within KV's commit limit.
 */
export function logCost(key: string, rawSize: number): number {
  return 256 + 2 * key.length + (rawSize <= LOG_VALUE_BYTES ? 3 * rawSize : 0);
}

/** A run of one batch's changes stored as one log entry, keyed by its last version. */
interface LogPage {
  changes: KvChange[];
  last: KvChange;
  bytes: number;
}

/**
 * A batch's changes as log pages: consecutive changes share an entry up to
 * {@linkcode LOG_PAGE_BYTES}, so a burst of writes to a watched key costs one log mutation per page
 * instead of one per change. An entry is keyed by its last version and holds that change alone
 * (the layout of a single change) or the array of the page's changes, oldest first.
 */
function logPages(changes: KvChange[], sizes: number[]): LogPage[] {
  const pages: LogPage[] = [];
  let page: LogPage | undefined;
  for (let i = 0; i < changes.length; i++) {
    const change = changes[i];
    const size = logCost(change.key, sizes[i]);
    if (!page || page.bytes + size > LOG_PAGE_BYTES) {
      page = { changes: [], last: change, bytes: 0 };
      pages.push(page);
    }
    page.changes.push(change);
    page.last = change;
    page.bytes += size;
  }
  return pages;
}

/**
 * The logged changes of `key` with versions in `(after, through]`, oldest first: entries are read
 * from the first one keyed at or above `after + 1` (a page is keyed by its last version, so it may
 * start earlier) and flattened. Versions that are not logged are simply missing; callers check.
 */
export async function readKvLog(
  store: Store,
  key: string,
  after: number,
  through: number,
): Promise<KvChange[]> {
  const changes: KvChange[] = [];
  const iter = store.list<KvChange | KvChange[]>({
    start: kvLogKey(key, after + 1),
    end: [...kvLogPrefix(key), through + 1],
  });
  for await (const entry of iter) {
    for (const change of Array.isArray(entry.value) ? entry.value : [entry.value]) {
      if (change.version > after && change.version <= through) changes.push(change);
    }
  }
  return changes;
}

/** A head record with its decoded value, as read from KV. */
export interface LoadedKv {
  record: KvRecord | null;
  value: unknown;
  versionstamp: string | null;
}

/**
 * Reads a key's head and (chunked) value from KV. Chunks are immutable per version, so a missing
 * chunk means the head moved on meanwhile: read again.
 */
export async function loadKvRecord(
  store: Store,
  key: string,
  consistency: "strong" | "eventual",
): Promise<LoadedKv> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const head = await store.get(kvHeadKey(key), consistency);
    const record = head.value === null ? null : decodeKvHead(head.value);
    if (!record) return { record: null, value: undefined, versionstamp: head.versionstamp };
    if (record.x) return { record, value: undefined, versionstamp: head.versionstamp };
    if (!record.d && !record.n) return { record, value: null, versionstamp: head.versionstamp };
    const ref = { ...record, enc: record.enc ?? "json", sz: record.sz ?? 0 };
    const value = await readBlob(
      store,
      ref,
      (i) => kvChunkKey(key, record.cv ?? record.v, i),
      consistency,
    );
    if (value === undefined) continue; // a chunk is gone: the head moved on meanwhile
    return { record, value, versionstamp: head.versionstamp };
  }
  throw new ChorusError("unavailable", `Cannot read "${key}": its value kept changing`);
}

/** A TTL in seconds as whole milliseconds (at least 1): KV's `expireIn` takes integers only. */
function ttlMs(ttl: number): number {
  return Math.max(1, Math.round(ttl * 1000));
}
